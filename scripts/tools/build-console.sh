#!/usr/bin/env bash
# The web console's front-end build: `npm ci` installs exactly what package-lock.json pins (from the npm
# registry), then the libraries' own distribution files are copied into the console's static/vendor folder,
# where casem serves them (no CDN, no fetch at run time). A manifest records each file's version and SHA-256:
# the console refuses to start without it, and a test checks the copies still match the lockfile's packages.
# Quick when nothing changed: the stamp is newer than the lockfile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FRONTEND="$ROOT/casem/services/case_console/frontend"
VENDOR="$ROOT/casem/services/case_console/static/vendor"
STAMP="$VENDOR/manifest.json"
if [ -f "$STAMP" ] && [ "$STAMP" -nt "$FRONTEND/package-lock.json" ] && [ -d "$FRONTEND/node_modules" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "build-console: npm is missing (install Node.js 20 and npm)" >&2; exit 1; }
exec 9>"${TMPDIR:-/tmp}/casem-build-console.lock"
flock 9
cd "$FRONTEND"
npm ci --no-audit --no-fund --loglevel=error
mkdir -p "$VENDOR"
# package file -> served name
FILES=(
  "htmx.org/dist/htmx.min.js:htmx.min.js"
  "sortablejs/Sortable.min.js:Sortable.min.js"
  "uplot/dist/uPlot.iife.min.js:uPlot.iife.min.js"
  "uplot/dist/uPlot.min.css:uPlot.min.css"
)
for entry in "${FILES[@]}"; do
  cp "node_modules/${entry%%:*}" "$VENDOR/${entry#*:}"
done
node - "$VENDOR" "${FILES[@]}" <<'JS'
const fs = require("fs"), path = require("path"), crypto = require("crypto");
const [vendor, ...files] = process.argv.slice(2);
const manifest = {};
for (const entry of files) {
  const [source, served] = entry.split(":");
  const pkg = source.split("/")[0];
  const version = JSON.parse(fs.readFileSync(path.join("node_modules", pkg, "package.json"))).version;
  const sha256 = crypto.createHash("sha256").update(fs.readFileSync(path.join(vendor, served))).digest("hex");
  manifest[served] = { package: pkg, version, source, sha256 };
}
fs.writeFileSync(path.join(vendor, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
JS
echo "build-console: vendor assets in $VENDOR" >&2
