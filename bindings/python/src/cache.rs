//! `cache`: operations of the service's caches by cache, operation and result
//! (`tars_cache_operations_total`), and cache calls (a Redis command, an embedding-cache
//! lookup: the core's `CacheCall`) as native stages holding their guard.

use pyo3::prelude::*;
use pyo3::types::PyString;
use tars_telemetry::{
    CacheCall as CoreCacheCall, CacheMetrics, CacheResult, EmbeddingMetrics, Parent, RedisMetrics,
};

use crate::labels;
use crate::stage::{Entry, StageKind, stage_guard, stage_methods};

stage_guard!(CoreCacheCall, |g| ok: g.finish(CacheResult::Ok), err(e): {
    g.record_error(e);
    g.finish(CacheResult::Error)
});

/// The service's caches (`redis`, `embedding`): every operation counted by result.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Cache(pub CacheMetrics);

#[pymethods]
impl Cache {
    /// Counts one operation: `record("redis", "set", "ok")`. `ValueError` names the
    /// accepted values of a label that is not one.
    fn record(&self, cache: &str, operation: &str, result: &str) -> PyResult<()> {
        self.0.record(
            labels::cache_name(cache)?,
            labels::cache_operation(operation)?,
            labels::cache_result(result)?,
        );
        Ok(())
    }

    /// Operations counted for one cache, operation and result.
    fn count(&self, cache: &str, operation: &str, result: &str) -> PyResult<u64> {
        Ok(self.0.count(
            labels::cache_name(cache)?,
            labels::cache_operation(operation)?,
            labels::cache_result(result)?,
        ))
    }
}

/// What a cache call is a call to.
pub enum CacheStart {
    EmbeddingLookup(EmbeddingMetrics),
    /// A Redis command (`GET`, `SET`, ...).
    Redis(RedisMetrics, Py<PyString>),
}

/// A cache call: a Redis command or an embedding-cache lookup. Ends `ok` unless a result
/// was given (`hit()`, `miss()`, `result(...)`).
#[pyclass(extends = crate::stage::Stage, module = "tars_telemetry._native")]
pub struct CacheStage {
    start: CacheStart,
    entry: Entry<CoreCacheCall>,
}

impl CacheStage {
    pub fn new(start: CacheStart) -> Self {
        CacheStage {
            start,
            entry: Entry::default(),
        }
    }
}

impl StageKind for CacheStage {
    type Guard = CoreCacheCall;

    fn entry(&mut self) -> &mut Entry<CoreCacheCall> {
        &mut self.entry
    }

    fn start(&self, py: Python<'_>, parent: Parent<'_>) -> PyResult<Option<CoreCacheCall>> {
        Ok(Some(match &self.start {
            CacheStart::EmbeddingLookup(m) => m.start_cache_lookup_with(parent),
            CacheStart::Redis(m, c) => m.start_command_with(c.bind(py).to_str()?, parent),
        }))
    }

    fn fresh(&self, py: Python<'_>) -> Self {
        CacheStage::new(match &self.start {
            CacheStart::EmbeddingLookup(m) => CacheStart::EmbeddingLookup(m.clone()),
            CacheStart::Redis(m, c) => CacheStart::Redis(m.clone(), c.clone_ref(py)),
        })
    }
}

stage_methods!(CacheStage {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let CacheStart::Redis(_, c) = &self.start {
            visit.call(c)?;
        }
        self.entry.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.entry.clear();
    }

    /// Ends the call as a hit.
    fn hit(&mut self) -> PyResult<()> {
        self.lookup(true).map(|_| ())
    }

    /// Ends the call as a miss.
    fn miss(&mut self) -> PyResult<()> {
        self.lookup(false).map(|_| ())
    }

    /// Ends the call as a hit or a miss; returns `found`.
    fn lookup(&mut self, found: bool) -> PyResult<bool> {
        self.entry.running()?;
        if let Some(g) = self.entry.guard.take() {
            g.finish_lookup(found);
        }
        Ok(found)
    }

    /// Ends the call with `hit`, `miss`, `ok` or `error`.
    fn result(&mut self, result: &str) -> PyResult<()> {
        let r = labels::cache_result(result)?;
        self.entry.running()?;
        if let Some(g) = self.entry.guard.take() {
            g.finish(r);
        }
        Ok(())
    }
});
