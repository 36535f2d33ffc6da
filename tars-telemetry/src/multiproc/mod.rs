//! Multi-process mode: the worker processes of one service (gunicorn or `uvicorn
//! --workers`, Node `cluster`, PM2) record into files of one shared directory, and any of
//! them serves one merged, exact /metrics.
//!
//! - **Recording** is unchanged: the same atomic operations, on cells that live in a
//!   memory-mapped file of the worker's own (`worker-<pid>-<nanos>.tars`). New series are
//!   appended and published with one release store, so a reader never sees half of one.
//! - **Merging** happens at scrape, in whichever process renders: counters and histograms
//!   are summed, gauges combined by their family's [`Merge`](crate::Merge) mode, info
//!   families unioned, the newest exemplar kept.
//! - **Dead workers** are told by a lock each worker holds on its file for its lifetime
//!   (pids are reused, so they are not trusted). A dead worker's counters and histograms,
//!   and its readings merged by recency, are folded into `archive.tars` so that totals
//!   never go backwards; its other gauges drop out. The directory holds live workers + 1
//!   files however many workers come and go.
//! - **Starting** the first worker of a service (no live worker found) clears what a
//!   previous run left (an `emptyDir` survives container restarts), so counters start
//!   from zero as with any restart. A run is told by the workers' parent process (the
//!   gunicorn master, the `uvicorn --workers` supervisor, a container's init; by pid and
//!   start time, in each worker file's name): dead workers of the same parent are the
//!   service's own, recycled all at once (`--max-requests`), and are folded, not cleared.
//!   Files of another layout or catalog are refused with
//!   [`Error::MultiprocessIncompatible`], never misread.
//! - The **series budget** and the self-metrics count per service, not per worker.
//!
//! ```
//! use tars_telemetry::{Format, Telemetry};
//! let dir = std::env::temp_dir().join(format!("tars-doc-{}", std::process::id()));
//! let worker = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
//! worker.rag().record_query(std::time::Duration::from_millis(20), tars_telemetry::Outcome::Success, None);
//! // Any process can render the directory, this worker included.
//! let text = tars_telemetry::multiproc::MultiprocessDir::new(&dir)
//!     .render_string(Format::Prometheus)
//!     .unwrap();
//! assert!(text.contains("tars_rag_queries_total{status=\"success\"} 1"));
//! # drop(worker); std::fs::remove_dir_all(&dir).ok();
//! ```

mod file;
mod merge;
mod warning;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use hashbrown::{HashMap, HashSet};
use parking_lot::Mutex;

use crate::error::{Error, Incompatibility};
pub(crate) use file::{CellsKind, FamilyRecord, NewSeries};
use file::{FileReader, FileWriter, Role};
pub(crate) use merge::{Merged, MergedFamily, Value};
use merge::{Source, write_value};
use warning::losses_labels;
pub use warning::{MultiprocessCause, MultiprocessEvent, MultiprocessWarning};

/// The environment variable naming the directory of the multi-process mode.
pub const MULTIPROC_DIR_ENV: &str = "TARS_TELEMETRY_MULTIPROC_DIR";

/// The environment variable that, set to `1`, lets workers use a directory other users
/// can write to (refused otherwise, with [`Error::MultiprocessDirShared`]).
pub const MULTIPROC_ALLOW_SHARED_ENV: &str = "TARS_TELEMETRY_MULTIPROC_ALLOW_SHARED";

const ARCHIVE: &str = "archive.tars";
const ARCHIVE_TMP: &str = "archive.tars.tmp";
/// Suffix of a file set aside because it could not be read (`<name>.broken-<nanos>`).
const BROKEN: &str = ".broken-";
/// Files set aside that are kept for inspection; older ones are removed.
const BROKEN_KEPT: usize = 4;
const WORKER_PREFIX: &str = "worker-";
const EXT: &str = ".tars";

/// The directory's lock: held while its file list changes (a worker starting, dead
/// workers folded) or is read. Opened afresh each time, so a forked child never inherits
/// a held one.
struct DirLock(#[allow(dead_code)] File); // unlocked when closed

impl DirLock {
    fn take(dir: &Path) -> Result<DirLock, Error> {
        let f = File::open(dir).map_err(|e| Error::io("opening the multi-process directory", e))?;
        flock(&f, libc::LOCK_EX)
            .map_err(|e| Error::io("locking the multi-process directory", e))?;
        Ok(DirLock(f))
    }
}

/// `flock(2)`: a lock of the open file (not of the process, unlike `fcntl` locks), freed
/// when the last descriptor of it closes, however the process ends.
fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: a valid descriptor.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A worker file found in the directory.
struct WorkerFile {
    path: PathBuf,
    file: File,
    live: bool,
}

/// What the directory holds.
struct Listing {
    archive: Option<PathBuf>,
    workers: Vec<WorkerFile>,
    /// Files named like workers' that could not be opened (not regular files of ours).
    skipped: Vec<MultiprocessWarning>,
}

/// Lists the directory and tells live workers from dead ones by their files' locks.
/// The caller holds the directory lock.
fn list(dir: &Path) -> Result<Listing, Error> {
    let mut listing = Listing {
        archive: None,
        workers: Vec::new(),
        skipped: Vec::new(),
    };
    let rd =
        std::fs::read_dir(dir).map_err(|e| Error::io("listing the multi-process directory", e))?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if name == ARCHIVE {
            listing.archive = Some(path);
        } else if name.starts_with(WORKER_PREFIX) && name.ends_with(EXT) {
            let file = match open_data_file(&path) {
                Ok(f) => f,
                // Removed meanwhile.
                Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => continue,
                // Not a regular file of ours: left alone, and said so.
                Err(e) => {
                    listing.skipped.push(MultiprocessWarning::new(
                        &path,
                        MultiprocessEvent::FileSkipped,
                        MultiprocessCause::of(&e),
                    ));
                    continue;
                }
            };
            // A worker holds its file's lock exclusively until it exits, however it exits.
            // A failure other than "held" (never seen on Linux) counts as live: a file
            // is folded only when its worker is known to be gone.
            let live = flock(&file, libc::LOCK_SH | libc::LOCK_NB).is_err();
            listing.workers.push(WorkerFile { path, file, live });
        }
    }
    Ok(listing)
}

/// Opens a worker or archive file for reading: never following a symbolic link
/// (`O_NOFOLLOW`), never blocking on a FIFO or device (`O_NONBLOCK`), and only a regular
/// file owned by this process's user; anything else is refused by name, left alone.
fn open_data_file(path: &Path) -> Result<File, Error> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let refuse = || Error::MultiprocessIncompatible {
        path: path.display().to_string(),
        reason: Incompatibility::NotARegularFile,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW on a symbolic link.
            Some(libc::ELOOP) => refuse(),
            _ => Error::io("opening a multi-process file", e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("reading a multi-process file", e))?;
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() || meta.uid() != uid {
        return Err(refuse());
    }
    Ok(file)
}

fn open_reader(path: &Path, fingerprint: u64) -> Result<FileReader, Error> {
    let file = open_data_file(path)?;
    FileReader::open(path, &file, fingerprint)
}

/// Folds the dead workers' files into the archive and removes them; an archive or a dead
/// worker's file that cannot be read is set aside (renamed, kept for inspection) and the
/// loss counted in the new archive. The caller holds the directory lock.
///
/// With no dead worker, the archive is looked at only when `check_archive` (a render
/// finds a broken one as it reads it, and asks again).
///
/// Nothing changes unless the new archive is written: on an error (a read-only or full
/// directory) the dead workers stay in `listing`, for the caller to read them as they are.
fn fold_dead(
    dir: &Path,
    listing: &mut Listing,
    fingerprint: u64,
    warnings: &mut Vec<MultiprocessWarning>,
    check_archive: bool,
) -> Result<(), Error> {
    let any_dead = listing.workers.iter().any(|w| !w.live);
    if !any_dead && !check_archive {
        return Ok(());
    }
    let mut merged = Merged::default();
    let mut run = None;
    // Why the archive must be set aside, if it must.
    let mut broken_archive = None;
    if let Some(archive) = &listing.archive {
        match open_reader(archive, fingerprint) {
            // Nothing to fold and a sound header: the archive stays as it is (a corrupt
            // record inside it is reported by the render, and mended at the next fold).
            Ok(_) if !any_dead => return Ok(()),
            Ok(mut r) => {
                run = r.run();
                if let Err(reason) = merged.absorb(&mut r, Source::Past) {
                    broken_archive = Some(MultiprocessCause::Incompatible(reason));
                }
            }
            Err(e @ Error::MultiprocessIncompatible { .. }) => {
                broken_archive = Some(MultiprocessCause::of(&e));
            }
            // An operating-system error may pass (too many open files): try again later,
            // never throw away an archive that may be sound.
            Err(e) => return Err(e),
        }
    }
    if !any_dead && broken_archive.is_none() {
        return Ok(());
    }
    // The archive keeps the run of the workers it holds, so that a worker of that run
    // starting when none is live keeps it (see `start_worker`).
    if let Some(r) = listing
        .workers
        .iter()
        .rev()
        .filter(|w| !w.live)
        .find_map(|w| run_of(&w.path))
    {
        run = Some(r.to_string());
    }
    // Dead files to remove once folded, and those to set aside (with why).
    let mut folded = Vec::new();
    let mut set_aside = Vec::new();
    for (i, w) in listing.workers.iter().enumerate().filter(|(_, w)| !w.live) {
        match FileReader::open(&w.path, &w.file, fingerprint) {
            Ok(mut r) => match merged.absorb(&mut r, Source::Past) {
                Ok(()) => folded.push(i),
                // What was intact before the bad record is folded; the file is set aside.
                Err(reason) => set_aside.push((i, MultiprocessCause::Incompatible(reason))),
            },
            Err(e @ Error::MultiprocessIncompatible { .. }) => {
                set_aside.push((i, MultiprocessCause::of(&e)));
            }
            // Left in place, read again at the next fold.
            Err(e) => warnings.push(MultiprocessWarning::new(
                &w.path,
                MultiprocessEvent::FileSkipped,
                MultiprocessCause::of(&e),
            )),
        }
    }
    // The losses, counted once, in the archive that outlives every worker.
    let losses = FamilyRecord::from_def(&crate::catalog::SELF_MULTIPROCESS_LOSSES);
    let mut lost = |event, cause| merged.add_count(&losses, &losses_labels(event, cause), 1);
    if let Some(cause) = broken_archive {
        lost(MultiprocessEvent::ArchiveReplaced, cause);
    }
    for (_, cause) in &set_aside {
        lost(MultiprocessEvent::DeadFileSetAside, *cause);
    }
    let tmp = dir.join(ARCHIVE_TMP);
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut w = FileWriter::create(&tmp, Role::Archive, fingerprint, run.as_deref())?;
        for family in &merged.families {
            for s in &family.series {
                // SAFETY: `series` hands `init` fresh, zeroed cells of the value's kind.
                w.series(
                    &family.record,
                    s.value.cells_kind(),
                    &s.labels,
                    |cells| unsafe { write_value(&s.value, cells, &family.record) },
                )?;
            }
        }
        Ok::<(), Error>(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let archive = dir.join(ARCHIVE);
    if let Some(cause) = broken_archive {
        set_file_aside(dir, &archive);
        warnings.push(MultiprocessWarning::new(
            &archive,
            MultiprocessEvent::ArchiveReplaced,
            cause,
        ));
    }
    if let Err(e) = std::fs::rename(&tmp, &archive) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("replacing the multi-process archive", e));
    }
    listing.archive = Some(archive);
    for &i in &folded {
        let _ = std::fs::remove_file(&listing.workers[i].path);
    }
    for (i, cause) in &set_aside {
        let path = &listing.workers[*i].path;
        set_file_aside(dir, path);
        warnings.push(MultiprocessWarning::new(
            path,
            MultiprocessEvent::DeadFileSetAside,
            *cause,
        ));
    }
    let gone: HashSet<usize> = folded
        .into_iter()
        .chain(set_aside.into_iter().map(|(i, _)| i))
        .collect();
    let mut i = 0;
    listing.workers.retain(|_| {
        i += 1;
        !gone.contains(&(i - 1))
    });
    Ok(())
}

/// Renames `path` to `<name>.broken-<nanos>` (out of every reader's way, kept for
/// inspection), and removes the oldest such files past [`BROKEN_KEPT`].
fn set_file_aside(dir: &Path, path: &Path) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!("{BROKEN}{nanos}"));
    if std::fs::rename(path, &aside).is_err() {
        // Then it cannot stay in the way either.
        let _ = std::fs::remove_file(path);
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut broken: Vec<(u128, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stamp = name.rsplit_once(BROKEN)?.1.parse().ok()?;
            Some((stamp, e.path()))
        })
        .collect();
    if broken.len() > BROKEN_KEPT {
        broken.sort();
        for (_, p) in &broken[..broken.len() - BROKEN_KEPT] {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
        }
    }
}

/// Reads and merges the whole directory, folding dead workers first; says what it could
/// not use.
fn merge_dir(dir: &Path, fingerprint: u64) -> Result<(Merged, Vec<MultiprocessWarning>), Error> {
    let mut warnings = Vec::new();
    let mut readers = Vec::new();
    {
        let _lock = DirLock::take(dir)?;
        let mut listing = list(dir)?;
        warnings.append(&mut listing.skipped);
        let folded = fold_dead(dir, &mut listing, fingerprint, &mut warnings, false);
        if let Err(e) = &folded {
            // The dead workers are still listed: read below from their own files, so that
            // no count goes backwards.
            warnings.push(MultiprocessWarning::new(
                dir,
                MultiprocessEvent::FoldFailed,
                MultiprocessCause::of(e),
            ));
        }
        // A broken archive is set aside and begun afresh (the loss counted in the new
        // one) before anything is read, so that nothing is read twice.
        let mut archive = None;
        if let Some(a) = listing.archive.clone() {
            let mut opened = open_reader(&a, fingerprint);
            if folded.is_ok() && matches!(opened, Err(Error::MultiprocessIncompatible { .. })) {
                match fold_dead(dir, &mut listing, fingerprint, &mut warnings, true) {
                    Ok(()) => opened = open_reader(&a, fingerprint),
                    Err(e) => warnings.push(MultiprocessWarning::new(
                        dir,
                        MultiprocessEvent::FoldFailed,
                        MultiprocessCause::of(&e),
                    )),
                }
            }
            archive = Some((a, opened));
        }
        // Mapped under the lock: the set read is one consistent state of the directory,
        // even if a fold replaces the archive right after.
        for w in &listing.workers {
            let source = if w.live { Source::Live } else { Source::Past };
            match FileReader::open(&w.path, &w.file, fingerprint) {
                Ok(r) => readers.push((source, r, w.path.clone())),
                Err(e) => warnings.push(MultiprocessWarning::new(
                    &w.path,
                    MultiprocessEvent::FileSkipped,
                    MultiprocessCause::of(&e),
                )),
            }
        }
        match archive {
            Some((a, Ok(r))) => readers.push((Source::Past, r, a)),
            Some((a, Err(e))) => warnings.push(MultiprocessWarning::new(
                &a,
                MultiprocessEvent::FileSkipped,
                MultiprocessCause::of(&e),
            )),
            None => {}
        }
    }
    let mut merged = Merged::default();
    for (source, mut r, path) in readers {
        if r.outgrown() {
            // Grew between listing and mapping: map it again to see it all.
            if let Ok(again) = open_reader(&path, fingerprint) {
                r = again;
            }
        }
        if let Err(reason) = merged.absorb(&mut r, source) {
            warnings.push(MultiprocessWarning::new(
                &path,
                MultiprocessEvent::RecordsDropped,
                MultiprocessCause::Incompatible(reason),
            ));
        }
    }
    merged.sort();
    for w in &warnings {
        tracing::warn!(path = %w.path.display(), event = w.event.as_str(), reason = %w.cause, "multi-process directory");
    }
    Ok((merged, warnings))
}

/// A multi-process directory, as any process reads it: a worker, the node agent, or a
/// sidecar with no telemetry of its own.
///
/// ```
/// use tars_telemetry::{Format, multiproc::MultiprocessDir};
/// let dir = std::env::temp_dir().join(format!("tars-doc-dir-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// // An empty directory renders as no series.
/// assert_eq!(MultiprocessDir::new(&dir).render_string(Format::Prometheus).unwrap(), "");
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
#[derive(Debug, Clone)]
pub struct MultiprocessDir {
    path: PathBuf,
}

impl MultiprocessDir {
    /// The directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        MultiprocessDir { path: path.into() }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every worker's series merged, dead workers folded into the archive first, and what
    /// could not be used.
    pub(crate) fn merged(&self) -> Result<(Merged, Vec<MultiprocessWarning>), Error> {
        merge_dir(&self.path, file::catalog_fingerprint())
    }

    /// How many worker files the directory holds, and how many of them are live.
    pub fn workers(&self) -> Result<(usize, usize), Error> {
        let _lock = DirLock::take(&self.path)?;
        let l = list(&self.path)?;
        Ok((l.workers.len(), l.workers.iter().filter(|w| w.live).count()))
    }
}

/// What this process knows of the service's series, for the per-service budget: the
/// label sets of every family in every file, read incrementally.
#[derive(Default)]
struct Known {
    /// Other files' readers, by (device, inode): a replaced archive is a new file.
    readers: HashMap<(u64, u64), FileReader>,
    sets: HashMap<String, HashSet<String>>,
}

impl Known {
    fn refresh(&mut self, dir: &Path, own: &Path, fingerprint: u64) -> Result<(), Error> {
        use std::os::unix::fs::MetadataExt;
        let listing = list(dir)?;
        let paths = listing
            .workers
            .iter()
            .map(|w| w.path.clone())
            .chain(listing.archive.clone());
        let mut seen = HashSet::new();
        for path in paths {
            if path == own {
                continue;
            }
            let Ok(file) = open_data_file(&path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            let key = (meta.dev(), meta.ino());
            seen.insert(key);
            let reader = match self.readers.entry(key) {
                hashbrown::hash_map::Entry::Occupied(o) => o.into_mut(),
                hashbrown::hash_map::Entry::Vacant(v) => {
                    match FileReader::open(&path, &file, fingerprint) {
                        Ok(r) => v.insert(r),
                        Err(_) => continue,
                    }
                }
            };
            if reader.outgrown()
                && let Ok(mut again) = FileReader::open(&path, &file, fingerprint)
            {
                // Keep reading where the old mapping stopped.
                again.read_to = reader.read_to;
                again.families = std::mem::take(&mut reader.families);
                *reader = again;
            }
            let sets = &mut self.sets;
            let _ = reader.read_new(|families, view| {
                if let Some(Some(f)) = families.get(view.family as usize) {
                    sets.entry_ref(f.name.as_str())
                        .or_default()
                        .insert(view.labels.to_string());
                }
            });
        }
        self.readers.retain(|k, _| seen.contains(k));
        Ok(())
    }
}

/// This process's side of the directory: its own file, and what it knows of the others.
pub(crate) struct Store {
    dir: PathBuf,
    fingerprint: u64,
    writer: Mutex<FileWriter>,
    /// Serializes this process's directory work (budget checks, renders), and is taken
    /// before a fork so that no directory lock is open in a thread that the child lacks.
    known: Mutex<Known>,
    /// Set in a forked child that could not start a file of its own: it must not append
    /// to its parent's, so its new series stay in process.
    detached: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Whether the environment allows a directory other users can write to.
fn env_allows_shared() -> bool {
    std::env::var_os(MULTIPROC_ALLOW_SHARED_ENV).is_some_and(|v| v == "1" || v == "true")
}

/// Refuses a directory that users other than this one can write to (group or world
/// writable, or another user's): they could place files that workers read, or take
/// files away from under them.
fn check_private(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta =
        std::fs::metadata(dir).map_err(|e| Error::io("reading the multi-process directory", e))?;
    let mode = meta.permissions().mode() & 0o7777;
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if mode & 0o022 != 0 || meta.uid() != uid {
        return Err(Error::MultiprocessDirShared {
            path: dir.display().to_string(),
            mode,
            owner: meta.uid(),
        });
    }
    Ok(())
}

/// The run this process belongs to: its parent process, by pid and start time (pids are
/// reused), as a file-name part. `None` where `/proc` cannot tell.
fn run_id() -> Option<String> {
    let ppid = std::os::unix::process::parent_id();
    let stat = std::fs::read_to_string(format!("/proc/{ppid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and ')'; the start time is the
    // 22nd field, the 20th after comm.
    let after_comm = stat.get(stat.rfind(')')? + 1..)?;
    let start = after_comm.split_whitespace().nth(19)?;
    start
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| format!("run{ppid}.{start}"))
}

/// The run a worker file's name carries (`worker-<pid>-<nanos>-<run>.tars`), if any.
fn run_of(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_prefix(WORKER_PREFIX)?.strip_suffix(EXT)?;
    stem.splitn(3, '-').nth(2)
}

/// Creates this process's worker file, clearing a stale directory or folding dead
/// workers first. The caller holds the directory lock.
fn start_worker(dir: &Path, fingerprint: u64) -> Result<FileWriter, Error> {
    let mut listing = list(dir)?;
    let run = run_id();
    // Dead workers of this run, or an archive of this run's workers (folded by a reader
    // that is no worker, a sidecar's or the agent's render), are this service's.
    let same_run = |l: &Listing| {
        run.as_deref().is_some_and(|r| {
            l.workers.iter().any(|w| run_of(&w.path) == Some(r))
                || l.archive.as_ref().is_some_and(|a| {
                    open_reader(a, fingerprint).is_ok_and(|f| f.run().as_deref() == Some(r))
                })
        })
    };
    if listing.workers.iter().all(|w| !w.live) && !same_run(&listing) {
        // (Files set aside as broken are kept: they are for inspection.)
        // No worker of this service is running: what is here is a previous run's.
        for w in &listing.workers {
            let _ = std::fs::remove_file(&w.path);
        }
        for name in [ARCHIVE, ARCHIVE_TMP] {
            let _ = std::fs::remove_file(dir.join(name));
        }
    } else {
        // A live worker of another layout or catalog is another version of the service
        // sharing the directory: refused. A broken archive is no reason to refuse: the
        // fold sets it aside and begins a fresh one.
        for w in listing.workers.iter().filter(|w| w.live) {
            FileReader::open(&w.path, &w.file, fingerprint)?;
        }
        let mut warnings = Vec::new();
        fold_dead(dir, &mut listing, fingerprint, &mut warnings, true)?;
        for w in &warnings {
            tracing::warn!(path = %w.path.display(), event = w.event.as_str(), reason = %w.cause, "multi-process directory");
        }
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let suffix = run.as_deref().map(|r| format!("-{r}")).unwrap_or_default();
    let path = dir.join(format!(
        "{WORKER_PREFIX}{}-{nanos}{suffix}{EXT}",
        std::process::id()
    ));
    let writer = FileWriter::create(&path, Role::Worker, fingerprint, run.as_deref())?;
    flock(&writer.file, libc::LOCK_EX | libc::LOCK_NB)
        .map_err(|e| Error::io("locking this worker's multi-process file", e))?;
    Ok(writer)
}

impl Store {
    /// Joins the directory at `dir` (created 0700 if missing) as a new worker. A directory
    /// other users can write to is refused unless `allow_shared`.
    pub(crate) fn open(dir: &Path, allow_shared: bool) -> Result<Store, Error> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("creating the multi-process directory", e))?;
        if !allow_shared && !env_allows_shared() {
            check_private(dir)?;
        }
        let fingerprint = file::catalog_fingerprint();
        let writer = {
            let _lock = DirLock::take(dir)?;
            start_worker(dir, fingerprint)?
        };
        Ok(Store {
            dir: dir.to_path_buf(),
            fingerprint,
            writer: Mutex::new(writer),
            known: Mutex::new(Known::default()),
            detached: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a series to this worker's file.
    pub(crate) fn add_series(
        &self,
        family: &FamilyRecord,
        kind: CellsKind,
        labels: &str,
        init: impl FnOnce(*mut u8),
    ) -> Result<NewSeries, Error> {
        if self.detached.load(Ordering::Relaxed) {
            return Err(Error::io(
                "adding a series",
                io::Error::other("this forked worker has no multi-process file of its own"),
            ));
        }
        self.writer.lock().series(family, kind, labels, init)
    }

    /// Whether a new series of `family` fits the service's budget: it does if any worker
    /// has it already, or if the service holds fewer than `budget` series of the family.
    pub(crate) fn admit(&self, family: &str, labels: &str, budget: usize) -> bool {
        let mut known = self.known.lock();
        if known.sets.get(family).is_some_and(|s| s.contains(labels)) {
            return true;
        }
        let own = self.writer.lock().path.clone();
        // Other workers' new series are read under the directory lock, so two workers
        // cannot both take the last place.
        let _lock = match DirLock::take(&self.dir) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "series budget checked without the directory");
                None
            }
        };
        if _lock.is_some()
            && let Err(e) = known.refresh(&self.dir, &own, self.fingerprint)
        {
            tracing::warn!(error = %e, "series budget checked without the other workers");
        }
        let set = known.sets.entry_ref(family).or_default();
        if set.contains(labels) {
            return true;
        }
        if set.len() >= budget {
            return false;
        }
        set.insert(labels.to_string());
        true
    }

    /// Every worker's series, merged, and what could not be used.
    pub(crate) fn merged(&self) -> Result<(Merged, Vec<MultiprocessWarning>), Error> {
        let _serialized = self.known.lock();
        merge_dir(&self.dir, self.fingerprint)
    }

    /// Takes this store's locks for a fork (see `Telemetry::before_fork`).
    pub(crate) fn lock_for_fork(&self) {
        std::mem::forget(self.known.lock());
        std::mem::forget(self.writer.lock());
    }

    /// Releases what [`Store::lock_for_fork`] took.
    ///
    /// # Safety
    /// `lock_for_fork` must have run with no unlock since.
    pub(crate) unsafe fn unlock_after_fork(&self) {
        // SAFETY: the caller's contract.
        unsafe {
            self.writer.force_unlock();
            self.known.force_unlock();
        }
    }

    /// In a forked child: starts a file of its own (the parent's stays the parent's,
    /// locked by it). The caller then moves every series into it.
    pub(crate) fn restart_in_child(&self) -> Result<(), Error> {
        let started =
            DirLock::take(&self.dir).and_then(|_lock| start_worker(&self.dir, self.fingerprint));
        let writer = match started {
            Ok(w) => w,
            Err(e) => {
                self.detached.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        // Dropping the inherited writer closes the child's copy of the parent's file
        // descriptor; the parent's lock lives on in the parent's own copy.
        *self.writer.lock() = writer;
        *self.known.lock() = Known::default();
        Ok(())
    }
}

/// A series' flag in its file: set when the series is removed, so readers skip it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesSlot(*const AtomicU32);

// SAFETY: points into a mapping that lives for the process; used only atomically.
unsafe impl Send for SeriesSlot {}
unsafe impl Sync for SeriesSlot {}

impl SeriesSlot {
    pub(crate) fn new(series: &NewSeries) -> Self {
        SeriesSlot(series.state)
    }

    /// Marks the series removed.
    pub(crate) fn remove(self) {
        // SAFETY: see the type.
        unsafe { &*self.0 }.store(1, Ordering::Relaxed);
    }
}

impl Merged {
    /// Families in catalog order (then by name), series by labels: the same order at
    /// every scrape, whichever worker's file was read first.
    fn sort(&mut self) {
        let rank = |name: &str| {
            crate::catalog::LIBRARY
                .iter()
                .position(|d| d.name == name)
                .unwrap_or(usize::MAX)
        };
        self.families.sort_by(|a, b| {
            (rank(&a.record.name), &a.record.name).cmp(&(rank(&b.record.name), &b.record.name))
        });
        for f in &mut self.families {
            f.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        // Rendered next and dropped: the indexes are not needed again.
    }
}
