//! Python bindings of tars-telemetry: the extension module `tars_telemetry._native`.
//!
//! A thin layer: one file per core module, no logic of its own. Parents are passed
//! explicitly (the Python package keeps the current stage's span context in a
//! `ContextVar`), stages are native objects that hold their core guard and end by their
//! block's outcome (`stage`), and core errors become `ValueError` / `TypeError` /
//! `OSError` / `MultiprocessModeUnavailable`. Nothing here panics.

mod cache;
mod counts;
mod custom;
mod db;
mod documents;
mod embeddings;
mod error;
mod http;
mod labels;
mod llm;
mod multiproc;
mod rag;
mod redis;
mod server;
mod stage;
mod timer;
mod trace;
mod vector_store;
mod web_vitals;

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tars_telemetry::{Format, LlmPricing, Method, Telemetry as Core};

use error::IntoPy;
use stage::SpanContext;

/// One telemetry: the registry of families, the domain handles, and (once installed)
/// span export.
#[pyclass(frozen, weakref, module = "tars_telemetry._native", name = "Native")]
struct Native {
    t: Core,
    tracing: trace::TraceSlot,
}

type P<'a> = Option<PyRef<'a, SpanContext>>;

impl Native {
    /// Puts a table read by the core in force: whether there was one.
    fn set_llm_pricing(
        &self,
        table: Result<Option<LlmPricing>, tars_telemetry::PricingError>,
    ) -> PyResult<bool> {
        let table = table.map_err(llm::pricing_error)?;
        let loaded = table.is_some();
        if let Some(t) = table {
            self.t.llm().set_pricing(t);
        }
        Ok(loaded)
    }
}

#[pymethods]
impl Native {
    /// A telemetry; with `multiproc_dir`, one worker of the service whose workers share
    /// that directory (the environment is not read here: `None` is single-process).
    /// `MultiprocessModeUnavailable` when the directory cannot be used.
    #[new]
    #[pyo3(signature = (series_budget = None, multiproc_dir = None))]
    fn new(
        py: Python<'_>,
        series_budget: Option<usize>,
        multiproc_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut b = Core::builder();
        if let Some(n) = series_budget {
            b = b.series_budget(n);
        }
        let t = match multiproc_dir {
            Some(dir) => {
                let b = b.multiprocess_dir(&dir);
                py.detach(|| b.build())
                    .map_err(|e| error::join_to_py(py, &dir, e))?
            }
            None => b.single_process().build().py()?,
        };
        Ok(Native {
            t,
            tracing: Default::default(),
        })
    }

    // ---- exposition

    /// The exposition in the format `accept` asks for (OpenMetrics or Prometheus text),
    /// with its content type. Renders with the GIL released.
    #[pyo3(signature = (accept = None))]
    fn render<'py>(
        &self,
        py: Python<'py>,
        accept: Option<&str>,
    ) -> (Bound<'py, PyBytes>, &'static str) {
        let format = Format::from_accept(accept);
        let t = &self.t;
        let buf = py.detach(|| {
            let mut buf = Vec::with_capacity(64 * 1024);
            t.render_into(format, &mut buf);
            buf
        });
        (PyBytes::new(py, &buf), format.content_type())
    }

    /// Starts the built-in /metrics server on `addr` (`"127.0.0.1:9464"`, port 0 for any);
    /// `OSError` (errno `EADDRINUSE`, ...) when it cannot bind.
    fn serve(&self, py: Python<'_>, addr: &str) -> PyResult<server::MetricsServer> {
        let t = &self.t;
        let s = py.detach(|| t.serve(addr)).py()?;
        let a = s.local_addr();
        Ok(server::MetricsServer {
            host: a.ip().to_string(),
            port: a.port(),
            server: Mutex::new(Some(s)),
        })
    }

    // ---- tracing

    /// Installs OTLP span export (`OTEL_*` from the environment; keywords override).
    #[pyo3(signature = (service_name = None, endpoint = None, protocol = None))]
    fn install_tracing(
        &self,
        py: Python<'_>,
        service_name: Option<&str>,
        endpoint: Option<&str>,
        protocol: Option<&str>,
    ) -> PyResult<()> {
        let config = trace::config(service_name, endpoint, protocol)?;
        let t = &self.t;
        let tracing = py
            .detach(|| t.install_tracing(config))
            .map_err(trace::to_py)?;
        self.tracing.set(tracing);
        Ok(())
    }

    /// Whether spans are made.
    fn tracing_installed(&self) -> bool {
        self.t.tracing_installed()
    }

    /// Exports the queued spans now.
    fn force_flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.tracing.with(|t| t.force_flush()))
            .transpose()
            .map_err(trace::to_py)
            .map(|_| ())
    }

    /// Stops span export, sending what is queued within `timeout` seconds.
    #[pyo3(signature = (timeout = 5.0))]
    fn shutdown_tracing(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let d = trace::seconds(timeout)?;
        py.detach(|| self.tracing.with(|t| t.shutdown(d)))
            .transpose()
            .map_err(trace::to_py)
            .map(|_| ())
    }

    /// Spans exported so far.
    fn exported_spans(&self) -> u64 {
        self.tracing.with(|t| t.exported_spans()).unwrap_or(0)
    }

    // ---- fork (os.register_at_fork)

    /// Before `fork()`: takes the registry's locks.
    fn before_fork(&self) {
        self.t.before_fork();
    }

    /// After `fork()`, in the parent: releases them.
    fn after_fork_in_parent(&self) {
        self.t.after_fork_in_parent();
    }

    /// After `fork()`, in the child: releases them, zeroes the values (the parent's are
    /// the parent's), starts the child's own multi-process file, and rebuilds span
    /// export. A child that could not start its file gets a `RuntimeWarning` (never an
    /// exception: this runs in `os.register_at_fork`).
    fn after_fork_in_child(&self, py: Python<'_>) {
        let after = self.t.after_fork_in_child();
        if let Some(Err(e)) = after.multiprocess {
            let text = format!(
                "this forked worker could not start a multi-process file of its own; its new \
                 series stay in this process: {e}"
            );
            let msg = std::ffi::CString::new(text.replace('\0', "")).unwrap_or_default();
            let category = py.get_type::<PyRuntimeWarning>();
            // Warnings made errors (-W error) must not raise from the fork hook.
            let _ = PyErr::warn(py, &category, &msg, 1);
        }
        if let Some(Ok(t)) = after.tracing {
            self.tracing.set(t);
        }
    }

    // ---- the domains (their stages start when entered)

    /// RAG queries and their phases.
    fn rag(&self) -> rag::Rag {
        rag::Rag(self.t.rag().clone())
    }

    /// The interned handle of a model.
    fn llm_model(&self, model: &str) -> PyResult<llm::LlmModel> {
        Ok(llm::LlmModel(self.t.llm_model(model).py()?))
    }

    /// Replaces the LLM pricing table with its JSON form (`{"models": {model: {kind:
    /// dollars per million tokens}}}`). `ValueError` naming what is wrong.
    fn set_llm_pricing_json(&self, text: &str) -> PyResult<()> {
        self.set_llm_pricing(LlmPricing::from_json(text).map(Some))
            .map(drop)
    }

    /// Replaces the LLM pricing table with a JSON file's. `OSError` when it cannot be
    /// read, `ValueError` when it is not a table.
    fn set_llm_pricing_file(&self, path: PathBuf) -> PyResult<()> {
        self.set_llm_pricing(LlmPricing::from_file(&path).map(Some))
            .map(drop)
    }

    /// Loads the pricing file named by `TARS_LLM_PRICING_FILE`, when it is set: whether
    /// one was loaded. Errors as `set_llm_pricing_file`.
    fn set_llm_pricing_from_env(&self) -> PyResult<bool> {
        self.set_llm_pricing(LlmPricing::from_env())
    }

    /// Embedding generation and the embedding cache.
    fn embeddings(&self) -> embeddings::Embeddings {
        embeddings::Embeddings(self.t.embeddings().clone())
    }

    /// Vector searches and the store's size.
    fn vector_store(&self) -> vector_store::VectorStore {
        vector_store::VectorStore(self.t.vector_store().clone())
    }

    /// Database queries and the connection pool.
    fn db(&self) -> db::Database {
        db::Database(self.t.db().clone())
    }

    /// Browsers' Web Vitals: reports and beacons.
    fn web_vitals(&self) -> web_vitals::WebVitals {
        web_vitals::WebVitals(self.t.web_vitals().clone())
    }

    /// The service's caches, by cache, operation and result.
    fn cache(&self) -> cache::Cache {
        cache::Cache(self.t.cache().clone())
    }

    /// Redis commands and memory.
    fn redis(&self) -> redis::Redis {
        redis::Redis(self.t.redis().clone())
    }

    /// Document ingestion.
    fn documents(&self) -> documents::Documents {
        documents::Documents(self.t.documents().clone())
    }

    /// Counts a WebSocket message (`inbound` or `outbound`).
    fn websocket_message(&self, direction: &str) -> PyResult<()> {
        self.t.websocket().message(labels::direction(direction)?);
        Ok(())
    }

    /// Adds `delta` (+1 opened, -1 closed) to the open WebSocket connections.
    fn websocket_active(&self, delta: f64) {
        self.t.websocket().active().inc_by(delta);
    }

    /// Counts an error of `component` (`rag`, `llm`, `http`, ...) with its type.
    fn record_error(&self, component: &str, error_type: &str) -> PyResult<()> {
        let c = labels::component(component)?;
        self.t.errors().kind(c, error_type).py()?.inc();
        Ok(())
    }

    /// Sets the application's info series.
    fn set_app_info(&self, version: &str, environment: &str, model: &str) -> PyResult<()> {
        self.t.app_info().set(version, environment, model).py()
    }

    // ---- HTTP

    /// Starts a request before routing; the route is bound later (`set_route`).
    #[pyo3(signature = (method, path, parent = None))]
    fn http_start(&self, method: &str, path: &str, parent: P<'_>) -> http::HttpRequest {
        http::HttpRequest(Some(self.t.http().start(
            Method::from_request(method),
            path,
            stage::parent(parent.as_deref()),
        )))
    }

    /// The interned handle of a route template.
    fn http_route(&self, template: &str) -> http::HttpRoute {
        http::HttpRoute(self.t.http().route(template))
    }

    // ---- custom families

    /// A counter family of the service's own (`_total` is appended when missing).
    #[pyo3(signature = (name, documentation, labelnames = Vec::new()))]
    fn counter(
        &self,
        py: Python<'_>,
        name: &str,
        documentation: &str,
        labelnames: Vec<String>,
    ) -> PyResult<custom::CounterFamily> {
        let names: Vec<&str> = labelnames.iter().map(String::as_str).collect();
        let family = self.t.counter_family(name, documentation, &names).py()?;
        let unlabelled = if names.is_empty() {
            Some(family.labels(&[]).py()?)
        } else {
            None
        };
        Ok(custom::CounterFamily {
            children: pyo3::types::PyDict::new(py).unbind(),
            family,
            names: labelnames,
            unlabelled,
        })
    }

    /// A gauge family of the service's own.
    #[pyo3(signature = (name, documentation, labelnames = Vec::new()))]
    fn gauge(
        &self,
        py: Python<'_>,
        name: &str,
        documentation: &str,
        labelnames: Vec<String>,
    ) -> PyResult<custom::GaugeFamily> {
        let names: Vec<&str> = labelnames.iter().map(String::as_str).collect();
        let family = self.t.gauge_family(name, documentation, &names).py()?;
        let unlabelled = if names.is_empty() {
            Some(family.labels(&[]).py()?)
        } else {
            None
        };
        Ok(custom::GaugeFamily {
            children: pyo3::types::PyDict::new(py).unbind(),
            family,
            names: labelnames,
            unlabelled,
        })
    }

    /// A histogram family of the service's own, with these bucket upper bounds, and native
    /// buckets when `native` is `True` (the core's default shape) or a schema (-4..=8).
    #[pyo3(signature = (name, documentation, labelnames, buckets, native = None))]
    fn histogram(
        &self,
        py: Python<'_>,
        name: &str,
        documentation: &str,
        labelnames: Vec<String>,
        buckets: Option<Vec<f64>>,
        native: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<custom::HistogramFamily> {
        let names: Vec<&str> = labelnames.iter().map(String::as_str).collect();
        let native = custom::native_option(native)?;
        let family = self
            .t
            .histogram_family_with(name, documentation, &names, buckets.as_deref(), native)
            .py()?;
        let unlabelled = if names.is_empty() {
            Some(family.labels(&[]).py()?)
        } else {
            None
        };
        Ok(custom::HistogramFamily {
            children: pyo3::types::PyDict::new(py).unbind(),
            family,
            names: labelnames,
            unlabelled,
        })
    }
}

/// The extension module. Recording is atomics only, so it is marked safe without the GIL.
#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Native>()?;
    m.add_class::<SpanContext>()?;
    m.add_class::<stage::Stage>()?;
    m.add_class::<stage::Ready>()?;
    m.add_class::<rag::Rag>()?;
    m.add_class::<rag::RagQueryStage>()?;
    m.add_class::<llm::LlmModel>()?;
    m.add_class::<llm::LlmStage>()?;
    m.add_class::<embeddings::Embeddings>()?;
    m.add_class::<vector_store::VectorStore>()?;
    m.add_class::<db::Database>()?;
    m.add_class::<redis::Redis>()?;
    m.add_class::<cache::Cache>()?;
    m.add_class::<documents::Documents>()?;
    m.add_class::<timer::TimedStage>()?;
    m.add_class::<cache::CacheStage>()?;
    m.add_class::<documents::DocumentStage>()?;
    m.add_function(wrap_pyfunction!(stage::_configure_stages, m)?)?;
    m.add_function(wrap_pyfunction!(stage::_join_opentelemetry, m)?)?;
    m.add_class::<http::HttpRoute>()?;
    m.add_class::<http::HttpRequest>()?;
    m.add_class::<custom::CounterFamily>()?;
    m.add_class::<custom::Counter>()?;
    m.add_class::<custom::GaugeFamily>()?;
    m.add_class::<custom::Gauge>()?;
    m.add_class::<custom::HistogramFamily>()?;
    m.add_class::<custom::Histogram>()?;
    m.add_class::<custom::HistogramTimer>()?;
    m.add_class::<custom::InProgress>()?;
    m.add_class::<server::MetricsServer>()?;
    m.add(
        "MultiprocessModeUnavailable",
        m.py().get_type::<error::MultiprocessModeUnavailable>(),
    )?;
    m.add_function(wrap_pyfunction!(multiproc::render_multiprocess_dir, m)?)?;
    m.add_function(wrap_pyfunction!(multiproc::render_multiprocess_dir_as, m)?)?;
    m.add_function(wrap_pyfunction!(
        multiproc::render_multiprocess_dir_report,
        m
    )?)?;
    m.add_class::<multiproc::MultiprocessWarning>()?;
    http::add_rules(m)?;
    web_vitals::add_limits(m)?;
    m.add(
        "DEFAULT_BUCKETS",
        pyo3::types::PyTuple::new(m.py(), tars_telemetry::catalog::buckets::CUSTOM_DEFAULT)?,
    )?;
    m.add(
        "MULTIPROC_DIR_ENV",
        tars_telemetry::multiproc::MULTIPROC_DIR_ENV,
    )?;
    m.add(
        "MULTIPROC_ALLOW_SHARED_ENV",
        tars_telemetry::multiproc::MULTIPROC_ALLOW_SHARED_ENV,
    )?;
    Ok(())
}
