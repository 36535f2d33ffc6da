use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Outcome, counter_in, histogram_in};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Histogram, TraceRef};
use crate::registry::{Family, Registry};
use crate::trace::{Hook, StageSlot};

/// Resolves models to [`LlmModel`] handles.
#[derive(Debug, Clone)]
pub struct LlmModels {
    duration: Arc<Family>,
    tokens_out: Arc<Family>,
    tokens_in: Arc<Family>,
    requests: Arc<Family>,
    ttft: Arc<Family>,
    tpot: Arc<Family>,
    hook: Hook,
}

impl LlmModels {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        Ok(LlmModels {
            duration: reg.register(&c::LLM_INFERENCE_DURATION)?,
            tokens_out: reg.register(&c::LLM_TOKENS_GENERATED)?,
            tokens_in: reg.register(&c::LLM_INPUT_TOKENS)?,
            requests: reg.register(&c::LLM_REQUESTS)?,
            ttft: reg.register(&c::LLM_TIME_TO_FIRST_TOKEN)?,
            tpot: reg.register(&c::LLM_TIME_PER_OUTPUT_TOKEN)?,
            hook: hook.clone(),
        })
    }

    /// The handle of one model. Resolve it once and keep it: recording through it is
    /// atomics only. Models past the series budget share the overflow series.
    pub fn model(&self, model: &str) -> Result<LlmModel, Error> {
        let l = [model];
        Ok(LlmModel(Arc::new(LlmModelInner {
            model: model.into(),
            duration: histogram_in(&self.duration, &l)?,
            tokens_out: counter_in(&self.tokens_out, &l)?,
            tokens_in: counter_in(&self.tokens_in, &l)?,
            requests: [
                counter_in(&self.requests, &[model, Outcome::Success.as_str()])?,
                counter_in(&self.requests, &[model, Outcome::Error.as_str()])?,
            ],
            ttft: histogram_in(&self.ttft, &l)?,
            tpot: histogram_in(&self.tpot, &l)?,
            hook: self.hook.clone(),
        })))
    }
}

#[derive(Debug)]
struct LlmModelInner {
    model: Box<str>,
    duration: Histogram,
    tokens_out: Counter,
    tokens_in: Counter,
    requests: [Counter; 2],
    ttft: Histogram,
    tpot: Histogram,
    hook: Hook,
}

/// What one LLM call used, for recording a call timed elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LlmUsage {
    pub duration: Duration,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Set for streamed responses.
    pub time_to_first_token: Option<Duration>,
}

/// LLM inference metrics of one model.
///
/// ```
/// use tars_telemetry::Telemetry;
/// let t = Telemetry::new();
/// let llama = t.llm_model("llama3").unwrap();
/// let mut call = llama.start();
/// call.set_input_tokens(120);
/// call.first_token();            // streamed: first chunk arrived
/// call.add_output_tokens(64);
/// call.succeed();
/// assert_eq!(llama.tokens_generated(), 64);
/// ```
#[derive(Debug, Clone)]
pub struct LlmModel(Arc<LlmModelInner>);

impl LlmModel {
    pub fn name(&self) -> &str {
        &self.0.model
    }

    /// Starts timing a call. Call [`LlmCall::succeed`] at the end; dropped without it,
    /// the call counts as an error.
    ///
    /// With tracing, under a sampled span this opens the GenAI span `{operation} {model}`
    /// (`chat llama3`), which gets the token usage and, for streams, the time to the first
    /// chunk. Prompt and response text are not recorded.
    pub fn start(&self) -> LlmCall {
        let stage = self.0.hook.llm(&self.0.model);
        LlmCall {
            model: self.clone(),
            start: Instant::now(),
            first_token: None,
            input_tokens: 0,
            output_tokens: 0,
            trace: stage.as_ref().and_then(|s| s.trace_ref()),
            stage,
            done: false,
        }
    }

    /// Records a call timed elsewhere.
    pub fn record(&self, usage: &LlmUsage, outcome: Outcome, trace: Option<&TraceRef>) {
        let m = &self.0;
        let secs = usage.duration.as_secs_f64();
        match trace {
            Some(t) => {
                m.duration.observe_with_exemplar(secs, t);
                m.requests[outcome.index()].inc_by_with_exemplar(1, t);
            }
            None => {
                m.duration.observe(secs);
                m.requests[outcome.index()].inc();
            }
        }
        m.tokens_in.inc_by(usage.input_tokens);
        m.tokens_out.inc_by(usage.output_tokens);
        if let Some(ttft) = usage.time_to_first_token {
            m.ttft.observe_duration(ttft);
            if usage.output_tokens > 1 && usage.duration > ttft {
                let rest = (usage.duration - ttft).as_secs_f64();
                m.tpot.observe(rest / (usage.output_tokens - 1) as f64);
            }
        }
    }

    pub fn tokens_generated(&self) -> u64 {
        self.0.tokens_out.get()
    }

    pub fn inference_duration(&self) -> &Histogram {
        &self.0.duration
    }
}

/// One LLM call in flight.
#[derive(Debug)]
#[must_use = "an LLM call records when it ends; call succeed() or fail()"]
pub struct LlmCall {
    model: LlmModel,
    start: Instant,
    first_token: Option<Duration>,
    input_tokens: u64,
    output_tokens: u64,
    trace: Option<TraceRef>,
    /// The GenAI span, when tracing made one; ended with the call.
    pub(crate) stage: StageSlot,
    done: bool,
}

impl LlmCall {
    /// Marks the arrival of the first token (or chunk) of a streamed response; only the
    /// first call counts.
    pub fn first_token(&mut self) {
        if self.first_token.is_none() {
            let t = self.start.elapsed();
            self.first_token = Some(t);
            if let Some(s) = self.stage.as_deref_mut() {
                s.first_chunk(t);
            }
        }
    }

    pub fn set_input_tokens(&mut self, n: u64) {
        self.input_tokens = n;
    }

    pub fn add_output_tokens(&mut self, n: u64) {
        self.output_tokens += n;
    }

    pub fn set_output_tokens(&mut self, n: u64) {
        self.output_tokens = n;
    }

    pub fn set_trace(&mut self, trace: TraceRef) {
        self.trace = Some(trace);
    }

    pub fn succeed(mut self) -> Duration {
        self.finish(Outcome::Success)
    }

    pub fn fail(mut self) -> Duration {
        self.finish(Outcome::Error)
    }

    fn finish(&mut self, outcome: Outcome) -> Duration {
        let duration = self.start.elapsed();
        if !self.done {
            self.done = true;
            let usage = LlmUsage {
                duration,
                input_tokens: self.input_tokens,
                output_tokens: self.output_tokens,
                time_to_first_token: self.first_token,
            };
            self.model.record(&usage, outcome, self.trace.as_ref());
            if let Some(s) = self.stage.take() {
                s.end_llm(self.input_tokens, self.output_tokens, outcome);
            }
        }
        duration
    }
}

impl Drop for LlmCall {
    fn drop(&mut self) {
        self.finish(Outcome::Error);
    }
}
