//! Native histograms scraped by a real Prometheus 3 (built from the Go module proxy by
//! scripts/build-otel-tools.sh) with `scrape_native_histograms` and
//! `always_scrape_classic_histograms`:
//!
//! - accuracy: every latency family of the catalog holds 20,000 draws of the demo's
//!   latency distribution; `histogram_quantile` over the native series is within the
//!   schema's relative error of the exact quantile of those draws (the classic estimate is
//!   printed beside it, and the table written to `target/native-accuracy.md`);
//! - the demo workload (a healthy service, and a degraded one in multi-process mode): each
//!   latency family is stored both ways from the same scrapes (equal counts), the classic
//!   buckets still answer, and with the native latency alerts
//!   (deploy/prometheus/native) in place of the classic ones every one of them holds for
//!   the degraded service and none for the healthy one.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tars_examples::{BASE_LATENCIES, demo_latency};
use tars_telemetry::Metric;
use tars_telemetry::catalog::{self, MetricDef};
use tars_telemetry::{Histogram, Telemetry};
use tars_test_support::prometheus::{Options, Prometheus, Target, prometheus3};
use tars_test_support::workspace_root;

const DRAWS: usize = 20_000;
const QUANTILES: [f64; 3] = [0.5, 0.95, 0.99];

fn base(name: &str) -> f64 {
    BASE_LATENCIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
        .unwrap()
}

/// The demo stage whose distribution each latency family is fed from, and an offset (Web
/// Vitals are a page's fixed cost plus its request).
fn source(def: &MetricDef) -> (f64, f64) {
    let n = def.name;
    let b = |s| base(s);
    match n {
        "tars_rag_query_duration_seconds" => (0.0, b("llm") + b("embedding")),
        "tars_rag_phase_duration_seconds" => (0.0, b("vector_search")),
        "tars_llm_inference_duration_seconds" => (0.0, b("llm")),
        "tars_llm_time_to_first_token_seconds" => (0.0, b("llm") / 4.0),
        "tars_llm_time_per_output_token_seconds" => (0.0, b("llm") / 200.0),
        "tars_embedding_duration_seconds" => (0.0, b("embedding")),
        "tars_vector_search_duration_seconds" => (0.0, b("vector_search")),
        "tars_db_query_duration_seconds" => (0.0, b("db")),
        "tars_http_request_duration_seconds" => (0.0, b("http")),
        "tars_document_processing_duration_seconds" => (0.0, b("parse")),
        "tars_web_vitals_lcp_seconds" => (1.2, b("http")),
        "tars_web_vitals_inp_seconds" => (0.08, b("http") / 4.0),
        "tars_web_vitals_fcp_seconds" => (0.6, b("http")),
        "tars_web_vitals_ttfb_seconds" => (0.15, b("http") / 2.0),
        other => panic!("no demo source for latency family {other}"),
    }
}

fn latency_families() -> Vec<&'static MetricDef> {
    catalog::LIBRARY
        .iter()
        .filter(|d| d.native.is_some())
        .collect()
}

fn scalar(p: &Prometheus, q: &str) -> Option<f64> {
    let r = p.query(q);
    r.first()
        .and_then(|s| s["value"][1].as_str())
        .and_then(|v| v.parse().ok())
}

fn wait_for(p: &Prometheus, what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}; targets: {:?}",
            p.get("/api/v1/targets")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn native_quantiles_are_within_the_schema_error_of_the_truth() {
    let Some(tools) = prometheus3() else { return };
    let t = Telemetry::builder().single_process().build().unwrap();
    let families = latency_families();
    assert!(families.len() >= 10, "the latency families: {families:?}");
    let mut truth = Vec::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    for def in &families {
        let fam = t.registry().register(def).unwrap();
        let labels: Vec<&str> = def.labels.iter().map(|_| "x").collect();
        let Metric::Histogram(h) = fam.resolve(&labels).unwrap() else {
            panic!("{} is a histogram", def.name)
        };
        let (offset, b) = source(def);
        let mut draws: Vec<f64> = (0..DRAWS)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                offset + demo_latency(b, 1.0, (rng >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect();
        for &v in &draws {
            h.observe(v);
        }
        draws.sort_by(f64::total_cmp);
        truth.push((def, draws, h));
    }
    let server = t.serve("127.0.0.1:0").unwrap();
    let prometheus = Prometheus::start_with(
        &tools.prometheus,
        "native-accuracy",
        &[Target {
            job: "accuracy",
            addr: server.local_addr(),
            labels: &[],
            honor_labels: false,
        }],
        &[],
        &Options::native_histograms(),
    );
    wait_for(
        &prometheus,
        "every latency family scraped",
        Duration::from_secs(60),
        || {
            families.iter().all(|d| {
                scalar(&prometheus, &format!("sum(histogram_count({}))", d.name))
                    == Some(DRAWS as f64)
            })
        },
    );
    let mut table = String::from(
        "| family | q | true | native | error | classic | error |\n|---|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for (def, draws, h) in &truth {
        let bound = def.native.unwrap().relative_error();
        for q in QUANTILES {
            let exact = draws[((q * DRAWS as f64).ceil() as usize).max(1) - 1];
            let native = scalar(
                &prometheus,
                &format!("histogram_quantile({q}, sum({}))", def.name),
            )
            .expect("a native quantile");
            let classic = scalar(
                &prometheus,
                &format!("histogram_quantile({q}, sum by (le) ({}_bucket))", def.name),
            )
            .expect("a classic quantile");
            let err = |v: f64| (v - exact).abs() / exact;
            writeln!(
                table,
                "| {} | {q} | {exact:.4} | {native:.4} | {:.1}% | {classic:.4} | {:.1}% |",
                def.name,
                100.0 * err(native),
                100.0 * err(classic)
            )
            .unwrap();
            if err(native) > bound {
                failures.push(format!(
                    "{} q{q}: native {native} vs {exact} (bound {bound})",
                    def.name
                ));
            }
        }
        assert_eq!(native_count(h), DRAWS as u64);
    }
    println!("{table}");
    let out = workspace_root().join("target/native-accuracy.md");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &table).unwrap();
    assert!(failures.is_empty(), "{failures:#?}\n{table}");
    // Native series per family: one per label set, against a series per classic bucket.
    for def in &families {
        let classic = scalar(
            &prometheus,
            &format!("count({{__name__=~\"{}_(bucket|sum|count)\"}})", def.name),
        );
        let native = scalar(&prometheus, &format!("count({})", def.name));
        println!(
            "{}: {native:?} native series, {classic:?} classic",
            def.name
        );
        let native = native.expect("native series");
        assert_eq!(classic, Some(native * (def.buckets.len() + 3) as f64));
    }
}

fn native_count(h: &Histogram) -> u64 {
    let (_, buckets) = h.native_buckets().unwrap();
    buckets.iter().map(|b| b.1).sum::<u64>() + h.native_zero_count().unwrap()
}

/// The latency alerts of the native variant (deploy/prometheus/native), by name.
const NATIVE_ALERTS: &[&str] = &[
    "HighRAGQueryLatency",
    "VeryHighRAGQueryLatency",
    "HighLLMInferenceLatency",
    "HighEmbeddingLatency",
    "HighDatabaseQueryLatency",
    "HighVectorSearchLatency",
    "SlowDocumentProcessing",
];

#[test]
fn the_demo_is_stored_native_and_classic_and_the_native_alerts_hold_for_the_degraded_service() {
    let Some(tools) = prometheus3() else { return };
    // A healthy service in process, a degraded one (past every latency threshold) in
    // multi-process mode: its protobuf exposition is the merged directory's.
    let services = common::Services::healthy_and_degraded();
    // The shipped rules with the native latency file in place of the classic one, as a
    // platform switching to native histograms loads them.
    let deploy = workspace_root().join("deploy/prometheus");
    let mut rules: Vec<_> = std::fs::read_dir(deploy.join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .filter(|p| !p.ends_with("tars-latency-alerts.rules.yml"))
        .collect();
    rules.push(deploy.join("native/tars-latency-alerts.native.rules.yml"));
    let labels: Vec<[(&str, &str); 2]> = services
        .targets
        .iter()
        .map(|(job, _)| [("namespace", "tars"), ("service", *job)])
        .collect();
    let targets: Vec<Target<'_>> = services
        .targets
        .iter()
        .zip(&labels)
        .map(|((job, addr), labels)| Target {
            job,
            addr: *addr,
            labels,
            honor_labels: false,
        })
        .collect();
    let prometheus = Prometheus::start_with(
        &tools.prometheus,
        "native-demo",
        &targets,
        &rules,
        &Options::native_histograms(),
    );
    let families: Vec<_> = latency_families();
    wait_for(
        &prometheus,
        "the demo's latency families",
        Duration::from_secs(90),
        || {
            families.iter().all(|d| {
                scalar(
                    &prometheus,
                    &format!("sum(histogram_count({}{{service=\"healthy\"}}))", d.name),
                )
                .is_some_and(|c| c > 0.0)
            })
        },
    );
    for d in &families {
        // One scrape stores both: the same count at any instant.
        let native = scalar(
            &prometheus,
            &format!("sum(histogram_count({}{{service=\"healthy\"}}))", d.name),
        );
        let classic = scalar(
            &prometheus,
            &format!("sum({}_count{{service=\"healthy\"}})", d.name),
        );
        assert_eq!(native, classic, "{}", d.name);
        let q = scalar(
            &prometheus,
            &format!("histogram_quantile(0.95, sum({}_bucket) by (le))", d.name),
        );
        assert!(q.is_some(), "{}: the classic buckets answer", d.name);
    }
    // Every native latency alert holds (pending, or firing) for the degraded service only.
    wait_for(
        &prometheus,
        "the native latency alerts for the degraded service",
        Duration::from_secs(120),
        || {
            let alerts = prometheus
                .get("/api/v1/alerts")
                .and_then(|d| d["alerts"].as_array().cloned())
                .unwrap_or_default();
            let holding = |name: &str, service: &str| {
                alerts
                    .iter()
                    .any(|a| a["labels"]["alertname"] == name && a["labels"]["service"] == service)
            };
            for name in NATIVE_ALERTS {
                assert!(
                    !holding(name, "healthy"),
                    "{name} holds for the healthy service"
                );
            }
            NATIVE_ALERTS.iter().all(|n| holding(n, "degraded"))
        },
    );
    let groups = prometheus
        .get("/api/v1/rules")
        .and_then(|v| v["groups"].as_array().cloned())
        .unwrap_or_default();
    for g in &groups {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
        }
    }
    drop(services);
}
