"""Native histograms from Python: the ``native`` option of custom histograms, the protobuf
exposition negotiated by ``Accept``, and gunicorn's four workers merged into native
histograms a real Prometheus 3 (scripts/build-otel-tools.sh builds it) scrapes with
``scrape_native_histograms``."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from tars_telemetry import Telemetry, render_multiprocess_dir_as
from test_multiworker import TESTS, Service, gunicorn

ROOT = TESTS.parents[2]
PROTOBUF = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)
# Schema 3: a bucket is 2^(1/8) times the one below it.
SCHEMA_3_ERROR = 2 ** (1 / 8) - 1


def test_native_option_shapes_the_family() -> None:
    tel = Telemetry(service_name="tars-native", traces=False)
    native_only = tel.histogram("native_only_seconds", "Native only.", native=True)
    both = tel.histogram("both_seconds", "Both.", buckets=[0.1, 1.0], native=3)
    classic = tel.histogram("classic_seconds", "Classic.")
    for h in (native_only, both, classic):
        h.observe(0.25)
    text, content_type = tel.render()
    assert content_type.startswith("text/plain")
    body = text.decode()
    # A native-only family shows its count and sum in text, as Go's client does.
    assert 'native_only_seconds_bucket{le="+Inf"} 1' in body
    assert 'native_only_seconds_bucket{le="0.1"}' not in body
    assert 'both_seconds_bucket{le="1.0"} 1' in body
    assert 'classic_seconds_bucket{le="0.25"} 1' in body
    with pytest.raises(ValueError, match="schema"):
        tel.histogram("bad_seconds", "Bad.", native=9)
    with pytest.raises(TypeError):
        tel.histogram("bad2_seconds", "Bad.", native="fine")  # type: ignore[arg-type]


def test_protobuf_is_negotiated_by_accept() -> None:
    tel = Telemetry(service_name="tars-native", traces=False)
    tel.histogram("job_seconds", "Jobs.", native=True).observe(1.5)
    body, content_type = tel.render(PROTOBUF + ";q=0.6,text/plain;version=0.0.4;q=0.3")
    assert content_type == PROTOBUF
    # Length-delimited MetricFamily messages: the first is whole and names a family.
    first_len = body[0]
    assert first_len < 0x80 or body[1] >= 0
    assert b"job_seconds" in body
    _, text_type = tel.render("text/plain;version=0.0.4")
    assert text_type.startswith("text/plain")


def prometheus3() -> str:
    printed = subprocess.run(
        [str(ROOT / "scripts/build-otel-tools.sh"), "--print"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    path = os.environ.get("TARS_PROMETHEUS3") or next(
        (line.split("=", 1)[1] for line in printed.splitlines() if line.startswith("PROMETHEUS3=")),
        "",
    )
    if not path or not Path(path).is_file():
        msg = "Prometheus 3 not built (scripts/build-otel-tools.sh builds it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def query(port: int, q: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(q)}"
    try:
        data = json.loads(httpx.get(url, timeout=5).text)
    except (httpx.TransportError, json.JSONDecodeError):
        return []
    result: list[dict[str, object]] = data.get("data", {}).get("result", [])
    return result


def scalar(port: int, q: str) -> float | None:
    r = query(port, q)
    if not r:
        return None
    value = r[0]["value"]
    assert isinstance(value, list)
    return float(value[1])


def test_gunicorn_workers_merge_native_histograms_for_prometheus3(tmp_path: Path) -> None:
    binary = prometheus3()
    started: list[Service] = []
    svc = gunicorn(tmp_path, started, recycle=False)
    prom = None
    try:
        svc.wait_ready(4)
        # 1..400 ms, once each, from several connections (so several workers).
        values = [i / 1000 for i in range(1, 401)]
        clients = [httpx.Client(base_url=svc.url, timeout=10) for _ in range(8)]
        for i, v in enumerate(values):
            assert clients[i % 8].get("/job", params={"ms": v * 1000}).status_code == 200
        for c in clients:
            c.close()
        port = free_port()
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n  - job_name: backend\n"
            "    scrape_native_histograms: true\n"
            "    always_scrape_classic_histograms: true\n"
            "    metrics_path: /metrics/\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{svc.port}']\n"
        )
        prom = subprocess.Popen(
            [
                binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while scalar(port, "histogram_count(job_seconds)") != len(values):
            assert time.monotonic() < deadline, (
                f"job_seconds not scraped: {query(port, 'job_seconds')}\n{svc.log_tail()}"
            )
            time.sleep(0.5)
        # Every worker's observations, in one native histogram: its quantiles are within
        # the schema's error of the exact ones.
        for q in (0.5, 0.9, 0.99):
            exact = values[int(q * len(values)) - 1]
            est = scalar(port, f"histogram_quantile({q}, job_seconds)")
            assert est is not None
            assert abs(est - exact) / exact <= SCHEMA_3_ERROR, (q, est, exact)
        assert scalar(port, "histogram_sum(job_seconds)") == pytest.approx(sum(values))
        # A catalog latency family, native and classic from the same scrapes.
        native = scalar(port, "sum(histogram_count(tars_http_request_duration_seconds))")
        classic = scalar(port, "sum(tars_http_request_duration_seconds_count)")
        assert native is not None and native >= len(values)
        assert native == classic
        # A process with no series of its own (a sidecar) renders the directory alike.
        body, content_type = render_multiprocess_dir_as(svc.mpdir, PROTOBUF)
        assert content_type == PROTOBUF
        assert b"job_seconds" in body
        text, content_type = render_multiprocess_dir_as(svc.mpdir)
        assert content_type.startswith("text/plain")
        assert f"job_seconds_count {len(values)}" in text.decode()
    finally:
        if prom is not None:
            prom.kill()
            prom.wait()
        svc.stop()
