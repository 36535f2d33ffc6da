//! The database: queries timed as stages by operation, the connection pool.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::DbOperation;

use crate::error;
use crate::stage::{self, Stage};

/// The query operations, by the index `db_query_start` takes.
#[napi]
pub fn db_operations() -> Vec<String> {
    DbOperation::ALL.iter().map(|o| o.as_str().into()).collect()
}

/// Starts timing one query (`summary`: the span's low-cardinality `db.query.summary`).
#[napi(catch_unwind)]
pub fn db_query_start(
    telemetry: u32,
    operation: u32,
    summary: Option<String>,
    parent: u32,
    traceparent: Option<String>,
) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let op = DbOperation::from_index(operation as usize)
        .ok_or_else(|| error::invalid("ERR_TARS_INVALID_LABEL", "no such operation"))?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Timed(state.tel.db().query_with(
        op,
        summary.as_deref(),
        p,
    )))
}

/// Sets the connection pool's connections in use and its size.
#[napi(catch_unwind)]
pub fn db_set_pool(telemetry: u32, active: u32, max: u32) -> Result<()> {
    crate::telemetry::get(telemetry)?
        .tel
        .db()
        .set_pool(active, max);
    Ok(())
}
