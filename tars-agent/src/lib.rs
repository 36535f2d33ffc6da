//! # tars-agent
//!
//! The node agent of the platform, run as a Kubernetes DaemonSet: GPU metrics through
//! NVML, host metrics from procfs and sysinfo, optional probes of Redis, PostgreSQL,
//! ChromaDB and Ollama, and the node's hourly cost, served on `/metrics`.
//!
//! Collection runs on an interval in a background thread and writes into a
//! tars-telemetry registry; a scrape renders what the last collection left, so it never
//! waits on NVML or a disk. Each collector lives in its own file under `collector/` or
//! `probe/`, behind the [`Collector`] trait.
//!
//! ```
//! use tars_agent::{Agent, Config};
//! use tars_agent::collector::memory::MemoryCollector;
//!
//! let dir = std::env::temp_dir().join("tars-agent-doc");
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("meminfo"), "MemTotal: 1024 kB\nMemAvailable: 512 kB\n").unwrap();
//! let mut agent = Agent::new(&Config::default());
//! agent.add(Box::new(MemoryCollector::new(&dir)));
//! agent.collect_once();
//! assert!(agent.render().contains("tars_node_memory_available_bytes 524288"));
//! ```

pub mod agent;
pub mod collector;
pub mod config;
pub mod emitter;
pub mod probe;

pub use agent::Agent;
pub use collector::{CollectError, Collector, NodeFacts};
pub use config::Config;
pub use emitter::Emitter;
