"""The README's FastAPI service, as a user writes it against the installed wheel.

scripts/check-dist.sh runs it under uvicorn in a fresh virtualenv with no Rust toolchain.
"""

from fastapi import FastAPI
from tars_telemetry import Telemetry
from tars_telemetry.asgi import TelemetryMiddleware, metrics_app

tel = Telemetry(service_name="tars-backend")
app = FastAPI()
app.add_middleware(TelemetryMiddleware, telemetry=tel)
app.mount("/metrics", metrics_app(tel))
llama = tel.llm("llama3:8b")


@app.post("/api/v1/rag/query")
async def query(q: str) -> dict[str, str]:
    async with tel.rag.query() as rag:
        async with rag.phase("retrieval"):
            with tel.vector_store.search():
                docs = [q, q]
        async with rag.phase("generation"):
            async with llama.call() as call:
                call.first_token()
                call.add_output_tokens(42)
        rag.set_sources(len(docs))
    return {"answer": "..."}
