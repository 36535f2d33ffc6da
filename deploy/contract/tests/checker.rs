//! The checker itself: it accepts what the platform's queries look like and rejects each
//! kind of drift between a query and the catalog, on small inline expressions.

use tars_deploy_contract::check::{Checker, Problem};
use tars_telemetry::catalog::{self, MetricKind};

fn problems(expr: &str) -> Vec<Problem> {
    Checker::new().check(expr).problems
}

#[track_caller]
fn clean(expr: &str) {
    let p = problems(expr);
    assert!(p.is_empty(), "{expr}: {p:#?}");
}

#[test]
fn accepts_the_shapes_the_platform_uses() {
    clean(
        "histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds_bucket[5m]))) > 0.25",
    );
    clean(
        "histogram_quantile(0.95, sum by (namespace, service, model, le) (rate(tars_llm_inference_duration_seconds_bucket[5m]))) > 2",
    );
    clean("sum(rate(tars_rag_queries_failed_total[5m])) / sum(rate(tars_rag_queries_total[5m]))");
    clean(
        r#"sum(rate(tars_http_requests_total{status=~"5..", method="POST", endpoint!=""}[5m])) / sum(rate(tars_http_requests_total[5m]))"#,
    );
    clean("tars_redis_memory_usage_bytes / (tars_redis_memory_max_bytes > 0)");
    clean(
        "sum(rate(tars_rag_query_duration_seconds_sum[5m])) / sum(rate(tars_rag_query_duration_seconds_count[5m]))",
    );
    clean(r#"max by (target) (tars_probe_up{service="redis"}) == 0"#);
    clean("max_over_time(tars_document_queue_length[10m])");
    clean("deriv(tars_vector_store_documents[30m])");
    clean("1 - avg by (node) (rate(tars_node_cpu_seconds_total{mode=\"idle\"}[5m]))");
    clean("tars_gpu_memory_used_bytes / on (node, gpu_id, uuid, name) tars_gpu_memory_total_bytes");
    clean(
        "sum by (namespace, service) (rate(tars_llm_tokens_generated_total[5m])) < 10 and on (namespace, service) sum by (namespace, service) (rate(tars_llm_requests_total[5m])) > 0",
    );
    clean("absent(tars_app_info)");
    clean(r#"label_replace(tars_app_info, "release", "$1", "version", "(.*)")"#);
}

#[test]
fn every_target_label_is_allowed_on_every_family() {
    clean(
        r#"sum by (job, instance, namespace, pod, service, node, container) (rate(tars_rag_queries_total{job="x", instance="y", namespace="z", pod="p", service="s", node="n", container="c"}[5m]))"#,
    );
    clean(r#"tars_gpu_temperature_celsius{namespace="tars", service="tars-agent"}"#);
}

#[test]
fn series_from_outside_the_catalog_are_not_checked() {
    clean(
        r#"sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!="", anything="x"}[5m])) > 0.8"#,
    );
    clean(r#"absent(up{job="cluster-autoscaler"} == 1)"#);
    clean("kube_pod_container_status_restarts_total");
}

#[test]
fn rejects_a_renamed_metric_with_its_new_name() {
    let p = problems("tars_vector_store_documents_total");
    assert_eq!(
        p,
        vec![Problem::UnknownFamily {
            series: "tars_vector_store_documents_total".into(),
            renamed: Some("tars_vector_store_documents"),
        }]
    );
    assert!(
        p[0].to_string()
            .contains("emitted as `tars_vector_store_documents`")
    );
}

#[test]
fn rejects_a_family_the_catalog_lacks() {
    assert_eq!(
        problems("sum(rate(tars_rag_querys_total[5m]))"),
        vec![Problem::UnknownFamily {
            series: "tars_rag_querys_total".into(),
            renamed: None,
        }]
    );
}

#[test]
fn rejects_a_label_the_family_does_not_have() {
    // A selector on a label the family dropped (it never had `route`).
    let p = problems(r#"sum(rate(tars_http_requests_total{route="/api/v1/rag/query"}[5m]))"#);
    assert!(
        matches!(&p[..], [Problem::UnknownLabel { label, .. }] if label == "route"),
        "{p:?}"
    );
    // A `by` clause on a label the family lacks: RAG queries have no model.
    let p = problems("sum by (model) (rate(tars_rag_queries_total[5m]))");
    assert!(
        matches!(&p[..], [Problem::UnknownLabel { label, .. }] if label == "model"),
        "{p:?}"
    );
    // `without` and `on` are checked the same way.
    assert!(!problems("sum without (model) (rate(tars_rag_queries_total[5m]))").is_empty());
    assert!(
        !problems("tars_db_connection_pool_active / on (operation) tars_db_connection_pool_max")
            .is_empty()
    );
}

#[test]
fn labels_are_followed_through_aggregations() {
    // `status` exists on the family but was aggregated away before the outer `by`.
    let p = problems("sum by (status) (sum by (method) (rate(tars_http_requests_total[5m])))");
    assert!(
        matches!(&p[..], [Problem::UnknownLabel { label, .. }] if label == "status"),
        "{p:?}"
    );
}

#[test]
fn le_is_only_on_buckets() {
    clean(r#"rate(tars_rag_query_duration_seconds_bucket{le="0.25"}[5m])"#);
    let p = problems(r#"rate(tars_rag_query_duration_seconds_count{le="0.25"}[5m])"#);
    assert!(
        matches!(&p[..], [Problem::UnknownLabel { label, .. }] if label == "le"),
        "{p:?}"
    );
}

#[test]
fn rejects_rate_on_a_gauge() {
    let p = problems("rate(tars_document_queue_length[5m])");
    assert!(
        matches!(&p[..], [Problem::WrongFunction { function, kind, .. }] if function == "rate" && *kind == "gauge"),
        "{p:?}"
    );
    assert!(!problems("increase(tars_gpu_utilization_percent[1h])").is_empty());
    assert!(!problems("irate(tars_probe_up[5m])").is_empty());
}

#[test]
fn rejects_gauge_functions_on_counters() {
    assert!(matches!(
        &problems("deriv(tars_rag_queries_total[5m])")[..],
        [Problem::WrongFunction { .. }]
    ));
    assert!(matches!(
        &problems("avg_over_time(tars_http_requests_total[5m])")[..],
        [Problem::WrongFunction { .. }]
    ));
}

#[test]
fn rejects_a_ratio_of_lifetime_totals() {
    let p = problems("tars_rag_queries_failed_total / tars_rag_queries_total > 0.05");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter()
            .all(|p| matches!(p, Problem::CounterWithoutRange { .. }))
    );
    assert!(!problems("tars_document_processing_duration_seconds_count").is_empty());
}

#[test]
fn rejects_histogram_suffixes_on_other_types_and_bare_histogram_names() {
    assert!(matches!(
        &problems("rate(tars_rag_queries_total_bucket[5m])")[..],
        [Problem::NotAHistogram { .. }]
    ));
    assert!(matches!(
        &problems("rate(tars_document_queue_length_count[5m])")[..],
        [Problem::NotAHistogram { .. }]
    ));
    // A histogram the catalog keeps classic only has no series under its bare name.
    assert!(matches!(
        &problems("rate(tars_rag_relevance_score[5m])")[..],
        [Problem::HistogramWithoutSuffix { .. }]
    ));
}

/// A bare histogram name is the family's native histogram: valid exactly where the
/// catalog marks the family native, for every histogram of the catalog.
#[test]
fn bare_histogram_names_are_valid_exactly_on_native_families() {
    let mut native = 0;
    let mut classic = 0;
    for def in catalog::LIBRARY
        .iter()
        .chain(catalog::AGENT)
        .filter(|d| d.kind == MetricKind::Histogram)
    {
        let exprs = [
            format!(
                "histogram_quantile(0.95, sum by (service) (rate({}[5m])))",
                def.name
            ),
            format!("histogram_count(rate({}[5m]))", def.name),
            format!(
                "histogram_sum(sum(rate({0}[5m]))) / histogram_count(sum(rate({0}[5m])))",
                def.name
            ),
            format!("histogram_fraction(0, 0.25, sum(rate({}[5m])))", def.name),
        ];
        for e in exprs {
            let p = problems(&e);
            if def.native.is_some() {
                assert!(p.is_empty(), "{e}: {p:?}");
            } else {
                assert!(
                    p.contains(&Problem::HistogramWithoutSuffix { family: def.name }),
                    "{e}: {p:?}"
                );
            }
        }
        if def.native.is_some() {
            native += 1;
        } else {
            classic += 1;
        }
    }
    assert!(
        native >= 10 && classic >= 1,
        "{native} native, {classic} classic"
    );
    // The latency families are the native ones.
    for def in catalog::LIBRARY.iter().chain(catalog::AGENT) {
        assert_eq!(
            def.native.is_some(),
            def.kind == MetricKind::Histogram && def.name.ends_with("_seconds"),
            "{}",
            def.name
        );
    }
}

#[test]
fn native_histograms_have_no_le_and_are_read_through_rate() {
    // No `le`: the buckets are inside each sample.
    assert!(matches!(
        &problems("histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds[5m])))")[..],
        [Problem::UnknownLabel { label, .. }] if label == "le"
    ));
    // A native histogram is cumulative, like a counter.
    assert!(matches!(
        &problems("histogram_quantile(0.95, tars_rag_query_duration_seconds)")[..],
        [Problem::CounterWithoutRange { .. }]
    ));
    assert!(matches!(
        &problems("avg_over_time(tars_rag_query_duration_seconds[5m])")[..],
        [Problem::WrongFunction { .. }]
    ));
    // Labels follow through as for any series.
    clean(
        "histogram_quantile(0.95, sum by (namespace, service, model) (rate(tars_llm_inference_duration_seconds[5m]))) > 2",
    );
    assert!(matches!(
        &problems(
            "histogram_quantile(0.95, sum by (operation) (rate(tars_llm_inference_duration_seconds[5m])))"
        )[..],
        [Problem::UnknownLabel { .. }]
    ));
}

#[test]
fn native_functions_on_classic_series_are_rejected() {
    for e in [
        "histogram_count(rate(tars_rag_query_duration_seconds_count[5m]))",
        "histogram_sum(sum(rate(tars_rag_query_duration_seconds_sum[5m])))",
        "histogram_fraction(0, 0.25, sum by (le) (rate(tars_rag_query_duration_seconds_bucket[5m])))",
        "histogram_avg(rate(tars_rag_queries_total[5m]))",
    ] {
        let p = problems(e);
        assert!(matches!(&p[..], [Problem::NotNative { .. }]), "{e}: {p:?}");
    }
}

#[test]
fn native_quantile_thresholds_need_not_be_classic_boundaries() {
    // 0.3 is no classic bucket boundary: fine on the native histogram, whose exponential
    // buckets resolve any value in their range within the schema's relative error.
    let ok = Checker::new().check(
        "histogram_quantile(0.95, sum by (service) (rate(tars_rag_query_duration_seconds[5m]))) > 0.3",
    );
    assert!(ok.problems.is_empty(), "{ok:?}");
    assert_eq!(ok.thresholds.len(), 1);
    assert!(ok.thresholds[0].native);
    assert_eq!(ok.thresholds[0].family, "tars_rag_query_duration_seconds");
    // Below the zero bucket's threshold (about 1 us) nothing can be resolved.
    assert!(matches!(
        &problems(
            "histogram_quantile(0.95, sum(rate(tars_rag_query_duration_seconds[5m]))) > 0.0000001"
        )[..],
        [Problem::ThresholdOutsideNativeRange { .. }]
    ));
    // Through a recording rule too.
    let mut c = Checker::new();
    let r = c.record(
        "tars:rag_query_duration_seconds:p95_5m",
        "histogram_quantile(0.95, sum by (namespace, service) (rate(tars_rag_query_duration_seconds[5m])))",
    );
    assert!(r.problems.is_empty(), "{r:?}");
    let t = c.check("tars:rag_query_duration_seconds:p95_5m > 0.25");
    assert!(t.problems.is_empty(), "{t:?}");
    assert!(t.thresholds[0].native);
    assert!(matches!(
        &c.check(r#"tars:rag_query_duration_seconds:p95_5m{le="0.25"} > 0.25"#)
            .problems[..],
        [Problem::UnknownLabel { .. }]
    ));
}

#[test]
fn rejects_a_threshold_between_bucket_boundaries() {
    let p = problems(
        "histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds_bucket[5m]))) > 0.3",
    );
    assert!(
        matches!(&p[..], [Problem::ThresholdNotBoundary { family, threshold, .. }]
            if *family == "tars_rag_query_duration_seconds" && *threshold == 0.3),
        "{p:?}"
    );
    // The old platform's defect: 0.25 s on a histogram whose first bucket was 0.5 s.
    // Here the LLM family has 2.0 but not 1.5.
    assert!(!problems(
        "histogram_quantile(0.95, sum by (le, model) (rate(tars_llm_inference_duration_seconds_bucket[5m]))) > 1.5"
    )
    .is_empty());
    // Either side of the comparison.
    assert!(!problems(
        "0.3 < histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds_bucket[5m])))"
    )
    .is_empty());
}

#[test]
fn thresholds_are_checked_through_recording_rules() {
    let mut c = Checker::new();
    let r = c.record(
        "tars:rag_query_duration_seconds:p95_5m",
        "histogram_quantile(0.95, sum by (namespace, service, le) (rate(tars_rag_query_duration_seconds_bucket[5m])))",
    );
    assert!(r.problems.is_empty(), "{r:?}");
    let ok = c.check("tars:rag_query_duration_seconds:p95_5m > 0.25");
    assert!(ok.problems.is_empty(), "{ok:?}");
    assert_eq!(ok.thresholds.len(), 1);
    assert_eq!(ok.thresholds[0].family, "tars_rag_query_duration_seconds");
    assert_eq!(ok.thresholds[0].quantile, Some(0.95));
    assert_eq!(ok.thresholds[0].value, 0.25);
    assert!(matches!(
        &c.check("tars:rag_query_duration_seconds:p95_5m > 0.3")
            .problems[..],
        [Problem::ThresholdNotBoundary { .. }]
    ));
    // The recorded series carries only the labels it was aggregated by.
    assert!(matches!(
        &c.check(r#"tars:rag_query_duration_seconds:p95_5m{model="x"} > 0.25"#)
            .problems[..],
        [Problem::UnknownLabel { .. }]
    ));
    // A recording rule nobody defined.
    assert!(matches!(
        &c.check("tars:rag_query_duration_seconds:p99_5m > 1")
            .problems[..],
        [Problem::UnknownRecordingRule { .. }]
    ));
}

#[test]
fn rejects_a_quantile_rescaled_before_its_comparison() {
    assert!(matches!(
        &problems(
            "histogram_quantile(0.95, sum by (le) (rate(tars_rag_query_duration_seconds_bucket[5m]))) * 1000 > 250"
        )[..],
        [Problem::ThresholdNotCheckable { .. }]
    ));
}

#[test]
fn rejects_a_quantile_over_buckets_aggregated_without_le() {
    let p = problems(
        "histogram_quantile(0.95, sum by (service) (rate(tars_rag_query_duration_seconds_bucket[5m])))",
    );
    assert!(
        matches!(&p[..], [Problem::QuantileWithoutLe { .. }]),
        "{p:?}"
    );
}

#[test]
fn rejects_nameless_tars_selectors_and_unparseable_queries() {
    assert!(matches!(
        &problems(r#"{__name__=~"tars_rag_.*"}"#)[..],
        [Problem::NamelessSelector { .. }]
    ));
    assert!(matches!(
        &problems("sum by (le (x)")[..],
        [Problem::Parse(_)]
    ));
}

#[test]
fn label_values_variables_are_checked() {
    let c = Checker::new();
    assert!(
        c.check_label_values("tars_http_requests_total", "service")
            .problems
            .is_empty()
    );
    assert!(
        c.check_label_values("tars_agent_build_info", "node")
            .problems
            .is_empty()
    );
    assert!(
        !c.check_label_values("tars_http_requests_total", "model")
            .problems
            .is_empty()
    );
    assert!(
        !c.check_label_values("tars_http_request_total", "service")
            .problems
            .is_empty()
    );
}
