"""The stages' protocol: entered once, ``with`` and ``async with``, the block's outcome
(success, a failure with the exception's type, cancelled), the current span context
while a stage is open, and the decorator forms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from conftest import Receiver
from prometheus_client.parser import text_string_to_metric_families as parse_text
from tars_telemetry import RagQueryStage, Telemetry, TimedStage
from test_spans import traced


def samples(tel: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = tel.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in parse_text(body.decode())
        for s in f.samples
    }


def untraced() -> Telemetry:
    return Telemetry(service_name="tars-backend", traces=False)


class Outer:
    class Failure(Exception):
        pass


def test_a_stage_is_entered_once() -> None:
    tel = untraced()
    s = tel.vector_store.search()
    with pytest.raises(RuntimeError, match="not started"):
        s.record_error("x")
    assert s.span_context() is None
    assert not s.ended and s.elapsed() == 0.0
    with s:
        with pytest.raises(RuntimeError, match="entered once"):
            s.__enter__()
        assert not s.ended
    assert s.ended
    with pytest.raises(RuntimeError, match="entered once"), s:
        pass

    async def again() -> None:
        with pytest.raises(RuntimeError, match="entered once"):
            async with s:
                pass

    asyncio.run(again())
    assert samples(tel)[("tars_vector_search_total", ())] == 1


def test_async_with_and_its_awaitables() -> None:
    tel = untraced()

    async def main() -> None:
        async with tel.rag.query() as q:
            assert isinstance(q, RagQueryStage)
            async with q.phase("retrieval") as p:
                assert isinstance(p, TimedStage)
                await asyncio.sleep(0)
            q.set_sources(2)
        s = tel.vector_store.search()
        assert await s.__aenter__() is s
        assert await s.__aexit__(None, None, None) is None
        with pytest.raises(KeyError):
            async with tel.llm("m").call():
                await asyncio.sleep(0)
                raise KeyError("x")

    asyncio.run(main())
    got = samples(tel)
    assert got[("tars_rag_queries_total", (("status", "success"),))] == 1
    assert got[("tars_vector_search_total", ())] == 1
    assert got[("tars_llm_requests_total", (("model", "m"), ("status", "error")))] == 1


def test_exceptions_propagate_and_end_each_kind_as_failed() -> None:
    tel = untraced()
    with pytest.raises(ValueError), tel.rag.query():
        raise ValueError("no answer")
    with pytest.raises(Outer.Failure), tel.llm("m").call():
        raise Outer.Failure
    with pytest.raises(KeyError), tel.documents.ingest() as doc:
        doc.set_chunks(3)
        raise KeyError("x")
    with pytest.raises(KeyError), tel.redis.command("GET"):
        raise KeyError("x")
    with pytest.raises(KeyError), tel.redis.command("GET") as hit:
        hit.hit()
        raise KeyError("x")
    with pytest.raises(KeyError), tel.db.query("select"):
        raise KeyError("x")
    with tel.documents.ingest() as doc:
        doc.set_chunks(4)
    got = samples(tel)
    assert got[("tars_rag_queries_total", (("status", "error"),))] == 1
    assert got[("tars_llm_requests_total", (("model", "m"), ("status", "error")))] == 1
    assert got[("tars_documents_processed_total", (("status", "error"),))] == 1
    assert got[("tars_documents_processed_total", (("status", "success"),))] == 1
    assert got[("tars_document_chunks_sum", ())] == 4
    redis = (("cache", "redis"), ("operation", "get"))
    assert got[("tars_cache_operations_total", (*redis, ("result", "error")))] == 1
    assert got[("tars_cache_operations_total", (*redis, ("result", "hit")))] == 1
    assert got[("tars_db_queries_total", (("operation", "select"),))] == 1


def test_cancellation_ends_a_stage_as_cancelled() -> None:
    tel = untraced()
    with pytest.raises(asyncio.CancelledError), tel.llm("m").call() as call:
        raise asyncio.CancelledError
    assert call.ended
    with pytest.raises(KeyboardInterrupt), tel.rag.query():
        raise KeyboardInterrupt
    got = samples(tel)
    assert got[("tars_llm_requests_total", (("model", "m"), ("status", "error")))] == 1


def test_error_types_and_the_current_span_context(receiver: Receiver) -> None:
    tel = traced(receiver)
    assert tel.current_span_context() is None
    with pytest.raises(Outer.Failure), tel.rag.query() as q:
        sc = q.span_context()
        assert sc is not None and tel.current_span_context() == sc
        with q.phase("retrieval"), tel.db.query("select") as db:
            assert tel.current_span_context() == db.span_context()
            raise Outer.Failure
    assert tel.current_span_context() is None
    # A model call starts no trace of its own: under a query.
    with pytest.raises(asyncio.CancelledError), tel.rag.query(), tel.llm("cancelled-model").call():
        raise asyncio.CancelledError
    tel.force_flush()
    trace_id = f"{sc.trace_id:032x}"
    spans = receiver.wait_for(
        lambda ss: (
            len([s for s in ss if s["trace_id"] == trace_id]) >= 3
            and any("cancelled-model" in s["name"] for s in ss)
        )
    )
    tree = [s for s in spans if s["trace_id"] == trace_id]
    query = next(s for s in tree if s["name"] == "rag.query")
    assert query["attributes"].get("error.type") == "Outer.Failure"
    db = next(s for s in tree if s["attributes"].get("db.operation.name") is not None)
    assert db["attributes"].get("error.type") == "Outer.Failure"
    cancelled = next(s for s in spans if "cancelled-model" in s["name"])
    assert cancelled["attributes"].get("error.type") == "cancelled"
    tel.shutdown()


def test_decorators_make_a_fresh_stage_per_call() -> None:
    tel = untraced()
    search = tel.vector_store.search()

    @search
    def sync(x: int) -> int:
        return x + 1

    @search
    async def coro(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @search
    def gen(n: int) -> Iterator[int]:
        yield from range(n)

    @search
    async def agen(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @tel.rag.query()
    def fails() -> None:
        raise ValueError("x")

    async def main() -> list[Any]:
        return [await coro(1), await coro(2), [i async for i in agen(3)]]

    assert sync(1) == 2 and sync(2) == 3
    assert list(gen(3)) == [0, 1, 2]
    assert asyncio.run(main()) == [2, 3, [0, 1, 2]]
    with pytest.raises(ValueError):
        fails()
    assert not search.ended, "the decorating stage itself is never entered"
    with pytest.raises(RuntimeError, match="not started"):
        search.abandon()
    got = samples(tel)
    assert got[("tars_vector_search_total", ())] == 6
    assert got[("tars_rag_queries_total", (("status", "error"),))] == 1


def test_stages_take_part_in_cycle_collection() -> None:
    import gc

    tel = Telemetry(traces=False)
    stage = tel.vector_store.search()
    assert gc.is_tracked(stage), "what a stage holds is visible to the cycle collector"
    with stage:
        pass
    assert gc.is_tracked(stage)


def test_the_domain_handles_and_stages_are_native_and_check_labels_when_made() -> None:
    from tars_telemetry import (
        CacheStage,
        Database,
        DocumentStage,
        LlmModel,
        LlmStage,
        Stage,
        VectorStore,
    )

    tel = untraced()
    assert isinstance(tel.vector_store, VectorStore) and isinstance(tel.db, Database)
    assert isinstance(tel.llm("m"), LlmModel) and tel.llm("m").name == "m"
    kinds = [
        (tel.vector_store.search(), TimedStage),
        (tel.rag.query(), RagQueryStage),
        (tel.llm("m").call(), LlmStage),
        (tel.redis.command("GET"), CacheStage),
        (tel.embeddings.cache_lookup(), CacheStage),
        (tel.documents.ingest(), DocumentStage),
        (tel.db.query("select", "SELECT chunks"), TimedStage),
    ]
    for stage, kind in kinds:
        assert type(stage) is kind and isinstance(stage, Stage)
    # A bad label is refused when the stage is made, before any block runs.
    with pytest.raises(ValueError, match="database operation"):
        tel.db.query("drop everything")
    with pytest.raises(ValueError, match="RAG phase"):
        tel.rag.phase("thinking")
    with pytest.raises(TypeError):
        tel.redis.command(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tel.db.query("select", summary=b"bytes")  # type: ignore[arg-type]
    with tel.rag.query() as q, pytest.raises(ValueError, match="RAG phase"):
        q.phase("thinking")
    assert samples(tel)[("tars_rag_queries_total", (("status", "success"),))] == 1


def test_a_phase_of_an_ended_query_records_nothing() -> None:
    tel = untraced()
    with tel.rag.query() as q:
        late = q.phase("generation")
        with q.phase("retrieval"):
            pass
    with late:
        pass
    assert late.ended
    got = samples(tel)
    assert got[("tars_rag_phase_duration_seconds_count", (("phase", "retrieval"),))] == 1
    assert got[("tars_rag_phase_duration_seconds_count", (("phase", "generation"),))] == 0


def stage_round(tel: Telemetry) -> None:
    with tel.rag.query() as q:
        with q.phase("retrieval"), tel.vector_store.search(), tel.db.query("select", "q"):
            pass
        with tel.redis.command("GET") as r:
            r.hit()
        with tel.llm("m").call() as c:
            c.first_token()
            c.add_output_tokens(2)
        with tel.documents.ingest() as d:
            d.set_chunks(2)
        q.set_sources(1)


def test_stages_leak_nothing(receiver: Receiver) -> None:
    """A stage's objects (its guard, the span context made current and its tokens) are
    freed when it ends: Python's memory does not grow with the number of stages, traced
    or not."""
    import tracemalloc

    for tel in (untraced(), traced(receiver)):
        for _ in range(200):
            stage_round(tel)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(2_000):
                stage_round(tel)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # 14,000 stages: a leak of one object each would be hundreds of kilobytes.
        assert grown < 16 * 1024, f"{grown} bytes kept after 2,000 rounds ({tel.tracing=})"
        tel.shutdown()


def test_histogram_time_and_gauge_track_inprogress_as_in_prometheus_client() -> None:
    tel = untraced()
    latency = tel.histogram("job_seconds", "Job latency.", ["kind"], buckets=[0.001, 1.0])
    running = tel.gauge("jobs_running", "Jobs running.")
    timed = latency.labels("sync")

    with timed.time(), running.track_inprogress():
        assert samples(tel)[("jobs_running", ())] == 1
    with pytest.raises(KeyError), timed.time(), running.track_inprogress():
        raise KeyError("x")

    @latency.labels("async").time()
    @running.track_inprogress()
    async def work() -> int:
        await asyncio.sleep(0.002)
        assert samples(tel)[("jobs_running", ())] == 1
        return 7

    @timed.time()
    def sync_work() -> int:
        return 1

    async def main() -> list[int]:
        async with latency.labels("async").time():
            pass
        return [await work(), await work()]

    assert asyncio.run(main()) == [7, 7]
    assert sync_work() == 1
    got = samples(tel)
    assert got[("jobs_running", ())] == 0, "left however the block ended"
    assert got[("job_seconds_count", (("kind", "sync"),))] == 3
    assert got[("job_seconds_count", (("kind", "async"),))] == 3
    slow = got[("job_seconds_bucket", (("kind", "async"), ("le", "0.001")))]
    assert slow == 1, "the two decorated calls slept 2 ms each: only the empty block is fast"
    assert 0.004 <= got[("job_seconds_sum", (("kind", "async"),))] < 1.0
    # A stray exit takes nothing away; a family with labels needs .labels() first.
    stray = running.track_inprogress()
    stray.__exit__(None, None, None)
    assert samples(tel)[("jobs_running", ())] == 0
    with pytest.raises(ValueError, match="labels"):
        latency.time()
