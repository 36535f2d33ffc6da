"""The exposition, after every kind of recording, through promtool and prometheus_client's
Prometheus-text and OpenMetrics parsers."""

from __future__ import annotations

import math
import subprocess

import pytest
from conftest import need_tool
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tars_telemetry import Telemetry

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def busy_telemetry() -> Telemetry:
    tel = Telemetry(service_name="tars-backend", traces=False)
    with tel.rag.query() as q:
        with q.phase("retrieval"):
            with tel.embeddings.cache_lookup() as lookup:
                lookup.miss()
            with tel.embeddings.generate():
                pass
            with tel.redis.command("GET") as get:
                get.hit()
            with tel.db.query("select", "SELECT documents"):
                pass
            with tel.vector_store.search():
                pass
        with q.phase("generation"), tel.llm("llama3:8b").call() as call:
            call.set_input_tokens(10)
            call.first_token()
            call.add_output_tokens(5)
        q.set_sources(3)
        q.set_relevance(0.8)
    with pytest.raises(ValueError), tel.rag.query():
        raise ValueError("no answer")
    with tel.documents.ingest() as doc:
        doc.set_chunks(4)
    with tel.websocket.connection() as ws:
        ws.inbound()
        ws.outbound()
    tel.errors.record("llm", TimeoutError())
    tel.set_app_info("1.2.3", "test", "llama3:8b")
    tel.db.set_pool(2, 10)
    tel.redis.set_memory(100, 1000)
    tel.vector_store.set_documents(42)
    tel.documents.set_queue_length(1)
    c = tel.counter("cache_warmups", "Cache warm-ups.", ["cache"])
    c.labels("redis").inc()
    c.labels(cache="embedding").inc(2.5)
    tel.gauge("workers_busy", "Busy workers.").set(3)
    h = tel.histogram("chunk_tokens", "Tokens per chunk.", ["source"], [64, 256, 1024])
    h.labels("pdf").observe(200)
    return tel


def test_prometheus_text_passes_promtool_and_prometheus_client() -> None:
    tel = busy_telemetry()
    body, ctype = tel.render()
    assert ctype.startswith("text/plain; version=0.0.4")
    text = body.decode()
    promtool = need_tool("promtool")
    r = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    # promtool's lint warnings (HELP style) are not errors; its exit status is.
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    fams = {f.name: f for f in parse_text(text)}
    assert fams["tars_rag_queries"].type == "counter"
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples
    }
    assert got[("tars_rag_queries_total", (("status", "success"),))] == 1
    assert got[("tars_rag_queries_total", (("status", "error"),))] == 1
    assert got[("cache_warmups_total", (("cache", "embedding"),))] == 2.5
    assert got[("workers_busy", ())] == 3
    assert got[("chunk_tokens_bucket", (("le", "256.0"), ("source", "pdf")))] == 1


def test_openmetrics_passes_prometheus_client() -> None:
    tel = busy_telemetry()
    body, ctype = tel.render(OPENMETRICS)
    assert ctype.startswith("application/openmetrics-text")
    text = body.decode()
    assert text.endswith("# EOF\n")
    fams = {f.name: f for f in parse_openmetrics(text)}
    assert fams["tars_rag_queries"].type == "counter"
    assert fams["chunk_tokens"].type == "histogram"
    for f in fams.values():
        for s in f.samples:
            assert not math.isnan(s.value)
