//! One file of the multi-process directory: a header page, then records appended one
//! after another and published by a release store of the header's `committed` offset, so
//! that a reader in another process never sees half of one.
//!
//! ```text
//! header (4 KiB): magic, layout, catalog fingerprint, committed, pid, created, role
//! record:  tag u32 | len u32 | body            (8-byte aligned; len covers the whole record)
//!   0 padding  the rest of a segment that the next record did not fit in
//!   1 family   index u32, kind u8, merge u8, native u8, schema i8, name, help, unit,
//!              labels, buckets, then (native) zero threshold f64, max buckets u32
//!   2 series   family u32, state u32 (1 = removed), cells kind u8, labels,
//!              cells (atomics, recorded into after publication)
//! ```
//!
//! The file grows in segments of [`CHUNK`] bytes (or a multiple, for one record larger
//! than a chunk), each mapped on its own and never unmapped while the process lives: the
//! handles that record into a segment may outlive the telemetry that made them.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::catalog::NativeBuckets;
use crate::catalog::{Merge, MetricKind};
use crate::error::{Error, Incompatibility};
use crate::metric::counter::CounterCells;
use crate::metric::gauge::GaugeCells;
use crate::metric::histogram::HistogramLayout;
use crate::metric::native::NativeShape;

pub(crate) const MAGIC: [u8; 8] = *b"TARSMP\0\x01";
/// Bumped whenever anything this file describes changes shape.
pub(crate) const LAYOUT_VERSION: u32 = 2;
pub(crate) const HEADER_LEN: u64 = 4096;
/// Growth step of a file, and the size of its first segment.
pub(crate) const CHUNK: u64 = 1 << 20;

const OFF_MAGIC: usize = 0;
const OFF_LAYOUT: usize = 8;
const OFF_FINGERPRINT: usize = 16;
const OFF_COMMITTED: usize = 24;
const OFF_PID: usize = 32;
const OFF_CREATED: usize = 40;
const OFF_ROLE: usize = 48;
/// The run (see `run_id` in the parent module) the file's values belong to: u32 length,
/// then up to `RUN_MAX` bytes.
const OFF_RUN: usize = 64;
const RUN_MAX: usize = 256;

const TAG_PADDING: u32 = 0;
const TAG_FAMILY: u32 = 1;
const TAG_SERIES: u32 = 2;

/// Byte offsets inside a series record.
const SERIES_FAMILY: usize = 8;
const SERIES_STATE: usize = 12;
const SERIES_CELLS_KIND: usize = 16;
const SERIES_LABELS_LEN: usize = 20;
const SERIES_CELLS_AT: usize = 24;
const SERIES_LABELS: usize = 32;

/// What a file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A live worker's, locked for its lifetime.
    Worker = 0,
    /// The values of dead workers, folded together.
    Archive = 1,
}

/// How a series' values are stored: its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellsKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl CellsKind {
    fn from_u8(v: u8) -> Option<CellsKind> {
        Some(match v {
            0 => CellsKind::Counter,
            1 => CellsKind::Gauge,
            2 => CellsKind::Histogram,
            _ => return None,
        })
    }

    /// (bytes, alignment) of the cells of a series of this kind.
    pub(crate) fn size_align(self, family: &FamilyRecord) -> (usize, usize) {
        match self {
            CellsKind::Counter => (std::mem::size_of::<CounterCells>(), 8),
            CellsKind::Gauge => (std::mem::size_of::<GaugeCells>(), 8),
            CellsKind::Histogram => (family.histogram_layout().len, HistogramLayout::ALIGN),
        }
    }
}

/// A family as a file describes it, so that a reader needs nothing but the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FamilyRecord {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) kind: MetricKind,
    pub(crate) merge: Merge,
    pub(crate) unit: Option<String>,
    pub(crate) labels: Vec<String>,
    pub(crate) buckets: Vec<f64>,
    /// A histogram's native buckets, if it has them.
    pub(crate) native: Option<NativeBuckets>,
}

fn kind_to_u8(k: MetricKind) -> u8 {
    match k {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 2,
        MetricKind::Info => 3,
    }
}

fn kind_from_u8(v: u8) -> Option<MetricKind> {
    Some(match v {
        0 => MetricKind::Counter,
        1 => MetricKind::Gauge,
        2 => MetricKind::Histogram,
        3 => MetricKind::Info,
        _ => return None,
    })
}

fn merge_to_u8(m: Merge) -> u8 {
    match m {
        Merge::Sum => 0,
        Merge::LiveSum => 1,
        Merge::Max => 2,
        Merge::Latest => 3,
        Merge::Union => 4,
    }
}

fn merge_from_u8(v: u8) -> Option<Merge> {
    Some(match v {
        0 => Merge::Sum,
        1 => Merge::LiveSum,
        2 => Merge::Max,
        3 => Merge::Latest,
        4 => Merge::Union,
        _ => return None,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl FamilyRecord {
    /// The record of a catalog family, as its registry writes it.
    pub(crate) fn from_def(d: &crate::catalog::MetricDef) -> FamilyRecord {
        FamilyRecord {
            name: d.name.to_string(),
            help: d.help.to_string(),
            kind: d.kind,
            merge: d.merge,
            unit: d.unit.map(str::to_string),
            labels: d.labels.iter().map(|l| l.to_string()).collect(),
            buckets: d.buckets.to_vec(),
            native: d.native,
        }
    }

    /// Where a histogram series' cells lie.
    pub(crate) fn histogram_layout(&self) -> HistogramLayout {
        HistogramLayout::new(self.buckets.len(), NativeShape::slots(self.native.as_ref()))
    }

    fn encode_body(&self, index: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&index.to_le_bytes());
        let (has_native, schema) = match self.native {
            Some(n) => (1, n.schema as u8),
            None => (0, 0),
        };
        out.extend_from_slice(&[
            kind_to_u8(self.kind),
            merge_to_u8(self.merge),
            has_native,
            schema,
        ]);
        put_str(out, &self.name);
        put_str(out, &self.help);
        match &self.unit {
            Some(u) => put_str(out, u),
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
        out.extend_from_slice(&(self.labels.len() as u32).to_le_bytes());
        for l in &self.labels {
            put_str(out, l);
        }
        out.extend_from_slice(&(self.buckets.len() as u32).to_le_bytes());
        for b in &self.buckets {
            out.extend_from_slice(&b.to_le_bytes());
        }
        if let Some(n) = self.native {
            out.extend_from_slice(&n.zero_threshold.to_le_bytes());
            out.extend_from_slice(&n.max_buckets.to_le_bytes());
        }
    }

    fn decode_body(b: &[u8]) -> Option<(u32, FamilyRecord)> {
        let mut c = Cursor { b, at: 0 };
        let index = c.u32()?;
        let kind = kind_from_u8(c.take(1)?[0])?;
        let merge = merge_from_u8(c.take(1)?[0])?;
        let flags = c.take(2)?;
        let (has_native, schema) = (flags[0], flags[1] as i8);
        let name = c.str()?;
        let help = c.str()?;
        let unit = match c.peek_u32()? {
            u32::MAX => {
                c.u32()?;
                None
            }
            _ => Some(c.str()?),
        };
        let labels = (0..c.u32()?).map(|_| c.str()).collect::<Option<Vec<_>>>()?;
        let n = c.u32()? as usize;
        let buckets = (0..n)
            .map(|_| Some(f64::from_le_bytes(c.take(8)?.try_into().ok()?)))
            .collect::<Option<Vec<_>>>()?;
        let native = match has_native {
            0 => None,
            1 => {
                let n = NativeBuckets {
                    schema,
                    zero_threshold: f64::from_le_bytes(c.take(8)?.try_into().ok()?),
                    max_buckets: c.u32()?,
                };
                // A shape out of range would size the cells wrongly: refuse the record.
                n.validate().ok()?;
                (kind == MetricKind::Histogram).then_some(n)?;
                Some(n)
            }
            _ => return None,
        };
        Some((
            index,
            FamilyRecord {
                name,
                help,
                kind,
                merge,
                unit,
                labels,
                buckets,
                native,
            },
        ))
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn peek_u32(&self) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.b.get(self.at..self.at + 4)?.try_into().ok()?,
        ))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A series just appended: where its cells and its state flag are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewSeries {
    pub(crate) cells: *mut u8,
    pub(crate) state: *const AtomicU32,
}

/// The appending side of one file.
#[derive(Debug)]
pub(crate) struct FileWriter {
    pub(crate) path: PathBuf,
    /// Kept open for the life of the writer: a worker's holds its liveness lock.
    pub(crate) file: File,
    /// (file offset, mapping), ascending; records never straddle two.
    segments: Vec<(u64, MmapRaw)>,
    /// Next free offset.
    end: u64,
    /// Bytes of the file (the end of the last segment).
    cap: u64,
    families: hashbrown::HashMap<String, u32>,
    /// Unmap on drop: only for files no handle records into (an archive being written).
    unmap_on_drop: bool,
}

// SAFETY: the raw mappings are only written under the owner's lock (appends) or through
// atomics (cells, state); the pointers they hand out are used as atomics only.
unsafe impl Send for FileWriter {}
unsafe impl Sync for FileWriter {}

impl FileWriter {
    /// Creates `path` (which must not exist), with its header.
    pub(crate) fn create(
        path: &Path,
        role: Role,
        fingerprint: u64,
        run: Option<&str>,
    ) -> Result<FileWriter, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            // Only this user reads a service's values (whatever the umask).
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("creating a multi-process file", e))?;
        let mut w = FileWriter {
            path: path.to_path_buf(),
            file,
            segments: Vec::new(),
            end: HEADER_LEN,
            cap: 0,
            families: hashbrown::HashMap::new(),
            unmap_on_drop: role == Role::Archive,
        };
        w.grow(CHUNK)?;
        let base = w.segments[0].1.as_mut_ptr();
        // SAFETY: the first segment is CHUNK >= HEADER_LEN bytes, fresh and zeroed; no
        // reader trusts it before `committed` is stored below.
        unsafe {
            std::ptr::copy_nonoverlapping(MAGIC.as_ptr(), base.add(OFF_MAGIC), 8);
            base.add(OFF_LAYOUT)
                .cast::<u32>()
                .write(LAYOUT_VERSION.to_le());
            base.add(OFF_FINGERPRINT)
                .cast::<u64>()
                .write(fingerprint.to_le());
            base.add(OFF_PID)
                .cast::<u64>()
                .write(u64::from(std::process::id()).to_le());
            base.add(OFF_CREATED)
                .cast::<u64>()
                .write(now_nanos().to_le());
            base.add(OFF_ROLE)
                .cast::<u32>()
                .write((role as u32).to_le());
            if let Some(run) = run.filter(|r| r.len() <= RUN_MAX) {
                base.add(OFF_RUN)
                    .cast::<u32>()
                    .write((run.len() as u32).to_le());
                std::ptr::copy_nonoverlapping(run.as_ptr(), base.add(OFF_RUN + 4), run.len());
            }
        }
        w.committed().store(HEADER_LEN, Ordering::Release);
        Ok(w)
    }

    fn committed(&self) -> &AtomicU64 {
        // SAFETY: 8-aligned inside the first (page-aligned) segment, used only atomically
        // once the header is written.
        unsafe { AtomicU64::from_ptr(self.segments[0].1.as_mut_ptr().add(OFF_COMMITTED).cast()) }
    }

    /// Adds a segment of `len` bytes (a multiple of CHUNK) at the end of the file.
    fn grow(&mut self, len: u64) -> Result<(), Error> {
        let at = self.cap;
        self.file
            .set_len(at + len)
            .map_err(|e| Error::io("growing a multi-process file", e))?;
        // Reserve the blocks now: a full disk then fails here, as an error, rather than
        // as SIGBUS on the first write to a page of a sparse file.
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid descriptor and a range inside the file.
            let rc = unsafe {
                libc::posix_fallocate(self.file.as_raw_fd(), at as libc::off_t, len as libc::off_t)
            };
            // EOPNOTSUPP/EINVAL: a file system that cannot reserve; go on sparse.
            if rc == libc::ENOSPC || rc == libc::EFBIG {
                return Err(Error::io(
                    "reserving space for a multi-process file",
                    std::io::Error::from_raw_os_error(rc),
                ));
            }
        }
        let map = MmapOptions::new()
            .offset(at)
            .len(len as usize)
            .map_raw(&self.file)
            .map_err(|e| Error::io("mapping a multi-process file", e))?;
        self.segments.push((at, map));
        self.cap = at + len;
        Ok(())
    }

    fn ptr(&self, offset: u64) -> *mut u8 {
        let (start, map) = self
            .segments
            .iter()
            .rev()
            .find(|(s, _)| *s <= offset)
            .expect("offsets start past the header");
        // SAFETY: `offset` lies in this segment (records never straddle segments).
        unsafe { map.as_mut_ptr().add((offset - start) as usize) }
    }

    /// Reserves a record of `head` bytes followed by `tail` bytes aligned to `align`;
    /// returns (record start, tail start, record end). Pads to a new segment when the
    /// record does not fit in the current one.
    fn reserve(&mut self, head: u64, tail: u64, align: u64) -> Result<(u64, u64, u64), Error> {
        let place = |start: u64| {
            let inner = align_up(start + head, align);
            (start, inner, align_up(inner + tail, 8))
        };
        let mut r = place(self.end);
        if r.2 > self.cap {
            if self.cap > self.end {
                let pad = self.ptr(self.end);
                // SAFETY: unpublished bytes of this writer's segment, at least 8 of them
                // (every offset is 8-aligned).
                unsafe {
                    pad.cast::<u32>().write(TAG_PADDING.to_le());
                    pad.add(4)
                        .cast::<u32>()
                        .write(((self.cap - self.end) as u32).to_le());
                }
            }
            self.end = self.cap;
            self.grow(align_up(head + tail + align, CHUNK))?;
            r = place(self.end);
        }
        Ok(r)
    }

    /// Publishes everything appended up to `end`.
    fn publish(&mut self, end: u64) {
        self.end = end;
        self.committed().store(end, Ordering::Release);
    }

    /// The index of `family` in this file, appending its record the first time.
    pub(crate) fn family(&mut self, family: &FamilyRecord) -> Result<u32, Error> {
        if let Some(&i) = self.families.get(&family.name) {
            return Ok(i);
        }
        let index = self.families.len() as u32;
        let mut body = Vec::with_capacity(128);
        body.extend_from_slice(&[0; 8]);
        family.encode_body(index, &mut body);
        let (start, _, end) = self.reserve(body.len() as u64, 0, 8)?;
        let len = (end - start) as u32;
        body[0..4].copy_from_slice(&TAG_FAMILY.to_le_bytes());
        body[4..8].copy_from_slice(&len.to_le_bytes());
        // SAFETY: reserved, unpublished bytes of this writer.
        unsafe { std::ptr::copy_nonoverlapping(body.as_ptr(), self.ptr(start), body.len()) };
        self.publish(end);
        self.families.insert(family.name.clone(), index);
        Ok(index)
    }

    /// Appends a series of `family` with these rendered labels; `init` may write its
    /// cells (zeroed) before they are published.
    pub(crate) fn series(
        &mut self,
        family: &FamilyRecord,
        kind: CellsKind,
        labels: &str,
        init: impl FnOnce(*mut u8),
    ) -> Result<NewSeries, Error> {
        let family_index = self.family(family)?;
        let (cells_len, align) = kind.size_align(family);
        let head = (SERIES_LABELS + labels.len()) as u64;
        let (start, cells_at, end) = self.reserve(head, cells_len as u64, align as u64)?;
        let rec = self.ptr(start);
        // SAFETY: reserved, unpublished, zeroed bytes of this writer's segment.
        unsafe {
            rec.cast::<u32>().write(TAG_SERIES.to_le());
            rec.add(4)
                .cast::<u32>()
                .write(((end - start) as u32).to_le());
            rec.add(SERIES_FAMILY)
                .cast::<u32>()
                .write(family_index.to_le());
            rec.add(SERIES_CELLS_KIND).write(kind as u8);
            rec.add(SERIES_LABELS_LEN)
                .cast::<u32>()
                .write((labels.len() as u32).to_le());
            rec.add(SERIES_CELLS_AT)
                .cast::<u64>()
                .write((cells_at - start).to_le());
            std::ptr::copy_nonoverlapping(labels.as_ptr(), rec.add(SERIES_LABELS), labels.len());
        }
        let cells = self.ptr(cells_at);
        init(cells);
        self.publish(end);
        Ok(NewSeries {
            cells,
            // SAFETY: 4-aligned (records are 8-aligned) inside the record.
            state: unsafe { rec.add(SERIES_STATE) }.cast::<AtomicU32>(),
        })
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if !self.unmap_on_drop {
            // Handles may still record into these pages: keep them mapped for the life of
            // the process (the file itself may be removed; its pages stay valid).
            for (_, map) in self.segments.drain(..) {
                std::mem::forget(map);
            }
        }
    }
}

/// A series as a reader finds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesView<'a> {
    pub(crate) family: u32,
    pub(crate) kind: CellsKind,
    pub(crate) labels: &'a str,
    pub(crate) cells: *const u8,
}

/// The reading side of one file, mapped read-only.
#[derive(Debug)]
pub(crate) struct FileReader {
    map: MmapRaw,
    len: u64,
    /// Families by index, as far as read.
    pub(crate) families: Vec<Option<FamilyRecord>>,
    /// Where the next unread record starts.
    pub(crate) read_to: u64,
}

// SAFETY: read-only mapping, read through atomics where other processes write.
unsafe impl Send for FileReader {}
unsafe impl Sync for FileReader {}

impl FileReader {
    /// Maps `file` and checks its header.
    pub(crate) fn open(path: &Path, file: &File, fingerprint: u64) -> Result<FileReader, Error> {
        let refuse = |reason| Error::MultiprocessIncompatible {
            path: path.display().to_string(),
            reason,
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading a multi-process file", e))?
            .len();
        if len < HEADER_LEN {
            return Err(refuse(Incompatibility::NotOurs));
        }
        let map = MmapOptions::new()
            .len(len as usize)
            .map_raw_read_only(file)
            .map_err(|e| Error::io("mapping a multi-process file", e))?;
        let base = map.as_ptr();
        // SAFETY: the header page is inside the mapping; these fields are written once,
        // before the file is published by its creator (under the directory lock).
        let (magic, layout, found) = unsafe {
            let mut magic = [0u8; 8];
            std::ptr::copy_nonoverlapping(base.add(OFF_MAGIC), magic.as_mut_ptr(), 8);
            (
                magic,
                u32::from_le(base.add(OFF_LAYOUT).cast::<u32>().read()),
                u64::from_le(base.add(OFF_FINGERPRINT).cast::<u64>().read()),
            )
        };
        if magic != MAGIC {
            return Err(refuse(Incompatibility::NotOurs));
        }
        if layout != LAYOUT_VERSION {
            return Err(refuse(Incompatibility::Layout {
                found: layout,
                expected: LAYOUT_VERSION,
            }));
        }
        if found != fingerprint {
            return Err(refuse(Incompatibility::Catalog {
                found,
                expected: fingerprint,
            }));
        }
        Ok(FileReader {
            map,
            len,
            families: Vec::new(),
            read_to: HEADER_LEN,
        })
    }

    /// The run the file's values belong to, if its writer knew it.
    pub(crate) fn run(&self) -> Option<String> {
        // SAFETY: inside the header page, written before the file was published.
        unsafe {
            let base = self.map.as_ptr();
            let len = u32::from_le(base.add(OFF_RUN).cast::<u32>().read()) as usize;
            if len == 0 || len > RUN_MAX {
                return None;
            }
            let bytes = std::slice::from_raw_parts(base.add(OFF_RUN + 4), len);
            std::str::from_utf8(bytes).ok().map(str::to_string)
        }
    }

    fn committed(&self) -> u64 {
        // SAFETY: 8-aligned in the header page; written atomically by the owner.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(OFF_COMMITTED).cast_mut().cast()) }
            .load(Ordering::Acquire)
    }

    /// Whether the file has grown past what is mapped (remap it to read the rest).
    pub(crate) fn outgrown(&self) -> bool {
        self.committed() > self.len
    }

    /// Reads the records published since the last call: families are kept, each live
    /// series is passed to `f`. Stops at what is mapped.
    pub(crate) fn read_new(
        &mut self,
        mut f: impl FnMut(&[Option<FamilyRecord>], SeriesView<'_>),
    ) -> Result<(), Incompatibility> {
        let end = self.committed().min(self.len);
        let base = self.map.as_ptr();
        while self.read_to + 8 <= end {
            let at = self.read_to;
            // SAFETY: published bytes inside the mapping (at + 8 <= end <= len).
            let (tag, len) = unsafe {
                let p = base.add(at as usize);
                (
                    u32::from_le(p.cast::<u32>().read()),
                    u64::from(u32::from_le(p.add(4).cast::<u32>().read())),
                )
            };
            if len < 8 || len % 8 != 0 {
                return Err(Incompatibility::Corrupt {
                    offset: at,
                    what: "a record length that is not a positive multiple of 8",
                });
            }
            if at + len > end {
                return Err(Incompatibility::Corrupt {
                    offset: at,
                    what: "a record that runs past the file's published end",
                });
            }
            // SAFETY: the whole record is published and mapped (checked above).
            let rec = unsafe { std::slice::from_raw_parts(base.add(at as usize), len as usize) };
            match tag {
                TAG_PADDING => {}
                TAG_FAMILY => {
                    let corrupt = |what| Incompatibility::Corrupt { offset: at, what };
                    let (index, fam) = FamilyRecord::decode_body(&rec[8..])
                        .ok_or(corrupt("a family that does not decode"))?;
                    // A writer numbers its families 0, 1, 2, ... in the order it appends
                    // them: any other index is not to be trusted (nor allocated for).
                    if index as usize != self.families.len() {
                        return Err(corrupt("a family index out of sequence"));
                    }
                    self.families.push(Some(fam));
                }
                TAG_SERIES => {
                    if let Some(view) = self
                        .series_view(at, rec)
                        .map_err(|what| Incompatibility::Corrupt { offset: at, what })?
                    {
                        f(&self.families, view);
                    }
                }
                _ => {
                    return Err(Incompatibility::Corrupt {
                        offset: at,
                        what: "an unknown record type",
                    });
                }
            }
            self.read_to = at + len;
        }
        Ok(())
    }

    /// The series a record describes, every index and offset checked against the record
    /// and the families read so far; `Err` says what is out of bounds.
    fn series_view<'a>(
        &self,
        at: u64,
        rec: &'a [u8],
    ) -> Result<Option<SeriesView<'a>>, &'static str> {
        let u32_at = |o: usize| u32::from_le_bytes(rec[o..o + 4].try_into().unwrap_or([0; 4]));
        if rec.len() < SERIES_LABELS {
            return Err("a series record shorter than its fixed fields");
        }
        // SAFETY: 4-aligned inside the record; the owner writes it atomically.
        let state = unsafe {
            AtomicU32::from_ptr(
                self.map
                    .as_ptr()
                    .add(at as usize + SERIES_STATE)
                    .cast_mut()
                    .cast(),
            )
        }
        .load(Ordering::Relaxed);
        if state != 0 {
            return Ok(None);
        }
        let kind = CellsKind::from_u8(rec[SERIES_CELLS_KIND]).ok_or("an unknown cells kind")?;
        let family = u32_at(SERIES_FAMILY);
        let Some(Some(fam)) = self.families.get(family as usize) else {
            return Err("a series of a family not described before it");
        };
        let labels_len = u32_at(SERIES_LABELS_LEN) as usize;
        let cells_at = u64::from_le_bytes(
            rec[SERIES_CELLS_AT..SERIES_CELLS_AT + 8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        let labels = rec
            .get(SERIES_LABELS..SERIES_LABELS.saturating_add(labels_len))
            .ok_or("labels that run past their record")?;
        let labels = std::str::from_utf8(labels).map_err(|_| "labels that are not UTF-8")?;
        // The cells lie after the labels, aligned as their kind needs, and end inside the
        // record (so inside the mapping): never read past either.
        let (size, align) = kind.size_align(fam);
        let cells_end = cells_at
            .checked_add(size as u64)
            .ok_or("cells past the record")?;
        if cells_at < (SERIES_LABELS + labels_len) as u64
            || cells_end > rec.len() as u64
            || !(at + cells_at).is_multiple_of(align as u64)
        {
            return Err("cells outside their record or misaligned");
        }
        Ok(Some(SeriesView {
            family,
            kind,
            labels,
            // SAFETY: inside the record (checked above).
            cells: unsafe { rec.as_ptr().add(cells_at as usize) },
        }))
    }
}

/// A stable hash of everything in the catalog that values depend on, so that files of a
/// build with another catalog are refused rather than merged.
pub(crate) fn catalog_fingerprint() -> u64 {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for d in crate::catalog::LIBRARY.iter().chain([
        &crate::catalog::SELF_SERIES_OVERFLOW,
        &crate::catalog::SELF_INVALID_VALUES,
    ]) {
        eat(d.name.as_bytes());
        eat(&[kind_to_u8(d.kind), merge_to_u8(d.merge)]);
        for l in d.labels {
            eat(l.as_bytes());
        }
        for b in d.buckets {
            eat(&b.to_le_bytes());
        }
        if let Some(n) = d.native {
            eat(&[n.schema as u8]);
            eat(&n.zero_threshold.to_le_bytes());
            eat(&n.max_buckets.to_le_bytes());
        }
    }
    eat(&(HistogramLayout::SHARDS as u64).to_le_bytes());
    eat(&(HistogramLayout::NATIVE_SHARDS as u64).to_le_bytes());
    h
}
