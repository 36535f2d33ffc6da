//! Bucket sets, named by what they measure.

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
