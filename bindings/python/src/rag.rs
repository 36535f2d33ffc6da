//! `rag`: a RAG query and its phases.

use pyo3::prelude::*;
use tars_telemetry::RagQuery as CoreQuery;

use crate::labels;
use crate::stage::guard_methods;
use crate::timer::Timer;

/// One RAG query in flight.
#[pyclass(module = "tars_telemetry._native")]
pub struct RagQuery(pub Option<CoreQuery>);

guard_methods!(RagQuery {
    /// The number of sources the answer used.
    fn set_sources(&mut self, n: u32) {
        if let Some(g) = self.0.as_mut() {
            g.set_sources(n);
        }
    }

    /// The relevance score of the best source (NaN is counted as invalid, not raised).
    fn set_relevance(&mut self, score: f64) {
        if let Some(g) = self.0.as_mut() {
            g.set_relevance(score);
        }
    }

    /// Starts a phase (`retrieval`, `rerank`, `generation`) under this query.
    fn phase(&self, phase: &str) -> PyResult<Timer> {
        let p = labels::rag_phase(phase)?;
        Ok(Timer(self.0.as_ref().map(|g| g.phase(p))))
    }

    /// Ends the query as answered; returns its duration in seconds.
    fn succeed(&mut self) -> f64 {
        self.0.take().map_or(0.0, |g| g.succeed().as_secs_f64())
    }

    /// Ends the query as failed, with the error's type on its span.
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
