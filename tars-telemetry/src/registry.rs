//! Families and their series: label values resolve to owned recording handles, within a
//! per-family series budget.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use parking_lot::RwLock;

use hashbrown::{Equivalent, HashMap};

use crate::catalog::{Merge, MetricDef, MetricKind};
use crate::error::Error;
use crate::metric::native::NativeShape;
use crate::metric::{Counter, Gauge, Histogram};
use crate::metric::{counter::CounterCore, gauge::GaugeCore, histogram::HistogramCore};
use crate::multiproc::{CellsKind, FamilyRecord, SeriesSlot, Store};

/// Label value given to every label of the series that absorbs label sets past the budget.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

/// Default number of series a family may hold before new label sets fold into overflow.
pub const DEFAULT_SERIES_BUDGET: usize = 1000;

/// Default number of families a registry holds (the catalog included) before it refuses
/// new ones: names that come from data rather than code would otherwise grow it forever.
pub const DEFAULT_FAMILY_BUDGET: usize = 2000;

/// The recording handle of one series.
#[derive(Debug, Clone)]
pub enum Metric {
    /// A counter series.
    Counter(Counter),
    /// A gauge (or info, or mirrored) series.
    Gauge(Gauge),
    /// A histogram series.
    Histogram(Histogram),
}

impl Metric {
    /// The type of this handle.
    pub fn kind(&self) -> MetricKind {
        match self {
            Metric::Counter(_) => MetricKind::Counter,
            Metric::Gauge(_) => MetricKind::Gauge,
            Metric::Histogram(_) => MetricKind::Histogram,
        }
    }
}

/// A family's description, owned so that families arriving through the `metrics` facade
/// can be described the same way as catalog ones.
#[derive(Debug, Clone)]
pub struct FamilyDesc {
    /// The exposed name (counters with `_total`).
    pub name: Cow<'static, str>,
    /// HELP text.
    pub help: Cow<'static, str>,
    /// The family type.
    pub kind: MetricKind,
    /// The unit, when the name ends with it.
    pub unit: Option<Cow<'static, str>>,
    /// Label names, in exposition order.
    pub labels: Vec<Cow<'static, str>>,
    /// Upper bucket bounds of a histogram; empty otherwise (or for a native-only one).
    pub buckets: Arc<[f64]>,
    /// A histogram's native buckets, if it has them.
    pub native: Option<crate::catalog::NativeBuckets>,
}

impl From<&MetricDef> for FamilyDesc {
    fn from(d: &MetricDef) -> Self {
        FamilyDesc {
            name: Cow::Borrowed(d.name),
            help: Cow::Borrowed(d.help),
            kind: d.kind,
            unit: d.unit.map(Cow::Borrowed),
            labels: d.labels.iter().map(|l| Cow::Borrowed(*l)).collect(),
            buckets: d.buckets.into(),
            native: d.native,
        }
    }
}

impl FamilyDesc {
    /// The family name OpenMetrics uses (counters without `_total`, info without `_info`).
    pub fn openmetrics_name(&self) -> &str {
        self.kind.openmetrics_family(&self.name)
    }

    /// Every name this family takes in either exposition format: its family names and
    /// the names of its samples, `_created` included (a parser reserves it even where it
    /// is not written). Two families that share one of these break the whole scrape.
    pub(crate) fn output_names(&self) -> Vec<String> {
        let base = self.openmetrics_name();
        let suffixes: &[&str] = match self.kind {
            MetricKind::Counter => &["", "_total", "_created"],
            MetricKind::Gauge => &[""],
            MetricKind::Histogram => &["", "_bucket", "_count", "_sum", "_created"],
            MetricKind::Info => &["", "_info"],
        };
        let mut names: Vec<String> = suffixes.iter().map(|s| format!("{base}{s}")).collect();
        if !names.iter().any(|n| *n == self.name) {
            names.push(self.name.to_string());
        }
        names
    }
}

/// One series: its label values, pre-rendered for exposition, and its handle.
#[derive(Debug)]
pub(crate) struct Series {
    /// `a="x",b="y"` (escaped), empty for a family without labels.
    pub(crate) rendered_labels: Box<str>,
    pub(crate) metric: Metric,
    /// Where the series lives in the multi-process file, if it does.
    slot: Option<SeriesSlot>,
}

impl Series {
    fn forget(&self) {
        if let Some(slot) = self.slot {
            slot.remove();
        }
    }
}

/// A family's side of the multi-process file: the store, and the family as files
/// describe it.
#[derive(Debug)]
struct Shared {
    store: Arc<Store>,
    record: FamilyRecord,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LabelKey(Box<[Box<str>]>);

/// Borrowed form of a key, so that lookups of an existing series allocate nothing.
struct LabelQuery<'a>(&'a [&'a str]);

impl Hash for LabelQuery<'_> {
    // (see `query_hashes_like_key` below)
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `[Box<str>]` does.
        state.write_usize(self.0.len());
        for v in self.0 {
            v.hash(state);
        }
    }
}

impl Equivalent<LabelKey> for LabelQuery<'_> {
    fn equivalent(&self, key: &LabelKey) -> bool {
        key.0.len() == self.0.len() && key.0.iter().zip(self.0).all(|(a, b)| &**a == *b)
    }
}

#[derive(Debug, Default)]
pub(crate) struct SeriesSet {
    index: HashMap<LabelKey, usize>,
    /// Insertion order, so exposition is stable.
    pub(crate) list: Vec<Series>,
    pub(crate) overflow: Option<Series>,
}

impl SeriesSet {
    /// The label values of each series of `list`, in its order.
    pub(crate) fn keys_in_order(&self) -> Vec<&[Box<str>]> {
        let mut keys: Vec<&[Box<str>]> = vec![&[]; self.list.len()];
        for (k, &i) in &self.index {
            keys[i] = &k.0;
        }
        keys
    }
}

/// A metric family and its series.
#[derive(Debug)]
pub struct Family {
    pub(crate) desc: FamilyDesc,
    pub(crate) series: RwLock<SeriesSet>,
    budget: usize,
    /// Pre-rendered `le` values, one per bound plus `+Inf`.
    pub(crate) le: Box<[Box<str>]>,
    /// Where a histogram's native buckets lie, shared by its series.
    pub(crate) native: Option<Arc<NativeShape>>,
    overflow: Counter,
    invalid: Counter,
    /// How workers' values of this family combine.
    merge: Merge,
    /// A fixed-point counter's divisor: the exposed value is the count divided by it.
    pub(crate) fixed_point: Option<f64>,
    shared: Option<Shared>,
}

impl Family {
    fn new(
        desc: FamilyDesc,
        budget: usize,
        overflow: Counter,
        invalid: Counter,
        store: Option<&Arc<Store>>,
    ) -> Self {
        let def = crate::catalog::find(&desc.name).filter(|d| d.kind == desc.kind);
        let merge = def.map_or(Merge::for_kind(desc.kind), |d| d.merge);
        let fixed_point = def.and_then(MetricDef::fixed_point_divisor);
        let shared = store.map(|store| Shared {
            store: store.clone(),
            record: FamilyRecord {
                name: desc.name.to_string(),
                help: desc.help.to_string(),
                kind: desc.kind,
                merge,
                unit: desc.unit.as_ref().map(|u| u.to_string()),
                labels: desc.labels.iter().map(|l| l.to_string()).collect(),
                buckets: desc.buckets.to_vec(),
                native: desc.native.filter(|_| desc.kind == MetricKind::Histogram),
            },
        });
        let native = desc
            .native
            .filter(|_| desc.kind == MetricKind::Histogram)
            .map(|n| Arc::new(NativeShape::new(n)));
        let le = desc
            .buckets
            .iter()
            .map(|b| crate::text::format_le(*b).into_boxed_str())
            .chain(std::iter::once("+Inf".into()))
            .collect();
        Family {
            desc,
            series: RwLock::new(SeriesSet::default()),
            budget,
            le,
            native,
            overflow,
            invalid,
            merge,
            fixed_point,
            shared,
        }
    }

    /// How workers' values of this family combine in multi-process mode.
    pub fn merge(&self) -> Merge {
        self.merge
    }

    /// The family description.
    pub fn desc(&self) -> &FamilyDesc {
        &self.desc
    }

    /// The exposed name.
    pub fn name(&self) -> &str {
        &self.desc.name
    }

    /// Series this family may hold before new label sets fold into its overflow series.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Number of series held, the overflow series included.
    pub fn series_count(&self) -> usize {
        let s = self.series.read();
        s.list.len() + usize::from(s.overflow.is_some())
    }

    /// A new series' handle: in its own allocation, or in the multi-process file (then
    /// with its slot there). `mirrored` asks for a gauge cell whatever the family type.
    fn new_metric(
        &self,
        labels: &str,
        mirrored: bool,
    ) -> Result<(Metric, Option<SeriesSlot>), Error> {
        let kind = match self.desc.kind {
            MetricKind::Histogram => CellsKind::Histogram,
            MetricKind::Counter if !mirrored => CellsKind::Counter,
            _ => CellsKind::Gauge,
        };
        let in_process = |kind| match kind {
            CellsKind::Counter => Metric::Counter(Counter(CounterCore::new_arc())),
            CellsKind::Gauge => Metric::Gauge(Gauge(GaugeCore::new_arc(self.invalid.clone()))),
            CellsKind::Histogram => Metric::Histogram(Histogram(Arc::new(HistogramCore::new(
                self.desc.buckets.clone(),
                self.native.clone(),
                self.invalid.clone(),
            )))),
        };
        let Some(shared) = &self.shared else {
            return Ok((in_process(kind), None));
        };
        match shared
            .store
            .add_series(&shared.record, kind, labels, |_| {})
        {
            Ok(new) => Ok((
                self.mapped_metric(kind, new.cells),
                Some(SeriesSlot::new(&new)),
            )),
            Err(e) => {
                // Recording must go on: this series counts in this process only.
                tracing::warn!(family = %self.desc.name, error = %e, "series kept out of the multi-process directory");
                Ok((in_process(kind), None))
            }
        }
    }

    /// A handle over cells in the multi-process file.
    fn mapped_metric(&self, kind: CellsKind, cells: *mut u8) -> Metric {
        // SAFETY: `cells` are fresh cells of `kind` in a mapping that is never unmapped.
        unsafe {
            match kind {
                CellsKind::Counter => {
                    Metric::Counter(Counter(CounterCore::mapped_arc(cells.cast())))
                }
                CellsKind::Gauge => Metric::Gauge(Gauge(GaugeCore::mapped_arc(
                    cells.cast(),
                    self.merge == Merge::Latest,
                    self.invalid.clone(),
                ))),
                CellsKind::Histogram => {
                    Metric::Histogram(Histogram(Arc::new(HistogramCore::mapped(
                        self.desc.buckets.clone(),
                        self.native.clone(),
                        cells,
                        self.invalid.clone(),
                    ))))
                }
            }
        }
    }

    /// Returns the handle of the series with these label values, creating it if the budget
    /// allows and folding it into the overflow series if not.
    ///
    /// Looking up an existing series takes a shared read lock and allocates nothing; keep
    /// the returned handle to record without any lookup at all.
    pub fn resolve(&self, values: &[&str]) -> Result<Metric, Error> {
        self.resolve_with(values, false)
    }

    fn resolve_with(&self, values: &[&str], mirrored: bool) -> Result<Metric, Error> {
        if values.len() != self.desc.labels.len() {
            return Err(Error::LabelCount {
                family: self.desc.name.to_string(),
                expected: self.desc.labels.len(),
                got: values.len(),
            });
        }
        let query = LabelQuery(values);
        {
            let set = self.series.read();
            if let Some(&i) = set.index.get(&query) {
                return Ok(set.list[i].metric.clone());
            }
        }
        let mut set = self.series.write();
        if let Some(&i) = set.index.get(&query) {
            return Ok(set.list[i].metric.clone());
        }
        let rendered_labels = render_labels(&self.desc.labels, values);
        // In multi-process mode the budget is the service's: a label set another worker
        // has already is admitted, a new one only while the service has room.
        let admitted = set.list.len() < self.budget
            && self
                .shared
                .as_ref()
                .is_none_or(|s| s.store.admit(&s.record.name, &rendered_labels, self.budget));
        if !admitted {
            self.overflow.inc();
            if set.overflow.is_none() {
                let overflow_values = vec![OVERFLOW_LABEL_VALUE; values.len()];
                let rendered_labels = render_labels(&self.desc.labels, &overflow_values);
                let (metric, slot) = self.new_metric(&rendered_labels, mirrored)?;
                set.overflow = Some(Series {
                    rendered_labels,
                    metric,
                    slot,
                });
            }
            return Ok(set.overflow.as_ref().expect("set above").metric.clone());
        }
        let (metric, slot) = self.new_metric(&rendered_labels, mirrored)?;
        let key = LabelKey(values.iter().map(|v| Box::<str>::from(*v)).collect());
        let idx = set.list.len();
        set.list.push(Series {
            rendered_labels,
            metric: metric.clone(),
            slot,
        });
        set.index.insert(key, idx);
        Ok(metric)
    }

    /// Returns a gauge-backed series in a family of any kind: for values mirrored from
    /// elsewhere (a kernel or driver counter read on an interval, possibly fractional),
    /// which are set rather than added to. The family keeps its exposed type.
    pub fn resolve_mirrored(&self, values: &[&str]) -> Result<Gauge, Error> {
        if self.desc.kind == MetricKind::Histogram {
            return Err(Error::WrongKind {
                family: self.desc.name.to_string(),
                expected: "counter or gauge",
            });
        }
        match self.resolve_with(values, true)? {
            Metric::Gauge(g) => Ok(g),
            _ => Err(Error::WrongKind {
                family: self.desc.name.to_string(),
                expected: "mirrored series",
            }),
        }
    }

    /// Removes one series, so that a thing that is gone (a lost GPU, an unmounted disk)
    /// stops being exported instead of showing its last value forever. Handles to it keep
    /// working but are no longer exposed. Returns whether the series existed.
    pub fn remove(&self, values: &[&str]) -> bool {
        let mut set = self.series.write();
        let Some(i) = set.index.remove(&LabelQuery(values)) else {
            return false;
        };
        set.list.swap_remove(i).forget();
        let last = set.list.len();
        if i < last {
            // The last series moved into slot i: point its key there.
            if let Some(moved) = set.index.values_mut().find(|idx| **idx == last) {
                *moved = i;
            }
        }
        true
    }

    /// Removes every series (used to replace an info family's single series).
    pub(crate) fn clear(&self) {
        let mut set = self.series.write();
        for s in set.list.iter().chain(set.overflow.as_ref()) {
            s.forget();
        }
        *set = SeriesSet::default();
    }

    /// In a forked child: moves every series into the child's own file. Readings that stay
    /// true in the child (gauges merged by max, recency or union) keep their values; the
    /// rest start from zero, as the child counts only what it records itself.
    fn move_to_own_file(&self) -> Result<(), Error> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let keep_gauges = matches!(self.merge, Merge::Max | Merge::Latest | Merge::Union);
        let mut set = self.series.write();
        let set = &mut *set;
        for s in set.list.iter_mut().chain(set.overflow.as_mut()) {
            let (kind, copy_from) = match &s.metric {
                Metric::Counter(_) => (CellsKind::Counter, None),
                Metric::Gauge(g) => (CellsKind::Gauge, keep_gauges.then(|| g.0.cells())),
                Metric::Histogram(_) => (CellsKind::Histogram, None),
            };
            let new =
                shared
                    .store
                    .add_series(&shared.record, kind, &s.rendered_labels, |cells| {
                        if let Some(old) = copy_from {
                            // SAFETY: fresh gauge cells, not yet published.
                            let new = unsafe { &*cells.cast::<crate::metric::gauge::GaugeCells>() };
                            new.bits.store(
                                old.bits.load(std::sync::atomic::Ordering::Relaxed),
                                std::sync::atomic::Ordering::Relaxed,
                            );
                            new.stamp.store(
                                old.stamp.load(std::sync::atomic::Ordering::Relaxed),
                                std::sync::atomic::Ordering::Relaxed,
                            );
                        }
                    })?;
            // SAFETY: fresh cells of the handle's kind in a mapping never unmapped; the
            // child is single-threaded here, so no record races the move.
            unsafe {
                match &s.metric {
                    Metric::Counter(c) => c.0.remap(new.cells.cast()),
                    Metric::Gauge(g) => g.0.remap(new.cells.cast()),
                    Metric::Histogram(h) => h.0.remap(new.cells),
                }
            }
            s.slot = Some(SeriesSlot::new(&new));
        }
        Ok(())
    }
}

fn render_labels(names: &[Cow<'static, str>], values: &[&str]) -> Box<str> {
    let mut out = String::new();
    for (i, (n, v)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(n);
        out.push_str("=\"");
        crate::text::escape_label_value(v, &mut out);
        out.push('"');
    }
    out.into_boxed_str()
}

/// Settings of a registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Series a family may hold before new label sets fold into the overflow series.
    pub series_budget: usize,
    /// Per-family overrides of `series_budget`, by family name.
    pub family_budgets: Vec<(String, usize)>,
    /// Families the registry holds, the catalog included, before it refuses new ones
    /// with [`Error::TooManyFamilies`].
    pub family_budget: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            series_budget: DEFAULT_SERIES_BUDGET,
            family_budgets: Vec::new(),
            family_budget: DEFAULT_FAMILY_BUDGET,
        }
    }
}

/// The registered families, in registration order, with hashed indexes by name.
#[derive(Debug, Default)]
struct Families {
    list: Vec<Arc<Family>>,
    by_name: HashMap<Box<str>, Arc<Family>>,
    /// Every output name taken (see [`FamilyDesc::output_names`]), with its family's name.
    taken: HashMap<Box<str>, Box<str>>,
}

impl Families {
    /// The family that already takes one of `desc`'s output names, if any.
    fn clash(&self, desc: &FamilyDesc) -> Option<&str> {
        desc.output_names()
            .iter()
            .find_map(|n| self.taken.get(n.as_str()))
            .map(|owner| &**owner)
    }

    fn take_names(&mut self, desc: &FamilyDesc) {
        for n in desc.output_names() {
            self.taken.insert(n.into(), (*desc.name).into());
        }
    }
}

#[derive(Debug)]
struct RegistryInner {
    families: RwLock<Families>,
    config: RegistryConfig,
    /// The multi-process store, when the workers of a service share one directory.
    store: Option<Arc<Store>>,
    overflow_family: Arc<Family>,
    invalid_family: Arc<Family>,
}

/// All families of a process. Cheap to clone (an `Arc`).
///
/// ```
/// use tars_telemetry::{Registry, RegistryConfig, Metric};
/// use tars_telemetry::catalog;
///
/// let registry = Registry::new(RegistryConfig::default());
/// let family = registry.register(&catalog::LLM_TOKENS_GENERATED).unwrap();
/// let Metric::Counter(tokens) = family.resolve(&["llama3"]).unwrap() else { unreachable!() };
/// tokens.inc_by(12);
/// assert!(registry.render_string(tars_telemetry::Format::Prometheus)
///     .contains("tars_llm_tokens_generated_total{model=\"llama3\"} 12"));
/// ```
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<RegistryInner>,
}

impl Registry {
    /// An empty registry with these settings.
    pub fn new(config: RegistryConfig) -> Self {
        Self::with_store(config, None)
    }

    /// An empty registry whose series live in the multi-process directory `dir` (created
    /// if missing), shared with the other workers of the service; see [`crate::multiproc`].
    ///
    /// A directory other users can write to is refused with
    /// [`Error::MultiprocessDirShared`] unless `TARS_TELEMETRY_MULTIPROC_ALLOW_SHARED=1`.
    pub fn new_multiprocess(config: RegistryConfig, dir: &std::path::Path) -> Result<Self, Error> {
        Self::new_multiprocess_with(config, dir, false)
    }

    pub(crate) fn new_multiprocess_with(
        config: RegistryConfig,
        dir: &std::path::Path,
        allow_shared: bool,
    ) -> Result<Self, Error> {
        let store = Arc::new(Store::open(dir, allow_shared)?);
        Ok(Self::with_store(config, Some(store)))
    }

    fn with_store(config: RegistryConfig, store: Option<Arc<Store>>) -> Self {
        use crate::catalog::{SELF_INVALID_VALUES, SELF_SERIES_OVERFLOW};
        let unbounded = usize::MAX;
        let mk = |d: &MetricDef| {
            Arc::new(Family::new(
                d.into(),
                unbounded,
                Counter::detached(),
                Counter::detached(),
                store.as_ref(),
            ))
        };
        let overflow_family = mk(&SELF_SERIES_OVERFLOW);
        let invalid_family = mk(&SELF_INVALID_VALUES);
        let mut families = Families::default();
        families.take_names(&overflow_family.desc);
        families.take_names(&invalid_family.desc);
        Registry {
            inner: Arc::new(RegistryInner {
                families: RwLock::new(families),
                config,
                store,
                overflow_family,
                invalid_family,
            }),
        }
    }

    fn budget_for(&self, name: &str) -> usize {
        self.inner
            .config
            .family_budgets
            .iter()
            .find(|(n, _)| n == name)
            .map_or(self.inner.config.series_budget, |(_, b)| *b)
    }

    fn self_counter(family: &Family, name: &str) -> Counter {
        match family.resolve(&[name]) {
            Ok(Metric::Counter(c)) => c,
            _ => Counter::detached(),
        }
    }

    /// Registers a catalog family, or returns it if a family of that name exists already
    /// with the same type and labels.
    pub fn register(&self, def: &MetricDef) -> Result<Arc<Family>, Error> {
        self.register_desc(def.into())
    }

    /// Registers a family from an owned description (families from the `metrics` facade).
    ///
    /// The first family to take a name keeps it: a family with the same name but another
    /// type or labels, or one whose exposed names overlap another's (`x` beside `x_total`,
    /// `x_count` beside histogram `x`), is refused with [`Error::Conflict`]; a family past
    /// the registry's family budget with [`Error::TooManyFamilies`].
    pub fn register_desc(&self, desc: FamilyDesc) -> Result<Arc<Family>, Error> {
        let self_family = match &*desc.name {
            n if n == self.inner.overflow_family.name() => Some(&self.inner.overflow_family),
            n if n == self.inner.invalid_family.name() => Some(&self.inner.invalid_family),
            _ => None,
        };
        if let Some(f) = self_family {
            return Ok(f.clone());
        }
        if let Some(existing) = self.get(&desc.name) {
            return Self::same_or_conflict(existing, &desc);
        }
        let mut families = self.inner.families.write();
        if let Some(f) = families.by_name.get(&*desc.name) {
            return Self::same_or_conflict(f.clone(), &desc);
        }
        if let Some(owner) = families.clash(&desc) {
            return Err(Error::Conflict {
                family: desc.name.to_string(),
                existing: format!("{owner}, whose exposed names overlap"),
                requested: format!("{:?} {:?}", desc.kind, desc.labels),
            });
        }
        let budget = self.inner.config.family_budget;
        if families.list.len() >= budget {
            return Err(Error::TooManyFamilies {
                family: desc.name.to_string(),
                budget,
            });
        }
        let overflow = Self::self_counter(&self.inner.overflow_family, &desc.name);
        let invalid = Self::self_counter(&self.inner.invalid_family, &desc.name);
        let family = Arc::new(Family::new(
            desc.clone(),
            self.budget_for(&desc.name),
            overflow,
            invalid,
            self.inner.store.as_ref(),
        ));
        families.take_names(&desc);
        families.by_name.insert((*desc.name).into(), family.clone());
        families.list.push(family.clone());
        Ok(family)
    }

    fn same_or_conflict(existing: Arc<Family>, desc: &FamilyDesc) -> Result<Arc<Family>, Error> {
        if existing.desc.kind == desc.kind
            && existing.desc.labels == desc.labels
            && existing.desc.native == desc.native
        {
            Ok(existing)
        } else {
            Err(Error::Conflict {
                family: desc.name.to_string(),
                existing: format!("{:?} {:?}", existing.desc.kind, existing.desc.labels),
                requested: format!("{:?} {:?}", desc.kind, desc.labels),
            })
        }
    }

    /// The family with this exposed name, if registered.
    pub fn get(&self, name: &str) -> Option<Arc<Family>> {
        self.inner.families.read().by_name.get(name).cloned()
    }

    /// The family budget this registry was configured with.
    pub fn family_budget(&self) -> usize {
        self.inner.config.family_budget
    }

    /// Every family, registration order first, the self-metrics last.
    pub fn families(&self) -> Vec<Arc<Family>> {
        let mut v = self.inner.families.read().list.clone();
        v.push(self.inner.overflow_family.clone());
        v.push(self.inner.invalid_family.clone());
        v
    }

    pub(crate) fn with_families<R>(&self, f: impl FnOnce(&[Arc<Family>], [&Family; 2]) -> R) -> R {
        let families = self.inner.families.read();
        f(
            &families.list,
            [&self.inner.overflow_family, &self.inner.invalid_family],
        )
    }

    /// The multi-process directory this registry's series live in, if any.
    pub fn multiprocess_dir(&self) -> Option<&std::path::Path> {
        self.inner.store.as_deref().map(Store::dir)
    }

    pub(crate) fn store(&self) -> Option<&Arc<Store>> {
        self.inner.store.as_ref()
    }

    /// Takes every lock of the registry and keeps it taken, so that no other thread is
    /// inside one when the process forks. Undone by [`Registry::unlock_after_fork`].
    pub(crate) fn lock_for_fork(&self) {
        let families = self.inner.families.write();
        for f in families.list.iter().chain(self.self_families()) {
            std::mem::forget(f.series.write());
        }
        std::mem::forget(families);
        if let Some(store) = &self.inner.store {
            store.lock_for_fork();
        }
    }

    /// In a forked child of a multi-process service: gives the child a file of its own
    /// and moves every series there, so that the child never appends to its parent's.
    pub(crate) fn move_to_own_file(&self) -> Result<(), Error> {
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        store.restart_in_child()?;
        for f in self.families() {
            f.move_to_own_file()?;
        }
        Ok(())
    }

    /// Releases what [`Registry::lock_for_fork`] took, in the parent or the child.
    ///
    /// # Safety
    /// `lock_for_fork` must have run, in this process or in the parent before the fork,
    /// with no unlock since.
    pub(crate) unsafe fn unlock_after_fork(&self) {
        // SAFETY: the list is write-locked by us (the caller's contract), so no one else
        // reads or writes it.
        let families = unsafe { &*self.inner.families.data_ptr() };
        for f in families.list.iter().chain(self.self_families()) {
            // SAFETY: locked by `lock_for_fork`, whose guard was forgotten.
            unsafe { f.series.force_unlock_write() };
        }
        // SAFETY: as above.
        unsafe { self.inner.families.force_unlock_write() };
        if let Some(store) = &self.inner.store {
            // SAFETY: taken by `lock_for_fork` with the rest.
            unsafe { store.unlock_after_fork() };
        }
    }

    fn self_families(&self) -> [&Arc<Family>; 2] {
        [&self.inner.overflow_family, &self.inner.invalid_family]
    }

    /// Zeroes what a worker accumulates (counters, histograms, gauges of things in flight),
    /// keeping readings that stay true in a forked child (latest/max gauges, info).
    pub(crate) fn reset_values(&self) {
        for f in self.families() {
            let set = f.series.read();
            for s in set.list.iter().chain(set.overflow.as_ref()) {
                match (&s.metric, f.merge) {
                    (Metric::Counter(c), _) => c.reset(),
                    (Metric::Histogram(h), _) => h.0.reset(),
                    (Metric::Gauge(g), Merge::Sum | Merge::LiveSum) => g.set(0.0),
                    (Metric::Gauge(_), _) => {}
                }
            }
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(RegistryConfig::default())
    }
}

// Keep the hasher of `LabelQuery` honest: it must agree with the key's.
#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn query_hashes_like_key() {
        let s = hashbrown::DefaultHashBuilder::default();
        let key = LabelKey(vec!["a".into(), "bc".into()].into_boxed_slice());
        let q = LabelQuery(&["a", "bc"]);
        assert_eq!(s.hash_one(&key), s.hash_one(&q));
    }
}
