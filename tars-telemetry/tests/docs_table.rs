//! docs/METRICS.md holds the catalog as a table; this test keeps the two in step.
//! Regenerate with `TARS_BLESS=1 cargo test -p tars-telemetry --test docs_table`.

mod common;

use tars_telemetry::catalog::{self, Merge, MetricDef, MetricKind};

fn kind(k: MetricKind) -> &'static str {
    match k {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Info => "info",
    }
}

fn merge(m: Merge) -> &'static str {
    match m {
        Merge::Sum => "sum",
        Merge::LiveSum => "live sum",
        Merge::Max => "max",
        Merge::Latest => "latest",
        Merge::Union => "union",
    }
}

fn table(defs: &[MetricDef]) -> String {
    let mut out = String::from(
        "| family | type | labels | buckets | workers merge by | help |\n|---|---|---|---|---|---|\n",
    );
    for d in defs {
        let buckets = d
            .buckets
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        // Native buckets beside the classic ones: their schema (docs/NATIVE_HISTOGRAMS.md).
        let buckets = match d.native {
            Some(n) => format!("{buckets}; native, schema {}", n.schema),
            None => buckets,
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            d.name,
            kind(d.kind),
            d.labels.join(", "),
            buckets,
            merge(d.merge),
            d.help.replace('|', "\\|")
        ));
    }
    out
}

/// The byte range between a section's markers.
fn section(doc: &str, marker: &str) -> std::ops::Range<usize> {
    let begin = format!("<!-- {marker}:begin -->\n");
    let end = format!("<!-- {marker}:end -->");
    let s = doc.find(&begin).unwrap_or_else(|| panic!("no {begin}")) + begin.len();
    let e = doc.find(&end).unwrap_or_else(|| panic!("no {end}"));
    s..e
}

#[test]
fn docs_table_matches_the_catalog() {
    let path = common::workspace_root().join("docs/METRICS.md");
    let mut doc = std::fs::read_to_string(&path).unwrap();
    for (marker, defs) in [("library", catalog::LIBRARY), ("agent", catalog::AGENT)] {
        let want = table(defs);
        let range = section(&doc, marker);
        if doc[range.clone()] != want {
            if std::env::var_os("TARS_BLESS").is_some() {
                doc.replace_range(range, &want);
                std::fs::write(&path, &doc).unwrap();
            } else {
                panic!(
                    "docs/METRICS.md ({marker}) is stale; rerun with TARS_BLESS=1. Expected:\n{want}"
                );
            }
        }
    }
}
