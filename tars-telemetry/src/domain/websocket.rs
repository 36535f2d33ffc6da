use std::sync::Arc;

use super::{Direction, counter_in, gauge, per_variant};
use crate::catalog as c;
use crate::error::Error;
use crate::metric::{Counter, Gauge};
use crate::registry::Registry;

#[derive(Debug)]
struct WsInner {
    messages: [Counter; 2],
    active: Gauge,
}

/// WebSocket connections and messages.
///
/// ```
/// use tars_telemetry::{Telemetry, Direction};
/// let t = Telemetry::new();
/// let conn = t.websocket().connection_opened();
/// t.websocket().message(Direction::Inbound);
/// assert_eq!(t.websocket().active().get(), 1.0);
/// drop(conn);
/// assert_eq!(t.websocket().active().get(), 0.0);
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketMetrics(Arc<WsInner>);

impl WebSocketMetrics {
    pub(crate) fn new(reg: &Registry) -> Result<Self, Error> {
        let m = reg.register(&c::WEBSOCKET_MESSAGES)?;
        Ok(WebSocketMetrics(Arc::new(WsInner {
            messages: per_variant(Direction::ALL, |d| counter_in(&m, &[d.as_str()]))?,
            active: gauge(reg, &c::WEBSOCKET_CONNECTIONS_ACTIVE)?,
        })))
    }

    #[inline]
    /// Counts one message.
    pub fn message(&self, direction: Direction) {
        self.0.messages[direction.index()].inc();
    }

    /// Messages counted in one direction.
    pub fn messages(&self, direction: Direction) -> &Counter {
        &self.0.messages[direction.index()]
    }

    /// Counts an open connection until the returned guard is dropped.
    pub fn connection_opened(&self) -> WebSocketConnection {
        self.0.active.inc();
        WebSocketConnection(Some(self.0.active.clone()))
    }

    /// The open-connections gauge.
    pub fn active(&self) -> &Gauge {
        &self.0.active
    }
}

/// An open WebSocket connection; closing it (dropping this) lowers the gauge.
#[derive(Debug)]
#[must_use = "the connection counts as open until this guard is dropped"]
pub struct WebSocketConnection(Option<Gauge>);

impl WebSocketConnection {
    /// Closes the connection: lowers the gauge now, rather than when a garbage collector
    /// gets to the guard.
    pub fn close(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(g) = self.0.take() {
            g.dec();
        }
    }
}

impl Drop for WebSocketConnection {
    fn drop(&mut self) {
        self.end();
    }
}
