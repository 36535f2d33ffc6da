//! Stage spans: the name, kind and attributes of each stage of a RAG request, after the
//! OpenTelemetry semantic conventions (GenAI, database, HTTP), and the machinery by which
//! the metric guards open and close them.
//!
//! The builders here ([`http_server`], [`llm`], [`db_query`], ...) are what the guards
//! use; they are public so that a stage timed elsewhere can be recorded with the same
//! shape (give the builder a start time, end the span with a timestamp).
//!
//! ```
//! use tars_telemetry::Method;
//! use tars_telemetry::trace::spans;
//! let b = spans::http_server(Method::Post, "/api/v1/rag/query");
//! assert_eq!(b.name, "POST /api/v1/rag/query");
//! let b = spans::llm("chat", "ollama", "llama3");
//! assert_eq!(b.name, "chat llama3");
//! ```

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use crate::domain::{CacheName, CacheResult, DbOperation, Method, Outcome, RagPhase};
use crate::stage::{Parent, SpanContext, StageEnd, StageHook, StageKind, StageSpan};

/// Attribute names used by stage spans.
pub mod semconv {
    /// `http.request.method`
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// `http.route`
    pub const HTTP_ROUTE: &str = "http.route";
    /// `http.response.status_code`
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// `url.scheme`
    pub const URL_SCHEME: &str = "url.scheme";
    /// `url.path`
    pub const URL_PATH: &str = "url.path";
    /// `error.type`
    pub const ERROR_TYPE: &str = "error.type";
    /// `gen_ai.operation.name`
    pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
    /// `gen_ai.provider.name`
    pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// `db.namespace`
    pub const DB_NAMESPACE: &str = "db.namespace";
    /// `gen_ai.system`: `gen_ai.provider.name` before the GenAI conventions 1.37, written
    /// only with `TraceConfig::with_legacy_genai_system`.
    pub const GEN_AI_SYSTEM: &str = "gen_ai.system";
    /// `gen_ai.request.model`
    pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
    /// `gen_ai.request.stream`
    pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";
    /// `gen_ai.usage.input_tokens`
    pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// `gen_ai.usage.output_tokens`
    pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// `gen_ai.usage.cache_read.input_tokens`
    pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
    /// `gen_ai.usage.cache_creation.input_tokens`
    pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str =
        "gen_ai.usage.cache_creation.input_tokens";
    /// `gen_ai.usage.reasoning.output_tokens`
    pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
    /// `gen_ai.response.time_to_first_chunk`
    pub const GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
    /// `gen_ai.data_source.id`
    pub const GEN_AI_DATA_SOURCE_ID: &str = "gen_ai.data_source.id";
    /// `gen_ai.input.messages`
    pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
    /// `gen_ai.output.messages`
    pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
    /// `db.system.name`
    pub const DB_SYSTEM_NAME: &str = "db.system.name";
    /// `db.operation.name`
    pub const DB_OPERATION_NAME: &str = "db.operation.name";
    /// `db.query.summary`
    pub const DB_QUERY_SUMMARY: &str = "db.query.summary";
    /// `server.address`: the host the client called (or, on a server span, this server).
    pub const SERVER_ADDRESS: &str = "server.address";
    /// `server.port`
    pub const SERVER_PORT: &str = "server.port";
    /// `peer.service`: the logical name of the called service (`ollama`, `postgresql`,
    /// `redis`, `chroma`), what trace backends draw dependency edges from.
    pub const PEER_SERVICE: &str = "peer.service";
    /// `gen_ai.response.model`
    pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// `gen_ai.response.finish_reasons`
    pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    /// Phase of a RAG query (`retrieval`, `rerank`, `generation`).
    pub const TARS_RAG_PHASE: &str = "tars.rag.phase";
    /// Sources retrieved by a RAG query.
    pub const TARS_RAG_SOURCES: &str = "tars.rag.sources";
    /// Relevance score of the best source of a RAG query.
    pub const TARS_RAG_RELEVANCE: &str = "tars.rag.relevance";
    /// Which cache a lookup went to (`redis`, `embedding`).
    pub const TARS_CACHE_NAME: &str = "tars.cache.name";
    /// Whether a cache lookup hit.
    pub const TARS_CACHE_HIT: &str = "tars.cache.hit";
    /// Chunks produced by an ingested document.
    pub const TARS_DOCUMENT_CHUNKS: &str = "tars.document.chunks";
}

use semconv::*;

/// The error type recorded when a stage fails without saying why (the semconv fallback).
pub const OTHER_ERROR: &str = "_OTHER";

/// An HTTP server request: `{method} {route}` (`HTTP {route}` for unknown methods), kind
/// server, with `http.request.method`, `http.route` and `url.scheme`. The route is a
/// template, never a raw path; the sampler reads it.
pub fn http_server(method: Method, route: &str) -> SpanBuilder {
    let verb = if method == Method::Other {
        "HTTP"
    } else {
        method.as_str()
    };
    SpanBuilder::from_name(format!("{verb} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new(HTTP_REQUEST_METHOD, method.as_str()),
            KeyValue::new(HTTP_ROUTE, route.to_string()),
            KeyValue::new(URL_SCHEME, "http"),
        ])
}

/// A RAG query as a whole: `rag.query`.
pub fn rag_query() -> SpanBuilder {
    SpanBuilder::from_name("rag.query").with_kind(SpanKind::Internal)
}

/// One phase of a RAG query: `rag.retrieval`, `rag.rerank`, `rag.generation`.
pub fn rag_phase(phase: RagPhase) -> SpanBuilder {
    let name = match phase {
        RagPhase::Retrieval => "rag.retrieval",
        RagPhase::Rerank => "rag.rerank",
        RagPhase::Generation => "rag.generation",
    };
    SpanBuilder::from_name(name)
        .with_kind(SpanKind::Internal)
        .with_attributes([KeyValue::new(TARS_RAG_PHASE, phase.as_str())])
}

/// An LLM inference call: `{operation} {model}`, kind client, with
/// `gen_ai.operation.name`, `gen_ai.provider.name` and `gen_ai.request.model`.
pub fn llm(operation: &str, provider: &str, model: &str) -> SpanBuilder {
    llm_v(operation.into(), provider.into(), model)
}

fn llm_v(operation: Arc<str>, provider: Arc<str>, model: &str) -> SpanBuilder {
    SpanBuilder::from_name(format!("{operation} {model}"))
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new(GEN_AI_OPERATION_NAME, operation),
            KeyValue::new(GEN_AI_PROVIDER_NAME, provider),
            KeyValue::new(GEN_AI_REQUEST_MODEL, model.to_string()),
        ])
}

/// An embedding call: `embeddings {model}` (`embeddings` when the model is not known).
pub fn embeddings(provider: &str, model: Option<&str>) -> SpanBuilder {
    embeddings_v(provider.into(), model.map(Arc::from))
}

fn embeddings_v(provider: Arc<str>, model: Option<Arc<str>>) -> SpanBuilder {
    let mut attrs = Vec::with_capacity(3);
    attrs.push(KeyValue::new(GEN_AI_OPERATION_NAME, "embeddings"));
    attrs.push(KeyValue::new(GEN_AI_PROVIDER_NAME, provider));
    let name: std::borrow::Cow<'static, str> = match model {
        Some(m) => {
            let name = format!("embeddings {m}");
            attrs.push(KeyValue::new(GEN_AI_REQUEST_MODEL, m));
            name.into()
        }
        None => "embeddings".into(),
    };
    SpanBuilder::from_name(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attrs)
}

/// A vector similarity search, the GenAI retrieval span: `retrieval {collection}`, with
/// `gen_ai.operation.name=retrieval`, `gen_ai.data_source.id` and `db.system.name`.
pub fn vector_search(system: &str, collection: Option<&str>) -> SpanBuilder {
    vector_search_v(system.into(), collection.map(Arc::from))
}

fn vector_search_v(system: Arc<str>, collection: Option<Arc<str>>) -> SpanBuilder {
    let mut attrs = Vec::with_capacity(3);
    attrs.push(KeyValue::new(GEN_AI_OPERATION_NAME, "retrieval"));
    attrs.push(KeyValue::new(DB_SYSTEM_NAME, system));
    let name: std::borrow::Cow<'static, str> = match collection {
        Some(c) => {
            let name = format!("retrieval {c}");
            attrs.push(KeyValue::new(GEN_AI_DATA_SOURCE_ID, c));
            name.into()
        }
        None => "retrieval".into(),
    };
    SpanBuilder::from_name(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attrs)
}

/// The `db.operation.name` of a database operation, when it has one.
pub fn db_operation_name(op: DbOperation) -> Option<&'static str> {
    Some(match op {
        DbOperation::Select => "SELECT",
        DbOperation::Insert => "INSERT",
        DbOperation::Update => "UPDATE",
        DbOperation::Delete => "DELETE",
        DbOperation::Upsert => "UPSERT",
        DbOperation::Transaction => "TRANSACTION",
        DbOperation::Other => return None,
    })
}

/// A database query: named by its `db.query.summary` (`SELECT users`) when given, else by
/// its operation (`SELECT`), else by the system; kind client, with `db.system.name`,
/// `db.operation.name` and `db.query.summary`. Query text is never recorded.
pub fn db_query(system: &str, op: DbOperation, summary: Option<&str>) -> SpanBuilder {
    db_query_v(system.into(), op, summary)
}

fn db_query_v(system: Arc<str>, op: DbOperation, summary: Option<&str>) -> SpanBuilder {
    let mut attrs = Vec::with_capacity(3);
    attrs.push(KeyValue::new(DB_SYSTEM_NAME, system.clone()));
    let op_name = db_operation_name(op);
    if let Some(o) = op_name {
        attrs.push(KeyValue::new(DB_OPERATION_NAME, o));
    }
    let name: std::borrow::Cow<'static, str> = match (summary, op_name) {
        (Some(s), _) => {
            attrs.push(KeyValue::new(DB_QUERY_SUMMARY, s.to_string()));
            s.to_string().into()
        }
        (None, Some(o)) => {
            // The summary of a query whose target is not known is its operation.
            attrs.push(KeyValue::new(DB_QUERY_SUMMARY, o));
            o.into()
        }
        (None, None) => system.to_string().into(),
    };
    SpanBuilder::from_name(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attrs)
}

/// A cache call. On Redis it is a Redis command span: named by the command (`GET`), with
/// `db.system.name=redis` and `db.operation.name`; on the embedding cache,
/// `cache.lookup`. Both carry `tars.cache.name`.
pub fn cache(cache: CacheName, command: &str) -> SpanBuilder {
    match cache {
        CacheName::Redis => SpanBuilder::from_name(command.to_string())
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(DB_SYSTEM_NAME, "redis"),
                KeyValue::new(DB_OPERATION_NAME, command.to_string()),
                KeyValue::new(TARS_CACHE_NAME, cache.as_str()),
            ]),
        CacheName::Embedding => SpanBuilder::from_name("cache.lookup")
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new(TARS_CACHE_NAME, cache.as_str())]),
    }
}

/// The ingestion of one document: `document.ingest`.
pub fn document_ingest() -> SpanBuilder {
    SpanBuilder::from_name("document.ingest").with_kind(SpanKind::Internal)
}

/// The span of one stage, held by its metric guard and ended with it.
pub(crate) struct Stage {
    /// The parent's context (its baggage kept) with this span active in it: entering the
    /// stage attaches it, so log lines reach the span as events.
    cx: Context,
    sampled: bool,
    errored: bool,
    capture_content: bool,
    /// The method of a server span, to name it when its route comes at the end.
    method: Method,
    /// The requested model of an LLM call, its response model unless told otherwise.
    model: Option<Arc<str>>,
    /// Response attributes set by the caller.
    response_model_set: bool,
    finish_reasons_set: bool,
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = self.cx.span();
        let sc = span.span_context();
        f.debug_struct("Stage")
            .field("trace_id", &sc.trace_id())
            .field("span_id", &sc.span_id())
            .field("sampled", &self.sampled)
            .finish()
    }
}

impl Stage {
    /// The context in which this span is the active one (its parent's baggage kept).
    pub(crate) fn context(&self) -> Context {
        self.cx.clone()
    }

    pub(crate) fn set_attribute(&mut self, kv: KeyValue) {
        match kv.key.as_str() {
            GEN_AI_RESPONSE_MODEL => self.response_model_set = true,
            GEN_AI_RESPONSE_FINISH_REASONS => self.finish_reasons_set = true,
            _ => {}
        }
        self.cx.span().set_attribute(kv);
    }

    pub(crate) fn capture_content(&self) -> bool {
        self.capture_content
    }

    fn outcome(&mut self, outcome: Outcome) {
        if outcome == Outcome::Error && !self.errored {
            self.set_error(OTHER_ERROR);
        }
    }

    fn error(&mut self, error_type: &str) {
        self.errored = true;
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(ERROR_TYPE, error_type.to_string()));
        span.set_status(Status::error(error_type.to_string()));
    }

    fn end_http(&mut self, status: u16, route: Option<&str>) {
        let span = self.cx.span();
        if let Some(r) = route {
            span.update_name(http_span_name(self.method, r));
            span.set_attribute(KeyValue::new(HTTP_ROUTE, r.to_string()));
        }
        span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
        if status >= 500 && !self.errored {
            // error.type is the status code; the status itself carries no description
            // (it would only repeat the code).
            let mut b = itoa::Buffer::new();
            span.set_attribute(KeyValue::new(ERROR_TYPE, b.format(status).to_string()));
            span.set_status(Status::error(""));
            self.errored = true;
        }
    }
}

fn to_span_context(sc: &opentelemetry::trace::SpanContext) -> SpanContext {
    SpanContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        trace_flags: sc.trace_flags().to_u8(),
        is_remote: sc.is_remote(),
    }
}

fn from_span_context(sc: &SpanContext) -> opentelemetry::trace::SpanContext {
    opentelemetry::trace::SpanContext::new(
        TraceId::from_bytes(sc.trace_id),
        SpanId::from_bytes(sc.span_id),
        TraceFlags::new(sc.trace_flags),
        sc.is_remote,
        TraceState::default(),
    )
}

impl StageSpan for Stage {
    fn span_context(&self) -> SpanContext {
        to_span_context(self.cx.span().span_context())
    }

    fn set_error(&mut self, error_type: &str) {
        self.error(error_type);
    }

    fn first_chunk(&mut self, after: Duration) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(GEN_AI_REQUEST_STREAM, true));
        span.set_attribute(KeyValue::new(
            GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
            after.as_secs_f64(),
        ));
    }

    fn end(mut self: Box<Self>, how: StageEnd<'_>) {
        let cx = self.cx.clone();
        let span = cx.span();
        match how {
            StageEnd::Http { status, route } => self.end_http(status, route),
            StageEnd::Rag {
                sources,
                relevance,
                outcome,
            } => {
                if let Some(n) = sources {
                    span.set_attribute(KeyValue::new(TARS_RAG_SOURCES, i64::from(n)));
                }
                if let Some(r) = relevance {
                    span.set_attribute(KeyValue::new(TARS_RAG_RELEVANCE, r));
                }
                self.outcome(outcome);
            }
            StageEnd::Llm { usage, outcome } => {
                let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                span.set_attribute(KeyValue::new(
                    GEN_AI_USAGE_INPUT_TOKENS,
                    n(usage.total_input()),
                ));
                span.set_attribute(KeyValue::new(
                    GEN_AI_USAGE_OUTPUT_TOKENS,
                    n(usage.total_output()),
                ));
                // The parts, only when the provider reported them.
                for (key, v) in [
                    (
                        GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
                        usage.cache_read_input_tokens,
                    ),
                    (
                        GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
                        usage.cache_write_input_tokens,
                    ),
                    (
                        GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
                        usage.reasoning_output_tokens,
                    ),
                ] {
                    if v > 0 {
                        span.set_attribute(KeyValue::new(key, n(v)));
                    }
                }
                if outcome == Outcome::Success {
                    // What the server answered with, unless the caller said otherwise:
                    // the model asked for, and a normal stop.
                    if let (false, Some(m)) = (self.response_model_set, &self.model) {
                        span.set_attribute(KeyValue::new(GEN_AI_RESPONSE_MODEL, m.clone()));
                    }
                    if !self.finish_reasons_set {
                        span.set_attribute(KeyValue::new(
                            GEN_AI_RESPONSE_FINISH_REASONS,
                            opentelemetry::Value::Array(
                                vec![opentelemetry::StringValue::from("stop")].into(),
                            ),
                        ));
                    }
                }
                self.outcome(outcome);
            }
            StageEnd::Document { chunks, outcome } => {
                if let Some(c) = chunks {
                    span.set_attribute(KeyValue::new(TARS_DOCUMENT_CHUNKS, i64::from(c)));
                }
                self.outcome(outcome);
            }
            StageEnd::Cache(result) => match result {
                CacheResult::Hit | CacheResult::Miss => {
                    span.set_attribute(KeyValue::new(TARS_CACHE_HIT, result == CacheResult::Hit))
                }
                CacheResult::Error if !self.errored => self.error(OTHER_ERROR),
                _ => {}
            },
            StageEnd::Abandoned { error_type } => {
                if !self.errored {
                    self.error(error_type);
                }
            }
            StageEnd::Done => {}
        }
        span.end();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The tracing side's own stage, when a guard's span is one (always, while only this
/// module installs hooks).
pub(crate) fn own(stage: &dyn StageSpan) -> Option<&Stage> {
    stage.as_any().downcast_ref::<Stage>()
}

pub(crate) fn own_mut(stage: &mut dyn StageSpan) -> Option<&mut Stage> {
    stage.as_any_mut().downcast_mut::<Stage>()
}

/// What the stage spans need to know besides the tracer.
#[derive(Debug)]
pub(crate) struct StageTracer {
    pub(crate) tracer: SdkTracer,
    /// The sampler follows the parent: a child of an unsampled parent is not even built.
    pub(crate) parent_based: bool,
    pub(crate) genai_operation: Arc<str>,
    pub(crate) genai_provider: Arc<str>,
    pub(crate) embedding_model: Option<Arc<str>>,
    pub(crate) db_system: Arc<str>,
    pub(crate) vector_system: Arc<str>,
    pub(crate) vector_collection: Option<Arc<str>>,
    pub(crate) capture_content: bool,
    pub(crate) peers: Peers,
}

/// The `server.address`, `server.port` and `peer.service` attributes of each kind of
/// client span (and the address of server spans), made once from the configuration.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    llm: Vec<KeyValue>,
    db: Vec<KeyValue>,
    redis: Vec<KeyValue>,
    vector: Vec<KeyValue>,
    http: Vec<KeyValue>,
}

impl Peers {
    pub(crate) fn new(config: &super::TraceConfig) -> Self {
        use super::Peer;
        let attrs = |peer: Peer, service: Option<&str>| {
            let mut v = Vec::with_capacity(3);
            if let Some(a) = config.peer(peer) {
                v.push(KeyValue::new(SERVER_ADDRESS, a.host.clone()));
                if let Some(p) = a.port {
                    v.push(KeyValue::new(SERVER_PORT, i64::from(p)));
                }
            }
            if let Some(s) = service {
                v.push(KeyValue::new(PEER_SERVICE, s.to_string()));
            }
            v
        };
        let mut llm = attrs(Peer::Llm, Some(&config.genai_provider));
        if config.genai_legacy_system {
            llm.push(KeyValue::new(GEN_AI_SYSTEM, config.genai_provider.clone()));
        }
        let mut db = attrs(Peer::Database, Some(&config.db_system));
        if let Some(ns) = &config.db_namespace {
            db.push(KeyValue::new(DB_NAMESPACE, ns.clone()));
        }
        Peers {
            llm,
            db,
            redis: attrs(Peer::Redis, Some("redis")),
            vector: attrs(Peer::VectorStore, Some(&config.vector_store_system)),
            http: attrs(Peer::Http, None),
        }
    }
}

fn with_attributes(mut b: SpanBuilder, kvs: &[KeyValue]) -> SpanBuilder {
    if !kvs.is_empty() {
        b.attributes
            .get_or_insert_with(Vec::new)
            .extend_from_slice(kvs);
    }
    b
}

impl StageTracer {
    fn start(&self, builder: SpanBuilder, parent: &Context) -> Option<Box<dyn StageSpan>> {
        let span = self.tracer.build_with_context(builder, parent);
        let sampled = span.span_context().is_sampled();
        Some(Box::new(Stage {
            cx: parent.with_span(span),
            sampled,
            errored: false,
            capture_content: self.capture_content,
            method: Method::Other,
            model: None,
            response_model_set: false,
            finish_reasons_set: false,
        }))
    }

    /// Starts under `cx`. `entry`: the stage may start a trace. `by_route`: its route may
    /// override the parent's decision, so an unsampled parent does not settle it.
    #[inline]
    fn start_in(
        &self,
        cx: &Context,
        entry: bool,
        by_route: bool,
        kind: &StageKind<'_>,
    ) -> Option<Box<dyn StageSpan>> {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            if !sc.is_sampled() && self.parent_based && !by_route {
                return None;
            }
        } else if !entry {
            // Inner stages do not start traces.
            return None;
        }
        self.start(self.builder(kind), cx)
    }

    fn builder(&self, kind: &StageKind<'_>) -> SpanBuilder {
        let peers = &self.peers;
        match *kind {
            StageKind::HttpServer {
                method,
                route: Some(route),
                path,
            } => {
                let b = with_attributes(http_server(method, route), &peers.http);
                match path {
                    Some(p) => with_attribute(b, KeyValue::new(URL_PATH, p.to_string())),
                    None => b,
                }
            }
            StageKind::HttpServer {
                method,
                route: None,
                path,
            } => {
                let mut attrs = vec![
                    KeyValue::new(HTTP_REQUEST_METHOD, method.as_str()),
                    KeyValue::new(URL_SCHEME, "http"),
                ];
                if let Some(p) = path {
                    attrs.push(KeyValue::new(URL_PATH, p.to_string()));
                }
                let verb = if method == Method::Other {
                    "HTTP"
                } else {
                    method.as_str()
                };
                attrs.extend_from_slice(&peers.http);
                SpanBuilder::from_name(verb)
                    .with_kind(SpanKind::Server)
                    .with_attributes(attrs)
            }
            StageKind::RagQuery => rag_query(),
            StageKind::RagPhase(p) => rag_phase(p),
            StageKind::Llm { model } => with_attributes(
                llm_v(
                    self.genai_operation.clone(),
                    self.genai_provider.clone(),
                    model,
                ),
                &peers.llm,
            ),
            StageKind::Embedding => with_attributes(
                embeddings_v(self.genai_provider.clone(), self.embedding_model.clone()),
                &peers.llm,
            ),
            StageKind::VectorSearch => with_attributes(
                vector_search_v(self.vector_system.clone(), self.vector_collection.clone()),
                &peers.vector,
            ),
            StageKind::Db { operation, summary } => with_attributes(
                db_query_v(self.db_system.clone(), operation, summary),
                &peers.db,
            ),
            StageKind::Cache {
                cache: c @ CacheName::Redis,
                command,
            } => with_attributes(cache(c, command), &peers.redis),
            StageKind::Cache { cache: c, command } => cache(c, command),
            StageKind::Document => document_ingest(),
        }
    }
}

fn with_attribute(mut b: SpanBuilder, kv: KeyValue) -> SpanBuilder {
    b.attributes.get_or_insert_with(Vec::new).push(kv);
    b
}

fn http_span_name(method: Method, route: &str) -> String {
    let verb = if method == Method::Other {
        "HTTP"
    } else {
        method.as_str()
    };
    format!("{verb} {route}")
}

impl StageHook for StageTracer {
    fn start(&self, kind: &StageKind<'_>, parent: &Parent<'_>) -> Option<Box<dyn StageSpan>> {
        let by_route = matches!(kind, StageKind::HttpServer { .. });
        let entry = by_route || matches!(kind, StageKind::RagQuery | StageKind::Document);
        let mut stage = match parent {
            // The common case, and on the unsampled path the whole cost: decide from the
            // current span context before building anything.
            Parent::Current => Context::map_current(|cx| self.start_in(cx, entry, by_route, kind))?,
            Parent::Root if entry => self.start(self.builder(kind), &Context::new())?,
            Parent::Root => return None,
            Parent::Span(sc) => {
                let cx = if sc.is_valid() {
                    Context::new().with_remote_span_context(from_span_context(sc))
                } else {
                    Context::new()
                };
                self.start_in(&cx, entry, by_route, kind)?
            }
            Parent::Stage(s) => match own(*s) {
                Some(p) if !p.sampled && self.parent_based && !by_route => return None,
                Some(p) => self.start(self.builder(kind), &p.context())?,
                None => {
                    let sc = s.span_context();
                    let cx = Context::new().with_remote_span_context(from_span_context(&sc));
                    self.start_in(&cx, entry, by_route, kind)?
                }
            },
        };
        match (kind, own_mut(&mut *stage)) {
            (StageKind::HttpServer { method, .. }, Some(s)) => s.method = *method,
            (StageKind::Llm { model }, Some(s)) => s.model = Some((*model).into()),
            _ => {}
        }
        Some(stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheCall, DocumentJob, HttpRequest, LlmCall, RagQuery, Timer};

    /// Guards stay `Send + Sync` with their span: they cross `.await` points and threads,
    /// and the bindings hold them.
    #[test]
    fn guards_stay_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Stage>();
        check::<Timer>();
        check::<HttpRequest>();
        check::<RagQuery>();
        check::<LlmCall>();
        check::<DocumentJob>();
        check::<CacheCall>();
    }

    #[test]
    fn span_names_follow_the_conventions() {
        assert_eq!(http_server(Method::Other, "/x").name, "HTTP /x");
        assert_eq!(
            db_query("postgresql", DbOperation::Other, None).name,
            "postgresql"
        );
        assert_eq!(
            db_query("postgresql", DbOperation::Insert, None).name,
            "INSERT"
        );
        assert_eq!(embeddings("ollama", None).name, "embeddings");
        assert_eq!(vector_search("chroma", Some("docs")).name, "retrieval docs");
        assert_eq!(cache(CacheName::Redis, "HGET").name, "HGET");
    }
}
