//! WebSockets: messages by direction, open connections.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::Direction;

use crate::error;

/// The message directions, by the index `websocket_message` takes.
#[napi]
pub fn websocket_directions() -> Vec<String> {
    Direction::ALL.iter().map(|d| d.as_str().into()).collect()
}

/// Counts one message.
#[napi(catch_unwind)]
pub fn websocket_message(telemetry: u32, direction: u32) -> Result<()> {
    let d = Direction::from_index(direction as usize)
        .ok_or_else(|| error::invalid("ERR_TARS_INVALID_LABEL", "no such direction"))?;
    crate::telemetry::get(telemetry)?.tel.websocket().message(d);
    Ok(())
}

/// Adds `delta` (+1 opened, -1 closed) to the open connections.
#[napi(catch_unwind)]
pub fn websocket_active(telemetry: u32, delta: i32) -> Result<()> {
    crate::telemetry::get(telemetry)?
        .tel
        .websocket()
        .active()
        .inc_by(f64::from(delta));
    Ok(())
}
