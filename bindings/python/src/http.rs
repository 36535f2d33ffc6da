//! `http`: requests started before routing, with the route template bound once known.

use pyo3::prelude::*;
use tars_telemetry::{HttpRequest as CoreRequest, HttpRoute as CoreRoute};

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
