//! Custom families (the service's own counters, gauges and histograms, as prom-client
//! defines them): families by id, their label sets interned into handle ids.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;
use tars_telemetry::custom::{CounterFamily, GaugeFamily, HistogramFamily};

use crate::error;
use crate::hot::{self, Handle};
use crate::intern::Interner;

enum Kind {
    Counter(CounterFamily),
    Gauge(GaugeFamily),
    Histogram(HistogramFamily),
}

struct Entry {
    kind: Kind,
    labels: usize,
    series: Interner<Vec<String>>,
}

static FAMILIES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The family kinds `family_create` takes, by index: the JavaScript layer reads this
/// table rather than retyping it.
pub const FAMILY_KINDS: [&str; 3] = ["counter", "gauge", "histogram"];

/// The schema a custom histogram's native buckets get with `{ native: true }`.
#[napi]
pub const NATIVE_DEFAULT_SCHEMA: i32 = tars_telemetry::NativeBuckets::DEFAULT.schema as i32;

/// Custom families' tables: their kinds by index, and the default histogram buckets.
#[napi(object)]
pub struct FamilyTables {
    pub kinds: Vec<String>,
    pub default_buckets: Vec<f64>,
}

/// The tables of `family_create`.
#[napi]
pub fn family_tables() -> FamilyTables {
    FamilyTables {
        kinds: FAMILY_KINDS.iter().map(|k| k.to_string()).collect(),
        default_buckets: tars_telemetry::catalog::buckets::CUSTOM_DEFAULT.to_vec(),
    }
}

/// Registers a family (`kind`: its index in `FAMILY_KINDS`) and returns its id.
#[napi(catch_unwind)]
pub fn family_create(
    telemetry: u32,
    kind: u32,
    name: String,
    help: String,
    label_names: Vec<String>,
    buckets: Option<Vec<f64>>,
    native_schema: Option<i32>,
) -> Result<u32> {
    let state = crate::telemetry::get(telemetry)?;
    let t = &state.tel;
    let labels: Vec<&str> = label_names.iter().map(String::as_str).collect();
    let kind = match kind {
        0 => Kind::Counter(
            t.counter_family(&name, &help, &labels)
                .map_err(error::core)?,
        ),
        1 => Kind::Gauge(t.gauge_family(&name, &help, &labels).map_err(error::core)?),
        2 => {
            let native = native_schema.map(|s| {
                tars_telemetry::NativeBuckets::with_schema(i8::try_from(s).unwrap_or(i8::MAX))
            });
            Kind::Histogram(
                t.histogram_family_with(&name, &help, &labels, buckets.as_deref(), native)
                    .map_err(error::core)?,
            )
        }
        _ => {
            return Err(error::invalid(
                "ERR_TARS_INVALID_KIND",
                "unknown family kind",
            ));
        }
    };
    let mut all = FAMILIES.lock();
    all.push(Entry {
        kind,
        labels: labels.len(),
        series: Interner::new(state.cap),
    });
    Ok((all.len() - 1) as u32)
}

/// The handle id of one series of a family (interned: the same values give the same id).
#[napi(catch_unwind)]
pub fn family_labels(family: u32, values: Vec<String>) -> Result<u32> {
    let mut all = FAMILIES.lock();
    let e = all
        .get_mut(family as usize)
        .ok_or_else(|| error::invalid("ERR_TARS_HANDLE", "no family has this id"))?;
    if values.len() != e.labels {
        return Err(error::invalid(
            "ERR_TARS_LABEL_COUNT",
            format!(
                "{} label values given, the family has {}",
                values.len(),
                e.labels
            ),
        ));
    }
    let kind = &e.kind;
    let v: Vec<&str> = values.iter().map(String::as_str).collect();
    e.series.get_or_make(values.clone(), |_| {
        let h = match kind {
            Kind::Counter(f) => Handle::Counter(f.labels(&v).map_err(error::core)?),
            Kind::Gauge(f) => Handle::Gauge(f.labels(&v).map_err(error::core)?),
            Kind::Histogram(f) => Handle::Histogram(f.labels(&v).map_err(error::core)?),
        };
        Ok::<_, napi::Error>(hot::push(h))
    })
}
