#!/usr/bin/env bash
# Everything the topology/infra tests need, installed once: helm, kubeconform and the Kubernetes
# JSON schemas (install-helm-tools.sh), Graphviz (install-graphviz.sh) and Chromium for the report's
# layout checks (install-chromium.sh). Safe to call from
# `make test` on every run: it does nothing when all is in place.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
bash "$HERE/install-graphviz.sh"
bash "$HERE/install-chromium.sh" >/dev/null
bash "$HERE/install-helm-tools.sh" >/dev/null
