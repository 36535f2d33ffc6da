//! RAG queries and their phases.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::RagPhase;

use crate::error;
use crate::stage::{self, Stage};

/// Starts a RAG query under `parent` (a stage id, 0 for none) or a remote `traceparent`.
#[napi(catch_unwind)]
pub fn rag_start(telemetry: u32, parent: u32, traceparent: Option<String>) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Rag(state.tel.rag().start_query_with(p)))
}

/// The RAG phases, by the index `rag_phase_start` takes.
#[napi]
pub fn rag_phases() -> Vec<String> {
    tars_telemetry::RagPhase::ALL
        .iter()
        .map(|p| p.as_str().to_string())
        .collect()
}

/// Starts a phase (`phase`: its index in `rag_phases()`).
#[napi(catch_unwind)]
pub fn rag_phase_start(
    telemetry: u32,
    phase: u32,
    parent: u32,
    traceparent: Option<String>,
) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let ph = RagPhase::from_index(phase as usize)
        .ok_or_else(|| error::invalid("ERR_TARS_INVALID_PHASE", "unknown RAG phase"))?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Timed(state.tel.rag().phase_with(ph, p)))
}

/// Sets how many sources a query retrieved, and the best source's relevance (0..1);
/// either may be absent.
#[napi(catch_unwind)]
pub fn rag_set_result(query: u32, sources: Option<u32>, relevance: Option<f64>) -> Result<()> {
    stage::with(query, |s| match s {
        Stage::Rag(q) => {
            if let Some(n) = sources {
                q.set_sources(n);
            }
            if let Some(r) = relevance {
                q.set_relevance(r);
            }
            Ok(())
        }
        _ => Err(error::invalid("ERR_TARS_WRONG_STAGE", "not a RAG query")),
    })?
}
