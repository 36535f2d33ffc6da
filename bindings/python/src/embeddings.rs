//! `embeddings`: generating embeddings and the embedding cache.

use pyo3::prelude::*;
use tars_telemetry::EmbeddingMetrics;

use crate::cache::{CacheStage, CacheStart};
use crate::counts::u64_count;
use crate::stage::new_stage;
use crate::timer::{TimedStage, TimedStart};

/// Embedding generation and the embedding cache.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Embeddings(pub EmbeddingMetrics);

#[pymethods]
impl Embeddings {
    /// Generating embeddings.
    fn generate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, TimedStage>> {
        new_stage(py, TimedStage::new(TimedStart::Embeddings(self.0.clone())))
    }

    /// An embedding-cache lookup: end it with `hit()` or `miss()`.
    fn cache_lookup<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, CacheStage>> {
        new_stage(
            py,
            CacheStage::new(CacheStart::EmbeddingLookup(self.0.clone())),
        )
    }

    /// Counts embeddings generated outside a stage.
    fn add_generated(&self, count: i64) {
        if let Some(n) = u64_count(count) {
            self.0.add_generated(n);
        }
    }
}
