//! Families of the service's own, beside the catalog: validated names, labels and
//! buckets, and counters that count fractions (what prometheus_client and prom-client
//! users expect: seconds of CPU, dollars, tokens per request averaged upstream).
//!
//! ```
//! use tars_telemetry::{Telemetry, Format};
//! let t = Telemetry::new();
//! let spent = t.counter_family("llm_spend_dollars", "Money spent on LLM calls.", &["model"]).unwrap();
//! spent.labels(&["gpt-4o"]).unwrap().inc_by(0.25);
//! let text = t.render_string(Format::Prometheus);
//! assert!(text.contains("llm_spend_dollars_total{model=\"gpt-4o\"} 0.25"));
//! assert!(t.counter_family("__secret", "", &[]).is_err());
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use crate::catalog::MetricKind;
use crate::error::{Error, NameError, check_buckets};
use crate::metric::{Gauge, Histogram};
use crate::registry::{Family, FamilyDesc, Metric, Registry};

/// Checks a metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, not starting with `__`.
pub fn check_metric_name(name: &str) -> Result<(), Error> {
    check_name(name, true)
}

/// Checks a label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`.
pub fn check_label_name(name: &str) -> Result<(), Error> {
    check_name(name, false)
}

fn check_name(name: &str, metric: bool) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return bad(NameError::Empty);
    };
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (metric && c == ':')
            || (!first && c.is_ascii_digit())
    };
    if !ok(first, true) || !chars.all(|c| ok(c, false)) {
        return bad(NameError::BadCharacter);
    }
    if name.starts_with("__") {
        return bad(NameError::Reserved);
    }
    Ok(())
}

fn desc(
    name: &str,
    help: &str,
    kind: MetricKind,
    labels: &[&str],
    buckets: &[f64],
) -> Result<FamilyDesc, Error> {
    check_metric_name(name)?;
    for (i, l) in labels.iter().enumerate() {
        check_label_name(l)?;
        let reason = if labels[..i].contains(l) {
            Some(NameError::DuplicateLabel)
        } else if kind == MetricKind::Histogram && *l == "le" {
            Some(NameError::ReservedLabel)
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::InvalidName {
                name: l.to_string(),
                reason,
            });
        }
    }
    let name = match kind {
        // As prometheus_client does: a counter named `x` is exposed as `x_total`.
        MetricKind::Counter if !name.ends_with("_total") => format!("{name}_total"),
        _ => name.to_string(),
    };
    Ok(FamilyDesc {
        name: Cow::Owned(name),
        help: Cow::Owned(help.to_string()),
        kind,
        unit: None,
        labels: labels.iter().map(|l| Cow::Owned(l.to_string())).collect(),
        buckets: buckets.into(),
        native: None,
    })
}

/// A counter family of the service's own. Its series count fractions.
#[derive(Debug, Clone)]
pub struct CounterFamily(Arc<Family>);

/// A gauge family of the service's own.
#[derive(Debug, Clone)]
pub struct GaugeFamily(Arc<Family>);

/// A histogram family of the service's own.
#[derive(Debug, Clone)]
pub struct HistogramFamily(Arc<Family>);

/// One series of a [`CounterFamily`]: adds non-negative amounts, fractions included.
/// NaN, infinite and negative amounts are refused and counted in
/// `tars_telemetry_invalid_values_total`, never raised.
#[derive(Debug, Clone)]
pub struct FloatCounter(Gauge);

impl FloatCounter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.inc();
    }

    /// Adds `v` (refused and counted when NaN, infinite or negative).
    #[inline]
    pub fn inc_by(&self, v: f64) {
        if crate::metric::check_non_negative(v).is_ok() {
            self.0.inc_by(v);
        } else {
            self.0.0.invalid.inc();
        }
    }

    /// The count.
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

impl CounterFamily {
    /// The series with these label values (within the series budget).
    pub fn labels(&self, values: &[&str]) -> Result<FloatCounter, Error> {
        self.0.resolve_mirrored(values).map(FloatCounter)
    }

    /// The exposed family name (with `_total`).
    pub fn name(&self) -> &str {
        self.0.name()
    }
}

impl GaugeFamily {
    /// The series with these label values (within the series budget).
    pub fn labels(&self, values: &[&str]) -> Result<Gauge, Error> {
        match self.0.resolve(values)? {
            Metric::Gauge(g) => Ok(g),
            _ => Err(Error::WrongKind {
                family: self.0.name().to_string(),
                expected: "gauge",
            }),
        }
    }
}

impl HistogramFamily {
    /// The series with these label values (within the series budget).
    pub fn labels(&self, values: &[&str]) -> Result<Histogram, Error> {
        match self.0.resolve(values)? {
            Metric::Histogram(h) => Ok(h),
            _ => Err(Error::WrongKind {
                family: self.0.name().to_string(),
                expected: "histogram",
            }),
        }
    }
}

/// Registers (or finds, if registered alike) a counter family of the service's own;
/// `name` gets `_total` appended unless it ends with it.
pub(crate) fn counter_family(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<CounterFamily, Error> {
    register(reg, desc(name, help, MetricKind::Counter, labels, &[])?).map(CounterFamily)
}

/// Registers (or finds) a gauge family of the service's own.
pub(crate) fn gauge_family(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<GaugeFamily, Error> {
    register(reg, desc(name, help, MetricKind::Gauge, labels, &[])?).map(GaugeFamily)
}

/// Registers (or finds) a histogram family of the service's own, with these bounds.
pub(crate) fn histogram_family(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> Result<HistogramFamily, Error> {
    check_buckets(buckets)?;
    register(
        reg,
        desc(name, help, MetricKind::Histogram, labels, buckets)?,
    )
    .map(HistogramFamily)
}

/// Registers (or finds) a histogram family of the service's own with native buckets of
/// `native`'s shape, and classic `buckets` beside them unless `buckets` is empty.
pub(crate) fn native_histogram_family(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
    native: crate::catalog::NativeBuckets,
) -> Result<HistogramFamily, Error> {
    if !buckets.is_empty() {
        check_buckets(buckets)?;
    }
    native.validate().map_err(Error::InvalidBuckets)?;
    let mut d = desc(name, help, MetricKind::Histogram, labels, buckets)?;
    d.native = Some(native);
    register(reg, d).map(HistogramFamily)
}

fn register(reg: &Registry, desc: FamilyDesc) -> Result<Arc<Family>, Error> {
    // The catalog's families are recorded through the domain API only.
    if crate::catalog::find(&desc.name).is_some() {
        return Err(Error::Conflict {
            family: desc.name.to_string(),
            existing: "a catalog family".into(),
            requested: format!("a custom {:?}", desc.kind),
        });
    }
    reg.register_desc(desc)
}
