//! The node's hourly cost by resource at configured prices, and the share of each
//! resource in use. Runs after the other collectors and reads what they found.

use serde::Deserialize;
use tars_telemetry::catalog::{NODE_HOURLY_COST, NODE_RESOURCE_USED};

use super::{CollectError, Collector, NodeFacts};
use crate::Emitter;

const GIB: f64 = (1u64 << 30) as f64;

/// Prices per hour. The defaults are the platform's pricing model (a T4 GPU node).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prices {
    /// Dollars per CPU core-hour.
    pub cpu_core_hour: f64,
    /// Dollars per GiB-hour of memory.
    pub memory_gib_hour: f64,
    /// Dollars per GPU-hour.
    pub gpu_hour: f64,
    /// Dollars per GiB-hour of storage.
    pub storage_gib_hour: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            cpu_core_hour: 0.031611,
            memory_gib_hour: 0.004237,
            gpu_hour: 0.95,
            storage_gib_hour: 0.00014,
        }
    }
}

/// The cost collector.
#[derive(Debug, Clone, Default)]
pub struct CostCollector {
    pub prices: Prices,
}

impl Collector for CostCollector {
    fn name(&self) -> &'static str {
        "cost"
    }

    fn collect(&mut self, out: &mut Emitter, f: &mut NodeFacts) -> Result<(), CollectError> {
        let p = &self.prices;
        let used = |total: Option<f64>, avail: Option<f64>| match (total, avail) {
            (Some(t), Some(a)) if t > 0.0 => Some(((t - a) / t).clamp(0.0, 1.0)),
            _ => None,
        };
        let rows = [
            ("cpu", f.cpu_cores.map(|c| c * p.cpu_core_hour), f.cpu_busy),
            (
                "memory",
                f.memory_total_bytes.map(|b| b / GIB * p.memory_gib_hour),
                used(f.memory_total_bytes, f.memory_available_bytes),
            ),
            ("gpu", f.gpu_count.map(|n| n * p.gpu_hour), f.gpu_busy),
            (
                "storage",
                f.storage_total_bytes.map(|b| b / GIB * p.storage_gib_hour),
                used(f.storage_total_bytes, f.storage_available_bytes),
            ),
        ];
        let mut any = false;
        for (resource, cost, share) in rows {
            if let Some(c) = cost {
                out.set(&NODE_HOURLY_COST, &[resource], c);
                any = true;
            }
            if let Some(s) = share {
                out.set(&NODE_RESOURCE_USED, &[resource], s);
            }
        }
        if any {
            Ok(())
        } else {
            Err(CollectError(
                "no resource facts: enable the cpu, memory or filesystem collectors".into(),
            ))
        }
    }
}
