//! A built-in HTTP endpoint for Rust services: `GET /metrics` (Prometheus text or
//! OpenMetrics by `Accept`, gzip when asked for) and `GET /health`.
//!
//! It runs on its own thread with a single-threaded tokio runtime, so it serves whether or
//! not the service itself is async, and never competes with the service's executor.
//!
//! Peers cannot hold it: connections are capped ([`ServerOptions::max_connections`]), a
//! request's headers must arrive within [`ServerOptions::header_read_timeout`], an idle
//! keep-alive connection is closed after [`ServerOptions::idle_timeout`], a response the
//! peer does not read is dropped after [`ServerOptions::write_timeout`], and accept errors
//! (out of file descriptors) back off instead of spinning. At the cap, a new connection
//! replaces the oldest one that has not yet sent a complete request, so a flood of idle or
//! slow connections cannot lock a scraper out.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, VARY,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::{Error, Format, Registry};

/// Limits of a [`MetricsServer`]. The defaults suit a scrape endpoint: a few scrapers,
/// each sending its request as soon as it connects.
///
/// ```
/// use std::time::Duration;
/// use tars_telemetry::ServerOptions;
/// let options = ServerOptions::default()
///     .max_connections(32)
///     .header_read_timeout(Duration::from_secs(5));
/// assert_eq!(options.max_connections, 32);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Connections open at once (default 128). At the cap a new connection replaces the
    /// oldest one that has not sent a complete request yet, or else the oldest idle
    /// keep-alive one; with neither, it waits in the listen backlog.
    pub max_connections: usize,
    /// Time a request's headers may take to arrive, from the connection's start or from
    /// the first byte of a later request (default 10 s). Bounds slowloris peers.
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may stay idle between requests (default 60 s).
    pub idle_timeout: Duration,
    /// Time a response may take to be sent, for peers that stop reading (default 30 s).
    pub write_timeout: Duration,
    /// Longest pause after a failed accept, such as EMFILE when the process is out of file
    /// descriptors (default 1 s). Pauses start at 10 ms and double while accepts fail.
    pub max_accept_backoff: Duration,
}

/// Default of [`ServerOptions::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_accept_backoff: Duration::from_secs(1),
        }
    }
}

impl ServerOptions {
    /// Sets [`ServerOptions::max_connections`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`ServerOptions::header_read_timeout`].
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }

    /// Sets [`ServerOptions::idle_timeout`].
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Sets [`ServerOptions::write_timeout`].
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d;
        self
    }

    /// Sets [`ServerOptions::max_accept_backoff`].
    pub fn max_accept_backoff(mut self, d: Duration) -> Self {
        self.max_accept_backoff = d;
        self
    }

    fn check(&self) -> Result<(), Error> {
        if self.max_connections == 0 {
            return Err(Error::InvalidSetting {
                setting: "max_connections",
                must_be: "at least 1",
            });
        }
        for (setting, d) in [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
            ("max_accept_backoff", self.max_accept_backoff),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidSetting {
                    setting,
                    must_be: "above zero",
                });
            }
        }
        Ok(())
    }
}

/// A running /metrics endpoint. Dropping it stops the server.
///
/// ```no_run
/// use tars_telemetry::{Telemetry, MetricsServer};
/// let telemetry = Telemetry::new();
/// let server = MetricsServer::start("127.0.0.1:9464", telemetry.registry().clone()).unwrap();
/// println!("serving on http://{}/metrics", server.local_addr());
/// ```
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    open: Arc<AtomicUsize>,
    /// The process that started the server: in a forked child its thread does not exist,
    /// and joining it would wait forever.
    pid: u32,
}

struct State {
    registry: Registry,
    /// `/ready` and `/readyz` answer 503 until this is set.
    ready: Arc<AtomicBool>,
    /// Size of the last body, so the next render allocates once at the right size.
    size_hint: AtomicUsize,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving, with the default
    /// [`ServerOptions`].
    pub fn start(addr: impl std::net::ToSocketAddrs, registry: Registry) -> Result<Self, Error> {
        Self::start_with_readiness(addr, registry, Arc::new(AtomicBool::new(true)))
    }

    /// Like [`MetricsServer::start`], with `/ready` and `/readyz` answering 503 until
    /// `ready` is set (a node agent is ready once its first collection is done).
    pub fn start_with_readiness(
        addr: impl std::net::ToSocketAddrs,
        registry: Registry,
        ready: Arc<AtomicBool>,
    ) -> Result<Self, Error> {
        Self::start_with_options(addr, registry, ready, ServerOptions::default())
    }

    /// Like [`MetricsServer::start_with_readiness`], with the given limits.
    pub fn start_with_options(
        addr: impl std::net::ToSocketAddrs,
        registry: Registry,
        ready: Arc<AtomicBool>,
        options: ServerOptions,
    ) -> Result<Self, Error> {
        options.check()?;
        let listener =
            TcpListener::bind(addr).map_err(|e| Error::io("bind the metrics address", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("configure the metrics listener", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("configure the metrics listener", e))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let state = Arc::new(State {
            registry,
            ready,
            size_hint: AtomicUsize::new(16 * 1024),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::io("start the metrics runtime", e))?;
        let open = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(Conns {
            options,
            start: Instant::now(),
            table: Mutex::new(BTreeMap::new()),
            freed: Notify::new(),
            open: open.clone(),
        });
        let thread = std::thread::Builder::new()
            .name("tars-metrics-http".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    accept_loop(listener, conns, state, stopped).await;
                });
            })
            .map_err(|e| Error::io("start the metrics thread", e))?;
        Ok(MetricsServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            open,
            pid: std::process::id(),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Stops accepting connections, closes the open ones and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            if self.pid == std::process::id() {
                let _ = t.join();
            } else {
                // A forked child's copy of the handle: the thread is the parent's.
                std::mem::forget(t);
            }
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Where a connection is in its request cycle; each phase has its own deadline.
const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// One open connection, as the accept loop and its watchdog see it.
struct Conn {
    phase: AtomicU8,
    /// Whether a complete request has arrived on it.
    served: AtomicBool,
    /// Milliseconds after the server's start at which the connection is closed.
    deadline_ms: AtomicU64,
    /// Wakes the watchdog when the deadline moves, which may be earlier than it sleeps.
    rearm: Notify,
    kill: Notify,
}

struct Conns {
    options: ServerOptions,
    start: Instant,
    /// By connection number, so the oldest comes first.
    table: Mutex<BTreeMap<u64, Arc<Conn>>>,
    /// Signalled when a connection ends.
    freed: Notify,
    open: Arc<AtomicUsize>,
}

impl Conns {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn enter(&self, conn: &Conn, phase: u8) {
        let o = &self.options;
        let limit = match phase {
            HEAD => o.header_read_timeout,
            BUSY => o.write_timeout,
            _ => o.idle_timeout,
        };
        conn.phase.store(phase, Ordering::Relaxed);
        conn.deadline_ms.store(
            self.now_ms().saturating_add(limit.as_millis() as u64),
            Ordering::Relaxed,
        );
        conn.rearm.notify_one();
    }

    /// The oldest connection that has not sent a complete request, or else the oldest
    /// idle one: the one a new connection replaces at the cap. Busy ones never are.
    fn victim(table: &BTreeMap<u64, Arc<Conn>>) -> Option<u64> {
        table
            .iter()
            .find(|(_, c)| !c.served.load(Ordering::Relaxed))
            .or_else(|| {
                table
                    .iter()
                    .find(|(_, c)| c.phase.load(Ordering::Relaxed) == IDLE)
            })
            .map(|(id, _)| *id)
    }

    /// Whether a new connection can be taken: below the cap, or with one to replace.
    fn has_room(&self) -> bool {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.len() < self.options.max_connections || Self::victim(&table).is_some()
    }

    /// Registers a new connection, closing the ones it replaces to stay within the cap.
    fn admit(&self, id: u64, conn: Arc<Conn>) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        while table.len() >= self.options.max_connections {
            // Taken after a check of `has_room`: if the replaceable ones got busy
            // meanwhile, the cap is passed by this one connection until one ends.
            let Some(old) = Self::victim(&table).and_then(|v| table.remove(&v)) else {
                break;
            };
            old.kill.notify_one();
        }
        table.insert(id, conn);
    }

    fn remove(&self, id: u64) {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.freed.notify_one();
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    conns: Arc<Conns>,
    state: Arc<State>,
    mut stopped: oneshot::Receiver<()>,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(10);
    let mut backoff = FIRST_BACKOFF;
    let mut next_id = 0u64;
    loop {
        if !conns.has_room() {
            // Every connection is mid-request: wait until one ends.
            tokio::select! {
                _ = &mut stopped => break,
                _ = conns.freed.notified() => continue,
            }
        }
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = FIRST_BACKOFF;
                stream
            }
            Err(e) => {
                // Out of file descriptors (EMFILE/ENFILE) or a transient error: accept
                // would fail again at once, so wait instead of spinning.
                tracing::debug!(error = %e, "metrics server: accept failed; backing off");
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(conns.options.max_accept_backoff);
                continue;
            }
        };
        let id = next_id;
        next_id += 1;
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(HEAD),
            served: AtomicBool::new(false),
            deadline_ms: AtomicU64::new(0),
            rearm: Notify::new(),
            kill: Notify::new(),
        });
        conns.enter(&conn, HEAD);
        conns.admit(id, conn.clone());
        conns.open.fetch_add(1, Ordering::Relaxed);
        let conns = conns.clone();
        let state = state.clone();
        tokio::spawn(async move {
            serve(stream, &conn, &conns, state).await;
            conns.open.fetch_sub(1, Ordering::Relaxed);
            conns.remove(id);
        });
    }
    // Dropping the runtime after this returns closes every open connection.
}

/// Serves one connection until it ends, its phase's deadline passes, or it is evicted.
async fn serve(
    stream: tokio::net::TcpStream,
    conn: &Arc<Conn>,
    conns: &Arc<Conns>,
    state: Arc<State>,
) {
    let io = Watched {
        inner: stream,
        conn: conn.clone(),
        conns: conns.clone(),
    };
    let svc = {
        let conn = conn.clone();
        let conns = conns.clone();
        hyper::service::service_fn(move |req| {
            conn.served.store(true, Ordering::Relaxed);
            conns.enter(&conn, BUSY);
            let response = handle(&state, &req);
            async move { Ok::<_, std::convert::Infallible>(response) }
        })
    };
    let serving =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), svc);
    tokio::pin!(serving);
    loop {
        let deadline =
            conns.start + Duration::from_millis(conn.deadline_ms.load(Ordering::Relaxed));
        tokio::select! {
            _ = &mut serving => return,
            _ = conn.kill.notified() => return,
            _ = conn.rearm.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {
                // The deadline may have moved on meanwhile; only a passed one closes.
                if conns.now_ms() >= conn.deadline_ms.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
    }
}

/// The connection's socket, moving its phase on as bytes come and go: the first bytes
/// after an idle spell start a request's header deadline, and a completed flush of a
/// response makes it idle.
struct Watched {
    inner: tokio::net::TcpStream,
    conn: Arc<Conn>,
    conns: Arc<Conns>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && self.conn.phase.load(Ordering::Relaxed) == IDLE {
            self.conns.enter(&self.conn, HEAD);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) && self.conn.phase.load(Ordering::Relaxed) == BUSY {
            self.conns.enter(&self.conn, IDLE);
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// True when `Accept-Encoding` lists gzip with a non-zero quality.
pub(crate) fn accepts_gzip(header: Option<&str>) -> bool {
    header.is_some_and(|h| {
        h.split(',').any(|part| {
            let mut it = part.split(';').map(str::trim);
            let coding = it.next().unwrap_or("");
            let q = it
                .find_map(|p| p.strip_prefix("q="))
                .map_or(1.0, |q| q.parse::<f32>().unwrap_or(0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
    })
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn handle<B>(state: &State, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => {}
        "/health" | "/healthz" => return text(StatusCode::OK, "ok\n"),
        "/ready" | "/readyz" => {
            return if state.ready.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            };
        }
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "not found; metrics are at /metrics\n",
            );
        }
    }
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let format = Format::from_accept(header(ACCEPT));
    let mut body = Vec::with_capacity(state.size_hint.load(Ordering::Relaxed));
    state.registry.render_into(format, &mut body);
    state
        .size_hint
        .store(body.len() + body.len() / 8, Ordering::Relaxed);
    let gzip = accepts_gzip(header(ACCEPT_ENCODING));
    let body = if gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        match enc.write_all(&body).and_then(|_| enc.finish()) {
            Ok(z) => z,
            Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "compression failed\n"),
        }
    } else {
        body
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if gzip {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
