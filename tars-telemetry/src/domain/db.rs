use std::sync::Arc;
use std::time::Duration;

use super::{
    DbOperation, TimedTarget, Timer, abandoned, counter_in, gauge, histogram_in, per_variant,
};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge, Histogram, TraceRef};
use crate::registry::Registry;
use crate::stage::{Hook, Parent, StageKind, StageType};

const N: usize = DbOperation::ALL.len();

#[derive(Debug)]
struct DbInner {
    ops: [Arc<TimedTarget>; N],
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
        let ab = abandoned(reg, StageType::Db)?;
        Ok(DbMetrics(Arc::new(DbInner {
            ops: per_variant(DbOperation::ALL, |op| {
                let l = [op.as_str()];
                Ok(TimedTarget::new(
                    histogram_in(&d, &l)?,
                    Some(counter_in(&q, &l)?),
                    ab.clone(),
                ))
            })?,
            queries: per_variant(DbOperation::ALL, |op| counter_in(&q, &[op.as_str()]))?,
            pool_active: gauge(reg, &c::DB_POOL_ACTIVE)?,
            pool_max: gauge(reg, &c::DB_POOL_MAX)?,
            hook: hook.clone(),
        })))
    }

    /// Times one query; records duration and count when dropped. With tracing, under a
    /// sampled span this opens a database client span named by the operation (`SELECT`).
    pub fn query(&self, op: DbOperation) -> Timer {
        self.query_with(op, None, Parent::Current)
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
        self.query_with(op, Some(summary), Parent::Current)
    }

    /// [`DbMetrics::query`] or [`DbMetrics::query_summary`] under an explicit parent.
    pub fn query_with(&self, op: DbOperation, summary: Option<&str>, parent: Parent<'_>) -> Timer {
        let stage = self.0.hook.start(
            StageKind::Db {
                operation: op,
                summary,
            },
            parent,
        );
        Timer::traced(&self.0.ops[op.index()], stage)
    }

    /// Records a query timed elsewhere.
    #[inline]
    pub fn record(&self, op: DbOperation, duration: Duration, trace: Option<&TraceRef>) {
        let t = &self.0.ops[op.index()];
        let c = &self.0.queries[op.index()];
        match trace {
            Some(tr) => {
                t.histogram
                    .observe_with_exemplar(duration.as_secs_f64(), tr);
                c.inc_by_with_exemplar(1, tr);
            }
            None => {
                t.histogram.observe_duration(duration);
                c.inc();
            }
        }
    }

    /// Sets the pool's connections in use and its maximum size.
    pub fn set_pool(&self, active: u32, max: u32) {
        self.0.pool_active.set(f64::from(active));
        self.0.pool_max.set(f64::from(max));
    }

    /// The pool's connections-in-use gauge.
    pub fn pool_active(&self) -> &Gauge {
        &self.0.pool_active
    }

    /// Queries counted for one operation.
    pub fn queries(&self, op: DbOperation) -> &Counter {
        &self.0.queries[op.index()]
    }

    /// The duration histogram of one operation.
    pub fn duration(&self, op: DbOperation) -> &Histogram {
        &self.0.ops[op.index()].histogram
    }
}
