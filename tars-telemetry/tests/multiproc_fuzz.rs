//! The multi-process file reader under mutated files: real worker and archive files,
//! written by this library, changed byte by byte and field by field, then rendered beside
//! an intact worker's file. No mutation may panic, abort, hang or change the intact
//! file's counts. Bounded: `PROPTEST_CASES` cases (256 unless set); a failing case is
//! kept in `proptest-regressions/` and replayed first on every later run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use tars_telemetry::multiproc::MultiprocessDir;
use tars_telemetry::{Format, Outcome, Telemetry};

const HEADER: usize = 4096;
const OFF_COMMITTED: usize = 24;

/// Files written by real workers: (a dead worker's, an archive, the intact worker's).
struct Templates {
    mutant: Vec<u8>,
    archive: Vec<u8>,
    intact: Vec<u8>,
}

fn committed_part(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let end = u64::from_le_bytes(bytes[OFF_COMMITTED..OFF_COMMITTED + 8].try_into().unwrap());
    bytes[..end as usize].to_vec()
}

/// Writes one worker's series: every kind of cell (counter, gauge, histogram). The intact
/// worker's own families are named apart (`intact_*`), so that no mutation of another
/// file can claim their names with another shape first.
fn record(t: &Telemetry, label: &str, n: u64) {
    let prefix = if label == "intact" { "intact_" } else { "" };
    let jobs = t
        .counter_family(&format!("{prefix}jobs"), "Jobs.", &["f"])
        .unwrap();
    jobs.labels(&[label]).unwrap().inc_by(n as f64);
    let depth = t
        .gauge_family(&format!("{prefix}depth"), "Depth.", &["f"])
        .unwrap();
    depth.labels(&[label]).unwrap().set(n as f64);
    for i in 0..n {
        t.rag()
            .record_query(Duration::from_millis(3 * i), Outcome::Success, None);
    }
    t.llm_model(label).unwrap();
}

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("tars-fuzz-tpl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        // Each worker's file as far as it is published; a copy of it, with no lock held,
        // is a dead worker's file.
        let written = |name: &str, label: &str, n: u64| {
            let dir = base.join(name);
            let t = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
            record(&t, label, n);
            committed_part(&tars_test_support::file_starting_with(&dir, "worker-"))
        };
        let archived = written("w1", "archived", 3);
        let mutant = written("w2", "mutant", 5);
        let intact = written("w3", "intact", 7);
        // An archive, as a render folds a dead worker into it.
        let dir = base.join("fold");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("worker-9-1.tars"), &archived).unwrap();
        MultiprocessDir::new(&dir)
            .render_string(Format::Prometheus)
            .unwrap();
        let archive = committed_part(&dir.join("archive.tars"));
        std::fs::remove_dir_all(&base).unwrap();
        Templates {
            mutant,
            archive,
            intact,
        }
    })
}

/// The records of a file: (offset, tag, length), as far as they chain.
fn records(bytes: &[u8]) -> Vec<(usize, u32, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER;
    while at + 8 <= bytes.len() {
        let tag = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        out.push((at, tag, len));
        at += len;
    }
    out
}

/// One change to a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// A byte anywhere in the file set to a value.
    Byte { at: usize, value: u8 },
    /// A field of a record (by position in the record) set to a chosen value.
    Field {
        record: usize,
        offset: usize,
        width: usize,
        value: u64,
    },
    /// The header's committed end set to a value.
    Committed(u64),
    /// The file cut short.
    Truncate(usize),
}

fn interesting() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(7),
        Just(8),
        Just(24),
        Just(4096),
        Just(0x7FFF_FFFF),
        Just(0xFFFF_FFF0),
        Just(0xFFFF_FFFF),
        Just(u64::MAX),
        any::<u64>(),
        0u64..70_000,
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        // Fields of a record: tag, length, family or series index, state, cells kind,
        // labels length, cells offset (and the first bytes of a family's strings).
        4 => (
            any::<usize>(),
            prop::sample::select(vec![(0, 4), (4, 4), (8, 4), (12, 4), (16, 1), (20, 4), (24, 8), (16, 4)]),
            interesting()
        )
            .prop_map(|(record, (offset, width), value)| Mutation::Field {
                record,
                offset,
                width,
                value
            }),
        1 => interesting().prop_map(Mutation::Committed),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Byte { at, value } => {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        Mutation::Field {
            record,
            offset,
            width,
            value,
        } => {
            let recs = records(bytes);
            if recs.is_empty() {
                return;
            }
            let (at, _, len) = recs[record % recs.len()];
            if offset + width <= len && at + offset + width <= bytes.len() {
                bytes[at + offset..at + offset + width]
                    .copy_from_slice(&value.to_le_bytes()[..width]);
            }
        }
        Mutation::Committed(v) => {
            if let Some(field) = bytes.get_mut(OFF_COMMITTED..OFF_COMMITTED + 8) {
                field.copy_from_slice(&v.to_le_bytes());
            }
        }
        Mutation::Truncate(n) => {
            let n = n % bytes.len();
            bytes.truncate(n);
        }
    }
}

/// The value of the sample `series` (name with labels, exactly), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

/// Renders `dir` on another thread; panics (a failed case) if it takes over 20 s.
fn render_in_time(dir: &Path) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(MultiprocessDir::new(dir).render_string(Format::Prometheus));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a render that hung")
        .expect("a render of a readable directory")
}

fn case_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "tars-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn check(target_is_archive: bool, mutations: &[Mutation]) {
    let t = templates();
    let dir = case_dir();
    // The intact file: a dead worker of the same service, folded at the first render.
    std::fs::write(dir.join("worker-1-1.tars"), &t.intact).unwrap();
    let mut bytes = if target_is_archive {
        t.archive.clone()
    } else {
        t.mutant.clone()
    };
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        apply(&mut bytes, m);
    }
    let name = if target_is_archive {
        "archive.tars"
    } else {
        "worker-2-1.tars"
    };
    std::fs::write(dir.join(name), &bytes).unwrap();
    for round in 0..2 {
        let text = render_in_time(&dir);
        assert_eq!(
            value(&text, "intact_jobs_total{f=\"intact\"}"),
            Some(7.0),
            "round {round}: {text}"
        );
        assert_eq!(
            value(&text, "intact_depth{f=\"intact\"}"),
            None,
            "a dead worker's gauge"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        // Beside this file: tests/ has no lib.rs for the default layout to find.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_worker_files_never_break_a_render(mutations in prop::collection::vec(mutation(), 1..6)) {
        check(false, &mutations);
    }

    #[test]
    fn mutated_archives_never_break_a_render(mutations in prop::collection::vec(mutation(), 1..6)) {
        check(true, &mutations);
    }
}

/// The files unchanged read back exactly: the control for the cases above.
#[test]
fn unmutated_files_read_exactly() {
    let t = templates();
    let dir = case_dir();
    std::fs::write(dir.join("worker-1-1.tars"), &t.intact).unwrap();
    std::fs::write(dir.join("worker-2-1.tars"), &t.mutant).unwrap();
    std::fs::write(dir.join("archive.tars"), &t.archive).unwrap();
    let text = render_in_time(&dir);
    assert_eq!(
        value(&text, "intact_jobs_total{f=\"intact\"}"),
        Some(7.0),
        "{text}"
    );
    assert_eq!(value(&text, "jobs_total{f=\"mutant\"}"), Some(5.0));
    assert_eq!(value(&text, "jobs_total{f=\"archived\"}"), Some(3.0));
    assert_eq!(
        value(&text, "tars_rag_queries_total{status=\"success\"}"),
        Some(15.0)
    );
    assert!(
        !text.contains("tars_telemetry_multiprocess_losses_total{"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
