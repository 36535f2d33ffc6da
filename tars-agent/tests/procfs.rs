//! Host collectors against recorded procfs files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tars_agent::collector::cost::CostCollector;
use tars_agent::collector::cpu::{CpuCollector, parse_stat};
use tars_agent::collector::disk::DiskCollector;
use tars_agent::collector::memory::MemoryCollector;
use tars_agent::collector::network::{DEFAULT_IGNORE, NetworkCollector};
use tars_agent::{Agent, Config};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
}

fn agent() -> Agent {
    let p = fixtures();
    let mut a = Agent::new(&Config {
        node_name: "node-a".into(),
        ..Config::default()
    });
    a.add(Box::new(CpuCollector::new(&p)));
    a.add(Box::new(MemoryCollector::new(&p)));
    a.add(Box::new(DiskCollector::new(&p)));
    a.add(Box::new(NetworkCollector::new(&p, DEFAULT_IGNORE).unwrap()));
    a.add(Box::new(CostCollector::default()));
    a
}

#[test]
fn cpu_seconds_per_core_and_total() {
    let stat = parse_stat(&std::fs::read_to_string(fixtures().join("stat")).unwrap());
    assert_eq!(stat.len(), 3);
    assert_eq!(stat[0].cpu, "total");
    assert_eq!(stat[1].cpu, "0");
    assert_eq!(stat[0].seconds[0], 101321.53);
    let mut a = agent();
    a.collect_once();
    let text = a.render();
    assert!(
        text.contains("tars_node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} 87388.73"),
        "{text}"
    );
    assert!(text.contains("tars_node_cpu_seconds_total{cpu=\"total\",mode=\"idle\"} 468284.83"));
    assert!(text.contains("tars_node_load_average{window=\"15m\"} 0.59"));
}

#[test]
fn memory_disks_and_interfaces() {
    let mut a = agent();
    a.collect_once();
    let text = a.render();
    assert!(
        text.contains("tars_node_memory_total_bytes 16694710272"),
        "{text}"
    );
    assert!(text.contains("tars_node_memory_available_bytes 8347355136"));
    // Whole disks only: no partitions, loop or device-mapper devices.
    assert!(text.contains("tars_node_disk_read_bytes_total{device=\"nvme0n1\"} 104857600"));
    assert!(text.contains("tars_node_disk_written_bytes_total{device=\"sda\"} 81920"));
    for skipped in ["nvme0n1p1", "loop0", "dm-0"] {
        assert!(
            !text.contains(&format!("device=\"{skipped}\"")),
            "{skipped} exported"
        );
    }
    // Physical interfaces only: no loopback or per-pod veth/calico devices.
    assert!(text.contains("tars_node_network_receive_bytes_total{interface=\"eth0\"} 987654321"));
    assert!(text.contains("tars_node_network_transmit_bytes_total{interface=\"ens5\"} 43"));
    for skipped in ["lo", "vethab12cd", "cali0123456789"] {
        assert!(
            !text.contains(&format!("interface=\"{skipped}\"")),
            "{skipped} exported"
        );
    }
    assert!(text.contains("tars_agent_build_info{version=\"0.1.0\",node=\"node-a\"} 1"));
    assert!(text.contains("tars_agent_collector_up{collector=\"network\"} 1"));
}

#[test]
fn cost_by_resource_at_the_default_prices() {
    let mut a = agent();
    a.collect_once();
    let text = a.render();
    // 2 cores x $0.031611.
    assert!(
        text.contains("tars_node_hourly_cost_dollars{resource=\"cpu\"} 0.063222"),
        "{text}"
    );
    // 15.55 GiB x $0.004237.
    let mem: f64 = text
        .lines()
        .find(|l| l.starts_with("tars_node_hourly_cost_dollars{resource=\"memory\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(
        (mem - 16303428.0 / 1048576.0 * 0.004237).abs() < 1e-9,
        "{mem}"
    );
    assert!(text.contains("tars_node_resource_used_ratio{resource=\"memory\"} 0.5\n"));
}

#[test]
fn a_missing_file_fails_the_collector_not_the_agent() {
    let mut a = Agent::new(&Config::default());
    a.add(Box::new(MemoryCollector::new("/nonexistent")));
    a.add(Box::new(CpuCollector::new(fixtures())));
    a.collect_once();
    let text = a.render();
    assert!(text.contains("tars_agent_collector_up{collector=\"memory\"} 0"));
    assert!(text.contains("tars_agent_collector_errors_total{collector=\"memory\"} 1"));
    assert!(text.contains("tars_agent_collector_up{collector=\"cpu\"} 1"));
}

#[test]
fn exposition_passes_promtool() {
    let Some(promtool) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    }) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is required in CI"
        );
        return;
    };
    let mut a = agent();
    a.collect_once();
    let (code, findings) =
        tars_test_support::promtool_check_metrics(&promtool, &a.render()).unwrap();
    assert!(code == Some(0) && findings.trim().is_empty(), "{findings}");
}

#[test]
fn filesystems_from_the_host_mount_table_under_rootfs() {
    use tars_agent::collector::filesystem::FilesystemCollector;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut a = Agent::new(&Config::default());
    // proc/1/mounts is the host's table; its mount points are reached under rootfs/.
    a.add(Box::new(FilesystemCollector::new(
        root.join("proc"),
        root.join("rootfs"),
    )));
    a.add(Box::new(CostCollector::default()));
    a.collect_once();
    let text = a.render();
    let sizes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tars_node_filesystem_size_bytes{"))
        .collect();
    // The node's filesystems only: no pseudo filesystems, container layers or pod
    // volumes; /data once although mounted twice; /mnt/gone (unreachable) skipped.
    assert_eq!(sizes.len(), 2, "{text}");
    assert!(sizes[0].starts_with(
        "tars_node_filesystem_size_bytes{device=\"/dev/vda1\",mountpoint=\"/\",fstype=\"ext4\"}"
    ));
    assert!(sizes[1].starts_with(
        "tars_node_filesystem_size_bytes{device=\"/dev/vdc\",mountpoint=\"/data\",fstype=\"xfs\"}"
    ));
    assert!(text.contains("tars_node_hourly_cost_dollars{resource=\"storage\"}"));
    assert!(text.contains("tars_agent_collector_up{collector=\"filesystem\"} 1"));
}

/// A copy of the recorded procfs tree in a fresh directory, for tests that alter it.
fn scratch_tree(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tars-agent-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("net")).unwrap();
    for f in ["stat", "loadavg", "meminfo", "diskstats", "net/dev"] {
        std::fs::copy(fixtures().join(f), dir.join(f)).unwrap();
    }
    dir
}

/// Runs `f` on a thread and fails the test if it has not returned within `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still blocked after {limit:?}"))
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn a_blocked_read_costs_its_collector_the_deadline_and_not_the_others() {
    let dir = scratch_tree("fifo");
    // /proc/stat is a FIFO nobody writes: opening it blocks forever.
    std::fs::remove_file(dir.join("stat")).unwrap();
    mkfifo(&dir.join("stat"));
    let mut a = Agent::new(&Config {
        collector_timeout: Duration::from_millis(300),
        ..Config::default()
    });
    a.add(Box::new(CpuCollector::new(&dir)));
    a.add(Box::new(MemoryCollector::new(&dir)));
    let (mut a, text) = within(Duration::from_secs(10), move || {
        a.collect_once();
        let text = a.render();
        (a, text)
    });
    assert!(
        text.contains("tars_agent_collector_up{collector=\"cpu\"} 0"),
        "{text}"
    );
    assert!(text.contains("tars_agent_collector_up{collector=\"memory\"} 1"));
    assert!(text.contains("tars_node_memory_total_bytes 16694710272"));
    assert!(!text.contains("tars_node_cpu_seconds_total{"));
    // The next run does not start a second stuck read: the collector is still down.
    let (mut a, text) = within(Duration::from_secs(10), move || {
        a.collect_once();
        let text = a.render();
        (a, text)
    });
    assert!(text.contains("tars_agent_collector_errors_total{collector=\"cpu\"} 2"));
    assert!(text.contains("tars_agent_collector_errors_total{collector=\"memory\"} 0"));

    // The file becomes readable (a regular file in the FIFO's place) and the stuck read
    // returns: the collector comes back with its series.
    std::fs::hard_link(dir.join("stat"), dir.join("stat.fifo")).unwrap();
    std::fs::copy(fixtures().join("stat"), dir.join("stat.new")).unwrap();
    std::fs::rename(dir.join("stat.new"), dir.join("stat")).unwrap();
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: fails rather than waits if the stuck reader were not there.
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(dir.join("stat.fifo"))
        .unwrap();
    std::io::Write::write_all(&mut w, b"cpu  1 2 3 4 5 6 7 8\n").unwrap();
    drop(w);
    let text = within(Duration::from_secs(10), move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            a.collect_once();
            let text = a.render();
            if text.contains("tars_agent_collector_up{collector=\"cpu\"} 1")
                || Instant::now() > deadline
            {
                break text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert!(
        text.contains("tars_agent_collector_up{collector=\"cpu\"} 1"),
        "{text}"
    );
    assert!(text.contains("tars_node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} 87388.73"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_counters_never_go_negative_or_backwards() {
    use tars_telemetry::catalog::NODE_DISK_READ;
    let dir = scratch_tree("corrupt");
    // Negative sector and byte counts, as a corrupt line reads.
    std::fs::write(
        dir.join("diskstats"),
        "   8       0 sda 100 0 -3 0 100 0 160 0 0 0 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("net/dev"),
        "Inter-|\n face |\n  eth0: -1536 1 0 0 0 0 0 0 -42 1 0 0 0 0 0 0\n",
    )
    .unwrap();
    let mut a = Agent::new(&Config::default());
    a.add(Box::new(DiskCollector::new(&dir)));
    a.add(Box::new(
        NetworkCollector::new(&dir, DEFAULT_IGNORE).unwrap(),
    ));
    a.collect_once();
    let text = a.render();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let v: f64 = l.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(v >= 0.0, "negative sample: {l}");
    }
    assert!(!text.contains("device=\"sda\""), "{text}");

    // Readings of a mirrored counter: invalid ones are ignored, a drop (a reset at the
    // source) continues from what was exported.
    let registry = tars_telemetry::Registry::default();
    let mut e = tars_agent::Emitter::new(registry.clone());
    for (reading, exported) in [
        (100.0, "100"),
        (-1536.0, "100"),
        (f64::NAN, "100"),
        (f64::INFINITY, "100"),
        (40.0, "140"),
        (50.0, "150"),
    ] {
        e.begin();
        e.set(&NODE_DISK_READ, &["sda"], reading);
        e.finish();
        let text = registry.render_string(tars_telemetry::Format::Prometheus);
        let line = format!("tars_node_disk_read_bytes_total{{device=\"sda\"}} {exported}\n");
        assert!(text.contains(&line), "after {reading}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_rootfs_where_no_mount_point_is_reachable_fails_the_collector() {
    use tars_agent::collector::filesystem::FilesystemCollector;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut a = Agent::new(&Config::default());
    a.add(Box::new(FilesystemCollector::new(
        root.join("proc"),
        "/nonexistent/host",
    )));
    a.collect_once();
    let text = a.render();
    assert!(
        text.contains("tars_agent_collector_up{collector=\"filesystem\"} 0"),
        "{text}"
    );
    assert!(!text.contains("tars_node_filesystem_size_bytes{"));
}
