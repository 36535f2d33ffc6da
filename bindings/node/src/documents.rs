//! Document ingestion: jobs as stages (with their chunk count), the queue.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error;
use crate::stage::{self, Stage};

/// Starts one document's ingestion.
#[napi(catch_unwind)]
pub fn document_start(telemetry: u32, parent: u32, traceparent: Option<String>) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Document(state.tel.documents().start_with(p), 0))
}

/// Sets the chunks the document was split into (counted when it succeeds).
#[napi(catch_unwind)]
pub fn document_set_chunks(job: u32, chunks: u32) -> Result<()> {
    stage::with(job, |s| match s {
        Stage::Document(_, c) => {
            *c = chunks;
            Ok(())
        }
        _ => Err(error::invalid("ERR_TARS_WRONG_STAGE", "not a document job")),
    })?
}

/// Sets the number of documents waiting to be ingested.
#[napi(catch_unwind)]
pub fn documents_set_queue_length(telemetry: u32, n: f64) -> Result<()> {
    crate::telemetry::get(telemetry)?
        .tel
        .documents()
        .set_queue_length(crate::counts::whole(n));
    Ok(())
}
