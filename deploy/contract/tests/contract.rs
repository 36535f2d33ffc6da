//! The shipped dashboards and rules against the metric catalog: every PromQL expression in
//! deploy/grafana/dashboards, deploy/prometheus/rules and deploy/prometheus/native reads
//! families the catalog defines, with their types and labels (a bare histogram name only
//! where the catalog marks the family native), and every quantile alert on classic buckets
//! compares against a bucket boundary. A renamed family, a dropped label, a re-bucketed
//! histogram or a family no longer native in tars_telemetry::catalog fails these tests
//! until deploy/ follows.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value as Yaml;
use tars_deploy_contract::check::{Checker, Report};
use tars_deploy_contract::sources::{
    self, Dashboard, Group, RuleKind, classic_latency_file, dashboards, deploy_dir,
    grafana_to_promql, label_values, native_groups, prometheus_groups, prometheus_groups_native,
};
use tars_telemetry::catalog;

/// A checker that knows every recording rule, and the problems found while learning them.
fn checker_with_recording_rules(groups: &[Group]) -> (Checker, Vec<String>) {
    let mut checker = Checker::new();
    let mut problems = Vec::new();
    for rule in groups.iter().flat_map(|g| &g.rules) {
        if rule.kind == RuleKind::Record {
            let report = checker.record(&rule.name, &rule.expr);
            problems.extend(
                report
                    .problems
                    .iter()
                    .map(|p| format!("recording rule {}: {p}", rule.name)),
            );
        }
    }
    (checker, problems)
}

fn alert_reports(checker: &Checker, groups: &[Group]) -> BTreeMap<String, Report> {
    groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.kind == RuleKind::Alert)
        .map(|r| (r.name.clone(), checker.check(&r.expr)))
        .collect()
}

/// What the checker finds wrong in each alert of `groups`, named by alert.
fn alert_problems(checker: &Checker, groups: &[Group]) -> Vec<String> {
    alert_reports(checker, groups)
        .into_iter()
        .flat_map(|(alert, report)| {
            report
                .problems
                .into_iter()
                .map(move |p| format!("alert {alert}: {p}"))
        })
        .collect()
}

#[test]
fn every_rule_reads_catalog_families_with_their_types_and_labels() {
    let groups = prometheus_groups();
    let (checker, mut problems) = checker_with_recording_rules(&groups);
    problems.extend(alert_problems(&checker, &groups));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_dashboard_query_reads_catalog_families_with_their_types_and_labels() {
    let checker = Checker::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for d in dashboards() {
        for t in d.targets() {
            let report = checker.check(&grafana_to_promql(&t.expr));
            checked += 1;
            problems.extend(
                report
                    .problems
                    .iter()
                    .map(|p| format!("{} / {} / {}: {p}", d.title(), t.panel, t.ref_id)),
            );
        }
        for v in d.variables().iter().filter(|v| v.kind == "query") {
            let (selector, label) = label_values(&v.query).unwrap_or_else(|| {
                panic!("{}: variable {} is not label_values()", d.title(), v.name)
            });
            let report = checker.check_label_values(&grafana_to_promql(&selector), &label);
            problems.extend(
                report
                    .problems
                    .iter()
                    .map(|p| format!("{} / variable {}: {p}", d.title(), v.name)),
            );
        }
    }
    assert!(checked > 50, "only {checked} dashboard queries found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn quantile_alerts_compare_against_bucket_boundaries_as_the_catalog_says() {
    let groups = prometheus_groups();
    let (checker, _) = checker_with_recording_rules(&groups);
    let reports = alert_reports(&checker, &groups);
    for t in catalog::ALERT_THRESHOLDS {
        let report = reports
            .get(t.alert)
            .unwrap_or_else(|| panic!("no alert named {} in deploy/prometheus/rules", t.alert));
        assert_eq!(
            report.thresholds.len(),
            1,
            "{}: expected one quantile threshold, found {:?}",
            t.alert,
            report.thresholds
        );
        let found = &report.thresholds[0];
        assert_eq!(found.family, t.family, "{}", t.alert);
        assert_eq!(found.quantile, Some(t.quantile), "{}", t.alert);
        assert_eq!(found.value, t.seconds, "{}", t.alert);
        assert_eq!(found.op, ">", "{}", t.alert);
        let def = catalog::find(t.family).unwrap();
        assert!(
            def.buckets.contains(&found.value),
            "{}: not a boundary",
            t.alert
        );
    }
    // Quantile alerts the catalog does not list are checked by the rules test above; make
    // sure the checker found every one of them.
    let with_thresholds: Vec<_> = reports
        .iter()
        .filter(|(_, r)| !r.thresholds.is_empty())
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(
        with_thresholds.len(),
        catalog::ALERT_THRESHOLDS.len() + 1,
        "quantile alerts: {with_thresholds:?}"
    );
    assert!(with_thresholds.contains(&"LowRAGRelevanceScore"));
}

#[test]
fn the_platform_alert_groups_hold_the_contract_alerts() {
    let groups = prometheus_groups();
    let alerts: BTreeMap<&str, Vec<&str>> = groups
        .iter()
        .filter(|g| g.rules.iter().any(|r| r.kind == RuleKind::Alert))
        .map(|g| {
            (
                g.name.as_str(),
                g.rules.iter().map(|r| r.name.as_str()).collect(),
            )
        })
        .collect();
    let expected: &[(&str, &[&str])] = &[
        (
            "tars_latency_alerts",
            &[
                "HighRAGQueryLatency",
                "VeryHighRAGQueryLatency",
                "HighLLMInferenceLatency",
                "HighEmbeddingLatency",
                "HighDatabaseQueryLatency",
                "HighVectorSearchLatency",
                "SlowDocumentProcessing",
            ],
        ),
        (
            "tars_rag_alerts",
            &["HighRAGQueryFailureRate", "LowRAGRelevanceScore"],
        ),
        (
            "tars_llm_alerts",
            &["LowTokenGenerationRate", "LLMServiceDown"],
        ),
        ("tars_embedding_alerts", &["LowEmbeddingCacheHitRate"]),
        (
            "tars_redis_alerts",
            &["LowRedisCacheHitRate", "RedisHighMemoryUsage", "RedisDown"],
        ),
        (
            "tars_database_alerts",
            &["DatabaseConnectionPoolExhausted", "PostgreSQLDown"],
        ),
        ("tars_vectorstore_alerts", &["ChromaDBDown"]),
        (
            "tars_http_alerts",
            &["High5xxErrorRate", "High4xxErrorRate"],
        ),
        (
            "tars_system_alerts",
            &[
                "HighCPUUsage",
                "HighMemoryUsage",
                "HighGPUUtilization",
                "HighGPUTemperature",
            ],
        ),
        (
            "tars_pod_alerts",
            &["HighPodRestartRate", "PodNotReady", "ContainerOOMKilled"],
        ),
        ("tars_document_alerts", &["HighDocumentQueue"]),
        (
            "tars_replication_alerts",
            &["HighReplicationLag", "VeryHighReplicationLag"],
        ),
        (
            "tars_autoscaler_alerts",
            &[
                "ClusterAutoscalerDown",
                "ClusterAutoscalerErrors",
                "ClusterAutoscalerFailedScaleUps",
                "ClusterAutoscalerUnschedulablePods",
                "ClusterNearMaxSize",
            ],
        ),
        (
            "tars_telemetry_alerts",
            &[
                "TarsTelemetrySeriesOverflow",
                "TarsTelemetryInvalidValues",
                "TarsAgentDown",
                "TarsAgentCollectorFailing",
            ],
        ),
        (
            "tars_cost_alerts",
            &[
                "TarsDailyCostOverBudget",
                "TarsMonthlyCostOverBudget",
                "TarsLlmSpendOverBudget",
            ],
        ),
    ];
    let expected: BTreeMap<&str, Vec<&str>> =
        expected.iter().map(|(g, a)| (*g, a.to_vec())).collect();
    assert_eq!(alerts, expected);
}

/// The `for` durations and severities of the metric contract.
#[test]
fn contract_alerts_keep_their_durations() {
    let groups = prometheus_groups();
    let rules: BTreeMap<&str, &sources::Rule> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .map(|r| (r.name.as_str(), r))
        .collect();
    let expected = [
        ("HighRAGQueryLatency", "5m"),
        ("VeryHighRAGQueryLatency", "2m"),
        ("HighRAGQueryFailureRate", "3m"),
        ("HighLLMInferenceLatency", "5m"),
        ("LowTokenGenerationRate", "10m"),
        ("HighEmbeddingLatency", "5m"),
        ("LowEmbeddingCacheHitRate", "10m"),
        ("LowRedisCacheHitRate", "10m"),
        ("RedisHighMemoryUsage", "5m"),
        ("HighDatabaseQueryLatency", "5m"),
        ("DatabaseConnectionPoolExhausted", "3m"),
        ("HighVectorSearchLatency", "5m"),
        ("High5xxErrorRate", "5m"),
        ("High4xxErrorRate", "10m"),
        ("SlowDocumentProcessing", "5m"),
        ("HighDocumentQueue", "10m"),
        ("HighGPUUtilization", "15m"),
        ("HighGPUTemperature", "5m"),
        ("LLMServiceDown", "1m"),
        ("RedisDown", "1m"),
        ("PostgreSQLDown", "1m"),
        ("ChromaDBDown", "1m"),
        ("HighCPUUsage", "10m"),
        ("HighMemoryUsage", "10m"),
        ("HighPodRestartRate", "1m"),
        ("PodNotReady", "5m"),
        ("ContainerOOMKilled", "1m"),
        ("ClusterAutoscalerDown", "5m"),
        ("ClusterAutoscalerFailedScaleUps", "10m"),
        ("ClusterAutoscalerUnschedulablePods", "10m"),
        ("ClusterNearMaxSize", "5m"),
    ];
    for (alert, for_) in expected {
        let rule = rules
            .get(alert)
            .unwrap_or_else(|| panic!("no alert {alert}"));
        assert_eq!(rule.for_.as_deref(), Some(for_), "{alert}");
    }
    // The probes, not `up{job=...}`: Redis and PostgreSQL serve no /metrics of their own.
    for (alert, service) in [
        ("LLMServiceDown", "ollama"),
        ("RedisDown", "redis"),
        ("PostgreSQLDown", "postgresql"),
        ("ChromaDBDown", "chromadb"),
    ] {
        let expr = &rules[alert].expr;
        assert!(
            expr.contains(&format!("tars_probe_up{{service=\"{service}\"}}"))
                && expr.ends_with("== 0"),
            "{alert}: {expr}"
        );
    }
}

#[test]
fn every_alert_has_severity_summary_description_and_a_runbook_section() {
    let runbooks = std::fs::read_to_string(deploy_dir().join("RUNBOOKS.md")).unwrap();
    let anchors: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_lowercase())
        .collect();
    let mut loki =
        sources::load_rules(&deploy_dir().join("loki/rules/tars-log-alerts.yaml")).unwrap();
    let mut groups = prometheus_groups();
    groups.append(&mut loki);
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for r in groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.kind == RuleKind::Alert)
    {
        if !names.insert(r.name.clone()) {
            problems.push(format!("{}: defined twice", r.name));
        }
        match r.labels.get("severity").map(String::as_str) {
            Some("critical" | "warning" | "info") => {}
            other => problems.push(format!("{}: severity {other:?}", r.name)),
        }
        for key in ["summary", "description", "runbook_url"] {
            if r.annotations.get(key).is_none_or(|v| v.trim().is_empty()) {
                problems.push(format!("{}: no {key}", r.name));
            }
        }
        let url = r
            .annotations
            .get("runbook_url")
            .cloned()
            .unwrap_or_default();
        let anchor = url
            .rsplit_once("RUNBOOKS.md#")
            .map(|(_, a)| a)
            .unwrap_or("");
        if anchor != r.name.to_lowercase() || !anchors.contains(anchor) {
            problems.push(format!(
                "{}: runbook_url {url} has no section in deploy/RUNBOOKS.md",
                r.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(names.len(), 46, "alerts: {names:?}");
}

fn yaml_file(path: &std::path::Path) -> Yaml {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// For each alert, the promtool tests hold a case where it fires and one where it stays
/// silent (promtool itself runs them: scripts/check-deploy.sh).
#[test]
fn every_alert_has_promtool_tests_that_fire_and_stay_silent() {
    promtool_tests_fire_and_stay_silent("prometheus/tests", &prometheus_groups());
}

/// The same for the native variant, whose tests (in native histogram notation) are run by
/// Prometheus 3's promtool.
#[test]
fn every_native_alert_has_promtool_tests_that_fire_and_stay_silent() {
    promtool_tests_fire_and_stay_silent("prometheus/native/tests", &native_groups());
}

fn promtool_tests_fire_and_stay_silent(dir: &str, groups: &[Group]) {
    let mut fires: BTreeSet<String> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    let tests = sources::files(&deploy_dir().join(dir), &[".test.yml"]);
    assert!(!tests.is_empty(), "no tests in deploy/{dir}");
    for path in tests {
        let doc = yaml_file(&path);
        for case in doc["tests"].as_sequence().into_iter().flatten() {
            for t in case["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = t["alertname"].as_str().unwrap().to_string();
                match t["exp_alerts"].as_sequence() {
                    Some(a) if !a.is_empty() => {
                        for exp in a {
                            assert!(
                                exp["exp_annotations"]
                                    .as_mapping()
                                    .is_some_and(|m| !m.is_empty()),
                                "{}: {name} fires without expected annotations",
                                path.display()
                            );
                        }
                        fires.insert(name)
                    }
                    _ => silent.insert(name),
                };
            }
        }
    }
    let alerts: BTreeSet<String> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.kind == RuleKind::Alert)
        .map(|r| r.name.clone())
        .collect();
    assert!(!alerts.is_empty());
    let never_fires: Vec<_> = alerts.difference(&fires).collect();
    let never_silent: Vec<_> = alerts.difference(&silent).collect();
    assert!(
        never_fires.is_empty(),
        "no test sees these fire: {never_fires:?}"
    );
    assert!(
        never_silent.is_empty(),
        "no test sees these stay silent: {never_silent:?}"
    );
    let unknown: Vec<_> = fires
        .union(&silent)
        .filter(|a| !alerts.contains(*a))
        .collect();
    assert!(
        unknown.is_empty(),
        "tests of alerts that do not exist: {unknown:?}"
    );
}

#[test]
fn every_catalog_family_has_a_panel() {
    let checker = Checker::new();
    let mut used = BTreeSet::new();
    for d in dashboards() {
        for t in d.targets() {
            used.extend(checker.check(&grafana_to_promql(&t.expr)).families);
        }
    }
    let missing: Vec<_> = catalog::LIBRARY
        .iter()
        .chain(catalog::AGENT)
        .map(|d| d.name)
        .filter(|n| !used.contains(n))
        .collect();
    assert!(missing.is_empty(), "families no panel shows: {missing:?}");
}

fn find_panel<'a>(d: &'a Dashboard, title: &str) -> Option<&'a serde_json::Value> {
    d.panels().into_iter().find(|p| p["title"] == title)
}

#[test]
fn the_platform_dashboard_has_the_seed_panels_and_the_core_panels() {
    let all = dashboards();
    let platform = all
        .iter()
        .find(|d| d.json["uid"] == "tars-platform")
        .expect("tars-platform dashboard");
    for title in [
        "RAG Query Performance",
        "LLM Inference Latency",
        "Embedding Generation",
        "Redis Cache Efficiency",
        "Database Performance",
        "Vector Store Performance",
        "System Resources - CPU",
        "System Resources - Memory",
        "System Resources - GPU",
        "Error Rates",
        "Request Throughput",
        "Pod Restart Count",
        "Document Processing",
        "RAG Phase Durations",
        "RAG Sources & Relevance",
        "LLM Tokens In / Out",
        "LLM Time to First Token",
        "LLM Time per Output Token",
        "Cache Operations",
        "Telemetry Self-Metrics",
    ] {
        assert!(find_panel(platform, title).is_some(), "no panel {title:?}");
    }
    let vars: Vec<String> = platform.variables().into_iter().map(|v| v.name).collect();
    assert_eq!(vars, ["datasource", "namespace", "service"]);
}

#[test]
fn dashboards_are_current_grafana_models_for_file_provisioning() {
    let datasource = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    for d in dashboards() {
        let name = d.path.display().to_string();
        assert!(
            d.json.get("dashboard").is_none(),
            "{name}: HTTP-API envelope"
        );
        assert!(
            d.json["uid"].is_string() && d.json["schemaVersion"].as_u64() >= Some(39),
            "{name}"
        );
        for p in d.panels() {
            let title = p["title"].as_str().unwrap_or("");
            assert!(
                matches!(p["type"].as_str(), Some("timeseries" | "stat")),
                "{name}: {title}: panel type {}",
                p["type"]
            );
            assert!(
                p.get("alert").is_none(),
                "{name}: {title}: panel-level alert"
            );
            assert_eq!(p["datasource"], datasource, "{name}: {title}");
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"], datasource, "{name}: {title}");
            }
        }
        // Latency panels link to traces through exemplars.
        for t in d.targets() {
            if t.panel_type == "timeseries"
                && t.expr.contains("histogram_quantile")
                && t.expr.contains("_seconds_bucket")
            {
                assert!(t.exemplar, "{name}: {} {}: no exemplars", t.panel, t.ref_id);
            }
        }
    }
}

#[test]
fn the_seed_panels_query_what_the_contract_names() {
    let all = dashboards();
    let platform = all
        .iter()
        .find(|d| d.json["uid"] == "tars-platform")
        .unwrap();
    let exprs = |title: &str| -> String {
        platform
            .targets()
            .into_iter()
            .filter(|t| t.panel == title)
            .map(|t| t.expr)
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (title, series) in [
        (
            "RAG Query Performance",
            "tars_rag_query_duration_seconds_bucket",
        ),
        ("LLM Inference Latency", "tars_llm_tokens_generated_total"),
        ("Embedding Generation", "tars_embedding_cache_hits_total"),
        ("Redis Cache Efficiency", "tars_redis_memory_max_bytes"),
        ("Database Performance", "tars_db_connection_pool_max"),
        ("Vector Store Performance", "tars_vector_store_documents"),
        (
            "System Resources - CPU",
            "container_cpu_usage_seconds_total",
        ),
        (
            "System Resources - Memory",
            "container_memory_working_set_bytes",
        ),
        ("System Resources - GPU", "tars_gpu_temperature_celsius"),
        ("Error Rates", "status=~\"5..\""),
        ("Request Throughput", "tars_websocket_messages_total"),
        (
            "Pod Restart Count",
            "kube_pod_container_status_restarts_total",
        ),
        ("Document Processing", "tars_document_queue_length"),
    ] {
        assert!(
            exprs(title).contains(series),
            "{title}: does not query {series}"
        );
    }
    assert!(!exprs("Vector Store Performance").contains("tars_vector_store_documents_total"));
}

/// The native variant, as a Prometheus on native histograms loads it (the other rule files
/// plus deploy/prometheus/native instead of the classic latency file): every expression
/// reads catalog families with their types and labels, and its recording rules read only
/// native histograms, by their bare names.
#[test]
fn the_native_rules_read_native_families_with_their_labels() {
    let groups = prometheus_groups_native();
    let (checker, mut problems) = checker_with_recording_rules(&groups);
    problems.extend(alert_problems(&checker, &groups));
    let plain = Checker::new();
    for rule in native_groups().iter().flat_map(|g| &g.rules) {
        let report = plain.check(&rule.expr);
        for family in &report.families {
            let def = catalog::find(family).unwrap();
            if def.native.is_none() {
                problems.push(format!("{}: `{family}` is not native", rule.name));
            }
            for part in ["_bucket", "_sum", "_count"] {
                if rule.expr.contains(&format!("{family}{part}")) {
                    problems.push(format!("{}: reads the classic `{family}{part}`", rule.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A platform switches by loading one file instead of the other: the native variant holds
/// the same groups, recording rule names and alerts (expression, `for`, labels,
/// annotations) as the classic latency file, each recorded quantile the same φ of the same
/// family with the same labels, and each alert the same thresholds, the contract's
/// (catalog::ALERT_THRESHOLDS) included.
#[test]
fn the_native_variant_is_a_drop_in_for_the_classic_latency_rules() {
    let classic_file = classic_latency_file();
    let classic: Vec<Group> = prometheus_groups()
        .into_iter()
        .filter(|g| g.file == classic_file)
        .collect();
    let native = native_groups();
    assert!(!classic.is_empty(), "{}", classic_file.display());
    let shape = |gs: &[Group]| -> Vec<(String, Vec<(RuleKind, String)>)> {
        gs.iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.rules.iter().map(|r| (r.kind, r.name.clone())).collect(),
                )
            })
            .collect()
    };
    assert_eq!(shape(&classic), shape(&native));

    let (classic_checker, p) = checker_with_recording_rules(&prometheus_groups());
    assert!(p.is_empty(), "{p:?}");
    let (native_checker, p) = checker_with_recording_rules(&prometheus_groups_native());
    assert!(p.is_empty(), "{p:?}");
    let rules =
        |gs: &[Group]| -> Vec<sources::Rule> { gs.iter().flat_map(|g| g.rules.clone()).collect() };
    for (c, n) in rules(&classic).iter().zip(rules(&native).iter()) {
        match c.kind {
            RuleKind::Alert => {
                assert_eq!(
                    (&c.expr, &c.for_, &c.labels, &c.annotations),
                    (&n.expr, &n.for_, &n.labels, &n.annotations),
                    "{}",
                    c.name
                );
                let ct = classic_checker.check(&c.expr).thresholds;
                let nt = native_checker.check(&n.expr).thresholds;
                assert_eq!(ct.len(), 1, "{}: {ct:?}", c.name);
                assert_eq!(nt.len(), 1, "{}: {nt:?}", n.name);
                let (ct, nt) = (&ct[0], &nt[0]);
                assert!(!ct.native && nt.native, "{}", c.name);
                assert_eq!(
                    (ct.family, ct.quantile, &ct.op, ct.value),
                    (nt.family, nt.quantile, &nt.op, nt.value),
                    "{}",
                    c.name
                );
            }
            RuleKind::Record => {
                // The same expression but for the bare family name and the `le` label.
                let family = Checker::new().check(&c.expr).families;
                assert_eq!(family, Checker::new().check(&n.expr).families, "{}", c.name);
                let mut expect = c.expr.replace(", le)", ")");
                for f in &family {
                    expect = expect.replace(&format!("{f}_bucket"), f);
                }
                assert_eq!(n.expr, expect, "{}", c.name);
            }
        }
    }
    // The contract's quantile thresholds hold on the native variant too.
    let native_reports = alert_reports(&native_checker, &native);
    for t in catalog::ALERT_THRESHOLDS {
        let Some(report) = native_reports.get(t.alert) else {
            panic!("{}: not in the native variant", t.alert);
        };
        let found = &report.thresholds[0];
        assert_eq!(
            (found.family, found.quantile, found.value, found.native),
            (t.family, Some(t.quantile), t.seconds, true),
            "{}",
            t.alert
        );
    }
}

/// Every alert built on a latency histogram (a family the catalog marks native) is in the
/// classic latency file, and so has a native variant; no other rule reads one.
#[test]
fn every_latency_alert_is_in_the_file_the_native_variant_replaces() {
    let groups = prometheus_groups();
    let classic_file = classic_latency_file();
    let records: BTreeMap<&str, &sources::Rule> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.kind == RuleKind::Record)
        .map(|r| (r.name.as_str(), r))
        .collect();
    let checker = Checker::new();
    let native_families = |expr: &str| -> bool {
        let mut exprs = vec![expr.to_string()];
        for (name, r) in &records {
            if expr.contains(name) {
                exprs.push(r.expr.clone());
            }
        }
        exprs.iter().any(|e| {
            checker
                .check(e)
                .families
                .iter()
                .any(|f| catalog::find(f).is_some_and(|d| d.native.is_some()))
        })
    };
    let mut misplaced = Vec::new();
    let mut latency = Vec::new();
    for g in &groups {
        for r in &g.rules {
            let reads_native = native_families(&r.expr);
            let in_latency_file = g.file == classic_file;
            if reads_native != in_latency_file {
                misplaced.push(format!("{} ({})", r.name, g.file.display()));
            }
            if in_latency_file && r.kind == RuleKind::Alert {
                latency.push(r.name.as_str());
            }
        }
    }
    assert!(misplaced.is_empty(), "{misplaced:?}");
    assert_eq!(latency.len(), 7, "{latency:?}");
}

/// The native latency dashboard reads every native family of the library, only through
/// its native histogram.
#[test]
fn the_native_latency_dashboard_reads_every_native_family_natively() {
    let all = dashboards();
    let d = all
        .iter()
        .find(|d| d.json["uid"] == "tars-latency-native")
        .expect("tars-latency-native dashboard");
    let checker = Checker::new();
    let mut used = BTreeSet::new();
    let mut problems = Vec::new();
    for t in d.targets() {
        let report = checker.check(&grafana_to_promql(&t.expr));
        for f in &report.families {
            let def = catalog::find(f).unwrap();
            if def.native.is_none() {
                problems.push(format!("{}: `{f}` is not native", t.panel));
            }
            for part in ["_bucket", "_sum", "_count"] {
                if t.expr.contains(&format!("{f}{part}")) {
                    problems.push(format!("{}: reads the classic `{f}{part}`", t.panel));
                }
            }
        }
        used.extend(report.families);
        if t.expr.contains("histogram_quantile") && t.panel_type == "timeseries" && !t.exemplar {
            problems.push(format!("{} {}: no exemplars", t.panel, t.ref_id));
        }
    }
    let missing: Vec<_> = catalog::LIBRARY
        .iter()
        .filter(|def| def.native.is_some() && !used.contains(def.name))
        .map(|def| def.name)
        .collect();
    assert!(missing.is_empty(), "native families not shown: {missing:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
