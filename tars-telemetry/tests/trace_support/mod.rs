//! The independent OTLP receiver (scripts/otlp_receiver.py, built on the official
//! opentelemetry-proto definitions and grpcio) as a child process on 127.0.0.1, and the
//! spans it received.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common;

/// A Python interpreter with `grpc` and `opentelemetry.proto`: $TARS_PYTHON, the
/// repository's .venv, or python3. None (test skipped) outside CI when there is none.
pub fn python_with_otlp() -> Option<PathBuf> {
    tars_test_support::python_with(
        &[
            "grpc",
            "opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc",
        ],
        "python3 with opentelemetry-proto and grpcio",
    )
}

/// One span as the receiver decoded it.
#[derive(Debug, Clone)]
pub struct Span(pub Value);

impl Span {
    pub fn str(&self, key: &str) -> &str {
        self.0[key].as_str().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.str("name")
    }
    pub fn trace_id(&self) -> &str {
        self.str("trace_id")
    }
    pub fn span_id(&self) -> &str {
        self.str("span_id")
    }
    pub fn parent(&self) -> &str {
        self.str("parent_span_id")
    }
    pub fn kind(&self) -> &str {
        self.str("kind")
    }
    pub fn attr(&self, key: &str) -> &Value {
        &self.0["attributes"][key]
    }
    pub fn attr_str(&self, key: &str) -> &str {
        self.attr(key).as_str().unwrap_or("")
    }
}

/// The receiver process; killed when dropped.
pub struct Receiver {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    out: PathBuf,
}

impl Receiver {
    pub fn start() -> Option<Receiver> {
        Receiver::start_with_delay(Duration::ZERO)
    }

    /// A receiver that answers every export only after `delay` (a slow collector).
    pub fn start_with_delay(delay: Duration) -> Option<Receiver> {
        let python = python_with_otlp()?;
        let out = std::env::temp_dir().join(format!(
            "tars-otlp-{}-{}.jsonl",
            std::process::id(),
            rand_suffix()
        ));
        let _ = std::fs::remove_file(&out);
        let mut child = Command::new(python)
            .arg(common::workspace_root().join("scripts/otlp_receiver.py"))
            .args(["--out", out.to_str().unwrap()])
            .args(["--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(["--delay-ms", &delay.as_millis().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/otlp_receiver.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut r = Receiver {
            stdin: child.stdin.take(),
            child: Some(child),
            grpc: "127.0.0.1:0".parse().unwrap(),
            http: "127.0.0.1:0".parse().unwrap(),
            out,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the receiver did not start within 30 s");
        let ports: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        r.grpc = ports["grpc"].as_str().unwrap().parse().unwrap();
        r.http = ports["http"].as_str().unwrap().parse().unwrap();
        Some(r)
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn http_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    /// A configuration of `service` that exports to this receiver over `protocol`.
    pub fn config(
        &self,
        service: &str,
        protocol: tars_telemetry::trace::Protocol,
    ) -> tars_telemetry::trace::TraceConfig {
        let endpoint = match protocol {
            tars_telemetry::trace::Protocol::Grpc => self.grpc_endpoint(),
            _ => self.http_endpoint(),
        };
        tars_telemetry::trace::TraceConfig::new(service)
            .with_endpoint(endpoint)
            .with_protocol(protocol)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Span(serde_json::from_str(l).expect("receiver output is JSON lines")))
            .collect()
    }

    /// Waits (at most `timeout`) until `done` holds for the spans received.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || Instant::now() >= deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the receiver: the collector is down from now on.
    pub fn stop(&mut self) {
        self.stdin.take();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.out);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

/// The spans of one trace, by name.
pub fn by_name<'a>(spans: &'a [Span], trace_id: &str, name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.trace_id() == trace_id && s.name() == name)
        .collect()
}

/// The one span of this trace with this name.
pub fn one<'a>(spans: &'a [Span], trace_id: &str, name: &str) -> &'a Span {
    let v = by_name(spans, trace_id, name);
    assert_eq!(
        v.len(),
        1,
        "expected one {name:?} in trace {trace_id}, got {v:?}"
    );
    v[0]
}

/// Lowercase hex of a byte array.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
