#!/usr/bin/env bash
# Builds the real backends the end-to-end tests and the deploy checks run against, from
# the Go module proxy with Go's own tooling (no prebuilt binary is downloaded):
#   - Jaeger v2: the `cmd/jaeger` program of github.com/jaegertracing/jaeger, pinned;
#   - an OpenTelemetry Collector made of the pinned upstream modules that
#     deploy/otel-collector/config.yaml uses, wired by tools/otelcol/main.go;
#   - Prometheus 3 and its promtool: `cmd/prometheus` and `cmd/promtool` of the module
#     github.com/prometheus/prometheus, pinned (module v0.316.0 is Prometheus 3.16.0). The
#     module carries no web UI assets: the server answers its HTTP API, not its UI. Debian's
#     prometheus package (2.42) stays on PATH; this one is for native histograms (scraped
#     with `scrape_native_histograms`, written in promtool tests as `{{schema:...}}`).
# Each binary goes into a cache outside the repository, keyed by version (the Collector
# also by a hash of its main.go):
#   ${TARS_TOOLS_CACHE:-~/.cache/tars-telemetry/tools}/jaeger-v1.76.0/jaeger
#   ${TARS_TOOLS_CACHE:-~/.cache/tars-telemetry/tools}/otelcol-v0.165.0-<hash>/otelcol
#   ${TARS_TOOLS_CACHE:-~/.cache/tars-telemetry/tools}/prometheus-v0.316.0/{prometheus,promtool}
# and is skipped when it is there. GOMODCACHE and GOCACHE are Go's own (shared between runs
# on one machine), so a rebuild after a version bump compiles only what changed.
# Prometheus cold (an empty Go build cache), on 2 busy cores: 18 s to fetch its modules
# (with the other builds' modules already in GOMODCACHE), then 266 s to build prometheus
# and promtool (147 and 123 MB); 15 s when Go's build cache already holds them.
# The builds run one after the other, at low priority.
#
# Usage: scripts/build-otel-tools.sh           build what is missing, print the paths
#        scripts/build-otel-tools.sh --print   only print the paths (nothing is built)
# Needs Go >= 1.24 (https://go.dev/dl/) and the Go module proxy. The Prometheus module asks
# for Go 1.26.7: an older go fetches that toolchain from the proxy itself (GOTOOLCHAIN=auto,
# Go's default).
set -euo pipefail
cd "$(dirname "$0")/.."

JAEGER_VERSION=v1.76.0
# Collector core modules, their stable confmap providers, and contrib: one release.
COLLECTOR_VERSION=v0.165.0
CONFMAP_VERSION=v1.71.0
CONTRIB_VERSION=v0.165.1
# Prometheus 3.16.0 is published to the Go module proxy as v0.316.0.
PROMETHEUS_MODULE_VERSION=v0.316.0
PROMETHEUS_VERSION=3.16.0

CACHE="${TARS_TOOLS_CACHE:-$HOME/.cache/tars-telemetry/tools}"
main_hash=$(sha256sum tools/otelcol/main.go | cut -c1-12)
JAEGER="$CACHE/jaeger-$JAEGER_VERSION/jaeger"
OTELCOL="$CACHE/otelcol-$COLLECTOR_VERSION-$main_hash/otelcol"
PROMETHEUS3="$CACHE/prometheus-$PROMETHEUS_MODULE_VERSION/prometheus"
PROMTOOL3="$CACHE/prometheus-$PROMETHEUS_MODULE_VERSION/promtool"

print_paths() {
  echo "JAEGER=$JAEGER"
  echo "OTELCOL=$OTELCOL"
  echo "PROMETHEUS3=$PROMETHEUS3"
  echo "PROMTOOL3=$PROMTOOL3"
}
if [ "${1:-}" = "--print" ]; then
  print_paths
  exit 0
fi

if ! command -v go >/dev/null; then
  echo "Go is not installed: building Jaeger, the OpenTelemetry Collector and Prometheus 3 needs Go >= 1.24 (https://go.dev/dl/)." >&2
  exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' 1.24 "$have" | sort -V | head -1)" != 1.24 ]; then
  echo "go $have is older than 1.24, which the pinned Jaeger and Collector modules need." >&2
  exit 1
fi

# A temporary module per build; its go.mod pins the versions above.
ROOT=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
build() { # name output main-package (. for tools/<name>/main.go) modules...
  local name=$1 out=$2 pkg=$3
  shift 3
  local dir="$WORK/$name" start=$SECONDS
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init "tars-telemetry.local/$name" >/dev/null 2>&1
    if [ "$pkg" = . ]; then
      cp "$ROOT/tools/$name/main.go" .
      go get "$@"
      go mod tidy
    else
      go get -tool "$@"
    fi
    echo "$name: modules in $((SECONDS - start)) s"
    nice -n 10 go build -trimpath -o "$dir/$name.bin" "$pkg"
  )
  mkdir -p "$(dirname "$out")"
  mv "$dir/$name.bin" "$out.tmp" && mv "$out.tmp" "$out"
  echo "$name: built in $((SECONDS - start)) s: $out"
}

if [ ! -x "$OTELCOL" ]; then
  echo "building the OpenTelemetry Collector $COLLECTOR_VERSION (contrib $CONTRIB_VERSION)"
  build otelcol "$OTELCOL" . \
    "go.opentelemetry.io/collector/otelcol@$COLLECTOR_VERSION" \
    "go.opentelemetry.io/collector/receiver/otlpreceiver@$COLLECTOR_VERSION" \
    "go.opentelemetry.io/collector/exporter/otlpexporter@$COLLECTOR_VERSION" \
    "go.opentelemetry.io/collector/exporter/otlphttpexporter@$COLLECTOR_VERSION" \
    "go.opentelemetry.io/collector/exporter/debugexporter@$COLLECTOR_VERSION" \
    "go.opentelemetry.io/collector/processor/batchprocessor@$COLLECTOR_VERSION" \
    "go.opentelemetry.io/collector/processor/memorylimiterprocessor@$COLLECTOR_VERSION" \
    "go.opentelemetry.io/collector/confmap/provider/envprovider@$CONFMAP_VERSION" \
    "go.opentelemetry.io/collector/confmap/provider/fileprovider@$CONFMAP_VERSION" \
    "go.opentelemetry.io/collector/confmap/provider/yamlprovider@$CONFMAP_VERSION" \
    "github.com/open-telemetry/opentelemetry-collector-contrib/processor/resourceprocessor@$CONTRIB_VERSION" \
    "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension@$CONTRIB_VERSION"
fi
if [ ! -x "$JAEGER" ]; then
  echo "building Jaeger $JAEGER_VERSION (cmd/jaeger, Jaeger v2)"
  build jaeger "$JAEGER" github.com/jaegertracing/jaeger/cmd/jaeger \
    "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
fi
if [ ! -x "$PROMETHEUS3" ] || [ ! -x "$PROMTOOL3" ]; then
  # Both programs from one temporary module: `go get -tool` resolves the module's own
  # go.mod (no replace directives), and a single `go build` links the two, sharing the
  # compiled packages. Without the `builtinassets` tag the UI is read from disk (absent);
  # the API is complete. The version is stamped as Prometheus' own release build does.
  echo "building Prometheus $PROMETHEUS_VERSION and promtool (module $PROMETHEUS_MODULE_VERSION)"
  start=$SECONDS
  dir="$WORK/prometheus"
  mkdir -p "$dir/bin"
  (
    cd "$dir"
    go mod init tars-telemetry.local/prometheus >/dev/null 2>&1
    go get -tool \
      "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" \
      "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
    echo "prometheus: modules in $((SECONDS - start)) s"
    nice -n 10 go build -trimpath \
      -ldflags "-X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION -X github.com/prometheus/common/version.Branch=module-$PROMETHEUS_MODULE_VERSION" \
      -o "$dir/bin/" \
      github.com/prometheus/prometheus/cmd/prometheus \
      github.com/prometheus/prometheus/cmd/promtool
  )
  out_dir=$(dirname "$PROMETHEUS3")
  mkdir -p "$out_dir"
  for b in prometheus promtool; do
    mv "$dir/bin/$b" "$out_dir/$b.tmp" && mv "$out_dir/$b.tmp" "$out_dir/$b"
  done
  echo "prometheus: built in $((SECONDS - start)) s: $PROMETHEUS3, $PROMTOOL3"
fi
print_paths
