//! What the workspace's tests share: finding the real external tools they check against
//! (skipped, and recorded as skipped, on a developer's machine that lacks one; required
//! in CI, where `CI` is set and the install scripts have run), free ports on 127.0.0.1,
//! the workspace root, and a real Prometheus server ([`prometheus`]).
//!
//! A skip is written to stderr and appended to the skip log
//! (`$TARS_TEST_SKIPS`, default `target/test-skips.txt`), which `scripts/test.sh` prints
//! in its summary: a skipped test shows there, not only under `--nocapture`.

pub mod metrics_proto;
pub mod prometheus;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root (the folder of the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support sits in the workspace")
        .to_path_buf()
}

/// Where skips are recorded.
pub fn skip_log() -> PathBuf {
    std::env::var_os("TARS_TEST_SKIPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-skips.txt"))
}

/// Whether this run is CI's, where every tool must be present.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Records that the current test is skipped because `what` is missing. In CI it panics
/// instead: CI installs every tool, so a missing one is a failure.
pub fn skip(what: &str) {
    assert!(
        !in_ci(),
        "{what} is required in CI (scripts/install-test-deps.sh installs it)"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown test")
        .to_string();
    let line = format!("{test}: {what} not found (scripts/install-test-deps.sh installs it)");
    eprintln!("skipping {line}");
    record(&line);
}

/// Records that the current test is skipped because this machine cannot do what it
/// needs (a sandbox that forbids setting limits): recorded, in CI too, never a failure.
pub fn skip_unsupported(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("unknown test")
        .to_string();
    let line = format!("{test}: {why}");
    eprintln!("skipping {line}");
    record(&line);
}

fn record(line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skip_log())
    {
        let _ = writeln!(f, "{line}");
    }
}

/// `found`, or a recorded skip (a CI failure) naming `what`.
pub fn require(found: Option<PathBuf>, what: &str) -> Option<PathBuf> {
    if found.is_none() {
        skip(what);
    }
    found
}

/// `bin` on `PATH` or in one of `extra` folders, without requiring it.
pub fn find(bin: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// `bin` on `PATH` or in `extra`, required (see [`require`]).
pub fn tool(bin: &str, extra: &[&str]) -> Option<PathBuf> {
    require(find(bin, extra), bin)
}

/// A Python interpreter that imports every module of `modules`: `$TARS_PYTHON`, the
/// repository's `.venv`, or `python3`; required (see [`require`]).
pub fn python_with(modules: &[&str], what: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("TARS_PYTHON").map(PathBuf::from),
        Some(workspace_root().join(".venv/bin/python")),
        find("python3", &[]),
    ];
    let import = format!("import {}", modules.join(", "));
    let found = candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", &import])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    require(found, what)
}

/// The binary of example `example` of `package`, built for the profile of the running test
/// (`cargo test` of one test target does not build the examples), into the same target
/// directory.
pub fn example_binary(package: &str, example: &str) -> PathBuf {
    // The test runs as <target>/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary under <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("a target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", package, "--example", example])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace_root());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build --example {example} failed");
    profile_dir.join("examples").join(example)
}

/// A port on 127.0.0.1 free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// What `promtool check metrics` says of `text`: its exit status (0 clean, 3 lint findings
/// only, 1 a parse error) and its output, stdout then stderr.
pub fn promtool_check_metrics(
    promtool: &Path,
    text: &str,
) -> std::io::Result<(Option<i32>, String)> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // A write error means promtool stopped reading; its exit status tells why.
    let _ = child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes());
    let out = child.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code(), said))
}

/// A file of `dir` whose name starts with `prefix` (a multi-process worker's file:
/// `worker-`); panics when there is none.
pub fn file_starting_with(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no file starting with {prefix} in {}", dir.display()))
}
