use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::native::{NativeShape, NativeValue, limit_buckets};
use super::{Counter, Exemplar, ExemplarCell, InvalidValue, TraceRef, check_non_negative};
use crate::catalog::NativeBuckets;

/// Per-thread shards of a histogram's counters. Threads recording into one histogram
/// each write their own cache lines, so a histogram shared by many request threads does
/// not bounce one line between cores on every observation; exposition sums the shards.
const SHARDS: usize = 4;
/// Shards of the native buckets: fewer than the classic ones, since their window is long
/// (two threads still record into lines of their own).
const NATIVE_SHARDS: usize = 2;
/// u64 slots per 128-byte line (two 64-byte lines: adjacent-line prefetch pairs them).
const SLOTS_PER_LINE: usize = 16;

#[repr(align(128))]
#[derive(Debug, Default)]
// Read through `HistogramCore::slots`, as one flat slice.
#[allow(dead_code)]
pub(crate) struct Line([AtomicU64; SLOTS_PER_LINE]);

const _: () = assert!(std::mem::size_of::<Line>() == SLOTS_PER_LINE * 8);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn shard() -> usize {
    SHARD.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
        s.set(v);
        v
    })
}

#[derive(Debug)]
pub(crate) struct HistogramCore {
    /// Upper bounds, ascending; the last count slot is `+Inf`.
    pub(crate) bounds: Arc<[f64]>,
    /// Native buckets kept beside the classic ones, if any.
    pub(crate) native: Option<Arc<NativeShape>>,
    /// `SHARDS` regions of `stride` slots, 128-byte aligned: in `own_lines`, or in a
    /// mapping that is never unmapped (multi-process mode). Within a region, slot `i`
    /// counts bucket `i` (non-cumulative; the total count is their sum) and slot
    /// `bounds.len() + 1` holds the sum's bits; a native histogram's zero bucket follows,
    /// then its window.
    slots: AtomicPtr<AtomicU64>,
    /// One exemplar per bucket, beside the slots.
    exemplars: AtomicPtr<ExemplarCell>,
    /// Slots per shard: a whole number of lines, at least `bounds.len() + 2`.
    stride: usize,
    /// Where the native shards start (in slots), and the slots of each.
    native_at: usize,
    native_stride: usize,
    #[allow(dead_code)] // owns what `slots` points at, when not mapped
    own_lines: Box<[Line]>,
    #[allow(dead_code)] // owns what `exemplars` points at, when not mapped
    own_exemplars: Box<[ExemplarCell]>,
    pub(crate) invalid: Counter,
}

/// Where the parts of a histogram's cells lie, in bytes from their start; a mapping
/// holds them at a 128-byte aligned address: the classic shards (buckets and sum), then
/// the native shards (zero bucket, window, and in the first the recorded range), then the
/// exemplars.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistogramLayout {
    /// Slots per classic shard.
    pub(crate) stride: usize,
    /// The first native shard's first slot.
    pub(crate) native_at: usize,
    /// Slots per native shard (0: no native buckets).
    pub(crate) native_stride: usize,
    /// Bytes of the slots, the exemplars' offset.
    pub(crate) exemplars_at: usize,
    /// Bytes in all.
    pub(crate) len: usize,
}

impl HistogramLayout {
    pub(crate) const SHARDS: usize = SHARDS;
    pub(crate) const NATIVE_SHARDS: usize = NATIVE_SHARDS;
    pub(crate) const ALIGN: usize = std::mem::align_of::<Line>();

    /// The layout of a histogram of `bounds` classic bounds and `native` native slots per
    /// native shard (0 for a classic-only histogram).
    pub(crate) fn new(bounds: usize, native: usize) -> Self {
        let stride = (bounds + 2).div_ceil(SLOTS_PER_LINE) * SLOTS_PER_LINE;
        let native_stride = native.div_ceil(SLOTS_PER_LINE) * SLOTS_PER_LINE;
        let native_at = SHARDS * stride;
        let exemplars_at = (native_at + NATIVE_SHARDS * native_stride) * 8;
        HistogramLayout {
            stride,
            native_at,
            native_stride,
            exemplars_at,
            len: exemplars_at + (bounds + 1) * std::mem::size_of::<ExemplarCell>(),
        }
    }

    /// Slots in all, classic and native.
    pub(crate) fn slots(&self) -> usize {
        self.exemplars_at / 8
    }
}

/// Native slots of a shape: its zero bucket and its window.
pub(crate) fn native_slots(native: Option<&NativeShape>) -> usize {
    NativeShape::slots(native.map(|n| &n.config))
}

impl HistogramCore {
    pub(crate) fn new(
        bounds: Arc<[f64]>,
        native: Option<Arc<NativeShape>>,
        invalid: Counter,
    ) -> Self {
        let layout = HistogramLayout::new(bounds.len(), native_slots(native.as_deref()));
        let own_lines: Box<[Line]> = (0..layout.slots() / SLOTS_PER_LINE)
            .map(|_| Line::default())
            .collect();
        let own_exemplars: Box<[ExemplarCell]> = (0..bounds.len() + 1)
            .map(|_| ExemplarCell::default())
            .collect();
        HistogramCore {
            slots: AtomicPtr::new(own_lines.as_ptr().cast::<AtomicU64>().cast_mut()),
            exemplars: AtomicPtr::new(own_exemplars.as_ptr().cast_mut()),
            stride: layout.stride,
            native_at: layout.native_at,
            native_stride: layout.native_stride,
            own_lines,
            own_exemplars,
            bounds,
            native,
            invalid,
        }
    }

    /// A histogram recording into the cells at `at`, laid out as [`HistogramLayout`]
    /// says.
    ///
    /// # Safety
    /// `at` must be aligned to [`HistogramLayout::ALIGN`], zeroed or written only as this
    /// layout's atomics, and valid for the life of the process.
    pub(crate) unsafe fn mapped(
        bounds: Arc<[f64]>,
        native: Option<Arc<NativeShape>>,
        at: *mut u8,
        invalid: Counter,
    ) -> Self {
        let layout = HistogramLayout::new(bounds.len(), native_slots(native.as_deref()));
        HistogramCore {
            slots: AtomicPtr::new(at.cast()),
            // SAFETY: inside the region the caller vouches for.
            exemplars: AtomicPtr::new(unsafe { at.add(layout.exemplars_at) }.cast()),
            stride: layout.stride,
            native_at: layout.native_at,
            native_stride: layout.native_stride,
            own_lines: Box::new([]),
            own_exemplars: Box::new([]),
            bounds,
            native,
            invalid,
        }
    }

    /// Points this histogram at the cells at `at` (a forked child moving to its own file).
    ///
    /// # Safety
    /// As for [`HistogramCore::mapped`].
    pub(crate) unsafe fn remap(&self, at: *mut u8) {
        let layout = HistogramLayout::new(self.bounds.len(), self.native_slots());
        self.slots.store(at.cast(), Ordering::Relaxed);
        // SAFETY: as above.
        self.exemplars.store(
            unsafe { at.add(layout.exemplars_at) }.cast(),
            Ordering::Relaxed,
        );
    }

    /// Every slot of every shard, as one flat slice.
    #[inline]
    fn slots(&self) -> &[AtomicU64] {
        // SAFETY: `slots` points at the layout's slots (classic and native shards):
        // `own_lines` (consecutive 128-byte lines of 16 `AtomicU64`, no padding) or a
        // mapped region of that layout.
        unsafe {
            std::slice::from_raw_parts(
                self.slots.load(Ordering::Relaxed),
                self.native_at + NATIVE_SHARDS * self.native_stride,
            )
        }
    }

    /// One exemplar cell per bucket, `+Inf` last.
    #[inline]
    pub(crate) fn exemplar_cells(&self) -> &[ExemplarCell] {
        // SAFETY: `bounds.len() + 1` cells, owned or mapped as for `slots`.
        unsafe {
            std::slice::from_raw_parts(
                self.exemplars.load(Ordering::Relaxed),
                self.bounds.len() + 1,
            )
        }
    }

    fn native_slots(&self) -> usize {
        native_slots(self.native.as_deref())
    }

    #[inline]
    fn slot(&self, shard: usize, i: usize) -> &AtomicU64 {
        &self.slots()[shard * self.stride + i]
    }

    #[inline]
    fn sum_slot(&self, shard: usize) -> &AtomicU64 {
        self.slot(shard, self.bounds.len() + 1)
    }

    #[inline]
    fn record(&self, v: f64) -> Option<usize> {
        let bounds = &*self.bounds;
        let n = bounds.len();
        // `le` semantics: a value equal to a bound belongs to that bucket. A linear scan
        // beats a binary search for the dozen or so bounds a histogram has.
        let i = if n <= 24 {
            bounds.iter().position(|&b| v <= b).unwrap_or(n)
        } else {
            bounds.partition_point(|&b| b < v)
        };
        // Negatives (and -Inf) land in the first bucket, NaN and +Inf past the last bound
        // (NaN in the first with the binary search): only those two buckets pay for the
        // validity check.
        if (i == 0 && (v < 0.0 || v.is_nan())) || (i == n && (v == f64::INFINITY || v.is_nan())) {
            self.invalid.inc();
            return None;
        }
        let sh = shard();
        let base = sh * self.stride;
        let slots = self.slots();
        debug_assert!(base + n + 1 < slots.len());
        // SAFETY: `stride` >= n + 2 slots per shard and `shard() < SHARDS`, so both
        // indices are inside the SHARDS * stride slots (checked in debug builds).
        let (bucket, sum) = unsafe {
            (
                slots.get_unchecked(base + i),
                slots.get_unchecked(base + n + 1),
            )
        };
        bucket.fetch_add(1, Ordering::Relaxed);
        if let Some(native) = &self.native {
            // The zero bucket first in a native shard, the window after it.
            let j = if v <= native.config.zero_threshold {
                0
            } else {
                let j = 1 + native.slot(v);
                // SAFETY: `native_at` is inside the slots (the native shards follow it).
                native.widen(unsafe { slots.get_unchecked(self.native_at..) }, j);
                j
            };
            let at = self.native_at + (sh % NATIVE_SHARDS) * self.native_stride + j;
            debug_assert!(at < slots.len());
            // SAFETY: `j` <= the window's length, inside a native shard (debug-checked).
            unsafe { slots.get_unchecked(at) }.fetch_add(1, Ordering::Relaxed);
        }
        let mut cur = sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match sum.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(i),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Zeroes every bucket, the sum and the exemplars.
    pub(crate) fn reset(&self) {
        for slot in self.slots() {
            slot.store(0, Ordering::Relaxed);
        }
        for e in self.exemplar_cells() {
            e.clear();
        }
    }

    /// The count of bucket `i` (non-cumulative), summed over shards.
    #[inline]
    pub(crate) fn bucket(&self, i: usize) -> u64 {
        (0..SHARDS)
            .map(|s| self.slot(s, i).load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn buckets(&self) -> usize {
        self.bounds.len() + 1
    }

    pub(crate) fn sum(&self) -> f64 {
        (0..SHARDS)
            .map(|s| f64::from_bits(self.sum_slot(s).load(Ordering::Relaxed)))
            .sum()
    }

    /// The native buckets, summed over shards, into `buckets` (cleared first) as `(key,
    /// count)` at the initial schema; `None` for a classic-only histogram.
    pub(crate) fn native_raw(&self, buckets: &mut Vec<(i32, u64)>) -> Option<NativeValue> {
        let native = self.native.as_deref()?;
        buckets.clear();
        let slots = self.slots();
        let read = |j: usize| -> u64 {
            (0..NATIVE_SHARDS)
                .map(|s| slots[self.native_at + s * self.native_stride + j].load(Ordering::Relaxed))
                .sum()
        };
        if let Some((low, high)) = native.recorded(&slots[self.native_at..]) {
            for j in low..=high {
                let c = read(j);
                if c > 0 {
                    buckets.push((native.key_of_slot(j - 1), c));
                }
            }
        }
        Some(NativeValue {
            schema: native.config.schema,
            zero_threshold: native.config.zero_threshold,
            zero_count: read(0),
            buckets: Vec::new(),
        })
    }

    /// The native buckets as exposed: at the schema that keeps them within the shape's
    /// `max_buckets`. `buckets` is the caller's scratch (reused between renders).
    pub(crate) fn native_exposed(&self, buckets: &mut Vec<(i32, u64)>) -> Option<NativeView> {
        let mut v = self.native_raw(buckets)?;
        let max = self.native.as_ref().map_or(0, |n| n.config.max_buckets);
        v.schema = limit_buckets(buckets, v.schema, max);
        Some(NativeView {
            schema: v.schema,
            zero_threshold: v.zero_threshold,
            zero_count: v.zero_count,
        })
    }
}

/// A native histogram's scalars as exposed; its buckets are beside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NativeView {
    pub(crate) schema: i8,
    pub(crate) zero_threshold: f64,
    pub(crate) zero_count: u64,
}

/// Observations of a non-negative quantity (a duration, a count, a score) in fixed buckets.
///
/// Recording is one atomic add on the bucket and one on the sum, in the calling thread's
/// shard: no lock, no allocation, and little cache-line traffic between threads.
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
            None,
            Counter::detached(),
        )))
    }

    /// A histogram not attached to any registry, with classic `bounds` (may be empty:
    /// native only) and native buckets of the given shape.
    ///
    /// ```
    /// use tars_telemetry::{Histogram, catalog::NativeBuckets};
    /// let h = Histogram::detached_native(&[], NativeBuckets::LATENCY).unwrap();
    /// h.observe(0.25);
    /// h.observe(0.0);
    /// assert_eq!(h.count(), 2);
    /// assert_eq!(h.native_zero_count(), Some(1));
    /// // 0.25 s is 2^-2: bucket -2 * 2^3 at schema 3.
    /// assert_eq!(h.native_buckets(), Some((3, vec![(-16, 1)])));
    /// ```
    pub fn detached_native(bounds: &[f64], native: NativeBuckets) -> Result<Self, crate::Error> {
        if !bounds.is_empty() {
            crate::error::check_buckets(bounds)?;
        }
        native.validate().map_err(crate::Error::InvalidBuckets)?;
        Ok(Histogram(Arc::new(HistogramCore::new(
            bounds.into(),
            Some(Arc::new(NativeShape::new(native))),
            Counter::detached(),
        ))))
    }

    #[inline]
    /// Observes `v` (NaN, infinite and negative values are refused and counted).
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
            self.0.exemplar_cells()[i].store(trace, v);
        }
    }

    /// Observes `v`, reporting a refused value as an error (the refusal is still counted).
    pub fn try_observe(&self, v: f64) -> Result<(), InvalidValue> {
        check_non_negative(v).inspect_err(|_| self.0.invalid.inc())?;
        self.0.record(v);
        Ok(())
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        (0..self.0.buckets()).map(|i| self.0.bucket(i)).sum()
    }

    /// Sum of the observations.
    pub fn sum(&self) -> f64 {
        self.0.sum()
    }

    /// Cumulative counts per bucket, the last being `+Inf`.
    pub fn bucket_counts(&self) -> Vec<u64> {
        let mut acc = 0;
        (0..self.0.buckets())
            .map(|i| {
                acc += self.0.bucket(i);
                acc
            })
            .collect()
    }

    /// The upper bounds, `+Inf` implied.
    pub fn bounds(&self) -> &[f64] {
        &self.0.bounds
    }

    /// The native buckets as a scrape exposes them: the schema and the `(key, count)` of
    /// every bucket holding anything, keys ascending (bucket `k` holds `(2^((k-1)/2^s),
    /// 2^(k/2^s)]`). `None` for a classic-only histogram.
    pub fn native_buckets(&self) -> Option<(i8, Vec<(i32, u64)>)> {
        let mut buckets = Vec::new();
        let v = self.0.native_exposed(&mut buckets)?;
        Some((v.schema, buckets))
    }

    /// Observations in the native zero bucket; `None` for a classic-only histogram.
    pub fn native_zero_count(&self) -> Option<u64> {
        self.0.native_raw(&mut Vec::new()).map(|v| v.zero_count)
    }

    /// The native buckets' shape, if the histogram has them.
    pub fn native(&self) -> Option<NativeBuckets> {
        self.0.native.as_ref().map(|n| n.config)
    }

    /// The exemplar of bucket `i` (the last index is `+Inf`), if one was recorded.
    pub fn exemplar(&self, i: usize) -> Option<Exemplar> {
        self.0.exemplar_cells().get(i).and_then(|e| e.load())
    }
}

impl metrics::HistogramFn for HistogramCore {
    fn record(&self, value: f64) {
        HistogramCore::record(self, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_are_refused_whichever_search_finds_their_bucket() {
        let many: Vec<f64> = (1..=40).map(f64::from).collect();
        for bounds in [&[0.5, 1.0, 2.0][..], &many[..]] {
            let invalid = Counter::detached();
            let h = Histogram(Arc::new(HistogramCore::new(
                bounds.into(),
                None,
                invalid.clone(),
            )));
            for v in [f64::NAN, -1.0, -0.5, f64::NEG_INFINITY, f64::INFINITY] {
                h.observe(v);
            }
            assert_eq!(h.count(), 0, "{} bounds", bounds.len());
            assert_eq!(invalid.get(), 5);
            for v in [0.0, -0.0, 0.5, 1.5, 1e9] {
                h.observe(v);
            }
            assert_eq!(h.count(), 5);
            assert_eq!(h.sum(), 0.5 + 1.5 + 1e9);
            let counts = h.bucket_counts();
            assert_eq!(counts[0], 3, "0, -0 and 0.5 are at most the first bound");
            assert_eq!(*counts.last().unwrap(), 5);
        }
    }
}
