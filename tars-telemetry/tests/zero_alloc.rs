//! Recording through resolved handles allocates nothing, for every family.
//!
//! A counting global allocator counts the allocations made by this thread while the
//! measured closure runs.

use std::time::Duration;

use tars_telemetry::*;

mod alloc_counter;

use alloc_counter::allocations;

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

fn record_everything(t: &Telemetry, llm: &LlmModel, route: &HttpRoute, err: &Counter, i: u64) {
    let trace = TraceRef::new([7; 16], [9; 8]);
    let d = Duration::from_micros(100 + i);
    // RAG: guard with phases, sources, relevance, exemplar; and the explicit form.
    let mut q = t.rag().start_query();
    q.set_trace(trace);
    q.set_sources(4);
    q.set_relevance(0.7);
    drop(q.phase(RagPhase::Retrieval));
    t.rag().record_phase(RagPhase::Generation, d, None);
    q.succeed();
    t.rag().record_query(d, Outcome::Error, None);
    // LLM: streamed call with tokens and time to first token.
    let mut call = llm.start();
    call.set_trace(trace);
    call.set_input_tokens(10);
    call.first_token();
    call.add_output_tokens(20);
    call.succeed();
    // LLM: usage by token kind, priced (input, cache_read, output, reasoning at the output
    // price) and unpriced (cache_write).
    let mut priced = llm.start();
    priced.set_usage(TokenUsage {
        input_tokens: 100,
        output_tokens: 30,
        cache_read_input_tokens: 60,
        cache_write_input_tokens: 10,
        reasoning_output_tokens: 12,
    });
    priced.succeed();
    llm.record(
        &LlmUsage {
            duration: d,
            ..Default::default()
        },
        Outcome::Error,
        None,
    );
    // Embeddings and caches.
    drop(t.embeddings().start());
    t.embeddings().record(d, 3, None);
    t.embeddings().cache_lookup(i.is_multiple_of(2));
    t.redis().lookup(i.is_multiple_of(3));
    t.redis().record(CacheOperation::Set, CacheResult::Ok);
    t.redis().set_memory(1 << 20, 1 << 30);
    // Vector store.
    drop(t.vector_store().start_search());
    t.vector_store().record_search(d, None);
    t.vector_store().set_documents(i);
    // Database.
    drop(t.db().query(DbOperation::Insert));
    t.db().record(DbOperation::Select, d, None);
    t.db().set_pool(3, 10);
    // HTTP, with the status series already resolved.
    let mut req = route.start(Method::Get);
    req.set_trace(trace);
    req.finish(200);
    route.record(Method::Get, 404, d, None);
    // WebSocket.
    let conn = t.websocket().connection_opened();
    t.websocket().message(Direction::Inbound);
    drop(conn);
    // Documents.
    t.documents().set_queue_length(i);
    t.documents().start().succeed(8);
    t.documents().record(d, Outcome::Error, None, None);
    // Errors through a resolved handle.
    err.inc();
}

fn pricing() -> LlmPricing {
    LlmPricing::from_json(
        r#"{"models": {"llama3": {"input": 0.15, "cache_read": 0.075, "output": 0.6}}}"#,
    )
    .unwrap()
}

#[test]
fn recording_through_resolved_handles_allocates_nothing() {
    let t = Telemetry::builder().llm_pricing(pricing()).build().unwrap();
    let llm = t.llm_model("llama3").unwrap();
    let route = t.http().route("/api/v1/rag/query");
    let err = t.errors().kind(Component::Redis, "timeout").unwrap();
    // Warm-up: first use resolves the lazily created (method, status) series.
    record_everything(&t, &llm, &route, &err, 0);

    let n = allocations(|| {
        for i in 1..=1000 {
            record_everything(&t, &llm, &route, &err, i);
        }
    });
    assert_eq!(n, 0, "recording allocated {n} times");
    assert_eq!(t.rag().query_count(), 2002);
    assert_eq!(llm.tokens_generated(), (20 + 30) * 1001);
}

#[test]
fn recording_in_multiprocess_mode_allocates_nothing() {
    let dir = std::env::temp_dir().join(format!("tars-zero-alloc-mp-{}", std::process::id()));
    let t = Telemetry::builder()
        .multiprocess_dir(&dir)
        .llm_pricing(pricing())
        .build()
        .unwrap();
    let llm = t.llm_model("llama3").unwrap();
    let route = t.http().route("/api/v1/rag/query");
    let err = t.errors().kind(Component::Redis, "timeout").unwrap();
    record_everything(&t, &llm, &route, &err, 0);

    let n = allocations(|| {
        for i in 1..=1000 {
            record_everything(&t, &llm, &route, &err, i);
        }
    });
    assert_eq!(n, 0, "recording into the shared files allocated {n} times");
    let text = t.render_string(Format::Prometheus);
    assert!(
        text.contains("tars_rag_queries_total{status=\"success\"} 1001"),
        "the values live in the files: {text}"
    );
    // Spend, summed across the files in pico-dollars and shown in dollars: 40 uncached
    // input tokens a round (10 + 30) at $0.15 per million, 1001 rounds.
    assert!(
        text.contains("tars_llm_spend_dollars_total{model=\"llama3\",type=\"input\"} 0.006006\n"),
        "spend in dollars: {text}"
    );
    assert!(
        text.contains(
            "tars_llm_unpriced_tokens_total{model=\"llama3\",type=\"cache_write\"} 10010\n"
        ),
        "unpriced tokens: {text}"
    );
    drop(t);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn looking_up_an_existing_series_by_strings_allocates_nothing() {
    let t = Telemetry::new();
    t.errors().record(Component::Llm, "timeout");
    let family = t.registry().get("tars_errors_total").unwrap();
    let n = allocations(|| {
        for _ in 0..100 {
            t.errors().record(Component::Llm, "timeout");
            let _ = family.resolve(&["llm", "timeout"]).unwrap();
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn render_into_a_warm_buffer_allocates_nothing() {
    let t = Telemetry::new();
    let route = t.http().route("/x");
    route.record(
        Method::Get,
        200,
        Duration::from_millis(3),
        Some(&TraceRef::new([1; 16], [2; 8])),
    );
    t.rag()
        .record_query(Duration::from_millis(3), Outcome::Success, None);
    let native = t
        .native_histogram_family("job_seconds", "Jobs.", &[], &[], NativeBuckets::DEFAULT)
        .unwrap()
        .labels(&[])
        .unwrap();
    for i in 0..200 {
        native.observe(f64::from(i) * 0.013);
    }
    for format in [Format::Prometheus, Format::OpenMetrics, Format::Protobuf] {
        let mut buf = Vec::new();
        t.render_into(format, &mut buf);
        // A second warm-up: the protobuf encoder's scratch for native buckets is per thread.
        buf.clear();
        t.render_into(format, &mut buf);
        let size = buf.len();
        let n = allocations(|| {
            buf.clear();
            t.render_into(format, &mut buf);
        });
        assert_eq!(n, 0, "{format:?} render allocated");
        assert_eq!(buf.len(), size);
    }
}

#[test]
fn observing_into_native_histograms_allocates_nothing() {
    let t = Telemetry::new();
    let both = t
        .native_histogram_family(
            "both_seconds",
            "Classic and native.",
            &["k"],
            &[0.1, 1.0],
            NativeBuckets::DEFAULT,
        )
        .unwrap()
        .labels(&["a"])
        .unwrap();
    let fine = t
        .native_histogram_family(
            "fine_seconds",
            "Native only, schema 8.",
            &[],
            &[],
            NativeBuckets::with_schema(8),
        )
        .unwrap()
        .labels(&[])
        .unwrap();
    let trace = TraceRef::new([3; 16], [4; 8]);
    both.observe(0.5);
    let n = allocations(|| {
        for i in 0..10_000u32 {
            let v = f64::from(i) * 1e-4;
            both.observe(v);
            fine.observe(v * 1e3);
            both.observe_with_exemplar(v, &trace);
        }
    });
    assert_eq!(n, 0, "native observations allocated {n} times");
    assert_eq!(both.count(), 20_001);
    assert_eq!(fine.count(), 10_000);
}

#[test]
fn the_counting_allocator_sees_allocations() {
    // Guards the tests above against an allocator that counts nothing.
    let n = allocations(|| {
        let v: Vec<u8> = std::hint::black_box(vec![1; 64]);
        drop(v);
        let _ = Telemetry::new().llm_model("fresh").unwrap();
    });
    assert!(n > 10, "only {n} allocations counted");
}

#[test]
fn facade_macros_allocate_nothing_once_their_key_is_known() {
    let t = Telemetry::new();
    let recorder = t.recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("jobs_done", "queue" => "ingest").increment(1);
        metrics::histogram!("job_seconds").record(0.2);
        metrics::histogram!("tars_rag_query_duration_seconds").record(0.1);
        let n = allocations(|| {
            for _ in 0..100 {
                metrics::counter!("jobs_done", "queue" => "ingest").increment(1);
                metrics::histogram!("job_seconds").record(0.2);
                metrics::histogram!("tars_rag_query_duration_seconds").record(0.1);
            }
        });
        assert_eq!(n, 0, "facade calls allocated {n} times");
    });
    assert!(
        t.render_string(Format::Prometheus)
            .contains("jobs_done_total{queue=\"ingest\"} 101")
    );
}
