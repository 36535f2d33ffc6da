use std::io;
use std::sync::Arc;

/// Errors of tars-telemetry. Nothing in the library panics on bad input: it returns one
/// of these, or (on the recording hot path) drops the value and counts it.
///
/// ```
/// use tars_telemetry::{Error, Telemetry};
/// let t = Telemetry::new();
/// let _a = t.serve("127.0.0.1:0").unwrap();
/// let taken = _a.local_addr();
/// let e = t.serve(taken).unwrap_err();
/// assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AddrInUse));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The number of label values does not match the family's label names.
    LabelCount {
        /// The family.
        family: String,
        /// Labels the family has.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A family of that name exists with another type or other labels.
    Conflict {
        /// The family.
        family: String,
        /// What it is registered as.
        existing: String,
        /// What was asked for.
        requested: String,
    },
    /// The family exists but is of another type than the handle asked for.
    WrongKind {
        /// The family.
        family: String,
        /// The type the handle needs.
        expected: &'static str,
    },
    /// A metric or label name that Prometheus cannot carry, or that is reserved.
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: NameError,
    },
    /// Bucket bounds that cannot make a histogram.
    InvalidBuckets(BucketError),
    /// An operating-system error (binding the metrics address, starting its thread); the
    /// `io::ErrorKind` is kept, so an address in use stays `AddrInUse`.
    Io {
        /// What was being done.
        during: &'static str,
        /// The error.
        source: Arc<io::Error>,
    },
    /// A `metrics` recorder is installed in this process already.
    RecorderInstalled,
    /// The registry holds as many families as its family budget allows.
    TooManyFamilies {
        /// The family refused.
        family: String,
        /// The budget.
        budget: usize,
    },
    /// A setting out of its range (a zero connection cap, a zero timeout).
    InvalidSetting {
        /// The setting.
        setting: &'static str,
        /// What it must be.
        must_be: &'static str,
    },
    /// A file in the multi-process directory that this version cannot read: written by
    /// another layout or catalog version, or not ours at all. It is refused, never misread.
    MultiprocessIncompatible {
        /// The file.
        path: String,
        /// What differs.
        reason: Incompatibility,
    },
    /// A multi-process directory that users other than this one can write to (group or
    /// world writable, or owned by another user): anyone could place files in it. Refused
    /// unless allowed with `TARS_TELEMETRY_MULTIPROC_ALLOW_SHARED=1` (or the builder's
    /// `multiprocess_allow_shared_dir`).
    MultiprocessDirShared {
        /// The directory.
        path: String,
        /// Its permission bits.
        mode: u32,
        /// Its owner's uid.
        owner: u32,
    },
}

/// Why a file of the multi-process directory is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incompatibility {
    /// It does not start with this library's signature.
    NotOurs,
    /// Written with another file layout.
    Layout {
        /// The layout version in the file.
        found: u32,
        /// This library's.
        expected: u32,
    },
    /// Written by a build with another metric catalog (families, labels, buckets or
    /// merge modes differ), whose values cannot be merged with this one's.
    Catalog {
        /// The catalog fingerprint in the file.
        found: u64,
        /// This build's.
        expected: u64,
    },
    /// Shorter than its own header says.
    Truncated,
    /// A record that cannot be what it claims: an index, length or offset out of its
    /// bounds. The file is read no further than that record.
    Corrupt {
        /// The record's byte offset in the file.
        offset: u64,
        /// What is wrong with it.
        what: &'static str,
    },
    /// Not a regular file owned by this user (a FIFO, a device, a symbolic link, another
    /// user's file): never opened for reading, never followed.
    NotARegularFile,
}

impl std::fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incompatibility::NotOurs => {
                f.write_str("it is not a tars-telemetry multi-process file")
            }
            Incompatibility::Layout { found, expected } => write!(
                f,
                "it has file layout {found}, this build reads layout {expected}"
            ),
            Incompatibility::Catalog { found, expected } => write!(
                f,
                "it was written by a build with another metric catalog (fingerprint {found:016x}, this build {expected:016x})"
            ),
            Incompatibility::Truncated => f.write_str("it is shorter than its header says"),
            Incompatibility::Corrupt { offset, what } => {
                write!(f, "its record at byte {offset} is corrupt: {what}")
            }
            Incompatibility::NotARegularFile => {
                f.write_str("it is not a regular file owned by this user")
            }
        }
    }
}

/// Why a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// Empty.
    Empty,
    /// A character Prometheus names cannot hold (`[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics,
    /// no `:` in labels).
    BadCharacter,
    /// Starts with `__`, which Prometheus reserves.
    Reserved,
    /// A label name the family type uses itself (`le` on a histogram).
    ReservedLabel,
    /// The same label name twice.
    DuplicateLabel,
}

/// Why bucket bounds are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BucketError {
    /// No bounds.
    Empty,
    /// A NaN or infinite bound (`+Inf` is implied).
    NotFinite,
    /// Bounds not strictly ascending.
    NotAscending,
    /// A native histogram schema outside -4..=8.
    NativeSchema(i8),
    /// A native histogram zero threshold that is negative, NaN or infinite.
    NativeZeroThreshold,
}

impl Error {
    pub(crate) fn io(during: &'static str, e: io::Error) -> Error {
        Error::Io {
            during,
            source: Arc::new(e),
        }
    }

    /// The kind of an [`Error::Io`]: what a binding maps to `OSError`/`EADDRINUSE`.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    /// The raw OS error number of an [`Error::Io`], when it has one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameError::Empty => "it is empty",
            NameError::BadCharacter => {
                "names hold only ASCII letters, digits, '_' (and ':' in metric names), not starting with a digit"
            }
            NameError::Reserved => "names starting with '__' are reserved",
            NameError::ReservedLabel => "'le' is reserved for histogram buckets",
            NameError::DuplicateLabel => "a label name is given twice",
        })
    }
}

impl std::fmt::Display for BucketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BucketError::NativeSchema(s) => {
                write!(f, "native histogram schema {s} is outside -4..=8")
            }
            _ => f.write_str(match self {
                BucketError::Empty => "no bounds",
                BucketError::NotFinite => "bounds must be finite (+Inf is implied)",
                BucketError::NotAscending => "bounds must be strictly ascending",
                _ => "the native zero threshold must be a finite number, at least 0",
            }),
        }
    }
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
            Error::WrongKind { family, expected } => write!(f, "{family} is not a {expected}"),
            Error::InvalidName { name, reason } => {
                write!(f, "{name:?} is not a valid Prometheus name: {reason}")
            }
            Error::InvalidBuckets(e) => write!(f, "invalid buckets: {e}"),
            Error::Io { during, source } => write!(f, "{during}: {source}"),
            Error::RecorderInstalled => f.write_str("a metrics recorder is installed already"),
            Error::TooManyFamilies { family, budget } => write!(
                f,
                "cannot register {family}: the registry holds its budget of {budget} families"
            ),
            Error::InvalidSetting { setting, must_be } => {
                write!(f, "{setting} must be {must_be}")
            }
            Error::MultiprocessIncompatible { path, reason } => write!(
                f,
                "{path} cannot be used: {reason}; stop the workers still writing it, or give this service a directory of its own"
            ),
            Error::MultiprocessDirShared { path, mode, owner } => write!(
                f,
                "the multi-process directory {path} can be written by other users (mode {mode:04o}, owner uid {owner}): point it at a directory of this user's, e.g. a subdirectory of the volume (created 0700 when missing), or set TARS_TELEMETRY_MULTIPROC_ALLOW_SHARED=1 to accept it"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

/// Checks bucket bounds: non-empty, finite, strictly ascending.
pub(crate) fn check_buckets(b: &[f64]) -> Result<(), Error> {
    let e = if b.is_empty() {
        BucketError::Empty
    } else if b.iter().any(|v| !v.is_finite()) {
        BucketError::NotFinite
    } else if b.windows(2).any(|w| w[0] >= w[1]) {
        BucketError::NotAscending
    } else {
        return Ok(());
    };
    Err(Error::InvalidBuckets(e))
}
