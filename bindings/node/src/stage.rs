//! Open stages (HTTP requests, RAG queries, LLM calls, timed stages, cache calls,
//! document jobs) by id, and parents.
//!
//! JavaScript keeps the id of the current stage in `AsyncLocalStorage` and passes it to the
//! next stage it starts: the parent is always explicit (`Parent::Span`), never a thread's
//! current context, so interleaved requests never share one. A stage ends only when
//! JavaScript ends it (finish, abandon); nothing here relies on a finalizer. Ids carry a
//! generation, so a stale id (a stage ended twice, a parent that ended) is refused rather
//! than reaching another stage.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;
use tars_telemetry::{
    CacheCall, CacheResult, DocumentJob, HttpRequest, LlmCall, Parent, RagQuery, SpanContext, Timer,
};

use crate::error;

/// An open stage.
pub enum Stage {
    Http(HttpRequest),
    Rag(RagQuery),
    /// A RAG phase, embeddings, a vector search, a database query.
    Timed(Timer),
    Llm(LlmCall),
    /// A Redis command or an embedding-cache lookup.
    Cache(CacheCall),
    /// A document ingested; `chunks` set before it ends.
    Document(DocumentJob, u32),
}

impl Stage {
    fn span_context(&self) -> Option<SpanContext> {
        match self {
            Stage::Http(s) => s.span_context(),
            Stage::Rag(s) => s.span_context(),
            Stage::Timed(s) => s.span_context(),
            Stage::Llm(s) => s.span_context(),
            Stage::Cache(s) => s.span_context(),
            Stage::Document(s, _) => s.span_context(),
        }
    }
}

const INDEX_BITS: u32 = 20;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

struct Slot {
    generation: u32,
    stage: Option<Stage>,
}

struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

static STAGES: Mutex<Slab> = Mutex::new(Slab {
    slots: Vec::new(),
    free: Vec::new(),
});

/// Stores a stage; returns its id (never 0).
pub fn insert(stage: Stage) -> Result<u32> {
    let mut s = STAGES.lock();
    let index = match s.free.pop() {
        Some(i) => i,
        None => {
            let i = s.slots.len() as u32;
            if i >= INDEX_MASK {
                return Err(error::invalid(
                    "ERR_TARS_TOO_MANY_STAGES",
                    "over a million stages are open: stages are started and never ended",
                ));
            }
            s.slots.push(Slot {
                generation: 1,
                stage: None,
            });
            i
        }
    };
    let slot = &mut s.slots[index as usize];
    slot.stage = Some(stage);
    Ok((slot.generation << INDEX_BITS) | (index + 1))
}

fn locate(id: u32) -> Option<(usize, u32)> {
    let index = (id & INDEX_MASK).checked_sub(1)?;
    Some((index as usize, id >> INDEX_BITS))
}

/// Runs `f` on the open stage `id`.
pub fn with<R>(id: u32, f: impl FnOnce(&mut Stage) -> R) -> Result<R> {
    let mut s = STAGES.lock();
    let (i, g) = locate(id).ok_or_else(ended)?;
    match s.slots.get_mut(i) {
        Some(Slot {
            generation,
            stage: Some(st),
        }) if *generation == g => Ok(f(st)),
        _ => Err(ended()),
    }
}

/// Removes the open stage `id` (to end it outside the lock).
pub fn take(id: u32) -> Result<Stage> {
    let mut s = STAGES.lock();
    let (i, g) = locate(id).ok_or_else(ended)?;
    let slot = s.slots.get_mut(i).ok_or_else(ended)?;
    if slot.generation != g || slot.stage.is_none() {
        return Err(ended());
    }
    let st = slot.stage.take().ok_or_else(ended)?;
    slot.generation = (slot.generation + 1) & ((1 << (32 - INDEX_BITS)) - 1);
    if slot.generation == 0 {
        slot.generation = 1;
    }
    s.free.push(i as u32);
    Ok(st)
}

fn ended() -> napi::Error {
    error::invalid(
        "ERR_TARS_STAGE_ENDED",
        "this stage has ended (or was never started)",
    )
}

/// The parent for a new stage: the open stage `parent` (0: none), else the remote
/// `traceparent`, else none (the stage starts a trace).
pub fn parent(parent: u32, traceparent: Option<&str>) -> Parent<'static> {
    if parent != 0
        && let Ok(Some(sc)) = with(parent, |s| s.span_context())
    {
        return Parent::Span(sc);
    }
    match traceparent.and_then(SpanContext::from_traceparent) {
        Some(sc) => Parent::Span(sc),
        None => Parent::Root,
    }
}

/// The W3C `traceparent` of a stage's span, when it has one (tracing installed and the
/// stage sampled or not): what outgoing calls carry.
#[napi(catch_unwind)]
pub fn stage_traceparent(id: u32) -> Result<Option<String>> {
    Ok(with(id, |s| s.span_context())?
        .filter(SpanContext::is_valid)
        .map(|sc| sc.to_traceparent()))
}

/// Marks an error on the stage's span without ending it.
#[napi(catch_unwind)]
pub fn stage_record_error(id: u32, error_type: String) -> Result<()> {
    with(id, |s| match s {
        Stage::Http(s) => s.record_error(&error_type),
        Stage::Rag(s) => s.record_error(&error_type),
        Stage::Timed(s) => s.record_error(&error_type),
        Stage::Llm(s) => s.record_error(&error_type),
        Stage::Cache(s) => s.record_error(&error_type),
        Stage::Document(s, _) => s.record_error(&error_type),
    })
}

/// Ends a stage that never finished (a cancelled task, an aborted request): counted in
/// `tars_telemetry_stages_abandoned_total`, the span ends with `error_type`, no duration.
#[napi(catch_unwind)]
pub fn stage_abandon(id: u32, error_type: String) -> Result<()> {
    match take(id)? {
        Stage::Http(s) => s.abandon_with(&error_type),
        Stage::Rag(s) => s.abandon_with(&error_type),
        Stage::Timed(s) => s.abandon_with(&error_type),
        Stage::Llm(s) => s.abandon_with(&error_type),
        Stage::Cache(s) => s.abandon_with(&error_type),
        Stage::Document(s, _) => s.abandon_with(&error_type),
    }
    Ok(())
}

/// Ends a stage: success when `error_type` is absent, else a failure of that type (an HTTP
/// request ends with `http_finish` instead). Returns the duration in seconds.
#[napi(catch_unwind)]
pub fn stage_end(id: u32, error_type: Option<String>) -> Result<f64> {
    let d = match (take(id)?, error_type) {
        (Stage::Rag(s), None) => s.succeed(),
        (Stage::Rag(s), Some(e)) => s.fail_with(&e),
        (Stage::Llm(s), None) => s.succeed(),
        (Stage::Llm(s), Some(e)) => s.fail_with(&e),
        (Stage::Timed(mut s), e) => {
            if let Some(e) = e {
                s.record_error(&e);
            }
            s.stop()
        }
        (Stage::Http(s), _) => s.finish(500),
        (Stage::Cache(s), None) => {
            s.finish(CacheResult::Ok);
            std::time::Duration::ZERO
        }
        (Stage::Cache(mut s), Some(e)) => {
            s.record_error(&e);
            s.finish(CacheResult::Error);
            std::time::Duration::ZERO
        }
        (Stage::Document(s, chunks), None) => s.succeed(chunks),
        (Stage::Document(s, _), Some(e)) => s.fail_with(&e),
    };
    Ok(d.as_secs_f64())
}

/// Stages open now (for leak checks in tests).
#[napi(catch_unwind)]
pub fn stages_open() -> u32 {
    let s = STAGES.lock();
    s.slots.iter().filter(|x| x.stage.is_some()).count() as u32
}
