//! Embeddings: generation timed, counted, and the embedding cache.

use std::sync::Arc;
use std::time::Duration;

use super::{
    CacheCall, CacheMetrics, CacheName, CacheOperation, CacheResult, TimedTarget, Timer, abandoned,
    counter, histogram,
};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Histogram, TraceRef};
use crate::registry::Registry;
use crate::stage::{Hook, Parent, StageKind, StageType};

#[derive(Debug)]
struct EmbeddingInner {
    timed: Arc<TimedTarget>,
    generated: Counter,
    hits: Counter,
    misses: Counter,
    cache: CacheMetrics,
    hook: Hook,
}

/// Embedding generation and the embedding cache.
///
/// ```
/// use tars_telemetry::Telemetry;
/// let t = Telemetry::new();
/// let e = t.embeddings();
/// if !e.cache_lookup(false) {
///     let timer = e.start();
///     // ... embed 8 chunks ...
///     drop(timer);
///     e.add_generated(8);
/// }
/// assert_eq!(e.generated().get(), 8);
/// ```
#[derive(Debug, Clone)]
pub struct EmbeddingMetrics(Arc<EmbeddingInner>);

impl EmbeddingMetrics {
    pub(crate) fn new(reg: &Registry, cache: CacheMetrics, hook: &Hook) -> Result<Self, Error> {
        Ok(EmbeddingMetrics(Arc::new(EmbeddingInner {
            timed: TimedTarget::new(
                histogram(reg, &c::EMBEDDING_DURATION, &[])?,
                None,
                abandoned(reg, StageType::Embedding)?,
            ),
            generated: counter(reg, &c::EMBEDDINGS_GENERATED, &[])?,
            hits: counter(reg, &c::EMBEDDING_CACHE_HITS, &[])?,
            misses: counter(reg, &c::EMBEDDING_CACHE_MISSES, &[])?,
            cache,
            hook: hook.clone(),
        })))
    }

    /// Times one embedding call; records its duration when dropped. With tracing, under
    /// a sampled span this opens the GenAI span `embeddings {model}`.
    pub fn start(&self) -> Timer {
        self.start_with(Parent::Current)
    }

    /// [`EmbeddingMetrics::start`] under an explicit parent.
    pub fn start_with(&self, parent: Parent<'_>) -> Timer {
        Timer::traced(
            &self.0.timed,
            self.0.hook.start(StageKind::Embedding, parent),
        )
    }

    /// Starts a lookup in the embedding cache: [`CacheCall::finish_lookup`] records the hit
    /// or miss, and with tracing it is a `cache.lookup` span.
    ///
    /// ```
    /// use tars_telemetry::Telemetry;
    /// let t = Telemetry::new();
    /// let hit = t.embeddings().start_cache_lookup().finish_lookup(false);
    /// assert!(!hit);
    /// ```
    pub fn start_cache_lookup(&self) -> CacheCall {
        self.start_cache_lookup_with(Parent::Current)
    }

    /// [`EmbeddingMetrics::start_cache_lookup`] under an explicit parent.
    pub fn start_cache_lookup_with(&self, parent: Parent<'_>) -> CacheCall {
        let stage = self.0.hook.start(
            StageKind::Cache {
                cache: CacheName::Embedding,
                command: "GET",
            },
            parent,
        );
        CacheCall::new(
            self.0.cache.clone(),
            CacheName::Embedding,
            Some(CacheOperation::Get),
            Some((self.0.hits.clone(), self.0.misses.clone())),
            stage,
        )
    }

    /// Records one embedding call, timed elsewhere, that produced `embeddings` vectors.
    pub fn record(&self, duration: Duration, embeddings: u64, trace: Option<&TraceRef>) {
        let h = &self.0.timed.histogram;
        match trace {
            Some(t) => h.observe_with_exemplar(duration.as_secs_f64(), t),
            None => h.observe_duration(duration),
        }
        self.0.generated.inc_by(embeddings);
    }

    /// Counts generated embeddings.
    pub fn add_generated(&self, embeddings: u64) {
        self.0.generated.inc_by(embeddings);
    }

    /// Records an embedding cache lookup and returns `hit`, so it can wrap the condition.
    #[inline]
    pub fn cache_lookup(&self, hit: bool) -> bool {
        let (c, r) = if hit {
            (&self.0.hits, CacheResult::Hit)
        } else {
            (&self.0.misses, CacheResult::Miss)
        };
        c.inc();
        self.0
            .cache
            .record(CacheName::Embedding, CacheOperation::Get, r);
        hit
    }

    /// Embeddings generated so far.
    pub fn generated(&self) -> &Counter {
        &self.0.generated
    }

    /// The embedding duration histogram.
    pub fn duration(&self) -> &Histogram {
        &self.0.timed.histogram
    }
}
