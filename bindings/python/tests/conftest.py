"""Shared helpers: free ports, uvicorn on 127.0.0.1 in a thread, the independent OTLP
receiver, and tools that must be there in CI (a missing one is a skip elsewhere, shown
in the summary, and a failure in CI)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

if TYPE_CHECKING:
    from typing_extensions import Self

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_tool(name: str, extra_dirs: tuple[str, ...] = ()) -> str:
    """The path of a tool; a skip when it is missing, a failure in CI."""
    path = shutil.which(name)
    for d in extra_dirs:
        if path is None and Path(d, name).exists():
            path = str(Path(d, name))
    if path is None:
        msg = f"{name} not found (scripts/install-test-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


class Server:
    """An ASGI app under uvicorn on 127.0.0.1, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def scrape(base: str, accept: str | None = None) -> str:
    headers = {"accept": accept} if accept else {}
    r = httpx.get(base + "/metrics/", headers=headers, timeout=10)
    r.raise_for_status()
    return r.text


class Receiver:
    """scripts/otlp_receiver.py in its own process."""

    def __init__(self, tmp: Path) -> None:
        self.out = tmp / "spans.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "otlp_receiver.py"), "--out", str(self.out)],
            # It stops when its stdin closes: kept open until close().
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        addrs = json.loads(line)
        self.http = f"http://{addrs['http']}"
        self.grpc = f"http://{addrs['grpc']}"

    def spans(self) -> list[dict[str, Any]]:
        r = httpx.get(self.http + "/spans", timeout=10)
        return list(r.json())

    def wait_for(self, pred: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        spans = self.spans()
        while not pred(spans) and time.monotonic() < deadline:
            time.sleep(0.05)
            spans = self.spans()
        return spans

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    r = Receiver(tmp_path_factory.mktemp("otlp"))
    yield r
    r.close()
