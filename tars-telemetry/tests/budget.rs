//! The series budget keeps memory bounded whatever label values callers pass.

use tars_telemetry::*;

#[test]
fn a_flood_of_models_folds_into_one_overflow_series() {
    let t = Telemetry::builder()
        .family_budget("tars_llm_tokens_generated_total", 50)
        .build()
        .unwrap();
    for i in 0..10_000 {
        t.llm_model(&format!("model-{i}"))
            .unwrap()
            .start()
            .succeed();
    }
    let tokens = t.registry().get("tars_llm_tokens_generated_total").unwrap();
    assert_eq!(
        tokens.series_count(),
        51,
        "50 series plus the overflow series"
    );
    // Other LLM families keep the default budget of 1000.
    let duration = t
        .registry()
        .get("tars_llm_inference_duration_seconds")
        .unwrap();
    assert_eq!(duration.series_count(), 1001);

    let text = t.render_string(Format::Prometheus);
    let overflow = format!("tars_llm_tokens_generated_total{{model=\"{OVERFLOW_LABEL_VALUE}\"}}");
    assert!(text.contains(&overflow), "no overflow series");
    // Each model past the budget is counted once in the self-metric.
    assert!(text.contains(
        "tars_telemetry_series_overflow_total{family=\"tars_llm_tokens_generated_total\"} 9950"
    ));
    assert!(text.contains(
        "tars_telemetry_series_overflow_total{family=\"tars_llm_inference_duration_seconds\"} 9000"
    ));
    // The overflow series still counts every call: nothing is lost.
    let calls: u64 = text
        .lines()
        .filter(|l| l.starts_with("tars_llm_inference_duration_seconds_count"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(calls, 10_000);
}

#[test]
fn routes_and_error_types_are_bounded_too() {
    let t = Telemetry::builder().series_budget(20).build().unwrap();
    for i in 0..500 {
        let r = t.http().route(&format!("/raw/path/{i}"));
        r.record(Method::Get, 200, std::time::Duration::ZERO, None);
        t.errors().record(Component::Other, &format!("e{i}"));
    }
    for name in [
        "tars_http_requests_total",
        "tars_http_request_duration_seconds",
        "tars_errors_total",
    ] {
        assert_eq!(t.registry().get(name).unwrap().series_count(), 21, "{name}");
    }
}

#[test]
fn invalid_values_are_dropped_and_counted() {
    let t = Telemetry::new();
    let h = t.rag().duration();
    h.observe(f64::NAN);
    h.observe(-1.0);
    h.observe(f64::INFINITY);
    assert_eq!(h.try_observe(f64::NAN), Err(InvalidValue::NaN));
    assert_eq!(h.try_observe(-0.5), Err(InvalidValue::Negative));
    assert_eq!(h.count(), 0);
    let g = t.documents().queue();
    assert_eq!(g.try_set(f64::NAN), Err(InvalidValue::NaN));
    g.set(f64::NAN);
    assert_eq!(g.get(), 0.0);
    let c = t.vector_store().searches();
    assert_eq!(c.try_inc_by_f64(-1.0), Err(InvalidValue::Negative));
    assert_eq!(c.try_inc_by_f64(1.5), Err(InvalidValue::Fractional));
    assert_eq!(c.try_inc_by_f64(f64::NAN), Err(InvalidValue::NaN));
    c.try_inc_by_f64(3.0).unwrap();
    assert_eq!(c.get(), 3);
    let text = t.render_string(Format::Prometheus);
    assert!(text.contains(
        "tars_telemetry_invalid_values_total{family=\"tars_rag_query_duration_seconds\"} 5"
    ));
    assert!(
        text.contains(
            "tars_telemetry_invalid_values_total{family=\"tars_document_queue_length\"} 2"
        )
    );
}

#[test]
fn label_values_are_escaped() {
    let t = Telemetry::new();
    t.llm_model("we\"ird\\model\nname")
        .unwrap()
        .start()
        .succeed();
    let text = t.render_string(Format::Prometheus);
    assert!(text.contains(r#"model="we\"ird\\model\nname""#), "{text}");
}

#[test]
fn wrong_label_count_is_an_error_not_a_panic() {
    let t = Telemetry::new();
    let f = t.registry().get("tars_http_requests_total").unwrap();
    let e = f.resolve(&["GET"]).unwrap_err();
    assert!(
        e.to_string().contains("takes 3 label value(s), 1 given"),
        "{e}"
    );
}

#[test]
fn removed_series_stop_being_exported() {
    let t = Telemetry::new();
    let f = t.registry().get("tars_llm_tokens_generated_total").unwrap();
    for m in ["a", "b", "c"] {
        t.llm_model(m).unwrap().start().succeed();
    }
    assert!(f.remove(&["a"]));
    assert!(!f.remove(&["a"]));
    let text = t.render_string(Format::Prometheus);
    assert!(!text.contains("tars_llm_tokens_generated_total{model=\"a\"}"));
    assert!(text.contains("tars_llm_tokens_generated_total{model=\"c\"}"));
    // The index stays consistent after the swap: "c" resolves to its old series.
    let Metric::Counter(c) = f.resolve(&["c"]).unwrap() else {
        panic!()
    };
    c.inc_by(5);
    assert!(
        t.render_string(Format::Prometheus)
            .contains("tars_llm_tokens_generated_total{model=\"c\"} 5")
    );
    assert_eq!(f.series_count(), 2);
}

#[test]
fn mirrored_counters_carry_fractional_values() {
    let reg = Registry::default();
    let f = reg.register(&catalog::NODE_CPU).unwrap();
    let g = f.resolve_mirrored(&["0", "user"]).unwrap();
    g.set(12.34);
    let text = reg.render_string(Format::OpenMetrics);
    assert!(
        text.contains("# TYPE tars_node_cpu_seconds counter"),
        "{text}"
    );
    assert!(
        text.contains("tars_node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 12.34"),
        "{text}"
    );
    assert!(
        reg.register(&catalog::RAG_QUERY_DURATION)
            .unwrap()
            .resolve_mirrored(&[])
            .is_err()
    );
}
