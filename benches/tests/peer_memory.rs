//! Memory held between scrapes by histograms: tars-telemetry against
//! metrics-exporter-prometheus, which stores every raw sample until the next render.
//! The numbers are quoted in docs/BENCHMARKS.md:
//! `cargo test -p tars-benches --test peer_memory -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Tracking;

// Bytes live by this thread's count: the test harness's other threads allocate too, and
// must not show up as growth of what is measured here.
thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + n));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

const SAMPLES: usize = 1_000_000;

fn growth(f: impl FnOnce()) -> isize {
    let before = LIVE.with(Cell::get);
    f();
    LIVE.with(Cell::get) - before
}

#[test]
fn histogram_memory_between_scrapes() {
    let bounds = tars_benches::BOUNDS;

    let ours = tars_telemetry::Histogram::detached(&bounds);
    let ours_growth = growth(|| (0..SAMPLES).for_each(|i| ours.observe((i % 100) as f64 * 0.05)));

    let rec = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&bounds)
        .unwrap()
        .build_recorder();
    let handle = rec.handle();
    let h = metrics::with_local_recorder(&rec, || metrics::histogram!("latency_seconds"));
    let _ = handle.render();
    let mep_growth = growth(|| (0..SAMPLES).for_each(|i| h.record((i % 100) as f64 * 0.05)));
    let after_render = growth(|| {
        let _ = handle.render();
    });

    println!(
        "{SAMPLES} observations between two scrapes: tars-telemetry +{ours_growth} bytes; \
         metrics-exporter-prometheus +{mep_growth} bytes ({:.1} bytes/sample), {after_render} bytes after its render",
        mep_growth as f64 / SAMPLES as f64
    );
    assert_eq!(ours_growth, 0, "tars-telemetry histograms hold no samples");
    assert!(
        mep_growth > (SAMPLES as isize) * 4,
        "metrics-exporter-prometheus no longer buffers raw samples: update docs/BENCHMARKS.md"
    );
}
