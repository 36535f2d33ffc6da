//! `vector_store`: vector searches and the store's size.

use pyo3::prelude::*;
use tars_telemetry::VectorStoreMetrics;

use crate::counts::u64_count;
use crate::stage::new_stage;
use crate::timer::{TimedStage, TimedStart};

/// Vector searches and the store's size.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct VectorStore(pub VectorStoreMetrics);

#[pymethods]
impl VectorStore {
    /// A vector search: `with tel.vector_store.search():`.
    fn search<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, TimedStage>> {
        new_stage(py, TimedStage::new(TimedStart::VectorStore(self.0.clone())))
    }

    /// The number of documents in the store.
    fn set_documents(&self, count: i64) {
        if let Some(n) = u64_count(count) {
            self.0.set_documents(n);
        }
    }
}
