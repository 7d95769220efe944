#!/usr/bin/env bash
# The README's performance figures, as a user reproduces them: the release build of `anomaly`
# beside a bare axum JSON handler (the reference), both driven by wrk (an independent load
# generator; installed from Debian when missing), interleaved, every figure a ratio to the
# reference run just before it, with p50/p99 and the servers' CPU per request. Each run measures
# every scenario in 5 interleaved rounds of 3 s and ends with each scenario's median over them (the
# README's figures); the benchmark runs RUNS times (2 by default), so a second run shows how far a
# figure moves. Extra arguments go to every run (e.g. --series 1000000, or --database-url
# postgres://... --kafka HOST:PORT --redis redis://... for the distributed scenario).
#
#   bash bench/run.sh [--seconds 3] [--rounds 5] [--series 1000000] [...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/anomaly-target}"
if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked --bin anomaly -p anomaly-api --example hot_path_bench
for run in $(seq 1 "${RUNS:-2}"); do
  printf '\n## run %s of %s (%s)\n' "$run" "${RUNS:-2}" "$(date -u +%FT%TZ)"
  "$CARGO_TARGET_DIR/release/examples/hot_path_bench" --seconds 3 --rounds 5 "$@"
done
