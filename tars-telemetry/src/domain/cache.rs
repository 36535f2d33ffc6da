use std::sync::Arc;

use super::{CacheName, CacheOperation, CacheResult, counter, counter_in, gauge};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge};
use crate::registry::Registry;

const CACHES: usize = CacheName::ALL.len();
const OPS: usize = CacheOperation::ALL.len();
const RESULTS: usize = CacheResult::ALL.len();

/// `tars_cache_operations_total{cache, operation, result}`, every combination resolved.
#[derive(Debug, Clone)]
pub struct CacheMetrics(Arc<[Counter]>);

impl CacheMetrics {
    pub(crate) fn new(reg: &Registry) -> Result<Self, Error> {
        let f = reg.register(&c::CACHE_OPERATIONS)?;
        let mut v = Vec::with_capacity(CACHES * OPS * RESULTS);
        for cache in CacheName::ALL {
            for op in CacheOperation::ALL {
                for r in CacheResult::ALL {
                    v.push(counter_in(&f, &[cache.as_str(), op.as_str(), r.as_str()])?);
                }
            }
        }
        Ok(CacheMetrics(v.into()))
    }

    /// Counts one cache operation.
    ///
    /// ```
    /// use tars_telemetry::{Telemetry, CacheName, CacheOperation, CacheResult};
    /// let t = Telemetry::new();
    /// t.cache().record(CacheName::Redis, CacheOperation::Set, CacheResult::Ok);
    /// assert_eq!(t.cache().count(CacheName::Redis, CacheOperation::Set, CacheResult::Ok), 1);
    /// ```
    #[inline]
    pub fn record(&self, cache: CacheName, op: CacheOperation, result: CacheResult) {
        self.0[Self::slot(cache, op, result)].inc();
    }

    pub fn count(&self, cache: CacheName, op: CacheOperation, result: CacheResult) -> u64 {
        self.0[Self::slot(cache, op, result)].get()
    }

    #[inline]
    fn slot(cache: CacheName, op: CacheOperation, result: CacheResult) -> usize {
        (cache.index() * OPS + op.index()) * RESULTS + result.index()
    }
}

#[derive(Debug)]
struct RedisInner {
    hits: Counter,
    misses: Counter,
    memory_used: Gauge,
    memory_max: Gauge,
    cache: CacheMetrics,
}

/// The Redis cache: lookups and memory.
///
/// ```
/// use tars_telemetry::Telemetry;
/// let t = Telemetry::new();
/// let redis = t.redis();
/// if redis.lookup(true) { /* serve from cache */ }
/// redis.set_memory(512 << 20, 1 << 30);
/// assert_eq!(redis.hits().get(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct RedisMetrics(Arc<RedisInner>);

impl RedisMetrics {
    pub(crate) fn new(reg: &Registry, cache: CacheMetrics) -> Result<Self, Error> {
        Ok(RedisMetrics(Arc::new(RedisInner {
            hits: counter(reg, &c::REDIS_CACHE_HITS, &[])?,
            misses: counter(reg, &c::REDIS_CACHE_MISSES, &[])?,
            memory_used: gauge(reg, &c::REDIS_MEMORY_USAGE)?,
            memory_max: gauge(reg, &c::REDIS_MEMORY_MAX)?,
            cache,
        })))
    }

    /// Records a cache read (`GET`) as a hit or a miss and returns `hit`.
    #[inline]
    pub fn lookup(&self, hit: bool) -> bool {
        let (c, r) = if hit {
            (&self.0.hits, CacheResult::Hit)
        } else {
            (&self.0.misses, CacheResult::Miss)
        };
        c.inc();
        self.0.cache.record(CacheName::Redis, CacheOperation::Get, r);
        hit
    }

    /// Records a write or delete and its result.
    pub fn record(&self, op: CacheOperation, result: CacheResult) {
        self.0.cache.record(CacheName::Redis, op, result);
    }

    /// Sets memory in use and the limit (`INFO memory`: used_memory, maxmemory).
    pub fn set_memory(&self, used_bytes: u64, max_bytes: u64) {
        self.0.memory_used.set(used_bytes as f64);
        self.0.memory_max.set(max_bytes as f64);
    }

    pub fn hits(&self) -> &Counter {
        &self.0.hits
    }

    pub fn misses(&self) -> &Counter {
        &self.0.misses
    }
}
