//! W3C trace context (`traceparent`, `tracestate`) and W3C baggage, extracted from and
//! injected into HTTP headers, so that the UI server, the backend and Rust services join
//! one trace.
//!
//! Carriers are the OpenTelemetry [`Extractor`] and [`Injector`] traits; they are
//! implemented here for `http::HeaderMap` ([`HeaderMapCarrier`]), and the `*_pairs`
//! functions take and return plain `(name, value)` pairs, which is what the Python and
//! Node bindings hold.
//!
//! ```
//! use tars_telemetry::trace::propagation;
//!
//! let incoming = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
//!                 ("baggage", "user_id=u-42")];
//! let cx = propagation::extract_pairs(incoming);
//! let r = propagation::trace_ref(&cx).unwrap();
//! assert_eq!(r.trace_id[0], 0x4b);
//!
//! // Calls made in this context carry the same trace onward.
//! let outgoing = propagation::inject_pairs(&cx);
//! assert!(outgoing.iter().any(|(k, v)| k == "traceparent" && v.starts_with("00-4bf92f35")));
//! assert!(outgoing.iter().any(|(k, v)| k == "baggage" && v == "user_id=u-42"));
//! ```

use std::sync::OnceLock;

use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
pub use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

use crate::TraceRef;

fn propagator() -> &'static TextMapCompositePropagator {
    static P: OnceLock<TextMapCompositePropagator> = OnceLock::new();
    P.get_or_init(|| {
        TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ])
    })
}

/// The W3C trace context and baggage propagator, to install as OpenTelemetry's global
/// propagator (`opentelemetry::global::set_text_map_propagator`).
pub fn w3c_propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

/// The context carried by incoming headers, on top of the current one: a remote parent
/// span when `traceparent` is valid, and the baggage entries. Attach it (or pass it to
/// `HttpRoute::start_remote`) before starting the request's server span.
pub fn extract(headers: &dyn Extractor) -> Context {
    Context::map_current(|cx| propagator().extract_with_context(cx, headers))
}

/// [`extract`] from `(name, value)` pairs; names are matched case-insensitively.
pub fn extract_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Context {
    let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    extract(&Pairs(&pairs))
}

/// Writes `traceparent`, `tracestate` (when not empty) and `baggage` (when not empty) for
/// the context `cx` into `headers`. Nothing is written when `cx` holds no valid span.
pub fn inject(cx: &Context, headers: &mut dyn Injector) {
    propagator().inject_context(cx, headers)
}

/// [`inject`] for the current context.
pub fn inject_current(headers: &mut dyn Injector) {
    Context::map_current(|cx| inject(cx, headers))
}

/// The headers [`inject`] would write, as lowercase `(name, value)` pairs.
pub fn inject_pairs(cx: &Context) -> Vec<(String, String)> {
    let mut out = PairsOut(Vec::with_capacity(3));
    inject(cx, &mut out);
    out.0
}

/// The trace and span ids of the context's span, if it is valid.
pub fn trace_ref(cx: &Context) -> Option<TraceRef> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| TraceRef::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes()))
}

/// The span context of `cx`'s active span, to pass as an explicit parent
/// (`Parent::Span`) to a stage: how a span made by the OpenTelemetry SDK, in Rust or read
/// from another SDK's context, becomes the parent of this library's stages.
///
/// ```
/// use tars_telemetry::{Parent, Telemetry};
/// use tars_telemetry::trace::propagation;
/// let cx = propagation::extract_pairs([(
///     "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]);
/// let parent = propagation::span_context(&cx).unwrap();
/// assert_eq!(parent.to_traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// let t = Telemetry::new();
/// t.rag().start_query_with(Parent::Span(parent)).succeed();
/// ```
pub fn span_context(cx: &Context) -> Option<crate::SpanContext> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| crate::SpanContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        trace_flags: sc.trace_flags().to_u8(),
        is_remote: sc.is_remote(),
    })
}

/// A baggage value of the context (`request_id`, `user_id`, ...).
pub fn baggage_value(cx: &Context, key: &str) -> Option<String> {
    cx.baggage().get(key).map(|v| v.as_str().to_owned())
}

/// `http::HeaderMap` as an OpenTelemetry carrier, both ways.
///
/// ```
/// use tars_telemetry::trace::propagation::{self, HeaderMapCarrier};
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent",
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
/// let cx = propagation::extract(&HeaderMapCarrier(&mut headers));
/// assert!(propagation::trace_ref(&cx).is_some());
/// ```
#[derive(Debug)]
pub struct HeaderMapCarrier<'a>(pub &'a mut http::HeaderMap);

impl Extractor for HeaderMapCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let v: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!v.is_empty()).then_some(v)
    }
}

impl Injector for HeaderMapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// A read-only `http::HeaderMap` carrier (for extracting from a request you only borrow).
#[derive(Debug, Clone, Copy)]
pub struct HeaderMapRef<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderMapRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct Pairs<'a>(&'a [(&'a str, &'a str)]);

impl Extractor for Pairs<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let v: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
            .collect();
        (!v.is_empty()).then_some(v)
    }
}

struct PairsOut(Vec<(String, String)>);

impl Injector for PairsOut {
    fn set(&mut self, key: &str, value: String) {
        let key = key.to_ascii_lowercase();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_traceparent_gives_no_parent() {
        for tp in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let cx = extract_pairs([("traceparent", tp)]);
            assert!(trace_ref(&cx).is_none(), "{tp}");
            assert!(inject_pairs(&cx).iter().all(|(k, _)| k != "traceparent"));
        }
    }

    #[test]
    fn round_trip_keeps_flags_and_state() {
        let cx = extract_pairs([
            (
                "TraceParent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            ),
            ("tracestate", "vendor=abc"),
        ]);
        assert!(!cx.span().span_context().is_sampled());
        assert!(cx.span().span_context().is_remote());
        let out = inject_pairs(&cx);
        assert!(out.contains(&(
            "traceparent".into(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".into()
        )));
        assert!(out.contains(&("tracestate".into(), "vendor=abc".into())));
    }

    #[test]
    fn header_map_both_ways() {
        let mut h = http::HeaderMap::new();
        let cx = extract_pairs([
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("baggage", "request_id=r1"),
        ]);
        inject(&cx, &mut HeaderMapCarrier(&mut h));
        assert!(h.get("traceparent").is_some());
        let back = extract(&HeaderMapRef(&h));
        assert_eq!(baggage_value(&back, "request_id").as_deref(), Some("r1"));
    }
}
