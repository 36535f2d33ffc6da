//! The telemetry itself: construction from options and the `OTEL_*` environment,
//! rendering, the /metrics server, tracing, application info and error counts.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::{Mutex, RwLock};
use tars_telemetry::trace::{TraceConfig, Tracing};
use tars_telemetry::{Component, Format, HttpRoute, LlmModel, MetricsServer, Telemetry};

use crate::error;
use crate::intern::Interner;

/// One telemetry and what the binding keeps beside it.
pub struct TelState {
    pub tel: Telemetry,
    pub cap: usize,
    pub tracing: Mutex<Option<Tracing>>,
    pub servers: Mutex<Vec<Option<MetricsServer>>>,
    pub routes: Mutex<(Interner<String>, Vec<HttpRoute>)>,
    pub models: Mutex<(Interner<String>, Vec<LlmModel>)>,
}

static TELEMETRIES: RwLock<Vec<Arc<TelState>>> = RwLock::new(Vec::new());

/// The telemetry with this id.
pub fn get(id: u32) -> Result<Arc<TelState>> {
    TELEMETRIES
        .read()
        .get(id as usize)
        .cloned()
        .ok_or_else(|| error::invalid("ERR_TARS_HANDLE", "no telemetry has this id"))
}

/// Construction options.
#[napi(object)]
pub struct TelemetryOptions {
    /// `service.name` of the spans; `OTEL_SERVICE_NAME` when absent.
    pub service_name: Option<String>,
    /// Series per family before new label sets fold into the overflow series (1000).
    pub series_budget: Option<u32>,
    /// Install tracing (OTLP export as the `OTEL_*` variables say).
    pub tracing: Option<bool>,
    /// The multi-process directory shared with the service's other workers; absent or
    /// empty: every series stays in this process. The environment is not read here: the
    /// JavaScript layer passes `TARS_TELEMETRY_MULTIPROC_DIR` itself.
    pub multiproc_dir: Option<String>,
}

/// What a telemetry was built with.
#[napi(object)]
pub struct TelemetryInfo {
    /// Its id.
    pub id: u32,
    /// Whether tracing is installed.
    pub tracing: bool,
    /// Warnings about the `OTEL_*` variables.
    pub warnings: Vec<String>,
    /// The multi-process directory its series live in, if any.
    pub multiproc_dir: Option<String>,
}

/// Builds a telemetry.
#[napi(catch_unwind)]
pub fn telemetry_create(options: TelemetryOptions) -> Result<TelemetryInfo> {
    let budget = options.series_budget.unwrap_or(1000).max(1) as usize;
    let builder = Telemetry::builder().series_budget(budget);
    let tel = match options.multiproc_dir.filter(|d| !d.is_empty()) {
        Some(dir) => builder
            .multiprocess_dir(&dir)
            .build()
            .map_err(|e| error::multiproc(e, &dir))?,
        None => builder.single_process().build().map_err(error::core)?,
    };
    let multiproc_dir = tel
        .registry()
        .multiprocess_dir()
        .map(|d| d.to_string_lossy().into_owned());
    let mut warnings = Vec::new();
    let mut tracing = None;
    if options.tracing.unwrap_or(false) {
        let mut config = TraceConfig::from_env();
        if let Some(name) = options.service_name.filter(|n| !n.trim().is_empty()) {
            config = config.with_service_name(name);
        }
        warnings.extend(config.warnings().iter().cloned());
        tracing = Some(
            tel.install_tracing(config)
                .map_err(|e| error::invalid("ERR_TARS_TRACING", e))?,
        );
    }
    let installed = tracing.is_some();
    let state = TelState {
        tel,
        cap: budget,
        tracing: Mutex::new(tracing),
        servers: Mutex::new(Vec::new()),
        routes: Mutex::new((Interner::new(budget), Vec::new())),
        models: Mutex::new((Interner::new(budget), Vec::new())),
    };
    let mut all = TELEMETRIES.write();
    all.push(Arc::new(state));
    Ok(TelemetryInfo {
        id: (all.len() - 1) as u32,
        tracing: installed,
        warnings,
        multiproc_dir,
    })
}

/// The exposition format asked for.
/// The `Content-Type` of the Prometheus text format.
#[napi]
pub const PROMETHEUS_CONTENT_TYPE: &str = Format::PROMETHEUS_CONTENT_TYPE;

/// The `Content-Type` of OpenMetrics 1.0.
#[napi]
pub const OPENMETRICS_CONTENT_TYPE: &str = Format::OPENMETRICS_CONTENT_TYPE;

/// The `Content-Type` of the protobuf exposition (native histograms).
#[napi]
pub const PROTOBUF_CONTENT_TYPE: &str = Format::PROTOBUF_CONTENT_TYPE;

/// Whether an `Accept` header asks for OpenMetrics (the core's negotiation: by quality,
/// OpenMetrics 1.x only).
#[napi]
pub fn wants_open_metrics(accept: Option<String>) -> bool {
    Format::from_accept(accept.as_deref()) == Format::OpenMetrics
}

/// The format an `Accept` header asks for, by the core's negotiation: `prometheus`,
/// `openmetrics` or `protobuf`.
#[napi]
pub fn format_for_accept(accept: Option<String>) -> &'static str {
    Format::from_accept(accept.as_deref()).name()
}

/// The `Content-Type` of a format named as `format_for_accept` names it.
#[napi(catch_unwind)]
pub fn content_type_of(format: String) -> Result<&'static str> {
    Ok(named_format(&format)?.content_type())
}

/// The format names the core knows, in its order.
#[napi]
pub fn format_names() -> Vec<&'static str> {
    Format::ALL.iter().map(|f| f.name()).collect()
}

pub(crate) fn format(openmetrics: bool) -> Format {
    if openmetrics {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

pub(crate) fn named_format(name: &str) -> Result<Format> {
    Format::from_name(name).ok_or_else(|| {
        error::invalid(
            "ERR_TARS_INVALID_FORMAT",
            format!("unknown exposition format {name:?} (prometheus, openmetrics, protobuf)"),
        )
    })
}

/// Renders on the libuv thread pool.
pub struct Render {
    state: Arc<TelState>,
    format: Format,
}

impl Task for Render {
    type Output = Vec<u8>;
    type JsValue = Buffer;

    fn compute(&mut self) -> Result<Self::Output> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut out = Vec::with_capacity(64 * 1024);
            self.state.tel.render_into(self.format, &mut out);
            out
        }))
        .map_err(|_| error::panicked("rendering"))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.into())
    }
}

/// Renders the exposition off the main thread.
#[napi(catch_unwind)]
pub fn telemetry_render(id: u32, format: String) -> Result<AsyncTask<Render>> {
    Ok(AsyncTask::new(Render {
        state: get(id)?,
        format: named_format(&format)?,
    }))
}

/// Renders the exposition on the calling thread (for benchmarks and small registries).
#[napi(catch_unwind)]
pub fn telemetry_render_sync(id: u32, format: String) -> Result<Buffer> {
    let state = get(id)?;
    let format = named_format(&format)?;
    let mut out = Vec::with_capacity(64 * 1024);
    state.tel.render_into(format, &mut out);
    Ok(out.into())
}

/// A started /metrics server.
#[napi(object)]
pub struct ServerInfo {
    /// Its id (to stop it).
    pub id: u32,
    /// The bound address.
    pub address: String,
    /// The bound port.
    pub port: u32,
}

/// Starts the core's /metrics server on `addr` (`host:port`; port 0 picks one).
#[napi(catch_unwind)]
pub fn telemetry_serve(id: u32, addr: String) -> Result<ServerInfo> {
    let state = get(id)?;
    let server = state.tel.serve(addr.as_str()).map_err(error::core)?;
    let local = server.local_addr();
    let mut servers = state.servers.lock();
    servers.push(Some(server));
    Ok(ServerInfo {
        id: (servers.len() - 1) as u32,
        address: local.ip().to_string(),
        port: u32::from(local.port()),
    })
}

/// Stops a server on the libuv thread pool (it waits for its thread).
pub struct StopServer {
    server: Option<MetricsServer>,
}

impl Task for StopServer {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        let server = self.server.take();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            if let Some(s) = server {
                s.shutdown();
            }
        }))
        .map_err(|_| error::panicked("stopping the server"))
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

/// Stops a server; stopping one twice is a no-op.
#[napi(catch_unwind)]
pub fn telemetry_stop_server(id: u32, server: u32) -> Result<AsyncTask<StopServer>> {
    let state = get(id)?;
    let server = state
        .servers
        .lock()
        .get_mut(server as usize)
        .and_then(Option::take);
    Ok(AsyncTask::new(StopServer { server }))
}

/// Flushes and shuts tracing down on the libuv thread pool.
pub struct ShutdownTracing {
    tracing: Option<Tracing>,
    deadline: Duration,
}

impl Task for ShutdownTracing {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        let tracing = self.tracing.take();
        let deadline = self.deadline;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            tracing.map(|t| t.shutdown(deadline))
        })) {
            Ok(Some(Err(e))) => Err(error::invalid("ERR_TARS_TRACING", e)),
            Ok(_) => Ok(()),
            Err(_) => Err(error::panicked("shutting tracing down")),
        }
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

/// Exports the spans still queued and stops tracing (waits at most `timeout_ms`).
#[napi(catch_unwind)]
pub fn telemetry_shutdown_tracing(id: u32, timeout_ms: u32) -> Result<AsyncTask<ShutdownTracing>> {
    let state = get(id)?;
    let tracing = state.tracing.lock().take();
    Ok(AsyncTask::new(ShutdownTracing {
        tracing,
        deadline: Duration::from_millis(u64::from(timeout_ms.max(1))),
    }))
}

/// Spans exported and dropped so far.
#[napi(object)]
pub struct TracingStats {
    /// Spans exported.
    pub exported: f64,
    /// Spans dropped (queue full, export failed).
    pub dropped: f64,
}

/// Export counts of the installed tracing, if any.
#[napi(catch_unwind)]
pub fn telemetry_tracing_stats(id: u32) -> Result<Option<TracingStats>> {
    let state = get(id)?;
    let t = state.tracing.lock();
    Ok(t.as_ref().map(|t| TracingStats {
        exported: t.exported_spans() as f64,
        dropped: t.dropped_spans() as f64,
    }))
}

/// Sets `tars_app_info`.
#[napi(catch_unwind)]
pub fn telemetry_set_app_info(
    id: u32,
    version: String,
    environment: String,
    model: String,
) -> Result<()> {
    get(id)?
        .tel
        .app_info()
        .set(&version, &environment, &model)
        .map_err(error::core)
}

/// Counts an error in `tars_errors_total` (component by name: rag, llm, http, ...).
#[napi(catch_unwind)]
pub fn telemetry_record_error(id: u32, component: String, error_type: String) -> Result<()> {
    let c = Component::parse(&component).ok_or_else(|| {
        error::invalid(
            "ERR_TARS_INVALID_COMPONENT",
            format!("unknown component {component:?}"),
        )
    })?;
    get(id)?.tel.errors().record(c, &error_type);
    Ok(())
}
