//! HTTP server requests: started before routing, the route template bound later.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::Method;

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

/// Starts a request (`method`: the index of `Method`, from `methodIndex` in JavaScript;
/// `path` is the raw path, for the span only).
#[napi(catch_unwind)]
pub fn http_start(
    telemetry: u32,
    method: u32,
    path: String,
    parent: u32,
    traceparent: Option<String>,
) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let m = Method::from_index(method as usize).unwrap_or(Method::Other);
    let p = stage::parent(parent, traceparent.as_deref());
    stage::insert(Stage::Http(state.tel.http().start(m, &path, p)))
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
