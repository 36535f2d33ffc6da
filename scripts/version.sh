#!/usr/bin/env bash
# The release version lives in one place: `version` under [workspace.package] in the root
# Cargo.toml. Every other manifest that must name it (the bindings' crates, the npm
# packages and their lock file, tars-agent's dependency on the core) is written from it.
#
#   scripts/version.sh             print the version; fail, naming the file, where one differs
#   scripts/version.sh set X.Y.Z   write X.Y.Z everywhere (then commit; Cargo.lock files follow
#                                  on the next build)
# pyproject.toml takes its version from bindings/python/Cargo.toml (dynamic), and the npm
# main package's optionalDependencies are written at pack time (scripts/build-dist.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

workspace_version() {
  sed -n '/^\[workspace\.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml
}

# Each line: a file and how to read (or write) the version there.
toml_files=(bindings/python/Cargo.toml bindings/node/Cargo.toml)
json_files=(bindings/node/package.json bindings/node/npm/*/package.json)

read_all() {
  for f in "${toml_files[@]}"; do
    printf '%s %s\n' "$f" "$(sed -n '/^\[package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' "$f")"
  done
  printf '%s %s\n' tars-agent/Cargo.toml \
    "$(sed -n 's/^tars-telemetry = {.*version = "\([^"]*\)".*/\1/p' tars-agent/Cargo.toml)"
  for f in "${json_files[@]}"; do
    printf '%s %s\n' "$f" "$(node -p "require('./$f').version")"
  done
  printf '%s %s\n' bindings/node/package-lock.json \
    "$(node -p "const l = require('./bindings/node/package-lock.json'); l.version === l.packages[''].version ? l.version : 'mismatch'")"
}

if [ "${1:-}" = set ]; then
  new=${2:?usage: scripts/version.sh set X.Y.Z}
  [[ "$new" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] || { echo "not a version: $new" >&2; exit 2; }
  sed -i "/^\[workspace\.package\]/,/^\[/ s/^version = \".*\"/version = \"$new\"/" Cargo.toml
  for f in "${toml_files[@]}"; do
    sed -i "/^\[package\]/,/^\[/ s/^version = \".*\"/version = \"$new\"/" "$f"
  done
  sed -i "s/^\(tars-telemetry = {.*version = \"\)[^\"]*\"/\1$new\"/" tars-agent/Cargo.toml
  # Text edits, not a JSON round trip, so the files keep their layout: the top-level
  # "version" of each package.json; the lock file's root and packages[""] entries (its
  # first two).
  for f in "${json_files[@]}" bindings/node/package-lock.json; do
    node -e "
      const fs = require('node:fs');
      let n = '$f'.endsWith('package-lock.json') ? 2 : 1;
      const text = fs.readFileSync('$f', 'utf8').replace(/^(  |      )\"version\": \"[^\"]*\"/gm, (m, pad) =>
        n-- > 0 ? pad + '\"version\": \"$new\"' : m);
      fs.writeFileSync('$f', text);"
  done
fi

want=$(workspace_version)
status=0
while read -r file have; do
  if [ "$have" != "$want" ]; then
    echo "version: $file says '$have', the workspace (Cargo.toml) says '$want'" >&2
    status=1
  fi
done < <(read_all)
[ "$status" = 0 ] && echo "$want"
exit "$status"
