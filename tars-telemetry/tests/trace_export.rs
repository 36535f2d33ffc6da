//! One RAG request exported over OTLP to an independent receiver (scripts/otlp_receiver.py,
//! the official opentelemetry-proto definitions on grpcio), over gRPC and over
//! HTTP/protobuf: the tree of spans (parents, names, kinds, attributes), the trace
//! context across a `traceparent` header both ways, errors, and the exemplars that lead
//! from the metrics to the trace.
#![cfg(feature = "otel")]

mod common;
mod trace_support;

use std::collections::HashMap;
use std::time::Duration;

use tars_telemetry::trace::{Peer, Protocol, TraceConfig, Tracing, propagation};
use tars_telemetry::*;
use trace_support::{Receiver, Span, hex, one};

const REMOTE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const REMOTE_SPAN: &str = "00f067aa0ba902b7";

fn config(service: &str, r: &Receiver, protocol: Protocol) -> TraceConfig {
    r.config(service, protocol)
        .with_schedule_delay(Duration::from_millis(100))
        .with_embedding_model("nomic-embed-text")
        .with_vector_store("chroma", Some("documents"))
        .with_resource_attribute("deployment.environment.name", "test")
        .with_service_version("9.9.9")
        .with_peer(Peer::Llm, "ollama", Some(11434))
        .with_peer(Peer::Database, "postgres", Some(5432))
        .with_db_namespace("tars")
}

struct Outcome {
    query: TraceRef,
    llm: TraceRef,
    outgoing: Vec<(String, String)>,
}

/// A RAG request through every stage, as a service handles it: the caller's trace context
/// comes in with the headers, the call to the model server carries it on.
fn rag_request(t: &Telemetry, fail: bool) -> Outcome {
    let route = t.http().route("/api/v1/rag/query");
    let llama = t.llm_model("llama3").unwrap();
    let headers = HashMap::from([
        (
            "traceparent".to_string(),
            format!("00-{REMOTE_TRACE}-{REMOTE_SPAN}-01"),
        ),
        ("baggage".to_string(), "user_id=u-42".to_string()),
    ]);
    let req = route.start_remote(Method::Post, &headers);
    let in_request = req.enter();
    let mut query = t.rag().start_query();
    {
        let retrieval = query.phase(RagPhase::Retrieval);
        let _in = retrieval.enter();
        if !t.redis().start_command("GET").finish_lookup(false) {
            let hit = t.embeddings().start_cache_lookup().finish_lookup(false);
            if !hit {
                drop(t.embeddings().start());
            }
            drop(t.vector_store().start_search());
            drop(
                t.db()
                    .query_summary(DbOperation::Select, "SELECT documents"),
            );
        }
    }
    let (llm, outgoing);
    {
        let generation = query.phase(RagPhase::Generation);
        let _in = generation.enter();
        let mut call = llama.start();
        call.set_input_tokens(321);
        call.first_token();
        call.add_output_tokens(64);
        call.capture_input("never exported: capture is off");
        outgoing = propagation::inject_pairs(&call.context());
        llm = call.trace_ref().expect("the LLM span is sampled");
        if fail {
            call.fail_with("timeout");
        } else {
            call.succeed();
        }
    }
    query.set_sources(5);
    query.set_relevance(0.8);
    let q = query.trace_ref().expect("the query span is sampled");
    if fail {
        query.fail();
    } else {
        query.succeed();
    }
    drop(in_request);
    req.finish(if fail { 503 } else { 200 });
    Outcome {
        query: q,
        llm,
        outgoing,
    }
}

fn export(protocol: Protocol) {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let t = Telemetry::new();
    let tracing: Tracing = t
        .install_tracing(config("tars-rag-service", &receiver, protocol))
        .unwrap();
    let ok = rag_request(&t, false);
    let failed = rag_request(&t, true);
    tracing.force_flush().unwrap();
    let spans = receiver.wait_for(Duration::from_secs(10), |s| s.len() >= 20);
    assert_eq!(
        spans.len(),
        20,
        "{spans:#?}\nlast error: {:?}",
        tracing.last_export_error()
    );

    // Both requests joined the caller's trace, as two server spans under its span.
    let tid = REMOTE_TRACE;
    assert!(spans.iter().all(|s| s.trace_id() == tid));
    let transport = match protocol {
        Protocol::Grpc => "grpc",
        _ => "http",
    };
    for s in &spans {
        assert_eq!(s.str("transport"), transport);
        assert_eq!(s.str("service"), "tars-rag-service");
        assert_eq!(s.0["resource"]["deployment.environment.name"], "test");
        assert_eq!(s.0["resource"]["service.version"], "9.9.9");
        let instance = s.0["resource"]["service.instance.id"]
            .as_str()
            .unwrap_or("");
        assert_eq!(instance.len(), 36, "service.instance.id {instance:?}");
        assert_eq!(s.str("scope"), "tars-telemetry");
    }
    let ok_query = spans
        .iter()
        .find(|s| s.span_id() == hex(&ok.query.span_id))
        .expect("the query span arrived");
    let server = spans
        .iter()
        .find(|s| s.span_id() == ok_query.parent())
        .expect("the query's parent arrived");
    check_tree(&spans, server, ok_query, &ok, false);
    let bad_query = spans
        .iter()
        .find(|s| s.span_id() == hex(&failed.query.span_id))
        .unwrap();
    let bad_server = spans
        .iter()
        .find(|s| s.span_id() == bad_query.parent())
        .unwrap();
    check_tree(&spans, bad_server, bad_query, &failed, true);

    // The metrics lead to the trace: exemplars with the ids of the sampled spans. Each
    // counter series has its request's; a histogram bucket keeps the latest one in it.
    let om = t.render_string(Format::OpenMetrics);
    let ex = |r: &TraceRef| {
        format!(
            "# {{trace_id=\"{}\",span_id=\"{}\"}}",
            hex(&r.trace_id),
            hex(&r.span_id)
        )
    };
    let lines =
        |prefix: &str| -> Vec<&str> { om.lines().filter(|l| l.starts_with(prefix)).collect() };
    let carries = |prefix: &str, refs: &[&TraceRef]| {
        let l = lines(prefix);
        assert!(
            l.iter().any(|l| refs.iter().any(|r| l.contains(&ex(r)))),
            "no exemplar of {refs:?} on {prefix}:\n{om}"
        );
    };
    carries("tars_rag_queries_total{status=\"success\"}", &[&ok.query]);
    carries("tars_rag_queries_total{status=\"error\"}", &[&failed.query]);
    carries(
        "tars_rag_query_duration_seconds_bucket",
        &[&ok.query, &failed.query],
    );
    carries(
        "tars_llm_requests_total{model=\"llama3\",status=\"success\"}",
        &[&ok.llm],
    );
    carries(
        "tars_llm_requests_total{model=\"llama3\",status=\"error\"}",
        &[&failed.llm],
    );
    carries(
        "tars_llm_inference_duration_seconds_bucket",
        &[&ok.llm, &failed.llm],
    );
    let server_ref = TraceRef::new(ok.query.trace_id, hex_bytes(server.span_id()));
    carries(
        "tars_http_requests_total{method=\"POST\",endpoint=\"/api/v1/rag/query\",status=\"200\"}",
        &[&server_ref],
    );
    assert_eq!(tracing.dropped_spans(), 0);
    tracing.shutdown(Duration::from_secs(5)).unwrap();
}

fn check_tree(spans: &[Span], server: &Span, query: &Span, o: &Outcome, failed: bool) {
    let tid = REMOTE_TRACE;
    let child = |parent: &Span, name: &str| -> Span {
        let v: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent() == parent.span_id() && s.name() == name)
            .collect();
        assert_eq!(
            v.len(),
            1,
            "one {name:?} under {:?}: {spans:#?}",
            parent.name()
        );
        v[0].clone()
    };
    // The server span: a child of the caller's span, named by its route template.
    assert_eq!(server.name(), "POST /api/v1/rag/query");
    assert_eq!(server.kind(), "SERVER");
    assert_eq!(server.parent(), REMOTE_SPAN);
    assert_eq!(server.attr_str("http.request.method"), "POST");
    assert_eq!(server.attr_str("http.route"), "/api/v1/rag/query");
    let status = if failed { 503 } else { 200 };
    assert_eq!(server.attr("http.response.status_code"), status);
    assert_eq!(query.name(), "rag.query");
    assert_eq!(query.parent(), server.span_id());
    assert_eq!(query.attr("tars.rag.sources"), 5);

    let retrieval = child(query, "rag.retrieval");
    assert_eq!(retrieval.attr_str("tars.rag.phase"), "retrieval");
    let get = child(&retrieval, "GET");
    assert_eq!(get.kind(), "CLIENT");
    assert_eq!(get.attr_str("db.system.name"), "redis");
    assert_eq!(get.attr_str("db.operation.name"), "GET");
    assert_eq!(get.attr("tars.cache.hit"), false);
    let lookup = child(&retrieval, "cache.lookup");
    assert_eq!(lookup.attr_str("tars.cache.name"), "embedding");
    let emb = child(&retrieval, "embeddings nomic-embed-text");
    assert_eq!(emb.kind(), "CLIENT");
    assert_eq!(emb.attr_str("gen_ai.operation.name"), "embeddings");
    assert_eq!(emb.attr_str("gen_ai.provider.name"), "ollama");
    assert_eq!(emb.attr_str("gen_ai.request.model"), "nomic-embed-text");
    let search = child(&retrieval, "retrieval documents");
    assert_eq!(search.attr_str("gen_ai.operation.name"), "retrieval");
    assert_eq!(search.attr_str("gen_ai.data_source.id"), "documents");
    assert_eq!(search.attr_str("db.system.name"), "chroma");
    let db = child(&retrieval, "SELECT documents");
    assert_eq!(db.kind(), "CLIENT");
    assert_eq!(db.attr_str("db.system.name"), "postgresql");
    assert_eq!(db.attr_str("db.operation.name"), "SELECT");
    assert_eq!(db.attr_str("db.query.summary"), "SELECT documents");
    assert_eq!(db.attr_str("db.namespace"), "tars");
    // GenAI conventions 1.37+: the provider under its current name only.
    assert!(emb.attr("gen_ai.system").is_null());
    // Peers: configured ones with their address, every client span with peer.service.
    assert_eq!(db.attr_str("server.address"), "postgres");
    assert_eq!(db.attr("server.port"), 5432);
    assert_eq!(db.attr_str("peer.service"), "postgresql");
    assert_eq!(emb.attr_str("server.address"), "ollama");
    assert_eq!(search.attr_str("peer.service"), "chroma");
    assert!(search.attr("server.address").is_null());
    assert_eq!(get.attr_str("peer.service"), "redis");
    assert!(server.attr("server.address").is_null());

    let generation = child(query, "rag.generation");
    let llm = child(&generation, "chat llama3");
    assert_eq!(llm.span_id(), hex(&o.llm.span_id));
    assert_eq!(llm.kind(), "CLIENT");
    assert_eq!(llm.attr_str("gen_ai.operation.name"), "chat");
    assert_eq!(llm.attr_str("gen_ai.provider.name"), "ollama");
    assert_eq!(llm.attr_str("gen_ai.request.model"), "llama3");
    assert_eq!(llm.attr("gen_ai.usage.input_tokens"), 321);
    assert_eq!(llm.attr("gen_ai.usage.output_tokens"), 64);
    assert_eq!(llm.attr("gen_ai.request.stream"), true);
    assert!(llm.attr("gen_ai.response.time_to_first_chunk").is_f64());
    assert_eq!(llm.attr_str("server.address"), "ollama");
    assert_eq!(llm.attr("server.port"), 11434);
    assert_eq!(llm.attr_str("peer.service"), "ollama");
    // Prompt text is not captured unless opted into.
    assert!(llm.attr("gen_ai.input.messages").is_null());

    // Ten distinct stage spans make the request's tree.
    let ids: Vec<&str> = [
        server,
        query,
        &retrieval,
        &get,
        &lookup,
        &emb,
        &search,
        &db,
        &generation,
        &llm,
    ]
    .iter()
    .map(|s| s.span_id())
    .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10);

    // Errors set the status and the error type.
    if failed {
        assert_eq!(llm.str("status_code"), "ERROR");
        assert_eq!(llm.attr_str("error.type"), "timeout");
        assert_eq!(query.str("status_code"), "ERROR");
        assert_eq!(query.attr_str("error.type"), "_OTHER");
        assert_eq!(server.str("status_code"), "ERROR");
        assert_eq!(server.attr_str("error.type"), "503");
        // The status code is the error type; the status repeats nothing.
        assert_eq!(server.str("status_message"), "");
        assert!(llm.attr("gen_ai.response.model").is_null());
    } else {
        assert_eq!(llm.attr_str("gen_ai.response.model"), "llama3");
        assert_eq!(
            llm.attr("gen_ai.response.finish_reasons"),
            &serde_json::json!(["stop"])
        );
        for s in [server, query, &llm] {
            assert_eq!(s.str("status_code"), "UNSET", "{}", s.name());
        }
    }

    // The outgoing call carries the trace on: same trace, the LLM span as parent, and the
    // caller's baggage.
    let tp = o
        .outgoing
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v.as_str());
    assert_eq!(tp, Some(format!("00-{tid}-{}-01", llm.span_id()).as_str()));
    assert!(
        o.outgoing
            .contains(&("baggage".into(), "user_id=u-42".into()))
    );
}

fn hex_bytes(h: &str) -> [u8; 8] {
    let mut b = [0; 8];
    for (i, x) in b.iter_mut().enumerate() {
        *x = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
    }
    b
}

#[test]
fn rag_request_tree_over_grpc() {
    export(Protocol::Grpc);
}

#[test]
fn rag_request_tree_over_http_protobuf() {
    export(Protocol::HttpProtobuf);
}

/// OTLP/JSON (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), read by the receiver's own JSON
/// decoding (hex ids, not protobuf's base64).
#[test]
fn rag_request_tree_over_http_json() {
    export(Protocol::HttpJson);
}

/// `tracing` spans made under a stage (through the tracing-opentelemetry layer) join the
/// same trace, as children of the stage.
#[test]
fn tracing_spans_nest_under_stages() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let t = Telemetry::new();
    let tracing = t
        .install_tracing(config("tars-backend", &receiver, Protocol::Grpc))
        .unwrap();
    let subscriber = tracing.subscriber_with_writer(&trace::LogConfig::production(), std::io::sink);
    let (req_id, tid) = tracing::subscriber::with_default(subscriber, || {
        let req = t.http().route("/api/v1/auth/login").start(Method::Post);
        let ids = req.trace_ref().unwrap();
        req.in_scope(|| {
            let span = tracing::info_span!("check_password", user = "u-1");
            let _in = span.enter();
            // A stage inside a `tracing` span is a child of that span.
            drop(t.db().query(DbOperation::Select));
        });
        req.finish(200);
        (hex(&ids.span_id), hex(&ids.trace_id))
    });
    tracing.force_flush().unwrap();
    let spans = receiver.wait_for(Duration::from_secs(10), |s| s.len() >= 3);
    let check = one(&spans, &tid, "check_password");
    assert_eq!(check.parent(), req_id);
    assert_eq!(check.attr_str("user"), "u-1");
    let db = one(&spans, &tid, "SELECT");
    assert_eq!(db.parent(), check.span_id());
    tracing.shutdown(Duration::from_secs(5)).unwrap();
}
