//! `trace`: OTLP export of the stages' spans, configured from `OTEL_*` (and keywords).

use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tars_telemetry::trace::{Protocol, TraceConfig, TraceError, Tracing};

/// The installed tracing of one telemetry (replaced in a forked child).
#[derive(Default)]
pub struct TraceSlot(pub Mutex<Option<Tracing>>);

impl TraceSlot {
    pub fn set(&self, t: Tracing) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
    }

    pub fn with<R>(&self, f: impl FnOnce(&Tracing) -> R) -> Option<R> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(f)
    }
}

pub fn to_py(e: TraceError) -> PyErr {
    PyRuntimeError::new_err(format!("tracing: {e}"))
}

/// The configuration: `OTEL_*` from the environment, then the keywords given.
pub fn config(
    service_name: Option<&str>,
    endpoint: Option<&str>,
    protocol: Option<&str>,
) -> PyResult<TraceConfig> {
    let mut c = TraceConfig::from_env();
    if let Some(s) = service_name {
        c = c.with_service_name(s);
    }
    if let Some(p) = protocol {
        let p = Protocol::parse(p).ok_or_else(|| {
            PyValueError::new_err(format!(
                "OTLP protocol {p:?} is not supported; use \"grpc\" or \"http/protobuf\""
            ))
        })?;
        c = c.with_protocol(p);
    }
    if let Some(e) = endpoint {
        c = c.with_endpoint(e);
    }
    Ok(c)
}

pub fn seconds(s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PyValueError::new_err("timeout must be a non-negative number of seconds"))
}
