//! What the bindings rely on: guards that can be abandoned, interned handles, routes bound
//! after routing, exemplars from another tracer, and a structured read that agrees with
//! the text exposition.

mod alloc_counter;

use std::collections::BTreeMap;
use std::time::Duration;

use tars_telemetry::snapshot::SeriesValue;
use tars_telemetry::*;

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

fn abandoned(t: &Telemetry, stage: StageType) -> u64 {
    let text = t.render_string(Format::Prometheus);
    let prefix = format!(
        "tars_telemetry_stages_abandoned_total{{stage=\"{}\"}} ",
        stage.as_str()
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse().unwrap())
}

#[test]
fn an_abandoned_request_observes_no_duration_and_restores_the_active_gauge() {
    let t = Telemetry::new();
    let route = t.http().route("/api/v1/rag/query");
    let req = route.start(Method::Post);
    assert_eq!(t.http().active().get(), 1.0);
    std::thread::sleep(Duration::from_millis(5));
    req.abandon();
    assert_eq!(t.http().active().get(), 0.0);
    assert_eq!(
        route.duration(Method::Post).count(),
        0,
        "no latency observed"
    );
    assert_eq!(
        route.requests(Method::Post, http::ABANDONED_STATUS).get(),
        1
    );
    assert_eq!(abandoned(&t, StageType::HttpServer), 1);

    // Dropping an unfinished guard takes the same path.
    drop(route.start(Method::Post));
    assert_eq!(t.http().active().get(), 0.0);
    assert_eq!(route.duration(Method::Post).count(), 0);
    assert_eq!(route.requests(Method::Post, 499).get(), 2);
    assert_eq!(abandoned(&t, StageType::HttpServer), 2);

    // A finished request is not abandoned afterwards.
    route.start(Method::Post).finish(200);
    assert_eq!(route.duration(Method::Post).count(), 1);
    assert_eq!(abandoned(&t, StageType::HttpServer), 2);
}

#[test]
fn every_guard_can_be_abandoned() {
    let t = Telemetry::new();
    let llama = t.llm_model("llama3").unwrap();

    t.rag().start_query().abandon_with("cancelled");
    assert_eq!(t.rag().failed_count(), 1);
    assert_eq!(t.rag().duration().count(), 0);

    let mut call = llama.start();
    call.set_input_tokens(10);
    call.add_output_tokens(3);
    drop(call);
    assert_eq!(llama.inference_duration().count(), 0);
    assert_eq!(
        llama.tokens_generated(),
        3,
        "tokens used are counted anyway"
    );

    t.documents().start().abandon();
    assert_eq!(t.documents().processed(Outcome::Error).get(), 1);

    t.vector_store().start_search().abandon();
    assert_eq!(t.vector_store().searches().get(), 0);
    t.db().query(DbOperation::Select).abandon();
    assert_eq!(t.db().duration(DbOperation::Select).count(), 0);

    t.redis().start_command("GET").abandon();
    assert_eq!(
        t.cache()
            .count(CacheName::Redis, CacheOperation::Get, CacheResult::Error),
        1
    );

    let ws = t.websocket().connection_opened();
    ws.close();
    assert_eq!(t.websocket().active().get(), 0.0);

    for (stage, n) in [
        (StageType::RagQuery, 1),
        (StageType::Llm, 1),
        (StageType::Document, 1),
        (StageType::VectorSearch, 1),
        (StageType::Db, 1),
        (StageType::Cache, 1),
    ] {
        assert_eq!(abandoned(&t, stage), n, "{stage}");
    }
}

#[test]
fn interned_handles_are_the_same_and_the_second_lookup_allocates_nothing() {
    let t = Telemetry::new();
    let a = t.llm_model("llama3:8b").unwrap();
    let mut b = None;
    let n = alloc_counter::allocations(|| b = Some(t.llm_model("llama3:8b").unwrap()));
    assert!(a.same_handle(&b.unwrap()));
    assert_eq!(n, 0, "a known model allocates nothing");

    let r = t.http().route("/api/v1/rag/query");
    let mut r2 = None;
    let n = alloc_counter::allocations(|| r2 = Some(t.http().route("/api/v1/rag/query")));
    assert!(r.same_handle(&r2.unwrap()));
    assert_eq!(n, 0, "a known route allocates nothing");
    assert_eq!(t.http().interned(), 1);

    // The budget still applies: past it, names share the overflow series and the
    // intern map stops growing.
    let small = Telemetry::builder()
        .family_budget("tars_llm_inference_duration_seconds", 3)
        .build()
        .unwrap();
    for i in 0..50 {
        small.llm_model(&format!("m{i}")).unwrap().start().succeed();
    }
    assert_eq!(small.llm().interned(), 3);
    let text = small.render_string(Format::Prometheus);
    assert!(text.contains("tars_llm_inference_duration_seconds_count{model=\"__overflow__\"} 47"));
}

#[test]
fn bounded_labels_cross_as_small_integers() {
    for (i, m) in Method::ALL.iter().enumerate() {
        assert_eq!(m.index(), i);
        assert_eq!(Method::from_index(i), Some(*m));
    }
    assert_eq!(RagPhase::from_index(RagPhase::ALL.len()), None);
}

#[test]
fn a_route_bound_after_routing_labels_the_request() {
    let t = Telemetry::new();
    let mut req = t.http().start(Method::Get, "/users/42", Parent::Current);
    assert_eq!(t.http().active().get(), 1.0);
    assert_eq!(req.route(), None);
    req.set_route(&t.http().route("/users/{id}"));
    req.finish(200);
    assert_eq!(t.http().active().get(), 0.0);
    let text = t.render_string(Format::Prometheus);
    assert!(text.contains(
        "tars_http_requests_total{method=\"GET\",endpoint=\"/users/{id}\",status=\"200\"} 1"
    ));
    assert!(!text.contains("/users/42"), "a raw path is never a label");

    // Never bound (no route matched): the unmatched route, never the path.
    t.http()
        .start(Method::Get, "/no/such/thing", Parent::Root)
        .finish(404);
    let text = t.render_string(Format::Prometheus);
    assert!(text.contains(&format!(
        "tars_http_requests_total{{method=\"GET\",endpoint=\"{}\",status=\"404\"}} 1",
        http::UNMATCHED_ROUTE
    )));
    assert!(!text.contains("/no/such/thing"));
}

#[test]
fn every_stage_takes_an_exemplar_from_another_tracer() {
    let t = Telemetry::new();
    let other = TraceRef::new([7; 16], [9; 8]);
    let mut q = t.rag().start_query();
    q.set_trace(other);
    {
        let _p = q.phase(RagPhase::Retrieval); // inherits the query's trace
    }
    q.succeed();
    let mut db = t.db().query(DbOperation::Select);
    db.set_trace(other);
    db.stop();
    t.embeddings()
        .record(Duration::from_millis(3), 1, Some(&other));
    t.vector_store()
        .record_search(Duration::from_millis(3), Some(&other));
    t.documents().record(
        Duration::from_secs(1),
        Outcome::Success,
        Some(4),
        Some(&other),
    );
    let om = t.render_string(Format::OpenMetrics);
    for family in [
        "tars_rag_query_duration_seconds_bucket",
        "tars_rag_phase_duration_seconds_bucket",
        "tars_db_query_duration_seconds_bucket",
        "tars_embedding_duration_seconds_bucket",
        "tars_vector_search_duration_seconds_bucket",
        "tars_document_processing_duration_seconds_bucket",
    ] {
        assert!(
            om.lines()
                .any(|l| l.starts_with(family) && l.contains("trace_id=\"07070707")),
            "{family} has no exemplar:\n{om}"
        );
    }
}

/// Parses the Prometheus text format into `series -> value`.
fn parse_text(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let v = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap(),
        };
        out.insert(series.to_string(), v);
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn series_name(name: &str, labels: &[(String, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some((n, v)) = extra {
        parts.push(format!("{n}=\"{v}\""));
    }
    if parts.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", parts.join(","))
    }
}

fn le(bound: f64) -> String {
    // As the exposition writes catalog bounds: with a decimal point.
    if bound.is_infinite() {
        "+Inf".into()
    } else if bound.fract() == 0.0 {
        format!("{bound:.1}")
    } else {
        format!("{bound}")
    }
}

#[test]
fn the_snapshot_equals_the_parsed_text_render() {
    let t = Telemetry::new();
    let llama = t.llm_model("llama3 \"quoted\"\nmodel").unwrap();
    let mut call = llama.start();
    call.set_input_tokens(7);
    call.add_output_tokens(11);
    call.succeed();
    let mut q = t.rag().start_query();
    q.set_sources(3);
    q.set_relevance(0.7);
    q.succeed();
    t.redis().set_memory(1 << 20, 1 << 30);
    t.http().route("/a").start(Method::Get).finish(200);
    t.app_info().set("1.0", "test", "llama3").unwrap();

    let text = parse_text(&t.render_string(Format::Prometheus));
    let mut from_snapshot = BTreeMap::new();
    for f in t.snapshot() {
        for s in &f.series {
            match &s.value {
                SeriesValue::Counter { value, .. } => {
                    from_snapshot.insert(series_name(&f.name, &s.labels, None), *value);
                }
                SeriesValue::Gauge(v) => {
                    from_snapshot.insert(series_name(&f.name, &s.labels, None), *v);
                }
                SeriesValue::Histogram(h) => {
                    for (bound, count) in &h.buckets {
                        from_snapshot.insert(
                            series_name(
                                &format!("{}_bucket", f.name),
                                &s.labels,
                                Some(("le", le(*bound))),
                            ),
                            *count as f64,
                        );
                    }
                    from_snapshot.insert(
                        series_name(&format!("{}_sum", f.name), &s.labels, None),
                        h.sum,
                    );
                    from_snapshot.insert(
                        series_name(&format!("{}_count", f.name), &s.labels, None),
                        h.count as f64,
                    );
                }
            }
        }
    }
    assert_eq!(text.len(), from_snapshot.len());
    for (k, v) in &text {
        assert_eq!(from_snapshot.get(k), Some(v), "{k}");
    }
}

#[test]
fn custom_families_are_validated_and_count_fractions() {
    let t = Telemetry::new();
    let c = t
        .counter_family("tool_seconds", "Seconds in tools.", &["tool"])
        .unwrap();
    assert_eq!(c.name(), "tool_seconds_total");
    let s = c.labels(&["search"]).unwrap();
    s.inc_by(0.25);
    s.inc_by(0.5);
    s.inc_by(f64::NAN);
    s.inc_by(-1.0);
    assert_eq!(s.get(), 0.75);
    let text = t.render_string(Format::Prometheus);
    assert!(text.contains("tool_seconds_total{tool=\"search\"} 0.75"));
    assert!(text.contains("tars_telemetry_invalid_values_total{family=\"tool_seconds_total\"} 2"));
    // The same family asked for again is the same; another shape is a conflict.
    assert!(t.counter_family("tool_seconds", "", &["tool"]).is_ok());
    assert!(matches!(
        t.gauge_family("tool_seconds_total", "", &["tool"]),
        Err(Error::Conflict { .. })
    ));
    for (name, reason) in [
        ("", NameError::Empty),
        ("9lives", NameError::BadCharacter),
        ("a-b", NameError::BadCharacter),
        ("__x", NameError::Reserved),
    ] {
        match t.gauge_family(name, "", &[]) {
            Err(Error::InvalidName { reason: r, .. }) => assert_eq!(r, reason, "{name:?}"),
            other => panic!("{name:?}: {other:?}"),
        }
    }
    assert!(matches!(
        t.histogram_family("h", "", &["le"], &[1.0]),
        Err(Error::InvalidName {
            reason: NameError::ReservedLabel,
            ..
        })
    ));
    assert!(matches!(
        t.gauge_family("g", "", &["a", "a"]),
        Err(Error::InvalidName {
            reason: NameError::DuplicateLabel,
            ..
        })
    ));
    assert!(matches!(
        t.gauge_family("g", "", &["a:b"]),
        Err(Error::InvalidName {
            reason: NameError::BadCharacter,
            ..
        })
    ));
    assert!(matches!(
        t.histogram_family("h", "", &[], &[1.0, f64::NAN]),
        Err(Error::InvalidBuckets(BucketError::NotFinite))
    ));
    assert!(matches!(
        t.counter_family("tars_rag_queries", "", &["status"]),
        Err(Error::Conflict { .. })
    ));
}

#[test]
fn an_address_in_use_keeps_its_kind() {
    let t = Telemetry::new();
    let first = t.serve("127.0.0.1:0").unwrap();
    let e = t.serve(first.local_addr()).unwrap_err();
    assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AddrInUse));
    assert!(e.raw_os_error().is_some());
    assert!(std::error::Error::source(&e).is_some());
}
