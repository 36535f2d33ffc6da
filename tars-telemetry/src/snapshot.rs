//! A structured read of every family and series: what the bindings hand their users and
//! what tests compare, without parsing the text exposition.
//!
//! ```
//! use tars_telemetry::{Telemetry, Method};
//! use tars_telemetry::snapshot::SeriesValue;
//!
//! let t = Telemetry::new();
//! t.http().route("/api/v1/rag/query").start(Method::Post).finish(200);
//! let families = t.snapshot();
//! let requests = families.iter().find(|f| f.name == "tars_http_requests_total").unwrap();
//! let s = &requests.series[0];
//! assert_eq!(s.label("status"), Some("200"));
//! assert!(matches!(s.value, SeriesValue::Counter { value, .. } if value == 1.0));
//! ```

use crate::catalog::{Merge, MetricKind};
use crate::metric::Exemplar;
use crate::registry::{Family, Metric, OVERFLOW_LABEL_VALUE, Registry, SeriesSet};

/// One family as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySnapshot {
    /// The exposed name (counters with `_total`).
    pub name: String,
    /// The HELP text.
    pub help: String,
    /// The family's type.
    pub kind: MetricKind,
    /// The unit, if the family has one.
    pub unit: Option<String>,
    /// Label names, in exposition order.
    pub label_names: Vec<String>,
    /// Its series, in exposition order (the overflow series last).
    pub series: Vec<SeriesSnapshot>,
}

/// One series as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSnapshot {
    /// `(name, value)` pairs, in the family's label order.
    pub labels: Vec<(String, String)>,
    /// The series' value.
    pub value: SeriesValue,
}

impl SeriesSnapshot {
    /// The value of one label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The value of one series.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesValue {
    /// A counter (a float: mirrored counters may be fractional).
    Counter {
        /// The count.
        value: f64,
        /// The last exemplar, if any.
        exemplar: Option<Exemplar>,
    },
    /// A gauge, or an info series (always 1).
    Gauge(f64),
    /// A histogram.
    Histogram(HistogramSnapshot),
}

/// A histogram's buckets, count and sum.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, cumulative count)`, the last bound `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Observations, equal to the `+Inf` bucket's count.
    pub count: u64,
    /// Sum of the observations.
    pub sum: f64,
    /// Per bucket, its exemplar, if any.
    pub exemplars: Vec<Option<Exemplar>>,
}

fn series_value(metric: &Metric, fixed_point: Option<f64>) -> SeriesValue {
    match metric {
        Metric::Counter(c) => SeriesValue::Counter {
            value: c.get() as f64 / fixed_point.unwrap_or(1.0),
            exemplar: c.exemplar(),
        },
        Metric::Gauge(g) => SeriesValue::Gauge(g.get()),
        Metric::Histogram(h) => {
            let counts = h.bucket_counts();
            let bounds = h
                .bounds()
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY));
            let buckets: Vec<(f64, u64)> = bounds.zip(counts).collect();
            SeriesValue::Histogram(HistogramSnapshot {
                count: buckets.last().map_or(0, |b| b.1),
                sum: h.sum(),
                exemplars: (0..buckets.len()).map(|i| h.exemplar(i)).collect(),
                buckets,
            })
        }
    }
}

/// Reads a mirrored series (a gauge in a counter family) as the family's type.
fn as_family_kind(kind: MetricKind, v: SeriesValue) -> SeriesValue {
    match (kind, v) {
        (MetricKind::Counter, SeriesValue::Gauge(value)) => SeriesValue::Counter {
            value,
            exemplar: None,
        },
        (_, v) => v,
    }
}

pub(crate) fn family_snapshot(f: &Family) -> FamilySnapshot {
    let desc = f.desc();
    let label_names: Vec<String> = desc.labels.iter().map(|l| l.to_string()).collect();
    let set: &SeriesSet = &f.series.read();
    let keys = set.keys_in_order();
    let mut series = Vec::with_capacity(set.list.len() + 1);
    for (s, values) in set.list.iter().zip(keys) {
        series.push(SeriesSnapshot {
            labels: label_names
                .iter()
                .cloned()
                .zip(values.iter().map(|v| v.to_string()))
                .collect(),
            value: as_family_kind(desc.kind, series_value(&s.metric, f.fixed_point)),
        });
    }
    if let Some(o) = &set.overflow {
        series.push(SeriesSnapshot {
            labels: label_names
                .iter()
                .map(|n| (n.clone(), OVERFLOW_LABEL_VALUE.to_string()))
                .collect(),
            value: as_family_kind(desc.kind, series_value(&o.metric, f.fixed_point)),
        });
    }
    FamilySnapshot {
        name: desc.name.to_string(),
        help: desc.help.to_string(),
        kind: desc.kind,
        unit: desc.unit.as_ref().map(|u| u.to_string()),
        label_names,
        series,
    }
}

impl Registry {
    /// Every family with at least one series, in exposition order, as values: the
    /// structured twin of [`Registry::render_into`].
    pub fn snapshot(&self) -> Vec<FamilySnapshot> {
        let mut out = Vec::new();
        for f in self.families() {
            let snap = family_snapshot(&f);
            if !snap.series.is_empty() {
                out.push(snap);
            }
        }
        out
    }
}

impl FamilySnapshot {
    /// How workers of one service combine this family, from the catalog (families not in
    /// it: by their kind).
    pub fn merge(&self) -> Merge {
        crate::catalog::find(&self.name).map_or(Merge::for_kind(self.kind), |d| d.merge)
    }
}
