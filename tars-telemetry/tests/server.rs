#![cfg(feature = "server")]
//! The built-in /metrics endpoint over real HTTP on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use tars_telemetry::*;

/// One HTTP/1.1 request; returns (status line, headers lowercased, body bytes).
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut body = raw[split + 4..].to_vec();
    let (status, headers) = head.split_once("\r\n").unwrap();
    let headers = headers.to_ascii_lowercase();
    if headers.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status.to_string(), headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap().trim(), 16).unwrap();
        b = &b[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[test]
fn serves_text_openmetrics_and_gzip() {
    let t = Telemetry::new();
    t.rag()
        .record_query(std::time::Duration::from_millis(80), Outcome::Success, None);
    let server = t.serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();

    let (status, headers, body) = get(addr, "/metrics", &[]);
    assert!(status.contains("200"), "{status}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("tars_rag_queries_total{status=\"success\"} 1"));

    let prometheus_accept =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (_, headers, body) = get(addr, "/metrics", &[("Accept", prometheus_accept)]);
    assert!(
        headers.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{headers}"
    );
    assert!(String::from_utf8(body).unwrap().ends_with("# EOF\n"));

    let (_, headers, body) = get(addr, "/metrics", &[("Accept-Encoding", "gzip")]);
    assert!(headers.contains("content-encoding: gzip"), "{headers}");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert!(unzipped.contains("tars_rag_queries_total{status=\"success\"} 1"));

    let (status, _, _) = get(addr, "/health", &[]);
    assert!(status.contains("200"));
    let (status, _, _) = get(addr, "/nope", &[]);
    assert!(status.contains("404"));

    server.shutdown();
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after shutdown"
    );
}

#[test]
fn a_taken_port_is_an_error() {
    let t = Telemetry::new();
    let first = t.serve("127.0.0.1:0").unwrap();
    let err = t.serve(first.local_addr()).unwrap_err();
    assert!(err.to_string().contains("bind"), "{err}");
}
