#!/usr/bin/env bash
# Installs what scripts/check-deploy.sh needs, on a fresh Debian machine, inside the
# repository where it can: promtool (Debian's prometheus package), buildah (the image
# check: it builds FROM scratch, so no registry is needed), Node.js and npm, a
# Python virtualenv at .venv with kubernetes-validate, helm-python-sdk (Helm v4 as a
# library) and PyYAML, the npm packages of deploy/grafana/schema-check (TypeScript and
# @grafana/schema, from its package-lock.json), and Loki's LogQL parser in .tools/logql.
# Safe to rerun: each step is skipped when what it installs is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Pinned versions.
KUBERNETES_VALIDATE=1.37.0
HELM_PYTHON_SDK=0.2.2
PYYAML=6.0.3
# Loki v3.6.3's pkg/logql/syntax, built as a shared library inside this wheel.
LOGQL_WHEEL_VERSION=0.2.0
LOGQL_WHEEL_SHA256=e0cc2cc470adfee3ff9b17ef764b95de62be9d82e18c1cec842a9cf8f636824c

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v buildah >/dev/null || need_apt+=(buildah)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "apt: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# Debian's package may start its own Prometheus on :9090; the checks need none.
$SUDO systemctl stop prometheus 2>/dev/null || true

# Python: the virtualenv the other test scripts share.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
have_version() {
  .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" 2>/dev/null
}
if ! have_version kubernetes-validate "$KUBERNETES_VALIDATE" \
  || ! have_version helm-python-sdk "$HELM_PYTHON_SDK" \
  || ! have_version PyYAML "$PYYAML"; then
  echo "pip: kubernetes-validate==$KUBERNETES_VALIDATE helm-python-sdk==$HELM_PYTHON_SDK pyyaml==$PYYAML"
  .venv/bin/pip install -q --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE" \
    "helm-python-sdk==$HELM_PYTHON_SDK" \
    "pyyaml==$PYYAML"
fi

# Loki's LogQL parser: the wheel is tagged for CPython 3.13 but its library is plain Go
# (loaded with ctypes), so it is fetched for that tag and unpacked, not installed.
LOGQL_DIR=.tools/logql
if [ ! -f "$LOGQL_DIR/logql_to_logsql_go.so" ]; then
  echo "LogQL parser: logql-to-logsql==$LOGQL_WHEEL_VERSION"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  .venv/bin/pip download -q --disable-pip-version-check --no-deps \
    --python-version 3.13 --only-binary=:all: --platform manylinux_2_17_x86_64 \
    -d "$tmp" "logql-to-logsql==$LOGQL_WHEEL_VERSION"
  wheel=$(ls "$tmp"/*.whl)
  echo "$LOGQL_WHEEL_SHA256  $wheel" | sha256sum -c --quiet -
  .venv/bin/python -m zipfile -e "$wheel" "$tmp/x"
  mkdir -p "$LOGQL_DIR"
  cp "$tmp/x/logql_to_logsql/libs/logql_to_logsql_go.so" "$LOGQL_DIR/"
fi

# npm: TypeScript and @grafana/schema, exactly as package-lock.json pins them.
SCHEMA_DIR=deploy/grafana/schema-check
if [ ! -x "$SCHEMA_DIR/node_modules/.bin/tsc" ] \
  || [ "$SCHEMA_DIR/package-lock.json" -nt "$SCHEMA_DIR/node_modules/.package-lock.json" ]; then
  echo "npm ci in $SCHEMA_DIR"
  (cd "$SCHEMA_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "deploy check dependencies: $(promtool --version 2>&1 | head -1); $(buildah --version)"
echo "  kubernetes-validate $KUBERNETES_VALIDATE, helm-python-sdk $HELM_PYTHON_SDK, PyYAML $PYYAML (.venv)"
echo "  $("$SCHEMA_DIR/node_modules/.bin/tsc" --version), @grafana/schema $(node -p "require('./$SCHEMA_DIR/node_modules/@grafana/schema/package.json').version")"
echo "  LogQL parser $LOGQL_DIR/logql_to_logsql_go.so"
