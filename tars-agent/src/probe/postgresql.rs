//! PostgreSQL: connections, and replication lag on a replica.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tars_telemetry::catalog::{POSTGRESQL_CONNECTIONS, POSTGRESQL_REPLICATION_LAG};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;

use super::{Findings, MAX_REPLY_BYTES, Probe};

/// Probes one PostgreSQL server through a libpq-style connection string
/// (`host=... port=... user=... dbname=...` or `postgresql://...`).
#[derive(Debug, Clone)]
pub struct PostgresProbe {
    url: String,
    target: String,
}

impl PostgresProbe {
    pub fn new(url: &str) -> Self {
        PostgresProbe {
            url: url.to_string(),
            target: redact(url),
        }
    }
}

/// The connection string with any password removed, fit for a label.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        return format!("{scheme}://{}", rest.split('?').next().unwrap_or(rest));
    }
    url.split_ascii_whitespace()
        .filter(|kv| !kv.starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
}

const QUERY: &str = "SELECT (SELECT count(*) FROM pg_stat_activity)::float8, \
     CASE WHEN pg_is_in_recovery() \
       THEN COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) \
       ELSE 0 END::float8";

impl Probe for PostgresProbe {
    fn service(&self) -> &'static str {
        "postgresql"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn check(&mut self, timeout: Duration) -> Result<Findings, String> {
        let mut cfg: tokio_postgres::Config = self.url.parse().map_err(|e| format!("{e}"))?;
        cfg.application_name("tars-agent");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // One deadline for resolving, connecting, the startup exchange and the query: a
        // server that accepts and never answers is dropped when it passes.
        let (connections, lag) = rt.block_on(async {
            tokio::time::timeout(timeout, measure(&cfg))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
        })?;
        let t = self.target.clone();
        Ok(vec![
            (&POSTGRESQL_CONNECTIONS, vec![t.clone()], connections),
            (&POSTGRESQL_REPLICATION_LAG, vec![t], lag),
        ])
    }
}

/// Connects to the first host that accepts, in the order the connection string gives,
/// and runs the query.
async fn measure(cfg: &tokio_postgres::Config) -> Result<(f64, f64), String> {
    let hosts = cfg.get_hosts();
    let addrs = cfg.get_hostaddrs();
    let ports = cfg.get_ports();
    let n = hosts.len().max(addrs.len());
    if n == 0 {
        return Err("the connection string names no host".into());
    }
    let mut last = String::new();
    for i in 0..n {
        let port = match ports {
            [] => 5432,
            [p] => *p,
            ps => ps.get(i).copied().unwrap_or(5432),
        };
        let attempt = match (addrs.get(i), hosts.get(i)) {
            (Some(ip), _) => match tokio::net::TcpStream::connect((*ip, port)).await {
                Ok(s) => return session(cfg, s).await,
                Err(e) => format!("{ip}:{port}: {e}"),
            },
            (None, Some(Host::Tcp(h))) => {
                match tokio::net::TcpStream::connect((h.as_str(), port)).await {
                    Ok(s) => return session(cfg, s).await,
                    Err(e) => format!("{h}:{port}: {e}"),
                }
            }
            #[cfg(unix)]
            (None, Some(Host::Unix(dir))) => {
                let path = dir.join(format!(".s.PGSQL.{port}"));
                match tokio::net::UnixStream::connect(&path).await {
                    Ok(s) => return session(cfg, s).await,
                    Err(e) => format!("{}: {e}", path.display()),
                }
            }
            (None, None) => continue,
        };
        last = attempt;
    }
    Err(last)
}

async fn session<S>(cfg: &tokio_postgres::Config, stream: S) -> Result<(f64, f64), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = cfg
        .connect_raw(Capped::new(stream), tokio_postgres::NoTls)
        .await
        .map_err(|e| describe(&e))?;
    let connection = tokio::spawn(connection);
    let row = client
        .query_one(QUERY, &[])
        .await
        .map_err(|e| describe(&e))?;
    drop(client);
    let _ = connection.await;
    let get = |i| row.try_get::<_, f64>(i).map_err(|e| e.to_string());
    Ok((get(0)?, get(1)?))
}

/// The error with its cause: tokio-postgres keeps the reason in the source.
fn describe(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// A stream that fails instead of buffering more than [`MAX_REPLY_BYTES`]: in all, and
/// in any one message whatever length its header announces (the protocol's framing
/// would otherwise reserve that length up front).
struct Capped<S> {
    inner: S,
    total: usize,
    header: [u8; 5],
    have: usize,
    skip: usize,
}

impl<S> Capped<S> {
    fn new(inner: S) -> Self {
        Capped {
            inner,
            total: 0,
            header: [0; 5],
            have: 0,
            skip: 0,
        }
    }

    /// Follows the backend's framing (a type byte, then a length counting itself) over
    /// the bytes just read.
    fn feed(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        let too_much = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        self.total += data.len();
        if self.total > MAX_REPLY_BYTES {
            return Err(too_much(format!(
                "the server sent more than {MAX_REPLY_BYTES} bytes"
            )));
        }
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                self.have = 0;
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]) as usize;
                if len > MAX_REPLY_BYTES {
                    return Err(too_much(format!(
                        "the server announced a message of {len} bytes, over the \
                         {MAX_REPLY_BYTES} byte limit"
                    )));
                }
                self.skip = len.saturating_sub(4);
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        Poll::Ready(self.feed(&buf.filled()[before..]))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{Capped, redact};

    #[test]
    fn announced_message_lengths_are_capped() {
        let mut c = Capped::new(());
        // ReadyForQuery ('Z', length 5, status 'I'), split across reads.
        c.feed(b"Z\0\0").unwrap();
        c.feed(b"\0\x05I").unwrap();
        // A DataRow announcing 2 GB is refused before anything reserves it.
        let e = c.feed(b"D\x7f\xff\xff\xff").unwrap_err();
        assert!(e.to_string().contains("announced a message of"), "{e}");
    }

    #[test]
    fn passwords_never_reach_labels() {
        assert_eq!(
            redact("postgresql://tars:secret@db:5432/rag?sslmode=disable"),
            "postgresql://db:5432/rag"
        );
        assert_eq!(
            redact("host=db user=tars password=secret dbname=rag"),
            "host=db user=tars dbname=rag"
        );
    }
}
