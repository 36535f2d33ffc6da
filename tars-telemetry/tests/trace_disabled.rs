//! `OTEL_SDK_DISABLED=true`: installing tracing makes no spans, leaves no exemplars, and
//! the metrics are recorded as without tracing.
#![cfg(feature = "otel")]

use std::time::Duration;

use tars_telemetry::trace::TraceConfig;
use tars_telemetry::*;

#[test]
fn otel_sdk_disabled_makes_no_spans_and_no_exemplars() {
    let t = Telemetry::new();
    let config = TraceConfig::from_lookup(|k| match k {
        "OTEL_SDK_DISABLED" => Some("true".into()),
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:9".into()),
        _ => None,
    });
    assert!(config.is_disabled());
    let tracing = t.install_tracing(config).unwrap();
    assert!(tracing.is_disabled());
    assert!(!t.tracing_installed());

    let route = t.http().route("/api/v1/rag/query");
    let req = route.start(Method::Post);
    assert!(req.span_context().is_none());
    let query = t.rag().start_query();
    assert!(!query.is_sampled());
    query.succeed();
    req.finish(200);
    assert_eq!(route.requests(Method::Post, 200).get(), 1);
    assert_eq!(t.rag().query_count(), 1);
    assert!(!t.render_string(Format::OpenMetrics).contains("trace_id="));
    assert_eq!(tracing.exported_spans(), 0);
    let _ = tracing.shutdown(Duration::from_millis(100));
}
