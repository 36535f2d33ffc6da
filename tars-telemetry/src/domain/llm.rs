use std::sync::Arc;
use std::time::Duration;

use super::{Interner, Outcome, StageState, abandoned, counter_in, histogram_in, stage_guard};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Histogram, TraceRef};
use crate::registry::{Family, Registry};
use crate::stage::{Hook, Parent, StageEnd, StageKind, StageType};

#[derive(Debug)]
struct LlmModelsInner {
    duration: Arc<Family>,
    tokens_out: Arc<Family>,
    tokens_in: Arc<Family>,
    requests: Arc<Family>,
    ttft: Arc<Family>,
    tpot: Arc<Family>,
    abandoned: Counter,
    models: Interner<LlmModel>,
    hook: Hook,
}

/// Resolves models to [`LlmModel`] handles, interned by name.
#[derive(Debug, Clone)]
pub struct LlmModels(Arc<LlmModelsInner>);

impl LlmModels {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        let duration = reg.register(&c::LLM_INFERENCE_DURATION)?;
        Ok(LlmModels(Arc::new(LlmModelsInner {
            models: Interner::new(duration.budget()),
            duration,
            tokens_out: reg.register(&c::LLM_TOKENS_GENERATED)?,
            tokens_in: reg.register(&c::LLM_INPUT_TOKENS)?,
            requests: reg.register(&c::LLM_REQUESTS)?,
            ttft: reg.register(&c::LLM_TIME_TO_FIRST_TOKEN)?,
            tpot: reg.register(&c::LLM_TIME_PER_OUTPUT_TOKEN)?,
            abandoned: abandoned(reg, StageType::Llm)?,
            hook: hook.clone(),
        })))
    }

    /// The handle of one model. Asking again for the same name returns the same handle
    /// (a map lookup, no allocation); recording through it is atomics only. Models past
    /// the series budget share the overflow series.
    ///
    /// ```
    /// # let t = tars_telemetry::Telemetry::new();
    /// let a = t.llm().model("llama3").unwrap();
    /// let b = t.llm().model("llama3").unwrap();
    /// assert!(a.same_handle(&b));
    /// ```
    pub fn model(&self, model: &str) -> Result<LlmModel, Error> {
        self.0.models.get_or_make(model, || self.make(model))
    }

    fn make(&self, model: &str) -> Result<LlmModel, Error> {
        let l = [model];
        let m = &self.0;
        Ok(LlmModel(Arc::new(LlmModelInner {
            model: model.into(),
            duration: histogram_in(&m.duration, &l)?,
            tokens_out: counter_in(&m.tokens_out, &l)?,
            tokens_in: counter_in(&m.tokens_in, &l)?,
            requests: [
                counter_in(&m.requests, &[model, Outcome::Success.as_str()])?,
                counter_in(&m.requests, &[model, Outcome::Error.as_str()])?,
            ],
            ttft: histogram_in(&m.ttft, &l)?,
            tpot: histogram_in(&m.tpot, &l)?,
            abandoned: m.abandoned.clone(),
            hook: m.hook.clone(),
        })))
    }

    pub(crate) fn interner_lock_for_fork(&self) {
        self.0.models.lock_for_fork();
    }

    /// # Safety
    /// As `Interner::unlock_after_fork`.
    pub(crate) unsafe fn interner_unlock_after_fork(&self) {
        // SAFETY: the caller's contract.
        unsafe { self.0.models.unlock_after_fork() };
    }

    /// Models interned so far.
    pub fn interned(&self) -> usize {
        self.0.models.len()
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
    abandoned: Counter,
    hook: Hook,
}

/// What one LLM call used, for recording a call timed elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LlmUsage {
    /// How long the call took.
    pub duration: Duration,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
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
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.0.model
    }

    /// Whether two handles are the same interned handle.
    pub fn same_handle(&self, other: &LlmModel) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Starts timing a call. Call [`LlmCall::succeed`] (or `fail`) at the end; abandoned
    /// (cancelled, or dropped unfinished) it counts as an error and observes no duration.
    ///
    /// With tracing, under a sampled span this opens the GenAI span `{operation} {model}`
    /// (`chat llama3`), which gets the token usage and, for streams, the time to the first
    /// chunk. Prompt and response text are not recorded.
    pub fn start(&self) -> LlmCall {
        self.start_with(Parent::Current)
    }

    /// [`LlmModel::start`] under an explicit parent.
    pub fn start_with(&self, parent: Parent<'_>) -> LlmCall {
        let stage = self.0.hook.start(
            StageKind::Llm {
                model: &self.0.model,
            },
            parent,
        );
        LlmCall {
            model: self.clone(),
            first_token: None,
            input_tokens: 0,
            output_tokens: 0,
            state: StageState::new(stage),
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

    /// Completion tokens recorded so far.
    pub fn tokens_generated(&self) -> u64 {
        self.0.tokens_out.get()
    }

    /// The inference duration histogram of this model.
    pub fn inference_duration(&self) -> &Histogram {
        &self.0.duration
    }
}

/// One LLM call in flight.
#[derive(Debug)]
#[must_use = "an LLM call records when it ends; call succeed() or fail()"]
pub struct LlmCall {
    model: LlmModel,
    first_token: Option<Duration>,
    input_tokens: u64,
    output_tokens: u64,
    pub(crate) state: StageState,
}

impl LlmCall {
    /// Marks the arrival of the first token (or chunk) of a streamed response; only the
    /// first call counts.
    pub fn first_token(&mut self) {
        if self.first_token.is_none() {
            let t = self.state.elapsed();
            self.first_token = Some(t);
            if let Some(s) = self.state.stage.as_deref_mut() {
                s.first_chunk(t);
            }
        }
    }

    /// Sets the prompt tokens.
    pub fn set_input_tokens(&mut self, n: u64) {
        self.input_tokens = n;
    }

    /// Adds completion tokens (a streamed chunk's).
    pub fn add_output_tokens(&mut self, n: u64) {
        self.output_tokens = self.output_tokens.saturating_add(n);
    }

    /// Sets the completion tokens.
    pub fn set_output_tokens(&mut self, n: u64) {
        self.output_tokens = n;
    }

    /// Records the call as succeeded.
    pub fn succeed(mut self) -> Duration {
        self.finish(Outcome::Success)
    }

    /// Records the call as failed (it still observes its duration).
    pub fn fail(mut self) -> Duration {
        self.finish(Outcome::Error)
    }

    /// Records the call as failed with this `error.type` on its span.
    pub fn fail_with(mut self, error_type: &str) -> Duration {
        self.state.set_error(error_type);
        self.finish(Outcome::Error)
    }

    fn finish(&mut self, outcome: Outcome) -> Duration {
        let Some(duration) = self.state.finish() else {
            return self.state.elapsed();
        };
        let usage = LlmUsage {
            duration,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            time_to_first_token: self.first_token,
        };
        self.model.record(&usage, outcome, self.state.trace());
        self.state.end_span(StageEnd::Llm {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            outcome,
        });
        duration
    }

    fn abandon_inner(&mut self, error_type: &str) {
        if self.state.finish().is_none() {
            return;
        }
        // The tokens were used, whatever became of the call; its time is no latency.
        let m = &self.model.0;
        m.requests[Outcome::Error.index()].inc_traced(self.state.trace());
        m.tokens_in.inc_by(self.input_tokens);
        m.tokens_out.inc_by(self.output_tokens);
        m.abandoned.inc();
        self.state.end_span(StageEnd::Abandoned { error_type });
    }
}

stage_guard!(LlmCall);
