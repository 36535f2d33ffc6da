//! Exposition checked by real parsers: promtool (Prometheus' own linter) for text 0.0.4,
//! and prometheus_client's reference parsers for text 0.0.4 and OpenMetrics 1.0.

mod common;

use std::process::Command;

use tars_telemetry::{Format, catalog};

#[test]
fn text_format_passes_promtool_lint_with_no_findings() {
    let Some(promtool) = common::promtool() else {
        return;
    };
    let t = common::fed_telemetry();
    let text = t.render_string(Format::Prometheus);
    let (code, findings) = tars_test_support::promtool_check_metrics(&promtool, &text).unwrap();
    assert!(
        code == Some(0) && findings.trim().is_empty(),
        "promtool: {findings}\n{text}"
    );
}

fn parse_with_python(format: &str, body: &str) -> Option<serde_like::Map> {
    let python = common::python_with_prometheus_client()?;
    let dir = std::env::temp_dir().join(format!("tars-expo-{}-{format}", std::process::id()));
    std::fs::write(&dir, body).unwrap();
    let out = Command::new(python)
        .arg(common::workspace_root().join("scripts/check_exposition.py"))
        .arg(format)
        .arg(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&dir);
    assert!(
        out.status.success(),
        "{format} did not parse: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_like::parse(&String::from_utf8(out.stdout).unwrap()))
}

#[test]
fn text_format_parses_with_prometheus_client() {
    let t = common::fed_telemetry();
    let Some(families) = parse_with_python("prometheus", &t.render_string(Format::Prometheus))
    else {
        return;
    };
    for def in catalog::LIBRARY {
        // The text parser names counters without _total, as OpenMetrics does; an info
        // family is a plain gauge in text.
        let name = match def.kind {
            catalog::MetricKind::Info => def.name,
            _ => def.openmetrics_name(),
        };
        let got = families
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let expected_type = match def.kind {
            catalog::MetricKind::Info => "gauge",
            k => k.prometheus_type(),
        };
        assert_eq!(got.ty, expected_type, "{name}");
        assert!(got.samples > 0, "{name} has no samples");
    }
}

#[test]
fn openmetrics_parses_with_prometheus_client_and_carries_exemplars() {
    let t = common::fed_telemetry();
    let body = t.render_string(Format::OpenMetrics);
    assert!(body.ends_with("# EOF\n"));
    let Some(families) = parse_with_python("openmetrics", &body) else {
        return;
    };
    for def in catalog::LIBRARY {
        let name = def.openmetrics_name();
        let got = families
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(got.ty, def.kind.openmetrics_type(), "{name}");
    }
    // The traced RAG query, LLM call and HTTP request left exemplars on buckets and counters.
    for name in [
        "tars_rag_query_duration_seconds",
        "tars_rag_queries",
        "tars_llm_inference_duration_seconds",
        "tars_http_request_duration_seconds",
        "tars_http_requests",
    ] {
        assert!(families[name].exemplars > 0, "{name} has no exemplar");
    }
    assert!(body.contains("trace_id=\"abababababababababababababababab\""));
}

/// A tiny reader for the checker's flat JSON output (no serde dependency for one test).
mod serde_like {
    use std::collections::HashMap;

    pub struct Fam {
        pub ty: String,
        pub samples: usize,
        pub exemplars: usize,
    }
    pub type Map = HashMap<String, Fam>;

    pub fn parse(s: &str) -> Map {
        let mut out = HashMap::new();
        // {"name": {"type": "counter", "samples": 2, "exemplars": 0, "sample_names": [...]}, ...}
        for chunk in s.trim().trim_start_matches('{').split("]}") {
            let chunk = chunk.trim_start_matches([',', ' ', '}']);
            let Some((name, rest)) = chunk.split_once("\": {") else {
                continue;
            };
            let name = name.trim_start_matches('"').to_string();
            let field = |k: &str| -> String {
                let i = rest.find(&format!("\"{k}\": ")).unwrap() + k.len() + 4;
                rest[i..]
                    .split([',', '}'])
                    .next()
                    .unwrap()
                    .trim_matches('"')
                    .to_string()
            };
            out.insert(
                name,
                Fam {
                    ty: field("type"),
                    samples: field("samples").parse().unwrap(),
                    exemplars: field("exemplars").parse().unwrap(),
                },
            );
        }
        out
    }
}
