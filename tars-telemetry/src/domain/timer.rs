use std::sync::Arc;
use std::time::Duration;

use super::{StageState, stage_guard};
use crate::metric::{Counter, Histogram};
use crate::stage::{StageEnd, StageSlot};

/// What a timed stage records into: its latency histogram, its event counter where the
/// family has one, and the abandoned-stage counter of its kind. Resolved once per
/// handle, so starting a timer clones one `Arc`.
#[derive(Debug)]
pub(crate) struct TimedTarget {
    pub(crate) histogram: Histogram,
    pub(crate) counter: Option<Counter>,
    pub(crate) abandoned: Counter,
}

impl TimedTarget {
    pub(crate) fn new(
        histogram: Histogram,
        counter: Option<Counter>,
        abandoned: Counter,
    ) -> Arc<Self> {
        Arc::new(TimedTarget {
            histogram,
            counter,
            abandoned,
        })
    }
}

/// Times one operation on the monotonic clock and records it when stopped or dropped:
/// the duration into a histogram and, where the family has one, one event into a counter.
///
/// A timer has no outcome, so it is a scope timer: dropping it stops it. A stage that did
/// not finish (a cancelled task) is [abandoned](Timer::abandon_with) instead, which
/// observes no duration. Bindings end every timer explicitly, never by garbage
/// collection. Holds only owned handles, so it can be kept across `.await` points.
///
/// ```
/// use tars_telemetry::Telemetry;
/// let t = Telemetry::new();
/// {
///     let _search = t.vector_store().start_search();
///     // ... the search ...
/// }
/// t.vector_store().start_search().abandon(); // cancelled: counted, not timed
/// assert_eq!(t.vector_store().searches().get(), 1);
/// ```
#[derive(Debug)]
#[must_use = "a timer records when it is dropped; bind it to a variable"]
pub struct Timer {
    target: Arc<TimedTarget>,
    pub(crate) state: StageState,
}

impl Timer {
    /// A timer that ends `stage` with it; a sampled stage's ids become the exemplar.
    #[inline]
    pub(crate) fn traced(target: &Arc<TimedTarget>, stage: StageSlot) -> Self {
        Timer {
            target: target.clone(),
            state: StageState::new(stage),
        }
    }

    pub(crate) fn has_trace(&self) -> bool {
        self.state.trace().is_some()
    }

    /// Records now and returns the duration recorded.
    pub fn stop(mut self) -> Duration {
        self.record().unwrap_or_default()
    }

    fn record(&mut self) -> Option<Duration> {
        let d = self.state.finish()?;
        let t = &self.target;
        match self.state.trace() {
            Some(tr) => {
                t.histogram.observe_with_exemplar(d.as_secs_f64(), tr);
                if let Some(c) = &t.counter {
                    c.inc_by_with_exemplar(1, tr);
                }
            }
            None => {
                t.histogram.observe_duration(d);
                if let Some(c) = &t.counter {
                    c.inc();
                }
            }
        }
        self.state.end_span(StageEnd::Done);
        Some(d)
    }

    fn abandon_inner(&mut self, error_type: &str) {
        if self.state.finish().is_some() {
            self.target.abandoned.inc();
            self.state.end_span(StageEnd::Abandoned { error_type });
        }
    }
}

stage_guard!(Timer, drop = stop);
