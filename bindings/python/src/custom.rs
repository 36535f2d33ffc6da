//! `custom`: the service's own counter, gauge and histogram families, used as in
//! prometheus_client: `family.labels("a", "b").inc()`, or `family.inc()` without labels.

use std::time::Instant;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use tars_telemetry::custom::{
    CounterFamily as CoreCounters, FloatCounter, GaugeFamily as CoreGauges,
    HistogramFamily as CoreHistograms,
};
use tars_telemetry::{Gauge as CoreGauge, Histogram as CoreHistogram};

use crate::error::IntoPy;
use crate::stage::{Block, block_methods};

/// Label values from positional strings, or keywords named as the family's labels, in the
/// family's order.
fn values<'py>(
    names: &[String],
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Vec<Bound<'py, PyString>>> {
    let kw_len = kwargs.map_or(0, |k| k.len());
    if kw_len > 0 && !args.is_empty() {
        return Err(PyTypeError::new_err(
            "give label values either by position or by keyword, not both",
        ));
    }
    let as_str = |v: Bound<'py, PyAny>, what: &str| -> PyResult<Bound<'py, PyString>> {
        v.cast_into::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("label value for {what:?} must be a str")))
    };
    if let Some(kw) = kwargs.filter(|_| kw_len > 0) {
        if kw_len != names.len() {
            return Err(PyValueError::new_err(format!(
                "expected labels {names:?}, {kw_len} given"
            )));
        }
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            match kw.get_item(n)? {
                Some(v) => out.push(as_str(v, n)?),
                None => {
                    return Err(PyValueError::new_err(format!(
                        "missing label {n:?}; expected labels {names:?}"
                    )));
                }
            }
        }
        return Ok(out);
    }
    if args.len() != names.len() {
        return Err(PyValueError::new_err(format!(
            "expected {} label value(s) for {names:?}, {} given",
            names.len(),
            args.len()
        )));
    }
    args.iter().zip(names).map(|(v, n)| as_str(v, n)).collect()
}

/// Children kept per family, at most: past it, `labels()` resolves through the core on
/// every call (still correct, only slower).
const CHILDREN_CAP: usize = 4096;

/// The child for these positional label values, made once: a repeated
/// `labels("a", "b", "c")` is one dict lookup keyed by the argument tuple (whose strings
/// cache their hashes), as prometheus_client's children are, not a core lookup and a new
/// object per call.
fn child<'py, T>(
    py: Python<'py>,
    children: &Py<PyDict>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
    make: impl FnOnce() -> PyResult<T>,
) -> PyResult<Py<T>>
where
    T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>,
{
    let positional = kwargs.is_none_or(|k| k.is_empty());
    let children = children.bind(py);
    if positional
        // An unhashable argument is no hit: `make` says what is wrong with it.
        && let Ok(Some(hit)) = children.get_item(args)
        && let Ok(hit) = hit.cast_into::<T>()
    {
        return Ok(hit.unbind());
    }
    let made = Py::new(py, make()?)?;
    if positional && children.len() < CHILDREN_CAP {
        children.set_item(args, &made)?;
    }
    Ok(made)
}

/// The strings' UTF-8 (a lone surrogate is a `UnicodeEncodeError`).
fn refs<'a>(v: &'a [Bound<'_, PyString>]) -> PyResult<Vec<&'a str>> {
    v.iter().map(|s| s.to_str()).collect()
}

/// A counter family.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct CounterFamily {
    /// Children made so far, by their positional label values (see `child`).
    pub children: Py<PyDict>,
    pub family: CoreCounters,
    pub names: Vec<String>,
    pub unlabelled: Option<FloatCounter>,
}

#[pymethods]
impl CounterFamily {
    /// The series with these label values.
    #[pyo3(signature = (*args, **kwargs))]
    fn labels<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Py<Counter>> {
        child(py, &self.children, args, kwargs, || {
            let v = values(&self.names, args, kwargs)?;
            Ok(Counter(self.family.labels(&refs(&v)?).py()?))
        })
    }

    /// Adds `amount` to the family without labels (NaN and negative amounts are counted
    /// as invalid, not raised).
    #[pyo3(signature = (amount = 1.0))]
    fn inc(&self, amount: f64) -> PyResult<()> {
        match &self.unlabelled {
            Some(c) => {
                c.inc_by(amount);
                Ok(())
            }
            None => Err(PyValueError::new_err(
                "this family has labels: call .labels(...) first",
            )),
        }
    }

    /// The family's name (with `_total`).
    #[getter]
    fn name(&self) -> &str {
        self.family.name()
    }
}

/// One counter series.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Counter(pub FloatCounter);

#[pymethods]
impl Counter {
    /// Adds `amount` (NaN and negative amounts are counted as invalid, not raised).
    #[pyo3(signature = (amount = 1.0))]
    fn inc(&self, amount: f64) {
        self.0.inc_by(amount);
    }

    /// The current value.
    fn get(&self) -> f64 {
        self.0.get()
    }
}

/// A gauge family.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct GaugeFamily {
    /// Children made so far, by their positional label values (see `child`).
    pub children: Py<PyDict>,
    pub family: CoreGauges,
    pub names: Vec<String>,
    pub unlabelled: Option<CoreGauge>,
}

fn need<T>(m: &Option<T>) -> PyResult<&T> {
    m.as_ref()
        .ok_or_else(|| PyValueError::new_err("this family has labels: call .labels(...) first"))
}

#[pymethods]
impl GaugeFamily {
    /// The series with these label values.
    #[pyo3(signature = (*args, **kwargs))]
    fn labels<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Py<Gauge>> {
        child(py, &self.children, args, kwargs, || {
            let v = values(&self.names, args, kwargs)?;
            Ok(Gauge(self.family.labels(&refs(&v)?).py()?))
        })
    }

    /// Sets the family's value without labels.
    fn set(&self, value: f64) -> PyResult<()> {
        need(&self.unlabelled)?.set(value);
        Ok(())
    }

    /// Adds `amount` to the family's value without labels.
    #[pyo3(signature = (amount = 1.0))]
    fn inc(&self, amount: f64) -> PyResult<()> {
        need(&self.unlabelled)?.inc_by(amount);
        Ok(())
    }

    /// Subtracts `amount` from the family's value without labels.
    #[pyo3(signature = (amount = 1.0))]
    fn dec(&self, amount: f64) -> PyResult<()> {
        need(&self.unlabelled)?.dec_by(amount);
        Ok(())
    }

    /// Counts a block while it runs in the family without labels (see
    /// `Gauge.track_inprogress`).
    fn track_inprogress(&self) -> PyResult<InProgress> {
        Ok(InProgress::new(need(&self.unlabelled)?.clone()))
    }
}

/// One gauge series.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Gauge(pub CoreGauge);

#[pymethods]
impl Gauge {
    /// Sets the value (NaN is counted as invalid, not raised).
    fn set(&self, value: f64) {
        self.0.set(value);
    }

    /// Adds `amount`.
    #[pyo3(signature = (amount = 1.0))]
    fn inc(&self, amount: f64) {
        self.0.inc_by(amount);
    }

    /// Subtracts `amount`.
    #[pyo3(signature = (amount = 1.0))]
    fn dec(&self, amount: f64) {
        self.0.dec_by(amount);
    }

    /// Counts a block while it runs, as prometheus_client's: `with g.track_inprogress():`,
    /// `async with`, or `@g.track_inprogress()` on a function.
    fn track_inprogress(&self) -> InProgress {
        InProgress::new(self.0.clone())
    }

    /// The current value.
    fn get(&self) -> f64 {
        self.0.get()
    }
}

/// The native buckets a custom histogram asked for: `None`/`False` none, `True` the
/// core's default shape, an `int` that schema (a `bool` is checked first: it is an `int`
/// in Python).
pub(crate) fn native_option(
    native: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<tars_telemetry::NativeBuckets>> {
    let Some(v) = native.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
        return Ok(b
            .is_true()
            .then_some(tars_telemetry::NativeBuckets::DEFAULT));
    }
    match v.extract::<i64>() {
        Ok(schema) => {
            let schema = i8::try_from(schema).unwrap_or(i8::MAX);
            Ok(Some(tars_telemetry::NativeBuckets::with_schema(schema)))
        }
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(
            "native must be a bool or a schema (an int from -4 to 8)",
        )),
    }
}

/// A histogram family.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct HistogramFamily {
    /// Children made so far, by their positional label values (see `child`).
    pub children: Py<PyDict>,
    pub family: CoreHistograms,
    pub names: Vec<String>,
    pub unlabelled: Option<CoreHistogram>,
}

#[pymethods]
impl HistogramFamily {
    /// The series with these label values.
    #[pyo3(signature = (*args, **kwargs))]
    fn labels<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Py<Histogram>> {
        child(py, &self.children, args, kwargs, || {
            let v = values(&self.names, args, kwargs)?;
            Ok(Histogram(self.family.labels(&refs(&v)?).py()?))
        })
    }

    /// Observes `value` in the family without labels.
    fn observe(&self, value: f64) -> PyResult<()> {
        need(&self.unlabelled)?.observe(value);
        Ok(())
    }

    /// Times a block into the family without labels (see `Histogram.time`).
    fn time(&self) -> PyResult<HistogramTimer> {
        Ok(HistogramTimer::new(need(&self.unlabelled)?.clone()))
    }
}

/// One histogram series.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct Histogram(pub CoreHistogram);

#[pymethods]
impl Histogram {
    /// Observes `value` (NaN, infinite and negative values are counted as invalid).
    fn observe(&self, value: f64) {
        self.0.observe(value);
    }

    /// Observations so far.
    fn count(&self) -> u64 {
        self.0.count()
    }

    /// Sum of the observations.
    fn sum(&self) -> f64 {
        self.0.sum()
    }

    /// Times a block into this histogram, in seconds, as prometheus_client's: `with
    /// h.time():`, `async with h.time():`, or `@h.time()` on a function.
    fn time(&self) -> HistogramTimer {
        HistogramTimer::new(self.0.clone())
    }
}

/// A block timed into a histogram (`Histogram.time()`). Entered again, it times again.
#[pyclass(module = "tars_telemetry._native")]
pub struct HistogramTimer {
    histogram: CoreHistogram,
    /// When the block was entered, while it runs.
    started: Option<Instant>,
}

impl HistogramTimer {
    fn new(histogram: CoreHistogram) -> Self {
        HistogramTimer {
            histogram,
            started: None,
        }
    }
}

impl Block for HistogramTimer {
    fn enter(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.try_borrow_mut()?.started = Some(Instant::now());
        Ok(())
    }

    fn exit(slf: &Bound<'_, Self>, _exc_type: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mut t = slf.try_borrow_mut()?;
        if let Some(started) = t.started.take() {
            t.histogram.observe_duration(started.elapsed());
        }
        Ok(())
    }

    fn fresh<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let h = slf.try_borrow()?.histogram.clone();
        Bound::new(slf.py(), HistogramTimer::new(h))
    }
}

block_methods!(HistogramTimer {});

/// A block counted in a gauge while it runs (`Gauge.track_inprogress()`): +1 when
/// entered, -1 when left, however it ends.
#[pyclass(module = "tars_telemetry._native")]
pub struct InProgress {
    gauge: CoreGauge,
    /// Blocks entered and not yet left, so that a stray `__exit__` takes nothing away.
    running: u64,
}

impl InProgress {
    fn new(gauge: CoreGauge) -> Self {
        InProgress { gauge, running: 0 }
    }
}

impl Block for InProgress {
    fn enter(slf: &Bound<'_, Self>) -> PyResult<()> {
        let mut p = slf.try_borrow_mut()?;
        p.running += 1;
        p.gauge.inc();
        Ok(())
    }

    fn exit(slf: &Bound<'_, Self>, _exc_type: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mut p = slf.try_borrow_mut()?;
        if let Some(n) = p.running.checked_sub(1) {
            p.running = n;
            p.gauge.dec();
        }
        Ok(())
    }

    fn fresh<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let g = slf.try_borrow()?.gauge.clone();
        Bound::new(slf.py(), InProgress::new(g))
    }
}

block_methods!(InProgress {});
