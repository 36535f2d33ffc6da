//! The agent: its collectors, its self-metrics, and the collection loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SendError, Sender, TryRecvError};
use std::time::{Duration, Instant};

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
use crate::collector::{CollectError, Collector, NodeFacts};
use crate::probe::chromadb::ChromaProbe;
use crate::probe::ollama::OllamaProbe;
use crate::probe::postgresql::PostgresProbe;
use crate::probe::redis::RedisProbe;
use crate::probe::{Probe, ProbeCollector};
use crate::{Config, Emitter};

type Job = (Box<dyn Collector>, Emitter, NodeFacts);
type Done = (Box<dyn Collector>, NodeFacts, Result<(), CollectError>);

/// The thread a collector runs on, so that a run blocked in the kernel (a FIFO, a hung
/// NFS mount, a stuck driver) costs the agent its deadline and not the whole loop.
struct Worker {
    jobs: Sender<Job>,
    done: Receiver<Done>,
}

impl Worker {
    fn spawn(name: &'static str) -> std::io::Result<Worker> {
        let (jobs, job_rx) = std::sync::mpsc::channel::<Job>();
        let (done_tx, done) = std::sync::mpsc::channel::<Done>();
        std::thread::Builder::new()
            .name(format!("collect-{name}"))
            .spawn(move || {
                for (mut collector, mut emitter, mut facts) in job_rx {
                    let result = run_collector(&mut *collector, &mut emitter, &mut facts);
                    if done_tx.send((collector, facts, result)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Worker { jobs, done })
    }
}

/// One run of a collector; a panic is a failed run, not a lost collector.
fn run_collector(
    collector: &mut dyn Collector,
    emitter: &mut Emitter,
    facts: &mut NodeFacts,
) -> Result<(), CollectError> {
    emitter.begin();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        collector.collect(emitter, facts)
    }))
    .unwrap_or_else(|_| Err(CollectError("the collector panicked".into())));
    emitter.finish();
    result
}

struct Slot {
    name: &'static str,
    /// `None` while a run is in flight on the worker.
    collector: Option<Box<dyn Collector>>,
    emitter: Emitter,
    /// `None` when no thread could be started: the collector then runs inline.
    worker: Option<Worker>,
    /// When the run still in flight started.
    started: Instant,
    up: Option<bool>,
    errors: f64,
}

/// Why a collector's run did not succeed.
enum Failure {
    /// The collector returned an error.
    Failed(CollectError),
    /// The run did not return within the deadline (or is still running).
    Overran(String),
    /// The agent is stopping: the run was left to finish on its own.
    Abandoned,
}

/// The node agent.
pub struct Agent {
    registry: Registry,
    slots: Vec<Slot>,
    own: Emitter,
    node: String,
    ready: Arc<AtomicBool>,
    deadline: Duration,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field(
                "collectors",
                &self.slots.iter().map(|s| s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Agent {
    /// An agent with no collectors yet; each collector's run is bounded by
    /// `config.collector_timeout`.
    pub fn new(config: &Config) -> Self {
        let registry = Registry::default();
        Agent {
            own: Emitter::new(registry.clone()),
            registry,
            slots: Vec::new(),
            node: config.node_name.clone(),
            ready: Arc::new(AtomicBool::new(false)),
            deadline: config.collector_timeout,
            stop: Arc::new(AtomicBool::new(false)),
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
            agent.add(Box::new(GpuCollector::nvml(
                config.gpu_retry,
                pods,
                config.nvml_library.clone(),
            )));
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

    /// Adds a collector; it runs after those added before it, on a thread of its own.
    pub fn add(&mut self, collector: Box<dyn Collector>) {
        let name = collector.name();
        let worker = Worker::spawn(name)
            .inspect_err(|e| {
                tracing::warn!(
                    collector = name,
                    "cannot start a thread ({e}); the collector runs without a deadline"
                );
            })
            .ok();
        self.slots.push(Slot {
            name,
            collector: Some(collector),
            emitter: Emitter::new(self.registry.clone()),
            worker,
            started: Instant::now(),
            up: None,
            errors: 0.0,
        });
    }

    /// The registry the collectors write into.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Set once the first collection has finished.
    pub fn readiness(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    /// Setting this flag stops [`Agent::run`] and abandons any wait on a collector, so
    /// that shutdown never waits on a stuck one.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs every collector once. A collector that does not return within the deadline
    /// is reported down, its series are withdrawn, and it is not run again until its
    /// stuck run returns; the others go on.
    pub fn collect_once(&mut self) {
        let mut facts = NodeFacts::default();
        self.own.begin();
        self.own.set(
            &AGENT_BUILD_INFO,
            &[env!("CARGO_PKG_VERSION"), &self.node],
            1.0,
        );
        for slot in &mut self.slots {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let name = slot.name;
            let start = Instant::now();
            let result = run_slot(slot, &mut facts, self.deadline, &self.stop);
            if matches!(result, Err(Failure::Abandoned)) {
                return;
            }
            let ok = result.is_ok();
            match &result {
                Err(e) => {
                    slot.errors += 1.0;
                    // One line per change of state, not per run: the gpu collector and
                    // probes log their own failures, but not an overrun.
                    let own_log = name == "gpu" && matches!(e, Failure::Failed(_));
                    if slot.up != Some(false) && !own_log {
                        match e {
                            Failure::Failed(e) => {
                                tracing::warn!(collector = name, "collector failed: {e}")
                            }
                            Failure::Overran(e) => tracing::warn!(
                                collector = name,
                                "collector {e}; reported down, its series withdrawn, \
                                 until that run returns"
                            ),
                            Failure::Abandoned => {}
                        }
                    }
                }
                Ok(()) => {
                    if slot.up == Some(false) && name != "gpu" {
                        tracing::info!(collector = name, "collector recovered");
                    }
                }
            }
            slot.up = Some(ok);
            self.own
                .set(&AGENT_COLLECTOR_UP, &[name], f64::from(u8::from(ok)));
            let took = match result {
                Err(Failure::Overran(_)) => slot.started.elapsed(),
                _ => start.elapsed(),
            };
            self.own
                .set(&AGENT_COLLECTOR_DURATION, &[name], took.as_secs_f64());
            self.own.set(&AGENT_COLLECTOR_ERRORS, &[name], slot.errors);
        }
        self.own.finish();
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Collects every `interval` until the [stop flag](Agent::stop_flag) is set.
    pub fn run(&mut self, interval: Duration) {
        while !self.stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            self.collect_once();
            while !self.stop.load(Ordering::Relaxed) {
                let left = interval.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(POLL));
            }
        }
    }

    /// The current exposition, Prometheus text format.
    pub fn render(&self) -> String {
        self.registry.render_string(Format::Prometheus)
    }
}

/// How often a wait checks the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// Runs one collector within `deadline`, on its worker when it has one.
fn run_slot(
    slot: &mut Slot,
    facts: &mut NodeFacts,
    deadline: Duration,
    stop: &AtomicBool,
) -> Result<(), Failure> {
    let Some(worker) = &slot.worker else {
        let collector = slot
            .collector
            .as_mut()
            .expect("inline collectors stay in place");
        return run_collector(&mut **collector, &mut slot.emitter, facts).map_err(Failure::Failed);
    };
    if slot.collector.is_none() {
        // A run that overran earlier: has it returned since? Its late result is stale.
        match worker.done.try_recv() {
            Ok((collector, _, _)) => slot.collector = Some(collector),
            Err(TryRecvError::Empty) => {
                return Err(Failure::Overran(format!(
                    "still running after {:.1?}",
                    slot.started.elapsed()
                )));
            }
            Err(TryRecvError::Disconnected) => {
                return Err(Failure::Overran("thread is gone".into()));
            }
        }
    }
    let collector = slot.collector.take().expect("checked above");
    slot.started = Instant::now();
    if let Err(SendError((collector, _, _))) =
        worker
            .jobs
            .send((collector, slot.emitter.clone(), facts.clone()))
    {
        // The thread is gone (it cannot be, short of an abort): run inline from now on.
        slot.worker = None;
        slot.collector = Some(collector);
        return run_slot(slot, facts, deadline, stop);
    }
    loop {
        let left = deadline.saturating_sub(slot.started.elapsed());
        match worker.done.recv_timeout(left.min(POLL)) {
            Ok((collector, found, result)) => {
                slot.collector = Some(collector);
                *facts = found;
                return result.map_err(Failure::Failed);
            }
            Err(RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Relaxed) {
                    return Err(Failure::Abandoned);
                }
                if left.is_zero() {
                    slot.emitter.withdraw();
                    return Err(Failure::Overran(format!(
                        "did not finish within {deadline:?}"
                    )));
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Failure::Overran("thread is gone".into()));
            }
        }
    }
}
