//! Probes of the services the platform depends on. Redis and PostgreSQL serve no
//! /metrics of their own, so something must look at them for the RedisDown and
//! PostgreSQLDown alerts to have a series; ChromaDB and Ollama get the same treatment.
//!
//! Every probe sets `tars_probe_up{service, target}` (1 or 0) and
//! `tars_probe_duration_seconds`, plus what the service tells about itself. A failed
//! probe is data (up 0), not a collector error.
//!
//! A probe's `timeout` is one deadline for all of it (connect, query, reply), however
//! slowly the peer answers, and a probe buffers at most [`MAX_REPLY_BYTES`] of what the
//! peer sends, whatever size it announces: a stuck or hostile service costs one deadline
//! per collection and one log line per change of state.

pub mod chromadb;
pub mod ollama;
pub mod postgresql;
pub mod redis;

use std::time::{Duration, Instant};

use tars_telemetry::catalog::{PROBE_DURATION, PROBE_UP};

use crate::Emitter;
use crate::collector::{CollectError, Collector, NodeFacts};

/// The most a probe reads from a peer in one check: far above any honest answer
/// (`INFO memory` is about 2 KB, Ollama's model list about 1 KB per model).
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// What a probe found beyond up/down: (family, extra label values, value).
pub type Findings = Vec<(
    &'static tars_telemetry::catalog::MetricDef,
    Vec<String>,
    f64,
)>;

/// One service check.
pub trait Probe: Send {
    /// The `service` label.
    fn service(&self) -> &'static str;
    /// The `target` label (never a password).
    fn target(&self) -> &str;
    /// Checks the service, taking at most about `timeout` in all.
    fn check(&mut self, timeout: Duration) -> Result<Findings, String>;
}

/// Runs one probe as a collector.
pub struct ProbeCollector {
    probe: Box<dyn Probe>,
    timeout: Duration,
    last_error: Option<String>,
}

impl std::fmt::Debug for ProbeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeCollector")
            .field("service", &self.probe.service())
            .field("target", &self.probe.target())
            .finish()
    }
}

impl ProbeCollector {
    pub fn new(probe: Box<dyn Probe>, timeout: Duration) -> Self {
        ProbeCollector {
            probe,
            timeout,
            last_error: None,
        }
    }
}

impl Collector for ProbeCollector {
    fn name(&self) -> &'static str {
        self.probe.service()
    }

    fn collect(&mut self, out: &mut Emitter, _: &mut NodeFacts) -> Result<(), CollectError> {
        let (service, target) = (self.probe.service(), self.probe.target().to_string());
        let start = Instant::now();
        let result = self.probe.check(self.timeout);
        out.set(
            &PROBE_DURATION,
            &[service, &target],
            start.elapsed().as_secs_f64(),
        );
        match result {
            Ok(findings) => {
                out.set(&PROBE_UP, &[service, &target], 1.0);
                for (def, labels, v) in findings {
                    let l: Vec<&str> = labels.iter().map(String::as_str).collect();
                    out.set(def, &l, v);
                }
                if self.last_error.take().is_some() {
                    tracing::info!(service, target, "probe: reachable again");
                }
            }
            Err(e) => {
                out.set(&PROBE_UP, &[service, &target], 0.0);
                if self.last_error.as_ref() != Some(&e) {
                    tracing::warn!(service, target, "probe: down ({e})");
                    self.last_error = Some(e);
                }
            }
        }
        Ok(())
    }
}

/// A blocking HTTP GET finished by `deadline`, reading at most [`MAX_REPLY_BYTES`] of
/// body; returns the body of a 2xx answer.
pub(crate) fn http_get(url: &str, deadline: Instant) -> Result<String, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("GET {url}: no time left"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(left))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES as u64)
        .read_to_string()
        .map_err(|e| format!("GET {url}: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("GET {url}: HTTP {}", status.as_u16()))
    }
}
