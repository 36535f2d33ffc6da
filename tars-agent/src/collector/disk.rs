//! Block device IO from `/proc/diskstats`.

use std::path::{Path, PathBuf};

use tars_telemetry::catalog::{NODE_DISK_READ, NODE_DISK_WRITTEN};

use super::{CollectError, Collector, NodeFacts, read};
use crate::Emitter;

/// /proc/diskstats counts 512-byte sectors whatever the device's sector size.
const SECTOR: f64 = 512.0;

/// One device: (name, bytes read, bytes written).
pub fn parse_diskstats(text: &str) -> Vec<(String, f64, f64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_ascii_whitespace().collect();
            // major minor name reads merged sectors_read ms writes merged sectors_written ...
            if f.len() < 10 {
                return None;
            }
            // Kernel counters are unsigned: a line that does not parse as one is corrupt.
            let read = f[5].parse::<u64>().ok()? as f64;
            let written = f[9].parse::<u64>().ok()? as f64;
            Some((f[2].to_string(), read * SECTOR, written * SECTOR))
        })
        .collect()
}

/// Partitions, loop and ram devices would count the same IO twice or not at all.
fn is_whole_disk(name: &str) -> bool {
    let virtual_dev = ["loop", "ram", "zram", "dm-", "sr", "fd"];
    if virtual_dev.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        // nvme0n1 is a disk, nvme0n1p1 a partition.
        return !name
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .ends_with('p');
    }
    !name.ends_with(|c: char| c.is_ascii_digit())
}

/// The disk collector.
#[derive(Debug)]
pub struct DiskCollector {
    procfs: PathBuf,
}

impl DiskCollector {
    pub fn new(procfs: impl AsRef<Path>) -> Self {
        DiskCollector {
            procfs: procfs.as_ref().to_path_buf(),
        }
    }
}

impl Collector for DiskCollector {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn collect(&mut self, out: &mut Emitter, _: &mut NodeFacts) -> Result<(), CollectError> {
        for (dev, r, w) in parse_diskstats(&read(&self.procfs.join("diskstats"))?) {
            if is_whole_disk(&dev) {
                out.set(&NODE_DISK_READ, &[&dev], r);
                out.set(&NODE_DISK_WRITTEN, &[&dev], w);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::is_whole_disk;

    #[test]
    fn whole_disks_only() {
        for d in ["sda", "vda", "nvme0n1", "xvdb"] {
            assert!(is_whole_disk(d), "{d}");
        }
        for d in [
            "sda1",
            "vda15",
            "nvme0n1p2",
            "loop0",
            "dm-0",
            "ram3",
            "mmcblk0p1",
        ] {
            assert!(!is_whole_disk(d), "{d}");
        }
    }
}
