use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use super::pricing::{LlmPricing, ModelPrices};
use super::{
    Interner, Outcome, StageState, TokenKind, abandoned, counter_in, histogram_in, stage_guard,
};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Histogram, TraceRef};
use crate::registry::{Family, Registry};
use crate::stage::{Hook, Parent, StageEnd, StageKind, StageType, TokenUsage};

#[derive(Debug)]
struct LlmModelsInner {
    duration: Arc<Family>,
    tokens_out: Arc<Family>,
    tokens_in: Arc<Family>,
    tokens: Arc<Family>,
    spend: Arc<Family>,
    unpriced: Arc<Family>,
    requests: Arc<Family>,
    ttft: Arc<Family>,
    tpot: Arc<Family>,
    abandoned: Counter,
    models: Interner<LlmModel>,
    /// Read when a model is made and when the table is replaced; never when recording
    /// (each model keeps its prices in atomics).
    pricing: RwLock<LlmPricing>,
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
            tokens: reg.register(&c::LLM_TOKENS)?,
            spend: reg.register(&c::LLM_SPEND)?,
            unpriced: reg.register(&c::LLM_UNPRICED_TOKENS)?,
            pricing: RwLock::new(LlmPricing::new()),
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

    /// Replaces the pricing table: models already in use take their new prices at once,
    /// later ones when they are made. Spend already counted stays as it was.
    ///
    /// ```
    /// use tars_telemetry::Telemetry;
    /// use tars_telemetry::llm::{LlmPricing, ModelPrices, TokenKind, TokenUsage};
    /// let t = Telemetry::new();
    /// let prices = ModelPrices::default().with(TokenKind::Input, 0.5).unwrap();
    /// t.llm().set_pricing(LlmPricing::new().with_model("llama3", prices));
    /// let mut call = t.llm_model("llama3").unwrap().start();
    /// call.set_usage(TokenUsage { input_tokens: 2_000_000, output_tokens: 10, ..Default::default() });
    /// call.succeed();
    /// let text = t.render_string(tars_telemetry::Format::Prometheus);
    /// assert!(text.contains(r#"tars_llm_spend_dollars_total{model="llama3",type="input"} 1"#));
    /// assert!(text.contains(r#"tars_llm_unpriced_tokens_total{model="llama3",type="output"} 10"#));
    /// ```
    pub fn set_pricing(&self, pricing: LlmPricing) {
        *self.0.pricing.write() = pricing;
        // Lock order as in `make` (the interner's, then the table's).
        self.0.models.for_each(|model| {
            model.set_prices(self.0.pricing.read().model(model.name()));
        });
    }

    /// The pricing table in force.
    pub fn pricing(&self) -> LlmPricing {
        self.0.pricing.read().clone()
    }

    fn make(&self, model: &str) -> Result<LlmModel, Error> {
        let l = [model];
        let m = &self.0;
        let cells = |kind: TokenKind| -> Result<KindCells, Error> {
            let labels = [model, kind.as_str()];
            Ok(KindCells {
                tokens: counter_in(&m.tokens, &labels)?,
                spend: counter_in(&m.spend, &labels)?,
                unpriced: counter_in(&m.unpriced, &labels)?,
                price: AtomicU64::new(UNPRICED),
            })
        };
        // By `TokenKind::index` (the order of `TokenKind::ALL`).
        let kinds = [
            cells(TokenKind::Input)?,
            cells(TokenKind::CacheRead)?,
            cells(TokenKind::CacheWrite)?,
            cells(TokenKind::Output)?,
            cells(TokenKind::Reasoning)?,
        ];
        let made = LlmModel(Arc::new(LlmModelInner {
            kinds,
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
        }));
        made.set_prices(m.pricing.read().model(model));
        Ok(made)
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

/// A price slot that has no price: its tokens are counted as unpriced.
const UNPRICED: u64 = u64::MAX;

/// One token kind of one model: its tokens, its spend (pico-dollars), its unpriced
/// tokens, and its price in pico-dollars per token (or [`UNPRICED`]).
#[derive(Debug)]
struct KindCells {
    tokens: Counter,
    spend: Counter,
    unpriced: Counter,
    price: AtomicU64,
}

#[derive(Debug)]
struct LlmModelInner {
    /// By `TokenKind::index`.
    kinds: [KindCells; 5],
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
    /// Its tokens, by kind.
    pub tokens: TokenUsage,
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
            usage: TokenUsage::default(),
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
        self.record_tokens(&usage.tokens);
        let output = usage.tokens.total_output();
        if let Some(ttft) = usage.time_to_first_token {
            m.ttft.observe_duration(ttft);
            if output > 1 && usage.duration > ttft {
                let rest = (usage.duration - ttft).as_secs_f64();
                m.tpot.observe(rest / (output - 1) as f64);
            }
        }
    }

    /// Counts a call's tokens: the input and output totals, each kind, and each kind's
    /// spend at this model's price (or its unpriced tokens). Atomics only.
    fn record_tokens(&self, tokens: &TokenUsage) {
        let m = &self.0;
        m.tokens_in.inc_by(tokens.total_input());
        m.tokens_out.inc_by(tokens.total_output());
        for (cells, n) in m.kinds.iter().zip(tokens.by_kind()) {
            if n == 0 {
                // Most calls report two kinds or three: skip the rest without an atomic.
                continue;
            }
            cells.tokens.inc_by(n);
            match cells.price.load(Ordering::Relaxed) {
                UNPRICED => cells.unpriced.inc_by(n),
                pico => cells.spend.inc_by(n.saturating_mul(pico)),
            }
        }
    }

    fn set_prices(&self, prices: Option<&ModelPrices>) {
        let pico = prices.map_or([None; 5], ModelPrices::pico_per_token);
        for (cells, p) in self.0.kinds.iter().zip(pico) {
            cells.price.store(p.unwrap_or(UNPRICED), Ordering::Relaxed);
        }
    }

    /// Spend on this model so far, in dollars, by token kind (indexed by
    /// `TokenKind::index`).
    pub fn spend_dollars(&self) -> [f64; 5] {
        let divisor = c::LLM_SPEND.fixed_point_divisor().unwrap_or(1.0);
        let mut out = [0.0; 5];
        for (o, cells) in out.iter_mut().zip(self.0.kinds.iter()) {
            *o = cells.spend.get() as f64 / divisor;
        }
        out
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
    usage: TokenUsage,
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
        self.usage.input_tokens = n;
    }

    /// Adds completion tokens (a streamed chunk's).
    pub fn add_output_tokens(&mut self, n: u64) {
        self.usage.output_tokens = self.usage.output_tokens.saturating_add(n);
    }

    /// Sets the completion tokens.
    pub fn set_output_tokens(&mut self, n: u64) {
        self.usage.output_tokens = n;
    }

    /// Sets the call's whole token usage, by kind (what the provider's response reports),
    /// replacing any counts set before.
    pub fn set_usage(&mut self, usage: TokenUsage) {
        self.usage = usage;
    }

    /// The token usage set so far.
    pub fn usage(&self) -> TokenUsage {
        self.usage
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
            tokens: self.usage,
            time_to_first_token: self.first_token,
        };
        self.model.record(&usage, outcome, self.state.trace());
        self.state.end_span(StageEnd::Llm {
            usage: self.usage,
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
        self.model.record_tokens(&self.usage);
        m.abandoned.inc();
        self.state.end_span(StageEnd::Abandoned { error_type });
    }
}

stage_guard!(LlmCall);
