//! A real Prometheus server (Debian's `prometheus` package) scrapes two simulated RAG
//! services on 127.0.0.1: a healthy one and a degraded one. Every panel query of the
//! platform's contract returns data, and every alert condition holds for the degraded
//! service and not for the healthy one.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tars_examples::{DemoConfig, Workload};
use tars_telemetry::Telemetry;

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

fn prometheus_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => panic!("prometheus is required in CI"),
        None => {
            eprintln!("skipping: prometheus not found (scripts/install-test-deps.sh installs it)");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(port: u16, q: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "GET /api/v1/query?query={} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        encode(q)
    );
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn has_data(body: &str) -> bool {
    body.contains("\"status\":\"success\"") && !body.contains("\"result\":[]")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_the_demo_and_every_panel_and_alert_has_data() {
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut targets = Vec::new();
    let mut workers = Vec::new();
    for (job, cfg) in [
        // No random 5xx in the healthy service: at test scale a few would cross 0.5 %.
        (
            "healthy",
            DemoConfig {
                rate: 100.0,
                failure_rate: 0.0,
                ..DemoConfig::default()
            },
        ),
        (
            "degraded",
            DemoConfig {
                rate: 100.0,
                ..DemoConfig::degraded()
            },
        ),
    ] {
        let t = Telemetry::new();
        let server = t.serve("127.0.0.1:0").unwrap();
        targets.push((job, server.local_addr()));
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let mut w = Workload::new(t, cfg).unwrap();
            // Bounded: stops when the test ends, or after two minutes regardless.
            w.run(&stop, Some(Duration::from_secs(120)));
            drop(server);
        }));
    }

    let dir = std::env::temp_dir().join(format!("tars-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    for (job, addr) in &targets {
        cfg.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n"
        ));
    }
    std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
    let port = free_port();
    let child = Command::new(prometheus)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _prom = Killed(child);

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing: Vec<String>;
    loop {
        missing = Vec::new();
        for (job, _) in &targets {
            let up = query(port, &format!("up{{job=\"{job}\"}} == 1"));
            if !has_data(&up) {
                missing.push(format!("target {job} not up"));
            }
        }
        for p in PANELS {
            if !has_data(&query(port, p)) {
                missing.push(format!("panel: {p}"));
            }
        }
        for (alert, expr) in ALERTS {
            if !has_data(&query(
                port,
                &expr
                    .replace("{J}", "{job=\"degraded\"}")
                    .replace("{J,", "{job=\"degraded\","),
            )) {
                missing.push(format!("{alert} does not hold for the degraded service"));
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // With data flowing, no alert condition holds for the healthy service.
    let mut noisy = Vec::new();
    if missing.is_empty() {
        for (alert, expr) in ALERTS {
            let e = expr
                .replace("{J}", "{job=\"healthy\"}")
                .replace("{J,", "{job=\"healthy\",");
            if has_data(&query(port, &e)) {
                noisy.push(*alert);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(missing.is_empty(), "after 60 s:\n{}", missing.join("\n"));
    assert!(
        noisy.is_empty(),
        "alerts hold for the healthy service: {noisy:?}"
    );
}
