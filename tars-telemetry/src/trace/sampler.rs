//! The platform's sampler: route rules first, then the parent, then a trace-id ratio per
//! service.
//!
//! The decision for a span, in order:
//!
//! 1. `OTEL_TRACES_SAMPLER=always_off` ([`BaseSampler::AlwaysOff`]) turns tracing off:
//!    nothing is sampled, whatever the route.
//! 2. The span's route (its `http.route` attribute, else `url.path`) is one of the *never*
//!    routes (`/health`, `/metrics`, `/ready`): dropped, even under a sampled parent. The
//!    drop is marked in the trace state (`tars=never`), so that the spans below it (and
//!    downstream services using these rules) are dropped too, whatever the base sampler.
//! 3. The route is one of the *always* routes (`/api/v1/rag/query`,
//!    `/api/v1/documents/upload`, `/api/v1/auth/login`): sampled, even under an unsampled
//!    parent.
//! 4. The parent was dropped by a *never* route (its trace state says `tars=never`):
//!    dropped.
//! 5. The span has a parent and the base sampler is parent-based (the default): the
//!    parent's decision is followed.
//! 6. Otherwise (a root, or a non-parent-based base sampler) the base sampler decides: by
//!    default the trace-id ratio of the service (tars-backend 1.0, tars-rag-service 1.0,
//!    tars-ui 0.5, any other 0.1).
//!
//! The ratio test is the one of the OpenTelemetry SDK's `TraceIdRatioBased` (the low 63
//! bits of the trace id against the ratio), so a trace id sampled at ratio r is sampled at
//! every ratio above r.
//!
//! ```
//! use opentelemetry::trace::{SpanKind, TraceId};
//! use opentelemetry::KeyValue;
//! use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};
//! use tars_telemetry::trace::{PlatformSampler, SamplingRules};
//!
//! let sampler = PlatformSampler::new(&SamplingRules::default(), "tars-ui");
//! assert_eq!(sampler.root_ratio(), 0.5);
//! let decide = |route: &str| {
//!     sampler
//!         .should_sample(None, TraceId::from(7), "GET", &SpanKind::Server,
//!             &[KeyValue::new("http.route", route.to_string())], &[])
//!         .decision
//! };
//! assert_eq!(decide("/health"), SamplingDecision::Drop);
//! assert_eq!(decide("/api/v1/rag/query"), SamplingDecision::RecordAndSample);
//! ```

use std::sync::Arc;

use opentelemetry::trace::{Link, SpanContext, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

/// The sampler that decides when no route rule applies: the values of
/// `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG`), plus the platform's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BaseSampler {
    /// The platform's default (`OTEL_TRACES_SAMPLER` unset): parent-based, roots sampled
    /// at the service's ratio from [`SamplingRules::service_ratios`].
    ParentBasedServiceRatio,
    /// `always_on`: every span, whatever its parent (route *never* rules still apply).
    AlwaysOn,
    /// `always_off`: no span at all, route rules included.
    AlwaysOff,
    /// `traceidratio`: every span by its trace id, whatever its parent.
    TraceIdRatio(f64),
    /// `parentbased_always_on`: roots always.
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: roots never (children of sampled remote parents are).
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: roots by their trace id at this ratio.
    ParentBasedTraceIdRatio(f64),
}

impl BaseSampler {
    /// Parses `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`. A missing or invalid
    /// argument of a ratio sampler means 1.0 for `traceidratio`, as the specification says,
    /// and the service's ratio for `parentbased_traceidratio`. `None` for an unknown name.
    ///
    /// ```
    /// use tars_telemetry::trace::BaseSampler;
    /// assert_eq!(BaseSampler::parse("traceidratio", Some("0.25")), Some(BaseSampler::TraceIdRatio(0.25)));
    /// assert_eq!(BaseSampler::parse("parentbased_traceidratio", None),
    ///            Some(BaseSampler::ParentBasedServiceRatio));
    /// assert_eq!(BaseSampler::parse("jaeger_remote", None), None);
    /// ```
    pub fn parse(name: &str, arg: Option<&str>) -> Option<BaseSampler> {
        let ratio = arg
            .and_then(|a| a.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r));
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "always_on" => BaseSampler::AlwaysOn,
            "always_off" => BaseSampler::AlwaysOff,
            "traceidratio" => BaseSampler::TraceIdRatio(ratio.unwrap_or(1.0)),
            "parentbased_always_on" => BaseSampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => BaseSampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => match ratio {
                Some(r) => BaseSampler::ParentBasedTraceIdRatio(r),
                None => BaseSampler::ParentBasedServiceRatio,
            },
            _ => return None,
        })
    }

    fn parent_based(self) -> bool {
        matches!(
            self,
            BaseSampler::ParentBasedServiceRatio
                | BaseSampler::ParentBasedAlwaysOn
                | BaseSampler::ParentBasedAlwaysOff
                | BaseSampler::ParentBasedTraceIdRatio(_)
        )
    }
}

/// The sampling rules of the platform; [`SamplingRules::default`] holds its defaults.
///
/// Routes are route templates as given to `http.route` (`/api/v1/rag/query`), matched
/// exactly, or a prefix followed by `*` (`/internal/*`).
///
/// ```
/// use tars_telemetry::trace::SamplingRules;
/// let mut rules = SamplingRules::default();
/// assert_eq!(rules.ratio_for("tars-backend"), 1.0);
/// assert_eq!(rules.ratio_for("billing"), 0.1);
/// rules.never_routes.push("/internal/*".into());
/// rules.service_ratios.push(("billing".into(), 0.01));
/// assert_eq!(rules.ratio_for("billing"), 0.01);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingRules {
    /// Root sampling ratio per service name.
    pub service_ratios: Vec<(String, f64)>,
    /// Root sampling ratio of services not in `service_ratios`.
    pub default_ratio: f64,
    /// Routes always sampled, even under an unsampled parent.
    pub always_routes: Vec<String>,
    /// Routes never sampled, even under a sampled parent.
    pub never_routes: Vec<String>,
    /// What decides when no route rule applies.
    pub base: BaseSampler,
}

impl Default for SamplingRules {
    fn default() -> Self {
        SamplingRules {
            service_ratios: vec![
                ("tars-backend".into(), 1.0),
                ("tars-rag-service".into(), 1.0),
                ("tars-ui".into(), 0.5),
            ],
            default_ratio: 0.1,
            always_routes: vec![
                "/api/v1/rag/query".into(),
                "/api/v1/documents/upload".into(),
                "/api/v1/auth/login".into(),
            ],
            never_routes: vec!["/health".into(), "/metrics".into(), "/ready".into()],
            base: BaseSampler::ParentBasedServiceRatio,
        }
    }
}

impl SamplingRules {
    /// The root ratio of `service` from the table (whatever the base sampler).
    pub fn ratio_for(&self, service: &str) -> f64 {
        self.service_ratios
            .iter()
            .find(|(s, _)| s == service)
            .map_or(self.default_ratio, |(_, r)| *r)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Root {
    On,
    Off,
    /// Sampled when the trace id's low 63 bits are below this bound.
    Ratio(u64, f64),
}

impl Root {
    fn from_ratio(r: f64) -> Root {
        if r >= 1.0 {
            Root::On
        } else if r <= 0.0 || r.is_nan() {
            Root::Off
        } else {
            Root::Ratio((r * (1u64 << 63) as f64) as u64, r)
        }
    }

    fn sample(self, trace_id: TraceId) -> bool {
        match self {
            Root::On => true,
            Root::Off => false,
            Root::Ratio(bound, _) => {
                let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap());
                (low >> 1) < bound
            }
        }
    }
}

/// A route pattern: exact, or a prefix when it ends with `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(Box<str>),
    Prefix(Box<str>),
}

impl Pattern {
    fn new(p: &str) -> Pattern {
        match p.strip_suffix('*') {
            Some(prefix) => Pattern::Prefix(prefix.into()),
            None => Pattern::Exact(p.into()),
        }
    }

    fn matches(&self, route: &str) -> bool {
        match self {
            Pattern::Exact(p) => &**p == route,
            Pattern::Prefix(p) => route.starts_with(&**p),
        }
    }
}

/// The trace state entry that marks a trace dropped by a *never* route.
pub const NEVER_MARK: (&str, &str) = ("tars", "never");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Sample,
    Drop,
    /// Dropped by a never route: marked, so the subtree is dropped too.
    Never,
}

/// The platform sampler, an OpenTelemetry SDK [`ShouldSample`] (see the module docs for
/// the order of its rules). Cheap to clone.
#[derive(Debug, Clone)]
pub struct PlatformSampler {
    always: Arc<[Pattern]>,
    never: Arc<[Pattern]>,
    root: Root,
    parent_based: bool,
    off: bool,
}

impl PlatformSampler {
    /// The sampler of `service` under `rules`.
    pub fn new(rules: &SamplingRules, service: &str) -> Self {
        let root = match rules.base {
            BaseSampler::ParentBasedServiceRatio => Root::from_ratio(rules.ratio_for(service)),
            BaseSampler::AlwaysOn | BaseSampler::ParentBasedAlwaysOn => Root::On,
            BaseSampler::AlwaysOff | BaseSampler::ParentBasedAlwaysOff => Root::Off,
            BaseSampler::TraceIdRatio(r) | BaseSampler::ParentBasedTraceIdRatio(r) => {
                Root::from_ratio(r)
            }
        };
        PlatformSampler {
            always: rules
                .always_routes
                .iter()
                .map(|p| Pattern::new(p))
                .collect(),
            never: rules.never_routes.iter().map(|p| Pattern::new(p)).collect(),
            root,
            parent_based: rules.base.parent_based(),
            off: rules.base == BaseSampler::AlwaysOff,
        }
    }

    /// The ratio at which roots are sampled when no route rule applies.
    pub fn root_ratio(&self) -> f64 {
        match self.root {
            Root::On => 1.0,
            Root::Off => 0.0,
            Root::Ratio(_, r) => r,
        }
    }

    /// True when a span with a parent follows the parent's decision.
    pub fn is_parent_based(&self) -> bool {
        self.parent_based
    }

    /// The route rule for `route`: `Some(true)` always, `Some(false)` never, `None` when
    /// no rule applies.
    ///
    /// ```
    /// use tars_telemetry::trace::{PlatformSampler, SamplingRules};
    /// let s = PlatformSampler::new(&SamplingRules::default(), "tars-backend");
    /// assert_eq!(s.route_rule("/metrics"), Some(false));
    /// assert_eq!(s.route_rule("/api/v1/auth/login"), Some(true));
    /// assert_eq!(s.route_rule("/api/v1/users/{id}"), None);
    /// ```
    pub fn route_rule(&self, route: &str) -> Option<bool> {
        if self.never.iter().any(|p| p.matches(route)) {
            Some(false)
        } else if self.always.iter().any(|p| p.matches(route)) {
            Some(true)
        } else {
            None
        }
    }

    /// The decision for a span with this parent (if any), trace id and start attributes:
    /// true to sample it.
    pub fn decide(
        &self,
        parent: Option<&SpanContext>,
        trace_id: TraceId,
        attributes: &[KeyValue],
    ) -> bool {
        self.decision(parent, trace_id, attributes) == Decision::Sample
    }

    fn decision(
        &self,
        parent: Option<&SpanContext>,
        trace_id: TraceId,
        attributes: &[KeyValue],
    ) -> Decision {
        if self.off {
            return Decision::Drop;
        }
        match route_of(attributes).and_then(|r| self.route_rule(r)) {
            Some(false) => return Decision::Never,
            Some(true) => return Decision::Sample,
            None => {}
        }
        let parent = parent.filter(|p| p.is_valid());
        if parent.is_some_and(|p| p.trace_state().get(NEVER_MARK.0) == Some(NEVER_MARK.1)) {
            return Decision::Never;
        }
        let sampled = match parent {
            Some(p) if self.parent_based => p.is_sampled(),
            _ => self.root.sample(trace_id),
        };
        if sampled {
            Decision::Sample
        } else {
            Decision::Drop
        }
    }
}

/// The route a span was started with: its `http.route`, else its `url.path`.
fn route_of(attributes: &[KeyValue]) -> Option<&str> {
    let find = |key: &str| {
        attributes.iter().find_map(|kv| match &kv.value {
            Value::String(s) if kv.key.as_str() == key => Some(s.as_str()),
            _ => None,
        })
    };
    find("http.route").or_else(|| find("url.path"))
}

impl ShouldSample for PlatformSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone());
        let decision = self.decision(parent.as_ref(), trace_id, attributes);
        let mut trace_state = parent.map_or_else(TraceState::default, |p| p.trace_state().clone());
        if decision == Decision::Never && trace_state.get(NEVER_MARK.0) != Some(NEVER_MARK.1) {
            trace_state = trace_state
                .insert(NEVER_MARK.0, NEVER_MARK.1)
                .unwrap_or(trace_state);
        }
        SamplingResult {
            decision: if decision == Decision::Sample {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags};

    fn parent(sampled: bool) -> SpanContext {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            flags,
            true,
            TraceState::default(),
        )
    }

    fn route(r: &str) -> Vec<KeyValue> {
        vec![KeyValue::new("http.route", r.to_string())]
    }

    #[test]
    fn route_rules_beat_the_parent() {
        let s = PlatformSampler::new(&SamplingRules::default(), "tars-backend");
        assert!(!s.decide(Some(&parent(true)), TraceId::from(1), &route("/health")));
        assert!(s.decide(
            Some(&parent(false)),
            TraceId::from(1),
            &route("/api/v1/rag/query")
        ));
        assert!(!s.decide(Some(&parent(false)), TraceId::from(1), &route("/api/v1/x")));
        assert!(s.decide(Some(&parent(true)), TraceId::from(1), &[]));
        let path = [KeyValue::new("url.path", "/ready")];
        assert!(!s.decide(None, TraceId::from(1), &path));
    }

    #[test]
    fn always_off_is_a_kill_switch() {
        let rules = SamplingRules {
            base: BaseSampler::AlwaysOff,
            ..Default::default()
        };
        let s = PlatformSampler::new(&rules, "tars-backend");
        assert!(!s.decide(
            Some(&parent(true)),
            TraceId::from(1),
            &route("/api/v1/rag/query")
        ));
    }

    #[test]
    fn non_parent_based_ignores_the_parent() {
        let rules = SamplingRules {
            base: BaseSampler::AlwaysOn,
            ..Default::default()
        };
        let s = PlatformSampler::new(&rules, "x");
        assert!(s.decide(Some(&parent(false)), TraceId::from(1), &[]));
        assert!(!s.decide(None, TraceId::from(1), &route("/metrics")));
    }

    #[test]
    fn ratio_is_monotonic_and_close() {
        let lo = Root::from_ratio(0.1);
        let hi = Root::from_ratio(0.5);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let (mut n_lo, mut n_hi) = (0, 0);
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = TraceId::from(u128::from(x) << 64 | u128::from(x.rotate_left(17)));
            let (a, b) = (lo.sample(id), hi.sample(id));
            assert!(!a || b, "sampled at 0.1 but not at 0.5");
            n_lo += usize::from(a);
            n_hi += usize::from(b);
        }
        assert!((1_700..2_300).contains(&n_lo), "{n_lo}");
        assert!((9_400..10_600).contains(&n_hi), "{n_hi}");
    }

    #[test]
    fn a_never_route_drops_its_subtree_in_every_mode() {
        let rules = SamplingRules {
            base: BaseSampler::AlwaysOn,
            ..Default::default()
        };
        let s = PlatformSampler::new(&rules, "x");
        let r = s.should_sample(
            None,
            TraceId::from(1),
            "GET",
            &SpanKind::Server,
            &route("/health"),
            &[],
        );
        assert_eq!(r.decision, SamplingDecision::Drop);
        assert_eq!(r.trace_state.get("tars"), Some("never"));
        let health = SpanContext::new(
            TraceId::from(1),
            SpanId::from(3),
            TraceFlags::default(),
            false,
            r.trace_state,
        );
        assert!(!s.decide(Some(&health), TraceId::from(1), &[]));
        assert!(s.decide(
            Some(&health),
            TraceId::from(1),
            &route("/api/v1/auth/login")
        ));
    }

    #[test]
    fn prefix_patterns() {
        let rules = SamplingRules {
            never_routes: vec!["/internal/*".into()],
            ..Default::default()
        };
        let s = PlatformSampler::new(&rules, "tars-backend");
        assert_eq!(s.route_rule("/internal/debug"), Some(false));
        assert_eq!(s.route_rule("/health"), None);
    }
}
