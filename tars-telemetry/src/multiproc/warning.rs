//! What a read of the directory could not use: returned to the caller of a render, logged,
//! and counted in `tars_telemetry_multiprocess_losses_total`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Incompatibility};

/// What happened to a file of the multi-process directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MultiprocessEvent {
    /// Left out of this render entirely: its counts are missing from it (a FIFO, a
    /// symbolic link, another user's file, a file of another layout or catalog).
    FileSkipped,
    /// Read up to a corrupt record only: the series after it are missing from this render
    /// (a live worker's or the archive's), or, for a dead worker's file being folded, lost
    /// (the file is then set aside).
    RecordsDropped,
    /// An archive that could not be read, moved aside (`archive.tars.broken-<nanos>`, kept
    /// for inspection) and a fresh one begun: the counts it held are lost.
    ArchiveReplaced,
    /// A dead worker's file that could not be read (or only in part), moved aside
    /// (`<name>.broken-<nanos>`) so that it is not read again.
    DeadFileSetAside,
    /// Dead workers could not be folded into the archive (a read-only or full directory):
    /// their counts were read from their own files for this render instead, so nothing
    /// goes backwards; the fold is tried again at the next render.
    FoldFailed,
}

impl MultiprocessEvent {
    /// The `event` label value.
    ///
    /// ```
    /// use tars_telemetry::multiproc::MultiprocessEvent;
    /// assert_eq!(MultiprocessEvent::FileSkipped.as_str(), "file_skipped");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            MultiprocessEvent::FileSkipped => "file_skipped",
            MultiprocessEvent::RecordsDropped => "records_dropped",
            MultiprocessEvent::ArchiveReplaced => "archive_replaced",
            MultiprocessEvent::DeadFileSetAside => "dead_file_set_aside",
            MultiprocessEvent::FoldFailed => "fold_failed",
        }
    }

    /// Whether the event lost counts for good (counted once, in the archive), rather than
    /// leaving them out of one render (counted by the worker that rendered).
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            MultiprocessEvent::ArchiveReplaced | MultiprocessEvent::DeadFileSetAside
        )
    }
}

/// Why: the file's incompatibility, or the operating system's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiprocessCause {
    /// The file cannot be read as this build's (see [`Incompatibility`]).
    Incompatible(Incompatibility),
    /// The directory or file cannot be written: read-only file system, or no permission.
    Unwritable,
    /// The volume is full, or the user's quota spent.
    NoSpace,
    /// Another operating-system error.
    Io,
}

impl MultiprocessCause {
    /// The `reason` label value.
    ///
    /// ```
    /// use tars_telemetry::multiproc::MultiprocessCause;
    /// assert_eq!(MultiprocessCause::Unwritable.as_str(), "unwritable");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            MultiprocessCause::Incompatible(i) => match i {
                Incompatibility::NotOurs => "not_ours",
                Incompatibility::Layout { .. } => "layout",
                Incompatibility::Catalog { .. } => "catalog",
                Incompatibility::Truncated => "truncated",
                Incompatibility::Corrupt { .. } => "corrupt",
                Incompatibility::NotARegularFile => "not_a_regular_file",
            },
            MultiprocessCause::Unwritable => "unwritable",
            MultiprocessCause::NoSpace => "no_space",
            MultiprocessCause::Io => "io",
        }
    }

    /// The cause of a core error.
    pub(crate) fn of(e: &Error) -> MultiprocessCause {
        match e {
            Error::MultiprocessIncompatible { reason, .. } => {
                MultiprocessCause::Incompatible(*reason)
            }
            _ => match e.raw_os_error() {
                Some(libc::EROFS | libc::EACCES | libc::EPERM) => MultiprocessCause::Unwritable,
                Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => MultiprocessCause::NoSpace,
                _ => MultiprocessCause::Io,
            },
        }
    }
}

impl std::fmt::Display for MultiprocessCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MultiprocessCause::Incompatible(i) => i.fmt(f),
            MultiprocessCause::Unwritable => f.write_str("the directory cannot be written"),
            MultiprocessCause::NoSpace => f.write_str("the volume is full"),
            MultiprocessCause::Io => f.write_str("an operating-system error"),
        }
    }
}

/// One thing a render of the directory could not use, and what that cost.
///
/// ```
/// use tars_telemetry::Format;
/// use tars_telemetry::multiproc::{MultiprocessDir, MultiprocessEvent};
/// let dir = std::env::temp_dir().join(format!("tars-doc-warn-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// // Not a regular file, named like a worker's: left out of the render, and said so.
/// std::fs::create_dir(dir.join("worker-1-1.tars")).unwrap();
/// let mut out = Vec::new();
/// let warnings = MultiprocessDir::new(&dir).render_report(Format::Prometheus, &mut out).unwrap();
/// assert_eq!(warnings[0].event, MultiprocessEvent::FileSkipped);
/// assert_eq!(warnings[0].cause.as_str(), "not_a_regular_file");
/// assert!(dir.join("worker-1-1.tars").is_dir(), "left alone");
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultiprocessWarning {
    /// The file (or the directory, for a fold that failed).
    pub path: PathBuf,
    /// What happened to it.
    pub event: MultiprocessEvent,
    /// Why.
    pub cause: MultiprocessCause,
}

impl MultiprocessWarning {
    pub(crate) fn new(path: &Path, event: MultiprocessEvent, cause: MultiprocessCause) -> Self {
        MultiprocessWarning {
            path: path.to_path_buf(),
            event,
            cause,
        }
    }
}

impl std::fmt::Display for MultiprocessWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.path.display(),
            self.event.as_str().replace('_', " "),
            self.cause
        )
    }
}

/// The label string of a losses series, as the files store it.
pub(crate) fn losses_labels(event: MultiprocessEvent, cause: MultiprocessCause) -> String {
    format!("event=\"{}\",reason=\"{}\"", event.as_str(), cause.as_str())
}
