//! The PromQL checker: walks the syntax tree of one expression and reports every way in
//! which it disagrees with the metric catalog.
//!
//! Only `tars_*` series and `tars:*` recording rules are checked. Series that other
//! components expose (cAdvisor's `container_*`, kube-state-metrics' `kube_*`, the
//! cluster autoscaler's `cluster_autoscaler_*`, Prometheus' own `up`) are outside the
//! catalog and pass unchecked.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    self, AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, VectorMatchCardinality,
    VectorSelector,
};
use tars_telemetry::catalog::{self, MetricDef, MetricKind, NativeBuckets};

/// Labels that Prometheus target relabeling may attach to any scraped series (the
/// ServiceMonitor and the scrape config in deploy/prometheus set these).
pub const TARGET_LABELS: &[&str] = &[
    "job",
    "instance",
    "namespace",
    "pod",
    "service",
    "node",
    "container",
];

/// Functions that need a counter: they assume the value only goes up (and detect resets).
const COUNTER_FUNCTIONS: &[&str] = &["rate", "irate", "increase", "resets"];

/// Functions that need a gauge: on a counter they measure resets and monotonic growth.
const GAUGE_FUNCTIONS: &[&str] = &[
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "holt_winters",
    "double_exponential_smoothing",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
];

/// Functions that may take a counter's instant value: they look at presence or time only.
const PRESENCE_FUNCTIONS: &[&str] = &["absent", "timestamp"];

/// Functions that read native histograms only: on classic `_bucket`, `_sum` or `_count`
/// series they return nothing. Their histogram is the last argument.
const NATIVE_FUNCTIONS: &[&str] = &[
    "histogram_count",
    "histogram_sum",
    "histogram_avg",
    "histogram_fraction",
    "histogram_stddev",
    "histogram_stdvar",
];

/// One disagreement between an expression and the catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The expression does not parse.
    Parse(String),
    /// A `tars_*` series that no catalog family defines. `renamed` names the family's new
    /// name when the catalog renamed it.
    UnknownFamily {
        series: String,
        renamed: Option<&'static str>,
    },
    /// `_bucket`, `_sum` or `_count` on a family that is not a histogram.
    NotAHistogram {
        series: String,
        family: &'static str,
        kind: MetricKind,
    },
    /// A classic-only histogram queried by its bare name, which no series carries: only the
    /// families the catalog marks native ([`MetricDef::native`]) are native histograms
    /// under their bare name.
    HistogramWithoutSuffix { family: &'static str },
    /// A function of native histograms (`histogram_count`, `histogram_fraction`, ...) on
    /// classic series, where it returns nothing.
    NotNative { function: String, series: String },
    /// A selector that picks `tars_*` series by a `__name__` pattern instead of naming one.
    NamelessSelector { pattern: String },
    /// A `tars:*` series that no recording rule defines.
    UnknownRecordingRule { name: String },
    /// A label that the series (or the result it is used on) does not carry.
    UnknownLabel {
        label: String,
        on: String,
        known: Vec<String>,
    },
    /// A range function applied to the wrong type of family.
    WrongFunction {
        function: String,
        series: String,
        kind: &'static str,
        expected: &'static str,
    },
    /// A counter (or histogram part) read as an instant value: its lifetime total, not a
    /// rate over a window.
    CounterWithoutRange { series: String },
    /// `histogram_quantile` over series that were aggregated away from `le`.
    QuantileWithoutLe { family: &'static str },
    /// A quantile compared against a value that is not one of the histogram's bucket
    /// boundaries: histogram_quantile cannot resolve it.
    ThresholdNotBoundary {
        family: &'static str,
        threshold: f64,
        buckets: &'static [f64],
    },
    /// A quantile transformed by arithmetic before the comparison, so the threshold cannot
    /// be related to the buckets.
    ThresholdNotCheckable { family: &'static str },
    /// A quantile of a native histogram compared against a value its buckets cannot
    /// resolve: in the zero bucket, or above the buckets' range.
    ThresholdOutsideNativeRange {
        family: &'static str,
        threshold: f64,
        low: f64,
        high: f64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Parse(e) => write!(f, "does not parse: {e}"),
            Problem::UnknownFamily {
                series,
                renamed: Some(new),
            } => write!(
                f,
                "`{series}` is not in the catalog: it is emitted as `{new}`"
            ),
            Problem::UnknownFamily {
                series,
                renamed: None,
            } => write!(f, "`{series}` is not in the catalog (library or agent)"),
            Problem::NotAHistogram {
                series,
                family,
                kind,
            } => write!(
                f,
                "`{series}`: `{family}` is a {}, only histograms have _bucket, _sum and _count",
                kind.prometheus_type()
            ),
            Problem::HistogramWithoutSuffix { family } => write!(
                f,
                "`{family}` is a classic histogram only (the catalog gives it no native buckets): query `{family}_bucket`, `_sum` or `_count`"
            ),
            Problem::NotNative { function, series } => write!(
                f,
                "{function}() reads native histograms, and `{series}` is a classic series: read a native family by its bare name"
            ),
            Problem::NamelessSelector { pattern } => write!(
                f,
                "selector matches tars series by the pattern `{pattern}`: name the series"
            ),
            Problem::UnknownRecordingRule { name } => {
                write!(f, "`{name}` is not defined by any recording rule")
            }
            Problem::UnknownLabel { label, on, known } => write!(
                f,
                "label `{label}` is not on {on} (it has: {})",
                known.join(", ")
            ),
            Problem::WrongFunction {
                function,
                series,
                kind,
                expected,
            } => write!(
                f,
                "{function}() on `{series}`, a {kind}: {function}() needs {expected}"
            ),
            Problem::CounterWithoutRange { series } => write!(
                f,
                "`{series}` is a counter read as an instant value: use rate() or increase() over a window"
            ),
            Problem::QuantileWithoutLe { family } => write!(
                f,
                "histogram_quantile over `{family}_bucket` aggregated without `le`"
            ),
            Problem::ThresholdNotBoundary {
                family,
                threshold,
                buckets,
            } => write!(
                f,
                "threshold {threshold} on a quantile of `{family}` is not a bucket boundary {buckets:?}"
            ),
            Problem::ThresholdNotCheckable { family } => write!(
                f,
                "a quantile of `{family}` is transformed before its comparison: compare the quantile itself, in the family's unit"
            ),
            Problem::ThresholdOutsideNativeRange {
                family,
                threshold,
                low,
                high,
            } => write!(
                f,
                "threshold {threshold} on a quantile of the native histogram `{family}` is outside the range its buckets resolve ({low}, {high}]"
            ),
        }
    }
}

/// A comparison of a histogram quantile against a number.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub family: &'static str,
    /// φ of histogram_quantile, when it is a literal.
    pub quantile: Option<f64>,
    /// The comparison operator, as written (`>`, `>=`, ...).
    pub op: String,
    pub value: f64,
    /// Whether the quantile comes from the native histogram (the bare family name) rather
    /// than the classic `_bucket` series.
    pub native: bool,
}

/// What checking one expression found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub thresholds: Vec<Threshold>,
    /// Catalog families the expression reads.
    pub families: BTreeSet<&'static str>,
}

/// Labels of an intermediate result: known exactly, or unknowable (series from outside
/// the catalog).
#[derive(Debug, Clone, PartialEq)]
enum Labels {
    Known(BTreeSet<String>),
    Unknown,
}

impl Labels {
    fn known<'a>(names: impl IntoIterator<Item = &'a str>) -> Labels {
        Labels::Known(names.into_iter().map(str::to_string).collect())
    }

    fn without(&self, names: &[String]) -> Labels {
        match self {
            Labels::Known(s) => {
                Labels::Known(s.iter().filter(|l| !names.contains(l)).cloned().collect())
            }
            Labels::Unknown => Labels::Unknown,
        }
    }

    fn with(&self, names: &[String]) -> Labels {
        match self {
            Labels::Known(s) => {
                let mut s = s.clone();
                s.extend(names.iter().cloned());
                Labels::Known(s)
            }
            Labels::Unknown => Labels::Unknown,
        }
    }
}

/// A histogram quantile flowing through the expression.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Quantile {
    family: &'static MetricDef,
    phi: Option<f64>,
    /// False once arithmetic has changed its value.
    exact: bool,
    /// From the native histogram rather than the classic buckets.
    native: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Info {
    labels: Labels,
    scalar: bool,
    literal: Option<f64>,
    quantile: Option<Quantile>,
    /// The histogram whose `_bucket` series this result still carries.
    buckets_of: Option<&'static MetricDef>,
    /// The histogram whose native samples (the bare family name) this result still carries.
    native_of: Option<&'static MetricDef>,
}

impl Info {
    fn unknown() -> Info {
        Info {
            labels: Labels::Unknown,
            scalar: false,
            literal: None,
            quantile: None,
            buckets_of: None,
            native_of: None,
        }
    }

    fn scalar(literal: Option<f64>) -> Info {
        Info {
            labels: Labels::Known(BTreeSet::new()),
            scalar: true,
            literal,
            quantile: None,
            buckets_of: None,
            native_of: None,
        }
    }

    fn vector(labels: Labels) -> Info {
        Info {
            labels,
            ..Info::unknown()
        }
    }

    fn tainted(mut self) -> Info {
        if let Some(q) = &mut self.quantile {
            q.exact = false;
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Consumer<'a> {
    /// Read as an instant vector.
    Instant,
    /// The range argument of this function.
    Range(&'a str),
    /// An argument of a function that looks at presence only.
    Presence,
}

#[derive(Debug, Clone)]
struct Recorded {
    labels: Labels,
    quantile: Option<Quantile>,
}

/// Checks PromQL expressions against the catalog; knows the recording rules added to it.
#[derive(Debug, Clone, Default)]
pub struct Checker {
    recorded: HashMap<String, Recorded>,
}

impl Checker {
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Checks one expression (a panel query, an alert or a recording rule's expression).
    pub fn check(&self, promql: &str) -> Report {
        self.run(promql).0
    }

    /// Checks a recording rule's expression, then makes `name` known to later expressions
    /// with the labels and the quantile its expression yields.
    pub fn record(&mut self, name: &str, promql: &str) -> Report {
        let (report, info) = self.run(promql);
        if let Some(info) = info {
            self.recorded.insert(
                name.to_string(),
                Recorded {
                    labels: info.labels,
                    quantile: info.quantile,
                },
            );
        }
        report
    }

    /// Checks that `label` exists on the series that `selector` picks, as in a Grafana
    /// `label_values(selector, label)` variable query.
    pub fn check_label_values(&self, selector: &str, label: &str) -> Report {
        let mut walk = Walk {
            checker: self,
            report: Report::default(),
        };
        match parser::parse(selector) {
            Ok(Expr::VectorSelector(vs)) => {
                let info = walk.selector(&vs, Consumer::Presence);
                walk.require(&info.labels, &[label.to_string()], || {
                    format!("`{selector}`")
                });
            }
            Ok(other) => walk.report.problems.push(Problem::Parse(format!(
                "`{other}` is not a series selector"
            ))),
            Err(e) => walk.report.problems.push(Problem::Parse(e)),
        }
        walk.report
    }

    fn run(&self, promql: &str) -> (Report, Option<Info>) {
        let mut walk = Walk {
            checker: self,
            report: Report::default(),
        };
        match parser::parse(promql) {
            Ok(expr) => {
                let info = walk.expr(&expr);
                (walk.report, Some(info))
            }
            Err(e) => {
                walk.report.problems.push(Problem::Parse(e));
                (walk.report, None)
            }
        }
    }
}

struct Walk<'a> {
    checker: &'a Checker,
    report: Report,
}

impl Walk<'_> {
    fn problem(&mut self, p: Problem) {
        if !self.report.problems.contains(&p) {
            self.report.problems.push(p);
        }
    }

    /// Reports each of `names` missing from known `labels`.
    fn require(&mut self, labels: &Labels, names: &[String], on: impl Fn() -> String) {
        if let Labels::Known(have) = labels {
            for n in names {
                if !have.contains(n) {
                    self.problem(Problem::UnknownLabel {
                        label: n.clone(),
                        on: on(),
                        known: have.iter().cloned().collect(),
                    });
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr) -> Info {
        match e {
            Expr::Paren(p) => self.expr(&p.expr),
            Expr::NumberLiteral(n) => Info::scalar(Some(n.val)),
            Expr::StringLiteral(_) => Info::scalar(None),
            Expr::Unary(u) => {
                let info = self.expr(&u.expr);
                Info {
                    literal: info.literal.map(|v| -v),
                    ..info.tainted()
                }
            }
            Expr::VectorSelector(vs) => self.selector(vs, Consumer::Instant),
            // A range selector outside a function call only occurs in instant queries of
            // raw samples; treat it as an instant read.
            Expr::MatrixSelector(ms) => self.selector(&ms.vs, Consumer::Instant),
            Expr::Subquery(sq) => self.expr(&sq.expr),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Binary(b) => self.binary(b),
            Expr::Call(c) => self.call(c),
            Expr::Extension(_) => Info::unknown(),
        }
    }

    fn selector(&mut self, vs: &VectorSelector, consumer: Consumer<'_>) -> Info {
        let all: Vec<&Matcher> = vs
            .matchers
            .matchers
            .iter()
            .chain(vs.matchers.or_matchers.iter().flatten())
            .collect();
        let name = vs.name.clone().or_else(|| {
            all.iter()
                .find(|m| m.name == "__name__" && m.op == MatchOp::Equal)
                .map(|m| m.value.clone())
        });
        let labels: Vec<String> = all
            .iter()
            .filter(|m| m.name != "__name__")
            .map(|m| m.name.clone())
            .collect();
        let Some(name) = name else {
            for m in all.iter().filter(|m| m.name == "__name__") {
                if m.value.contains("tars") {
                    self.problem(Problem::NamelessSelector {
                        pattern: m.value.clone(),
                    });
                }
            }
            return Info::unknown();
        };

        if name.contains(':') {
            return match self.checker.recorded.get(&name) {
                Some(r) => {
                    let r = r.clone();
                    self.require(&r.labels, &labels, || format!("`{name}`"));
                    if let Consumer::Range(f) = consumer
                        && COUNTER_FUNCTIONS.contains(&f)
                    {
                        self.problem(Problem::WrongFunction {
                            function: f.to_string(),
                            series: name.clone(),
                            kind: "recorded gauge",
                            expected: "a counter",
                        });
                    }
                    Info {
                        quantile: r.quantile,
                        ..Info::vector(r.labels)
                    }
                }
                None if name.starts_with("tars:") => {
                    self.problem(Problem::UnknownRecordingRule { name });
                    Info::unknown()
                }
                None => Info::unknown(),
            };
        }
        if !name.starts_with("tars_") {
            return Info::unknown();
        }

        let Some(def) = catalog::family_of_series(&name) else {
            let renamed = catalog::RENAMED
                .iter()
                .find(|(old, _)| *old == name)
                .map(|(_, new)| *new);
            let non_histogram = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).and_then(catalog::find));
            match non_histogram {
                Some(d) if renamed.is_none() => self.problem(Problem::NotAHistogram {
                    series: name,
                    family: d.name,
                    kind: d.kind,
                }),
                _ => self.problem(Problem::UnknownFamily {
                    series: name,
                    renamed,
                }),
            }
            return Info::unknown();
        };
        // A histogram's bare name is its native histogram, which only the families the
        // catalog marks native have.
        let native = def.kind == MetricKind::Histogram && name == def.name;
        if native && def.native.is_none() {
            self.problem(Problem::HistogramWithoutSuffix { family: def.name });
            return Info::unknown();
        }
        self.report.families.insert(def.name);
        let part = name.strip_prefix(def.name).filter(|s| !s.is_empty());
        let counting = def.kind == MetricKind::Counter || part.is_some() || native;
        let kind = match part {
            Some("_bucket") => "histogram bucket counter",
            Some(_) => "histogram counter",
            None if native => "native histogram",
            None => def.kind.prometheus_type(),
        };
        match consumer {
            Consumer::Instant if counting => self.problem(Problem::CounterWithoutRange {
                series: name.clone(),
            }),
            Consumer::Range(f) if COUNTER_FUNCTIONS.contains(&f) && !counting => {
                self.problem(Problem::WrongFunction {
                    function: f.to_string(),
                    series: name.clone(),
                    kind,
                    expected: "a counter, a histogram's _bucket, _sum or _count, or a native histogram",
                })
            }
            Consumer::Range(f) if GAUGE_FUNCTIONS.contains(&f) && counting => {
                self.problem(Problem::WrongFunction {
                    function: f.to_string(),
                    series: name.clone(),
                    kind,
                    expected: "a gauge (use rate() or increase() on counters)",
                })
            }
            _ => {}
        }

        let mut have: BTreeSet<String> = def
            .labels
            .iter()
            .chain(TARGET_LABELS)
            .map(|s| s.to_string())
            .collect();
        if part == Some("_bucket") {
            have.insert("le".to_string());
        }
        let have = Labels::Known(have);
        self.require(&have, &labels, || format!("`{name}`"));
        Info {
            buckets_of: (part == Some("_bucket")).then_some(def),
            native_of: native.then_some(def),
            ..Info::vector(have)
        }
    }

    fn aggregate(&mut self, a: &AggregateExpr) -> Info {
        let input = self.expr(&a.expr);
        if let Some(p) = &a.param {
            self.expr(p);
        }
        let op = a.op.to_string();
        let mut labels = match &a.modifier {
            Some(LabelModifier::Include(ls)) => {
                self.require(&input.labels, &ls.labels, || {
                    format!("the input of `{op} by ({})`", ls.labels.join(", "))
                });
                Labels::Known(ls.labels.iter().cloned().collect())
            }
            Some(LabelModifier::Exclude(ls)) => {
                self.require(&input.labels, &ls.labels, || {
                    format!("the input of `{op} without ({})`", ls.labels.join(", "))
                });
                input.labels.without(&ls.labels)
            }
            None => Labels::known([]),
        };
        if matches!(op.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") {
            labels = input.labels.clone();
        }
        if op == "count_values"
            && let Some(Expr::StringLiteral(s)) = a.param.as_deref()
        {
            labels = labels.with(std::slice::from_ref(&s.val));
        }
        let keeps_le = matches!(&labels, Labels::Known(l) if l.contains("le"));
        Info {
            quantile: input.quantile.map(|q| Quantile {
                exact: q.exact && matches!(op.as_str(), "max" | "min" | "topk" | "bottomk"),
                ..q
            }),
            buckets_of: input.buckets_of.filter(|_| keeps_le),
            // Native histograms add up (and average); the other aggregations drop them.
            native_of: input
                .native_of
                .filter(|_| matches!(op.as_str(), "sum" | "avg")),
            ..Info::vector(labels)
        }
    }

    fn call(&mut self, c: &Call) -> Info {
        let f = c.func.name;
        let args: Vec<Info> = c
            .args
            .args
            .iter()
            .map(|a| match a.as_ref() {
                Expr::MatrixSelector(ms) => self.selector(&ms.vs, Consumer::Range(f)),
                Expr::VectorSelector(vs) if PRESENCE_FUNCTIONS.contains(&f) => {
                    self.selector(vs, Consumer::Presence)
                }
                other => self.expr(other),
            })
            .collect();
        let string_arg = |i: usize| match c.args.args.get(i).map(|a| a.as_ref()) {
            Some(Expr::StringLiteral(s)) => Some(s.val.clone()),
            _ => None,
        };
        if c.func.return_type == ValueType::Scalar {
            return Info::scalar(None);
        }
        match f {
            "histogram_quantile" => {
                let phi = args.first().and_then(|a| a.literal);
                let Some(v) = args.get(1) else {
                    return Info::unknown();
                };
                if let Some(family) = v.native_of {
                    // A native histogram has no `le`: its buckets are in each sample.
                    return Info {
                        quantile: Some(Quantile {
                            family,
                            phi,
                            exact: true,
                            native: true,
                        }),
                        ..Info::vector(v.labels.clone())
                    };
                }
                if let (Labels::Known(l), Some(fam)) = (&v.labels, v.buckets_of)
                    && !l.contains("le")
                {
                    self.problem(Problem::QuantileWithoutLe { family: fam.name });
                }
                // A `_bucket` family aggregated without `le` has lost `buckets_of`: find
                // the family from the labels' history is impossible, so look at the
                // syntax tree for the bucket series it reads.
                let family = v.buckets_of.or_else(|| {
                    c.args
                        .args
                        .get(1)
                        .and_then(|a| bucket_family(a))
                        .inspect(|fam| {
                            if matches!(v.labels, Labels::Known(_)) {
                                self.problem(Problem::QuantileWithoutLe { family: fam.name });
                            }
                        })
                });
                Info {
                    quantile: family.map(|family| Quantile {
                        family,
                        phi,
                        exact: true,
                        native: false,
                    }),
                    ..Info::vector(v.labels.without(&["le".to_string()]))
                }
            }
            "label_replace" => {
                let v = args.first().cloned().unwrap_or_else(Info::unknown);
                if let Some(src) = string_arg(3).filter(|s| !s.is_empty()) {
                    self.require(&v.labels, &[src], || "the input of label_replace".into());
                }
                let dst: Vec<String> = string_arg(1).into_iter().collect();
                Info {
                    labels: v.labels.with(&dst),
                    ..v.tainted()
                }
            }
            "label_join" => {
                let v = args.first().cloned().unwrap_or_else(Info::unknown);
                let srcs: Vec<String> = (3..c.args.args.len()).filter_map(string_arg).collect();
                self.require(&v.labels, &srcs, || "the input of label_join".into());
                let dst: Vec<String> = string_arg(1).into_iter().collect();
                Info {
                    labels: v.labels.with(&dst),
                    ..v.tainted()
                }
            }
            f if NATIVE_FUNCTIONS.contains(&f) => {
                let v = args.last().cloned().unwrap_or_else(Info::unknown);
                if v.native_of.is_none()
                    && let Some(series) = c.args.args.last().and_then(|a| classic_series(a))
                {
                    self.problem(Problem::NotNative {
                        function: f.to_string(),
                        series,
                    });
                }
                Info {
                    native_of: None,
                    buckets_of: None,
                    ..v.tainted()
                }
            }
            "vector" => Info::vector(Labels::known([])),
            "absent" | "absent_over_time" => Info::unknown(),
            _ => {
                let v = args
                    .into_iter()
                    .find(|a| !a.scalar)
                    .unwrap_or_else(Info::unknown);
                let keep_buckets = COUNTER_FUNCTIONS.contains(&f);
                Info {
                    buckets_of: v.buckets_of.filter(|_| keep_buckets),
                    native_of: v.native_of.filter(|_| keep_buckets),
                    ..v.tainted()
                }
            }
        }
    }

    fn binary(&mut self, b: &BinaryExpr) -> Info {
        let l = self.expr(&b.lhs);
        let r = self.expr(&b.rhs);
        let op = b.op.to_string();
        let comparison = b.op.is_comparison_operator();
        let filtering = comparison && !b.return_bool();
        if comparison {
            for (q, lit) in [(l.quantile, r.literal), (r.quantile, l.literal)] {
                if let (Some(q), Some(value)) = (q, lit) {
                    self.threshold(q, &op, value);
                }
            }
        }
        match (l.scalar, r.scalar) {
            (true, true) => Info::scalar(None),
            (false, true) => {
                if filtering {
                    Info { literal: None, ..l }
                } else {
                    l.tainted()
                }
            }
            (true, false) => {
                if filtering {
                    Info { literal: None, ..r }
                } else {
                    r.tainted()
                }
            }
            (false, false) => self.vector_match(b, &op, l, r, filtering),
        }
    }

    fn vector_match(
        &mut self,
        b: &BinaryExpr,
        op: &str,
        l: Info,
        r: Info,
        filtering: bool,
    ) -> Info {
        let modifier = b.modifier.as_ref();
        let matching = modifier.and_then(|m| m.matching.as_ref());
        if let Some(m) = matching {
            let (kw, ls) = match m {
                LabelModifier::Include(ls) => ("on", &ls.labels),
                LabelModifier::Exclude(ls) => ("ignoring", &ls.labels),
            };
            let on = || format!("the left side of `{op} {kw} ({})`", ls.join(", "));
            self.require(&l.labels, ls, on);
            let on = || format!("the right side of `{op} {kw} ({})`", ls.join(", "));
            self.require(&r.labels, ls, on);
        }
        let card = modifier.map(|m| &m.card);
        let labels = match (op, card) {
            ("and" | "unless", _) => l.labels.clone(),
            ("or", _) => match (&l.labels, &r.labels) {
                (Labels::Known(a), Labels::Known(c)) => {
                    Labels::Known(a.union(c).cloned().collect())
                }
                _ => Labels::Unknown,
            },
            (_, Some(VectorMatchCardinality::ManyToOne(include))) => {
                self.require(&r.labels, &include.labels, || {
                    "the right side of `group_left`".into()
                });
                l.labels.with(&include.labels)
            }
            (_, Some(VectorMatchCardinality::OneToMany(include))) => {
                self.require(&l.labels, &include.labels, || {
                    "the left side of `group_right`".into()
                });
                r.labels.with(&include.labels)
            }
            _ => match matching {
                Some(LabelModifier::Include(ls)) => {
                    Labels::Known(ls.labels.iter().cloned().collect())
                }
                Some(LabelModifier::Exclude(ls)) => l.labels.without(&ls.labels),
                None => l.labels.clone(),
            },
        };
        let keeps_lhs = filtering || matches!(op, "and" | "unless");
        let quantile = if keeps_lhs {
            l.quantile
        } else {
            l.quantile
                .or(r.quantile)
                .map(|q| Quantile { exact: false, ..q })
        };
        Info {
            quantile,
            ..Info::vector(labels)
        }
    }

    fn threshold(&mut self, q: Quantile, op: &str, value: f64) {
        self.report.thresholds.push(Threshold {
            family: q.family.name,
            quantile: q.phi,
            op: op.to_string(),
            value,
            native: q.native,
        });
        if !q.exact {
            self.problem(Problem::ThresholdNotCheckable {
                family: q.family.name,
            });
        } else if q.native {
            // Native buckets are exponential: a quantile is interpolated inside one bucket,
            // within the schema's relative error of the truth, at any value the buckets
            // cover (above the zero bucket, up to the top of the window).
            if let Some(n) = q.family.native {
                let low = n.zero_threshold;
                let high = n.zero_threshold * 2f64.powi(NativeBuckets::OCTAVES as i32);
                if !(value > low && value <= high) {
                    self.problem(Problem::ThresholdOutsideNativeRange {
                        family: q.family.name,
                        threshold: value,
                        low,
                        high,
                    });
                }
            }
        } else if !q.family.buckets.contains(&value) {
            self.problem(Problem::ThresholdNotBoundary {
                family: q.family.name,
                threshold: value,
                buckets: q.family.buckets,
            });
        }
    }
}

/// The first `tars_*` series of an expression that is a classic one: not the bare name of a
/// native histogram.
fn classic_series(e: &Expr) -> Option<String> {
    match e {
        Expr::VectorSelector(vs) => vs
            .name
            .as_deref()
            .filter(|n| n.starts_with("tars_"))
            .filter(|n| catalog::find(n).is_none_or(|d| d.kind != MetricKind::Histogram))
            .map(str::to_string),
        Expr::MatrixSelector(ms) => classic_series(&Expr::VectorSelector(ms.vs.clone())),
        Expr::Paren(p) => classic_series(&p.expr),
        Expr::Aggregate(a) => classic_series(&a.expr),
        Expr::Call(c) => c.args.args.iter().find_map(|a| classic_series(a)),
        Expr::Binary(b) => classic_series(&b.lhs).or_else(|| classic_series(&b.rhs)),
        Expr::Subquery(s) => classic_series(&s.expr),
        Expr::Unary(u) => classic_series(&u.expr),
        _ => None,
    }
}

/// The histogram family of the first `_bucket` series in an expression.
fn bucket_family(e: &Expr) -> Option<&'static MetricDef> {
    match e {
        Expr::VectorSelector(vs) => vs
            .name
            .as_deref()
            .filter(|n| n.ends_with("_bucket"))
            .and_then(catalog::family_of_series),
        Expr::MatrixSelector(ms) => bucket_family(&Expr::VectorSelector(ms.vs.clone())),
        Expr::Paren(p) => bucket_family(&p.expr),
        Expr::Aggregate(a) => bucket_family(&a.expr),
        Expr::Call(c) => c.args.args.iter().find_map(|a| bucket_family(a)),
        Expr::Binary(b) => bucket_family(&b.lhs).or_else(|| bucket_family(&b.rhs)),
        Expr::Subquery(s) => bucket_family(&s.expr),
        Expr::Unary(u) => bucket_family(&u.expr),
        _ => None,
    }
}
