//! Timed stages (embeddings, a vector search, a database query, a RAG phase: the core's
//! `Timer`), cache calls (a Redis command, an embedding-cache lookup: `CacheCall`) and
//! document ingestion (`DocumentJob`), each a native stage holding its core guard.

use pyo3::prelude::*;
use pyo3::types::PyString;
use tars_telemetry::{
    CacheCall as CoreCacheCall, CacheResult, DbMetrics, DbOperation, DocumentJob as CoreJob,
    DocumentMetrics, EmbeddingMetrics, Parent, RagMetrics, RagPhase, RedisMetrics,
    Timer as CoreTimer, VectorStoreMetrics,
};

use crate::counts::u32_count;
use crate::labels;
use crate::stage::{End, Entry, StageGuard, StageKind, stage_guard, stage_methods};

stage_guard!(CoreTimer, |g| ok: g.stop(), err(e): {
    g.record_error(e);
    g.stop()
});
stage_guard!(CoreCacheCall, |g| ok: g.finish(CacheResult::Ok), err(e): {
    g.record_error(e);
    g.finish(CacheResult::Error)
});
stage_guard!(CoreJob, |g| ok: g.succeed(0), err(e): g.fail_with(e));

/// How a RAG phase starts from its query stage (`rag::RagQueryStage`, given here as a
/// function so that this module does not depend on that one).
pub type QueryPhaseStart = fn(&Bound<'_, PyAny>, RagPhase) -> PyResult<Option<CoreTimer>>;

/// What a timed stage times.
pub enum TimedStart {
    Embeddings(EmbeddingMetrics),
    VectorStore(VectorStoreMetrics),
    /// A phase under the current stage.
    RagPhase(RagMetrics, RagPhase),
    /// A phase of a RAG query stage (whatever is current).
    QueryPhase(Py<PyAny>, RagPhase, QueryPhaseStart),
    /// A query, with its span's low-cardinality summary.
    Db(DbMetrics, DbOperation, Option<Py<PyString>>),
}

/// A timed stage: a RAG phase, embeddings, a vector search, a database query.
#[pyclass(extends = crate::stage::Stage, module = "tars_telemetry._native")]
pub struct TimedStage {
    start: TimedStart,
    entry: Entry<CoreTimer>,
}

impl TimedStage {
    pub fn new(start: TimedStart) -> Self {
        TimedStage {
            start,
            entry: Entry::default(),
        }
    }
}

impl StageKind for TimedStage {
    type Guard = CoreTimer;

    fn entry(&mut self) -> &mut Entry<CoreTimer> {
        &mut self.entry
    }

    fn start(&self, py: Python<'_>, parent: Parent<'_>) -> PyResult<Option<CoreTimer>> {
        Ok(Some(match &self.start {
            TimedStart::Embeddings(m) => m.start_with(parent),
            TimedStart::VectorStore(m) => m.start_search_with(parent),
            TimedStart::RagPhase(m, p) => m.phase_with(*p, parent),
            TimedStart::QueryPhase(q, p, start) => return start(q.bind(py), *p),
            TimedStart::Db(m, op, summary) => {
                let s = summary.as_ref().map(|s| s.bind(py).to_str()).transpose()?;
                m.query_with(*op, s, parent)
            }
        }))
    }

    fn fresh(&self, py: Python<'_>) -> Self {
        TimedStage::new(match &self.start {
            TimedStart::Embeddings(m) => TimedStart::Embeddings(m.clone()),
            TimedStart::VectorStore(m) => TimedStart::VectorStore(m.clone()),
            TimedStart::RagPhase(m, p) => TimedStart::RagPhase(m.clone(), *p),
            TimedStart::QueryPhase(q, p, s) => TimedStart::QueryPhase(q.clone_ref(py), *p, *s),
            TimedStart::Db(m, op, s) => {
                TimedStart::Db(m.clone(), *op, s.as_ref().map(|s| s.clone_ref(py)))
            }
        })
    }
}

stage_methods!(TimedStage {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        match &self.start {
            TimedStart::QueryPhase(q, ..) => visit.call(q)?,
            TimedStart::Db(_, _, Some(s)) => visit.call(s)?,
            _ => {}
        }
        self.entry.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.entry.clear();
    }
});

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

/// One document being ingested; `set_chunks(n)` before the block ends.
#[pyclass(extends = crate::stage::Stage, module = "tars_telemetry._native")]
pub struct DocumentStage {
    start: DocumentMetrics,
    chunks: u32,
    entry: Entry<CoreJob>,
}

impl DocumentStage {
    pub fn new(start: DocumentMetrics) -> Self {
        DocumentStage {
            start,
            chunks: 0,
            entry: Entry::default(),
        }
    }
}

impl StageKind for DocumentStage {
    type Guard = CoreJob;

    fn entry(&mut self) -> &mut Entry<CoreJob> {
        &mut self.entry
    }

    fn start(&self, _py: Python<'_>, parent: Parent<'_>) -> PyResult<Option<CoreJob>> {
        Ok(Some(self.start.start_with(parent)))
    }

    fn fresh(&self, _py: Python<'_>) -> Self {
        DocumentStage::new(self.start.clone())
    }

    fn end(&mut self, end: &End<'_>) {
        if let Some(g) = self.entry.guard.take() {
            match end {
                End::Ok => {
                    g.succeed(self.chunks);
                }
                end => g.end(end),
            }
        }
    }
}

stage_methods!(DocumentStage {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        self.entry.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.entry.clear();
    }

    /// The number of chunks the document made (recorded when the block ends).
    fn set_chunks(&mut self, n: i64) {
        if let Some(n) = u32_count(n) {
            self.chunks = n;
        }
    }
});
