//! Timed stages (embeddings, a vector search, a database query, a RAG phase): the core's
//! `Timer`, a native stage holding its guard. Cache calls live in `cache`, document jobs in
//! `documents`, beside the modules of the core they wrap.

use pyo3::prelude::*;
use pyo3::types::PyString;
use tars_telemetry::{
    DbMetrics, DbOperation, EmbeddingMetrics, Parent, RagMetrics, RagPhase, Timer as CoreTimer,
    VectorStoreMetrics,
};

use crate::stage::{Entry, StageKind, stage_guard, stage_methods};

stage_guard!(CoreTimer, |g| ok: g.stop(), err(e): {
    g.record_error(e);
    g.stop()
});

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
