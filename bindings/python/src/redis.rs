//! `redis`: Redis commands and memory.

use pyo3::prelude::*;
use pyo3::types::PyString;
use tars_telemetry::RedisMetrics;

use crate::cache::{CacheStage, CacheStart};
use crate::counts::u64_count;
use crate::stage::new_stage;

/// Redis commands and memory.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Redis(pub RedisMetrics);

#[pymethods]
impl Redis {
    /// A Redis command (`GET`, `SET`, ...): end a lookup with `hit()` or `miss()`.
    fn command<'py>(
        &self,
        py: Python<'py>,
        command: Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, CacheStage>> {
        new_stage(
            py,
            CacheStage::new(CacheStart::Redis(self.0.clone(), command.unbind())),
        )
    }

    /// Redis memory use and its limit (`maxmemory`), in bytes.
    fn set_memory(&self, used_bytes: i64, max_bytes: i64) {
        if let (Some(used), Some(max)) = (u64_count(used_bytes), u64_count(max_bytes)) {
            self.0.set_memory(used, max);
        }
    }
}
