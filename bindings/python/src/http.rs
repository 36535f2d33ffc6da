//! `http`: requests started before routing, with the route template bound once known.

use pyo3::prelude::*;
use tars_telemetry::http::{AbandonReason, ExcludedPaths as CoreExcluded};
use tars_telemetry::{HttpRequest as CoreRequest, HttpRoute as CoreRoute};

/// The paths a server middleware leaves unrecorded: each excludes itself and everything
/// below it (the core's rule, the same in every adapter). No argument: the core's
/// defaults (the scrape and the probes).
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct ExcludedPaths(CoreExcluded);

#[pymethods]
impl ExcludedPaths {
    #[new]
    #[pyo3(signature = (paths = None))]
    fn new(paths: Option<Vec<String>>) -> Self {
        ExcludedPaths(paths.map_or_else(CoreExcluded::default, CoreExcluded::new))
    }

    /// Whether a request to `path` is left unrecorded.
    fn contains(&self, path: &str) -> bool {
        self.0.contains(path)
    }

    fn __contains__(&self, path: &str) -> bool {
        self.0.contains(path)
    }

    /// The paths, trailing slashes removed.
    #[getter]
    fn paths(&self) -> Vec<String> {
        self.0.paths().map(str::to_string).collect()
    }
}

/// Adds the core's HTTP server rules to the module.
pub fn add_rules(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ExcludedPaths>()?;
    m.add(
        "HTTP_DEFAULT_EXCLUDED_PATHS",
        pyo3::types::PyTuple::new(m.py(), tars_telemetry::http::DEFAULT_EXCLUDED_PATHS)?,
    )?;
    m.add("HTTP_MAX_SPAN_PATH", tars_telemetry::http::MAX_SPAN_PATH)?;
    m.add("HTTP_ABANDON_CANCELLED", AbandonReason::Cancelled.as_str())?;
    m.add(
        "HTTP_ABANDON_CLIENT_DISCONNECTED",
        AbandonReason::ClientDisconnected.as_str(),
    )?;
    Ok(())
}

use crate::stage::{SpanContext, wrap};

/// An interned route template.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct HttpRoute(pub CoreRoute);

#[pymethods]
impl HttpRoute {
    /// The template (`/api/v1/items/{item_id}`).
    #[getter]
    fn template(&self) -> &str {
        self.0.template()
    }
}

/// One HTTP request in flight; once ended, its methods do nothing.
#[pyclass(module = "tars_telemetry._native")]
pub struct HttpRequest(pub Option<CoreRequest>);

#[pymethods]
impl HttpRequest {
    /// Binds the route template, once the framework has routed the request.
    fn set_route(&mut self, route: &HttpRoute) {
        if let Some(g) = self.0.as_mut() {
            g.set_route(&route.0);
        }
    }

    /// The bound route template, if any.
    #[getter]
    fn route(&self) -> Option<String> {
        self.0.as_ref().and_then(|g| g.route().map(str::to_string))
    }

    /// Records the request with its response status; returns its duration in seconds.
    fn finish(&mut self, status: u16) -> f64 {
        self.0
            .take()
            .map_or(0.0, |g| g.finish(status).as_secs_f64())
    }

    /// The request's span context, when it is traced.
    fn span_context(&self) -> Option<SpanContext> {
        self.0.as_ref().and_then(|g| wrap(g.span_context()))
    }

    /// Leaves exemplars pointing at `span` (another SDK's span, sampled) where the
    /// request has no span of its own.
    fn set_trace(&mut self, span: PyRef<'_, SpanContext>) {
        if let (Some(g), Some(t)) = (self.0.as_mut(), span.0.trace_ref()) {
            g.set_trace(t);
        }
    }

    /// Marks the request's span with an error type, without ending it.
    fn record_error(&mut self, error_type: &str) {
        if let Some(g) = self.0.as_mut() {
            g.record_error(error_type);
        }
    }

    /// Ends the request as abandoned (a client that went away, a cancelled task).
    #[pyo3(signature = (error_type = "cancelled"))]
    fn abandon(&mut self, error_type: &str) {
        if let Some(g) = self.0.take() {
            g.abandon_with(error_type);
        }
    }

    /// Whether the request has ended.
    #[getter]
    fn ended(&self) -> bool {
        self.0.is_none()
    }

    /// Seconds since the request started (0 once ended).
    fn elapsed(&self) -> f64 {
        self.0.as_ref().map_or(0.0, |g| g.elapsed().as_secs_f64())
    }
}
