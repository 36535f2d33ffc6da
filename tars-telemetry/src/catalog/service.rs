//! The families a service emits: RAG, LLM, embeddings, the vector store, Redis, caches,
//! the database, HTTP, WebSockets, documents, errors, Web Vitals, and tars-telemetry's own.

use super::{B, Domain, Merge, MetricDef, MetricKind, NONE, S, SPEND_DIGITS, buckets};

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
