"""The example backend against a real Redis and PostgreSQL started here on 127.0.0.1,
over real HTTP under uvicorn, exporting spans to the independent OTLP receiver."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rag_backend
from rag_backend import create_app
from tars_telemetry import Telemetry

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need(path: str | None, name: str) -> str:
    if path is None:
        msg = f"{name} not found (scripts/install-test-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


@pytest.fixture
def redis_url() -> Iterator[str]:
    exe = need(shutil.which("redis-server"), "redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@pytest.fixture
def database_url() -> Iterator[str]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = need(shutil.which("initdb") or (found[-1] if found else None), "initdb")
    postgres = str(Path(initdb).with_name("postgres"))
    d = tempfile.mkdtemp(prefix="tars-pg-")
    if os.geteuid() == 0:
        shutil.chown(d, "postgres")
    data = os.path.join(d, "data")
    subprocess.run(
        as_postgres([initdb, "-D", data, "-A", "trust", "-U", "tars", "--no-sync"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    proc = subprocess.Popen(
        as_postgres(
            [
                postgres,
                "-D",
                data,
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
                d,
                "-c",
                "fsync=off",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc, "postgres")
        yield f"postgresql://tars@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "otlp_receiver.py"),
            "--out",
            str(tmp_path / "spans.jsonl"),
        ],
        # It stops when its stdin closes: kept open until the end.
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    addrs = json.loads(proc.stdout.readline())
    try:
        yield f"http://{addrs['http']}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@contextlib.contextmanager
def backend(
    redis_url: str, database_url: str, receiver: str
) -> Iterator[tuple[Telemetry, str]]:
    """The example backend under uvicorn on 127.0.0.1, exporting spans to the receiver:
    its telemetry and its base URL, until the block ends."""
    tel = Telemetry(
        service_name="tars-backend",
        otlp_endpoint=receiver + "/v1/traces",
        otlp_protocol="http/protobuf",
        llm_pricing=rag_backend.PRICING,
    )
    app = create_app(tel, redis_url, database_url)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, (
                "uvicorn did not start"
            )
            time.sleep(0.02)
        yield tel, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_rag_backend_with_redis_postgres_and_otlp(
    redis_url: str, database_url: str, receiver: str
) -> None:
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "50"
    os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
    with (
        backend(redis_url, database_url, receiver) as (tel, base),
        httpx.Client(base_url=base, timeout=20) as c,
    ):
        first = c.post("/api/v1/rag/query", json={"question": "what is tars"}).json()
        again = c.post("/api/v1/rag/query", json={"question": "what is tars"}).json()
        streamed = c.get("/api/v1/rag/stream", params={"question": "hi"}).text
        text = c.get("/metrics/").text
    assert first["cached"] is False and first["sources"] == 3
    assert again["cached"] is True and again["answer"] == first["answer"]
    assert streamed.startswith("Answer to: hi")
    ep = "/api/v1/rag/query"
    assert value(text, "tars_http_requests_total", endpoint=ep, status="200") == 2
    assert value(text, "tars_rag_queries_total", status="success") == 2
    assert value(text, "tars_redis_cache_hits_total") == 1
    assert value(text, "tars_redis_cache_misses_total") == 1
    assert value(text, "tars_db_queries_total", operation="select") == 1
    assert value(text, "tars_llm_tokens_generated_total", model="llama3:8b") > 0
    # The one generated answer: its system prompt read from the cache, its question not.
    assert (
        value(text, "tars_llm_tokens_total", model="llama3:8b", type="cache_read") == 48
    )
    assert value(text, "tars_llm_tokens_total", model="llama3:8b", type="input") == 3
    assert (
        value(
            text, "tars_llm_spend_dollars_total", model="llama3:8b", type="cache_read"
        )
        > 0
    )
    tel.force_flush()
    deadline = time.monotonic() + 20
    names: set[str] = set()
    while time.monotonic() < deadline:
        spans: list[dict[str, Any]] = httpx.get(receiver + "/spans", timeout=10).json()
        names = {s["name"] for s in spans}
        if {
            "rag.query",
            "rag.retrieval",
            "rag.generation",
            "GET",
            "SELECT documents",
        } <= names:
            break
        time.sleep(0.1)
    assert {"rag.query", "rag.retrieval", "rag.generation", "GET"} <= names, names
    assert f"POST {ep}" in names
    tel.shutdown()


def test_ui_request_through_node_is_one_trace_with_the_backend(
    redis_url: str, database_url: str, receiver: str
) -> None:
    """A request to the Node example (examples/node) travels to this backend: one trace,
    the UI's span the parent of the backend's server span."""
    node = shutil.which("node")
    ui_dir = REPO / "examples" / "node"
    addon = glob.glob(str(REPO / "bindings" / "node" / "tars-telemetry.*.node"))
    need(node, "node")
    if not addon or not (ui_dir / "node_modules" / "express").exists():
        need(None, "the Node addon and examples/node's modules (scripts/test-node.sh)")
    assert node is not None
    with backend(redis_url, database_url, receiver) as (tel, base):
        ui_port = free_port()
        env = {
            **os.environ,
            "BACKEND_URL": base,
            "PORT": str(ui_port),
            "OTEL_SERVICE_NAME": "tars-ui",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        ui = subprocess.Popen(
            [node, "server.js"], cwd=ui_dir, env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert ui.stdout is not None
            listening = json.loads(ui.stdout.readline())
            assert listening["listening"] == ui_port
            r = httpx.post(
                f"http://127.0.0.1:{ui_port}/api/v1/rag/query",
                json={"question": "one trace"},
                timeout=20,
            )
            assert r.status_code == 200, r.text
            assert r.json()["sources"] == 3
        finally:
            # SIGTERM: the UI server ends its export (tel.shutdown) before exiting.
            ui.terminate()
            ui.wait(timeout=20)
    tel.force_flush()
    ep = "/api/v1/rag/query"
    deadline = time.monotonic() + 20
    server_spans: list[dict[str, Any]] = []
    ui_spans: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        spans: list[dict[str, Any]] = httpx.get(receiver + "/spans", timeout=10).json()
        server_spans = [
            s
            for s in spans
            if s["service"] == "tars-backend" and s["name"] == f"POST {ep}"
        ]
        ui_spans = {s["span_id"]: s for s in spans if s["service"] == "tars-ui"}
        if server_spans and server_spans[0]["parent_span_id"] in ui_spans:
            break
        time.sleep(0.1)
    assert len(server_spans) == 1, server_spans
    parent = ui_spans.get(server_spans[0]["parent_span_id"])
    assert parent is not None, (server_spans, list(ui_spans.values()))
    assert parent["trace_id"] == server_spans[0]["trace_id"]
    # The UI's own server span roots the trace, and the backend's spans are in it.
    same_trace = [s for s in ui_spans.values() if s["trace_id"] == parent["trace_id"]]
    roots = [s for s in same_trace if not s["parent_span_id"]]
    assert len(roots) == 1, same_trace
    tel.shutdown()
