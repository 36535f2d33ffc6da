//! Ollama: the list of available models.

use std::time::{Duration, Instant};

use tars_telemetry::catalog::OLLAMA_MODELS;

use super::{Findings, Probe, http_get};

/// Probes one Ollama server at its base URL (`http://ollama:11434`).
#[derive(Debug, Clone)]
pub struct OllamaProbe {
    base: String,
}

impl OllamaProbe {
    pub fn new(base_url: &str) -> Self {
        OllamaProbe {
            base: base_url.trim_end_matches('/').to_string(),
        }
    }
}

impl Probe for OllamaProbe {
    fn service(&self) -> &'static str {
        "ollama"
    }

    fn target(&self) -> &str {
        &self.base
    }

    fn check(&mut self, timeout: Duration) -> Result<Findings, String> {
        let body = http_get(&format!("{}/api/tags", self.base), Instant::now() + timeout)?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let models = v
            .get("models")
            .and_then(|m| m.as_array())
            .ok_or_else(|| format!("no model list in {body:?}"))?;
        Ok(vec![(
            &OLLAMA_MODELS,
            vec![self.base.clone()],
            models.len() as f64,
        )])
    }
}
