use std::sync::Arc;
use std::time::Duration;

use super::{
    Outcome, RagPhase, StageState, TimedTarget, Timer, abandoned, counter, histogram, per_variant,
    stage_guard,
};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Histogram, TraceRef};
use crate::registry::Registry;
use crate::stage::{Hook, Parent, StageEnd, StageKind, StageType};

#[derive(Debug)]
struct RagInner {
    duration: Histogram,
    queries: [Counter; 2],
    failed: Counter,
    phases: [Arc<TimedTarget>; 3],
    sources: Histogram,
    relevance: Histogram,
    abandoned: Counter,
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
        let phase_abandoned = abandoned(reg, StageType::RagPhase)?;
        Ok(RagMetrics(Arc::new(RagInner {
            duration: histogram(reg, &c::RAG_QUERY_DURATION, &[])?,
            queries: per_variant(Outcome::ALL, |o| {
                super::counter_in(&queries_family, &[o.as_str()])
            })?,
            failed: counter(reg, &c::RAG_QUERIES_FAILED, &[])?,
            phases: per_variant(RagPhase::ALL, |p| {
                let h = super::histogram_in(&phase_family, &[p.as_str()])?;
                Ok(TimedTarget::new(h, None, phase_abandoned.clone()))
            })?,
            sources: histogram(reg, &c::RAG_SOURCES, &[])?,
            relevance: histogram(reg, &c::RAG_RELEVANCE, &[])?,
            abandoned: abandoned(reg, StageType::RagQuery)?,
            hook: hook.clone(),
        })))
    }

    /// Starts timing a query. Call [`RagQuery::succeed`] when it answers, or `fail`;
    /// abandoned (cancelled, or dropped unfinished) it counts as failed and observes no
    /// duration.
    ///
    /// With tracing installed, this opens the span `rag.query` under the thread's current
    /// context (a trace of its own when none is current).
    pub fn start_query(&self) -> RagQuery {
        self.start_query_with(Parent::Current)
    }

    /// [`RagMetrics::start_query`] under an explicit parent.
    pub fn start_query_with(&self, parent: Parent<'_>) -> RagQuery {
        let stage = self.0.hook.start(StageKind::RagQuery, parent);
        RagQuery {
            metrics: self.clone(),
            sources: None,
            relevance: None,
            state: StageState::new(stage),
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
        self.phase_with(phase, Parent::Current)
    }

    /// [`RagMetrics::phase`] under an explicit parent (usually the query's
    /// [`parent`](RagQuery::parent)).
    pub fn phase_with(&self, phase: RagPhase, parent: Parent<'_>) -> Timer {
        let stage = self.0.hook.start(StageKind::RagPhase(phase), parent);
        Timer::traced(&self.0.phases[phase.index()], stage)
    }

    /// Records a phase timed elsewhere.
    pub fn record_phase(&self, phase: RagPhase, duration: Duration, trace: Option<&TraceRef>) {
        let h = &self.0.phases[phase.index()].histogram;
        match trace {
            Some(t) => h.observe_with_exemplar(duration.as_secs_f64(), t),
            None => h.observe_duration(duration),
        }
    }

    /// Records how many sources a query retrieved.
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

    /// Queries recorded as failed.
    pub fn failed_count(&self) -> u64 {
        self.0.failed.get()
    }

    /// The end-to-end query duration histogram.
    pub fn duration(&self) -> &Histogram {
        &self.0.duration
    }
}

/// One RAG query in flight. Records duration, outcome, sources and relevance when it ends.
#[derive(Debug)]
#[must_use = "a RAG query records when it ends; call succeed() or fail()"]
pub struct RagQuery {
    metrics: RagMetrics,
    sources: Option<u32>,
    relevance: Option<f64>,
    pub(crate) state: StageState,
}

impl RagQuery {
    /// Sets how many sources the query retrieved.
    pub fn set_sources(&mut self, n: u32) {
        self.sources = Some(n);
    }

    /// Sets the relevance score (0..1) of the best source.
    pub fn set_relevance(&mut self, score: f64) {
        self.relevance = Some(score);
    }

    /// Times one phase of this query; records when dropped. With tracing, the phase's
    /// span is a child of the query's span.
    pub fn phase(&self, phase: RagPhase) -> Timer {
        let mut t = self.metrics.phase_with(phase, self.state.parent());
        if let Some(tr) = self.state.trace().filter(|_| !t.has_trace()) {
            t.set_trace(*tr);
        }
        t
    }

    /// Records the query as answered.
    pub fn succeed(mut self) -> Duration {
        self.finish(Outcome::Success)
    }

    /// Records the query as failed (it still observes its duration).
    pub fn fail(mut self) -> Duration {
        self.finish(Outcome::Error)
    }

    /// Records the query as failed with this `error.type` on its span.
    ///
    /// ```
    /// # let t = tars_telemetry::Telemetry::new();
    /// let q = t.rag().start_query();
    /// q.fail_with("no_sources");
    /// assert_eq!(t.rag().failed_count(), 1);
    /// ```
    pub fn fail_with(mut self, error_type: &str) -> Duration {
        self.state.set_error(error_type);
        self.finish(Outcome::Error)
    }

    fn finish(&mut self, outcome: Outcome) -> Duration {
        let Some(d) = self.state.finish() else {
            return self.state.elapsed();
        };
        let m = &self.metrics;
        m.record_query(d, outcome, self.state.trace());
        if let Some(n) = self.sources {
            m.record_sources(n);
        }
        if let Some(r) = self.relevance {
            m.record_relevance(r);
        }
        self.state.end_span(StageEnd::Rag {
            sources: self.sources,
            relevance: self.relevance,
            outcome,
        });
        d
    }

    fn abandon_inner(&mut self, error_type: &str) {
        if self.state.finish().is_none() {
            return;
        }
        let m = &self.metrics.0;
        m.queries[Outcome::Error.index()].inc_traced(self.state.trace());
        m.failed.inc();
        m.abandoned.inc();
        self.state.end_span(StageEnd::Abandoned { error_type });
    }
}

stage_guard!(RagQuery);
