use std::sync::Arc;
use std::time::Duration;

use super::{
    Outcome, StageState, abandoned, counter_in, gauge, histogram, per_variant, stage_guard,
};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram, TraceRef};
use crate::registry::Registry;
use crate::stage::{Hook, Parent, StageEnd, StageKind, StageType};

#[derive(Debug)]
struct DocInner {
    processed: [Counter; 2],
    duration: Histogram,
    queue: Gauge,
    chunks: Histogram,
    abandoned: Counter,
    hook: Hook,
}

/// Document ingestion: outcome, duration, chunks and the queue.
///
/// ```
/// use tars_telemetry::Telemetry;
/// let t = Telemetry::new();
/// let docs = t.documents();
/// docs.set_queue_length(3);
/// let job = docs.start();
/// // ... parse, chunk, embed, index ...
/// job.succeed(42);
/// assert_eq!(docs.processed(tars_telemetry::Outcome::Success).get(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct DocumentMetrics(Arc<DocInner>);

impl DocumentMetrics {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        let p = reg.register(&c::DOCUMENTS_PROCESSED)?;
        Ok(DocumentMetrics(Arc::new(DocInner {
            processed: per_variant(Outcome::ALL, |o| counter_in(&p, &[o.as_str()]))?,
            duration: histogram(reg, &c::DOCUMENT_PROCESSING_DURATION, &[])?,
            queue: gauge(reg, &c::DOCUMENT_QUEUE_LENGTH)?,
            chunks: histogram(reg, &c::DOCUMENT_CHUNKS, &[])?,
            abandoned: abandoned(reg, StageType::Document)?,
            hook: hook.clone(),
        })))
    }

    /// Starts ingesting one document; abandoned (cancelled, or dropped without `succeed`
    /// or `fail`) it counts as failed and observes no duration. With tracing, this opens
    /// the span `document.ingest` (a trace of its own when no request is current).
    pub fn start(&self) -> DocumentJob {
        self.start_with(Parent::Current)
    }

    /// [`DocumentMetrics::start`] under an explicit parent.
    pub fn start_with(&self, parent: Parent<'_>) -> DocumentJob {
        let stage = self.0.hook.start(StageKind::Document, parent);
        DocumentJob {
            metrics: self.clone(),
            state: StageState::new(stage),
        }
    }

    /// Records a document ingested elsewhere; `chunks` only on success.
    pub fn record(
        &self,
        duration: Duration,
        outcome: Outcome,
        chunks: Option<u32>,
        trace: Option<&TraceRef>,
    ) {
        match trace {
            Some(t) => {
                self.0
                    .duration
                    .observe_with_exemplar(duration.as_secs_f64(), t);
                self.0.processed[outcome.index()].inc_by_with_exemplar(1, t);
            }
            None => {
                self.0.duration.observe_duration(duration);
                self.0.processed[outcome.index()].inc();
            }
        }
        if let Some(n) = chunks {
            self.0.chunks.observe(f64::from(n));
        }
    }

    /// Sets the number of documents waiting to be ingested.
    pub fn set_queue_length(&self, n: u64) {
        self.0.queue.set(n as f64);
    }

    /// The queue-length gauge.
    pub fn queue(&self) -> &Gauge {
        &self.0.queue
    }

    /// Documents processed with this outcome.
    pub fn processed(&self, outcome: Outcome) -> &Counter {
        &self.0.processed[outcome.index()]
    }
}

/// One document being ingested.
#[derive(Debug)]
#[must_use = "a document job records when it ends; call succeed() or fail()"]
pub struct DocumentJob {
    metrics: DocumentMetrics,
    pub(crate) state: StageState,
}

impl DocumentJob {
    /// Records the document as ingested into `chunks` chunks.
    pub fn succeed(mut self, chunks: u32) -> Duration {
        self.finish(Outcome::Success, Some(chunks))
    }

    /// Records the document as failed (it still observes its duration).
    pub fn fail(mut self) -> Duration {
        self.finish(Outcome::Error, None)
    }

    /// Records the document as failed with this `error.type` on its span.
    pub fn fail_with(mut self, error_type: &str) -> Duration {
        self.state.set_error(error_type);
        self.finish(Outcome::Error, None)
    }

    fn finish(&mut self, outcome: Outcome, chunks: Option<u32>) -> Duration {
        let Some(d) = self.state.finish() else {
            return self.state.elapsed();
        };
        self.metrics.record(d, outcome, chunks, self.state.trace());
        self.state.end_span(StageEnd::Document { chunks, outcome });
        d
    }

    fn abandon_inner(&mut self, error_type: &str) {
        if self.state.finish().is_none() {
            return;
        }
        let m = &self.metrics.0;
        m.processed[Outcome::Error.index()].inc_traced(self.state.trace());
        m.abandoned.inc();
        self.state.end_span(StageEnd::Abandoned { error_type });
    }
}

stage_guard!(DocumentJob);
