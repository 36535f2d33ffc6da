//! HTTP server requests: started before routing, the route template bound later.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;
use tars_telemetry::Method;
use tars_telemetry::http::{self as core, AbandonReason, ExcludedPaths};

use crate::error;
use crate::stage::{self, Stage};

/// The interned id of a route template.
#[napi(catch_unwind)]
pub fn http_route(telemetry: u32, template: String) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let mut guard = state.routes.lock();
    let (interner, routes) = &mut *guard;
    interner.get_or_make(template.clone(), |_| {
        let r = state.tel.http().route(&template);
        if let Some(i) = routes.iter().position(|x| x.same_handle(&r)) {
            return Ok::<_, napi::Error>(i as u32);
        }
        routes.push(r);
        Ok((routes.len() - 1) as u32)
    })
}

/// The core's HTTP server rules, read once by the JavaScript layer (never retyped there).
#[napi(object)]
pub struct HttpRules {
    /// The paths a middleware leaves unrecorded unless told otherwise.
    pub default_excluded_paths: Vec<String>,
    /// The longest raw path a span carries, in bytes.
    pub max_span_path: u32,
    /// The `error.type` of a request whose client went away.
    pub client_disconnected: String,
    /// The `error.type` of a request whose task was cancelled.
    pub cancelled: String,
    /// Request methods, by the index `http_start` takes (the last, `_OTHER`, for any
    /// other method).
    pub methods: Vec<String>,
}

/// The core's HTTP server rules.
#[napi]
pub fn http_rules() -> HttpRules {
    HttpRules {
        default_excluded_paths: core::DEFAULT_EXCLUDED_PATHS
            .iter()
            .map(|p| p.to_string())
            .collect(),
        max_span_path: core::MAX_SPAN_PATH as u32,
        client_disconnected: AbandonReason::ClientDisconnected.as_str().into(),
        cancelled: AbandonReason::Cancelled.as_str().into(),
        methods: Method::ALL.iter().map(|m| m.as_str().to_string()).collect(),
    }
}

/// Sets of excluded paths, by id (one per middleware, made once).
static EXCLUDED: Mutex<Vec<ExcludedPaths>> = Mutex::new(Vec::new());

/// Registers a set of excluded paths (the core's matching rule); returns its id for
/// `http_start`. `None`: the core's defaults.
#[napi(catch_unwind)]
pub fn http_excluded_paths(paths: Option<Vec<String>>) -> Result<u32> {
    let set = paths.map_or_else(ExcludedPaths::default, ExcludedPaths::new);
    let mut all = EXCLUDED.lock();
    if let Some(i) = all.iter().position(|s| *s == set) {
        return Ok(i as u32 + 1);
    }
    if all.len() >= 1024 {
        return Err(error::invalid(
            "ERR_TARS_TOO_MANY",
            "over 1024 sets of excluded paths: make each middleware once",
        ));
    }
    all.push(set);
    Ok(all.len() as u32)
}

/// Starts a request (`method`: the index of `Method`, from `methodIndex` in JavaScript;
/// `path` is the raw path, for the span only, cut to the core's limit). With `excluded`
/// (an id from `http_excluded_paths`), a path it holds is not recorded: 0 is returned
/// and no stage is opened.
#[napi(catch_unwind)]
pub fn http_start(
    telemetry: u32,
    method: u32,
    path: String,
    parent: u32,
    traceparent: Option<String>,
    excluded: Option<u32>,
) -> Result<u32> {
    if let Some(id) = excluded.filter(|&id| id > 0)
        && EXCLUDED
            .lock()
            .get(id as usize - 1)
            .is_some_and(|set| set.contains(&path))
    {
        return Ok(0);
    }
    let state = crate::telemetry::get(telemetry)?;
    let m = Method::from_index(method as usize).unwrap_or(Method::Other);
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Http(state.tel.http().start(m, &path, p)))
}

/// Binds a route template, by its text (interned by the core), to a request.
#[napi(catch_unwind)]
pub fn http_set_route_template(request: u32, template: String) -> Result<()> {
    stage::with(request, |s| match s {
        Stage::Http(req) => {
            req.set_route_template(&template);
            Ok(())
        }
        _ => Err(error::invalid(
            "ERR_TARS_WRONG_STAGE",
            "not an HTTP request",
        )),
    })?
}

/// Ends a request: its route template (if the framework matched one) and its status, or,
/// when `abandoned`, the client went away first (`client_disconnected`). One call at the
/// end of a request; returns its duration in seconds (0 when abandoned).
#[napi(catch_unwind)]
pub fn http_end(
    request: u32,
    template: Option<String>,
    status: u32,
    abandoned: bool,
) -> Result<f64> {
    match stage::take(request)? {
        Stage::Http(mut r) => {
            if let Some(t) = template.as_deref() {
                r.set_route_template(t);
            }
            if abandoned {
                r.abandon_for(AbandonReason::ClientDisconnected);
                Ok(0.0)
            } else {
                Ok(r.finish(u16::try_from(status).unwrap_or(0)).as_secs_f64())
            }
        }
        other => {
            drop(other);
            Err(error::invalid(
                "ERR_TARS_WRONG_STAGE",
                "not an HTTP request",
            ))
        }
    }
}

/// Binds the route template (by interned id) to a request.
#[napi(catch_unwind)]
pub fn http_set_route(telemetry: u32, request: u32, route: u32) -> Result<()> {
    let state = crate::telemetry::get(telemetry)?;
    let routes = state.routes.lock();
    let r = routes
        .1
        .get(route as usize)
        .ok_or_else(|| error::invalid("ERR_TARS_HANDLE", "no route has this id"))?;
    stage::with(request, |s| match s {
        Stage::Http(req) => {
            req.set_route(r);
            Ok(())
        }
        _ => Err(error::invalid(
            "ERR_TARS_WRONG_STAGE",
            "not an HTTP request",
        )),
    })?
}

/// Finishes a request with its status code; returns its duration in seconds.
#[napi(catch_unwind)]
pub fn http_finish(request: u32, status: u32) -> Result<f64> {
    let status = u16::try_from(status).unwrap_or(0);
    match stage::take(request)? {
        Stage::Http(r) => Ok(r.finish(status).as_secs_f64()),
        other => {
            // Not a request: put nothing back, end it as a failure rather than leak it.
            drop(other);
            Err(error::invalid(
                "ERR_TARS_WRONG_STAGE",
                "not an HTTP request",
            ))
        }
    }
}
