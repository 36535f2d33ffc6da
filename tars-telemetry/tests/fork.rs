//! A real `fork()`: the child records and renders only its own values, through handles
//! resolved before the fork, and exports its spans through tracing built anew; the parent
//! keeps its own values and its tracing.
#![cfg(all(feature = "otel", target_os = "linux"))]

mod common;
mod trace_support;

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::time::Duration;

use tars_telemetry::trace::Protocol;
use tars_telemetry::*;
use trace_support::{Receiver, hex, one};

fn count(t: &Telemetry, line: &str) -> u64 {
    t.render_string(Format::Prometheus)
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .map_or(0, |v| v.trim().parse().unwrap())
}

const QUERIES: &str = "tars_rag_queries_total{status=\"success\"} ";

/// The child's side: returns the trace id it exported, or why it failed.
fn child(t: &Telemetry, llama: &LlmModel) -> Result<String, String> {
    let after = t.after_fork_in_child();
    if !after.locks_released {
        return Err("before_fork's locks were not released".into());
    }
    let tracing = after
        .tracing
        .ok_or("no tracing in the child")?
        .map_err(|e| e.to_string())?;
    if count(t, QUERIES) != 0 {
        return Err(format!(
            "the parent's queries leaked in: {}",
            count(t, QUERIES)
        ));
    }
    for _ in 0..2 {
        let q = t.rag().start_query_with(Parent::Root);
        llama.start_with(q.parent()).succeed();
        q.succeed();
    }
    // A new series resolves (the registry's locks are free).
    t.llm_model("child-only-model").map_err(|e| e.to_string())?;
    let q = t.rag().start_query_with(Parent::Root);
    let trace = hex(&q.span_context().ok_or("no span in the child")?.trace_id);
    q.succeed();
    if count(t, QUERIES) != 3 {
        return Err(format!("child counted {}", count(t, QUERIES)));
    }
    if llama.tokens_generated() != 0 {
        return Err("the parent's tokens leaked in".into());
    }
    tracing.force_flush().map_err(|e| e.to_string())?;
    tracing
        .shutdown(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(trace)
}

#[test]
fn a_forked_child_starts_from_zero_and_exports_its_own_spans() {
    let Some(r) = Receiver::start() else { return };
    let t = Telemetry::new();
    let tracing = t
        .install_tracing(
            r.config("tars-rag-service", Protocol::Grpc)
                .with_schedule_delay(Duration::from_millis(50)),
        )
        .unwrap();
    let llama = t.llm_model("llama3").unwrap();
    // A server the parent started (what a preloading parent should not do): its handle
    // in the child must not wait on the parent's thread when dropped.
    let server = t.serve("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        let q = t.rag().start_query();
        let mut call = llama.start();
        call.add_output_tokens(10);
        call.succeed();
        q.succeed();
    }
    t.redis().set_memory(100, 1000);

    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    t.before_fork();
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The child: report through the pipe, then leave without running the harness.
        unsafe { libc::close(fds[0]) };
        let mut w = unsafe { std::fs::File::from_raw_fd(fds[1]) };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let r = child(&t, &llama);
            drop(server); // returns at once: the thread is the parent's
            r
        }))
        .unwrap_or_else(|_| Err("panicked".into()));
        let (code, msg) = match result {
            Ok(trace) => (0, trace),
            Err(e) => (1, e),
        };
        let _ = w.write_all(msg.as_bytes());
        drop(w);
        unsafe { libc::_exit(code) };
    }
    t.after_fork_in_parent();
    unsafe { libc::close(fds[1]) };
    let mut msg = String::new();
    unsafe { std::fs::File::from_raw_fd(fds[0]) }
        .read_to_string(&mut msg)
        .unwrap();
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {msg}"
    );

    // The parent's server still answers.
    let mut body = String::new();
    let mut conn = std::net::TcpStream::connect(server.local_addr()).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    conn.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");

    // The parent kept its own values and still records and resolves.
    assert_eq!(count(&t, QUERIES), 5);
    assert_eq!(llama.tokens_generated(), 50);
    assert!(
        t.render_string(Format::Prometheus)
            .contains("tars_redis_memory_usage_bytes 100")
    );
    t.rag().start_query().succeed();
    assert_eq!(count(&t, QUERIES), 6);
    assert!(
        !t.render_string(Format::Prometheus)
            .contains("child-only-model")
    );

    // The child's spans arrived, from its own export thread.
    let trace = msg;
    let spans = r.wait_for(Duration::from_secs(10), |s| {
        s.iter().any(|s| s.trace_id() == trace)
    });
    one(&spans, &trace, "rag.query");
    tracing.force_flush().unwrap();
    let _ = tracing.shutdown(Duration::from_secs(2));
}
