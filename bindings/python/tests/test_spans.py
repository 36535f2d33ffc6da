"""Spans in the independent OTLP receiver (scripts/otlp_receiver.py): the tree across
awaits and interleaved requests, a W3C traceparent joined, and OpenTelemetry-Python's
context joined both ways."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from apps import make_app
from conftest import Receiver, Server
from tars_telemetry import Telemetry


def traced(receiver: Receiver, **kw: Any) -> Telemetry:
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "50"
    os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
    return Telemetry(
        service_name="tars-backend",
        otlp_endpoint=receiver.http + "/v1/traces",
        otlp_protocol="http/protobuf",
        **kw,
    )


def by_trace(spans: list[dict[str, Any]], trace_id: str) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in spans if s["trace_id"] == trace_id}


def check_tree(t: dict[str, dict[str, Any]], caller_span: str) -> None:
    server = t["POST /api/v1/rag/query"]
    assert server["parent_span_id"] == caller_span
    assert server["kind"] == "SERVER"
    assert server["attributes"]["http.route"] == "/api/v1/rag/query"
    query = t["rag.query"]
    assert query["parent_span_id"] == server["span_id"]
    assert t["rag.retrieval"]["parent_span_id"] == query["span_id"]
    assert t["rag.generation"]["parent_span_id"] == query["span_id"]
    search = next(s for n, s in t.items() if n.startswith("retrieval"))
    assert search["parent_span_id"] == t["rag.retrieval"]["span_id"]
    llm = next(s for n, s in t.items() if "llama3:8b" in n)
    assert llm["parent_span_id"] == t["rag.generation"]["span_id"]
    assert llm["kind"] == "CLIENT"


def test_request_trees_across_awaits_and_interleaved_requests(receiver: Receiver) -> None:
    tel = traced(receiver)
    assert tel.tracing
    n = 8
    callers = [(f"{i + 1:032x}", f"{i + 1:016x}") for i in range(n)]

    async def all_at_once(base: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=20) as c:
            rs = await asyncio.gather(
                *(
                    c.post("/api/v1/rag/query", headers={"traceparent": f"00-{t}-{s}-01"})
                    for t, s in callers
                )
            )
            assert all(r.status_code == 200 for r in rs)

    with Server(make_app(tel)) as srv:
        asyncio.run(all_at_once(srv.url))
    tel.force_flush()
    spans = receiver.wait_for(lambda ss: all(len(by_trace(ss, t)) >= 6 for t, _ in callers))
    for t, s in callers:
        tree = by_trace(spans, t)
        assert len(tree) >= 6, (t, sorted(tree))
        check_tree(tree, s)
        assert all(x["service"] == "tars-backend" for x in tree.values())
    tel.shutdown()


def test_failures_and_cancellation_end_their_spans(receiver: Receiver) -> None:
    tel = traced(receiver)

    async def main() -> None:
        with pytest.raises(KeyError):
            async with tel.rag.query():
                raise KeyError("x")

        async def hangs() -> None:
            # A model call starts no trace of its own: under a query.
            async with tel.rag.query(), tel.llm("cancel-model").call():
                await asyncio.sleep(30)

        task = asyncio.ensure_future(hangs())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    tel.force_flush()
    spans = receiver.wait_for(
        lambda ss: (
            any("cancel-model" in s["name"] for s in ss)
            and any(s["name"] == "rag.query" and s["status_code"] == "ERROR" for s in ss)
        )
    )
    failed = [s for s in spans if s["name"] == "rag.query" and s["status_code"] == "ERROR"]
    assert any(s["attributes"].get("error.type") == "KeyError" for s in failed)
    cancelled = next(s for s in spans if "cancel-model" in s["name"])
    assert cancelled["attributes"].get("error.type") == "cancelled"
    parent = next(s for s in spans if s["span_id"] == cancelled["parent_span_id"])
    assert parent["name"] == "rag.query"
    assert parent["attributes"].get("error.type") == "cancelled"
    body, _ = tel.render()
    assert b'tars_llm_requests_total{model="cancel-model",status="error"} 1' in body
    tel.shutdown()


def test_opentelemetry_python_context_both_ways(receiver: Receiver) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    tel = traced(receiver, join_opentelemetry=True)

    async def main() -> None:
        with tracer.start_as_current_span("otel.outer") as outer:
            async with tel.rag.query():
                await asyncio.sleep(0.01)
                with tracer.start_as_current_span("otel.inner"):
                    await asyncio.sleep(0.001)
        ctx = outer.get_span_context()
        assert trace.get_current_span().get_span_context().is_valid is False
        return ctx  # type: ignore[return-value]

    outer_ctx: Any = asyncio.run(main())
    tel.force_flush()
    trace_hex = f"{outer_ctx.trace_id:032x}"
    spans = receiver.wait_for(lambda ss: "rag.query" in by_trace(ss, trace_hex))
    ours = by_trace(spans, trace_hex)["rag.query"]
    assert ours["parent_span_id"] == f"{outer_ctx.span_id:016x}"
    inner = next(s for s in exporter.get_finished_spans() if s.name == "otel.inner")
    assert inner.context.trace_id == outer_ctx.trace_id
    assert inner.parent is not None and f"{inner.parent.span_id:016x}" == ours["span_id"]
    tel.shutdown()


def test_exemplars_from_opentelemetry_python_spans() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    tel = Telemetry(service_name="tars-backend", traces=False, join_opentelemetry=True)
    with tracer.start_as_current_span("otel.request") as outer, tel.rag.query():
        pass
    sc = outer.get_span_context()
    body, _ = tel.render("application/openmetrics-text; version=1.0.0")
    want = f'trace_id="{sc.trace_id:032x}",span_id="{sc.span_id:016x}"'
    line = next(x for x in body.decode().splitlines() if x.startswith("tars_rag_queries_total"))
    assert want in body.decode(), line
