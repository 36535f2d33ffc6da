//! ChromaDB: its heartbeat endpoint.

use std::time::{Duration, Instant};

use super::{Findings, Probe, http_get};

/// Probes one ChromaDB server at its base URL (`http://chromadb:8000`).
#[derive(Debug, Clone)]
pub struct ChromaProbe {
    base: String,
}

impl ChromaProbe {
    pub fn new(base_url: &str) -> Self {
        ChromaProbe {
            base: base_url.trim_end_matches('/').to_string(),
        }
    }
}

impl Probe for ChromaProbe {
    fn service(&self) -> &'static str {
        "chromadb"
    }

    fn target(&self) -> &str {
        &self.base
    }

    fn check(&mut self, timeout: Duration) -> Result<Findings, String> {
        // v2 is current; servers before 0.6 only have v1.
        // Both attempts share the one deadline.
        let deadline = Instant::now() + timeout;
        let body = http_get(&format!("{}/api/v2/heartbeat", self.base), deadline)
            .or_else(|_| http_get(&format!("{}/api/v1/heartbeat", self.base), deadline))?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        if v.get("nanosecond heartbeat").is_some() {
            Ok(vec![])
        } else {
            Err(format!("unexpected heartbeat {body:?}"))
        }
    }
}
