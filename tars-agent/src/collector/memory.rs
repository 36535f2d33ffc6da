//! Memory from `/proc/meminfo`.

use std::path::{Path, PathBuf};

use tars_telemetry::catalog::{NODE_MEMORY_AVAILABLE, NODE_MEMORY_TOTAL};

use super::{CollectError, Collector, NodeFacts, read};
use crate::Emitter;

/// Parses `MemTotal` and `MemAvailable` (kB in the file) into bytes.
pub fn parse_meminfo(text: &str) -> Option<(f64, f64)> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb: f64 = rest.split_ascii_whitespace().next()?.parse().ok()?;
            Some(kb * 1024.0)
        })
    };
    Some((field("MemTotal")?, field("MemAvailable")?))
}

/// The memory collector.
#[derive(Debug)]
pub struct MemoryCollector {
    procfs: PathBuf,
}

impl MemoryCollector {
    pub fn new(procfs: impl AsRef<Path>) -> Self {
        MemoryCollector {
            procfs: procfs.as_ref().to_path_buf(),
        }
    }
}

impl Collector for MemoryCollector {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn collect(&mut self, out: &mut Emitter, facts: &mut NodeFacts) -> Result<(), CollectError> {
        let (total, available) = parse_meminfo(&read(&self.procfs.join("meminfo"))?)
            .ok_or_else(|| CollectError("meminfo lacks MemTotal or MemAvailable".into()))?;
        out.set(&NODE_MEMORY_TOTAL, &[], total);
        out.set(&NODE_MEMORY_AVAILABLE, &[], available);
        facts.memory_total_bytes = Some(total);
        facts.memory_available_bytes = Some(available);
        Ok(())
    }
}
