#!/usr/bin/env bash
# The README's performance figures, as a user reproduces them: the release build of `anomaly`
# beside a bare axum JSON handler (the reference), both driven by wrk (an independent load
# generator; installed from Debian when missing), interleaved, every figure a ratio to the mean
# of the reference runs just before and just after it, with p50/p99, the servers' CPU per request
# and what the whole machine did (busy cores, the hypervisor's steal). Each run measures
# every scenario in 5 interleaved rounds of 3 s and ends with each scenario's median over them;
# the benchmark runs RUNS times (3 by default) and ends with each scenario's medians side by side
# and their range: the README's figures, which a later run of this script lands in (within
# ±0.05). Extra arguments go to every run (e.g. --series 1000000, or --database-url
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
runs="${RUNS:-3}"
# What the figures were measured on: machines of the same kind differ (the README names its own).
printf 'machine: %s, %s cores, %s MB, kernel %s\n' \
  "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(nproc)" \
  "$(awk '/^MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo)" "$(uname -r)"
outputs=$(mktemp -d)
trap 'rm -rf "$outputs"' EXIT
for run in $(seq 1 "$runs"); do
  printf '\n## run %s of %s (%s)\n' "$run" "$runs" "$(date -u +%FT%TZ)"
  "$CARGO_TARGET_DIR/release/examples/hot_path_bench" --seconds 3 --rounds 5 "$@" |
    tee "$outputs/$run"
done
# Each scenario's median ratio in every run (the summary table each run ends with), and their
# range.
printf '\n## %s runs: each scenario'"'"'s median ratio to the reference, run by run, and their range\n\n' "$runs"
printf '| scenario | medians, run by run | range |\n|---|---|---|\n'
# shellcheck disable=SC2046 # the runs' files, in run order
awk '
  FNR == 1 { run++; summary = 0 }
  /^\| scenario \| median ratio/ { summary = 1; next }
  summary && /^\|---/ { next }
  summary && /^\| / {
    split($0, cell, " \\| "); sub(/^\| /, "", cell[1]); name = cell[1]; median = cell[2]
    if (!(name in low)) { order[++n] = name; low[name] = median; high[name] = median }
    medians[name] = medians[name] (run == 1 ? "" : " / ") median
    if (median + 0 < low[name] + 0) low[name] = median
    if (median + 0 > high[name] + 0) high[name] = median
    next
  }
  summary { summary = 0 }
  END { for (i = 1; i <= n; i++) printf "| %s | %s | %s–%s |\n", order[i], medians[order[i]], low[order[i]], high[order[i]] }
' $(seq -f "$outputs/%g" 1 "$runs")
# Every round of every run together: each scenario's median ratio over all of them, the single
# figure least moved by one noisy run (a second invocation of this script lands within ±0.05 of
# it where the README says so).
printf '\n## all %s runs'"'"' rounds together: each scenario'"'"'s median ratio to the reference\n\n' "$runs"
printf '| scenario | rounds | median ratio | rounds'"'"' range |\n|---|---|---|---|\n'
# shellcheck disable=SC2046 # the runs' files, in run order
awk '
  /^\| [0-9]+ \| / {
    split($0, cell, " \\| "); name = cell[2]; ratio = cell[4] + 0
    if (name == "reference axum handler") next
    if (!(name in count)) order[++n] = name
    i = ++count[name]; value[name, i] = ratio
    # Insertion sort: a few dozen rounds at most.
    while (i > 1 && value[name, i - 1] > value[name, i]) {
      t = value[name, i]; value[name, i] = value[name, i - 1]; value[name, i - 1] = t; i--
    }
  }
  END {
    for (k = 1; k <= n; k++) {
      name = order[k]; c = count[name]
      median = c % 2 ? value[name, (c + 1) / 2] : (value[name, c / 2] + value[name, c / 2 + 1]) / 2
      printf "| %s | %d | %.2f | %.2f–%.2f |\n", name, c, median, value[name, 1], value[name, c]
    }
  }
' $(seq -f "$outputs/%g" 1 "$runs")
