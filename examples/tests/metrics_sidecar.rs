//! Two `rag_demo` workers sharing a multi-process directory, served merged by the
//! `metrics_sidecar` example: the sidecar's /metrics holds both workers' counts, and they
//! stay after the workers exit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use tars_telemetry::Format;
use tars_telemetry::multiproc::{MULTIPROC_DIR_ENV, MultiprocessDir};

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    body.to_string()
}

/// The sum of every sample of `name` (any labels).
fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

#[test]
fn a_sidecar_serves_the_workers_merged_counts() {
    let dir = std::env::temp_dir().join(format!("tars-sidecar-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sidecar_bin = tars_test_support::example_binary("tars-examples", "metrics_sidecar");
    let demo = tars_test_support::example_binary("tars-examples", "rag_demo");
    let mut sidecar = Command::new(sidecar_bin)
        .args(["--listen", "127.0.0.1:0"])
        .env(MULTIPROC_DIR_ENV, &dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sidecar.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("{\"listening\":\"")
        .and_then(|s| s.strip_suffix("\"}"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&demo)
                .args([
                    "--listen",
                    &format!("127.0.0.1:{}", tars_test_support::free_port()),
                ])
                .args(["--rate", "100", "--duration", "1.5"])
                .env(MULTIPROC_DIR_ENV, &dir)
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let during = scrape(&addr);
    let (files, live) = MultiprocessDir::new(&dir).workers().unwrap();
    assert_eq!(
        (files, live),
        (3, 3),
        "the sidecar and two workers, all live"
    );
    // Each worker says how many requests it served when it stops.
    let mut served = 0.0;
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let n: f64 = err
            .split("done after ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        served += n;
    }
    let after = scrape(&addr);
    assert_eq!(
        total(&after, "tars_http_requests_total"),
        served,
        "every request of both workers, exactly"
    );
    let queries = total(&after, "tars_rag_queries_total");
    assert!(
        queries > total(&during, "tars_rag_queries_total"),
        "counts grew while the workers ran"
    );
    // Both workers' queries, merged: the counter and the histogram's count agree, and a
    // second scrape (the workers folded into the archive by now) shows the same totals.
    assert!(
        queries >= 100.0,
        "two workers at 100/s for 1.5 s: {queries}"
    );
    assert_eq!(
        total(&after, "tars_rag_query_duration_seconds_count"),
        queries
    );
    let again = scrape(&addr);
    assert_eq!(total(&again, "tars_rag_queries_total"), queries);
    let direct = MultiprocessDir::new(&dir)
        .render_string(Format::Prometheus)
        .unwrap();
    assert_eq!(total(&direct, "tars_rag_queries_total"), queries);
    assert_eq!(
        MultiprocessDir::new(&dir).workers().unwrap(),
        (1, 1),
        "only the sidecar's file left beside the archive"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(sidecar.id() as i32, libc::SIGTERM) };
    assert!(sidecar.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
