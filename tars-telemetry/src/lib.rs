//! # tars-telemetry
//!
//! Metrics for LLM/RAG services: every family the platform's Grafana panels and Prometheus
//! alerts query ([`catalog`]), recorded through owned handles with no lock and no heap
//! allocation on the hot path, exposed as Prometheus text 0.0.4 or OpenMetrics 1.0.
//!
//! ```
//! use std::time::Duration;
//! use tars_telemetry::{Telemetry, Format, Method, DbOperation, RagPhase};
//!
//! let telemetry = Telemetry::new();
//!
//! // Resolve free-form labels once, at startup.
//! let route = telemetry.http().route("/api/v1/rag/query");
//! let llama = telemetry.llm_model("llama3").unwrap();
//!
//! // Per request: guards that record when they end.
//! let request = route.start(Method::Post);
//! let mut query = telemetry.rag().start_query();
//! {
//!     let _retrieval = query.phase(RagPhase::Retrieval);
//!     telemetry.redis().lookup(false);
//!     telemetry.db().record(DbOperation::Select, Duration::from_millis(3), None);
//! }
//! let mut call = llama.start();
//! call.set_output_tokens(128);
//! call.succeed();
//! query.set_sources(5);
//! query.succeed();
//! request.finish(200);
//!
//! let text = telemetry.render_string(Format::Prometheus);
//! assert!(text.contains("tars_rag_queries_total{status=\"success\"} 1"));
//! ```

#![warn(missing_docs)]

pub mod catalog;
pub mod custom;
mod domain;
pub mod encoding;
mod error;
mod facade;
mod fork;
mod labels;
mod metric;
pub mod multiproc;
mod registry;
#[cfg(feature = "server")]
mod server;
pub mod snapshot;
pub mod stage;
mod telemetry;
mod text;
#[cfg(feature = "otel")]
pub mod trace;

// One public module per domain of a RAG service: what each binding file wraps.

/// RAG queries: duration, outcome, phases, sources, relevance.
pub mod rag {
    pub use crate::domain::{RagMetrics, RagPhase, RagQuery};
}
/// LLM inference: per-model handles, calls, tokens, time to first token.
pub mod llm {
    pub use crate::domain::{
        LlmCall, LlmModel, LlmModels, LlmPricing, LlmUsage, MAX_PRICE_PER_MILLION, ModelPrices,
        PRICING_FILE_ENV, PricingError, TokenKind,
    };
    pub use crate::stage::TokenUsage;
}
/// Embedding generation and the embedding cache.
pub mod embeddings {
    pub use crate::domain::EmbeddingMetrics;
}
/// Vector-store searches and size.
pub mod vector_store {
    pub use crate::domain::VectorStoreMetrics;
}
/// The Redis cache: lookups, commands, memory.
pub mod redis {
    pub use crate::domain::{CacheCall, RedisMetrics};
}
/// Cache operations of every cache.
pub mod cache {
    pub use crate::domain::{CacheCall, CacheMetrics, CacheName, CacheOperation, CacheResult};
}
/// Database queries and the connection pool.
pub mod db {
    pub use crate::domain::{DbMetrics, DbOperation};
}
/// HTTP server requests: routes, late-bound routes, abandoned requests.
pub mod http {
    pub use crate::domain::{
        ABANDONED_STATUS, AbandonReason, DEFAULT_EXCLUDED_PATHS, ExcludedPaths, HttpMetrics,
        HttpRequest, HttpRoute, MAX_SPAN_PATH, Method, UNMATCHED_ROUTE, span_path,
    };
}
/// Browsers' Web Vitals: reports and `sendBeacon` bodies, checked once for every adapter.
pub mod web_vitals {
    pub use crate::domain::{
        BeaconOutcome, MAX_BEACON_BYTES, MAX_BEACON_REPORTS, MAX_ROUTE, NAVIGATION_TYPES, WebVital,
        WebVitalsMetrics, WebVitalsRejection,
    };
}
/// WebSocket connections and messages.
pub mod websocket {
    pub use crate::domain::{Direction, WebSocketConnection, WebSocketMetrics};
}
/// Document ingestion.
pub mod documents {
    pub use crate::domain::{DocumentJob, DocumentMetrics};
}
/// Errors by component and type, and the application's info series.
pub mod errors {
    pub use crate::domain::{AppInfo, Component, ErrorMetrics};
}

pub use cache::{CacheCall, CacheMetrics, CacheName, CacheOperation, CacheResult};
pub use catalog::{Merge, MetricKind, NativeBuckets};
pub use db::{DbMetrics, DbOperation};
pub use documents::{DocumentJob, DocumentMetrics};
pub use domain::{Outcome, Timer};
pub use embeddings::EmbeddingMetrics;
pub use encoding::Format;
pub use error::{BucketError, Error, NameError};
pub use errors::{AppInfo, Component, ErrorMetrics};
pub use fork::AfterFork;
pub use http::{HttpMetrics, HttpRequest, HttpRoute, Method};
pub use llm::{
    LlmCall, LlmModel, LlmModels, LlmPricing, LlmUsage, ModelPrices, PricingError, TokenKind,
    TokenUsage,
};
pub use metric::{Counter, Exemplar, Gauge, Histogram, InvalidValue, TraceRef};
pub use rag::{RagMetrics, RagPhase, RagQuery};
pub use redis::RedisMetrics;
pub use registry::{
    DEFAULT_FAMILY_BUDGET, DEFAULT_SERIES_BUDGET, Family, FamilyDesc, Metric, OVERFLOW_LABEL_VALUE,
    Registry, RegistryConfig,
};
#[cfg(feature = "server")]
pub use server::{DEFAULT_MAX_CONNECTIONS, MetricsServer, ServerOptions};
pub use stage::{Parent, SpanContext, SpanDropReason, StageType};
pub use telemetry::{Telemetry, TelemetryBuilder};
pub use vector_store::VectorStoreMetrics;
pub use web_vitals::{WebVital, WebVitalsMetrics};
pub use websocket::{Direction, WebSocketConnection, WebSocketMetrics};
