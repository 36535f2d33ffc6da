"""Every operation of the core's domain handles is offered by this package as the parity
manifest (bindings/parity.json) says, or is absent for the reason it gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tars_telemetry import Telemetry

MANIFEST = Path(__file__).resolve().parents[2] / "parity.json"


def test_every_operation_in_the_manifest_is_offered() -> None:
    tel = Telemetry(traces=False)
    # The open stages the manifest's expressions reach into (made, not entered).
    scope: dict[str, Any] = {
        "tel": tel,
        "rag_query": tel.rag.query(),
        "llm_call": tel.llm("llama3").call(),
        "cache_call": tel.redis.command("GET"),
        "doc_job": tel.documents.ingest(),
        "timed": tel.vector_store.search(),
        "ws": tel.websocket.connection(),
        "http_req": tel.native.http_start("GET", "/", None),
    }
    ops = json.loads(MANIFEST.read_text())["operations"]
    assert len(ops) > 80
    missing = []
    for op in ops:
        call = op["python"]
        if isinstance(call, dict):
            assert len(call["absent"]) > 10, op
            continue
        # The manifest's own expressions; any failure to evaluate one is a missing binding
        # (a property may be None: what matters is that it exists).
        try:
            eval(call, {}, scope)
        except Exception as e:  # noqa: BLE001
            missing.append(f"{op['core']}: {call}: {type(e).__name__}: {e}")
    http_req = scope["http_req"]
    http_req.finish(200)
    assert not missing, "\n".join(missing)
