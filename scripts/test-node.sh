#!/usr/bin/env bash
# Checks of the Node.js bindings (bindings/node) and their example (examples/node):
# rustfmt and clippy on the napi crate, a debug build of the addon into the shared target
# directory, its generated types, tsc --strict, the node:test suite, and an install into
# a fresh directory (CommonJS and ESM). Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
manifest=bindings/node/Cargo.toml

echo "== node bindings: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --manifest-path "$manifest" -- --check
cargo clippy --manifest-path "$manifest" --locked -- -D warnings

echo "== node bindings: build the addon (debug) and regenerate its types from the Rust side"
(cd bindings/node && TARS_TELEMETRY_PROFILE=debug TARS_TELEMETRY_TYPES=1 node scripts/build-addon.js)
if ! git diff --quiet -- bindings/node/native.d.ts; then
  git --no-pager diff -- bindings/node/native.d.ts | head -50
  echo "bindings/node/native.d.ts is out of date: commit the regenerated file" >&2
  exit 1
fi

echo "== node bindings: tsc --strict (the package's declarations, the example)"
(cd bindings/node && node_modules/.bin/tsc -p tsconfig.json)
(cd examples/node && node_modules/.bin/tsc -p tsconfig.json)

echo "== node bindings: node --test"
(cd bindings/node && node --test --test-concurrency=1 --test-timeout=120000 test/)

echo "== node bindings: npm install <checkout>/bindings/node into a fresh directory"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
(
  cd "$fresh"
  npm init -y >/dev/null
  # npm 11 runs a dependency's install script (the addon's build) only when allowed.
  echo 'allow-scripts=tars-telemetry' >.npmrc
  TARS_TELEMETRY_PROFILE=debug npm install --no-audit --no-fund --loglevel=error "$repo/bindings/node"
  test -e node_modules/tars-telemetry/tars-telemetry.*.node
  node -e "
    const { Telemetry } = require('tars-telemetry');
    const { expressMiddleware, metricsHandler } = require('tars-telemetry/express');
    const t = new Telemetry({ serviceName: 'tars-ui', tracing: false });
    if (typeof expressMiddleware(t) !== 'function' || typeof metricsHandler(t) !== 'function') process.exit(1);
    if (!t.metricsSync().includes('tars_rag_query_duration_seconds')) process.exit(1);
    console.log('CommonJS: ok');"
  node --input-type=module -e "
    import { Telemetry } from 'tars-telemetry';
    import { expressMiddleware } from 'tars-telemetry/express';
    const t = new Telemetry({ serviceName: 'tars-ui', tracing: false });
    if (!(await t.metrics()).includes('tars_rag_query_duration_seconds') || typeof expressMiddleware(t) !== 'function') process.exit(1);
    console.log('ESM: ok');"
)
