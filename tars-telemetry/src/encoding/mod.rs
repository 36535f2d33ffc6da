//! Exposition: Prometheus text 0.0.4, OpenMetrics 1.0 and the Prometheus protobuf
//! format (the one that carries native histograms), written straight into a
//! caller-owned buffer. Label blocks are rendered once when a series is created, so a
//! render is mostly copies and number formatting, and allocates nothing once the buffer
//! has grown to size.

mod protobuf;

use std::cell::RefCell;

use crate::catalog::MetricKind;
use crate::metric::Exemplar;
use crate::metric::native::limit_buckets;
use crate::multiproc::{Merged, MergedFamily, MultiprocessDir, Value};
use crate::registry::{Family, Metric, Registry, Series};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text, with exemplars.
    OpenMetrics,
    /// The Prometheus protobuf format (length-delimited `io.prometheus.client.MetricFamily`
    /// messages): classic and native histogram buckets, with exemplars. What a Prometheus
    /// that scrapes native histograms asks for.
    Protobuf,
}

impl Format {
    /// The `Content-Type` of the Prometheus text format.
    pub const PROMETHEUS_CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";
    /// The `Content-Type` of OpenMetrics.
    pub const OPENMETRICS_CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// The `Content-Type` of the protobuf format.
    pub const PROTOBUF_CONTENT_TYPE: &'static str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

    /// Chooses the format from an HTTP `Accept` header, by quality: protobuf (only in its
    /// delimited `MetricFamily` form) over OpenMetrics over text where they tie.
    ///
    /// ```
    /// use tars_telemetry::Format;
    /// let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::from_accept(Some(prom)), Format::OpenMetrics);
    /// // Prometheus 3 scraping native histograms:
    /// let native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3";
    /// assert_eq!(Format::from_accept(Some(native)), Format::Protobuf);
    /// assert_eq!(Format::from_accept(Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text")), Format::Prometheus);
    /// assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    /// assert_eq!(Format::from_accept(None), Format::Prometheus);
    /// ```
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut best_om: f32 = 0.0;
        let mut best_text: f32 = 0.0;
        let mut best_pb: f32 = 0.0;
        for part in accept.split(',') {
            let mut params = part.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            let mut version = None;
            let (mut proto, mut delimited) = (false, false);
            for p in params {
                if let Some(v) = p.strip_prefix("q=") {
                    q = v.parse().unwrap_or(0.0);
                } else if let Some(v) = p.strip_prefix("version=") {
                    version = Some(v.to_string());
                } else if let Some(v) = p.strip_prefix("proto=") {
                    proto = v == "io.prometheus.client.MetricFamily";
                } else if let Some(v) = p.strip_prefix("encoding=") {
                    delimited = v == "delimited";
                }
            }
            match media.as_str() {
                "application/openmetrics-text"
                    if version.as_deref().is_none_or(|v| v.starts_with("1.")) =>
                {
                    best_om = best_om.max(q)
                }
                "text/plain" | "*/*" | "text/*" => best_text = best_text.max(q),
                "application/vnd.google.protobuf" if proto && delimited => best_pb = best_pb.max(q),
                _ => {}
            }
        }
        if best_pb > 0.0 && best_pb >= best_om && best_pb >= best_text {
            Format::Protobuf
        } else if best_om > 0.0 && best_om >= best_text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The `Content-Type` header of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => Self::PROMETHEUS_CONTENT_TYPE,
            Format::OpenMetrics => Self::OPENMETRICS_CONTENT_TYPE,
            Format::Protobuf => Self::PROTOBUF_CONTENT_TYPE,
        }
    }

    /// Every format, by [`Format::name`]: what bindings offer as format names.
    pub const ALL: [Format; 3] = [Format::Prometheus, Format::OpenMetrics, Format::Protobuf];

    /// The format's short name: `prometheus`, `openmetrics` or `protobuf`.
    ///
    /// ```
    /// use tars_telemetry::Format;
    /// assert_eq!(Format::from_name("protobuf"), Some(Format::Protobuf));
    /// assert_eq!(Format::Protobuf.name(), "protobuf");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Format::Prometheus => "prometheus",
            Format::OpenMetrics => "openmetrics",
            Format::Protobuf => "protobuf",
        }
    }

    /// The format of a short name (see [`Format::name`]).
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether this is a binary format (protobuf), not text.
    pub fn is_binary(self) -> bool {
        self == Format::Protobuf
    }
}

fn write_escaped_help(help: &str, out: &mut Vec<u8>) {
    for &b in help.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b => out.push(b),
        }
    }
}

#[inline]
fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

#[inline]
fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Whole values print without a fraction, as Go clients do.
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(v as i64).as_bytes());
    } else {
        let mut b = ryu::Buffer::new();
        out.extend_from_slice(b.format_finite(v).as_bytes());
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

fn write_exemplar(out: &mut Vec<u8>, e: &Exemplar) {
    out.extend_from_slice(b" # {trace_id=\"");
    write_hex(out, &e.trace.trace_id);
    out.extend_from_slice(b"\",span_id=\"");
    write_hex(out, &e.trace.span_id);
    out.extend_from_slice(b"\"} ");
    write_f64(out, e.value);
    out.push(b' ');
    // Seconds with millisecond precision.
    let ms = e.timestamp_nanos / 1_000_000;
    write_u64(out, ms / 1000);
    out.push(b'.');
    let frac = ms % 1000;
    out.push(b'0' + (frac / 100) as u8);
    out.push(b'0' + (frac / 10 % 10) as u8);
    out.push(b'0' + (frac % 10) as u8);
}

/// `name{labels}` or `name{labels,extra}`; `extra` is e.g. `le="0.5"`.
#[inline]
fn write_series_name(out: &mut Vec<u8>, name: &str, suffix: &str, labels: &str, extra: &[&[u8]]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if labels.is_empty() && extra.is_empty() {
        out.push(b' ');
        return;
    }
    out.push(b'{');
    out.extend_from_slice(labels.as_bytes());
    if !extra.is_empty() {
        if !labels.is_empty() {
            out.push(b',');
        }
        for e in extra {
            out.extend_from_slice(e);
        }
    }
    out.extend_from_slice(b"} ");
}

/// A counter's value: a whole count, or a fixed-point one divided into its exposed unit
/// (exact in f64 below 2^53, then correctly rounded by the one division).
#[inline]
fn write_count(out: &mut Vec<u8>, value: u64, fixed_point: Option<f64>) {
    match fixed_point {
        None => write_u64(out, value),
        Some(divisor) => write_f64(out, value as f64 / divisor),
    }
}

fn encode_series(out: &mut Vec<u8>, family: &Family, series: &Series, format: Format) {
    let name: &str = &family.desc.name;
    let labels = &*series.rendered_labels;
    let om = format == Format::OpenMetrics;
    match &series.metric {
        Metric::Counter(c) => {
            // In OpenMetrics the family is `x` and its sample `x_total`; in text it is `x_total`.
            write_series_name(out, name, "", labels, &[]);
            write_count(out, c.get(), family.fixed_point);
            if om && let Some(e) = c.exemplar() {
                write_exemplar(out, &e);
            }
            out.push(b'\n');
        }
        Metric::Gauge(g) => {
            write_series_name(out, name, "", labels, &[]);
            write_f64(out, g.get());
            out.push(b'\n');
        }
        Metric::Histogram(h) => {
            let core = &h.0;
            let cells = core.exemplar_cells();
            write_histogram(
                out,
                name,
                labels,
                &family.le,
                (0..core.buckets())
                    .map(|i| (core.bucket(i), if om { cells[i].load() } else { None })),
                core.sum(),
                om,
            );
        }
    }
}

thread_local! {
    /// Native buckets of the series being written: reused, so a render allocates nothing
    /// once it has grown.
    static NATIVE_SCRATCH: RefCell<Vec<(i32, u64)>> = const { RefCell::new(Vec::new()) };
}

fn encode_series_protobuf(out: &mut Vec<u8>, family: &Family, series: &Series) {
    let labels = &*series.rendered_labels;
    match &series.metric {
        Metric::Counter(c) => {
            let v = match family.fixed_point {
                None => c.get() as f64,
                Some(d) => c.get() as f64 / d,
            };
            protobuf::counter(out, labels, v, c.exemplar().as_ref());
        }
        Metric::Gauge(g) => protobuf::gauge(out, labels, g.get()),
        Metric::Histogram(h) => {
            let core = &h.0;
            let cells = core.exemplar_cells();
            let buckets = (0..core.buckets()).map(|i| (core.bucket(i), cells[i].load()));
            NATIVE_SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let native = core.native_exposed(&mut scratch);
                protobuf::histogram(
                    out,
                    labels,
                    &core.bounds,
                    buckets,
                    core.sum(),
                    native.map(|n| protobuf::NativePart {
                        schema: n.schema,
                        zero_threshold: n.zero_threshold,
                        zero_count: n.zero_count,
                        buckets: &scratch,
                    }),
                );
            });
        }
    }
}

fn encode_family(out: &mut Vec<u8>, family: &Family, format: Format) {
    let set = family.series.read();
    if set.list.is_empty() && set.overflow.is_none() {
        // A family with no series yet says nothing: a HELP/TYPE with no samples is legal,
        // but an empty family carries no information and some linters flag it.
        return;
    }
    if format == Format::Protobuf {
        let d = &family.desc;
        protobuf::message(out, None, |out| {
            protobuf::family_header(out, &d.name, &d.help, d.kind, d.unit.as_deref());
            for s in set.list.iter().chain(set.overflow.as_ref()) {
                encode_series_protobuf(out, family, s);
            }
        });
        return;
    }
    let d = &family.desc;
    write_header(out, &d.name, &d.help, d.kind, d.unit.as_deref(), format);
    for s in set.list.iter().chain(set.overflow.as_ref()) {
        encode_series(out, family, s, format);
    }
}

/// The HELP, TYPE and (OpenMetrics) UNIT lines of a family.
fn write_header(
    out: &mut Vec<u8>,
    name: &str,
    help: &str,
    kind: MetricKind,
    unit: Option<&str>,
    format: Format,
) {
    let (family_name, type_word) = match format {
        Format::Prometheus | Format::Protobuf => (name, kind.prometheus_type()),
        Format::OpenMetrics => (kind.openmetrics_family(name), kind.openmetrics_type()),
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(family_name.as_bytes());
    out.push(b' ');
    write_escaped_help(help, out);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(family_name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(type_word.as_bytes());
    out.push(b'\n');
    if format == Format::OpenMetrics
        && let Some(unit) = unit
        && family_name
            .strip_suffix(unit)
            .is_some_and(|prefix| prefix.ends_with('_'))
    {
        out.extend_from_slice(b"# UNIT ");
        out.extend_from_slice(family_name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(unit.as_bytes());
        out.push(b'\n');
    }
}

fn write_histogram(
    out: &mut Vec<u8>,
    name: &str,
    labels: &str,
    le: &[Box<str>],
    buckets: impl Iterator<Item = (u64, Option<Exemplar>)>,
    sum: f64,
    om: bool,
) {
    let mut acc = 0u64;
    for ((count, exemplar), le) in buckets.zip(le) {
        acc += count;
        write_series_name(
            out,
            name,
            "_bucket",
            labels,
            &[b"le=\"", le.as_bytes(), b"\""],
        );
        write_u64(out, acc);
        if om && let Some(e) = exemplar {
            write_exemplar(out, &e);
        }
        out.push(b'\n');
    }
    write_series_name(out, name, "_sum", labels, &[]);
    write_f64(out, sum);
    out.push(b'\n');
    write_series_name(out, name, "_count", labels, &[]);
    write_u64(out, acc);
    out.push(b'\n');
}

fn encode_merged_family_protobuf(out: &mut Vec<u8>, family: &MergedFamily) {
    let r = &family.record;
    let fixed_point = crate::catalog::find(&r.name)
        .filter(|d| d.kind == family.kind())
        .and_then(crate::catalog::MetricDef::fixed_point_divisor);
    let max_buckets = r.native.map_or(0, |n| n.max_buckets);
    protobuf::message(out, None, |out| {
        protobuf::family_header(out, &r.name, &r.help, family.kind(), r.unit.as_deref());
        let mut scratch = Vec::new();
        for s in &family.series {
            match &s.value {
                Value::Count { value, exemplar } => {
                    let v = match fixed_point {
                        None => *value as f64,
                        Some(d) => *value as f64 / d,
                    };
                    protobuf::counter(out, &s.labels, v, exemplar.as_ref());
                }
                Value::Float { value, .. } => {
                    let v = if family.kind() == MetricKind::Info {
                        value.min(1.0)
                    } else {
                        *value
                    };
                    protobuf::gauge(out, &s.labels, v);
                }
                Value::Histogram {
                    buckets,
                    sum,
                    exemplars,
                    native,
                } => {
                    let native = native.as_ref().map(|n| {
                        scratch.clear();
                        scratch.extend_from_slice(&n.buckets);
                        let schema = limit_buckets(&mut scratch, n.schema, max_buckets);
                        (schema, n.zero_threshold, n.zero_count)
                    });
                    protobuf::histogram(
                        out,
                        &s.labels,
                        &r.buckets,
                        buckets.iter().copied().zip(exemplars.iter().copied()),
                        *sum,
                        native.map(
                            |(schema, zero_threshold, zero_count)| protobuf::NativePart {
                                schema,
                                zero_threshold,
                                zero_count,
                                buckets: &scratch,
                            },
                        ),
                    );
                }
            }
        }
    });
}

fn encode_merged_family(out: &mut Vec<u8>, family: &MergedFamily, format: Format) {
    if family.is_empty() {
        return;
    }
    if format == Format::Protobuf {
        return encode_merged_family_protobuf(out, family);
    }
    let r = &family.record;
    write_header(
        out,
        &r.name,
        &r.help,
        family.kind(),
        r.unit.as_deref(),
        format,
    );
    let om = format == Format::OpenMetrics;
    let fixed_point = crate::catalog::find(&r.name)
        .filter(|d| d.kind == family.kind())
        .and_then(crate::catalog::MetricDef::fixed_point_divisor);
    let le: Vec<Box<str>> = r
        .buckets
        .iter()
        .map(|b| crate::text::format_le(*b).into_boxed_str())
        .chain(std::iter::once("+Inf".into()))
        .collect();
    for s in &family.series {
        match &s.value {
            Value::Count { value, exemplar } => {
                write_series_name(out, &r.name, "", &s.labels, &[]);
                write_count(out, *value, fixed_point);
                if om && let Some(e) = exemplar {
                    write_exemplar(out, e);
                }
                out.push(b'\n');
            }
            Value::Float { value, .. } => {
                write_series_name(out, &r.name, "", &s.labels, &[]);
                // An info series is 1 wherever it is set, however many workers set it.
                let v = if family.kind() == MetricKind::Info {
                    value.min(1.0)
                } else {
                    *value
                };
                write_f64(out, v);
                out.push(b'\n');
            }
            Value::Histogram {
                buckets,
                sum,
                exemplars,
                ..
            } => write_histogram(
                out,
                &r.name,
                &s.labels,
                &le,
                buckets.iter().copied().zip(exemplars.iter().copied()),
                *sum,
                om,
            ),
        }
    }
}

fn encode_merged(merged: &Merged, format: Format, out: &mut Vec<u8>) {
    for f in &merged.families {
        encode_merged_family(out, f, format);
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

impl MultiprocessDir {
    /// Renders every worker's series, merged, appending to `out`. Dead workers are folded
    /// into the archive first. What could not be used is logged; see
    /// [`MultiprocessDir::render_report`] to have it returned.
    pub fn render_into(&self, format: Format, out: &mut Vec<u8>) -> Result<(), crate::Error> {
        self.render_report(format, out).map(drop)
    }

    /// Renders as [`MultiprocessDir::render_into`] does, and returns what the render could
    /// not use: files skipped, records dropped, archives replaced, a fold that failed (see
    /// [`MultiprocessWarning`](crate::multiproc::MultiprocessWarning)). Empty when every
    /// file was read whole.
    ///
    /// ```
    /// use tars_telemetry::{Format, multiproc::MultiprocessDir};
    /// let dir = std::env::temp_dir().join(format!("tars-doc-report-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let mut out = Vec::new();
    /// let warnings = MultiprocessDir::new(&dir).render_report(Format::Prometheus, &mut out).unwrap();
    /// assert!(warnings.is_empty());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// ```
    pub fn render_report(
        &self,
        format: Format,
        out: &mut Vec<u8>,
    ) -> Result<Vec<crate::multiproc::MultiprocessWarning>, crate::Error> {
        let (merged, warnings) = self.merged()?;
        encode_merged(&merged, format, out);
        Ok(warnings)
    }

    /// Renders every worker's series, merged, into a new string.
    pub fn render_string(&self, format: Format) -> Result<String, crate::Error> {
        let mut out = Vec::with_capacity(16 * 1024);
        self.render_into(format, &mut out)?;
        Ok(String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

impl Registry {
    /// Renders every family into `out` (appending), in the given format. Reuse `out`
    /// between scrapes and a render allocates nothing.
    pub fn render_into(&self, format: Format, out: &mut Vec<u8>) {
        encode(self, format, out)
    }

    /// Renders every family into a new string.
    pub fn render_string(&self, format: Format) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        self.render_into(format, &mut out);
        // Names, help and label values are `str`, so the exposition is UTF-8.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Counts what this worker's render could not use in its own file (so that the count is
/// merged like any other, and survives the worker); losses for good were counted in the
/// archive by the fold. Shown from the next render on.
fn count_losses(registry: &Registry, warnings: &[crate::multiproc::MultiprocessWarning]) {
    if warnings.iter().all(|w| w.event.is_permanent()) {
        return;
    }
    let Ok(family) = registry.register(&crate::catalog::SELF_MULTIPROCESS_LOSSES) else {
        return;
    };
    for w in warnings.iter().filter(|w| !w.event.is_permanent()) {
        if let Ok(crate::registry::Metric::Counter(c)) =
            family.resolve(&[w.event.as_str(), w.cause.as_str()])
        {
            c.inc();
        }
    }
}

fn encode(registry: &Registry, format: Format, out: &mut Vec<u8>) {
    if let Some(store) = registry.store() {
        match store.merged() {
            Ok((merged, warnings)) => {
                encode_merged(&merged, format, out);
                count_losses(registry, &warnings);
                return;
            }
            // The directory is gone or unreadable: this worker's own series are the best
            // there is to show.
            Err(e) => tracing::warn!(error = %e, "rendering this worker only"),
        }
    }
    registry.with_families(|families, self_families| {
        for f in families {
            encode_family(out, f, format);
        }
        for f in self_families {
            encode_family(out, f, format);
        }
    });
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::format_le;

    #[test]
    fn le_matches_go_and_python() {
        assert_eq!(format_le(0.005), "0.005");
        assert_eq!(format_le(1.0), "1.0");
        assert_eq!(format_le(600.0), "600.0");
        assert_eq!(format_le(81.92), "81.92");
        assert_eq!(format_le(1e-5), "1e-05");
    }

    #[test]
    fn floats() {
        let mut v = Vec::new();
        write_f64(&mut v, 3.0);
        v.push(b' ');
        write_f64(&mut v, 0.25);
        v.push(b' ');
        write_f64(&mut v, f64::NAN);
        assert_eq!(String::from_utf8(v).unwrap(), "3 0.25 NaN");
    }
}
