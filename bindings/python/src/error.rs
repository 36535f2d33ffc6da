//! The core's errors as Python exceptions: `ValueError` for a bad name, label, bucket or
//! setting, `OSError` (with its errno) for the operating system's, `RuntimeError` for the rest.

use pyo3::PyErr;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use tars_telemetry::Error;

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
