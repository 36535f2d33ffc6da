//! The `metrics` facade: `counter!`, `gauge!` and `histogram!` from any crate in the
//! process land in the same registry, and so on the same /metrics.
//!
//! Names are made Prometheus-safe the way metrics-exporter-prometheus does it (its
//! `formatting` helpers are used), so crates written against that exporter keep their
//! series names; a counter gains `_total` if it lacks it. A name that cannot be made valid,
//! a label set that disagrees with the family's, or a type that disagrees with an existing
//! family yields a no-op handle, one warning per name, and a count in
//! `tars_telemetry_facade_errors_total{reason}`: never a panic.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use metrics::{Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::formatting::{sanitize_label_key, sanitize_metric_name};

use crate::catalog::MetricKind;
use crate::registry::{FamilyDesc, Metric, Registry};

const WARNED_NAMES_CAP: usize = 1024;

/// The `reason` values of `tars_telemetry_facade_errors_total`.
pub(crate) const REASONS: [&str; 5] = [
    "invalid_name",
    "name_sanitized",
    "invalid_label",
    "type_conflict",
    "label_mismatch",
];

#[derive(Debug)]
pub(crate) struct FacadeRecorder {
    registry: Registry,
    default_buckets: Arc<[f64]>,
    /// (name prefix, buckets): the first matching prefix wins.
    buckets: Vec<(String, Arc<[f64]>)>,
    descriptions: RwLock<hashbrown::HashMap<String, (String, Option<Unit>)>>,
    warned: Mutex<HashSet<String>>,
    /// Handles already resolved, by key, one map per kind: the macros register on every
    /// call, and a hit here costs a shared lock and a hash (cached in the key), no
    /// allocation. Bounded, so that a flood of distinct keys cannot grow it forever.
    resolved: [RwLock<std::collections::HashMap<Key, Metric>>; 3],
}

/// Keys remembered per kind; past this, registrations resolve through the registry.
const RESOLVED_CAP: usize = 10_000;

impl FacadeRecorder {
    pub(crate) fn new(
        registry: Registry,
        default_buckets: Arc<[f64]>,
        buckets: Vec<(String, Arc<[f64]>)>,
    ) -> Self {
        FacadeRecorder {
            registry,
            default_buckets,
            buckets,
            descriptions: Default::default(),
            warned: Default::default(),
            resolved: Default::default(),
        }
    }

    fn refuse(&self, name: &str, reason: &'static str, detail: &str) {
        self.registry.facade_error(reason);
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() < WARNED_NAMES_CAP && warned.insert(format!("{reason}:{name}")) {
            tracing::warn!(
                metric = name,
                reason,
                "metrics facade: {detail}; recording is a no-op"
            );
        }
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        let mut d = self.descriptions.write().unwrap_or_else(|e| e.into_inner());
        d.insert(key.as_str().to_string(), (description.to_string(), unit));
    }

    /// The handle for `key`, from the cache of resolved keys or the registry.
    fn handle(&self, key: &Key, kind: MetricKind) -> Option<Metric> {
        let slot = match kind {
            MetricKind::Counter => 0,
            MetricKind::Gauge | MetricKind::Info => 1,
            MetricKind::Histogram => 2,
        };
        let cache = &self.resolved[slot];
        if let Some(m) = cache.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Some(m.clone());
        }
        let m = self.resolve(key, kind)?;
        let mut c = cache.write().unwrap_or_else(|e| e.into_inner());
        if c.len() < RESOLVED_CAP {
            c.insert(key.clone(), m.clone());
        }
        Some(m)
    }

    pub(crate) fn resolve(&self, key: &Key, kind: MetricKind) -> Option<Metric> {
        let raw = key.name();
        let mut name = sanitize_metric_name(raw);
        if name.is_empty() || name.starts_with("__") {
            self.refuse(raw, "invalid_name", "metric name is empty or reserved");
            return None;
        }
        if kind == MetricKind::Counter && !name.ends_with("_total") {
            name.push_str("_total");
        }
        if name != raw && !(kind == MetricKind::Counter && format!("{raw}_total") == name) {
            self.registry.facade_error("name_sanitized");
        }
        let mut labels: Vec<(String, &str)> = Vec::new();
        for l in key.labels() {
            let k = sanitize_label_key(l.key());
            if k.is_empty()
                || k.starts_with("__")
                || (kind == MetricKind::Histogram && k == "le")
                || labels.iter().any(|(seen, _)| *seen == k)
            {
                self.refuse(
                    &name,
                    "invalid_label",
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
                };
                match self.registry.register_desc(desc) {
                    Ok(f) => f,
                    Err(e) => {
                        self.refuse(&name, "type_conflict", &e.to_string());
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
                "type_conflict",
                "a family of that name has another type",
            );
            return None;
        }
        // Put values in the family's label order; the label sets must match exactly.
        let names = &family.desc().labels;
        if names.len() != labels.len() {
            self.refuse(
                &name,
                "label_mismatch",
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
                        "label_mismatch",
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
        match self.handle(key, MetricKind::Counter) {
            Some(Metric::Counter(c)) => metrics::Counter::from_arc(c.0),
            _ => metrics::Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        match self.handle(key, MetricKind::Gauge) {
            Some(Metric::Gauge(g)) => metrics::Gauge::from_arc(g.0),
            _ => metrics::Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        match self.handle(key, MetricKind::Histogram) {
            Some(Metric::Histogram(h)) => metrics::Histogram::from_arc(h.0),
            _ => metrics::Histogram::noop(),
        }
    }
}
