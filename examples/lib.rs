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
use std::time::{Duration, Instant};

use tars_telemetry::{
    CacheOperation, CacheResult, Component, DbOperation, Direction, Error, HttpRoute, LlmModel,
    LlmUsage, Method, Outcome, RagPhase, Telemetry,
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
        Ok(Workload {
            rng: Rng(cfg.seed.max(1)),
            t,
            cfg,
            routes,
            models,
            steps: 0,
        })
    }

    /// Simulates one request through every stage of the service.
    pub fn step(&mut self) {
        let (t, c, r) = (&self.t, &self.cfg, &mut self.rng);
        let s = c.latency_scale;
        self.steps += 1;

        // Retrieval: Redis first, then an embedding (maybe cached), then the vector store.
        let cached = t.redis().lookup(r.chance(c.cache_hit_rate));
        if !cached {
            t.redis().record(CacheOperation::Set, CacheResult::Ok);
        }
        if !t.embeddings().cache_lookup(r.chance(c.cache_hit_rate)) {
            t.embeddings().record(r.latency(0.03, s), 1);
        }
        let search = r.latency(0.02, s);
        t.vector_store().record_search(search);
        let op = DB_OPS[(r.next_f64() * DB_OPS.len() as f64) as usize % DB_OPS.len()];
        t.db().record(op, r.latency(0.004, s));
        t.rag().record_phase(RagPhase::Retrieval, search);

        // Generation.
        let model = &self.models[(self.steps % 2) as usize];
        let llm_failed = r.chance(c.failure_rate);
        let ttft = r.latency(0.08, s);
        let duration = ttft + r.latency(0.25, s);
        model.record(
            &LlmUsage {
                duration,
                input_tokens: 400 + (r.next_f64() * 400.0) as u64,
                output_tokens: if llm_failed { 0 } else { c.tokens_per_call },
                time_to_first_token: Some(ttft),
            },
            if llm_failed { Outcome::Error } else { Outcome::Success },
            None,
        );
        t.rag().record_phase(RagPhase::Generation, duration);

        // The RAG query as a whole (its latency panel tracks the retrieval-bound path).
        let failed = llm_failed || r.chance(c.failure_rate);
        t.rag().record_query(
            r.latency(0.04, s),
            if failed { Outcome::Error } else { Outcome::Success },
            None,
        );
        t.rag().record_sources(1 + (r.next_f64() * 8.0) as u32);
        t.rag().record_relevance(0.5 + r.next_f64() * 0.5);
        if failed {
            t.errors().record(Component::Rag, "generation_failed");
        }

        // The HTTP request that carried it.
        let (route, method) = &self.routes[(self.steps % 3) as usize];
        let status = if failed || r.chance(c.failure_rate) {
            503
        } else if r.chance(c.client_error_rate) {
            if r.chance(0.5) { 404 } else { 422 }
        } else {
            200
        };
        route.record(*method, status, r.latency(0.05, s), None);

        // The UI's WebSocket: a question in, a few streamed chunks out.
        t.websocket().message(Direction::Inbound);
        for _ in 0..3 {
            t.websocket().message(Direction::Outbound);
        }

        // Every tenth request uploads a document.
        if self.steps % 10 == 0 {
            let ok = !r.chance(c.failure_rate);
            t.documents().record(
                r.latency(1.0, s),
                if ok { Outcome::Success } else { Outcome::Error },
                ok.then_some(10 + (r.next_f64() * 50.0) as u32),
            );
        }

        // Gauges, as a real service would refresh them.
        t.documents().set_queue_length(c.queue_depth);
        t.db().set_pool((20.0 * c.pool_usage).round() as u32, 20);
        t.redis()
            .set_memory((c.redis_memory_usage * (1u64 << 30) as f64) as u64, 1 << 30);
        t.vector_store().set_documents(10_000 + self.steps / 10);
        t.websocket().active().set(12.0);
    }

    /// Runs steps at the configured rate until `stop` is set or `max` has passed.
    pub fn run(&mut self, stop: &Arc<AtomicBool>, max: Option<Duration>) {
        let start = Instant::now();
        let period = Duration::from_secs_f64(1.0 / self.cfg.rate.max(0.001));
        let mut next = start;
        while !stop.load(Ordering::Relaxed) && max.is_none_or(|m| start.elapsed() < m) {
            self.step();
            next += period;
            let now = Instant::now();
            if next > now {
                std::thread::sleep((next - now).min(Duration::from_millis(200)));
            } else {
                next = now;
            }
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }
}

/// Parses `rag_demo`'s flags. Returns the listen address, the config and the duration.
pub fn parse_args(
    args: impl IntoIterator<Item = String>,
) -> Result<(String, DemoConfig, Option<Duration>), String> {
    let mut listen = "127.0.0.1:9464".to_string();
    let mut cfg = DemoConfig::default();
    let mut duration = None;
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "--degraded" {
            cfg = DemoConfig { rate: cfg.rate, ..DemoConfig::degraded() };
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
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
                if v <= 1.0 { Ok(v) } else { Err(format!("{flag}: {v} is not between 0 and 1")) }
            })
        };
        match flag.as_str() {
            "--listen" => listen = value.clone(),
            "--rate" => cfg.rate = num()?.max(0.001),
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
    Ok((listen, cfg, duration))
}

pub const USAGE: &str = "\
rag_demo: a simulated RAG service that feeds every tars-telemetry family and serves /metrics

usage: cargo run --release --example rag_demo -- [flags]

  --listen ADDR              where to serve /metrics (default 127.0.0.1:9464)
  --rate N                   RAG requests per second (default 20)
  --duration SECS            stop after SECS (default: run until interrupted)
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
";
