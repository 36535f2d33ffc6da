use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Counter, Exemplar, ExemplarCell, InvalidValue, TraceRef, check_non_negative};

#[derive(Debug)]
pub(crate) struct HistogramCore {
    /// Upper bounds, ascending; the last count slot is `+Inf`.
    pub(crate) bounds: Arc<[f64]>,
    /// Per-bucket (non-cumulative) counts; the total count is their sum, so there is no
    /// separate count to keep consistent.
    pub(crate) counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    pub(crate) exemplars: Box<[ExemplarCell]>,
    pub(crate) invalid: Counter,
}

impl HistogramCore {
    pub(crate) fn new(bounds: Arc<[f64]>, invalid: Counter) -> Self {
        let n = bounds.len() + 1;
        HistogramCore {
            counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            exemplars: (0..n).map(|_| ExemplarCell::default()).collect(),
            bounds,
            sum: AtomicU64::new(0f64.to_bits()),
            invalid,
        }
    }

    #[inline]
    fn record(&self, v: f64) -> Option<usize> {
        if check_non_negative(v).is_err() {
            self.invalid.inc();
            return None;
        }
        // `le` semantics: a value equal to a bound belongs to that bucket.
        let i = self.bounds.partition_point(|&b| b < v);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let mut cur = self.sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match self
                .sum
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(i),
                Err(actual) => cur = actual,
            }
        }
    }

    pub(crate) fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

/// Observations of a non-negative quantity (a duration, a count, a score) in fixed buckets.
///
/// Recording is one atomic add on the bucket and one on the sum: no lock, no allocation.
/// NaN, infinite and negative observations are refused: dropped and counted in
/// `tars_telemetry_invalid_values_total{family}`.
///
/// ```
/// use tars_telemetry::Histogram;
/// let h = Histogram::detached(&[0.1, 0.5, 1.0]);
/// h.observe(0.3);
/// h.observe(0.5);
/// assert_eq!(h.count(), 2);
/// assert_eq!(h.bucket_counts(), vec![0, 2, 2, 2]); // cumulative, last is +Inf
/// assert!(h.try_observe(f64::NAN).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Histogram(pub(crate) Arc<HistogramCore>);

impl Histogram {
    /// A histogram not attached to any registry, with the given upper bounds.
    pub fn detached(bounds: &[f64]) -> Self {
        Histogram(Arc::new(HistogramCore::new(
            bounds.into(),
            Counter::detached(),
        )))
    }

    #[inline]
    pub fn observe(&self, v: f64) {
        self.0.record(v);
    }

    /// Observes a duration in seconds.
    #[inline]
    pub fn observe_duration(&self, d: Duration) {
        self.0.record(d.as_secs_f64());
    }

    /// Observes `v` and keeps `trace` as the exemplar of the bucket it fell in.
    #[inline]
    pub fn observe_with_exemplar(&self, v: f64, trace: &TraceRef) {
        if let Some(i) = self.0.record(v) {
            self.0.exemplars[i].store(trace, v);
        }
    }

    /// Observes `v`, reporting a refused value as an error (the refusal is still counted).
    pub fn try_observe(&self, v: f64) -> Result<(), InvalidValue> {
        check_non_negative(v).inspect_err(|_| self.0.invalid.inc())?;
        self.0.record(v);
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn sum(&self) -> f64 {
        self.0.sum()
    }

    /// Cumulative counts per bucket, the last being `+Inf`.
    pub fn bucket_counts(&self) -> Vec<u64> {
        let mut acc = 0;
        self.0
            .counts
            .iter()
            .map(|c| {
                acc += c.load(Ordering::Relaxed);
                acc
            })
            .collect()
    }

    pub fn bounds(&self) -> &[f64] {
        &self.0.bounds
    }

    /// The exemplar of bucket `i` (the last index is `+Inf`), if one was recorded.
    pub fn exemplar(&self, i: usize) -> Option<Exemplar> {
        self.0.exemplars.get(i).and_then(|e| e.load())
    }
}

impl metrics::HistogramFn for HistogramCore {
    fn record(&self, value: f64) {
        HistogramCore::record(self, value);
    }
}
