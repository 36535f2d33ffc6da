//! CPU time per core and in total from `/proc/stat`, and the load average from
//! `/proc/loadavg`.

use std::path::{Path, PathBuf};

use tars_telemetry::catalog::{NODE_CPU, NODE_LOAD};

use super::{CollectError, Collector, NodeFacts, read};
use crate::Emitter;

/// Columns of a `cpu` line of /proc/stat, in order.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];
/// USER_HZ: the unit of /proc/stat on every Linux architecture the agent targets.
const TICKS_PER_SECOND: f64 = 100.0;

/// One `cpuN` (or `cpu`, the total) line: seconds per mode.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTimes {
    /// `total` for the aggregate line, else the core number.
    pub cpu: String,
    pub seconds: [f64; 8],
}

/// Parses /proc/stat's cpu lines.
pub fn parse_stat(text: &str) -> Vec<CpuTimes> {
    text.lines()
        .filter(|l| l.starts_with("cpu"))
        .filter_map(|l| {
            let mut it = l.split_ascii_whitespace();
            let name = it.next()?;
            let cpu = match name.strip_prefix("cpu")? {
                "" => "total".to_string(),
                n if n.bytes().all(|b| b.is_ascii_digit()) => n.to_string(),
                _ => return None,
            };
            let mut seconds = [0.0; 8];
            for (slot, v) in seconds.iter_mut().zip(it) {
                *slot = v.parse::<u64>().ok()? as f64 / TICKS_PER_SECOND;
            }
            Some(CpuTimes { cpu, seconds })
        })
        .collect()
}

/// Parses /proc/loadavg into the 1, 5 and 15 minute averages.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_ascii_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// The cpu collector.
#[derive(Debug)]
pub struct CpuCollector {
    procfs: PathBuf,
    /// (busy, total) seconds of the aggregate line at the previous run.
    previous: Option<(f64, f64)>,
}

impl CpuCollector {
    pub fn new(procfs: impl AsRef<Path>) -> Self {
        CpuCollector {
            procfs: procfs.as_ref().to_path_buf(),
            previous: None,
        }
    }
}

impl Collector for CpuCollector {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&mut self, out: &mut Emitter, facts: &mut NodeFacts) -> Result<(), CollectError> {
        let stat = parse_stat(&read(&self.procfs.join("stat"))?);
        if stat.is_empty() {
            return Err(CollectError("no cpu lines in /proc/stat".into()));
        }
        let mut cores = 0;
        for t in &stat {
            if t.cpu == "total" {
                let total: f64 = t.seconds.iter().sum();
                let busy = total - t.seconds[3] - t.seconds[4];
                if let Some((pb, pt)) = self.previous
                    && total > pt
                {
                    facts.cpu_busy = Some(((busy - pb) / (total - pt)).clamp(0.0, 1.0));
                }
                self.previous = Some((busy, total));
            } else {
                cores += 1;
            }
            for (mode, v) in MODES.iter().zip(t.seconds) {
                out.set(&NODE_CPU, &[&t.cpu, mode], v);
            }
        }
        facts.cpu_cores = Some(cores as f64);
        if let Some(load) = parse_loadavg(&read(&self.procfs.join("loadavg"))?) {
            for (w, v) in ["1m", "5m", "15m"].iter().zip(load) {
                out.set(&NODE_LOAD, &[w], v);
            }
        }
        Ok(())
    }
}
