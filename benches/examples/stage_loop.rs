//! Instructions per database-query stage, counted rather than timed:
//! `valgrind --tool=callgrind target/release/examples/stage_loop {plain|unsampled} 100000`.

use std::hint::black_box;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tars_telemetry::trace::{TraceConfig, propagation};
use tars_telemetry::{DbOperation, Telemetry};

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "unsampled".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let t = Telemetry::new();
    let _tracing = (which != "plain").then(|| {
        t.install_tracing_with_exporter(TraceConfig::new("tars-backend"), Discard)
            .unwrap()
    });
    let _in = propagation::extract_pairs([(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    )])
    .attach();
    for _ in 0..n {
        drop(black_box(t.db().query(DbOperation::Select)));
    }
}
