//! The platform's sampling rules, checked at an independent OTLP receiver: health and
//! metrics routes never yield a span, the RAG, upload and login routes always do, roots
//! follow the service's ratio within statistical bounds, children follow their parent,
//! and `OTEL_TRACES_SAMPLER` changes what it should. Every loop is bounded.
#![cfg(feature = "otel")]

mod common;
mod trace_support;

use std::time::Duration;

use tars_telemetry::trace::{Protocol, TraceConfig, Tracing, propagation};
use tars_telemetry::*;
use trace_support::{Receiver, Span};

fn install(t: &Telemetry, r: &Receiver, config: TraceConfig) -> Tracing {
    t.install_tracing(
        config
            .with_endpoint(r.grpc_endpoint())
            .with_protocol(Protocol::Grpc)
            .with_schedule_delay(Duration::from_millis(100)),
    )
    .unwrap()
}

fn servers<'a>(spans: &'a [Span], service: &str, route: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| {
            s.str("service") == service && s.kind() == "SERVER" && s.attr_str("http.route") == route
        })
        .collect()
}

/// One request on `route`, with a database query inside it.
fn request(t: &Telemetry, route: &HttpRoute, method: Method) {
    let req = route.start(method);
    req.in_scope(|| drop(t.db().query(DbOperation::Select)));
    req.finish(200);
}

#[test]
fn health_never_and_rag_query_always() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    // A service at the 0.1 default ratio: only the route rules can explain 100 %.
    let t = Telemetry::new();
    let tracing = install(&t, &receiver, TraceConfig::new("billing"));
    let health = t.http().route("/health");
    let metrics = t.http().route("/metrics");
    let ready = t.http().route("/ready");
    let rag = t.http().route("/api/v1/rag/query");
    let upload = t.http().route("/api/v1/documents/upload");
    let login = t.http().route("/api/v1/auth/login");
    for _ in 0..50 {
        request(&t, &health, Method::Get);
        request(&t, &metrics, Method::Get);
        request(&t, &ready, Method::Get);
    }
    for _ in 0..20 {
        request(&t, &rag, Method::Post);
        request(&t, &upload, Method::Post);
        request(&t, &login, Method::Post);
    }
    // Under a sampled caller, /health is still dropped; under an unsampled one, a RAG
    // query is still kept.
    let sampled = [(
        "traceparent",
        "00-11111111111111111111111111111111-2222222222222222-01",
    )];
    let unsampled = [(
        "traceparent",
        "00-33333333333333333333333333333333-4444444444444444-00",
    )];
    let h = health.start_in_context(Method::Get, &propagation::extract_pairs(sampled));
    assert!(!h.is_sampled());
    h.finish(200);
    let q = rag.start_in_context(Method::Post, &propagation::extract_pairs(unsampled));
    assert!(q.is_sampled());
    q.finish(200);
    // `tracing` spans go through the same sampler: their http.route field is read too.
    let subscriber = tracing.subscriber_with_writer(&trace::LogConfig::production(), std::io::sink);
    tracing::subscriber::with_default(subscriber, || {
        for route in ["/health", "/api/v1/rag/query"] {
            let span = tracing::info_span!("GET", http.route = route, otel.kind = "server");
            let _in = span.enter();
            tracing::info!("handled");
        }
    });

    tracing.force_flush().unwrap();
    let spans = receiver.wait_for(Duration::from_secs(10), |s| s.len() >= 122);
    for route in ["/health", "/metrics", "/ready"] {
        assert!(
            servers(&spans, "billing", route).is_empty(),
            "{route} was sampled"
        );
        assert!(
            !spans.iter().any(|s| s.attr_str("http.route") == route),
            "{route}"
        );
    }
    // 20 requests, the one under an unsampled caller, and the `tracing` server span.
    assert_eq!(servers(&spans, "billing", "/api/v1/rag/query").len(), 22);
    assert_eq!(
        servers(&spans, "billing", "/api/v1/documents/upload").len(),
        20
    );
    assert_eq!(servers(&spans, "billing", "/api/v1/auth/login").len(), 20);
    // Each kept request has its database span; the dropped ones have none.
    let dbs = spans.iter().filter(|s| s.name() == "SELECT").count();
    assert_eq!(dbs, 60);
    assert!(
        spans
            .iter()
            .all(|s| s.trace_id() != "11111111111111111111111111111111")
    );
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.trace_id() == "33333333333333333333333333333333")
            .count(),
        1
    );
    let traced: Vec<&Span> = spans.iter().filter(|s| s.name() == "GET").collect();
    assert_eq!(traced.len(), 1, "{traced:#?}");
    assert_eq!(traced[0].attr_str("http.route"), "/api/v1/rag/query");
    assert_eq!(spans.len(), 122);
    tracing.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn roots_follow_the_service_ratio_and_children_their_parent() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let route = "/api/v1/conversations/{id}";
    let mut pipelines = Vec::new();
    // (service, roots, inclusive bounds on the roots kept: about 5 standard deviations)
    for (service, n, lo, hi) in [
        ("tars-ui", 1000, 420, 580),
        ("billing", 1000, 50, 150),
        ("tars-backend", 200, 200, 200),
        ("tars-rag-service", 200, 200, 200),
    ] {
        let t = Telemetry::new();
        let tracing = install(&t, &receiver, TraceConfig::new(service));
        let r = t.http().route(route);
        let mut kept = 0;
        for _ in 0..n {
            let req = r.start(Method::Get);
            kept += usize::from(req.is_sampled());
            req.in_scope(|| drop(t.db().query(DbOperation::Select)));
            req.finish(200);
        }
        tracing.force_flush().unwrap();
        pipelines.push((service, kept, lo, hi, tracing, t));
    }
    let total: usize = pipelines.iter().map(|p| p.1 * 2).sum();
    let spans = receiver.wait_for(Duration::from_secs(20), |s| s.len() >= total);
    assert_eq!(spans.len(), total);
    for (service, kept, lo, hi, tracing, _t) in &pipelines {
        let roots = servers(&spans, service, route);
        assert_eq!(roots.len(), *kept, "{service}");
        assert!(
            (*lo..=*hi).contains(&roots.len()),
            "{service}: {} roots kept",
            roots.len()
        );
        // Parent-based: a kept request has its child, an unsampled one has none.
        for root in &roots {
            let children: Vec<&Span> = spans
                .iter()
                .filter(|s| s.parent() == root.span_id())
                .collect();
            assert_eq!(children.len(), 1, "{service}");
            assert_eq!(children[0].trace_id(), root.trace_id());
        }
        let orphans = spans
            .iter()
            .filter(|s| s.str("service") == *service && s.kind() == "CLIENT")
            .count();
        assert_eq!(orphans, roots.len(), "{service}");
        tracing.shutdown(Duration::from_secs(5)).unwrap();
    }
}

#[test]
fn otel_traces_sampler_from_the_environment() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let env = |sampler: &'static str, service: &'static str| {
        TraceConfig::from_lookup(move |k| match k {
            "OTEL_TRACES_SAMPLER" => Some(sampler.into()),
            "OTEL_SERVICE_NAME" => Some(service.into()),
            _ => None,
        })
    };
    // always_off is a kill switch: not even the always-sampled routes.
    let off = Telemetry::new();
    let off_tracing = install(&off, &receiver, env("always_off", "svc-off"));
    for _ in 0..20 {
        request(&off, &off.http().route("/api/v1/rag/query"), Method::Post);
    }
    // always_on samples everything but the never routes (and what runs under them),
    // whatever the parent.
    let on = Telemetry::new();
    let on_tracing = install(&on, &receiver, env("always_on", "svc-on"));
    let unsampled = propagation::extract_pairs([(
        "traceparent",
        "00-55555555555555555555555555555555-6666666666666666-00",
    )]);
    for _ in 0..20 {
        let req = on
            .http()
            .route("/api/v1/things")
            .start_in_context(Method::Get, &unsampled);
        req.finish(200);
        request(&on, &on.http().route("/health"), Method::Get);
    }
    // parentbased_always_off: roots are not sampled, children of a sampled caller are.
    let pb = Telemetry::new();
    let pb_tracing = install(&pb, &receiver, env("parentbased_always_off", "svc-pb"));
    let sampled = propagation::extract_pairs([(
        "traceparent",
        "00-77777777777777777777777777777777-8888888888888888-01",
    )]);
    for _ in 0..10 {
        request(&pb, &pb.http().route("/api/v1/things"), Method::Get);
        pb.http()
            .route("/api/v1/things")
            .start_in_context(Method::Get, &sampled)
            .finish(200);
    }
    for t in [&off_tracing, &on_tracing, &pb_tracing] {
        t.force_flush().unwrap();
    }
    let spans = receiver.wait_for(Duration::from_secs(10), |s| s.len() >= 30);
    let count = |svc: &str| spans.iter().filter(|s| s.str("service") == svc).count();
    assert_eq!(count("svc-off"), 0);
    assert_eq!(servers(&spans, "svc-on", "/api/v1/things").len(), 20);
    assert_eq!(servers(&spans, "svc-on", "/health").len(), 0);
    assert!(
        servers(&spans, "svc-on", "/api/v1/things")
            .iter()
            .all(|s| s.trace_id() == "55555555555555555555555555555555")
    );
    let pb_spans = servers(&spans, "svc-pb", "/api/v1/things");
    assert_eq!(pb_spans.len(), 10);
    assert!(pb_spans.iter().all(|s| s.parent() == "8888888888888888"));
    assert_eq!(spans.len(), 30);
    for t in [off_tracing, on_tracing, pb_tracing] {
        t.shutdown(Duration::from_secs(5)).unwrap();
    }
}

/// An unsampled decision travels on: the backend does not sample a request its caller did
/// not, and tells the next service so in the `traceparent` it sends.
#[test]
fn the_unsampled_decision_propagates() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let t = Telemetry::new();
    let tracing = install(&t, &receiver, TraceConfig::new("tars-backend"));
    let incoming = [(
        "traceparent",
        "00-9999999999999999999999999999999a-aaaaaaaaaaaaaaaa-00",
    )];
    let req = t
        .http()
        .route("/api/v1/conversations/{id}")
        .start_in_context(Method::Get, &propagation::extract_pairs(incoming));
    assert!(!req.is_sampled());
    assert!(req.trace_ref().is_none());
    let out = req.in_scope(|| {
        drop(t.db().query(DbOperation::Select));
        propagation::inject_pairs(&opentelemetry_current())
    });
    req.finish(200);
    let tp = &out.iter().find(|(k, _)| k == "traceparent").unwrap().1;
    assert!(
        tp.starts_with("00-9999999999999999999999999999999a-"),
        "{tp}"
    );
    assert!(tp.ends_with("-00"), "{tp}");
    assert!(
        !tp.contains("aaaaaaaaaaaaaaaa"),
        "the server span has an id of its own: {tp}"
    );
    tracing.force_flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.spans().is_empty());
    tracing.shutdown(Duration::from_secs(5)).unwrap();
}

fn opentelemetry_current() -> trace::opentelemetry::Context {
    trace::opentelemetry::Context::current()
}
