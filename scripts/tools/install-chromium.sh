#!/usr/bin/env bash
# Headless Chromium for the browser tests: the web console's (tests/console) and the HTML infrastructure
# report's layout (tests/topology/test_report_layout.py), both driven by Playwright for Python against
# Debian's browser (Playwright's own browser download is not used). Installs Debian's package when it is
# missing; quiet and instant when it is already there. Prints the browser's path on stdout.
set -euo pipefail
BROWSER=${CASEM_CHROMIUM:-/usr/bin/chromium}
if [ -x "$BROWSER" ]; then echo "$BROWSER"; exit 0; fi
# Parallel test workers may get here together: one installs, the others wait and find it done.
exec 9>"${TMPDIR:-/tmp}/casem-install-chromium.lock"
flock 9
if [ -x "$BROWSER" ]; then echo "$BROWSER"; exit 0; fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "install-chromium: installing Debian package chromium" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them only when the install needs it.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }
[ -x "$BROWSER" ] || { echo "install-chromium: $BROWSER still missing" >&2; exit 1; }
echo "$BROWSER"
