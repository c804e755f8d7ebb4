#!/usr/bin/env bash
# Install helm and kubeconform (built with `go install` through the Go module proxy) and the
# Kubernetes JSON schemas kubeconform validates against, into ${CASEM_TOOLS_DIR}/bin.
#
# The schemas normally come from GitHub, which this project cannot rely on: they are generated
# here from the OpenAPI spec (api/openapi-spec/swagger.json) shipped inside the k8s.io/kubernetes
# Go module, fetched through the same module proxy (scripts/tools/k8s_jsonschema.py).
#
# Idempotent: each piece is rebuilt only when its version stamp is missing, so a second run
# takes well under a second. Prints the directory holding the schemas on stdout's last line.
set -euo pipefail

HELM_VERSION=${CASEM_HELM_VERSION:-v3.22.0}
KUBECONFORM_VERSION=${CASEM_KUBECONFORM_VERSION:-v0.8.0}
K8S_VERSION=${CASEM_K8S_SCHEMA_VERSION:-v1.34.4}

TOOLS_DIR=${CASEM_TOOLS_DIR:-$HOME/.cache/casem/tools}
BIN="$TOOLS_DIR/bin"
SCHEMAS="$TOOLS_DIR/kubernetes-json-schema"
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$BIN" "$SCHEMAS"

# Test workers (pytest -n) may call this at the same time: one installs, the others wait.
exec 9>"$TOOLS_DIR/.install.lock"
flock 9

log() { echo "install-helm-tools: $*" >&2; }

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
  fi
  command -v go >/dev/null 2>&1 || { log "the go command is needed (Go >= 1.26)"; exit 1; }
  # Never fetch another toolchain behind our back: a module needing a newer Go must fail loudly.
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod
}

# go install <module/cmd>@<version> into $BIN, once per version.
install_go_tool() {
  local name=$1 pkg=$2 version=$3 stamp="$BIN/.$1-$3"
  if [ -x "$BIN/$name" ] && [ -f "$stamp" ]; then return; fi
  need_go
  log "building $name $version with go install (a few minutes the first time)"
  # helm reads its version from ldflags; without them `helm version` would say "unreleased".
  local ldflags=""
  [ "$name" = helm ] && ldflags="-X helm.sh/helm/v3/internal/version.version=$version"
  # go's own chatter ("go: downloading ...") goes to a log, shown only when the build fails.
  local build_log="$TOOLS_DIR/$name-build.log"
  if ! GOBIN="$BIN" go install -trimpath -ldflags "$ldflags" "$pkg@$version" >"$build_log" 2>&1; then
    cat "$build_log" >&2
    log "building $name $version failed"
    exit 1
  fi
  rm -f "$BIN/.$name-"*
  touch "$stamp"
}

install_go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
install_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"

schema_stamp="$SCHEMAS/.generated-$K8S_VERSION"
if [ ! -f "$schema_stamp" ]; then
  need_go
  log "generating Kubernetes $K8S_VERSION JSON schemas from the k8s.io/kubernetes module"
  zip=$(cd "$TOOLS_DIR" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
        | sed -n 's/^[[:space:]]*"Zip": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$zip" ] || { log "go mod download gave no module zip for k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  "${PYTHON:-python3}" "$HERE/k8s_jsonschema.py" --zip "$zip" --version "$K8S_VERSION" --out "$SCHEMAS"
  rm -f "$SCHEMAS"/.generated-*
  touch "$schema_stamp"
fi
echo "$SCHEMAS"
