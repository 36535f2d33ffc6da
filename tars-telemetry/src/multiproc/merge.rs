//! Merging the files of a directory into one view: each series' values combined by its
//! family's [`Merge`] mode.

use std::sync::atomic::Ordering;

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use super::file::{CellsKind, FamilyRecord, FileReader, SeriesView};
use crate::catalog::NativeBuckets;
use crate::catalog::{Merge, MetricKind};
use crate::metric::counter::CounterCells;
use crate::metric::gauge::GaugeCells;
use crate::metric::histogram::HistogramLayout;
use crate::metric::native::{NativeShape, NativeValue};
use crate::metric::{Exemplar, ExemplarCell};

/// Where a file's values come from, which decides what of them counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A live worker: everything counts.
    Live,
    /// A dead worker's file or the archive: what outlives a worker (sums, and readings of
    /// things outside the workers).
    Past,
}

impl Source {
    pub(crate) fn keeps(self, merge: Merge) -> bool {
        match self {
            Source::Live => true,
            Source::Past => matches!(merge, Merge::Sum | Merge::Latest),
        }
    }
}

/// One series' merged value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Count {
        value: u64,
        exemplar: Option<Exemplar>,
    },
    Float {
        value: f64,
        /// When it was set (Unix nanoseconds), for `Merge::Latest`.
        stamp: u64,
    },
    Histogram {
        /// Per bucket, not cumulative; `+Inf` last.
        buckets: Vec<u64>,
        sum: f64,
        exemplars: Vec<Option<Exemplar>>,
        /// The native buckets, at the schema the family was recorded at (reduced to the
        /// coarser of two when workers differ).
        native: Option<NativeValue>,
    },
}

#[derive(Debug)]
pub(crate) struct MergedSeries {
    pub(crate) labels: String,
    pub(crate) value: Value,
}

#[derive(Debug)]
pub(crate) struct MergedFamily {
    pub(crate) record: FamilyRecord,
    pub(crate) series: Vec<MergedSeries>,
    /// Positions in `series`, by the hash of their labels: one allocation per series.
    index: HashTable<usize>,
}

/// Every family of a directory, merged. Families keep the order in which the files
/// first name them; series the order in which they were first seen.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub(crate) families: Vec<MergedFamily>,
    by_name: HashMap<String, usize>,
    hasher: DefaultHashBuilder,
}

fn newer(a: Option<Exemplar>, b: Option<Exemplar>) -> Option<Exemplar> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.timestamp_nanos > x.timestamp_nanos {
            y
        } else {
            x
        }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Reads one series' cells.
///
/// # Safety
/// `view.cells` must point at live cells of `view.kind` laid out for `record` (whose
/// native shape, if any, is `native`).
unsafe fn read_value(
    view: &SeriesView<'_>,
    record: &FamilyRecord,
    native: Option<&NativeShape>,
) -> Value {
    let bounds = record.buckets.len();
    match view.kind {
        CellsKind::Counter => {
            // SAFETY: the caller's contract.
            let c = unsafe { &*view.cells.cast::<CounterCells>() };
            Value::Count {
                value: c.value.load(Ordering::Relaxed),
                exemplar: c.exemplar.load(),
            }
        }
        CellsKind::Gauge => {
            // SAFETY: the caller's contract.
            let g = unsafe { &*view.cells.cast::<GaugeCells>() };
            Value::Float {
                value: f64::from_bits(g.bits.load(Ordering::Relaxed)),
                stamp: g.stamp.load(Ordering::Relaxed),
            }
        }
        CellsKind::Histogram => {
            let layout = record.histogram_layout();
            // SAFETY: the caller's contract: the layout's slots, then the exemplars.
            let slots = unsafe {
                std::slice::from_raw_parts(
                    view.cells.cast::<std::sync::atomic::AtomicU64>(),
                    layout.slots(),
                )
            };
            let cells = unsafe {
                std::slice::from_raw_parts(
                    view.cells.add(layout.exemplars_at).cast::<ExemplarCell>(),
                    bounds + 1,
                )
            };
            let shard = |s: usize, i: usize| slots[s * layout.stride + i].load(Ordering::Relaxed);
            Value::Histogram {
                buckets: (0..=bounds)
                    .map(|i| (0..HistogramLayout::SHARDS).map(|s| shard(s, i)).sum())
                    .collect(),
                sum: (0..HistogramLayout::SHARDS)
                    .map(|s| f64::from_bits(shard(s, bounds + 1)))
                    .sum(),
                exemplars: cells.iter().map(ExemplarCell::load).collect(),
                native: native.map(|shape| {
                    let first = &slots[layout.native_at..];
                    let total = |j: usize| -> u64 {
                        (0..HistogramLayout::NATIVE_SHARDS)
                            .map(|s| first[s * layout.native_stride + j].load(Ordering::Relaxed))
                            .fold(0u64, u64::saturating_add)
                    };
                    let recorded = shape.recorded(&first[..layout.native_stride]);
                    NativeValue {
                        schema: shape.config.schema,
                        zero_threshold: shape.config.zero_threshold,
                        zero_count: total(0),
                        buckets: recorded
                            .into_iter()
                            .flat_map(|(low, high)| low..=high)
                            .filter_map(|j| {
                                let c = total(j);
                                (c > 0).then(|| (shape.key_of_slot(j - 1), c))
                            })
                            .collect(),
                    }
                }),
            }
        }
    }
}

fn combine(into: &mut Value, from: Value, merge: Merge) {
    match (into, from) {
        (
            Value::Count { value, exemplar },
            Value::Count {
                value: v,
                exemplar: e,
            },
        ) => {
            *value = value.saturating_add(v);
            *exemplar = newer(*exemplar, e);
        }
        (Value::Float { value, stamp }, Value::Float { value: v, stamp: s }) => match merge {
            Merge::Sum | Merge::LiveSum => *value += v,
            Merge::Max | Merge::Union => *value = value.max(v),
            Merge::Latest => {
                if s > *stamp {
                    (*value, *stamp) = (v, s);
                }
            }
        },
        (
            Value::Histogram {
                buckets,
                sum,
                exemplars,
                native,
            },
            Value::Histogram {
                buckets: b,
                sum: s,
                exemplars: e,
                native: n,
            },
        ) if buckets.len() == b.len() => {
            for (x, y) in buckets.iter_mut().zip(b) {
                *x = x.saturating_add(y);
            }
            *sum += s;
            for (x, y) in exemplars.iter_mut().zip(e) {
                *x = newer(*x, y);
            }
            // Native buckets add exactly; at the coarser schema where workers differ. A
            // worker without them leaves the classic part only.
            match (native.as_mut(), n) {
                (Some(a), Some(b)) => a.add(b),
                (None, Some(b)) => *native = Some(b),
                _ => {}
            }
        }
        // A counter one worker mirrors (a gauge cell) and another counts: add as floats.
        (into @ Value::Count { .. }, Value::Float { value: v, .. }) => {
            if let Value::Count { value, .. } = into {
                *into = Value::Float {
                    value: *value as f64 + v,
                    stamp: 0,
                };
            }
        }
        (Value::Float { value, .. }, Value::Count { value: v, .. }) => *value += v as f64,
        _ => {}
    }
}

impl Merged {
    /// Merges the series `reader` has published since its last read, as `source` allows.
    pub(crate) fn absorb(
        &mut self,
        reader: &mut FileReader,
        source: Source,
    ) -> Result<(), crate::error::Incompatibility> {
        // Which merged family each of the file's families is (None: refused).
        let mut local: Vec<Option<usize>> = Vec::new();
        // The native shape of each of the file's families that has one.
        let mut shapes: Vec<Option<NativeShape>> = Vec::new();
        reader.read_new(|families, view| {
            let i = view.family as usize;
            if local.len() <= i {
                local.resize(families.len().max(i + 1), None);
                shapes.resize(families.len().max(i + 1), None);
                for (j, f) in families.iter().enumerate() {
                    if local[j].is_none()
                        && let Some(f) = f
                    {
                        local[j] = self.family(f);
                        shapes[j] = f.native.map(NativeShape::new);
                    }
                }
            }
            let Some(Some(file_record)) = families.get(i) else {
                return;
            };
            let Some(Some(fi)) = local.get(i).copied() else {
                return;
            };
            let MergedFamily {
                record,
                series,
                index,
            } = &mut self.families[fi];
            let merge = record.merge;
            if !source.keeps(merge) {
                return;
            }
            // SAFETY: the view's cells are published cells of its kind, laid out for the
            // file's record of the family (fixed once written).
            let value = unsafe { read_value(&view, file_record, shapes[i].as_ref()) };
            let hasher = &self.hasher;
            let hash = hasher.hash_one(view.labels);
            match index.find(hash, |&i| series[i].labels == view.labels) {
                Some(&i) => combine(&mut series[i].value, value, merge),
                None => {
                    series.push(MergedSeries {
                        labels: view.labels.to_string(),
                        value,
                    });
                    index.insert_unique(hash, series.len() - 1, |&i| {
                        hasher.hash_one(&series[i].labels)
                    });
                }
            }
        })
    }

    /// Adds `n` to the counter series `labels` of `record`'s family (a count this process
    /// makes, not read from a file).
    pub(crate) fn add_count(&mut self, record: &FamilyRecord, labels: &str, n: u64) {
        let Some(fi) = self.family(record) else {
            return;
        };
        let MergedFamily { series, index, .. } = &mut self.families[fi];
        let value = Value::Count {
            value: n,
            exemplar: None,
        };
        let hasher = &self.hasher;
        let hash = hasher.hash_one(labels);
        match index.find(hash, |&i| series[i].labels == labels) {
            Some(&i) => combine(&mut series[i].value, value, Merge::Sum),
            None => {
                series.push(MergedSeries {
                    labels: labels.to_string(),
                    value,
                });
                index.insert_unique(hash, series.len() - 1, |&i| {
                    hasher.hash_one(&series[i].labels)
                });
            }
        }
    }

    /// The merged family for `record`, added if new; `None` if a family of that name with
    /// another shape is there already (first come, first kept).
    fn family(&mut self, record: &FamilyRecord) -> Option<usize> {
        if let Some(&i) = self.by_name.get(&record.name) {
            let have = &self.families[i].record;
            let same = have.kind == record.kind
                && have.labels == record.labels
                && have.buckets == record.buckets;
            // Workers that keep native buckets at different schemas merge at the coarser.
            if same
                && let (Some(a), Some(b)) = (have.native, record.native)
                && b.schema < a.schema
            {
                self.families[i].record.native = Some(NativeBuckets {
                    schema: b.schema,
                    zero_threshold: a.zero_threshold.max(b.zero_threshold),
                    max_buckets: a.max_buckets,
                });
            } else if same && have.native.is_none() && record.native.is_some() {
                self.families[i].record.native = record.native;
            }
            return same.then_some(i);
        }
        let i = self.families.len();
        self.by_name.insert(record.name.clone(), i);
        self.families.push(MergedFamily {
            record: record.clone(),
            series: Vec::new(),
            index: HashTable::new(),
        });
        Some(i)
    }
}

/// Writes a merged value into fresh cells (an archive being written).
///
/// # Safety
/// `cells` must be zeroed, unpublished cells of the value's kind laid out for `record`.
pub(crate) unsafe fn write_value(value: &Value, cells: *mut u8, record: &FamilyRecord) {
    let bounds = record.buckets.len();
    match value {
        Value::Count { value, exemplar } => {
            // SAFETY: the caller's contract.
            let c = unsafe { &*cells.cast::<CounterCells>() };
            c.value.store(*value, Ordering::Relaxed);
            if let Some(e) = exemplar {
                c.exemplar.store_at(&e.trace, e.value, e.timestamp_nanos);
            }
        }
        Value::Float { value, stamp } => {
            // SAFETY: the caller's contract.
            let g = unsafe { &*cells.cast::<GaugeCells>() };
            g.bits.store(value.to_bits(), Ordering::Relaxed);
            g.stamp.store(*stamp, Ordering::Relaxed);
        }
        Value::Histogram {
            buckets,
            sum,
            exemplars,
            native,
        } => {
            let layout = record.histogram_layout();
            // The archive keeps native buckets at the record's schema; a value recorded
            // finer (a worker of a finer shape) is brought down to it first.
            let native = record.native.zip(native.as_ref()).map(|(shape, v)| {
                let mut v = v.clone();
                v.reduce_to(shape.schema);
                (NativeShape::new(shape), v)
            });
            // SAFETY: the caller's contract; shard 0 takes the merged counts.
            unsafe {
                let slots = cells.cast::<std::sync::atomic::AtomicU64>();
                for (i, b) in buckets.iter().enumerate().take(bounds + 1) {
                    (*slots.add(i)).store(*b, Ordering::Relaxed);
                }
                (*slots.add(bounds + 1)).store(sum.to_bits(), Ordering::Relaxed);
                let ex = cells.add(layout.exemplars_at).cast::<ExemplarCell>();
                for (i, e) in exemplars.iter().enumerate().take(bounds + 1) {
                    if let Some(e) = e {
                        (*ex.add(i)).store_at(&e.trace, e.value, e.timestamp_nanos);
                    }
                }
                if let Some((shape, v)) = native {
                    let at = slots.add(layout.native_at);
                    shape.set_recorded(
                        std::slice::from_raw_parts(at, NativeShape::slots(Some(&shape.config))),
                        &v.buckets,
                    );
                    (*at).store(v.zero_count, Ordering::Relaxed);
                    for &(k, c) in &v.buckets {
                        let cell = &*at.add(1 + shape.slot_of_key(k));
                        cell.store(
                            cell.load(Ordering::Relaxed).saturating_add(c),
                            Ordering::Relaxed,
                        );
                    }
                }
            }
        }
    }
}

impl Value {
    pub(crate) fn cells_kind(&self) -> CellsKind {
        match self {
            Value::Count { .. } => CellsKind::Counter,
            Value::Float { .. } => CellsKind::Gauge,
            Value::Histogram { .. } => CellsKind::Histogram,
        }
    }
}

impl MergedFamily {
    /// Whether this family is exposed as `kind` says and holds any series.
    pub(crate) fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub(crate) fn kind(&self) -> MetricKind {
        self.record.kind
    }
}
