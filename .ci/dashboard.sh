#!/usr/bin/env bash
# The dashboard (dashboard/): rebuilds it from a clean `npm ci` (graphql-codegen from
# schema.graphql, tsc --strict, vite build) and fails when the committed generated client or built
# files differ from the rebuild; then drives it in Debian's Chromium against the given `anomaly`
# binary (dashboard/test/browser.mjs) and saves a screenshot as target/dashboard.png; then opens
# GraphiQL and the REST API docs the same way (dashboard/test/pages.mjs): they must work under the
# gateway's CSP.
set -euo pipefail
binary="$(realpath "$1")"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/dashboard"
npm ci --no-fund --no-audit --loglevel=error
npm run --silent build
drift=$(git -C "$root" status --porcelain -- dashboard/dist dashboard/src/generated)
if [[ -n "$drift" ]]; then
  echo "dashboard: the committed build differs from a clean rebuild:" >&2
  echo "$drift" >&2
  git -C "$root" --no-pager diff --stat -- dashboard/dist dashboard/src/generated >&2
  echo "run (cd dashboard && npm ci && npm run build) and commit the result" >&2
  exit 1
fi
echo "dashboard: committed build matches a clean rebuild ($(du -cb dist/index.html dist/assets/* | tail -1 | cut -f1) bytes)"

if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
mkdir -p "$root/target"
node test/browser.mjs "$binary" "$root/target/dashboard.png"
node test/pages.mjs "$binary"
