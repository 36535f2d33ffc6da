//! A built-in HTTP endpoint for Rust services: `GET /metrics` (Prometheus text or
//! OpenMetrics by `Accept`, gzip when asked for) and `GET /health`.
//!
//! It runs on its own thread with a single-threaded tokio runtime, so it serves whether or
//! not the service itself is async, and never competes with the service's executor.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, VARY};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::{Error, Format, Registry};

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
}

struct State {
    registry: Registry,
    /// `/ready` and `/readyz` answer 503 until this is set.
    ready: Arc<AtomicBool>,
    /// Size of the last body, so the next render allocates once at the right size.
    size_hint: AtomicUsize,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
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
        let listener =
            TcpListener::bind(addr).map_err(|e| Error::io("bind the metrics address", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("configure the metrics listener", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("configure the metrics listener", e))?;
        let (stop, mut stopped) = oneshot::channel::<()>();
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
        let thread = std::thread::Builder::new()
            .name("tars-metrics-http".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let state = state.clone();
                                tokio::spawn(async move {
                                    let svc = hyper::service::service_fn(move |req| {
                                        let state = state.clone();
                                        async move { Ok::<_, std::convert::Infallible>(handle(&state, &req)) }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), svc)
                                        .await;
                                });
                            }
                        }
                    }
                });
            })
            .map_err(|e| Error::io("start the metrics thread", e))?;
        Ok(MetricsServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_now();
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
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
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
