//! The gpu collector driven by recorded device readings, errors included.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tars_agent::collector::gpu::{
    DeviceReading, GpuCollector, GpuError, GpuReading, GpuSource, PodResolver,
};
use tars_agent::{Agent, Config};

type Read = Result<Vec<DeviceReading>, GpuError>;

/// Replays a script: each connect attempt and each read takes the next entry.
#[derive(Clone, Default)]
struct Script {
    connects: Arc<Mutex<VecDeque<Result<(), GpuError>>>>,
    reads: Arc<Mutex<VecDeque<Read>>>,
}

struct Recorded(Script);

impl GpuSource for Recorded {
    fn read(&mut self) -> Read {
        self.0
            .reads
            .lock()
            .unwrap()
            .pop_front()
            .expect("script has a reading")
    }
}

fn t4(id: &str, util: f64, pids: &[(u32, f64)]) -> GpuReading {
    GpuReading {
        id: id.into(),
        uuid: format!("GPU-{id}-uuid"),
        name: "Tesla T4".into(),
        utilization_percent: Some(util),
        memory_used_bytes: Some(2.0e9),
        memory_total_bytes: Some(16.0e9),
        temperature_celsius: Some(64.0),
        power_watts: Some(31.5),
        energy_joules: Some(123456.789),
        clocks: vec![("sm", 1.59e9)],
        throttle_reasons: vec![("sw_thermal", false), ("hw_slowdown", true)],
        ecc_errors: Some((3.0, 0.0)),
        processes: pids.to_vec(),
        process_utilization: Vec::new(),
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn collector(script: &Script) -> GpuCollector {
    let s = script.clone();
    let pods = PodResolver::new(fixtures().join("proc"), fixtures().join("pods"), false);
    GpuCollector::new(
        Box::new(move || {
            s.connects
                .lock()
                .unwrap()
                .pop_front()
                .expect("script has a connect")?;
            Ok(Box::new(Recorded(s.clone())) as Box<dyn GpuSource>)
        }),
        // Retry on every run, so the test needs no sleeping.
        Duration::ZERO,
        pods,
    )
}

/// Whether any GPU sample is exported (self-metrics name GPU families in labels).
fn has_gpu_samples(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("tars_gpu_"))
}

/// Whether any per-device GPU sample is exported.
fn has_device_samples(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("tars_gpu_") && !l.starts_with("tars_gpu_devices "))
}

/// Runs `agent` once and returns its exposition.
fn run(agent: &mut Agent) -> String {
    agent.collect_once();
    agent.render()
}

#[test]
fn a_node_without_a_driver_then_with_gpus_then_a_lost_gpu() {
    let script = Script::default();
    let no_driver =
        GpuError::NoGpu("NVML: libnvidia-ml.so.1: cannot open shared object file".into());
    {
        let mut c = script.connects.lock().unwrap();
        c.push_back(Err(no_driver.clone()));
        c.push_back(Err(no_driver.clone()));
        c.push_back(Ok(()));
        let mut r = script.reads.lock().unwrap();
        r.push_back(Ok(vec![
            Ok(t4("0", 97.0, &[(4242, 1.5e9), (4343, 0.5e9)])),
            Ok(t4("1", 10.0, &[])),
        ]));
        r.push_back(Ok(vec![
            Ok(t4("0", 50.0, &[])),
            Err(("1".into(), GpuError::Failed("GPU is lost".into()))),
        ]));
        r.push_back(Ok(vec![
            Ok(t4("0", 50.0, &[])),
            Err(("1".into(), GpuError::Failed("GPU is lost".into()))),
        ]));
        r.push_back(Err(GpuError::Failed("driver unloaded".into())));
    }
    let gpu = collector(&script);
    let mut agent = Agent::new(&Config::default());
    agent.add(Box::new(gpu));

    // No driver: a normal state. The collector is up, counts no error and says there
    // are no GPUs; no device series.
    for _ in 0..2 {
        let text = run(&mut agent);
        assert!(
            text.contains("tars_agent_collector_up{collector=\"gpu\"} 1"),
            "{text}"
        );
        assert!(text.contains("tars_agent_collector_errors_total{collector=\"gpu\"} 0"));
        assert!(text.contains("tars_gpu_devices 0\n"), "{text}");
        assert!(!has_device_samples(&text));
    }

    // The driver appears: two GPUs, every family, GPU memory per pod.
    let text = run(&mut agent);
    assert!(
        text.contains("tars_agent_collector_up{collector=\"gpu\"} 1"),
        "{text}"
    );
    let l0 = r#"gpu_id="0",uuid="GPU-0-uuid",name="Tesla T4""#;
    for line in [
        "tars_gpu_devices 2\n".to_string(),
        format!("tars_gpu_utilization_percent{{{l0}}} 97"),
        format!("tars_gpu_memory_used_bytes{{{l0}}} 2000000000"),
        format!("tars_gpu_memory_total_bytes{{{l0}}} 16000000000"),
        format!("tars_gpu_temperature_celsius{{{l0}}} 64"),
        format!("tars_gpu_power_watts{{{l0}}} 31.5"),
        format!("tars_gpu_energy_joules_total{{{l0}}} 123456.789"),
        format!("tars_gpu_clock_hertz{{{l0},clock=\"sm\"}} 1590000000"),
        format!("tars_gpu_throttled{{{l0},reason=\"hw_slowdown\"}} 1"),
        format!("tars_gpu_ecc_errors_total{{{l0},type=\"corrected\"}} 3"),
        // Both processes run in one pod (cgroup v2 and v1 paths): aggregated per pod.
        "tars_gpu_pod_memory_used_bytes{gpu_id=\"0\",namespace=\"rag\",pod=\"tars-backend-7d9f\",container=\"\"} 2000000000".to_string(),
        "tars_gpu_utilization_percent{gpu_id=\"1\"".to_string(),
    ] {
        assert!(text.contains(&line), "missing {line}\n{text}");
    }

    // GPU 1 is lost: its series go, GPU 0's stay, the pod series goes with its processes.
    // The driver still lists it, so it is found but unreadable: a failure.
    let text = run(&mut agent);
    assert!(!text.contains("gpu_id=\"1\""), "{text}");
    assert!(text.contains(&format!("tars_gpu_utilization_percent{{{l0}}} 50")));
    assert!(!text.contains("tars_gpu_pod_memory_used_bytes{"));
    assert!(text.contains("tars_gpu_devices 2\n"), "{text}");
    assert!(text.contains("tars_agent_collector_up{collector=\"gpu\"} 0"));
    assert!(text.contains("tars_agent_collector_errors_total{collector=\"gpu\"} 1"));
    let _ = run(&mut agent);

    // The library fails as a whole: every GPU series goes, the collector is down.
    let text = run(&mut agent);
    assert!(!has_gpu_samples(&text), "{text}");
    assert!(text.contains("tars_agent_collector_up{collector=\"gpu\"} 0"));
}

#[test]
fn one_log_line_per_change_of_state() {
    let script = Script::default();
    let e = GpuError::Failed("NVML: Insufficient Permissions".into());
    {
        let mut c = script.connects.lock().unwrap();
        for _ in 0..5 {
            c.push_back(Err(e.clone()));
        }
        c.push_back(Ok(()));
        let mut r = script.reads.lock().unwrap();
        for _ in 0..3 {
            r.push_back(Ok(vec![Ok(t4("0", 1.0, &[]))]));
        }
    }
    let mut gpu = collector(&script);
    let mut out = tars_agent::Emitter::new(tars_telemetry::Registry::default());
    let mut facts = tars_agent::NodeFacts::default();
    use tars_agent::Collector;
    for _ in 0..5 {
        assert!(gpu.collect(&mut out, &mut facts).is_err());
    }
    assert_eq!(gpu.log_lines, 1, "five failures, one state");
    for _ in 0..3 {
        gpu.collect(&mut out, &mut facts).unwrap();
    }
    assert_eq!(gpu.log_lines, 2, "then ready, once");
    assert_eq!(facts.gpu_count, Some(1.0));
}

#[test]
fn initialisation_is_retried_on_its_interval_only() {
    let script = Script::default();
    script
        .connects
        .lock()
        .unwrap()
        .push_back(Err(GpuError::Failed("NVML: Unknown Error".into())));
    let s = script.clone();
    let mut gpu = GpuCollector::new(
        Box::new(move || {
            s.connects
                .lock()
                .unwrap()
                .pop_front()
                .expect("only one attempt is allowed")?;
            unreachable!()
        }),
        Duration::from_secs(3600),
        PodResolver::new("/nonexistent", "/nonexistent", false),
    );
    let mut out = tars_agent::Emitter::new(tars_telemetry::Registry::default());
    let mut facts = tars_agent::NodeFacts::default();
    use tars_agent::Collector;
    // Ten runs within the retry interval make one attempt (a second would panic above).
    for _ in 0..10 {
        assert!(gpu.collect(&mut out, &mut facts).is_err());
    }
}

#[test]
fn a_node_without_gpus_is_a_state_not_a_failure() {
    let script = Script::default();
    {
        let mut c = script.connects.lock().unwrap();
        for _ in 0..5 {
            c.push_back(Err(GpuError::NoGpu("NVML: Driver Not Loaded".into())));
        }
    }
    let mut gpu = collector(&script);
    let mut out = tars_agent::Emitter::new(tars_telemetry::Registry::default());
    let mut facts = tars_agent::NodeFacts::default();
    use tars_agent::Collector;
    for _ in 0..5 {
        gpu.collect(&mut out, &mut facts).unwrap();
    }
    assert_eq!(gpu.log_lines, 1, "one info line, not one per run");
    assert_eq!(facts.gpu_count, Some(0.0));

    // The driver loads but finds no device: also zero GPUs, up.
    let script = Script::default();
    script.connects.lock().unwrap().push_back(Ok(()));
    script.reads.lock().unwrap().push_back(Ok(vec![]));
    let mut agent = Agent::new(&Config::default());
    agent.add(Box::new(collector(&script)));
    let text = run(&mut agent);
    assert!(text.contains("tars_gpu_devices 0\n"), "{text}");
    assert!(text.contains("tars_agent_collector_up{collector=\"gpu\"} 1"));

    // A driver that is there but fails at initialisation is a failure: down, counted, and
    // no device count (it is unknown).
    let script = Script::default();
    script
        .connects
        .lock()
        .unwrap()
        .push_back(Err(GpuError::Failed(
            "NVML: Insufficient Permissions".into(),
        )));
    let mut agent = Agent::new(&Config::default());
    agent.add(Box::new(collector(&script)));
    let text = run(&mut agent);
    assert!(
        text.contains("tars_agent_collector_up{collector=\"gpu\"} 0"),
        "{text}"
    );
    assert!(text.contains("tars_agent_collector_errors_total{collector=\"gpu\"} 1"));
    assert!(!has_gpu_samples(&text), "{text}");
}

#[test]
fn nvml_on_this_machine_is_either_usable_or_absent() {
    use tars_agent::collector::gpu::NvmlSource;
    // In CI there is no NVIDIA driver: that must read as "no GPU", never as a failure.
    match NvmlSource::open(None) {
        Ok(_) => {}
        Err(GpuError::NoGpu(why)) => eprintln!("no GPU: {why}"),
        Err(e @ GpuError::Failed(_)) => panic!("classified as a failing driver: {e}"),
    }
}
