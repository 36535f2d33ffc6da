//! Tracing settings: from the standard `OTEL_*` environment, or built in code.

use std::time::Duration;

use super::sampler::{BaseSampler, SamplingRules};

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (the collector's port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (the collector's port 4318, path `/v1/traces`).
    HttpProtobuf,
    /// OTLP over HTTP with JSON bodies (same port and path; cargo feature `otlp-http-json`).
    HttpJson,
}

impl Protocol {
    /// Parses `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`, `http/protobuf`).
    ///
    /// ```
    /// use tars_telemetry::trace::Protocol;
    /// assert_eq!(Protocol::parse("grpc"), Some(Protocol::Grpc));
    /// assert_eq!(Protocol::parse("http/protobuf"), Some(Protocol::HttpProtobuf));
    /// assert_eq!(Protocol::parse("http/json"), Some(Protocol::HttpJson));
    /// assert_eq!(Protocol::parse("http"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" => Some(Protocol::HttpProtobuf),
            "http/json" => Some(Protocol::HttpJson),
            _ => None,
        }
    }

    /// The endpoint used when none is configured (the OpenTelemetry defaults).
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf | Protocol::HttpJson => "http://localhost:4318/v1/traces",
        }
    }

    /// The value as `OTEL_EXPORTER_OTLP_PROTOCOL` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }
}

/// A remote service that stages call, named on their client spans with `server.address`,
/// `server.port` and `peer.service` (what trace backends draw dependency graphs from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Peer {
    /// The LLM server (LLM and embedding spans): `TARS_LLM_ADDRESS`, e.g. `ollama:11434`.
    Llm,
    /// The database (database spans): `TARS_DB_ADDRESS`, e.g. `postgres:5432`.
    Database,
    /// Redis (Redis command spans): `TARS_REDIS_ADDRESS`, e.g. `redis:6379`.
    Redis,
    /// The vector store (vector search spans): `TARS_VECTOR_STORE_ADDRESS`, e.g.
    /// `chromadb:8000`.
    VectorStore,
    /// This service's own HTTP address, on server spans: `TARS_HTTP_ADDRESS`.
    Http,
}

impl Peer {
    /// Every peer.
    pub const ALL: [Peer; 5] = [
        Peer::Llm,
        Peer::Database,
        Peer::Redis,
        Peer::VectorStore,
        Peer::Http,
    ];

    /// The environment variable that gives this peer's address.
    pub fn env_var(self) -> &'static str {
        match self {
            Peer::Llm => "TARS_LLM_ADDRESS",
            Peer::Database => "TARS_DB_ADDRESS",
            Peer::Redis => "TARS_REDIS_ADDRESS",
            Peer::VectorStore => "TARS_VECTOR_STORE_ADDRESS",
            Peer::Http => "TARS_HTTP_ADDRESS",
        }
    }
}

/// A host and port, as `server.address` and `server.port` carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// `server.address`: a host name or IP address.
    pub host: String,
    /// `server.port`, when known.
    pub port: Option<u16>,
}

impl PeerAddress {
    /// Parses `host`, `host:port`, `[v6]:port` or a URL (`http://ollama:11434/api`,
    /// `postgresql://user@postgres:5432/db`); `None` when no host can be read.
    ///
    /// ```
    /// use tars_telemetry::trace::PeerAddress;
    /// let a = PeerAddress::parse("http://ollama:11434/api").unwrap();
    /// assert_eq!((a.host.as_str(), a.port), ("ollama", Some(11434)));
    /// let a = PeerAddress::parse("postgresql://tars@postgres:5432/tars").unwrap();
    /// assert_eq!((a.host.as_str(), a.port), ("postgres", Some(5432)));
    /// assert_eq!(PeerAddress::parse("redis").unwrap().port, None);
    /// assert!(PeerAddress::parse("http://:80").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<PeerAddress> {
        let s = s.trim();
        let rest = s.split_once("://").map_or(s, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None => None,
        };
        Some(PeerAddress {
            host: host.to_string(),
            port,
        })
    }
}

/// Where and how traces go: service name, OTLP endpoint and protocol, resource attributes,
/// sampling rules, the export queue, and the GenAI/database details stage spans carry.
///
/// [`TraceConfig::from_env`] reads the standard environment:
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `OTEL_SERVICE_NAME` | `service.name` (also read from `OTEL_RESOURCE_ATTRIBUTES`) | `unknown_service` |
/// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full URL of the traces endpoint | |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; `/v1/traces` is appended for HTTP | per protocol |
/// | `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` | `grpc` or `http/protobuf` | `http/protobuf` |
/// | `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `..._TIMEOUT`, `..._COMPRESSION` | read by the exporter itself | |
/// | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | the base sampler ([`BaseSampler`]) | platform rules |
/// | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,...` (percent-encoded values) | |
/// | `OTEL_BSP_MAX_QUEUE_SIZE` | spans held for export; more are dropped | 2048 |
/// | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | spans per export | 512 |
/// | `OTEL_BSP_SCHEDULE_DELAY` | ms between exports | 5000 |
/// | `OTEL_BSP_EXPORT_TIMEOUT` | ms one export may take | 10000 |
/// | `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` | `true` to capture prompts and responses | off |
/// | `TARS_TRACES_ALWAYS_ROUTES`, `TARS_TRACES_NEVER_ROUTES` | comma-separated route lists replacing the defaults | |
/// | `TARS_GENAI_PROVIDER` | `gen_ai.provider.name` of LLM and embedding spans | `ollama` |
/// | `TARS_GENAI_LEGACY_SYSTEM` | `true`: the provider also as `gen_ai.system`, its name before GenAI conventions 1.37 | `false` |
/// | `OTEL_SDK_DISABLED` | `true`: no spans at all (metrics are unaffected) | `false` |
/// | `TARS_LLM_ADDRESS`, `TARS_DB_ADDRESS`, `TARS_REDIS_ADDRESS`, `TARS_VECTOR_STORE_ADDRESS`, `TARS_HTTP_ADDRESS` | `server.address`/`server.port` of the stages' spans ([`Peer`]) | unset |
///
/// The resource always carries `service.instance.id` (a random UUID per process unless
/// `OTEL_RESOURCE_ATTRIBUTES` gives one) and `service.version` when known
/// (`OTEL_RESOURCE_ATTRIBUTES`, or [`TraceConfig::with_service_version`]).
///
/// Invalid values fall back to the default and are reported by [`TraceConfig::warnings`].
///
/// ```
/// use std::time::Duration;
/// use tars_telemetry::trace::{Protocol, TraceConfig};
///
/// let config = TraceConfig::from_lookup(|k| match k {
///     "OTEL_SERVICE_NAME" => Some("tars-rag-service".into()),
///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://otel-collector:4318".into()),
///     _ => None,
/// });
/// assert_eq!(config.endpoint(), "http://otel-collector:4318/v1/traces");
///
/// let config = TraceConfig::new("tars-backend")
///     .with_endpoint("http://127.0.0.1:4317")
///     .with_protocol(Protocol::Grpc)
///     .with_schedule_delay(Duration::from_millis(200));
/// assert_eq!(config.service_name(), "tars-backend");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    pub(crate) service_name: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Protocol,
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) sampling: SamplingRules,
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) schedule_delay: Duration,
    pub(crate) export_timeout: Duration,
    pub(crate) genai_provider: String,
    /// Also write the provider as `gen_ai.system`, its name before GenAI conventions 1.37.
    pub(crate) genai_legacy_system: bool,
    pub(crate) genai_operation: String,
    pub(crate) embedding_model: Option<String>,
    pub(crate) db_system: String,
    /// `db.namespace` of database spans: the database's name.
    pub(crate) db_namespace: Option<String>,
    pub(crate) vector_store_system: String,
    pub(crate) vector_collection: Option<String>,
    pub(crate) capture_message_content: bool,
    pub(crate) service_version: Option<String>,
    pub(crate) peers: Vec<(Peer, PeerAddress)>,
    pub(crate) disabled: bool,
    pub(crate) warnings: Vec<String>,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig::new("unknown_service")
    }
}

/// The database a URL names in its path (`postgresql://u@h:5432/tars?x=y` → `tars`).
fn database_of_url(url: &str) -> Option<String> {
    let (_, rest) = url.trim().split_once("://")?;
    let path = rest.split_once('/')?.1;
    let db = path.split(['?', '#', '/']).next().unwrap_or("");
    (!db.is_empty()).then(|| db.to_string())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Decodes `%XX` escapes (as `OTEL_RESOURCE_ATTRIBUTES` values use); bad escapes are kept.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `key=value,key2=value2`; entries without `=` or with an empty key are skipped.
pub(crate) fn parse_resource_attributes(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (percent_decode(k), percent_decode(v.trim())))
        })
        .collect()
}

fn routes(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(String::from)
        .collect()
}

impl TraceConfig {
    /// Defaults for `service`: the platform sampling rules, OTLP over HTTP/protobuf to the
    /// default endpoint, a queue of 2048 spans.
    pub fn new(service: impl Into<String>) -> Self {
        TraceConfig {
            service_name: service.into(),
            endpoint: None,
            protocol: Protocol::HttpProtobuf,
            resource: Vec::new(),
            sampling: SamplingRules::default(),
            max_queue_size: 2048,
            max_export_batch_size: 512,
            schedule_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(10_000),
            genai_provider: "ollama".into(),
            genai_legacy_system: false,
            genai_operation: "chat".into(),
            embedding_model: None,
            db_system: "postgresql".into(),
            db_namespace: None,
            vector_store_system: "chroma".into(),
            vector_collection: None,
            capture_message_content: false,
            service_version: None,
            peers: Vec::new(),
            disabled: false,
            warnings: Vec::new(),
        }
    }

    /// Reads the process environment (see the table above).
    pub fn from_env() -> Self {
        TraceConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the environment through `var` (for tests, and for bindings that hold their
    /// own environment).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let mut c = TraceConfig::new("unknown_service");
        let mut warnings = Vec::new();

        if let Some(attrs) = get("OTEL_RESOURCE_ATTRIBUTES") {
            c.resource = parse_resource_attributes(&attrs);
        }
        if let Some(name) = c
            .resource
            .iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v.clone())
        {
            c.service_name = name;
        }
        c.resource.retain(|(k, _)| k != "service.name");
        if let Some(name) = get("OTEL_SERVICE_NAME") {
            c.service_name = name.trim().to_string();
        }

        let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(p) = protocol {
            match Protocol::parse(&p) {
                Some(p) => c.protocol = p,
                None => warnings.push(format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={p:?} is not supported (grpc, http/protobuf, http/json); using http/protobuf"
                )),
            }
        }
        if let Some(e) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            c.endpoint = Some(e.trim().to_string());
        } else if let Some(e) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            let base = e.trim().trim_end_matches('/');
            c.endpoint = Some(match c.protocol {
                Protocol::Grpc => base.to_string(),
                Protocol::HttpProtobuf | Protocol::HttpJson => format!("{base}/v1/traces"),
            });
        }

        if let Some(name) = get("OTEL_TRACES_SAMPLER") {
            let arg = get("OTEL_TRACES_SAMPLER_ARG");
            match BaseSampler::parse(&name, arg.as_deref()) {
                Some(b) => c.sampling.base = b,
                None => warnings.push(format!(
                    "OTEL_TRACES_SAMPLER={name:?} is not supported; using the platform rules"
                )),
            }
        }
        if let Some(r) = get("TARS_TRACES_ALWAYS_ROUTES") {
            c.sampling.always_routes = routes(&r);
        }
        if let Some(r) = get("TARS_TRACES_NEVER_ROUTES") {
            c.sampling.never_routes = routes(&r);
        }

        let mut number = |key: &str, min: u64, set: &mut dyn FnMut(u64)| {
            if let Some(v) = get(key) {
                match v.trim().parse::<u64>() {
                    Ok(n) if n >= min => set(n),
                    _ => warnings.push(format!("{key}={v:?} is not a number >= {min}; ignored")),
                }
            }
        };
        let mut queue = c.max_queue_size;
        let mut batch = c.max_export_batch_size;
        let mut delay = c.schedule_delay;
        let mut timeout = c.export_timeout;
        number("OTEL_BSP_MAX_QUEUE_SIZE", 1, &mut |n| queue = n as usize);
        number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, &mut |n| {
            batch = n as usize
        });
        number("OTEL_BSP_SCHEDULE_DELAY", 0, &mut |n| {
            delay = Duration::from_millis(n)
        });
        number("OTEL_BSP_EXPORT_TIMEOUT", 1, &mut |n| {
            timeout = Duration::from_millis(n)
        });
        c.max_queue_size = queue;
        c.max_export_batch_size = batch.min(queue);
        c.schedule_delay = delay;
        c.export_timeout = timeout;

        if let Some(v) = get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") {
            match parse_bool(&v) {
                Some(b) => c.capture_message_content = b,
                None => warnings.push(format!(
                    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT={v:?} is not a boolean; off"
                )),
            }
        }
        if let Some(p) = get("TARS_GENAI_PROVIDER") {
            c.genai_provider = p.trim().to_string();
        }
        if let Some(v) = get("TARS_GENAI_LEGACY_SYSTEM") {
            match parse_bool(&v) {
                Some(b) => c.genai_legacy_system = b,
                None => warnings.push(format!(
                    "TARS_GENAI_LEGACY_SYSTEM={v:?} is not a boolean; gen_ai.system stays off"
                )),
            }
        }
        if let Some(v) = get("OTEL_SDK_DISABLED") {
            match parse_bool(&v) {
                Some(b) => c.disabled = b,
                None => warnings.push(format!(
                    "OTEL_SDK_DISABLED={v:?} is not a boolean; tracing stays on"
                )),
            }
        }
        if let Some(i) = c.resource.iter().position(|(k, _)| k == "service.version") {
            c.service_version = Some(c.resource.remove(i).1);
        }
        for peer in Peer::ALL {
            if let Some(v) = get(peer.env_var()) {
                if peer == Peer::Database {
                    // `postgresql://user@host:5432/tars`: the database, `db.namespace`.
                    c.db_namespace = database_of_url(&v);
                }
                match PeerAddress::parse(&v) {
                    Some(a) => c.peers.push((peer, a)),
                    None => warnings.push(format!(
                        "{}={v:?} is not a host, host:port or URL; ignored",
                        peer.env_var()
                    )),
                }
            }
        }
        c.warnings = warnings;
        c
    }

    /// The service name, `service.name` on every span.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The traces endpoint the exporter sends to (the protocol's default when unset).
    pub fn endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .unwrap_or_else(|| self.protocol.default_endpoint())
    }

    /// The OTLP transport.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The sampling rules.
    pub fn sampling(&self) -> &SamplingRules {
        &self.sampling
    }

    /// Resource attributes besides `service.name`.
    pub fn resource_attributes(&self) -> &[(String, String)] {
        &self.resource
    }

    /// `service.version`, when known.
    pub fn service_version(&self) -> Option<&str> {
        self.service_version.as_deref()
    }

    /// The address of `peer`, when configured.
    pub fn peer(&self, peer: Peer) -> Option<&PeerAddress> {
        self.peers.iter().find(|(p, _)| *p == peer).map(|(_, a)| a)
    }

    /// Whether tracing is disabled (`OTEL_SDK_DISABLED=true`, or
    /// [`TraceConfig::disabled`]): installing it then makes no spans.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Environment values that were invalid and replaced by defaults.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Sets `service.name` (which also picks the service's sampling ratio).
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The traces endpoint: for gRPC `http://host:4317`; for HTTP the full URL,
    /// `http://host:4318/v1/traces`.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets `service.version` (when `OTEL_RESOURCE_ATTRIBUTES` did not).
    pub fn with_service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// Sets `service.version` only when none is set yet: the application's own version
    /// as a default that the environment overrides.
    pub fn with_default_service_version(mut self, version: impl Into<String>) -> Self {
        if self.service_version.is_none() {
            self.service_version = Some(version.into());
        }
        self
    }

    /// Sets the address of `peer` (`server.address`, `server.port` and `peer.service` of
    /// the spans that call it).
    pub fn with_peer(mut self, peer: Peer, host: impl Into<String>, port: Option<u16>) -> Self {
        self.peers.retain(|(p, _)| *p != peer);
        self.peers.push((
            peer,
            PeerAddress {
                host: host.into(),
                port,
            },
        ));
        self
    }

    /// Sets the address of `peer` only when the environment did not.
    pub fn with_default_peer(self, peer: Peer, host: impl Into<String>, port: Option<u16>) -> Self {
        if self.peer(peer).is_some() {
            self
        } else {
            self.with_peer(peer, host, port)
        }
    }

    /// Turns tracing off (`true`) or on: what `OTEL_SDK_DISABLED` sets.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Sets the OTLP transport.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Adds a resource attribute (`deployment.environment.name`, `service.version`, ...).
    pub fn with_resource_attribute(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.resource.push((key.into(), value.into()));
        self
    }

    /// Replaces the sampling rules.
    pub fn with_sampling(mut self, rules: SamplingRules) -> Self {
        self.sampling = rules;
        self
    }

    /// Spans held for export at most; when the queue is full new spans are dropped (and
    /// counted in `tars_telemetry_spans_dropped_total{reason="queue_full"}`).
    pub fn with_max_queue_size(mut self, n: usize) -> Self {
        self.max_queue_size = n.max(1);
        self.max_export_batch_size = self.max_export_batch_size.min(self.max_queue_size);
        self
    }

    /// Spans per export at most (at most the queue size).
    pub fn with_max_export_batch_size(mut self, n: usize) -> Self {
        self.max_export_batch_size = n.clamp(1, self.max_queue_size);
        self
    }

    /// How long spans wait for a batch to fill before they are exported anyway.
    pub fn with_schedule_delay(mut self, d: Duration) -> Self {
        self.schedule_delay = d;
        self
    }

    /// How long one export may take before its spans are dropped.
    pub fn with_export_timeout(mut self, d: Duration) -> Self {
        self.export_timeout = d.max(Duration::from_millis(1));
        self
    }

    /// `gen_ai.provider.name` of LLM and embedding spans (`ollama`, `openai`, ...).
    pub fn with_genai_provider(mut self, provider: impl Into<String>) -> Self {
        self.genai_provider = provider.into();
        self
    }

    /// `db.namespace` of database spans: the database's name (`tars`). Read from the
    /// path of a `TARS_DB_ADDRESS` URL (`postgresql://tars@postgres:5432/tars`) too.
    pub fn with_db_namespace(mut self, database: impl Into<String>) -> Self {
        self.db_namespace = Some(database.into());
        self
    }

    /// Also writes the provider as `gen_ai.system` on LLM and embedding spans: the
    /// attribute's name before the GenAI conventions 1.37 renamed it
    /// `gen_ai.provider.name`, for backends and queries that still read it. Off by
    /// default.
    pub fn with_legacy_genai_system(mut self, on: bool) -> Self {
        self.genai_legacy_system = on;
        self
    }

    /// `gen_ai.operation.name` of LLM spans (`chat`, `text_completion`,
    /// `generate_content`); the span is named `{operation} {model}`.
    pub fn with_genai_operation(mut self, operation: impl Into<String>) -> Self {
        self.genai_operation = operation.into();
        self
    }

    /// The embedding model, named in embedding spans (`embeddings {model}`).
    pub fn with_embedding_model(mut self, model: impl Into<String>) -> Self {
        self.embedding_model = Some(model.into());
        self
    }

    /// `db.system.name` of database spans (`postgresql`).
    pub fn with_db_system(mut self, system: impl Into<String>) -> Self {
        self.db_system = system.into();
        self
    }

    /// `db.system.name` of vector search spans (`chroma`) and the collection they search
    /// (`gen_ai.data_source.id`, in the span name `retrieval {collection}`).
    pub fn with_vector_store(
        mut self,
        system: impl Into<String>,
        collection: Option<&str>,
    ) -> Self {
        self.vector_store_system = system.into();
        self.vector_collection = collection.map(String::from);
        self
    }

    /// Lets LLM spans carry prompt and response text (`gen_ai.input.messages`,
    /// `gen_ai.output.messages`). Off by default: text is never captured unless this is on.
    pub fn with_message_content(mut self, capture: bool) -> Self {
        self.capture_message_content = capture;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn standard_environment() {
        let c = TraceConfig::from_lookup(env(&[
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=from-attrs,deployment.environment.name=prod%2Ceu",
            ),
            ("OTEL_SERVICE_NAME", "tars-ui"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317/"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.3"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_SCHEDULE_DELAY", "oops"),
        ]));
        assert_eq!(c.service_name(), "tars-ui");
        assert_eq!(c.protocol(), Protocol::Grpc);
        assert_eq!(c.endpoint(), "http://collector:4317");
        assert_eq!(c.sampling.base, BaseSampler::ParentBasedTraceIdRatio(0.3));
        assert_eq!(
            c.resource,
            vec![("deployment.environment.name".into(), "prod,eu".into())]
        );
        assert_eq!(c.max_queue_size, 100);
        assert_eq!(c.max_export_batch_size, 100);
        assert_eq!(c.schedule_delay, Duration::from_millis(5000));
        assert_eq!(c.warnings().len(), 1);
    }

    #[test]
    fn service_name_from_resource_and_defaults() {
        let c = TraceConfig::from_lookup(env(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=svc")]));
        assert_eq!(c.service_name(), "svc");
        assert_eq!(c.endpoint(), "http://localhost:4318/v1/traces");
        let c = TraceConfig::from_lookup(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http")]));
        assert_eq!(c.protocol(), Protocol::HttpProtobuf);
        assert_eq!(c.warnings().len(), 1);
        let c = TraceConfig::from_lookup(env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ]));
        assert_eq!(c.protocol(), Protocol::HttpJson);
        assert_eq!(c.endpoint(), "http://c:4318/v1/traces");
        assert!(c.warnings().is_empty());
        let c = TraceConfig::from_lookup(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://x:4318/custom",
        )]));
        assert_eq!(c.endpoint(), "http://x:4318/custom");
    }

    #[test]
    fn the_database_of_a_url_is_the_db_namespace() {
        for (url, want) in [
            ("postgresql://tars@postgres:5432/tars", Some("tars")),
            ("postgresql://postgres/rag?sslmode=disable", Some("rag")),
            ("postgresql://postgres:5432/", None),
            ("postgres:5432", None),
        ] {
            let c = TraceConfig::from_lookup(|k| (k == "TARS_DB_ADDRESS").then(|| url.to_string()));
            assert_eq!(c.db_namespace.as_deref(), want, "{url}");
        }
    }

    #[test]
    fn sdk_disabled_version_and_peers() {
        let c = TraceConfig::from_lookup(env(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.version=1.2.3,team=rag"),
            ("TARS_LLM_ADDRESS", "http://ollama:11434"),
            ("TARS_DB_ADDRESS", "postgres"),
            ("TARS_REDIS_ADDRESS", "redis://:x@"),
        ]));
        assert!(c.is_disabled());
        assert_eq!(c.service_version(), Some("1.2.3"));
        assert_eq!(c.resource, vec![("team".into(), "rag".into())]);
        let c = c.with_default_service_version("0.0.1");
        assert_eq!(c.service_version(), Some("1.2.3"));
        assert_eq!(c.peer(Peer::Llm).unwrap().port, Some(11434));
        assert_eq!(c.peer(Peer::Database).unwrap().host, "postgres");
        assert_eq!(c.db_namespace, None, "no path, no database");
        assert!(c.peer(Peer::Redis).is_none());
        assert_eq!(c.warnings().len(), 1, "{:?}", c.warnings());
        let c = c.with_default_peer(Peer::Redis, "redis", Some(6379));
        assert_eq!(c.peer(Peer::Redis).unwrap().port, Some(6379));
        let c = TraceConfig::from_lookup(env(&[("OTEL_SDK_DISABLED", "false")]));
        assert!(!c.is_disabled());
        let c = TraceConfig::from_lookup(env(&[("OTEL_SDK_DISABLED", "maybe")]));
        assert!(!c.is_disabled());
        assert_eq!(c.warnings().len(), 1);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(
            parse_resource_attributes("a=1,,=2,b"),
            vec![("a".into(), "1".into())]
        );
    }
}
