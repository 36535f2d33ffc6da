//! `multiproc`: a multi-process directory rendered from any process (a sidecar, a
//! supervisor, a test), with or without a telemetry of its own.

use std::path::PathBuf;

use pyo3::prelude::*;
use tars_telemetry::Format;
use tars_telemetry::multiproc::{self as core, MultiprocessDir};

use crate::error::multiproc_to_py;

/// What a render of a multi-process directory could not use: a file skipped, records
/// dropped, an archive replaced, a dead worker's file set aside, or a fold that failed.
/// ``event`` and ``reason`` are the labels it is counted under in
/// ``tars_telemetry_multiprocess_losses_total``.
#[pyclass(frozen, get_all, module = "tars_telemetry")]
pub struct MultiprocessWarning {
    /// The file (or the directory, for a fold that failed).
    path: String,
    /// `file_skipped`, `records_dropped`, `archive_replaced`, `dead_file_set_aside` or
    /// `fold_failed`.
    event: &'static str,
    /// Why: `not_a_regular_file`, `not_ours`, `layout`, `catalog`, `truncated`,
    /// `corrupt`, `unwritable`, `no_space` or `io`.
    reason: &'static str,
    /// The whole warning, in words.
    message: String,
}

#[pymethods]
impl MultiprocessWarning {
    fn __repr__(&self) -> String {
        format!(
            "MultiprocessWarning(event={:?}, reason={:?}, path={:?})",
            self.event, self.reason, self.path
        )
    }

    fn __str__(&self) -> String {
        self.message.clone()
    }
}

impl From<core::MultiprocessWarning> for MultiprocessWarning {
    fn from(w: core::MultiprocessWarning) -> Self {
        MultiprocessWarning {
            path: w.path.to_string_lossy().into_owned(),
            event: w.event.as_str(),
            reason: w.cause.as_str(),
            message: w.to_string(),
        }
    }
}

fn format(openmetrics: bool) -> Format {
    if openmetrics {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

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
    let dir = MultiprocessDir::new(path);
    py.detach(|| dir.render_string(format(openmetrics)))
        .map_err(multiproc_to_py)
}

/// Every worker's series of the multi-process directory `path`, merged, in the format the
/// `Accept` header `accept` asks for (protobuf for a Prometheus that scrapes native
/// histograms, OpenMetrics, or Prometheus text), with its content type, as
/// `Telemetry.render` does for a worker. Renders with the GIL released.
#[pyfunction]
#[pyo3(signature = (path, accept = None))]
pub fn render_multiprocess_dir_as<'py>(
    py: Python<'py>,
    path: PathBuf,
    accept: Option<&str>,
) -> PyResult<(Bound<'py, pyo3::types::PyBytes>, &'static str)> {
    let dir = MultiprocessDir::new(path);
    let format = Format::from_accept(accept);
    let out = py
        .detach(|| {
            let mut out = Vec::with_capacity(16 * 1024);
            dir.render_into(format, &mut out).map(|()| out)
        })
        .map_err(multiproc_to_py)?;
    Ok((pyo3::types::PyBytes::new(py, &out), format.content_type()))
}

/// As `render_multiprocess_dir`, and what the render could not use: `(text, warnings)`,
/// `warnings` a list of `MultiprocessWarning` (empty when every file was read whole).
#[pyfunction]
#[pyo3(signature = (path, openmetrics = false))]
pub fn render_multiprocess_dir_report(
    py: Python<'_>,
    path: PathBuf,
    openmetrics: bool,
) -> PyResult<(String, Vec<MultiprocessWarning>)> {
    let dir = MultiprocessDir::new(path);
    let (out, warnings) = py
        .detach(|| {
            let mut out = Vec::with_capacity(16 * 1024);
            dir.render_report(format(openmetrics), &mut out)
                .map(|w| (out, w))
        })
        .map_err(multiproc_to_py)?;
    let text = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok((text, warnings.into_iter().map(Into::into).collect()))
}
