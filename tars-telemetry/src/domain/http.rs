use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{Method, counter_in, gauge, histogram_in};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram, TraceRef};
use crate::registry::{Family, Registry};
use crate::trace::{Hook, StageSlot};

const METHODS: usize = Method::ALL.len();
/// Slots for status codes 100..=599, plus one for anything else.
const STATUS_SLOTS: usize = 501;

/// Resolves route templates to [`HttpRoute`] handles.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Arc<Family>,
    duration: Arc<Family>,
    active: Gauge,
    hook: Hook,
}

impl HttpMetrics {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        Ok(HttpMetrics {
            requests: reg.register(&c::HTTP_REQUESTS)?,
            duration: reg.register(&c::HTTP_REQUEST_DURATION)?,
            active: gauge(reg, &c::HTTP_REQUESTS_ACTIVE)?,
            hook: hook.clone(),
        })
    }

    /// The handle of one route template (`/api/v1/rag/query`, `/users/{id}`), never a raw
    /// path: raw paths make one series per URL. Resolve once per route, at startup or in
    /// the router, and keep it.
    pub fn route(&self, template: &str) -> HttpRoute {
        HttpRoute(Arc::new(RouteInner {
            template: template.into(),
            requests: self.requests.clone(),
            duration: self.duration.clone(),
            active: self.active.clone(),
            durations: Default::default(),
            counts: Default::default(),
            hook: self.hook.clone(),
        }))
    }

    pub fn active(&self) -> &Gauge {
        &self.active
    }
}

type StatusTable = Box<[OnceLock<Counter>]>;

#[derive(Debug)]
struct RouteInner {
    template: Box<str>,
    requests: Arc<Family>,
    duration: Arc<Family>,
    active: Gauge,
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
    pub fn template(&self) -> &str {
        &self.0.template
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
    /// dropped without a status (the handler panicked) counts as a 500.
    ///
    /// With tracing installed, this opens the server span `{method} {route}` under the
    /// current context (see `start_remote` for a parent from the request's headers); the
    /// platform sampler reads its route.
    pub fn start(&self, method: Method) -> HttpRequest {
        self.0.active.inc();
        let stage = self.0.hook.http_server(method, &self.0.template);
        HttpRequest {
            route: self.clone(),
            method,
            start: Instant::now(),
            trace: stage.as_ref().and_then(|s| s.trace_ref()),
            stage,
            done: false,
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

    pub fn duration(&self, method: Method) -> &Histogram {
        self.histogram(method)
    }
}

/// One HTTP request in flight.
#[derive(Debug)]
#[must_use = "a request records when it finishes; call finish(status)"]
pub struct HttpRequest {
    route: HttpRoute,
    method: Method,
    start: Instant,
    trace: Option<TraceRef>,
    /// The server span, when tracing made one; ended with the request.
    pub(crate) stage: StageSlot,
    done: bool,
}

impl HttpRequest {
    pub fn set_trace(&mut self, trace: TraceRef) {
        self.trace = Some(trace);
    }

    pub fn finish(mut self, status: u16) -> Duration {
        self.end(status)
    }

    fn end(&mut self, status: u16) -> Duration {
        let d = self.start.elapsed();
        if !self.done {
            self.done = true;
            self.route.0.active.dec();
            self.route
                .record(self.method, status, d, self.trace.as_ref());
            if let Some(s) = self.stage.take() {
                s.end_http(status);
            }
        }
        d
    }
}

impl Drop for HttpRequest {
    fn drop(&mut self) {
        self.end(500);
    }
}
