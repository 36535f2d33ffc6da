//! The telemetry of one service and its builder: the registry, the domain handles, and
//! every method on them. Tracing plugs in through [`crate::trace`]'s functions, handed the
//! hook and the registry; custom families and fork handling are the modules' own functions.

use std::sync::Arc;
use std::sync::atomic::Ordering;

#[cfg(feature = "server")]
use crate::MetricsServer;
use crate::catalog;
use crate::custom::{CounterFamily, GaugeFamily, HistogramFamily};
use crate::error::check_buckets;
use crate::fork::AfterFork;
use crate::stage::{self, SpanDropReason};
#[cfg(feature = "otel")]
use crate::trace;
use crate::{
    AppInfo, CacheMetrics, DbMetrics, DocumentMetrics, EmbeddingMetrics, Error, ErrorMetrics,
    Format, HttpMetrics, LlmModel, LlmModels, LlmPricing, RagMetrics, RedisMetrics, Registry,
    RegistryConfig, VectorStoreMetrics, WebSocketMetrics, WebVitalsMetrics, facade, multiproc,
    snapshot,
};

#[derive(Debug)]
struct Domains {
    rag: RagMetrics,
    llm: LlmModels,
    embeddings: EmbeddingMetrics,
    vector_store: VectorStoreMetrics,
    redis: RedisMetrics,
    cache: CacheMetrics,
    db: DbMetrics,
    http: HttpMetrics,
    websocket: WebSocketMetrics,
    web_vitals: WebVitalsMetrics,
    documents: DocumentMetrics,
    errors: ErrorMetrics,
    app_info: AppInfo,
}

/// The telemetry of one service: a registry holding every catalog family, and the domain
/// handles that record into it. Cheap to clone; hold one per process.
#[derive(Debug, Clone)]
pub struct Telemetry {
    registry: Registry,
    d: Arc<Domains>,
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    hook: stage::Hook,
    /// How tracing was installed, so that a forked child can build it again.
    #[cfg(feature = "otel")]
    rearm: Arc<std::sync::Mutex<Option<trace::TraceConfig>>>,
    /// `before_fork` ran and its locks are held.
    fork_prepared: Arc<std::sync::atomic::AtomicBool>,
    facade_buckets: Arc<[f64]>,
    facade_bucket_rules: Arc<Vec<(String, Arc<[f64]>)>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    /// Registers (or finds, if registered alike) a counter family of the service's own.
    /// `name` gets `_total` appended unless it ends with it.
    pub fn counter_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<CounterFamily, Error> {
        crate::custom::counter_family(&self.registry, name, help, labels)
    }

    /// Registers (or finds) a gauge family of the service's own.
    pub fn gauge_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<GaugeFamily, Error> {
        crate::custom::gauge_family(&self.registry, name, help, labels)
    }

    /// Registers (or finds) a histogram family of the service's own, with these bucket
    /// upper bounds (`+Inf` is implied).
    ///
    /// ```
    /// # let t = tars_telemetry::Telemetry::new();
    /// let h = t.histogram_family("chunk_tokens", "Tokens per chunk.", &[], &[64.0, 256.0, 1024.0]).unwrap();
    /// h.labels(&[]).unwrap().observe(200.0);
    /// assert!(t.histogram_family("bad", "", &[], &[2.0, 1.0]).is_err());
    /// ```
    pub fn histogram_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> Result<HistogramFamily, Error> {
        crate::custom::histogram_family(&self.registry, name, help, labels, buckets)
    }

    /// Registers (or finds) a histogram family of the service's own as the Python and Node
    /// packages offer it: classic `buckets` ([`catalog::buckets::CUSTOM_DEFAULT`] when
    /// `None`), or, with `native`, native buckets of that shape and classic ones only when
    /// `buckets` are given (as Go's client does).
    ///
    /// [`catalog::buckets::CUSTOM_DEFAULT`]: crate::catalog::buckets::CUSTOM_DEFAULT
    ///
    /// ```
    /// # let t = tars_telemetry::Telemetry::new();
    /// use tars_telemetry::NativeBuckets;
    /// let classic = t.histogram_family_with("a_seconds", "", &[], None, None).unwrap();
    /// assert!(classic.labels(&[]).unwrap().native().is_none());
    /// let native = t.histogram_family_with("b_seconds", "", &[], None, Some(NativeBuckets::DEFAULT)).unwrap();
    /// assert!(native.labels(&[]).unwrap().bounds().is_empty());
    /// ```
    pub fn histogram_family_with(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Option<&[f64]>,
        native: Option<crate::catalog::NativeBuckets>,
    ) -> Result<HistogramFamily, Error> {
        match native {
            None => self.histogram_family(
                name,
                help,
                labels,
                buckets.unwrap_or(crate::catalog::buckets::CUSTOM_DEFAULT),
            ),
            Some(n) => self.native_histogram_family(name, help, labels, buckets.unwrap_or(&[]), n),
        }
    }

    /// Registers (or finds) a histogram family of the service's own with native
    /// (exponential) buckets of `native`'s shape, exposed to a Prometheus that scrapes
    /// protobuf; `buckets`, unless empty, adds classic buckets beside them (what the text
    /// formats show; a native-only family shows only its count and sum there).
    ///
    /// ```
    /// # let t = tars_telemetry::Telemetry::new();
    /// use tars_telemetry::catalog::NativeBuckets;
    /// let h = t.native_histogram_family("job_seconds", "Job time.", &[], &[], NativeBuckets::DEFAULT).unwrap();
    /// h.labels(&[]).unwrap().observe(1.5);
    /// assert!(t.native_histogram_family("bad_seconds", "", &[], &[], NativeBuckets::with_schema(9)).is_err());
    /// ```
    pub fn native_histogram_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
        native: crate::catalog::NativeBuckets,
    ) -> Result<HistogramFamily, Error> {
        crate::custom::native_histogram_family(&self.registry, name, help, labels, buckets, native)
    }

    #[cfg(feature = "otel")]
    fn trace_plug(&self) -> crate::trace::Plug<'_> {
        crate::trace::Plug {
            hook: &self.hook,
            registry: &self.registry,
            rearm: &self.rearm,
        }
    }

    /// Installs tracing with OTLP export as `config` says: from then on the guards of this
    /// telemetry open and close the spans of their stages.
    #[cfg(feature = "otel")]
    pub fn install_tracing(
        &self,
        config: crate::trace::TraceConfig,
    ) -> Result<crate::trace::Tracing, crate::trace::TraceError> {
        crate::trace::install(&self.trace_plug(), config)
    }

    /// Installs tracing with an exporter of your own (a test exporter, another backend).
    #[cfg(feature = "otel")]
    pub fn install_tracing_with_exporter<E>(
        &self,
        config: crate::trace::TraceConfig,
        exporter: E,
    ) -> Result<crate::trace::Tracing, crate::trace::TraceError>
    where
        E: opentelemetry_sdk::trace::SpanExporter + 'static,
    {
        crate::trace::install_with_exporter(&self.trace_plug(), config, exporter)
    }

    /// Whether [`Telemetry::install_tracing`] has run on this telemetry.
    #[cfg(feature = "otel")]
    pub fn tracing_installed(&self) -> bool {
        self.hook.is_installed()
    }

    /// Call right before `fork()` (Python: `os.register_at_fork(before=...)`): takes every
    /// lock of this telemetry, so that no other thread is inside one at the fork. Every
    /// call must be followed by [`after_fork_in_parent`](Self::after_fork_in_parent) in
    /// the parent and [`after_fork_in_child`](Self::after_fork_in_child) in the child;
    /// recording goes on meanwhile (it takes no lock), resolving new series waits.
    pub fn before_fork(&self) {
        if self.fork_prepared.swap(true, Ordering::AcqRel) {
            return; // prepared already
        }
        self.registry.lock_for_fork();
        self.d.llm.interner_lock_for_fork();
        self.d.http.interner_lock_for_fork();
    }

    /// Call in the parent right after `fork()`: releases what `before_fork` took.
    pub fn after_fork_in_parent(&self) {
        self.release_fork_locks();
    }

    fn release_fork_locks(&self) -> bool {
        if !self.fork_prepared.swap(false, Ordering::AcqRel) {
            return false;
        }
        // SAFETY: `before_fork` took these locks (the flag says so) and they have not been
        // released since; in a child the thread that took them is this one's original.
        unsafe {
            self.d.http.interner_unlock_after_fork();
            self.d.llm.interner_unlock_after_fork();
            self.registry.unlock_after_fork();
        }
        true
    }

    /// Call in the child right after `fork()` (Python: `after_in_child`): releases the
    /// locks `before_fork` took, zeroes what this worker counts itself (counters,
    /// histograms, gauges of things in flight; readings and info stay), and rebuilds
    /// tracing from the parent's configuration, since its export thread is the parent's.
    /// Handles resolved before the fork keep working.
    pub fn after_fork_in_child(&self) -> AfterFork {
        let locks_released = self.release_fork_locks();
        // Before zeroing: until moved, the handles still point into the parent's file.
        let multiprocess = self
            .registry
            .multiprocess_dir()
            .is_some()
            .then(|| self.registry.move_to_own_file());
        if !matches!(multiprocess, Some(Err(_))) {
            self.registry.reset_values();
        }
        AfterFork {
            locks_released,
            multiprocess,
            #[cfg(feature = "otel")]
            tracing: crate::trace::rearm_after_fork(&self.trace_plug()),
        }
    }

    /// A telemetry with the default settings (series budget 1000 per family).
    pub fn new() -> Self {
        TelemetryBuilder::default()
            .build()
            .expect("a fresh registry holds no conflicting family")
    }

    /// Settings for a telemetry other than the defaults.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::default()
    }

    /// The registry holding every family of this telemetry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// RAG queries, phases, sources and relevance.
    pub fn rag(&self) -> &RagMetrics {
        &self.d.rag
    }

    /// The handle of one LLM model; resolve once and keep it.
    pub fn llm_model(&self, model: &str) -> Result<LlmModel, Error> {
        self.d.llm.model(model)
    }

    /// LLM models, resolved to handles by name.
    pub fn llm(&self) -> &LlmModels {
        &self.d.llm
    }

    /// Embedding calls and the embedding cache.
    pub fn embeddings(&self) -> &EmbeddingMetrics {
        &self.d.embeddings
    }

    /// Vector-store searches and size.
    pub fn vector_store(&self) -> &VectorStoreMetrics {
        &self.d.vector_store
    }

    /// The Redis cache.
    pub fn redis(&self) -> &RedisMetrics {
        &self.d.redis
    }

    /// Cache operations of every cache.
    pub fn cache(&self) -> &CacheMetrics {
        &self.d.cache
    }

    /// Database queries and the connection pool.
    pub fn db(&self) -> &DbMetrics {
        &self.d.db
    }

    /// HTTP server requests, by route template.
    pub fn http(&self) -> &HttpMetrics {
        &self.d.http
    }

    /// WebSocket connections and messages.
    pub fn websocket(&self) -> &WebSocketMetrics {
        &self.d.websocket
    }

    /// Browsers' Web Vitals: reports and beacons, checked here for every adapter.
    pub fn web_vitals(&self) -> &WebVitalsMetrics {
        &self.d.web_vitals
    }

    /// Document ingestion.
    pub fn documents(&self) -> &DocumentMetrics {
        &self.d.documents
    }

    /// Errors by component and type.
    pub fn errors(&self) -> &ErrorMetrics {
        &self.d.errors
    }

    /// The application info series.
    pub fn app_info(&self) -> &AppInfo {
        &self.d.app_info
    }

    /// Renders every family, appending to `out`. Reuse `out` between scrapes and the
    /// render allocates nothing.
    pub fn render_into(&self, format: Format, out: &mut Vec<u8>) {
        self.registry.render_into(format, out)
    }

    /// Renders every family into a new string.
    pub fn render_string(&self, format: Format) -> String {
        self.registry.render_string(format)
    }

    /// Every family and series as values (see [`snapshot`]).
    pub fn snapshot(&self) -> Vec<snapshot::FamilySnapshot> {
        self.registry.snapshot()
    }

    /// Installs this telemetry as the process-wide `metrics` recorder, so `counter!`,
    /// `gauge!` and `histogram!` from any crate land on the same /metrics. Fails if a
    /// recorder is installed already.
    ///
    /// ```
    /// use tars_telemetry::{Telemetry, Format};
    /// let t = Telemetry::new();
    /// t.install_recorder().unwrap();
    /// metrics::counter!("jobs_done", "queue" => "ingest").increment(2);
    /// assert!(t.render_string(Format::Prometheus).contains("jobs_done_total{queue=\"ingest\"} 2"));
    /// ```
    pub fn install_recorder(&self) -> Result<(), Error> {
        metrics::set_global_recorder(self.recorder()).map_err(|_| Error::RecorderInstalled)
    }

    /// A `metrics::Recorder` over this telemetry, for `metrics::with_local_recorder`.
    pub fn recorder(&self) -> impl metrics::Recorder + Send + Sync + 'static {
        facade::FacadeRecorder::new(
            self.registry.clone(),
            self.facade_buckets.clone(),
            (*self.facade_bucket_rules).clone(),
        )
    }

    /// Serves /metrics on `addr` from a background thread.
    #[cfg(feature = "server")]
    pub fn serve(&self, addr: impl std::net::ToSocketAddrs) -> Result<MetricsServer, Error> {
        MetricsServer::start(addr, self.registry.clone())
    }
}

/// Settings of a [`Telemetry`].
///
/// ```
/// use tars_telemetry::Telemetry;
/// let t = Telemetry::builder()
///     .series_budget(500)
///     .family_budget("tars_http_requests_total", 2000)
///     .facade_buckets("job_duration", &[0.1, 1.0, 10.0])
///     .unwrap()
///     .build()
///     .unwrap();
/// # drop(t);
/// ```
#[derive(Debug, Clone)]
pub struct TelemetryBuilder {
    config: RegistryConfig,
    /// `None`: from the environment; `Some(None)`: off.
    multiprocess_dir: Option<Option<std::path::PathBuf>>,
    multiprocess_allow_shared: bool,
    facade_default: Arc<[f64]>,
    facade_rules: Vec<(String, Arc<[f64]>)>,
    llm_pricing: Option<LlmPricing>,
}

impl Default for TelemetryBuilder {
    fn default() -> Self {
        TelemetryBuilder {
            config: RegistryConfig::default(),
            multiprocess_dir: None,
            multiprocess_allow_shared: false,
            facade_default: catalog::buckets::FACADE_DEFAULT.into(),
            facade_rules: Vec::new(),
            llm_pricing: None,
        }
    }
}

impl TelemetryBuilder {
    /// Series each family may hold before new label sets fold into its overflow series.
    pub fn series_budget(mut self, n: usize) -> Self {
        self.config.series_budget = n;
        self
    }

    /// A budget for one family, by exposed name.
    pub fn family_budget(mut self, family: &str, n: usize) -> Self {
        self.config.family_budgets.push((family.to_string(), n));
        self
    }

    /// Shares storage with the other worker processes of this service through the
    /// directory `dir`, so that any of them serves one merged /metrics (see
    /// [`multiproc`]). Without this call, the directory comes from
    /// `TARS_TELEMETRY_MULTIPROC_DIR` when that is set and not empty.
    pub fn multiprocess_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.multiprocess_dir = Some(Some(dir.into()));
        self
    }

    /// Lets workers use a multi-process directory that other users can write to (group or
    /// world writable, or another user's), refused by default with
    /// [`Error::MultiprocessDirShared`]: anyone who can write there can place files the
    /// workers read. `TARS_TELEMETRY_MULTIPROC_ALLOW_SHARED=1` does the same.
    ///
    /// ```
    /// let t = tars_telemetry::Telemetry::builder()
    ///     .multiprocess_allow_shared_dir(true)
    ///     .single_process()
    ///     .build()?;
    /// # drop(t);
    /// # Ok::<(), tars_telemetry::Error>(())
    /// ```
    pub fn multiprocess_allow_shared_dir(mut self, allow: bool) -> Self {
        self.multiprocess_allow_shared = allow;
        self
    }

    /// Keeps every series in this process, whatever the environment says.
    pub fn single_process(mut self) -> Self {
        self.multiprocess_dir = Some(None);
        self
    }

    /// Buckets for facade histograms whose name starts with `prefix`.
    pub fn facade_buckets(mut self, prefix: &str, bounds: &[f64]) -> Result<Self, Error> {
        check_buckets(bounds)?;
        self.facade_rules.push((prefix.to_string(), bounds.into()));
        Ok(self)
    }

    /// Buckets for facade histograms that match no prefix.
    pub fn facade_default_buckets(mut self, bounds: &[f64]) -> Result<Self, Error> {
        check_buckets(bounds)?;
        self.facade_default = bounds.into();
        Ok(self)
    }

    /// The LLM pricing table that spend is counted from (see [`LlmPricing`]; without one,
    /// every token is counted as unpriced). [`LlmModels::set_pricing`] replaces it later.
    ///
    /// ```
    /// use tars_telemetry::{LlmPricing, Telemetry};
    /// let pricing = LlmPricing::from_json(r#"{"models": {"llama3": {"input": 0.05, "output": 0.08}}}"#)?;
    /// let t = Telemetry::builder().llm_pricing(pricing).build()?;
    /// assert_eq!(t.llm().pricing().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn llm_pricing(mut self, pricing: LlmPricing) -> Self {
        self.llm_pricing = Some(pricing);
        self
    }

    /// Builds the telemetry: registers the whole catalog and resolves every domain handle.
    pub fn build(self) -> Result<Telemetry, Error> {
        let dir = self.multiprocess_dir.unwrap_or_else(|| {
            std::env::var_os(multiproc::MULTIPROC_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(Into::into)
        });
        let registry = match dir {
            Some(dir) => {
                Registry::new_multiprocess_with(self.config, &dir, self.multiprocess_allow_shared)?
            }
            None => Registry::new(self.config),
        };
        let r = &registry;
        // Register the whole catalog first, so exposition order follows it.
        for def in catalog::LIBRARY {
            r.register(def)?;
        }
        // Every drop reason starts at 0, tracing or not, so that rate() works from the
        // first drop.
        let dropped = r.register(&catalog::SELF_SPANS_DROPPED)?;
        for reason in SpanDropReason::ALL {
            dropped.resolve(&[reason.as_str()])?;
        }
        // The tracing slot every guard-making handle shares; empty until tracing is installed.
        let hook = stage::Hook::default();
        let h = &hook;
        let cache = CacheMetrics::new(r)?;
        let d = Domains {
            rag: RagMetrics::new(r, h)?,
            llm: LlmModels::new(r, h)?,
            embeddings: EmbeddingMetrics::new(r, cache.clone(), h)?,
            vector_store: VectorStoreMetrics::new(r, h)?,
            redis: RedisMetrics::new(r, cache.clone(), h)?,
            cache,
            db: DbMetrics::new(r, h)?,
            http: HttpMetrics::new(r, h)?,
            websocket: WebSocketMetrics::new(r)?,
            web_vitals: WebVitalsMetrics::new(r)?,
            documents: DocumentMetrics::new(r, h)?,
            errors: ErrorMetrics::new(r)?,
            app_info: AppInfo::new(r)?,
        };
        if let Some(pricing) = self.llm_pricing {
            d.llm.set_pricing(pricing);
        }
        Ok(Telemetry {
            registry,
            d: Arc::new(d),
            hook,
            #[cfg(feature = "otel")]
            rearm: Arc::default(),
            fork_prepared: Arc::default(),
            facade_buckets: self.facade_default,
            facade_bucket_rules: Arc::new(self.facade_rules),
        })
    }
}
