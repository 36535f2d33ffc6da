//! Browsers' Web Vitals (LCP, INP, CLS, FCP, TTFB), by page route template and navigation
//! type, from `navigator.sendBeacon` reports: every check of a report (size, shape, batch,
//! names, values, routes) is made here, once, for every adapter (Express, Fastify, ASGI).

use std::sync::Arc;

use crate::catalog as c;
use crate::error::Error;
use crate::registry::{Family, Metric, Registry};

/// One Web Vital.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebVital {
    /// Largest Contentful Paint.
    Lcp,
    /// Interaction to Next Paint.
    Inp,
    /// Cumulative Layout Shift (a score, not a time).
    Cls,
    /// First Contentful Paint.
    Fcp,
    /// Time to First Byte.
    Ttfb,
}

impl WebVital {
    /// Every vital, in a fixed order.
    pub const ALL: [WebVital; 5] = [
        WebVital::Lcp,
        WebVital::Inp,
        WebVital::Cls,
        WebVital::Fcp,
        WebVital::Ttfb,
    ];

    /// Its name in a report (`LCP`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            WebVital::Lcp => "LCP",
            WebVital::Inp => "INP",
            WebVital::Cls => "CLS",
            WebVital::Fcp => "FCP",
            WebVital::Ttfb => "TTFB",
        }
    }

    /// The vital a report names.
    ///
    /// ```
    /// use tars_telemetry::web_vitals::WebVital;
    /// assert_eq!(WebVital::parse("INP"), Some(WebVital::Inp));
    /// assert_eq!(WebVital::parse("FID"), None);
    /// ```
    pub fn parse(s: &str) -> Option<WebVital> {
        WebVital::ALL.into_iter().find(|v| v.as_str() == s)
    }

    fn def(self) -> &'static c::MetricDef {
        match self {
            WebVital::Lcp => &c::WEB_VITALS_LCP,
            WebVital::Inp => &c::WEB_VITALS_INP,
            WebVital::Cls => &c::WEB_VITALS_CLS,
            WebVital::Fcp => &c::WEB_VITALS_FCP,
            WebVital::Ttfb => &c::WEB_VITALS_TTFB,
        }
    }

    /// A report's value in the family's unit: milliseconds to seconds, CLS as it is.
    fn to_unit(self, report_value: f64) -> f64 {
        match self {
            WebVital::Cls => report_value,
            _ => report_value / 1000.0,
        }
    }

    /// The largest value taken (seconds; CLS a score): above is a broken or forged report.
    fn max(self) -> f64 {
        match self {
            WebVital::Cls => 100.0,
            _ => 600.0,
        }
    }
}

/// Why a report or a beacon was refused: the `reason` of `tars_web_vitals_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebVitalsRejection {
    /// Not JSON, or not a report or a non-empty array of reports.
    Malformed,
    /// A beacon over [`MAX_BEACON_BYTES`].
    Oversized,
    /// More reports than [`MAX_BEACON_REPORTS`] in one beacon.
    TooMany,
    /// A name that is not one of [`WebVital`]'s.
    UnknownMetric,
    /// A value that is not a number, negative, or past the vital's bound.
    BadValue,
    /// A route that is not a template (`/...`, printable ASCII, at most [`MAX_ROUTE`]
    /// bytes), or not one of the routes allowed.
    BadRoute,
    /// A navigation type not in [`NAVIGATION_TYPES`].
    BadNavigationType,
}

impl WebVitalsRejection {
    /// Every reason, in a fixed order.
    pub const ALL: [WebVitalsRejection; 7] = [
        WebVitalsRejection::Malformed,
        WebVitalsRejection::Oversized,
        WebVitalsRejection::TooMany,
        WebVitalsRejection::UnknownMetric,
        WebVitalsRejection::BadValue,
        WebVitalsRejection::BadRoute,
        WebVitalsRejection::BadNavigationType,
    ];

    /// The reason a label value names.
    pub fn parse(s: &str) -> Option<WebVitalsRejection> {
        WebVitalsRejection::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WebVitalsRejection::Malformed => "malformed",
            WebVitalsRejection::Oversized => "oversized",
            WebVitalsRejection::TooMany => "too_many",
            WebVitalsRejection::UnknownMetric => "unknown_metric",
            WebVitalsRejection::BadValue => "bad_value",
            WebVitalsRejection::BadRoute => "bad_route",
            WebVitalsRejection::BadNavigationType => "bad_navigation_type",
        }
    }
}

/// The navigation types of the Navigation Timing spec and the web-vitals library.
pub const NAVIGATION_TYPES: [&str; 6] = [
    "navigate",
    "reload",
    "back-forward",
    "back-forward-cache",
    "prerender",
    "restore",
];

/// The longest route template taken, in bytes.
pub const MAX_ROUTE: usize = 128;
/// The largest beacon body taken, in bytes.
pub const MAX_BEACON_BYTES: usize = 16 * 1024;
/// The most reports one beacon may carry.
pub const MAX_BEACON_REPORTS: usize = 20;

fn route_ok(route: &str) -> bool {
    route.len() <= MAX_ROUTE
        && route.starts_with('/')
        && route.bytes().all(|b| b.is_ascii_graphic())
}

/// What a beacon came to: the HTTP status to answer and the reports recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeaconOutcome {
    /// 204 when at least one report was recorded; 413 oversized; else 400.
    pub status: u16,
    /// Reports recorded.
    pub recorded: usize,
}

#[derive(Debug)]
struct Inner {
    families: [Arc<Family>; 5],
    rejected: Arc<Family>,
}

/// Browsers' Web Vitals.
///
/// ```
/// use tars_telemetry::Telemetry;
/// let t = Telemetry::new();
/// let out = t.web_vitals().beacon(br#"[{"name":"LCP","value":2400,"route":"/chat/:id"}]"#, None);
/// assert_eq!((out.status, out.recorded), (204, 1));
/// assert_eq!(t.web_vitals().beacon(b"{not json", None).status, 400);
/// ```
#[derive(Debug, Clone)]
pub struct WebVitalsMetrics(Arc<Inner>);

impl WebVitalsMetrics {
    pub(crate) fn new(reg: &Registry) -> Result<Self, Error> {
        let families = [
            reg.register(WebVital::Lcp.def())?,
            reg.register(WebVital::Inp.def())?,
            reg.register(WebVital::Cls.def())?,
            reg.register(WebVital::Fcp.def())?,
            reg.register(WebVital::Ttfb.def())?,
        ];
        Ok(WebVitalsMetrics(Arc::new(Inner {
            families,
            rejected: reg.register(&c::WEB_VITALS_REJECTED)?,
        })))
    }

    /// Counts a refused report or beacon.
    pub fn reject(&self, reason: WebVitalsRejection) {
        if let Ok(Metric::Counter(c)) = self.0.rejected.resolve(&[reason.as_str()]) {
            c.inc();
        }
    }

    /// Records one report: `value` as browsers report it (milliseconds; CLS its score),
    /// the page's route template and navigation type. A report that fails a check is
    /// counted as rejected, never recorded; past a family's series budget, new routes fold
    /// into its overflow series.
    pub fn record(
        &self,
        vital: WebVital,
        value: f64,
        route: &str,
        navigation_type: &str,
    ) -> Result<(), WebVitalsRejection> {
        let v = vital.to_unit(value);
        let refused = if !v.is_finite() || v < 0.0 || v > vital.max() {
            Some(WebVitalsRejection::BadValue)
        } else if !route_ok(route) {
            Some(WebVitalsRejection::BadRoute)
        } else if !NAVIGATION_TYPES.contains(&navigation_type) {
            Some(WebVitalsRejection::BadNavigationType)
        } else {
            None
        };
        if let Some(r) = refused {
            self.reject(r);
            return Err(r);
        }
        let family = &self.0.families[WebVital::ALL.iter().position(|x| *x == vital).unwrap_or(0)];
        if let Ok(Metric::Histogram(h)) = family.resolve(&[route, navigation_type]) {
            h.observe(v);
        }
        Ok(())
    }

    /// Records a report given as JSON's fields: `name`, `value`, `route`,
    /// `navigationType` (default `navigate`).
    fn record_json(
        &self,
        report: &serde_json::Map<String, serde_json::Value>,
        allowed_routes: Option<&[String]>,
    ) -> Result<(), WebVitalsRejection> {
        let refuse = |r| {
            self.reject(r);
            Err(r)
        };
        let route = report.get("route").and_then(|r| r.as_str());
        if let Some(allowed) = allowed_routes
            && !route.is_some_and(|r| allowed.iter().any(|a| a == r))
        {
            return refuse(WebVitalsRejection::BadRoute);
        }
        let Some(vital) = report
            .get("name")
            .and_then(|n| n.as_str())
            .and_then(WebVital::parse)
        else {
            return refuse(WebVitalsRejection::UnknownMetric);
        };
        let Some(value) = report.get("value").and_then(|v| v.as_f64()) else {
            return refuse(WebVitalsRejection::BadValue);
        };
        let Some(route) = route else {
            return refuse(WebVitalsRejection::BadRoute);
        };
        let navigation_type = match report.get("navigationType") {
            None | Some(serde_json::Value::Null) => "navigate",
            Some(serde_json::Value::String(s)) => s.as_str(),
            Some(_) => return refuse(WebVitalsRejection::BadNavigationType),
        };
        self.record(vital, value, route, navigation_type)
    }

    /// Takes a whole beacon body: JSON, one report (`{ name, value, route, navigationType
    /// }`) or an array of up to [`MAX_BEACON_REPORTS`]. `allowed_routes`, when given, lists
    /// the only route templates taken. What the body or a report fails is counted in
    /// `tars_web_vitals_rejected_total`; the outcome says what to answer.
    pub fn beacon(&self, body: &[u8], allowed_routes: Option<&[String]>) -> BeaconOutcome {
        let refused = |status, reason| {
            self.reject(reason);
            BeaconOutcome {
                status,
                recorded: 0,
            }
        };
        if body.len() > MAX_BEACON_BYTES {
            return refused(413, WebVitalsRejection::Oversized);
        }
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
            return refused(400, WebVitalsRejection::Malformed);
        };
        let reports: Vec<&serde_json::Value> = match &json {
            serde_json::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        if reports.is_empty() || reports.iter().any(|r| !r.is_object()) {
            return refused(400, WebVitalsRejection::Malformed);
        }
        if reports.len() > MAX_BEACON_REPORTS {
            return refused(400, WebVitalsRejection::TooMany);
        }
        let recorded = reports
            .iter()
            .filter_map(|r| r.as_object())
            .filter(|r| self.record_json(r, allowed_routes).is_ok())
            .count();
        BeaconOutcome {
            status: if recorded > 0 { 204 } else { 400 },
            recorded,
        }
    }
}
