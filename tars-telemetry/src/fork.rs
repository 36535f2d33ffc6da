//! Fork safety: what a process that forks workers after building its telemetry (gunicorn
//! `--preload`, `os.fork`) calls around the fork.
//!
//! A fork copies memory but not threads: the export thread and the metrics server's
//! thread do not exist in the child, a lock another thread held at that moment stays held
//! forever, and every value recorded before the fork is copied into every worker (so each
//! would report the parent's counts as its own). [`Telemetry::before_fork`] takes every
//! lock of the telemetry so that none is held mid-update by another thread when the fork
//! happens; [`Telemetry::after_fork_in_parent`] releases them;
//! [`Telemetry::after_fork_in_child`] releases them, zeroes what the worker will count
//! itself, and builds tracing anew.
//!
//! What a preloading parent may do before forking: build the telemetry, resolve handles
//! (models, routes), install tracing, set info and gauges that describe the whole service.
//! What it may not: serve /metrics (the child cannot take over the parent's server
//! thread; serve from each worker), or keep stages open across the fork (a stage started
//! before the fork ends in the parent only).
//!
//! ```no_run
//! # let t = tars_telemetry::Telemetry::new();
//! t.before_fork();
//! match unsafe { libc_fork() } {
//!     0 => { let _child = t.after_fork_in_child(); /* worker */ }
//!     _ => t.after_fork_in_parent(),
//! }
//! # unsafe fn libc_fork() -> i32 { 0 }
//! ```

/// What [`Telemetry::after_fork_in_child`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct AfterFork {
    /// Whether `before_fork` had run, so the telemetry's locks were known to be free.
    pub locks_released: bool,
    /// In multi-process mode, whether the child got a file of its own (its series are
    /// moved there). On an error the child goes on recording into its parent's file,
    /// which keeps totals right but must not add series; `None` in single-process mode.
    pub multiprocess: Option<Result<(), crate::Error>>,
    /// The child's tracing, built anew from the parent's configuration: `None` when the
    /// parent had no tracing (or installed its own exporter, which cannot be rebuilt).
    #[cfg(feature = "otel")]
    pub tracing: Option<Result<crate::trace::Tracing, crate::trace::TraceError>>,
}
