//! Embeddings: generation timed as a stage, generated counts, the embedding cache.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::stage::{self, Stage};

/// Starts timing one embedding call.
#[napi(catch_unwind)]
pub fn embeddings_start(telemetry: u32, parent: u32, traceparent: Option<String>) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Timed(state.tel.embeddings().start_with(p)))
}

/// Counts embeddings generated.
#[napi(catch_unwind)]
pub fn embeddings_add_generated(telemetry: u32, count: u32) -> Result<()> {
    crate::telemetry::get(telemetry)?
        .tel
        .embeddings()
        .add_generated(u64::from(count));
    Ok(())
}

/// Records an embedding-cache lookup, hit or miss, at once.
#[napi(catch_unwind)]
pub fn embeddings_cache_lookup(telemetry: u32, hit: bool) -> Result<bool> {
    Ok(crate::telemetry::get(telemetry)?
        .tel
        .embeddings()
        .cache_lookup(hit))
}

/// Starts an embedding-cache lookup as a stage (ended with `cache_finish_lookup`).
#[napi(catch_unwind)]
pub fn embeddings_cache_lookup_start(
    telemetry: u32,
    parent: u32,
    traceparent: Option<String>,
) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Cache(
        state.tel.embeddings().start_cache_lookup_with(p),
    ))
}
