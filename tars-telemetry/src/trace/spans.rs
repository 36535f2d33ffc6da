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

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanKind, Status, TraceContextExt, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span as SdkSpan};

use crate::domain::{CacheName, CacheResult, DbOperation, Method, Outcome, RagPhase};
use crate::metric::TraceRef;
use crate::registry::Registry;

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
    /// `gen_ai.request.model`
    pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
    /// `gen_ai.request.stream`
    pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";
    /// `gen_ai.usage.input_tokens`
    pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// `gen_ai.usage.output_tokens`
    pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
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
        (None, Some(o)) => o.into(),
        (None, None) => system.to_string().into(),
    };
    SpanBuilder::from_name(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attrs)
}

/// A cache call. On Redis it is a Redis command span: named by the command (`GET`), with
/// `db.system.name=redis` and `db.operation.name`; on the embedding cache,
/// `cache.lookup`. Both carry `tars.cache.name`.
pub fn cache(cache: CacheName, command: &'static str) -> SpanBuilder {
    match cache {
        CacheName::Redis => SpanBuilder::from_name(command)
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(DB_SYSTEM_NAME, "redis"),
                KeyValue::new(DB_OPERATION_NAME, command),
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
    span: SdkSpan,
    /// The context the span started in: its parent and the baggage.
    parent: Context,
    sampled: bool,
    errored: bool,
    capture_content: bool,
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sc = self.span.span_context();
        f.debug_struct("Stage")
            .field("trace_id", &sc.trace_id())
            .field("span_id", &sc.span_id())
            .field("sampled", &self.sampled)
            .finish()
    }
}

/// What a guard holds: the stage span, when tracing made one.
pub(crate) type StageSlot = Option<Box<Stage>>;

impl Stage {
    /// The ids of this span, when it is sampled (only sampled spans make exemplars).
    #[inline]
    pub(crate) fn trace_ref(&self) -> Option<TraceRef> {
        self.sampled.then(|| {
            let sc = self.span.span_context();
            TraceRef::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes())
        })
    }

    pub(crate) fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// The context in which this span is the active one (its parent's baggage kept).
    pub(crate) fn context(&self) -> Context {
        self.parent
            .with_remote_span_context(self.span.span_context().clone())
    }

    pub(crate) fn set_attribute(&mut self, kv: KeyValue) {
        self.span.set_attribute(kv);
    }

    /// Marks the span failed with this `error.type`.
    pub(crate) fn set_error(&mut self, error_type: &str) {
        self.errored = true;
        self.span
            .set_attribute(KeyValue::new(ERROR_TYPE, error_type.to_string()));
        self.span.set_status(Status::error(error_type.to_string()));
    }

    pub(crate) fn capture_content(&self) -> bool {
        self.capture_content
    }

    fn outcome(&mut self, outcome: Outcome) {
        if outcome == Outcome::Error && !self.errored {
            self.set_error(OTHER_ERROR);
        }
    }

    /// Ends a stage without an outcome of its own (a timed operation).
    pub(crate) fn end(mut self: Box<Self>) {
        self.span.end();
    }

    pub(crate) fn end_outcome(mut self: Box<Self>, outcome: Outcome) {
        self.outcome(outcome);
        self.span.end();
    }

    pub(crate) fn end_http(mut self: Box<Self>, status: u16) {
        self.span
            .set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
        if status >= 500 && !self.errored {
            let mut b = itoa::Buffer::new();
            self.set_error(b.format(status));
        }
        self.span.end();
    }

    pub(crate) fn end_rag(
        mut self: Box<Self>,
        sources: Option<u32>,
        relevance: Option<f64>,
        outcome: Outcome,
    ) {
        if let Some(n) = sources {
            self.span
                .set_attribute(KeyValue::new(TARS_RAG_SOURCES, i64::from(n)));
        }
        if let Some(r) = relevance {
            self.span
                .set_attribute(KeyValue::new(TARS_RAG_RELEVANCE, r));
        }
        self.end_outcome(outcome);
    }

    pub(crate) fn first_chunk(&mut self, after: Duration) {
        self.span
            .set_attribute(KeyValue::new(GEN_AI_REQUEST_STREAM, true));
        self.span.set_attribute(KeyValue::new(
            GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
            after.as_secs_f64(),
        ));
    }

    pub(crate) fn end_llm(
        mut self: Box<Self>,
        input_tokens: u64,
        output_tokens: u64,
        outcome: Outcome,
    ) {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.span
            .set_attribute(KeyValue::new(GEN_AI_USAGE_INPUT_TOKENS, n(input_tokens)));
        self.span
            .set_attribute(KeyValue::new(GEN_AI_USAGE_OUTPUT_TOKENS, n(output_tokens)));
        self.end_outcome(outcome);
    }

    pub(crate) fn end_document(mut self: Box<Self>, chunks: Option<u32>, outcome: Outcome) {
        if let Some(c) = chunks {
            self.span
                .set_attribute(KeyValue::new(TARS_DOCUMENT_CHUNKS, i64::from(c)));
        }
        self.end_outcome(outcome);
    }

    pub(crate) fn end_cache(mut self: Box<Self>, result: CacheResult) {
        match result {
            CacheResult::Hit | CacheResult::Miss => self
                .span
                .set_attribute(KeyValue::new(TARS_CACHE_HIT, result == CacheResult::Hit)),
            CacheResult::Error if !self.errored => self.set_error(OTHER_ERROR),
            _ => {}
        }
        self.span.end();
    }
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
}

impl StageTracer {
    fn start(&self, builder: SpanBuilder, parent: &Context) -> StageSlot {
        let span = self.tracer.build_with_context(builder, parent);
        let sampled = span.span_context().is_sampled();
        Some(Box::new(Stage {
            span,
            parent: parent.clone(),
            sampled,
            errored: false,
            capture_content: self.capture_content,
        }))
    }

    /// A stage that may start a trace. `by_route`: its route may override the parent's
    /// decision, so an unsampled parent does not settle it.
    fn entry(&self, by_route: bool, make: impl FnOnce() -> SpanBuilder) -> StageSlot {
        Context::map_current(|cx| {
            if self.parent_based && !by_route {
                let span = cx.span();
                let sc = span.span_context();
                if sc.is_valid() && !sc.is_sampled() {
                    return None;
                }
            }
            self.start(make(), cx)
        })
    }

    /// A stage inside a trace: built only under a sampled parent (the current span, or
    /// `parent`). With no parent it makes no span: inner stages do not start traces.
    #[inline]
    fn child(&self, parent: Option<&Stage>, make: impl FnOnce() -> SpanBuilder) -> StageSlot {
        match parent {
            Some(p) if p.sampled || !self.parent_based => self.start(make(), &p.context()),
            Some(_) => None,
            None => Context::map_current(|cx| {
                let span = cx.span();
                let sc = span.span_context();
                if !sc.is_valid() || (self.parent_based && !sc.is_sampled()) {
                    return None;
                }
                self.start(make(), cx)
            }),
        }
    }
}

/// The tracing slot of a [`crate::Telemetry`]: empty until tracing is installed, then
/// the stage tracer. Every domain handle holds a clone; an empty slot costs one load.
#[derive(Clone, Default)]
pub(crate) struct Hook(Arc<OnceLock<StageTracer>>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Hook(tracing)"
        } else {
            "Hook(off)"
        })
    }
}

/// Reasons a finished span is not exported, the `reason` label of
/// `tars_telemetry_spans_dropped_total`.
pub const DROP_REASONS: [&str; 3] = ["queue_full", "export_failed", "shutdown"];

impl Hook {
    pub(crate) fn new(registry: &Registry) -> Self {
        super::register_self_metrics(registry);
        Hook::default()
    }

    pub(crate) fn install(&self, t: StageTracer) -> bool {
        self.0.set(t).is_ok()
    }

    pub(crate) fn is_installed(&self) -> bool {
        self.0.get().is_some()
    }

    #[inline]
    fn get(&self) -> Option<&StageTracer> {
        self.0.get()
    }

    pub(crate) fn http_server(&self, method: Method, route: &str) -> StageSlot {
        self.get()?.entry(true, || http_server(method, route))
    }

    pub(crate) fn rag_query(&self) -> StageSlot {
        self.get()?.entry(false, rag_query)
    }

    pub(crate) fn document(&self) -> StageSlot {
        self.get()?.entry(false, document_ingest)
    }

    #[inline]
    pub(crate) fn rag_phase(&self, phase: RagPhase, parent: Option<&Stage>) -> StageSlot {
        self.get()?.child(parent, || rag_phase(phase))
    }

    #[inline]
    pub(crate) fn llm(&self, model: &str) -> StageSlot {
        let t = self.get()?;
        t.child(None, || {
            llm_v(t.genai_operation.clone(), t.genai_provider.clone(), model)
        })
    }

    #[inline]
    pub(crate) fn embedding(&self) -> StageSlot {
        let t = self.get()?;
        t.child(None, || {
            embeddings_v(t.genai_provider.clone(), t.embedding_model.clone())
        })
    }

    #[inline]
    pub(crate) fn vector_search(&self) -> StageSlot {
        let t = self.get()?;
        t.child(None, || {
            vector_search_v(t.vector_system.clone(), t.vector_collection.clone())
        })
    }

    #[inline]
    pub(crate) fn db(&self, op: DbOperation, summary: Option<&str>) -> StageSlot {
        let t = self.get()?;
        t.child(None, || db_query_v(t.db_system.clone(), op, summary))
    }

    #[inline]
    pub(crate) fn cache(&self, name: CacheName, command: &'static str) -> StageSlot {
        self.get()?.child(None, || cache(name, command))
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
