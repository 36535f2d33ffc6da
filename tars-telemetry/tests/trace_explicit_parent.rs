//! Explicit parents, as the bindings use them: two requests interleaved on one thread
//! (asyncio tasks, Node requests) each keep their own tree, because every stage names its
//! parent instead of reading the thread's current context. Checked in an independent OTLP
//! receiver.
#![cfg(feature = "otel")]

mod common;
mod trace_support;

use std::time::Duration;

use tars_telemetry::trace::Protocol;
use tars_telemetry::*;
use trace_support::{Receiver, hex, one};

/// One request's stages, each awaiting in between so that the other task runs.
async fn request(t: &Telemetry, route: &str, model: &str) -> SpanContext {
    let req = t.http().route(route).start_with(Method::Post, Parent::Root);
    tokio::task::yield_now().await;
    let query = t.rag().start_query_with(req.parent());
    tokio::task::yield_now().await;
    let retrieval = t.rag().phase_with(RagPhase::Retrieval, query.parent());
    tokio::task::yield_now().await;
    let search = t.vector_store().start_search_with(retrieval.parent());
    tokio::task::yield_now().await;
    search.stop();
    retrieval.stop();
    // A binding keeps only the span context (a ContextVar holds a value, not a guard).
    let kept: SpanContext = query.span_context().unwrap();
    tokio::task::yield_now().await;
    let call = t.llm_model(model).unwrap().start_with(Parent::Span(kept));
    tokio::task::yield_now().await;
    call.succeed();
    query.succeed();
    let sc = req.span_context().unwrap();
    req.finish(200);
    sc
}

#[test]
fn interleaved_tasks_on_one_thread_keep_their_own_parents() {
    let Some(r) = Receiver::start() else { return };
    let t = Telemetry::new();
    let tracing = t
        .install_tracing(
            r.config("tars-rag-service", Protocol::Grpc)
                .with_schedule_delay(Duration::from_millis(50)),
        )
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (a, b) = rt.block_on(async {
        tokio::join!(
            request(&t, "/api/v1/rag/query", "llama3"),
            request(&t, "/api/v1/chat", "mistral")
        )
    });
    tracing.force_flush().unwrap();
    let (ta, tb) = (hex(&a.trace_id), hex(&b.trace_id));
    assert_ne!(ta, tb, "two requests, two traces");
    let spans = r.wait_for(Duration::from_secs(10), |s| {
        s.iter()
            .filter(|s| s.trace_id() == ta || s.trace_id() == tb)
            .count()
            >= 10
    });
    for (trace, server, chat) in [
        (&ta, "POST /api/v1/rag/query", "chat llama3"),
        (&tb, "POST /api/v1/chat", "chat mistral"),
    ] {
        let server = one(&spans, trace, server);
        assert_eq!(server.parent(), "", "the request is a root");
        let query = one(&spans, trace, "rag.query");
        assert_eq!(query.parent(), server.span_id());
        let retrieval = one(&spans, trace, "rag.retrieval");
        assert_eq!(retrieval.parent(), query.span_id());
        let search = one(&spans, trace, "retrieval");
        assert_eq!(search.parent(), retrieval.span_id());
        let llm = one(&spans, trace, chat);
        assert_eq!(
            llm.parent(),
            query.span_id(),
            "parent from a kept span context"
        );
    }
    let _ = tracing.shutdown(Duration::from_secs(2));
}

#[test]
fn a_remote_parent_and_an_unsampled_parent_are_honoured() {
    let Some(r) = Receiver::start() else { return };
    let t = Telemetry::new();
    let tracing = t
        .install_tracing(r.config("tars-rag-service", Protocol::Grpc))
        .unwrap();
    let remote =
        SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap();
    let q = t.rag().start_query_with(Parent::Span(remote));
    let child = t.llm_model("llama3").unwrap().start_with(q.parent());
    assert!(child.is_sampled());
    child.succeed();
    q.succeed();

    // Under an unsampled remote parent, no inner stage is made (parent-based sampling).
    let unsampled =
        SpanContext::from_traceparent("00-aaf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
            .unwrap();
    let call = t
        .llm_model("llama3")
        .unwrap()
        .start_with(Parent::Span(unsampled));
    assert!(call.span_context().is_none());
    call.succeed();
    // An inner stage with no parent makes no span either.
    let lone = t.db().query_with(DbOperation::Select, None, Parent::Root);
    assert!(lone.span_context().is_none());
    drop(lone);

    tracing.force_flush().unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let spans = r.wait_for(Duration::from_secs(10), |s| {
        s.iter().filter(|s| s.trace_id() == trace).count() >= 2
    });
    let query = one(&spans, trace, "rag.query");
    assert_eq!(query.parent(), "00f067aa0ba902b7");
    assert_eq!(one(&spans, trace, "chat llama3").parent(), query.span_id());
    assert!(
        spans
            .iter()
            .all(|s| s.trace_id() != "aaf92f3577b34da6a3ce929d0e0e4736")
    );
    let _ = tracing.shutdown(Duration::from_secs(2));
}

#[test]
fn an_abandoned_stage_ends_its_span_as_an_error() {
    let Some(r) = Receiver::start() else { return };
    let t = Telemetry::new();
    let tracing = t
        .install_tracing(r.config("tars-rag-service", Protocol::Grpc))
        .unwrap();
    let q = t.rag().start_query_with(Parent::Root);
    let trace = hex(&q.span_context().unwrap().trace_id);
    q.abandon_with("cancelled");
    tracing.force_flush().unwrap();
    let spans = r.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|s| s.trace_id() == trace)
    });
    let span = one(&spans, &trace, "rag.query");
    assert_eq!(span.attr_str("error.type"), "cancelled");
    let _ = tracing.shutdown(Duration::from_secs(2));
}
