//! Cost of a stage span: tars-telemetry's guards (metric and span in one) against plain
//! `tracing` + `tracing-opentelemetry` and the `opentelemetry_sdk` tracer used directly.
//!
//! Every peer uses the same sampler (the platform's) and an exporter that discards, behind
//! a batch processor, so what differs is the span path itself. "unsampled" is a stage
//! under an unsampled parent (the common case: most stages of most traces at a ratio
//! below 1), "sampled" under a sampled one; the parent context is current, as it is
//! inside a request handler.
//!
//! cargo bench -p tars-benches --bench tracing

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::{Span as _, SpanBuilder, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tars_telemetry::trace::{PlatformSampler, SamplingRules, TraceConfig, propagation};
use tars_telemetry::{DbOperation, Method, Telemetry};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn parent(sampled: bool) -> Context {
    let flags = if sampled { "01" } else { "00" };
    propagation::extract_pairs([(
        "traceparent",
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}").as_str(),
    )])
}

fn sdk_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(Discard)
        .with_sampler(PlatformSampler::new(
            &SamplingRules::default(),
            "tars-backend",
        ))
        .build()
}

fn stage(c: &mut Criterion) {
    let mut g = c.benchmark_group("stage_span");
    g.measurement_time(Duration::from_secs(4));

    // The floor: the same stage's metrics, tracing not installed.
    let plain = Telemetry::new();
    g.bench_function("tars-telemetry, no tracing (metrics only)", |b| {
        b.iter(|| drop(black_box(plain.db().query(DbOperation::Select))))
    });

    let t = Telemetry::new();
    let tracing = t
        .install_tracing_with_exporter(TraceConfig::new("tars-backend"), Discard)
        .unwrap();
    for sampled in [false, true] {
        let which = if sampled { "sampled" } else { "unsampled" };
        let _in = parent(sampled).attach();
        g.bench_function(format!("tars-telemetry guard, {which}"), |b| {
            b.iter(|| drop(black_box(t.db().query(DbOperation::Select))))
        });
    }

    let provider = sdk_provider();
    let tracer = provider.tracer("bench");
    for sampled in [false, true] {
        let which = if sampled { "sampled" } else { "unsampled" };
        let _in = parent(sampled).attach();
        g.bench_function(format!("opentelemetry_sdk tracer, {which}"), |b| {
            b.iter(|| {
                let builder = SpanBuilder::from_name("SELECT")
                    .with_kind(SpanKind::Client)
                    .with_attributes([
                        KeyValue::new("db.system.name", "postgresql"),
                        KeyValue::new("db.operation.name", "SELECT"),
                    ]);
                let mut span = Context::map_current(|cx| tracer.build_with_context(builder, cx));
                black_box(span.span_context());
                span.end();
            })
        });
    }

    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bench"))
        .with_tracked_inactivity(false);
    let subscriber = tracing_subscriber::registry().with(layer);
    let _default = tracing::subscriber::set_default(subscriber);
    for sampled in [false, true] {
        let which = if sampled { "sampled" } else { "unsampled" };
        let _in = parent(sampled).attach();
        g.bench_function(format!("tracing + tracing-opentelemetry, {which}"), |b| {
            b.iter(|| {
                let span = tracing::info_span!(
                    "SELECT",
                    otel.kind = "client",
                    db.system.name = "postgresql",
                    db.operation.name = "SELECT"
                );
                span.in_scope(|| black_box(&span));
            })
        });
    }
    g.finish();

    // Trace roots: the request's server span, which runs the sampler's route rules.
    let mut g = c.benchmark_group("request_span");
    g.measurement_time(Duration::from_secs(4));
    let kept = t.http().route("/api/v1/rag/query");
    let dropped = t.http().route("/health");
    g.bench_function("tars-telemetry, /health (never sampled)", |b| {
        b.iter(|| black_box(dropped.start(Method::Get)).finish(200))
    });
    g.bench_function("tars-telemetry, /api/v1/rag/query (always sampled)", |b| {
        b.iter(|| black_box(kept.start(Method::Post)).finish(200))
    });
    g.finish();
    let _ = tracing.shutdown(Duration::from_secs(1));
    let _ = provider.shutdown();
}

criterion_group!(benches, stage);
criterion_main!(benches);
