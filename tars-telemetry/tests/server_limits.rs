#![cfg(feature = "server")]
//! The /metrics endpoint against hostile peers on 127.0.0.1: slowloris and idle
//! connection floods, peers that never finish a request, and a process out of file
//! descriptors. Every flood is bounded in count and time.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tars_telemetry::*;

/// A bound that proves "does not hang", far above what a scrape takes.
const ANSWERS_WITHIN: Duration = Duration::from_secs(5);

fn server(options: ServerOptions) -> (Telemetry, MetricsServer) {
    let t = Telemetry::new();
    t.rag()
        .record_query(Duration::from_millis(80), Outcome::Success, None);
    let s = MetricsServer::start_with_options(
        "127.0.0.1:0",
        t.registry().clone(),
        Arc::new(AtomicBool::new(true)),
        options,
    )
    .unwrap();
    (t, s)
}

/// One request on a fresh connection; returns the response head and how long it took.
fn request(addr: SocketAddr, method: &str, path: &str) -> (String, Duration) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(ANSWERS_WITHIN * 2)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let head = raw.split("\r\n\r\n").next().unwrap_or("").to_string();
    (head, start.elapsed())
}

fn scrape_answers(addr: SocketAddr, during: &str) {
    let (head, took) = request(addr, "GET", "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{during}: {head}");
    assert!(took < ANSWERS_WITHIN, "{during}: the scrape took {took:?}");
}

/// Whether the server has closed this connection (EOF or reset), without blocking.
fn closed_by_server(mut s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A response (a 408 or the like) before the close: read on.
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Opens `n` connections that send nothing, and `n` that send half a request.
fn flood(addr: SocketAddr, n: usize) -> (Vec<TcpStream>, Vec<TcpStream>) {
    let idle: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let slow = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: slow\r\n")
                .unwrap();
            s
        })
        .collect();
    (idle, slow)
}

/// Sends one more header byte on every slowloris connection still open.
fn trickle(slow: &mut [TcpStream]) {
    for s in slow.iter_mut() {
        let _ = s.write_all(b"X");
    }
}

#[test]
fn a_scrape_answers_during_a_slowloris_and_idle_flood_with_the_defaults() {
    let (_t, server) = server(ServerOptions::default());
    let addr = server.local_addr();
    // 300 connections, past the default cap of 128 and within a default fd limit of 1024.
    let (idle, mut slow) = flood(addr, 150);
    for round in 0..3 {
        trickle(&mut slow);
        scrape_answers(addr, &format!("flood round {round}"));
    }
    // The cap holds: connections past it replaced the oldest ones that never sent a
    // complete request.
    let deadline = Instant::now() + ANSWERS_WITHIN;
    while server.open_connections() > DEFAULT_MAX_CONNECTIONS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        server.open_connections() <= DEFAULT_MAX_CONNECTIONS,
        "{} open",
        server.open_connections()
    );
    let closed = idle
        .iter()
        .chain(slow.iter())
        .filter(|s| closed_by_server(s))
        .count();
    assert!(
        closed >= 300 - DEFAULT_MAX_CONNECTIONS,
        "only {closed} closed"
    );
    server.shutdown();
}

#[test]
fn slow_and_idle_peers_are_closed_at_their_deadlines() {
    let options = ServerOptions::default()
        .header_read_timeout(Duration::from_millis(500))
        .idle_timeout(Duration::from_secs(3));
    let (_t, server) = server(options);
    let addr = server.local_addr();
    let (idle, mut slow) = flood(addr, 50);

    // A well-behaved keep-alive client: one request, then idle.
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: ok\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(ANSWERS_WITHIN)).unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let served_at = Instant::now();

    // Trickle a byte every 100 ms, for at most 3 s, until every flood connection is
    // closed: a slowloris peer keeps sending and is closed all the same.
    let start = Instant::now();
    let mut open = usize::MAX;
    while start.elapsed() < Duration::from_secs(3) {
        trickle(&mut slow);
        open = idle
            .iter()
            .chain(slow.iter())
            .filter(|s| !closed_by_server(s))
            .count();
        if open == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(open, 0, "flood connections still open after 3 s");

    // The keep-alive client is idle, not slow: the header deadline does not apply to it
    // (it has 3 s, and the check comes before that).
    if served_at.elapsed() < Duration::from_millis(2500) {
        assert!(!closed_by_server(&kept), "idle keep-alive closed early");
    }
    // And it goes at its idle deadline.
    let deadline = served_at + Duration::from_secs(3) + ANSWERS_WITHIN;
    while !closed_by_server(&kept) {
        assert!(Instant::now() < deadline, "idle keep-alive never closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    scrape_answers(addr, "after the flood");
}

#[test]
fn a_keep_alive_scraper_is_not_evicted_by_a_flood() {
    let options = ServerOptions::default().max_connections(8);
    let (_t, server) = server(options);
    let addr = server.local_addr();
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.set_read_timeout(Some(ANSWERS_WITHIN)).unwrap();
    let get = |s: &mut TcpStream| {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: ok\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(get(&mut kept).starts_with("HTTP/1.1 200"));
    let (_idle, _slow) = flood(addr, 20);
    scrape_answers(addr, "flood past a cap of 8");
    // The flood's connections never sent a request, so they went first.
    assert!(get(&mut kept).starts_with("HTTP/1.1 200"));
}

#[test]
fn other_methods_get_405_with_allow() {
    let (_t, server) = server(ServerOptions::default());
    for method in ["POST", "PUT", "DELETE"] {
        let (head, _) = request(server.local_addr(), method, "/metrics");
        assert!(head.starts_with("HTTP/1.1 405"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("\r\nallow: get, head"),
            "{head}"
        );
    }
}

#[test]
fn bad_options_are_refused() {
    let t = Telemetry::new();
    for options in [
        ServerOptions::default().max_connections(0),
        ServerOptions::default().header_read_timeout(Duration::ZERO),
        ServerOptions::default().idle_timeout(Duration::ZERO),
    ] {
        let err = MetricsServer::start_with_options(
            "127.0.0.1:0",
            t.registry().clone(),
            Arc::new(AtomicBool::new(true)),
            options,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidSetting { .. }), "{err}");
        assert!(err.to_string().contains("must be"), "{err}");
    }
}

/// CPU time (user + system) of this process, in clock ticks, read from `/proc/self/stat`
/// opened beforehand (no descriptor is left to open it when it is needed).
fn cpu_ticks(stat_file: &mut std::fs::File) -> u64 {
    use std::io::Seek;
    stat_file.rewind().unwrap();
    let mut stat = String::new();
    stat_file.read_to_string(&mut stat).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of the file; `after` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

const EMFILE_CHILD: &str = "TARS_TEST_EMFILE_CHILD";

/// Out of file descriptors, accept fails at once with EMFILE for as long as a connection
/// waits; the server backs off instead of spinning, and serves again once fds are free.
/// Runs in a child process with a low fd limit (set by prlimit), so that nothing else in
/// this test binary runs out.
#[test]
fn out_of_file_descriptors_the_accept_loop_backs_off() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        return emfile_child();
    }
    let Some(prlimit) = tars_test_support::tool("prlimit", &[]) else {
        return;
    };
    let out = std::process::Command::new(prlimit)
        .arg("--nofile=64:64")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "out_of_file_descriptors_the_accept_loop_backs_off",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(EMFILE_CHILD, "1")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if said.starts_with("prlimit:") {
        // A sandbox that forbids setting limits; nothing of the server was run.
        tars_test_support::skip_unsupported(&said);
        return;
    }
    assert!(out.status.success(), "{said}");
    assert!(said.contains("emfile child: done"), "{said}");
}

fn emfile_child() {
    let (_t, server) = server(ServerOptions::default().max_connections(1000));
    let addr = server.local_addr();
    let mut stat = std::fs::File::open("/proc/self/stat").unwrap();
    // Connect until the process is out of descriptors.
    let mut clients = Vec::new();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => clients.push(s),
            Err(e) => {
                assert!(clients.len() > 5, "out of fds after {}: {e}", clients.len());
                break;
            }
        }
        assert!(clients.len() < 64, "the fd limit was not applied");
    }
    std::thread::sleep(Duration::from_millis(200));
    // Free one descriptor and take it again with a new connection: that one waits in
    // the backlog while accept has no descriptor to give it.
    clients.remove(0);
    match TcpStream::connect(addr) {
        Ok(s) => clients.push(s),
        Err(e) => panic!("reconnect: {e}"),
    }
    let (before, start) = (cpu_ticks(&mut stat), Instant::now());
    std::thread::sleep(Duration::from_millis(1500));
    let ticks = cpu_ticks(&mut stat) - before;
    let wall_ticks = start.elapsed().as_millis() as u64 / 10;
    // A spinning accept loop burns a whole core (about `wall_ticks`).
    assert!(
        ticks * 4 < wall_ticks,
        "{ticks} ticks of CPU in {wall_ticks} ticks of waiting"
    );
    // Free descriptors (connections still waiting in the backlog take some as the server
    // accepts them): the server serves again.
    clients.truncate(5);
    scrape_answers(addr, "after descriptors were freed");
    println!("emfile child: done ({ticks} CPU ticks in {wall_ticks})");
}
