//! `db`: database queries and the connection pool.

use pyo3::prelude::*;
use pyo3::types::PyString;
use tars_telemetry::DbMetrics;

use crate::counts::u32_count;
use crate::labels;
use crate::stage::new_stage;
use crate::timer::{TimedStage, TimedStart};

/// Database queries and the connection pool.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Database(pub DbMetrics);

#[pymethods]
impl Database {
    /// A query: `select`, `insert`, `update`, `delete`, `upsert`, `transaction` or
    /// `other`; `summary` (low cardinality) names its span.
    #[pyo3(signature = (operation, summary = None))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        operation: &str,
        summary: Option<Bound<'py, PyString>>,
    ) -> PyResult<Bound<'py, TimedStage>> {
        let op = labels::db_operation(operation)?;
        let start = TimedStart::Db(self.0.clone(), op, summary.map(Bound::unbind));
        new_stage(py, TimedStage::new(start))
    }

    /// The connection pool's use: connections in use and its size.
    fn set_pool(&self, active: i64, max_size: i64) {
        if let (Some(active), Some(max)) = (u32_count(active), u32_count(max_size)) {
            self.0.set_pool(active, max);
        }
    }
}
