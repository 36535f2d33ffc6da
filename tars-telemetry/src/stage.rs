//! Stages and the hook that traces them.
//!
//! Every guard of the domain API (an HTTP request, a RAG query, an LLM call, a timed
//! database query, ...) is a *stage*. The core records a stage's metrics itself; a span for
//! it comes from a [`StageHook`], which tracing installs (the `trace` module, over
//! OpenTelemetry) and which is empty otherwise. The domain talks only to this module, so
//! the core builds, and records, without any tracing code.
//!
//! A stage's parent is explicit when the caller says so ([`Parent::Span`],
//! [`Parent::Stage`]) and the thread's current context otherwise ([`Parent::Current`]):
//! asyncio tasks and Node requests interleave on one thread, so the bindings keep the
//! current stage's [`SpanContext`] in a `ContextVar` or `AsyncLocalStorage` and pass it
//! in.
//!
//! ```
//! use tars_telemetry::{Telemetry, Parent, SpanContext};
//!
//! let t = Telemetry::new();
//! // A parent that came from elsewhere: a header, another SDK, a binding's ContextVar.
//! let parent = SpanContext::from_traceparent(
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! let query = t.rag().start_query_with(Parent::Span(parent));
//! let call = t.llm_model("llama3").unwrap().start_with(query.parent());
//! call.succeed();
//! query.succeed();
//! ```

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use crate::labels::{CacheName, CacheResult, DbOperation, Method, Outcome, RagPhase, TokenKind};
use crate::metric::TraceRef;

/// The identity of a span, as W3C trace context carries it: what a binding keeps for the
/// current stage and passes back as the parent of the next.
///
/// ```
/// use tars_telemetry::SpanContext;
/// let sc = SpanContext::from_traceparent(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// assert!(sc.is_sampled() && sc.is_remote);
/// assert_eq!(sc.to_traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SpanContext {
    /// The trace id; all zero is invalid.
    pub trace_id: [u8; 16],
    /// The span id; all zero is invalid.
    pub span_id: [u8; 8],
    /// W3C trace flags: bit 0 is "sampled".
    pub trace_flags: u8,
    /// Whether the context came from another process (a header) rather than this one.
    pub is_remote: bool,
}

impl SpanContext {
    /// The "sampled" bit of [`SpanContext::trace_flags`].
    pub const SAMPLED: u8 = 0x01;

    /// A local span context.
    pub const fn new(trace_id: [u8; 16], span_id: [u8; 8], trace_flags: u8) -> Self {
        SpanContext {
            trace_id,
            span_id,
            trace_flags,
            is_remote: false,
        }
    }

    /// Whether both ids are non-zero (W3C: a context with a zero id is ignored).
    pub fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }

    /// Whether the span is sampled (will be exported).
    pub fn is_sampled(&self) -> bool {
        self.trace_flags & Self::SAMPLED != 0
    }

    /// The ids to leave as an exemplar, when the span is valid and sampled.
    pub fn trace_ref(&self) -> Option<TraceRef> {
        (self.is_valid() && self.is_sampled()).then(|| TraceRef::new(self.trace_id, self.span_id))
    }

    /// Parses a W3C `traceparent` header (version 00, or a later version read as 00).
    /// The result is marked remote.
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let h = header.trim().as_bytes();
        if h.len() < 55 || h[2] != b'-' || h[35] != b'-' || h[52] != b'-' {
            return None;
        }
        let version = hex_byte(&h[0..2])?;
        // Version ff is forbidden; 00 is exactly 55 bytes; later versions may append.
        if version == 0xff
            || (version == 0 && h.len() != 55)
            || (version != 0 && h.len() > 55 && h[55] != b'-')
        {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, b) in trace_id.iter_mut().enumerate() {
            *b = hex_byte(&h[3 + 2 * i..5 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, b) in span_id.iter_mut().enumerate() {
            *b = hex_byte(&h[36 + 2 * i..38 + 2 * i])?;
        }
        let trace_flags = hex_byte(&h[53..55])?;
        let sc = SpanContext {
            trace_id,
            span_id,
            trace_flags,
            is_remote: true,
        };
        sc.is_valid().then_some(sc)
    }

    /// The W3C `traceparent` header for this context.
    pub fn to_traceparent(&self) -> String {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.span_id);
        s.push('-');
        push_hex(&mut s, &[self.trace_flags]);
        s
    }
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    let d = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(d(two[0])? << 4 | d(two[1])?)
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// Where a new stage's span hangs.
#[derive(Clone, Copy, Default)]
pub enum Parent<'a> {
    /// The thread's current context (the OpenTelemetry context a guard's `enter` or a
    /// `tracing` span made current): the form for synchronous Rust code.
    #[default]
    Current,
    /// No parent: a stage that starts traces (an HTTP request, a RAG query, a document)
    /// starts one; an inner stage makes no span.
    Root,
    /// An explicit parent: a span context kept by a binding, read from a header, or made
    /// by another tracing SDK. An unsampled parent makes unsampled children.
    Span(SpanContext),
    /// Another stage of this process (keeps its baggage).
    Stage(&'a dyn StageSpan),
}

impl fmt::Debug for Parent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parent::Current => f.write_str("Current"),
            Parent::Root => f.write_str("Root"),
            Parent::Span(sc) => f.debug_tuple("Span").field(sc).finish(),
            Parent::Stage(s) => f.debug_tuple("Stage").field(&s.span_context()).finish(),
        }
    }
}

impl From<SpanContext> for Parent<'_> {
    fn from(sc: SpanContext) -> Self {
        Parent::Span(sc)
    }
}

impl From<Option<SpanContext>> for Parent<'_> {
    /// `None` is [`Parent::Root`]: a binding with no current stage has no parent.
    fn from(sc: Option<SpanContext>) -> Self {
        sc.map_or(Parent::Root, Parent::Span)
    }
}

/// Which stage a span is for, with what names it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum StageKind<'a> {
    /// An HTTP server request. `route` is the template when known at start; `path` is the
    /// raw path, for the span only (never a label).
    HttpServer {
        /// The request method.
        method: Method,
        /// The route template, if routing has happened.
        route: Option<&'a str>,
        /// The raw request path.
        path: Option<&'a str>,
    },
    /// A RAG query.
    RagQuery,
    /// A phase of a RAG query.
    RagPhase(RagPhase),
    /// An LLM call to one model.
    Llm {
        /// The model, as the caller named it.
        model: &'a str,
    },
    /// An embedding call.
    Embedding,
    /// A vector-store search.
    VectorSearch,
    /// A database query.
    Db {
        /// The operation.
        operation: DbOperation,
        /// A low-cardinality summary (`SELECT conversations`), if given.
        summary: Option<&'a str>,
    },
    /// A cache command.
    Cache {
        /// Which cache.
        cache: CacheName,
        /// The command (`GET`, `SETEX`).
        command: &'a str,
    },
    /// The ingestion of one document.
    Document,
}

impl StageKind<'_> {
    /// The bounded name of this kind of stage (the `stage` label of self-metrics).
    pub fn stage_type(&self) -> StageType {
        match self {
            StageKind::HttpServer { .. } => StageType::HttpServer,
            StageKind::RagQuery => StageType::RagQuery,
            StageKind::RagPhase(_) => StageType::RagPhase,
            StageKind::Llm { .. } => StageType::Llm,
            StageKind::Embedding => StageType::Embedding,
            StageKind::VectorSearch => StageType::VectorSearch,
            StageKind::Db { .. } => StageType::Db,
            StageKind::Cache { .. } => StageType::Cache,
            StageKind::Document => StageType::Document,
        }
    }
}

crate::labels::label_enum!(
    /// The kinds of stage (`stage` label of `tars_telemetry_stages_abandoned_total`).
    StageType {
        HttpServer => "http_server", RagQuery => "rag_query", RagPhase => "rag_phase",
        Llm => "llm", Embedding => "embedding", VectorSearch => "vector_search", Db => "db",
        Cache => "cache", Document => "document", WebSocket => "websocket",
    }
);

crate::labels::label_enum!(
    /// Why a finished span was not exported (`reason` label of
    /// `tars_telemetry_spans_dropped_total`).
    SpanDropReason {
        QueueFull => "queue_full", ExportFailed => "export_failed", Shutdown => "shutdown",
    }
);

/// How a stage ended, with what its span records.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum StageEnd<'a> {
    /// A timed operation that finished.
    Done,
    /// An HTTP request answered with `status`; `route` is the template bound at the end
    /// when it was not known at the start.
    Http {
        /// The response status code.
        status: u16,
        /// The route template bound at the end, if any.
        route: Option<&'a str>,
    },
    /// A RAG query.
    Rag {
        /// Sources retrieved.
        sources: Option<u32>,
        /// Relevance of the best source.
        relevance: Option<f64>,
        /// How it ended.
        outcome: Outcome,
    },
    /// An LLM call.
    Llm {
        /// Its tokens, by kind.
        usage: TokenUsage,
        /// How it ended.
        outcome: Outcome,
    },
    /// A document ingestion.
    Document {
        /// Chunks produced.
        chunks: Option<u32>,
        /// How it ended.
        outcome: Outcome,
    },
    /// A cache command.
    Cache(CacheResult),
    /// Abandoned before it finished: cancelled, or dropped unfinished.
    Abandoned {
        /// The `error.type` to record (`cancelled`, `abandoned`).
        error_type: &'a str,
    },
}

/// The span of one stage, held by its guard and ended with it.
pub trait StageSpan: Send + Sync + fmt::Debug + Any {
    /// This span's identity.
    fn span_context(&self) -> SpanContext;
    /// Marks the span failed with this `error.type`.
    fn set_error(&mut self, error_type: &str);
    /// The first chunk of a streamed LLM response arrived `after` the start.
    fn first_chunk(&mut self, _after: Duration) {}
    /// Ends the span.
    fn end(self: Box<Self>, how: StageEnd<'_>);
    /// For the tracing side to reach its own span type.
    fn as_any(&self) -> &dyn Any;
    /// For the tracing side to reach its own span type.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// What makes stage spans. Tracing installs one; without it, stages make no span and cost
/// one atomic load.
pub trait StageHook: Send + Sync + 'static {
    /// A span for a new stage, or `None` (not sampled under a parent-based sampler, or an
    /// inner stage with no parent).
    /// Taken by reference: the unsampled path reads one or two fields, and copying both
    /// enums into the call costs more than that.
    fn start(&self, kind: &StageKind<'_>, parent: &Parent<'_>) -> Option<Box<dyn StageSpan>>;
}

/// What a guard holds: its span, when the hook made one.
pub(crate) type StageSlot = Option<Box<dyn StageSpan>>;

/// The hook slot of one telemetry, shared by every domain handle. Empty until tracing is
/// installed; replaceable (a forked child re-arms tracing), lock-free to read.
#[derive(Clone, Default)]
pub(crate) struct Hook(Arc<HookSlot>);

#[derive(Default)]
struct HookSlot {
    /// A leaked `Box<Arc<dyn StageHook>>`, or null. Replaced hooks are leaked rather than
    /// freed: a thread may be inside `start` on the old one, and replacement happens a
    /// handful of times per process (install, after a fork).
    current: AtomicPtr<Arc<dyn StageHook>>,
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_installed() {
            "Hook(tracing)"
        } else {
            "Hook(off)"
        })
    }
}

impl Hook {
    /// Installs `hook` if none is; returns whether it did.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn install(&self, hook: Arc<dyn StageHook>) -> bool {
        let p = Box::into_raw(Box::new(hook));
        match self.0.current.compare_exchange(
            std::ptr::null_mut(),
            p,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(_) => {
                // SAFETY: `p` was never published.
                drop(unsafe { Box::from_raw(p) });
                false
            }
        }
    }

    /// Replaces the hook (or sets it), leaking the old one.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn replace(&self, hook: Arc<dyn StageHook>) {
        let p = Box::into_raw(Box::new(hook));
        self.0.current.swap(p, Ordering::AcqRel);
    }

    /// Empties the slot, leaking the old hook: stages make no spans from now on.
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) fn clear(&self) {
        self.0.current.swap(std::ptr::null_mut(), Ordering::AcqRel);
    }

    pub(crate) fn is_installed(&self) -> bool {
        !self.0.current.load(Ordering::Acquire).is_null()
    }

    /// A span for a new stage, if a hook is installed and makes one.
    #[inline]
    pub(crate) fn start(&self, kind: StageKind<'_>, parent: Parent<'_>) -> StageSlot {
        let p = self.0.current.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: a published pointer is never freed (see `HookSlot::current`).
        unsafe { &*p }.start(&kind, &parent)
    }
}

/// The trace reference of a slot's span, when sampled.
#[inline]
pub(crate) fn slot_trace(slot: &StageSlot) -> Option<TraceRef> {
    slot.as_ref().and_then(|s| s.span_context().trace_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_garbage() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = SpanContext::from_traceparent(h).unwrap();
        assert_eq!(sc.to_traceparent(), h);
        assert!(sc.trace_ref().is_some());
        let unsampled = SpanContext::from_traceparent(&h.replace("-01", "-00")).unwrap();
        assert!(!unsampled.is_sampled() && unsampled.trace_ref().is_none());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(SpanContext::from_traceparent(bad).is_none(), "{bad}");
        }
        // A later version may append fields.
        assert!(SpanContext::from_traceparent(&format!("01{}-x", &h[2..])).is_some());
    }
}

/// The tokens of one LLM call, with the OpenTelemetry GenAI conventions' meaning:
/// `input_tokens` counts every prompt token, the cache's included (OpenAI's
/// `prompt_tokens`; for Anthropic, `input_tokens + cache_read_input_tokens +
/// cache_creation_input_tokens`), and `output_tokens` every completion token, reasoning
/// included. Where the parts exceed their whole, the whole is taken as their sum.
///
/// ```
/// use tars_telemetry::llm::{TokenKind, TokenUsage};
/// let u = TokenUsage { input_tokens: 1000, cache_read_input_tokens: 800, output_tokens: 50,
///                      reasoning_output_tokens: 20, ..Default::default() };
/// let by_kind = u.by_kind();
/// assert_eq!(by_kind[TokenKind::Input.index()], 200);      // neither read nor written
/// assert_eq!(by_kind[TokenKind::CacheRead.index()], 800);
/// assert_eq!(by_kind[TokenKind::Output.index()], 30);      // other than reasoning
/// assert_eq!(by_kind[TokenKind::Reasoning.index()], 20);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: u64,
    /// Completion tokens, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cache_read_input_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_write_input_tokens: u64,
    /// Completion tokens spent on reasoning.
    pub reasoning_output_tokens: u64,
}

impl TokenUsage {
    /// Every prompt token: `input_tokens`, or the cache's parts if they are more.
    pub fn total_input(&self) -> u64 {
        self.input_tokens.max(
            self.cache_read_input_tokens
                .saturating_add(self.cache_write_input_tokens),
        )
    }

    /// Every completion token: `output_tokens`, or the reasoning part if it is more.
    pub fn total_output(&self) -> u64 {
        self.output_tokens.max(self.reasoning_output_tokens)
    }

    /// The call's tokens as a partition by [`TokenKind`] (indexed by `TokenKind::index`):
    /// each token in exactly one kind, so that each is priced once.
    pub fn by_kind(&self) -> [u64; 5] {
        let cached = self
            .cache_read_input_tokens
            .saturating_add(self.cache_write_input_tokens);
        let mut k = [0; 5];
        k[TokenKind::Input.index()] = self.total_input() - cached;
        k[TokenKind::CacheRead.index()] = self.cache_read_input_tokens;
        k[TokenKind::CacheWrite.index()] = self.cache_write_input_tokens;
        k[TokenKind::Output.index()] = self.total_output() - self.reasoning_output_tokens;
        k[TokenKind::Reasoning.index()] = self.reasoning_output_tokens;
        k
    }
}
