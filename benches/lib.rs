//! Shared set-up of the benches: the peers, built the same way in every bench.

/// The criterion settings of the recording and render benches (docs/BENCHMARKS.md).
pub fn criterion_config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(30)
}

/// Bucket bounds used by every histogram bench (10 bounds).
pub const BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The floor for histograms: a plain array of atomic buckets and an atomic sum.
pub struct AtomicBuckets {
    counts: [std::sync::atomic::AtomicU64; 11],
    sum: std::sync::atomic::AtomicU64,
}

impl Default for AtomicBuckets {
    fn default() -> Self {
        AtomicBuckets {
            counts: Default::default(),
            sum: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl AtomicBuckets {
    #[inline]
    pub fn observe(&self, v: f64) {
        use std::sync::atomic::Ordering::Relaxed;
        let i = BOUNDS.iter().position(|b| v <= *b).unwrap_or(BOUNDS.len());
        self.counts[i].fetch_add(1, Relaxed);
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |s| {
            Some((f64::from_bits(s) + v).to_bits())
        });
    }
}

/// The same floor with bounds known only at run time, as any configurable histogram has them.
pub struct RuntimeAtomicBuckets {
    bounds: Vec<f64>,
    counts: Vec<std::sync::atomic::AtomicU64>,
    sum: std::sync::atomic::AtomicU64,
}

impl RuntimeAtomicBuckets {
    pub fn new(bounds: &[f64]) -> Self {
        RuntimeAtomicBuckets {
            bounds: bounds.to_vec(),
            counts: (0..=bounds.len()).map(|_| Default::default()).collect(),
            sum: Default::default(),
        }
    }

    #[inline]
    pub fn observe(&self, v: f64) {
        use std::sync::atomic::Ordering::Relaxed;
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Relaxed);
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |s| {
            Some((f64::from_bits(s) + v).to_bits())
        });
    }
}

/// The floor for rendering: a hand-rolled writer of pre-rendered names and values.
pub fn hand_rolled_counters(out: &mut Vec<u8>, names: &[String], values: &[u64]) {
    out.extend_from_slice(b"# HELP c c\n# TYPE c counter\n");
    for (n, v) in names.iter().zip(values) {
        use std::io::Write;
        let _ = writeln!(out, "{n} {v}");
    }
}
