#!/usr/bin/env bash
# Graphviz draws the infrastructure report's diagrams (`casem infra report`): install Debian's
# package when `dot` is missing. Quiet and instant when it is already there.
set -euo pipefail
command -v dot >/dev/null 2>&1 && exit 0
# Parallel test workers may get here together: one installs, the others wait and find it done.
exec 9>"${TMPDIR:-/tmp}/casem-install-graphviz.lock"
flock 9
command -v dot >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "install-graphviz: installing Debian package graphviz" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them only when the install needs it.
$SUDO apt-get install -y -qq --no-install-recommends graphviz >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends graphviz >/dev/null; }
command -v dot >/dev/null 2>&1 || { echo "install-graphviz: dot still missing" >&2; exit 1; }
