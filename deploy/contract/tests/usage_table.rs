//! docs/METRICS.md's usage table: for every family of the catalog, what records it (the
//! core's handle, the Python and Node calls), the shipped dashboard panels that query it and
//! the alerts that read it (directly or through a recording rule), with their runbooks.
//! Regenerate with `TARS_BLESS=1 cargo test -p tars-deploy-contract --test usage_table`.

use std::collections::{BTreeMap, BTreeSet};

use tars_deploy_contract::sources::{RuleKind, dashboards, deploy_dir, prometheus_groups};
use tars_telemetry::catalog::{self, Domain, MetricDef};

/// (the core's handle, the Python package's, the Node package's) of a domain.
fn recorded_by(d: Domain) -> (&'static str, &'static str, &'static str) {
    match d {
        Domain::Rag => ("`Telemetry::rag()`", "`tel.rag`", "`tel.rag`"),
        Domain::Llm => ("`Telemetry::llm_model(m)`", "`tel.llm(model)`", "`tel.llm`"),
        Domain::Embedding => (
            "`Telemetry::embeddings()`",
            "`tel.embeddings`",
            "`tel.embeddings`",
        ),
        Domain::VectorStore => (
            "`Telemetry::vector_store()`",
            "`tel.vector_store`",
            "`tel.vectorStore`",
        ),
        Domain::Redis => ("`Telemetry::redis()`", "`tel.redis`", "`tel.redis`"),
        Domain::Cache => (
            "`Telemetry::cache()`",
            "`tel.cache`, `tel.redis`",
            "`tel.cache`, `tel.redis`",
        ),
        Domain::Database => ("`Telemetry::db()`", "`tel.db`", "`tel.db`"),
        Domain::Http => (
            "`Telemetry::http()`",
            "`asgi.TelemetryMiddleware`",
            "`expressMiddleware`, `fastifyTelemetry`, `tel.http`",
        ),
        Domain::WebSocket => (
            "`Telemetry::websocket()`",
            "`tel.websocket`",
            "`tel.websocket`",
        ),
        Domain::Documents => (
            "`Telemetry::documents()`",
            "`tel.documents`",
            "`tel.documents`",
        ),
        Domain::Errors => (
            "`Telemetry::errors()`",
            "`tel.errors.record`",
            "`tel.recordError`",
        ),
        Domain::App => (
            "`Telemetry::app_info()`",
            "`tel.set_app_info`",
            "`tel.setAppInfo`",
        ),
        Domain::Browser => (
            "`Telemetry::web_vitals()`",
            "`asgi.web_vitals_app`, `tel.web_vitals`",
            "`webVitalsHandler`, `tel.webVitals`",
        ),
        Domain::SelfTelemetry => ("the library itself", "(the same)", "(the same)"),
        Domain::Gpu | Domain::Host | Domain::Probe | Domain::Agent => ("tars-agent", "-", "-"),
    }
}

/// The identifiers of a PromQL expression.
fn words(expr: &str) -> BTreeSet<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| !w.is_empty())
        .collect()
}

fn uses(expr_words: &BTreeSet<&str>, def: &MetricDef) -> bool {
    def.sample_names()
        .iter()
        .any(|s| expr_words.contains(s.as_str()))
}

fn table(defs: &[MetricDef]) -> String {
    // Panels: "dashboard: panel" per family.
    let mut panels: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for d in dashboards() {
        let title = d.json["title"].as_str().unwrap_or("").to_string();
        for t in d.targets() {
            let w = words(&t.expr);
            for def in defs.iter().filter(|def| uses(&w, def)) {
                panels
                    .entry(def.name)
                    .or_default()
                    .insert(format!("{title}: {}", t.panel));
            }
        }
    }
    // Alerts: the families an alert reads, through its recording rules too.
    let groups = prometheus_groups();
    let records: BTreeMap<String, String> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.kind == RuleKind::Record)
        .map(|r| (r.name.clone(), r.expr.clone()))
        .collect();
    let runbooks = std::fs::read_to_string(deploy_dir().join("RUNBOOKS.md")).unwrap_or_default();
    let mut alerts: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.kind == RuleKind::Alert)
    {
        let mut exprs = vec![r.expr.clone()];
        for w in words(&r.expr) {
            if let Some(e) = records.get(w) {
                exprs.push(e.clone());
            }
        }
        let all: String = exprs.join(" ");
        let w = words(&all);
        let cell = if runbooks.contains(&format!("\n## {}\n", r.name)) {
            format!(
                "[{}](../deploy/RUNBOOKS.md#{})",
                r.name,
                r.name.to_lowercase()
            )
        } else {
            r.name.clone()
        };
        for def in defs.iter().filter(|def| uses(&w, def)) {
            alerts.entry(def.name).or_default().insert(cell.clone());
        }
    }
    let mut out = String::from(
        "| family | recorded by (core) | Python | Node | dashboard panels | alerts (runbook) |\n|---|---|---|---|---|---|\n",
    );
    let join = |s: Option<&BTreeSet<String>>| {
        s.map(|s| s.iter().cloned().collect::<Vec<_>>().join("; "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    for def in defs {
        let (core, py, node) = recorded_by(def.domain);
        out.push_str(&format!(
            "| `{}` | {core} | {py} | {node} | {} | {} |\n",
            def.name,
            join(panels.get(def.name)).replace('|', "\\|"),
            join(alerts.get(def.name)),
        ));
    }
    out
}

#[test]
fn usage_table_matches_the_catalog_and_the_deploy_files() {
    let path = deploy_dir().join("../docs/METRICS.md");
    let mut doc = std::fs::read_to_string(&path).unwrap();
    let defs: Vec<MetricDef> = catalog::LIBRARY
        .iter()
        .chain(catalog::AGENT)
        .copied()
        .collect();
    let want = table(&defs);
    let begin = "<!-- usage:begin -->\n";
    let end = "<!-- usage:end -->";
    let s = doc
        .find(begin)
        .expect("docs/METRICS.md has no usage section")
        + begin.len();
    let e = doc
        .find(end)
        .expect("docs/METRICS.md has no usage section end");
    if doc[s..e] != want {
        if std::env::var_os("TARS_BLESS").is_some() {
            doc.replace_range(s..e, &want);
            std::fs::write(&path, &doc).unwrap();
        } else {
            panic!("docs/METRICS.md (usage) is stale; rerun with TARS_BLESS=1. Expected:\n{want}");
        }
    }
    // Every family the dashboards show appears with a panel.
    assert!(
        want.lines().filter(|l| l.contains("TARS")).count() > 40,
        "{want}"
    );
}
