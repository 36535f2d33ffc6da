//! A real Prometheus server (Debian's `prometheus` package) scrapes two simulated RAG
//! services on 127.0.0.1: a healthy one and a degraded one. Every panel query of the
//! platform's contract returns data, and every alert condition holds for the degraded
//! service and not for the healthy one.

mod common;

use std::time::{Duration, Instant};

use common::Services;

/// Panel queries of the dashboard, one per panel series (library families).
const PANELS: &[&str] = &[
    "histogram_quantile(0.5, sum by (le) (rate(tars_rag_query_duration_seconds_bucket[1m])))",
    "histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds_bucket[1m])))",
    "sum(rate(tars_rag_query_duration_seconds_sum[1m])) / sum(rate(tars_rag_query_duration_seconds_count[1m]))",
    "sum(rate(tars_rag_queries_failed_total[1m])) / sum(rate(tars_rag_queries_total[1m]))",
    "histogram_quantile(0.95, sum by (le, phase) (rate(tars_rag_phase_duration_seconds_bucket[1m])))",
    "histogram_quantile(0.5, sum by (le) (rate(tars_rag_sources_retrieved_bucket[1m])))",
    "histogram_quantile(0.5, sum by (le) (rate(tars_rag_relevance_score_bucket[1m])))",
    "histogram_quantile(0.95, sum by (le, model) (rate(tars_llm_inference_duration_seconds_bucket[1m])))",
    "sum by (model) (rate(tars_llm_tokens_generated_total[1m]))",
    "sum by (model) (rate(tars_llm_input_tokens_total[1m]))",
    "sum by (model, status) (rate(tars_llm_requests_total[1m]))",
    "histogram_quantile(0.95, sum by (le, model) (rate(tars_llm_time_to_first_token_seconds_bucket[1m])))",
    "histogram_quantile(0.95, sum by (le, model) (rate(tars_llm_time_per_output_token_seconds_bucket[1m])))",
    "histogram_quantile(0.95, sum by (le) (rate(tars_embedding_duration_seconds_bucket[1m])))",
    "sum(rate(tars_embeddings_generated_total[1m]))",
    "sum(rate(tars_embedding_cache_hits_total[1m])) / (sum(rate(tars_embedding_cache_hits_total[1m])) + sum(rate(tars_embedding_cache_misses_total[1m])))",
    "sum(rate(tars_redis_cache_hits_total[1m])) / (sum(rate(tars_redis_cache_hits_total[1m])) + sum(rate(tars_redis_cache_misses_total[1m])))",
    "sum by (cache, operation, result) (rate(tars_cache_operations_total[1m]))",
    "tars_redis_memory_usage_bytes / tars_redis_memory_max_bytes",
    "histogram_quantile(0.95, sum by (le, operation) (rate(tars_db_query_duration_seconds_bucket[1m])))",
    "sum by (operation) (rate(tars_db_queries_total[1m]))",
    "tars_db_connection_pool_active / tars_db_connection_pool_max",
    "histogram_quantile(0.95, sum by (le) (rate(tars_vector_search_duration_seconds_bucket[1m])))",
    "sum(rate(tars_vector_search_total[1m]))",
    "tars_vector_store_documents",
    "sum(rate(tars_http_requests_total{status=~\"5..\"}[1m])) / sum(rate(tars_http_requests_total[1m]))",
    "sum(rate(tars_http_requests_total{status=~\"4..\"}[1m])) / sum(rate(tars_http_requests_total[1m]))",
    "sum by (method, endpoint) (rate(tars_http_requests_total[1m]))",
    "histogram_quantile(0.95, sum by (le, endpoint) (rate(tars_http_request_duration_seconds_bucket[1m])))",
    "sum by (component, error_type) (rate(tars_errors_total[1m]))",
    "sum by (direction) (rate(tars_websocket_messages_total[1m]))",
    "tars_websocket_connections_active",
    "sum by (status) (rate(tars_documents_processed_total[1m]))",
    "histogram_quantile(0.95, sum by (le) (rate(tars_document_processing_duration_seconds_bucket[1m])))",
    "tars_document_queue_length",
    "tars_app_info",
];

/// Alert conditions of the contract; `{J}` is replaced by a job selector.
const ALERTS: &[(&str, &str)] = &[
    (
        "HighRAGQueryLatency",
        "histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds_bucket{J}[1m]))) > 0.25",
    ),
    (
        "VeryHighRAGQueryLatency",
        "histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds_bucket{J}[1m]))) > 1",
    ),
    (
        "HighRAGQueryFailureRate",
        "sum(rate(tars_rag_queries_failed_total{J}[1m])) / sum(rate(tars_rag_queries_total{J}[1m])) > 0.05",
    ),
    (
        "HighLLMInferenceLatency",
        "histogram_quantile(0.95, sum by (le, model) (rate(tars_llm_inference_duration_seconds_bucket{J}[1m]))) > 2",
    ),
    (
        "LowTokenGenerationRate",
        "sum(rate(tars_llm_tokens_generated_total{J}[1m])) < 10",
    ),
    (
        "HighEmbeddingLatency",
        "histogram_quantile(0.95, sum by (le) (rate(tars_embedding_duration_seconds_bucket{J}[1m]))) > 0.5",
    ),
    (
        "LowEmbeddingCacheHitRate",
        "sum(rate(tars_embedding_cache_hits_total{J}[1m])) / (sum(rate(tars_embedding_cache_hits_total{J}[1m])) + sum(rate(tars_embedding_cache_misses_total{J}[1m]))) < 0.7",
    ),
    (
        "LowRedisCacheHitRate",
        "sum(rate(tars_redis_cache_hits_total{J}[1m])) / (sum(rate(tars_redis_cache_hits_total{J}[1m])) + sum(rate(tars_redis_cache_misses_total{J}[1m]))) < 0.6",
    ),
    (
        "RedisHighMemoryUsage",
        "tars_redis_memory_usage_bytes{J} / tars_redis_memory_max_bytes{J} > 0.85",
    ),
    (
        "HighDatabaseQueryLatency",
        "histogram_quantile(0.95, sum by (le, operation) (rate(tars_db_query_duration_seconds_bucket{J}[1m]))) > 0.1",
    ),
    (
        "DatabaseConnectionPoolExhausted",
        "tars_db_connection_pool_active{J} / tars_db_connection_pool_max{J} > 0.9",
    ),
    (
        "HighVectorSearchLatency",
        "histogram_quantile(0.95, sum by (le) (rate(tars_vector_search_duration_seconds_bucket{J}[1m]))) > 0.5",
    ),
    (
        "High5xxErrorRate",
        "sum(rate(tars_http_requests_total{J,status=~\"5..\"}[1m])) / sum(rate(tars_http_requests_total{J}[1m])) > 0.005",
    ),
    (
        "High4xxErrorRate",
        "sum(rate(tars_http_requests_total{J,status=~\"4..\"}[1m])) / sum(rate(tars_http_requests_total{J}[1m])) > 0.1",
    ),
    (
        "SlowDocumentProcessing",
        "histogram_quantile(0.95, sum by (le) (rate(tars_document_processing_duration_seconds_bucket{J}[1m]))) > 10",
    ),
    ("HighDocumentQueue", "tars_document_queue_length{J} > 100"),
];

#[test]
fn prometheus_scrapes_the_demo_and_every_panel_and_alert_has_data() {
    let Some(prometheus) = common::prometheus_binary() else {
        return;
    };
    let services = Services::healthy_and_degraded();
    let prom = common::start_prometheus(&prometheus, "scrape", &services.targets, &[]);
    let dashboard = dashboard_queries();
    assert!(
        dashboard.len() >= 30,
        "only {} dashboard queries",
        dashboard.len()
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing: Vec<String>;
    loop {
        missing = Vec::new();
        for (job, _) in &services.targets {
            if prom.query(&format!("up{{job=\"{job}\"}} == 1")).is_empty() {
                missing.push(format!("target {job} not up"));
            }
        }
        for p in PANELS {
            if prom.query(p).is_empty() {
                missing.push(format!("panel: {p}"));
            }
        }
        for (panel, q) in &dashboard {
            if prom.query(q).is_empty() {
                missing.push(format!("dashboard panel {panel:?}: {q}"));
            }
        }
        for (alert, expr) in ALERTS {
            if prom.query(&with_job(expr, "degraded")).is_empty() {
                missing.push(format!("{alert} does not hold for the degraded service"));
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // With data flowing, no alert condition holds for the healthy service.
    let noisy: Vec<&str> = if missing.is_empty() {
        ALERTS
            .iter()
            .filter(|(_, expr)| !prom.query(&with_job(expr, "healthy")).is_empty())
            .map(|(alert, _)| *alert)
            .collect()
    } else {
        Vec::new()
    };
    drop(prom);
    drop(services);
    assert!(missing.is_empty(), "after 60 s:\n{}", missing.join("\n"));
    assert!(
        noisy.is_empty(),
        "alerts hold for the healthy service: {noisy:?}"
    );
}

/// The shipped platform dashboard's queries that read only library families, with its
/// variables set to "everything" and Grafana's interval to one minute.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/dashboards/tars-platform.json"
    );
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut stack: Vec<&serde_json::Value> = d["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = stack.pop() {
        if let Some(children) = panel["panels"].as_array() {
            stack.extend(children);
        }
        for t in panel["targets"].as_array().into_iter().flatten() {
            let Some(expr) = t["expr"].as_str() else {
                continue;
            };
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| {
                    w.starts_with("tars_") || w.starts_with("container_") || w.starts_with("kube_")
                })
                .collect();
            let library_only = !names.is_empty()
                && names.iter().all(|n| {
                    tars_telemetry::catalog::LIBRARY
                        .iter()
                        .any(|d| d.sample_names().iter().any(|s| s == n))
                });
            if library_only {
                let q = expr
                    .replace("$namespace", ".*")
                    .replace("$service", ".*")
                    .replace("$__rate_interval", "1m")
                    .replace("$__interval", "15s");
                out.push((panel["title"].as_str().unwrap_or("").to_string(), q));
            }
        }
    }
    out
}

/// Puts a job selector in place of `{J}` (or `{J,` before other matchers).
fn with_job(expr: &str, job: &str) -> String {
    expr.replace("{J}", &format!("{{job=\"{job}\"}}"))
        .replace("{J,", &format!("{{job=\"{job}\","))
}
