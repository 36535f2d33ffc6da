//! The vector store: searches timed as stages, the documents it holds.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::stage::{self, Stage};

/// Starts timing one vector search.
#[napi(catch_unwind)]
pub fn vector_search_start(
    telemetry: u32,
    parent: u32,
    traceparent: Option<String>,
) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Timed(state.tel.vector_store().start_search_with(p)))
}

/// Sets the number of documents the store holds.
#[napi(catch_unwind)]
pub fn vector_store_set_documents(telemetry: u32, count: f64) -> Result<()> {
    crate::telemetry::get(telemetry)?
        .tel
        .vector_store()
        .set_documents(crate::counts::whole(count));
    Ok(())
}
