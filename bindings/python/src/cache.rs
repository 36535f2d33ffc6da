//! `cache`: operations of the service's caches by cache, operation and result
//! (`tars_cache_operations_total`).

use pyo3::prelude::*;
use tars_telemetry::CacheMetrics;

use crate::labels;

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
