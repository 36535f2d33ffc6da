"""The app the multi-worker tests serve under gunicorn and uvicorn: its telemetry is made
at import, in each worker (or, with ``--preload``, in the master before it forks), and
shares the directory named by ``TARS_TELEMETRY_MULTIPROC_DIR``."""

from __future__ import annotations

import os

from fastapi import FastAPI
from tars_telemetry import Telemetry
from tars_telemetry.asgi import TelemetryMiddleware, metrics_app

tel = Telemetry(service_name="tars-multiworker", traces=False)
# Native buckets (with the core's default shape): mergeable across the workers.
job_seconds = tel.histogram("job_seconds", "Simulated job time.", native=True)
app = FastAPI()
app.add_middleware(TelemetryMiddleware, telemetry=tel)
app.mount("/metrics", metrics_app(tel))


@app.get("/work")
async def work() -> dict[str, bool]:
    return {"ok": True}


@app.get("/job")
async def job(ms: float) -> dict[str, bool]:
    job_seconds.observe(ms / 1000)
    return {"ok": True}


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}
