/// Errors of tars-telemetry. Nothing in the library panics on bad input: it returns one
/// of these, or (on the recording hot path) drops the value and counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The number of label values does not match the family's label names.
    LabelCount {
        family: String,
        expected: usize,
        got: usize,
    },
    /// A family of that name exists with another type or other labels.
    Conflict {
        family: String,
        existing: String,
        requested: String,
    },
    /// No family of that name is registered.
    UnknownFamily(String),
    /// The family exists but is of another type than the handle asked for.
    WrongKind {
        family: String,
        expected: &'static str,
    },
    /// A metric or label name that Prometheus cannot carry.
    InvalidName(String),
    /// A bad value (NaN, infinite, negative, fractional) given where an error can be returned.
    InvalidValue(crate::InvalidValue),
    /// Bucket bounds that are empty, unsorted, or not finite.
    InvalidBuckets(String),
    /// The HTTP endpoint could not start.
    Io(String),
    /// The registry holds as many families as its family budget allows.
    TooManyFamilies { family: String, budget: usize },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::LabelCount {
                family,
                expected,
                got,
            } => write!(f, "{family} takes {expected} label value(s), {got} given"),
            Error::Conflict {
                family,
                existing,
                requested,
            } => write!(
                f,
                "{family} is already registered as {existing}; cannot register it as {requested}"
            ),
            Error::UnknownFamily(n) => write!(f, "no metric family named {n:?}"),
            Error::WrongKind { family, expected } => write!(f, "{family} is not a {expected}"),
            Error::InvalidName(n) => {
                write!(f, "{n:?} is not a valid Prometheus metric or label name")
            }
            Error::InvalidValue(v) => write!(f, "{v}"),
            Error::InvalidBuckets(m) => write!(f, "invalid buckets: {m}"),
            Error::Io(m) => write!(f, "{m}"),
            Error::TooManyFamilies { family, budget } => write!(
                f,
                "cannot register {family}: the registry holds its budget of {budget} families"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::InvalidValue> for Error {
    fn from(v: crate::InvalidValue) -> Self {
        Error::InvalidValue(v)
    }
}
