//! A simulated RAG service that drives every tars-telemetry family and serves /metrics.
//!
//! ```text
//! cargo run --release --example rag_demo -- --listen 127.0.0.1:9464
//! cargo run --release --example rag_demo -- --degraded      # every alert fires
//!
//! # Traces too, to an OpenTelemetry Collector (JSON logs with trace ids on stdout):
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//! OTEL_SERVICE_NAME=tars-rag-service cargo run --release --example rag_demo
//! ```
//!
//! The spans name the platform's services as their peers (`server.address`, `server.port`,
//! `peer.service`): ollama:11434, postgres:5432, redis:6379 and chromadb:8000 unless
//! TARS_LLM_ADDRESS, TARS_DB_ADDRESS, TARS_REDIS_ADDRESS or TARS_VECTOR_STORE_ADDRESS say
//! otherwise. OTEL_SDK_DISABLED=true turns traces off.
//!
//! SIGTERM or SIGINT stops it cleanly: requests in flight finish (5 s at most), queued
//! spans are sent, then it exits 0.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tars_examples::{Invocation, USAGE, Workload, parse_args};
use tars_telemetry::Telemetry;
use tars_telemetry::trace::{LogConfig, Peer, TraceConfig, Tracing};

/// Tracing, when an OTLP endpoint is configured: service name from OTEL_SERVICE_NAME
/// (tars-rag-service when unset), sampling and export from the other OTEL_* variables.
fn tracing(telemetry: &Telemetry) -> Option<Tracing> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return None;
    }
    let mut config = TraceConfig::from_env()
        .with_default_service_version(env!("CARGO_PKG_VERSION"))
        .with_default_peer(Peer::Llm, "ollama", Some(11434))
        .with_default_peer(Peer::Database, "postgres", Some(5432))
        .with_default_peer(Peer::Redis, "redis", Some(6379))
        .with_default_peer(Peer::VectorStore, "chromadb", Some(8000))
        .with_default_peer(Peer::Http, "tars-rag-service", Some(8000))
        .with_embedding_model("nomic-embed-text")
        .with_vector_store("chroma", Some("documents"));
    if config.service_name() == "unknown_service" {
        config = config.with_service_name("tars-rag-service");
    }
    let tracing = match telemetry.install_tracing(config) {
        Ok(t) if t.is_disabled() => {
            eprintln!("rag_demo: tracing off: OTEL_SDK_DISABLED");
            return None;
        }
        Ok(t) => t,
        Err(e) => {
            eprintln!("rag_demo: tracing off: {e}");
            return None;
        }
    };
    if let Err(e) = tracing.init_subscriber(&LogConfig::from_env()) {
        eprintln!("rag_demo: logs: {e}");
    }
    eprintln!(
        "rag_demo: traces of {} to {} (sampler: root ratio {}, /health never sampled)",
        tracing.service_name(),
        tracing.endpoint(),
        tracing.sampler().root_ratio()
    );
    Some(tracing)
}

fn main() {
    let (listen, cfg, duration) = match parse_args(std::env::args().skip(1)) {
        Ok(Invocation::Run {
            listen,
            cfg,
            duration,
        }) => (listen, cfg, duration),
        Ok(Invocation::Help) => {
            print!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    // SIGTERM and SIGINT end the run through the same path as --duration, so queued
    // spans are sent before exiting 0; a second signal exits at once.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let registered = signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()));
        if let Err(e) = registered {
            eprintln!("rag_demo: cannot handle signal {sig}: {e}");
            std::process::exit(1);
        }
    }
    // The pricing table of TARS_LLM_PRICING_FILE, else the demo's own
    // (examples/llm-pricing.json); a bad file stops the demo here.
    let telemetry = match tars_telemetry::LlmPricing::from_env() {
        Ok(Some(pricing)) => Telemetry::builder()
            .llm_pricing(pricing)
            .build()
            .unwrap_or_else(|e| {
                eprintln!("rag_demo: {e}");
                std::process::exit(1);
            }),
        Ok(None) => Telemetry::new(),
        Err(e) => {
            eprintln!("rag_demo: {e}");
            std::process::exit(2);
        }
    };
    // Metrics from any crate that uses the `metrics` facade land on the same endpoint.
    if let Err(e) = telemetry.install_recorder() {
        eprintln!("rag_demo: {e}");
    }
    let server = match telemetry.serve(listen.as_str()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rag_demo: cannot serve on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "rag_demo: serving http://{}/metrics at {} requests/s{}",
        server.local_addr(),
        cfg.rate,
        if cfg.latency_scale > 1.0 {
            " (degraded)"
        } else {
            ""
        }
    );
    let tracing = tracing(&telemetry);
    let mut workload = match Workload::new(telemetry, cfg) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("rag_demo: {e}");
            std::process::exit(1);
        }
    };
    if let Some(t) = &tracing {
        workload = workload.with_tracing(t);
    }
    workload.run(&stop, duration);
    metrics::counter!("rag_demo_runs").increment(1);
    eprintln!("rag_demo: done after {} requests", workload.steps());
    if let Some(t) = tracing {
        // Send what is queued; give up after 5 s.
        if let Err(e) = t.shutdown(Duration::from_secs(5)) {
            eprintln!("rag_demo: trace export: {e}");
        }
        eprintln!(
            "rag_demo: {} spans exported, {} dropped",
            t.exported_spans(),
            t.dropped_spans()
        );
        if let Some(e) = t.last_export_error() {
            eprintln!("rag_demo: last export error: {e}");
        }
    }
    server.shutdown();
}
