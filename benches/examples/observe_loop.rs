//! Instructions per histogram observation, counted rather than timed:
//! `valgrind --tool=callgrind target/release/examples/observe_loop {tars|floor|none} 1000000`;
//! the difference between `tars` (or `floor`) and `none`, divided by the count, is the
//! instructions one observation takes.

use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "tars".into());
    let n: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let values: Vec<f64> = (0..1024).map(|i| (i as f64 * 0.0037) % 6.0).collect();
    let ours = tars_telemetry::Histogram::detached(&tars_benches::BOUNDS);
    let floor = tars_benches::RuntimeAtomicBuckets::new(&tars_benches::BOUNDS);
    for i in 0..n {
        let v = black_box(values[i & 1023]);
        match which.as_str() {
            "tars" => ours.observe(v),
            "floor" => floor.observe(v),
            _ => {}
        }
    }
    black_box((ours.count(), &floor));
}
