use std::sync::Arc;
use std::time::Duration;

use super::{
    CacheCall, CacheMetrics, CacheName, CacheOperation, CacheResult, Timer, counter, gauge,
    histogram,
};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram};
use crate::registry::Registry;
use crate::trace::Hook;

#[derive(Debug)]
struct EmbeddingInner {
    duration: Histogram,
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
            duration: histogram(reg, &c::EMBEDDING_DURATION, &[])?,
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
        Timer::traced(self.0.duration.clone(), None, self.0.hook.embedding())
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
        CacheCall::new(
            self.0.cache.clone(),
            CacheName::Embedding,
            Some(CacheOperation::Get),
            Some((self.0.hits.clone(), self.0.misses.clone())),
            self.0.hook.cache(CacheName::Embedding, "GET"),
        )
    }

    /// Records one embedding call that produced `embeddings` vectors.
    pub fn record(&self, duration: Duration, embeddings: u64) {
        self.0.duration.observe_duration(duration);
        self.0.generated.inc_by(embeddings);
    }

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

    pub fn generated(&self) -> &Counter {
        &self.0.generated
    }

    pub fn duration(&self) -> &Histogram {
        &self.0.duration
    }
}

#[derive(Debug)]
struct VectorInner {
    duration: Histogram,
    searches: Counter,
    documents: Gauge,
    hook: Hook,
}

/// Vector store searches and size.
///
/// ```
/// use tars_telemetry::Telemetry;
/// use std::time::Duration;
/// let t = Telemetry::new();
/// t.vector_store().record_search(Duration::from_millis(12));
/// t.vector_store().set_documents(1500);
/// assert_eq!(t.vector_store().searches().get(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct VectorStoreMetrics(Arc<VectorInner>);

impl VectorStoreMetrics {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        Ok(VectorStoreMetrics(Arc::new(VectorInner {
            duration: histogram(reg, &c::VECTOR_SEARCH_DURATION, &[])?,
            searches: counter(reg, &c::VECTOR_SEARCHES, &[])?,
            documents: gauge(reg, &c::VECTOR_STORE_DOCUMENTS)?,
            hook: hook.clone(),
        })))
    }

    /// Times one search; records its duration and counts it when dropped. With tracing,
    /// under a sampled span this opens the GenAI retrieval span `retrieval {collection}`.
    pub fn start_search(&self) -> Timer {
        let stage = self.0.hook.vector_search();
        Timer::traced(
            self.0.duration.clone(),
            Some(self.0.searches.clone()),
            stage,
        )
    }

    pub fn record_search(&self, duration: Duration) {
        self.0.duration.observe_duration(duration);
        self.0.searches.inc();
    }

    pub fn set_documents(&self, n: u64) {
        self.0.documents.set(n as f64);
    }

    pub fn searches(&self) -> &Counter {
        &self.0.searches
    }

    pub fn documents(&self) -> &Gauge {
        &self.0.documents
    }
}
