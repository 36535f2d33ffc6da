use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Counter, InvalidValue};

/// What a gauge records into (see `CounterCells`).
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct GaugeCells {
    /// The value's bits (0 is 0.0).
    pub(crate) bits: AtomicU64,
    /// Unix nanoseconds of the last change, kept only where workers' values merge by
    /// recency (`Merge::Latest`); 0 otherwise.
    pub(crate) stamp: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct GaugeCore {
    cells: AtomicPtr<GaugeCells>,
    own: GaugeCells,
    /// Whether changes are stamped with the time (see `GaugeCells::stamp`).
    stamped: bool,
    pub(crate) invalid: Counter,
}

impl GaugeCore {
    /// A gauge recording into its own allocation.
    pub(crate) fn new_arc(invalid: Counter) -> Arc<GaugeCore> {
        let core = Arc::new(GaugeCore {
            cells: AtomicPtr::new(std::ptr::null_mut()),
            own: GaugeCells::default(),
            stamped: false,
            invalid,
        });
        core.cells
            .store(std::ptr::from_ref(&core.own).cast_mut(), Ordering::Relaxed);
        core
    }

    /// A gauge recording into `cells`, stamping its changes if `stamped`.
    ///
    /// # Safety
    /// `cells` must stay valid, and be used only as atomics, for the life of the process.
    pub(crate) unsafe fn mapped_arc(
        cells: *mut GaugeCells,
        stamped: bool,
        invalid: Counter,
    ) -> Arc<GaugeCore> {
        Arc::new(GaugeCore {
            cells: AtomicPtr::new(cells),
            own: GaugeCells::default(),
            stamped,
            invalid,
        })
    }

    #[inline]
    pub(crate) fn cells(&self) -> &GaugeCells {
        // SAFETY: `own` or a mapping that lives for the process (see `mapped_arc`).
        unsafe { &*self.cells.load(Ordering::Relaxed) }
    }

    /// Points this gauge at `cells` (a forked child moving to its own file).
    ///
    /// # Safety
    /// As for [`GaugeCore::mapped_arc`].
    pub(crate) unsafe fn remap(&self, cells: *mut GaugeCells) {
        self.cells.store(cells, Ordering::Relaxed);
    }

    #[inline]
    fn stamp(&self) {
        if self.stamped {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            self.cells().stamp.store(now, Ordering::Relaxed);
        }
    }

    fn store(&self, v: f64) {
        self.cells().bits.store(v.to_bits(), Ordering::Relaxed);
        self.stamp();
    }

    fn update(&self, f: impl Fn(f64) -> f64) {
        let bits = &self.cells().bits;
        let mut cur = bits.load(Ordering::Relaxed);
        loop {
            let next = f(f64::from_bits(cur));
            if next.is_nan() {
                self.invalid.inc();
                return;
            }
            match bits.compare_exchange_weak(
                cur,
                next.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.stamp();
    }
}

/// A value that goes up and down: queue length, memory in use, open connections.
///
/// NaN is refused (dropped and counted in `tars_telemetry_invalid_values_total`).
///
/// ```
/// use tars_telemetry::Gauge;
/// let g = Gauge::detached();
/// g.set(3.0);
/// g.inc();
/// g.dec_by(2.0);
/// assert_eq!(g.get(), 2.0);
/// ```
#[derive(Debug, Clone)]
pub struct Gauge(pub(crate) Arc<GaugeCore>);

impl Gauge {
    /// A gauge not attached to any registry.
    pub fn detached() -> Self {
        Gauge(GaugeCore::new_arc(Counter::detached()))
    }

    #[inline]
    /// Sets the value (NaN is refused and counted).
    pub fn set(&self, v: f64) {
        if v.is_nan() {
            self.0.invalid.inc();
            return;
        }
        self.0.store(v);
    }

    /// Sets the value, reporting NaN as an error instead of dropping it silently.
    pub fn try_set(&self, v: f64) -> Result<(), InvalidValue> {
        if v.is_nan() {
            self.0.invalid.inc();
            return Err(InvalidValue::NaN);
        }
        self.set(v);
        Ok(())
    }

    #[inline]
    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1.0)
    }

    #[inline]
    /// Subtracts one.
    pub fn dec(&self) {
        self.inc_by(-1.0)
    }

    #[inline]
    /// Adds `d`.
    pub fn inc_by(&self, d: f64) {
        self.0.update(|v| v + d)
    }

    #[inline]
    /// Subtracts `d`.
    pub fn dec_by(&self, d: f64) {
        self.0.update(|v| v - d)
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.cells().bits.load(Ordering::Relaxed))
    }
}

impl metrics::GaugeFn for GaugeCore {
    fn increment(&self, value: f64) {
        self.update(|v| v + value)
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value)
    }

    fn set(&self, value: f64) {
        if value.is_nan() {
            self.invalid.inc();
        } else {
            self.store(value);
        }
    }
}
