"""Measures the multi-process merge at scrape: tars-telemetry's ``render_multiprocess_dir``
against prometheus_client's multiprocess mode (``MultiProcessCollector`` +
``generate_latest``), on the same shape: N worker processes with 1,000 series each of one
labeled counter family (the same 1,000 label values in every worker, so the merged view
holds 1,000 series).

prometheus_client's workers write their files and exit (its files outlive them);
tars-telemetry's stay alive while the directory is rendered (a dead worker's counts are
folded into the archive at the first render after it dies). Prints a Markdown table of
median render times over RUNS renders, after one warm-up. Not part of CI; run it on a quiet
machine for numbers worth quoting:

    .venv/bin/python bindings/python/bench_multiproc.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

SERIES = 1_000
RUNS = 20
WORKERS = (4, 8)
FAMILY = "bench_jobs"


def prometheus_worker() -> None:
    # PROMETHEUS_MULTIPROC_DIR is set by the parent, before this import.
    from prometheus_client import Counter

    c = Counter(FAMILY, "Jobs.", ["kind"])
    for i in range(SERIES):
        c.labels(f"kind-{i}").inc(i % 7 + 1)


def tars_worker() -> None:
    # TARS_TELEMETRY_MULTIPROC_DIR is set by the parent.
    from tars_telemetry import Telemetry

    tel = Telemetry(traces=False, series_budget=SERIES + 100)
    c = tel.counter(FAMILY, "Jobs.", ["kind"])
    for i in range(SERIES):
        c.labels(f"kind-{i}").inc(i % 7 + 1)
    print("ready", flush=True)
    sys.stdin.read()  # alive until the parent closes stdin


def spawn(role: str, env_name: str, directory: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("TARS_TELEMETRY_MULTIPROC_DIR", None)
    env[env_name] = directory
    return subprocess.Popen(
        [sys.executable, __file__, role],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def median_ms(render: Callable[[], bytes | str]) -> tuple[float, int]:
    size = len(render())  # warm-up
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        render()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), size


def bench_prometheus(n: int) -> tuple[float, int]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    with tempfile.TemporaryDirectory(prefix="bench-prom-") as d:
        workers = [spawn("--prometheus-worker", "PROMETHEUS_MULTIPROC_DIR", d) for _ in range(n)]
        for w in workers:
            _, _ = w.communicate(timeout=120)
            assert w.returncode == 0, "a prometheus_client worker failed"

        def render() -> bytes:
            # What a /metrics handler of the multiprocess mode does at every scrape.
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=d)
            return generate_latest(registry)

        out = render().decode()
        assert f'{FAMILY}_total{{kind="kind-1"}} {2.0 * n}' in out, out[:500]
        return median_ms(render)


def bench_tars(n: int) -> tuple[float, int]:
    from tars_telemetry import render_multiprocess_dir

    with tempfile.TemporaryDirectory(prefix="bench-tars-") as d:
        workers = [spawn("--tars-worker", "TARS_TELEMETRY_MULTIPROC_DIR", d) for _ in range(n)]
        try:
            for w in workers:
                assert w.stdout is not None
                assert w.stdout.readline().strip() == "ready", "a tars-telemetry worker failed"
            out = render_multiprocess_dir(d)
            assert f'{FAMILY}_total{{kind="kind-1"}} {2 * n}\n' in out, out[-500:]
            return median_ms(lambda: render_multiprocess_dir(d))
        finally:
            for w in workers:
                w.communicate(timeout=60)


def main() -> None:
    rows = []
    for n in WORKERS:
        for who, bench in (
            ("prometheus_client MultiProcessCollector + generate_latest", bench_prometheus),
            ("tars-telemetry render_multiprocess_dir", bench_tars),
        ):
            ms, size = bench(n)
            rows.append((n, who, ms, size))
            print(f"{n} workers  {who:58} {ms:8.2f} ms  {size / 1024:7.0f} KB", file=sys.stderr)
    load = os.getloadavg()
    print(
        f"\n{SERIES:,} counter series per worker, median of {RUNS} renders "
        f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs)\n"
    )
    print("| workers | merge and render | median | text |")
    print("|---|---|---|---|")
    for n, who, ms, size in rows:
        print(f"| {n} | {who} | {ms:.2f} ms | {size / 1024:.0f} KB |")


if __name__ == "__main__":
    if sys.argv[1:] == ["--prometheus-worker"]:
        prometheus_worker()
    elif sys.argv[1:] == ["--tars-worker"]:
        tars_worker()
    else:
        main()
