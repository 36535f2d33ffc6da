//! `documents`: document ingestion.

use pyo3::prelude::*;
use tars_telemetry::DocumentMetrics;

use crate::counts::u64_count;
use crate::stage::new_stage;
use crate::timer::DocumentStage;

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
