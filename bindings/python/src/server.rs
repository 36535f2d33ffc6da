//! `server`: the core's own /metrics HTTP server, for services without an ASGI app.

use std::sync::Mutex;

use pyo3::prelude::*;
use tars_telemetry::MetricsServer as CoreServer;

/// A running /metrics server; `shutdown()` stops it (releasing the GIL meanwhile).
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct MetricsServer {
    pub server: Mutex<Option<CoreServer>>,
    pub host: String,
    pub port: u16,
}

#[pymethods]
impl MetricsServer {
    /// The bound port (useful when 0 was asked for).
    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// The bound host address.
    #[getter]
    fn host(&self) -> &str {
        &self.host
    }

    /// Stops the server; idempotent.
    fn shutdown(&self, py: Python<'_>) {
        let s = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(s) = s {
            py.detach(move || s.shutdown());
        }
    }
}
