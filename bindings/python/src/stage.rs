//! `SpanContext`: the parent a Python stage passes to the core explicitly (kept by the
//! Python package in a `ContextVar`), the guards' shared behaviour, and `StageBase`: the
//! context-manager protocol of the package's stages (the parent found, the guard started
//! and made current, then ended by the block's outcome).

use pyo3::exceptions::{
    PyGeneratorExit, PyKeyboardInterrupt, PyRuntimeError, PyStopIteration, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};
use pyo3::{PyClass, intern};
use tars_telemetry::{CacheResult, Parent, SpanContext as CoreSpanContext};

use crate::llm::LlmCall;
use crate::rag::RagQuery;
use crate::timer::{CacheCall, DocumentJob, Timer};

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

// ---- the stages' protocol

/// What the stages use of the package: its `ContextVar` of the current span context (its
/// bound `get`, `set` and `reset`), its OpenTelemetry-Python module (`is_joined`,
/// `current`, `attach`, `detach`), and the exceptions that end a stage as cancelled.
struct Stages {
    get: Py<PyAny>,
    set: Py<PyAny>,
    reset: Py<PyAny>,
    otel: Py<PyAny>,
    cancelled: Py<PyTuple>,
}

static STAGES: PyOnceLock<Stages> = PyOnceLock::new();

fn stages(py: Python<'_>) -> PyResult<&'static Stages> {
    STAGES
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("stages are not configured"))
}

/// Gives the stages the package's `ContextVar` of the current span context and its
/// OpenTelemetry-Python module (once, at import).
#[pyfunction]
pub fn _configure_stages(current: &Bound<'_, PyAny>, otel: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = current.py();
    let cancelled = PyTuple::new(
        py,
        [
            py.import("asyncio")?.getattr("CancelledError")?,
            py.get_type::<PyGeneratorExit>().into_any(),
            py.get_type::<PyKeyboardInterrupt>().into_any(),
        ],
    )?;
    let s = Stages {
        get: current.getattr("get")?.unbind(),
        set: current.getattr("set")?.unbind(),
        reset: current.getattr("reset")?.unbind(),
        otel: otel.clone().unbind(),
        cancelled: cancelled.unbind(),
    };
    STAGES
        .set(py, s)
        .map_err(|_| PyRuntimeError::new_err("stages are configured once"))
}

/// How a stage's block ended.
enum End<'a> {
    /// Without an exception (a document's chunk count with it).
    Ok(u32),
    /// With an exception of that type.
    Err(&'a str),
    /// Cancelled.
    Abandon(&'a str),
}

/// The guards a stage starts: their span context, and the end each gives an outcome.
trait Guard {
    fn span(&self) -> Option<CoreSpanContext>;
    fn end(&mut self, end: End<'_>);
}

macro_rules! guard {
    ($ty:ty, |$g:ident, $chunks:ident| ok: $ok:expr, err($e:ident): $err:expr) => {
        impl Guard for $ty {
            fn span(&self) -> Option<CoreSpanContext> {
                self.0.as_ref().and_then(|g| g.span_context())
            }

            fn end(&mut self, end: End<'_>) {
                #[allow(unused_mut)]
                let Some(mut $g) = self.0.take() else {
                    return;
                };
                match end {
                    End::Ok($chunks) => {
                        $ok;
                    }
                    End::Err($e) => {
                        $err;
                    }
                    End::Abandon(e) => $g.abandon_with(e),
                }
            }
        }
    };
}

guard!(Timer, |g, _c| ok: g.stop(), err(e): {
    g.record_error(e);
    g.stop()
});
guard!(RagQuery, |g, _c| ok: g.succeed(), err(e): g.fail_with(e));
guard!(LlmCall, |g, _c| ok: g.succeed(), err(e): g.fail_with(e));
guard!(CacheCall, |g, _c| ok: g.finish(CacheResult::Ok), err(e): {
    g.record_error(e);
    g.finish(CacheResult::Error)
});
guard!(DocumentJob, |g, chunks| ok: g.succeed(chunks), err(e): g.fail_with(e));

fn with<T, R>(g: &Bound<'_, T>, f: impl FnOnce(&mut dyn Guard) -> R) -> PyResult<R>
where
    T: PyClass<Frozen = pyo3::pyclass::boolean_struct::False> + Guard,
{
    Ok(f(&mut *g.try_borrow_mut()?))
}

/// Runs `f` on the guard, one of the native guard classes.
fn on_guard<R>(g: &Bound<'_, PyAny>, f: impl FnOnce(&mut dyn Guard) -> R) -> PyResult<R> {
    if let Ok(g) = g.cast::<Timer>() {
        with(g, f)
    } else if let Ok(g) = g.cast::<CacheCall>() {
        with(g, f)
    } else if let Ok(g) = g.cast::<RagQuery>() {
        with(g, f)
    } else if let Ok(g) = g.cast::<LlmCall>() {
        with(g, f)
    } else if let Ok(g) = g.cast::<DocumentJob>() {
        with(g, f)
    } else {
        Err(PyTypeError::new_err(format!(
            "a stage's start returned {}, not a guard",
            g.get_type().qualname()?
        )))
    }
}

/// A stage of work: `start(*args, parent)` starts its guard when it is entered
/// (`with`/`async with`, once), and its block's outcome ends it: success, a failure with
/// the exception's type, or `cancelled`. The package's stages subclass it.
#[pyclass(subclass, module = "tars_telemetry._native")]
pub struct StageBase {
    start: Py<PyAny>,
    args: Py<PyTuple>,
    guard: Option<Py<PyAny>>,
    /// The `ContextVar` token, when the stage's span context was made current.
    token: Option<Py<PyAny>>,
    /// OpenTelemetry-Python's token, when joined and made current there.
    otel_token: Option<Py<PyAny>>,
    /// A document's chunk count, given at its success.
    #[pyo3(get, set, name = "_chunks")]
    chunks: u32,
}

impl StageBase {
    fn begin(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let st = stages(py)?;
        let (start, args) = {
            let s = slf.try_borrow()?;
            if s.guard.is_some() {
                return Err(PyRuntimeError::new_err(
                    "a stage is entered once; make a new one for each use",
                ));
            }
            (s.start.clone_ref(py), s.args.clone_ref(py))
        };
        let otel = st.otel.bind(py);
        let joined = otel.getattr(intern!(py, "is_joined"))?.is_truthy()?;
        let parent = if joined {
            otel.call_method0(intern!(py, "current"))?
        } else {
            st.get.bind(py).call0()?
        };
        // start(*args, parent)
        let (start, a) = (start.bind(py), args.bind(py));
        let p = parent.clone();
        let g = match a.len() {
            0 => start.call1((p,)),
            1 => start.call1((a.get_item(0)?, p)),
            2 => start.call1((a.get_item(0)?, a.get_item(1)?, p)),
            _ => start.call1(PyTuple::new(
                py,
                a.iter().chain(std::iter::once(p)).collect::<Vec<_>>(),
            )?),
        }?;
        let sc = on_guard(&g, |g| g.span())?.filter(|s| s.is_valid());
        // Cheapest first: no span of ours and nothing joined, nothing made current.
        let Some(sc) = sc else {
            slf.try_borrow_mut()?.guard = Some(g.clone().unbind());
            if joined && !parent.is_none() {
                // No span of ours: the exemplars point at OpenTelemetry-Python's.
                g.call_method1(intern!(py, "set_trace"), (parent,))?;
            }
            return Ok(());
        };
        let sc = Bound::new(py, SpanContext(sc))?;
        let token = st.set.bind(py).call1((&sc,))?.unbind();
        let otel_token = if joined {
            Some(otel.call_method1(intern!(py, "attach"), (&sc,))?.unbind())
        } else {
            None
        };
        let mut s = slf.try_borrow_mut()?;
        s.guard = Some(g.unbind());
        s.token = Some(token);
        s.otel_token = otel_token;
        Ok(())
    }

    fn finish(slf: &Bound<'_, Self>, exc_type: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let py = slf.py();
        let (g, token, otel_token, chunks) = {
            let mut s = slf.try_borrow_mut()?;
            let Some(g) = s.guard.as_ref().map(|g| g.clone_ref(py)) else {
                return Ok(());
            };
            (g, s.token.take(), s.otel_token.take(), s.chunks)
        };
        let st = stages(py)?;
        if let Some(token) = token
            && let Err(e) = st.reset.bind(py).call1((token,))
            // A ValueError: ended in another context (an async generator closed elsewhere).
            && !e.is_instance_of::<PyValueError>(py)
        {
            return Err(e);
        }
        if let Some(token) = otel_token {
            st.otel
                .bind(py)
                .call_method1(intern!(py, "detach"), (token,))?;
        }
        let g = g.bind(py);
        match exc_type.filter(|t| !t.is_none()) {
            None => on_guard(g, |g| g.end(End::Ok(chunks))),
            Some(t) => {
                let t = t.cast::<PyType>()?;
                if t.is_subclass(st.cancelled.bind(py))? {
                    on_guard(g, |g| g.end(End::Abandon("cancelled")))
                } else {
                    let name = t.qualname()?;
                    let name = name.to_str()?;
                    on_guard(g, |g| g.end(End::Err(name)))
                }
            }
        }
    }
}

#[pymethods]
impl StageBase {
    /// Lets Python's cycle collector see what the stage holds (its start function and
    /// arguments may refer back to it).
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.start)?;
        visit.call(&self.args)?;
        for o in [&self.guard, &self.token, &self.otel_token]
            .into_iter()
            .flatten()
        {
            visit.call(o)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.guard = None;
        self.token = None;
        self.otel_token = None;
    }

    #[new]
    #[pyo3(signature = (start, *args))]
    fn new(start: Py<PyAny>, args: Py<PyTuple>) -> Self {
        StageBase {
            start,
            args,
            guard: None,
            token: None,
            otel_token: None,
            chunks: 0,
        }
    }

    /// The core's guard (started when the stage is entered).
    #[getter]
    fn guard(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.guard.as_ref().map(|g| g.clone_ref(py)).ok_or_else(|| {
            PyRuntimeError::new_err("the stage has not started: use it in a with block")
        })
    }

    /// The guard, or `None` before the stage is entered.
    #[getter]
    fn _guard(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.guard.as_ref().map(|g| g.clone_ref(py))
    }

    /// A new, unentered stage of the same type, start and arguments.
    fn _fresh<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (start, args) = {
            let s = slf.try_borrow()?;
            (s.start.clone_ref(py), s.args.clone_ref(py))
        };
        let args = args.bind(py);
        let all = std::iter::once(start.into_bound(py)).chain(args.iter());
        slf.get_type()
            .call1(PyTuple::new(py, all.collect::<Vec<_>>())?)
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        Self::begin(slf)?;
        Ok(slf.clone())
    }

    #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
    fn __exit__(
        slf: &Bound<'_, Self>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        Self::finish(slf, exc_type)
    }

    fn __aenter__(slf: &Bound<'_, Self>) -> PyResult<Ready> {
        Self::begin(slf)?;
        Ok(Ready(slf.clone().into_any().unbind()))
    }

    #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
    fn __aexit__(
        slf: &Bound<'_, Self>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Ready> {
        Self::finish(slf, exc_type)?;
        Ok(Ready(slf.py().None()))
    }
}

/// An awaitable already done: awaiting it gives its value at once.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Ready(Py<PyAny>);

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<()> {
        Err(PyStopIteration::new_err((self.0.clone_ref(py),)))
    }

    #[pyo3(signature = (_value = None))]
    fn send(&self, py: Python<'_>, _value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.__next__(py)
    }
}
