//! The `rag_demo` binary itself: its flags, its request rate, and a clean exit (spans
//! sent, status 0) on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The rag_demo binary of this build, built first: `cargo test` of one test target does
/// not build the examples.
fn rag_demo() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| tars_test_support::example_binary("tars-examples", "rag_demo"))
        .clone()
}

fn run(args: &[&str]) -> Output {
    Command::new(rag_demo())
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_exits_0_and_bad_flags_exit_2_with_a_clear_message() {
    for flag in ["--help", "-h"] {
        let o = run(&[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("usage:"));
    }
    for args in [
        &["--bogus"][..],
        &["--bogus", "1"],
        &["--rate", "1", "--nope"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.starts_with("unknown flag --"), "{args:?}: {err}");
    }
    let o = run(&["--rate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("--rate needs a value"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--rate", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("must be above 0"), "{}", stderr(&o));
}

/// "done after N requests", from the demo's last lines.
fn requests_made(err: &str) -> u64 {
    err.lines()
        .find_map(|l| l.strip_prefix("rag_demo: done after "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in:\n{err}"))
}

#[test]
fn a_rate_below_5_is_kept() {
    // 2 requests/s for 2 s: about 4 (a step at 0, 0.5, ... 1.5 s). Before, any rate
    // under 5 ran at 5/s.
    let o = run(&["--listen", "127.0.0.1:0", "--rate", "2", "--duration", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let n = requests_made(&err);
    assert!(
        (2..=6).contains(&n),
        "{n} requests at --rate 2 for 2 s\n{err}"
    );
}

/// Starts the demo on a free port, with `env`, and waits until it serves /metrics.
fn start(env: &[(&str, String)]) -> (Child, SocketAddr, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(rag_demo());
    cmd.args(["--listen", "127.0.0.1:0", "--rate", "50"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // Every stderr line goes to the channel; the address comes from the first ones.
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("rag_demo did not say where it serves");
        if let Some(rest) = line.strip_prefix("rag_demo: serving http://") {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    (child, addr, rx)
}

fn metrics(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Sends `signal` and waits (at most 20 s) for the exit; returns the status code and
/// the rest of stderr.
fn signal_and_wait(
    child: &mut Child,
    signal: &str,
    rx: &std::sync::mpsc::Receiver<String>,
) -> (Option<i32>, String) {
    let sent = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {}", child.id())])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rag_demo still running 20 s after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(100));
    let rest: Vec<String> = rx.try_iter().collect();
    (status.code(), rest.join("\n"))
}

#[test]
fn sigterm_and_sigint_run_the_shutdown_path_and_exit_0() {
    for signal in ["TERM", "INT"] {
        let (mut child, addr, rx) = start(&[]);
        assert!(metrics(addr).starts_with("HTTP/1.1 200"));
        let (code, err) = signal_and_wait(&mut child, signal, &rx);
        assert_eq!(code, Some(0), "SIG{signal}: {err}");
        assert!(err.contains("rag_demo: done after"), "SIG{signal}: {err}");
    }
}

/// With traces on, the spans queued when SIGTERM comes are sent before the exit.
#[test]
fn sigterm_sends_queued_spans() {
    let Some(python) = python_with_otlp() else {
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = std::env::temp_dir().join(format!("rag-demo-spans-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let mut receiver = Command::new(python)
        .arg(root.join("scripts/otlp_receiver.py"))
        .args(["--out", out.to_str().unwrap()])
        .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(receiver.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let ports: serde_json::Value = serde_json::from_str(&first).unwrap();
    let endpoint = format!("http://{}", ports["grpc"].as_str().unwrap());

    // A long batch delay, so that spans are still queued when the signal comes.
    let (mut child, addr, rx) = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000".into()),
        ("OTEL_TRACES_SAMPLER", "always_on".into()),
    ]);
    assert!(metrics(addr).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(500));
    let (code, err) = signal_and_wait(&mut child, "TERM", &rx);
    let _ = receiver.kill();
    let _ = receiver.wait();
    let spans = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    assert_eq!(code, Some(0), "{err}");
    // "rag_demo: N spans exported, M dropped"
    let exported: u64 = err
        .lines()
        .find(|l| l.contains(" spans exported"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no export count in:\n{err}"));
    assert!(exported > 0, "{err}");
    assert_eq!(
        spans.lines().filter(|l| !l.trim().is_empty()).count() as u64,
        exported,
        "the receiver got other than the spans exported\n{err}"
    );
}

fn python_with_otlp() -> Option<PathBuf> {
    tars_test_support::python_with(
        &[
            "grpc",
            "opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc",
        ],
        "python3 with opentelemetry-proto and grpcio",
    )
}
