"""Measures tars-telemetry's Python binding against its peers, in one run, on this machine.

Recording: counter inc, histogram observe, three labels resolved per call, a ``with``
stage (tars-telemetry, prometheus_client, OpenTelemetry-Python). Render of 1,000 series.
ASGI middleware: CPU time per request of the request's thread (``time.thread_time``), a
FastAPI app driven in-process (no sockets), bare and with each middleware.

Prints a Markdown table. Run by scripts/bench-python.sh (a release wheel in a venv of its
own with the peers pinned in bindings/python/requirements-bench.txt).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable
from typing import Any

ROWS: list[tuple[str, str, str]] = []


def per_call(fn: Callable[[int], None], n: int, repeat: int = 5) -> float:
    """Best of `repeat` runs of `fn(n)`, in ns per iteration."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - t) / n)
    return best


def row(what: str, who: str, value: str) -> None:
    ROWS.append((what, who, value))
    print(f"{what:45} {who:45} {value}", file=sys.stderr, flush=True)


def ns(v: float) -> str:
    return f"{v:,.0f} ns"


def recording() -> None:
    import prometheus_client as pc
    from opentelemetry.sdk.trace import TracerProvider
    from tars_telemetry import Telemetry

    tel = Telemetry(service_name="bench", traces=False)
    reg = pc.CollectorRegistry()
    N = 1_000_000

    c = tel.counter("bench_c", "c")
    pcc = pc.Counter("bench_c", "c", registry=reg)

    def t_inc(n: int) -> None:
        inc = c.inc
        for _ in range(n):
            inc()

    def p_inc(n: int) -> None:
        inc = pcc.inc
        for _ in range(n):
            inc()

    row("counter inc", "tars-telemetry", ns(per_call(t_inc, N)))
    row("counter inc", "prometheus_client", ns(per_call(p_inc, N)))

    h = tel.histogram("bench_h", "h", [], [0.1, 0.5, 1, 5])
    ph = pc.Histogram("bench_h", "h", registry=reg, buckets=[0.1, 0.5, 1, 5])

    def t_obs(n: int) -> None:
        o = h.observe
        for _ in range(n):
            o(0.3)

    def p_obs(n: int) -> None:
        o = ph.observe
        for _ in range(n):
            o(0.3)

    row("histogram observe", "tars-telemetry", ns(per_call(t_obs, N)))
    row("histogram observe", "prometheus_client", ns(per_call(p_obs, N)))

    c3 = tel.counter("bench_c3", "c", ["a", "b", "c"])
    pc3 = pc.Counter("bench_c3", "c", ["a", "b", "c"], registry=reg)

    def t_lab(n: int) -> None:
        lab = c3.labels
        for _ in range(n):
            lab("GET", "/api/v1/rag/query", "200").inc()

    def p_lab(n: int) -> None:
        lab = pc3.labels
        for _ in range(n):
            lab("GET", "/api/v1/rag/query", "200").inc()

    row("three labels resolved per call + inc", "tars-telemetry", ns(per_call(t_lab, N // 2)))
    row("three labels resolved per call + inc", "prometheus_client", ns(per_call(p_lab, N // 2)))

    search = tel.vector_store.search
    pht = pc.Histogram("bench_stage", "s", registry=reg)
    tracer = TracerProvider().get_tracer("bench")

    def t_with(n: int) -> None:
        for _ in range(n):
            with search():
                pass

    def p_with(n: int) -> None:
        for _ in range(n):
            with pht.time():
                pass

    def o_with(n: int) -> None:
        for _ in range(n):
            with tracer.start_as_current_span("stage"):
                pass

    row("a `with` stage (metrics only)", "tars-telemetry", ns(per_call(t_with, N // 2)))
    row("a `with` stage", "prometheus_client Histogram.time()", ns(per_call(p_with, N // 2)))
    row(
        "a `with` stage",
        "OpenTelemetry-Python span (SDK, no exporter)",
        ns(per_call(o_with, N // 10)),
    )


def render() -> None:
    import prometheus_client as pc
    from tars_telemetry import Telemetry

    tel = Telemetry(service_name="bench", traces=False, series_budget=2000)
    tel.render()
    fam = tel.histogram("bench_render", "r", ["series"], [0.1, 1.0])
    reg = pc.CollectorRegistry()
    pfam = pc.Histogram("bench_render", "r", ["series"], registry=reg, buckets=[0.1, 1.0])
    # 1,000 series: histograms of 2 buckets (+Inf, _sum, _count: 5 lines each).
    for i in range(1000):
        fam.labels(f"s{i}").observe(0.5)
        pfam.labels(f"s{i}").observe(0.5)

    def t_render(n: int) -> None:
        for _ in range(n):
            tel.render()

    def p_render(n: int) -> None:
        for _ in range(n):
            pc.generate_latest(reg)

    t = per_call(t_render, 50)
    p = per_call(p_render, 20)
    row(
        "render 1,000 histogram series (+ the catalog)",
        "tars-telemetry (GIL released)",
        f"{t / 1e6:.2f} ms",
    )
    row("render 1,000 histogram series", "prometheus_client (holds the GIL)", f"{p / 1e6:.2f} ms")


def drive(app: Any, n: int) -> float:
    """Thread CPU time per request, ns, of `n` GET /items/1 through `app` in-process."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items/1",
        "raw_path": b"/items/1",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    async def run(k: int) -> None:
        for _ in range(k):
            await app(dict(scope), receive, send)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run(200))  # warm up
        best = float("inf")
        for _ in range(5):
            gc.collect()
            t = time.thread_time_ns()
            loop.run_until_complete(run(n))
            best = min(best, (time.thread_time_ns() - t) / n)
        return best
    finally:
        loop.close()


class WrapsSend:
    """A floor: a pure-ASGI middleware that only wraps `send`, as any middleware that
    times a response to its last byte, or reads its status, must."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        status = 0

        async def wrapped(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, wrapped)


def middleware() -> None:
    from fastapi import FastAPI

    def app_with(setup: Callable[[FastAPI], None] | None) -> FastAPI:
        app = FastAPI()

        @app.get("/items/{item_id}")
        async def item(item_id: int) -> dict[str, int]:
            return {"id": item_id}

        if setup is not None:
            setup(app)
        return app

    N = 5000
    bare = drive(app_with(None), N)
    row("FastAPI request, no middleware (baseline)", "-", f"{bare / 1000:.1f} us")

    def extra(name: str, setup: Callable[[FastAPI], None]) -> None:
        v = drive(app_with(setup), N)
        row("middleware CPU per request (over baseline)", name, f"{(v - bare) / 1000:.1f} us")

    # Floors: what any pure-ASGI middleware costs before it records anything. One that
    # passes the call through, and one that wraps `send` (as any middleware that times a
    # response to its last byte, or reads its status, must).
    class PassThrough:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)

    extra("floor: a pass-through pure-ASGI middleware", lambda a: a.add_middleware(PassThrough))
    extra("floor: a pure-ASGI middleware wrapping send", lambda a: a.add_middleware(WrapsSend))

    from tars_telemetry import Telemetry
    from tars_telemetry.asgi import TelemetryMiddleware

    tel = Telemetry(service_name="bench", traces=False)
    extra(
        "tars-telemetry, metrics only",
        lambda a: a.add_middleware(TelemetryMiddleware, telemetry=tel),
    )

    # Sampled spans exported over OTLP/HTTP to a closed local port: the request path pays
    # for the span; the export thread's work is not in this thread's time.
    os.environ["OTEL_TRACES_SAMPLER"] = "always_on"
    traced = Telemetry(
        service_name="bench",
        otlp_endpoint="http://127.0.0.1:9/v1/traces",
        otlp_protocol="http/protobuf",
    )
    extra(
        "tars-telemetry, with a sampled span",
        lambda a: a.add_middleware(TelemetryMiddleware, telemetry=traced),
    )
    try:
        traced.shutdown(0.1)
    except RuntimeError:
        pass  # nothing listens there: the queued spans time out

    try:
        from prometheus_fastapi_instrumentator import Instrumentator

        extra("prometheus-fastapi-instrumentator", lambda a: Instrumentator().instrument(a))
    except ImportError as e:
        row("middleware", "prometheus-fastapi-instrumentator", f"not installed ({e})")
    try:
        from starlette_exporter import PrometheusMiddleware

        extra(
            "starlette_exporter",
            lambda a: a.add_middleware(PrometheusMiddleware, group_paths=True),
        )
    except ImportError as e:
        row("middleware", "starlette_exporter", f"not installed ({e})")
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Discard(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Discard()))
        extra(
            "opentelemetry-instrumentation-fastapi (SDK, sampled)",
            lambda a: FastAPIInstrumentor.instrument_app(a, tracer_provider=provider),
        )
    except ImportError as e:
        row("middleware", "opentelemetry-instrumentation-fastapi", f"not installed ({e})")


def middleware_alone() -> None:
    """The middleware's own CPU per request, without FastAPI: an inner ASGI app that sets
    the matched route (as Starlette's router does) and sends a 200 response. The FastAPI
    baseline above moves by more than the middleware costs between runs on a small machine;
    this does not."""
    from tars_telemetry import Telemetry
    from tars_telemetry.asgi import TelemetryMiddleware

    class Route:
        path = "/items/{item_id}"

    route = Route()
    start = {"type": "http.response.start", "status": 200, "headers": []}
    body = {"type": "http.response.body", "body": b"{}", "more_body": False}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = route
        await send(start)
        await send(body)

    bare = drive(inner, 50_000)
    row("ASGI request, no middleware (a trivial app)", "-", f"{bare / 1000:.2f} us")
    floor = drive(WrapsSend(inner), 50_000)
    row(
        "middleware alone, CPU per request",
        "floor: wraps send only",
        f"{(floor - bare) / 1000:.2f} us",
    )
    tel = Telemetry(service_name="bench", traces=False)
    v = drive(TelemetryMiddleware(inner, telemetry=tel), 50_000)
    row(
        "middleware alone, CPU per request",
        "tars-telemetry, metrics only",
        f"{(v - bare) / 1000:.2f} us",
    )
    os.environ["OTEL_TRACES_SAMPLER"] = "always_on"
    traced = Telemetry(
        service_name="bench",
        otlp_endpoint="http://127.0.0.1:9/v1/traces",
        otlp_protocol="http/protobuf",
    )
    v = drive(TelemetryMiddleware(inner, telemetry=traced), 20_000)
    row(
        "middleware alone, CPU per request",
        "tars-telemetry, with a sampled span",
        f"{(v - bare) / 1000:.2f} us",
    )
    try:
        traced.shutdown(0.1)
    except RuntimeError:
        pass  # nothing listens there: the queued spans time out


def main() -> None:
    recording()
    render()
    middleware()
    middleware_alone()
    print("| measure | library | per call |")
    print("|---|---|---|")
    for what, who, v in ROWS:
        print(f"| {what} | {who} | {v} |")


if __name__ == "__main__":
    main()
