#!/usr/bin/env bash
# The hot path of the release artifacts (dist/, linked by zig against glibc 2.17) against
# source builds of the same commit with the same release profile (maturin build --release;
# the addon's `node scripts/build-addon.js`, thin LTO), alternating, on one CPU: the Python
# counter inc and `with` stage of bindings/python/bench.py, the Node labeled inc and
# interned-child inc of bindings/node/bench/calls.js. Not part of CI. Run
# scripts/build-dist.sh first.
#
# Usage: scripts/bench-dist.sh [rounds]     (default 3; TARS_BENCH_PYTHON picks the
#                                           interpreter, as for scripts/bench-python.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
rounds=${1:-3}
version=$(scripts/version.sh)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export PYO3_PYTHON="$repo/.venv/bin/python"
python="${TARS_BENCH_PYTHON:-python3}"
cpu=${TARS_BENCH_CPU:-1}
cache="$HOME/.cache/tars-telemetry/bench-dist"
mkdir -p "$cache"

dist_wheel=$(ls "$repo"/dist/python/tars_telemetry-"$version"-cp310-abi3-manylinux*.whl)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/maturin build -q --release --manifest-path bindings/python/Cargo.toml -o "$work/source-wheel"
source_wheel=$(ls "$work"/source-wheel/*.whl)
(cd bindings/node && TARS_TELEMETRY_PROFILE=release node scripts/build-addon.js >/dev/null)
source_node="$repo/bindings/node/tars-telemetry.linux-x64-gnu.node"
mkdir -p "$work/platform"
tar -xzf dist/npm/tars-telemetry-linux-x64-gnu-"$version".tgz -C "$work/platform"
dist_node="$work/platform/package/tars-telemetry.linux-x64-gnu.node"

for which in dist source; do
  [ -x "$cache/$which/bin/python" ] || "$python" -m venv "$cache/$which"
  wheel=$dist_wheel
  [ "$which" = source ] && wheel=$source_wheel
  "$cache/$which/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
done

cat >"$work/py.py" <<'EOF'
import gc
import time

from tars_telemetry import Telemetry

tel = Telemetry(service_name="bench", traces=False)
c = tel.counter("bench_c", "c", [])
search = tel.vector_store.search


def best(fn, n, repeat=5):
    b = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter_ns()
        fn(n)
        b = min(b, (time.perf_counter_ns() - t) / n)
    return b


def t_inc(n):
    inc = c.inc
    for _ in range(n):
        inc()


def t_with(n):
    for _ in range(n):
        with search():
            pass


print(f"{best(t_inc, 1_000_000):.0f} {best(t_with, 300_000):.0f}")
EOF

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $("$cache/dist/bin/python" --version); node $(node --version); pinned to CPU $cpu"
echo "sizes: dist wheel $(stat -c %s "$dist_wheel"), source wheel $(stat -c %s "$source_wheel"); dist .node $(stat -c %s "$dist_node"), source .node $(stat -c %s "$source_node") bytes"
printf '| round | build | Python counter inc (ns) | Python `with` stage (ns) | Node child inc() (ns) | Node inc({labels}) (ns) |\n|---|---|---|---|---|---|\n'
for r in $(seq 1 "$rounds"); do
  for which in dist source; do
    node_file=$dist_node
    [ "$which" = source ] && node_file=$source_node
    read -r inc stage < <(taskset -c "$cpu" "$cache/$which/bin/python" "$work/py.py")
    node_out=$(cd bindings/node && TARS_TELEMETRY_NATIVE="$node_file" BENCH_N=2000000 taskset -c "$cpu" node bench/calls.js)
    child=$(grep -F 'tars: counter child inc()' <<<"$node_out" | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).median_ns')
    labeled=$(grep -F 'tars: counter inc({labels})' <<<"$node_out" | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).median_ns')
    printf '| %s | %s | %s | %s | %s | %s |\n' "$r" "$which" "$inc" "$stage" "$child" "$labeled"
  done
done
