#!/usr/bin/env bash
# Builds the tars-agent image without any registry and runs the agent from it as an
# unprivileged user: the Dockerfile's runtime stage, with its base replaced by an empty
# (scratch) image holding the shared libraries the binary links, and the build stage's
# output replaced by a release binary built here. buildah builds it (vfs storage, in a
# temporary directory); the image's root filesystem is then entered with chroot as
# 65534:65534 to run `--help`, and to serve /metrics on 127.0.0.1 for one scrape before
# SIGTERM stops it. Run scripts/install-deploy-deps.sh first (buildah).
#
# Usage: scripts/check-image.sh [TARS_AGENT_BINARY]   (default: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v buildah >/dev/null || { echo "buildah is missing: run scripts/install-deploy-deps.sh" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "check-image.sh needs root (buildah's storage, chroot)" >&2; exit 1; }

bin=${1:-}
if [ -z "$bin" ]; then
  start=$SECONDS
  cargo build --release --locked -p tars-agent
  echo "cargo build --release -p tars-agent: $((SECONDS - start))s"
  bin=target/release/tars-agent
fi
[ -x "$bin" ] || { echo "$bin: not an executable" >&2; exit 1; }

tmp=$(mktemp -d)
container=""
agent=""
cleanup() {
  [ -n "$agent" ] && kill "$agent" 2>/dev/null || true
  if [ -n "$container" ]; then
    buildah "${B[@]}" umount "$container" >/dev/null 2>&1 || true
    buildah "${B[@]}" rm "$container" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
B=(--storage-driver vfs --root "$tmp/storage" --runroot "$tmp/run")

# The runtime stage's root filesystem: the binary where the build stage installs it, and
# every library ldd names at the path ldd names (libgcc_s, libc, the loader).
ctx=$tmp/context
install -D -m 0755 "$bin" "$ctx/rootfs/usr/local/bin/tars-agent"
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  install -D -m 0644 "$lib" "$ctx/rootfs$lib"
done
chmod 0755 "$ctx/rootfs$(ldd "$bin" | grep -o '/[^ ]*ld-linux[^ ]*')"
mkdir -p -m 1777 "$ctx/rootfs/tmp"

# The Dockerfile's runtime stage, from its FROM line to the end, with the base and the
# build stage's output swapped: the check fails if that stage changes shape.
python3 - Dockerfile "$ctx/Containerfile" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"^FROM \S+ AS runtime\n(.*)\Z", text, re.M | re.S)
if not m:
    sys.exit("Dockerfile: no `FROM ... AS runtime` stage at the end")
stage = m.group(1)
copy = "COPY --from=build /out/ /\n"
if stage.count(copy) != 1:
    sys.exit(f"Dockerfile's runtime stage does not `{copy.strip()}` exactly once")
if re.search(r"^(RUN|ADD)\b", stage, re.M):
    sys.exit("Dockerfile's runtime stage runs commands: it must stay a plain copy")
open(sys.argv[2], "w").write("FROM scratch\n" + stage.replace(copy, "COPY rootfs/ /\n"))
PY

start=$SECONDS
buildah "${B[@]}" bud --quiet --layers=false -f "$ctx/Containerfile" -t localhost/tars-agent:check "$ctx" >/dev/null
echo "buildah bud (runtime stage, FROM scratch): $((SECONDS - start))s"
user=$(buildah "${B[@]}" inspect --format '{{.OCIv1.Config.User}}' localhost/tars-agent:check)
entrypoint=$(buildah "${B[@]}" inspect --format '{{.OCIv1.Config.Entrypoint}}' localhost/tars-agent:check)
echo "image: user $user, entrypoint $entrypoint, $(du -sh "$ctx/rootfs" | cut -f1) unpacked"
[ "$user" = "65534:65534" ] || { echo "the image runs as $user, not 65534:65534" >&2; exit 1; }
[ "$entrypoint" = '[/usr/local/bin/tars-agent]' ] || { echo "unexpected entrypoint $entrypoint" >&2; exit 1; }

container=$(buildah "${B[@]}" from --quiet localhost/tars-agent:check)
root=$(buildah "${B[@]}" mount "$container")
run() { chroot --userspec=65534:65534 "$root" /usr/local/bin/tars-agent "$@"; }

run --help | grep -q -- '--listen' || { echo "tars-agent --help from the image printed no usage" >&2; exit 1; }
echo "chroot as 65534: $(run --version)"

# Serve /metrics on a free port of 127.0.0.1: one scrape, then SIGTERM. A container
# runtime mounts /proc at the image's empty /proc; chroot does not, so the host
# collectors find nothing there and report failures: the scrape must answer all the same.
mkdir -p "$root/proc"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# chroot itself, not the run function: $! must be the agent (chroot execs it).
chroot --userspec=65534:65534 "$root" /usr/local/bin/tars-agent \
  --listen "127.0.0.1:$port" --collectors cpu,memory --interval 1 >"$tmp/agent.log" 2>&1 &
agent=$!
if ! python3 - "$port" "$agent" <<'PY'
import sys, time, urllib.request
port, pid = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 30
while True:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        break
    except OSError as e:
        if time.monotonic() > deadline:
            sys.exit(f"no answer on 127.0.0.1:{port}/metrics within 30s: {e}")
        time.sleep(0.2)
for want in ("tars_agent_build_info{", 'tars_agent_collector_up{collector="cpu"}'):
    if want not in body:
        sys.exit(f"the scrape lacks {want}")
uid = [l.split()[1:] for l in open(f"/proc/{pid}/status") if l.startswith("Uid:")][0]
if set(uid) != {"65534"}:
    sys.exit(f"the agent runs with uids {uid}, not 65534")
print(f"scrape of 127.0.0.1:{port}/metrics from the image: {len(body.splitlines())} lines, agent uid 65534")
PY
then
  echo "the agent's log:" >&2
  cat "$tmp/agent.log" >&2
  kill -KILL "$agent" 2>/dev/null || true
  exit 1
fi
kill -TERM "$agent"
for _ in $(seq 50); do kill -0 "$agent" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$agent" 2>/dev/null; then
  echo "the agent did not stop within 10s of SIGTERM" >&2
  exit 1
fi
wait "$agent" && status=0 || status=$?
agent=""
[ "$status" = 0 ] || { echo "the agent exited with $status after SIGTERM:" >&2; cat "$tmp/agent.log" >&2; exit 1; }
echo "image check: ok"
