//! A real Prometheus server on 127.0.0.1 for tests, and its HTTP API; and Prometheus 3
//! (with its promtool), which scripts/build-otel-tools.sh builds from the Go module proxy,
//! for native histograms.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Prometheus 3's server and promtool, as scripts/build-otel-tools.sh builds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prometheus3Paths {
    pub prometheus: PathBuf,
    pub promtool: PathBuf,
}

/// Prometheus 3 (server and promtool): `$TARS_PROMETHEUS3` and `$TARS_PROMTOOL3`, or the
/// paths `scripts/build-otel-tools.sh --print` names (its cache, keyed by version).
/// Debian's `prometheus` (2.42) on PATH cannot stand in: it has no
/// `scrape_native_histograms` setting nor promtool's native histogram notation. A recorded
/// skip (a failure in CI, see [`crate::skip`]) when either is missing.
pub fn prometheus3() -> Option<Prometheus3Paths> {
    let found = find_prometheus3();
    if found.is_none() {
        crate::skip("Prometheus 3 and its promtool (scripts/build-otel-tools.sh builds them)");
    }
    found
}

/// [`prometheus3`] without recording a skip.
pub fn find_prometheus3() -> Option<Prometheus3Paths> {
    let printed = Command::new(crate::workspace_root().join("scripts/build-otel-tools.sh"))
        .arg("--print")
        .stderr(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let path = |env: &str, key: &str| {
        std::env::var_os(env)
            .map(PathBuf::from)
            .or_else(|| {
                printed
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(PathBuf::from)
            })
            .filter(|p| p.is_file())
    };
    Some(Prometheus3Paths {
        prometheus: path("TARS_PROMETHEUS3", "PROMETHEUS3=")?,
        promtool: path("TARS_PROMTOOL3", "PROMTOOL3=")?,
    })
}

/// How [`Prometheus::start_with`] configures the server beyond its targets and rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `scrape_native_histograms: true` on every scrape config (Prometheus 3): the server
    /// asks for the protobuf exposition first and stores native histograms.
    pub scrape_native_histograms: bool,
    /// `always_scrape_classic_histograms: true` on every scrape config: the classic
    /// `_bucket`/`_sum`/`_count` series are stored beside the native histograms.
    pub always_scrape_classic_histograms: bool,
    /// Extra command-line flags (`--enable-feature=...`).
    pub args: Vec<String>,
}

impl Options {
    /// Native histograms scraped, classic series kept: the setting
    /// deploy/prometheus/prometheus-scrape.yml documents.
    pub fn native_histograms() -> Options {
        Options {
            scrape_native_histograms: true,
            always_scrape_classic_histograms: true,
            ..Options::default()
        }
    }
}

/// The configuration file [`Prometheus::start_with`] writes: 1 s scrape and evaluation
/// intervals, `rule_files`, and one static scrape config per target.
pub fn config(targets: &[Target<'_>], rule_files: &[PathBuf], options: &Options) -> String {
    let mut cfg =
        String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n");
    for f in rule_files {
        cfg.push_str(&format!("  - {}\n", f.display()));
    }
    cfg.push_str("scrape_configs:\n");
    for t in targets {
        cfg.push_str(&format!(
            "  - job_name: {}\n    honor_labels: {}\n",
            t.job, t.honor_labels
        ));
        if options.scrape_native_histograms {
            cfg.push_str("    scrape_native_histograms: true\n");
        }
        if options.always_scrape_classic_histograms {
            cfg.push_str("    always_scrape_classic_histograms: true\n");
        }
        cfg.push_str(&format!(
            "    static_configs:\n      - targets: ['{}']\n",
            t.addr
        ));
        if !t.labels.is_empty() {
            cfg.push_str("        labels:\n");
            for (k, v) in t.labels {
                cfg.push_str(&format!("          {k}: {v}\n"));
            }
        }
    }
    cfg
}

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
        Self::start_with(binary, name, targets, rule_files, &Options::default())
    }

    /// [`Prometheus::start`] with `options`: native histogram scraping (Prometheus 3, see
    /// [`prometheus3`]) and extra flags.
    pub fn start_with(
        binary: &Path,
        name: &str,
        targets: &[Target<'_>],
        rule_files: &[PathBuf],
        options: &Options,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("tars-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            config(targets, rule_files, options),
        )
        .unwrap();
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
            .args(&options.args)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> [Target<'static>; 2] {
        [
            Target {
                job: "svc",
                addr: "127.0.0.1:9464".parse().unwrap(),
                labels: &[("namespace", "tars"), ("service", "tars-backend")],
                honor_labels: false,
            },
            Target {
                job: "agent",
                addr: "127.0.0.1:9400".parse().unwrap(),
                labels: &[],
                honor_labels: true,
            },
        ]
    }

    #[test]
    fn the_default_config_has_no_native_histogram_keys() {
        let cfg = config(&targets(), &[], &Options::default());
        assert!(!cfg.contains("native"), "{cfg}");
        assert!(!cfg.contains("classic"), "{cfg}");
        assert!(cfg.contains("  - job_name: svc\n    honor_labels: false\n    static_configs:\n      - targets: ['127.0.0.1:9464']\n        labels:\n          namespace: tars\n"), "{cfg}");
    }

    /// Prometheus 3's own promtool accepts the native histogram scrape settings (Debian's
    /// 2.42 does not know them).
    #[test]
    fn prometheus3_accepts_the_native_histogram_scrape_config() {
        let cfg = config(&targets(), &[], &Options::native_histograms());
        assert_eq!(cfg.matches("scrape_native_histograms: true").count(), 2);
        assert_eq!(
            cfg.matches("always_scrape_classic_histograms: true")
                .count(),
            2
        );
        let Some(p3) = prometheus3() else { return };
        let dir = std::env::temp_dir().join(format!("tars-p3-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, &cfg).unwrap();
        let out = Command::new(&p3.promtool)
            .args(["check", "config"])
            .arg(&file)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A key the server does not know is refused: the check above is a real one.
        std::fs::write(
            &file,
            cfg.replace("scrape_native_histograms", "scrape_natve_histograms"),
        )
        .unwrap();
        let typo = Command::new(&p3.promtool)
            .args(["check", "config"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "{said}");
        assert!(!typo.status.success(), "a misspelt key was accepted");
    }
}
