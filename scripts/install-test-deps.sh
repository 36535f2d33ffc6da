#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: Prometheus and promtool
# (Debian's prometheus package), redis-server and PostgreSQL for the agent's probes, and
# a Python virtualenv with prometheus_client for the reference exposition parsers.
# Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
command -v redis-server >/dev/null || need_apt+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  # --no-install-recommends: the server binary and promtool, without node_exporter & co.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# Debian's packages may start their own daemons; the tests start their own servers on
# free ports of 127.0.0.1.
for svc in prometheus redis-server postgresql; do $SUDO systemctl stop "$svc" 2>/dev/null || true; done

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import prometheus_client, grpc, opentelemetry.proto' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check 'prometheus-client==0.*' 'opentelemetry-proto==1.45.2' 'grpcio==1.85.3'
fi
echo "test dependencies: $(promtool --version 2>&1 | head -1); prometheus_client $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("prometheus-client"))')"
