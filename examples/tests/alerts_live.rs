//! The shipped alert rules (deploy/prometheus/rules) in a real Prometheus server (Debian's
//! `prometheus` package) on 127.0.0.1, scraping two simulated RAG services: a degraded one,
//! past every threshold of the library's families, and a healthy one. Through the HTTP
//! API (/api/v1/alerts), every alert fed by the library's families is pending or firing for
//! the degraded service, with the labels its annotations use, and none for the healthy one.
//!
//! The rules are loaded as shipped except for their `for` durations, which a copy sets to
//! 0s so that the test takes seconds rather than ten minutes; the promtool unit tests in
//! deploy/prometheus/tests cover the durations.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Prometheus, Services};
use serde_json::Value;

/// Alerts whose series the library emits, which `DemoConfig::degraded()` pushes past their
/// thresholds, with the labels (besides namespace, service and severity) each must carry.
const LIBRARY_ALERTS: &[(&str, &[&str])] = &[
    ("HighRAGQueryLatency", &[]),
    ("VeryHighRAGQueryLatency", &[]),
    ("HighRAGQueryFailureRate", &[]),
    ("HighLLMInferenceLatency", &["model"]),
    ("LowTokenGenerationRate", &[]),
    ("HighEmbeddingLatency", &[]),
    ("LowEmbeddingCacheHitRate", &[]),
    ("LowRedisCacheHitRate", &[]),
    ("RedisHighMemoryUsage", &[]),
    ("HighDatabaseQueryLatency", &["operation"]),
    ("DatabaseConnectionPoolExhausted", &[]),
    ("HighVectorSearchLatency", &[]),
    ("High5xxErrorRate", &[]),
    ("High4xxErrorRate", &[]),
    ("SlowDocumentProcessing", &[]),
    ("HighDocumentQueue", &[]),
];

/// Copies every rule file of `rules` into `dir` with each `for:` set to 0s; the copies.
fn rules_without_for(rules: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(rules)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    entries.sort();
    let mut rewritten = 0;
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let copy: Vec<String> = text
            .lines()
            .map(|line| {
                let trimmed = line.trim_start();
                if trimmed.starts_with("for:") {
                    rewritten += 1;
                    format!("{}for: 0s", &line[..line.len() - trimmed.len()])
                } else {
                    line.to_string()
                }
            })
            .collect();
        let dest = dir.join(path.file_name().unwrap());
        std::fs::write(&dest, copy.join("\n") + "\n").unwrap();
        out.push(dest);
    }
    assert!(
        rewritten >= LIBRARY_ALERTS.len(),
        "only {rewritten} `for:` lines found"
    );
    out
}

/// One alert of /api/v1/alerts.
#[derive(Debug)]
struct Alert {
    name: String,
    state: String,
    labels: Value,
    annotations: Value,
}

impl Alert {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name)?.as_str()
    }

    fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.get(name)?.as_str()
    }
}

fn alerts(prom: &Prometheus) -> Vec<Alert> {
    let Some(data) = prom.get("/api/v1/alerts") else {
        return Vec::new();
    };
    data["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| Alert {
            name: a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
            state: a["state"].as_str().unwrap_or("").to_string(),
            labels: a["labels"].clone(),
            annotations: a["annotations"].clone(),
        })
        .collect()
}

#[test]
fn the_shipped_alerts_fire_for_a_degraded_service_and_not_for_a_healthy_one() {
    let Some(prometheus) = common::prometheus_binary() else {
        return;
    };
    let services = Services::healthy_and_degraded();
    let scratch = std::env::temp_dir().join(format!("tars-alert-rules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/rules");
    let rule_files = rules_without_for(&deploy, &scratch);
    let prom = common::start_prometheus(&prometheus, "alerts", &services.targets, &rule_files);

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut missing: Vec<&str>;
    let mut last: Vec<Alert>;
    loop {
        last = alerts(&prom);
        missing = LIBRARY_ALERTS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| {
                !last.iter().any(|a| {
                    a.name == *name
                        && a.label("service") == Some("degraded")
                        && matches!(a.state.as_str(), "pending" | "firing")
                })
            })
            .collect();
        // The platform's LLM budget: one sum over every service's spend.
        if !last.iter().any(|a| {
            a.name == "TarsLlmSpendOverBudget" && matches!(a.state.as_str(), "pending" | "firing")
        }) {
            missing.push("TarsLlmSpendOverBudget");
        }
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    // Every rule loaded and evaluates without error.
    let mut rule_errors = Vec::new();
    let mut rules_seen = 0;
    let groups = prom.get("/api/v1/rules").unwrap_or_default();
    for g in groups["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            rules_seen += 1;
            if r["health"] == "err" {
                rule_errors.push(format!("{}: {}", r["name"], r["lastError"]));
            }
        }
    }

    // The healthy service is scraped and its recorded series exist, yet no alert holds.
    let healthy_data = !prom
        .query(r#"tars:http_requests:rate5m{service="healthy"} > 0"#)
        .is_empty();
    // The LLM spend alert fires on the degraded service's pace alone: the healthy one's is
    // under the daily budget, the degraded one's over it.
    let pace = |service: &str, cmp: &str| {
        !prom
            .query(&format!(
                r#"sum(rate(tars_llm_spend_dollars_total{{service="{service}"}}[5m])) * 86400 {cmp} 50"#
            ))
            .is_empty()
    };
    let healthy_spend_under_budget = pace("healthy", "<");
    let degraded_spend_over_budget = pace("degraded", ">");
    let noisy: Vec<String> = alerts(&prom)
        .iter()
        .filter(|a| a.label("service") == Some("healthy"))
        .map(|a| format!("{} ({})", a.name, a.state))
        .collect();
    drop(prom);
    drop(services);
    let _ = std::fs::remove_dir_all(&scratch);

    assert!(
        missing.is_empty(),
        "after 90 s, not pending or firing for the degraded service: {missing:?}\nalerts: {last:#?}"
    );
    assert!(rules_seen >= 50, "only {rules_seen} rules loaded");
    assert!(rule_errors.is_empty(), "rules in error: {rule_errors:#?}");
    for (name, extra) in LIBRARY_ALERTS {
        let a = last
            .iter()
            .find(|a| a.name == *name && a.label("service") == Some("degraded"))
            .unwrap();
        assert_eq!(a.label("namespace"), Some("tars"), "{name}");
        assert!(a.label("severity").is_some(), "{name}: no severity");
        for l in *extra {
            assert!(a.label(l).is_some(), "{name}: no {l} label: {a:?}");
        }
        for key in ["summary", "description", "runbook_url"] {
            let v = a.annotation(key);
            assert!(
                v.is_some_and(|v| !v.is_empty() && !v.contains("<no value>")),
                "{name}: annotation {key}: {v:?}"
            );
        }
        assert!(
            a.annotation("summary")
                .is_some_and(|v| v.contains("tars/degraded")),
            "{name}: the summary does not name the service: {:?}",
            a.annotations
        );
    }
    assert!(healthy_data, "no recorded series for the healthy service");
    assert!(
        healthy_spend_under_budget && degraded_spend_over_budget,
        "LLM spend pace: healthy under the budget {healthy_spend_under_budget}, degraded over it {degraded_spend_over_budget}"
    );
    assert!(
        noisy.is_empty(),
        "alerts for the healthy service: {noisy:?}"
    );
}
