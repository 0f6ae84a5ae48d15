#!/usr/bin/env bash
# bench/run.sh - run a benchmark suite and print the side-by-side table.
#
#   bash bench/run.sh [micro|net]     (make bench / make bench-net call this)
#
# Every measurement is appended to $BENCH_OUT/results.jsonl as one JSON
# object (see ../shared/BENCHMARKS.md); the table shows coro, each peer that
# ran, and the coro/peer ratio (below 1 means coro is faster or smaller).
# Peers join in bench/peers/ (their own issue); a peer that cannot run is
# skipped with a one-line reason, never silently.
set -euo pipefail

suite=${1:-${BENCH_SUITE:-micro}}
bin=${BENCH_BIN:-build/bench}
out=${BENCH_OUT:-bench/out}
mkdir -p "$out"
results="$out/results.jsonl"
run_file="$out/last-$suite.jsonl"
: >"$run_file"

if [ "$suite" != micro ]; then
    echo "bench: the '$suite' suite has no benchmarks yet (networking comes with its own issue)" >&2
    exit 1
fi

micro="$bin/micro"
[ -x "$micro" ] || { echo "bench: $micro is missing: run 'make bench'" >&2; exit 1; }

mapfile -t rows < <("$micro" list)
i=0
for row in "${rows[@]}"; do
    i=$((i + 1))
    read -r name impl <<<"$row"
    printf '[%d/%d] %-16s %-6s ...\r' "$i" "${#rows[@]}" "$name" "$impl" >&2
    "$micro" "$name" 0 "$impl" >>"$run_file" 2>>"$out/notes-$suite.txt"
done
printf '%-60s\r' '' >&2
cat "$run_file" >>"$results"

python3 - "$run_file" <<'PY'
import json, sys
rows = {}
order = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = (r["bench"], r["metric"])
    if key not in rows:
        rows[key] = {}
        order.append(key)
    rows[key][r["impl"]] = r["value"]
peers = ["floor", "cpp20", "go", "asyncio", "libuv", "node", "nginx"]
present = [p for p in peers if any(p in v for v in rows.values())]
head = f"{'bench':<18}{'metric':<16}{'coro':>10}" + "".join(f"{p:>10}{'ratio':>8}" for p in present)
print(head)
print("-" * len(head))
for key in order:
    v = rows[key]
    line = f"{key[0]:<18}{key[1]:<16}{v.get('coro', float('nan')):>10.2f}"
    for p in present:
        if p in v and "coro" in v:
            line += f"{v[p]:>10.2f}{v['coro'] / v[p]:>8.2f}"
        else:
            line += f"{'-':>10}{'':>8}"
    print(line)
PY
if [ -s "$out/notes-$suite.txt" ]; then
    echo
    sort -u "$out/notes-$suite.txt"
    rm -f "$out/notes-$suite.txt"
fi
echo
echo "results appended to $results"
