//! Cost of one collection of each tars-agent host collector on this machine's real
//! /proc, against sysinfo doing the same reads.
//!
//! cargo bench -p tars-benches --bench agent

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tars_agent::collector::cpu::CpuCollector;
use tars_agent::collector::disk::DiskCollector;
use tars_agent::collector::filesystem::FilesystemCollector;
use tars_agent::collector::memory::MemoryCollector;
use tars_agent::collector::network::{DEFAULT_IGNORE, NetworkCollector};
use tars_agent::{Agent, Collector, Config, Emitter, NodeFacts};

fn run(c: &mut Criterion, name: &str, mut collector: impl Collector) {
    let mut out = Emitter::new(tars_telemetry::Registry::default());
    let mut facts = NodeFacts::default();
    c.bench_function(name, |b| {
        b.iter(|| {
            out.begin();
            collector.collect(&mut out, &mut facts).unwrap();
            out.finish();
        })
    });
}

fn collectors(c: &mut Criterion) {
    run(
        c,
        "collect/cpu (tars-agent, /proc/stat)",
        CpuCollector::new("/proc"),
    );
    run(
        c,
        "collect/memory (tars-agent, /proc/meminfo)",
        MemoryCollector::new("/proc"),
    );
    run(
        c,
        "collect/filesystem (tars-agent, mounts + statvfs)",
        FilesystemCollector::new("/proc", "/"),
    );
    run(
        c,
        "collect/disk (tars-agent, /proc/diskstats)",
        DiskCollector::new("/proc"),
    );
    run(
        c,
        "collect/network (tars-agent, /proc/net/dev)",
        NetworkCollector::new("/proc", DEFAULT_IGNORE).unwrap(),
    );

    let mut disks = sysinfo::Disks::new_with_refreshed_list().unwrap();
    c.bench_function("collect/filesystem (sysinfo Disks::refresh)", |b| {
        b.iter(|| {
            disks.refresh(true);
            black_box((&disks).into_iter().count())
        })
    });
    let mut sys = sysinfo::System::new().unwrap();
    c.bench_function("collect/memory (sysinfo refresh_memory)", |b| {
        b.iter(|| {
            sys.refresh_memory();
            black_box(sys.available_memory())
        })
    });
    c.bench_function("collect/cpu (sysinfo refresh_cpu_all)", |b| {
        b.iter(|| {
            sys.refresh_cpu_all();
            black_box(sys.cpus().len())
        })
    });
    let mut networks = sysinfo::Networks::new_with_refreshed_list().unwrap();
    c.bench_function("collect/network (sysinfo Networks::refresh)", |b| {
        b.iter(|| {
            networks.refresh(true);
            black_box(networks.len())
        })
    });

    let config = Config {
        collectors: ["cpu", "memory", "filesystem", "disk", "network", "cost"]
            .map(String::from)
            .to_vec(),
        ..Config::default()
    };
    let mut agent = Agent::from_config(&config).unwrap();
    c.bench_function("collect/all host collectors + cost (tars-agent)", |b| {
        b.iter(|| agent.collect_once())
    });
    agent.collect_once();
    c.bench_function("render/tars-agent exposition", |b| {
        b.iter(|| black_box(agent.render().len()))
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = collectors
}
criterion_main!(benches);
