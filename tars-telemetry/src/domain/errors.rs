use std::sync::Arc;

use super::{Component, counter_in};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::Counter;
use crate::registry::{Family, Registry};

/// `tars_errors_total{component, error_type}`.
///
/// ```
/// use tars_telemetry::{Telemetry, Component};
/// let t = Telemetry::new();
/// t.errors().record(Component::Llm, "timeout");
/// let timeouts = t.errors().kind(Component::Llm, "timeout").unwrap();
/// assert_eq!(timeouts.get(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct ErrorMetrics(Arc<Family>);

impl ErrorMetrics {
    pub(crate) fn new(reg: &Registry) -> Result<Self, Error> {
        Ok(ErrorMetrics(reg.register(&c::ERRORS)?))
    }

    /// Counts one error. Looks the series up (a shared lock, no allocation once it
    /// exists); on a hot error path, keep the handle from [`ErrorMetrics::kind`].
    pub fn record(&self, component: Component, error_type: &str) {
        if let Ok(c) = self.kind(component, error_type) {
            c.inc();
        }
    }

    /// The counter of one component and error type. Error types past the series budget
    /// share the overflow series.
    pub fn kind(&self, component: Component, error_type: &str) -> Result<Counter, Error> {
        counter_in(&self.0, &[component.as_str(), error_type])
    }
}

/// `tars_app_info{version, environment, model}`: one series, replaced on each set.
#[derive(Debug, Clone)]
pub struct AppInfo(Arc<Family>);

impl AppInfo {
    pub(crate) fn new(reg: &Registry) -> Result<Self, Error> {
        Ok(AppInfo(reg.register(&c::APP_INFO)?))
    }

    /// Sets the application's version, environment and default model.
    ///
    /// ```
    /// use tars_telemetry::{Telemetry, Format};
    /// let t = Telemetry::new();
    /// t.app_info().set("1.4.2", "production", "llama3").unwrap();
    /// assert!(t.render_string(Format::Prometheus).contains(
    ///     r#"tars_app_info{version="1.4.2",environment="production",model="llama3"} 1"#));
    /// ```
    pub fn set(&self, version: &str, environment: &str, model: &str) -> Result<(), Error> {
        self.0.clear();
        super::gauge_in(&self.0, &[version, environment, model])?.set(1.0);
        Ok(())
    }
}
