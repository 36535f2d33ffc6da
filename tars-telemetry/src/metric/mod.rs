//! Recording primitives. Each handle is an owned, cloneable `Arc` around atomics: recording
//! takes no lock and allocates nothing, and a handle can be held by any thread or binding.

pub(crate) mod counter;
mod exemplar;
pub(crate) mod gauge;
pub(crate) mod histogram;
pub(crate) mod native;

pub use counter::Counter;
pub use exemplar::{Exemplar, TraceRef};
pub use gauge::Gauge;
pub use histogram::Histogram;

pub(crate) use exemplar::ExemplarCell;

/// Why a value was refused. Refused values are dropped and counted in
/// `tars_telemetry_invalid_values_total{family}`; nothing panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidValue {
    /// NaN is never recorded.
    NaN,
    /// +Inf or -Inf.
    Infinite,
    /// A negative value where the family only counts or measures non-negative things.
    Negative,
    /// A fractional amount added to an integer counter.
    Fractional,
}

impl std::fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvalidValue::NaN => "value is NaN",
            InvalidValue::Infinite => "value is infinite",
            InvalidValue::Negative => "value is negative",
            InvalidValue::Fractional => "counter increments must be whole numbers",
        })
    }
}

impl std::error::Error for InvalidValue {}

/// Checks a value meant for a counter or a histogram of non-negative quantities.
#[inline]
pub(crate) fn check_non_negative(v: f64) -> Result<(), InvalidValue> {
    if (0.0..f64::INFINITY).contains(&v) {
        Ok(())
    } else if v.is_nan() {
        Err(InvalidValue::NaN)
    } else if v.is_infinite() {
        Err(InvalidValue::Infinite)
    } else {
        Err(InvalidValue::Negative)
    }
}
