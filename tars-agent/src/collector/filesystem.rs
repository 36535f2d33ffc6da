//! Filesystem size and free space: the host's mount table from procfs and `statvfs` of
//! each mount point.
//!
//! In a container, `/proc/1/mounts` (with hostPID) is the host's table, and the host's
//! root is mounted at `--rootfs` (e.g. `/host`) so its mount points can be reached. This
//! replaced sysinfo's `Disks`, which lists the agent's own mount namespace and cost about
//! three times as much per collection (docs/BENCHMARKS.md).

use std::path::{Path, PathBuf};

use tars_telemetry::catalog::{NODE_FS_AVAILABLE, NODE_FS_SIZE};

use super::{CollectError, Collector, NodeFacts, read};
use crate::Emitter;

/// Pseudo and per-container filesystems: not the node's storage.
const IGNORED_FSTYPES: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "overlay",
    "squashfs",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "nsfs",
    "autofs",
    "fuse.lxcfs",
    "devpts",
    "mqueue",
    "tracefs",
    "debugfs",
    "securityfs",
    "ramfs",
    "bpf",
    "pstore",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "binfmt_misc",
    "efivarfs",
    "rpc_pipefs",
    "shm",
    "nfsd",
    "selinuxfs",
];
/// Mount points of pod volumes and runtime internals: one per pod, not node storage.
const IGNORED_MOUNT_PREFIXES: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/run/containerd",
    "/run/k3s",
    "/var/lib/kubelet/pods",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/snap",
];

/// One mount: (device, mount point, fstype).
pub fn parse_mounts(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_ascii_whitespace();
            Some((
                unescape(f.next()?),
                unescape(f.next()?),
                f.next()?.to_string(),
            ))
        })
        .collect()
}

/// /proc/mounts writes space, tab, newline and backslash as octal escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn wanted(mount: &str, fstype: &str) -> bool {
    !IGNORED_FSTYPES.contains(&fstype)
        && !IGNORED_MOUNT_PREFIXES
            .iter()
            .any(|p| mount == *p || mount.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// The filesystem collector.
#[derive(Debug)]
pub struct FilesystemCollector {
    procfs: PathBuf,
    rootfs: PathBuf,
}

impl FilesystemCollector {
    /// `rootfs` is where the host's root is mounted (`/` outside a container).
    pub fn new(procfs: impl AsRef<Path>, rootfs: impl AsRef<Path>) -> Self {
        FilesystemCollector {
            procfs: procfs.as_ref().to_path_buf(),
            rootfs: rootfs.as_ref().to_path_buf(),
        }
    }
}

impl Collector for FilesystemCollector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&mut self, out: &mut Emitter, facts: &mut NodeFacts) -> Result<(), CollectError> {
        let text = read(&self.procfs.join("1/mounts"))
            .or_else(|_| read(&self.procfs.join("self/mounts")))?;
        let (mut size, mut avail) = (0.0, 0.0);
        let mut seen_devices = std::collections::HashSet::new();
        let mut seen_mounts = std::collections::HashSet::new();
        let mut unreachable = None;
        for (device, mount, fstype) in parse_mounts(&text) {
            // A later mount on the same point hides the earlier one.
            if !wanted(&mount, &fstype) || !seen_mounts.insert(mount.clone()) {
                continue;
            }
            let path = self.rootfs.join(mount.trim_start_matches('/'));
            // An unreachable mount (stale NFS, no permission) is skipped, not fatal.
            let st = match rustix::fs::statvfs(&path) {
                Ok(st) => st,
                Err(e) => {
                    unreachable.get_or_insert(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let total = st.f_blocks as f64 * st.f_frsize as f64;
            let free = st.f_bavail as f64 * st.f_frsize as f64;
            let labels = [device.as_str(), mount.as_str(), fstype.as_str()];
            out.set(&NODE_FS_SIZE, &labels, total);
            out.set(&NODE_FS_AVAILABLE, &labels, free);
            // A device mounted twice (bind mounts) counts once in the node's storage.
            if seen_devices.insert(device) {
                size += total;
                avail += free;
            }
        }
        // Not one mount point reachable: the host's root is not where rootfs says.
        if seen_devices.is_empty()
            && let Some(first) = unreachable
        {
            return Err(CollectError(format!(
                "no mount point reachable under {} (is the host's / mounted there?): {first}",
                self.rootfs.display()
            )));
        }
        facts.storage_total_bytes = Some(size);
        facts.storage_available_bytes = Some(avail);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table() {
        let m = parse_mounts("/dev/vda1 / ext4 rw 0 0\n/dev/sdb1 /mnt/my\\040data xfs rw 0 0\n");
        assert_eq!(
            m[1],
            ("/dev/sdb1".into(), "/mnt/my data".into(), "xfs".into())
        );
        assert!(wanted("/", "ext4"));
        assert!(!wanted("/var/lib/kubelet/pods/abc/volumes/x", "ext4"));
        assert!(!wanted("/run", "tmpfs"));
        assert!(wanted("/devdata", "ext4"));
    }
}
