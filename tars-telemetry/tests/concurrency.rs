//! Several threads recording into one handle lose nothing.

use std::sync::Barrier;
use std::time::Duration;

use tars_telemetry::*;

const THREADS: u64 = 8;
const PER_THREAD: u64 = 50_000;

#[test]
fn no_count_is_lost_across_threads() {
    let t = Telemetry::new();
    let llm = t.llm_model("llama3").unwrap();
    let route = t.http().route("/api/v1/rag/query");
    let barrier = Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                for i in 0..PER_THREAD {
                    t.redis().lookup(true);
                    // 0.25 exactly: the sum stays exact in f64.
                    t.rag().duration().observe(0.25);
                    llm.record(
                        &LlmUsage {
                            duration: Duration::from_millis(i % 7),
                            tokens: TokenUsage {
                                output_tokens: 2,
                                ..Default::default()
                            },
                            ..Default::default()
                        },
                        Outcome::Success,
                        None,
                    );
                    route.record(
                        Method::Get,
                        if i % 2 == 0 { 200 } else { 500 },
                        Duration::ZERO,
                        None,
                    );
                    t.websocket().active().inc();
                    t.websocket().active().dec();
                }
            });
        }
    });
    let total = THREADS * PER_THREAD;
    assert_eq!(t.redis().hits().get(), total);
    let h = t.rag().duration();
    assert_eq!(h.count(), total);
    assert_eq!(h.sum(), 0.25 * total as f64);
    assert_eq!(llm.tokens_generated(), 2 * total);
    assert_eq!(llm.inference_duration().count(), total);
    assert_eq!(route.requests(Method::Get, 200).get(), total / 2);
    assert_eq!(route.requests(Method::Get, 500).get(), total / 2);
    assert_eq!(t.websocket().active().get(), 0.0);
}

#[test]
fn concurrent_resolution_creates_each_series_once() {
    let t = Telemetry::new();
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                barrier.wait();
                for m in 0..50 {
                    t.llm_model(&format!("model-{m}"))
                        .unwrap()
                        .start()
                        .succeed();
                }
            });
        }
    });
    let family = t
        .registry()
        .get("tars_llm_inference_duration_seconds")
        .unwrap();
    assert_eq!(family.series_count(), 50);
    assert_eq!(
        t.llm_model("model-7").unwrap().inference_duration().count(),
        4
    );
}

#[test]
fn native_buckets_lose_nothing_across_threads() {
    let h = Histogram::detached_native(&[0.1, 1.0], NativeBuckets::LATENCY).unwrap();
    let want = Histogram::detached_native(&[0.1, 1.0], NativeBuckets::LATENCY).unwrap();
    let value = |t: u64, i: u64| 1e-4 * (1 + (t * 7919 + i * 104_729) % 50_000) as f64;
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            want.observe(value(t, i));
        }
    }
    let barrier = Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (h, barrier) = (&h, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    h.observe(value(t, i));
                }
            });
        }
    });
    assert_eq!(h.count(), THREADS * PER_THREAD);
    assert_eq!(h.native_buckets(), want.native_buckets());
    assert_eq!(h.native_zero_count(), Some(0));
    assert_eq!(h.bucket_counts(), want.bucket_counts());
}
