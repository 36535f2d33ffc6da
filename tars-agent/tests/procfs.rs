//! Host collectors against recorded procfs files.

use std::path::PathBuf;

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
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(a.render().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let findings =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && findings.trim().is_empty(),
        "{findings}"
    );
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
