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

    /// The series names a PromQL query may use for this family.
    pub fn sample_names(&self) -> Vec<String> {
        match self.kind {
            MetricKind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", self.name))
                .collect(),
            _ => vec![self.name.to_string()],
        }
    }
}

/// Bucket sets, named by what they measure.
pub mod buckets {
    /// RAG query and phase latency: 0.25 s and 1 s are alert thresholds.
    pub const RAG_SECONDS: &[f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];
    /// GenAI client operation duration (OpenTelemetry semconv), plus 2.0 s, the LLM alert
    /// threshold, which the semconv set straddles (1.28, 2.56).
    pub const LLM_SECONDS: &[f64] = &[
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.0, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];
    /// Time to first token: the GenAI client set.
    pub const LLM_TTFT_SECONDS: &[f64] = &[
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];
    /// Time per output token of a streamed response.
    pub const LLM_TOKEN_SECONDS: &[f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
    ];
    /// Embedding generation: the GenAI set with 0.5 s (the alert threshold) added.
    pub const EMBEDDING_SECONDS: &[f64] = &[
        0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.64, 1.28, 2.56, 5.12, 10.24,
    ];
    /// Database queries: the OpenTelemetry `db.client.operation.duration` set (0.1 s alert).
    pub const DB_SECONDS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
    /// Vector search (0.5 s alert).
    pub const VECTOR_SECONDS: &[f64] = &[
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    /// HTTP server requests: the OpenTelemetry `http.server.request.duration` set.
    pub const HTTP_SECONDS: &[f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ];
    /// Document ingestion, which runs to minutes (10 s alert).
    pub const DOCUMENT_SECONDS: &[f64] = &[
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    ];
    /// Sources retrieved per RAG query.
    pub const SOURCES: &[f64] = &[0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0, 50.0];
    /// Relevance (similarity) score of the best source, 0..1.
    pub const RELEVANCE: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
    /// Chunks produced per ingested document.
    pub const CHUNKS: &[f64] = &[1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];
    /// Largest Contentful Paint: 2.5 s is Web Vitals' "good" limit, 4 s its "poor" one.
    pub const WEB_VITALS_LCP_SECONDS: &[f64] = &[
        0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0,
    ];
    /// Interaction to Next Paint: good up to 200 ms, poor above 500 ms; one frame is 16 ms.
    pub const WEB_VITALS_INP_SECONDS: &[f64] =
        &[0.016, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0];
    /// Cumulative Layout Shift (a score, no unit): good up to 0.1, poor above 0.25.
    pub const WEB_VITALS_CLS: &[f64] = &[
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0,
    ];
    /// First Contentful Paint: good up to 1.8 s, poor above 3 s.
    pub const WEB_VITALS_FCP_SECONDS: &[f64] = &[
        0.1, 0.25, 0.5, 1.0, 1.5, 1.8, 2.5, 3.0, 4.0, 6.0, 10.0, 20.0,
    ];
    /// Time to First Byte: good up to 0.8 s, poor above 1.8 s.
    pub const WEB_VITALS_TTFB_SECONDS: &[f64] =
        &[0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.2, 1.8, 3.0, 6.0, 10.0];
    /// Default buckets for histograms arriving through the `metrics` facade (prom-client's).
    pub const FACADE_DEFAULT: &[f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    /// Default buckets of a service's own histograms, when none are given (the same as
    /// prometheus_client's and prom-client's): both bindings read them from here.
    pub const CUSTOM_DEFAULT: &[f64] = FACADE_DEFAULT;
}

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
        };
    };
}

const NONE: &[f64] = &[];
/// Spend is counted in pico-dollars (10^-12 dollars): a price per million tokens with up to
/// six decimals is a whole number of them per token.
pub const SPEND_DIGITS: u8 = 12;
const S: Option<&str> = Some("seconds");
const B: Option<&str> = Some("bytes");

// RAG
def!(
    RAG_QUERY_DURATION,
    "tars_rag_query_duration_seconds",
    Histogram,
    Rag,
    S,
    [],
    buckets::RAG_SECONDS,
    "End-to-end duration of a RAG query."
);
def!(
    RAG_QUERIES,
    "tars_rag_queries_total",
    Counter,
    Rag,
    None,
    ["status"],
    NONE,
    "RAG queries by outcome."
);
def!(
    RAG_QUERIES_FAILED,
    "tars_rag_queries_failed_total",
    Counter,
    Rag,
    None,
    [],
    NONE,
    "RAG queries that failed."
);
def!(
    RAG_PHASE_DURATION,
    "tars_rag_phase_duration_seconds",
    Histogram,
    Rag,
    S,
    ["phase"],
    buckets::RAG_SECONDS,
    "Duration of one phase (retrieval, rerank, generation) of a RAG query."
);
def!(
    RAG_SOURCES,
    "tars_rag_sources_retrieved",
    Histogram,
    Rag,
    None,
    [],
    buckets::SOURCES,
    "Sources retrieved per RAG query."
);
def!(
    RAG_RELEVANCE,
    "tars_rag_relevance_score",
    Histogram,
    Rag,
    None,
    [],
    buckets::RELEVANCE,
    "Relevance score of the best source of a RAG query."
);
// LLM
def!(
    LLM_INFERENCE_DURATION,
    "tars_llm_inference_duration_seconds",
    Histogram,
    Llm,
    S,
    ["model"],
    buckets::LLM_SECONDS,
    "Duration of one LLM inference call, by model."
);
def!(
    LLM_TOKENS_GENERATED,
    "tars_llm_tokens_generated_total",
    Counter,
    Llm,
    None,
    ["model"],
    NONE,
    "Output tokens generated, by model: every completion token, reasoning included (tars_llm_tokens_total splits them by kind)."
);
def!(
    LLM_INPUT_TOKENS,
    "tars_llm_input_tokens_total",
    Counter,
    Llm,
    None,
    ["model"],
    NONE,
    "Input (prompt) tokens sent, by model: every prompt token, those read from or written to the cache included (tars_llm_tokens_total splits them by kind)."
);
def!(
    LLM_TOKENS,
    "tars_llm_tokens_total",
    Counter,
    Llm,
    None,
    ["model", "type"],
    NONE,
    "Tokens by model and kind, a partition of every token of a call: input (prompt tokens neither read from nor written to the provider's prompt cache), cache_read, cache_write, output (completion tokens other than reasoning), reasoning."
);
def!(
    LLM_SPEND,
    "tars_llm_spend_dollars_total",
    Counter,
    Llm,
    Some("dollars"),
    ["model", "type"],
    NONE,
    "Spend on LLM tokens in dollars, by model and token kind, from the pricing table (kept exactly, in pico-dollars).",
    merge = (Merge::for_kind(MetricKind::Counter)),
    fixed_point_digits = Some(SPEND_DIGITS),
);
def!(
    LLM_UNPRICED_TOKENS,
    "tars_llm_unpriced_tokens_total",
    Counter,
    Llm,
    None,
    ["model", "type"],
    NONE,
    "Tokens of a model and kind that the pricing table has no price for: counted here, never priced as zero."
);
def!(
    LLM_REQUESTS,
    "tars_llm_requests_total",
    Counter,
    Llm,
    None,
    ["model", "status"],
    NONE,
    "LLM inference calls by model and outcome."
);
def!(
    LLM_TIME_TO_FIRST_TOKEN,
    "tars_llm_time_to_first_token_seconds",
    Histogram,
    Llm,
    S,
    ["model"],
    buckets::LLM_TTFT_SECONDS,
    "Time from request to the first token of a streamed response."
);
def!(
    LLM_TIME_PER_OUTPUT_TOKEN,
    "tars_llm_time_per_output_token_seconds",
    Histogram,
    Llm,
    S,
    ["model"],
    buckets::LLM_TOKEN_SECONDS,
    "Mean time per output token after the first, per streamed response."
);
// Embeddings
def!(
    EMBEDDING_DURATION,
    "tars_embedding_duration_seconds",
    Histogram,
    Embedding,
    S,
    [],
    buckets::EMBEDDING_SECONDS,
    "Duration of one embedding generation call."
);
def!(
    EMBEDDINGS_GENERATED,
    "tars_embeddings_generated_total",
    Counter,
    Embedding,
    None,
    [],
    NONE,
    "Embeddings generated."
);
def!(
    EMBEDDING_CACHE_HITS,
    "tars_embedding_cache_hits_total",
    Counter,
    Embedding,
    None,
    [],
    NONE,
    "Embedding cache lookups that hit."
);
def!(
    EMBEDDING_CACHE_MISSES,
    "tars_embedding_cache_misses_total",
    Counter,
    Embedding,
    None,
    [],
    NONE,
    "Embedding cache lookups that missed."
);
// Vector store
def!(
    VECTOR_SEARCH_DURATION,
    "tars_vector_search_duration_seconds",
    Histogram,
    VectorStore,
    S,
    [],
    buckets::VECTOR_SECONDS,
    "Duration of one vector similarity search."
);
def!(
    VECTOR_SEARCHES,
    "tars_vector_search_total",
    Counter,
    VectorStore,
    None,
    [],
    NONE,
    "Vector similarity searches."
);
def!(
    VECTOR_STORE_DOCUMENTS,
    "tars_vector_store_documents",
    Gauge,
    VectorStore,
    None,
    [],
    NONE,
    "Documents held by the vector store (the contract's tars_vector_store_documents_total, renamed: a gauge must not end in _total).",
    merge = Merge::Latest
);
// Redis
def!(
    REDIS_CACHE_HITS,
    "tars_redis_cache_hits_total",
    Counter,
    Redis,
    None,
    [],
    NONE,
    "Redis cache lookups that hit."
);
def!(
    REDIS_CACHE_MISSES,
    "tars_redis_cache_misses_total",
    Counter,
    Redis,
    None,
    [],
    NONE,
    "Redis cache lookups that missed."
);
def!(
    REDIS_MEMORY_USAGE,
    "tars_redis_memory_usage_bytes",
    Gauge,
    Redis,
    B,
    [],
    NONE,
    "Memory used by Redis (INFO used_memory).",
    merge = Merge::Latest
);
def!(
    REDIS_MEMORY_MAX,
    "tars_redis_memory_max_bytes",
    Gauge,
    Redis,
    B,
    [],
    NONE,
    "Redis memory limit (INFO maxmemory).",
    merge = Merge::Latest
);
// Cache operations, all caches
def!(
    CACHE_OPERATIONS,
    "tars_cache_operations_total",
    Counter,
    Cache,
    None,
    ["cache", "operation", "result"],
    NONE,
    "Cache operations by cache, operation and result."
);
// Database
def!(
    DB_QUERY_DURATION,
    "tars_db_query_duration_seconds",
    Histogram,
    Database,
    S,
    ["operation"],
    buckets::DB_SECONDS,
    "Duration of one database query, by operation."
);
def!(
    DB_QUERIES,
    "tars_db_queries_total",
    Counter,
    Database,
    None,
    ["operation"],
    NONE,
    "Database queries by operation."
);
def!(
    DB_POOL_ACTIVE,
    "tars_db_connection_pool_active",
    Gauge,
    Database,
    None,
    [],
    NONE,
    "Database connections in use."
);
def!(
    DB_POOL_MAX,
    "tars_db_connection_pool_max",
    Gauge,
    Database,
    None,
    [],
    NONE,
    "Maximum size of the database connection pool.",
    merge = Merge::Max
);
// HTTP
def!(
    HTTP_REQUESTS,
    "tars_http_requests_total",
    Counter,
    Http,
    None,
    ["method", "endpoint", "status"],
    NONE,
    "HTTP requests served, by method, route template and status code."
);
def!(
    HTTP_REQUEST_DURATION,
    "tars_http_request_duration_seconds",
    Histogram,
    Http,
    S,
    ["method", "endpoint"],
    buckets::HTTP_SECONDS,
    "HTTP request duration, by method and route template."
);
def!(
    HTTP_REQUESTS_ACTIVE,
    "tars_http_requests_active",
    Gauge,
    Http,
    None,
    [],
    NONE,
    "HTTP requests in flight."
);
// WebSocket
def!(
    WEBSOCKET_MESSAGES,
    "tars_websocket_messages_total",
    Counter,
    WebSocket,
    None,
    ["direction"],
    NONE,
    "WebSocket messages by direction."
);
def!(
    WEBSOCKET_CONNECTIONS_ACTIVE,
    "tars_websocket_connections_active",
    Gauge,
    WebSocket,
    None,
    [],
    NONE,
    "Open WebSocket connections."
);
// Documents
def!(
    DOCUMENTS_PROCESSED,
    "tars_documents_processed_total",
    Counter,
    Documents,
    None,
    ["status"],
    NONE,
    "Documents ingested, by outcome."
);
def!(
    DOCUMENT_PROCESSING_DURATION,
    "tars_document_processing_duration_seconds",
    Histogram,
    Documents,
    S,
    [],
    buckets::DOCUMENT_SECONDS,
    "Duration of ingesting one document."
);
def!(
    DOCUMENT_QUEUE_LENGTH,
    "tars_document_queue_length",
    Gauge,
    Documents,
    None,
    [],
    NONE,
    "Documents waiting to be ingested.",
    merge = Merge::Latest
);
def!(
    DOCUMENT_CHUNKS,
    "tars_document_chunks",
    Histogram,
    Documents,
    None,
    [],
    buckets::CHUNKS,
    "Chunks produced per ingested document."
);
// Errors and application info
def!(
    ERRORS,
    "tars_errors_total",
    Counter,
    Errors,
    None,
    ["component", "error_type"],
    NONE,
    "Errors by component and error type."
);
def!(
    APP_INFO,
    "tars_app_info",
    Info,
    App,
    None,
    ["version", "environment", "model"],
    NONE,
    "Application version, environment and default model."
);
// Browsers: Web Vitals, by the page's route template and the navigation type
def!(
    WEB_VITALS_LCP,
    "tars_web_vitals_lcp_seconds",
    Histogram,
    Browser,
    S,
    ["route", "navigation_type"],
    buckets::WEB_VITALS_LCP_SECONDS,
    "Largest Contentful Paint reported by browsers, by page route template and navigation type."
);
def!(
    WEB_VITALS_INP,
    "tars_web_vitals_inp_seconds",
    Histogram,
    Browser,
    S,
    ["route", "navigation_type"],
    buckets::WEB_VITALS_INP_SECONDS,
    "Interaction to Next Paint reported by browsers, by page route template and navigation type."
);
def!(
    WEB_VITALS_CLS,
    "tars_web_vitals_cls",
    Histogram,
    Browser,
    None,
    ["route", "navigation_type"],
    buckets::WEB_VITALS_CLS,
    "Cumulative Layout Shift reported by browsers, by page route template and navigation type."
);
def!(
    WEB_VITALS_FCP,
    "tars_web_vitals_fcp_seconds",
    Histogram,
    Browser,
    S,
    ["route", "navigation_type"],
    buckets::WEB_VITALS_FCP_SECONDS,
    "First Contentful Paint reported by browsers, by page route template and navigation type."
);
def!(
    WEB_VITALS_TTFB,
    "tars_web_vitals_ttfb_seconds",
    Histogram,
    Browser,
    S,
    ["route", "navigation_type"],
    buckets::WEB_VITALS_TTFB_SECONDS,
    "Time to First Byte reported by browsers, by page route template and navigation type."
);
def!(
    WEB_VITALS_REJECTED,
    "tars_web_vitals_rejected_total",
    Counter,
    Browser,
    None,
    ["reason"],
    NONE,
    "Web Vitals reports refused (malformed, oversized, unknown metric, value out of range), by reason."
);
// tars-telemetry itself
def!(
    SELF_SERIES_OVERFLOW,
    "tars_telemetry_series_overflow_total",
    Counter,
    SelfTelemetry,
    None,
    ["family"],
    NONE,
    "Label sets folded into the overflow series because the family's series budget was spent."
);
def!(
    SELF_INVALID_VALUES,
    "tars_telemetry_invalid_values_total",
    Counter,
    SelfTelemetry,
    None,
    ["family"],
    NONE,
    "Values dropped because they were NaN, infinite or negative where the family forbids it."
);
def!(
    SELF_FACADE_ERRORS,
    "tars_telemetry_facade_errors_total",
    Counter,
    SelfTelemetry,
    None,
    ["reason"],
    NONE,
    "Registrations through the metrics facade that were refused or rewritten."
);
def!(
    SELF_SPANS_DROPPED,
    "tars_telemetry_spans_dropped_total",
    Counter,
    SelfTelemetry,
    None,
    ["reason"],
    NONE,
    "Finished spans not exported, by reason (queue_full, export_failed, shutdown)."
);
def!(
    SELF_STAGES_ABANDONED,
    "tars_telemetry_stages_abandoned_total",
    Counter,
    SelfTelemetry,
    None,
    ["stage"],
    NONE,
    "Stages abandoned before they finished (cancelled, or their guard dropped unfinished), by stage; they count as errors and observe no duration."
);
def!(
    SELF_MULTIPROCESS_LOSSES,
    "tars_telemetry_multiprocess_losses_total",
    Counter,
    SelfTelemetry,
    None,
    ["event", "reason"],
    NONE,
    "Multi-process files or records a render could not use, by event (file_skipped, records_dropped, fold_failed: counted by the worker that rendered; archive_replaced, dead_file_set_aside: counted once, in the archive) and reason."
);
// Node agent (tars-agent): GPUs, per device
def!(
    GPU_UTILIZATION,
    "tars_gpu_utilization_percent",
    Gauge,
    Gpu,
    None,
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU utilization, 0-100 (the semconv hw.gpu.utilization ratio x 100)."
);
def!(
    GPU_MEMORY_USED,
    "tars_gpu_memory_used_bytes",
    Gauge,
    Gpu,
    B,
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU memory in use."
);
def!(
    GPU_MEMORY_TOTAL,
    "tars_gpu_memory_total_bytes",
    Gauge,
    Gpu,
    B,
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU memory installed."
);
def!(
    GPU_TEMPERATURE,
    "tars_gpu_temperature_celsius",
    Gauge,
    Gpu,
    Some("celsius"),
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU core temperature."
);
def!(
    GPU_POWER,
    "tars_gpu_power_watts",
    Gauge,
    Gpu,
    Some("watts"),
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU power draw."
);
def!(
    GPU_ENERGY,
    "tars_gpu_energy_joules_total",
    Counter,
    Gpu,
    Some("joules"),
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU energy consumed since the driver loaded."
);
def!(
    GPU_CLOCK,
    "tars_gpu_clock_hertz",
    Gauge,
    Gpu,
    Some("hertz"),
    ["gpu_id", "uuid", "name", "clock"],
    NONE,
    "GPU clock frequency, by clock (graphics, sm, memory)."
);
def!(
    GPU_THROTTLED,
    "tars_gpu_throttled",
    Gauge,
    Gpu,
    None,
    ["gpu_id", "uuid", "name", "reason"],
    NONE,
    "1 while the GPU is throttled for this reason, else 0."
);
def!(
    GPU_ECC_ERRORS,
    "tars_gpu_ecc_errors_total",
    Counter,
    Gpu,
    None,
    ["gpu_id", "uuid", "name", "type"],
    NONE,
    "ECC memory errors since the driver loaded, by type (corrected, uncorrected)."
);
def!(
    GPU_POD_MEMORY,
    "tars_gpu_pod_memory_used_bytes",
    Gauge,
    Gpu,
    B,
    ["gpu_id", "namespace", "pod", "container"],
    NONE,
    "GPU memory used by the processes of one Kubernetes container."
);
def!(
    GPU_POD_UTILIZATION,
    "tars_gpu_pod_utilization_percent",
    Gauge,
    Gpu,
    None,
    ["gpu_id", "namespace", "pod", "container"],
    NONE,
    "GPU (SM) utilization of the processes of one Kubernetes container, 0-100, from NVML's per-process samples; absent where NVML cannot attribute it (MIG instances, no recent sample)."
);
def!(
    GPU_DEVICES,
    "tars_gpu_devices",
    Gauge,
    Gpu,
    None,
    [],
    NONE,
    "GPUs found on this node; 0 on a node without a GPU or without the NVIDIA driver."
);
// Node agent: host
def!(
    NODE_CPU,
    "tars_node_cpu_seconds_total",
    Counter,
    Host,
    S,
    ["cpu", "mode"],
    NONE,
    "CPU time by CPU and mode, from /proc/stat."
);
def!(
    NODE_LOAD,
    "tars_node_load_average",
    Gauge,
    Host,
    None,
    ["window"],
    NONE,
    "Load average over 1m, 5m and 15m."
);
def!(
    NODE_MEMORY_TOTAL,
    "tars_node_memory_total_bytes",
    Gauge,
    Host,
    B,
    [],
    NONE,
    "Physical memory installed."
);
def!(
    NODE_MEMORY_AVAILABLE,
    "tars_node_memory_available_bytes",
    Gauge,
    Host,
    B,
    [],
    NONE,
    "Memory available to new work (MemAvailable)."
);
def!(
    NODE_FS_SIZE,
    "tars_node_filesystem_size_bytes",
    Gauge,
    Host,
    B,
    ["device", "mountpoint", "fstype"],
    NONE,
    "Filesystem size."
);
def!(
    NODE_FS_AVAILABLE,
    "tars_node_filesystem_available_bytes",
    Gauge,
    Host,
    B,
    ["device", "mountpoint", "fstype"],
    NONE,
    "Filesystem space available to unprivileged users."
);
def!(
    NODE_DISK_READ,
    "tars_node_disk_read_bytes_total",
    Counter,
    Host,
    B,
    ["device"],
    NONE,
    "Bytes read from a block device."
);
def!(
    NODE_DISK_WRITTEN,
    "tars_node_disk_written_bytes_total",
    Counter,
    Host,
    B,
    ["device"],
    NONE,
    "Bytes written to a block device."
);
def!(
    NODE_NET_RX,
    "tars_node_network_receive_bytes_total",
    Counter,
    Host,
    B,
    ["interface"],
    NONE,
    "Bytes received on a network interface."
);
def!(
    NODE_NET_TX,
    "tars_node_network_transmit_bytes_total",
    Counter,
    Host,
    B,
    ["interface"],
    NONE,
    "Bytes sent on a network interface."
);
def!(
    NODE_HOURLY_COST,
    "tars_node_hourly_cost_dollars",
    Gauge,
    Host,
    Some("dollars"),
    ["resource"],
    NONE,
    "What the node's resources cost per hour at the configured prices, by resource (cpu, memory, gpu, storage)."
);
def!(
    NODE_RESOURCE_USED,
    "tars_node_resource_used_ratio",
    Gauge,
    Host,
    Some("ratio"),
    ["resource"],
    NONE,
    "Share of the node's resource in use, 0-1, by resource."
);
// Node agent: probes of the services the platform depends on
def!(
    PROBE_UP,
    "tars_probe_up",
    Gauge,
    Probe,
    None,
    ["service", "target"],
    NONE,
    "1 when the last probe of the service succeeded, else 0 (service: redis, postgresql, chromadb, ollama)."
);
def!(
    PROBE_DURATION,
    "tars_probe_duration_seconds",
    Gauge,
    Probe,
    S,
    ["service", "target"],
    NONE,
    "How long the last probe took."
);
def!(
    POSTGRESQL_CONNECTIONS,
    "tars_postgresql_connections",
    Gauge,
    Probe,
    None,
    ["target"],
    NONE,
    "Open PostgreSQL connections (pg_stat_activity)."
);
def!(
    POSTGRESQL_REPLICATION_LAG,
    "tars_postgresql_replication_lag_seconds",
    Gauge,
    Probe,
    S,
    ["target"],
    NONE,
    "Replication lag of a PostgreSQL replica; 0 on a primary."
);
def!(
    OLLAMA_MODELS,
    "tars_ollama_models",
    Gauge,
    Probe,
    None,
    ["target"],
    NONE,
    "Models Ollama has available."
);
// Node agent: itself
def!(
    AGENT_BUILD_INFO,
    "tars_agent_build_info",
    Info,
    Agent,
    None,
    ["version", "node"],
    NONE,
    "The agent's version and the node it runs on."
);
def!(
    AGENT_COLLECTOR_UP,
    "tars_agent_collector_up",
    Gauge,
    Agent,
    None,
    ["collector"],
    NONE,
    "1 when the collector's last run succeeded, else 0."
);
def!(
    AGENT_COLLECTOR_DURATION,
    "tars_agent_collector_duration_seconds",
    Gauge,
    Agent,
    S,
    ["collector"],
    NONE,
    "How long the collector's last run took."
);
def!(
    AGENT_COLLECTOR_ERRORS,
    "tars_agent_collector_errors_total",
    Counter,
    Agent,
    None,
    ["collector"],
    NONE,
    "Failed collector runs."
);

/// Families emitted by services through tars-telemetry, in exposition order.
pub const LIBRARY: &[MetricDef] = &[
    RAG_QUERY_DURATION,
    RAG_QUERIES,
    RAG_QUERIES_FAILED,
    RAG_PHASE_DURATION,
    RAG_SOURCES,
    RAG_RELEVANCE,
    LLM_INFERENCE_DURATION,
    LLM_TOKENS_GENERATED,
    LLM_INPUT_TOKENS,
    LLM_TOKENS,
    LLM_SPEND,
    LLM_UNPRICED_TOKENS,
    LLM_REQUESTS,
    LLM_TIME_TO_FIRST_TOKEN,
    LLM_TIME_PER_OUTPUT_TOKEN,
    EMBEDDING_DURATION,
    EMBEDDINGS_GENERATED,
    EMBEDDING_CACHE_HITS,
    EMBEDDING_CACHE_MISSES,
    VECTOR_SEARCH_DURATION,
    VECTOR_SEARCHES,
    VECTOR_STORE_DOCUMENTS,
    REDIS_CACHE_HITS,
    REDIS_CACHE_MISSES,
    REDIS_MEMORY_USAGE,
    REDIS_MEMORY_MAX,
    CACHE_OPERATIONS,
    DB_QUERY_DURATION,
    DB_QUERIES,
    DB_POOL_ACTIVE,
    DB_POOL_MAX,
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS_ACTIVE,
    WEBSOCKET_MESSAGES,
    WEBSOCKET_CONNECTIONS_ACTIVE,
    DOCUMENTS_PROCESSED,
    DOCUMENT_PROCESSING_DURATION,
    DOCUMENT_QUEUE_LENGTH,
    DOCUMENT_CHUNKS,
    ERRORS,
    APP_INFO,
    WEB_VITALS_LCP,
    WEB_VITALS_INP,
    WEB_VITALS_CLS,
    WEB_VITALS_FCP,
    WEB_VITALS_TTFB,
    WEB_VITALS_REJECTED,
    SELF_SERIES_OVERFLOW,
    SELF_INVALID_VALUES,
    SELF_FACADE_ERRORS,
    SELF_SPANS_DROPPED,
    SELF_STAGES_ABANDONED,
    SELF_MULTIPROCESS_LOSSES,
];

/// Families emitted by the node agent.
pub const AGENT: &[MetricDef] = &[
    GPU_UTILIZATION,
    GPU_MEMORY_USED,
    GPU_MEMORY_TOTAL,
    GPU_TEMPERATURE,
    GPU_POWER,
    GPU_ENERGY,
    GPU_CLOCK,
    GPU_THROTTLED,
    GPU_ECC_ERRORS,
    GPU_POD_MEMORY,
    GPU_POD_UTILIZATION,
    GPU_DEVICES,
    NODE_CPU,
    NODE_LOAD,
    NODE_MEMORY_TOTAL,
    NODE_MEMORY_AVAILABLE,
    NODE_FS_SIZE,
    NODE_FS_AVAILABLE,
    NODE_DISK_READ,
    NODE_DISK_WRITTEN,
    NODE_NET_RX,
    NODE_NET_TX,
    NODE_HOURLY_COST,
    NODE_RESOURCE_USED,
    PROBE_UP,
    PROBE_DURATION,
    POSTGRESQL_CONNECTIONS,
    POSTGRESQL_REPLICATION_LAG,
    OLLAMA_MODELS,
    AGENT_BUILD_INFO,
    AGENT_COLLECTOR_UP,
    AGENT_COLLECTOR_DURATION,
    AGENT_COLLECTOR_ERRORS,
];

/// Names in the platform's contract that this catalog emits under another name.
pub const RENAMED: &[(&str, &str)] = &[(
    "tars_vector_store_documents_total",
    "tars_vector_store_documents",
)];

/// One alert threshold on a histogram quantile: the contract's rule, the family, the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertThreshold {
    /// The alert.
    pub alert: &'static str,
    /// The histogram family its expression reads.
    pub family: &'static str,
    /// The quantile it compares.
    pub quantile: f64,
    /// The threshold, a bucket bound.
    pub seconds: f64,
}

/// Every quantile threshold the platform's alerts compare against; each must be a bucket bound.
pub const ALERT_THRESHOLDS: &[AlertThreshold] = &[
    AlertThreshold {
        alert: "HighRAGQueryLatency",
        family: "tars_rag_query_duration_seconds",
        quantile: 0.95,
        seconds: 0.25,
    },
    AlertThreshold {
        alert: "VeryHighRAGQueryLatency",
        family: "tars_rag_query_duration_seconds",
        quantile: 0.95,
        seconds: 1.0,
    },
    AlertThreshold {
        alert: "HighLLMInferenceLatency",
        family: "tars_llm_inference_duration_seconds",
        quantile: 0.95,
        seconds: 2.0,
    },
    AlertThreshold {
        alert: "HighEmbeddingLatency",
        family: "tars_embedding_duration_seconds",
        quantile: 0.95,
        seconds: 0.5,
    },
    AlertThreshold {
        alert: "HighDatabaseQueryLatency",
        family: "tars_db_query_duration_seconds",
        quantile: 0.95,
        seconds: 0.1,
    },
    AlertThreshold {
        alert: "HighVectorSearchLatency",
        family: "tars_vector_search_duration_seconds",
        quantile: 0.95,
        seconds: 0.5,
    },
    AlertThreshold {
        alert: "SlowDocumentProcessing",
        family: "tars_document_processing_duration_seconds",
        quantile: 0.95,
        seconds: 10.0,
    },
];

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
