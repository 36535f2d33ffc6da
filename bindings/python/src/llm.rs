//! `llm`: interned model handles and calls, streamed or not.

use pyo3::prelude::*;
use tars_telemetry::{LlmCall as CoreCall, LlmModel as CoreModel};

use crate::stage::{SpanContext, guard_methods};

/// A model's handle: its label resolved once.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct LlmModel(pub CoreModel);

#[pymethods]
impl LlmModel {
    /// The model's name.
    #[getter]
    fn name(&self) -> &str {
        self.0.name()
    }

    /// Starts a call to the model under `parent`.
    #[pyo3(signature = (parent = None))]
    fn start(&self, parent: Option<PyRef<'_, SpanContext>>) -> LlmCall {
        LlmCall(Some(
            self.0.start_with(crate::stage::parent(parent.as_deref())),
        ))
    }

    /// Output tokens generated so far by this model (all calls).
    fn tokens_generated(&self) -> u64 {
        self.0.tokens_generated()
    }
}

/// One call to a model in flight.
#[pyclass(module = "tars_telemetry._native")]
pub struct LlmCall(pub Option<CoreCall>);

fn tokens(n: i64) -> u64 {
    // A negative count is no count: ignored rather than raised.
    u64::try_from(n).unwrap_or(0)
}

guard_methods!(LlmCall {
    /// The first token arrived (only the first call counts).
    fn first_token(&mut self) {
        if let Some(g) = self.0.as_mut() {
            g.first_token();
        }
    }

    /// The prompt's token count.
    fn set_input_tokens(&mut self, n: i64) {
        if let Some(g) = self.0.as_mut() {
            g.set_input_tokens(tokens(n));
        }
    }

    /// Adds streamed output tokens.
    #[pyo3(signature = (n = 1))]
    fn add_output_tokens(&mut self, n: i64) {
        if let Some(g) = self.0.as_mut() {
            g.add_output_tokens(tokens(n));
        }
    }

    /// Sets the output token count.
    fn set_output_tokens(&mut self, n: i64) {
        if let Some(g) = self.0.as_mut() {
            g.set_output_tokens(tokens(n));
        }
    }

    /// Ends the call as answered; returns its duration in seconds.
    fn succeed(&mut self) -> f64 {
        self.0.take().map_or(0.0, |g| g.succeed().as_secs_f64())
    }

    /// Ends the call as failed, with the error's type on its span.
    #[pyo3(signature = (error_type = None))]
    fn fail(&mut self, error_type: Option<&str>) -> f64 {
        self.0.take().map_or(0.0, |g| {
            match error_type {
                Some(e) => g.fail_with(e),
                None => g.fail(),
            }
            .as_secs_f64()
        })
    }
});
