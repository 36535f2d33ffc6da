//! Writes a collector's readings into the registry and drops the series a run no longer
//! reports, so that a lost GPU or an unmounted disk disappears instead of exporting its
//! last value forever.

use std::collections::HashMap;
use std::sync::Arc;

use tars_telemetry::catalog::MetricDef;
use tars_telemetry::{Family, Gauge, Registry};

type Key = (&'static str, Box<[Box<str>]>);

/// One collector's view of the registry.
#[derive(Debug)]
pub struct Emitter {
    registry: Registry,
    families: HashMap<&'static str, Arc<Family>>,
    series: HashMap<Key, (Gauge, u64)>,
    generation: u64,
}

impl Emitter {
    pub fn new(registry: Registry) -> Self {
        Emitter {
            registry,
            families: HashMap::new(),
            series: HashMap::new(),
            generation: 0,
        }
    }

    /// Starts a collection run.
    pub fn begin(&mut self) {
        self.generation += 1;
    }

    /// Sets one series of a catalog family (a gauge, or a counter mirrored from the kernel
    /// or the driver).
    pub fn set(&mut self, def: &'static MetricDef, labels: &[&str], value: f64) {
        let generation = self.generation;
        let key_probe: Key = (def.name, labels.iter().map(|l| Box::from(*l)).collect());
        if let Some((g, gen_seen)) = self.series.get_mut(&key_probe) {
            g.set(value);
            *gen_seen = generation;
            return;
        }
        let family = match self.families.get(def.name) {
            Some(f) => f.clone(),
            None => match self.registry.register(def) {
                Ok(f) => {
                    self.families.insert(def.name, f.clone());
                    f
                }
                Err(e) => {
                    tracing::error!(family = def.name, "cannot register: {e}");
                    return;
                }
            },
        };
        match family.resolve_mirrored(labels) {
            Ok(g) => {
                g.set(value);
                self.series.insert(key_probe, (g, generation));
            }
            Err(e) => tracing::error!(family = def.name, "cannot record: {e}"),
        }
    }

    /// Ends a run: series not set during it are removed from the registry.
    pub fn finish(&mut self) {
        let generation = self.generation;
        let families = &self.families;
        self.series.retain(|(name, labels), (_, seen)| {
            if *seen == generation {
                return true;
            }
            if let Some(f) = families.get(name) {
                let values: Vec<&str> = labels.iter().map(|v| &**v).collect();
                f.remove(&values);
            }
            false
        });
    }

    /// Series currently exported by this emitter.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}
