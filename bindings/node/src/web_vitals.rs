//! Browser Web Vitals (LCP, INP, CLS, FCP, TTFB) into the catalog's families, by page
//! route template and navigation type. Each report is checked here; what fails a check is
//! counted in `tars_web_vitals_rejected_total{reason}` and never recorded.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::{Metric, catalog};

use crate::error;

/// The families, in the order of `WEB_VITALS` in JavaScript.
const FAMILIES: [&catalog::MetricDef; 5] = [
    &catalog::WEB_VITALS_LCP,
    &catalog::WEB_VITALS_INP,
    &catalog::WEB_VITALS_CLS,
    &catalog::WEB_VITALS_FCP,
    &catalog::WEB_VITALS_TTFB,
];

/// The largest value taken for each (seconds; CLS is a score): anything above is a broken
/// or forged report.
const MAX: [f64; 5] = [600.0, 600.0, 100.0, 600.0, 600.0];

/// The navigation types of the Navigation Timing spec and the web-vitals library.
pub const NAVIGATION_TYPES: [&str; 6] = [
    "navigate",
    "reload",
    "back-forward",
    "back-forward-cache",
    "prerender",
    "restore",
];

/// Longest route template taken.
pub const MAX_ROUTE: usize = 128;

fn route_ok(route: &str) -> bool {
    route.len() <= MAX_ROUTE
        && route.starts_with('/')
        && route.bytes().all(|b| b.is_ascii_graphic())
}

/// Counts a rejected report.
#[napi(catch_unwind)]
pub fn web_vitals_reject(telemetry: u32, reason: String) -> Result<()> {
    let state = crate::telemetry::get(telemetry)?;
    let reason = match reason.as_str() {
        "malformed"
        | "oversized"
        | "unknown_metric"
        | "bad_value"
        | "bad_route"
        | "bad_navigation_type"
        | "too_many" => reason.as_str(),
        _ => "other",
    };
    let fam = state
        .tel
        .registry()
        .register(&catalog::WEB_VITALS_REJECTED)
        .map_err(error::core)?;
    if let Metric::Counter(c) = fam.resolve(&[reason]).map_err(error::core)? {
        c.inc();
    }
    Ok(())
}

/// Records one report (`metric`: 0 LCP, 1 INP, 2 CLS, 3 FCP, 4 TTFB; `value` in seconds,
/// CLS as its score). Returns null when recorded, else the reason it was rejected (and
/// counted).
#[napi(catch_unwind)]
pub fn web_vitals_record(
    telemetry: u32,
    metric: u32,
    route: String,
    navigation_type: String,
    value: f64,
) -> Result<Option<String>> {
    let reason = if metric as usize >= FAMILIES.len() {
        Some("unknown_metric")
    } else if !value.is_finite() || value < 0.0 || value > MAX[metric as usize] {
        Some("bad_value")
    } else if !route_ok(&route) {
        Some("bad_route")
    } else if !NAVIGATION_TYPES.contains(&navigation_type.as_str()) {
        Some("bad_navigation_type")
    } else {
        None
    };
    if let Some(r) = reason {
        web_vitals_reject(telemetry, r.to_string())?;
        return Ok(Some(r.to_string()));
    }
    let state = crate::telemetry::get(telemetry)?;
    let fam = state
        .tel
        .registry()
        .register(FAMILIES[metric as usize])
        .map_err(error::core)?;
    // Past the family's series budget, new routes fold into its overflow series.
    if let Metric::Histogram(h) = fam
        .resolve(&[route.as_str(), navigation_type.as_str()])
        .map_err(error::core)?
    {
        h.observe(value);
    }
    Ok(None)
}
