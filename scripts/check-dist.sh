#!/usr/bin/env bash
# Checks the artifacts of scripts/build-dist.sh as users install them, with no Rust:
#   - the highest glibc symbol version the wheel's extension and the .node file need
#     (objdump -T), printed and held to manylinux2014 (2.17); auditwheel's own verdict;
#   - sizes, and the time each install takes;
#   - in an environment where cargo, rustc, rustup and every C compiler are off PATH
#     (CARGO_HOME and RUSTUP_HOME empty, HOME fresh):
#       pip install <wheel> fastapi uvicorn in a fresh venv, then the README's FastAPI
#       service under uvicorn: a request, and a /metrics that promtool accepts;
#       the wheel imported by every other CPython >= 3.10 found (abi3);
#       npm install <both tarballs> express in a fresh directory (no .npmrc), then the
#       README's Express service from CommonJS and from ESM, the same way;
#       the main tarball alone (a platform with no prebuilt addon): install fails and says
#       what it needs;
#   - the source fallback, with Rust back on PATH: the main tarball alone with its install
#     script allowed builds the addon from the sources it carries;
#   - in a debootstrap chroot of Debian 11 (glibc 2.31): the wheel's extension through the
#     chroot's loader, and the Express app on the prebuilt addon (needs root).
# Prints one line per check and "dist: N passed, N failed"; exits 1 when any failed.
#
# Usage: scripts/check-dist.sh    (after scripts/build-dist.sh; needs promtool, python3,
#                                  node and npm, and the PyPI and npm registries: FastAPI,
#                                  uvicorn and Express come from there, at the versions
#                                  the bindings' tests pin)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
version=$(scripts/version.sh)
GLIBC_POLICY=2.17
wheel=$(ls dist/python/tars_telemetry-"$version"-cp310-abi3-manylinux*.whl)
npm_main="$repo/dist/npm/tars-telemetry-$version.tgz"
npm_platform="$repo/dist/npm/tars-telemetry-linux-x64-gnu-$version.tgz"
[ -f "$npm_main" ] && [ -f "$npm_platform" ] || { echo "dist: run scripts/build-dist.sh first" >&2; exit 1; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAILED: $*"; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -z "${chroot_pid:-}" ] || kill -KILL "$chroot_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}
# Highest GLIBC_x.y among the dynamic symbols an ELF file needs.
max_glibc() { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1; }
within_policy() { [ "$(printf '%s\n%s\n' "$1" "$GLIBC_POLICY" | sort -V | tail -1)" = "$GLIBC_POLICY" ]; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
size() { stat -c %s "$1" | awk '{ printf "%.2f MiB", $1 / 1048576 }'; }

echo "== dist: glibc symbol versions and sizes"
mkdir -p "$work/wheel" "$work/platform"
python3 -m zipfile -e "$wheel" "$work/wheel"
so=$(find "$work/wheel" -name '*.abi3.so')
tar -xzf "$npm_platform" -C "$work/platform"
node_file=$(find "$work/platform" -name '*.node')
for f in "$so" "$node_file"; do
  g=$(max_glibc "$f")
  name=${f#"$work"/}
  if within_policy "$g"; then ok "$name needs glibc $g (policy: <= $GLIBC_POLICY)"; else fail "$name needs glibc $g, past the policy's $GLIBC_POLICY"; fi
  needed=$(objdump -p "$f" | awk '/NEEDED/ { print $2 }' | sort | tr '\n' ' ')
  extra=$(echo "$needed" | tr ' ' '\n' | grep -vxE 'libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|' || true)
  if [ -z "$extra" ]; then ok "$name links only system libraries ($needed)"; else fail "$name links $extra beyond the manylinux set"; fi
done
if .venv/bin/auditwheel show "$wheel" | tr '\n' ' ' | grep -q 'consistent with the following platform tag: *"manylinux_2_17_x86_64"'; then
  ok "auditwheel: $(basename "$wheel") is manylinux_2_17_x86_64"
else
  .venv/bin/auditwheel show "$wheel" || true
  fail "auditwheel does not place the wheel at manylinux_2_17"
fi
sdist=dist/python/tars_telemetry-$version.tar.gz
mkdir -p "$work/sdist"
tar -xzf "$sdist" -C "$work/sdist"
# The sdist is pip's source fallback: it must hold the core it builds against, and its
# manifests must resolve on their own (cargo metadata, offline: no build).
if [ -f "$work/sdist/tars_telemetry-$version/tars-telemetry/src/lib.rs" ] &&
  cargo metadata -q --offline --format-version 1 --manifest-path "$work/sdist/tars_telemetry-$version/bindings/python/Cargo.toml" >/dev/null; then
  ok "sdist: holds the core's sources and its manifests resolve"
else
  fail "sdist: the core's sources are missing or its manifests do not resolve"
fi
echo "sizes: wheel $(size "$wheel"), extension $(size "$so"), npm main $(size "$npm_main"), npm platform $(size "$npm_platform"), .node $(size "$node_file")"

echo "== dist: an environment with no Rust and no C compiler"
# PATH: every program of the usual directories but the toolchains, resolved to their files
# (so pyenv's shims, which need pyenv, become the interpreter they run).
norust="$work/norust-bin"
mkdir -p "$norust" "$work/home" "$work/empty-cargo" "$work/empty-rustup"
for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  [ -d "$d" ] || continue
  for f in "$d"/*; do
    n=${f##*/}
    case "$n" in
      cargo* | rustc | rustdoc | rustup | rust-* | rustfmt | clippy-driver | zig | cc | c++ | c89 | c99 | cpp | gcc* | g++* | \
        clang* | tcc | ld | ld.* | x86_64-linux-gnu-* | *-gcc | *-gcc-[0-9]* | *-g++ | *-g++-[0-9]*) continue ;;
    esac
    [ -e "$norust/$n" ] || ln -s "$f" "$norust/$n"
  done
done
py=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
ln -sf "$py" "$norust/python3"
ln -sf "$(command -v node)" "$norust/node"
ln -sf "$(command -v npm)" "$norust/npm"
ln -sf "$(command -v npx)" "$norust/npx"
ln -sf "$(command -v promtool)" "$norust/promtool"
in_norust() {
  env -i HOME="$work/home" PATH="$norust" CARGO_HOME="$work/empty-cargo" RUSTUP_HOME="$work/empty-rustup" \
    LANG=C.UTF-8 TMPDIR="${TMPDIR:-/tmp}" "$@"
}
found=$(in_norust sh -c 'for t in cargo rustc rustup cc gcc c++ clang ld zig; do command -v $t; done' || true)
if [ -z "$found" ]; then ok "no cargo, rustc, rustup, cc, gcc, c++, clang, ld or zig on PATH"; else fail "toolchain still reachable: $found"; fi

smoke_metrics() { # <label> <metrics file>
  if promtool check metrics <"$2" >"$work/promtool.out" 2>&1; then
    ok "$1: promtool check metrics accepts /metrics"
  else
    fail "$1: promtool check metrics: $(head -5 "$work/promtool.out")"
  fi
}
expect() { # <label> <file> <grep -F pattern>
  if grep -qF -- "$3" "$2"; then ok "$1: $3"; else fail "$1: no '$3' in /metrics"; fi
}

echo "== dist: Python: pip install the wheel into a fresh venv"
in_norust python3 -m venv "$work/venv"
start=$EPOCHREALTIME
in_norust "$work/venv/bin/pip" install -q --disable-pip-version-check --no-cache-dir "$wheel"
py_install=$(since "$start")
echo "install time: pip install <wheel> ${py_install} s"
start=$EPOCHREALTIME
# The versions the Python tests pin, from the registry as a user gets them.
py_deps=$(grep -E '^(fastapi|uvicorn)==' bindings/python/requirements-test.txt | tr '\n' ' ')
in_norust "$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" $py_deps
echo "install time: pip install <wheel> $py_deps(from the registry) $(since "$start") s"
port=$(free_port)
(cd scripts/dist-smoke && exec env -i HOME="$work/home" PATH="$norust" OTEL_SERVICE_NAME=tars-backend \
  "$work/venv/bin/python" -m uvicorn app:app --host 127.0.0.1 --port "$port" --log-level warning) &
pids+=($!)
if wait_http "http://127.0.0.1:$port/metrics"; then
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/v1/rag/query?q=hello")
  [ "$code" = 200 ] && ok "FastAPI: POST /api/v1/rag/query answered 200" || fail "FastAPI: POST answered $code"
  curl -sL "http://127.0.0.1:$port/metrics" >"$work/py.prom"
  smoke_metrics FastAPI "$work/py.prom"
  expect FastAPI "$work/py.prom" 'tars_http_requests_total{method="POST",endpoint="/api/v1/rag/query",status="200"} 1'
  expect FastAPI "$work/py.prom" 'tars_rag_queries_total{status="success"} 1'
  expect FastAPI "$work/py.prom" 'tars_vector_search_duration_seconds_count'
  expect FastAPI "$work/py.prom" 'tars_llm_tokens_generated_total{model="llama3:8b"} 42'
else
  fail "FastAPI: the app did not start"
fi

echo "== dist: the wheel under every other CPython >= 3.10 found (abi3)"
seen=" $py "
pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for p in $(command -v python3.10 python3.11 python3.12 python3.13 python3.14 2>/dev/null) \
  "$pyenv_root"/versions/3.1[0-9]*/bin/python3.1[0-9] /usr/bin/python3.1[0-9]; do
  [ -x "$p" ] || continue
  p=$("$p" -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null) || continue
  case "$seen" in *" $p "*) continue ;; esac
  seen="$seen$p "
  v=$("$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  i=$(echo "$seen" | wc -w)
  rm -rf "$work/venv-$i"
  in_norust "$p" -m venv "$work/venv-$i" && in_norust "$work/venv-$i/bin/pip" install -q --disable-pip-version-check --no-cache-dir "$wheel"
  if out=$(in_norust "$work/venv-$i/bin/python" -c '
import sys
from tars_telemetry import Telemetry
tel = Telemetry(service_name="abi3-check", traces=False)
tel.counter("abi3_checks", "Imports checked.", ["python"]).labels(sys.version.split()[0]).inc()
print(tel.render()[0].decode())' 2>&1) && grep -q "^abi3_checks_total{python=\"$v" <<<"$out"; then
    ok "CPython $v ($p) imports the wheel and records"
  else
    fail "CPython $v: $(tail -3 <<<"$out")"
  fi
done

echo "== dist: Node: npm install both tarballs and express into a fresh directory (no .npmrc)"
app="$work/node-app"
mkdir -p "$app"
cp scripts/dist-smoke/app.cjs scripts/dist-smoke/app.mjs "$app/"
(cd "$app" && in_norust npm init -y >/dev/null)
start=$EPOCHREALTIME
(cd "$app" && in_norust npm install --no-audit --no-fund --loglevel=error "$npm_main" "$npm_platform") >"$work/npm.log" 2>&1 \
  || { cat "$work/npm.log"; fail "npm install of the tarballs"; }
echo "install time: npm install <both tarballs> $(since "$start") s"
start=$EPOCHREALTIME
express="express@$(node -p "require('./bindings/node/package.json').devDependencies.express")"
(cd "$app" && in_norust npm install --no-audit --no-fund --loglevel=error "$express") >>"$work/npm.log" 2>&1 \
  || { cat "$work/npm.log"; fail "npm install $express"; }
echo "install time: npm install $express (from the registry) $(since "$start") s"
if ls "$app"/node_modules/tars-telemetry/*.node >/dev/null 2>&1 || [ -d "$app/node_modules/tars-telemetry/target" ]; then
  fail "npm: the install built an addon in node_modules/tars-telemetry"
else
  ok "npm: nothing built; the addon is @tars-telemetry/linux-x64-gnu's"
fi
for entry in app.cjs app.mjs; do
  port=$(free_port)
  (cd "$app" && exec env -i HOME="$work/home" PATH="$norust" PORT="$port" node "$entry") &
  pids+=($!)
  if wait_http "http://127.0.0.1:$port/metrics"; then
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '{"query":"hello"}' "http://127.0.0.1:$port/api/ask")
    [ "$code" = 200 ] && ok "Express ($entry): POST /api/ask answered 200" || fail "Express ($entry): POST answered $code"
    curl -s "http://127.0.0.1:$port/metrics" >"$work/node.prom"
    smoke_metrics "Express ($entry)" "$work/node.prom"
    expect "Express ($entry)" "$work/node.prom" 'tars_http_requests_total{method="POST",endpoint="/api/ask",status="200"} 1'
    expect "Express ($entry)" "$work/node.prom" 'tars_rag_queries_total{status="success"} 1'
  else
    fail "Express ($entry): the app did not start"
  fi
done

echo "== dist: Node: the main tarball alone, as on a platform with no prebuilt addon"
# npm skips the platform package (os/cpu/libc do not match, or --omit=optional); the
# install script then builds from source, and without Rust it must fail saying so.
alone="$work/node-alone"
mkdir -p "$alone"
if (cd "$alone" && in_norust npm init -y >/dev/null &&
  in_norust npm install --no-audit --no-fund --loglevel=error --omit=optional "$npm_main") >"$work/npm-alone.log" 2>&1; then
  fail "npm: the main tarball alone installed with no addon and no Rust"
elif grep -q 'building the native addon needs Rust (cargo was not found)' "$work/npm-alone.log"; then
  ok "npm: with no prebuilt addon and no Rust, install fails saying what it needs"
  grep 'tars-telemetry:' "$work/npm-alone.log" | sed 's/^/  /'
else
  cat "$work/npm-alone.log"
  fail "npm: the main tarball alone failed without saying that it needs Rust"
fi

rm -rf "$alone/node_modules" "$alone/package-lock.json"
(cd "$alone" && in_norust npm install --no-audit --no-fund --loglevel=error --omit=optional --ignore-scripts "$npm_main") >>"$work/npm-alone.log" 2>&1
msg=$(cd "$alone" && in_norust node -e "try { require('tars-telemetry'); console.log('loaded') } catch (e) { console.log(e.code + ': ' + e.message) }")
if grep -q '^ERR_TARS_NO_ADDON: .*without --omit=optional.*Rust 1.88' <<<"$msg"; then
  ok "npm: loading with no addon says what to do"
else
  fail "npm: loading with no addon said: $msg"
fi

echo "== dist: the source fallback: the main tarball alone builds its addon when allowed, with Rust"
src="$work/node-source"
mkdir -p "$src"
(
  cd "$src"
  npm init -y >/dev/null
  echo 'allow-scripts=tars-telemetry' >.npmrc
  TARS_TELEMETRY_PROFILE=debug npm install --no-audit --no-fund --loglevel=error --omit=optional "$npm_main"
) >"$work/npm-source.log" 2>&1 || true
if (cd "$src" && ls node_modules/tars-telemetry/tars-telemetry.*.node >/dev/null 2>&1 &&
  node -e "const { Telemetry } = require('tars-telemetry'); const t = new Telemetry({ serviceName: 's', tracing: false }); process.exit(t.metricsSync().includes('tars_rag_query_duration_seconds') ? 0 : 1)"); then
  ok "npm: the main tarball alone built its addon from the sources it carries"
else
  tail -20 "$work/npm-source.log"
  fail "npm: the source build from the main tarball"
fi

echo "== dist: on an older distribution: a debootstrap chroot of Debian 11 (glibc 2.31)"
# The oldest release Debian's archive serves here. Its own interpreters are too old for the
# packages (Python 3.9 against the wheel's 3.10 floor, Node 12 against 20), so:
#  - the wheel's extension goes through the chroot's own loader (ldd: every symbol version
#    it needs must be in glibc 2.31), beside a program of this machine's glibc that must not;
#  - the Express app installed above runs in the chroot on this machine's node binary
#    (which needs glibc 2.28), loading the prebuilt addon with glibc 2.31.
# The chroot is made once per machine, then kept (~250 MB).
release=bullseye
root_dir="${TARS_CHROOT_CACHE:-$HOME/.cache/tars-telemetry/chroot}/$release-python3"
if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null; then
  msg="check-dist: the $release chroot checks need root and debootstrap (scripts/install-test-deps.sh installs it)"
  if [ -n "${CI:-}" ] && [ "$CI" != false ] && [ "$CI" != 0 ]; then
    fail "$msg"
  else
    echo "skipped: $msg"
    [ -n "${TARS_TEST_SKIPS:-}" ] && echo "$msg" >>"$TARS_TEST_SKIPS"
  fi
else
  if [ ! -x "$root_dir/usr/bin/python3" ]; then
    rm -rf "$root_dir.new"
    debootstrap --variant=minbase --include=python3 "$release" "$root_dir.new" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log"; fail "debootstrap $release"; }
    mv "$root_dir.new" "$root_dir"
  fi
  check="$root_dir/opt/tars-check-$$"
  rm -rf "$check"
  mkdir -p "$check"
  cp "$so" "$check/_native.abi3.so"
  cp "$(command -v ls)" "$check/control-ls"
  echo "  $(chroot "$root_dir" ldd --version | head -1)"
  missing=$(chroot "$root_dir" ldd /opt/tars-check-$$/_native.abi3.so 2>&1 | grep 'not found' || true)
  control=$(chroot "$root_dir" ldd /opt/tars-check-$$/control-ls 2>&1 | grep -o "version .GLIBC_[0-9.]*. not found" | head -1 || true)
  if [ -z "$missing" ] && [ -n "$control" ]; then
    ok "$release: the wheel's extension resolves against glibc 2.31 (this machine's ls does not: $control)"
  else
    fail "$release: the extension: ${missing:-resolves}; the control: ${control:-resolved too (the check proves nothing)}"
  fi
  cp -a "$app" "$check/app"
  cp "$(readlink -f "$(command -v node)")" "$check/node"
  port=$(free_port)
  # --kill-child: unshare ignores SIGTERM while it waits, so it is ended with SIGKILL and
  # takes the app down with it.
  unshare --mount --kill-child sh -c "mount -t proc proc '$root_dir/proc' && exec chroot '$root_dir' env -i PORT=$port HOME=/tmp /opt/tars-check-$$/node /opt/tars-check-$$/app/app.cjs" \
    >"$work/chroot-node.log" 2>&1 &
  chroot_pid=$!
  pids+=("$chroot_pid")
  if wait_http "http://127.0.0.1:$port/metrics"; then
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '{"query":"hello"}' "http://127.0.0.1:$port/api/ask")
    curl -s "http://127.0.0.1:$port/metrics" >"$work/chroot.prom"
    if [ "$code" = 200 ] && grep -qF 'tars_rag_queries_total{status="success"} 1' "$work/chroot.prom" &&
      promtool check metrics <"$work/chroot.prom" >/dev/null 2>&1; then
      ok "$release: the Express app on the prebuilt addon answers and serves /metrics that promtool accepts"
    else
      fail "$release: the Express app answered $code; /metrics: $(head -3 "$work/chroot.prom")"
    fi
  else
    cat "$work/chroot-node.log"
    fail "$release: the Express app did not start in the chroot"
  fi
  kill -KILL "$chroot_pid" 2>/dev/null || true
  wait "$chroot_pid" 2>/dev/null || true
  rm -rf "$check"
fi

echo "dist: $passed passed, $failed failed"
[ "$failed" = 0 ]
