"""A small FastAPI RAG backend instrumented with tars-telemetry.

It answers ``POST /api/v1/rag/query`` from documents kept in PostgreSQL, caches answers
in Redis, and streams the answer of an LLM stand-in (a local generator, in place of
Ollama). Every stage is recorded: the HTTP request (middleware), the RAG query and its
phases, the Redis lookup, the database query, the vector search and the LLM call with
its first token, its usage by token kind and its spend (``PRICING``, or the table of
``TARS_LLM_PRICING_FILE``). Spans go to the OTLP endpoint in
``OTEL_EXPORTER_OTLP_ENDPOINT`` when it is set.

    REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgresql://tars@127.0.0.1/postgres \\
        uvicorn rag_backend:app
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from tars_telemetry import Telemetry
from tars_telemetry.asgi import TelemetryMiddleware, metrics_app

MODEL = "llama3:8b"
# The model's prices in dollars per million tokens, by kind, unless TARS_LLM_PRICING_FILE
# names a table: spend is counted per call from them.
PRICING = {"models": {MODEL: {"input": 0.02, "cache_read": 0.01, "output": 0.04}}}
# The system prompt before every question, which the provider's prompt cache serves.
SYSTEM_PROMPT_TOKENS = 48


class Question(BaseModel):
    question: str


class Answer(BaseModel):
    answer: str
    sources: int
    cached: bool


async def llm_stand_in(prompt: str) -> AsyncIterator[str]:
    """Stands in for the model: a few tokens, a little apart."""
    for word in f"Answer to: {prompt}".split():
        await asyncio.sleep(0.002)
        yield word + " "


def create_app(tel: Telemetry, redis_url: str, database_url: str) -> FastAPI:
    state: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        r = aioredis.from_url(redis_url)
        db = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        async with db.cursor() as cur:
            await cur.execute(
                "CREATE TABLE IF NOT EXISTS documents (id serial PRIMARY KEY, body text)"
            )
            await cur.execute("SELECT count(*) FROM documents")
            row = await cur.fetchone()
            if row is not None and row[0] == 0:
                await cur.execute(
                    "INSERT INTO documents (body) VALUES ('tars measures RAG'), "
                    "('metrics and traces'), ('for LLM services')"
                )
        state["redis"], state["db"] = r, db
        tel.set_app_info("0.1.0", "example", MODEL)
        try:
            yield
        finally:
            await r.aclose()
            await db.close()

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(TelemetryMiddleware, telemetry=tel)
    app.mount("/metrics", metrics_app(tel))
    llama = tel.llm(MODEL)

    def redis_client() -> aioredis.Redis:
        r = state["redis"]
        assert isinstance(r, aioredis.Redis)
        return r

    def database() -> psycopg.AsyncConnection[tuple[object, ...]]:
        db = state["db"]
        assert isinstance(db, psycopg.AsyncConnection)
        return db

    async def retrieve(question: str) -> list[str]:
        async with (
            tel.db.query("select", "SELECT documents"),
            database().cursor() as cur,
        ):
            await cur.execute("SELECT body FROM documents ORDER BY id LIMIT 3")
            rows = await cur.fetchall()
        with tel.vector_store.search():
            docs = [str(r[0]) for r in rows]
        return docs

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/rag/query")
    async def query(q: Question) -> Answer:
        key = "answer:" + q.question
        async with tel.rag.query() as rag:
            async with rag.phase("retrieval"):
                async with tel.redis.command("GET") as get:
                    cached = await redis_client().get(key)
                    get.lookup(cached is not None)
                if cached is not None:
                    rag.set_sources(0)
                    text = cached if isinstance(cached, str) else cached.decode()
                    return Answer(answer=text, sources=0, cached=True)
                docs = await retrieve(q.question)
            async with rag.phase("generation"), llama.call() as call:
                parts = []
                async for token in llm_stand_in(q.question):
                    call.first_token()
                    call.add_output_tokens(1)
                    parts.append(token)
                # The usage the provider reports at the end, by kind.
                call.set_usage(
                    input_tokens=SYSTEM_PROMPT_TOKENS + len(q.question.split()),
                    cache_read_input_tokens=SYSTEM_PROMPT_TOKENS,
                )
            answer = "".join(parts).strip()
            async with tel.redis.command("SET"):
                await redis_client().set(key, answer)
            rag.set_sources(len(docs))
            rag.set_relevance(0.9)
        return Answer(answer=answer, sources=len(docs), cached=False)

    @app.get("/api/v1/rag/stream")
    async def stream(question: str) -> StreamingResponse:
        async def tokens() -> AsyncIterator[bytes]:
            async with llama.call() as call:
                async for token in llm_stand_in(question):
                    call.first_token()
                    call.add_output_tokens(1)
                    yield token.encode()

        return StreamingResponse(tokens(), media_type="text/plain")

    return app


def _app_from_env() -> FastAPI:
    return create_app(
        Telemetry(
            service_name=os.environ.get("OTEL_SERVICE_NAME", "tars-backend"),
            llm_pricing=os.environ.get("TARS_LLM_PRICING_FILE") or PRICING,
        ),
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        os.environ.get("DATABASE_URL", "postgresql://tars@127.0.0.1:5432/postgres"),
    )


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(_app_from_env(), host="127.0.0.1", port=8000)
