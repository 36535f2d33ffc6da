//! The Prometheus protobuf exposition format: `io.prometheus.client.MetricFamily`
//! messages, each prefixed by its varint length. The one format that carries native
//! histograms to every Prometheus that reads them (2.40 on; 3.x reads them from text only
//! in OpenMetrics 2.0, still experimental there).
//!
//! Written by hand into the caller's buffer: the handful of messages of `metrics.proto`
//! need no code generator, and writing in place allocates nothing once the buffer has
//! grown. A nested message is written with a one-byte length, moved along in the rare
//! case its body turns out longer than 127 bytes.

use crate::catalog::MetricKind;
use crate::metric::Exemplar;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

// io.prometheus.client.MetricType
const TYPE_COUNTER: u64 = 0;
const TYPE_GAUGE: u64 = 1;
const TYPE_HISTOGRAM: u64 = 4;

#[inline]
pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline]
fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub(crate) fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

#[inline]
fn sint(out: &mut Vec<u8>, field: u32, v: i64) {
    tag(out, field, VARINT);
    varint(out, zigzag(v));
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Writes a length-delimited body with `body`, prefixed by `field`'s tag (or by nothing,
/// for the stream's own delimiting when `field` is `None`) and its varint length.
#[inline]
pub(crate) fn message(out: &mut Vec<u8>, field: Option<u32>, body: impl FnOnce(&mut Vec<u8>)) {
    if let Some(f) = field {
        tag(out, f, LEN);
    }
    let at = out.len();
    out.push(0);
    body(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
        return;
    }
    // Longer than one length byte: make room for the rest and move the body along.
    let extra = varint_len(len as u64) - 1;
    let end = out.len();
    out.resize(end + extra, 0);
    out.copy_within(at + 1..end, at + 1 + extra);
    let mut v = len as u64;
    for b in &mut out[at..at + extra + 1] {
        *b = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    out[at + extra] &= 0x7f;
}

/// `LabelPair` messages (field `field`) from a rendered label block `a="x",b="y"`,
/// unescaping the values as they are written.
pub(crate) fn labels(out: &mut Vec<u8>, field: u32, rendered: &str) {
    let mut rest = rendered.as_bytes();
    while let Some(eq) = rest.iter().position(|&b| b == b'=') {
        let name = &rest[..eq];
        // Past `="`.
        let value = &rest[(eq + 2).min(rest.len())..];
        // The closing quote: the first one not escaped.
        let mut end = 0;
        while end < value.len() {
            match value[end] {
                b'\\' => end += 2,
                b'"' => break,
                _ => end += 1,
            }
        }
        let end = end.min(value.len());
        let raw = &value[..end];
        message(out, Some(field), |out| {
            bytes(out, 1, name);
            tag(out, 2, LEN);
            message_bytes_unescaped(out, raw);
        });
        rest = value.get(end + 1..).unwrap_or(&[]);
        if rest.first() == Some(&b',') {
            rest = &rest[1..];
        }
    }
}

/// A label value's bytes, unescaped (`\\`, `\"`, `\n`), length first.
fn message_bytes_unescaped(out: &mut Vec<u8>, raw: &[u8]) {
    let escapes = raw.iter().filter(|&&b| b == b'\\').count();
    if escapes == 0 {
        varint(out, raw.len() as u64);
        out.extend_from_slice(raw);
        return;
    }
    // Each escape pair is one byte; a trailing lone backslash (never rendered) stays.
    let mut len = 0;
    let mut i = 0;
    while i < raw.len() {
        i += if raw[i] == b'\\' && i + 1 < raw.len() {
            2
        } else {
            1
        };
        len += 1;
    }
    varint(out, len as u64);
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && i + 1 < raw.len() {
            out.push(match raw[i + 1] {
                b'n' => b'\n',
                other => other,
            });
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
}

/// An `Exemplar` message (field `field`): the trace and span ids, value and timestamp.
pub(crate) fn exemplar(out: &mut Vec<u8>, field: u32, e: &Exemplar) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex = |bytes: &[u8], buf: &mut [u8; 32]| {
        for (i, &b) in bytes.iter().enumerate() {
            buf[2 * i] = HEX[(b >> 4) as usize];
            buf[2 * i + 1] = HEX[(b & 15) as usize];
        }
    };
    message(out, Some(field), |out| {
        let mut buf = [0u8; 32];
        hex(&e.trace.trace_id, &mut buf);
        message(out, Some(1), |out| {
            bytes(out, 1, b"trace_id");
            bytes(out, 2, &buf[..32]);
        });
        hex(&e.trace.span_id, &mut buf);
        message(out, Some(1), |out| {
            bytes(out, 1, b"span_id");
            bytes(out, 2, &buf[..16]);
        });
        double(out, 2, e.value);
        // google.protobuf.Timestamp
        message(out, Some(3), |out| {
            let secs = e.timestamp_nanos / 1_000_000_000;
            let nanos = e.timestamp_nanos % 1_000_000_000;
            if secs > 0 {
                uint(out, 1, secs);
            }
            if nanos > 0 {
                uint(out, 2, nanos);
            }
        });
    });
}

/// The `MetricFamily` header fields: name, help, type (and unit where it is the name's
/// suffix, as OpenMetrics has it).
pub(crate) fn family_header(
    out: &mut Vec<u8>,
    name: &str,
    help: &str,
    kind: MetricKind,
    unit: Option<&str>,
) {
    bytes(out, 1, name.as_bytes());
    bytes(out, 2, help.as_bytes());
    let t = match kind {
        MetricKind::Counter => TYPE_COUNTER,
        MetricKind::Gauge | MetricKind::Info => TYPE_GAUGE,
        MetricKind::Histogram => TYPE_HISTOGRAM,
    };
    if t != 0 {
        uint(out, 3, t);
    }
    if let Some(u) = unit
        && name.strip_suffix(u).is_some_and(|p| p.ends_with('_'))
    {
        bytes(out, 5, u.as_bytes());
    }
}

/// One `Metric` of a counter (field 3: `Counter`).
pub(crate) fn counter(out: &mut Vec<u8>, labels_rendered: &str, value: f64, ex: Option<&Exemplar>) {
    message(out, Some(4), |out| {
        labels(out, 1, labels_rendered);
        message(out, Some(3), |out| {
            double(out, 1, value);
            if let Some(e) = ex {
                exemplar(out, 2, e);
            }
        });
    });
}

/// One `Metric` of a gauge (field 2: `Gauge`).
pub(crate) fn gauge(out: &mut Vec<u8>, labels_rendered: &str, value: f64) {
    message(out, Some(4), |out| {
        labels(out, 1, labels_rendered);
        message(out, Some(2), |out| double(out, 1, value));
    });
}

/// A native histogram's part of a `Histogram` message.
pub(crate) struct NativePart<'a> {
    pub(crate) schema: i8,
    pub(crate) zero_threshold: f64,
    pub(crate) zero_count: u64,
    /// `(key, count)`, keys ascending, counts > 0.
    pub(crate) buckets: &'a [(i32, u64)],
}

/// One `Metric` of a histogram (field 7: `Histogram`): the classic buckets (cumulative,
/// `+Inf` left to the count, as the Go client writes them) with their exemplars, and the
/// native buckets as spans and deltas.
pub(crate) fn histogram(
    out: &mut Vec<u8>,
    labels_rendered: &str,
    bounds: &[f64],
    buckets: impl Iterator<Item = (u64, Option<Exemplar>)>,
    sum: f64,
    native: Option<NativePart<'_>>,
) {
    message(out, Some(4), |out| {
        labels(out, 1, labels_rendered);
        message(out, Some(7), |out| {
            // The count is known once the buckets are summed, so it follows them (field
            // order does not matter in protobuf).
            let mut acc = 0u64;
            // A native histogram takes its exemplars from its own field (Prometheus reads
            // the buckets' only where that is empty): the newest few go there too.
            let mut newest: [Option<Exemplar>; 4] = [None; 4];
            for (i, (count, ex)) in buckets.enumerate() {
                acc += count;
                if native.is_some()
                    && let Some(e) = ex
                {
                    keep_newest(&mut newest, e);
                }
                if let Some(&bound) = bounds.get(i) {
                    message(out, Some(3), |out| {
                        uint(out, 1, acc);
                        double(out, 2, bound);
                        if let Some(e) = &ex {
                            exemplar(out, 3, e);
                        }
                    });
                }
            }
            // Buckets are read while other threads record: an observation may show in the
            // native buckets read after the classic ones and not in those. Prometheus
            // refuses a count below the buckets' total, so the count is the larger.
            let native_total = native.as_ref().map_or(0, |n| {
                n.buckets
                    .iter()
                    .fold(n.zero_count, |a, &(_, c)| a.saturating_add(c))
            });
            uint(out, 1, acc.max(native_total));
            double(out, 2, sum);
            if let Some(n) = native {
                sint(out, 5, i64::from(n.schema));
                double(out, 6, n.zero_threshold);
                uint(out, 7, n.zero_count);
                spans_and_deltas(out, n.buckets);
            }
            for e in newest.iter().flatten() {
                exemplar(out, 16, e);
            }
        });
    });
}

/// Keeps `e` among the newest exemplars of `kept`.
fn keep_newest(kept: &mut [Option<Exemplar>], e: Exemplar) {
    if let Some(slot) = kept.iter_mut().find(|k| k.is_none()) {
        *slot = Some(e);
    } else if let Some(oldest) = kept
        .iter_mut()
        .min_by_key(|k| k.map_or(0, |k| k.timestamp_nanos))
        && oldest.is_some_and(|o| o.timestamp_nanos < e.timestamp_nanos)
    {
        *oldest = Some(e);
    }
}

/// `positive_span` (12) and `positive_delta` (13): runs of consecutive keys, each span's
/// offset from the end of the one before (the first from key 0), and each count as its
/// difference from the count before it.
fn spans_and_deltas(out: &mut Vec<u8>, buckets: &[(i32, u64)]) {
    let mut i = 0;
    let mut prev_key: Option<i32> = None;
    while i < buckets.len() {
        let start = i;
        while i + 1 < buckets.len() && buckets[i + 1].0 == buckets[i].0 + 1 {
            i += 1;
        }
        i += 1;
        let offset = match prev_key {
            None => buckets[start].0,
            Some(p) => buckets[start].0 - p - 1,
        };
        prev_key = Some(buckets[i - 1].0);
        message(out, Some(12), |out| {
            if offset != 0 {
                sint(out, 1, i64::from(offset));
            }
            uint(out, 2, (i - start) as u64);
        });
    }
    let mut prev = 0i64;
    for &(_, c) in buckets {
        let c = c as i64;
        sint(out, 13, c - prev);
        prev = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_move_along_for_their_length() {
        for n in [0usize, 1, 127, 128, 300, 20_000] {
            let mut out = vec![9u8];
            message(&mut out, Some(1), |out| {
                out.extend(std::iter::repeat_n(7u8, n))
            });
            assert_eq!(out[0], 9);
            assert_eq!(out[1], 0x0a, "field 1, length-delimited");
            let mut len = 0usize;
            let mut shift = 0;
            let mut at = 2;
            loop {
                let b = out[at];
                len |= usize::from(b & 0x7f) << shift;
                shift += 7;
                at += 1;
                if b < 0x80 {
                    break;
                }
            }
            assert_eq!(len, n);
            assert_eq!(at - 2, varint_len(n as u64));
            assert_eq!(out.len(), at + n);
            assert!(out[at..].iter().all(|&b| b == 7));
        }
    }

    #[test]
    fn label_values_are_unescaped() {
        let mut out = Vec::new();
        labels(&mut out, 1, r#"a="x\"y\\z\nw",b="""#);
        // LabelPair{a, x"y\z<newline>w}, LabelPair{b, ""}
        let want: &[u8] = &[
            0x0a, 12, 0x0a, 1, b'a', 0x12, 7, b'x', b'"', b'y', b'\\', b'z', b'\n', b'w', 0x0a, 5,
            0x0a, 1, b'b', 0x12, 0,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn spans_start_at_the_first_key_then_count_gaps() {
        let mut out = Vec::new();
        spans_and_deltas(&mut out, &[(-2, 1), (-1, 3), (3, 2)]);
        // span{offset -2, len 2}, span{offset 3, len 1}, deltas 1, 2, -1
        let want: &[u8] = &[
            0x62, 4, 0x08, 3, 0x10, 2, 0x62, 4, 0x08, 6, 0x10, 1, 0x68, 2, 0x68, 4, 0x68, 1,
        ];
        assert_eq!(out, want);
    }
}
