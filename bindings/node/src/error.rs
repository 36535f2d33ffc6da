//! Core errors as JavaScript errors: the message starts with a code (`EADDRINUSE: ...`,
//! `ERR_TARS_INVALID_NAME: ...`) that the JavaScript layer moves into `error.code`.

use std::io::ErrorKind;

use napi::Status;

/// The code a core error carries in JavaScript.
pub fn code(e: &tars_telemetry::Error) -> &'static str {
    use tars_telemetry::Error as E;
    if let Some(kind) = e.io_kind() {
        return match kind {
            ErrorKind::AddrInUse => "EADDRINUSE",
            ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
            ErrorKind::PermissionDenied => "EACCES",
            ErrorKind::InvalidInput => "EINVAL",
            _ => "EIO",
        };
    }
    match e {
        E::LabelCount { .. } => "ERR_TARS_LABEL_COUNT",
        E::Conflict { .. } => "ERR_TARS_CONFLICT",
        E::WrongKind { .. } => "ERR_TARS_WRONG_KIND",
        E::InvalidName { .. } => "ERR_TARS_INVALID_NAME",
        E::InvalidBuckets(_) => "ERR_TARS_INVALID_BUCKETS",
        E::TooManyFamilies { .. } => "ERR_TARS_TOO_MANY_FAMILIES",
        E::InvalidSetting { .. } => "ERR_TARS_INVALID_SETTING",
        E::RecorderInstalled => "ERR_TARS_RECORDER_INSTALLED",
        E::MultiprocessIncompatible { .. } | E::MultiprocessDirShared { .. } => {
            MULTIPROCESS_UNAVAILABLE
        }
        _ => "ERR_TARS",
    }
}

/// The code of a multi-process directory that cannot be used: a file of another layout or
/// catalog in it, a directory that other users can write to, or a directory that cannot be
/// created, read or locked.
pub const MULTIPROCESS_UNAVAILABLE: &str = "ERR_TARS_MULTIPROCESS_UNAVAILABLE";

/// A core error met while using the multi-process directory `dir`, as a napi error: an
/// I/O error names the directory (the core's message says what was being done).
pub fn multiproc(e: tars_telemetry::Error, dir: &str) -> napi::Error {
    let msg = if e.io_kind().is_some() {
        format!("{e} (multi-process directory {dir:?})")
    } else {
        e.to_string()
    };
    napi::Error::new(
        Status::GenericFailure,
        format!("{MULTIPROCESS_UNAVAILABLE}: {msg}"),
    )
}

/// A core error as a napi error.
pub fn core(e: tars_telemetry::Error) -> napi::Error {
    let status = if e.io_kind().is_some() {
        Status::GenericFailure
    } else {
        Status::InvalidArg
    };
    napi::Error::new(status, format!("{}: {e}", code(&e)))
}

/// An invalid argument, with a code.
pub fn invalid(code: &str, msg: impl std::fmt::Display) -> napi::Error {
    napi::Error::new(Status::InvalidArg, format!("{code}: {msg}"))
}

/// A panic caught at the boundary, as an error (never unwinding into Node).
pub fn panicked(what: &str) -> napi::Error {
    napi::Error::new(
        Status::GenericFailure,
        format!("ERR_TARS_INTERNAL: {what} failed inside tars-telemetry (a bug; please report it)"),
    )
}
