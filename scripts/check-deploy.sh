#!/usr/bin/env bash
# Runs every offline check of deploy/ with the real tools: promtool (rules lint, rule unit
# tests, the dashboards' PromQL, the scrape config; Debian's 2.42 on PATH, and Prometheus
# 3's for the native histogram rules), tsc against Grafana's published
# dashboard schema, Loki's LogQL parser, Helm lint and render, kubernetes-validate, the
# structural checks of deploy/tools, and the agent's container image (buildah, no
# registry: scripts/check-image.sh). Prints each step; exits non-zero if any fails.
# Run scripts/install-deploy-deps.sh once first. The contract between deploy/ and the
# metric catalog is a Rust test: cargo test -p tars-deploy-contract.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
KV=.venv/bin/kubernetes-validate
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Kubernetes versions to validate against: the oldest the platform supports, and a current one.
KUBE_VERSIONS=(1.28 1.33)

passed=0
failed=0
failures=()

step() {
  local name=$1
  shift
  echo "== $name"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "   ok ($((SECONDS - start))s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "   FAILED: $name"
  fi
}

missing=()
[ -x "$PY" ] || missing+=(".venv")
[ -x "$KV" ] || missing+=("kubernetes-validate")
command -v promtool >/dev/null || missing+=("promtool")
command -v node >/dev/null || missing+=("node")
[ -x deploy/grafana/schema-check/node_modules/.bin/tsc ] || missing+=("deploy/grafana/schema-check/node_modules")
[ -f .tools/logql/logql_to_logsql_go.so ] || missing+=(".tools/logql")
command -v buildah >/dev/null || missing+=("buildah")
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]}: run scripts/install-deploy-deps.sh" >&2
  exit 1
fi

rules=(deploy/prometheus/rules/*.yml)
builtin_manifests=(
  deploy/kubernetes/namespace.yaml
  deploy/kubernetes/serviceaccount.yaml
  deploy/kubernetes/daemonset.yaml
  deploy/kubernetes/daemonset-gpu.yaml
  deploy/kubernetes/probes.yaml
  deploy/kubernetes/service.yaml
  deploy/kubernetes/probes-secret.example.yaml
)

step "promtool check rules --lint=all --lint-fatal (${#rules[@]} files)" \
  promtool check rules --lint=all --lint-fatal "${rules[@]}"

step "promtool test rules (every alert: fires after its for, silent just under or for less)" \
  bash -c 'cd deploy/prometheus/tests && promtool test rules *.test.yml'

step "dashboards: lint (no graph panels, no panel alerts, datasource refs, exemplars, grid)" \
  "$PY" deploy/tools/check_dashboards.py "$TMP/dashboard-queries.yml" deploy/grafana/dashboards/*.json

step "dashboards: every query and variable through promtool's PromQL parser" \
  promtool check rules "$TMP/dashboard-queries.yml"

step "dashboards: tsc --strict against @grafana/schema 13 (Dashboard, TimeSeries, Stat)" \
  node deploy/grafana/schema-check/check.mjs deploy/grafana/dashboards

step "loki: ruler rules through Loki's LogQL parser" \
  "$PY" deploy/tools/check_logql.py .tools/logql/logql_to_logsql_go.so deploy/loki/rules/*.yaml

step "helm: lint --strict, values schema, render, equal to deploy/kubernetes (helm-python-sdk, Helm v4)" \
  "$PY" deploy/tools/check_helm.py deploy/helm/tars-agent deploy/kubernetes "$TMP/helm"

for v in "${KUBE_VERSIONS[@]}"; do
  step "kubernetes-validate --strict -k $v: deploy/kubernetes (built-in kinds)" \
    "$KV" --strict --quiet -k "$v" "${builtin_manifests[@]}"
  step "kubernetes-validate --strict -k $v: Helm-rendered chart (built-in kinds)" \
    bash -c '"$0" --strict --quiet -k "$1" "$2"/builtin-*.yaml' "$KV" "$v" "$TMP/helm"
done

kustomize_build() {
  # The base must build and validate without any CRD; the overlay adds exactly the two
  # ServiceMonitors (whose structure deploy/tools/check_configs.py checks).
  kubectl kustomize deploy/kubernetes >"$TMP/kustomized.yaml" || return 1
  kubectl kustomize deploy/prometheus/operator >"$TMP/kustomized-operator.yaml" || return 1
  "$PY" - "$TMP/kustomized.yaml" "$TMP/kustomized-operator.yaml" <<'EOF' || return 1
import sys, yaml
base = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
overlay = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
kinds = sorted(d["kind"] for d in base)
assert kinds == ["ConfigMap", "DaemonSet", "DaemonSet", "Deployment", "Namespace", "Service", "ServiceAccount"], kinds
extra = [d for d in overlay if d not in base]
assert len(overlay) == len(base) + 2 and [d["kind"] for d in extra] == ["ServiceMonitor"] * 2, [d["kind"] for d in extra]
EOF
  "$KV" --strict --quiet -k "${KUBE_VERSIONS[-1]}" "$TMP/kustomized.yaml"
}
if command -v kubectl >/dev/null; then
  step "kubectl kustomize deploy/kubernetes (no CRDs) and deploy/prometheus/operator, then kubernetes-validate --strict" kustomize_build
else
  echo "== kubectl kustomize: skipped (kubectl is not installed; the files were validated one by one)"
fi

step "configs: otel-collector, promtail, grafana provisioning, kustomizations, ServiceMonitors, scrape config" \
  "$PY" deploy/tools/check_configs.py deploy "$TMP/prometheus.yml" "$TMP/helm/servicemonitor.yaml"

# The real Collector (scripts/build-otel-tools.sh builds it) reads the config as it runs it.
OTELCOL=$(scripts/build-otel-tools.sh --print | sed -n 's/^OTELCOL=//p')
if [ -x "$OTELCOL" ]; then
  step "otelcol validate: deploy/otel-collector/config.yaml (the Collector scripts/build-otel-tools.sh builds)" \
    "$OTELCOL" validate --config=deploy/otel-collector/config.yaml
elif [ -n "${CI:-}" ] && [ "${CI}" != false ] && [ "${CI}" != 0 ]; then
  step "otelcol validate: the Collector is required in CI (scripts/build-otel-tools.sh)" false
else
  echo "== otelcol validate: skipped (run scripts/build-otel-tools.sh to build the Collector)"
fi

step "promtool check config: deploy/prometheus/prometheus-scrape.yml (Kubernetes discovery replaced by static targets, native histogram settings left out)" \
  promtool check config "$TMP/prometheus.yml"

# Prometheus 3's promtool (scripts/build-otel-tools.sh builds it): the native histogram
# variant of the latency alerts, its unit tests in native histogram notation, and the
# scrape config with Kubernetes discovery and the native histogram settings its comment says to add,
# none of which Debian's promtool 2.42 can read. Required in CI, like the Collector.
PROMTOOL3=$(scripts/build-otel-tools.sh --print | sed -n 's/^PROMTOOL3=//p')
native_rules=(deploy/prometheus/native/*.yml)
if [ -x "$PROMTOOL3" ]; then
  step "promtool 3 check rules --lint=all --lint-fatal: the native variant and the classic rules (${#native_rules[@]} + ${#rules[@]} files)" \
    "$PROMTOOL3" check rules --lint=all --lint-fatal "${native_rules[@]}" "${rules[@]}"
  step "promtool 3 test rules: the native latency alerts (fire over the threshold after their for, silent just under)" \
    bash -c 'cd deploy/prometheus/native/tests && "$0" test rules *.test.yml' "$PROMTOOL3"
  step "promtool 3 test rules: the classic tests under Prometheus 3" \
    bash -c 'cd deploy/prometheus/tests && "$0" test rules *.test.yml' "$PROMTOOL3"
  step "promtool 3: every dashboard query and variable through Prometheus 3's PromQL parser" \
    "$PROMTOOL3" check rules "$TMP/dashboard-queries.yml"
  step "promtool 3 check config: deploy/prometheus/prometheus-scrape.yml with Kubernetes discovery and the native histogram settings added" \
    "$PROMTOOL3" check config "$TMP/prometheus-shipped.yml"
elif [ -n "${CI:-}" ] && [ "${CI}" != false ] && [ "${CI}" != 0 ]; then
  step "promtool 3: Prometheus 3 is required in CI (scripts/build-otel-tools.sh)" false
else
  echo "== promtool 3 (native histogram rules and tests, the scrape config with native histograms): skipped (run scripts/build-otel-tools.sh to build Prometheus 3)"
fi

# The image check packs the debug binary that `cargo test --workspace` (scripts/test.sh)
# has just built: the same libraries and paths as the release binary the Dockerfile
# builds, without a release build of every dependency (about 265 CPU-seconds) in each run.
# Run alone, it builds the binary first.
image_check() {
  local bin="${CARGO_TARGET_DIR:-target}/debug/tars-agent"
  if [ ! -x "$bin" ]; then
    cargo build --quiet -p tars-agent || return 1
  fi
  scripts/check-image.sh "$bin"
}
if [ "$(id -u)" = 0 ]; then
  step "image: the Dockerfile's runtime stage built FROM scratch by buildah, the agent run from it as 65534" image_check
elif [ -n "${CI:-}" ]; then
  step "image: needs root (buildah's storage, chroot)" false
else
  echo "== image: skipped (needs root for buildah's storage and chroot: sudo scripts/check-image.sh)"
fi

parse_yaml() {
  "$PY" - <<'EOF'
import pathlib, sys, yaml
bad = 0
files = [p for p in pathlib.Path("deploy").rglob("*.y*ml")
         if "node_modules" not in p.parts and "templates" not in p.parts]
for p in sorted(files):
    try:
        list(yaml.safe_load_all(p.read_text()))
    except yaml.YAMLError as e:
        bad += 1
        print(f"{p}: {e}")
print(f"   {len(files)} YAML files, {bad} unparseable")
sys.exit(1 if bad else 0)
EOF
}
step "every YAML file under deploy/ parses (Helm templates are rendered above instead)" parse_yaml

echo
if [ "$failed" -gt 0 ]; then
  printf 'failed step: %s\n' "${failures[@]}"
fi
echo "deploy checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
