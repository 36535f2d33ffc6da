//! What the live tests share: simulated services serving /metrics on 127.0.0.1, and a
//! real Prometheus server (Debian's `prometheus` package) scraping them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tars_examples::{DemoConfig, Workload};
use tars_telemetry::Telemetry;

/// The `prometheus` binary (a recorded skip outside CI when it is missing).
pub fn prometheus_binary() -> Option<PathBuf> {
    tars_test_support::tool("prometheus", &[])
}

pub use tars_test_support::prometheus::Prometheus;
use tars_test_support::prometheus::Target;

/// Simulated RAG services, one per name, each serving /metrics on its own port and
/// running until dropped (or three minutes at most).
pub struct Services {
    pub targets: Vec<(&'static str, SocketAddr)>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    dirs: Vec<PathBuf>,
}

/// How a simulated service keeps its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In process.
    InProcess,
    /// In a multi-process directory of its own, beside a FIFO named like a worker's file
    /// (an operator's leftover): every render skips it and counts the skip.
    MultiprocessBesideFifo,
}

impl Services {
    /// A healthy service (job and service `healthy`) and a degraded one, past every
    /// threshold of the library's alerts (`degraded`), at 100 requests per second. The
    /// degraded one runs in multi-process mode beside a hostile file.
    pub fn healthy_and_degraded() -> Self {
        Services::start(vec![
            // No random 5xx in the healthy service: at test scale a few would cross 0.5 %.
            (
                "healthy",
                DemoConfig {
                    rate: 100.0,
                    failure_rate: 0.0,
                    ..DemoConfig::default()
                },
                Storage::InProcess,
            ),
            (
                "degraded",
                DemoConfig {
                    rate: 100.0,
                    ..DemoConfig::degraded()
                },
                Storage::MultiprocessBesideFifo,
            ),
        ])
    }

    pub fn start(services: Vec<(&'static str, DemoConfig, Storage)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut targets = Vec::new();
        let mut workers = Vec::new();
        let mut dirs = Vec::new();
        for (name, cfg, storage) in services {
            let t = match storage {
                Storage::InProcess => Telemetry::builder().single_process().build().unwrap(),
                Storage::MultiprocessBesideFifo => {
                    let dir = std::env::temp_dir()
                        .join(format!("tars-live-{name}-{}", std::process::id()));
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::create_dir_all(&dir).unwrap();
                    let fifo =
                        std::ffi::CString::new(dir.join("worker-1-1.tars").to_str().unwrap())
                            .unwrap();
                    // SAFETY: a valid path.
                    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
                    let t = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
                    dirs.push(dir);
                    t
                }
            };
            let server = t.serve("127.0.0.1:0").unwrap();
            targets.push((name, server.local_addr()));
            let stop = stop.clone();
            workers.push(std::thread::spawn(move || {
                let mut w = Workload::new(t, cfg).unwrap();
                w.run(&stop, Some(Duration::from_secs(180)));
                drop(server);
            }));
        }
        Services {
            targets,
            stop,
            workers,
            dirs,
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A Prometheus server on 127.0.0.1 scraping `targets` every second, each as a job of its
/// name with `namespace="tars"` and `service=<name>` target labels (as the ServiceMonitor
/// sets them in a cluster), evaluating `rule_files` every second.
pub fn start_prometheus(
    binary: &Path,
    name: &str,
    targets: &[(&str, SocketAddr)],
    rule_files: &[PathBuf],
) -> Prometheus {
    let labels: Vec<[(&str, &str); 2]> = targets
        .iter()
        .map(|(job, _)| [("namespace", "tars"), ("service", *job)])
        .collect();
    let targets: Vec<Target<'_>> = targets
        .iter()
        .zip(&labels)
        .map(|((job, addr), labels)| Target {
            job,
            addr: *addr,
            labels,
            honor_labels: false,
        })
        .collect();
    Prometheus::start(binary, name, &targets, rule_files)
}
