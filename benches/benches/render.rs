//! Render cost: 1,000 counter series and 100 histograms of 10 buckets, against the peers
//! and a hand-rolled writer.
//!
//! cargo bench -p tars-benches --bench render

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tars_benches::{BOUNDS, hand_rolled_counters};
use tars_telemetry::{FamilyDesc, Format, Metric, MetricKind, Registry};

fn ours(kind: MetricKind, n: usize) -> Registry {
    let reg = Registry::default();
    let fam = reg
        .register_desc(FamilyDesc {
            name: if kind == MetricKind::Counter {
                "requests_total"
            } else {
                "latency_seconds"
            }
            .into(),
            help: "Bench family.".into(),
            kind,
            unit: None,
            labels: vec!["route".into(), "status".into()],
            buckets: BOUNDS.into(),
            native: None,
        })
        .unwrap();
    for i in 0..n {
        match fam.resolve(&[&format!("/route/{i}"), "200"]).unwrap() {
            Metric::Counter(c) => c.inc_by(i as u64),
            Metric::Histogram(h) => (0..20).for_each(|j| h.observe(j as f64 * 0.3)),
            Metric::Gauge(_) => unreachable!(),
        }
    }
    reg
}

fn counters(c: &mut Criterion) {
    const N: usize = 1000;
    let mut g = c.benchmark_group("render_1000_counter_series");
    let reg = ours(MetricKind::Counter, N);
    let mut buf = Vec::new();
    g.bench_function("tars-telemetry: text", |b| {
        b.iter(|| {
            buf.clear();
            reg.render_into(Format::Prometheus, &mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("tars-telemetry: OpenMetrics", |b| {
        b.iter(|| {
            buf.clear();
            reg.render_into(Format::OpenMetrics, &mut buf);
            black_box(buf.len())
        })
    });
    let names: Vec<String> = (0..N)
        .map(|i| format!("requests_total{{route=\"/route/{i}\",status=\"200\"}}"))
        .collect();
    let values: Vec<u64> = (0..N as u64).collect();
    g.bench_function("floor: hand-rolled writer", |b| {
        b.iter(|| {
            buf.clear();
            hand_rolled_counters(&mut buf, &names, &values);
            black_box(buf.len())
        })
    });

    let mut pcr = prometheus_client::registry::Registry::default();
    let fam = prometheus_client::metrics::family::Family::<
        Vec<(String, String)>,
        prometheus_client::metrics::counter::Counter,
    >::default();
    for i in 0..N {
        fam.get_or_create(&vec![
            ("route".into(), format!("/route/{i}")),
            ("status".into(), "200".into()),
        ])
        .inc_by(i as u64);
    }
    pcr.register("requests", "Bench family.", fam);
    let mut s = String::new();
    g.bench_function("prometheus-client", |b| {
        b.iter(|| {
            s.clear();
            prometheus_client::encoding::text::encode(&mut s, &pcr).unwrap();
            black_box(s.len())
        })
    });

    let tr = prometheus::Registry::new();
    let v = prometheus::IntCounterVec::new(
        prometheus::Opts::new("requests_total", "Bench family."),
        &["route", "status"],
    )
    .unwrap();
    for i in 0..N {
        v.with_label_values(&[&format!("/route/{i}"), "200"])
            .inc_by(i as u64);
    }
    tr.register(Box::new(v)).unwrap();
    g.bench_function("prometheus (tikv)", |b| {
        b.iter(|| {
            buf.clear();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &tr.gather(), &mut buf)
                .unwrap();
            black_box(buf.len())
        })
    });

    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = rec.handle();
    metrics::with_local_recorder(&rec, || {
        for i in 0..N {
            metrics::counter!("requests_total", "route" => format!("/route/{i}"), "status" => "200")
                .increment(i as u64);
        }
    });
    g.bench_function("metrics-exporter-prometheus", |b| {
        b.iter(|| black_box(handle.render().len()))
    });
    g.finish();
}

fn histograms(c: &mut Criterion) {
    const N: usize = 100;
    let mut g = c.benchmark_group("render_100_histograms_10_buckets");
    let reg = ours(MetricKind::Histogram, N);
    let mut buf = Vec::new();
    g.bench_function("tars-telemetry: text", |b| {
        b.iter(|| {
            buf.clear();
            reg.render_into(Format::Prometheus, &mut buf);
            black_box(buf.len())
        })
    });

    let mut pcr = prometheus_client::registry::Registry::default();
    let fam = prometheus_client::metrics::family::Family::<
        Vec<(String, String)>,
        prometheus_client::metrics::histogram::Histogram,
    >::new_with_constructor(|| {
        prometheus_client::metrics::histogram::Histogram::new(BOUNDS)
    });
    for i in 0..N {
        let h = fam.get_or_create(&vec![
            ("route".into(), format!("/route/{i}")),
            ("status".into(), "200".into()),
        ]);
        (0..20).for_each(|j| h.observe(j as f64 * 0.3));
    }
    pcr.register("latency_seconds", "Bench family.", fam);
    let mut s = String::new();
    g.bench_function("prometheus-client", |b| {
        b.iter(|| {
            s.clear();
            prometheus_client::encoding::text::encode(&mut s, &pcr).unwrap();
            black_box(s.len())
        })
    });

    let tr = prometheus::Registry::new();
    let v = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("latency_seconds", "Bench family.").buckets(BOUNDS.to_vec()),
        &["route", "status"],
    )
    .unwrap();
    for i in 0..N {
        let h = v.with_label_values(&[&format!("/route/{i}"), "200"]);
        (0..20).for_each(|j| h.observe(j as f64 * 0.3));
    }
    tr.register(Box::new(v)).unwrap();
    g.bench_function("prometheus (tikv)", |b| {
        b.iter(|| {
            buf.clear();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &tr.gather(), &mut buf)
                .unwrap();
            black_box(buf.len())
        })
    });

    let rec = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&BOUNDS)
        .unwrap()
        .build_recorder();
    let handle = rec.handle();
    metrics::with_local_recorder(&rec, || {
        for i in 0..N {
            let h = metrics::histogram!("latency_seconds", "route" => format!("/route/{i}"), "status" => "200");
            (0..20).for_each(|j| h.record(j as f64 * 0.3));
        }
    });
    g.bench_function("metrics-exporter-prometheus", |b| {
        b.iter(|| black_box(handle.render().len()))
    });
    g.finish();
}

/// The catalog, as a busy service fills it, plus 1,000 custom counter series: the text
/// render against the protobuf one (which adds the latency families' native buckets).
fn catalog_protobuf(c: &mut Criterion) {
    use std::time::Duration;
    use tars_telemetry::{Method, Outcome, RagPhase, Telemetry};
    let t = Telemetry::builder().single_process().build().unwrap();
    let d = |ms: u64| Duration::from_micros(300 + ms * 37);
    for i in 0..2000u64 {
        t.rag().record_query(d(i % 500), Outcome::Success, None);
        t.rag().record_phase(RagPhase::Retrieval, d(i % 300), None);
        t.rag().record_phase(RagPhase::Generation, d(i % 900), None);
        t.http()
            .route(["/api/v1/rag/query", "/api/v1/upload", "/health"][(i % 3) as usize])
            .record(
                Method::Get,
                [200, 404, 503][(i % 3) as usize],
                d(i % 200),
                None,
            );
        t.embeddings().record(d(i % 100), 1, None);
        t.vector_store().record_search(d(i % 80), None);
        t.db()
            .record(tars_telemetry::DbOperation::Select, d(i % 40), None);
        t.documents()
            .record(d(i % 5000), Outcome::Success, Some(30), None);
        t.llm_model(["llama3:8b", "mistral:7b"][(i % 2) as usize])
            .unwrap()
            .record(
                &tars_telemetry::LlmUsage {
                    duration: d(i % 2000),
                    ..Default::default()
                },
                Outcome::Success,
                None,
            );
    }
    let custom = t.counter_family("jobs", "Jobs.", &["job"]).unwrap();
    for i in 0..1000 {
        custom.labels(&[&format!("job-{i}")]).unwrap().inc();
    }
    let mut g = c.benchmark_group("render_catalog_plus_1000_custom_series");
    let mut buf = Vec::new();
    for format in [Format::Prometheus, Format::OpenMetrics, Format::Protobuf] {
        t.render_into(format, &mut buf);
        g.bench_function(format!("tars-telemetry: {}", format.name()), |b| {
            b.iter(|| {
                buf.clear();
                t.render_into(format, &mut buf);
                black_box(buf.len())
            })
        });
        buf.clear();
        t.render_into(format, &mut buf);
        println!("{}: {} bytes", format.name(), buf.len());
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = tars_benches::criterion_config();
    targets = counters, histograms, catalog_protobuf
}
criterion_main!(benches);
