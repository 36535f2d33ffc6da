//! Text helpers shared by the registry (label blocks rendered once per series) and the
//! encoders; a leaf module, so neither depends on the other for them.

/// Formats a bucket bound as Prometheus clients do (Go's `strconv.FormatFloat(f, 'g')` for
/// the values used here, and always with a decimal point), so that OpenMetrics parsers
/// accept it as canonical.
pub(crate) fn format_le(v: f64) -> String {
    if v == f64::INFINITY {
        return "+Inf".into();
    }
    // Python's repr and Go's 'g' switch to an exponent below 1e-4 and from 1e16 up, and
    // write it with at least two digits (1e-05).
    if v != 0.0 && (v.abs() < 1e-4 || v.abs() >= 1e16) {
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
        return format!("{m}e{sign}{digits:0>2}");
    }
    let mut b = ryu::Buffer::new();
    b.format(v).to_string()
}

pub(crate) fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
