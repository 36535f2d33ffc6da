//! `web_vitals`: browsers' Web Vitals, checked and recorded by the core (single reports
//! and whole `sendBeacon` bodies), as the Node package takes them.

use pyo3::prelude::*;
use tars_telemetry::web_vitals::{
    MAX_BEACON_BYTES, MAX_BEACON_REPORTS, WebVital, WebVitalsMetrics, WebVitalsRejection,
};

/// Browsers' Web Vitals (LCP, INP, CLS, FCP, TTFB), by page route template and navigation
/// type.
#[pyclass(frozen, module = "tars_telemetry._native")]
pub struct WebVitals(pub WebVitalsMetrics);

#[pymethods]
impl WebVitals {
    /// Records one report: `value` as browsers report it (milliseconds; CLS its score).
    /// Returns None when recorded, else why it was refused (and counted in
    /// `tars_web_vitals_rejected_total`).
    #[pyo3(signature = (name, value, route, navigation_type = "navigate"))]
    fn record(
        &self,
        name: &str,
        value: f64,
        route: &str,
        navigation_type: &str,
    ) -> Option<&'static str> {
        let Some(vital) = WebVital::parse(name) else {
            self.0.reject(WebVitalsRejection::UnknownMetric);
            return Some(WebVitalsRejection::UnknownMetric.as_str());
        };
        self.0
            .record(vital, value, route, navigation_type)
            .err()
            .map(WebVitalsRejection::as_str)
    }

    /// Takes a whole beacon body (JSON: a report or an array of up to
    /// `MAX_BEACON_REPORTS`); `routes`, when given, lists the only route templates taken.
    /// Returns (the HTTP status to answer, the reports recorded).
    #[pyo3(signature = (body, routes = None))]
    fn beacon(&self, py: Python<'_>, body: &[u8], routes: Option<Vec<String>>) -> (u16, usize) {
        let out = py.detach(|| self.0.beacon(body, routes.as_deref()));
        (out.status, out.recorded)
    }

    /// Counts a beacon refused before its body was read (`oversized`), or any other of the
    /// core's reasons.
    fn reject(&self, reason: &str) {
        self.0
            .reject(WebVitalsRejection::parse(reason).unwrap_or(WebVitalsRejection::Malformed));
    }
}

/// Adds the core's Web Vitals limits to the module.
pub fn add_limits(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<WebVitals>()?;
    m.add("WEB_VITALS_MAX_BEACON_BYTES", MAX_BEACON_BYTES)?;
    m.add("WEB_VITALS_MAX_BEACON_REPORTS", MAX_BEACON_REPORTS)?;
    m.add(
        "WEB_VITALS",
        pyo3::types::PyTuple::new(m.py(), WebVital::ALL.iter().map(|v| v.as_str()))?,
    )?;
    Ok(())
}
