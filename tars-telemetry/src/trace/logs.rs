//! JSON log lines for Loki, linked to their trace.
//!
//! [`JsonLayer`] is a `tracing-subscriber` layer that writes one JSON object per event:
//!
//! ```json
//! {"timestamp":"2026-11-27T11:44:09.123456Z","level":"info","target":"tars::rag",
//!  "message":"answered","request_id":"r-17","user_id":"u-42","duration":0.184,
//!  "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7",
//!  "trace_sampled":true,"sources":5}
//! ```
//!
//! - `request_id`, `user_id` and `duration` come from the event's fields, else from the
//!   nearest enclosing span that has them, else (ids only) from the W3C baggage of the
//!   current context; they are `null` when unknown, so every line has the same keys.
//! - `trace_id` and `span_id` are those of the current OpenTelemetry context: a stage
//!   span entered with `enter()`, or a `tracing` span entered under the
//!   `tracing-opentelemetry` layer. `null` outside any trace.
//! - The event's other fields follow as top-level keys; numbers and booleans stay JSON
//!   numbers and booleans.
//! - A line written while a stage is entered (and no `tracing` span is) is also added to
//!   the stage's span as an event named by the message, with `level`, `target`, the
//!   correlation ids and the other fields as attributes: Jaeger shows it as the span's
//!   log. Inside a `tracing` span, [`super::Tracing::layer`] attaches it to that span.
//!
//! Debug lines are off in the production configuration ([`LogConfig::production`], the
//! default of [`LogConfig::from_env`]).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tars_telemetry::trace::logs::{JsonLayer, LogConfig};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! #[derive(Clone, Default)]
//! struct Buf(Arc<Mutex<Vec<u8>>>);
//! impl std::io::Write for Buf {
//!     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
//!     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! }
//!
//! let buf = Buf::default();
//! let w = buf.clone();
//! let layer = JsonLayer::new(move || w.clone()).with_filter_of(&LogConfig::production());
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("request", request_id = "r-1", user_id = "u-9");
//!     let _in = span.enter();
//!     tracing::info!(duration = 0.25, "done");
//!     tracing::debug!("not in production");
//! });
//! let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
//! assert_eq!(out.lines().count(), 1);
//! assert!(out.contains(r#""request_id":"r-1","user_id":"u-9","duration":0.25"#));
//! ```

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Which lines are written: a level per target, as `RUST_LOG` writes it without regexes
/// (`info`, `warn,tars_backend=debug`).
///
/// ```
/// use tars_telemetry::trace::logs::LogConfig;
/// let c = LogConfig::from_lookup(|k| (k == "TARS_ENV").then(|| "production".to_string()));
/// assert!(!c.debug_enabled());
/// let c = LogConfig::from_lookup(|k| (k == "RUST_LOG").then(|| "debug".to_string()));
/// assert!(c.debug_enabled());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    targets: Targets,
}

/// Crates whose own spans and events are noise in a service's logs and traces (and whose
/// spans, from the exporter, would feed back into the export).
const QUIET: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::production()
    }
}

impl LogConfig {
    /// Info and above: debug lines are off.
    pub fn production() -> Self {
        LogConfig::level(LevelFilter::INFO)
    }

    /// Debug and above.
    pub fn development() -> Self {
        LogConfig::level(LevelFilter::DEBUG)
    }

    /// One level for every target (the transport crates kept at warn).
    pub fn level(level: LevelFilter) -> Self {
        let targets = QUIET
            .iter()
            .fold(Targets::new().with_default(level), |t, c| {
                t.with_target(*c, LevelFilter::WARN.min(level))
            });
        LogConfig { targets }
    }

    /// `RUST_LOG` style directives: `info`, `warn,my_service=debug`.
    pub fn parse(directives: &str) -> Option<Self> {
        let t: Targets = directives.parse().ok()?;
        let t = QUIET.iter().fold(t, |t, c| {
            if directives.contains(c) {
                t
            } else {
                t.with_target(*c, LevelFilter::WARN)
            }
        });
        Some(LogConfig { targets: t })
    }

    /// `TARS_LOG`, else `RUST_LOG`, else by environment: `TARS_ENV` (or
    /// `deployment.environment.name` in `OTEL_RESOURCE_ATTRIBUTES`) equal to
    /// `development`, `dev` or `local` gives debug; anything else, or nothing, is
    /// production (info).
    pub fn from_env() -> Self {
        LogConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`LogConfig::from_env`] through a lookup function.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(c) = var("TARS_LOG")
            .or_else(|| var("RUST_LOG"))
            .and_then(|d| LogConfig::parse(&d))
        {
            return c;
        }
        let env = var("TARS_ENV").or_else(|| {
            var("OTEL_RESOURCE_ATTRIBUTES").and_then(|a| {
                super::config::parse_resource_attributes(&a)
                    .into_iter()
                    .find(|(k, _)| {
                        k == "deployment.environment.name" || k == "deployment.environment"
                    })
                    .map(|(_, v)| v)
            })
        });
        match env.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("development" | "dev" | "local") => LogConfig::development(),
            _ => LogConfig::production(),
        }
    }

    /// Whether debug lines of a service's own targets are written.
    pub fn debug_enabled(&self) -> bool {
        self.targets.would_enable("tars_service", &Level::DEBUG)
    }

    /// The filter, for a layer of your own.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }
}

/// The JSON log layer (see the module docs). `W` makes the writer of each line; the
/// default writes to stdout.
pub struct JsonLayer<W = fn() -> std::io::Stdout> {
    make_writer: W,
}

impl fmt::Debug for JsonLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JsonLayer")
    }
}

impl Default for JsonLayer {
    fn default() -> Self {
        JsonLayer::stdout()
    }
}

impl JsonLayer {
    /// Lines to stdout, where the container runtime hands them to Promtail.
    pub fn stdout() -> Self {
        JsonLayer {
            make_writer: std::io::stdout,
        }
    }
}

impl<W> JsonLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// Lines to the writers `make_writer` makes (one per line).
    pub fn new(make_writer: W) -> Self {
        JsonLayer { make_writer }
    }

    /// This layer, writing only what `config` enables.
    pub fn with_filter_of<S>(
        self,
        config: &LogConfig,
    ) -> tracing_subscriber::filter::Filtered<Self, Targets, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        Layer::with_filter(self, config.targets.clone())
    }
}

/// The correlation fields a span carries, kept in its extensions.
#[derive(Debug, Default, Clone)]
struct Correlation {
    request_id: Option<String>,
    user_id: Option<String>,
    /// Rendered JSON.
    duration: Option<String>,
}

impl Correlation {
    fn is_empty(&self) -> bool {
        self.request_id.is_none() && self.user_id.is_none() && self.duration.is_none()
    }

    fn fill_from(&mut self, other: &Correlation) {
        if self.request_id.is_none() {
            self.request_id.clone_from(&other.request_id);
        }
        if self.user_id.is_none() {
            self.user_id.clone_from(&other.user_id);
        }
        if self.duration.is_none() {
            self.duration.clone_from(&other.duration);
        }
    }
}

/// Collects fields: the correlation ones apart, the message apart, the rest as JSON.
#[derive(Default)]
struct Fields {
    corr: Correlation,
    message: Option<String>,
    /// `,"key":value` pairs, rendered.
    rest: String,
    /// The same pairs as span event attributes.
    attrs: Vec<opentelemetry::KeyValue>,
}

impl Fields {
    fn put(&mut self, field: &Field, json: String, text: Option<&str>) {
        match field.name() {
            "message" => self.message = Some(text.map_or(json, String::from)),
            "request_id" => self.corr.request_id = Some(text.map_or(json, String::from)),
            "user_id" => self.corr.user_id = Some(text.map_or(json, String::from)),
            "duration" => self.corr.duration = Some(json),
            name => {
                self.attrs.push(opentelemetry::KeyValue::new(
                    name,
                    text.map_or_else(|| json.clone(), String::from),
                ));
                self.rest.push(',');
                json_str(&mut self.rest, name);
                self.rest.push(':');
                self.rest.push_str(&json);
            }
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let json = if value.is_finite() {
            let mut b = ryu::Buffer::new();
            b.format_finite(value).to_string()
        } else {
            format!("\"{value}\"")
        };
        self.put(field, json, None);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let s = value.to_string();
        self.put(field, s.clone(), Some(&s));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let s = value.to_string();
        self.put(field, s.clone(), Some(&s));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.to_string(), None);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let mut j = String::with_capacity(value.len() + 2);
        json_str(&mut j, value);
        self.put(field, j, Some(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let mut j = String::with_capacity(text.len() + 2);
        json_str(&mut j, &text);
        self.put(field, j, Some(&text));
    }
}

/// Appends `s` as a JSON string literal.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 3339 UTC with microseconds, from the Unix time.
fn timestamp(out: &mut String, now: SystemTime) {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "\"{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z\"",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    );
}

fn level_str(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

fn opt_str(out: &mut String, v: Option<&str>) {
    match v {
        Some(v) => json_str(out, v),
        None => out.push_str("null"),
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if !f.corr.is_empty()
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(f.corr);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        values.record(&mut f);
        if f.corr.is_empty() {
            return;
        }
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            match ext.get_mut::<Correlation>() {
                Some(c) => {
                    let old = std::mem::take(c);
                    *c = f.corr;
                    c.fill_from(&old);
                }
                None => ext.insert(f.corr),
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let mut corr = std::mem::take(&mut f.corr);
        let mut leaf = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                leaf.get_or_insert(span.name());
                if let Some(c) = span.extensions().get::<Correlation>() {
                    corr.fill_from(c);
                }
            }
        }
        let meta = event.metadata();
        let ids = opentelemetry::Context::map_current(|cx| {
            if corr.request_id.is_none() {
                corr.request_id = super::propagation::baggage_value(cx, "request_id");
            }
            if corr.user_id.is_none() {
                corr.user_id = super::propagation::baggage_value(cx, "user_id");
            }
            let span = cx.span();
            if leaf.is_none() && span.is_recording() {
                // Outside any `tracing` span (whose events the OpenTelemetry layer
                // attaches), the line belongs to the stage entered on this thread: it
                // becomes an event of the stage's span, which Jaeger shows as its log.
                let mut attrs = Vec::with_capacity(f.attrs.len() + 4);
                attrs.push(opentelemetry::KeyValue::new(
                    "level",
                    level_str(meta.level()),
                ));
                attrs.push(opentelemetry::KeyValue::new(
                    "target",
                    meta.target().to_string(),
                ));
                for (k, v) in [("request_id", &corr.request_id), ("user_id", &corr.user_id)] {
                    if let Some(v) = v {
                        attrs.push(opentelemetry::KeyValue::new(k, v.clone()));
                    }
                }
                attrs.append(&mut f.attrs);
                let name = f.message.clone().unwrap_or_else(|| "log".to_string());
                span.add_event(name, attrs);
            }
            let sc = span.span_context();
            sc.is_valid().then(|| {
                (
                    sc.trace_id().to_string(),
                    sc.span_id().to_string(),
                    sc.is_sampled(),
                )
            })
        });

        let mut line = String::with_capacity(256 + f.rest.len());
        line.push_str("{\"timestamp\":");
        timestamp(&mut line, SystemTime::now());
        line.push_str(",\"level\":\"");
        line.push_str(level_str(meta.level()));
        line.push_str("\",\"target\":");
        json_str(&mut line, meta.target());
        line.push_str(",\"message\":");
        opt_str(&mut line, f.message.as_deref());
        line.push_str(",\"request_id\":");
        opt_str(&mut line, corr.request_id.as_deref());
        line.push_str(",\"user_id\":");
        opt_str(&mut line, corr.user_id.as_deref());
        line.push_str(",\"duration\":");
        line.push_str(corr.duration.as_deref().unwrap_or("null"));
        match &ids {
            Some((t, s, sampled)) => {
                let _ = write!(
                    line,
                    ",\"trace_id\":\"{t}\",\"span_id\":\"{s}\",\"trace_sampled\":{sampled}"
                );
            }
            None => line.push_str(",\"trace_id\":null,\"span_id\":null"),
        }
        if let Some(name) = leaf {
            line.push_str(",\"span\":");
            json_str(&mut line, name);
        }
        line.push_str(&f.rest);
        line.push_str("}\n");
        let _ = self
            .make_writer
            .make_writer_for(meta)
            .write_all(line.as_bytes());
    }
}

/// A filter for the OpenTelemetry layer: the log levels, with the transport crates off
/// (their spans, made while exporting, must not be exported in turn).
pub(crate) fn otel_filter(config: &LogConfig) -> Targets {
    QUIET.iter().fold(config.targets.clone(), |t, c| {
        t.with_target(*c, LevelFilter::OFF)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let mut s = String::new();
        timestamp(
            &mut s,
            UNIX_EPOCH + std::time::Duration::from_micros(1_795_000_000_123_456),
        );
        assert_eq!(s, "\"2026-11-18T11:06:40.123456Z\"");
        s.clear();
        timestamp(
            &mut s,
            UNIX_EPOCH + std::time::Duration::from_secs(951_782_400),
        );
        assert_eq!(s, "\"2000-02-29T00:00:00.000000Z\"");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn production_drops_debug() {
        assert!(!LogConfig::production().debug_enabled());
        assert!(LogConfig::development().debug_enabled());
        assert!(LogConfig::from_lookup(|_| None) == LogConfig::production());
        let dev = LogConfig::from_lookup(|k| {
            (k == "OTEL_RESOURCE_ATTRIBUTES").then(|| "deployment.environment.name=dev".to_string())
        });
        assert!(dev.debug_enabled());
    }
}
