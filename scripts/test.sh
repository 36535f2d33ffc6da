#!/usr/bin/env bash
# Runs every check of the project: formatting, lints, and all tests (unit, integration,
# doc tests, and the live checks against real promtool, Prometheus and prometheus_client).
# Run scripts/install-test-deps.sh and scripts/install-deploy-deps.sh once first on a
# fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo clippy: tars-telemetry with OTLP over HTTP only, and with no tracing"
cargo clippy -p tars-telemetry --no-default-features --features otlp-http,server -- -D warnings
cargo clippy -p tars-telemetry --no-default-features -- -D warnings
echo "== cargo test --workspace"
# Tests that cannot find a tool they check against (only outside CI) record it here.
export TARS_TEST_SKIPS="$PWD/target/test-skips.txt"
mkdir -p target && rm -f "$TARS_TEST_SKIPS"
cargo test --workspace
if [ -s "$TARS_TEST_SKIPS" ]; then
  echo "== skipped (a tool was missing; scripts/install-test-deps.sh installs it):"
  sed 's/^/  /' "$TARS_TEST_SKIPS"
  echo "skipped: $(wc -l < "$TARS_TEST_SKIPS") test(s)"
else
  echo "skipped: 0 tests"
fi
# The release artifacts, built once: the wheel, the npm tarballs and the crates; then
# installed as users install them, with no Rust (scripts/check-dist.sh). The Python tests
# below run against this wheel.
echo "== release artifacts (scripts/build-dist.sh)"
scripts/build-dist.sh
echo "== release artifacts installed with no Rust (scripts/check-dist.sh)"
scripts/check-dist.sh
version=$(scripts/version.sh)
export TARS_PYTHON_WHEEL
TARS_PYTHON_WHEEL=$(ls "$PWD"/dist/python/tars_telemetry-"$version"-cp310-abi3-manylinux*.whl)
# Node first: the Python example's end-to-end trace test runs the Node example, which
# needs the addon this builds.
echo "== node bindings"
scripts/test-node.sh
echo "== python bindings: rustfmt, clippy, the release wheel installed, ruff, mypy --strict, pytest"
scripts/test-python.sh
echo "== deploy checks"
scripts/check-deploy.sh
