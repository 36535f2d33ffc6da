//! Helpers shared by the integration tests: finding the real external checkers.
#![allow(dead_code)]

use std::path::PathBuf;

use tars_telemetry::*;

pub fn workspace_root() -> PathBuf {
    tars_test_support::workspace_root()
}

pub fn promtool() -> Option<PathBuf> {
    tars_test_support::tool("promtool", &[])
}

pub fn which(bin: &str) -> Option<PathBuf> {
    tars_test_support::find(bin, &[])
}

/// A Python interpreter that can import prometheus_client.
pub fn python_with_prometheus_client() -> Option<PathBuf> {
    tars_test_support::python_with(&["prometheus_client"], "python3 with prometheus_client")
}

/// A telemetry with every library family fed at least once.
pub fn fed_telemetry() -> Telemetry {
    use std::time::Duration;
    let t = Telemetry::new();
    let trace = TraceRef::new([0xab; 16], [0xcd; 8]);
    t.app_info().set("1.2.3", "test", "llama3").unwrap();
    let mut q = t.rag().start_query();
    q.set_sources(3);
    q.set_relevance(0.8);
    q.set_trace(trace);
    drop(q.phase(RagPhase::Retrieval));
    drop(q.phase(RagPhase::Generation));
    q.succeed();
    t.rag()
        .record_query(Duration::from_millis(300), Outcome::Error, None);
    let m = t.llm_model("llama3").unwrap();
    m.record(
        &LlmUsage {
            duration: Duration::from_millis(1500),
            tokens: TokenUsage {
                input_tokens: 100,
                output_tokens: 50,
                ..Default::default()
            },
            time_to_first_token: Some(Duration::from_millis(200)),
        },
        Outcome::Success,
        Some(&trace),
    );
    t.embeddings().record(Duration::from_millis(40), 4, None);
    t.embeddings().cache_lookup(true);
    t.embeddings().cache_lookup(false);
    t.vector_store()
        .record_search(Duration::from_millis(20), None);
    t.vector_store().set_documents(1000);
    t.redis().lookup(true);
    t.redis().lookup(false);
    t.redis().set_memory(100, 1000);
    t.db()
        .record(DbOperation::Select, Duration::from_millis(5), None);
    t.db().set_pool(2, 10);
    let r = t.http().route("/api/v1/rag/query");
    r.record(Method::Post, 200, Duration::from_millis(120), Some(&trace));
    r.record(Method::Post, 503, Duration::from_millis(5), None);
    let ws = t.websocket().connection_opened();
    t.websocket().message(Direction::Inbound);
    t.websocket().message(Direction::Outbound);
    std::mem::forget(ws);
    t.documents()
        .record(Duration::from_secs(3), Outcome::Success, Some(12), None);
    t.documents().set_queue_length(4);
    t.errors().record(Component::Llm, "timeout");
    // Browsers' Web Vitals, as a binding records them, and one refused report.
    for def in [
        &catalog::WEB_VITALS_LCP,
        &catalog::WEB_VITALS_INP,
        &catalog::WEB_VITALS_CLS,
        &catalog::WEB_VITALS_FCP,
        &catalog::WEB_VITALS_TTFB,
    ] {
        if let Ok(Metric::Histogram(h)) = t
            .registry()
            .register(def)
            .and_then(|f| f.resolve(&["/chat/:id", "navigate"]))
        {
            h.observe(0.5);
        }
    }
    if let Ok(Metric::Counter(c)) = t
        .registry()
        .register(&catalog::WEB_VITALS_REJECTED)
        .and_then(|f| f.resolve(&["malformed"]))
    {
        c.inc();
    }
    // A file a multi-process render skipped, as the render counts it.
    if let Ok(Metric::Counter(c)) = t
        .registry()
        .register(&catalog::SELF_MULTIPROCESS_LOSSES)
        .and_then(|f| f.resolve(&["file_skipped", "not_a_regular_file"]))
    {
        c.inc();
    }
    // Self-metrics: one refused value, one facade name rewritten.
    t.rag().duration().observe(f64::NAN);
    metrics::with_local_recorder(&t.recorder(), || {
        metrics::counter!("facade.jobs", "queue" => "ingest").increment(1)
    });
    // Families of the service's own, a fractional counter among them.
    t.counter_family("llm_spend_dollars", "Money spent on LLM calls.", &["model"])
        .unwrap()
        .labels(&["llama3"])
        .unwrap()
        .inc_by(0.125);
    t.gauge_family(
        "worker_busy_ratio",
        "Share of time the worker is busy.",
        &[],
    )
    .unwrap()
    .labels(&[])
    .unwrap()
    .set(0.5);
    t.histogram_family(
        "chunk_tokens",
        "Tokens per chunk.",
        &["source"],
        &[64.0, 256.0],
    )
    .unwrap()
    .labels(&["pdf"])
    .unwrap()
    .observe(100.0);
    t
}
