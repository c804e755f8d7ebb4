#!/usr/bin/env bash
# The console's browser tests drive Debian's Chromium with Playwright for Python (Playwright's own
# browser download is not used): install the `chromium` package when /usr/bin/chromium is missing.
# Quiet and instant when it is already there.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
# Parallel test workers may get here together: one installs, the others wait and find it done.
exec 9>"${TMPDIR:-/tmp}/casem-install-chromium.lock"
flock 9
command -v chromium >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "install-chromium: installing Debian package chromium" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them only when the install needs it.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }
command -v chromium >/dev/null 2>&1 || { echo "install-chromium: chromium still missing" >&2; exit 1; }
