//! Redis: commands as stages (lookups as hits or misses), memory.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::stage::{self, Stage};

/// Starts one Redis command (`GET`, `SET`, ...): a client span named by the command under
/// a sampled parent; its counts when it ends (`cache_finish*`).
#[napi(catch_unwind)]
pub fn redis_command_start(
    telemetry: u32,
    command: String,
    parent: u32,
    traceparent: Option<String>,
) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Cache(
        state.tel.redis().start_command_with(&command, p),
    ))
}

/// Records a cache read as a hit or a miss at once; returns `hit`.
#[napi(catch_unwind)]
pub fn redis_lookup(telemetry: u32, hit: bool) -> Result<bool> {
    Ok(crate::telemetry::get(telemetry)?.tel.redis().lookup(hit))
}

/// Sets Redis's memory in use and its limit, in bytes.
#[napi(catch_unwind)]
pub fn redis_set_memory(telemetry: u32, used_bytes: f64, max_bytes: f64) -> Result<()> {
    crate::telemetry::get(telemetry)?.tel.redis().set_memory(
        crate::counts::whole(used_bytes),
        crate::counts::whole(max_bytes),
    );
    Ok(())
}
