//! Multi-process mode: recording into a worker's shared file against recording in
//! process, the merged render of 4 and 8 workers of 1,000 series each, and 2,000 dead
//! workers' files folded into the archive at one render.
//!
//! cargo bench -p tars-benches --bench multiproc
//!
//! The "workers" of the render benches are telemetries of this process, each with a file
//! of its own and its own lock on it: to the merge they are live workers like any other.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use tars_telemetry::multiproc::MultiprocessDir;
use tars_telemetry::{Format, Telemetry};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tars-bench-mp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn record(c: &mut Criterion) {
    let mut g = c.benchmark_group("multiproc_record");
    let shared_dir = dir("record");
    let local = Telemetry::builder().single_process().build().unwrap();
    let shared = Telemetry::builder()
        .multiprocess_dir(&shared_dir)
        .build()
        .unwrap();
    for (name, t) in [("in process", &local), ("shared file", &shared)] {
        let counter = t
            .counter_family("jobs", "Jobs.", &["kind"])
            .unwrap()
            .labels(&["ingest"])
            .unwrap();
        let histogram = t
            .histogram_family("job_seconds", "Job time.", &["kind"], &tars_benches::BOUNDS)
            .unwrap()
            .labels(&["ingest"])
            .unwrap();
        g.bench_function(format!("counter inc: {name}"), |b| b.iter(|| counter.inc()));
        let mut v = 0.0;
        g.bench_function(format!("histogram observe: {name}"), |b| {
            b.iter(|| {
                v = if v > 2.0 { 0.0 } else { v + 0.013 };
                histogram.observe(black_box(v))
            })
        });
    }
    g.finish();
    drop(shared);
    let _ = std::fs::remove_dir_all(&shared_dir);
}

/// `workers` telemetries sharing one directory, each with 1,000 series of its own family
/// besides the catalog's.
fn workers(name: &str, workers: usize) -> (PathBuf, Vec<Telemetry>) {
    let d = dir(name);
    let ts: Vec<Telemetry> = (0..workers)
        .map(|w| {
            let t = Telemetry::builder().multiprocess_dir(&d).build().unwrap();
            let f = t
                .counter_family("requests", "Requests.", &["route", "status"])
                .unwrap();
            for i in 0..1000 {
                f.labels(&[&format!("/route/{i}"), "200"])
                    .unwrap()
                    .inc_by((i + w) as f64);
            }
            t
        })
        .collect();
    (d, ts)
}

fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("multiproc_render");
    for n in [1, 4, 8] {
        let (d, ts) = workers(&format!("render{n}"), n);
        let view = MultiprocessDir::new(&d);
        let mut buf = Vec::new();
        view.render_into(Format::Prometheus, &mut buf).unwrap();
        let series = String::from_utf8_lossy(&buf)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        eprintln!("{n} worker(s): {series} merged series, {} bytes", buf.len());
        g.bench_function(format!("{n} worker(s) x 1000 series: merged text"), |b| {
            b.iter(|| {
                buf.clear();
                view.render_into(Format::Prometheus, &mut buf).unwrap();
                black_box(buf.len())
            })
        });
        if n == 4 {
            // The same series in one process's registry: what the merge costs on top.
            let single = Telemetry::builder().single_process().build().unwrap();
            let f = single
                .counter_family("requests", "Requests.", &["route", "status"])
                .unwrap();
            for i in 0..1000 {
                f.labels(&[&format!("/route/{i}"), "200"]).unwrap().inc();
            }
            g.bench_function("1 process x 1000 series: in-process text", |b| {
                b.iter(|| {
                    buf.clear();
                    single.render_into(Format::Prometheus, &mut buf);
                    black_box(buf.len())
                })
            });
        }
        drop(ts);
        let _ = std::fs::remove_dir_all(&d);
    }
    g.finish();
}

/// A dead worker's file as a real worker leaves it: the catalog's series and `own` of its
/// own, as far as published (a copy holds no lock: to a reader, its worker is gone).
fn dead_worker_file(own: usize) -> Vec<u8> {
    let d = dir("fold-template");
    let t = Telemetry::builder().multiprocess_dir(&d).build().unwrap();
    let f = t
        .counter_family("requests", "Requests.", &["route", "status"])
        .unwrap();
    for i in 0..own {
        f.labels(&[&format!("/route/{i}"), "200"]).unwrap().inc();
    }
    let ts = vec![t];
    let path = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("worker-")
        })
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let committed = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    drop(ts);
    let _ = std::fs::remove_dir_all(&d);
    bytes[..committed].to_vec()
}

fn fold(c: &mut Criterion) {
    const DEAD: usize = 2000;
    let mut g = c.benchmark_group("multiproc_fold");
    g.sample_size(10);
    // On a tmpfs where there is one (as an emptyDir of medium Memory): the setup writes
    // DEAD copies before every run.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!("tars-bench-mp-fold-{}", std::process::id()));
    let view = MultiprocessDir::new(&d);
    let mut buf = Vec::new();
    for (own, what) in [
        (0, "the catalog's series"),
        (1000, "the catalog's + 1,000 series"),
    ] {
        let template = dead_worker_file(own);
        eprintln!(
            "{DEAD} dead workers' files of {} bytes each ({what}), in {}",
            template.len(),
            base.display()
        );
        g.bench_function(
            format!("{DEAD} dead workers x {what}: folded, then rendered"),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = std::time::Duration::ZERO;
                    for _ in 0..iters {
                        let _ = std::fs::remove_dir_all(&d);
                        std::fs::create_dir_all(&d).unwrap();
                        for i in 0..DEAD {
                            std::fs::write(
                                d.join(format!("worker-{}-1.tars", 100_000 + i)),
                                &template,
                            )
                            .unwrap();
                        }
                        buf.clear();
                        let start = std::time::Instant::now();
                        view.render_into(Format::Prometheus, &mut buf).unwrap();
                        total += start.elapsed();
                        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "all folded");
                    }
                    total
                })
            },
        );
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&d);
}

criterion_group! {
    name = benches;
    config = tars_benches::criterion_config();
    targets = record, render, fold
}
criterion_main!(benches);
