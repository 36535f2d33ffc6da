//! The shipped alert rules (deploy/prometheus/rules) in a real Prometheus server (Debian's
//! `prometheus` package) on 127.0.0.1, scraping two simulated RAG services: a degraded one,
//! past every threshold of the library's families, and a healthy one. Through the HTTP
//! API (/api/v1/alerts), every alert fed by the library's families is pending or firing for
//! the degraded service, with the labels its annotations use, and none for the healthy one.
//!
//! The rules are loaded as shipped except for their `for` durations, which a copy sets to
//! 0s so that the test takes seconds rather than ten minutes; the promtool unit tests in
//! deploy/prometheus/tests cover the durations.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tars_examples::{DemoConfig, Workload};
use tars_telemetry::Telemetry;

/// Alerts whose series the library emits, which `DemoConfig::degraded()` pushes past their
/// thresholds, with the labels (besides namespace, service and severity) each must carry.
const LIBRARY_ALERTS: &[(&str, &[&str])] = &[
    ("HighRAGQueryLatency", &[]),
    ("VeryHighRAGQueryLatency", &[]),
    ("HighRAGQueryFailureRate", &[]),
    ("HighLLMInferenceLatency", &["model"]),
    ("LowTokenGenerationRate", &[]),
    ("HighEmbeddingLatency", &[]),
    ("LowEmbeddingCacheHitRate", &[]),
    ("LowRedisCacheHitRate", &[]),
    ("RedisHighMemoryUsage", &[]),
    ("HighDatabaseQueryLatency", &["operation"]),
    ("DatabaseConnectionPoolExhausted", &[]),
    ("HighVectorSearchLatency", &[]),
    ("High5xxErrorRate", &[]),
    ("High4xxErrorRate", &[]),
    ("SlowDocumentProcessing", &[]),
    ("HighDocumentQueue", &[]),
];

fn prometheus_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => panic!("prometheus is required in CI"),
        None => {
            eprintln!(
                "skipping: prometheus not found (scripts/install-deploy-deps.sh installs it)"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET a path of the Prometheus API; the body, or None while the server is not up.
fn get(port: u16, path: &str) -> Option<Json> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    let json = Json::parse(body)?;
    (json.get("status")?.as_str()? == "success").then_some(json)
}

/// Copies every rule file of `rules` into `dir` with each `for:` set to 0s; the copies.
fn rules_without_for(rules: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(rules)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    entries.sort();
    let mut rewritten = 0;
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let copy: Vec<String> = text
            .lines()
            .map(|line| {
                let trimmed = line.trim_start();
                if trimmed.starts_with("for:") {
                    rewritten += 1;
                    format!("{}for: 0s", &line[..line.len() - trimmed.len()])
                } else {
                    line.to_string()
                }
            })
            .collect();
        let dest = dir.join(path.file_name().unwrap());
        std::fs::write(&dest, copy.join("\n") + "\n").unwrap();
        out.push(dest);
    }
    assert!(
        rewritten >= LIBRARY_ALERTS.len(),
        "only {rewritten} `for:` lines found"
    );
    out
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One alert of /api/v1/alerts.
#[derive(Debug)]
struct Alert {
    name: String,
    state: String,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
}

impl Alert {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn alerts(port: u16) -> Vec<Alert> {
    let Some(body) = get(port, "/api/v1/alerts") else {
        return Vec::new();
    };
    let pairs = |v: Option<&Json>| -> Vec<(String, String)> {
        match v {
            Some(Json::Obj(o)) => o
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
            _ => Vec::new(),
        }
    };
    let list = body
        .get("data")
        .and_then(|d| d.get("alerts"))
        .and_then(Json::as_array)
        .unwrap_or_default();
    list.iter()
        .map(|a| {
            let labels = pairs(a.get("labels"));
            Alert {
                name: labels
                    .iter()
                    .find(|(k, _)| k == "alertname")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
                state: a
                    .get("state")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string(),
                labels,
                annotations: pairs(a.get("annotations")),
            }
        })
        .collect()
}

#[test]
fn the_shipped_alerts_fire_for_a_degraded_service_and_not_for_a_healthy_one() {
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/rules");
    let dir = std::env::temp_dir().join(format!("tars-alerts-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rule_files = rules_without_for(&deploy, &dir);

    let stop = Arc::new(AtomicBool::new(false));
    let mut targets = Vec::new();
    let mut workers = Vec::new();
    for (service, cfg) in [
        // No random 5xx in the healthy service: at test scale a few would cross 0.5 %.
        (
            "healthy",
            DemoConfig {
                rate: 100.0,
                failure_rate: 0.0,
                ..DemoConfig::default()
            },
        ),
        (
            "degraded",
            DemoConfig {
                rate: 100.0,
                ..DemoConfig::degraded()
            },
        ),
    ] {
        let t = Telemetry::new();
        let server = t.serve("127.0.0.1:0").unwrap();
        targets.push((service, server.local_addr()));
        let stop = stop.clone();
        workers.push(std::thread::spawn(move || {
            let mut w = Workload::new(t, cfg).unwrap();
            // Bounded: stops when the test ends, or after three minutes regardless.
            w.run(&stop, Some(Duration::from_secs(180)));
            drop(server);
        }));
    }

    // The scrape config sets the target labels the rules aggregate by, as the
    // ServiceMonitor does in a cluster.
    let mut cfg =
        String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n");
    for f in &rule_files {
        cfg.push_str(&format!("  - {}\n", f.display()));
    }
    cfg.push_str("scrape_configs:\n");
    for (service, addr) in &targets {
        cfg.push_str(&format!(
            "  - job_name: {service}\n    static_configs:\n      - targets: ['{addr}']\n        labels:\n          namespace: tars\n          service: {service}\n"
        ));
    }
    std::fs::write(dir.join("prometheus.yml"), cfg).unwrap();
    let port = free_port();
    let child = Command::new(prometheus)
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
    let prom = Killed(child);

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut missing: Vec<&str>;
    let mut last: Vec<Alert>;
    loop {
        last = alerts(port);
        missing = LIBRARY_ALERTS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| {
                !last.iter().any(|a| {
                    a.name == *name
                        && a.label("service") == Some("degraded")
                        && matches!(a.state.as_str(), "pending" | "firing")
                })
            })
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    // Every rule loaded and evaluates without error.
    let mut rule_errors = Vec::new();
    let mut rules_seen = 0;
    if let Some(body) = get(port, "/api/v1/rules") {
        for g in body
            .get("data")
            .and_then(|d| d.get("groups"))
            .and_then(Json::as_array)
            .unwrap_or_default()
        {
            for r in g.get("rules").and_then(Json::as_array).unwrap_or_default() {
                rules_seen += 1;
                if r.get("health").and_then(Json::as_str) == Some("err") {
                    rule_errors.push(format!(
                        "{}: {}",
                        r.get("name").and_then(Json::as_str).unwrap_or("?"),
                        r.get("lastError").and_then(Json::as_str).unwrap_or("")
                    ));
                }
            }
        }
    }

    // The healthy service is scraped and its recorded series exist, yet no alert holds.
    let healthy_data = get(
        port,
        &format!(
            "/api/v1/query?query={}",
            encode(r#"tars:http_requests:rate5m{service="healthy"} > 0"#)
        ),
    )
    .and_then(|b| {
        b.get("data")?
            .get("result")?
            .as_array()
            .map(|r| !r.is_empty())
    })
    .unwrap_or(false);
    let noisy: Vec<String> = alerts(port)
        .iter()
        .filter(|a| a.label("service") == Some("healthy"))
        .map(|a| format!("{} ({})", a.name, a.state))
        .collect();

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);

    assert!(
        missing.is_empty(),
        "after 90 s, not pending or firing for the degraded service: {missing:?}\nalerts: {last:#?}"
    );
    assert!(rules_seen >= 50, "only {rules_seen} rules loaded");
    assert!(rule_errors.is_empty(), "rules in error: {rule_errors:#?}");
    for (name, extra) in LIBRARY_ALERTS {
        let a = last
            .iter()
            .find(|a| a.name == *name && a.label("service") == Some("degraded"))
            .unwrap();
        assert_eq!(a.label("namespace"), Some("tars"), "{name}");
        assert!(a.label("severity").is_some(), "{name}: no severity");
        for l in *extra {
            assert!(a.label(l).is_some(), "{name}: no {l} label: {a:?}");
        }
        for key in ["summary", "description", "runbook_url"] {
            let v = a.annotations.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            assert!(
                v.is_some_and(|v| !v.is_empty() && !v.contains("<no value>")),
                "{name}: annotation {key}: {v:?}"
            );
        }
        assert!(
            a.annotations
                .iter()
                .any(|(k, v)| k == "summary" && v.contains("tars/degraded")),
            "{name}: the summary does not name the service: {:?}",
            a.annotations
        );
    }
    assert!(healthy_data, "no recorded series for the healthy service");
    assert!(
        noisy.is_empty(),
        "alerts for the healthy service: {noisy:?}"
    );
}

/// Just enough JSON for the Prometheus API's answers.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Option<Json> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        (p.i == p.s.len()).then_some(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<Vec<&Json>> {
        match self {
            Json::Arr(a) => Some(a.iter().collect()),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        (self.s.get(self.i) == Some(&b)).then(|| self.i += 1)
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut o = Vec::new();
                if self.eat(b'}').is_some() {
                    return Some(Json::Obj(o));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    o.push((k, self.value()?));
                    if self.eat(b',').is_none() {
                        self.eat(b'}')?;
                        return Some(Json::Obj(o));
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        return Some(Json::Arr(a));
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'n' => self.word("null", Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-.eE0123456789".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()?
                    .parse()
                    .ok()
                    .map(Json::Num)
            }
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Option<Json> {
        self.s[self.i..].starts_with(w.as_bytes()).then(|| {
            self.i += w.len();
            v
        })
    }

    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = *self.s.get(self.i)?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            let mut c = u32::from_str_radix(hex, 16).ok()?;
                            if (0xD800..0xDC00).contains(&c) && self.s[self.i..].starts_with(b"\\u")
                            {
                                let lo = std::str::from_utf8(self.s.get(self.i + 2..self.i + 6)?)
                                    .ok()?;
                                let lo = u32::from_str_radix(lo, 16).ok()?;
                                self.i += 6;
                                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            let ch = char::from_u32(c)?;
                            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
}

#[test]
fn the_json_reader_reads_what_prometheus_writes() {
    let v = Json::parse(
        r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"X","a":"\u00b0C \"q\""},"state":"firing","value":"1e+00","n":-1.5,"ok":true,"none":null}]}}"#,
    )
    .unwrap();
    let a = v
        .get("data")
        .unwrap()
        .get("alerts")
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(a[0].get("state").unwrap().as_str(), Some("firing"));
    assert_eq!(
        a[0].get("labels").unwrap().get("a").unwrap().as_str(),
        Some("°C \"q\"")
    );
    assert_eq!(a[0].get("n"), Some(&Json::Num(-1.5)));
    assert_eq!(a[0].get("none"), Some(&Json::Null));
    assert!(Json::parse(r#"{"a":}"#).is_none());
}
