//! `rag`: RAG queries (`tel.rag.query()`) and their phases.

use pyo3::prelude::*;
use tars_telemetry::{Parent, RagMetrics, RagPhase, RagQuery as CoreQuery, Timer as CoreTimer};

use crate::counts::u32_count;
use crate::labels;
use crate::stage::{Entry, StageKind, new_stage, stage_guard, stage_methods};
use crate::timer::{TimedStage, TimedStart};

stage_guard!(CoreQuery, |g| ok: g.succeed(), err(e): g.fail_with(e));

/// RAG queries and their phases.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Rag(pub RagMetrics);

#[pymethods]
impl Rag {
    /// A RAG query: `with tel.rag.query() as q:` (or `async with`, or a decorator).
    fn query<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, RagQueryStage>> {
        new_stage(py, RagQueryStage::new(self.0.clone()))
    }

    /// A phase (`retrieval`, `rerank`, `generation`) under the current stage.
    fn phase<'py>(&self, py: Python<'py>, phase: &str) -> PyResult<Bound<'py, TimedStage>> {
        let p = labels::rag_phase(phase)?;
        new_stage(py, TimedStage::new(TimedStart::RagPhase(self.0.clone(), p)))
    }
}

/// One RAG query: phases under it, sources and relevance on it.
#[pyclass(extends = crate::stage::Stage, module = "tars_telemetry._native")]
pub struct RagQueryStage {
    start: RagMetrics,
    entry: Entry<CoreQuery>,
}

impl RagQueryStage {
    fn new(start: RagMetrics) -> Self {
        RagQueryStage {
            start,
            entry: Entry::default(),
        }
    }
}

impl StageKind for RagQueryStage {
    type Guard = CoreQuery;

    fn entry(&mut self) -> &mut Entry<CoreQuery> {
        &mut self.entry
    }

    fn start(&self, _py: Python<'_>, parent: Parent<'_>) -> PyResult<Option<CoreQuery>> {
        Ok(Some(self.start.start_query_with(parent)))
    }

    fn fresh(&self, _py: Python<'_>) -> Self {
        RagQueryStage::new(self.start.clone())
    }
}

/// Starts a phase of the query stage `q`: under the query whatever is current; nothing
/// once the query has ended.
fn query_phase(q: &Bound<'_, PyAny>, phase: RagPhase) -> PyResult<Option<CoreTimer>> {
    let mut q = q.cast::<RagQueryStage>()?.try_borrow_mut()?;
    Ok(q.entry.running()?.map(|g| g.phase(phase)))
}

stage_methods!(RagQueryStage {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        self.entry.traverse(&visit)
    }

    fn __clear__(&mut self) {
        self.entry.clear();
    }

    /// A phase of this query: `retrieval`, `rerank` or `generation`.
    fn phase<'py>(slf: &Bound<'py, Self>, phase: &str) -> PyResult<Bound<'py, TimedStage>> {
        let p = labels::rag_phase(phase)?;
        let py = slf.py();
        let start = TimedStart::QueryPhase(slf.clone().into_any().unbind(), p, query_phase);
        new_stage(py, TimedStage::new(start))
    }

    /// The number of sources the answer used.
    fn set_sources(&mut self, n: i64) -> PyResult<()> {
        if let (Some(g), Some(n)) = (self.entry.running()?, u32_count(n)) {
            g.set_sources(n);
        }
        Ok(())
    }

    /// The relevance score of the best source (NaN is counted as invalid, not raised).
    fn set_relevance(&mut self, score: f64) -> PyResult<()> {
        if let Some(g) = self.entry.running()? {
            g.set_relevance(score);
        }
        Ok(())
    }
});
