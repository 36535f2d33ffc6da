//! Network interface traffic from `/proc/1/net/dev` (the host's, with hostPID) or
//! `/proc/net/dev`, skipping virtual pod interfaces.

use std::path::{Path, PathBuf};

use regex_lite::Regex;
use tars_telemetry::catalog::{NODE_NET_RX, NODE_NET_TX};

use super::{CollectError, Collector, NodeFacts, read};
use crate::Emitter;

/// Interfaces skipped by default: loopback, and the per-pod and overlay devices CNIs
/// create (one per pod: they would make the series count follow the pod count).
pub const DEFAULT_IGNORE: &str = r"^(lo|veth.*|cali.*|flannel.*|cni.*|docker.*|br-.*|virbr.*|tunl.*|vxlan.*|genev_sys.*|kube-ipvs.*|nodelocaldns|lxc.*|gke.*|eni.*)$";

/// One interface: (name, bytes received, bytes sent).
pub fn parse_net_dev(text: &str) -> Vec<(String, f64, f64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<&str> = rest.split_ascii_whitespace().collect();
            if f.len() < 9 {
                return None;
            }
            // Kernel counters are unsigned: a line that does not parse as one is corrupt.
            Some((
                name.trim().to_string(),
                f[0].parse::<u64>().ok()? as f64,
                f[8].parse::<u64>().ok()? as f64,
            ))
        })
        .collect()
}

/// The network collector.
#[derive(Debug)]
pub struct NetworkCollector {
    procfs: PathBuf,
    ignore: Regex,
}

impl NetworkCollector {
    /// `ignore` is a regular expression of interface names to skip.
    pub fn new(procfs: impl AsRef<Path>, ignore: &str) -> Result<Self, CollectError> {
        Ok(NetworkCollector {
            procfs: procfs.as_ref().to_path_buf(),
            ignore: Regex::new(ignore)
                .map_err(|e| CollectError(format!("interface pattern {ignore:?}: {e}")))?,
        })
    }
}

impl Collector for NetworkCollector {
    fn name(&self) -> &'static str {
        "network"
    }

    fn collect(&mut self, out: &mut Emitter, _: &mut NodeFacts) -> Result<(), CollectError> {
        // /proc/net/dev shows the reader's network namespace; with hostPID, PID 1's is the
        // host's, so a pod without hostNetwork still sees the node's interfaces.
        let text =
            read(&self.procfs.join("1/net/dev")).or_else(|_| read(&self.procfs.join("net/dev")))?;
        for (iface, rx, tx) in parse_net_dev(&text) {
            if !self.ignore.is_match(&iface) {
                out.set(&NODE_NET_RX, &[&iface], rx);
                out.set(&NODE_NET_TX, &[&iface], tx);
            }
        }
        Ok(())
    }
}
