//! Filesystem size and free space, through sysinfo (statvfs of each mount).

use sysinfo::Disks;
use tars_telemetry::catalog::{NODE_FS_AVAILABLE, NODE_FS_SIZE};

use super::{CollectError, Collector, NodeFacts};
use crate::Emitter;

/// Pseudo and per-container filesystems: not the node's storage.
const IGNORED_FSTYPES: &[&str] = &[
    "tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs", "cgroup", "cgroup2", "nsfs",
    "autofs", "fuse.lxcfs", "devpts", "mqueue", "tracefs", "debugfs", "securityfs", "ramfs",
];

/// The filesystem collector.
pub struct FilesystemCollector {
    /// Opened on first use: sysinfo can fail to open its sources.
    disks: Option<Disks>,
}

impl std::fmt::Debug for FilesystemCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesystemCollector").finish_non_exhaustive()
    }
}

impl Default for FilesystemCollector {
    fn default() -> Self {
        FilesystemCollector { disks: None }
    }
}

impl Collector for FilesystemCollector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&mut self, out: &mut Emitter, facts: &mut NodeFacts) -> Result<(), CollectError> {
        if self.disks.is_none() {
            self.disks = Some(Disks::new().map_err(|e| CollectError(format!("disks: {e}")))?);
        }
        let disks = self.disks.as_mut().expect("set above");
        disks.refresh(true);
        let (mut size, mut avail) = (0.0, 0.0);
        let mut seen_devices = std::collections::HashSet::new();
        for d in &*disks {
            let fstype = d.file_system().to_string_lossy();
            if IGNORED_FSTYPES.contains(&fstype.as_ref()) {
                continue;
            }
            let device = d.name().to_string_lossy();
            let mount = d.mount_point().to_string_lossy();
            let labels = [device.as_ref(), mount.as_ref(), fstype.as_ref()];
            out.set(&NODE_FS_SIZE, &labels, d.total_space() as f64);
            out.set(&NODE_FS_AVAILABLE, &labels, d.available_space() as f64);
            // A device mounted twice (bind mounts) counts once in the node's storage.
            if seen_devices.insert(device.to_string()) {
                size += d.total_space() as f64;
                avail += d.available_space() as f64;
            }
        }
        facts.storage_total_bytes = Some(size);
        facts.storage_available_bytes = Some(avail);
        Ok(())
    }
}
