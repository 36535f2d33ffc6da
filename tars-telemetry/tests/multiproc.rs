//! Multi-process mode with real processes: this test binary runs itself as the workers
//! (`--worker DIR`), driven line by line over stdin, and as a forked child.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use tars_telemetry::multiproc::{
    MULTIPROC_ALLOW_SHARED_ENV, MultiprocessDir, MultiprocessEvent, MultiprocessWarning,
};
use tars_telemetry::{Error, Format, Histogram, NativeBuckets, Outcome, Telemetry};

const QUERIES: &str = "tars_rag_queries_total{status=\"success\"}";
const QUERY_COUNT: &str = "tars_rag_query_duration_seconds_count";
const REDIS_USED: &str = "tars_redis_memory_usage_bytes";

// ---- the worker side ----------------------------------------------------------------

fn worker(dir: &str, budget: usize) {
    let tel = Telemetry::builder()
        .multiprocess_dir(dir)
        .family_budget("jobs_total", budget)
        .build()
        .expect("joining the directory");
    let busy = tel
        .gauge_family("worker_busy", "Busy workers.", &[])
        .unwrap()
        .labels(&[])
        .unwrap();
    let jobs = tel.counter_family("jobs", "Jobs.", &["kind"]).unwrap();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["rag", n] => {
                for _ in 0..n.parse::<u64>().unwrap() {
                    tel.rag()
                        .record_query(Duration::from_millis(50), Outcome::Success, None);
                }
            }
            ["busy", v] => busy.set(v.parse().unwrap()),
            ["native", schema, n, offset] => {
                let h = tel
                    .native_histogram_family(
                        "job_seconds",
                        "Jobs.",
                        &[],
                        &[0.1, 1.0],
                        NativeBuckets::with_schema(schema.parse().unwrap()),
                    )
                    .unwrap()
                    .labels(&[])
                    .unwrap();
                let offset: u64 = offset.parse().unwrap();
                for i in 0..n.parse::<u64>().unwrap() {
                    h.observe(job_value(offset + i));
                }
            }
            ["redis", used] => tel.redis().set_memory(used.parse().unwrap(), 1 << 30),
            ["series", prefix, n] => {
                for i in 0..n.parse::<u64>().unwrap() {
                    jobs.labels(&[&format!("{prefix}-{i}")]).unwrap().inc();
                }
            }
            ["render"] => {
                let text = tel.render_string(Format::Prometheus);
                writeln!(out, "{}", text.len()).unwrap();
                out.write_all(text.as_bytes()).unwrap();
            }
            ["exit"] => return,
            other => panic!("unknown command {other:?}"),
        }
        writeln!(out, "ok").unwrap();
        out.flush().unwrap();
    }
}

/// The `i`th observation of the `native` command: 0 (the zero bucket) and 1 ms to 10 s.
fn job_value(i: u64) -> f64 {
    if i.is_multiple_of(97) {
        0.0
    } else {
        1e-3 * (1.0 + (i * 7919 % 10_000) as f64)
    }
}

// ---- the test side ------------------------------------------------------------------

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(dir: &Path) -> Worker {
        Self::start_with_budget(dir, 1000)
    }

    fn start_with_budget(dir: &Path, budget: usize) -> Worker {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--worker", dir.to_str().unwrap(), &budget.to_string()]);
        Self::spawn(cmd)
    }

    /// A worker of a new run of the service: under a parent process of its own (a shell
    /// that waits for it), as after a restart of the service's supervisor.
    fn start_in_new_run(dir: &Path) -> Worker {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "\"$0\" --worker \"$1\" 1000; exit $?"])
            .arg(std::env::current_exe().unwrap())
            .arg(dir);
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Worker {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).unwrap();
        assert!(!s.is_empty(), "worker exited");
        s.trim_end().to_string()
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        assert_eq!(self.line(), "ok", "after {cmd}");
    }

    fn render(&mut self) -> String {
        writeln!(self.stdin, "render").unwrap();
        self.stdin.flush().unwrap();
        let len: usize = self.line().parse().unwrap();
        let mut buf = vec![0; len];
        std::io::Read::read_exact(&mut self.stdout, &mut buf).unwrap();
        assert_eq!(self.line(), "ok");
        String::from_utf8(buf).unwrap()
    }

    fn exit(mut self) {
        writeln!(self.stdin, "exit").unwrap();
        let _ = self.child.wait();
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tars-mp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The value of the sample `series` (name with labels, exactly), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    })
}

fn render_dir(dir: &Path) -> String {
    MultiprocessDir::new(dir)
        .render_string(Format::Prometheus)
        .unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Native buckets merge exactly across live and dead workers, at the coarser schema where
/// workers differ, as the protobuf exposition shows them (decoded by prost).
fn native_buckets_merge_exactly_across_workers() {
    use tars_test_support::metrics_proto::decode_delimited;
    let dir = temp_dir("native");
    let mut a = Worker::start(&dir);
    let mut b = Worker::start(&dir);
    let mut c = Worker::start(&dir);
    a.send("native 3 5000 0");
    b.send("native 3 3000 5000");
    c.send("native 1 2000 8000");
    for w in [&mut a, &mut b, &mut c] {
        w.send("rag 250");
    }
    // One dies: its buckets are folded into the archive by the next render.
    b.kill();
    let want = Histogram::detached_native(&[0.1, 1.0], NativeBuckets::with_schema(1)).unwrap();
    for i in 0..10_000 {
        want.observe(job_value(i));
    }
    for round in 0..2 {
        let mut out = Vec::new();
        MultiprocessDir::new(&dir)
            .render_into(Format::Protobuf, &mut out)
            .unwrap();
        let families = decode_delimited(&out).expect("a delimited MetricFamily stream");
        let job = families
            .iter()
            .find(|f| f.name.as_deref() == Some("job_seconds"))
            .expect("job_seconds");
        assert_eq!(job.r#type, Some(4), "a histogram");
        let h = job.metric[0].histogram.as_ref().unwrap();
        let (schema, buckets) = want.native_buckets().unwrap();
        assert_eq!(
            h.schema,
            Some(i32::from(schema)),
            "round {round}: the coarser schema"
        );
        assert_eq!(h.native_buckets(), buckets, "round {round}: exact buckets");
        assert_eq!(h.zero_count, want.native_zero_count());
        assert_eq!(h.sample_count, Some(10_000));
        assert!((h.sample_sum.unwrap() - want.sum()).abs() < 1e-6);
        // The classic buckets are there too, cumulative, +Inf left to the count.
        let classic: Vec<u64> = h
            .bucket
            .iter()
            .map(|b| b.cumulative_count.unwrap())
            .collect();
        assert_eq!(classic, want.bucket_counts()[..2]);
        // A catalog latency family: native at schema 3 in every worker.
        let rag = families
            .iter()
            .find(|f| f.name.as_deref() == Some("tars_rag_query_duration_seconds"))
            .unwrap();
        let h = rag.metric[0].histogram.as_ref().unwrap();
        assert_eq!(h.schema, Some(3));
        assert_eq!(h.sample_count, Some(750));
        // 50 ms each: one bucket, (2^(-35/8), 2^(-34/8)].
        assert_eq!(h.native_buckets(), vec![(-34, 750)]);
    }
    a.exit();
    c.exit();
    std::fs::remove_dir_all(&dir).ok();
}

fn exact_totals_from_every_worker() {
    let dir = temp_dir("totals");
    let mut workers: Vec<Worker> = (0..4).map(|_| Worker::start(&dir)).collect();
    // Record in rounds, all workers at once, rendering between rounds from each of them.
    let mut expected = 0;
    for round in 1..=5u64 {
        for w in &mut workers {
            writeln!(w.stdin, "rag {}", 100 * round).unwrap();
            w.stdin.flush().unwrap();
        }
        for w in &mut workers {
            assert_eq!(w.line(), "ok");
        }
        expected += 4 * 100 * round;
        for w in &mut workers {
            let text = w.render();
            assert_eq!(value(&text, QUERIES), Some(expected as f64), "{text}");
            assert_eq!(value(&text, QUERY_COUNT), Some(expected as f64));
        }
        assert_eq!(value(&render_dir(&dir), QUERIES), Some(expected as f64));
    }
    for (i, w) in workers.iter_mut().enumerate() {
        w.send(&format!("busy {}", i + 1));
    }
    let text = render_dir(&dir);
    assert_eq!(
        value(&text, "worker_busy"),
        Some(10.0),
        "live gauges add up"
    );
    // The text passes promtool where it is installed.
    check_with_promtool(&text);
    for w in workers {
        w.exit();
    }
    // Exited workers' counts stay; their gauges drop out.
    let text = render_dir(&dir);
    assert_eq!(value(&text, QUERIES), Some(expected as f64));
    assert_eq!(value(&text, "worker_busy"), None);
    assert_eq!(files(&dir), vec!["archive.tars"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn check_with_promtool(text: &str) {
    let Some(promtool) = tars_test_support::tool("promtool", &[]) else {
        return;
    };
    let (code, said) = tars_test_support::promtool_check_metrics(&promtool, text).unwrap();
    // 3: lint findings only (the custom families name no unit); never a parse error.
    assert!(matches!(code, Some(0 | 3)), "{said}");
}

fn sigkilled_worker_counts_survive() {
    let dir = temp_dir("kill");
    let mut a = Worker::start(&dir);
    let mut b = Worker::start(&dir);
    a.send("rag 700");
    b.send("rag 300");
    a.send("busy 2");
    b.send("busy 5");
    a.send("redis 1000");
    b.send("redis 2000"); // the later reading wins
    b.kill();
    let text = a.render();
    assert_eq!(value(&text, QUERIES), Some(1000.0), "{text}");
    assert_eq!(
        value(&text, "worker_busy"),
        Some(2.0),
        "a dead worker's gauge drops out"
    );
    assert_eq!(
        value(&text, REDIS_USED),
        Some(2000.0),
        "the latest reading outlives its worker"
    );
    assert_eq!(
        files(&dir).len(),
        2,
        "one live worker + the archive: {:?}",
        files(&dir)
    );
    a.send("redis 1500");
    assert_eq!(value(&a.render(), REDIS_USED), Some(1500.0));
    // Totals never go backwards, scrape after scrape.
    a.send("rag 1");
    assert_eq!(value(&render_dir(&dir), QUERIES), Some(1001.0));
    a.kill();
    assert_eq!(value(&render_dir(&dir), QUERIES), Some(1001.0));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn recycled_workers_leave_live_plus_one_files() {
    let dir = temp_dir("recycle");
    let mut keeper = Worker::start(&dir);
    keeper.send("rag 1");
    for i in 0..200 {
        let mut w = Worker::start(&dir);
        w.send("rag 1");
        if i % 2 == 0 {
            w.exit();
        } else {
            w.kill();
        }
        let n = files(&dir).len();
        assert!(
            n <= 3,
            "at most keeper + the just-dead worker + archive, found {n}"
        );
    }
    let text = keeper.render();
    assert_eq!(value(&text, QUERIES), Some(201.0));
    assert_eq!(files(&dir).len(), 2, "{:?}", files(&dir));
    keeper.exit();
    std::fs::remove_dir_all(&dir).unwrap();
}

const PER_WORKER: u32 = 20_000;

fn reader_racing_writers_sees_whole_series() {
    let dir = temp_dir("race");
    let mut workers: Vec<Worker> = (0..2)
        .map(|_| Worker::start_with_budget(&dir, 100_000))
        .collect();
    // Each worker appends 20,000 series (past its first 1 MiB segment, into the next)
    // while this process renders.
    for (i, w) in workers.iter_mut().enumerate() {
        writeln!(w.stdin, "series w{i} {PER_WORKER}").unwrap();
        w.stdin.flush().unwrap();
    }
    let mut renders = 0;
    let mut last = 0;
    loop {
        let text = render_dir(&dir);
        let mut n = 0;
        for line in text.lines().filter(|l| l.starts_with("jobs_total{")) {
            // Every series is whole: a known label value, and its one increment.
            let (labels, v) = line.rsplit_once(' ').unwrap();
            let kind = labels
                .strip_prefix("jobs_total{kind=\"")
                .and_then(|s| s.strip_suffix("\"}"))
                .unwrap_or_else(|| panic!("torn line {line:?}"));
            let (w, i) = kind.split_once('-').unwrap();
            assert!(w == "w0" || w == "w1", "{line}");
            assert!(i.parse::<u32>().unwrap() < PER_WORKER, "{line}");
            assert!(v == "0" || v == "1", "{line}");
            n += 1;
        }
        assert!(n >= last, "series never vanish: {n} after {last}");
        last = n;
        renders += 1;
        if n == 2 * PER_WORKER || renders > 10_000 {
            break;
        }
    }
    for w in &mut workers {
        assert_eq!(w.line(), "ok");
    }
    let text = render_dir(&dir);
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("jobs_total{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, f64::from(2 * PER_WORKER));
    eprintln!("    {renders} renders raced the writers");
    let sizes: Vec<u64> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert!(
        sizes.iter().all(|&s| s > 1 << 20 && s % (1 << 20) == 0),
        "grown in whole chunks past the first: {sizes:?}"
    );
    for w in workers {
        w.exit();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn series_budget_is_the_services() {
    let dir = temp_dir("budget");
    let mut a = Worker::start_with_budget(&dir, 10);
    let mut b = Worker::start_with_budget(&dir, 10);
    a.send("series a 6");
    b.send("series b 6");
    b.send("series a 6"); // label sets a already has cost nothing
    let text = render_dir(&dir);
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("jobs_total{"))
        .collect();
    assert_eq!(series.len(), 11, "10 + overflow: {series:#?}");
    assert_eq!(value(&text, "jobs_total{kind=\"__overflow__\"}"), Some(2.0));
    assert_eq!(value(&text, "jobs_total{kind=\"a-5\"}"), Some(2.0));
    assert_eq!(
        value(
            &text,
            "tars_telemetry_series_overflow_total{family=\"jobs_total\"}"
        ),
        Some(2.0),
        "self-metrics count for the service"
    );
    // Past the budget nothing is appended: the files stay at their first chunk.
    b.send("series c 5000");
    for e in std::fs::read_dir(&dir).unwrap() {
        let len = e.unwrap().metadata().unwrap().len();
        assert_eq!(len, 1 << 20, "memory bounded by the budget");
    }
    a.exit();
    b.exit();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn stale_directory_is_cleared_at_start() {
    let dir = temp_dir("stale");
    let mut w = Worker::start_in_new_run(&dir);
    w.send("rag 5");
    w.exit();
    assert_eq!(value(&render_dir(&dir), QUERIES), Some(5.0));
    // A new run of the service (no worker live, another parent) starts from zero.
    let mut w = Worker::start_in_new_run(&dir);
    w.send("rag 2");
    assert_eq!(value(&w.render(), QUERIES), Some(2.0));
    w.exit();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn workers_recycled_all_at_once_keep_their_counts() {
    let dir = temp_dir("all-at-once");
    // Every worker of the run gone before the next one starts (gunicorn --max-requests
    // under even load): the same parent, so the same run, and nothing is lost.
    let mut a = Worker::start(&dir);
    let mut b = Worker::start(&dir);
    a.send("rag 5");
    b.send("rag 3");
    a.exit();
    b.kill();
    let mut c = Worker::start(&dir);
    c.send("rag 2");
    assert_eq!(value(&c.render(), QUERIES), Some(10.0));
    assert_eq!(files(&dir).len(), 2, "{:?}", files(&dir));
    c.exit();
    // A reader that is no worker (a sidecar's render) folds them all into the archive
    // before the next worker starts: the archive says whose run it holds, and the next
    // worker of the run keeps it.
    assert_eq!(value(&render_dir(&dir), QUERIES), Some(10.0));
    assert_eq!(files(&dir), vec!["archive.tars"]);
    let mut d = Worker::start(&dir);
    d.send("rag 1");
    assert_eq!(value(&d.render(), QUERIES), Some(11.0));
    d.exit();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn foreign_files_are_refused() {
    let dir = temp_dir("foreign");
    // A live file (its lock held) that is not ours: the service must not start over it.
    let path = dir.join("worker-1-1.tars");
    std::fs::write(&path, vec![7u8; 8192]).unwrap();
    let held = std::fs::File::open(&path).unwrap();
    // SAFETY: a valid descriptor.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_EX) },
        0
    );
    let err = Telemetry::builder()
        .multiprocess_dir(&dir)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::MultiprocessIncompatible { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("worker-1-1.tars"), "{err}");
    drop(held);
    // Once its writer is gone it is a previous run's leftover, and cleared.
    let t = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
    assert!(!path.exists());
    drop(t);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Renders `t` on another thread; `None` if it takes longer than 20 s (a hang).
fn render_within(t: &Telemetry) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let t2 = t.clone();
    std::thread::spawn(move || {
        let _ = tx.send(t2.render_string(Format::Prometheus));
    });
    rx.recv_timeout(Duration::from_secs(20)).ok()
}

/// The records of a file: (offset, tag, length).
fn records(bytes: &[u8]) -> Vec<(usize, u32, usize)> {
    let mut out = Vec::new();
    let mut at = 4096;
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

fn hostile_files_never_hang_or_crash_a_render() {
    let dir = temp_dir("hostile");
    let t = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
    for _ in 0..7 {
        t.rag()
            .record_query(Duration::from_millis(5), Outcome::Success, None);
    }
    let own = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("worker-")
        })
        .expect("this process's worker file");
    let bytes = std::fs::read(&own).unwrap();
    let recs = records(&bytes);
    let first_family = recs.iter().find(|r| r.1 == 1).unwrap().0;
    let first_series = *recs.iter().find(|r| r.1 == 2).unwrap();

    // A FIFO named like a worker file: opening it for reading would block for ever.
    let fifo = dir.join("worker-900001-1.tars");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // A symbolic link named like one, to a copy of a worker file elsewhere: not followed.
    let elsewhere = temp_dir("hostile-elsewhere");
    std::fs::write(elsewhere.join("copy.tars"), &bytes).unwrap();
    std::os::unix::fs::symlink(
        elsewhere.join("copy.tars"),
        dir.join("worker-900002-1.tars"),
    )
    .unwrap();
    // Dead workers' files (no lock held) of this run, crafted: a family index of
    // 0xFFFFFFF0 (an allocation of hundreds of GiB if trusted), and a series whose cells
    // point at its own end (a read past the record).
    let mut huge = bytes.clone();
    huge[first_family + 8..first_family + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    std::fs::write(dir.join("worker-900003-1.tars"), &huge).unwrap();
    let mut past = bytes.clone();
    let (at, _, len) = first_series;
    past[at + 24..at + 32].copy_from_slice(&(len as u64).to_le_bytes());
    std::fs::write(dir.join("worker-900004-1.tars"), &past).unwrap();

    // A live worker's file (its lock held) whose last series' cells run past the end of
    // its mapping: the reader must stop at that record, not fault.
    let mut live_past = bytes.clone();
    let last_series = *recs.iter().rev().find(|r| r.1 == 2).unwrap();
    let (at, _, len) = last_series;
    live_past[at + 24..at + 32].copy_from_slice(&((bytes.len() - at + len) as u64).to_le_bytes());
    let live_path = dir.join("worker-900005-1.tars");
    std::fs::write(&live_path, &live_past).unwrap();
    let held = std::fs::File::open(&live_path).unwrap();
    // SAFETY: a valid descriptor.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_EX) },
        0
    );

    // What a render could not use is returned to its caller, not only logged.
    let mut out = Vec::new();
    let warnings = MultiprocessDir::new(&dir)
        .render_report(Format::Prometheus, &mut out)
        .unwrap();
    let said = |path: &Path, event, reason: &str| {
        warnings.iter().any(|w: &MultiprocessWarning| {
            w.path == path && w.event == event && w.cause.as_str() == reason
        })
    };
    assert!(
        said(&fifo, MultiprocessEvent::FileSkipped, "not_a_regular_file"),
        "{warnings:?}"
    );
    assert!(
        said(
            &dir.join("worker-900002-1.tars"),
            MultiprocessEvent::FileSkipped,
            "not_a_regular_file"
        ),
        "{warnings:?}"
    );
    for dead in ["worker-900003-1.tars", "worker-900004-1.tars"] {
        assert!(
            said(
                &dir.join(dead),
                MultiprocessEvent::DeadFileSetAside,
                "corrupt"
            ),
            "{warnings:?}"
        );
        assert!(!dir.join(dead).exists(), "set aside, not read again");
    }
    assert!(
        said(&live_path, MultiprocessEvent::RecordsDropped, "corrupt"),
        "{warnings:?}"
    );
    let set_aside = files(&dir)
        .iter()
        .filter(|f| f.contains(".broken-"))
        .count();
    assert_eq!(set_aside, 2, "{:?}", files(&dir));
    // The losses for good are counted once, in the archive, whoever renders.
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        value(
            &text,
            "tars_telemetry_multiprocess_losses_total{event=\"dead_file_set_aside\",reason=\"corrupt\"}"
        ),
        Some(2.0),
        "{text}"
    );

    let text = render_within(&t).expect("a render that hangs on a hostile file");
    // The live worker's counts, exactly: nothing from the symlink's target (it would
    // double them) and nothing misread from the crafted files beyond what they hold
    // intact before their bad record.
    let q = value(&text, QUERIES).unwrap();
    assert!(q >= 7.0, "{q}");
    assert!(fifo.exists(), "the FIFO is left alone");
    assert!(
        std::fs::symlink_metadata(dir.join("worker-900002-1.tars"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symbolic link is left alone"
    );
    // A worker's render counts what it skipped in its own file, seen from the next one:
    // the FIFO and the symbolic link, once each for the one render above.
    let text = render_within(&t).unwrap();
    let skipped = value(
        &text,
        "tars_telemetry_multiprocess_losses_total{event=\"file_skipped\",reason=\"not_a_regular_file\"}",
    );
    assert_eq!(skipped, Some(2.0), "{text}");
    assert!(
        value(
            &text,
            "tars_telemetry_multiprocess_losses_total{event=\"records_dropped\",reason=\"corrupt\"}"
        )
        .is_some()
    );
    // The live worker's counts, exactly, beside all of it (the crafted live file holds
    // a copy of this worker's first records, up to its bad one).
    assert!(value(&text, QUERIES).unwrap() >= 7.0);
    drop(held);
    // A new worker starts beside them, and renders again, in time.
    let t2 = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
    t2.rag()
        .record_query(Duration::from_millis(5), Outcome::Success, None);
    let again = render_within(&t2).expect("a second render in time");
    assert!(value(&again, QUERIES).unwrap() >= q + 1.0);
    drop((t, t2));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&elsewhere).unwrap();
}

fn broken_archive_is_set_aside_and_workers_still_start() {
    for broken in [&b""[..], &[0x55; 9000][..]] {
        let dir = temp_dir("broken-archive");
        let mut live = Worker::start(&dir);
        live.send("rag 5");
        // An archive emptied or overwritten while a worker is live (a full volume, a
        // stray write): a replacement worker must start regardless.
        std::fs::write(dir.join("archive.tars"), broken).unwrap();
        let t = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
        t.rag()
            .record_query(Duration::from_millis(5), Outcome::Success, None);
        let names = files(&dir);
        assert!(
            names.contains(&"archive.tars".to_string()),
            "a fresh archive: {names:?}"
        );
        let aside: Vec<_> = names
            .iter()
            .filter(|n| n.starts_with("archive.tars.broken-"))
            .collect();
        assert_eq!(
            aside.len(),
            1,
            "the broken one kept for inspection: {names:?}"
        );
        assert_eq!(std::fs::read(dir.join(aside[0])).unwrap(), broken);
        let text = render_dir(&dir);
        assert_eq!(value(&text, QUERIES), Some(6.0), "{text}");
        assert_eq!(
            value(
                &text,
                "tars_telemetry_multiprocess_losses_total{event=\"archive_replaced\",reason=\"not_ours\"}"
            ),
            Some(1.0),
            "{text}"
        );
        // Later workers come and go as usual.
        live.exit();
        assert_eq!(value(&render_dir(&dir), QUERIES), Some(6.0));
        drop(t);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Runs `--render DIR` (this binary) with `dir` bind-mounted read-only in a mount
/// namespace of its own, or, where the machine does not allow that mount and this is not
/// root (whom permissions do not stop), with `dir` made unwritable: (exposition, warnings
/// as "event reason" lines). `None` where neither can be done.
fn render_read_only(dir: &Path) -> Option<(String, Vec<String>)> {
    use std::os::unix::fs::PermissionsExt;
    let script = r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 77; exec "$0" --render "$1""#;
    let exe = std::env::current_exe().unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = Command::new("unshare");
    if !root {
        // A user namespace maps this user to root in it, for the mount.
        cmd.arg("--map-root-user");
    }
    cmd.args(["--mount", "sh", "-c", script]).arg(&exe).arg(dir);
    let mut out = cmd.output().ok().filter(|o| o.status.success());
    if out.is_none() && !root {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        out = Command::new(&exe).arg("--render").arg(dir).output().ok();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let out = out.filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).unwrap();
    let (warnings, exposition) = text.split_once("---\n").unwrap();
    Some((
        exposition.to_string(),
        warnings.lines().map(str::to_string).collect(),
    ))
}

fn read_only_directory_never_goes_backwards() {
    let dir = temp_dir("read-only");
    let mut a = Worker::start(&dir);
    let mut b = Worker::start(&dir);
    a.send("rag 700");
    b.send("rag 300");
    b.kill();
    // The dead worker cannot be folded (the archive cannot be written): its counts are
    // read from its own file instead, and the failed fold is reported.
    let Some((text, warnings)) = render_read_only(&dir) else {
        tars_test_support::skip_unsupported(
            "read_only_directory_never_goes_backwards: neither a read-only bind mount nor an unwritable directory can be made here",
        );
        a.kill();
        return;
    };
    assert_eq!(value(&text, QUERIES), Some(1000.0), "{text}");
    assert!(
        warnings.iter().any(|w| w == "fold_failed unwritable"),
        "{warnings:?}"
    );
    // Writable again: folded, still exact, and the next read-only render too.
    assert_eq!(value(&render_dir(&dir), QUERIES), Some(1000.0));
    assert_eq!(files(&dir).len(), 2, "{:?}", files(&dir));
    a.send("rag 1");
    a.kill();
    let (text, warnings) = render_read_only(&dir).unwrap();
    assert_eq!(value(&text, QUERIES), Some(1001.0), "{text}");
    assert!(
        warnings.iter().any(|w| w == "fold_failed unwritable"),
        "{warnings:?}"
    );
    assert_eq!(value(&render_dir(&dir), QUERIES), Some(1001.0));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn directory_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let parent = temp_dir("private");
    // Created by the first worker: this user's only, whatever the umask.
    let dir = parent.join("svc");
    let t = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
    t.rag()
        .record_query(Duration::from_millis(5), Outcome::Success, None);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(
        mode(&tars_test_support::file_starting_with(&dir, "worker-")),
        0o600
    );
    drop(t);
    // A directory anyone can write to (a shared /tmp, an emptyDir's root) is refused, by
    // name, unless allowed.
    let shared = parent.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let err = Telemetry::builder()
        .multiprocess_dir(&shared)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::MultiprocessDirShared { mode: 0o1777, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("shared") && err.to_string().contains(MULTIPROC_ALLOW_SHARED_ENV),
        "{err}"
    );
    assert!(
        std::fs::read_dir(&shared).unwrap().next().is_none(),
        "nothing written"
    );
    let t = Telemetry::builder()
        .multiprocess_dir(&shared)
        .multiprocess_allow_shared_dir(true)
        .build()
        .unwrap();
    drop(t);
    // The environment allows it too (another process: the variable is read at start).
    let joined = |allow: bool| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--join", shared.to_str().unwrap()]);
        if allow {
            cmd.env(MULTIPROC_ALLOW_SHARED_ENV, "1");
        } else {
            cmd.env_remove(MULTIPROC_ALLOW_SHARED_ENV);
        }
        cmd.status().unwrap().success()
    };
    assert!(!joined(false));
    assert!(joined(true));
    std::fs::remove_dir_all(&parent).unwrap();
}

fn forked_children_record_into_files_of_their_own() {
    let dir = temp_dir("fork");
    let tel = Telemetry::builder().multiprocess_dir(&dir).build().unwrap();
    tel.rag()
        .record_query(Duration::from_millis(1), Outcome::Success, None);
    tel.redis().set_memory(4096, 1 << 30);
    let mut pids = Vec::new();
    for _ in 0..3 {
        tel.before_fork();
        // SAFETY: the child only records, renders into memory and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let after = tel.after_fork_in_child();
            let ok = matches!(after.multiprocess, Some(Ok(())));
            for _ in 0..10 {
                tel.rag()
                    .record_query(Duration::from_millis(1), Outcome::Success, None);
            }
            // A series the parent never had, added by the child into its own file.
            tel.llm_model("child-model").unwrap();
            let text = tel.render_string(Format::Prometheus);
            let seen = value(&text, QUERIES);
            // 1 (parent) + 10 (this child) at least; siblings may have added theirs.
            let code = if ok && seen.is_some_and(|v| v >= 11.0) {
                0
            } else {
                1
            };
            unsafe { libc::_exit(code) };
        }
        tel.after_fork_in_parent();
        pids.push(pid);
    }
    for pid in pids {
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed"
        );
    }
    let text = tel.render_string(Format::Prometheus);
    assert_eq!(value(&text, QUERIES), Some(31.0), "{text}");
    assert_eq!(value(&text, REDIS_USED), Some(4096.0));
    assert_eq!(files(&dir).len(), 2, "parent + archive: {:?}", files(&dir));
    drop(tel);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--worker") => return worker(&args[2], args[3].parse().unwrap()),
        Some("--render") => {
            let mut out = Vec::new();
            let warnings = MultiprocessDir::new(&args[2])
                .render_report(Format::Prometheus, &mut out)
                .unwrap();
            for w in warnings {
                println!("{} {}", w.event.as_str(), w.cause.as_str());
            }
            println!("---");
            print!("{}", String::from_utf8(out).unwrap());
            return;
        }
        Some("--join") => {
            let joined = Telemetry::builder().multiprocess_dir(&args[2]).build();
            std::process::exit(i32::from(joined.is_err()));
        }
        _ => {}
    }
    let filters: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    let tests: &[(&str, fn())] = &[
        (
            "native_buckets_merge_exactly_across_workers",
            native_buckets_merge_exactly_across_workers,
        ),
        (
            "exact_totals_from_every_worker",
            exact_totals_from_every_worker,
        ),
        (
            "hostile_files_never_hang_or_crash_a_render",
            hostile_files_never_hang_or_crash_a_render,
        ),
        (
            "sigkilled_worker_counts_survive",
            sigkilled_worker_counts_survive,
        ),
        (
            "recycled_workers_leave_live_plus_one_files",
            recycled_workers_leave_live_plus_one_files,
        ),
        (
            "reader_racing_writers_sees_whole_series",
            reader_racing_writers_sees_whole_series,
        ),
        (
            "series_budget_is_the_services",
            series_budget_is_the_services,
        ),
        (
            "stale_directory_is_cleared_at_start",
            stale_directory_is_cleared_at_start,
        ),
        (
            "workers_recycled_all_at_once_keep_their_counts",
            workers_recycled_all_at_once_keep_their_counts,
        ),
        ("foreign_files_are_refused", foreign_files_are_refused),
        (
            "broken_archive_is_set_aside_and_workers_still_start",
            broken_archive_is_set_aside_and_workers_still_start,
        ),
        (
            "read_only_directory_never_goes_backwards",
            read_only_directory_never_goes_backwards,
        ),
        (
            "directory_and_files_are_private",
            directory_and_files_are_private,
        ),
        (
            "forked_children_record_into_files_of_their_own",
            forked_children_record_into_files_of_their_own,
        ),
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        eprintln!("test {name} ...");
        match std::panic::catch_unwind(test) {
            Ok(()) => eprintln!("test {name} ... ok"),
            Err(_) => {
                eprintln!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    eprintln!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
