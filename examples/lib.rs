//! The simulated RAG workload behind `rag_demo`, kept in a library so that tests can run
//! it in-process beside a real Prometheus.
//!
//! ```
//! use std::sync::{Arc, atomic::AtomicBool};
//! use tars_examples::{DemoConfig, Workload};
//! use tars_telemetry::Telemetry;
//!
//! let telemetry = Telemetry::new();
//! let mut workload = Workload::new(telemetry.clone(), DemoConfig::default()).unwrap();
//! for _ in 0..100 {
//!     workload.step();
//! }
//! assert_eq!(telemetry.rag().query_count(), 100);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tars_telemetry::trace::opentelemetry::trace::{
    Span as _, SpanBuilder, TraceContextExt as _, Tracer as _,
};
use tars_telemetry::trace::opentelemetry::{Context, KeyValue};
use tars_telemetry::trace::opentelemetry_sdk::trace::{SdkTracer, Span as SdkSpan};
use tars_telemetry::trace::{Tracing, spans, spans::semconv};
use tars_telemetry::{
    CacheName, CacheOperation, CacheResult, Component, DbOperation, Direction, Error, HttpRoute,
    LlmModel, LlmUsage, Method, Outcome, RagPhase, Telemetry, TraceRef,
};

/// How the simulated service behaves. The defaults keep every alert quiet;
/// [`DemoConfig::degraded`] pushes every alert past its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    /// RAG requests per second.
    pub rate: f64,
    /// Multiplies every simulated latency.
    pub latency_scale: f64,
    /// Share of RAG queries, LLM calls, documents and requests that fail (5xx).
    pub failure_rate: f64,
    /// Share of requests answered 4xx.
    pub client_error_rate: f64,
    /// Share of Redis and embedding cache lookups that hit.
    pub cache_hit_rate: f64,
    /// Documents waiting in the ingestion queue.
    pub queue_depth: u64,
    /// Share of the database pool in use.
    pub pool_usage: f64,
    /// Share of Redis maxmemory in use.
    pub redis_memory_usage: f64,
    /// Output tokens per LLM call.
    pub tokens_per_call: u64,
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            rate: 20.0,
            latency_scale: 1.0,
            failure_rate: 0.002,
            client_error_rate: 0.02,
            cache_hit_rate: 0.85,
            queue_depth: 5,
            pool_usage: 0.3,
            redis_memory_usage: 0.5,
            tokens_per_call: 120,
            seed: 42,
        }
    }
}

impl DemoConfig {
    /// Slow, failing and saturated enough that every alert of the platform fires.
    pub fn degraded() -> Self {
        DemoConfig {
            latency_scale: 12.0,
            failure_rate: 0.2,
            client_error_rate: 0.25,
            cache_hit_rate: 0.3,
            queue_depth: 150,
            pool_usage: 0.95,
            redis_memory_usage: 0.9,
            tokens_per_call: 0,
            ..DemoConfig::default()
        }
    }
}

/// A small xorshift generator: the demo needs no cryptographic or statistical quality.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A latency around `base` seconds with a long tail: its P95 is about 4x `base`.
    fn latency(&mut self, base: f64, scale: f64) -> Duration {
        let u = self.next_f64();
        Duration::from_secs_f64(base * scale * (0.5 + u + 4.0 * u.powi(8)))
    }
}

const ROUTES: &[(&str, Method)] = &[
    ("/api/v1/rag/query", Method::Post),
    ("/api/v1/documents/upload", Method::Post),
    ("/api/v1/conversations/{id}", Method::Get),
];
const MODELS: &[&str] = &["llama3:8b", "mistral:7b"];
const DB_OPS: &[DbOperation] = &[
    DbOperation::Select,
    DbOperation::Select,
    DbOperation::Select,
    DbOperation::Insert,
    DbOperation::Update,
];

/// The simulated RAG service: each [`Workload::step`] is one user request.
#[derive(Debug)]
pub struct Workload {
    t: Telemetry,
    cfg: DemoConfig,
    rng: Rng,
    routes: Vec<(HttpRoute, Method)>,
    models: Vec<LlmModel>,
    steps: u64,
    tracer: Option<SdkTracer>,
    /// A service's dependencies record through the `metrics` facade; the workload does too,
    /// which also exposes the facade's own self-metric family (every reason at 0).
    facade_requests: metrics::Counter,
    /// The UI's pages report Web Vitals (LCP, INP, CLS, FCP, TTFB), as the Node UI server
    /// records them; and a malformed report now and then.
    web_vitals: Vec<tars_telemetry::Histogram>,
    web_vitals_rejected: tars_telemetry::Counter,
}

/// What one simulated request did, drawn before anything is recorded.
#[derive(Debug)]
struct Drawn {
    redis_hit: bool,
    embedding: Option<Duration>,
    search: Duration,
    op: DbOperation,
    db: Duration,
    llm_failed: bool,
    ttft: Duration,
    llm: Duration,
    input_tokens: u64,
    output_tokens: u64,
    failed: bool,
    query: Duration,
    sources: u32,
    relevance: f64,
    status: u16,
    http: Duration,
    /// Every tenth request uploads a document: (ok, duration, chunks).
    document: Option<(bool, Duration, Option<u32>)>,
}

/// The exemplars a traced request leaves on its metrics.
#[derive(Debug, Default)]
struct Refs {
    server: Option<TraceRef>,
    query: Option<TraceRef>,
    llm: Option<TraceRef>,
}

/// One span of a simulated request: real ids and sampling, simulated times.
struct Sim {
    span: SdkSpan,
    cx: Context,
}

impl Sim {
    fn open(tracer: &SdkTracer, builder: SpanBuilder, parent: &Context, at: SystemTime) -> Sim {
        let span = tracer.build_with_context(builder.with_start_time(at), parent);
        let cx = parent.with_remote_span_context(span.span_context().clone());
        Sim { span, cx }
    }

    fn trace_ref(&self) -> Option<TraceRef> {
        let sc = self.span.span_context();
        sc.is_sampled()
            .then(|| TraceRef::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes()))
    }

    fn set(&mut self, kv: KeyValue) {
        self.span.set_attribute(kv);
    }

    fn fail(&mut self, error_type: &str) {
        self.set(KeyValue::new(semconv::ERROR_TYPE, error_type.to_string()));
        self.span
            .set_status(tars_telemetry::trace::opentelemetry::trace::Status::error(
                error_type.to_string(),
            ));
    }

    fn close(mut self, at: SystemTime) -> Option<TraceRef> {
        let r = self.trace_ref();
        self.span.end_with_timestamp(at);
        r
    }
}

impl Workload {
    pub fn new(t: Telemetry, cfg: DemoConfig) -> Result<Self, Error> {
        let routes = ROUTES
            .iter()
            .map(|(r, m)| (t.http().route(r), *m))
            .collect();
        let models = MODELS
            .iter()
            .map(|m| t.llm_model(m))
            .collect::<Result<_, _>>()?;
        t.app_info()
            .set(env!("CARGO_PKG_VERSION"), "demo", MODELS[0])?;
        let facade_requests =
            metrics::with_local_recorder(&t.recorder(), || metrics::counter!("rag_demo_requests"));
        use tars_telemetry::{Metric, catalog as cat};
        let mut web_vitals = Vec::new();
        for def in [
            &cat::WEB_VITALS_LCP,
            &cat::WEB_VITALS_INP,
            &cat::WEB_VITALS_CLS,
            &cat::WEB_VITALS_FCP,
            &cat::WEB_VITALS_TTFB,
        ] {
            if let Metric::Histogram(h) = t
                .registry()
                .register(def)?
                .resolve(&["/chat/:id", "navigate"])?
            {
                web_vitals.push(h);
            }
        }
        let web_vitals_rejected = match t
            .registry()
            .register(&cat::WEB_VITALS_REJECTED)?
            .resolve(&["malformed"])?
        {
            Metric::Counter(c) => c,
            _ => tars_telemetry::Counter::detached(),
        };
        Ok(Workload {
            facade_requests,
            web_vitals,
            web_vitals_rejected,
            rng: Rng(cfg.seed.max(1)),
            t,
            cfg,
            routes,
            models,
            steps: 0,
            tracer: None,
        })
    }

    /// Traces every simulated request through `tracing`: a real span tree per request
    /// (server span, RAG query, retrieval with Redis, embedding cache, embedding, vector
    /// search and database, generation with the LLM call), sampled by the platform's
    /// rules, with the simulated durations; and a `/health` probe per request, which the
    /// sampler never keeps. Sampled requests leave exemplars on their metrics.
    pub fn with_tracing(mut self, tracing: &Tracing) -> Self {
        self.tracer = Some(tracing.tracer().clone());
        self
    }

    /// Simulates one request through every stage of the service.
    pub fn step(&mut self) {
        self.steps += 1;
        let route_i = (self.steps % 3) as usize;
        let d = self.draw();
        let refs = match &self.tracer {
            Some(tracer) => {
                let (route, method) = &self.routes[route_i];
                let model = &self.models[(self.steps % 2) as usize];
                let request = (self.steps, route.template());
                trace_request(tracer, &d, request, *method, model.name())
            }
            None => Refs::default(),
        };
        if let Some(tracer) = &self.tracer {
            // The kubelet's probe: never sampled, whatever the service's ratio.
            let probe = Sim::open(
                tracer,
                spans::http_server(Method::Get, "/health"),
                &Context::new(),
                SystemTime::now(),
            );
            probe.close(SystemTime::now());
        }
        self.record(&d, route_i, &refs);
        self.facade_requests.increment(1);
    }

    /// Draws one request (the order of the draws keeps a seed's workload the same).
    fn draw(&mut self) -> Drawn {
        let (c, r) = (&self.cfg, &mut self.rng);
        let s = c.latency_scale;
        let redis_hit = r.chance(c.cache_hit_rate);
        let embedding = (!r.chance(c.cache_hit_rate)).then(|| r.latency(0.03, s));
        let search = r.latency(0.02, s);
        let op = DB_OPS[(r.next_f64() * DB_OPS.len() as f64) as usize % DB_OPS.len()];
        let db = r.latency(0.004, s);
        let llm_failed = r.chance(c.failure_rate);
        let ttft = r.latency(0.08, s);
        let llm = ttft + r.latency(0.25, s);
        let input_tokens = 400 + (r.next_f64() * 400.0) as u64;
        let output_tokens = if llm_failed { 0 } else { c.tokens_per_call };
        let failed = llm_failed || r.chance(c.failure_rate);
        let query = r.latency(0.04, s);
        let sources = 1 + (r.next_f64() * 8.0) as u32;
        let relevance = 0.5 + r.next_f64() * 0.5;
        let status = if failed || r.chance(c.failure_rate) {
            503
        } else if r.chance(c.client_error_rate) {
            if r.chance(0.5) { 404 } else { 422 }
        } else {
            200
        };
        let http = r.latency(0.05, s);
        let document = (self.steps % 10 == 0).then(|| {
            let ok = !r.chance(c.failure_rate);
            let d = r.latency(1.0, s);
            // Drawn whether or not the upload failed, as the seed's workload does.
            let chunks = 10 + (r.next_f64() * 50.0) as u32;
            (ok, d, ok.then_some(chunks))
        });
        Drawn {
            redis_hit,
            embedding,
            search,
            op,
            db,
            llm_failed,
            ttft,
            llm,
            input_tokens,
            output_tokens,
            failed,
            query,
            sources,
            relevance,
            status,
            http,
            document,
        }
    }

    fn record(&self, d: &Drawn, route_i: usize, refs: &Refs) {
        let (t, c) = (&self.t, &self.cfg);

        // Retrieval: Redis first, then an embedding (maybe cached), then the vector store.
        let cached = t.redis().lookup(d.redis_hit);
        if !cached {
            t.redis().record(CacheOperation::Set, CacheResult::Ok);
        }
        if !t.embeddings().cache_lookup(d.embedding.is_none()) {
            t.embeddings()
                .record(d.embedding.unwrap_or_default(), 1, None);
        }
        t.vector_store().record_search(d.search, None);
        t.db().record(d.op, d.db, None);
        t.rag().record_phase(RagPhase::Retrieval, d.search, None);

        // Generation.
        let model = &self.models[(self.steps % 2) as usize];
        model.record(
            &LlmUsage {
                duration: d.llm,
                input_tokens: d.input_tokens,
                output_tokens: d.output_tokens,
                time_to_first_token: Some(d.ttft),
            },
            if d.llm_failed {
                Outcome::Error
            } else {
                Outcome::Success
            },
            refs.llm.as_ref(),
        );
        t.rag().record_phase(RagPhase::Generation, d.llm, None);

        // The RAG query as a whole (its latency panel tracks the retrieval-bound path).
        t.rag().record_query(
            d.query,
            if d.failed {
                Outcome::Error
            } else {
                Outcome::Success
            },
            refs.query.as_ref(),
        );
        t.rag().record_sources(d.sources);
        t.rag().record_relevance(d.relevance);
        if d.failed {
            t.errors().record(Component::Rag, "generation_failed");
        }

        // The HTTP request that carried it.
        let (route, method) = &self.routes[route_i];
        route.record(*method, d.status, d.http, refs.server.as_ref());

        // The UI's WebSocket: a question in, a few streamed chunks out.
        t.websocket().message(Direction::Inbound);
        for _ in 0..3 {
            t.websocket().message(Direction::Outbound);
        }

        // Every tenth request uploads a document.
        if let Some((ok, duration, chunks)) = d.document {
            t.documents().record(
                duration,
                if ok { Outcome::Success } else { Outcome::Error },
                chunks,
                None,
            );
        }

        // Gauges, as a real service would refresh them.
        t.documents().set_queue_length(c.queue_depth);
        t.db().set_pool((20.0 * c.pool_usage).round() as u32, 20);
        t.redis()
            .set_memory((c.redis_memory_usage * (1u64 << 30) as f64) as u64, 1 << 30);
        t.vector_store().set_documents(10_000 + self.steps / 10);
        t.websocket().active().set(12.0);

        // The page's Web Vitals (seconds; CLS a score), from the request's own draws so
        // that a seed's workload stays the same: LCP, INP, CLS, FCP, TTFB.
        let page = d.http.as_secs_f64();
        let values = [
            1.2 + page,
            0.08 + page / 4.0,
            0.05,
            0.6 + page,
            0.15 + page / 2.0,
        ];
        for (h, v) in self.web_vitals.iter().zip(values) {
            h.observe(v);
        }
        if self.steps % 50 == 0 {
            self.web_vitals_rejected.inc();
        }
    }

    /// Runs steps at the configured rate until `stop` is set or `max` has passed.
    pub fn run(&mut self, stop: &Arc<AtomicBool>, max: Option<Duration>) {
        let start = Instant::now();
        let period = Duration::from_secs_f64(1.0 / self.cfg.rate.max(0.001));
        let mut next = start;
        while !stop.load(Ordering::Relaxed) && max.is_none_or(|m| start.elapsed() < m) {
            let now = Instant::now();
            if next > now {
                // Wait in short slices so that `stop` is seen; a step only when it is due,
                // however slow the rate.
                let left = max.map_or(Duration::MAX, |m| m.saturating_sub(start.elapsed()));
                std::thread::sleep((next - now).min(Duration::from_millis(200)).min(left));
                continue;
            }
            self.step();
            // Behind schedule (a slow step): carry on from now rather than burst.
            next = (next + period).max(now);
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }
}

/// The span tree of one simulated request, laid out on its simulated timeline, ending now.
fn trace_request(
    tracer: &SdkTracer,
    d: &Drawn,
    (n, route): (u64, &str),
    method: Method,
    model: &str,
) -> Refs {
    let ms = Duration::from_millis;
    let retrieval = ms(1) + ms(1) + d.embedding.unwrap_or_default() + d.search + d.db;
    let query = retrieval + d.llm;
    let total = query + ms(2);
    let t0 = SystemTime::now() - total;
    let mut server = Sim::open(
        tracer,
        spans::http_server(method, route),
        &Context::new(),
        t0,
    );
    if server.trace_ref().is_none() {
        // Not sampled: the children would not be either.
        server.close(t0 + total);
        return Refs::default();
    }
    let at = |offset: Duration| t0 + offset;
    let mut q = Sim::open(tracer, spans::rag_query(), &server.cx, at(ms(1)));
    let mut now = ms(1);
    let phase = Sim::open(
        tracer,
        spans::rag_phase(RagPhase::Retrieval),
        &q.cx,
        at(now),
    );
    let mut child = |builder: SpanBuilder, len: Duration, attrs: Vec<KeyValue>| {
        let mut s = Sim::open(tracer, builder, &phase.cx, at(now));
        for kv in attrs {
            s.set(kv);
        }
        now += len;
        s.close(at(now));
    };
    let hit = KeyValue::new(semconv::TARS_CACHE_HIT, d.redis_hit);
    child(spans::cache(CacheName::Redis, "GET"), ms(1), vec![hit]);
    let emb_hit = KeyValue::new(semconv::TARS_CACHE_HIT, d.embedding.is_none());
    child(
        spans::cache(CacheName::Embedding, "GET"),
        ms(1),
        vec![emb_hit],
    );
    if let Some(e) = d.embedding {
        child(
            spans::embeddings("ollama", Some("nomic-embed-text")),
            e,
            vec![],
        );
    }
    child(
        spans::vector_search("chroma", Some("documents")),
        d.search,
        vec![],
    );
    child(spans::db_query("postgresql", d.op, None), d.db, vec![]);
    phase.close(at(now));

    let generation = Sim::open(
        tracer,
        spans::rag_phase(RagPhase::Generation),
        &q.cx,
        at(now),
    );
    let mut llm = Sim::open(
        tracer,
        spans::llm("chat", "ollama", model),
        &generation.cx,
        at(now),
    );
    llm.set(KeyValue::new(semconv::GEN_AI_REQUEST_STREAM, true));
    llm.set(KeyValue::new(
        semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
        d.ttft.as_secs_f64(),
    ));
    llm.set(KeyValue::new(
        semconv::GEN_AI_USAGE_INPUT_TOKENS,
        d.input_tokens as i64,
    ));
    llm.set(KeyValue::new(
        semconv::GEN_AI_USAGE_OUTPUT_TOKENS,
        d.output_tokens as i64,
    ));
    if d.llm_failed {
        llm.fail("timeout");
    }
    now += d.llm;
    let llm_ref = llm.close(at(now));
    generation.close(at(now));

    q.set(KeyValue::new(
        semconv::TARS_RAG_SOURCES,
        i64::from(d.sources),
    ));
    q.set(KeyValue::new(semconv::TARS_RAG_RELEVANCE, d.relevance));
    if d.failed {
        q.fail("generation_failed");
        // A log line that leads to this trace (JSON, with its ids, when logs are on).
        let _in = q.cx.clone().attach();
        tars_telemetry::trace::tracing::error!(
            request_id = %format_args!("req-{n}"),
            duration = query.as_secs_f64(),
            "rag query failed: generation error"
        );
    }
    let query_ref = q.close(at(now));
    server.set(KeyValue::new(
        semconv::HTTP_RESPONSE_STATUS_CODE,
        i64::from(d.status),
    ));
    if d.status >= 500 {
        server.fail(&d.status.to_string());
    }
    let server_ref = server.close(t0 + total);
    Refs {
        server: server_ref,
        query: query_ref,
        llm: llm_ref,
    }
}

/// What `rag_demo`'s command line asks for.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// Serve on `listen` and run the workload, for `duration` or until a signal.
    Run {
        listen: String,
        cfg: DemoConfig,
        duration: Option<Duration>,
    },
    /// Print [`USAGE`] and exit successfully.
    Help,
}

/// Flags that take a value.
const VALUE_FLAGS: &[&str] = &[
    "--listen",
    "--rate",
    "--duration",
    "--latency-scale",
    "--failure-rate",
    "--client-error-rate",
    "--cache-hit-rate",
    "--queue-depth",
    "--pool-usage",
    "--redis-memory-usage",
    "--tokens-per-call",
    "--seed",
];

/// Parses `rag_demo`'s flags. An error is a message for the user, usage included.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Invocation, String> {
    let mut listen = "127.0.0.1:9464".to_string();
    let mut cfg = DemoConfig::default();
    let mut duration = None;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--degraded" {
            cfg = DemoConfig {
                rate: cfg.rate,
                ..DemoConfig::degraded()
            };
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Ok(Invocation::Help);
        }
        if !VALUE_FLAGS.contains(&flag.as_str()) {
            return Err(format!("unknown flag {flag}\n\n{USAGE}"));
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let num = || -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("{flag}: {value:?} is not a non-negative number"))
        };
        let share = || -> Result<f64, String> {
            num().and_then(|v| {
                if v <= 1.0 {
                    Ok(v)
                } else {
                    Err(format!("{flag}: {v} is not between 0 and 1"))
                }
            })
        };
        match flag.as_str() {
            "--listen" => listen = value.clone(),
            "--rate" => {
                cfg.rate = num()?;
                if cfg.rate <= 0.0 {
                    return Err(format!("--rate: {value:?} must be above 0"));
                }
            }
            "--duration" => duration = Some(Duration::from_secs_f64(num()?)),
            "--latency-scale" => cfg.latency_scale = num()?,
            "--failure-rate" => cfg.failure_rate = share()?,
            "--client-error-rate" => cfg.client_error_rate = share()?,
            "--cache-hit-rate" => cfg.cache_hit_rate = share()?,
            "--queue-depth" => cfg.queue_depth = num()? as u64,
            "--pool-usage" => cfg.pool_usage = share()?,
            "--redis-memory-usage" => cfg.redis_memory_usage = share()?,
            "--tokens-per-call" => cfg.tokens_per_call = num()? as u64,
            "--seed" => cfg.seed = num()? as u64,
            _ => return Err(format!("unknown flag {flag}\n\n{USAGE}")),
        }
    }
    Ok(Invocation::Run {
        listen,
        cfg,
        duration,
    })
}

pub const USAGE: &str = "\
rag_demo: a simulated RAG service that feeds every tars-telemetry family and serves /metrics

usage: cargo run --release --example rag_demo -- [flags]

  --listen ADDR              where to serve /metrics (default 127.0.0.1:9464)
  --rate N                   RAG requests per second (default 20)
  --duration SECS            stop after SECS (default: until SIGTERM or SIGINT)
  --degraded                 slow, failing and saturated: every alert fires
  --latency-scale F          multiply every latency (12 pushes every latency alert)
  --failure-rate F           share of failing queries, LLM calls, documents, 5xx (0..1)
  --client-error-rate F      share of 4xx responses (0..1)
  --cache-hit-rate F         Redis and embedding cache hit share (0..1)
  --queue-depth N            documents waiting to be ingested
  --pool-usage F             share of the database pool in use (0..1)
  --redis-memory-usage F     share of Redis maxmemory in use (0..1)
  --tokens-per-call N        output tokens per LLM call
  --seed N                   random seed
  -h, --help                 print this help

SIGTERM or SIGINT stops it cleanly: queued spans are sent and it exits 0.
";
