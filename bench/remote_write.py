#!/usr/bin/env python3
"""Remote-write ingestion beside its same-run reference, the REST batch route (POST
/predict-batch), as a user reproduces it: this script builds the request bodies itself (its own
protobuf and snappy encoders: no code of anomaly's), wrk sends them, and the server's own
anomaly_predictions_total says how many points were scored. Both routes get the same points:
THREADS x SERIES series (each wrk thread its own), fitted first on WARMUP points each (remote
write: by its warm-up; REST: by /fit), then BATCH points per request, SAMPLES_PER_SERIES per
series. Prints scored points/s of each and their ratio.

  python3 bench/remote_write.py target/release/anomaly [--bodies 600] [--threads 2] [--series 1000]
"""
import argparse, json, os, re, signal, socket, struct, subprocess, sys, tempfile, time, urllib.request

T0_MS = 1_764_000_000_000


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(tag, wire, payload):
    return varint(tag << 3 | wire) + payload


def length_delimited(tag, payload):
    return field(tag, 2, varint(len(payload)) + payload)


def timeseries(labels, samples):
    body = b"".join(length_delimited(1, length_delimited(1, n.encode()) + length_delimited(2, v.encode())) for n, v in labels)
    for ts, value in samples:
        body += length_delimited(2, field(1, 1, struct.pack("<d", value)) + field(2, 0, varint(ts & (2**64 - 1))))
    return length_delimited(1, body)


def snappy_literal(raw):
    """Snappy block format holding `raw` as literals only (valid for every decoder)."""
    out = bytearray(varint(len(raw)))
    for start in range(0, len(raw), 65536):
        chunk = raw[start : start + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
    return bytes(out)


def value(series, step):
    return 10.0 + (step + series) % 6 + 0.1 * ((step * 7) % 3)


def labels(thread, series):
    return [("__name__", "bench_load"), ("instance", f"host-{thread}"), ("series", str(series))]


def rest_id(thread, series):
    return f"bench_t{thread}_s{series}"


def post(url, body, headers):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status


def predictions(base):
    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    match = re.search(r"^anomaly_predictions_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--seconds", type=int, default=120, help="longest a route may take")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--series", type=int, default=1000, help="series per wrk thread")
    p.add_argument("--samples-per-series", type=int, default=2)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--bodies", type=int, default=600, help="requests per thread per route (each is sent once)")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="anomaly-rw-bench-")
    batch = args.series * args.samples_per_series
    print(f"{args.threads} threads x {args.series} series, {batch} points per request, bodies in {work}", flush=True)

    # Bodies: step s of series i carries value(i, s) at T0 + s seconds; warm-up steps first.
    for t in range(args.threads):
        os.makedirs(f"{work}/t{t}")
        for j in range(args.bodies):
            first = args.warmup + j * args.samples_per_series
            steps = range(first, first + args.samples_per_series)
            raw = b"".join(timeseries(labels(t, i), [(T0_MS + 1000 * s, value(i, s)) for s in steps]) for i in range(args.series))
            open(f"{work}/t{t}/{j}.bin", "wb").write(snappy_literal(raw))
            points = [{"series_id": rest_id(t, i), "timestamp": T0_MS // 1000 + s, "value": value(i, s)} for i in range(args.series) for s in steps]
            open(f"{work}/t{t}/{j}.json", "w").write(json.dumps({"points": points}))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, APP_HOST="127.0.0.1", APP_PORT=str(port), DATABASE_URL=f"sqlite://{work}/anomaly.db?mode=rwc",
               REMOTE_WRITE_WARMUP_POINTS=str(args.warmup), REMOTE_WRITE_NEW_SERIES_PER_MINUTE="1000000",
               REMOTE_WRITE_MAX_SERIES=str(10 * args.threads * args.series), RUST_LOG="warn")
    server = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/server.log", "w"))
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/healthcheck", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        rw = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf", "X-Prometheus-Remote-Write-Version": "0.1.0"}
        for t in range(args.threads):
            warm = b"".join(timeseries(labels(t, i), [(T0_MS + 1000 * s, value(i, s)) for s in range(args.warmup)]) for i in range(args.series))
            assert post(f"{base}/api/v1/write", snappy_literal(warm), rw) == 204
            for i in range(args.series):
                fit = {"timestamps": [T0_MS // 1000 + s for s in range(args.warmup)], "values": [value(i, s) for s in range(args.warmup)]}
                assert post(f"{base}/fit/{rest_id(t, i)}", json.dumps(fit).encode(), {"Content-Type": "application/json"}) == 200
        trained = json.load(urllib.request.urlopen(f"{base}/healthcheck"))["series_trained"]
        print(f"{trained} series trained (remote write and REST)", flush=True)
        rates = {}
        for name, kind, path in [("REST POST /predict-batch (reference)", "json", "/predict-batch"), ("remote write POST /api/v1/write", "bin", "/api/v1/write")]:
            before = predictions(base)
            want = args.threads * args.bodies * batch
            wrk = subprocess.Popen(["wrk", "-t", str(args.threads), "-c", str(args.threads), "-d", f"{args.seconds}s", "--latency",
                                    "-s", os.path.join(os.path.dirname(os.path.abspath(__file__)), "remote_write.lua"), base + path],
                                   env=dict(os.environ, BODIES=work, KIND=kind), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # The server's own count says when the first point was scored and when the last was.
            first = last = None
            scored = 0.0
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline and wrk.poll() is None:
                now, count = time.monotonic(), predictions(base) - before
                if count > 0 and first is None:
                    first = now
                if count > scored:
                    scored, last = count, now
                if scored >= want:
                    break
                time.sleep(0.02)
            time.sleep(0.2)
            wrk.send_signal(signal.SIGINT)
            out, err = wrk.communicate(timeout=30)
            scored = predictions(base) - before
            elapsed = (last - first) if first and last and last > first else float("nan")
            # `first` is seen up to one poll after the first point: add the poll interval back.
            rates[name] = scored * (1 - 1 / max(1, args.bodies)) / elapsed if elapsed == elapsed else 0.0
            p50 = re.search(r"50%\s+(\S+)", out)
            p99 = re.search(r"99%\s+(\S+)", out)
            print(f"{name}: {scored:.0f} of {want} points scored in {elapsed:.2f} s = {rates[name]:,.0f} points/s "
                  f"(request p50 {p50.group(1) if p50 else '?'}, p99 {p99.group(1) if p99 else '?'})", flush=True)
            for line in out.splitlines():
                if line.startswith("thread "):
                    print("  " + line)
            if err.strip():
                print("  wrk: " + err.strip()[:400])
            # The server's own view of the same requests: how many took longer than 100 ms, 1 s.
            text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
            buckets = dict(re.findall(r'anomaly_http_request_duration_seconds_bucket\{[^}]*route="' + re.escape(path) + r'"[^}]*le="([^"]+)"\} (\S+)', text))
            if buckets:
                total = float(buckets.get("+Inf", 0))
                print(f"  server: {total:.0f} requests, {total - float(buckets.get('0.1', total)):.0f} over 100 ms, {total - float(buckets.get('1', total)):.0f} over 1 s")
        text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith("anomaly_remote_write_samples_total"):
                print("  " + line)
        names = list(rates)
        if rates[names[0]] > 0:
            print(f"ratio remote write / REST batch: {rates[names[1]] / rates[names[0]]:.2f}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
