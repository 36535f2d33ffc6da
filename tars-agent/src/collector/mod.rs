//! Collectors: one file each, as node_exporter has them.

pub mod cost;
pub mod cpu;
pub mod disk;
pub mod filesystem;
pub mod gpu;
pub mod memory;
pub mod network;

use crate::Emitter;

/// Why a collection run failed. The agent reports it as `tars_agent_collector_up 0` and
/// counts it; it logs only when a collector's state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectError(pub String);

impl std::fmt::Display for CollectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CollectError {}

impl From<std::io::Error> for CollectError {
    fn from(e: std::io::Error) -> Self {
        CollectError(e.to_string())
    }
}

/// Facts collectors share within one run, read by the cost collector (which runs last).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFacts {
    pub cpu_cores: Option<f64>,
    /// Share of CPU time not idle since the previous run, 0..1.
    pub cpu_busy: Option<f64>,
    pub memory_total_bytes: Option<f64>,
    pub memory_available_bytes: Option<f64>,
    pub gpu_count: Option<f64>,
    /// Mean GPU utilization, 0..1.
    pub gpu_busy: Option<f64>,
    pub storage_total_bytes: Option<f64>,
    pub storage_available_bytes: Option<f64>,
}

/// One source of metrics, run on the agent's interval.
pub trait Collector: Send {
    /// The `collector` label of the agent's self-metrics.
    fn name(&self) -> &'static str;
    /// Reads the source and sets its series through `out`.
    fn collect(&mut self, out: &mut Emitter, facts: &mut NodeFacts) -> Result<(), CollectError>;
}

/// Reads a file under a procfs-like root, naming the path in the error.
pub(crate) fn read(path: &std::path::Path) -> Result<String, CollectError> {
    std::fs::read_to_string(path).map_err(|e| CollectError(format!("{}: {e}", path.display())))
}
