//! JavaScript numbers as counts: what a count cannot be (negative, NaN, infinite) is 0,
//! a fraction is cut, and nothing past `u64::MAX` wraps.

/// `v` as a whole, non-negative count.
pub fn whole(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        // `as` saturates at u64::MAX.
        v as u64
    } else {
        0
    }
}
