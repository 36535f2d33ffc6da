//! The `metrics` facade: `counter!`, `gauge!` and `histogram!` from any crate in the
//! process land in the same registry, and so on the same /metrics.
//!
//! Names are made Prometheus-safe the way metrics-exporter-prometheus does it (its
//! `formatting` helpers are used), so crates written against that exporter keep their
//! series names; a counter gains `_total` if it lacks it. A name that cannot be made valid,
//! a label set that disagrees with the family's, a type that disagrees with an existing
//! family, a name whose exposed forms clash with another family's, or a new name past the
//! registry's family budget yields a no-op handle, one warning per name, and a count in
//! `tars_telemetry_facade_errors_total{reason}`: never a panic. Counters saturate at
//! `u64::MAX` rather than wrap.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use metrics::{Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::formatting::{sanitize_label_key, sanitize_metric_name};

use crate::catalog::{MetricKind, SELF_FACADE_ERRORS};
use crate::error::Error;
use crate::metric::Counter;
use crate::metric::counter::CounterCore;
use crate::registry::{FamilyDesc, Metric, Registry};

const WARNED_NAMES_CAP: usize = 1024;

/// Why the facade refused or rewrote a registration: the `reason` label of
/// `tars_telemetry_facade_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The name is empty or reserved (`__` prefix) once made Prometheus-safe.
    InvalidName,
    /// The name was rewritten to be Prometheus-safe (recorded, not refused).
    NameSanitized,
    /// A label name is empty, reserved (`__` prefix, `le`, `quantile`) or repeated.
    InvalidLabel,
    /// A family of that name has another type.
    TypeConflict,
    /// The label names differ from the family's.
    LabelMismatch,
    /// The family's exposed names overlap another family's (`x` beside `x_total`).
    NameClash,
    /// The registry holds its budget of families.
    FamilyBudget,
}

impl Reason {
    /// Every reason, each exposed at 0 from the start.
    pub(crate) const ALL: [Reason; 7] = [
        Reason::InvalidName,
        Reason::NameSanitized,
        Reason::InvalidLabel,
        Reason::TypeConflict,
        Reason::LabelMismatch,
        Reason::NameClash,
        Reason::FamilyBudget,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidName => "invalid_name",
            Reason::NameSanitized => "name_sanitized",
            Reason::InvalidLabel => "invalid_label",
            Reason::TypeConflict => "type_conflict",
            Reason::LabelMismatch => "label_mismatch",
            Reason::NameClash => "name_clash",
            Reason::FamilyBudget => "family_budget",
        }
    }
}

/// A facade counter: adds saturate at `u64::MAX`, since a counter that wraps to a small
/// number reads as a reset and a huge negative rate.
#[derive(Debug)]
struct SaturatingCounter(Arc<CounterCore>);

impl metrics::CounterFn for SaturatingCounter {
    fn increment(&self, value: u64) {
        // One atomic add, as for any counter; only an add that wraps (a count past
        // u64::MAX, never in practice) pays for pinning the value at the maximum.
        let prev = self.0.value().fetch_add(value, Ordering::Relaxed);
        if prev.checked_add(value).is_none() {
            self.0.value().store(u64::MAX, Ordering::Relaxed);
        }
    }

    fn absolute(&self, value: u64) {
        self.0.value().fetch_max(value, Ordering::Relaxed);
    }
}

/// Handles already resolved, by key: the macros register on every call, and a hit here
/// costs a shared lock and a hash (cached in the key), no allocation. Bounded, so that a
/// flood of distinct keys cannot grow it forever.
type Resolved<T> = RwLock<std::collections::HashMap<Key, T>>;

#[derive(Debug)]
pub(crate) struct FacadeRecorder {
    registry: Registry,
    default_buckets: Arc<[f64]>,
    /// (name prefix, buckets): the first matching prefix wins.
    buckets: Vec<(String, Arc<[f64]>)>,
    descriptions: RwLock<hashbrown::HashMap<String, (String, Option<Unit>)>>,
    warned: Mutex<HashSet<String>>,
    /// One counter per [`Reason`], in [`Reason::ALL`] order.
    errors: [Counter; Reason::ALL.len()],
    counters: Resolved<metrics::Counter>,
    gauges: Resolved<metrics::Gauge>,
    histograms: Resolved<metrics::Histogram>,
}

/// Keys remembered per kind; past this, registrations resolve through the registry.
const RESOLVED_CAP: usize = 10_000;

impl FacadeRecorder {
    /// A recorder over `registry`. Registers `tars_telemetry_facade_errors_total` with
    /// every reason at 0, so that a panel shows 0 rather than no data.
    pub(crate) fn new(
        registry: Registry,
        default_buckets: Arc<[f64]>,
        buckets: Vec<(String, Arc<[f64]>)>,
    ) -> Self {
        let family = registry.register(&SELF_FACADE_ERRORS).ok();
        let errors = Reason::ALL.map(
            |r| match family.as_ref().map(|f| f.resolve(&[r.as_str()])) {
                Some(Ok(Metric::Counter(c))) => c,
                // The name is taken or the budget spent: count anyway, unexposed.
                _ => Counter::detached(),
            },
        );
        FacadeRecorder {
            registry,
            default_buckets,
            buckets,
            descriptions: Default::default(),
            warned: Default::default(),
            errors,
            counters: Default::default(),
            gauges: Default::default(),
            histograms: Default::default(),
        }
    }

    fn count(&self, reason: Reason) {
        self.errors[reason as usize].inc();
    }

    fn refuse(&self, name: &str, reason: Reason, detail: &str) {
        self.count(reason);
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() < WARNED_NAMES_CAP && warned.insert(format!("{}:{name}", reason.as_str())) {
            tracing::warn!(
                metric = name,
                reason = reason.as_str(),
                "metrics facade: {detail}; recording is a no-op"
            );
        }
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if description.trim().is_empty() {
            // An empty HELP is no help: the family keeps the default text.
            return;
        }
        let mut d = self.descriptions.write().unwrap_or_else(|e| e.into_inner());
        // A description per family at most: past the family budget a new name could never
        // become a family, and a flood of distinct names would grow this map forever.
        if d.len() >= self.registry.family_budget() && !d.contains_key(key.as_str()) {
            drop(d);
            self.refuse(
                key.as_str(),
                Reason::FamilyBudget,
                "description dropped: as many names are described as the family budget allows",
            );
            return;
        }
        d.insert(key.as_str().to_string(), (description.to_string(), unit));
    }

    /// The handle for `key`, from the cache of resolved keys or made by `make`.
    fn cached<T: Clone>(
        &self,
        cache: &Resolved<T>,
        key: &Key,
        make: impl FnOnce() -> Option<T>,
    ) -> Option<T> {
        if let Some(m) = cache.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Some(m.clone());
        }
        let m = make()?;
        let mut c = cache.write().unwrap_or_else(|e| e.into_inner());
        if c.len() < RESOLVED_CAP {
            c.insert(key.clone(), m.clone());
        }
        Some(m)
    }

    pub(crate) fn resolve(&self, key: &Key, kind: MetricKind) -> Option<Metric> {
        let raw = key.name();
        let mut name = sanitize_metric_name(raw);
        if kind == MetricKind::Counter && !name.ends_with("_total") {
            name.push_str("_total");
        }
        // Checked after `_total` is added: `_` would otherwise become the reserved
        // `__total` (or a histogram's `__bucket`), and `_total` a counter whose
        // OpenMetrics family name is empty.
        let stem = match kind {
            MetricKind::Counter => name.strip_suffix("_total").unwrap_or(&name),
            _ => &name,
        };
        let reserved = name.starts_with("__") || (kind == MetricKind::Histogram && name == "_");
        if stem.is_empty() || reserved {
            self.refuse(raw, Reason::InvalidName, "metric name is empty or reserved");
            return None;
        }
        if name != raw && !(kind == MetricKind::Counter && format!("{raw}_total") == name) {
            self.count(Reason::NameSanitized);
        }
        let mut labels: Vec<(String, &str)> = Vec::new();
        for l in key.labels() {
            let k = sanitize_label_key(l.key());
            // `le` and `quantile` mean buckets and quantiles to every reader, whatever
            // the family's type.
            if k.is_empty()
                || k.starts_with("__")
                || k == "le"
                || k == "quantile"
                || labels.iter().any(|(seen, _)| *seen == k)
            {
                self.refuse(
                    &name,
                    Reason::InvalidLabel,
                    "label name is empty, reserved or repeated",
                );
                return None;
            }
            labels.push((k, l.value()));
        }

        let family = match self.registry.get(&name) {
            Some(f) => f,
            None => {
                labels.sort_by(|a, b| a.0.cmp(&b.0));
                let (help, unit) = self
                    .descriptions
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(raw)
                    .cloned()
                    .unwrap_or_else(|| ("Recorded through the metrics facade.".into(), None));
                let buckets = self
                    .buckets
                    .iter()
                    .find(|(p, _)| name.starts_with(p.as_str()))
                    .map_or_else(|| self.default_buckets.clone(), |(_, b)| b.clone());
                let unit = unit.and_then(|u| match u {
                    Unit::Seconds => Some("seconds"),
                    Unit::Bytes => Some("bytes"),
                    _ => None,
                });
                let desc = FamilyDesc {
                    name: Cow::Owned(name.clone()),
                    help: Cow::Owned(help),
                    kind,
                    unit: unit.map(Cow::Borrowed),
                    labels: labels.iter().map(|(k, _)| Cow::Owned(k.clone())).collect(),
                    buckets: if kind == MetricKind::Histogram {
                        buckets
                    } else {
                        Arc::from([])
                    },
                    native: None,
                };
                match self.registry.register_desc(desc) {
                    Ok(f) => f,
                    Err(e) => {
                        let reason = match e {
                            Error::TooManyFamilies { .. } => Reason::FamilyBudget,
                            // Registered by another thread meanwhile, with another type.
                            _ if self.registry.get(&name).is_some() => Reason::TypeConflict,
                            _ => Reason::NameClash,
                        };
                        self.refuse(&name, reason, &e.to_string());
                        return None;
                    }
                }
            }
        };
        let fam_kind = match family.desc().kind {
            MetricKind::Info => MetricKind::Gauge,
            k => k,
        };
        if fam_kind != kind {
            self.refuse(
                &name,
                Reason::TypeConflict,
                "a family of that name has another type",
            );
            return None;
        }
        // Put values in the family's label order; the label sets must match exactly.
        let names = &family.desc().labels;
        if names.len() != labels.len() {
            self.refuse(
                &name,
                Reason::LabelMismatch,
                "label names differ from the family's",
            );
            return None;
        }
        let mut values: Vec<&str> = Vec::with_capacity(names.len());
        for n in names {
            match labels.iter().find(|(k, _)| k == n) {
                Some((_, v)) => values.push(v),
                None => {
                    self.refuse(
                        &name,
                        Reason::LabelMismatch,
                        "label names differ from the family's",
                    );
                    return None;
                }
            }
        }
        family.resolve(&values).ok()
    }
}

impl metrics::Recorder for FacadeRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description)
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description)
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key, unit, description)
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        self.cached(&self.counters, key, || {
            match self.resolve(key, MetricKind::Counter)? {
                Metric::Counter(c) => {
                    Some(metrics::Counter::from_arc(Arc::new(SaturatingCounter(c.0))))
                }
                _ => None,
            }
        })
        .unwrap_or_else(metrics::Counter::noop)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        self.cached(&self.gauges, key, || {
            match self.resolve(key, MetricKind::Gauge)? {
                Metric::Gauge(g) => Some(metrics::Gauge::from_arc(g.0)),
                _ => None,
            }
        })
        .unwrap_or_else(metrics::Gauge::noop)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        self.cached(&self.histograms, key, || {
            match self.resolve(key, MetricKind::Histogram)? {
                Metric::Histogram(h) => Some(metrics::Histogram::from_arc(h.0)),
                _ => None,
            }
        })
        .unwrap_or_else(metrics::Histogram::noop)
    }
}
