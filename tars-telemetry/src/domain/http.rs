use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use super::{
    Interner, Method, StageState, abandoned, counter_in, gauge, histogram_in, stage_guard,
};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram, TraceRef};
use crate::registry::{Family, Registry};
use crate::stage::{Hook, Parent, StageEnd, StageKind, StageType};

const METHODS: usize = Method::ALL.len();
/// Slots for status codes 100..=599, plus one for anything else.
const STATUS_SLOTS: usize = 501;

/// The route label of a request that finished without a route template (no route
/// matched, or the framework never said): raw paths are never labels.
pub const UNMATCHED_ROUTE: &str = "__unmatched__";

/// The status code an abandoned request is counted under: 499, "client closed request"
/// (the nginx convention), so cancellations are neither successes nor server errors.
pub const ABANDONED_STATUS: u16 = 499;

/// The paths a server middleware leaves unrecorded unless told otherwise: the scrape
/// itself and the probes (Kubernetes' and the usual spellings), each with everything
/// below it (see [`ExcludedPaths`]).
pub const DEFAULT_EXCLUDED_PATHS: &[&str] = &[
    "/metrics", "/health", "/healthz", "/livez", "/ready", "/readyz",
];

/// The longest raw path a request's span carries (`url.path`), in bytes: a longer one is
/// cut (at a character boundary), so that a hostile URL costs a bounded span.
pub const MAX_SPAN_PATH: usize = 2048;

/// Why a request ended without its response: one vocabulary for every server adapter,
/// carried as the span's `error.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbandonReason {
    /// The application's task was cancelled (a timeout, a shutdown).
    Cancelled,
    /// The client went away before the last byte of the response.
    ClientDisconnected,
}

impl AbandonReason {
    /// Every reason, in a fixed order (bindings export this table).
    pub const ALL: [AbandonReason; 2] =
        [AbandonReason::Cancelled, AbandonReason::ClientDisconnected];

    /// The `error.type` value.
    ///
    /// ```
    /// use tars_telemetry::http::AbandonReason;
    /// assert_eq!(AbandonReason::ClientDisconnected.as_str(), "client_disconnected");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            AbandonReason::Cancelled => "cancelled",
            AbandonReason::ClientDisconnected => "client_disconnected",
        }
    }
}

/// The paths a server middleware does not record. Each path excludes itself and
/// everything below it, whatever the trailing slash: `/metrics` excludes `/metrics`,
/// `/metrics/` and `/metrics/x`, not `/metricsx`. Every adapter (ASGI, Express, Fastify)
/// asks this, so that one request is recorded or not alike everywhere.
///
/// ```
/// use tars_telemetry::http::ExcludedPaths;
/// let ex = ExcludedPaths::default();
/// assert!(ex.contains("/metrics") && ex.contains("/metrics/") && ex.contains("/healthz"));
/// assert!(!ex.contains("/metricsx") && !ex.contains("/api/health"));
/// let custom = ExcludedPaths::new(["/internal/"]);
/// assert!(custom.contains("/internal/x") && !custom.contains("/metrics"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExcludedPaths(Box<[Box<str>]>);

impl ExcludedPaths {
    /// These paths (a trailing slash is ignored; an empty list records everything).
    pub fn new<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ExcludedPaths(
            paths
                .into_iter()
                .map(|p| {
                    let p = p.as_ref().trim_end_matches('/');
                    if p.is_empty() { "/".into() } else { p.into() }
                })
                .collect(),
        )
    }

    /// Whether a request to `path` (no query string) is left unrecorded.
    pub fn contains(&self, path: &str) -> bool {
        self.0.iter().any(|p| {
            path.strip_prefix(&**p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || &**p == "/")
        })
    }

    /// The paths, as given (trailing slashes removed).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|p| &**p)
    }
}

impl Default for ExcludedPaths {
    fn default() -> Self {
        ExcludedPaths::new(DEFAULT_EXCLUDED_PATHS)
    }
}

/// `path` cut to [`MAX_SPAN_PATH`] bytes, at a character boundary.
pub fn span_path(path: &str) -> &str {
    if path.len() <= MAX_SPAN_PATH {
        return path;
    }
    let mut end = MAX_SPAN_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

#[derive(Debug)]
struct HttpInner {
    requests: Arc<Family>,
    duration: Arc<Family>,
    active: Gauge,
    abandoned: Counter,
    routes: Interner<HttpRoute>,
    unmatched: OnceLock<HttpRoute>,
    hook: Hook,
}

/// Resolves route templates to [`HttpRoute`] handles, interned by template.
#[derive(Debug, Clone)]
pub struct HttpMetrics(Arc<HttpInner>);

impl HttpMetrics {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        let duration = reg.register(&c::HTTP_REQUEST_DURATION)?;
        Ok(HttpMetrics(Arc::new(HttpInner {
            requests: reg.register(&c::HTTP_REQUESTS)?,
            routes: Interner::new(duration.budget()),
            duration,
            active: gauge(reg, &c::HTTP_REQUESTS_ACTIVE)?,
            abandoned: abandoned(reg, StageType::HttpServer)?,
            unmatched: OnceLock::new(),
            hook: hook.clone(),
        })))
    }

    /// The handle of one route template (`/api/v1/rag/query`, `/users/{id}`), never a raw
    /// path: raw paths make one series per URL. Asking again for the same template
    /// returns the same handle at the cost of a map lookup.
    ///
    /// ```
    /// # let t = tars_telemetry::Telemetry::new();
    /// let a = t.http().route("/api/v1/rag/query");
    /// assert!(a.same_handle(&t.http().route("/api/v1/rag/query")));
    /// ```
    pub fn route(&self, template: &str) -> HttpRoute {
        let make = || Ok(self.make_route(template));
        self.0
            .routes
            .get_or_make(template, make)
            .unwrap_or_else(|_: Error| self.make_route(template))
    }

    fn make_route(&self, template: &str) -> HttpRoute {
        let m = &self.0;
        HttpRoute(Arc::new(RouteInner {
            metrics: Arc::downgrade(&self.0),
            template: template.into(),
            requests: m.requests.clone(),
            duration: m.duration.clone(),
            active: m.active.clone(),
            abandoned: m.abandoned.clone(),
            durations: Default::default(),
            counts: Default::default(),
            hook: m.hook.clone(),
        }))
    }

    fn unmatched(&self) -> &HttpRoute {
        self.0.unmatched.get_or_init(|| self.route(UNMATCHED_ROUTE))
    }

    /// Starts a request whose route template is not known yet (frameworks route after
    /// the middleware runs): bind it with [`HttpRequest::set_route`] before it finishes;
    /// one that finishes unbound is labelled [`UNMATCHED_ROUTE`]. `path` is the raw path,
    /// for the span's `url.path` only.
    ///
    /// The sampler's route rules see the raw path here (a rule on `/health` matches the
    /// path `/health`); a template given later renames the span but cannot change the
    /// sampling decision, which is taken at the start.
    ///
    /// ```
    /// use tars_telemetry::{Telemetry, Method, Parent};
    /// let t = Telemetry::new();
    /// let mut req = t.http().start(Method::Get, "/users/42", Parent::Current);
    /// req.set_route(&t.http().route("/users/{id}"));
    /// req.finish(200);
    /// assert_eq!(t.http().route("/users/{id}").requests(Method::Get, 200).get(), 1);
    /// ```
    pub fn start(&self, method: Method, path: &str, parent: Parent<'_>) -> HttpRequest {
        self.0.active.inc();
        let stage = self.0.hook.start(
            StageKind::HttpServer {
                method,
                route: None,
                path: Some(span_path(path)),
            },
            parent,
        );
        HttpRequest {
            target: Target::Pending(self.clone()),
            method,
            late_route: true,
            state: StageState::new(stage),
        }
    }

    /// The `tars_http_requests_active` gauge.
    pub fn active(&self) -> &Gauge {
        &self.0.active
    }

    pub(crate) fn interner_lock_for_fork(&self) {
        self.0.routes.lock_for_fork();
    }

    /// # Safety
    /// As `Interner::unlock_after_fork`.
    pub(crate) unsafe fn interner_unlock_after_fork(&self) {
        // SAFETY: the caller's contract.
        unsafe { self.0.routes.unlock_after_fork() };
    }

    /// Route templates interned so far.
    pub fn interned(&self) -> usize {
        self.0.routes.len()
    }
}

type StatusTable = Box<[OnceLock<Counter>]>;

#[derive(Debug)]
struct RouteInner {
    /// Where the route came from, to intern another template for a request of it (weak:
    /// the interner holds the routes).
    metrics: Weak<HttpInner>,
    template: Box<str>,
    requests: Arc<Family>,
    duration: Arc<Family>,
    active: Gauge,
    abandoned: Counter,
    durations: [OnceLock<Histogram>; METHODS],
    counts: [OnceLock<StatusTable>; METHODS],
    hook: Hook,
}

/// HTTP metrics of one route template.
///
/// The (method, status) series are resolved on first use and then found by array index:
/// recording a request takes no lock and allocates nothing.
///
/// ```
/// use tars_telemetry::{Telemetry, Method};
/// let t = Telemetry::new();
/// let query = t.http().route("/api/v1/rag/query");
/// let req = query.start(Method::Post);
/// // ... handle it ...
/// req.finish(200);
/// assert_eq!(query.requests(Method::Post, 200).get(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct HttpRoute(Arc<RouteInner>);

impl HttpRoute {
    /// The route template.
    pub fn template(&self) -> &str {
        &self.0.template
    }

    /// Whether two handles are the same interned handle.
    pub fn same_handle(&self, other: &HttpRoute) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn histogram(&self, method: Method) -> &Histogram {
        self.0.durations[method.index()].get_or_init(|| {
            histogram_in(&self.0.duration, &[method.as_str(), &self.0.template])
                .unwrap_or_else(|_| Histogram::detached(c::buckets::HTTP_SECONDS))
        })
    }

    /// The request counter of one method and status code.
    pub fn requests(&self, method: Method, status: u16) -> &Counter {
        let table = self.0.counts[method.index()]
            .get_or_init(|| (0..STATUS_SLOTS).map(|_| OnceLock::new()).collect());
        let slot = match status {
            100..=599 => usize::from(status - 100),
            _ => STATUS_SLOTS - 1,
        };
        table[slot].get_or_init(|| {
            let mut buf = itoa::Buffer::new();
            let code = if slot == STATUS_SLOTS - 1 {
                "other"
            } else {
                buf.format(status)
            };
            counter_in(&self.0.requests, &[method.as_str(), &self.0.template, code])
                .unwrap_or_default()
        })
    }

    /// Starts timing a request. Call [`HttpRequest::finish`] with the status; a request
    /// abandoned (cancelled, or dropped without a status) counts under
    /// [`ABANDONED_STATUS`] and observes no duration.
    ///
    /// With tracing installed, this opens the server span `{method} {route}` under the
    /// current context (see `start_remote` for a parent from the request's headers); the
    /// platform sampler reads its route.
    pub fn start(&self, method: Method) -> HttpRequest {
        self.start_with(method, Parent::Current)
    }

    /// [`HttpRoute::start`] under an explicit parent (a remote [`SpanContext`] read from
    /// the request's `traceparent`, say).
    ///
    /// [`SpanContext`]: crate::SpanContext
    pub fn start_with(&self, method: Method, parent: Parent<'_>) -> HttpRequest {
        self.0.active.inc();
        let stage = self.0.hook.start(
            StageKind::HttpServer {
                method,
                route: Some(&self.0.template),
                path: None,
            },
            parent,
        );
        HttpRequest {
            target: Target::Route(self.clone()),
            method,
            late_route: false,
            state: StageState::new(stage),
        }
    }

    /// Records a request timed elsewhere.
    #[inline]
    pub fn record(
        &self,
        method: Method,
        status: u16,
        duration: Duration,
        trace: Option<&TraceRef>,
    ) {
        let secs = duration.as_secs_f64();
        let h = self.histogram(method);
        let c = self.requests(method, status);
        match trace {
            Some(t) => {
                h.observe_with_exemplar(secs, t);
                c.inc_by_with_exemplar(1, t);
            }
            None => {
                h.observe(secs);
                c.inc();
            }
        }
    }

    /// The duration histogram of one method.
    pub fn duration(&self, method: Method) -> &Histogram {
        self.histogram(method)
    }
}

#[derive(Debug)]
enum Target {
    Route(HttpRoute),
    /// Started before routing; the route is bound later, or never.
    Pending(HttpMetrics),
}

/// One HTTP request in flight.
#[derive(Debug)]
#[must_use = "a request records when it finishes; call finish(status)"]
pub struct HttpRequest {
    target: Target,
    method: Method,
    /// Started without a route: the span learns the template at the end.
    late_route: bool,
    pub(crate) state: StageState,
}

impl HttpRequest {
    /// Binds the route template, once the framework has routed the request.
    pub fn set_route(&mut self, route: &HttpRoute) {
        self.target = Target::Route(route.clone());
    }

    /// Binds the route template by its text, interned by the core (the same handle as
    /// [`HttpMetrics::route`] gives): what a framework adapter calls with the template its
    /// router matched, with no cache of its own.
    ///
    /// ```
    /// use tars_telemetry::{Method, Parent, Telemetry};
    /// let t = Telemetry::new();
    /// let mut req = t.http().start(Method::Get, "/users/42", Parent::Current);
    /// req.set_route_template("/users/{id}");
    /// req.finish(200);
    /// assert_eq!(t.http().route("/users/{id}").requests(Method::Get, 200).get(), 1);
    /// ```
    pub fn set_route_template(&mut self, template: &str) {
        let metrics = match &self.target {
            Target::Pending(m) => m.clone(),
            Target::Route(r) if r.template() == template => return,
            Target::Route(r) => match r.0.metrics.upgrade() {
                Some(inner) => HttpMetrics(inner),
                None => return,
            },
        };
        self.target = Target::Route(metrics.route(template));
    }

    /// Ends the request as abandoned for `reason` (the span's `error.type`).
    pub fn abandon_for(mut self, reason: AbandonReason) {
        self.abandon_inner(reason.as_str());
    }

    /// The route template, if bound.
    pub fn route(&self) -> Option<&str> {
        match &self.target {
            Target::Route(r) => Some(r.template()),
            Target::Pending(_) => None,
        }
    }

    fn route_or_unmatched(&self) -> &HttpRoute {
        match &self.target {
            Target::Route(r) => r,
            Target::Pending(m) => m.unmatched(),
        }
    }

    /// Records the request with its response status and returns its duration.
    pub fn finish(mut self, status: u16) -> Duration {
        let Some(d) = self.state.finish() else {
            return self.state.elapsed();
        };
        let route = self.route_or_unmatched().clone();
        route.0.active.dec();
        route.record(self.method, status, d, self.state.trace());
        let bound = matches!(self.target, Target::Route(_));
        self.state.end_span(StageEnd::Http {
            status,
            route: (self.late_route && bound).then(|| route.template()),
        });
        d
    }

    fn abandon_inner(&mut self, error_type: &str) {
        if self.state.finish().is_none() {
            return;
        }
        let route = self.route_or_unmatched().clone();
        route.0.active.dec();
        route
            .requests(self.method, ABANDONED_STATUS)
            .inc_traced(self.state.trace());
        route.0.abandoned.inc();
        self.state.end_span(StageEnd::Abandoned { error_type });
    }
}

stage_guard!(HttpRequest);
