"""The middleware over real HTTP: a FastAPI app under uvicorn on 127.0.0.1."""

from __future__ import annotations

import socket
import time

import httpx
from apps import STREAM_CHUNKS, STREAM_GAP, make_app
from conftest import Server, scrape
from prometheus_client.parser import text_string_to_metric_families
from tars_telemetry import Telemetry


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                out.append((dict(s.labels), float(s.value)))
    return out


def value(text: str, name: str, **labels: str) -> float:
    return sum(v for ls, v in samples(text, name) if all(ls.get(k) == x for k, x in labels.items()))


def test_routes_templates_exclusions_and_errors() -> None:
    tel = Telemetry(service_name="tars-backend", traces=False)
    with Server(make_app(tel)) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            for i in range(7):
                assert c.get(f"/items/{i}").status_code == 200
            assert c.get("/items/404").status_code == 404
            assert c.get("/items/not-a-number").status_code == 422
            assert c.get("/no/such/path/12345").status_code == 404
            assert c.get("/health").status_code == 200
            assert c.post("/api/v1/rag/query").status_code == 200
            assert c.get("/boom").status_code == 500
        text = scrape(srv.url)
    get = "tars_http_requests_total"
    assert value(text, get, method="GET", endpoint="/items/{item_id}", status="200") == 7
    assert value(text, get, method="GET", endpoint="/items/{item_id}", status="404") == 1
    assert value(text, get, method="GET", endpoint="/items/{item_id}", status="422") == 1
    assert value(text, get, method="GET", endpoint="__unmatched__", status="404") == 1
    assert value(text, get, method="POST", endpoint="/api/v1/rag/query", status="200") == 1
    assert value(text, get, method="GET", endpoint="/boom", status="500") == 1
    endpoints = {ls["endpoint"] for ls, _ in samples(text, get)}
    # The raw path is never a label; health and metrics are not recorded.
    assert not any("12345" in e or e.startswith("/items/") and "{" not in e for e in endpoints)
    assert "/health" not in endpoints and not any(e.startswith("/metrics") for e in endpoints)
    assert value(text, "tars_rag_queries_total", status="success") == 1
    assert value(text, "tars_llm_tokens_generated_total", model="llama3:8b") == 3
    assert value(text, "tars_http_requests_active") == 0


def test_streaming_is_timed_to_the_last_byte() -> None:
    tel = Telemetry(service_name="tars-backend", traces=False)
    with Server(make_app(tel)) as srv:
        r = httpx.get(srv.url + "/stream", timeout=10)
        assert r.status_code == 200 and r.text.count("chunk") == STREAM_CHUNKS
        text = scrape(srv.url)
    total = value(text, "tars_http_request_duration_seconds_sum", endpoint="/stream")
    assert total >= STREAM_CHUNKS * STREAM_GAP * 0.9, total
    assert value(text, "tars_http_requests_total", endpoint="/stream", status="200") == 1


def test_client_disconnect_is_recorded_as_abandoned() -> None:
    tel = Telemetry(service_name="tars-backend", traces=False)
    with Server(make_app(tel)) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: t\r\n\r\n")
            got = b""
            while b"first" not in got:
                chunk = s.recv(4096)
                assert chunk, "closed before the first chunk"
                got += chunk
        # Closed mid-stream: the server notices when it writes next.
        deadline = time.monotonic() + 20
        while True:
            text = scrape(srv.url)
            n = value(text, "tars_http_requests_total", endpoint="/slow-stream", status="499")
            if n == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert n == 1, text
    assert value(text, "tars_http_requests_total", endpoint="/slow-stream", status="200") == 0
    assert value(text, "tars_http_requests_active") == 0
