use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Outcome, counter_in, gauge, histogram, per_variant};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram};
use crate::registry::Registry;

#[derive(Debug)]
struct DocInner {
    processed: [Counter; 2],
    duration: Histogram,
    queue: Gauge,
    chunks: Histogram,
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
    pub(crate) fn new(reg: &Registry) -> Result<Self, Error> {
        let p = reg.register(&c::DOCUMENTS_PROCESSED)?;
        Ok(DocumentMetrics(Arc::new(DocInner {
            processed: per_variant(Outcome::ALL, |o| counter_in(&p, &[o.as_str()]))?,
            duration: histogram(reg, &c::DOCUMENT_PROCESSING_DURATION, &[])?,
            queue: gauge(reg, &c::DOCUMENT_QUEUE_LENGTH)?,
            chunks: histogram(reg, &c::DOCUMENT_CHUNKS, &[])?,
        })))
    }

    /// Starts ingesting one document; dropped without `succeed`, it counts as failed.
    pub fn start(&self) -> DocumentJob {
        DocumentJob {
            metrics: self.clone(),
            start: Instant::now(),
            done: false,
        }
    }

    /// Records a document ingested elsewhere; `chunks` only on success.
    pub fn record(&self, duration: Duration, outcome: Outcome, chunks: Option<u32>) {
        self.0.duration.observe_duration(duration);
        self.0.processed[outcome.index()].inc();
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
            self.metrics.record(d, outcome, chunks);
        }
        d
    }
}

impl Drop for DocumentJob {
    fn drop(&mut self) {
        self.finish(Outcome::Error, None);
    }
}
