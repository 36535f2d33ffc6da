"""One set of HTTP server rules: the same requests through FastAPI (this package's ASGI
middleware) and through Express (the Node package's middleware, in a real node process)
give the same series for the same outcome: excluded paths, a client that leaves
mid-response, an overlong path, an unmatched route, a matched one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, need_tool, scrape
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tars_telemetry import Telemetry
from tars_telemetry.asgi import TelemetryMiddleware, metrics_app

NODE_PACKAGE = Path(__file__).resolve().parents[2] / "node"
FIXTURE = NODE_PACKAGE / "test-fixtures" / "http-parity.js"


def fastapi_app(tel: Telemetry) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TelemetryMiddleware, telemetry=tel)
    app.mount("/metrics", metrics_app(tel))

    @app.get("/work")
    async def work() -> str:
        return "done"

    @app.get("/items/{id}")
    async def item(id: str) -> dict[str, str]:
        return {"id": id}

    @app.get("/slow-stream")
    async def slow_stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            import asyncio

            yield b"first\n"
            await asyncio.sleep(1.5)
            yield b"last\n"

        return StreamingResponse(chunks())

    return app


class ExpressServer:
    """The Express fixture in a node process of its own."""

    def __init__(self) -> None:
        node = need_tool("node")
        if not (NODE_PACKAGE / "node_modules" / "express").exists():
            pytest.skip("bindings/node has no node_modules (scripts/test-node.sh installs them)")
        env = dict(os.environ, TARS_FIXTURE="http-parity", PORT="0")
        env.pop("TARS_TELEMETRY_MULTIPROC_DIR", None)
        self.proc = subprocess.Popen(
            [node, str(FIXTURE)],
            cwd=NODE_PACKAGE,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the Express fixture exited"
        self.port = json.loads(line)["port"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def leave_mid_response(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: t\r\n\r\n")
        got = b""
        while b"first" not in got:
            chunk = s.recv(4096)
            assert chunk, "closed before the first chunk"
            got += chunk


def drive(base: str, port: int) -> None:
    """The same requests, in the same order, to either server."""
    with httpx.Client(base_url=base, timeout=10) as c:
        for _ in range(3):
            assert c.get("/work").status_code == 200
        assert c.get("/items/42").status_code == 200
        assert c.get("/nowhere").status_code == 404
        # An overlong path: never a label, an unmatched request like any other.
        assert c.get("/" + "x" * 6000).status_code == 404
        # Excluded, each with what is below it, on both: the scrape and the probes.
        for path in ["/healthz", "/readyz", "/livez", "/health/live", "/ready", "/metrics/x"]:
            c.get(path)
    leave_mid_response(port)


def http_series(text: str) -> dict[tuple[str, str, str], float]:
    """tars_http_requests_total, non-zero samples, by (method, endpoint, status)."""
    out = {}
    for fam in parse_text(text):
        for s in fam.samples:
            if s.name == "tars_http_requests_total" and s.value:
                out[(s.labels["method"], s.labels["endpoint"], s.labels["status"])] = s.value
    return out


def abandoned(text: str) -> float:
    for fam in parse_text(text):
        for s in fam.samples:
            if (
                s.name == "tars_telemetry_stages_abandoned_total"
                and s.labels.get("stage") == "http_server"
            ):
                return s.value
    return 0.0


def settled(fetch: object) -> str:
    """Scrapes until the abandoned request is counted (the server notices when it writes
    next), 20 s at most."""
    deadline = time.monotonic() + 20
    while True:
        text: str = fetch()  # type: ignore[operator]
        if abandoned(text) >= 1 or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_fastapi_and_express_record_the_same_series() -> None:
    express = ExpressServer()
    try:
        tel = Telemetry(service_name="parity-fastapi", traces=False)
        with Server(fastapi_app(tel)) as srv:
            drive(srv.url, srv.port)
            py = settled(lambda: scrape(srv.url))
        drive(express.url, express.port)
        js = settled(lambda: httpx.get(express.url + "/metrics", timeout=10).text)
    finally:
        express.close()
    expected = {
        ("GET", "/work", "200"): 3.0,
        ("GET", "/items/{id}", "200"): 1.0,
        ("GET", "__unmatched__", "404"): 2.0,
        ("GET", "/slow-stream", "499"): 1.0,
    }
    assert http_series(py) == expected, py
    # Express spells its templates its own way (`/items/:id`): the rules, not the syntax,
    # are what must agree.
    js_series = {(m, e.replace(":id", "{id}"), s): v for (m, e, s), v in http_series(js).items()}
    assert js_series == expected, js
    assert abandoned(py) == abandoned(js) == 1.0
