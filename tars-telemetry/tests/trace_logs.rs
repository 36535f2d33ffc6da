//! JSON log lines for Loki: every line carries timestamp, level, message, request_id,
//! user_id, duration, trace_id and span_id, and the ids lead to a span that the
//! independent OTLP receiver really received. Debug lines are off in production.
#![cfg(feature = "otel")]

mod common;
mod trace_support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tars_telemetry::trace::{LogConfig, Protocol, TraceConfig};
use tars_telemetry::*;
use trace_support::{Receiver, hex};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

const KEYS: [&str; 8] = [
    "timestamp",
    "level",
    "message",
    "request_id",
    "user_id",
    "duration",
    "trace_id",
    "span_id",
];

fn find<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no line {message:?} in {lines:#?}"))
}

#[test]
fn log_lines_lead_to_their_trace() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let t = Telemetry::new();
    let tracing = t
        .install_tracing(receiver.config("tars-backend", Protocol::Grpc))
        .unwrap();
    let buf = Buf::default();
    let w = buf.clone();
    let subscriber = tracing.subscriber_with_writer(&LogConfig::production(), move || w.clone());
    let (server, query) = tracing::subscriber::with_default(subscriber, || {
        // Ids from the caller's baggage.
        let headers = HashMap::from([(
            "baggage".to_string(),
            "request_id=r-77,user_id=u-42".to_string(),
        )]);
        let req = t
            .http()
            .route("/api/v1/rag/query")
            .start_remote(Method::Post, &headers);
        let server = req.trace_ref().unwrap();
        let query_ids = req.in_scope(|| {
            let q = t.rag().start_query();
            let ids = q.trace_ref().unwrap();
            q.in_scope(|| {
                tracing::warn!(sources = 0, "rag query found no sources");
                tracing::debug!("not written in production");
            });
            q.succeed();
            tracing::info!(duration = 0.125, status = 200, "request done");
            ids
        });
        req.finish(200);
        // Ids from an enclosing `tracing` span, and a line outside any trace.
        let span = tracing::info_span!("job", request_id = "r-1", user_id = 7);
        span.in_scope(|| tracing::error!("could not connect to server"));
        tracing::info!("idle");
        (server, query_ids)
    });
    tracing.force_flush().unwrap();
    let spans = receiver.wait_for(Duration::from_secs(10), |s| s.len() >= 3);

    let lines = buf.lines();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for l in &lines {
        for k in KEYS {
            assert!(l.get(k).is_some(), "{k} missing: {l}");
        }
        let ts = l["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 27 && ts.ends_with('Z') && &ts[10..11] == "T",
            "{ts}"
        );
    }
    // Inside the query's span: its ids, the baggage's request and user.
    let warn = find(&lines, "rag query found no sources");
    assert_eq!(warn["level"], "warn");
    assert_eq!(warn["trace_id"], hex(&query.trace_id));
    assert_eq!(warn["span_id"], hex(&query.span_id));
    assert_eq!(warn["request_id"], "r-77");
    assert_eq!(warn["user_id"], "u-42");
    assert_eq!(warn["sources"], 0);
    // Inside the request: the server span's ids, the duration given.
    let done = find(&lines, "request done");
    assert_eq!(done["span_id"], hex(&server.span_id));
    assert_eq!(done["duration"], 0.125);
    assert_eq!(done["status"], 200);
    // The ids lead to spans the collector has.
    for l in [warn, done] {
        assert!(
            spans
                .iter()
                .any(|s| s.trace_id() == l["trace_id"] && s.span_id() == l["span_id"]),
            "no span for {l}"
        );
    }
    // The line logged in the query's scope is an event of the query's span.
    let q = spans
        .iter()
        .find(|s| s.span_id() == hex(&query.span_id))
        .expect("the query span arrived");
    let events = q.0["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["name"], "rag query found no sources");
    assert_eq!(events[0]["attributes"]["level"], "warn");
    assert_eq!(events[0]["attributes"]["sources"], "0");
    assert_eq!(events[0]["attributes"]["request_id"], "r-77");
    // The server span got the line logged in its own scope, not the query's.
    let server_span = spans
        .iter()
        .find(|s| s.span_id() == hex(&server.span_id))
        .expect("the server span arrived");
    assert_eq!(server_span.0["events"][0]["name"], "request done");
    let err = find(&lines, "could not connect to server");
    assert_eq!(err["level"], "error");
    assert_eq!(err["request_id"], "r-1");
    assert_eq!(err["user_id"], "7");
    assert_eq!(err["span"], "job");
    let idle = find(&lines, "idle");
    assert!(idle["trace_id"].is_null() && idle["request_id"].is_null());
    assert!(lines.iter().all(|l| l["level"] != "debug"));
    tracing.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn debug_lines_only_outside_production() {
    let t = Telemetry::new();
    let tracing = t
        .install_tracing(TraceConfig::new("tars-backend").with_endpoint("http://127.0.0.1:9"))
        .unwrap();
    for (config, expected) in [
        (LogConfig::production(), 1),
        (
            LogConfig::from_lookup(|k| (k == "TARS_ENV").then(|| "production".into())),
            1,
        ),
        (LogConfig::development(), 2),
        (
            LogConfig::from_lookup(|k| (k == "RUST_LOG").then(|| "warn,trace_logs=debug".into())),
            2,
        ),
    ] {
        let buf = Buf::default();
        let w = buf.clone();
        let subscriber = tracing.subscriber_with_writer(&config, move || w.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("shown");
            tracing::debug!("debug");
        });
        assert_eq!(buf.lines().len(), expected, "{config:?}");
    }
    let _ = tracing.shutdown(Duration::from_millis(100));
}
