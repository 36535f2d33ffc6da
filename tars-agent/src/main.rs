//! `tars-agent`: see `tars-agent --help`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use tars_agent::Agent;
use tars_agent::config::{Cli, Config};
use tars_telemetry::MetricsServer;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TARS_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = match Config::from_cli(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tars-agent: {e}");
            std::process::exit(2);
        }
    };
    let mut agent = match Agent::from_config(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tars-agent: {e}");
            std::process::exit(2);
        }
    };
    let server = match MetricsServer::start_with_readiness(
        config.listen.as_str(),
        agent.registry().clone(),
        agent.readiness(),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tars-agent: cannot listen on {}: {e}", config.listen);
            std::process::exit(1);
        }
    };
    tracing::info!(
        "listening on http://{}/metrics, collecting every {:?} (collector timeout {:?}, \
         probe timeout {:?})",
        server.local_addr(),
        config.interval,
        config.collector_timeout,
        config.probe_timeout
    );

    // The signal sets the agent's stop flag: the collection loop and any wait on a
    // collector end within a poll, so a stuck collector never delays shutdown.
    let terminate = agent.stop_flag();
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, terminate.clone()) {
            eprintln!("tars-agent: cannot handle signal {sig}: {e}");
            std::process::exit(1);
        }
    }
    let interval = config.interval;
    let collector = std::thread::Builder::new()
        .name("collect".into())
        .spawn(move || agent.run(interval))
        .expect("spawn the collection thread");
    while !terminate.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("shutting down");
    // A collector thread stuck in the kernel is not joined: exiting ends it.
    let _ = collector.join();
    server.shutdown();
}
