//! The GPU collector through the real NVML ABI: the agent binary loads a fake
//! libnvidia-ml (`test-support/fake-nvml`: the symbols nvml-wrapper resolves, with NVML's
//! own types and error codes) that answers from a scenario file, and is scraped over HTTP
//! on 127.0.0.1. No GPU needed, so these run on every CI run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fake library cargo built beside this test (a dev-dependency).
fn fake_library() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let lib = deps.join("libtars_fake_nvml.so");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tars-fake-nvml-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// How the agent finds the library.
enum Load {
    /// As `libnvidia-ml.so.1` on the library path, as the NVIDIA container toolkit puts it.
    LibraryPath(PathBuf),
    /// Through `--nvml-library`.
    Option(PathBuf),
}

struct AgentUnderTest {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl AgentUnderTest {
    fn start(name: &str, scenario: &str, load: impl FnOnce(&Path) -> Load, extra: &[&str]) -> Self {
        let dir = temp_dir(name);
        let scenario_path = dir.join("scenario.json");
        std::fs::write(&scenario_path, scenario).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tars-agent"));
        cmd.args(["--listen", "127.0.0.1:0", "--interval", "0.1"])
            .args([
                "--collector-timeout",
                "0.5",
                "--probe-timeout",
                "0.2",
                "--gpu-retry",
                "0.1",
            ])
            .arg("--procfs")
            .arg(fixtures().join("proc"))
            .arg("--pod-logs")
            .arg(fixtures().join("pods"))
            .env(tars_fake_nvml::SCENARIO_ENV, &scenario_path)
            .env_remove("TARS_AGENT_CONFIG")
            .env_remove("LD_LIBRARY_PATH")
            .stderr(Stdio::piped());
        if !extra.contains(&"--collectors") {
            cmd.args(["--collectors", "gpu"]);
        }
        cmd.args(extra);
        match load(&dir) {
            Load::LibraryPath(p) => {
                cmd.env("LD_LIBRARY_PATH", p);
            }
            Load::Option(p) => {
                cmd.arg("--nvml-library").arg(p);
            }
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("agent exited early").unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || {
            lines
                .map_while(Result::ok)
                .for_each(|l| eprintln!("agent: {l}"))
        });
        let agent = AgentUnderTest { child, addr, dir };
        // Ready once the first collection is whole (a scrape during it may show a
        // collector's series before the agent's verdict on that run).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.get("/readyz").0 {
            assert!(Instant::now() < deadline, "never ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn get(&self, path: &str) -> (bool, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let ok = raw.starts_with("HTTP/1.1 200");
        (
            ok,
            raw.split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default(),
        )
    }

    fn scrape(&self) -> String {
        self.get("/metrics").1
    }

    /// Scrapes until `pred` holds (10 s at most); the last body either way.
    fn scrape_until(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let body = self.scrape();
            if pred(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "never {what}:\n{body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentUnderTest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The library where the loader looks for the driver's: `<dir>/lib/libnvidia-ml.so.1`.
fn on_library_path(dir: &Path) -> Load {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(fake_library(), lib.join("libnvidia-ml.so.1")).unwrap();
    Load::LibraryPath(lib)
}

/// The value of the sample `series` (name with labels, exactly), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

const H100: &str = r#"{
  "uuid": "GPU-11111111-2222-3333-4444-555555555555",
  "name": "NVIDIA H100 80GB HBM3",
  "memory_total": 85899345920,
  "memory_used": [1073741824, 4294967296],
  "utilization": [10, 90],
  "temperature": [41, 63],
  "power_mw": [120000, 650500],
  "energy_mj": [5000000, 9000000],
  "clocks_mhz": {"graphics": 1980, "sm": 1980, "memory": 2619},
  "throttle_reasons": 1,
  "ecc": [3, 0],
  "processes": [{"pid": 4242, "memory": 1500000000}, {"pid": 4343, "memory": 500000000}, {"pid": 999999, "memory": 7}],
  "process_utilization": [{"pid": 4242, "sm": 35}, {"pid": 4343, "sm": 15}, {"pid": 999999, "sm": 40}]
}"#;

fn a100_mig() -> String {
    let inst = |i: u32| {
        format!(
            r#"{{"uuid": "MIG-aaaaaaaa-0000-0000-0000-00000000000{i}", "name": "NVIDIA A100-SXM4-40GB MIG 1g.5gb",
                "memory_total": 5368709120, "memory_used": [{}], "utilization": [{}]}}"#,
            (i + 1) * 1_000_000_000,
            20 * (i + 1)
        )
    };
    format!(
        r#"{{"uuid": "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "name": "NVIDIA A100-SXM4-40GB",
            "memory_total": 42949672960, "mig": [{}, {}]}}"#,
        inst(0),
        inst(1)
    )
}

const H: &str =
    r#"gpu_id="0",uuid="GPU-11111111-2222-3333-4444-555555555555",name="NVIDIA H100 80GB HBM3""#;

#[test]
fn every_gpu_family_is_read_through_the_nvml_abi() {
    let scenario = format!(r#"{{"devices": [{H100}, {}]}}"#, a100_mig());
    let agent = AgentUnderTest::start("all", &scenario, on_library_path, &[]);
    // Readings change over time: the second (and last) reading of each list shows.
    let text = agent.scrape_until("the second reading", |t| {
        value(t, &format!("tars_gpu_utilization_percent{{{H}}}")) == Some(90.0)
    });
    let v = |family: &str, extra: &str| value(&text, &format!("{family}{{{H}{extra}}}"));
    assert_eq!(v("tars_gpu_memory_used_bytes", ""), Some(4294967296.0));
    assert_eq!(v("tars_gpu_memory_total_bytes", ""), Some(85899345920.0));
    assert_eq!(v("tars_gpu_temperature_celsius", ""), Some(63.0));
    assert_eq!(
        v("tars_gpu_power_watts", ""),
        Some(650.5),
        "milliwatts to watts"
    );
    assert_eq!(
        v("tars_gpu_energy_joules_total", ""),
        Some(9000.0),
        "millijoules to joules"
    );
    for clock in ["graphics", "sm"] {
        assert_eq!(
            v("tars_gpu_clock_hertz", &format!(",clock=\"{clock}\"")),
            Some(1.98e9)
        );
    }
    assert_eq!(
        v("tars_gpu_clock_hertz", ",clock=\"memory\""),
        Some(2.619e9)
    );
    assert_eq!(v("tars_gpu_throttled", ",reason=\"gpu_idle\""), Some(1.0));
    assert_eq!(
        v("tars_gpu_throttled", ",reason=\"hw_slowdown\""),
        Some(0.0)
    );
    assert_eq!(
        v("tars_gpu_ecc_errors_total", ",type=\"corrected\""),
        Some(3.0)
    );
    assert_eq!(
        v("tars_gpu_ecc_errors_total", ",type=\"uncorrected\""),
        Some(0.0)
    );
    // Two processes of one pod (two containers) share the GPU; a pid of no pod is left out.
    assert_eq!(
        value(
            &text,
            r#"tars_gpu_pod_memory_used_bytes{gpu_id="0",namespace="rag",pod="tars-backend-7d9f",container=""}"#
        ),
        Some(2.0e9),
        "{text}"
    );
    // And its share of the GPU's time, from the processes' own samples: 35 + 15, not the
    // device's 90, and nothing of the pid that belongs to no pod.
    assert_eq!(
        value(
            &text,
            r#"tars_gpu_pod_utilization_percent{gpu_id="0",namespace="rag",pod="tars-backend-7d9f",container=""}"#
        ),
        Some(50.0),
        "{text}"
    );
    // The MIG-partitioned GPU: each instance a GPU of its own, `N/M`, with no per-process
    // samples (NVML has none for MIG): no per-pod utilization rather than a copy.
    assert!(
        !text.contains(r#"tars_gpu_pod_utilization_percent{gpu_id="1/"#),
        "{text}"
    );
    for (m, used) in [(0, 1e9), (1, 2e9)] {
        let mig = format!(
            r#"gpu_id="1/{m}",uuid="MIG-aaaaaaaa-0000-0000-0000-00000000000{m}",name="NVIDIA A100-SXM4-40GB MIG 1g.5gb""#
        );
        assert_eq!(
            value(&text, &format!("tars_gpu_memory_used_bytes{{{mig}}}")),
            Some(used),
            "{text}"
        );
        assert_eq!(
            value(&text, &format!("tars_gpu_utilization_percent{{{mig}}}")),
            Some(20.0 * (m as f64 + 1.0))
        );
    }
    assert!(
        !text.contains("gpu_id=\"1\""),
        "the partitioned GPU itself is not a device: {text}"
    );
    assert_eq!(value(&text, "tars_gpu_devices"), Some(3.0));
    assert_eq!(
        value(&text, "tars_agent_collector_up{collector=\"gpu\"}"),
        Some(1.0)
    );
}

#[test]
fn unsupported_fields_are_omitted_never_zero() {
    // A consumer or older GPU: no power reading, no temperature, no ECC, no clocks.
    let scenario = r#"{"devices": [{"uuid": "GPU-t4", "name": "Tesla T4", "memory_total": 16106127360,
        "memory_used": [1024], "utilization": [5], "errors": {"power": "NOT_SUPPORTED", "energy": "NOT_SUPPORTED"}}]}"#;
    let agent = AgentUnderTest::start(
        "unsupported",
        scenario,
        |_| Load::Option(fake_library()),
        &[],
    );
    let text = agent.scrape_until("the device", |t| t.contains("tars_gpu_memory_used_bytes{"));
    for absent in [
        "tars_gpu_power_watts{",
        "tars_gpu_energy_joules_total{",
        "tars_gpu_temperature_celsius{",
        "tars_gpu_ecc_errors_total{",
        "tars_gpu_clock_hertz{",
        "tars_gpu_throttled{",
    ] {
        assert!(
            !text.contains(absent),
            "{absent} exported for an unsupported field:\n{text}"
        );
    }
    assert_eq!(
        value(
            &text,
            r#"tars_gpu_utilization_percent{gpu_id="0",uuid="GPU-t4",name="Tesla T4"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        value(&text, "tars_agent_collector_up{collector=\"gpu\"}"),
        Some(1.0)
    );
}

#[test]
fn a_gpu_lost_mid_run_drops_its_series_and_the_collector_says_so() {
    let lost = r#"{"uuid": "GPU-lost", "name": "NVIDIA L4", "memory_total": 24000000000,
        "memory_used": [1], "utilization": [50], "lost_from": 15}"#;
    let scenario = format!(r#"{{"devices": [{H100}, {lost}]}}"#);
    let agent = AgentUnderTest::start("lost", &scenario, on_library_path, &[]);
    let before = agent.scrape_until("both GPUs", |t| t.contains("uuid=\"GPU-lost\""));
    assert_eq!(
        value(&before, "tars_agent_collector_up{collector=\"gpu\"}"),
        Some(1.0),
        "{before}"
    );
    let after = agent.scrape_until("the lost GPU dropped", |t| {
        !t.contains("uuid=\"GPU-lost\"")
            && t.contains("tars_agent_collector_up{collector=\"gpu\"} 0")
    });
    // The other GPU goes on being read; the lost one still counts as installed.
    assert!(
        after.contains(&format!("tars_gpu_memory_used_bytes{{{H}}}")),
        "{after}"
    );
    assert_eq!(value(&after, "tars_gpu_devices"), Some(2.0));
}

#[test]
fn a_driver_mismatch_is_a_failure_and_no_driver_is_no_gpu() {
    let mismatch = AgentUnderTest::start(
        "mismatch",
        r#"{"init": "LIB_RM_VERSION_MISMATCH", "devices": []}"#,
        on_library_path,
        &[],
    );
    let text = mismatch.scrape_until("down", |t| {
        t.contains("tars_agent_collector_up{collector=\"gpu\"} 0")
    });
    assert!(!text.contains("tars_gpu_devices"), "{text}");
    let absent = AgentUnderTest::start(
        "not-loaded",
        r#"{"init": "DRIVER_NOT_LOADED", "devices": []}"#,
        on_library_path,
        &[],
    );
    let text = absent.scrape_until("up with no GPU", |t| {
        t.contains("tars_agent_collector_up{collector=\"gpu\"} 1")
    });
    assert_eq!(value(&text, "tars_gpu_devices"), Some(0.0), "{text}");
}

/// A copy of the fake library as an older driver is: `symbol` absent from its dynamic
/// symbol table (renamed in place, the same length, so that nothing else moves).
fn without_symbol(dir: &Path, symbol: &str) -> Load {
    let mut bytes = std::fs::read(fake_library()).unwrap();
    let name = format!("{symbol}\0").into_bytes();
    let mut renamed = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..]
        .windows(name.len())
        .position(|w| w == name.as_slice())
    {
        bytes[at + i] = b'x';
        renamed += 1;
        at += i + name.len();
    }
    assert!(renamed > 0, "{symbol} not found in the library");
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("libnvidia-ml.so.1"), bytes).unwrap();
    Load::LibraryPath(lib)
}

#[test]
fn a_symbol_missing_from_an_old_driver_omits_what_it_reads() {
    let scenario = format!(r#"{{"devices": [{H100}]}}"#);
    let agent = AgentUnderTest::start(
        "old-driver",
        &scenario,
        |d| without_symbol(d, "nvmlDeviceGetTotalEnergyConsumption"),
        &[],
    );
    let text = agent.scrape_until("the device", |t| t.contains("tars_gpu_memory_used_bytes{"));
    assert!(!text.contains("tars_gpu_energy_joules_total{"), "{text}");
    assert!(text.contains("tars_gpu_power_watts{"), "{text}");
    assert_eq!(
        value(&text, "tars_agent_collector_up{collector=\"gpu\"}"),
        Some(1.0)
    );
}

#[test]
fn a_blocking_driver_call_costs_the_gpu_collector_its_deadline_only() {
    let hung = r#"{"uuid": "GPU-hung", "name": "NVIDIA H100", "memory_total": 1, "memory_used": [1],
        "temperature": [40], "block": ["temperature"]}"#;
    let scenario = format!(r#"{{"devices": [{hung}]}}"#);
    let agent = AgentUnderTest::start(
        "blocked",
        &scenario,
        on_library_path,
        &["--collectors", "gpu,memory"],
    );
    let started = Instant::now();
    let text = agent.scrape_until("the gpu collector past its deadline", |t| {
        t.contains("tars_agent_collector_up{collector=\"gpu\"} 0")
    });
    assert!(started.elapsed() < Duration::from_secs(5));
    // The other collector goes on, and every scrape answers at once.
    for _ in 0..5 {
        let t0 = Instant::now();
        let text = agent.scrape();
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(
            text.contains("tars_agent_collector_up{collector=\"memory\"} 1"),
            "{text}"
        );
        assert!(text.contains("tars_node_memory_"), "{text}");
    }
    assert!(!text.contains("uuid=\"GPU-hung\""), "{text}");
}

/// The shipped nodes dashboard's queries that read GPU families, its variables set to
/// "everything".
fn gpu_panel_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in tars_deploy_contract::sources::dashboards() {
        for t in d.targets() {
            if !t.expr.contains("tars_gpu_") {
                continue;
            }
            let q = t
                .expr
                .replace("$node", ".*")
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s");
            out.push((t.panel, q));
        }
    }
    out
}

#[test]
fn the_gpu_panels_and_alerts_answer_in_prometheus_from_the_driver() {
    let Some(prometheus) = tars_test_support::tool("prometheus", &[]) else {
        return;
    };
    // A GPU past both GPU alerts' thresholds (utilization > 95, temperature > 85).
    let hot = H100
        .replace("\"utilization\": [10, 90]", "\"utilization\": [99]")
        .replace("\"temperature\": [41, 63]", "\"temperature\": [90]");
    let scenario = format!(r#"{{"devices": [{hot}, {}]}}"#, a100_mig());
    let agent = AgentUnderTest::start(
        "prometheus",
        &scenario,
        on_library_path,
        &["--collectors", "gpu,cost"],
    );
    let addr = agent.addr.parse().unwrap();
    let prom = tars_test_support::prometheus::Prometheus::start(
        &prometheus,
        "fake-nvml",
        &[tars_test_support::prometheus::Target {
            job: "tars-agent",
            addr,
            labels: &[("node", "gpu-node-1")],
            honor_labels: true,
        }],
        &[],
    );
    let panels = gpu_panel_queries();
    assert!(
        panels.len() >= 10,
        "only {} GPU panel queries",
        panels.len()
    );
    let alerts: Vec<_> = tars_deploy_contract::sources::prometheus_groups()
        .into_iter()
        .flat_map(|g| g.rules)
        .filter(|r| {
            r.kind == tars_deploy_contract::sources::RuleKind::Alert && r.expr.contains("tars_gpu_")
        })
        .collect();
    assert!(alerts.len() >= 2, "{alerts:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let mut missing: Vec<String> = panels
            .iter()
            .filter(|(_, q)| prom.query(q).is_empty())
            .map(|(panel, q)| format!("panel {panel:?}: {q}"))
            .collect();
        missing.extend(
            alerts
                .iter()
                .filter(|a| prom.query(&a.expr).is_empty())
                .map(|a| format!("alert {} does not hold: {}", a.name, a.expr)),
        );
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(missing.is_empty(), "after 60 s:\n{}", missing.join("\n"));
    // The alerts name the hot GPU, not the MIG instances.
    for a in &alerts {
        let firing = prom.query(&a.expr);
        assert!(
            firing
                .iter()
                .all(|s| s["metric"]["gpu_id"] == "0" && s["metric"]["node"] == "gpu-node-1"),
            "{}: {firing:?}",
            a.name
        );
    }
}
