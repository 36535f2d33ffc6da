use std::time::{Duration, Instant};

use crate::metric::{Counter, Histogram, TraceRef};
use crate::trace::StageSlot;

/// Times one operation on the monotonic clock and records it when dropped or stopped:
/// the duration into a histogram and, where the family has one, one event into a counter.
///
/// Holds only owned handles, so it can be kept across `.await` points and by bindings.
///
/// ```
/// use tars_telemetry::Telemetry;
/// let t = Telemetry::new();
/// {
///     let _search = t.vector_store().start_search();
///     // ... the search ...
/// }
/// assert_eq!(t.vector_store().searches().get(), 1);
/// ```
#[derive(Debug)]
#[must_use = "a timer records when it is dropped; bind it to a variable"]
pub struct Timer {
    histogram: Histogram,
    counter: Option<Counter>,
    start: Instant,
    trace: Option<TraceRef>,
    /// The span of the stage, when tracing made one; ended with the timer.
    pub(crate) stage: StageSlot,
    done: bool,
}

impl Timer {
    /// A timer that ends `stage` with it; a sampled stage's ids become the exemplar.
    #[inline]
    pub(crate) fn traced(histogram: Histogram, counter: Option<Counter>, stage: StageSlot) -> Self {
        Timer {
            histogram,
            counter,
            start: Instant::now(),
            trace: stage.as_ref().and_then(|s| s.trace_ref()),
            stage,
            done: false,
        }
    }

    pub(crate) fn has_trace(&self) -> bool {
        self.trace.is_some()
    }

    /// Attaches the trace the operation ran in, kept as an exemplar.
    pub fn set_trace(&mut self, trace: TraceRef) {
        self.trace = Some(trace);
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records now and returns the duration recorded.
    pub fn stop(mut self) -> Duration {
        self.record()
    }

    fn record(&mut self) -> Duration {
        let d = self.start.elapsed();
        if !self.done {
            self.done = true;
            match &self.trace {
                Some(t) => self.histogram.observe_with_exemplar(d.as_secs_f64(), t),
                None => self.histogram.observe_duration(d),
            }
            match (&self.counter, &self.trace) {
                (Some(c), Some(t)) => c.inc_by_with_exemplar(1, t),
                (Some(c), None) => c.inc(),
                _ => {}
            }
            if let Some(s) = self.stage.take() {
                s.end();
            }
        }
        d
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.record();
    }
}
