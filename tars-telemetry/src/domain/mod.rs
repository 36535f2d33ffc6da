//! The domain API: one type per part of a RAG service, holding resolved handles.
//!
//! Bounded labels (status, operation, direction, method) are enums resolved to handles
//! when the type is built; free-form labels (model, route) resolve once to a reusable
//! handle ([`LlmModel`], [`HttpRoute`]). After that, recording is atomics only.

mod cache;
mod db;
mod documents;
mod embeddings;
mod errors;
mod http;
mod llm;
mod pricing;
mod rag;
mod timer;
mod vector_store;
mod web_vitals;
mod websocket;

pub use crate::labels::{
    CacheName, CacheOperation, CacheResult, Component, DbOperation, Direction, Method, Outcome,
    RagPhase, TokenKind,
};
pub use cache::{CacheCall, CacheMetrics, RedisMetrics};
pub use db::DbMetrics;
pub use documents::{DocumentJob, DocumentMetrics};
pub use embeddings::EmbeddingMetrics;
pub use errors::{AppInfo, ErrorMetrics};
pub use http::{
    ABANDONED_STATUS, AbandonReason, DEFAULT_EXCLUDED_PATHS, ExcludedPaths, HttpMetrics,
    HttpRequest, HttpRoute, MAX_SPAN_PATH, UNMATCHED_ROUTE, span_path,
};
pub use llm::{LlmCall, LlmModel, LlmModels, LlmUsage};
pub use pricing::{LlmPricing, MAX_PRICE_PER_MILLION, ModelPrices, PRICING_FILE_ENV, PricingError};
pub use rag::{RagMetrics, RagQuery};
pub(crate) use timer::TimedTarget;
pub use timer::Timer;
pub use vector_store::VectorStoreMetrics;
pub use web_vitals::{
    BeaconOutcome, MAX_BEACON_BYTES, MAX_BEACON_REPORTS, MAX_ROUTE, NAVIGATION_TYPES, WebVital,
    WebVitalsMetrics, WebVitalsRejection,
};
pub use websocket::{WebSocketConnection, WebSocketMetrics};

use std::sync::Arc;

use parking_lot::RwLock;
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use crate::catalog::MetricDef;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram, TraceRef};
use crate::registry::{Family, Metric, Registry};
use crate::stage::{Parent, SpanContext, StageEnd, StageSlot, slot_trace};

/// What every guard shares: its clock, its span and the trace its exemplars point to.
#[derive(Debug)]
pub(crate) struct StageState {
    start: Instant,
    trace: Option<TraceRef>,
    pub(crate) stage: StageSlot,
    done: bool,
}

impl StageState {
    #[inline]
    pub(crate) fn new(stage: StageSlot) -> Self {
        StageState {
            start: Instant::now(),
            trace: slot_trace(&stage),
            stage,
            done: false,
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Marks the stage ended: the elapsed time the first time, `None` after.
    #[inline]
    pub(crate) fn finish(&mut self) -> Option<Duration> {
        if self.done {
            return None;
        }
        self.done = true;
        Some(self.start.elapsed())
    }

    #[inline]
    pub(crate) fn end_span(&mut self, how: StageEnd<'_>) {
        if let Some(s) = self.stage.take() {
            s.end(how);
        }
    }

    #[inline]
    pub(crate) fn trace(&self) -> Option<&TraceRef> {
        self.trace.as_ref()
    }

    pub(crate) fn set_trace(&mut self, trace: TraceRef) {
        self.trace = Some(trace);
    }

    pub(crate) fn span_context(&self) -> Option<SpanContext> {
        self.stage.as_ref().map(|s| s.span_context())
    }

    pub(crate) fn parent(&self) -> Parent<'_> {
        match &self.stage {
            Some(s) => Parent::Stage(&**s),
            None => Parent::Root,
        }
    }

    pub(crate) fn set_error(&mut self, error_type: &str) {
        if let Some(s) = self.stage.as_deref_mut() {
            s.set_error(error_type);
        }
    }
}

/// The methods every guard has: its span's identity, its parent form for child stages,
/// exemplars from another tracer, error marking, and abandonment.
macro_rules! stage_guard {
    ($ty:ident, drop = stop) => {
        $crate::domain::stage_guard!(@methods $ty);
        impl Drop for $ty {
            fn drop(&mut self) {
                self.record();
            }
        }
    };
    ($ty:ident) => {
        $crate::domain::stage_guard!(@methods $ty);
        impl Drop for $ty {
            fn drop(&mut self) {
                self.abandon_inner("abandoned");
            }
        }
    };
    (@methods $ty:ident) => {
        impl $ty {
            /// This stage's span context, when tracing made a span for it: what a binding
            /// keeps as the current stage (`ContextVar`, `AsyncLocalStorage`).
            pub fn span_context(&self) -> Option<$crate::stage::SpanContext> {
                self.state.span_context()
            }

            /// This stage as the explicit parent of another:
            /// `llm.start_with(query.parent())`.
            pub fn parent(&self) -> $crate::stage::Parent<'_> {
                self.state.parent()
            }

            /// The trace and span ids this stage's exemplars carry, if any.
            pub fn trace_ref(&self) -> Option<$crate::metric::TraceRef> {
                self.state.trace().copied()
            }

            /// Whether this stage has a sampled span (one that will be exported).
            pub fn is_sampled(&self) -> bool {
                self.state
                    .span_context()
                    .is_some_and(|sc| sc.is_sampled())
            }

            /// Makes `trace` this stage's exemplar: for spans made by another tracer
            /// (OpenTelemetry-Python or -JS), whose ids the metrics should point to.
            pub fn set_trace(&mut self, trace: $crate::metric::TraceRef) {
                self.state.set_trace(trace);
            }

            /// Marks this stage's span failed with `error.type` (a low-cardinality name:
            /// `timeout`, `ConnectionRefused`, a status code).
            pub fn record_error(&mut self, error_type: &str) {
                self.state.set_error(error_type);
            }

            /// Time since the stage started.
            pub fn elapsed(&self) -> std::time::Duration {
                self.state.elapsed()
            }

            /// Abandons the stage (`error.type` `cancelled`): see
            /// [`abandon_with`](Self::abandon_with).
            pub fn abandon(mut self) {
                self.abandon_inner("cancelled");
            }

            /// Abandons the stage before it finished (a cancelled task, a closed client):
            /// it counts as an error with this `error.type`, observes no duration (the
            /// time to cancellation is not a latency), puts back any active gauge, and
            /// is counted in `tars_telemetry_stages_abandoned_total`. Dropping an
            /// unfinished guard that has an outcome does the same with `error.type`
            /// `abandoned` (a [`Timer`](crate::Timer) dropped is stopped instead).
            pub fn abandon_with(mut self, error_type: &str) {
                self.abandon_inner(error_type);
            }
        }
    };
}
pub(crate) use stage_guard;

/// Handles interned by name: asking twice for the same name returns the same handle at
/// the cost of a map lookup (a shared lock, no allocation). At most `cap` names are kept;
/// past that (the family's series budget, so the handles are overflow-backed anyway) a
/// handle is made per call rather than growing the map.
#[derive(Debug)]
pub(crate) struct Interner<V> {
    map: RwLock<HashMap<Box<str>, V>>,
    cap: usize,
}

impl<V: Clone> Interner<V> {
    pub(crate) fn new(cap: usize) -> Self {
        Interner {
            map: RwLock::new(HashMap::new()),
            cap,
        }
    }

    #[inline]
    pub(crate) fn get_or_make(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<V, Error>,
    ) -> Result<V, Error> {
        if let Some(v) = self.map.read().get(key) {
            return Ok(v.clone());
        }
        let mut map = self.map.write();
        if let Some(v) = map.get(key) {
            return Ok(v.clone());
        }
        let v = make()?;
        if map.len() < self.cap {
            map.insert(key.into(), v.clone());
        }
        Ok(v)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Calls `f` on every interned handle, under the map's shared lock.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&V)) {
        for v in self.map.read().values() {
            f(v);
        }
    }

    /// Takes the map's lock and keeps it (see `Telemetry::before_fork`).
    pub(crate) fn lock_for_fork(&self) {
        std::mem::forget(self.map.write());
    }

    /// # Safety
    /// `lock_for_fork` ran, and nothing unlocked it since.
    pub(crate) unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller's contract.
        unsafe { self.map.force_unlock_write() };
    }
}

pub(crate) fn family(reg: &Registry, def: &MetricDef) -> Result<Arc<Family>, Error> {
    reg.register(def)
}

pub(crate) fn counter_in(f: &Family, labels: &[&str]) -> Result<Counter, Error> {
    match f.resolve(labels)? {
        Metric::Counter(c) => Ok(c),
        _ => Err(Error::WrongKind {
            family: f.name().to_string(),
            expected: "counter",
        }),
    }
}

pub(crate) fn gauge_in(f: &Family, labels: &[&str]) -> Result<Gauge, Error> {
    match f.resolve(labels)? {
        Metric::Gauge(g) => Ok(g),
        _ => Err(Error::WrongKind {
            family: f.name().to_string(),
            expected: "gauge",
        }),
    }
}

pub(crate) fn histogram_in(f: &Family, labels: &[&str]) -> Result<Histogram, Error> {
    match f.resolve(labels)? {
        Metric::Histogram(h) => Ok(h),
        _ => Err(Error::WrongKind {
            family: f.name().to_string(),
            expected: "histogram",
        }),
    }
}

pub(crate) fn counter(reg: &Registry, def: &MetricDef, labels: &[&str]) -> Result<Counter, Error> {
    counter_in(&*family(reg, def)?, labels)
}

pub(crate) fn gauge(reg: &Registry, def: &MetricDef) -> Result<Gauge, Error> {
    gauge_in(&*family(reg, def)?, &[])
}

pub(crate) fn histogram(
    reg: &Registry,
    def: &MetricDef,
    labels: &[&str],
) -> Result<Histogram, Error> {
    histogram_in(&*family(reg, def)?, labels)
}

/// The `tars_telemetry_stages_abandoned_total` series of one kind of stage.
pub(crate) fn abandoned(reg: &Registry, stage: crate::stage::StageType) -> Result<Counter, Error> {
    counter(
        reg,
        &crate::catalog::SELF_STAGES_ABANDONED,
        &[stage.as_str()],
    )
}

/// Resolves one handle per variant of a label enum, in `ALL` order.
pub(crate) fn per_variant<E: Copy, T, const N: usize>(
    all: [E; N],
    mut f: impl FnMut(E) -> Result<T, Error>,
) -> Result<[T; N], Error> {
    let v: Vec<T> = all.iter().map(|e| f(*e)).collect::<Result<_, _>>()?;
    Ok(v.try_into().unwrap_or_else(|_| unreachable!("length is N")))
}
