//! `stage`: the parent a Python stage passes to the core (`SpanContext`, kept by the
//! Python package in a `ContextVar`), and the protocol of the package's stages: native
//! classes that hold their core guard themselves, started when entered (`with`,
//! `async with`) under the current span context, made current, and ended by the block's
//! outcome. One native object per stage and no Python frame between the block and the
//! core: this is what a `with` stage costs.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{
    PyGeneratorExit, PyKeyboardInterrupt, PyRuntimeError, PyStopIteration, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};
use pyo3::{PyClass, PyClassInitializer, intern};
use tars_telemetry::{Parent, SpanContext as CoreSpanContext, TraceRef};

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

/// The span context of a guard, wrapped.
pub fn wrap(sc: Option<CoreSpanContext>) -> Option<SpanContext> {
    sc.filter(|s| s.is_valid()).map(SpanContext)
}

/// The parent of a stage started with an explicit one: that span, else none (Python code
/// has no thread-current OpenTelemetry context in the core).
pub fn parent(p: Option<&SpanContext>) -> Parent<'static> {
    match p {
        Some(sc) => Parent::Span(sc.0),
        None => Parent::Root,
    }
}

// ---- the stages' protocol

/// Whether stages join OpenTelemetry-Python's context: read on every stage entered, so a
/// flag here rather than an attribute looked up in the package.
static JOINED: AtomicBool = AtomicBool::new(false);

/// From now on, stages join OpenTelemetry-Python's context (`_otel.join()`).
#[pyfunction]
pub fn _join_opentelemetry() {
    JOINED.store(true, Ordering::Relaxed);
}

/// What the stages use of the package: its `ContextVar` of the current span context (its
/// bound `get`, `set` and `reset`), its OpenTelemetry-Python module (`current`, `attach`,
/// `detach`), the function that makes a stage a decorator, and the exceptions that end a
/// stage as cancelled.
struct Stages {
    get: Py<PyAny>,
    set: Py<PyAny>,
    reset: Py<PyAny>,
    otel: Py<PyAny>,
    decorate: Py<PyAny>,
    cancelled: Py<PyTuple>,
}

static STAGES: PyOnceLock<Stages> = PyOnceLock::new();

fn stages(py: Python<'_>) -> PyResult<&'static Stages> {
    STAGES
        .get(py)
        .ok_or_else(|| PyRuntimeError::new_err("stages are not configured"))
}

/// Gives the stages the package's `ContextVar` of the current span context, its
/// OpenTelemetry-Python module and its decorator function (once, at import).
#[pyfunction]
pub fn _configure_stages(
    current: &Bound<'_, PyAny>,
    otel: &Bound<'_, PyAny>,
    decorate: &Bound<'_, PyAny>,
) -> PyResult<()> {
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
        decorate: decorate.clone().unbind(),
        cancelled: cancelled.unbind(),
    };
    STAGES
        .set(py, s)
        .map_err(|_| PyRuntimeError::new_err("stages are configured once"))
}

/// How a stage's block ended.
pub enum End<'a> {
    /// Without an exception.
    Ok,
    /// With an exception of that type.
    Err(&'a str),
    /// Cancelled.
    Abandon(&'a str),
}

/// A core guard as a stage ends it: by its block's outcome.
pub trait StageGuard: Sized {
    fn span_context(&self) -> Option<CoreSpanContext>;
    fn set_trace(&mut self, trace: TraceRef);
    fn record_error(&mut self, error_type: &str);
    fn elapsed(&self) -> std::time::Duration;
    fn abandon_with(self, error_type: &str);
    /// Ends the guard by its block's outcome.
    fn end(self, end: &End<'_>);
}

/// Implements [`StageGuard`] for a core guard: its shared methods, and how it ends on
/// success and on an exception (`$e`: the exception's type name).
macro_rules! stage_guard {
    ($ty:ty, |$g:ident| ok: $ok:expr, err($e:ident): $err:expr) => {
        impl $crate::stage::StageGuard for $ty {
            fn span_context(&self) -> Option<tars_telemetry::SpanContext> {
                <$ty>::span_context(self)
            }
            fn set_trace(&mut self, trace: tars_telemetry::TraceRef) {
                <$ty>::set_trace(self, trace)
            }
            fn record_error(&mut self, error_type: &str) {
                <$ty>::record_error(self, error_type)
            }
            fn elapsed(&self) -> std::time::Duration {
                <$ty>::elapsed(self)
            }
            fn abandon_with(self, error_type: &str) {
                <$ty>::abandon_with(self, error_type)
            }
            #[allow(unused_mut)]
            fn end(self, end: &$crate::stage::End<'_>) {
                let mut $g = self;
                match *end {
                    $crate::stage::End::Ok => {
                        $ok;
                    }
                    $crate::stage::End::Err($e) => {
                        $err;
                    }
                    $crate::stage::End::Abandon(e) => $g.abandon_with(e),
                }
            }
        }
    };
}
pub(crate) use stage_guard;

/// What every stage keeps: its guard once entered, and the tokens that made its span
/// context current.
pub struct Entry<G> {
    pub guard: Option<G>,
    entered: bool,
    /// The `ContextVar` token, when the stage's span context was made current.
    token: Option<Py<PyAny>>,
    /// OpenTelemetry-Python's token, when joined and made current there.
    otel_token: Option<Py<PyAny>>,
}

impl<G> Default for Entry<G> {
    fn default() -> Self {
        Entry {
            guard: None,
            entered: false,
            token: None,
            otel_token: None,
        }
    }
}

impl<G: StageGuard> Entry<G> {
    /// Whether the stage was entered and its guard has ended.
    pub fn ended(&self) -> bool {
        self.entered && self.guard.is_none()
    }

    /// The running guard; `RuntimeError` before the stage is entered, `None` once ended.
    pub fn running(&mut self) -> PyResult<Option<&mut G>> {
        if !self.entered {
            return Err(not_started());
        }
        Ok(self.guard.as_mut())
    }

    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for o in [&self.token, &self.otel_token].into_iter().flatten() {
            visit.call(o)?;
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.token = None;
        self.otel_token = None;
    }
}

fn not_started() -> PyErr {
    PyRuntimeError::new_err("the stage has not started: use it in a with block")
}

/// A kind of stage: a native class that starts its core guard when entered.
pub trait StageKind:
    PyClass<Frozen = pyo3::pyclass::boolean_struct::False, BaseType = Stage> + Sized
{
    type Guard: StageGuard;
    fn entry(&mut self) -> &mut Entry<Self::Guard>;
    /// Starts the guard under `parent` (`None`: the stage records nothing, its query
    /// having ended).
    fn start(&self, py: Python<'_>, parent: Parent<'_>) -> PyResult<Option<Self::Guard>>;
    /// A new, unentered stage of the same start.
    fn fresh(&self, py: Python<'_>) -> Self;
    /// Ends the guard by the block's outcome (a document passes its chunk count).
    fn end(&mut self, end: &End<'_>) {
        if let Some(g) = self.entry().guard.take() {
            g.end(end);
        }
    }
}

/// A new stage object of kind `K`.
pub fn new_stage<K: StageKind>(py: Python<'_>, k: K) -> PyResult<Bound<'_, K>> {
    Bound::new(py, PyClassInitializer::from(Stage).add_subclass(k))
}

/// The span context new stages start under: the `ContextVar`'s, or, when joined,
/// OpenTelemetry-Python's current span (returned too, for the exemplars).
fn current<'py>(
    py: Python<'py>,
    st: &Stages,
) -> PyResult<(Option<CoreSpanContext>, Option<Bound<'py, PyAny>>)> {
    let joined = JOINED.load(Ordering::Relaxed);
    let p = if joined {
        st.otel.bind(py).call_method0(intern!(py, "current"))?
    } else {
        st.get.bind(py).call0()?
    };
    // Cheapest first: no current stage.
    let sc = match p.is_none() {
        true => None,
        false => p.cast::<SpanContext>().ok().map(|s| s.get().0),
    };
    Ok((sc, joined.then_some(p)))
}

/// `__enter__`: starts the guard under the current span context and makes the stage's
/// span context current.
pub fn enter<K: StageKind>(slf: &Bound<'_, K>) -> PyResult<()> {
    let py = slf.py();
    let st = stages(py)?;
    let (parent, otel_parent) = current(py, st)?;
    let span = {
        let mut k = slf.try_borrow_mut()?;
        if k.entry().entered {
            return Err(PyRuntimeError::new_err(
                "a stage is entered once; make a new one for each use",
            ));
        }
        let guard = k.start(py, parent.map_or(Parent::Root, Parent::Span))?;
        let e = k.entry();
        e.entered = true;
        e.guard = guard;
        let span = e.guard.as_ref().and_then(|g| g.span_context());
        match span.filter(|s| s.is_valid()) {
            Some(s) => s,
            // No span of ours: nothing is made current. When joined, the exemplars point
            // at OpenTelemetry-Python's span.
            None => {
                if otel_parent.is_some()
                    && let (Some(g), Some(t)) =
                        (e.guard.as_mut(), parent.and_then(|p| p.trace_ref()))
                {
                    g.set_trace(t);
                }
                return Ok(());
            }
        }
    };
    let sc = Bound::new(py, SpanContext(span))?;
    let token = st.set.bind(py).call1((&sc,))?.unbind();
    let otel_token = match otel_parent {
        Some(_) => Some(
            st.otel
                .bind(py)
                .call_method1(intern!(py, "attach"), (&sc,))?
                .unbind(),
        ),
        None => None,
    };
    let mut k = slf.try_borrow_mut()?;
    let e = k.entry();
    e.token = Some(token);
    e.otel_token = otel_token;
    Ok(())
}

/// `__exit__`: restores the span context that was current, and ends the guard by the
/// block's outcome.
pub fn exit<K: StageKind>(slf: &Bound<'_, K>, exc_type: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let py = slf.py();
    let exc_type = exc_type.filter(|t| !t.is_none());
    let (token, otel_token) = {
        let mut k = slf.try_borrow_mut()?;
        let e = k.entry();
        if e.token.is_none() && e.otel_token.is_none() && exc_type.is_none() {
            // Cheapest first: nothing was made current, and the block succeeded.
            k.end(&End::Ok);
            return Ok(());
        }
        (e.token.take(), e.otel_token.take())
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
    match exc_type {
        None => slf.try_borrow_mut()?.end(&End::Ok),
        Some(t) => {
            let t = t.cast::<PyType>()?;
            if t.is_subclass(st.cancelled.bind(py))? {
                slf.try_borrow_mut()?.end(&End::Abandon("cancelled"))
            } else {
                let name = t.qualname()?;
                let name = name.to_str()?;
                slf.try_borrow_mut()?.end(&End::Err(name))
            }
        }
    }
    Ok(())
}

/// `__call__`: the stage as a decorator of a sync, async or async-generator function (a
/// fresh stage per call, made by the package).
pub fn decorate<'py>(
    slf: &Bound<'py, PyAny>,
    f: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    stages(py)?.decorate.bind(py).call1((slf, f))
}

/// Something entered and left around a block of code: a stage, a histogram's timed block,
/// a gauge's in-progress count. Its `with`, `async with` and decorator protocol is made
/// once for all of them (`block_methods!`).
pub trait Block: PyClass + Sized {
    /// Entered (`__enter__`, `__aenter__`).
    fn enter(slf: &Bound<'_, Self>) -> PyResult<()>;
    /// Left, with the type of the exception that left the block, if any.
    fn exit(slf: &Bound<'_, Self>, exc_type: Option<&Bound<'_, PyAny>>) -> PyResult<()>;
    /// A new, unentered block of the same kind and arguments (one per decorated call).
    fn fresh<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>>;
}

impl<K: StageKind> Block for K {
    fn enter(slf: &Bound<'_, Self>) -> PyResult<()> {
        enter(slf)
    }

    fn exit(slf: &Bound<'_, Self>, exc_type: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        exit(slf, exc_type)
    }

    fn fresh<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let k = slf.try_borrow()?.fresh(py);
        new_stage(py, k)
    }
}

/// The methods block of a [`Block`]: the `with`, `async with` and decorator protocol,
/// then the class's own methods.
macro_rules! block_methods {
    ($ty:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $ty {
            $($own)*

            fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
                <Self as $crate::stage::Block>::enter(slf)?;
                Ok(slf.clone())
            }

            #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
            fn __exit__(
                slf: &Bound<'_, Self>,
                exc_type: Option<&Bound<'_, PyAny>>,
                _exc: Option<&Bound<'_, PyAny>>,
                _tb: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<()> {
                <Self as $crate::stage::Block>::exit(slf, exc_type)
            }

            fn __aenter__(slf: &Bound<'_, Self>) -> PyResult<$crate::stage::Ready> {
                <Self as $crate::stage::Block>::enter(slf)?;
                Ok($crate::stage::Ready(slf.clone().into_any().unbind()))
            }

            #[pyo3(signature = (exc_type = None, _exc = None, _tb = None))]
            fn __aexit__(
                slf: &Bound<'_, Self>,
                exc_type: Option<&Bound<'_, PyAny>>,
                _exc: Option<&Bound<'_, PyAny>>,
                _tb: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<$crate::stage::Ready> {
                <Self as $crate::stage::Block>::exit(slf, exc_type)?;
                Ok($crate::stage::Ready(slf.py().None()))
            }

            /// Decorates a sync, async, generator or async-generator function: a fresh
            /// block around each call.
            fn __call__<'py>(
                slf: &Bound<'py, Self>,
                f: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $crate::stage::decorate(slf.as_any(), f)
            }

            /// A new, unentered block of the same kind and arguments.
            fn _fresh<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
                <Self as $crate::stage::Block>::fresh(slf)
            }
        }
    };
}
pub(crate) use block_methods;

/// The methods block of a stage kind: what every stage has (the [`Block`] protocol, its
/// span context, errors, abandoning it), then the kind's own.
macro_rules! stage_methods {
    ($ty:ident { $($own:tt)* }) => {
        $crate::stage::block_methods!($ty {
            $($own)*

            /// The stage's span context, when it is traced.
            fn span_context(&mut self) -> Option<$crate::stage::SpanContext> {
                self.entry()
                    .guard
                    .as_ref()
                    .and_then(|g| $crate::stage::wrap(
                        $crate::stage::StageGuard::span_context(g),
                    ))
            }

            /// Marks the stage's span with an error type, without ending it.
            fn record_error(&mut self, error_type: &str) -> PyResult<()> {
                if let Some(g) = self.entry().running()? {
                    $crate::stage::StageGuard::record_error(g, error_type);
                }
                Ok(())
            }

            /// Ends the stage now as abandoned (`cancelled`, a client that went away, ...).
            #[pyo3(signature = (error_type = "cancelled"))]
            fn abandon(&mut self, error_type: &str) -> PyResult<()> {
                self.entry().running()?;
                if let Some(g) = self.entry().guard.take() {
                    $crate::stage::StageGuard::abandon_with(g, error_type);
                }
                Ok(())
            }

            /// Whether the stage has ended.
            #[getter]
            fn ended(&mut self) -> bool {
                self.entry().ended()
            }

            /// Seconds since the stage started (0 before it starts and once it has ended).
            fn elapsed(&mut self) -> f64 {
                self.entry()
                    .guard
                    .as_ref()
                    .map_or(0.0, |g| $crate::stage::StageGuard::elapsed(g).as_secs_f64())
            }
        });
    };
}
pub(crate) use stage_methods;

/// The base of every stage: entered once with `with` or `async with` (or used as a
/// decorator), ended by its block's outcome.
#[pyclass(subclass, module = "tars_telemetry._native")]
pub struct Stage;

/// An awaitable already done: awaiting it gives its value at once.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Ready(pub Py<PyAny>);

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
