//! Export that never hurts the request path: a batch span processor with a bounded queue.
//!
//! Ending a span puts it on a bounded queue with one `try_send` and returns: the request
//! thread never waits for the exporter, never takes a lock the exporter holds, and never
//! allocates queue memory (the queue's slots are allocated once). One worker thread takes
//! spans off the queue in batches and exports them on its own single-threaded tokio
//! runtime, each export bounded by a timeout.
//!
//! When the collector is down or slow, spans are dropped, never buffered without bound:
//! a full queue drops the new span (`reason="queue_full"`), a failed or timed-out export
//! drops its batch (`reason="export_failed"`), and spans that could not be exported before
//! the shutdown deadline are dropped (`reason="shutdown"`). All are counted in
//! `tars_telemetry_spans_dropped_total{reason}`. Memory stays at most the queue plus one
//! batch in flight.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

use crate::metric::Counter;

/// Counters of the export pipeline.
#[derive(Debug, Default)]
pub(crate) struct ExportStats {
    pub(crate) queue_full: Counter,
    pub(crate) export_failed: Counter,
    pub(crate) shutdown: Counter,
    pub(crate) exported: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
}

impl ExportStats {
    pub(crate) fn dropped(&self) -> u64 {
        self.queue_full.get() + self.export_failed.get() + self.shutdown.get()
    }

    fn failed(&self, n: usize, why: String) {
        self.export_failed.inc_by(n as u64);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }
}

/// Queue and batch settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchConfig {
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) schedule_delay: Duration,
    pub(crate) export_timeout: Duration,
}

enum Ctrl {
    /// The queue holds a full batch.
    Export,
    Flush(Sender<OTelSdkResult>),
    Shutdown(Instant, Sender<()>),
}

/// The bounded batch span processor (see the module docs).
///
/// The worker never waits on the span queue itself (a waiting receiver would have to be
/// woken, a system call, on every span): it waits on a control channel, which the request
/// path writes to only once per full batch, and takes spans off the queue without blocking.
pub(crate) struct BatchProcessor {
    spans: SyncSender<SpanData>,
    ctrl: Sender<Ctrl>,
    /// Spans on the queue, and whether an export of a full batch is asked for already.
    queued: Arc<AtomicUsize>,
    export_asked: Arc<AtomicBool>,
    max_batch: usize,
    stats: Arc<ExportStats>,
    closed: AtomicBool,
    worker: Mutex<Option<JoinHandle<()>>>,
    flush_timeout: Duration,
}

impl fmt::Debug for BatchProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchProcessor")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("dropped", &self.stats.dropped())
            .finish()
    }
}

impl BatchProcessor {
    /// Starts the worker. `build` makes the exporter inside the worker's runtime (the
    /// gRPC exporter needs one to exist when it is built).
    pub(crate) fn start<E, F>(
        config: BatchConfig,
        stats: Arc<ExportStats>,
        build: F,
    ) -> Result<Self, String>
    where
        E: SpanExporter + 'static,
        F: FnOnce() -> Result<E, String>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("export runtime: {e}"))?;
        let exporter = {
            let _in_rt = rt.enter();
            build()?
        };
        let (spans, spans_rx) = mpsc::sync_channel(config.max_queue_size.max(1));
        let (ctrl, ctrl_rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let export_asked = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            rt,
            exporter,
            config,
            stats: stats.clone(),
            spans: spans_rx,
            queued: queued.clone(),
            export_asked: export_asked.clone(),
        };
        let worker = std::thread::Builder::new()
            .name("tars-otel-export".into())
            .spawn(move || worker.run(ctrl_rx))
            .map_err(|e| format!("export thread: {e}"))?;
        Ok(BatchProcessor {
            spans,
            ctrl,
            queued,
            export_asked,
            max_batch: config.max_export_batch_size.max(1),
            stats,
            closed: AtomicBool::new(false),
            worker: Mutex::new(Some(worker)),
            flush_timeout: config.export_timeout * 2 + Duration::from_secs(1),
        })
    }
}

impl SpanProcessor for BatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.closed.load(Ordering::Relaxed) {
            self.stats.shutdown.inc();
            return;
        }
        // Counted before it is sent, so the worker never takes more off the count than
        // was put on it.
        let n = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        match self.spans.try_send(span) {
            Ok(()) => {
                if n >= self.max_batch && !self.export_asked.swap(true, Ordering::Relaxed) {
                    let _ = self.ctrl.send(Ctrl::Export);
                }
            }
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => self.stats.queue_full.inc(),
                    TrySendError::Disconnected(_) => self.stats.shutdown.inc(),
                }
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        if self.closed.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let (ack, done) = mpsc::channel();
        if self.ctrl.send(Ctrl::Flush(ack)).is_err() {
            return Err(OTelSdkError::InternalFailure(
                "export worker is gone".into(),
            ));
        }
        done.recv_timeout(self.flush_timeout)
            .unwrap_or(Err(OTelSdkError::Timeout(self.flush_timeout)))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.closed.swap(true, Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let (ack, done) = mpsc::channel();
        if self
            .ctrl
            .send(Ctrl::Shutdown(Instant::now() + timeout, ack))
            .is_err()
        {
            return Err(OTelSdkError::InternalFailure(
                "export worker is gone".into(),
            ));
        }
        match done.recv_timeout(timeout) {
            Ok(()) => {
                if let Some(w) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = w.join();
                }
                Ok(())
            }
            // The worker is stuck in an export; it stops when that export times out.
            Err(_) => Err(OTelSdkError::Timeout(timeout)),
        }
    }
}

struct Worker<E> {
    rt: tokio::runtime::Runtime,
    exporter: E,
    config: BatchConfig,
    stats: Arc<ExportStats>,
    spans: Receiver<SpanData>,
    queued: Arc<AtomicUsize>,
    export_asked: Arc<AtomicBool>,
}

impl<E: SpanExporter> Worker<E> {
    fn run(mut self, ctrl: Receiver<Ctrl>) {
        // Whatever the export does (gRPC, HTTP) must not make spans of its own.
        let _suppressed = Context::enter_telemetry_suppressed_scope();
        let mut next = Instant::now() + self.config.schedule_delay;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match ctrl.recv_timeout(wait) {
                Ok(Ctrl::Export) => {
                    self.export_asked.store(false, Ordering::Relaxed);
                    let _ = self.drain(None, true);
                    next = Instant::now() + self.config.schedule_delay;
                }
                Ok(Ctrl::Flush(ack)) => {
                    let r = self.drain(None, false);
                    next = Instant::now() + self.config.schedule_delay;
                    let _ = ack.send(r);
                }
                Ok(Ctrl::Shutdown(deadline, ack)) => {
                    let _ = self.drain(Some(deadline), false);
                    let left = deadline.saturating_duration_since(Instant::now());
                    {
                        let _in_rt = self.rt.enter();
                        let _ = self.exporter.shutdown_with_timeout(left);
                    }
                    let _ = ack.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.drain(None, false);
                    next = Instant::now() + self.config.schedule_delay;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let deadline = Instant::now() + self.config.export_timeout;
                    let _ = self.drain(Some(deadline), false);
                    return;
                }
            }
        }
    }

    /// Exports what is queued, in batches; with `full_only`, only full batches (the rest
    /// waits for the schedule). Past `deadline`, what is left is dropped.
    fn drain(&mut self, deadline: Option<Instant>, full_only: bool) -> OTelSdkResult {
        let max = self.config.max_export_batch_size.max(1);
        let mut result = Ok(());
        loop {
            if full_only && self.queued.load(Ordering::Relaxed) < max {
                return result;
            }
            let mut batch = Vec::with_capacity(max);
            while batch.len() < max {
                match self.spans.try_recv() {
                    Ok(s) => batch.push(s),
                    Err(_) => break,
                }
            }
            self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            if batch.is_empty() {
                return result;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let mut n = batch.len() as u64;
                while self.spans.try_recv().is_ok() {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    n += 1;
                }
                self.stats.shutdown.inc_by(n);
                return Err(OTelSdkError::Timeout(Duration::ZERO));
            }
            if let Err(e) = self.export(batch, deadline) {
                result = Err(e);
            }
        }
    }

    fn export(&mut self, spans: Vec<SpanData>, deadline: Option<Instant>) -> OTelSdkResult {
        let n = spans.len();
        let mut timeout = self.config.export_timeout;
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        let exporter = &self.exporter;
        let outcome = self
            .rt
            .block_on(async { tokio::time::timeout(timeout, exporter.export(spans)).await });
        match outcome {
            Ok(Ok(())) => {
                self.stats.exported.fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => {
                self.stats.failed(n, e.to_string());
                Err(e)
            }
            Err(_) => {
                self.stats
                    .failed(n, format!("export timed out after {timeout:?}"));
                Err(OTelSdkError::Timeout(timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::sync::atomic::AtomicUsize;

    /// An exporter that counts spans, and can be made slow.
    #[derive(Debug, Clone)]
    struct Counting(Arc<AtomicUsize>, Duration);

    impl SpanExporter for Counting {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            if !self.1.is_zero() {
                tokio::time::sleep(self.1).await;
            }
            self.0.fetch_add(batch.len(), Ordering::Relaxed);
            Ok(())
        }
    }

    fn setup(
        delay: Duration,
        queue: usize,
    ) -> (SdkTracerProvider, Arc<AtomicUsize>, Arc<ExportStats>) {
        let seen = Arc::new(AtomicUsize::new(0));
        let stats = Arc::new(ExportStats::default());
        let cfg = BatchConfig {
            max_queue_size: queue,
            max_export_batch_size: 8,
            schedule_delay: Duration::from_secs(60),
            export_timeout: Duration::from_millis(300),
        };
        let exporter = Counting(seen.clone(), delay);
        let p = BatchProcessor::start(cfg, stats.clone(), move || Ok(exporter)).unwrap();
        let provider = SdkTracerProvider::builder().with_span_processor(p).build();
        (provider, seen, stats)
    }

    #[test]
    fn flush_exports_everything_queued() {
        let (provider, seen, stats) = setup(Duration::ZERO, 64);
        let tracer = provider.tracer("t");
        for _ in 0..20 {
            tracer.start("s").end();
        }
        provider.force_flush().unwrap();
        assert_eq!(seen.load(Ordering::Relaxed), 20);
        assert_eq!(stats.dropped(), 0);
        provider.shutdown().unwrap();
    }

    #[test]
    fn a_slow_exporter_drops_and_counts_without_blocking() {
        let (provider, _seen, stats) = setup(Duration::from_secs(5), 16);
        let tracer = provider.tracer("t");
        let start = Instant::now();
        for _ in 0..1000 {
            tracer.start("s").end();
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert!(stats.queue_full.get() > 900, "{}", stats.queue_full.get());
        // Exports time out after 300 ms each; the shutdown deadline bounds the wait.
        let t = Instant::now();
        let _ = provider.shutdown_with_timeout(Duration::from_millis(500));
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
        assert!(stats.export_failed.get() + stats.shutdown.get() > 0);
    }
}
