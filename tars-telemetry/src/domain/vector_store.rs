//! The vector store: searches timed and counted, and the documents it holds.

use std::sync::Arc;
use std::time::Duration;

use super::{TimedTarget, Timer, abandoned, counter, gauge, histogram};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, TraceRef};
use crate::registry::Registry;
use crate::stage::{Hook, Parent, StageKind, StageType};

#[derive(Debug)]
struct VectorInner {
    timed: Arc<TimedTarget>,
    searches: Counter,
    documents: Gauge,
    hook: Hook,
}

/// Vector store searches and size.
///
/// ```
/// use tars_telemetry::Telemetry;
/// use std::time::Duration;
/// let t = Telemetry::new();
/// t.vector_store().record_search(Duration::from_millis(12), None);
/// t.vector_store().set_documents(1500);
/// assert_eq!(t.vector_store().searches().get(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct VectorStoreMetrics(Arc<VectorInner>);

impl VectorStoreMetrics {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        let searches = counter(reg, &c::VECTOR_SEARCHES, &[])?;
        Ok(VectorStoreMetrics(Arc::new(VectorInner {
            timed: TimedTarget::new(
                histogram(reg, &c::VECTOR_SEARCH_DURATION, &[])?,
                Some(searches.clone()),
                abandoned(reg, StageType::VectorSearch)?,
            ),
            searches,
            documents: gauge(reg, &c::VECTOR_STORE_DOCUMENTS)?,
            hook: hook.clone(),
        })))
    }

    /// Times one search; records its duration and counts it when dropped. With tracing,
    /// under a sampled span this opens the GenAI retrieval span `retrieval {collection}`.
    pub fn start_search(&self) -> Timer {
        self.start_search_with(Parent::Current)
    }

    /// [`VectorStoreMetrics::start_search`] under an explicit parent.
    pub fn start_search_with(&self, parent: Parent<'_>) -> Timer {
        Timer::traced(
            &self.0.timed,
            self.0.hook.start(StageKind::VectorSearch, parent),
        )
    }

    /// Records a search timed elsewhere.
    pub fn record_search(&self, duration: Duration, trace: Option<&TraceRef>) {
        let h = &self.0.timed.histogram;
        match trace {
            Some(t) => {
                h.observe_with_exemplar(duration.as_secs_f64(), t);
                self.0.searches.inc_by_with_exemplar(1, t);
            }
            None => {
                h.observe_duration(duration);
                self.0.searches.inc();
            }
        }
    }

    /// Sets the number of documents the store holds.
    pub fn set_documents(&self, n: u64) {
        self.0.documents.set(n as f64);
    }

    /// Searches counted so far.
    pub fn searches(&self) -> &Counter {
        &self.0.searches
    }

    /// The documents gauge.
    pub fn documents(&self) -> &Gauge {
        &self.0.documents
    }
}
