use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Outcome, RagPhase, Timer, counter, histogram, per_variant};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Histogram, TraceRef};
use crate::registry::Registry;
use crate::trace::{Hook, Stage, StageSlot};

#[derive(Debug)]
struct RagInner {
    duration: Histogram,
    queries: [Counter; 2],
    failed: Counter,
    phases: [Histogram; 3],
    sources: Histogram,
    relevance: Histogram,
    hook: Hook,
}

/// RAG query metrics: duration, outcome, phase durations, sources and relevance.
///
/// ```
/// use tars_telemetry::{Telemetry, RagPhase};
/// let t = Telemetry::new();
/// let mut query = t.rag().start_query();
/// {
///     let _retrieval = query.phase(RagPhase::Retrieval);
///     // embed the question, search the vector store ...
/// }
/// query.set_sources(4);
/// query.set_relevance(0.82);
/// query.succeed();
/// assert_eq!(t.rag().query_count(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct RagMetrics(Arc<RagInner>);

impl RagMetrics {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        let phase_family = reg.register(&c::RAG_PHASE_DURATION)?;
        let queries_family = reg.register(&c::RAG_QUERIES)?;
        Ok(RagMetrics(Arc::new(RagInner {
            duration: histogram(reg, &c::RAG_QUERY_DURATION, &[])?,
            queries: per_variant(Outcome::ALL, |o| {
                super::counter_in(&queries_family, &[o.as_str()])
            })?,
            failed: counter(reg, &c::RAG_QUERIES_FAILED, &[])?,
            phases: per_variant(RagPhase::ALL, |p| {
                super::histogram_in(&phase_family, &[p.as_str()])
            })?,
            sources: histogram(reg, &c::RAG_SOURCES, &[])?,
            relevance: histogram(reg, &c::RAG_RELEVANCE, &[])?,
            hook: hook.clone(),
        })))
    }

    /// Starts timing a query. Call [`RagQuery::succeed`] when it answers; a query dropped
    /// without it (an early return, an error, a panic) is recorded as failed.
    ///
    /// With tracing installed, this opens the span `rag.query` (a trace of its own when no
    /// request is current).
    pub fn start_query(&self) -> RagQuery {
        let stage = self.0.hook.rag_query();
        RagQuery {
            metrics: self.clone(),
            start: Instant::now(),
            sources: None,
            relevance: None,
            trace: stage.as_ref().and_then(|s| s.trace_ref()),
            stage,
            done: false,
        }
    }

    /// Records a query timed elsewhere (the bindings time in their own runtime).
    pub fn record_query(&self, duration: Duration, outcome: Outcome, trace: Option<&TraceRef>) {
        let secs = duration.as_secs_f64();
        let counter = &self.0.queries[outcome.index()];
        match trace {
            Some(t) => {
                self.0.duration.observe_with_exemplar(secs, t);
                counter.inc_by_with_exemplar(1, t);
            }
            None => {
                self.0.duration.observe(secs);
                counter.inc();
            }
        }
        if outcome == Outcome::Error {
            self.0.failed.inc();
        }
    }

    /// Times one phase of a query; records when dropped. With tracing, the phase's span
    /// is a child of the current span.
    pub fn phase(&self, phase: RagPhase) -> Timer {
        self.phase_in(phase, None)
    }

    fn phase_in(&self, phase: RagPhase, parent: Option<&Stage>) -> Timer {
        let stage = self.0.hook.rag_phase(phase, parent);
        Timer::traced(self.0.phases[phase.index()].clone(), None, stage)
    }

    pub fn record_phase(&self, phase: RagPhase, duration: Duration) {
        self.0.phases[phase.index()].observe_duration(duration);
    }

    pub fn record_sources(&self, n: u32) {
        self.0.sources.observe(f64::from(n));
    }

    /// Records the relevance score (0..1) of the best source.
    pub fn record_relevance(&self, score: f64) {
        self.0.relevance.observe(score);
    }

    /// Queries recorded so far, all outcomes.
    pub fn query_count(&self) -> u64 {
        self.0.queries.iter().map(Counter::get).sum()
    }

    pub fn failed_count(&self) -> u64 {
        self.0.failed.get()
    }

    pub fn duration(&self) -> &Histogram {
        &self.0.duration
    }
}

/// One RAG query in flight. Records duration, outcome, sources and relevance when it ends.
#[derive(Debug)]
#[must_use = "a RAG query records when it ends; call succeed() or fail()"]
pub struct RagQuery {
    metrics: RagMetrics,
    start: Instant,
    sources: Option<u32>,
    relevance: Option<f64>,
    trace: Option<TraceRef>,
    /// The `rag.query` span, when tracing made one; ended with the query.
    pub(crate) stage: StageSlot,
    done: bool,
}

impl RagQuery {
    pub fn set_sources(&mut self, n: u32) {
        self.sources = Some(n);
    }

    pub fn set_relevance(&mut self, score: f64) {
        self.relevance = Some(score);
    }

    /// Attaches the trace of this query, kept as an exemplar on its duration and count.
    pub fn set_trace(&mut self, trace: TraceRef) {
        self.trace = Some(trace);
    }

    /// Times one phase of this query; records when dropped. With tracing, the phase's
    /// span is a child of the query's span.
    pub fn phase(&self, phase: RagPhase) -> Timer {
        let mut t = self.metrics.phase_in(phase, self.stage.as_deref());
        if let Some(tr) = self.trace.filter(|_| !t.has_trace()) {
            t.set_trace(tr);
        }
        t
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn succeed(mut self) -> Duration {
        self.finish(Outcome::Success)
    }

    pub fn fail(mut self) -> Duration {
        self.finish(Outcome::Error)
    }

    fn finish(&mut self, outcome: Outcome) -> Duration {
        let d = self.start.elapsed();
        if self.done {
            return d;
        }
        self.done = true;
        self.metrics.record_query(d, outcome, self.trace.as_ref());
        if let Some(n) = self.sources {
            self.metrics.record_sources(n);
        }
        if let Some(r) = self.relevance {
            self.metrics.record_relevance(r);
        }
        if let Some(s) = self.stage.take() {
            s.end_rag(self.sources, self.relevance, outcome);
        }
        d
    }
}

impl Drop for RagQuery {
    fn drop(&mut self) {
        self.finish(Outcome::Error);
    }
}
