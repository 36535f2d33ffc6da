//! The `metrics` facade lands in the same registry as the catalog.

use tars_telemetry::*;

fn with<R>(t: &Telemetry, f: impl FnOnce() -> R) -> R {
    metrics::with_local_recorder(&t.recorder(), f)
}

#[test]
fn facade_calls_appear_beside_the_catalog() {
    let t = Telemetry::new();
    with(&t, || {
        metrics::describe_histogram!(
            "job_duration_seconds",
            metrics::Unit::Seconds,
            "How long a job took."
        );
        metrics::counter!("jobs", "queue" => "ingest").increment(3);
        metrics::counter!("jobs", "queue" => "ingest").absolute(10);
        metrics::gauge!("workers").set(4.0);
        metrics::gauge!("workers").decrement(1.0);
        metrics::histogram!("job_duration_seconds").record(0.3);
    });
    let text = t.render_string(Format::Prometheus);
    assert!(text.contains("jobs_total{queue=\"ingest\"} 10"), "{text}");
    assert!(text.contains("workers 3"));
    assert!(text.contains("# HELP job_duration_seconds How long a job took."));
    assert!(text.contains("job_duration_seconds_bucket{le=\"0.5\"} 1"));
}

#[test]
fn facade_calls_on_a_catalog_name_record_into_the_catalog_family() {
    let t = Telemetry::new();
    with(&t, || {
        metrics::histogram!("tars_rag_query_duration_seconds").record(0.2);
        metrics::counter!("tars_rag_queries_total", "status" => "success").increment(1);
    });
    assert_eq!(t.rag().duration().count(), 1);
    assert_eq!(t.rag().query_count(), 1);
}

#[test]
fn label_order_does_not_matter() {
    let t = Telemetry::new();
    with(&t, || {
        metrics::counter!("hits", "a" => "1", "b" => "2").increment(1);
        metrics::counter!("hits", "b" => "2", "a" => "1").increment(1);
    });
    assert!(
        t.render_string(Format::Prometheus)
            .contains("hits_total{a=\"1\",b=\"2\"} 2")
    );
}

#[test]
fn bad_input_yields_errors_not_panics() {
    let t = Telemetry::new();
    with(&t, || {
        // A name that must be rewritten.
        metrics::counter!("http.server.errors").increment(1);
        // A type conflict with a catalog family.
        metrics::gauge!("tars_rag_query_duration_seconds").set(1.0);
        // A label set that disagrees with the family's.
        metrics::counter!("tars_rag_queries_total", "outcome" => "ok").increment(1);
        // Reserved label names.
        metrics::counter!("x", "__name__" => "y").increment(1);
        metrics::histogram!("h", "le" => "1").record(1.0);
        // NaN into a facade histogram and gauge.
        metrics::histogram!("latency").record(f64::NAN);
        metrics::gauge!("level").set(f64::NAN);
    });
    let text = t.render_string(Format::Prometheus);
    assert!(text.contains("http_server_errors_total 1"), "{text}");
    for (reason, n) in [
        ("name_sanitized", 1),
        ("type_conflict", 1),
        ("label_mismatch", 1),
        ("invalid_label", 2),
    ] {
        let line = format!("tars_telemetry_facade_errors_total{{reason=\"{reason}\"}} {n}");
        assert!(text.contains(&line), "missing {line}\n{text}");
    }
    assert_eq!(t.rag().query_count(), 0);
    assert!(text.contains("tars_telemetry_invalid_values_total{family=\"latency\"} 1"));
    assert!(text.contains("tars_telemetry_invalid_values_total{family=\"level\"} 1"));
}

#[test]
fn configured_buckets_apply_by_prefix() {
    let t = Telemetry::builder()
        .facade_buckets("job_", &[1.0, 60.0])
        .unwrap()
        .build()
        .unwrap();
    with(&t, || metrics::histogram!("job_wait_seconds").record(30.0));
    let text = t.render_string(Format::Prometheus);
    assert!(
        text.contains("job_wait_seconds_bucket{le=\"60.0\"} 1"),
        "{text}"
    );
    assert!(
        Telemetry::builder()
            .facade_buckets("x", &[2.0, 1.0])
            .is_err()
    );
    assert!(
        Telemetry::builder()
            .facade_default_buckets(&[f64::NAN])
            .is_err()
    );
}

#[test]
fn the_global_recorder_can_be_installed_once() {
    let t = Telemetry::new();
    t.install_recorder().unwrap();
    assert!(Telemetry::new().install_recorder().is_err());
    metrics::counter!("global_events").increment(5);
    assert!(
        t.render_string(Format::Prometheus)
            .contains("global_events_total 5")
    );
}
