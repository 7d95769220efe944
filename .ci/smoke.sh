#!/usr/bin/env bash
# Starts the given `anomaly` binary with no configuration in an empty directory, on a free port,
# and replays the seed README's four curl calls (fit, predict, plot, healthcheck).
set -euo pipefail
binary="$1"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
cd "$work"
APP_PORT="$port" "$binary" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

fail() { echo "smoke: $*" >&2; tail -20 "$work/server.log" >&2; exit 1; }

for _ in $(seq 1 200); do
  curl -sf "$base/healthcheck" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited"
  sleep 0.05
done

fit=$(curl -s -X POST "$base/fit/sensor_01" -H "Content-Type: application/json" -d '{
    "data": [
      {"timestamp": 1693459200, "value": 10.0},
      {"timestamp": 1693459260, "value": 10.5},
      {"timestamp": 1693459320, "value": 11.0}
    ]
  }')
echo "fit:     $fit"
[[ "$fit" == '{"series_id":"sensor_01","version":"v1","points_used":3'* ]] || fail "unexpected fit answer"

predict=$(curl -s -X POST "$base/predict/sensor_01" -H "Content-Type: application/json" -d '{
    "timestamp": 1693460000,
    "value": 10.5
  }')
echo "predict: $predict"
[[ "$predict" == '{"model_version":"v1","anomaly":false'* ]] || fail "unexpected predict answer"

status=""
for _ in $(seq 1 100); do
  status=$(curl -s -o plot.png -w '%{http_code}' -X GET "$base/plot?series_id=sensor_01&version=v1")
  [[ "$status" == 200 ]] && break
  sleep 0.05
done
[[ "$status" == 200 ]] || fail "plot answered $status"
python3 - plot.png <<'PY' || fail "plot.png is not a PNG that decodes"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
pos, idat, size = 8, b"", None
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    chunk = data[pos + 8:pos + 8 + length]
    assert zlib.crc32(kind + chunk) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0], "crc"
    if kind == b"IHDR":
        size = struct.unpack(">II", chunk[:8])
    if kind == b"IDAT":
        idat += chunk
    pos += 12 + length
raw = zlib.decompress(idat)
w, h = size
assert len(raw) == h * (1 + 3 * w), "pixel data"
print(f"plot:    {w}x{h} PNG, {len(data)} bytes")
PY

health=$(curl -s -X GET "$base/healthcheck")
echo "health:  ${health:0:200}..."
for key in series_trained inference_latency_ms training_latency_ms throughput model_usage system_metrics; do
  [[ "$health" == *"\"$key\""* ]] || fail "healthcheck lacks $key"
done

kill -TERM "$pid"
wait "$pid" || fail "the server did not stop cleanly on SIGTERM"
trap - EXIT
echo "smoke: ok"
