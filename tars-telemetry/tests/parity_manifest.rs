//! The parity manifest (`bindings/parity.json`) lists every public operation of the core's
//! domain handles, each with its Python and Node call or the reason it has none: an
//! operation added to the core without a decision for both packages fails here.

use std::collections::BTreeSet;
use std::path::Path;

/// The domain handles and stages whose operations the packages offer.
const TYPES: &[&str] = &[
    "RagMetrics",
    "RagQuery",
    "LlmModels",
    "LlmModel",
    "LlmCall",
    "EmbeddingMetrics",
    "VectorStoreMetrics",
    "RedisMetrics",
    "CacheCall",
    "CacheMetrics",
    "DbMetrics",
    "DocumentMetrics",
    "DocumentJob",
    "Timer",
    "HttpMetrics",
    "HttpRoute",
    "HttpRequest",
    "WebSocketMetrics",
    "WebSocketConnection",
    "ErrorMetrics",
    "AppInfo",
    "WebVitalsMetrics",
];

/// `Type::fn` for every `pub fn` in an inherent `impl Type {` block of `src/domain`.
fn core_operations() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut current: Option<&str> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("impl ") {
                current = rest
                    .strip_suffix(" {")
                    .filter(|t| TYPES.contains(t))
                    .and_then(|t| TYPES.iter().copied().find(|x| *x == t));
                continue;
            }
            if line.starts_with('}') {
                current = None;
            }
            if let (Some(t), Some(rest)) = (current, line.strip_prefix("    pub fn ")) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.insert(format!("{t}::{name}"));
            }
        }
    }
    out
}

#[test]
fn every_core_operation_has_a_decision_for_both_packages() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/parity.json");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let ops = manifest["operations"].as_array().unwrap();
    let mut listed = BTreeSet::new();
    for op in ops {
        let core = op["core"].as_str().unwrap().to_string();
        assert!(listed.insert(core.clone()), "{core} listed twice");
        for package in ["python", "node"] {
            let v = &op[package];
            let ok = v.as_str().is_some_and(|s| !s.is_empty())
                || v["absent"].as_str().is_some_and(|s| s.len() > 10);
            assert!(ok, "{core}: {package} needs a call or a reason it has none");
        }
    }
    let core = core_operations();
    assert!(
        core.len() > 80,
        "the scan found only {} operations",
        core.len()
    );
    let missing: Vec<_> = core.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "operations of the core missing from {}: {missing:?}",
        path.display()
    );
    let gone: Vec<_> = listed.difference(&core).collect();
    assert!(
        gone.is_empty(),
        "listed in {} but not in the core: {gone:?}",
        path.display()
    );
}
