#!/usr/bin/env bash
# The schema and the endpoint checked by the JavaScript ecosystem's own tools (pinned in
# .ci/graphql/package-lock.json): graphql-js validates schema.graphql, graphql-codegen turns it into
# TypeScript types that must compile, and graphql-http's server audits run against the given
# `anomaly` binary serving on a free port. Any MUST audit that fails fails CI. graphql-js's
# getIntrospectionQuery() must answer schema.graphql, and the GraphiQL page must load nothing from
# outside the gateway. The REST routes' /openapi.json must be valid OpenAPI 3.1 and /docs load
# nothing from outside the gateway.
set -euo pipefail
binary="$(realpath "$1")"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/.ci/graphql"
npm ci --no-fund --no-audit --loglevel=error
npm run --silent validate
npm run --silent codegen
echo "graphql-codegen: $(grep -c '^export type' generated/schema.ts) TypeScript types compile (tsc --strict)"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && APP_PORT="$port" exec "$binary" >"$work/server.log" 2>&1) &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$port/healthcheck" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$work/server.log"; exit 1; }
  sleep 0.05
done
node audit.mjs "http://127.0.0.1:$port/graphql"
node introspect.mjs "http://127.0.0.1:$port/graphql" "$root/schema.graphql"
node openapi.mjs "http://127.0.0.1:$port"
