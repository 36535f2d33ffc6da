use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::{SystemTime, UNIX_EPOCH};

/// The trace a recorded value belongs to: a W3C trace id and span id.
///
/// ```
/// use tars_telemetry::TraceRef;
/// let t = TraceRef::new([1; 16], [2; 8]);
/// assert!(t.is_valid());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceRef {
    /// The W3C trace id.
    pub trace_id: [u8; 16],
    /// The W3C span id.
    pub span_id: [u8; 8],
}

impl TraceRef {
    /// A trace reference from its ids.
    pub const fn new(trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        TraceRef { trace_id, span_id }
    }

    /// All-zero ids are invalid in W3C trace context and are never attached.
    pub fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }
}

/// A recorded exemplar, as read back for exposition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar {
    /// The trace and span.
    pub trace: TraceRef,
    /// The value observed.
    pub value: f64,
    /// Unix time of the observation, in nanoseconds.
    pub timestamp_nanos: u64,
}

/// One exemplar slot, written without a lock: a sequence lock whose writers never wait.
///
/// A writer that finds another writer mid-update skips its write (an exemplar is a sample,
/// not a record), and a reader retries until it sees a consistent copy.
#[derive(Debug, Default)]
#[repr(C)] // its layout is shared with other processes in multi-process mode
pub(crate) struct ExemplarCell {
    seq: AtomicU64,
    value: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span: AtomicU64,
    timestamp: AtomicU64,
}

impl ExemplarCell {
    pub(crate) fn store(&self, trace: &TraceRef, value: f64) {
        if !trace.is_valid() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.store_at(trace, value, now);
    }

    /// Stores an exemplar taken at `now` (Unix nanoseconds).
    pub(crate) fn store_at(&self, trace: &TraceRef, value: f64, now: u64) {
        if !trace.is_valid() {
            return;
        }
        let seq = self.seq.load(Ordering::Relaxed);
        if seq & 1 == 1
            || self
                .seq
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        let (hi, lo) = trace.trace_id.split_at(8);
        self.value.store(value.to_bits(), Ordering::Relaxed);
        self.trace_hi.store(
            u64::from_be_bytes(hi.try_into().unwrap()),
            Ordering::Relaxed,
        );
        self.trace_lo.store(
            u64::from_be_bytes(lo.try_into().unwrap()),
            Ordering::Relaxed,
        );
        self.span
            .store(u64::from_be_bytes(trace.span_id), Ordering::Relaxed);
        self.timestamp.store(now, Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
    }

    /// Forgets the exemplar (a forked child starts from zero).
    pub(crate) fn clear(&self) {
        self.seq.store(0, Ordering::Release);
    }

    pub(crate) fn load(&self) -> Option<Exemplar> {
        for _ in 0..64 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 == 0 {
                return None;
            }
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let value = f64::from_bits(self.value.load(Ordering::Relaxed));
            let hi = self.trace_hi.load(Ordering::Relaxed);
            let lo = self.trace_lo.load(Ordering::Relaxed);
            let span = self.span.load(Ordering::Relaxed);
            let timestamp_nanos = self.timestamp.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                let mut trace_id = [0; 16];
                trace_id[..8].copy_from_slice(&hi.to_be_bytes());
                trace_id[8..].copy_from_slice(&lo.to_be_bytes());
                return Some(Exemplar {
                    trace: TraceRef::new(trace_id, span.to_be_bytes()),
                    value,
                    timestamp_nanos,
                });
            }
        }
        None
    }
}
