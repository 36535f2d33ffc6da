//! The agent: its collectors, its self-metrics, and the collection loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use tars_telemetry::catalog::{
    AGENT_BUILD_INFO, AGENT_COLLECTOR_DURATION, AGENT_COLLECTOR_ERRORS, AGENT_COLLECTOR_UP,
};
use tars_telemetry::{Format, Registry};

use crate::collector::cost::CostCollector;
use crate::collector::cpu::CpuCollector;
use crate::collector::disk::DiskCollector;
use crate::collector::filesystem::FilesystemCollector;
use crate::collector::gpu::{GpuCollector, PodResolver};
use crate::collector::memory::MemoryCollector;
use crate::collector::network::NetworkCollector;
use crate::collector::{Collector, NodeFacts};
use crate::probe::chromadb::ChromaProbe;
use crate::probe::ollama::OllamaProbe;
use crate::probe::postgresql::PostgresProbe;
use crate::probe::redis::RedisProbe;
use crate::probe::{Probe, ProbeCollector};
use crate::{Config, Emitter};

struct Slot {
    collector: Box<dyn Collector>,
    emitter: Emitter,
    up: Option<bool>,
    errors: f64,
}

/// The node agent.
pub struct Agent {
    registry: Registry,
    slots: Vec<Slot>,
    own: Emitter,
    node: String,
    ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field(
                "collectors",
                &self
                    .slots
                    .iter()
                    .map(|s| s.collector.name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Agent {
    /// An agent with no collectors yet.
    pub fn new(config: &Config) -> Self {
        let registry = Registry::default();
        Agent {
            own: Emitter::new(registry.clone()),
            registry,
            slots: Vec::new(),
            node: config.node_name.clone(),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// An agent with the collectors and probes `config` enables.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut agent = Agent::new(config);
        let on = |c: &str| config.collectors.iter().any(|x| x == c);
        let p = &config.procfs;
        if on("cpu") {
            agent.add(Box::new(CpuCollector::new(p)));
        }
        if on("memory") {
            agent.add(Box::new(MemoryCollector::new(p)));
        }
        if on("filesystem") {
            agent.add(Box::new(FilesystemCollector::new(p, &config.rootfs)));
        }
        if on("disk") {
            agent.add(Box::new(DiskCollector::new(p)));
        }
        if on("network") {
            agent.add(Box::new(
                NetworkCollector::new(p, &config.net_ignore).map_err(|e| e.0)?,
            ));
        }
        if on("gpu") {
            let pods = PodResolver::new(p, &config.pod_logs, config.gpu_per_container);
            agent.add(Box::new(GpuCollector::nvml(config.gpu_retry, pods)));
        }
        let pr = &config.probes;
        let mut probes: Vec<Box<dyn Probe>> = Vec::new();
        if let Some(a) = &pr.redis {
            probes.push(Box::new(RedisProbe::new(a, pr.redis_password.clone())));
        }
        if let Some(u) = &pr.postgres {
            probes.push(Box::new(PostgresProbe::new(u)));
        }
        if let Some(u) = &pr.chromadb {
            probes.push(Box::new(ChromaProbe::new(u)));
        }
        if let Some(u) = &pr.ollama {
            probes.push(Box::new(OllamaProbe::new(u)));
        }
        for probe in probes {
            agent.add(Box::new(ProbeCollector::new(probe, config.probe_timeout)));
        }
        // Cost reads what the others found: it runs last.
        if on("cost") {
            agent.add(Box::new(CostCollector {
                prices: config.prices,
            }));
        }
        Ok(agent)
    }

    pub fn add(&mut self, collector: Box<dyn Collector>) {
        self.slots.push(Slot {
            collector,
            emitter: Emitter::new(self.registry.clone()),
            up: None,
            errors: 0.0,
        });
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Set once the first collection has finished.
    pub fn readiness(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    /// Runs every collector once.
    pub fn collect_once(&mut self) {
        let mut facts = NodeFacts::default();
        self.own.begin();
        self.own.set(
            &AGENT_BUILD_INFO,
            &[env!("CARGO_PKG_VERSION"), &self.node],
            1.0,
        );
        for slot in &mut self.slots {
            let name = slot.collector.name();
            let start = Instant::now();
            slot.emitter.begin();
            let result = slot.collector.collect(&mut slot.emitter, &mut facts);
            slot.emitter.finish();
            let ok = result.is_ok();
            if let Err(e) = &result {
                slot.errors += 1.0;
                // One line per change of state, not per run: the gpu collector and probes
                // log their own transitions.
                if slot.up != Some(false) && name != "gpu" {
                    tracing::warn!(collector = name, "collector failed: {e}");
                }
            } else if slot.up == Some(false) && name != "gpu" {
                tracing::info!(collector = name, "collector recovered");
            }
            slot.up = Some(ok);
            self.own
                .set(&AGENT_COLLECTOR_UP, &[name], f64::from(u8::from(ok)));
            self.own.set(
                &AGENT_COLLECTOR_DURATION,
                &[name],
                start.elapsed().as_secs_f64(),
            );
            self.own.set(&AGENT_COLLECTOR_ERRORS, &[name], slot.errors);
        }
        self.own.finish();
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Collects every `interval` until `stop` receives a message or hangs up.
    pub fn run(&mut self, interval: std::time::Duration, stop: &Receiver<()>) {
        loop {
            let started = Instant::now();
            self.collect_once();
            let wait = interval.saturating_sub(started.elapsed());
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    /// The current exposition, Prometheus text format.
    pub fn render(&self) -> String {
        self.registry.render_string(Format::Prometheus)
    }
}
