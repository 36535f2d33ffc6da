//! # Traces
//!
//! One trace per RAG request, over OpenTelemetry: the metric guards open and close the
//! span of their stage, the platform's sampler decides which traces are kept, OTLP export
//! (gRPC or HTTP/protobuf) runs off the request path through a bounded queue, and JSON log
//! lines carry the trace and span ids.
//!
//! ```
//! use std::time::Duration;
//! use tars_telemetry::{Telemetry, Method, RagPhase, Format};
//! use tars_telemetry::trace::{TraceConfig, Protocol};
//!
//! let telemetry = Telemetry::new();
//! // Usually TraceConfig::from_env() (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, ...).
//! let config = TraceConfig::new("tars-rag-service")
//!     .with_endpoint("http://127.0.0.1:4317")
//!     .with_protocol(Protocol::Grpc);
//! let tracing = telemetry.install_tracing(config).unwrap();
//!
//! let route = telemetry.http().route("/api/v1/rag/query");
//! let request = route.start(Method::Post);          // span "POST /api/v1/rag/query"
//! let _in = request.enter();                        // stages below are its children
//! let mut query = telemetry.rag().start_query();    // span "rag.query"
//! {
//!     let retrieval = query.phase(RagPhase::Retrieval);
//!     let _in = retrieval.enter();
//!     let _search = telemetry.vector_store().start_search(); // "retrieval"
//! }
//! query.set_sources(4);
//! assert!(query.is_sampled());                      // the route is always sampled
//! query.succeed();
//! drop(_in);
//! request.finish(200);
//!
//! // The sampled spans left their ids as exemplars on the RAG and HTTP metrics.
//! assert!(telemetry.render_string(Format::OpenMetrics).contains("trace_id="));
//! // No collector listens here: export fails off the request path, and is counted.
//! let _ = tracing.shutdown(Duration::from_millis(200));
//! ```
//!
//! Which stages make spans:
//!
//! | guard | span | starts a trace |
//! |---|---|---|
//! | `HttpRoute::start`, `start_remote` | `{method} {route}` (server) | yes (route rules apply) |
//! | `RagMetrics::start_query` | `rag.query` | yes |
//! | `DocumentMetrics::start` | `document.ingest` | yes |
//! | `RagQuery::phase`, `RagMetrics::phase` | `rag.retrieval`, `rag.rerank`, `rag.generation` | no |
//! | `LlmModel::start` | `{operation} {model}` (GenAI client) | no |
//! | `EmbeddingMetrics::start` | `embeddings {model}` | no |
//! | `VectorStoreMetrics::start_search` | `retrieval {collection}` | no |
//! | `DbMetrics::query`, `query_summary` | `{summary}` or `{operation}` | no |
//! | `RedisMetrics::start_command`, `EmbeddingMetrics::start_cache_lookup` | `GET`, `cache.lookup` | no |
//!
//! A stage that does not start traces makes a span only under a sampled parent: the
//! current OpenTelemetry context (a guard's [`enter`](crate::HttpRequest::enter), a
//! `tracing` span under [`Tracing::layer`], an extracted remote context) or, for RAG
//! phases, the query. Under an unsampled parent it costs a thread-local read and makes
//! nothing. When a stage's span is sampled, its trace and span ids are recorded as the
//! OpenMetrics exemplar of the stage's latency bucket and counter.

mod config;
mod export;
mod guards;
pub mod logs;
pub mod propagation;
mod sampler;
pub mod spans;

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanExporter};
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;

pub use config::{Peer, PeerAddress, Protocol, TraceConfig};
pub use guards::Scope;
pub use logs::{JsonLayer, LogConfig};
pub use sampler::{BaseSampler, PlatformSampler, SamplingRules};
/// The OpenTelemetry API and SDK this module is built on, for spans of your own, and the
/// `tracing` facade whose events the JSON log layer writes.
pub use {opentelemetry, opentelemetry_sdk, tracing};

use crate::catalog;
use crate::metric::Counter;
use crate::registry::{Metric, Registry};
use crate::stage::SpanDropReason;
use export::{BatchConfig, BatchProcessor, ExportStats};

/// Why tracing could not be set up or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// This [`Telemetry`] has tracing installed already.
    AlreadyInstalled,
    /// The OTLP exporter could not be built (bad endpoint, ...).
    Exporter(String),
    /// The export worker could not start.
    Worker(String),
    /// A global `tracing` subscriber is set already.
    Subscriber(String),
    /// This handle was made before the process forked; in the child, use the one
    /// [`Telemetry::after_fork_in_child`] returned.
    Forked,
    /// Flush or shutdown did not finish within its deadline.
    Timeout(Duration),
    /// Flush or shutdown failed.
    Export(String),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::AlreadyInstalled => f.write_str("tracing is installed already"),
            TraceError::Exporter(m) => write!(f, "OTLP exporter: {m}"),
            TraceError::Worker(m) => write!(f, "export worker: {m}"),
            TraceError::Subscriber(m) => write!(f, "tracing subscriber: {m}"),
            TraceError::Forked => f.write_str(
                "this tracing handle belongs to the parent of a fork; use the one after_fork_in_child returned",
            ),
            TraceError::Timeout(d) => write!(f, "not done within {d:?}"),
            TraceError::Export(m) => write!(f, "export: {m}"),
        }
    }
}

impl std::error::Error for TraceError {}

impl From<opentelemetry_sdk::error::OTelSdkError> for TraceError {
    fn from(e: opentelemetry_sdk::error::OTelSdkError) -> Self {
        match e {
            opentelemetry_sdk::error::OTelSdkError::Timeout(d) => TraceError::Timeout(d),
            e => TraceError::Export(e.to_string()),
        }
    }
}

fn drop_counter(registry: &Registry, reason: SpanDropReason) -> Counter {
    registry
        .register(&catalog::SELF_SPANS_DROPPED)
        .ok()
        .and_then(|f| match f.resolve(&[reason.as_str()]) {
            Ok(Metric::Counter(c)) => Some(c),
            _ => None,
        })
        .unwrap_or_default()
}

/// The tracing pipeline of a [`Telemetry`]: tracer provider, sampler, export queue.
///
/// Dropping it does not stop tracing (the telemetry's guards keep using it); call
/// [`Tracing::shutdown`] before the process exits, so that queued spans are sent.
pub struct Tracing {
    /// Dropped only in the process that made it: in a forked child its export thread does
    /// not exist, and a provider's drop would wait on it.
    provider: ManuallyDrop<SdkTracerProvider>,
    tracer: SdkTracer,
    sampler: PlatformSampler,
    stats: Arc<ExportStats>,
    service: String,
    endpoint: String,
    pid: u32,
    disabled: bool,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            // SAFETY: dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.provider) };
        }
    }
}

impl fmt::Debug for Tracing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracing")
            .field("service", &self.service)
            .field("endpoint", &self.endpoint)
            .field("sampler", &self.sampler)
            .field("exported", &self.exported_spans())
            .field("dropped", &self.dropped_spans())
            .finish()
    }
}

/// A random version-4 UUID: the `service.instance.id` of this process (semantic
/// conventions: unique per instance, and a UUID when nothing better is known).
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u32(std::process::id());
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(d.as_nanos());
        }
        h.finish()
    };
    let (hi, lo) = (random(1), random(2));
    let hi = (hi & !0xf000) | 0x4000; // version 4
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

fn resource(config: &TraceConfig) -> Resource {
    let mut extra = Vec::new();
    if let Some(v) = &config.service_version {
        extra.push(opentelemetry::KeyValue::new("service.version", v.clone()));
    }
    if !config
        .resource
        .iter()
        .any(|(k, _)| k == "service.instance.id")
    {
        extra.push(opentelemetry::KeyValue::new(
            "service.instance.id",
            instance_id(),
        ));
    }
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_service_name(config.service_name.clone())
        .with_attributes(
            config
                .resource
                .iter()
                .map(|(k, v)| opentelemetry::KeyValue::new(k.clone(), v.clone())),
        )
        .with_attributes(extra)
        .build()
}

fn otlp_exporter(config: &TraceConfig) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let endpoint = config.endpoint().to_string();
    let built = match config.protocol {
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(config.export_timeout)
            .build(),
        #[cfg(feature = "otlp-http")]
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(config.export_timeout)
            .build(),
        #[cfg(feature = "otlp-http-json")]
        Protocol::HttpJson => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
            .with_endpoint(endpoint)
            .with_timeout(config.export_timeout)
            .build(),
        #[allow(unreachable_patterns)]
        p => {
            let _ = endpoint;
            return Err(format!(
                "OTLP over {p:?} is not built in (cargo features otlp-grpc, otlp-http, otlp-http-json)"
            ));
        }
    };
    built.map_err(|e| e.to_string())
}

/// What tracing plugs into: the telemetry's stage hook, its registry (for the drop
/// counters) and the slot that keeps the configuration for a forked child. `Telemetry`
/// hands these over; nothing here reads its fields.
pub(crate) struct Plug<'a> {
    pub(crate) hook: &'a crate::stage::Hook,
    pub(crate) registry: &'a Registry,
    pub(crate) rearm: &'a std::sync::Mutex<Option<TraceConfig>>,
}

/// Installs tracing with OTLP export as `config` says.
pub(crate) fn install(plug: &Plug<'_>, config: TraceConfig) -> Result<Tracing, TraceError> {
    let c = config.clone();
    let tracing = install_with(plug, config.clone(), move || otlp_exporter(&c))?;
    // A forked child rebuilds the same pipeline (its export thread is the parent's).
    if !config.disabled {
        *plug.rearm.lock().unwrap_or_else(|e| e.into_inner()) = Some(config);
    }
    Ok(tracing)
}

/// Installs tracing with an exporter of the caller's own.
pub(crate) fn install_with_exporter<E>(
    plug: &Plug<'_>,
    config: TraceConfig,
    exporter: E,
) -> Result<Tracing, TraceError>
where
    E: SpanExporter + 'static,
{
    install_with(plug, config, move || Ok(exporter))
}

fn install_with<E, F>(plug: &Plug<'_>, config: TraceConfig, build: F) -> Result<Tracing, TraceError>
where
    E: SpanExporter + 'static,
    F: FnOnce() -> Result<E, String>,
{
    if plug.hook.is_installed() {
        return Err(TraceError::AlreadyInstalled);
    }
    if config.disabled {
        for w in config.warnings() {
            tracing::warn!(target: "tars_telemetry", "{w}");
        }
        // OTEL_SDK_DISABLED: no hook, so stages make no spans and leave no exemplars;
        // their metrics are recorded as without tracing.
        return Ok(Tracing::disabled(&config));
    }
    let (tracing, stages) = pipeline(plug.registry, &config, build)?;
    if !plug.hook.install(Arc::new(stages)) {
        let _ = tracing
            .provider
            .shutdown_with_timeout(Duration::from_millis(100));
        return Err(TraceError::AlreadyInstalled);
    }
    for w in config.warnings() {
        tracing::warn!(target: "tars_telemetry", "{w}");
    }
    Ok(tracing)
}

/// In a forked child: builds tracing anew from the configuration the parent installed
/// (its export thread did not survive the fork) and points the guards at it. `None`
/// when the parent had no tracing, or installed it with an exporter of its own, which
/// cannot be rebuilt (tracing is then off in the child).
pub(crate) fn rearm_after_fork(plug: &Plug<'_>) -> Option<Result<Tracing, TraceError>> {
    let config = match plug.rearm.try_lock() {
        Ok(c) => c.clone(),
        // Held at the fork by a thread that does not exist here.
        Err(_) => None,
    };
    let Some(config) = config else {
        if plug.hook.is_installed() {
            plug.hook.clear();
        }
        return None;
    };
    let c = config.clone();
    Some(
        pipeline(plug.registry, &config, move || otlp_exporter(&c)).map(|(tracing, stages)| {
            plug.hook.replace(Arc::new(stages));
            tracing
        }),
    )
}

fn pipeline<E, F>(
    registry: &Registry,
    config: &TraceConfig,
    build: F,
) -> Result<(Tracing, spans::StageTracer), TraceError>
where
    E: SpanExporter + 'static,
    F: FnOnce() -> Result<E, String>,
{
    let resource = resource(config);
    let stats = Arc::new(ExportStats {
        queue_full: drop_counter(registry, SpanDropReason::QueueFull),
        export_failed: drop_counter(registry, SpanDropReason::ExportFailed),
        shutdown: drop_counter(registry, SpanDropReason::Shutdown),
        ..ExportStats::default()
    });
    let batch = BatchConfig {
        max_queue_size: config.max_queue_size,
        max_export_batch_size: config.max_export_batch_size,
        schedule_delay: config.schedule_delay,
        export_timeout: config.export_timeout,
    };
    let exporter_resource = resource.clone();
    let processor = BatchProcessor::start(batch, stats.clone(), move || {
        let mut e = build()?;
        e.set_resource(&exporter_resource);
        Ok(e)
    })
    .map_err(|e| {
        if e.starts_with("export ") {
            TraceError::Worker(e)
        } else {
            TraceError::Exporter(e)
        }
    })?;
    let sampler = PlatformSampler::new(&config.sampling, &config.service_name);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler.clone())
        .with_resource(resource)
        .build();
    let tracer = provider.tracer_with_scope(
        InstrumentationScope::builder("tars-telemetry")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    );
    let stages = spans::StageTracer {
        tracer: tracer.clone(),
        parent_based: sampler.is_parent_based(),
        genai_operation: config.genai_operation.as_str().into(),
        genai_provider: config.genai_provider.as_str().into(),
        embedding_model: config.embedding_model.as_deref().map(Into::into),
        db_system: config.db_system.as_str().into(),
        vector_system: config.vector_store_system.as_str().into(),
        vector_collection: config.vector_collection.as_deref().map(Into::into),
        capture_content: config.capture_message_content,
        peers: spans::Peers::new(config),
    };
    let tracing = Tracing {
        provider: ManuallyDrop::new(provider),
        tracer,
        sampler,
        stats,
        service: config.service_name.clone(),
        endpoint: config.endpoint().to_string(),
        pid: std::process::id(),
        disabled: false,
    };
    Ok((tracing, stages))
}

impl Tracing {
    /// A pipeline that makes no spans (`OTEL_SDK_DISABLED=true`): its provider has no
    /// processor and its sampler drops everything.
    fn disabled(config: &TraceConfig) -> Tracing {
        let sampler = PlatformSampler::new(&config.sampling, &config.service_name);
        let provider = SdkTracerProvider::builder()
            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
            .build();
        let tracer = provider.tracer("tars-telemetry");
        Tracing {
            provider: ManuallyDrop::new(provider),
            tracer,
            sampler,
            stats: Arc::new(ExportStats::default()),
            service: config.service_name.clone(),
            endpoint: config.endpoint().to_string(),
            pid: std::process::id(),
            disabled: true,
        }
    }

    /// Whether tracing was installed disabled (`OTEL_SDK_DISABLED=true`): no spans are
    /// made or sent.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// The tracer behind the stage spans, for spans of your own (same sampler, same export).
    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// The tracer provider (for `opentelemetry::global::set_tracer_provider`, or to build
    /// tracers with other instrumentation scopes).
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The sampler every span of this pipeline goes through.
    pub fn sampler(&self) -> &PlatformSampler {
        &self.sampler
    }

    /// `service.name` of every span.
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// Where spans are sent.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The `tracing-opentelemetry` layer over this pipeline: `tracing` spans become spans
    /// of the same traces, sampled by the same rules (a `tracing` span with an
    /// `http.route` field is subject to the route rules).
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_tracked_inactivity(false)
    }

    /// A subscriber with both layers: `tracing` spans into traces, events as JSON lines
    /// written by `make_writer`, both filtered by `logs`.
    pub fn subscriber_with_writer<W>(
        &self,
        logs: &LogConfig,
        make_writer: W,
    ) -> impl tracing::Subscriber + Send + Sync + for<'a> LookupSpan<'a>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        tracing_subscriber::registry()
            .with(self.layer().with_filter(logs::otel_filter(logs)))
            .with(JsonLayer::new(make_writer).with_filter(logs.targets().clone()))
    }

    /// Sets the process-wide `tracing` subscriber: [`Tracing::layer`] plus JSON lines on
    /// stdout, filtered by `logs` ([`LogConfig::from_env`]: info in production). Also
    /// installs the W3C propagator and this tracer provider as OpenTelemetry's globals.
    pub fn init_subscriber(&self, logs: &LogConfig) -> Result<(), TraceError> {
        let s = self.subscriber_with_writer(logs, std::io::stdout);
        tracing::subscriber::set_global_default(s)
            .map_err(|e| TraceError::Subscriber(e.to_string()))?;
        self.set_global();
        Ok(())
    }

    /// Installs the W3C trace context + baggage propagator and this tracer provider as
    /// OpenTelemetry's globals (for libraries that use `opentelemetry::global`).
    pub fn set_global(&self) {
        opentelemetry::global::set_text_map_propagator(propagation::w3c_propagator());
        opentelemetry::global::set_tracer_provider((*self.provider).clone());
    }

    /// Exports everything queued now; returns when done or after the export timeout.
    pub fn force_flush(&self) -> Result<(), TraceError> {
        self.check_pid()?;
        self.provider.force_flush().map_err(Into::into)
    }

    /// Stops tracing: queued spans are exported within `deadline`, what is left then is
    /// dropped (counted with `reason="shutdown"`). From then on no spans are made.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), TraceError> {
        self.check_pid()?;
        self.provider
            .shutdown_with_timeout(deadline)
            .map_err(Into::into)
    }

    fn check_pid(&self) -> Result<(), TraceError> {
        if self.pid == std::process::id() {
            Ok(())
        } else {
            Err(TraceError::Forked)
        }
    }

    /// Spans exported successfully so far.
    pub fn exported_spans(&self) -> u64 {
        self.stats
            .exported
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Spans dropped so far, all reasons (`tars_telemetry_spans_dropped_total`).
    pub fn dropped_spans(&self) -> u64 {
        self.stats.dropped()
    }

    /// Spans dropped for one reason.
    pub fn dropped_spans_for(&self, reason: SpanDropReason) -> u64 {
        match reason {
            SpanDropReason::QueueFull => self.stats.queue_full.get(),
            SpanDropReason::ExportFailed => self.stats.export_failed.get(),
            SpanDropReason::Shutdown => self.stats.shutdown.get(),
        }
    }

    /// The error of the last failed export, if any.
    pub fn last_export_error(&self) -> Option<String> {
        self.stats
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
