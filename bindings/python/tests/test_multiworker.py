"""The multi-process mode with real worker processes over real HTTP on 127.0.0.1: gunicorn
with uvicorn workers recycled by ``--max-requests`` (with and without ``--preload``), a
worker killed with SIGKILL, and ``uvicorn --workers``. Whichever worker answers a scrape,
it serves the exact count of the whole service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tars_telemetry
from conftest import free_port, need_tool
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tars_telemetry import MULTIPROC_DIR_ENV

TESTS = Path(__file__).resolve().parent
FAMILY = "tars_http_requests_total"
WORK = "/work"
SCRAPES = 20
CLIENTS = 8

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc), multiprocessing's resource
    tracker left out."""
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[1]) == pid and b"resource_tracker" not in cmdline:
            found.add(int(entry.name))
    return found


class Service:
    """A multi-worker server of ``workerapp`` in its own process group, its workers
    sharing ``mpdir``."""

    def __init__(self, argv: list[str], mpdir: Path, log: Path) -> None:
        self.mpdir = mpdir
        self.log = log
        env = dict(os.environ)
        env[MULTIPROC_DIR_ENV] = str(mpdir)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=TESTS,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.requests = {"/work": 0, "/pid": 0}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_all(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self) -> str:
        return self.log_all()[-3000:]

    def workers(self) -> set[int]:
        return children(self.proc.pid)

    def files(self) -> list[str]:
        return sorted(os.listdir(self.mpdir)) if self.mpdir.exists() else []

    def file_pids(self) -> set[int]:
        return {int(f.split("-")[1]) for f in self.files() if f.startswith("worker-")}

    def wait_ready(self, workers: int, exclude: set[int] | None = None) -> set[int]:
        """Waits for ``workers`` workers (none of ``exclude``), each with its file made
        (its app imported), answering HTTP."""
        exclude = exclude or set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited:\n{self.log_tail()}"
            pids = self.workers()
            if len(pids) == workers and not pids & exclude and pids <= self.file_pids():
                try:
                    if httpx.get(self.url + "/pid", timeout=5).status_code == 200:
                        self.requests["/pid"] += 1
                        return pids
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        raise AssertionError(
            f"not ready: workers {self.workers()}, files {self.files()}\n{self.log_tail()}"
        )

    def load(self, n: int, timeout: float = 180) -> None:
        """Sends ``n`` requests to /work from several keep-alive clients; a request that
        never reached a worker (its connection closed by a recycled worker) is sent again.
        Every one answered must be a 200."""
        deadline = time.monotonic() + timeout
        lock = threading.Lock()
        left = [n]
        failures: list[str] = []

        def client() -> None:
            with httpx.Client(base_url=self.url, timeout=10) as c:
                while time.monotonic() < deadline and not failures:
                    with lock:
                        if left[0] == 0:
                            return
                        left[0] -= 1
                    while True:
                        if time.monotonic() > deadline:
                            failures.append("load ran out of time")
                            return
                        try:
                            r = c.get(WORK)
                        except httpx.TransportError:
                            time.sleep(0.02)
                            continue
                        if r.status_code != 200:
                            failures.append(f"/work answered {r.status_code}")
                        break

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=timeout + 20)
        assert not failures, f"{failures[:3]}\n{self.log_tail()}"
        assert left[0] == 0 and not any(t.is_alive() for t in threads)
        self.requests[WORK] += n

    def scrape(self, accept: str | None = None) -> str:
        headers = {"accept": accept} if accept else {}
        for _ in range(50):
            try:
                r = httpx.get(self.url + "/metrics/", headers=headers, timeout=10)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            assert r.status_code == 200, r.text[:500]
            return r.text
        raise AssertionError(f"no scrape answered\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def requests_by_endpoint(text: str) -> dict[str, float]:
    """``tars_http_requests_total`` summed by endpoint, parsed by prometheus_client."""
    by: dict[str, float] = {}
    for fam in parse_text(text):
        for s in fam.samples:
            if s.name == FAMILY:
                by[s.labels["endpoint"]] = by.get(s.labels["endpoint"], 0.0) + s.value
    return by


def exact(svc: Service, text: str) -> None:
    """The scrape counts every request to /work and /pid once, and no scrape."""
    by = requests_by_endpoint(text)
    assert by.get(WORK) == svc.requests[WORK], (by, svc.requests)
    assert by.get("/pid") == svc.requests["/pid"], (by, svc.requests)
    assert not any(e.startswith("/metrics") for e in by), by


def settle_then_exact(svc: Service) -> str:
    """A worker counts a request right after its last byte is sent: waits (bounded) for
    the count to reach what the clients saw answered, then checks it at every scrape."""
    deadline = time.monotonic() + 15
    text = svc.scrape()
    while requests_by_endpoint(text).get(WORK) != svc.requests[WORK]:
        got = requests_by_endpoint(text).get(WORK, 0.0)
        assert got < svc.requests[WORK], f"counted {got} of {svc.requests[WORK]}"
        assert time.monotonic() < deadline, f"stuck at {got} of {svc.requests[WORK]}"
        time.sleep(0.1)
        text = svc.scrape()
    for _ in range(SCRAPES):
        text = svc.scrape()
        exact(svc, text)
    return text


def files_bounded(svc: Service, master_file: bool) -> None:
    """After a scrape folded the dead workers: one file per live worker (and the
    master's, when it made one), plus the archive."""
    for _ in range(10):
        svc.scrape()
        live = svc.workers() | ({svc.proc.pid} if master_file else set())
        files = svc.files()
        if svc.file_pids() <= live:
            break
        time.sleep(0.3)  # a worker recycled meanwhile: fold it at the next scrape
    assert svc.file_pids() <= live, (files, live)
    assert len(files) <= len(live) + 1, (files, live)
    assert set(files) - {"archive.tars"} == {
        f for f in files if f.startswith("worker-") and f.endswith(".tars")
    }, files


def promtool_passes(text: str) -> None:
    promtool = need_tool("promtool")
    r = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        for s in started:
            s.stop()


def gunicorn(tmp_path: Path, started: list[Service], *extra: str, recycle: bool = True) -> Service:
    """``workerapp`` under gunicorn with four uvicorn workers, recycled every 50 (+ up to
    10) requests unless ``recycle`` is false."""
    recycling = ["--max-requests", "50", "--max-requests-jitter", "10"] if recycle else []
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "4",
        "-k",
        "uvicorn_worker.UvicornWorker",
        "-b",
        "127.0.0.1:{port}",
        *recycling,
        "--graceful-timeout",
        "10",
        "--chdir",
        str(TESTS),
        *extra,
        "workerapp:app",
    ]
    svc = Service(argv, tmp_path / "mp", tmp_path / "gunicorn.log")
    started.append(svc)
    return svc


def recycled_and_killed(svc: Service, master_file: bool) -> None:
    svc.wait_ready(4)
    svc.load(600)
    recycled = svc.log_all().count("Maximum request limit")
    assert recycled >= 4, f"workers were not recycled: {recycled}\n{svc.log_tail()}"
    text = settle_then_exact(svc)
    promtool_passes(text)
    files_bounded(svc, master_file)

    victim = min(svc.workers())
    os.kill(victim, signal.SIGKILL)
    svc.wait_ready(4, exclude={victim})
    for _ in range(SCRAPES):
        exact(svc, svc.scrape())
    svc.load(40)
    settle_then_exact(svc)
    files_bounded(svc, master_file)


def test_gunicorn_recycled_and_killed_workers_counts_stay_exact(
    tmp_path: Path, services: list[Service]
) -> None:
    svc = gunicorn(tmp_path, services)
    recycled_and_killed(svc, master_file=False)


def test_gunicorn_preload_counts_stay_exact(tmp_path: Path, services: list[Service]) -> None:
    svc = gunicorn(tmp_path, services, "--preload")
    recycled_and_killed(svc, master_file=True)
    # The master imported the app before forking: its own file, with nothing counted.
    assert svc.proc.pid in svc.file_pids()


def test_uvicorn_spawned_workers_counts_are_exact(tmp_path: Path, services: list[Service]) -> None:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "workerapp:app",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
    ]
    svc = Service(argv, tmp_path / "mp", tmp_path / "uvicorn.log")
    services.append(svc)
    svc.wait_ready(2)
    svc.load(300)
    text = settle_then_exact(svc)
    promtool_passes(text)
    files_bounded(svc, master_file=False)
    om = svc.scrape("application/openmetrics-text")
    assert om.rstrip().endswith("# EOF")


def test_hostile_files_leave_metrics_exact(tmp_path: Path, services: list[Service]) -> None:
    """Files placed in the directory while the service runs (a FIFO and a symbolic link
    named like workers' files, a dead "worker" file of garbage): every scrape answers in
    time with the live workers' exact counts, and says what it skipped."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "workerapp:app",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--log-level",
        "warning",
    ]
    svc = Service(argv, tmp_path / "mp", tmp_path / "uvicorn.log")
    services.append(svc)
    svc.wait_ready(2)
    svc.load(100)
    settle_then_exact(svc)
    fifo = svc.mpdir / "worker-900001-1.tars"
    os.mkfifo(fifo)
    elsewhere = tmp_path / "elsewhere.tars"
    live_file = next(svc.mpdir / f for f in svc.files() if f.startswith("worker-"))
    elsewhere.write_bytes(live_file.read_bytes())
    link = svc.mpdir / "worker-900002-1.tars"
    link.symlink_to(elsewhere)
    garbage = svc.mpdir / "worker-900003-1.tars"
    garbage.write_bytes(b"\xff" * 8192)

    svc.load(100)
    text = settle_then_exact(svc)  # the symlink's copy would double the counts
    promtool_passes(text)
    losses = {
        (s.labels["event"], s.labels["reason"]): s.value
        for fam in parse_text(text)
        for s in fam.samples
        if s.name == "tars_telemetry_multiprocess_losses_total"
    }
    assert losses[("dead_file_set_aside", "not_ours")] == 1, losses
    assert losses[("file_skipped", "not_a_regular_file")] >= 2, losses
    assert fifo.exists() and link.is_symlink(), "left alone"
    assert not garbage.exists(), "set aside"
    assert any(f.startswith("worker-900003-1.tars.broken-") for f in svc.files())

    text, warnings = tars_telemetry.render_multiprocess_dir_report(svc.mpdir)
    exact(svc, text)
    skipped = {Path(w.path).name for w in warnings if w.event == "file_skipped"}
    assert skipped == {fifo.name, link.name}, warnings
    assert all(w.reason == "not_a_regular_file" for w in warnings), warnings
    assert fifo.name in str(warnings[0]) or link.name in str(warnings[0])
