//! A real Prometheus server on 127.0.0.1 for tests, and its HTTP API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// One scrape target: its job name, address and target labels.
pub struct Target<'a> {
    pub job: &'a str,
    pub addr: SocketAddr,
    pub labels: &'a [(&'a str, &'a str)],
    /// The target's own labels win over the target labels (as the platform scrapes the
    /// agent, whose `namespace`/`pod` name the pod using a GPU).
    pub honor_labels: bool,
}

/// A Prometheus server scraping its targets every second and evaluating its rule files
/// every second; killed (and its data removed) when dropped.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl Prometheus {
    /// Starts `binary` on a free port, scraping `targets`.
    pub fn start(
        binary: &Path,
        name: &str,
        targets: &[Target<'_>],
        rule_files: &[PathBuf],
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("tars-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n",
        );
        for f in rule_files {
            cfg.push_str(&format!("  - {}\n", f.display()));
        }
        cfg.push_str("scrape_configs:\n");
        for t in targets {
            cfg.push_str(&format!(
                "  - job_name: {}\n    honor_labels: {}\n    static_configs:\n      - targets: ['{}']\n",
                t.job, t.honor_labels, t.addr
            ));
            if !t.labels.is_empty() {
                cfg.push_str("        labels:\n");
                for (k, v) in t.labels {
                    cfg.push_str(&format!("          {k}: {v}\n"));
                }
            }
        }
        std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
        let port = crate::free_port();
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Prometheus { child, dir, port }
    }

    /// A scratch directory removed with the server.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// GETs an API path; the answer's `data`, or None while the server is not up.
    pub fn get(&self, path: &str) -> Option<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        s.write_all(req.as_bytes()).ok()?;
        let mut response = String::new();
        s.read_to_string(&mut response).ok()?;
        let (_, body) = response.split_once("\r\n\r\n")?;
        let mut json: Value = serde_json::from_str(body).ok()?;
        (json.get("status")? == "success").then(|| json["data"].take())
    }

    /// The result vector of an instant query (empty while there is no data).
    pub fn query(&self, q: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/query?query={}", encode(q)))
            .and_then(|d| d.get("result")?.as_array().cloned())
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a query parameter.
pub fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
