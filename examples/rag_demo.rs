//! A simulated RAG service that drives every tars-telemetry family and serves /metrics.
//!
//! ```text
//! cargo run --release --example rag_demo -- --listen 127.0.0.1:9464
//! cargo run --release --example rag_demo -- --degraded      # every alert fires
//! ```

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tars_examples::{Workload, parse_args};
use tars_telemetry::Telemetry;

fn main() {
    let (listen, cfg, duration) = match parse_args(std::env::args().skip(1)) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let telemetry = Telemetry::new();
    // Metrics from any crate that uses the `metrics` facade land on the same endpoint.
    if let Err(e) = telemetry.install_recorder() {
        eprintln!("rag_demo: {e}");
    }
    let server = match telemetry.serve(listen.as_str()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rag_demo: cannot serve on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "rag_demo: serving http://{}/metrics at {} requests/s{}",
        server.local_addr(),
        cfg.rate,
        if cfg.latency_scale > 1.0 { " (degraded)" } else { "" }
    );
    let mut workload = match Workload::new(telemetry, cfg) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("rag_demo: {e}");
            std::process::exit(1);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    workload.run(&stop, duration);
    metrics::counter!("rag_demo_runs").increment(1);
    eprintln!("rag_demo: done after {} requests", workload.steps());
    server.shutdown();
}
