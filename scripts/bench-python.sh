#!/usr/bin/env bash
# Benchmarks of the Python binding against prometheus_client and the FastAPI
# instrumentations (bindings/python/bench.py), with a release abi3 wheel built by maturin,
# in a virtualenv of its own under ~/.cache/tars-telemetry (peers pinned in
# bindings/python/requirements-bench.txt). Not part of CI. Prints a Markdown table.
# TARS_BENCH_PYTHON picks the interpreter the virtualenv is made from (default python3):
# a distribution's or the official image's optimized CPython (PGO, LTO) runs Python code
# about a third faster than one built without them (pyenv's default), for every library.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${TARS_BENCH_VENV:-$HOME/.cache/tars-telemetry/python-bench-venv}"
python="${TARS_BENCH_PYTHON:-python3}"
export CARGO_TARGET_DIR="$PWD/target"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check \
  -r bindings/python/requirements-test.txt -r bindings/python/requirements-bench.txt
export PYO3_PYTHON="$venv/bin/python"
rm -rf target/wheels
"$venv/bin/maturin" build -q --release --manifest-path bindings/python/Cargo.toml -o target/wheels
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps target/wheels/*.whl
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $("$venv/bin/python" --version)"
"$venv/bin/python" bindings/python/bench.py
