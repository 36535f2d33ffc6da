//! The agent binary: serves on /metrics, /healthz and /readyz, runs without a GPU, shuts
//! down on SIGTERM, and refuses bad configuration with a clear message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw)
}

#[test]
fn serves_without_a_gpu_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tars-agent"))
        .args(["--listen", "127.0.0.1:0", "--interval", "0.2"])
        .env("NODE_NAME", "node-test")
        .env_remove("TARS_AGENT_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("agent exited early").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&addr, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(&addr, "/healthz").0, 200);
    // Scrapes in steady state: host metrics served, the GPU collector up (with 0 devices
    // on a machine without a GPU), and no log line per scrape.
    let mut body = String::new();
    for _ in 0..20 {
        body = get(&addr, "/metrics").1;
    }
    assert!(
        body.contains("tars_node_cpu_seconds_total{cpu=\"total\",mode=\"user\"}"),
        "{body}"
    );
    assert!(body.contains("tars_agent_build_info{version=\"0.1.0\",node=\"node-test\"} 1"));
    assert!(
        body.contains("tars_agent_collector_up{collector=\"gpu\"} 1"),
        "{body}"
    );
    assert!(body.contains("tars_agent_collector_errors_total{collector=\"gpu\"} 0"));
    assert!(body.contains("tars_gpu_devices "), "{body}");

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let log = log.join().unwrap();
    // At most: the GPU state line (where no GPU exists) and the shutdown line; none per
    // scrape or per collection.
    assert!(log.len() <= 2, "{log:#?}");
    assert!(log.iter().any(|l| l.contains("shutting down")));
}

/// Runs the agent with `cmd`'s arguments, expecting it to refuse them: its exit code
/// and standard error. An agent that accepts them is killed after 10 s, failing the test.
fn refused(cmd: &mut Command) -> (Option<i32>, String) {
    let mut child = cmd
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env_remove("TARS_AGENT_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("accepted: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn bad_configuration_is_refused_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_tars-agent"))
        .args(["--collectors", "cpu,gpus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown collector \"gpus\""), "{err}");

    for (flags, says) in [
        (
            &["--interval", "1e-9"][..],
            "interval must be a number of seconds from 0.1 to 86400, not 0.000000001",
        ),
        (
            &["--rootfs", "/nonexistent/host"],
            "rootfs /nonexistent/host is not a directory",
        ),
        (
            &["--procfs", "/nonexistent/proc"],
            "procfs /nonexistent/proc is not a directory",
        ),
        (
            &["--probe-timeout", "5", "--collector-timeout", "2"],
            "probe_timeout (5s) must be less than collector_timeout (2s)",
        ),
        (&["--collector-timeout", "0"], "collector_timeout must be"),
    ] {
        let (code, err) = refused(Command::new(env!("CARGO_BIN_EXE_tars-agent")).args(flags));
        assert_eq!(code, Some(2), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }

    let dir = std::env::temp_dir().join(format!("tars-agent-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("agent.toml");
    for (toml, says) in [
        (
            "interval = 15\n[prices]\ngpu_hour = -1.0\n",
            "prices.gpu_hour",
        ),
        ("intervall = 15\n", "unknown field"),
        (
            "interval = 1e-9\n",
            "interval must be a number of seconds from 0.1",
        ),
        (
            "collectors = [\"filesystem\"]\nrootfs = \"/nonexistent/host\"\n",
            "rootfs /nonexistent/host is not a directory",
        ),
        ("probe_timeout = 0.001\n", "probe_timeout must be"),
    ] {
        std::fs::write(&file, toml).unwrap();
        let (code, err) = refused(
            Command::new(env!("CARGO_BIN_EXE_tars-agent"))
                .arg("--config")
                .arg(&file),
        );
        assert_eq!(code, Some(2), "{toml}: {err}");
        assert!(err.contains(says), "{toml}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_toml_file_configures_probes_and_flags_override_it() {
    use clap::Parser;
    use tars_agent::config::{Cli, Config};
    let dir = std::env::temp_dir().join(format!("tars-agent-cfg2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("agent.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\ninterval = 30\ncollectors = [\"cpu\", \"gpu\"]\n\
         [prices]\ngpu_hour = 2.5\n[probes]\nredis = \"redis:6379\"\nollama = \"http://ollama:11434\"\n",
    )
    .unwrap();
    let cli = Cli::try_parse_from([
        "tars-agent",
        "--config",
        file.to_str().unwrap(),
        "--interval",
        "5",
    ])
    .unwrap();
    let c = Config::from_cli(cli).unwrap();
    assert_eq!(c.listen, "127.0.0.1:9999");
    assert_eq!(
        c.interval,
        Duration::from_secs(5),
        "the flag wins over the file"
    );
    assert_eq!(c.collectors, ["cpu", "gpu"]);
    assert_eq!(c.prices.gpu_hour, 2.5);
    assert_eq!(
        c.prices.cpu_core_hour, 0.031611,
        "unset prices keep the defaults"
    );
    assert_eq!(c.probes.redis.as_deref(), Some("redis:6379"));
    assert_eq!(c.probes.ollama.as_deref(), Some("http://ollama:11434"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A peer on 127.0.0.1 that accepts connections and never answers, for at most 20
/// connections and 20 s.
fn silent_peer() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut held = Vec::new();
        while held.len() < 20 && Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    });
    addr
}

#[test]
fn stuck_reads_and_silent_services_never_stall_collection_or_shutdown() {
    // A procfs tree whose /proc/stat is a FIFO nobody writes.
    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc");
    let procfs = std::env::temp_dir().join(format!("tars-agent-stuck-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&procfs);
    std::fs::create_dir_all(&procfs).unwrap();
    std::fs::copy(fixtures.join("meminfo"), procfs.join("meminfo")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(procfs.join("stat"))
            .status()
            .unwrap()
            .success()
    );
    let (redis, postgres) = (silent_peer(), silent_peer());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tars-agent"))
        .args(["--listen", "127.0.0.1:0", "--interval", "0.2"])
        .args(["--collectors", "cpu,memory", "--procfs"])
        .arg(&procfs)
        .args(["--collector-timeout", "0.5", "--probe-timeout", "0.3"])
        .args(["--redis", &redis])
        .args([
            "--postgres",
            &format!("postgresql://tars@{postgres}/postgres"),
        ])
        .env_remove("TARS_AGENT_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("agent exited early").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&addr, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Several collections later: the stuck collector and the silent services are down,
    // the rest is served.
    std::thread::sleep(Duration::from_millis(1500));
    let body = get(&addr, "/metrics").1;
    for line in [
        "tars_agent_collector_up{collector=\"cpu\"} 0".to_string(),
        "tars_agent_collector_up{collector=\"memory\"} 1".to_string(),
        "tars_node_memory_total_bytes 16694710272".to_string(),
        format!("tars_probe_up{{service=\"redis\",target=\"{redis}\"}} 0"),
        format!(
            "tars_probe_up{{service=\"postgresql\",target=\"postgresql://{postgres}/postgres\"}} 0"
        ),
    ] {
        assert!(body.contains(&line), "missing {line}\n{body}");
    }
    let runs: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("tars_agent_collector_errors_total{collector=\"cpu\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(runs >= 2.0, "collection stalled after {runs} runs\n{body}");

    let stopped = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let log = log.join().unwrap();
    // One line per change of state: the stuck collector once, each probe once, the GPU
    // state (not collected here: none), the shutdown.
    let said = |what: &str| log.iter().filter(|l| l.contains(what)).count();
    assert_eq!(said("did not finish within 500ms"), 1, "{log:#?}");
    assert_eq!(said("probe: down"), 2, "{log:#?}");
    assert!(log.len() <= 4, "{log:#?}");
    let _ = std::fs::remove_dir_all(&procfs);
}
