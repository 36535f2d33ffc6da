//! Without the `otel` feature: the guards' tracing hooks compile to nothing.

use crate::domain::{CacheName, CacheResult, DbOperation, Method, Outcome, RagPhase};
use crate::metric::TraceRef;
use crate::registry::{Metric, Registry};

/// Never built: a guard's stage slot is always `None`.
#[derive(Debug)]
pub(crate) enum Stage {}

pub(crate) type StageSlot = Option<Box<Stage>>;

#[allow(clippy::unused_self, clippy::boxed_local)]
impl Stage {
    pub(crate) fn trace_ref(&self) -> Option<TraceRef> {
        match *self {}
    }
    pub(crate) fn end(self: Box<Self>) {}
    pub(crate) fn end_http(self: Box<Self>, _: u16) {}
    pub(crate) fn end_rag(self: Box<Self>, _: Option<u32>, _: Option<f64>, _: Outcome) {}
    pub(crate) fn first_chunk(&mut self, _: std::time::Duration) {
        match *self {}
    }
    pub(crate) fn end_llm(self: Box<Self>, _: u64, _: u64, _: Outcome) {}
    pub(crate) fn end_document(self: Box<Self>, _: Option<u32>, _: Outcome) {}
    pub(crate) fn end_cache(self: Box<Self>, _: CacheResult) {}
}

/// The tracing slot of a telemetry: always empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hook;

impl Hook {
    pub(crate) fn new(registry: &Registry) -> Self {
        // The self-metric exists either way, at zero.
        if let Ok(f) = registry.register(&crate::catalog::SELF_SPANS_DROPPED) {
            for r in ["queue_full", "export_failed", "shutdown"] {
                let _: Option<Metric> = f.resolve(&[r]).ok();
            }
        }
        Hook
    }
    #[inline]
    pub(crate) fn http_server(&self, _: Method, _: &str) -> StageSlot {
        None
    }
    #[inline]
    pub(crate) fn rag_query(&self) -> StageSlot {
        None
    }
    #[inline]
    pub(crate) fn document(&self) -> StageSlot {
        None
    }
    #[inline]
    pub(crate) fn rag_phase(&self, _: RagPhase, _: Option<&Stage>) -> StageSlot {
        None
    }
    #[inline]
    pub(crate) fn llm(&self, _: &str) -> StageSlot {
        None
    }
    #[inline]
    pub(crate) fn embedding(&self) -> StageSlot {
        None
    }
    #[inline]
    pub(crate) fn vector_search(&self) -> StageSlot {
        None
    }
    #[inline]
    pub(crate) fn db(&self, _: DbOperation, _: Option<&str>) -> StageSlot {
        None
    }
    #[inline]
    pub(crate) fn cache(&self, _: CacheName, _: &'static str) -> StageSlot {
        None
    }
}
