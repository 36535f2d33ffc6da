//! `documents`: document ingestion.

use pyo3::prelude::*;
use tars_telemetry::{DocumentJob as CoreJob, DocumentMetrics, Parent};

use crate::counts::{u32_count, u64_count};
use crate::stage::{End, Entry, StageGuard, StageKind, new_stage, stage_guard, stage_methods};

stage_guard!(CoreJob, |g| ok: g.succeed(0), err(e): g.fail_with(e));

/// Document ingestion.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Documents(pub DocumentMetrics);

#[pymethods]
impl Documents {
    /// Ingesting one document: `with tel.documents.ingest() as doc: ... doc.set_chunks(n)`.
    fn ingest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, DocumentStage>> {
        new_stage(py, DocumentStage::new(self.0.clone()))
    }

    /// The number of documents waiting to be ingested.
    fn set_queue_length(&self, n: i64) {
        if let Some(n) = u64_count(n) {
            self.0.set_queue_length(n);
        }
    }
}

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
