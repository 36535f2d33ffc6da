//! Native (sparse, exponential) histogram buckets: Prometheus's schema, kept in a fixed
//! window so that recording is one atomic add.
//!
//! Bucket `k` of schema `s` holds `(2^((k-1)/2^s), 2^(k/2^s)]`. The window holds the
//! buckets from the one holding the zero threshold up, [`NativeBuckets::OCTAVES`] octaves'
//! worth; values above it count in its top bucket, values at most the zero threshold in
//! the zero bucket. Exposition reads the window as sparse `(key, count)` pairs and halves
//! the resolution until at most `max_buckets` remain.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::catalog::NativeBuckets;

/// Where a native histogram's window lies, and how values find their bucket in it.
#[derive(Debug, Clone)]
pub(crate) struct NativeShape {
    pub(crate) config: NativeBuckets,
    /// The key of the window's first bucket.
    first_key: i32,
    /// Buckets in the window.
    pub(crate) len: usize,
    /// Schema > 0: the 2^schema lower bounds of the buckets of one octave, as fractions
    /// in [0.5, 1) (the mantissa of `frexp`).
    fractions: Box<[f64]>,
    /// `fractions` and `+Inf` after them, so that the lookup compares without a check.
    fractions_and_inf: Box<[f64]>,
    /// Schema > 0: for each of the 2^(schema+2) equal cells of [0.5, 1) that the top
    /// mantissa bits pick, how many fractions lie below the cell. A cell is narrower than
    /// any bucket, so it holds at most one bound: one lookup and one comparison find a
    /// value's bucket, where a search of the fractions would take `schema` comparisons.
    cells: Box<[u16]>,
    /// Mantissa bits below a cell's index.
    cell_shift: u32,
}

const MANTISSA: u64 = (1 << 52) - 1;

/// `v = fraction * 2^exponent` with `fraction` in [0.5, 1), for a finite `v > 0`.
#[inline]
fn frexp(v: f64) -> (f64, i32) {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (f, e) = frexp(v * f64::from_bits(0x43f0_0000_0000_0000)); // 2^64
        return (f, e - 64);
    }
    let fraction = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (fraction, biased - 1022)
}

/// The lowest value the window resolves when the zero threshold is 0 (values between 0 and
/// it count in the window's first bucket).
const FLOOR_WITHOUT_ZERO_BUCKET: f64 = 1.0 / (1u64 << 20) as f64;

impl NativeShape {
    pub(crate) fn new(config: NativeBuckets) -> NativeShape {
        let s = config.schema;
        let fractions: Box<[f64]> = if s > 0 {
            let n = 1usize << s;
            (0..n).map(|i| (i as f64 / n as f64).exp2() / 2.0).collect()
        } else {
            Box::new([])
        };
        let len = Self::window_len(s);
        let (cells, cell_shift): (Box<[u16]>, u32) = if s > 0 {
            let bits = s as u32 + 2;
            let n = 1usize << bits;
            let cells = (0..n)
                .map(|c| {
                    // The cell's start: 0.5 plus c of n halves (exact in binary).
                    let start = 0.5 + 0.5 * c as f64 / n as f64;
                    fractions.partition_point(|&b| b < start) as u16
                })
                .collect();
            (cells, 52 - bits)
        } else {
            (Box::new([]), 0)
        };
        let mut shape = NativeShape {
            config,
            first_key: 0,
            len,
            fractions_and_inf: fractions.iter().copied().chain([f64::INFINITY]).collect(),
            fractions,
            cells,
            cell_shift,
        };
        let floor = if config.zero_threshold > 0.0 {
            config.zero_threshold
        } else {
            FLOOR_WITHOUT_ZERO_BUCKET
        };
        shape.first_key = shape.key(floor);
        shape
    }

    /// Buckets in the window of a schema: [`NativeBuckets::OCTAVES`] octaves, and one for
    /// the zero threshold's own bucket.
    pub(crate) fn window_len(schema: i8) -> usize {
        if schema >= 0 {
            ((NativeBuckets::OCTAVES as usize) << schema) + 1
        } else {
            (NativeBuckets::OCTAVES as usize).div_ceil(1 << -schema) + 1
        }
    }

    /// Slots a histogram keeps per shard for these native buckets: the zero bucket, the
    /// window, and (used in the first shard only) the recorded range's two cells.
    pub(crate) fn slots(native: Option<&NativeBuckets>) -> usize {
        native.map_or(0, |n| Self::window_len(n.schema) + 3)
    }

    /// Widens the recorded range (in the first shard's native slots `first`) to hold slot
    /// `j` (1..=len) before it is counted, so that a reader that reads only the range
    /// never misses a counted bucket. Rarely written: only a new extreme writes.
    ///
    /// The cells start at zero (a fresh file): one holds the highest slot plus one, the
    /// other `len + 1` less the lowest, so that both only grow.
    #[inline]
    pub(crate) fn widen(&self, first: &[AtomicU64], j: usize) {
        debug_assert!(first.len() > self.len + 2 && j <= self.len);
        // SAFETY: the first native shard holds the window and the two range cells after it
        // (`slots`), which `first` starts with (debug-checked).
        let (high, low) = unsafe {
            (
                first.get_unchecked(self.len + 1),
                first.get_unchecked(self.len + 2),
            )
        };
        let (h, l) = (j as u64 + 1, (self.len + 1 - j) as u64);
        if h > high.load(Ordering::Relaxed) {
            high.fetch_max(h, Ordering::Relaxed);
        }
        if l > low.load(Ordering::Relaxed) {
            low.fetch_max(l, Ordering::Relaxed);
        }
    }

    /// The window slots recorded into (1..=len, inclusive), from the first shard's native
    /// slots; `None` when none was. Values out of range (a hostile file) are clamped.
    pub(crate) fn recorded(&self, first: &[AtomicU64]) -> Option<(usize, usize)> {
        let high = first[self.len + 1].load(Ordering::Relaxed) as usize;
        let low = first[self.len + 2].load(Ordering::Relaxed) as usize;
        if high == 0 || low == 0 {
            return None;
        }
        let low = (self.len + 1).saturating_sub(low).clamp(1, self.len);
        let high = (high - 1).clamp(1, self.len);
        (low <= high).then_some((low, high))
    }

    /// Sets the recorded range of fresh cells to the slots `buckets` lie in (an archive
    /// being written).
    pub(crate) fn set_recorded(&self, first: &[AtomicU64], buckets: &[(i32, u64)]) {
        if let (Some(lo), Some(hi)) = (buckets.first(), buckets.last()) {
            self.widen(first, 1 + self.slot_of_key(lo.0));
            self.widen(first, 1 + self.slot_of_key(hi.0));
        }
    }

    /// The key of the bucket holding `v` (finite, > 0), at this shape's schema.
    #[inline]
    pub(crate) fn key(&self, v: f64) -> i32 {
        let s = self.config.schema;
        let bits = v.to_bits();
        if s > 0 && (bits >> 52) & 0x7ff != 0 {
            let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
            let fraction = f64::from_bits((bits & MANTISSA) | (1022 << 52));
            let cell = ((bits & MANTISSA) >> self.cell_shift) as usize;
            debug_assert!(cell < self.cells.len());
            // SAFETY: the shift leaves `schema + 2` bits: `cell < 2^(schema+2)`, the table's
            // length; `below <= 2^schema`, and `fractions_and_inf` has 2^schema + 1 entries.
            let i = unsafe {
                let below = usize::from(*self.cells.get_unchecked(cell));
                below + usize::from(*self.fractions_and_inf.get_unchecked(below) < fraction)
            };
            return i as i32 + ((exp - 1) << s);
        }
        let (fraction, exp) = frexp(v);
        if s > 0 {
            let i = self.fractions.partition_point(|&b| b < fraction) as i32;
            i + ((exp - 1) << s)
        } else {
            let mut key = exp;
            if fraction == 0.5 {
                key -= 1;
            }
            let offset = (1 << -s) - 1;
            (key + offset) >> -s
        }
    }

    /// The window slot of a valid observation `v` (> zero threshold): its bucket's place,
    /// the window's ends taking what lies beyond them.
    #[inline]
    pub(crate) fn slot(&self, v: f64) -> usize {
        let k = self.key(v) - self.first_key;
        (k.max(0) as usize).min(self.len - 1)
    }

    /// The key of window slot `i`.
    #[inline]
    pub(crate) fn key_of_slot(&self, i: usize) -> i32 {
        self.first_key + i as i32
    }

    /// The window slot of `key` (clamped into the window).
    pub(crate) fn slot_of_key(&self, key: i32) -> usize {
        ((key - self.first_key).max(0) as usize).min(self.len - 1)
    }
}

/// A native histogram's buckets as a render or a merge sees them: sparse, by key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NativeValue {
    pub(crate) schema: i8,
    pub(crate) zero_threshold: f64,
    pub(crate) zero_count: u64,
    /// `(key, count)` with `count > 0`, keys ascending.
    pub(crate) buckets: Vec<(i32, u64)>,
}

/// Halves the resolution of `buckets` (ascending keys) `by` times, in place: bucket `k`
/// of schema `s` lies in bucket `ceil(k / 2)` of schema `s - 1`.
pub(crate) fn reduce_buckets(buckets: &mut Vec<(i32, u64)>, by: u32) {
    if by == 0 || buckets.is_empty() {
        return;
    }
    let mut w = 0;
    for r in 0..buckets.len() {
        let (k, c) = buckets[r];
        // ceil(k / 2^by), for negative keys too (an arithmetic shift floors).
        let k = (k + (1 << by) - 1) >> by;
        if w > 0 && buckets[w - 1].0 == k {
            buckets[w - 1].1 = buckets[w - 1].1.saturating_add(c);
        } else {
            buckets[w] = (k, c);
            w += 1;
        }
    }
    buckets.truncate(w);
}

/// Lowers the schema of `buckets` (at `schema`) until at most `max` buckets remain (or
/// the lowest schema is reached); returns the schema they are at.
pub(crate) fn limit_buckets(buckets: &mut Vec<(i32, u64)>, schema: i8, max: u32) -> i8 {
    let mut schema = schema;
    while max > 0 && buckets.len() > max as usize && schema > NativeBuckets::MIN_SCHEMA {
        reduce_buckets(buckets, 1);
        schema -= 1;
    }
    schema
}

impl NativeValue {
    /// Brings this value down to `schema` (no-op when it is there or coarser).
    pub(crate) fn reduce_to(&mut self, schema: i8) {
        if schema < self.schema {
            reduce_buckets(&mut self.buckets, (self.schema - schema) as u32);
            self.schema = schema;
        }
    }

    /// Adds `other`: both at the coarser schema, with the wider zero bucket (buckets that
    /// lie wholly inside it move into it).
    pub(crate) fn add(&mut self, mut other: NativeValue) {
        let schema = self.schema.min(other.schema);
        self.reduce_to(schema);
        other.reduce_to(schema);
        let threshold = self.zero_threshold.max(other.zero_threshold);
        let mut merged = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x.0 == y.0 => {
                    a.next();
                    b.next();
                    (x.0, x.1.saturating_add(y.1))
                }
                (Some(&&x), Some(&&y)) if x.0 < y.0 => {
                    a.next();
                    x
                }
                (_, Some(&&y)) => {
                    b.next();
                    y
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, None) => break,
            };
            merged.push(next);
        }
        self.buckets = merged;
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.zero_threshold = threshold;
        self.absorb_into_zero_bucket();
    }

    /// Moves the buckets whose upper bound is at most the zero threshold into the zero
    /// bucket.
    fn absorb_into_zero_bucket(&mut self) {
        let t = self.zero_threshold;
        let s = self.schema;
        let upper = |k: i32| (f64::from(k) * (-f64::from(s)).exp2()).exp2();
        let n = self
            .buckets
            .iter()
            .take_while(|&&(k, _)| upper(k) <= t)
            .count();
        for (_, c) in self.buckets.drain(..n) {
            self.zero_count = self.zero_count.saturating_add(c);
        }
    }

    /// Observations in every bucket, the zero bucket included.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(self.zero_count, |a, &(_, c)| a.saturating_add(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(schema: i8) -> NativeShape {
        NativeShape::new(NativeBuckets {
            schema,
            zero_threshold: 1e-9,
            max_buckets: 0,
        })
    }

    /// Bucket `k` holds `(2^((k-1)/2^s), 2^(k/2^s)]`: its upper bound is in it, the next
    /// float up is not.
    #[test]
    fn keys_follow_the_schema_at_bucket_edges() {
        for schema in NativeBuckets::MIN_SCHEMA..=NativeBuckets::MAX_SCHEMA {
            let sh = shape(schema);
            for k in [-40, -9, -1, 0, 1, 2, 7, 8, 9, 23, 100] {
                let upper = (f64::from(k) * (-f64::from(schema)).exp2()).exp2();
                if !upper.is_normal() || upper > 1e300 {
                    continue;
                }
                // exp2 of a fraction may be off by an ulp from the true bound: test just
                // inside and just outside it.
                let inside = upper * (1.0 - 1e-12);
                let outside = upper * (1.0 + 1e-12);
                assert_eq!(sh.key(inside), k, "schema {schema} key {k} inside");
                assert_eq!(sh.key(outside), k + 1, "schema {schema} key {k} outside");
            }
            // Powers of two are exact bounds at every schema.
            assert_eq!(sh.key(1.0), 0);
            assert_eq!(sh.key(2.0), if schema >= 0 { 1 << schema } else { 1 });
        }
    }

    /// The cell lookup finds the bucket a search of the fractions finds, at every schema.
    #[test]
    fn the_cell_lookup_agrees_with_the_search() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for schema in 1..=NativeBuckets::MAX_SCHEMA {
            let sh = shape(schema);
            let mut values: Vec<f64> = sh
                .fractions
                .iter()
                .flat_map(|&b| [b, b.next_up(), b.next_down()])
                .collect();
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                values.push(f64::from_bits((x & MANTISSA) | (1022 << 52)));
            }
            for f in values.into_iter().filter(|f| (0.5..1.0).contains(f)) {
                for exp in [-20, 1, 7] {
                    let v = f * 2f64.powi(exp);
                    let searched =
                        sh.fractions.partition_point(|&b| b < f) as i32 + ((exp - 1) << schema);
                    assert_eq!(sh.key(v), searched, "schema {schema}, {v}");
                }
            }
        }
    }

    #[test]
    fn subnormals_and_the_window_ends() {
        let sh = shape(3);
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
        assert_eq!(sh.slot(1e-300), 0);
        assert_eq!(sh.slot(1e300), sh.len - 1);
        let s = sh.slot(0.25);
        assert_eq!(sh.key_of_slot(s), sh.key(0.25));
        assert_eq!(sh.slot_of_key(sh.key(0.25)), s);
    }

    #[test]
    fn reducing_merges_pairs_as_prometheus_does() {
        // Schema 1 keys -2..=3 to schema 0: ceil(k/2).
        let mut b = vec![(-2, 1), (-1, 2), (0, 3), (1, 4), (2, 5), (3, 6)];
        reduce_buckets(&mut b, 1);
        assert_eq!(b, vec![(-1, 1), (0, 5), (1, 9), (2, 6)]);
        let mut b: Vec<(i32, u64)> = (0..100).map(|k| (k, 1)).collect();
        let schema = limit_buckets(&mut b, 3, 30);
        assert_eq!(schema, 1);
        assert!(b.len() <= 30);
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 100);
    }

    #[test]
    fn adding_values_of_different_schemas_reduces_to_the_coarser() {
        let mut a = NativeValue {
            schema: 3,
            zero_threshold: 1e-6,
            zero_count: 1,
            buckets: vec![(0, 2), (1, 3), (8, 1)],
        };
        let b = NativeValue {
            schema: 2,
            zero_threshold: 1e-6,
            zero_count: 2,
            buckets: vec![(1, 5)],
        };
        a.add(b);
        assert_eq!(a.schema, 2);
        assert_eq!(a.zero_count, 3);
        // Schema 3 keys 0, 1, 8 are schema 2 keys 0, 1, 4.
        assert_eq!(a.buckets, vec![(0, 2), (1, 8), (4, 1)]);
        assert_eq!(a.count(), 14);
    }

    #[test]
    fn a_wider_zero_bucket_takes_the_buckets_below_it() {
        let mut a = NativeValue {
            schema: 0,
            zero_threshold: 0.01,
            zero_count: 0,
            buckets: vec![(-3, 1), (-1, 2), (2, 3)],
        };
        a.add(NativeValue {
            schema: 0,
            zero_threshold: 0.5,
            zero_count: 1,
            buckets: vec![],
        });
        // Buckets up to 0.125 and up to 0.5 are inside the zero bucket of 0.5.
        assert_eq!(a.zero_count, 4);
        assert_eq!(a.buckets, vec![(2, 3)]);
    }
}
