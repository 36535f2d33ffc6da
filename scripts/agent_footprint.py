#!/usr/bin/env python3
"""Measure tars-agent and node_exporter the same way, on 127.0.0.1.

usage: scripts/agent_footprint.py [--scrapes 200] [--agent target/release/tars-agent]
                                  [--node-exporter /usr/bin/prometheus-node-exporter]
                                  [--fake-nvml target/release/libtars_fake_nvml.so]

With --fake-nvml, the agent is also measured with its gpu collector reading 8 GPUs and 200
processes through that library (test-support/fake-nvml: the NVML C ABI, answering from a
generated scenario), as it would on a GPU node.

For each process, with the same scope (CPU, load, memory, filesystems, disk IO, network):
  - exec to listening: from spawn until a TCP connect succeeds
  - scrape latency p50 / p99 over N sequential scrapes of /metrics
  - CPU per scrape: utime+stime delta over the N scrapes / N
  - CPU per collection (tars-agent collects in the background on its interval; measured
    over an idle window; node_exporter collects inside each scrape)
  - resident memory (VmRSS) after the N scrapes
  - log lines written during the N scrapes
Prints a Markdown table. Starts nothing but the two processes, stops both.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    # schedstat has nanoseconds (summed over threads); stat only clock ticks (10 ms).
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except OSError:
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def measure(name, argv, port, scrapes, ready_path, interval, env=None):
    log = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log,
                            env=None if env is None else {**os.environ, **env})
    try:
        deadline = t0 + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                break
            except OSError:
                if time.perf_counter() > deadline or proc.poll() is not None:
                    raise SystemExit(f"{name} did not start listening")
                time.sleep(0.0005)
        listen_ms = (time.perf_counter() - t0) * 1000
        while get(port, ready_path)[0] != 200:
            time.sleep(0.01)
        get(port, "/metrics")  # warm
        series = sum(1 for l in get(port, "/metrics")[1].splitlines() if l and not l.startswith(b"#"))
        log.seek(0, os.SEEK_END)
        log_before = log.tell()
        cpu0 = cpu_seconds(proc.pid)
        lat = []
        for _ in range(scrapes):
            s = time.perf_counter()
            status, _ = get(port, "/metrics")
            lat.append((time.perf_counter() - s) * 1000)
            assert status == 200
        cpu_scrapes = cpu_seconds(proc.pid) - cpu0
        rss = rss_bytes(proc.pid)
        log.seek(0, os.SEEK_END)
        log_lines = 0
        if log.tell() > log_before:
            log.seek(log_before)
            log_lines = log.read().count(b"\n")
        per_collection = None
        if interval:
            window = max(3.0, interval * 10)
            c0 = cpu_seconds(proc.pid)
            time.sleep(window)
            per_collection = (cpu_seconds(proc.pid) - c0) / (window / interval)
        lat.sort()
        return {
            "name": name,
            "listen_ms": listen_ms,
            "p50": lat[len(lat) // 2],
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "cpu_per_scrape_ms": cpu_scrapes / scrapes * 1000,
            "cpu_per_collection_ms": None if per_collection is None else per_collection * 1000,
            "rss_mib": rss / (1 << 20),
            "series": series,
            "log_lines": log_lines,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def gpu_scenario(gpus, pids):
    """`gpus` H100s sharing the processes `pids` (live ones, so that pod resolution reads
    real /proc entries), every reading supported."""
    per = max(1, len(pids) // gpus)
    devices = []
    for g in range(gpus):
        mine = pids[g * per:(g + 1) * per]
        devices.append({
            "uuid": f"GPU-{g:08x}-0000-0000-0000-000000000000", "name": "NVIDIA H100 80GB HBM3",
            "memory_total": 85899345920, "memory_used": [40 << 30], "utilization": [70 + g],
            "temperature": [60], "power_mw": [500000], "energy_mj": [10 ** 9],
            "clocks_mhz": {"graphics": 1980, "sm": 1980, "memory": 2619},
            "throttle_reasons": 0, "ecc": [0, 0],
            "processes": [{"pid": p, "memory": 1 << 30} for p in mine],
            "process_utilization": [{"pid": p, "sm": 5} for p in mine],
        })
    return {"devices": devices}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--agent", default="target/release/tars-agent")
    ap.add_argument("--node-exporter", default="/usr/bin/prometheus-node-exporter")
    ap.add_argument("--interval", type=float, default=0.1,
                    help="tars-agent collection interval for the per-collection CPU window")
    ap.add_argument("--fake-nvml", help="the fake libnvidia-ml (test-support/fake-nvml) to read 8 GPUs from")
    a = ap.parse_args()
    rows = []
    p = free_port()
    rows.append(measure("tars-agent", [a.agent, "--listen", f"127.0.0.1:{p}", "--interval", str(a.interval),
                                       "--collectors", "cpu,memory,filesystem,disk,network"],
                        p, a.scrapes, "/readyz", a.interval))
    if a.fake_nvml:
        # 200 live processes for the GPUs to hold, stopped after the measurement.
        sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(200)]
        scenario = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(gpu_scenario(8, [p.pid for p in sleepers]), scenario)
        scenario.close()
        p = free_port()
        rows.append(measure("tars-agent, 8 GPUs x 200 processes (fake NVML)",
                            [a.agent, "--listen", f"127.0.0.1:{p}", "--interval", str(a.interval),
                             "--collectors", "cpu,memory,filesystem,disk,network,gpu",
                             "--nvml-library", a.fake_nvml],
                            p, a.scrapes, "/readyz", a.interval,
                            env={"TARS_FAKE_NVML_SCENARIO": scenario.name}))
        os.unlink(scenario.name)
        for sl in sleepers:
            sl.kill()
            sl.wait()
    if os.path.exists(a.node_exporter):
        p = free_port()
        rows.append(measure("node_exporter", [a.node_exporter, f"--web.listen-address=127.0.0.1:{p}",
                                              "--collector.disable-defaults", "--collector.cpu",
                                              "--collector.loadavg", "--collector.meminfo",
                                              "--collector.filesystem", "--collector.diskstats",
                                              "--collector.netdev"],
                            p, a.scrapes, "/", None))
    else:
        print(f"note: {a.node_exporter} not found; install Debian's prometheus-node-exporter", file=sys.stderr)
    print(f"| process | exec to listening | scrape p50 | scrape p99 | CPU per scrape | CPU per collection | RSS after {a.scrapes} scrapes | series | log lines |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        coll = "in the scrape" if r["cpu_per_collection_ms"] is None else f'{r["cpu_per_collection_ms"]:.2f} ms'
        print(f'| {r["name"]} | {r["listen_ms"]:.1f} ms | {r["p50"]:.2f} ms | {r["p99"]:.2f} ms | '
              f'{r["cpu_per_scrape_ms"]:.2f} ms | {coll} | {r["rss_mib"]:.1f} MiB | {r["series"]} | {r["log_lines"]} |')


if __name__ == "__main__":
    main()
