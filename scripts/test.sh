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
echo "== cargo test --workspace"
cargo test --workspace
echo "== deploy checks"
scripts/check-deploy.sh
