use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use super::{ExemplarCell, InvalidValue, TraceRef};

/// What a counter records into: in the handle's own allocation, or in a shared mapping
/// (multi-process mode). `repr(C)` because the mapping's layout is read by other processes.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct CounterCells {
    pub(crate) value: AtomicU64,
    pub(crate) exemplar: ExemplarCell,
}

#[derive(Debug)]
pub(crate) struct CounterCore {
    /// Points at `own`, or into a mapping that is never unmapped. Only a forked child,
    /// single-threaded, moves it (to its own file).
    cells: AtomicPtr<CounterCells>,
    own: CounterCells,
}

impl CounterCore {
    /// A counter recording into its own allocation.
    pub(crate) fn new_arc() -> Arc<CounterCore> {
        let core = Arc::new(CounterCore {
            cells: AtomicPtr::new(std::ptr::null_mut()),
            own: CounterCells::default(),
        });
        core.cells
            .store(std::ptr::from_ref(&core.own).cast_mut(), Ordering::Relaxed);
        core
    }

    /// A counter recording into `cells`.
    ///
    /// # Safety
    /// `cells` must stay valid, and be used only as atomics, for the life of the process.
    pub(crate) unsafe fn mapped_arc(cells: *mut CounterCells) -> Arc<CounterCore> {
        Arc::new(CounterCore {
            cells: AtomicPtr::new(cells),
            own: CounterCells::default(),
        })
    }

    #[inline]
    pub(crate) fn cells(&self) -> &CounterCells {
        // SAFETY: the pointer is `own` (alive as long as `self`) or a mapping that lives
        // for the process (see `mapped_arc`).
        unsafe { &*self.cells.load(Ordering::Relaxed) }
    }

    /// Points this counter at `cells` (a forked child moving to its own file).
    ///
    /// # Safety
    /// As for [`CounterCore::mapped_arc`].
    pub(crate) unsafe fn remap(&self, cells: *mut CounterCells) {
        self.cells.store(cells, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn value(&self) -> &AtomicU64 {
        &self.cells().value
    }
}

impl Default for Counter {
    fn default() -> Self {
        Counter(CounterCore::new_arc())
    }
}

/// A monotonically increasing count of whole events.
///
/// Recording is one relaxed atomic add: no lock, no allocation.
///
/// ```
/// use tars_telemetry::Counter;
/// let c = Counter::detached();
/// c.inc();
/// c.inc_by(41);
/// assert_eq!(c.get(), 42);
/// ```
#[derive(Debug, Clone)]
pub struct Counter(pub(crate) Arc<CounterCore>);

impl Counter {
    /// A counter not attached to any registry (for tests and defaults).
    pub fn detached() -> Self {
        Counter::default()
    }

    #[inline]
    /// Adds one.
    pub fn inc(&self) {
        self.0.value().fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.0.value().fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` and keeps `trace` as this counter's exemplar.
    #[inline]
    pub fn inc_by_with_exemplar(&self, n: u64, trace: &TraceRef) {
        self.0.value().fetch_add(n, Ordering::Relaxed);
        self.0.cells().exemplar.store(trace, n as f64);
    }

    /// Adds one, keeping `trace` (when given) as the exemplar.
    #[inline]
    pub fn inc_traced(&self, trace: Option<&TraceRef>) {
        match trace {
            Some(t) => self.inc_by_with_exemplar(1, t),
            None => self.inc(),
        }
    }

    /// Adds a whole, non-negative amount given as a float (what the bindings receive).
    pub fn try_inc_by_f64(&self, n: f64) -> Result<(), InvalidValue> {
        super::check_non_negative(n)?;
        if n.fract() != 0.0 {
            return Err(InvalidValue::Fractional);
        }
        self.inc_by(n as u64);
        Ok(())
    }

    /// Raises the counter to `value` if it is below it (the facade's `absolute`).
    pub fn raise_to(&self, value: u64) {
        self.0.value().fetch_max(value, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.value().load(Ordering::Relaxed)
    }

    pub(crate) fn reset(&self) {
        self.0.value().store(0, Ordering::Relaxed);
        self.0.cells().exemplar.clear();
    }

    /// The last exemplar, if any.
    pub fn exemplar(&self) -> Option<super::Exemplar> {
        self.0.cells().exemplar.load()
    }
}

impl metrics::CounterFn for CounterCore {
    fn increment(&self, value: u64) {
        self.value().fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.value().fetch_max(value, Ordering::Relaxed);
    }
}
