//! The domain API: one type per part of a RAG service, holding resolved handles.
//!
//! Bounded labels (status, operation, direction, method) are enums resolved to handles
//! when the type is built; free-form labels (model, route) resolve once to a reusable
//! handle ([`LlmModel`], [`HttpRoute`]). After that, recording is atomics only.

mod cache;
mod db;
mod documents;
mod errors;
mod http;
mod labels;
mod llm;
mod rag;
mod retrieval;
mod timer;
mod websocket;

pub use cache::{CacheCall, CacheMetrics, RedisMetrics};
pub use db::DbMetrics;
pub use documents::{DocumentJob, DocumentMetrics};
pub use errors::{AppInfo, ErrorMetrics};
pub use http::{HttpMetrics, HttpRequest, HttpRoute};
pub use labels::{
    CacheName, CacheOperation, CacheResult, Component, DbOperation, Direction, Method, Outcome,
    RagPhase,
};
pub use llm::{LlmCall, LlmModel, LlmModels, LlmUsage};
pub use rag::{RagMetrics, RagQuery};
pub use retrieval::{EmbeddingMetrics, VectorStoreMetrics};
pub use timer::Timer;
pub use websocket::{WebSocketConnection, WebSocketMetrics};

use crate::catalog::MetricDef;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram};
use crate::registry::{Family, Metric, Registry};
use std::sync::Arc;

pub(crate) fn family(reg: &Registry, def: &MetricDef) -> Result<Arc<Family>, Error> {
    reg.register(def)
}

pub(crate) fn counter_in(f: &Family, labels: &[&str]) -> Result<Counter, Error> {
    match f.resolve(labels)? {
        Metric::Counter(c) => Ok(c),
        _ => Err(Error::WrongKind {
            family: f.name().to_string(),
            expected: "counter",
        }),
    }
}

pub(crate) fn gauge_in(f: &Family, labels: &[&str]) -> Result<Gauge, Error> {
    match f.resolve(labels)? {
        Metric::Gauge(g) => Ok(g),
        _ => Err(Error::WrongKind {
            family: f.name().to_string(),
            expected: "gauge",
        }),
    }
}

pub(crate) fn histogram_in(f: &Family, labels: &[&str]) -> Result<Histogram, Error> {
    match f.resolve(labels)? {
        Metric::Histogram(h) => Ok(h),
        _ => Err(Error::WrongKind {
            family: f.name().to_string(),
            expected: "histogram",
        }),
    }
}

pub(crate) fn counter(reg: &Registry, def: &MetricDef, labels: &[&str]) -> Result<Counter, Error> {
    counter_in(&*family(reg, def)?, labels)
}

pub(crate) fn gauge(reg: &Registry, def: &MetricDef) -> Result<Gauge, Error> {
    gauge_in(&*family(reg, def)?, &[])
}

pub(crate) fn histogram(
    reg: &Registry,
    def: &MetricDef,
    labels: &[&str],
) -> Result<Histogram, Error> {
    histogram_in(&*family(reg, def)?, labels)
}

/// Resolves one handle per variant of a label enum, in `ALL` order.
pub(crate) fn per_variant<E: Copy, T, const N: usize>(
    all: [E; N],
    mut f: impl FnMut(E) -> Result<T, Error>,
) -> Result<[T; N], Error> {
    let v: Vec<T> = all.iter().map(|e| f(*e)).collect::<Result<_, _>>()?;
    Ok(v.try_into().unwrap_or_else(|_| unreachable!("length is N")))
}
