//! End to end, through the real trace stack: rag_demo sends its spans over OTLP (gRPC,
//! HTTP/protobuf and HTTP/JSON, one run each) to a real OpenTelemetry Collector running
//! the shipped deploy/otel-collector/config.yaml (only its ports moved to free ports of
//! 127.0.0.1, by an overlay), which sends them on to a real Jaeger v2 (in-memory storage,
//! every port on 127.0.0.1). Both are built from the Go module proxy by
//! scripts/build-otel-tools.sh.
//!
//! Through Jaeger's query API: one trace per request (none for the /health probes), the
//! tree of each route, span kinds, the attributes of the semantic conventions, the
//! resource (the service's own and what the Collector's resource processor adds), errors
//! on the failing stage and on every parent up to the 503, the failure's log line as a
//! span event, the dependency edges from the service to ollama, postgresql, redis and
//! chroma, children inside their parents (1 us of slack: Jaeger truncates start and
//! duration to microseconds separately), no warning in any trace, and the trace of every
//! exemplar the demo's OpenMetrics exposition carried.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tars_test_support::{free_port, workspace_root};

const SERVICE: &str = "tars-rag-service";

/// The Jaeger and Collector binaries: `$TARS_JAEGER` and `$TARS_OTELCOL`, else where
/// scripts/build-otel-tools.sh puts them. A recorded skip (a failure in CI) when missing.
fn tools() -> Option<(PathBuf, PathBuf)> {
    let printed = Command::new(workspace_root().join("scripts/build-otel-tools.sh"))
        .arg("--print")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let path = |env: &str, key: &str| {
        std::env::var_os(env).map(PathBuf::from).or_else(|| {
            printed
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(PathBuf::from)
        })
    };
    let jaeger = path("TARS_JAEGER", "JAEGER=").filter(|p| p.is_file());
    let otelcol = path("TARS_OTELCOL", "OTELCOL=").filter(|p| p.is_file());
    match (jaeger, otelcol) {
        (Some(j), Some(o)) => Some((j, o)),
        _ => {
            tars_test_support::skip(
                "Jaeger v2 and the OpenTelemetry Collector (scripts/build-otel-tools.sh builds them)",
            );
            None
        }
    }
}

/// The rag_demo binary of this build (built first: `cargo test` of one test target does
/// not build the examples).
fn rag_demo() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| tars_test_support::example_binary("tars-examples", "rag_demo"))
        .clone()
}

/// A child process with its output in a log file; killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(name: &'static str, cmd: &mut Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(Stdio::from(f.try_clone().unwrap()))
            .stderr(Stdio::from(f))
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        Proc { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM, then waits (at most 30 s) for the exit.
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} still running 30 s after SIGTERM\n{}",
            self.name,
            self.tail()
        );
    }

    /// Every TCP socket it listens on is on the loopback interface.
    fn listens_only_on_loopback(&self) {
        let pid = self.child.id();
        let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|l| {
                let l = l.to_string_lossy().into_owned();
                Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
            })
            .collect();
        let mut listening = Vec::new();
        for table in ["tcp", "tcp6"] {
            let text =
                std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                    listening.push(f[1].to_string());
                }
            }
        }
        assert!(
            !listening.is_empty(),
            "{}: no listening socket found",
            self.name
        );
        for local in &listening {
            let addr = local.split(':').next().unwrap();
            let loopback = addr == "0100007F"
                || addr == "00000000000000000000000001000000"
                || addr == "0000000000000000FFFF00000100007F";
            assert!(
                loopback,
                "{} listens on {local} (not loopback): {listening:?}",
                self.name
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs `path` from `addr`: status and body (None while nothing answers).
fn get(addr: SocketAddr, path: &str, accept: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn wait_until(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
    logs: &dyn Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} not ready after {limit:?}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn metrics_reader(port: u16) -> String {
    format!(
        "    metrics:\n      level: basic\n      readers:\n        - pull:\n            exporter:\n              prometheus:\n                host: 127.0.0.1\n                port: {port}\n"
    )
}

/// Jaeger v2 all-in-one with in-memory storage, every port on 127.0.0.1.
fn jaeger_config(otlp: u16, query: u16, query_grpc: u16, metrics: u16) -> String {
    format!(
        "service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
{metrics}    logs:
      level: info
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
",
        metrics = metrics_reader(metrics)
    )
}

/// What the test changes in the shipped Collector config: its ports, all on 127.0.0.1,
/// and Jaeger's address.
fn collector_overlay(grpc: u16, http: u16, jaeger: u16, health: u16, metrics: u16) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  otlp_grpc/jaeger:
    endpoint: 127.0.0.1:{jaeger}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  telemetry:
{metrics}",
        metrics = metrics_reader(metrics)
    )
}

/// One run of rag_demo: requests made, and the trace ids of the exemplars its /metrics
/// carried just before it stopped.
struct DemoRun {
    requests: u64,
    exemplar_traces: BTreeSet<String>,
}

fn run_demo(dir: &Path, protocol: &str, endpoint: &str, seed: u32) -> DemoRun {
    let mut cmd = Command::new(rag_demo());
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--rate",
        "25",
        "--failure-rate",
        "0.3",
    ])
    .args(["--client-error-rate", "0.05", "--seed", &seed.to_string()])
    .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    .env("OTEL_SERVICE_NAME", SERVICE)
    .env("OTEL_BSP_SCHEDULE_DELAY", "500")
    .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    .env_remove("OTEL_SDK_DISABLED")
    .env_remove("OTEL_TRACES_SAMPLER")
    .env_remove("OTEL_RESOURCE_ATTRIBUTES");
    let name = match protocol {
        "grpc" => "rag_demo-grpc",
        "http/protobuf" => "rag_demo-http-protobuf",
        _ => "rag_demo-http-json",
    };
    let mut demo = Proc::start(name, &mut cmd, dir);
    let mut addr: Option<SocketAddr> = None;
    wait_until(
        "rag_demo /metrics",
        Duration::from_secs(30),
        || {
            addr = demo.log().lines().find_map(|l| {
                l.strip_prefix("rag_demo: serving http://")?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()
            });
            addr.is_some()
        },
        &|| demo.tail(),
    );
    std::thread::sleep(Duration::from_secs(4));
    let (status, exposition) = get(
        addr.unwrap(),
        "/metrics",
        "application/openmetrics-text; version=1.0.0",
    )
    .expect("rag_demo serves /metrics");
    assert_eq!(status, 200);
    let exemplar_traces: BTreeSet<String> = exposition
        .lines()
        .filter_map(|l| {
            l.split_once("# {")?
                .1
                .split_once('}')
                .map(|(labels, _)| labels.to_string())
        })
        .filter_map(|labels| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix("trace_id=\""))
                .map(|v| v.trim_end_matches('"').to_string())
        })
        .collect();
    demo.terminate();
    let log = demo.log();
    assert_eq!(
        demo.child.try_wait().unwrap().and_then(|s| s.code()),
        Some(0),
        "{log}"
    );
    let requests = log
        .lines()
        .find_map(|l| l.strip_prefix("rag_demo: done after "))
        .and_then(|l| l.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no request count:\n{log}"));
    let exported = log
        .lines()
        .find(|l| l.contains(" spans exported, 0 dropped"));
    assert!(
        exported.is_some(),
        "{protocol}: spans dropped or not exported:\n{log}"
    );
    DemoRun {
        requests,
        exemplar_traces,
    }
}

fn tag<'a>(tags: &'a Value, key: &str) -> Option<&'a Value> {
    tags.as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| &t["value"])
}

/// One span of a Jaeger trace.
struct Span<'a>(&'a Value);

impl<'a> Span<'a> {
    fn id(&self) -> &'a str {
        self.0["spanID"].as_str().unwrap()
    }
    fn name(&self) -> &'a str {
        self.0["operationName"].as_str().unwrap()
    }
    fn parent(&self) -> Option<&'a str> {
        self.0["references"]
            .as_array()?
            .iter()
            .find(|r| r["refType"] == "CHILD_OF")
            .and_then(|r| r["spanID"].as_str())
    }
    fn tag(&self, key: &str) -> Option<&'a Value> {
        tag(&self.0["tags"], key)
    }
    fn str(&self, key: &str) -> Option<&'a str> {
        self.tag(key)?.as_str()
    }
    fn int(&self, key: &str) -> Option<i64> {
        let v = self.tag(key)?;
        v.as_i64().or_else(|| v.as_str()?.parse().ok())
    }
    fn kind(&self) -> &'a str {
        self.str("span.kind").unwrap_or("internal")
    }
    fn error(&self) -> bool {
        self.tag("error").is_some_and(|v| v == true || v == "true")
    }
    fn start(&self) -> i64 {
        self.0["startTime"].as_i64().unwrap()
    }
    fn end(&self) -> i64 {
        self.start() + self.0["duration"].as_i64().unwrap()
    }
    fn describe(&self) -> String {
        format!("{} {}", self.name(), self.0["tags"])
    }
}

/// What each kind of client span must carry, by span name prefix: peer.service,
/// server.address, server.port.
const PEERS: &[(&str, &str, &str, i64)] = &[
    ("chat ", "ollama", "ollama", 11434),
    ("embeddings", "ollama", "ollama", 11434),
    ("retrieval", "chroma", "chromadb", 8000),
    ("SELECT ", "postgresql", "postgres", 5432),
    ("INSERT ", "postgresql", "postgres", 5432),
    ("GET", "redis", "redis", 6379),
    ("SETEX", "redis", "redis", 6379),
];

#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    routes: BTreeMap<String, usize>,
    failed_stages: BTreeSet<String>,
    edges: BTreeSet<(String, String)>,
}

impl Findings {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok && self.problems.len() < 40 {
            self.problems.push(what());
        }
    }
}

fn check_trace(trace: &Value, f: &mut Findings) {
    let id = trace["traceID"].as_str().unwrap_or("?").to_string();
    f.check(
        trace["warnings"].is_null() || trace["warnings"].as_array().is_some_and(|w| w.is_empty()),
        || format!("{id}: trace warnings {}", trace["warnings"]),
    );
    let spans: Vec<Span> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(Span)
        .collect();
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.id(), s)).collect();
    let roots: Vec<&Span> = spans.iter().filter(|s| s.parent().is_none()).collect();
    f.check(roots.len() == 1, || format!("{id}: {} roots", roots.len()));
    let Some(root) = roots.first() else { return };
    // Children in the order they started (Jaeger returns spans in no particular order).
    let children = |p: &str| -> Vec<&Span> {
        let mut c: Vec<&Span> = spans.iter().filter(|s| s.parent() == Some(p)).collect();
        c.sort_by_key(|s| s.start());
        c
    };

    // The resource: the service's own, and what the Collector's resource processor added.
    let process = &trace["processes"][root.0["processID"].as_str().unwrap_or("")];
    f.check(process["serviceName"] == SERVICE, || {
        format!("{id}: process {process}")
    });
    for key in [
        "service.version",
        "service.instance.id",
        "telemetry.sdk.name",
        "deployment.environment.name",
        "k8s.namespace.name",
    ] {
        f.check(tag(&process["tags"], key).is_some(), || {
            format!("{id}: resource has no {key}: {}", process["tags"])
        });
    }

    for s in &spans {
        f.check(
            s.0["warnings"].is_null() || s.0["warnings"].as_array().is_some_and(|w| w.is_empty()),
            || format!("{id}: span warnings {}", s.describe()),
        );
        if let Some(p) = s.parent().and_then(|p| by_id.get(p)) {
            f.check(s.start() + 1 >= p.start() && s.end() <= p.end() + 1, || {
                format!("{id}: {} outside its parent {}", s.name(), p.name())
            });
            // An error goes up: every parent of a failed span failed too.
            if s.error() {
                f.check(p.error(), || {
                    format!(
                        "{id}: {} failed but its parent {} did not",
                        s.name(),
                        p.name()
                    )
                });
            }
        } else if s.parent().is_some() {
            f.problems
                .push(format!("{id}: {} has a parent not in the trace", s.name()));
        }
        if s.error() {
            f.check(s.str("error.type").is_some(), || {
                format!("{id}: error without error.type: {}", s.describe())
            });
            f.check(s.str("otel.status_code") == Some("ERROR"), || {
                format!("{id}: error status: {}", s.describe())
            });
            let cancelled = s.str("error.type") == Some("cancelled");
            if children(s.id()).iter().all(|c| !c.error()) && s.kind() != "server" && !cancelled {
                // The stage where it failed: its log line is an event of its span.
                f.failed_stages
                    .insert(s.name().split(' ').next().unwrap_or("").to_string());
                let logged = s.0["logs"].as_array().is_some_and(|logs| {
                    logs.iter().any(|l| {
                        l["fields"].as_array().is_some_and(|fs| {
                            fs.iter()
                                .any(|x| x["key"] == "level" && x["value"] == "error")
                        })
                    })
                });
                f.check(logged, || {
                    format!("{id}: failed stage without its log event: {}", s.0)
                });
            }
        }
        match s.kind() {
            "client" => {
                let peer = PEERS.iter().find(|(p, ..)| s.name().starts_with(p));
                f.check(peer.is_some(), || {
                    format!("{id}: unexpected client span {}", s.name())
                });
                if let Some((_, service, host, port)) = peer {
                    f.check(s.str("peer.service") == Some(service), || {
                        format!("{id}: peer.service: {}", s.describe())
                    });
                    f.check(s.str("server.address") == Some(host), || {
                        format!("{id}: server.address: {}", s.describe())
                    });
                    f.check(s.int("server.port") == Some(*port), || {
                        format!("{id}: server.port: {}", s.describe())
                    });
                    f.edges.insert((SERVICE.to_string(), service.to_string()));
                }
            }
            "server" => f.check(s.id() == root.id(), || {
                format!("{id}: a server span under the root")
            }),
            "internal" => {}
            k => f
                .problems
                .push(format!("{id}: span kind {k}: {}", s.describe())),
        }
        let name = s.name();
        if name.starts_with("SELECT ") || name.starts_with("INSERT ") {
            f.check(
                s.str("db.query.summary") == Some(name)
                    && s.str("db.system.name") == Some("postgresql"),
                || format!("{id}: database span: {}", s.describe()),
            );
        }
        if name.starts_with("chat ") {
            for key in [
                "gen_ai.operation.name",
                "gen_ai.provider.name",
                "gen_ai.request.model",
                "gen_ai.usage.input_tokens",
            ] {
                f.check(s.tag(key).is_some(), || {
                    format!("{id}: {name} without {key}")
                });
            }
            if !s.error() {
                f.check(
                    s.str("gen_ai.response.model") == s.str("gen_ai.request.model"),
                    || format!("{id}: gen_ai.response.model: {}", s.describe()),
                );
                f.check(s.tag("gen_ai.response.finish_reasons").is_some(), || {
                    format!("{id}: no gen_ai.response.finish_reasons: {}", s.describe())
                });
                // The usage by kind the demo reports: part of every prompt is read from
                // the cache or written to it.
                f.check(
                    s.tag("gen_ai.usage.output_tokens").is_some()
                        && (s.tag("gen_ai.usage.cache_read.input_tokens").is_some()
                            || s.tag("gen_ai.usage.cache_creation.input_tokens").is_some()),
                    || format!("{id}: {name} without its usage by kind: {}", s.describe()),
                );
            }
            // GenAI conventions 1.37+: no gen_ai.system unless asked for.
            f.check(s.tag("gen_ai.system").is_none(), || {
                format!("{id}: {name} carries gen_ai.system")
            });
        }
    }

    // The server span and the route's tree.
    let route = root.str("http.route").unwrap_or("");
    *f.routes.entry(root.name().to_string()).or_default() += 1;
    f.check(root.kind() == "server", || {
        format!("{id}: root kind {}", root.kind())
    });
    for key in [
        "http.request.method",
        "http.route",
        "url.path",
        "url.scheme",
        "server.address",
    ] {
        f.check(root.tag(key).is_some(), || {
            format!("{id}: server span without {key}: {}", root.describe())
        });
    }
    f.check(root.tag("otel.status_description").is_none(), || {
        format!(
            "{id}: the server span has a status description: {}",
            root.describe()
        )
    });
    if root.str("error.type") == Some("cancelled") {
        // In flight when the demo stopped, past its drain deadline: abandoned, no status.
        return;
    }
    let status = root.int("http.response.status_code").unwrap_or(0);
    let names: BTreeSet<&str> = children(root.id()).iter().map(|s| s.name()).collect();
    let failed = spans.iter().any(|s| s.error() && s.id() != root.id());
    if failed {
        f.check(
            status == 503 && root.error() && root.str("error.type") == Some("503"),
            || {
                format!(
                    "{id}: a stage failed, yet the request answered {status}: {}",
                    root.describe()
                )
            },
        );
    } else {
        f.check(!root.error() && status < 500, || {
            format!("{id}: {}", root.describe())
        });
    }
    if (400..500).contains(&status) {
        f.check(names.is_empty(), || {
            format!("{id}: a rejected request did work: {names:?}")
        });
        return;
    }
    let expect_children: &[&str] = match route {
        "/api/v1/rag/query" => &["GET", "rag.query"],
        "/api/v1/documents/upload" => &["document.ingest"],
        "/api/v1/conversations/{id}" => &["GET", "SELECT conversations"],
        other => {
            f.problems.push(format!("{id}: route {other:?}"));
            return;
        }
    };
    for c in expect_children {
        f.check(names.contains(c), || {
            format!("{id}: {route} without {c}: {names:?}")
        });
    }
    if route == "/api/v1/rag/query"
        && let Some(q) = children(root.id())
            .into_iter()
            .find(|s| s.name() == "rag.query")
    {
        let phases: Vec<&str> = children(q.id()).iter().map(|s| s.name()).collect();
        f.check(phases.first() == Some(&"rag.retrieval"), || {
            format!("{id}: phases {phases:?}")
        });
        if !failed {
            f.check(
                phases == ["rag.retrieval", "rag.rerank", "rag.generation"],
                || format!("{id}: phases {phases:?}"),
            );
            let generation = children(q.id())
                .into_iter()
                .find(|s| s.name() == "rag.generation");
            let llm: Vec<&str> = generation
                .map(|g| children(g.id()).iter().map(|s| s.name()).collect())
                .unwrap_or_default();
            f.check(llm.len() == 1 && llm[0].starts_with("chat "), || {
                format!("{id}: generation {llm:?}")
            });
            let retrieval = children(q.id())
                .into_iter()
                .find(|s| s.name() == "rag.retrieval");
            let r: BTreeSet<&str> = retrieval
                .map(|g| children(g.id()).iter().map(|s| s.name()).collect())
                .unwrap_or_default();
            for c in [
                "cache.lookup",
                "retrieval documents",
                "SELECT document_chunks",
            ] {
                f.check(r.contains(c), || {
                    format!("{id}: retrieval without {c}: {r:?}")
                });
            }
        }
    }
    if route == "/api/v1/documents/upload"
        && !failed
        && let Some(d) = children(root.id())
            .into_iter()
            .find(|s| s.name() == "document.ingest")
    {
        let steps: Vec<&str> = children(d.id()).iter().map(|s| s.name()).collect();
        f.check(
            steps.iter().any(|s| s.starts_with("embeddings"))
                && steps.last() == Some(&"INSERT document_chunks"),
            || format!("{id}: ingestion {steps:?}"),
        );
        f.check(d.int("tars.document.chunks").is_some(), || {
            format!("{id}: no chunk count")
        });
    }
}

#[test]
fn rag_demo_through_the_collector_into_jaeger() {
    let Some((jaeger_bin, otelcol_bin)) = tools() else {
        return;
    };
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("tars-jaeger-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // Jaeger.
    let (j_otlp, j_query, j_query_grpc, j_metrics) =
        (free_port(), free_port(), free_port(), free_port());
    std::fs::write(
        dir.join("jaeger.yaml"),
        jaeger_config(j_otlp, j_query, j_query_grpc, j_metrics),
    )
    .unwrap();
    let jaeger = Proc::start(
        "jaeger",
        Command::new(&jaeger_bin)
            .arg(format!(
                "--config=file:{}",
                dir.join("jaeger.yaml").display()
            ))
            // Jaeger traces its own query API over OTLP: into itself, not localhost:4317.
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{j_otlp}"),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        &dir,
    );
    let query: SocketAddr = ([127, 0, 0, 1], j_query).into();
    wait_until(
        "Jaeger's query API",
        Duration::from_secs(60),
        || get(query, "/api/services", "application/json").is_some_and(|(s, _)| s == 200),
        &|| jaeger.tail(),
    );

    // The Collector, with the shipped config and the port overlay.
    let (c_grpc, c_http, c_health, c_metrics) =
        (free_port(), free_port(), free_port(), free_port());
    std::fs::write(
        dir.join("overlay.yaml"),
        collector_overlay(c_grpc, c_http, j_otlp, c_health, c_metrics),
    )
    .unwrap();
    let shipped = workspace_root().join("deploy/otel-collector/config.yaml");
    let mut collector = Proc::start(
        "otelcol",
        Command::new(&otelcol_bin)
            .arg(format!("--config={}", shipped.display()))
            .arg(format!(
                "--config=file:{}",
                dir.join("overlay.yaml").display()
            )),
        &dir,
    );
    let health: SocketAddr = ([127, 0, 0, 1], c_health).into();
    wait_until(
        "the Collector's health check",
        Duration::from_secs(60),
        || get(health, "/", "*/*").is_some_and(|(s, _)| s == 200),
        &|| collector.tail(),
    );
    collector.listens_only_on_loopback();
    jaeger.listens_only_on_loopback();
    let ready = started.elapsed();

    // rag_demo over each OTLP transport.
    let runs = [
        run_demo(&dir, "grpc", &format!("http://127.0.0.1:{c_grpc}"), 7),
        run_demo(
            &dir,
            "http/protobuf",
            &format!("http://127.0.0.1:{c_http}"),
            8,
        ),
        run_demo(&dir, "http/json", &format!("http://127.0.0.1:{c_http}"), 9),
    ];
    let requests: u64 = runs.iter().map(|r| r.requests).sum();
    // Stopping the Collector sends what its batch processor holds.
    collector.terminate();
    let collector_log = collector.log();

    // Every request is one trace in Jaeger (the exporter flushed at exit, the Collector
    // at shutdown; Jaeger may show a trace about 2 s after it took it).
    let mut traces: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((200, body)) = get(
            query,
            &format!("/api/traces?service={SERVICE}&limit=100000"),
            "application/json",
        ) {
            let v: Value = serde_json::from_str(&body).unwrap();
            traces = v["data"].as_array().cloned().unwrap_or_default();
        }
        if traces.len() as u64 >= requests || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        traces.len() as u64,
        requests,
        "traces in Jaeger vs requests made\nCollector:\n{collector_log}\nJaeger:\n{}",
        jaeger.tail()
    );

    let mut f = Findings::default();
    for t in &traces {
        check_trace(t, &mut f);
    }
    assert!(
        f.problems.is_empty(),
        "{} problems:\n{}",
        f.problems.len(),
        f.problems.join("\n")
    );
    // Every route, and failures in every kind of stage the demo fails.
    for route in [
        "POST /api/v1/rag/query",
        "POST /api/v1/documents/upload",
        "GET /api/v1/conversations/{id}",
    ] {
        assert!(
            f.routes.get(route).is_some_and(|n| *n > 0),
            "no trace of {route}: {:?}",
            f.routes
        );
    }
    assert!(
        !f.routes.keys().any(|r| r.contains("/health")),
        "a probe was sampled: {:?}",
        f.routes
    );
    for stage in ["chat", "retrieval", "embeddings", "SELECT"] {
        assert!(
            f.failed_stages.contains(stage),
            "no failed {stage} span: {:?}",
            f.failed_stages
        );
    }
    for peer in ["ollama", "postgresql", "redis", "chroma"] {
        assert!(
            f.edges.contains(&(SERVICE.to_string(), peer.to_string())),
            "no edge to {peer}: {:?}",
            f.edges
        );
    }

    // Jaeger's own dependency graph answers for the same window (its in-memory store links
    // services by parent and child spans only: the edges above are what it stores).
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let (status, deps) = get(
        query,
        &format!("/api/dependencies?endTs={now_ms}&lookback=3600000"),
        "application/json",
    )
    .unwrap();
    assert_eq!(status, 200, "{deps}");
    let deps: Value = serde_json::from_str(&deps).unwrap();
    assert!(deps["errors"].is_null(), "{deps}");

    // Every exemplar leads to its trace.
    let exemplars: BTreeSet<&String> = runs.iter().flat_map(|r| &r.exemplar_traces).collect();
    assert!(
        exemplars.len() >= 10,
        "only {} exemplar traces",
        exemplars.len()
    );
    let ids: BTreeSet<&str> = traces
        .iter()
        .filter_map(|t| t["traceID"].as_str())
        .collect();
    let missing: Vec<&&String> = exemplars
        .iter()
        .filter(|t| !ids.contains(t.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "exemplars whose trace is not in Jaeger: {missing:?}"
    );
    for t in exemplars.iter().take(5) {
        let (status, _) = get(query, &format!("/api/traces/{t}"), "application/json").unwrap();
        assert_eq!(status, 200, "GET /api/traces/{t}");
    }

    // Neither program warned (the deprecated `otlp` alias, a config key, a dropped batch).
    for (name, log) in [
        ("otelcol", collector_log.as_str()),
        ("jaeger", &jaeger.log()),
    ] {
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("\twarn\t") || l.contains("\terror\t") || l.contains("\"level\":\"warn")
            })
            // A Jaeger built as a Go module has no UI assets (the query API is complete).
            .filter(|l| !l.contains("ui assets not embedded"))
            .collect();
        assert!(
            warnings.is_empty(),
            "{name} warned:\n{}",
            warnings.join("\n")
        );
    }
    eprintln!(
        "{requests} requests, {} traces checked, routes {:?}, failed stages {:?}; stack ready in {:.1} s, whole test {:.1} s",
        traces.len(),
        f.routes,
        f.failed_stages,
        ready.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(jaeger);
    let _ = std::fs::remove_dir_all(&dir);
}
