//! Writes a collector's readings into the registry and drops the series a run no longer
//! reports, so that a lost GPU or an unmounted disk disappears instead of exporting its
//! last value forever.
//!
//! Counters mirrored from the kernel or the driver are kept valid in the output: a
//! negative or non-finite reading (a corrupt procfs line) is ignored, and a reading below
//! the previous one (the source was reset or wrapped) continues from the value already
//! exported, so an exported counter never goes negative or backwards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tars_telemetry::catalog::{MetricDef, MetricKind};
use tars_telemetry::{Family, Gauge, Registry};

type Key = (&'static str, Box<[Box<str>]>);

#[derive(Debug)]
struct Series {
    gauge: Gauge,
    /// Generation of the run that last set it.
    seen: u64,
    /// The source's last reading (counters only).
    last: f64,
    /// Added to the source's readings of a counter: the sum of its values before each reset.
    offset: f64,
}

#[derive(Debug, Default)]
struct Inner {
    families: HashMap<&'static str, Arc<Family>>,
    series: HashMap<Key, Series>,
    generation: u64,
}

/// One collector's view of the registry.
///
/// Clones share their series: the agent keeps one to withdraw the series of a collector
/// whose run overran its deadline while the run still holds the other.
#[derive(Debug, Clone)]
pub struct Emitter {
    registry: Registry,
    inner: Arc<Mutex<Inner>>,
}

impl Emitter {
    /// An emitter writing into `registry`.
    pub fn new(registry: Registry) -> Self {
        Emitter {
            registry,
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a collection run.
    pub fn begin(&mut self) {
        self.lock().generation += 1;
    }

    /// Sets one series of a catalog family (a gauge, or a counter mirrored from the kernel
    /// or the driver).
    pub fn set(&mut self, def: &'static MetricDef, labels: &[&str], value: f64) {
        let counter = def.kind == MetricKind::Counter;
        let valid = !counter || (value.is_finite() && value >= 0.0);
        let mut inner = self.lock();
        let generation = inner.generation;
        let key: Key = (def.name, labels.iter().map(|l| Box::from(*l)).collect());
        if let Some(s) = inner.series.get_mut(&key) {
            // An invalid reading keeps the series at its last value rather than dropping it.
            s.seen = generation;
            if !valid {
                tracing::debug!(family = def.name, "ignored counter reading {value}");
                return;
            }
            if counter {
                if value < s.last {
                    s.offset += s.last;
                }
                s.last = value;
                s.gauge.set(s.offset + value);
            } else {
                s.gauge.set(value);
            }
            return;
        }
        if !valid {
            tracing::debug!(family = def.name, "ignored counter reading {value}");
            return;
        }
        let family = match inner.families.get(def.name) {
            Some(f) => f.clone(),
            None => match self.registry.register(def) {
                Ok(f) => {
                    inner.families.insert(def.name, f.clone());
                    f
                }
                Err(e) => {
                    tracing::error!(family = def.name, "cannot register: {e}");
                    return;
                }
            },
        };
        match family.resolve_mirrored(labels) {
            Ok(gauge) => {
                gauge.set(value);
                inner.series.insert(
                    key,
                    Series {
                        gauge,
                        seen: generation,
                        last: value,
                        offset: 0.0,
                    },
                );
            }
            Err(e) => tracing::error!(family = def.name, "cannot record: {e}"),
        }
    }

    /// Ends a run: series not set during it are removed from the registry.
    pub fn finish(&mut self) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let generation = inner.generation;
        let families = &inner.families;
        inner.series.retain(|key, s| {
            let keep = s.seen == generation;
            if !keep {
                remove(families, key);
            }
            keep
        });
    }

    /// Removes every series of this emitter from the registry (its collector is down and
    /// its readings would be stale).
    pub fn withdraw(&self) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for key in inner.series.keys() {
            remove(&inner.families, key);
        }
        inner.series.clear();
    }

    /// Series currently exported by this emitter.
    pub fn len(&self) -> usize {
        self.lock().series.len()
    }

    /// Whether this emitter exports no series.
    pub fn is_empty(&self) -> bool {
        self.lock().series.is_empty()
    }
}

fn remove(families: &HashMap<&'static str, Arc<Family>>, (name, labels): &Key) {
    if let Some(f) = families.get(name) {
        let values: Vec<&str> = labels.iter().map(|v| &**v).collect();
        f.remove(&values);
    }
}
