//! Contract checks between deploy/ and the metric catalog.
//!
//! The Grafana dashboards and the Prometheus rules in deploy/ query series by name. This
//! crate parses every one of their PromQL expressions (with the `promql-parser` crate)
//! and checks each `tars_*` series against [`tars_telemetry::catalog`]:
//!
//! - the catalog (library or agent) defines the family; a renamed family is reported
//!   with its new name;
//! - `_bucket`, `_sum` and `_count` appear only on histograms, and a histogram is queried
//!   by its bare name (its native histogram) only where the catalog marks the family
//!   native ([`tars_telemetry::catalog::MetricDef::native`]); the functions of native
//!   histograms (`histogram_count`, `histogram_fraction`, ...) read only those;
//! - `rate`, `irate`, `increase` and `resets` read only counters and histogram parts,
//!   `deriv`, `delta` and the `*_over_time` value aggregations only gauges, and a counter
//!   is never read as an instant value (ratios of counters are ratios of rates);
//! - every label in a selector, a `by`/`without` clause, an `on`/`ignoring` clause or a
//!   `group_left` list exists on the series or on the intermediate result it applies to
//!   (the catalog's labels, plus the target labels of [`check::TARGET_LABELS`]; `le` only
//!   on `_bucket`);
//! - every quantile of classic buckets compared against a number is compared against one
//!   of that histogram's bucket boundaries; a native quantile, against a value inside the
//!   range its exponential buckets resolve.
//!
//! ```
//! use tars_deploy_contract::check::{Checker, Problem};
//!
//! let checker = Checker::new();
//! let ok = checker.check(
//!     "histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds_bucket[5m]))) > 0.25",
//! );
//! assert!(ok.problems.is_empty());
//!
//! let bad = checker.check("rate(tars_document_queue_length[5m])");
//! assert!(matches!(bad.problems[0], Problem::WrongFunction { .. }));
//! ```

pub mod check;
pub mod sources;
