#!/usr/bin/env bash
# Builds the load-test peer: an OpenTelemetry Collector with otlpreceiver,
# tailsamplingprocessor, batchprocessor, memorylimiterprocessor, otlpexporter
# and otlphttpexporter, using the official builder (ocb), into
# loadtest/peer/bin/otelcol-peer.
#
#   loadtest/peer/build-otelcol.sh            # default versions below
#   OTELCOL_VERSION=0.120.0 CONTRIB_VERSION=0.120.0 loadtest/peer/build-otelcol.sh
#
# Needs Go (and network access to the Go module proxy). Without Go it prints
# a message and exits 0, so the comparison is simply skipped.
# Then: npm run loadtest -- steady-10k --collector-bin loadtest/peer/bin/otelcol-peer
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="$here/bin"
work="$here/bin/.build"

# Core components are versioned 0.x alongside contrib; keep both at the same minor.
OTELCOL_VERSION="${OTELCOL_VERSION:-0.120.0}"
CONTRIB_VERSION="${CONTRIB_VERSION:-$OTELCOL_VERSION}"
BUILDER_VERSION="${BUILDER_VERSION:-v$OTELCOL_VERSION}"

if ! command -v go >/dev/null 2>&1; then
  echo "build-otelcol: 'go' is not installed; skipping the peer build (the load-test comparison needs loadtest/peer/bin/otelcol-peer)."
  echo "build-otelcol: install Go 1.22+ and re-run, or pass any otelcol binary with the same components via --collector-bin."
  exit 0
fi

mkdir -p "$bin_dir" "$work"
export GOBIN="$work/gobin"
echo "build-otelcol: installing the builder go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"

sed -e "s/\${OTELCOL_VERSION}/$OTELCOL_VERSION/g" -e "s/\${CONTRIB_VERSION}/$CONTRIB_VERSION/g" \
  "$here/manifest.yaml" > "$work/manifest.yaml"

echo "build-otelcol: building otelcol-peer $OTELCOL_VERSION (contrib $CONTRIB_VERSION); this downloads modules and can take several minutes"
(cd "$work" && "$GOBIN/builder" --config manifest.yaml)

cp "$work/build/otelcol-peer" "$bin_dir/otelcol-peer"
echo "build-otelcol: built $bin_dir/otelcol-peer"
"$bin_dir/otelcol-peer" --version || true
