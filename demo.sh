#!/usr/bin/env sh
# The seed's demonstration against a running deployment (`cargo run --release`, or
# `docker-compose up`): trains five sensors, scores normal and anomalous points, saves a plot and
# prints the platform's health. BASE_URL overrides the gateway's address.
set -eu
BASE_URL="${BASE_URL:-http://localhost:8000}"

post() {
  curl -sS -X POST "$BASE_URL$1" -H "Content-Type: application/json" -d "$2"
  echo
}

echo "== training five sensors"
for n in 1 2 3 4 5; do
  base=$((n * 10))
  post "/fit/sensor_0$n" "{\"data\": [
    {\"timestamp\": 1693459200, \"value\": $base.0},
    {\"timestamp\": 1693459260, \"value\": $base.5},
    {\"timestamp\": 1693459320, \"value\": $((base + 1)).0}]}"
done

echo "== a normal reading and an anomalous one"
post /predict/sensor_01 '{"timestamp": 1693460000, "value": 10.5}'
post /predict/sensor_01 '{"timestamp": 1693460060, "value": 22.5}'

echo "== what bad input gets"
post /fit/sensor_flat '{"timestamps": [1, 2, 3], "values": [5.0, 5.0, 5.0]}'
post /predict/sensor_99 '{"timestamp": 1693460000, "value": 1.0}'

echo "== plot of sensor_01 v1 (the training data reaches the database asynchronously)"
for _ in 1 2 3 4 5 6 7 8 9 10; do
  status=$(curl -sS -o plot.png -w '%{http_code}' "$BASE_URL/plot?series_id=sensor_01&version=v1")
  [ "$status" = 200 ] && break
  sleep 0.5
done
echo "plot.png: HTTP $status"

echo "== health"
curl -sS "$BASE_URL/healthcheck"
echo
