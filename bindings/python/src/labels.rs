//! Bounded labels given as strings: parsed into the core's enums, or `ValueError` listing
//! the accepted values.

use pyo3::PyResult;
use pyo3::exceptions::PyValueError;

/// Parses `s` with `parse`, naming the accepted `all` values when it fails.
pub fn parse<T: Copy>(
    what: &str,
    s: &str,
    parse: impl Fn(&str) -> Option<T>,
    all: &[T],
    as_str: impl Fn(T) -> &'static str,
) -> PyResult<T> {
    parse(s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|v| as_str(*v)).collect();
        PyValueError::new_err(format!(
            "{s:?} is not a {what}; expected one of {}",
            names.join(", ")
        ))
    })
}

macro_rules! parser {
    ($fn:ident, $ty:ty, $what:literal) => {
        /// Parses this label from its string form.
        pub fn $fn(s: &str) -> pyo3::PyResult<$ty> {
            parse($what, s, <$ty>::parse, &<$ty>::ALL, <$ty>::as_str)
        }
    };
}

parser!(rag_phase, tars_telemetry::RagPhase, "RAG phase");
parser!(
    db_operation,
    tars_telemetry::DbOperation,
    "database operation"
);
parser!(cache_result, tars_telemetry::CacheResult, "cache result");
parser!(cache_name, tars_telemetry::CacheName, "cache");
parser!(
    cache_operation,
    tars_telemetry::CacheOperation,
    "cache operation"
);
parser!(component, tars_telemetry::Component, "component");
parser!(direction, tars_telemetry::Direction, "direction");
