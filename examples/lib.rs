//! The simulated RAG service behind `rag_demo`, kept in a library so that tests can run
//! it in-process beside a real Prometheus, Jaeger or OpenTelemetry Collector.
//!
//! It models the platform's RAG service: each request is served on its own thread, through
//! the library's guards, taking the simulated time of each stage for real (so metrics,
//! spans and exemplars come from the same clock the guards read). The routes do their own
//! work:
//!
//! | route | share | work |
//! |---|---|---|
//! | `POST /api/v1/rag/query` | 70 % | session from Redis; `rag.query`: retrieval (embedding cache, embedding on a miss, vector search in Chroma, chunk metadata from PostgreSQL), rerank, generation (one LLM chat) |
//! | `POST /api/v1/documents/upload` | 10 % | `document.ingest`: parse and chunk, embeddings of the chunks in batches, chunk rows into PostgreSQL |
//! | `GET /api/v1/conversations/{id}` | 20 % | session from Redis, conversation and messages from PostgreSQL |
//!
//! A failure is drawn for one stage of a request and propagates: the stage's span carries
//! `error.type`, each parent up to the RAG query or the document fails with it, and the
//! request answers 503. Client errors (422 on a query or an upload, 404 on a conversation)
//! reject the request before any stage runs.
//!
//! ```
//! use tars_examples::{DemoConfig, Workload};
//! use tars_telemetry::Telemetry;
//!
//! let telemetry = Telemetry::new();
//! // No simulated latency: each step runs at once.
//! let cfg = DemoConfig { latency_scale: 0.0, client_error_rate: 0.0, ..DemoConfig::default() };
//! let mut workload = Workload::new(telemetry.clone(), cfg).unwrap();
//! for _ in 0..100 {
//!     workload.step();
//! }
//! // About 70 of the 100 requests are RAG queries (the rest uploads and conversations).
//! let queries = telemetry.rag().query_count();
//! assert!((50..=90).contains(&queries), "{queries}");
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tars_telemetry::trace::Tracing;
use tars_telemetry::{
    CacheResult, Component, DbOperation, Direction, Error, HttpRoute, LlmModel, Method, Parent,
    RagPhase, Telemetry, Timer, TokenUsage,
};

/// How the simulated service behaves. The defaults keep every alert quiet;
/// [`DemoConfig::degraded`] pushes every alert past its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    /// Requests per second.
    pub rate: f64,
    /// Multiplies every simulated latency (0: no waiting at all).
    pub latency_scale: f64,
    /// Share of requests in which one stage fails (5xx).
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
    /// Output tokens per LLM call (a quarter of them reasoning, on the model that reasons).
    pub tokens_per_call: u64,
    /// Mean prompt tokens per LLM call; a share `cache_hit_rate` of them is read from the
    /// provider's prompt cache, and a quarter of the rest written to it.
    pub prompt_tokens: u64,
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
            prompt_tokens: 600,
            seed: 42,
        }
    }
}

impl DemoConfig {
    /// Slow, failing and saturated enough that every alert of the platform fires.
    pub fn degraded() -> Self {
        DemoConfig {
            latency_scale: 20.0,
            failure_rate: 0.2,
            client_error_rate: 0.25,
            cache_hit_rate: 0.3,
            queue_depth: 150,
            pool_usage: 0.95,
            redis_memory_usage: 0.9,
            tokens_per_call: 0,
            // Long contexts that miss the prompt cache: spend past the daily LLM budget.
            prompt_tokens: 20_000,
            ..DemoConfig::default()
        }
    }
}

/// Base latencies of the stages, in seconds, before [`DemoConfig::latency_scale`]. A healthy
/// RAG query (retrieval, rerank and generation) has its P95 under the 0.25 s of
/// HighRAGQueryLatency; 20 times slower crosses every latency alert.
mod base {
    pub const HTTP: f64 = 0.001;
    pub const REDIS: f64 = 0.0006;
    pub const EMBEDDING_CACHE: f64 = 0.0002;
    pub const EMBEDDING: f64 = 0.02;
    pub const VECTOR_SEARCH: f64 = 0.015;
    pub const DB: f64 = 0.003;
    pub const RERANK: f64 = 0.004;
    /// A whole LLM chat; its first token comes after a quarter of it.
    pub const LLM: f64 = 0.04;
    /// Parsing and chunking a document.
    pub const PARSE: f64 = 0.6;
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

    /// A latency around `base` seconds with a long tail: its P95 is about 3x `base`.
    fn latency(&mut self, base: f64, scale: f64) -> Duration {
        Duration::from_secs_f64(demo_latency(base, scale, self.next_f64()))
    }
}

/// The demo's latency distribution: `base * scale * (0.5 + u + 4u^8)` for `u` uniform in
/// [0, 1). Monotonic in `u`, so its quantile `q` is the value at `u = q`.
///
/// ```
/// let median = tars_examples::demo_latency(0.02, 1.0, 0.5);
/// assert!((median - 0.02 * (1.0 + 4.0 / 256.0)).abs() < 1e-12);
/// ```
pub fn demo_latency(base: f64, scale: f64, u: f64) -> f64 {
    base * scale * (0.5 + u + 4.0 * u.powi(8))
}

/// The base latency (seconds) of each stage the demo simulates, by name.
pub const BASE_LATENCIES: &[(&str, f64)] = &[
    ("http", base::HTTP),
    ("redis", base::REDIS),
    ("embedding_cache", base::EMBEDDING_CACHE),
    ("embedding", base::EMBEDDING),
    ("vector_search", base::VECTOR_SEARCH),
    ("db", base::DB),
    ("rerank", base::RERANK),
    ("llm", base::LLM),
    ("parse", base::PARSE),
];

const MODELS: &[&str] = &["llama3:8b", "mistral:7b"];

/// The demo's pricing table (dollars per million tokens; mistral's cache unpriced, so that
/// the unpriced series have data).
pub fn demo_pricing() -> tars_telemetry::LlmPricing {
    tars_telemetry::LlmPricing::from_json(include_str!("llm-pricing.json"))
        .expect("examples/llm-pricing.json is a pricing table (checked by its test)")
}

/// The route templates the service serves.
pub const QUERY_ROUTE: &str = "/api/v1/rag/query";
pub const UPLOAD_ROUTE: &str = "/api/v1/documents/upload";
pub const CONVERSATION_ROUTE: &str = "/api/v1/conversations/{id}";
pub const HEALTH_ROUTE: &str = "/health";

/// Requests served at once at most; beyond that the service sheds load (503).
const MAX_IN_FLIGHT: usize = 512;
/// How long requests in flight may finish when the service stops; then they are cancelled.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Query,
    Upload,
    Conversation,
}

/// Which stage of a request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Llm,
    VectorSearch,
    Embedding,
    Db,
}

/// One request, drawn before it runs (the order of the draws keeps a seed's workload the
/// same).
#[derive(Debug)]
struct Plan {
    n: u64,
    kind: Kind,
    model: usize,
    /// Rejected before any work, with this status.
    client_error: Option<u16>,
    fault: Option<Fault>,
    http: Duration,
    redis_hit: bool,
    redis: Duration,
    embedding_cached: bool,
    embedding_cache: Duration,
    embedding: Duration,
    search: Duration,
    db: Duration,
    rerank: Duration,
    llm: Duration,
    input_tokens: u64,
    /// Share of the prompt read from the provider's cache.
    prompt_cached: f64,
    sources: u32,
    relevance: f64,
    parse: Duration,
    chunks: u32,
}

/// Why a stage did not finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// It failed with this `error.type`.
    Failed(&'static str),
    /// The service is stopping.
    Cancelled,
}

/// The service's shared state: what every request thread reads.
#[derive(Debug)]
struct Service {
    t: Telemetry,
    tokens_per_call: u64,
    query: HttpRoute,
    upload: HttpRoute,
    conversation: HttpRoute,
    health: HttpRoute,
    models: Vec<LlmModel>,
    in_flight: AtomicUsize,
    cancel: AtomicBool,
}

/// The simulated RAG service: each [`Workload::step`] is one user request.
#[derive(Debug)]
pub struct Workload {
    svc: Arc<Service>,
    cfg: DemoConfig,
    rng: Rng,
    steps: u64,
    probe: bool,
    threads: Vec<JoinHandle<()>>,
    /// A service's dependencies record through the `metrics` facade; the workload does too,
    /// which also exposes the facade's own self-metric family (every reason at 0).
    facade_requests: metrics::Counter,
    /// The UI's pages report Web Vitals (LCP, INP, CLS, FCP, TTFB), as the Node UI server
    /// records them; and a malformed report now and then.
    web_vitals: Vec<tars_telemetry::Histogram>,
    web_vitals_rejected: tars_telemetry::Counter,
}

impl Workload {
    pub fn new(t: Telemetry, cfg: DemoConfig) -> Result<Self, Error> {
        // The demo's models are priced (examples/llm-pricing.json) unless the telemetry
        // came with a table of its own.
        if t.llm().pricing().is_empty() {
            t.llm().set_pricing(demo_pricing());
        }
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
        let svc = Service {
            query: t.http().route(QUERY_ROUTE),
            upload: t.http().route(UPLOAD_ROUTE),
            conversation: t.http().route(CONVERSATION_ROUTE),
            health: t.http().route(HEALTH_ROUTE),
            tokens_per_call: cfg.tokens_per_call,
            models,
            in_flight: AtomicUsize::new(0),
            cancel: AtomicBool::new(false),
            t,
        };
        Ok(Workload {
            facade_requests,
            web_vitals,
            web_vitals_rejected,
            rng: Rng(cfg.seed.max(1)),
            svc: Arc::new(svc),
            cfg,
            steps: 0,
            probe: false,
            threads: Vec::new(),
        })
    }

    /// With tracing installed on the workload's telemetry, the guards make the spans; this
    /// adds what a traced service also sees: a kubelet `/health` probe per request, which
    /// the platform's sampler never keeps.
    pub fn with_tracing(mut self, _tracing: &Tracing) -> Self {
        self.probe = true;
        self
    }

    /// Serves one request on this thread, taking its simulated time.
    pub fn step(&mut self) {
        let plan = self.next_plan();
        self.svc.in_flight.fetch_add(1, Ordering::Relaxed);
        self.svc.serve(&plan);
    }

    /// Draws the next request and refreshes what a service refreshes per request.
    fn next_plan(&mut self) -> Plan {
        self.steps += 1;
        let plan = draw(&mut self.rng, &self.cfg, self.steps);
        self.facade_requests.increment(1);
        if self.probe {
            // The kubelet's probe: never sampled, whatever the service's ratio.
            let probe = self.svc.health.start_with(Method::Get, Parent::Root);
            probe.finish(200);
        }
        self.refresh_gauges();
        self.web_vitals(&plan);
        plan
    }

    /// The page's Web Vitals (seconds; CLS a score), from the request's own draws so that
    /// a seed's workload stays the same: LCP, INP, CLS, FCP, TTFB.
    fn web_vitals(&self, plan: &Plan) {
        let page = plan.http.as_secs_f64();
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
        if self.steps.is_multiple_of(50) {
            self.web_vitals_rejected.inc();
        }
    }

    fn refresh_gauges(&self) {
        let (t, c) = (&self.svc.t, &self.cfg);
        t.documents().set_queue_length(c.queue_depth);
        t.db().set_pool((20.0 * c.pool_usage).round() as u32, 20);
        t.redis()
            .set_memory((c.redis_memory_usage * (1u64 << 30) as f64) as u64, 1 << 30);
        t.vector_store().set_documents(10_000 + self.steps / 10);
        t.websocket().active().set(12.0);
    }

    /// Starts requests at the configured rate, each on its own thread, until `stop` is set
    /// or `max` has passed; then lets those in flight finish (5 s at most, the rest are
    /// cancelled) and returns.
    pub fn run(&mut self, stop: &Arc<AtomicBool>, max: Option<Duration>) {
        let start = Instant::now();
        let period = Duration::from_secs_f64(1.0 / self.cfg.rate.max(0.001));
        let mut next = start;
        while !stop.load(Ordering::Relaxed) && max.is_none_or(|m| start.elapsed() < m) {
            let now = Instant::now();
            if next > now {
                // Wait in short slices so that `stop` is seen; a request only when it is
                // due, however slow the rate.
                let left = max.map_or(Duration::MAX, |m| m.saturating_sub(start.elapsed()));
                std::thread::sleep((next - now).min(Duration::from_millis(200)).min(left));
                continue;
            }
            self.spawn_request();
            // Behind schedule: carry on from now rather than burst.
            next = (next + period).max(now);
        }
        self.drain();
    }

    fn spawn_request(&mut self) {
        self.threads.retain(|h| !h.is_finished());
        let plan = self.next_plan();
        let svc = self.svc.clone();
        if svc.in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_IN_FLIGHT {
            svc.shed(&plan);
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("rag-request".into())
            .stack_size(256 * 1024)
            .spawn(move || svc.serve(&plan));
        match spawned {
            Ok(h) => self.threads.push(h),
            Err(_) => {
                self.svc.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits for the requests in flight; past [`DRAIN`], cancels them.
    fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN;
        while self.svc.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.svc.cancel.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        self.svc.cancel.store(false, Ordering::Relaxed);
    }

    /// Requests started so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

fn draw(r: &mut Rng, c: &DemoConfig, n: u64) -> Plan {
    let s = c.latency_scale;
    let pick = r.next_f64();
    let kind = if pick < 0.7 {
        Kind::Query
    } else if pick < 0.8 {
        Kind::Upload
    } else {
        Kind::Conversation
    };
    let client_error = r.chance(c.client_error_rate).then_some(match kind {
        Kind::Conversation => 404,
        _ => 422,
    });
    let fault = if r.chance(c.failure_rate) {
        let f = r.next_f64();
        Some(match kind {
            Kind::Query if f < 0.6 => Fault::Llm,
            Kind::Query if f < 0.85 => Fault::VectorSearch,
            Kind::Query => Fault::Embedding,
            Kind::Upload if f < 0.7 => Fault::Embedding,
            Kind::Upload | Kind::Conversation => Fault::Db,
        })
    } else {
        None
    };
    let redis_hit = r.chance(c.cache_hit_rate);
    // A query's embedding missing the cache is computed, then searched with.
    let embedding_cached = r.chance(c.cache_hit_rate) && fault != Some(Fault::Embedding);
    Plan {
        n,
        kind,
        model: (n % MODELS.len() as u64) as usize,
        client_error,
        fault,
        http: r.latency(base::HTTP, s),
        redis_hit,
        redis: r.latency(base::REDIS, s),
        embedding_cached,
        embedding_cache: r.latency(base::EMBEDDING_CACHE, s),
        embedding: r.latency(base::EMBEDDING, s),
        search: r.latency(base::VECTOR_SEARCH, s),
        db: r.latency(base::DB, s),
        rerank: r.latency(base::RERANK, s),
        llm: r.latency(base::LLM, s),
        input_tokens: (c.prompt_tokens as f64 * (0.67 + r.next_f64() * 0.66)) as u64,
        sources: 1 + (r.next_f64() * 8.0) as u32,
        relevance: 0.5 + r.next_f64() * 0.5,
        parse: r.latency(base::PARSE, s),
        chunks: 10 + (r.next_f64() * 50.0) as u32,
        prompt_cached: (c.cache_hit_rate * r.next_f64() * 2.0).min(1.0),
    }
}

/// The error a failing stage reports (`error.type`).
fn error_type(f: Fault) -> &'static str {
    match f {
        Fault::Llm => "timeout",
        Fault::VectorSearch => "ConnectionRefused",
        Fault::Embedding => "timeout",
        Fault::Db => "ConnectionReset",
    }
}

fn component(f: Fault) -> Component {
    match f {
        Fault::Llm => Component::Llm,
        Fault::VectorSearch => Component::VectorStore,
        Fault::Embedding => Component::Embedding,
        Fault::Db => Component::Database,
    }
}

fn path(plan: &Plan) -> String {
    match plan.kind {
        Kind::Query => QUERY_ROUTE.to_string(),
        Kind::Upload => UPLOAD_ROUTE.to_string(),
        Kind::Conversation => format!("/api/v1/conversations/c-{}", plan.n % 1000),
    }
}

impl Service {
    /// Takes `d` of simulated time; `Err(Cancelled)` when the service stops meanwhile.
    fn wait(&self, d: Duration) -> Result<(), Stop> {
        let end = Instant::now() + d;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(Stop::Cancelled);
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }

    /// A timed stage that takes `d` and fails when `fails`.
    fn timed(&self, mut timer: Timer, d: Duration, fails: Option<Fault>) -> Result<(), Stop> {
        if let Err(stop) = self.wait(d) {
            timer.abandon_with("cancelled");
            return Err(stop);
        }
        match fails {
            Some(f) => {
                let e = error_type(f);
                timer.record_error(e);
                // The log line of the failure, on the failing stage's span.
                let _in = timer.enter();
                tars_telemetry::trace::tracing::error!(error_type = e, "{:?} failed", f);
                drop(_in);
                timer.stop();
                self.t.errors().record(component(f), e);
                Err(Stop::Failed(e))
            }
            None => {
                timer.stop();
                Ok(())
            }
        }
    }

    fn fault(&self, plan: &Plan, f: Fault) -> Option<Fault> {
        (plan.fault == Some(f)).then_some(f)
    }

    /// A request rejected because too many are in flight.
    fn shed(&self, plan: &Plan) {
        let mut req = self
            .t
            .http()
            .start(method(plan.kind), &path(plan), Parent::Root);
        req.set_route(self.route(plan.kind));
        req.finish(503);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn route(&self, kind: Kind) -> &HttpRoute {
        match kind {
            Kind::Query => &self.query,
            Kind::Upload => &self.upload,
            Kind::Conversation => &self.conversation,
        }
    }

    /// One request: the server span, routed, then the route's work; the status follows
    /// from how the work ended.
    fn serve(&self, plan: &Plan) {
        let mut req = self
            .t
            .http()
            .start(method(plan.kind), &path(plan), Parent::Root);
        req.set_route(self.route(plan.kind));
        let outcome = {
            let _in = req.enter();
            let half = plan.http / 2;
            self.wait(half).and_then(|()| {
                let r = match plan.client_error {
                    Some(status) => Ok(status),
                    None => match plan.kind {
                        Kind::Query => self.query(plan).map(|()| 200),
                        Kind::Upload => self.upload(plan).map(|()| 201),
                        Kind::Conversation => self.conversation(plan).map(|()| 200),
                    },
                };
                self.wait(half).and(r)
            })
        };
        match outcome {
            Ok(status) => {
                req.finish(status);
            }
            Err(Stop::Failed(_)) => {
                req.finish(503);
            }
            Err(Stop::Cancelled) => req.abandon_with("cancelled"),
        }
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The conversation context, from Redis (written back on a miss).
    fn session(&self, plan: &Plan) -> Result<(), Stop> {
        let get = self.t.redis().start_command("GET");
        if let Err(stop) = self.wait(plan.redis) {
            get.abandon_with("cancelled");
            return Err(stop);
        }
        if !get.finish_lookup(plan.redis_hit) {
            let set = self.t.redis().start_command("SETEX");
            if let Err(stop) = self.wait(plan.redis) {
                set.abandon_with("cancelled");
                return Err(stop);
            }
            set.finish(CacheResult::Ok);
        }
        Ok(())
    }

    fn query(&self, plan: &Plan) -> Result<(), Stop> {
        self.session(plan)?;
        let t = &self.t;
        let mut query = t.rag().start_query();
        let r = self.rag(plan, &query);
        match r {
            Ok(()) => {
                query.set_sources(plan.sources);
                query.set_relevance(plan.relevance);
                query.succeed();
                t.rag().record_sources(plan.sources);
                t.rag().record_relevance(plan.relevance);
                // The UI's WebSocket: the question in, the streamed answer out.
                t.websocket().message(Direction::Inbound);
                for _ in 0..3 {
                    t.websocket().message(Direction::Outbound);
                }
            }
            Err(Stop::Failed(e)) => {
                query.fail_with(e);
                t.errors().record(Component::Rag, "query_failed");
            }
            Err(Stop::Cancelled) => query.abandon_with("cancelled"),
        }
        r
    }

    /// A phase of `query` around `work`: the phase fails with the first failure inside.
    fn phase(
        &self,
        query: &tars_telemetry::RagQuery,
        phase: RagPhase,
        work: impl FnOnce() -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        let mut timer = query.phase(phase);
        let r = {
            let _in = timer.enter();
            work()
        };
        match r {
            Ok(()) => {
                timer.stop();
            }
            Err(Stop::Failed(e)) => {
                timer.record_error(e);
                timer.stop();
            }
            Err(Stop::Cancelled) => timer.abandon_with("cancelled"),
        }
        r
    }

    fn rag(&self, plan: &Plan, query: &tars_telemetry::RagQuery) -> Result<(), Stop> {
        let t = &self.t;
        self.phase(query, RagPhase::Retrieval, || {
            let lookup = t.embeddings().start_cache_lookup();
            if let Err(stop) = self.wait(plan.embedding_cache) {
                lookup.abandon_with("cancelled");
                return Err(stop);
            }
            if !lookup.finish_lookup(plan.embedding_cached) {
                self.timed(
                    t.embeddings().start(),
                    plan.embedding,
                    self.fault(plan, Fault::Embedding),
                )?;
                t.embeddings().add_generated(1);
            }
            self.timed(
                t.vector_store().start_search(),
                plan.search,
                self.fault(plan, Fault::VectorSearch),
            )?;
            self.timed(
                t.db()
                    .query_summary(DbOperation::Select, "SELECT document_chunks"),
                plan.db,
                None,
            )
        })?;
        self.phase(query, RagPhase::Rerank, || self.wait(plan.rerank))?;
        self.phase(query, RagPhase::Generation, || {
            let mut call = self.models[plan.model].start();
            call.set_input_tokens(plan.input_tokens);
            let ttft = plan.llm / 4;
            let streamed = self
                .wait(ttft)
                .map(|()| call.first_token())
                .and_then(|()| self.wait(plan.llm - ttft));
            if let Err(stop) = streamed {
                call.abandon_with("cancelled");
                return Err(stop);
            }
            match self.fault(plan, Fault::Llm) {
                Some(f) => {
                    let e = error_type(f);
                    {
                        let _in = call.enter();
                        tars_telemetry::trace::tracing::error!(
                            error_type = e,
                            model = MODELS[plan.model],
                            "LLM chat failed"
                        );
                    }
                    call.fail_with(e);
                    t.errors().record(Component::Llm, e);
                    Err(Stop::Failed(e))
                }
                None => {
                    // The provider's usage, by kind, at the end of the stream.
                    let cached = (plan.input_tokens as f64 * plan.prompt_cached) as u64;
                    call.set_usage(TokenUsage {
                        input_tokens: plan.input_tokens,
                        cache_read_input_tokens: cached,
                        cache_write_input_tokens: (plan.input_tokens - cached) / 4,
                        output_tokens: self.tokens_per_call,
                        reasoning_output_tokens: if plan.model == 1 {
                            self.tokens_per_call / 4
                        } else {
                            0
                        },
                    });
                    call.succeed();
                    Ok(())
                }
            }
        })
    }

    /// A document: parsed and chunked, its chunks embedded in batches of 16, their rows
    /// written to PostgreSQL.
    fn upload(&self, plan: &Plan) -> Result<(), Stop> {
        let t = &self.t;
        let job = t.documents().start();
        let r = {
            let _in = job.enter();
            self.ingest(plan)
        };
        match r {
            Ok(()) => {
                job.succeed(plan.chunks);
            }
            Err(Stop::Failed(e)) => {
                job.fail_with(e);
                t.errors().record(Component::Documents, "ingestion_failed");
            }
            Err(Stop::Cancelled) => job.abandon_with("cancelled"),
        }
        r
    }

    fn ingest(&self, plan: &Plan) -> Result<(), Stop> {
        let t = &self.t;
        self.wait(plan.parse)?;
        let batches = plan.chunks.div_ceil(16);
        for b in 0..batches {
            let fails = (b + 1 == batches)
                .then(|| self.fault(plan, Fault::Embedding))
                .flatten();
            self.timed(t.embeddings().start(), plan.embedding, fails)?;
            t.embeddings()
                .add_generated(u64::from((plan.chunks - 16 * b).min(16)));
        }
        self.timed(
            t.db()
                .query_summary(DbOperation::Insert, "INSERT document_chunks"),
            plan.db,
            self.fault(plan, Fault::Db),
        )
    }

    /// A conversation and its messages.
    fn conversation(&self, plan: &Plan) -> Result<(), Stop> {
        let t = &self.t;
        self.session(plan)?;
        self.timed(
            t.db()
                .query_summary(DbOperation::Select, "SELECT conversations"),
            plan.db,
            None,
        )?;
        self.timed(
            t.db().query_summary(DbOperation::Select, "SELECT messages"),
            plan.db,
            self.fault(plan, Fault::Db),
        )
    }
}

fn method(kind: Kind) -> Method {
    match kind {
        Kind::Query | Kind::Upload => Method::Post,
        Kind::Conversation => Method::Get,
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
    "--prompt-tokens",
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
            "--prompt-tokens" => cfg.prompt_tokens = num()? as u64,
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
  --rate N                   requests per second (default 20)
  --duration SECS            stop after SECS (default: until SIGTERM or SIGINT)
  --degraded                 slow, failing and saturated: every alert fires
  --latency-scale F          multiply every latency (12 pushes every latency alert)
  --failure-rate F           share of requests in which a stage fails: 5xx (0..1)
  --client-error-rate F      share of 4xx responses (0..1)
  --cache-hit-rate F         Redis and embedding cache hit share (0..1)
  --queue-depth N            documents waiting to be ingested
  --pool-usage F             share of the database pool in use (0..1)
  --redis-memory-usage F     share of Redis maxmemory in use (0..1)
  --tokens-per-call N        output tokens per LLM call
  --prompt-tokens N          mean prompt tokens per LLM call (a share cache-hit-rate of
                             them read from the prompt cache); priced by the table of
                             TARS_LLM_PRICING_FILE, else examples/llm-pricing.json
  --seed N                   random seed
  -h, --help                 print this help

SIGTERM or SIGINT stops it cleanly: queued spans are sent and it exits 0.
";

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_pricing_table_prices_both_models() {
        let p = super::demo_pricing();
        for m in super::MODELS {
            assert!(p.model(m).is_some(), "{m} has no price");
        }
    }
}
