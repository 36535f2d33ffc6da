//! Recording cost: tars-telemetry against its peers and the bare-atomic floors.
//!
//! cargo bench -p tars-benches --bench recording

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tars_benches::{AtomicBuckets, BOUNDS, RuntimeAtomicBuckets};
use tars_telemetry::{FamilyDesc, Method, Metric, MetricKind, Registry, Telemetry};

fn otel_provider() -> opentelemetry_sdk::metrics::SdkMeterProvider {
    opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(opentelemetry_sdk::metrics::ManualReader::builder().build())
        .build()
}

fn mep_recorder() -> metrics_exporter_prometheus::PrometheusRecorder {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&BOUNDS)
        .unwrap()
        .build_recorder()
}

fn counter(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_inc");
    let floor = AtomicU64::new(0);
    g.bench_function("floor: AtomicU64::fetch_add", |b| {
        b.iter(|| black_box(&floor).fetch_add(1, Ordering::Relaxed))
    });
    let t = Telemetry::new();
    let ours = t.vector_store().searches().clone();
    g.bench_function("tars-telemetry", |b| b.iter(|| black_box(&ours).inc()));
    let pc: prometheus_client::metrics::counter::Counter = Default::default();
    g.bench_function("prometheus-client", |b| b.iter(|| black_box(&pc).inc()));
    let tikv = prometheus::IntCounter::new("c", "c").unwrap();
    g.bench_function("prometheus (tikv)", |b| b.iter(|| black_box(&tikv).inc()));
    let rec = mep_recorder();
    let mep = metrics::with_local_recorder(&rec, || metrics::counter!("c"));
    g.bench_function("metrics + metrics-exporter-prometheus", |b| {
        b.iter(|| black_box(&mep).increment(1))
    });
    let provider = otel_provider();
    let otel = opentelemetry::metrics::MeterProvider::meter(&provider, "bench")
        .u64_counter("c")
        .build();
    g.bench_function("opentelemetry_sdk", |b| {
        b.iter(|| black_box(&otel).add(1, &[]))
    });
    g.finish();
}

fn histogram(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_observe");
    let values: Vec<f64> = (0..1024).map(|i| (i as f64 * 0.0037) % 6.0).collect();
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 1) & 1023;
        values[i]
    };
    let floor = AtomicBuckets::default();
    g.bench_function("floor: atomic buckets", |b| {
        b.iter(|| floor.observe(black_box(next())))
    });
    let floor_rt = RuntimeAtomicBuckets::new(&BOUNDS);
    g.bench_function("floor: atomic buckets, run-time bounds", |b| {
        b.iter(|| floor_rt.observe(black_box(next())))
    });
    let ours = tars_telemetry::Histogram::detached(&BOUNDS);
    g.bench_function("tars-telemetry", |b| {
        b.iter(|| ours.observe(black_box(next())))
    });
    let pc = prometheus_client::metrics::histogram::Histogram::new(BOUNDS);
    g.bench_function("prometheus-client", |b| {
        b.iter(|| pc.observe(black_box(next())))
    });
    let tikv = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("h", "h").buckets(BOUNDS.to_vec()),
    )
    .unwrap();
    g.bench_function("prometheus (tikv)", |b| {
        b.iter(|| tikv.observe(black_box(next())))
    });
    let rec = mep_recorder();
    let handle = rec.handle();
    let mep = metrics::with_local_recorder(&rec, || metrics::histogram!("h"));
    g.bench_function("metrics + metrics-exporter-prometheus", |b| {
        b.iter(|| mep.record(black_box(next())));
        // Drain the raw samples it keeps, as a scrape would.
        handle.run_upkeep();
    });
    let provider = otel_provider();
    let otel = opentelemetry::metrics::MeterProvider::meter(&provider, "bench")
        .f64_histogram("h")
        .with_boundaries(BOUNDS.to_vec())
        .build();
    g.bench_function("opentelemetry_sdk", |b| {
        b.iter(|| otel.record(black_box(next()), &[]))
    });
    g.finish();
}

/// Two threads observing into one shared histogram: time per observation.
fn contended<F: Fn(f64) + Sync>(iters: u64, observe: F) -> Duration {
    let barrier = std::sync::Barrier::new(2);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..2 {
            let (barrier, observe) = (&barrier, &observe);
            s.spawn(move || {
                barrier.wait();
                for i in 0..iters {
                    observe(((i + t) % 100) as f64 * 0.05);
                }
            });
        }
    });
    // Per observation: two threads did `iters` each.
    start.elapsed() / 2
}

fn histogram_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_observe_2_threads");
    let floor = AtomicBuckets::default();
    g.bench_function("floor: atomic buckets", |b| {
        b.iter_custom(|n| contended(n, |v| floor.observe(v)))
    });
    let ours = tars_telemetry::Histogram::detached(&BOUNDS);
    g.bench_function("tars-telemetry", |b| {
        b.iter_custom(|n| contended(n, |v| ours.observe(v)))
    });
    let pc = prometheus_client::metrics::histogram::Histogram::new(BOUNDS);
    g.bench_function("prometheus-client", |b| {
        b.iter_custom(|n| contended(n, |v| pc.observe(v)))
    });
    let tikv = prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("h", "h").buckets(BOUNDS.to_vec()),
    )
    .unwrap();
    g.bench_function("prometheus (tikv)", |b| {
        b.iter_custom(|n| contended(n, |v| tikv.observe(v)))
    });
    g.finish();
}

/// Latency-like values, 0.5 ms to about 6 s, each octave about equally often.
fn latency_values() -> Vec<f64> {
    (0..1024)
        .map(|i| 0.0005 * 2f64.powf(f64::from(i % 1024) * 13.5 / 1024.0))
        .collect()
}

/// Native buckets beside the classic ones of one family (the HTTP latency's), against the
/// classic histogram alone, native alone, and metrics-exporter-prometheus's native
/// histogram (recorded into its sample queue, folded into its sparse buckets by upkeep, as
/// a scrape does).
fn histogram_native(c: &mut Criterion) {
    use tars_telemetry::catalog::{self, NativeBuckets};
    let mut g = c.benchmark_group("histogram_observe_native");
    let values = latency_values();
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 1) & 1023;
        values[i]
    };
    let bounds = catalog::HTTP_REQUEST_DURATION.buckets;
    let classic = tars_telemetry::Histogram::detached(bounds);
    g.bench_function("tars-telemetry: classic (HTTP latency buckets)", |b| {
        b.iter(|| classic.observe(black_box(next())))
    });
    let both = tars_telemetry::Histogram::detached_native(bounds, NativeBuckets::LATENCY).unwrap();
    g.bench_function(
        "tars-telemetry: classic + native (the latency families)",
        |b| b.iter(|| both.observe(black_box(next()))),
    );
    let native = tars_telemetry::Histogram::detached_native(&[], NativeBuckets::LATENCY).unwrap();
    g.bench_function("tars-telemetry: native only", |b| {
        b.iter(|| native.observe(black_box(next())))
    });
    let config =
        metrics_exporter_prometheus::NativeHistogramConfig::new(2f64.powf(1.0 / 8.0), 160, 1e-6)
            .unwrap();
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_native_histogram_for_metric(
            metrics_exporter_prometheus::Matcher::Full("h".into()),
            config,
        )
        .build_recorder();
    let handle = rec.handle();
    let mep = metrics::with_local_recorder(&rec, || metrics::histogram!("h"));
    g.bench_function("metrics + metrics-exporter-prometheus: native", |b| {
        b.iter_custom(|n| {
            let start = Instant::now();
            for _ in 0..n {
                mep.record(black_box(next()));
            }
            // Fold the queued samples into the native buckets, as a scrape would.
            handle.run_upkeep();
            start.elapsed()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("histogram_observe_native_2_threads");
    let classic = tars_telemetry::Histogram::detached(bounds);
    g.bench_function("tars-telemetry: classic (HTTP latency buckets)", |b| {
        b.iter_custom(|n| contended(n, |v| classic.observe(v)))
    });
    let both = tars_telemetry::Histogram::detached_native(bounds, NativeBuckets::LATENCY).unwrap();
    g.bench_function(
        "tars-telemetry: classic + native (the latency families)",
        |b| b.iter_custom(|n| contended(n, |v| both.observe(v))),
    );
    g.finish();
}

/// Two labels resolved on every call (method and status), then one increment.
fn labels(c: &mut Criterion) {
    let mut g = c.benchmark_group("two_labels_resolved_per_call");
    let t = Telemetry::new();
    let route = t.http().route("/api/v1/rag/query");
    route.requests(Method::Get, 200);
    g.bench_function("tars-telemetry: HttpRoute (enum, status code)", |b| {
        b.iter(|| route.requests(black_box(Method::Get), black_box(200)).inc())
    });
    let reg = Registry::default();
    let fam = reg
        .register_desc(FamilyDesc {
            name: "requests_total".into(),
            help: "h".into(),
            kind: MetricKind::Counter,
            unit: None,
            labels: vec!["method".into(), "status".into()],
            buckets: std::sync::Arc::from([]),
            native: None,
        })
        .unwrap();
    g.bench_function("tars-telemetry: Family::resolve (strings)", |b| {
        b.iter(|| {
            if let Ok(Metric::Counter(c)) = fam.resolve(black_box(&["GET", "200"])) {
                c.inc()
            }
        })
    });
    let tikv =
        prometheus::IntCounterVec::new(prometheus::Opts::new("r", "r"), &["method", "status"])
            .unwrap();
    g.bench_function("prometheus (tikv): with_label_values", |b| {
        b.iter(|| tikv.with_label_values(black_box(&["GET", "200"])).inc())
    });
    let pc = prometheus_client::metrics::family::Family::<
        Vec<(String, String)>,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let key = vec![
        ("method".to_string(), "GET".to_string()),
        ("status".to_string(), "200".to_string()),
    ];
    g.bench_function("prometheus-client: get_or_create", |b| {
        b.iter(|| pc.get_or_create(black_box(&key)).inc())
    });
    let ours_rec = t.recorder();
    g.bench_function("metrics facade into tars-telemetry: counter!", |b| {
        metrics::with_local_recorder(&ours_rec, || {
            b.iter(|| metrics::counter!("r", "method" => "GET", "status" => "200").increment(1))
        })
    });
    let rec = mep_recorder();
    g.bench_function("metrics + metrics-exporter-prometheus: counter!", |b| {
        metrics::with_local_recorder(&rec, || {
            b.iter(|| metrics::counter!("r", "method" => "GET", "status" => "200").increment(1))
        })
    });
    let provider = otel_provider();
    let otel = opentelemetry::metrics::MeterProvider::meter(&provider, "bench")
        .u64_counter("r")
        .build();
    let attrs = [
        opentelemetry::KeyValue::new("method", "GET"),
        opentelemetry::KeyValue::new("status", "200"),
    ];
    g.bench_function("opentelemetry_sdk: add with 2 attributes", |b| {
        b.iter(|| otel.add(1, black_box(&attrs)))
    });
    g.finish();
}

/// A free-form label (a model, a route) looked up by string on every call, as a binding
/// that is handed the string each time does: the handle is interned.
fn interned(c: &mut Criterion) {
    let mut g = c.benchmark_group("interned_lookup_by_string");
    let t = Telemetry::new();
    t.llm_model("llama3:8b").unwrap();
    g.bench_function("tars-telemetry: llm_model (7 families)", |b| {
        b.iter(|| black_box(t.llm_model(black_box("llama3:8b")).unwrap()))
    });
    t.http().route("/api/v1/rag/query");
    g.bench_function("tars-telemetry: http().route", |b| {
        b.iter(|| black_box(t.http().route(black_box("/api/v1/rag/query"))))
    });
    let tikv = prometheus::HistogramVec::new(prometheus::HistogramOpts::new("d", "d"), &["model"])
        .unwrap();
    g.bench_function("prometheus (tikv): with_label_values (1 family)", |b| {
        b.iter(|| black_box(tikv.with_label_values(black_box(&["llama3:8b"]))))
    });
    let pc = prometheus_client::metrics::family::Family::<
        Vec<(String, String)>,
        prometheus_client::metrics::counter::Counter,
    >::default();
    let key = vec![("model".to_string(), "llama3:8b".to_string())];
    g.bench_function("prometheus-client: get_or_create (1 family)", |b| {
        b.iter(|| black_box(pc.get_or_create(black_box(&key)).get()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = tars_benches::criterion_config();
    targets = counter, histogram, histogram_two_threads, histogram_native, labels, interned
}
criterion_main!(benches);
