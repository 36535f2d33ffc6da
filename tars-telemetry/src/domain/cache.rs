use std::sync::Arc;

use super::{
    CacheName, CacheOperation, CacheResult, StageState, abandoned, counter, counter_in, gauge,
    stage_guard,
};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge};
use crate::registry::Registry;
use crate::stage::{Hook, Parent, StageEnd, StageKind, StageSlot, StageType};

const CACHES: usize = CacheName::ALL.len();
const OPS: usize = CacheOperation::ALL.len();
const RESULTS: usize = CacheResult::ALL.len();

/// `tars_cache_operations_total{cache, operation, result}`, every combination resolved.
#[derive(Debug, Clone)]
pub struct CacheMetrics(Arc<CacheInner>);

#[derive(Debug)]
struct CacheInner {
    ops: Box<[Counter]>,
    abandoned: Counter,
}

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
        Ok(CacheMetrics(Arc::new(CacheInner {
            ops: v.into(),
            abandoned: abandoned(reg, StageType::Cache)?,
        })))
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
        self.0.ops[Self::slot(cache, op, result)].inc();
    }

    /// Operations counted for one cache, operation and result.
    pub fn count(&self, cache: CacheName, op: CacheOperation, result: CacheResult) -> u64 {
        self.0.ops[Self::slot(cache, op, result)].get()
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
    hook: Hook,
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
    pub(crate) fn new(reg: &Registry, cache: CacheMetrics, hook: &Hook) -> Result<Self, Error> {
        Ok(RedisMetrics(Arc::new(RedisInner {
            hits: counter(reg, &c::REDIS_CACHE_HITS, &[])?,
            misses: counter(reg, &c::REDIS_CACHE_MISSES, &[])?,
            memory_used: gauge(reg, &c::REDIS_MEMORY_USAGE)?,
            memory_max: gauge(reg, &c::REDIS_MEMORY_MAX)?,
            cache,
            hook: hook.clone(),
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
        self.0
            .cache
            .record(CacheName::Redis, CacheOperation::Get, r);
        hit
    }

    /// Records a write or delete and its result.
    pub fn record(&self, op: CacheOperation, result: CacheResult) {
        self.0.cache.record(CacheName::Redis, op, result);
    }

    /// Starts one Redis command (`GET`, `SET`, `DEL`, `HGET`, ...): with tracing, under a
    /// sampled span, a Redis client span named by the command; its metrics are recorded by
    /// [`CacheCall::finish`] (`GET`-like commands are lookups: hits and misses; `SET`- and
    /// `DEL`-like ones count as cache writes and deletes).
    ///
    /// ```
    /// use tars_telemetry::{Telemetry, CacheResult};
    /// let t = Telemetry::new();
    /// if !t.redis().start_command("GET").finish_lookup(false) {
    ///     t.redis().start_command("SETEX").finish(CacheResult::Ok);
    /// }
    /// assert_eq!(t.redis().misses().get(), 1);
    /// ```
    pub fn start_command(&self, command: &str) -> CacheCall {
        self.start_command_with(command, Parent::Current)
    }

    /// [`RedisMetrics::start_command`] under an explicit parent.
    pub fn start_command_with(&self, command: &str, parent: Parent<'_>) -> CacheCall {
        const GETS: &[&str] = &["GET", "MGET", "HGET", "HMGET", "HGETALL", "GETEX"];
        const SETS: &[&str] = &["SET", "SETEX", "PSETEX", "SETNX", "MSET", "HSET", "HMSET"];
        const DELS: &[&str] = &["DEL", "UNLINK", "HDEL", "GETDEL"];
        let is = |set: &[&str]| set.iter().any(|c| c.eq_ignore_ascii_case(command));
        let op = if is(GETS) {
            Some(CacheOperation::Get)
        } else if is(SETS) {
            Some(CacheOperation::Set)
        } else if is(DELS) {
            Some(CacheOperation::Delete)
        } else {
            None
        };
        let hit_miss =
            (op == Some(CacheOperation::Get)).then(|| (self.0.hits.clone(), self.0.misses.clone()));
        CacheCall::new(
            self.0.cache.clone(),
            CacheName::Redis,
            op,
            hit_miss,
            self.0.hook.start(
                StageKind::Cache {
                    cache: CacheName::Redis,
                    command,
                },
                parent,
            ),
        )
    }

    /// Sets memory in use and the limit (`INFO memory`: used_memory, maxmemory).
    pub fn set_memory(&self, used_bytes: u64, max_bytes: u64) {
        self.0.memory_used.set(used_bytes as f64);
        self.0.memory_max.set(max_bytes as f64);
    }

    /// Redis cache hits so far.
    pub fn hits(&self) -> &Counter {
        &self.0.hits
    }

    /// Redis cache misses so far.
    pub fn misses(&self) -> &Counter {
        &self.0.misses
    }
}

/// One cache call in flight (a Redis command, an embedding cache lookup): records its
/// result, and ends its span, when finished. Abandoned (cancelled, or dropped unfinished)
/// it counts as an error.
#[derive(Debug)]
#[must_use = "a cache call records when it ends; call finish() or finish_lookup()"]
pub struct CacheCall {
    cache: CacheMetrics,
    name: CacheName,
    op: Option<CacheOperation>,
    hit_miss: Option<(Counter, Counter)>,
    pub(crate) state: StageState,
}

impl CacheCall {
    pub(crate) fn new(
        cache: CacheMetrics,
        name: CacheName,
        op: Option<CacheOperation>,
        hit_miss: Option<(Counter, Counter)>,
        stage: StageSlot,
    ) -> Self {
        CacheCall {
            cache,
            name,
            op,
            hit_miss,
            state: StageState::new(stage),
        }
    }

    /// Records the call's result (`Hit`/`Miss` for lookups, `Ok`/`Error` otherwise).
    pub fn finish(mut self, result: CacheResult) {
        self.end(result);
    }

    /// Records a lookup as a hit or a miss and returns `hit`.
    pub fn finish_lookup(mut self, hit: bool) -> bool {
        self.end(if hit {
            CacheResult::Hit
        } else {
            CacheResult::Miss
        });
        hit
    }

    fn count(&self, result: CacheResult) {
        if let Some((hits, misses)) = &self.hit_miss {
            match result {
                CacheResult::Hit => hits.inc(),
                CacheResult::Miss => misses.inc(),
                _ => {}
            }
        }
        if let Some(op) = self.op {
            self.cache.record(self.name, op, result);
        }
    }

    fn end(&mut self, result: CacheResult) {
        if self.state.finish().is_some() {
            self.count(result);
            self.state.end_span(StageEnd::Cache(result));
        }
    }

    fn abandon_inner(&mut self, error_type: &str) {
        if self.state.finish().is_some() {
            self.count(CacheResult::Error);
            self.cache.0.abandoned.inc();
            self.state.end_span(StageEnd::Abandoned { error_type });
        }
    }
}

stage_guard!(CacheCall);
