//! LLM calls, by interned model, with streaming (first token, output tokens as they come).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::{LlmPricing, PricingError};

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

/// Sets token counts of a call by kind; a kind not given keeps its count. `input` counts
/// every prompt token (the cache's included), `output` every completion token (reasoning
/// included). Counts arrive checked (whole, non-negative) from JavaScript.
#[napi(catch_unwind)]
pub fn llm_set_usage(
    call: u32,
    input: Option<f64>,
    output: Option<f64>,
    cache_read_input: Option<f64>,
    cache_write_input: Option<f64>,
    reasoning_output: Option<f64>,
) -> Result<()> {
    stage::with(call, |s| match s {
        Stage::Llm(c) => {
            let mut u = c.usage();
            let set = |slot: &mut u64, v: Option<f64>| {
                if let Some(v) = v {
                    // `as` saturates: a count past u64 stays the largest one.
                    *slot = v as u64;
                }
            };
            set(&mut u.input_tokens, input);
            set(&mut u.output_tokens, output);
            set(&mut u.cache_read_input_tokens, cache_read_input);
            set(&mut u.cache_write_input_tokens, cache_write_input);
            set(&mut u.reasoning_output_tokens, reasoning_output);
            c.set_usage(u);
            Ok(())
        }
        _ => Err(error::invalid("ERR_TARS_WRONG_STAGE", "not an LLM call")),
    })?
}

/// Puts a table read by the core in force: whether there was one. A refused table throws
/// (code `ENOENT` for an unreadable file, else `ERR_TARS_INVALID_PRICING`) with the core's
/// reason, naming the model and kind.
fn set_pricing(
    telemetry: u32,
    table: std::result::Result<Option<LlmPricing>, PricingError>,
) -> Result<bool> {
    let state = crate::telemetry::get(telemetry)?;
    let table = table.map_err(|e| {
        let code = match e {
            PricingError::Io { .. } => "ENOENT",
            _ => "ERR_TARS_INVALID_PRICING",
        };
        error::invalid(code, e)
    })?;
    let loaded = table.is_some();
    if let Some(t) = table {
        state.tel.llm().set_pricing(t);
    }
    Ok(loaded)
}

/// Replaces the LLM pricing table with its JSON form (`{"models": {model: {kind: dollars
/// per million tokens}}}`).
#[napi(catch_unwind)]
pub fn llm_set_pricing_json(telemetry: u32, text: String) -> Result<()> {
    set_pricing(telemetry, LlmPricing::from_json(&text).map(Some)).map(drop)
}

/// Replaces the LLM pricing table with a JSON file's.
#[napi(catch_unwind)]
pub fn llm_set_pricing_file(telemetry: u32, path: String) -> Result<()> {
    set_pricing(telemetry, LlmPricing::from_file(&path).map(Some)).map(drop)
}

/// Loads the pricing file named by `TARS_LLM_PRICING_FILE`, when it is set: whether one
/// was loaded.
#[napi(catch_unwind)]
pub fn llm_set_pricing_from_env(telemetry: u32) -> Result<bool> {
    set_pricing(telemetry, LlmPricing::from_env())
}
