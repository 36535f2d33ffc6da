//! Redis: `INFO memory` over RESP gives reachability, used_memory and maxmemory.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tars_telemetry::catalog::{REDIS_MEMORY_MAX, REDIS_MEMORY_USAGE};

use super::{Findings, Probe};

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

/// Reads one RESP reply: a simple string, an error or a bulk string.
fn reply(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+') => Ok(line[1..].to_string()),
        Some(b'-') => Err(line[1..].to_string()),
        Some(b'$') => {
            let n: usize = line[1..]
                .parse()
                .map_err(|_| format!("bad reply {line:?}"))?;
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
        let addr = self
            .address
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.address))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.address))?;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut w = stream.try_clone().map_err(|e| e.to_string())?;
        let mut r = BufReader::new(stream);
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
