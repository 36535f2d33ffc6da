#!/usr/bin/env bash
# Builds the release artifacts, once, into dist/:
#   dist/python/  the abi3 wheel (CPython 3.10+, manylinux2014: glibc 2.17) and the sdist
#   dist/npm/     tars-telemetry-<v>.tgz (JavaScript only; the addon comes from
#                 optionalDependencies, with a source build as the fallback) and
#                 tars-telemetry-linux-x64-gnu-<v>.tgz (the .node file, glibc 2.17)
#   dist/crates/  tars-telemetry-<v>.crate and tars-agent-<v>.crate, verified by cargo
#                 (each unpacked and built on its own)
# The native code is linked against glibc 2.17's symbols with zig (the ziglang package from
# PyPI): maturin --zig for the wheel, cargo-zigbuild for the addon, so no container or old
# sysroot is needed. Release profile as the source builds use (the Node addon: thin LTO).
# scripts/check-dist.sh then installs these as users do, with no Rust.
#
# Usage: scripts/build-dist.sh [python|npm|crates]...   (default: all three)
# Needs what scripts/install-test-deps.sh installs: Rust, and in .venv the pinned tools of
# scripts/requirements-dist.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(python npm crates)

version=$(scripts/version.sh)
echo "== dist: version $version (from Cargo.toml)"

if [ ! -x .venv/bin/maturin ] || [ ! -x .venv/bin/cargo-zigbuild ] || ! .venv/bin/python -m ziglang version >/dev/null 2>&1 ||
  ! cmp -s scripts/requirements-dist.txt .venv/.tars-dist-deps; then
  echo "dist: the pinned tools of scripts/requirements-dist.txt are not in .venv: run scripts/install-test-deps.sh" >&2
  exit 1
fi
# maturin and cargo-zigbuild find zig as `python -m ziglang` of the first python3 on PATH.
export PATH="$repo/.venv/bin:$PATH"
export PYO3_PYTHON="$repo/.venv/bin/python"
# The oldest glibc the artifacts run on (manylinux2014), for both ecosystems.
GLIBC=2.17
target=x86_64-unknown-linux-gnu
[ "$(uname -m)" = x86_64 ] || { echo "dist: builds for linux x86_64 only (this is $(uname -m))" >&2; exit 1; }

build_python() {
  echo "== dist: Python wheel (abi3, manylinux2014 through zig) and sdist"
  rm -rf dist/python
  # --compatibility makes maturin check the wheel against the policy (it refuses a symbol
  # newer than glibc 2.17 or a library outside the manylinux list).
  maturin build -q --release --strip --zig --target "$target" --compatibility manylinux2014 \
    --manifest-path bindings/python/Cargo.toml -o dist/python
  maturin sdist --manifest-path bindings/python/Cargo.toml -o dist/python
  ls -l dist/python
}

build_npm() {
  echo "== dist: npm packages (the addon through cargo-zigbuild, glibc $GLIBC)"
  local triple=linux-x64-gnu platform=bindings/node/npm/linux-x64-gnu stage
  rm -rf dist/npm && mkdir -p dist/npm
  cargo-zigbuild zigbuild -q --release --locked --lib --target "$target.$GLIBC" \
    --manifest-path bindings/node/Cargo.toml
  # The platform package: its package.json, README and the stripped addon.
  stage=$(mktemp -d)
  mkdir -p "$stage/platform" "$stage/main"
  cp "$platform/package.json" "$platform/README.md" LICENSE "$stage/platform/"
  cp "$CARGO_TARGET_DIR/$target/release/libtars_telemetry_node.so" \
    "$stage/platform/tars-telemetry.$triple.node"
  strip --strip-unneeded "$stage/platform/tars-telemetry.$triple.node"
  (cd "$stage/platform" && npm pack -q --pack-destination "$repo/dist/npm" >/dev/null)

  # The main package: what its package.json `files` lists (npm pack decides), plus
  #  - optionalDependencies on every platform package under bindings/node/npm/, written
  #    here as napi-rs's prepublish does (the checkout's package.json has none, so its
  #    lock file and `npm ci` never look for unpublished packages);
  #  - the core crate's sources as cargo packages them (core/), with the addon's
  #    Cargo.toml pointed at them, so that the source build (the install script, on a
  #    platform with no prebuilt package) works from the tarball alone.
  (cd bindings/node && npm pack -q --pack-destination "$stage" >/dev/null)
  tar -xzf "$stage/tars-telemetry-$version.tgz" -C "$stage/main" --strip-components=1
  rm "$stage/tars-telemetry-$version.tgz"
  cargo package -q --no-verify --allow-dirty -p tars-telemetry
  mkdir -p "$stage/main/core"
  tar -xzf "$CARGO_TARGET_DIR/package/tars-telemetry-$version.crate" -C "$stage/main/core" --strip-components=1
  rm -f "$stage/main/core/Cargo.toml.orig" "$stage/main/core/.cargo_vcs_info.json" "$stage/main/core/Cargo.lock"
  # The core's tests are not shipped, and its dev-dependencies would change the addon's
  # lock file (the build runs with --locked).
  awk '/^\[/ { skip = ($0 ~ /^\[dev-dependencies/) } !skip' "$stage/main/core/Cargo.toml" >"$stage/core.toml"
  mv "$stage/core.toml" "$stage/main/core/Cargo.toml"
  sed -i 's|^tars-telemetry = { path = "../../tars-telemetry" }|tars-telemetry = { path = "core" }|' "$stage/main/Cargo.toml"
  grep -q '^tars-telemetry = { path = "core" }' "$stage/main/Cargo.toml" || {
    echo "dist: could not point bindings/node/Cargo.toml's tars-telemetry dependency at core/" >&2
    exit 1
  }
  cp LICENSE "$stage/main/"
  node -e "
    const fs = require('node:fs');
    const path = require('node:path');
    const file = path.join('$stage/main', 'package.json');
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
    const dir = 'bindings/node/npm';
    pkg.optionalDependencies = {};
    for (const t of fs.readdirSync(dir).sort()) {
      const p = JSON.parse(fs.readFileSync(path.join(dir, t, 'package.json'), 'utf8'));
      pkg.optionalDependencies[p.name] = p.version;
    }
    pkg.files = [...pkg.files, 'core/', 'LICENSE'];
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');"
  (cd "$stage/main" && npm pack -q --pack-destination "$repo/dist/npm" >/dev/null)
  rm -rf "$stage"
  ls -l dist/npm
}

build_crates() {
  echo "== dist: crates (cargo package: each packaged crate built on its own)"
  rm -rf dist/crates && mkdir -p dist/crates
  # Both at once: tars-agent's dependency on the unpublished core resolves to the packaged
  # one. --allow-dirty builds from a work tree in progress too (cargo records it in the
  # crate's .cargo_vcs_info.json); a release is cut from a clean tree (docs/RELEASING.md).
  # The packaged crates are verified against each other through a local registry, where
  # cargo takes a crate of one version to never change: a build cached from an earlier
  # run of the same version would be reused, stale. So their verification builds in a
  # directory of its own, cleared of our crates first (third-party ones stay cached).
  local verify="$CARGO_TARGET_DIR/package-verify"
  rm -rf "$verify/package" "$verify"/debug/.fingerprint/tars-* "$verify"/debug/deps/libtars_* \
    "$verify"/debug/deps/tars_* "$verify"/debug/build/tars-*
  cargo package -q --locked --allow-dirty --target-dir "$verify" -p tars-telemetry -p tars-agent
  cp "$verify/package/tars-telemetry-$version.crate" \
    "$verify/package/tars-agent-$version.crate" dist/crates/
  ls -l dist/crates
}

for part in "${parts[@]}"; do
  case "$part" in
    python) build_python ;;
    npm) build_npm ;;
    crates) build_crates ;;
    *) echo "usage: scripts/build-dist.sh [python|npm|crates]..." >&2; exit 2 ;;
  esac
done
