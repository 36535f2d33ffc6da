//! Timed stages: embeddings, vector search, database queries, RAG phases (a `Timer`),
//! Redis and embedding-cache calls (a `CacheCall`), document ingestion (a `DocumentJob`).

use pyo3::prelude::*;
use tars_telemetry::{CacheCall as CoreCacheCall, DocumentJob as CoreJob, Timer as CoreTimer};

use crate::labels;
use crate::stage::guard_methods;

/// A timed stage: records its duration when stopped.
#[pyclass(module = "tars_telemetry._native")]
pub struct Timer(pub Option<CoreTimer>);

guard_methods!(Timer {
    /// Ends the stage; returns its duration in seconds.
    fn stop(&mut self) -> f64 {
        self.0.take().map_or(0.0, |g| g.stop().as_secs_f64())
    }
});

/// A cache call (a Redis command, an embedding-cache lookup).
#[pyclass(module = "tars_telemetry._native")]
pub struct CacheCall(pub Option<CoreCacheCall>);

guard_methods!(CacheCall {
    /// Ends the call with its result: `hit`, `miss`, `ok` or `error`.
    fn finish(&mut self, result: &str) -> PyResult<()> {
        let r = labels::cache_result(result)?;
        if let Some(g) = self.0.take() {
            g.finish(r);
        }
        Ok(())
    }

    /// Ends a lookup as a hit or a miss; returns `hit`.
    fn finish_lookup(&mut self, hit: bool) -> bool {
        if let Some(g) = self.0.take() {
            g.finish_lookup(hit);
        }
        hit
    }
});

/// One document being ingested.
#[pyclass(module = "tars_telemetry._native")]
pub struct DocumentJob(pub Option<CoreJob>);

guard_methods!(DocumentJob {
    /// Ends the job as done, with the number of chunks it made.
    #[pyo3(signature = (chunks = 0))]
    fn succeed(&mut self, chunks: u32) -> f64 {
        self.0.take().map_or(0.0, |g| g.succeed(chunks).as_secs_f64())
    }

    /// Ends the job as failed, with the error's type on its span.
    #[pyo3(signature = (error_type = None))]
    fn fail(&mut self, error_type: Option<&str>) -> f64 {
        self.0.take().map_or(0.0, |g| {
            match error_type {
                Some(e) => g.fail_with(e),
                None => g.fail(),
            }
            .as_secs_f64()
        })
    }
});
