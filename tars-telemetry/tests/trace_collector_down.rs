//! Export never hurts the request path: with the collector stopped, or answering slowly,
//! requests stay fast, spans are dropped and counted in
//! `tars_telemetry_spans_dropped_total`, nothing is held beyond the queue, and shutdown
//! returns within its deadline.
#![cfg(feature = "otel")]

mod common;
mod trace_support;

use std::time::{Duration, Instant};

use tars_telemetry::trace::{Protocol, TraceConfig, Tracing};
use tars_telemetry::*;
use trace_support::Receiver;

const QUEUE: usize = 256;

fn install(t: &Telemetry, endpoint: String, protocol: Protocol) -> Tracing {
    t.install_tracing(
        TraceConfig::new("tars-backend")
            .with_endpoint(endpoint)
            .with_protocol(protocol)
            .with_max_queue_size(QUEUE)
            .with_max_export_batch_size(64)
            .with_schedule_delay(Duration::from_millis(50))
            .with_export_timeout(Duration::from_millis(500)),
    )
    .unwrap()
}

/// One traced request of three spans; returns how long the request path took.
fn request(t: &Telemetry, route: &HttpRoute) -> Duration {
    let start = Instant::now();
    let req = route.start(Method::Post);
    req.in_scope(|| {
        let q = t.rag().start_query();
        q.in_scope(|| drop(t.db().query(DbOperation::Select)));
        q.succeed();
    });
    req.finish(200);
    start.elapsed()
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q) as usize]
}

fn dropped_in_exposition(t: &Telemetry, reason: &str) -> u64 {
    let text = t.render_string(Format::Prometheus);
    let prefix = format!("tars_telemetry_spans_dropped_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

fn collector_down(protocol: Protocol) {
    let Some(mut receiver) = Receiver::start() else {
        return;
    };
    let endpoint = match protocol {
        Protocol::Grpc => receiver.grpc_endpoint(),
        Protocol::HttpProtobuf | Protocol::HttpJson => receiver.http_endpoint(),
    };
    let t = Telemetry::new();
    let tracing = install(&t, endpoint, protocol);
    let route = t.http().route("/api/v1/rag/query");

    // Up: spans arrive.
    for _ in 0..10 {
        request(&t, &route);
    }
    tracing.force_flush().unwrap();
    assert_eq!(
        receiver
            .wait_for(Duration::from_secs(10), |s| s.len() >= 30)
            .len(),
        30
    );
    assert_eq!(tracing.exported_spans(), 30);

    // Down: requests go on, as fast as before.
    receiver.stop();
    let n: u32 = 5000;
    let mut times: Vec<Duration> = (0..n).map(|_| request(&t, &route)).collect();
    let mean = times.iter().sum::<Duration>() / n;
    let p99 = quantile(&mut times, 0.99);
    eprintln!("{protocol:?}, collector down: request path mean {mean:?}, p99 {p99:?}");
    // Not a speed assertion: a request that waited on the exporter would take its export
    // timeout (500 ms). The bounds sit well below that and well above scheduling noise
    // on a loaded 2-core machine.
    assert!(mean < Duration::from_millis(20), "mean {mean:?}");
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");

    // Spans past the queue were dropped at once, the rest as their exports fail.
    assert!(tracing.dropped_spans_for(SpanDropReason::QueueFull) > 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tracing.dropped_spans_for(SpanDropReason::ExportFailed) == 0 && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        tracing.dropped_spans_for(SpanDropReason::ExportFailed) > 0,
        "{:?}",
        tracing.last_export_error()
    );
    assert!(dropped_in_exposition(&t, "queue_full") > 0);
    assert!(dropped_in_exposition(&t, "export_failed") > 0);

    // Shutdown within its deadline; then every span ended is accounted for: nothing is
    // held anywhere but the bounded queue.
    let start = Instant::now();
    let _ = tracing.shutdown(Duration::from_millis(700));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        start.elapsed()
    );
    let ended = 3 * (u64::from(n) + 10);
    let settled = Instant::now() + Duration::from_secs(5);
    while tracing.exported_spans() + tracing.dropped_spans() < ended && Instant::now() < settled {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tracing.exported_spans() + tracing.dropped_spans(), ended);
    // After shutdown, requests make no spans at all.
    let after = route.start(Method::Post);
    assert!(!after.is_sampled());
    after.finish(200);
    assert_eq!(tracing.exported_spans() + tracing.dropped_spans(), ended);
}

#[test]
fn collector_down_over_grpc() {
    collector_down(Protocol::Grpc);
}

#[test]
fn collector_down_over_http_protobuf() {
    collector_down(Protocol::HttpProtobuf);
}

#[test]
fn slow_collector_does_not_slow_requests() {
    let Some(receiver) = Receiver::start_with_delay(Duration::from_secs(3)) else {
        return;
    };
    let t = Telemetry::new();
    let tracing = install(&t, receiver.grpc_endpoint(), Protocol::Grpc);
    let route = t.http().route("/api/v1/rag/query");
    let n = 2000;
    let mut times: Vec<Duration> = (0..n).map(|_| request(&t, &route)).collect();
    let p99 = quantile(&mut times, 0.99);
    // A request that waited on the 3 s collector would take at least the export timeout.
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    assert!(tracing.dropped_spans_for(SpanDropReason::QueueFull) > 0);
    // The first export is still waiting on the collector: it times out and is dropped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tracing.dropped_spans_for(SpanDropReason::ExportFailed) == 0 && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(tracing.dropped_spans_for(SpanDropReason::ExportFailed) > 0);
    let start = Instant::now();
    let _ = tracing.shutdown(Duration::from_millis(500));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        start.elapsed()
    );
}

/// Shutdown with a collector up exports what is queued.
#[test]
fn shutdown_flushes_the_queue() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let t = Telemetry::new();
    let tracing = t
        .install_tracing(
            receiver
                .config("tars-backend", Protocol::HttpProtobuf)
                // Nothing would be sent for a minute but for the shutdown.
                .with_schedule_delay(Duration::from_secs(60)),
        )
        .unwrap();
    let route = t.http().route("/api/v1/rag/query");
    for _ in 0..40 {
        request(&t, &route);
    }
    tracing.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(receiver.spans().len(), 120);
    assert_eq!(tracing.dropped_spans(), 0);
}
