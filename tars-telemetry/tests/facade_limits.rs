//! The `metrics` facade under hostile names: names that sanitize to nothing, names whose
//! exposed forms clash, floods of distinct names, and counters pushed past `u64::MAX`.
//! Every exposition is fed to promtool and both prometheus_client parsers.

mod common;
mod exposition_check;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use exposition_check::{Case, Checkers};
use tars_telemetry::*;

/// Counts the heap bytes the current thread allocated and did not free: the tests of
/// this binary run on parallel threads, and the flood runs on its own.
struct LiveBytes;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + n));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: LiveBytes = LiveBytes;

fn with<R>(t: &Telemetry, f: impl FnOnce() -> R) -> R {
    metrics::with_local_recorder(&t.recorder(), f)
}

fn facade_errors(t: &Telemetry, reason: &str) -> u64 {
    let text = t.render_string(Format::Prometheus);
    let prefix = format!("tars_telemetry_facade_errors_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix}\n{text}"))
        .parse()
        .unwrap()
}

/// Both renders of `t` pass promtool and both prometheus_client parsers.
fn assert_parses(what: &str, t: &Telemetry) {
    let Some(c) = Checkers::find(common::promtool(), common::python_with_prometheus_client())
    else {
        return;
    };
    let failures = c.check_explained(&[Case {
        what: what.into(),
        text: t.render_string(Format::Prometheus),
        openmetrics: t.render_string(Format::OpenMetrics),
    }]);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn names_that_sanitize_to_nothing_or_reserved_are_refused() {
    let t = Telemetry::new();
    with(&t, || {
        metrics::counter!("-total").increment(1);
        metrics::counter!("_total").increment(1);
        metrics::counter!("_").increment(1);
        metrics::counter!("").increment(1);
        metrics::gauge!("__x").set(1.0);
        metrics::histogram!("-").record(1.0);
        // Legal ones beside them still work.
        metrics::gauge!("_").set(2.0);
        metrics::counter!("a").increment(1);
    });
    assert_eq!(facade_errors(&t, "invalid_name"), 6);
    let text = t.render_string(Format::Prometheus);
    assert!(
        !text.contains("# HELP  "),
        "a family with an empty name\n{text}"
    );
    assert!(!text.contains("__total"), "{text}");
    assert!(text.contains("\n_ 2\n"), "{text}");
    assert!(text.contains("\na_total 1\n"), "{text}");
    let om = t.render_string(Format::OpenMetrics);
    assert!(!om.contains("# TYPE  "), "{om}");
    assert_parses("names that sanitize to nothing", &t);
}

#[test]
fn clashing_names_are_refused_and_the_first_family_keeps_its_name() {
    let t = Telemetry::new();
    with(&t, || {
        // Counter `x` is exposed as x_total, and as family x in OpenMetrics.
        metrics::counter!("x").increment(1);
        metrics::gauge!("x").set(5.0);
        metrics::gauge!("x_created").set(5.0);
        // A histogram takes y, y_bucket, y_count, y_sum and y_created.
        metrics::histogram!("y").record(0.5);
        for n in ["y_count", "y_bucket", "y_sum", "y_created"] {
            metrics::gauge!(n).set(1.0);
        }
        // The other way round: the gauge first, then the histogram is refused.
        metrics::gauge!("z_sum").set(1.0);
        metrics::histogram!("z").record(1.0);
        // A facade gauge named like a catalog counter's OpenMetrics family.
        metrics::gauge!("tars_rag_queries").set(7.0);
        // The exact name of a catalog counter, with another type.
        metrics::gauge!("tars_rag_queries_total").set(7.0);
    });
    assert_eq!(facade_errors(&t, "name_clash"), 8);
    assert_eq!(facade_errors(&t, "type_conflict"), 1);
    let text = t.render_string(Format::Prometheus);
    assert!(text.contains("\nx_total 1\n"), "{text}");
    assert!(text.contains("\ny_count 1\n"), "{text}");
    assert!(text.contains("\nz_sum 1\n"), "{text}");
    for gone in [
        "\nx 5",
        "x_created",
        "y_created",
        "\ny_sum 1\n",
        "z_bucket",
        "tars_rag_queries 7",
    ] {
        assert!(!text.contains(gone), "{gone:?} exposed\n{text}");
    }
    assert_parses("clashing names", &t);

    // A direct registration is refused the same way, with a typed error.
    let err = t
        .registry()
        .register_desc(FamilyDesc {
            name: "y_bucket".into(),
            help: "h".into(),
            kind: MetricKind::Gauge,
            unit: None,
            labels: vec![],
            buckets: std::sync::Arc::from([]),
            native: None,
        })
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("y_bucket"), "{err}");
}

#[test]
fn facade_counters_saturate_instead_of_wrapping() {
    let t = Telemetry::new();
    with(&t, || {
        let c = metrics::counter!("big");
        c.increment(u64::MAX - 1);
        c.increment(5);
        c.increment(u64::MAX);
        metrics::counter!("big").increment(1);
    });
    let text = t.render_string(Format::Prometheus);
    assert!(
        text.contains(&format!("\nbig_total {}\n", u64::MAX)),
        "{text}"
    );
}

/// A name flood: every name past the family budget is refused and counted, and memory
/// stays bounded by the budget, not by the number of names.
#[test]
fn a_flood_of_distinct_names_is_bounded_by_the_family_budget() {
    const NAMES: usize = 20_000;
    const DESCRIBED: usize = 200_000;
    let t = Telemetry::new();
    let catalog_families = t.registry().families().len() - 2;
    let budget = t.registry().family_budget();
    assert_eq!(budget, 2000, "the documented default");
    let recorder = t.recorder();
    // Warm up what the first refusal allocates once (the warning set).
    metrics::with_local_recorder(&recorder, || metrics::counter!("-").increment(1));

    let before = live();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..NAMES {
            let name = format!("flood_{i}");
            metrics::counter!(name, "k" => "v").increment(1);
        }
        for i in 0..DESCRIBED {
            metrics::describe_counter!(format!("described_{i}"), "A description.");
        }
    });
    let grown = live() - before;
    eprintln!("{grown} bytes live after the flood");

    let created = budget - catalog_families;
    assert_eq!(t.registry().families().len() - 2, budget);
    // Each name past the budget is refused once per call, as is each description past it.
    assert_eq!(
        facade_errors(&t, "family_budget") as usize,
        (NAMES - created) + (DESCRIBED - budget)
    );
    // What 2000 small families cost, with room to spare; unbounded, 20,000 names and
    // 200,000 descriptions took tens of MB.
    assert!(
        grown < 8 << 20,
        "{grown} bytes live after the flood (budget {budget})"
    );
    // New names get a typed error from the registry too.
    let err = t
        .registry()
        .register_desc(FamilyDesc {
            name: "one_more".into(),
            help: "h".into(),
            kind: MetricKind::Gauge,
            unit: None,
            labels: vec![],
            buckets: std::sync::Arc::from([]),
            native: None,
        })
        .unwrap_err();
    assert!(matches!(err, Error::TooManyFamilies { .. }), "{err}");
}

#[test]
fn a_small_family_budget_applies_to_raw_registries() {
    let registry = Registry::new(RegistryConfig {
        family_budget: 3,
        ..RegistryConfig::default()
    });
    for name in ["a", "b", "c"] {
        registry.register_desc(gauge(name)).unwrap();
    }
    // An existing family is still returned; only new ones are refused.
    registry.register_desc(gauge("a")).unwrap();
    let err = registry.register_desc(gauge("d")).unwrap_err();
    assert!(err.to_string().contains("budget of 3 families"), "{err}");
}

fn gauge(name: &str) -> FamilyDesc {
    FamilyDesc {
        name: name.to_string().into(),
        help: "h".into(),
        kind: MetricKind::Gauge,
        unit: None,
        labels: vec![],
        buckets: std::sync::Arc::from([]),
        native: None,
    }
}

#[test]
fn every_reason_starts_at_zero_once_a_recorder_is_built() {
    let t = Telemetry::new();
    let _recorder = t.recorder();
    for reason in [
        "invalid_name",
        "name_sanitized",
        "invalid_label",
        "type_conflict",
        "label_mismatch",
        "name_clash",
        "family_budget",
    ] {
        assert_eq!(facade_errors(&t, reason), 0, "{reason}");
    }
}
