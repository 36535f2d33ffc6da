//! Serves the merged /metrics of a multi-process directory from a process with no series
//! of its own: a sidecar container beside workers that do not serve /metrics themselves.
//!
//! ```text
//! TARS_TELEMETRY_MULTIPROC_DIR=/run/tars/metrics \
//!   cargo run --release --example metrics_sidecar -- --listen 0.0.0.0:9464
//! ```
//!
//! It joins the directory as a worker without series, so when it starts first (a pod
//! starting) it clears what a previous run left, as any first worker does. SIGTERM or
//! SIGINT stops it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tars_telemetry::multiproc::MULTIPROC_DIR_ENV;
use tars_telemetry::{MetricsServer, Registry, RegistryConfig};

fn main() {
    let mut listen = "127.0.0.1:9464".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v,
            _ => {
                eprintln!(
                    "usage: metrics_sidecar [--listen ADDR]  (directory: ${MULTIPROC_DIR_ENV})"
                );
                std::process::exit(2);
            }
        }
    }
    let Some(dir) = std::env::var_os(MULTIPROC_DIR_ENV).filter(|d| !d.is_empty()) else {
        eprintln!("metrics_sidecar: set {MULTIPROC_DIR_ENV} to the workers' directory");
        std::process::exit(2);
    };
    let registry = match Registry::new_multiprocess(RegistryConfig::default(), dir.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("metrics_sidecar: {e}");
            std::process::exit(1);
        }
    };
    let server = match MetricsServer::start(&listen, registry) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("metrics_sidecar: serving on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("{{\"listening\":\"{}\"}}", server.local_addr());
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).expect("installing a signal handler");
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.shutdown();
}
