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
    // Scrapes in steady state: host metrics served, GPU collector down on this machine
    // or up where a GPU exists, and no log line per scrape.
    let mut body = String::new();
    for _ in 0..20 {
        body = get(&addr, "/metrics").1;
    }
    assert!(
        body.contains("tars_node_cpu_seconds_total{cpu=\"total\",mode=\"user\"}"),
        "{body}"
    );
    assert!(body.contains("tars_agent_build_info{version=\"0.1.0\",node=\"node-test\"} 1"));
    assert!(body.contains("tars_agent_collector_up{collector=\"gpu\"}"));

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

#[test]
fn bad_configuration_is_refused_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_tars-agent"))
        .args(["--collectors", "cpu,gpus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown collector \"gpus\""), "{err}");

    let dir = std::env::temp_dir().join(format!("tars-agent-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("agent.toml");
    for (toml, says) in [
        (
            "interval = 15\n[prices]\ngpu_hour = -1.0\n",
            "prices.gpu_hour",
        ),
        ("intervall = 15\n", "unknown field"),
    ] {
        std::fs::write(&file, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tars-agent"))
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
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
