use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Outcome, counter_in, gauge, histogram, per_variant};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram, TraceRef};
use crate::registry::Registry;
use crate::trace::{Hook, StageSlot};

#[derive(Debug)]
struct DocInner {
    processed: [Counter; 2],
    duration: Histogram,
    queue: Gauge,
    chunks: Histogram,
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
            hook: hook.clone(),
        })))
    }

    /// Starts ingesting one document; dropped without `succeed`, it counts as failed.
    /// With tracing, this opens the span `document.ingest` (a trace of its own when no
    /// request is current).
    pub fn start(&self) -> DocumentJob {
        let stage = self.0.hook.document();
        DocumentJob {
            metrics: self.clone(),
            start: Instant::now(),
            trace: stage.as_ref().and_then(|s| s.trace_ref()),
            stage,
            done: false,
        }
    }

    /// Records a document ingested elsewhere; `chunks` only on success.
    pub fn record(&self, duration: Duration, outcome: Outcome, chunks: Option<u32>) {
        self.record_traced(duration, outcome, chunks, None);
    }

    fn record_traced(
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

    pub fn set_queue_length(&self, n: u64) {
        self.0.queue.set(n as f64);
    }

    pub fn queue(&self) -> &Gauge {
        &self.0.queue
    }

    pub fn processed(&self, outcome: Outcome) -> &Counter {
        &self.0.processed[outcome.index()]
    }
}

/// One document being ingested.
#[derive(Debug)]
#[must_use = "a document job records when it ends; call succeed() or fail()"]
pub struct DocumentJob {
    metrics: DocumentMetrics,
    start: Instant,
    trace: Option<TraceRef>,
    /// The `document.ingest` span, when tracing made one; ended with the job.
    pub(crate) stage: StageSlot,
    done: bool,
}

impl DocumentJob {
    pub fn succeed(mut self, chunks: u32) -> Duration {
        self.finish(Outcome::Success, Some(chunks))
    }

    pub fn fail(mut self) -> Duration {
        self.finish(Outcome::Error, None)
    }

    fn finish(&mut self, outcome: Outcome, chunks: Option<u32>) -> Duration {
        let d = self.start.elapsed();
        if !self.done {
            self.done = true;
            self.metrics
                .record_traced(d, outcome, chunks, self.trace.as_ref());
            if let Some(s) = self.stage.take() {
                s.end_document(chunks, outcome);
            }
        }
        d
    }
}

impl Drop for DocumentJob {
    fn drop(&mut self) {
        self.finish(Outcome::Error, None);
    }
}
