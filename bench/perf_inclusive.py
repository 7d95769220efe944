#!/usr/bin/env python3
"""Where the time below one frame goes: each function's inclusive share of all samples, counted
over the samples whose stack holds TARGET (optionally leaving out those that also hold EXCLUDE).
How the README's "where the rest goes" figures were read off `perf record --call-graph dwarf`:

    perf record -F 1000 --call-graph dwarf,16384 -p "$(pgrep -f 'anomaly serve')" -- sleep 5
    perf script -F comm,tid,ip,sym > out.script
    python3 bench/perf_inclusive.py out.script 'Edge<S> as hyper::service' 'Handler<' 40
"""
import collections
import sys


def stacks(path):
    """Each sample's frames, innermost first."""
    frames = []
    for line in open(path, errors="replace"):
        if not line.strip() or line[0] not in " \t":
            if frames:
                yield frames
            frames = []
            continue
        parts = line.strip().split(None, 1)
        frames.append(parts[1] if len(parts) > 1 else "?")
    if frames:
        yield frames


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, target = sys.argv[1], sys.argv[2]
    exclude = sys.argv[3] if len(sys.argv) > 3 else None
    shown = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    total = under = 0
    inclusive = collections.Counter()
    for frames in stacks(path):
        total += 1
        outermost = max((i for i, f in enumerate(frames) if target in f), default=None)
        if outermost is None:
            continue
        below = frames[:outermost]
        if exclude and any(exclude in f for f in below):
            continue
        under += 1
        for name in {f[:160] for f in below if not f.endswith("(inlined)")}:
            inclusive[name] += 1
    if total == 0:
        sys.exit("no samples")
    print(f"{total} samples; below {target!r}: {under} ({100 * under / total:.2f}%)")
    for name, n in inclusive.most_common(shown):
        print(f"{100 * n / total:6.2f}%  {name}")


if __name__ == "__main__":
    main()
