"""The FastAPI app the tests serve: routes with templates, a RAG endpoint with an LLM
stand-in, streaming, a slow stream for disconnects, health and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from tars_telemetry import Telemetry
from tars_telemetry.asgi import TelemetryMiddleware, metrics_app

STREAM_CHUNKS = 5
STREAM_GAP = 0.06


def make_app(tel: Telemetry) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TelemetryMiddleware, telemetry=tel)
    app.mount("/metrics", metrics_app(tel))
    llama = tel.llm("llama3:8b")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise HTTPException(status_code=404)
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("boom")

    @app.post("/api/v1/rag/query")
    async def rag(q: str = "hello") -> dict[str, str]:
        async with tel.rag.query() as query:
            async with query.phase("retrieval"):
                await asyncio.sleep(0.005)
                with tel.vector_store.search():
                    pass
            async with query.phase("generation"), llama.call() as call:
                await asyncio.sleep(0.005)
                call.first_token()
                call.add_output_tokens(3)
            query.set_sources(2)
        return {"answer": q}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(STREAM_CHUNKS):
                await asyncio.sleep(STREAM_GAP)
                yield f"chunk {i}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/slow-stream")
    async def slow_stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            for _ in range(200):
                await asyncio.sleep(0.05)
                yield b"more\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    return app
