//! `http`: requests started before routing, with the route template bound once known.

use pyo3::prelude::*;
use tars_telemetry::{HttpRequest as CoreRequest, HttpRoute as CoreRoute};

use crate::stage::guard_methods;

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

/// One HTTP request in flight.
#[pyclass(module = "tars_telemetry._native")]
pub struct HttpRequest(pub Option<CoreRequest>);

guard_methods!(HttpRequest {
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
        self.0.take().map_or(0.0, |g| g.finish(status).as_secs_f64())
    }
});
