//! Browser Web Vitals: the core's checks and families (`tars_telemetry::web_vitals`), for
//! single reports and whole `sendBeacon` bodies.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::web_vitals::{self as core, WebVital, WebVitalsRejection};

/// The core's limits, read once by the JavaScript layer.
#[napi(object)]
pub struct WebVitalsLimits {
    pub names: Vec<String>,
    pub max_beacon_bytes: u32,
    pub max_beacon_reports: u32,
}

/// The core's vitals and beacon limits.
#[napi]
pub fn web_vitals_limits() -> WebVitalsLimits {
    WebVitalsLimits {
        names: WebVital::ALL.iter().map(|v| v.as_str().into()).collect(),
        max_beacon_bytes: core::MAX_BEACON_BYTES as u32,
        max_beacon_reports: core::MAX_BEACON_REPORTS as u32,
    }
}

/// Counts a report or beacon refused before it reached the core (too large, a field of
/// the wrong type): `reason` is one of the core's, else `malformed`.
#[napi(catch_unwind)]
pub fn web_vitals_reject(telemetry: u32, reason: String) -> Result<()> {
    crate::telemetry::get(telemetry)?
        .tel
        .web_vitals()
        .reject(WebVitalsRejection::parse(&reason).unwrap_or(WebVitalsRejection::Malformed));
    Ok(())
}

/// Records one report (`value` as browsers report it: milliseconds, CLS its score).
/// Returns null when recorded, else the reason it was rejected (and counted).
#[napi(catch_unwind)]
pub fn web_vitals_record(
    telemetry: u32,
    name: String,
    value: f64,
    route: String,
    navigation_type: String,
) -> Result<Option<String>> {
    let w = crate::telemetry::get(telemetry)?.tel.web_vitals().clone();
    let Some(vital) = WebVital::parse(&name) else {
        w.reject(WebVitalsRejection::UnknownMetric);
        return Ok(Some(WebVitalsRejection::UnknownMetric.as_str().into()));
    };
    Ok(w.record(vital, value, &route, &navigation_type)
        .err()
        .map(|r| r.as_str().into()))
}

/// What a beacon came to.
#[napi(object)]
pub struct BeaconOutcome {
    /// The status to answer: 204, 400 or 413.
    pub status: u32,
    pub recorded: u32,
}

/// Takes a whole beacon body (JSON: a report or an array of them); `routes`, when given,
/// lists the only route templates taken.
#[napi(catch_unwind)]
pub fn web_vitals_beacon(
    telemetry: u32,
    body: Buffer,
    routes: Option<Vec<String>>,
) -> Result<BeaconOutcome> {
    let out = crate::telemetry::get(telemetry)?
        .tel
        .web_vitals()
        .beacon(&body, routes.as_deref());
    Ok(BeaconOutcome {
        status: u32::from(out.status),
        recorded: out.recorded as u32,
    })
}
