//! Checks many expositions with the real parsers in few process starts: promtool (text
//! 0.0.4) once per exposition, since it reads only stdin, and prometheus_client's text and
//! OpenMetrics parsers for all of them in one Python run.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The checkers found on this machine.
pub struct Checkers {
    pub promtool: PathBuf,
    pub python: PathBuf,
}

/// One exposition in both formats, and what it was made from (for failure messages).
pub struct Case {
    pub what: String,
    pub text: String,
    pub openmetrics: String,
}

/// One case a checker refused.
#[derive(Debug)]
pub struct Failure {
    /// Index of the case.
    pub case: usize,
    /// `promtool`, `text` or `openmetrics` (prometheus_client's parsers).
    pub checker: String,
    pub message: String,
}

impl Failure {
    /// The failure with its case's operations and the body that was refused.
    pub fn explain(&self, cases: &[Case]) -> String {
        let c = &cases[self.case];
        let body = if self.checker == "openmetrics" {
            &c.openmetrics
        } else {
            &c.text
        };
        format!("{}: {}: {}\n{body}", c.what, self.checker, self.message)
    }
}

/// Findings of promtool's linter that are about naming style, which the library leaves
/// to the caller: a name given through the facade is exposed as given, once made legal
/// (a gauge may be called `x_total`, a label `camelCase`).
const STYLE_FINDINGS: &[&str] = &[
    "metric names should be written in 'snake_case' not 'camelCase'",
    "label names should be written in 'snake_case' not 'camelCase'",
    "metric names should not contain ':'",
    "metric name should not include type",
    "use base unit",
    "metric names should not contain abbreviated units",
    // `non-counter metrics should not have "_total" suffix` and the like.
    "\" suffix",
];

const PARSE_ALL: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
from prometheus_client.parser import text_string_to_metric_families as prom
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    for fmt, parse, ext in (("text", prom, "prom"), ("openmetrics", om, "om")):
        with open(f"{d}/{i}.{ext}", encoding="utf-8") as f:
            body = f.read()
        try:
            for fam in parse(body):
                list(fam.samples)
        except Exception as e:
            print(f"{i}\t{fmt}\t{type(e).__name__}: {e}".replace("\n", "\\n"))
"#;

impl Checkers {
    /// The checkers, or None (after a note) when one is missing outside CI.
    pub fn find(promtool: Option<PathBuf>, python: Option<PathBuf>) -> Option<Checkers> {
        Some(Checkers {
            promtool: promtool?,
            python: python?,
        })
    }

    /// promtool's verdict on one text exposition: Err for a parse error or a finding
    /// other than naming style.
    pub fn promtool(&self, text: &str) -> Result<(), String> {
        let (code, said) = tars_test_support::promtool_check_metrics(&self.promtool, text)
            .map_err(|e| format!("promtool: {e}"))?;
        match code {
            Some(0) => Ok(()),
            // 3: lint findings only, one per line as `name: finding`.
            Some(3) => {
                let bad: Vec<&str> = said
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .filter(|l| !STYLE_FINDINGS.iter().any(|s| l.contains(s)))
                    .collect();
                if bad.is_empty() {
                    Ok(())
                } else {
                    Err(format!("promtool findings: {}", bad.join("; ")))
                }
            }
            _ => Err(format!("promtool rejected it: {said}")),
        }
    }

    /// Runs every case through promtool and both prometheus_client parsers.
    pub fn check(&self, cases: &[Case]) -> Vec<Failure> {
        let mut failures = Vec::new();
        for (i, c) in cases.iter().enumerate() {
            if let Err(message) = self.promtool(&c.text) {
                failures.push(Failure {
                    case: i,
                    checker: "promtool".into(),
                    message,
                });
            }
        }
        let dir = scratch_dir();
        for (i, c) in cases.iter().enumerate() {
            std::fs::write(dir.join(format!("{i}.prom")), &c.text).unwrap();
            std::fs::write(dir.join(format!("{i}.om")), &c.openmetrics).unwrap();
        }
        let out = Command::new(&self.python)
            .args(["-c", PARSE_ALL])
            .arg(&dir)
            .arg(cases.len().to_string())
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "python: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut it = line.splitn(3, '\t');
            let (i, fmt, msg) = (it.next(), it.next(), it.next());
            failures.push(Failure {
                case: i.and_then(|i| i.parse().ok()).unwrap(),
                checker: fmt.unwrap_or("?").into(),
                message: msg.unwrap_or("").into(),
            });
        }
        failures
    }

    /// Like [`Checkers::check`], as one message per failure.
    pub fn check_explained(&self, cases: &[Case]) -> Vec<String> {
        self.check(cases).iter().map(|f| f.explain(cases)).collect()
    }
}

fn scratch_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(&std::env::temp_dir()).join(format!(
        "tars-expo-check-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
