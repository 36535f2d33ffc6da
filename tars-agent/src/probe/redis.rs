//! Redis: `INFO memory` over RESP gives reachability, used_memory and maxmemory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tars_telemetry::catalog::{REDIS_MEMORY_MAX, REDIS_MEMORY_USAGE};

use super::{Findings, MAX_REPLY_BYTES, Probe};

/// Probes one Redis server.
#[derive(Debug, Clone)]
pub struct RedisProbe {
    address: String,
    password: Option<String>,
}

impl RedisProbe {
    /// `address` is `host:port`; `password`, if set, is sent with AUTH.
    pub fn new(address: &str, password: Option<String>) -> Self {
        RedisProbe {
            address: address.to_string(),
            password,
        }
    }
}

fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// A socket whose every read and write ends by one deadline, however slowly the peer
/// trickles: each operation gets only the time left.
struct Deadline {
    stream: TcpStream,
    deadline: Instant,
    timeout: Duration,
}

impl Deadline {
    fn expired(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {:?}", self.timeout),
        )
    }

    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(self.expired())
        } else {
            Ok(left)
        }
    }

    /// A socket timeout reads "would block": say what it means.
    fn explain(&self, e: std::io::Error) -> std::io::Error {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => self.expired(),
            _ => e,
        }
    }
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf).map_err(|e| self.explain(e))
    }
}

impl Write for Deadline {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf).map_err(|e| self.explain(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// Reads one RESP reply (a simple string, an error or a bulk string), buffering at most
/// [`MAX_REPLY_BYTES`] whatever length the peer announces.
fn reply(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    let limit = MAX_REPLY_BYTES as u64;
    let n = r
        .by_ref()
        .take(limit)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if !line.ends_with('\n') {
        return Err(if n as u64 == limit {
            format!("reply line longer than {MAX_REPLY_BYTES} bytes")
        } else {
            "connection closed".into()
        });
    }
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+') => Ok(line[1..].to_string()),
        Some(b'-') => Err(line[1..].to_string()),
        Some(b'$') => {
            let n: usize = line[1..]
                .parse()
                .map_err(|_| format!("bad reply {line:?}"))?;
            if n > MAX_REPLY_BYTES {
                return Err(format!(
                    "reply of {n} bytes exceeds the {MAX_REPLY_BYTES} byte limit"
                ));
            }
            let mut buf = vec![0; n + 2];
            r.read_exact(&mut buf).map_err(|e| e.to_string())?;
            buf.truncate(n);
            String::from_utf8(buf).map_err(|e| e.to_string())
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

/// Extracts a numeric field of an INFO reply.
pub fn info_field(info: &str, name: &str) -> Option<f64> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

impl Probe for RedisProbe {
    fn service(&self) -> &'static str {
        "redis"
    }

    fn target(&self) -> &str {
        &self.address
    }

    fn check(&mut self, timeout: Duration) -> Result<Findings, String> {
        let deadline = Instant::now() + timeout;
        let addr = self
            .address
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.address))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.address))?;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        let mut w = Deadline {
            stream: stream.try_clone().map_err(|e| e.to_string())?,
            deadline,
            timeout,
        };
        let mut r = BufReader::new(Deadline {
            stream,
            deadline,
            timeout,
        });
        if let Some(p) = &self.password {
            w.write_all(&command(&["AUTH", p]))
                .map_err(|e| e.to_string())?;
            reply(&mut r).map_err(|e| format!("AUTH: {e}"))?;
        }
        w.write_all(&command(&["INFO", "memory"]))
            .map_err(|e| e.to_string())?;
        let info = reply(&mut r)?;
        let used = info_field(&info, "used_memory").ok_or("INFO lacks used_memory")?;
        let max = info_field(&info, "maxmemory").unwrap_or(0.0);
        let mut f: Findings = vec![(&REDIS_MEMORY_USAGE, vec![], used)];
        // maxmemory 0 means "no limit": exporting 0 would make used/max infinite.
        if max > 0.0 {
            f.push((&REDIS_MEMORY_MAX, vec![], max));
        }
        Ok(f)
    }
}
