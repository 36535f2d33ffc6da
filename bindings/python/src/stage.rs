//! `SpanContext`: the parent a Python stage passes to the core explicitly (kept by the
//! Python package in a `ContextVar`), and the guards' shared behaviour.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tars_telemetry::{Parent, SpanContext as CoreSpanContext};

/// A W3C trace context: trace id, span id and flags.
#[pyclass(frozen, module = "tars_telemetry._native", name = "SpanContext")]
#[derive(Clone, Copy)]
pub struct SpanContext(pub CoreSpanContext);

#[pymethods]
impl SpanContext {
    /// From ids as integers (OpenTelemetry-Python's form).
    #[new]
    #[pyo3(signature = (trace_id, span_id, sampled = true, is_remote = true))]
    fn new(trace_id: u128, span_id: u64, sampled: bool, is_remote: bool) -> PyResult<Self> {
        let mut sc = CoreSpanContext::new(
            trace_id.to_be_bytes(),
            span_id.to_be_bytes(),
            if sampled { CoreSpanContext::SAMPLED } else { 0 },
        );
        sc.is_remote = is_remote;
        if !sc.is_valid() {
            return Err(PyValueError::new_err(
                "trace_id and span_id must not be zero",
            ));
        }
        Ok(SpanContext(sc))
    }

    /// Parses a `traceparent` header; `None` when it is not a valid one.
    #[staticmethod]
    fn from_traceparent(header: &str) -> Option<Self> {
        CoreSpanContext::from_traceparent(header).map(SpanContext)
    }

    /// The `traceparent` header of this context.
    fn traceparent(&self) -> String {
        self.0.to_traceparent()
    }

    /// The trace id as an integer.
    #[getter]
    fn trace_id(&self) -> u128 {
        u128::from_be_bytes(self.0.trace_id)
    }

    /// The span id as an integer.
    #[getter]
    fn span_id(&self) -> u64 {
        u64::from_be_bytes(self.0.span_id)
    }

    /// Whether the trace is sampled.
    #[getter]
    fn sampled(&self) -> bool {
        self.0.is_sampled()
    }

    /// Whether it came from another process (a header).
    #[getter]
    fn is_remote(&self) -> bool {
        self.0.is_remote
    }

    fn __repr__(&self) -> String {
        format!("SpanContext({:?})", self.0.to_traceparent())
    }

    fn __eq__(&self, other: &Self) -> bool {
        self.0 == other.0
    }

    fn __hash__(&self) -> u64 {
        u64::from_be_bytes(self.0.span_id)
    }
}

/// The parent a stage starts under: the given span, else none (Python code has no
/// thread-current OpenTelemetry context in the core).
pub fn parent(p: Option<&SpanContext>) -> Parent<'static> {
    match p {
        Some(sc) => Parent::Span(sc.0),
        None => Parent::Root,
    }
}

/// The span context of a guard, wrapped.
pub fn wrap(sc: Option<CoreSpanContext>) -> Option<SpanContext> {
    sc.filter(|s| s.is_valid()).map(SpanContext)
}

/// The methods block of a stage guard: those every guard has (its span context, errors,
/// abandoning it), then the guard's own. The guard lives in `self.0: Option<Core>`; once
/// ended, the methods do nothing.
macro_rules! guard_methods {
    ($ty:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($own)*

            /// The stage's span context, when it is traced.
            fn span_context(&self) -> Option<$crate::stage::SpanContext> {
                self.0
                    .as_ref()
                    .and_then(|g| $crate::stage::wrap(g.span_context()))
            }

            /// Leaves exemplars pointing at `span` (another SDK's span, sampled) where the
            /// stage has no span of its own.
            fn set_trace(&mut self, span: pyo3::PyRef<'_, $crate::stage::SpanContext>) {
                if let (Some(g), Some(t)) = (self.0.as_mut(), span.0.trace_ref()) {
                    g.set_trace(t);
                }
            }

            /// Marks the stage's span with an error type, without ending it.
            fn record_error(&mut self, error_type: &str) {
                if let Some(g) = self.0.as_mut() {
                    g.record_error(error_type);
                }
            }

            /// Ends the stage as abandoned (`cancelled`, a client that went away, ...).
            #[pyo3(signature = (error_type = "cancelled"))]
            fn abandon(&mut self, error_type: &str) {
                if let Some(g) = self.0.take() {
                    g.abandon_with(error_type);
                }
            }

            /// Whether the stage has ended.
            #[getter]
            fn ended(&self) -> bool {
                self.0.is_none()
            }

            /// Seconds since the stage started (0 once ended).
            fn elapsed(&self) -> f64 {
                self.0.as_ref().map_or(0.0, |g| g.elapsed().as_secs_f64())
            }
        }
    };
}
pub(crate) use guard_methods;
