//! The tracing side of the metric guards: make a stage's span current, read its ids, add
//! attributes, record an error.

use std::future::Future;

use opentelemetry::trace::{FutureExt as _, WithContext};
use opentelemetry::{Context, ContextGuard, KeyValue};

use super::propagation::{self, Extractor};
use super::spans::{Stage, own, own_mut};
use crate::domain::{
    CacheCall, DocumentJob, HttpRequest, HttpRoute, LlmCall, Method, RagQuery, Timer,
};

/// While alive, a stage's span is the current OpenTelemetry context of this thread:
/// stages started meanwhile are its children, `tracing` spans nest under it, and log
/// lines carry its ids. Does nothing for a guard without a span.
#[must_use = "the stage is current only while the scope is alive"]
#[derive(Debug)]
pub struct Scope(#[allow(dead_code)] Option<ContextGuard>);

fn scope(stage: Option<&Stage>) -> Scope {
    Scope(stage.map(|s| s.context().attach()))
}

macro_rules! traced_guard {
    ($ty:ident, $make:literal) => {
        impl $ty {
            /// Makes this stage's span current until the returned [`Scope`] drops (a
            /// no-op when the stage has no span: tracing off, or not sampled).
            ///
            /// ```
            /// # let t = tars_telemetry::Telemetry::new();
            #[doc = concat!("let guard = ", $make, ";")]
            /// let _in = guard.enter();
            /// // stages and log lines here belong to the guard's span
            /// ```
            pub fn enter(&self) -> Scope {
                scope(self.state.stage.as_deref().and_then(own))
            }

            /// Runs `f` with this stage's span current.
            pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
                let _in = self.enter();
                f()
            }

            /// Wraps a future so that this stage's span is current whenever it is polled
            /// (what `enter` is for synchronous code).
            pub fn instrument<F: Future>(&self, fut: F) -> WithContext<F> {
                fut.with_context(self.context())
            }

            /// The context in which this stage's span is the active one, for
            /// propagation ([`propagation::inject`]) or for work on another thread;
            /// the current context when the stage has no span.
            pub fn context(&self) -> Context {
                match self.state.stage.as_deref().and_then(own) {
                    Some(s) => s.context(),
                    None => Context::current(),
                }
            }

            /// Adds an attribute to this stage's span.
            pub fn set_attribute(&mut self, kv: KeyValue) {
                if let Some(s) = self.state.stage.as_deref_mut().and_then(own_mut) {
                    s.set_attribute(kv);
                }
            }
        }
    };
}

traced_guard!(Timer, "t.db().query(tars_telemetry::DbOperation::Select)");
traced_guard!(
    HttpRequest,
    "t.http().route(\"/api/v1/rag/query\").start(tars_telemetry::Method::Post)"
);
traced_guard!(RagQuery, "t.rag().start_query()");
traced_guard!(LlmCall, "t.llm_model(\"llama3\").unwrap().start()");
traced_guard!(DocumentJob, "t.documents().start()");
traced_guard!(CacheCall, "t.redis().start_command(\"GET\")");

impl HttpRoute {
    /// Starts a request whose trace context came in with its headers (`traceparent`,
    /// `tracestate`, `baggage`): the server span is a child of the caller's span, so the
    /// UI server, the backend and this service are one trace.
    ///
    /// ```
    /// use tars_telemetry::{Telemetry, Method};
    /// let t = Telemetry::new();
    /// let route = t.http().route("/api/v1/rag/query");
    /// let headers = std::collections::HashMap::from([(
    ///     "traceparent".to_string(),
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
    /// )]);
    /// let req = route.start_remote(Method::Post, &headers);
    /// req.finish(200);
    /// ```
    pub fn start_remote(&self, method: Method, headers: &dyn Extractor) -> HttpRequest {
        let _remote = propagation::extract(headers).attach();
        self.start(method)
    }

    /// Starts a request under `parent` (an OpenTelemetry context extracted by the caller).
    pub fn start_in_context(&self, method: Method, parent: &Context) -> HttpRequest {
        let _parent = parent.clone().attach();
        self.start(method)
    }
}

impl LlmCall {
    /// Records the prompt on the span as `gen_ai.input.messages`, only when message
    /// capture is on ([`super::TraceConfig::with_message_content`]); otherwise the text
    /// is never stored anywhere.
    ///
    /// ```
    /// # let t = tars_telemetry::Telemetry::new();
    /// let mut call = t.llm_model("llama3").unwrap().start();
    /// call.capture_input("What is RAG?"); // dropped unless capture was opted into
    /// call.succeed();
    /// ```
    pub fn capture_input(&mut self, text: &str) {
        self.capture(super::spans::semconv::GEN_AI_INPUT_MESSAGES, "user", text);
    }

    /// Records the response on the span as `gen_ai.output.messages`, under the same
    /// opt-in as [`LlmCall::capture_input`].
    pub fn capture_output(&mut self, text: &str) {
        self.capture(
            super::spans::semconv::GEN_AI_OUTPUT_MESSAGES,
            "assistant",
            text,
        );
    }

    /// Sets `gen_ai.response.model`: the model that answered, when the server names one
    /// other than the model asked for (otherwise a successful call records the requested
    /// model).
    pub fn set_response_model(&mut self, model: &str) {
        self.set_attribute(KeyValue::new(
            super::spans::semconv::GEN_AI_RESPONSE_MODEL,
            model.to_string(),
        ));
    }

    /// Sets `gen_ai.response.finish_reasons` (`stop`, `length`, `tool_calls`, ...);
    /// a successful call records `["stop"]` unless told otherwise.
    pub fn set_finish_reasons(&mut self, reasons: &[&str]) {
        let values: Vec<opentelemetry::StringValue> =
            reasons.iter().map(|r| r.to_string().into()).collect();
        self.set_attribute(KeyValue::new(
            super::spans::semconv::GEN_AI_RESPONSE_FINISH_REASONS,
            opentelemetry::Value::Array(values.into()),
        ));
    }

    fn capture(&mut self, key: &'static str, role: &str, text: &str) {
        if let Some(s) = self
            .state
            .stage
            .as_deref_mut()
            .and_then(own_mut)
            .filter(|s| s.capture_content())
        {
            let mut json = String::with_capacity(text.len() + 48);
            json.push_str("[{\"role\":\"");
            json.push_str(role);
            json.push_str("\",\"parts\":[{\"type\":\"text\",\"content\":");
            json.push_str(&serde_json::Value::from(text).to_string());
            json.push_str("}]}]");
            s.set_attribute(KeyValue::new(key, json));
        }
    }
}
