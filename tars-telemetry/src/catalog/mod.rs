//! The metric catalog: every family the platform's panels and alerts query, defined once.
//!
//! Everything else (recording handles, exposition, the bindings, the docs tables, the
//! dashboard and the alert rules) is derived from or checked against these definitions.
//!
//! Bucket boundaries are chosen so that every threshold an alert compares a quantile
//! against is itself a boundary (see [`ALERT_THRESHOLDS`]): `histogram_quantile` cannot
//! resolve a threshold that falls inside a bucket any better than the bucket's width, and
//! not at all below the first bucket.
//!
//! ```
//! use tars_telemetry::catalog::{self, MetricKind};
//!
//! let def = catalog::find("tars_rag_query_duration_seconds").unwrap();
//! assert_eq!(def.kind, MetricKind::Histogram);
//! assert!(def.buckets.contains(&0.25));
//! ```

/// What a family is, in Prometheus terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A monotonically increasing count; exposed with a `_total` suffix.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into fixed buckets, with their sum and count.
    Histogram,
    /// Constant `1` carrying descriptive labels (OpenMetrics `info`, a gauge in text 0.0.4).
    Info,
}

impl MetricKind {
    /// The OpenMetrics family name of a family of this type exposed as `name`: counters
    /// without `_total`, info without `_info`.
    pub(crate) fn openmetrics_family(self, name: &str) -> &str {
        match self {
            MetricKind::Counter => name.strip_suffix("_total").unwrap_or(name),
            MetricKind::Info => name.strip_suffix("_info").unwrap_or(name),
            _ => name,
        }
    }

    /// The type word of the Prometheus text format.
    pub fn prometheus_type(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge | MetricKind::Info => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }

    /// The type word of OpenMetrics 1.0.
    pub fn openmetrics_type(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::Info => "info",
        }
    }
}

/// The part of the platform a family describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// RAG queries.
    Rag,
    /// LLM inference.
    Llm,
    /// Embeddings.
    Embedding,
    /// The vector store.
    VectorStore,
    /// Redis.
    Redis,
    /// Caches.
    Cache,
    /// The database.
    Database,
    /// HTTP.
    Http,
    /// WebSockets.
    WebSocket,
    /// Document ingestion.
    Documents,
    /// Errors.
    Errors,
    /// The application itself.
    App,
    /// Browsers: Web Vitals reported by the pages a service serves.
    Browser,
    /// Metrics about tars-telemetry itself (overflow, rejected values).
    SelfTelemetry,
    /// Node agent: GPUs.
    Gpu,
    /// Node agent: CPU, memory, disks, network, cost.
    Host,
    /// Node agent: probes of Redis, PostgreSQL, ChromaDB and Ollama.
    Probe,
    /// Node agent: the agent itself.
    Agent,
}

/// One metric family: the single source of truth for its name, type, labels and buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// Full Prometheus name as exposed in the text format (counters end in `_total`).
    pub name: &'static str,
    /// HELP text.
    pub help: &'static str,
    /// The family type.
    pub kind: MetricKind,
    /// Base unit (`seconds`, `bytes`, ...), when the name ends with it.
    pub unit: Option<&'static str>,
    /// Label names, in exposition order.
    pub labels: &'static [&'static str],
    /// Upper bucket bounds for histograms (ascending, `+Inf` implied); empty otherwise.
    pub buckets: &'static [f64],
    /// The part of the platform it describes.
    pub domain: Domain,
    /// How the workers of one service combine this family's values when they share
    /// storage (multi-process mode).
    pub merge: Merge,
    /// Counters only: the count is kept in whole units of 10^-digits of the exposed value
    /// (a fixed-point counter: spend is added in pico-dollars, exactly, and exposed in
    /// dollars). `None` for everything else.
    pub fixed_point_digits: Option<u8>,
    /// Histograms only: native (sparse, exponential) buckets kept beside the classic ones
    /// of [`MetricDef::buckets`]; `None` for a classic-only family. The latency families
    /// (unit `seconds`) have both, so that dashboards and alerts on `_bucket` keep working
    /// while a Prometheus that scrapes native histograms gets the finer ones.
    pub native: Option<NativeBuckets>,
}

/// The shape of a native histogram: Prometheus's exponential bucket schema, kept in a
/// fixed window of buckets so that recording is one atomic add, without a lock or an
/// allocation.
///
/// Bucket `k` of schema `s` holds the values in `(2^((k-1)/2^s), 2^(k/2^s)]`, each bucket
/// `2^(2^-s)` times as wide as the one below it (schema 3: about 9%). Values at most
/// `zero_threshold` are counted in the zero bucket; the window resolves values up to
/// `zero_threshold * 2^`[`NativeBuckets::OCTAVES`] and counts larger ones in its top
/// bucket. A render that would expose more than `max_buckets` buckets halves the
/// resolution (schema - 1, merging pairs) until it does not, as the Go client does.
///
/// ```
/// use tars_telemetry::catalog::{self, NativeBuckets};
/// let native = catalog::RAG_QUERY_DURATION.native.unwrap();
/// assert_eq!(native, NativeBuckets::LATENCY);
/// assert_eq!(native.schema, 3);
/// assert!(NativeBuckets { schema: 9, ..native }.validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeBuckets {
    /// The initial schema, -4 (each bucket 65536 times the one below) to 8 (0.27%).
    pub schema: i8,
    /// Values at most this (and above zero) count in the zero bucket.
    pub zero_threshold: f64,
    /// Buckets a render exposes at most before reducing the schema; 0: no limit.
    pub max_buckets: u32,
}

impl NativeBuckets {
    /// Octaves (powers of two) above the zero threshold that get buckets of their own.
    pub const OCTAVES: u32 = 40;
    /// The latency families' shape: schema 3 (buckets about 9% wide, so a quantile is
    /// within 9% of the truth), a zero bucket up to 2^-20 s (about 1 us), resolved up to
    /// 2^20 s, at most 160 buckets (Go's client suggests 160).
    pub const LATENCY: NativeBuckets = NativeBuckets {
        schema: 3,
        zero_threshold: 1.0 / (1u64 << 20) as f64,
        max_buckets: 160,
    };
    /// The shape a custom histogram gets when it asks for native buckets without saying
    /// which: the latency shape.
    pub const DEFAULT: NativeBuckets = NativeBuckets::LATENCY;
    /// The lowest schema Prometheus knows.
    pub const MIN_SCHEMA: i8 = -4;
    /// The highest schema Prometheus knows.
    pub const MAX_SCHEMA: i8 = 8;

    /// The default shape at another schema.
    pub const fn with_schema(schema: i8) -> NativeBuckets {
        NativeBuckets {
            schema,
            ..NativeBuckets::DEFAULT
        }
    }

    /// Checks the schema's range and that the zero threshold is a finite, non-negative
    /// number.
    pub fn validate(&self) -> Result<(), crate::error::BucketError> {
        if !(Self::MIN_SCHEMA..=Self::MAX_SCHEMA).contains(&self.schema) {
            return Err(crate::error::BucketError::NativeSchema(self.schema));
        }
        if !(self.zero_threshold.is_finite() && self.zero_threshold >= 0.0) {
            return Err(crate::error::BucketError::NativeZeroThreshold);
        }
        Ok(())
    }

    /// The largest relative error of a quantile estimated from these buckets: a bucket's
    /// width over its lower bound, `2^(2^-schema) - 1`.
    pub fn relative_error(&self) -> f64 {
        2f64.powf(2f64.powi(-i32::from(self.schema))) - 1.0
    }
}

/// The native buckets a catalog histogram of this unit gets: latency families have them.
pub(crate) const fn native_for(kind: MetricKind, unit: Option<&str>) -> Option<NativeBuckets> {
    let seconds = match unit {
        Some(u) => {
            let (a, b) = (u.as_bytes(), b"seconds");
            let mut same = a.len() == b.len();
            let mut i = 0;
            while same && i < a.len() {
                same = a[i] == b[i];
                i += 1;
            }
            same
        }
        None => false,
    };
    match kind {
        MetricKind::Histogram if seconds => Some(NativeBuckets::LATENCY),
        _ => None,
    }
}

/// How the values of one series, kept by several worker processes of one service,
/// combine into the one value a scrape shows.
///
/// ```
/// use tars_telemetry::catalog::{self, Merge};
/// assert_eq!(catalog::HTTP_REQUESTS_ACTIVE.merge, Merge::LiveSum);
/// assert_eq!(catalog::REDIS_MEMORY_USAGE.merge, Merge::Latest);
/// assert_eq!(catalog::HTTP_REQUESTS.merge, Merge::Sum);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Merge {
    /// Added over every worker that ever recorded, dead ones included, so totals never go
    /// backwards: counters and histograms.
    Sum,
    /// Added over live workers only: things in flight in a worker (active requests, open
    /// connections, pool connections in use), which end with it.
    LiveSum,
    /// The largest value of any live worker: a limit every worker reads alike.
    Max,
    /// The value set most recently by any worker, live or dead: a reading of something
    /// outside the workers (Redis memory, documents in the store, queue length).
    Latest,
    /// Every label set of every live worker: info families.
    Union,
}

impl Merge {
    /// The merge a family of this kind has unless its definition says otherwise.
    pub const fn for_kind(kind: MetricKind) -> Merge {
        match kind {
            MetricKind::Counter | MetricKind::Histogram => Merge::Sum,
            MetricKind::Gauge => Merge::LiveSum,
            MetricKind::Info => Merge::Union,
        }
    }
}

impl MetricDef {
    /// A fixed-point counter's divisor (10^digits): the exposed value is the kept count
    /// divided by it. `None` for families exposed as they are counted.
    ///
    /// ```
    /// use tars_telemetry::catalog;
    /// assert_eq!(catalog::LLM_SPEND.fixed_point_divisor(), Some(1e12));
    /// assert_eq!(catalog::LLM_TOKENS.fixed_point_divisor(), None);
    /// ```
    pub fn fixed_point_divisor(&self) -> Option<f64> {
        match (self.kind, self.fixed_point_digits) {
            (MetricKind::Counter, Some(d)) => Some(10f64.powi(i32::from(d))),
            _ => None,
        }
    }

    /// The family name without the `_total` suffix of counters, as OpenMetrics names it.
    pub fn openmetrics_name(&self) -> &'static str {
        self.kind.openmetrics_family(self.name)
    }

    /// The series names a PromQL query may use for this family: a native histogram is
    /// queried by its bare name.
    pub fn sample_names(&self) -> Vec<String> {
        match self.kind {
            MetricKind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", self.name))
                .chain(self.native.map(|_| self.name.to_string()))
                .collect(),
            _ => vec![self.name.to_string()],
        }
    }
}

pub mod buckets;

macro_rules! def {
    ($ident:ident, $name:literal, $kind:ident, $domain:ident, $unit:expr, [$($label:literal),*], $buckets:expr, $help:literal $(,)?) => {
        def!($ident, $name, $kind, $domain, $unit, [$($label),*], $buckets, $help, merge = (Merge::for_kind(MetricKind::$kind)));
    };
    ($ident:ident, $name:literal, $kind:ident, $domain:ident, $unit:expr, [$($label:literal),*], $buckets:expr, $help:literal, merge = $merge:expr $(,)?) => {
        def!($ident, $name, $kind, $domain, $unit, [$($label),*], $buckets, $help, merge = $merge, fixed_point_digits = None);
    };
    ($ident:ident, $name:literal, $kind:ident, $domain:ident, $unit:expr, [$($label:literal),*], $buckets:expr, $help:literal, merge = $merge:expr, fixed_point_digits = $digits:expr $(,)?) => {
        #[doc = $help]
        pub const $ident: MetricDef = MetricDef {
            name: $name,
            help: $help,
            kind: MetricKind::$kind,
            unit: $unit,
            labels: &[$($label),*],
            buckets: $buckets,
            domain: Domain::$domain,
            merge: $merge,
            fixed_point_digits: $digits,
            native: $crate::catalog::native_for(MetricKind::$kind, $unit),
        };
    };
}

const NONE: &[f64] = &[];
/// Spend is counted in pico-dollars (10^-12 dollars): a price per million tokens with up to
/// six decimals is a whole number of them per token.
pub const SPEND_DIGITS: u8 = 12;
const S: Option<&str> = Some("seconds");
const B: Option<&str> = Some("bytes");

mod agent;
mod alerts;
mod service;

pub use agent::{
    AGENT, AGENT_BUILD_INFO, AGENT_COLLECTOR_DURATION, AGENT_COLLECTOR_ERRORS, AGENT_COLLECTOR_UP,
    GPU_CLOCK, GPU_DEVICES, GPU_ECC_ERRORS, GPU_ENERGY, GPU_MEMORY_TOTAL, GPU_MEMORY_USED,
    GPU_POD_MEMORY, GPU_POD_UTILIZATION, GPU_POWER, GPU_TEMPERATURE, GPU_THROTTLED,
    GPU_UTILIZATION, NODE_CPU, NODE_DISK_READ, NODE_DISK_WRITTEN, NODE_FS_AVAILABLE, NODE_FS_SIZE,
    NODE_HOURLY_COST, NODE_LOAD, NODE_MEMORY_AVAILABLE, NODE_MEMORY_TOTAL, NODE_NET_RX,
    NODE_NET_TX, NODE_RESOURCE_USED, OLLAMA_MODELS, POSTGRESQL_CONNECTIONS,
    POSTGRESQL_REPLICATION_LAG, PROBE_DURATION, PROBE_UP,
};
pub use alerts::{ALERT_THRESHOLDS, AlertThreshold, RENAMED};
pub use service::{
    APP_INFO, CACHE_OPERATIONS, DB_POOL_ACTIVE, DB_POOL_MAX, DB_QUERIES, DB_QUERY_DURATION,
    DOCUMENT_CHUNKS, DOCUMENT_PROCESSING_DURATION, DOCUMENT_QUEUE_LENGTH, DOCUMENTS_PROCESSED,
    EMBEDDING_CACHE_HITS, EMBEDDING_CACHE_MISSES, EMBEDDING_DURATION, EMBEDDINGS_GENERATED, ERRORS,
    HTTP_REQUEST_DURATION, HTTP_REQUESTS, HTTP_REQUESTS_ACTIVE, LIBRARY, LLM_INFERENCE_DURATION,
    LLM_INPUT_TOKENS, LLM_REQUESTS, LLM_SPEND, LLM_TIME_PER_OUTPUT_TOKEN, LLM_TIME_TO_FIRST_TOKEN,
    LLM_TOKENS, LLM_TOKENS_GENERATED, LLM_UNPRICED_TOKENS, RAG_PHASE_DURATION, RAG_QUERIES,
    RAG_QUERIES_FAILED, RAG_QUERY_DURATION, RAG_RELEVANCE, RAG_SOURCES, REDIS_CACHE_HITS,
    REDIS_CACHE_MISSES, REDIS_MEMORY_MAX, REDIS_MEMORY_USAGE, SELF_FACADE_ERRORS,
    SELF_INVALID_VALUES, SELF_MULTIPROCESS_LOSSES, SELF_SERIES_OVERFLOW, SELF_SPANS_DROPPED,
    SELF_STAGES_ABANDONED, VECTOR_SEARCH_DURATION, VECTOR_SEARCHES, VECTOR_STORE_DOCUMENTS,
    WEB_VITALS_CLS, WEB_VITALS_FCP, WEB_VITALS_INP, WEB_VITALS_LCP, WEB_VITALS_REJECTED,
    WEB_VITALS_TTFB, WEBSOCKET_CONNECTIONS_ACTIVE, WEBSOCKET_MESSAGES,
};

/// Looks a family up by its exposed name, in the library and agent catalogs.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    LIBRARY.iter().chain(AGENT.iter()).find(|d| d.name == name)
}

/// Looks up the family a PromQL series name belongs to (`x_bucket` belongs to histogram `x`).
pub fn family_of_series(series: &str) -> Option<&'static MetricDef> {
    if let Some(d) = find(series) {
        return Some(d);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        series
            .strip_suffix(suffix)
            .and_then(find)
            .filter(|d| d.kind == MetricKind::Histogram)
    })
}
