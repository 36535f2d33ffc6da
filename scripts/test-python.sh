#!/usr/bin/env bash
# The Python binding's checks: rustfmt and clippy on its crate, a debug build installed
# into .venv (maturin develop, sharing <repo>/target with the workspace; or the wheel
# named by TARS_PYTHON_WHEEL, as scripts/test.sh does with the release wheel), ruff and
# mypy --strict on the package and the example, and pytest (the binding's tests and the
# example's, against real uvicorn, Redis, PostgreSQL, promtool and the OTLP receiver).
# Run scripts/install-test-deps.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# One interpreter for pyo3's build configuration, so clippy and maturin do not rebuild it.
export PYO3_PYTHON="$PWD/.venv/bin/python"
manifest=bindings/python/Cargo.toml

cargo fmt --manifest-path "$manifest" -- --check
cargo clippy --manifest-path "$manifest" --all-targets -- -D warnings
if [ -n "${TARS_PYTHON_WHEEL:-}" ]; then
  # The wheel users install (scripts/build-dist.sh), in place of a development build.
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall "$TARS_PYTHON_WHEEL"
else
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/maturin develop -q --manifest-path "$manifest"
fi
.venv/bin/ruff check bindings/python examples/python
.venv/bin/ruff format --check bindings/python examples/python
(cd bindings/python && ../../.venv/bin/mypy --strict python/tars_telemetry ../../examples/python)

rc=0
.venv/bin/python -m pytest -q -p no:cacheprovider bindings/python/tests examples/python/tests || rc=$?
# 5: no tests collected (nothing to run is no failure).
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
  exit "$rc"
fi
