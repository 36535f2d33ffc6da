//! Counts given as Python ints (sources, chunks, tokens, documents, connections, bytes).
//! A negative count is no count: ignored, never raised, so that recording cannot break
//! the request that records it (as NaN and negative observations are counted, not
//! raised, by the core). A count past the core's range saturates.

/// `n` as a `u64` count; `None` when negative.
pub fn u64_count(n: i64) -> Option<u64> {
    u64::try_from(n).ok()
}

/// `n` as a `u32` count; `None` when negative, `u32::MAX` past it.
pub fn u32_count(n: i64) -> Option<u32> {
    u64_count(n).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}
