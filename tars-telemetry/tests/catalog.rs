//! The catalog against the platform's contract: names, types, labels and buckets.

use tars_telemetry::catalog::{self, MetricKind};

/// The library families the contract lists, with their type and the labels queries use.
const CONTRACT: &[(&str, MetricKind, &[&str])] = &[
    (
        "tars_rag_query_duration_seconds",
        MetricKind::Histogram,
        &[],
    ),
    ("tars_rag_queries_total", MetricKind::Counter, &["status"]),
    ("tars_rag_queries_failed_total", MetricKind::Counter, &[]),
    (
        "tars_llm_inference_duration_seconds",
        MetricKind::Histogram,
        &["model"],
    ),
    (
        "tars_llm_tokens_generated_total",
        MetricKind::Counter,
        &["model"],
    ),
    (
        "tars_embedding_duration_seconds",
        MetricKind::Histogram,
        &[],
    ),
    ("tars_embeddings_generated_total", MetricKind::Counter, &[]),
    ("tars_embedding_cache_hits_total", MetricKind::Counter, &[]),
    (
        "tars_embedding_cache_misses_total",
        MetricKind::Counter,
        &[],
    ),
    ("tars_redis_cache_hits_total", MetricKind::Counter, &[]),
    ("tars_redis_cache_misses_total", MetricKind::Counter, &[]),
    ("tars_redis_memory_usage_bytes", MetricKind::Gauge, &[]),
    ("tars_redis_memory_max_bytes", MetricKind::Gauge, &[]),
    (
        "tars_db_query_duration_seconds",
        MetricKind::Histogram,
        &["operation"],
    ),
    ("tars_db_queries_total", MetricKind::Counter, &["operation"]),
    ("tars_db_connection_pool_active", MetricKind::Gauge, &[]),
    ("tars_db_connection_pool_max", MetricKind::Gauge, &[]),
    (
        "tars_vector_search_duration_seconds",
        MetricKind::Histogram,
        &[],
    ),
    ("tars_vector_search_total", MetricKind::Counter, &[]),
    ("tars_vector_store_documents_total", MetricKind::Gauge, &[]),
    (
        "tars_http_requests_total",
        MetricKind::Counter,
        &["method", "endpoint", "status"],
    ),
    (
        "tars_http_request_duration_seconds",
        MetricKind::Histogram,
        &["method", "endpoint"],
    ),
    ("tars_errors_total", MetricKind::Counter, &["component"]),
    (
        "tars_websocket_messages_total",
        MetricKind::Counter,
        &["direction"],
    ),
    ("tars_websocket_connections_active", MetricKind::Gauge, &[]),
    (
        "tars_documents_processed_total",
        MetricKind::Counter,
        &["status"],
    ),
    (
        "tars_document_processing_duration_seconds",
        MetricKind::Histogram,
        &[],
    ),
    ("tars_document_queue_length", MetricKind::Gauge, &[]),
];

#[test]
fn every_contract_family_is_defined_with_its_type_and_labels() {
    for (name, kind, labels) in CONTRACT {
        let emitted = catalog::RENAMED
            .iter()
            .find(|(from, _)| from == name)
            .map_or(*name, |(_, to)| to);
        let def = catalog::find(emitted).unwrap_or_else(|| panic!("{name} is not in the catalog"));
        assert!(
            catalog::LIBRARY.contains(def),
            "{name} must be a library family"
        );
        assert_eq!(def.kind, *kind, "{name}");
        for l in *labels {
            assert!(def.labels.contains(l), "{name} lacks label {l}");
        }
    }
}

#[test]
fn every_alert_threshold_is_a_bucket_bound() {
    for t in catalog::ALERT_THRESHOLDS {
        let def = catalog::find(t.family).unwrap();
        assert_eq!(def.kind, MetricKind::Histogram);
        assert!(
            def.buckets.contains(&t.seconds),
            "{}: {} s is not a bucket bound of {}",
            t.alert,
            t.seconds,
            t.family
        );
        // The panels show up to several times the threshold: the buckets must reach it.
        assert!(
            def.buckets.last().unwrap() >= &(t.seconds * 4.0),
            "{}",
            t.family
        );
        // And resolve below it: at least two bounds under the threshold.
        assert!(
            def.buckets.iter().filter(|b| **b < t.seconds).count() >= 2,
            "{}",
            t.family
        );
    }
}

#[test]
fn names_and_buckets_are_well_formed() {
    let mut seen = std::collections::HashSet::new();
    for def in catalog::LIBRARY.iter().chain(catalog::AGENT) {
        assert!(seen.insert(def.name), "{} defined twice", def.name);
        assert!(def.name.starts_with("tars_"), "{}", def.name);
        assert!(
            def.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            def.name
        );
        assert_eq!(
            def.kind == MetricKind::Counter,
            def.name.ends_with("_total"),
            "{}",
            def.name
        );
        assert!(!def.help.is_empty());
        if let Some(u) = def.unit {
            assert!(
                def.openmetrics_name().ends_with(&format!("_{u}")),
                "{}",
                def.name
            );
        }
        if def.kind == MetricKind::Histogram {
            assert!(def.buckets.windows(2).all(|w| w[0] < w[1]), "{}", def.name);
            assert!(!def.labels.contains(&"le"));
        } else {
            assert!(def.buckets.is_empty(), "{}", def.name);
        }
    }
}

#[test]
fn series_names_map_back_to_their_family() {
    let d = catalog::family_of_series("tars_rag_query_duration_seconds_bucket").unwrap();
    assert_eq!(d.name, "tars_rag_query_duration_seconds");
    assert!(catalog::family_of_series("tars_rag_queries_total_bucket").is_none());
    assert!(catalog::family_of_series("tars_nope").is_none());
}
