//! LLM calls, by interned model, with streaming (first token, output tokens as they come).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error;
use crate::stage::{self, Stage};

/// The interned id of a model's handle.
#[napi(catch_unwind)]
pub fn llm_model(telemetry: u32, name: String) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let mut guard = state.models.lock();
    let (interner, models) = &mut *guard;
    interner.get_or_make(name.clone(), |_| {
        let m = state.tel.llm_model(&name).map_err(error::core)?;
        if let Some(i) = models.iter().position(|x| x.same_handle(&m)) {
            return Ok::<_, napi::Error>(i as u32);
        }
        models.push(m);
        Ok((models.len() - 1) as u32)
    })
}

/// Starts a call to the model `model` (an id from `llm_model`).
#[napi(catch_unwind)]
pub fn llm_start(
    telemetry: u32,
    model: u32,
    parent: u32,
    traceparent: Option<String>,
) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let m = state
        .models
        .lock()
        .1
        .get(model as usize)
        .cloned()
        .ok_or_else(|| error::invalid("ERR_TARS_HANDLE", "no model has this id"))?;
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Llm(m.start_with(p)))
}

/// Streaming progress of a call: the first token arrived (`first_token`), `output` more
/// output tokens; and token counts known at once (`input`, `output_total`).
#[napi(catch_unwind)]
pub fn llm_progress(
    call: u32,
    first_token: bool,
    output: Option<u32>,
    input: Option<u32>,
    output_total: Option<u32>,
) -> Result<()> {
    stage::with(call, |s| match s {
        Stage::Llm(c) => {
            if first_token {
                c.first_token();
            }
            if let Some(n) = output {
                c.add_output_tokens(u64::from(n));
            }
            if let Some(n) = input {
                c.set_input_tokens(u64::from(n));
            }
            if let Some(n) = output_total {
                c.set_output_tokens(u64::from(n));
            }
            Ok(())
        }
        _ => Err(error::invalid("ERR_TARS_WRONG_STAGE", "not an LLM call")),
    })?
}
