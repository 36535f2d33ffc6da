use std::sync::Arc;
use std::time::Duration;

use super::{DbOperation, Timer, counter_in, gauge, histogram_in, per_variant};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram};
use crate::registry::Registry;
use crate::trace::Hook;

const N: usize = DbOperation::ALL.len();

#[derive(Debug)]
struct DbInner {
    duration: [Histogram; N],
    queries: [Counter; N],
    pool_active: Gauge,
    pool_max: Gauge,
    hook: Hook,
}

/// Database queries by operation, and the connection pool.
///
/// ```
/// use tars_telemetry::{Telemetry, DbOperation};
/// let t = Telemetry::new();
/// {
///     let _q = t.db().query(DbOperation::Select);
///     // ... run the query ...
/// }
/// t.db().set_pool(3, 20);
/// assert_eq!(t.db().queries(DbOperation::Select).get(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct DbMetrics(Arc<DbInner>);

impl DbMetrics {
    pub(crate) fn new(reg: &Registry, hook: &Hook) -> Result<Self, Error> {
        let d = reg.register(&c::DB_QUERY_DURATION)?;
        let q = reg.register(&c::DB_QUERIES)?;
        Ok(DbMetrics(Arc::new(DbInner {
            duration: per_variant(DbOperation::ALL, |op| histogram_in(&d, &[op.as_str()]))?,
            queries: per_variant(DbOperation::ALL, |op| counter_in(&q, &[op.as_str()]))?,
            pool_active: gauge(reg, &c::DB_POOL_ACTIVE)?,
            pool_max: gauge(reg, &c::DB_POOL_MAX)?,
            hook: hook.clone(),
        })))
    }

    /// Times one query; records duration and count when dropped. With tracing, under a
    /// sampled span this opens a database client span named by the operation (`SELECT`).
    pub fn query(&self, op: DbOperation) -> Timer {
        let i = op.index();
        let stage = self.0.hook.db(op, None);
        Timer::traced(
            self.0.duration[i].clone(),
            Some(self.0.queries[i].clone()),
            stage,
        )
    }

    /// [`DbMetrics::query`] with a low-cardinality `db.query.summary` (`SELECT documents`),
    /// which names the span. Never pass the query text.
    ///
    /// ```
    /// use tars_telemetry::{Telemetry, DbOperation};
    /// let t = Telemetry::new();
    /// drop(t.db().query_summary(DbOperation::Select, "SELECT documents"));
    /// assert_eq!(t.db().queries(DbOperation::Select).get(), 1);
    /// ```
    pub fn query_summary(&self, op: DbOperation, summary: &str) -> Timer {
        let i = op.index();
        let stage = self.0.hook.db(op, Some(summary));
        Timer::traced(
            self.0.duration[i].clone(),
            Some(self.0.queries[i].clone()),
            stage,
        )
    }

    #[inline]
    pub fn record(&self, op: DbOperation, duration: Duration) {
        let i = op.index();
        self.0.duration[i].observe_duration(duration);
        self.0.queries[i].inc();
    }

    /// Sets the pool's connections in use and its maximum size.
    pub fn set_pool(&self, active: u32, max: u32) {
        self.0.pool_active.set(f64::from(active));
        self.0.pool_max.set(f64::from(max));
    }

    pub fn pool_active(&self) -> &Gauge {
        &self.0.pool_active
    }

    pub fn queries(&self, op: DbOperation) -> &Counter {
        &self.0.queries[op.index()]
    }

    pub fn duration(&self, op: DbOperation) -> &Histogram {
        &self.0.duration[op.index()]
    }
}
