//! `multiproc`: a multi-process directory rendered from any process (a sidecar, a
//! supervisor, a test), with or without a telemetry of its own.

use std::path::PathBuf;

use pyo3::prelude::*;
use tars_telemetry::Format;
use tars_telemetry::multiproc::MultiprocessDir;

use crate::error::multiproc_to_py;

/// Every worker's series of the multi-process directory `path`, merged (dead workers'
/// counts folded into its archive first), as Prometheus text, or OpenMetrics when
/// `openmetrics` is true. Renders with the GIL released. `OSError` when the directory
/// cannot be read or locked.
#[pyfunction]
#[pyo3(signature = (path, openmetrics = false))]
pub fn render_multiprocess_dir(
    py: Python<'_>,
    path: PathBuf,
    openmetrics: bool,
) -> PyResult<String> {
    let format = if openmetrics {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    };
    let dir = MultiprocessDir::new(path);
    py.detach(|| dir.render_string(format))
        .map_err(multiproc_to_py)
}
