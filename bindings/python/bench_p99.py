"""p99 latency of a trivial FastAPI endpoint under load, with and without the
middleware: uvicorn in a child process on 127.0.0.1, driven by 8 client threads over
keep-alive connections for a fixed number of requests. Not part of CI; on a 2-core machine
the client shares the CPUs with the server, so run the variants alternately and compare
within a run:

    .venv/bin/python bindings/python/bench_p99.py [requests] [rounds]
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

APP = """
import os
from fastapi import FastAPI
app = FastAPI()
if os.environ["BENCH_VARIANT"] == "tars":
    from tars_telemetry import Telemetry
    from tars_telemetry.asgi import TelemetryMiddleware, metrics_app
    tel = Telemetry(service_name="bench", traces=False)
    app.add_middleware(TelemetryMiddleware, telemetry=tel)
    app.mount("/metrics", metrics_app(tel))

@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(variant: str, n: int, workdir: str) -> list[float]:
    port = free_port()
    env = {**os.environ, "BENCH_VARIANT": variant, "PYTHONPATH": workdir}
    # With 2+ CPUs, the server gets the last one and the client the others, so that the
    # client's threads do not queue in front of the server.
    cpus = sorted(os.sched_getaffinity(0))
    pin = ["taskset", "-c", str(cpus[-1])] if len(cpus) > 1 and shutil.which("taskset") else []
    proc = subprocess.Popen(
        [
            *pin,
            sys.executable,
            "-m",
            "uvicorn",
            "benchapp:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.05)
        lat: list[float] = []
        lock = threading.Lock()
        left = [n + 1000]  # the first 1,000 warm up

        def client() -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine: list[float] = []
            while True:
                with lock:
                    if left[0] <= 0:
                        break
                    left[0] -= 1
                    warm = left[0] >= n
                t = time.perf_counter()
                c.request("GET", "/items/7")
                c.getresponse().read()
                if not warm:
                    mine.append(time.perf_counter() - t)
            c.close()
            with lock:
                lat.extend(mine)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return lat
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    import tempfile

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, set(cpus[:-1]))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "benchapp.py"), "w") as f:
            f.write(APP)
        print(f"{n} requests, 8 keep-alive clients, load average {os.getloadavg()[0]:.2f}")
        print("| round | variant | p50 | p99 |")
        print("|---|---|---|---|")
        for r in range(rounds):
            for variant in ("none", "tars"):
                lat = sorted(run(variant, n, d))
                p50 = statistics.median(lat) * 1e3
                p99 = lat[int(len(lat) * 0.99)] * 1e3
                print(f"| {r + 1} | {variant} | {p50:.2f} ms | {p99:.2f} ms |")


if __name__ == "__main__":
    main()
