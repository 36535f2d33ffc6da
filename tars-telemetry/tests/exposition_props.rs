//! Property: whatever names, label names and label values arrive through the `metrics`
//! facade and the domain API, both renders parse with promtool and with both of
//! prometheus_client's parsers (text 0.0.4 and OpenMetrics 1.0).
//!
//! Cases are generated up front and checked in one batch (one Python run, one promtool
//! run per case), since starting the checkers per case would take minutes; a failing case
//! is then shrunk case by case. Set TARS_PROPTEST_SEED to replay a run, and
//! TARS_PROPTEST_CASES for more cases.

mod common;
mod exposition_check;

use std::time::Duration;

use exposition_check::{Case, Checkers};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tars_telemetry::*;

/// Names and values: mostly short, from an alphabet rich in what breaks expositions
/// (separators, reserved prefixes and suffixes, quotes, escapes, newlines, NUL, non-ASCII).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z_:0-9 .\\-/\"\\\\\n\t{}=,#é日\u{0}]{0,12}",
        2 => prop::sample::select(vec![
            "", "_", "__", "-", "_total", "total", "x", "x_total", "x_count", "x_sum",
            "x_bucket", "x_created", "x_info", "le", "quantile", "__name__", "tars_rag_queries",
            "tars_rag_queries_total", "tars_rag_query_duration_seconds_count", "9lives",
            "a:b", "job", "instance", "\"", "\\", "\n", "# EOF",
        ])
        .prop_map(String::from),
        1 => any::<String>().prop_map(|s| s.chars().take(24).collect()),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone)]
enum Op {
    Facade {
        kind: Kind,
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
        describe: Option<String>,
    },
    Model(String),
    Route(String),
    ErrorType(String),
    AppInfo(String, String, String),
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        Just(Kind::Counter),
        Just(Kind::Gauge),
        Just(Kind::Histogram)
    ];
    let value = prop_oneof![
        4 => 0.0..1e6f64,
        1 => prop::sample::select(vec![
            0.0, -1.0, 1e300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE,
        ]),
    ];
    prop_oneof![
        6 => (
            kind,
            text(),
            prop::collection::vec((text(), text()), 0..3),
            value,
            prop::option::of(text()),
        )
            .prop_map(|(kind, name, labels, value, describe)| Op::Facade {
                kind,
                name,
                labels,
                value,
                describe,
            }),
        1 => text().prop_map(Op::Model),
        1 => text().prop_map(Op::Route),
        1 => text().prop_map(Op::ErrorType),
        1 => (text(), text(), text()).prop_map(|(a, b, c)| Op::AppInfo(a, b, c)),
    ]
}

fn scenario() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..12)
}

/// Plays the operations on a fresh telemetry and renders it both ways.
fn render(ops: &[Op]) -> Case {
    let t = Telemetry::new();
    let recorder = t.recorder();
    metrics::with_local_recorder(&recorder, || {
        for op in ops {
            match op {
                Op::Facade {
                    kind,
                    name,
                    labels,
                    value,
                    describe,
                } => {
                    let labels: Vec<metrics::Label> = labels
                        .iter()
                        .map(|(k, v)| metrics::Label::new(k.clone(), v.clone()))
                        .collect();
                    let key = metrics::Key::from_parts(name.clone(), labels);
                    let meta = metrics::Metadata::new("props", metrics::Level::INFO, None);
                    metrics::with_recorder(|r| match kind {
                        Kind::Counter => {
                            if let Some(d) = describe {
                                r.describe_counter(name.clone().into(), None, d.clone().into());
                            }
                            let c = r.register_counter(&key, &meta);
                            c.increment(*value as u64);
                            c.absolute(*value as u64);
                        }
                        Kind::Gauge => {
                            if let Some(d) = describe {
                                r.describe_gauge(name.clone().into(), None, d.clone().into());
                            }
                            let g = r.register_gauge(&key, &meta);
                            g.set(*value);
                            g.decrement(1.0);
                        }
                        Kind::Histogram => {
                            if let Some(d) = describe {
                                r.describe_histogram(
                                    name.clone().into(),
                                    Some(metrics::Unit::Seconds),
                                    d.clone().into(),
                                );
                            }
                            r.register_histogram(&key, &meta).record(*value);
                        }
                    });
                }
                Op::Model(m) => {
                    if let Ok(model) = t.llm_model(m) {
                        let mut call = model.start();
                        call.set_output_tokens(3);
                        call.succeed();
                    }
                }
                Op::Route(r) => {
                    t.http()
                        .route(r)
                        .record(Method::Get, 200, Duration::from_millis(5), None);
                }
                Op::ErrorType(e) => t.errors().record(Component::Other, e),
                Op::AppInfo(v, e, m) => {
                    let _ = t.app_info().set(v, e, m);
                }
            }
        }
    });
    Case {
        what: format!("{ops:?}"),
        text: t.render_string(Format::Prometheus),
        openmetrics: t.render_string(Format::OpenMetrics),
    }
}

fn seed() -> u64 {
    std::env::var("TARS_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

#[test]
fn random_names_and_values_always_render_parseable_expositions() {
    let Some(checkers) =
        Checkers::find(common::promtool(), common::python_with_prometheus_client())
    else {
        return;
    };
    let cases: usize = std::env::var("TARS_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    let seed = seed();
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &key),
    );
    let strategy = scenario();
    let mut trees: Vec<_> = (0..cases)
        .map(|_| strategy.new_tree(&mut runner).unwrap())
        .collect();
    let rendered: Vec<Case> = trees.iter().map(|t| render(&t.current())).collect();
    let failures = checkers.check(&rendered);
    if failures.is_empty() {
        return;
    }
    let mut kinds: Vec<String> = failures
        .iter()
        .map(|f| format!("{}: {}", f.checker, f.message))
        .collect();
    kinds.sort();
    kinds.dedup();
    // Shrink the first failing case: simpler operations while it still fails, for at most
    // 100 steps (each starts the checkers).
    let tree = &mut trees[failures[0].case];
    let fails = |ops: &[Op]| !checkers.check(&[render(ops)]).is_empty();
    let mut smallest = tree.current();
    let mut steps = 0;
    if tree.simplify() {
        while steps < 100 {
            steps += 1;
            let candidate = tree.current();
            if fails(&candidate) {
                smallest = candidate;
                if !tree.simplify() {
                    break;
                }
            } else if !tree.complicate() {
                break;
            }
        }
    }
    let minimal = render(&smallest);
    let explained = checkers.check_explained(&[minimal]);
    panic!(
        "{} of {cases} cases failed (TARS_PROPTEST_SEED={seed}):\n{}\n\nthe first, shrunk in {steps} steps:\n{}",
        failures.len(),
        kinds.join("\n"),
        explained
            .first()
            .map_or("(it passes once shrunk)", String::as_str)
    );
}
