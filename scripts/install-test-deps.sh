#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, and checks the
# prerequisites it cannot install: a C toolchain (gcc and libc6-dev: Rust links with `cc`),
# Python 3 with venv, Node.js and npm, Prometheus and promtool (Debian's prometheus
# package), redis-server and PostgreSQL for the agent's probes, and a Python virtualenv
# with prometheus_client for the reference exposition parsers. Rust itself comes from
# rustup: when cargo is missing or older than the workspace's rust-version (edition 2024),
# it says how to install it and fails. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
# Rust links through the system C compiler; gcc without libc6-dev cannot link (no crt1.o).
command -v cc >/dev/null || need_apt+=(gcc)
[ -e /usr/include/stdio.h ] || need_apt+=(libc6-dev)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v redis-server >/dev/null || need_apt+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# The release artifacts' check on an older distribution (scripts/check-dist.sh).
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v objdump >/dev/null || need_apt+=(binutils)
if [ ${#need_apt[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing: ${need_apt[*]} (Debian package names); install them with your package manager" >&2
    exit 1
  fi
  echo "apt: ${need_apt[*]}"
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
# The Python binding's build (maturin), tests (pytest, FastAPI, uvicorn, Redis and
# PostgreSQL clients, OpenTelemetry-Python) and linters (ruff, mypy), pinned; reinstalled
# only when the pins change.
py_reqs=bindings/python/requirements-test.txt
py_stamp=.venv/.tars-python-test-deps
if [ ! -f "$py_stamp" ] || ! cmp -s "$py_reqs" "$py_stamp"; then
  echo "pip: $(grep -v '^#' "$py_reqs" | tr '\n' ' ')"
  .venv/bin/pip install -q --disable-pip-version-check -r "$py_reqs"
  cp "$py_reqs" "$py_stamp"
fi
# The release artifacts' tools (scripts/build-dist.sh): maturin, zig, cargo-zigbuild and
# auditwheel, pinned.
dist_reqs=scripts/requirements-dist.txt
dist_stamp=.venv/.tars-dist-deps
if [ ! -f "$dist_stamp" ] || ! cmp -s "$dist_reqs" "$dist_stamp"; then
  echo "pip: $(grep -v '^#' "$dist_reqs" | tr '\n' ' ')"
  .venv/bin/pip install -q --disable-pip-version-check -r "$dist_reqs"
  cp "$dist_reqs" "$dist_stamp"
fi
echo "test dependencies: $(promtool --version 2>&1 | head -1); prometheus_client $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("prometheus-client"))')"

# Node: the bindings' JavaScript dependencies and the example's, pinned by their
# package-lock.json files. No install scripts here: scripts/test.sh builds the addon.
for d in bindings/node examples/node; do
  if ! (cd "$d" && [ -d node_modules ] && npm ls --silent >/dev/null 2>&1); then
    (cd "$d" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
done

# Rust: the workspace's rust-version (1.88: edition 2024 with let chains), with rustfmt and
# clippy for scripts/test.sh.
want=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
rustup_hint="Install Rust with rustup (https://rustup.rs):
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  . \"\$HOME/.cargo/env\"
then rerun this script."
if ! command -v cargo >/dev/null; then
  echo "Rust is not installed (cargo not found): the workspace needs Rust >= $want." >&2
  echo "$rustup_hint" >&2
  exit 1
fi
have=$(cargo --version | cut -d' ' -f2)
if [ "$(printf '%s\n%s\n' "$want" "${have%%-*}" | sort -V | head -1)" != "$want" ]; then
  echo "cargo $have is older than the workspace's rust-version $want (edition 2024)." >&2
  echo "With rustup: rustup update stable. Otherwise:" >&2
  echo "$rustup_hint" >&2
  exit 1
fi
missing_components=()
cargo fmt --version >/dev/null 2>&1 || missing_components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || missing_components+=(clippy)
if [ ${#missing_components[@]} -gt 0 ]; then
  echo "Rust components missing: ${missing_components[*]}; add them with: rustup component add ${missing_components[*]}" >&2
  exit 1
fi
echo "toolchain: cargo $have (>= $want), $(cc --version | head -1), $(python3 --version), node $(node --version)"

# Jaeger v2 and the OpenTelemetry Collector, for the end-to-end trace test
# (examples/tests/jaeger_e2e.rs), and Prometheus 3 with its promtool, for native histograms
# (the tests through tars_test_support::prometheus::prometheus3, and the native rules'
# checks in scripts/check-deploy.sh): built from the Go module proxy, pinned, into a cache
# outside the repository (keyed by version: once per machine, about 20 minutes on 2 cores
# for Jaeger and the Collector and 5 more for Prometheus, then skipped). Without Go,
# outside CI, the tests and checks that need them record themselves as skipped.
if command -v go >/dev/null || { [ -n "${CI:-}" ] && [ "$CI" != false ] && [ "$CI" != 0 ]; }; then
  scripts/build-otel-tools.sh
else
  echo "Go is not installed: Jaeger, the Collector and Prometheus 3 are not built (the tests and checks that need them will be skipped); Go >= 1.24 from https://go.dev/dl/" >&2
fi
