use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Counter, InvalidValue};

#[derive(Debug, Default)]
pub(crate) struct GaugeCore {
    bits: AtomicU64,
    pub(crate) invalid: Counter,
}

impl GaugeCore {
    pub(crate) fn new(invalid: Counter) -> Self {
        GaugeCore {
            bits: AtomicU64::new(0f64.to_bits()),
            invalid,
        }
    }

    fn update(&self, f: impl Fn(f64) -> f64) {
        let mut cur = self.bits.load(Ordering::Relaxed);
        loop {
            let next = f(f64::from_bits(cur));
            if next.is_nan() {
                self.invalid.inc();
                return;
            }
            match self.bits.compare_exchange_weak(
                cur,
                next.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
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
        Gauge(Arc::new(GaugeCore::new(Counter::detached())))
    }

    #[inline]
    /// Sets the value (NaN is refused and counted).
    pub fn set(&self, v: f64) {
        if v.is_nan() {
            self.0.invalid.inc();
            return;
        }
        self.0.bits.store(v.to_bits(), Ordering::Relaxed);
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
        f64::from_bits(self.0.bits.load(Ordering::Relaxed))
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
            self.bits.store(value.to_bits(), Ordering::Relaxed);
        }
    }
}
