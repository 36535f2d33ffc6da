//! With tracing installed, a stage that makes no span costs no allocation: outside any
//! trace, and under an unsampled parent, the inner stages (phases, LLM calls, embeddings,
//! vector searches, database queries, cache calls) record their metrics exactly as
//! without tracing. Only where a span is made does tracing add cost.
#![cfg(feature = "otel")]

use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tars_telemetry::trace::{TraceConfig, propagation};
use tars_telemetry::*;

mod alloc_counter;

use alloc_counter::allocations;

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

fn inner_stages(t: &Telemetry, llm: &LlmModel) {
    let q = t.rag().phase(RagPhase::Retrieval);
    drop(t.embeddings().start());
    drop(t.vector_store().start_search());
    drop(t.db().query(DbOperation::Select));
    let hit = t.redis().start_command("GET").finish_lookup(true);
    assert!(hit);
    let mut call = llm.start();
    call.set_input_tokens(10);
    call.first_token();
    call.add_output_tokens(3);
    call.succeed();
    drop(q);
}

#[test]
fn stages_without_a_span_allocate_nothing() {
    let t = Telemetry::new();
    let tracing = t
        .install_tracing_with_exporter(TraceConfig::new("tars-backend"), Discard)
        .unwrap();
    let llm = t.llm_model("llama3").unwrap();
    // Warm up: lazily resolved series, thread-locals.
    inner_stages(&t, &llm);

    // Outside any trace: inner stages do not start traces.
    let n = allocations(|| {
        for _ in 0..100 {
            inner_stages(&t, &llm);
        }
    });
    assert_eq!(n, 0, "{n} allocations outside a trace");

    // Under an unsampled parent (a caller that did not sample this trace).
    let unsampled = propagation::extract_pairs([(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    )]);
    let _in = unsampled.attach();
    let n = allocations(|| {
        for _ in 0..100 {
            inner_stages(&t, &llm);
        }
    });
    assert_eq!(n, 0, "{n} allocations under an unsampled parent");
    drop(_in);

    // And a sampled one does make spans (so the above measured the real path).
    let sampled = propagation::extract_pairs([(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )]);
    let _in = sampled.attach();
    assert!(t.db().query(DbOperation::Select).is_sampled());
    drop(_in);
    assert_eq!(t.db().queries(DbOperation::Select).get(), 202);
    tracing.shutdown(Duration::from_secs(1)).unwrap();
}
