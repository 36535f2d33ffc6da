//! Probes against real servers on 127.0.0.1, started by the tests: redis-server,
//! PostgreSQL (initdb + postgres), and small HTTP servers answering ChromaDB's and
//! Ollama's documented endpoints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tars_agent::probe::chromadb::ChromaProbe;
use tars_agent::probe::ollama::OllamaProbe;
use tars_agent::probe::postgresql::PostgresProbe;
use tars_agent::probe::redis::RedisProbe;
use tars_agent::probe::{Probe, ProbeCollector};
use tars_agent::{Agent, Config};

const TIMEOUT: Duration = Duration::from_secs(2);

struct Server(Child, Option<PathBuf>);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(d) = &self.1 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

use tars_test_support::free_port;

fn find(bin: &str, extra: &[&str]) -> Option<PathBuf> {
    tars_test_support::tool(bin, extra)
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts the exposition says the probe of `service` at `target` is `up` (1 or 0).
fn assert_probe(text: &str, service: &str, target: &str, up: u8) {
    let line = format!("tars_probe_up{{service=\"{service}\",target=\"{target}\"}} {up}\n");
    assert!(text.contains(&line), "missing {line}{text}");
}

fn probe_once(probe: Box<dyn Probe>) -> String {
    let mut a = Agent::new(&Config::default());
    a.add(Box::new(ProbeCollector::new(probe, TIMEOUT)));
    a.collect_once();
    a.render()
}

#[test]
fn redis_up_with_its_memory_then_down() {
    let Some(redis) = find("redis-server", &[]) else {
        return;
    };
    let port = free_port();
    let server = Server(
        Command::new(redis)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--maxmemory", "64mb", "--requirepass", "s3cret"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        None,
    );
    wait_for_port(port);
    let addr = format!("127.0.0.1:{port}");
    let text = probe_once(Box::new(RedisProbe::new(&addr, Some("s3cret".into()))));
    assert_probe(&text, "redis", &addr, 1);
    assert!(
        text.contains("tars_redis_memory_max_bytes 67108864"),
        "{text}"
    );
    let used: f64 = text
        .lines()
        .find(|l| l.starts_with("tars_redis_memory_usage_bytes "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(used > 100_000.0 && used < 67108864.0, "{used}");

    // A wrong password is a failed probe, not a crash.
    let text = probe_once(Box::new(RedisProbe::new(&addr, Some("wrong".into()))));
    assert_probe(&text, "redis", &addr, 0);

    drop(server);
    let text = probe_once(Box::new(RedisProbe::new(&addr, Some("s3cret".into()))));
    assert_probe(&text, "redis", &addr, 0);
    assert!(
        !text.contains("tars_redis_memory_usage_bytes "),
        "no stale memory after the server went"
    );
}

/// Runs a command as the postgres user when we are root (initdb refuses root).
fn as_postgres(bin: &Path, args: &[&str]) -> Command {
    let root = std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin).args(args);
        c
    } else {
        let mut c = Command::new(bin);
        c.args(args);
        c
    }
}

#[test]
fn postgresql_connections_and_lag_then_down() {
    let extra = [
        "/usr/lib/postgresql/17/bin",
        "/usr/lib/postgresql/16/bin",
        "/usr/lib/postgresql/15/bin",
    ];
    let Some(initdb) = find("initdb", &extra) else {
        return;
    };
    let postgres = initdb.with_file_name("postgres");
    let dir = std::env::temp_dir().join(format!("tars-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .unwrap()
        .stdout
        .starts_with(b"0");
    if root {
        assert!(
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success()
        );
    }
    let data = dir.join("data");
    let out = as_postgres(
        &initdb,
        &[
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "tars",
            "--no-sync",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let server = Server(
        as_postgres(
            &postgres,
            &[
                "-D",
                data.to_str().unwrap(),
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
                dir.to_str().unwrap(),
                "-c",
                "fsync=off",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
        Some(dir.clone()),
    );
    wait_for_port(port);
    let url = format!("postgresql://tars:unused@127.0.0.1:{port}/postgres");
    let target = format!("postgresql://127.0.0.1:{port}/postgres");
    // The server accepts connections a moment after it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = probe_once(Box::new(PostgresProbe::new(&url)));
        if text.contains("tars_postgresql_connections{") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_probe(&text, "postgresql", &target, 1);
    assert!(
        !text.contains("unused"),
        "the password must not reach a label"
    );
    let conns: f64 = text
        .lines()
        .find(|l| l.starts_with("tars_postgresql_connections{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(conns >= 1.0, "{conns}");
    assert!(
        text.contains(&format!(
            "tars_postgresql_replication_lag_seconds{{target=\"{target}\"}} 0"
        )),
        "a primary has no lag"
    );

    drop(server);
    let text = probe_once(Box::new(PostgresProbe::new(&url)));
    assert_probe(&text, "postgresql", &target, 0);
}

/// A one-route HTTP server standing in for ChromaDB or Ollama; answers `body` on `path`
/// and 404 elsewhere, for at most `max` connections.
fn http_stub(
    path: &'static str,
    body: &'static str,
    max: usize,
) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let _ = r.read_line(&mut line);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let (status, body) = if line.split(' ').nth(1) == Some(path) {
                ("200 OK", body)
            } else {
                ("404 Not Found", "{}")
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, handle)
}

#[test]
fn chromadb_heartbeat() {
    let (base, h) = http_stub(
        "/api/v2/heartbeat",
        r#"{"nanosecond heartbeat": 1732700000000000000}"#,
        1,
    );
    let text = probe_once(Box::new(ChromaProbe::new(&base)));
    assert_probe(&text, "chromadb", &base, 1);
    h.join().unwrap();
    // An old server with only v1.
    let (base, h) = http_stub("/api/v1/heartbeat", r#"{"nanosecond heartbeat": 1}"#, 2);
    let text = probe_once(Box::new(ChromaProbe::new(&base)));
    assert_probe(&text, "chromadb", &base, 1);
    h.join().unwrap();
    // Something else answering on the port.
    let (base, h) = http_stub("/api/v2/heartbeat", r#"{"status": "ok"}"#, 1);
    let text = probe_once(Box::new(ChromaProbe::new(&base)));
    assert_probe(&text, "chromadb", &base, 0);
    h.join().unwrap();
}

#[test]
fn ollama_models() {
    let tags = r#"{"models":[{"name":"llama3:8b","size":4661224676},{"name":"nomic-embed-text:latest","size":274302450}]}"#;
    let (base, h) = http_stub("/api/tags", tags, 1);
    let text = probe_once(Box::new(OllamaProbe::new(&base)));
    assert_probe(&text, "ollama", &base, 1);
    assert!(text.contains(&format!("tars_ollama_models{{target=\"{base}\"}} 2")));
    h.join().unwrap();
    // Nothing listens there.
    let base = format!("http://127.0.0.1:{}", free_port());
    let text = probe_once(Box::new(OllamaProbe::new(&base)));
    assert_probe(&text, "ollama", &base, 0);
}

/// A deadline short enough to keep the hostile-peer tests quick.
const SHORT: Duration = Duration::from_millis(300);
/// What "does not hang" means below: far above the deadline, far below a stuck probe.
const BOUND: Duration = Duration::from_secs(3);

/// A peer on 127.0.0.1 that accepts connections and runs `serve` on each, for at most
/// `max` connections and 10 s; returns its address.
fn hostile_peer(
    max: usize,
    serve: impl Fn(TcpStream) + Send + Sync + 'static,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < max && Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => {
                    served += 1;
                    s.set_nonblocking(false).unwrap();
                    let serve = serve.clone();
                    std::thread::spawn(move || serve(s));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    addr
}

/// Holds the connection open without a word, until the peer gives up (or 10 s).
fn never_answer(s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1024];
    while matches!((&s).read(&mut buf), Ok(n) if n > 0) {}
}

/// Runs one check through a collector with the short deadline, asserting it ends in
/// time and reports the service down.
fn down_within_the_deadline(probe: Box<dyn Probe>, service: &str, target: &str) {
    let (service, target) = (service.to_string(), target.to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let mut a = Agent::new(&Config::default());
        a.add(Box::new(ProbeCollector::new(probe, SHORT)));
        a.collect_once();
        let _ = tx.send(a.render());
    });
    let text = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the probe is stuck");
    assert!(
        started.elapsed() < BOUND,
        "took {:?} with a {SHORT:?} deadline",
        started.elapsed()
    );
    assert_probe(&text, &service, &target, 0);
    assert!(text.contains("tars_agent_collector_up{collector=\""));
}

#[test]
fn postgresql_that_accepts_and_never_answers() {
    let addr = hostile_peer(4, never_answer);
    let url = format!("postgresql://tars@{addr}/postgres");
    let target = format!("postgresql://{addr}/postgres");
    down_within_the_deadline(Box::new(PostgresProbe::new(&url)), "postgresql", &target);
}

#[test]
fn postgresql_announcing_a_huge_message() {
    // Reads the startup message, then announces an error message of 2 GB.
    let addr = hostile_peer(1, |mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"E\x7f\xff\xff\xff");
        never_answer(s);
    });
    let err = PostgresProbe::new(&format!("postgresql://tars@{addr}/postgres"))
        .check(SHORT)
        .unwrap_err();
    assert!(err.contains("over the 1048576 byte limit"), "{err}");
}

#[test]
fn redis_that_trickles_one_byte_per_100ms() {
    let addr = hostile_peer(2, |mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        // A reply line that never ends, for at most 10 s.
        for _ in 0..100 {
            if s.write_all(b"+").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let target = addr.to_string();
    down_within_the_deadline(Box::new(RedisProbe::new(&target, None)), "redis", &target);
}

#[test]
fn redis_announcing_a_huge_bulk_reply() {
    let addr = hostile_peer(2, |mut s| {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"$100000000000\r\n");
        never_answer(s);
    });
    let target = addr.to_string();
    let err = RedisProbe::new(&target, None).check(SHORT).unwrap_err();
    assert!(err.contains("exceeds the 1048576 byte limit"), "{err}");
    down_within_the_deadline(Box::new(RedisProbe::new(&target, None)), "redis", &target);
}

#[test]
fn http_probes_that_never_answer_share_one_deadline() {
    // ChromaDB tries two endpoints: both within the one deadline.
    let addr = hostile_peer(4, never_answer);
    let base = format!("http://{addr}");
    down_within_the_deadline(Box::new(ChromaProbe::new(&base)), "chromadb", &base);
    down_within_the_deadline(Box::new(OllamaProbe::new(&base)), "ollama", &base);
}
