//! The core's errors as Python exceptions: `ValueError` for a bad name, label, bucket or
//! setting, `OSError` (with its errno) for the operating system's,
//! `MultiprocessModeUnavailable` for a multi-process directory that cannot be used,
//! `RuntimeError` for the rest.

use std::path::Path;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tars_telemetry::Error;

pyo3::create_exception!(
    tars_telemetry,
    MultiprocessModeUnavailable,
    PyRuntimeError,
    "The multi-process directory cannot be used: a file in it of another layout or \
catalog (written by another version, still running), a directory that other users can \
write to, or a directory that cannot be created, written or locked. The message names the file or the directory; an operating \
system error is chained as the cause (with its errno)."
);

/// Maps a core error to the Python exception a caller expects.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::Io { .. } => match e.raw_os_error() {
            Some(errno) => PyOSError::new_err((errno, msg)),
            None => PyOSError::new_err(msg),
        },
        Error::LabelCount { .. }
        | Error::Conflict { .. }
        | Error::WrongKind { .. }
        | Error::InvalidName { .. }
        | Error::InvalidBuckets(_)
        | Error::TooManyFamilies { .. }
        | Error::InvalidSetting { .. } => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// A multi-process directory's error: an incompatible file is `MultiprocessModeUnavailable`,
/// an operating-system error `OSError`.
pub fn multiproc_to_py(e: Error) -> PyErr {
    match &e {
        Error::MultiprocessIncompatible { .. } | Error::MultiprocessDirShared { .. } => {
            MultiprocessModeUnavailable::new_err(e.to_string())
        }
        _ => to_py(e),
    }
}

/// Joining the multi-process directory `dir` failed: `MultiprocessModeUnavailable`, with
/// the operating system's error (an `OSError` with its errno) as its cause.
pub fn join_to_py(py: Python<'_>, dir: &Path, e: Error) -> PyErr {
    match &e {
        Error::MultiprocessIncompatible { .. } | Error::MultiprocessDirShared { .. } => {
            MultiprocessModeUnavailable::new_err(e.to_string())
        }
        Error::Io { .. } => {
            let err = MultiprocessModeUnavailable::new_err(format!(
                "multi-process directory {}: {e}",
                dir.display()
            ));
            err.set_cause(py, Some(to_py(e)));
            err
        }
        _ => to_py(e),
    }
}

/// `Result<T, Error>` to `PyResult<T>`.
pub trait IntoPy<T> {
    /// Converts the error, if any.
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
