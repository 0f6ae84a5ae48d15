#!/usr/bin/env python3
"""bench/peers/report.py - the table, the aims check and the docs page.

    report.py table RUN.jsonl            the side-by-side table (stdout)
    report.py check RUN.jsonl            the aims of BENCHMARKS.md; exit 1 on a miss
    report.py docs RUN.jsonl MACHINE.txt PAGE.md CHART.png DATA_DIR
                                         write docs/benchmarks.md and its chart

bench/run.sh calls it; RUN.jsonl holds one run's JSON lines (bench/out/last-micro.jsonl).
Standard library only.
"""
import json
import math
import os
import shutil
import subprocess
import sys

# The micro suite's rows in the order of BENCHMARKS.md; rows not listed here
# (new ones) follow in the order they first appear.
BENCH_ORDER = ["resume", "yield", "yield_many", "await_depth_1", "await_depth_32",
               "call_depth_32", "spawn", "memory_per_task", "timers", "timeout_churn",
               "queue_pingpong", "skynet"]
PEERS = ["floor", "cpp20", "go", "asyncio", "libuv", "node", "nginx"]
UNITS = {"ns_per_op": "ns/op", "bytes_per_task": "B/task", "req_per_s": "req/s", "p99_us": "p99 us"}
LOWER_IS_BETTER = {"ns_per_op", "bytes_per_task", "p99_us"}


def load(path):
    """{(bench, metric): {impl: value}} and the row order."""
    rows, order = {}, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            key = (r["bench"], r["metric"])
            if key not in rows:
                rows[key] = {}
                order.append(key)
            rows[key][r["impl"]] = float(r["value"])
    rank = {b: i for i, b in enumerate(BENCH_ORDER)}
    first = {k: i for i, k in enumerate(order)}
    order.sort(key=lambda k: (rank.get(k[0], len(rank)), first[k]))
    return rows, order


def num(v):
    if v is None or math.isnan(v):
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(v):
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 0.1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def present_peers(rows):
    return [p for p in PEERS if any(p in v for v in rows.values())]


def table_lines(rows, order, markdown=False):
    peers = present_peers(rows)
    if markdown:
        head = ["bench", "unit", "coro"] + [x for p in peers for x in (p, f"coro/{p}")]
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (1 + 2 * len(peers))]
        for key in order:
            v = rows[key]
            cells = [key[0], UNITS.get(key[1], key[1]), num(v.get("coro"))]
            for p in peers:
                cells.append(num(v.get(p)))
                cells.append(ratio(v["coro"] / v[p]) if p in v and "coro" in v and v[p] else "")
            out.append("| " + " | ".join(cells) + " |")
        return out
    head = f"{'bench':<16}{'unit':<8}{'coro':>10}" + "".join(f"{p:>11}{'ratio':>7}" for p in peers)
    out = [head, "-" * len(head)]
    for key in order:
        v = rows[key]
        line = f"{key[0]:<16}{UNITS.get(key[1], key[1]):<8}{num(v.get('coro')):>10}"
        for p in peers:
            if p in v:
                r = ratio(v["coro"] / v[p]) if "coro" in v and v[p] else ""
                line += f"{num(v[p]):>11}{r:>7}"
            else:
                line += f"{'-':>11}{'':>7}"
        out.append(line)
    out.append("ratio = coro / peer: below 1 means coro is faster or smaller.")
    return out


# ---- the aims of BENCHMARKS.md ---------------------------------------------

def check(rows):
    """[(True met / False missed / None unmeasured, text)] for the aims of BENCHMARKS.md."""
    def get(bench, impl, metric="ns_per_op"):
        return rows.get((bench, metric), {}).get(impl)

    res = []

    def aim(name, needs, ok, text, goal):
        missing = [what for what, x in needs if x is None]
        if missing:
            res.append((None, f"{name}: not measured, no {' and no '.join(missing)} row (aim: {goal})"))
        else:
            res.append((ok(), f"{name}: {text()} (aim: {goal})"))

    c, p = get("yield", "coro"), get("yield", "cpp20")
    aim("yield", [("coro", c), ("cpp20", p)], lambda: c <= p,
        lambda: f"coro {num(c)} ns, cpp20 {num(p)} ns",
        "coro <= C++20 on a FIFO scheduler")
    d1, d32 = get("await_depth_1", "coro"), get("await_depth_32", "coro")
    aim("await_depth_32/await_depth_1", [("coro await_depth_1", d1), ("coro await_depth_32", d32)],
        lambda: d32 / d1 <= 1.2,
        lambda: f"coro {num(d32)} / {num(d1)} = {ratio(d32 / d1)}",
        "<= 1.2, resume cost flat in depth")
    c, p = get("spawn", "coro"), get("spawn", "cpp20")
    aim("spawn", [("coro", c), ("cpp20", p)], lambda: c <= p,
        lambda: f"coro {num(c)} ns, cpp20 {num(p)} ns", "coro <= C++20 (heap frame)")
    c = get("memory_per_task", "coro", "bytes_per_task")
    aim("memory_per_task", [("coro", c)], lambda: c <= 128.0,
        lambda: f"coro {num(c)} bytes/task", "<= 128 bytes per task sleeping on a timer")
    c, p = get("timers", "coro"), get("timers", "libuv")
    aim("timers", [("coro", c), ("libuv", p)], lambda: c <= 0.25 * p,
        lambda: f"coro {num(c)} ns, libuv {num(p)} ns, a quarter of it {num(0.25 * p)} ns",
        "coro <= 0.25 x libuv")
    return res


# ---- docs/benchmarks.md ----------------------------------------------------

def chart(rows, order, png, data_dir):
    """A dot plot: one line per row, coro and every peer placed on a log axis.
    The time rows on top (ns/op), the memory row below (bytes/task)."""
    gp = shutil.which("gnuplot")
    if not gp:
        return "gnuplot is not installed (apt-get install gnuplot-nox): no chart"
    impls = ["coro"] + present_peers(rows)
    style = {  # colour, point type, size
        # coro a filled disc drawn first; the peers open marks drawn over it,
        # so equal values stay visible
        "coro": ("#d62728", 7, 2.6), "floor": ("#444444", 3, 1.8), "cpp20": ("#1f77b4", 4, 2.0),
        "go": ("#0e9fb0", 8, 2.2), "asyncio": ("#2ca02c", 12, 2.4), "libuv": ("#9467bd", 10, 2.2),
        "node": ("#8c564b", 14, 2.0), "nginx": ("#e377c2", 6, 2.0)}
    time_rows = [k for k in order if k[1] == "ns_per_op"]
    mem_rows = [k for k in order if k[1] == "bytes_per_task"]
    os.makedirs(data_dir, exist_ok=True)

    def write(name, keys):
        path = os.path.join(data_dir, name)
        with open(path, "w") as f:
            for k in keys:  # no header line: the row index ($0) is the y position
                v = rows[k]
                f.write(k[0] + " " + " ".join(f"{v[i]:.6g}" if i in v else "NaN" for i in impls) + "\n")
        return path

    def span(keys, lo_floor):
        vals = [x for k in keys for x in rows[k].values() if x > 0]
        if not vals:
            return lo_floor, lo_floor * 10
        return min(vals) / 2, max(vals) * 2

    def plots(path, key):
        out = []
        for j, i in enumerate(impls):
            color, pt, ps = style.get(i, ("#000000", 1, 1.6))
            ytic = ":ytic(1)" if j == 0 else ""
            title = f"title '{i}'" if key else "notitle"
            out.append(f"'{path}' using {j + 2}:0{ytic} with points pt {pt} ps {ps} lw 2 lc rgb '{color}' {title}")
        return ", ".join(out)

    tdat = write("chart-time.dat", time_rows)
    mdat = write("chart-mem.dat", mem_rows)
    tlo, thi = span(time_rows, 1)
    mlo, mhi = span(mem_rows, 100)
    nt, nm = len(time_rows), max(len(mem_rows), 1)
    height = 150 + 44 * (nt + nm)
    split = 0.08 + 0.84 * (nm + 0.9) / (nt + nm + 1.8)  # where the panels meet (screen y)
    script = f"""
set terminal pngcairo size 1100,{height} font 'DejaVu Sans,12'
set output '{png}'
set termoption noenhanced
set datafile missing 'NaN'
set multiplot title 'coro (red circles) against its peers, micro suite: lower is better, log scale' font ',14'
set lmargin at screen 0.17
set rmargin at screen 0.97
set logscale x
set format x '%.0s%c'
set grid xtics mxtics ytics lc rgb '#dddddd' lt 1
set key at screen 0.57,screen {1 - 52 / height:.4f} center horizontal samplen 1 spacing 1 width 2
set ytics nomirror
set tmargin at screen {1 - 110 / height:.4f}
set bmargin at screen {split + 0.06:.4f}
set xrange [{tlo}:{thi}]
set yrange [{nt - 0.5}:-0.5]
set xlabel 'ns per op' offset 0,0.4
plot {plots(tdat, True)}
unset key
set tmargin at screen {split - 0.02:.4f}
set bmargin at screen 0.07
set xrange [{mlo}:{mhi}]
set yrange [{nm - 0.5}:-0.5]
set xlabel 'resident bytes per pending task' offset 0,0.4
plot {plots(mdat, False)}
unset multiplot
"""
    sp = os.path.join(data_dir, "chart.gp")
    with open(sp, "w") as f:
        f.write(script)
    r = subprocess.run([gp, sp], capture_output=True, text=True)
    if r.returncode != 0:
        return "gnuplot failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return None


def docs(run, machine, page, png, data_dir):
    rows, order = load(run)
    problem = chart(rows, order, png, data_dir)
    with open(machine) as f:
        mach = f.read().strip().splitlines()
    checks = check(rows)
    rel_png = os.path.relpath(png, os.path.dirname(page))
    L = []
    L.append("# Benchmarks")
    L.append("")
    L.append("coro side by side with the systems a user would pick instead, on one machine "
             "in one run (the spec: `shared/BENCHMARKS.md`). The machines are shared and noisy: "
             "absolute numbers move from run to run, the ratios hold. This page is written by "
             "`bash bench/run.sh docs` from the latest `make bench` run.")
    L.append("")
    L.append("## The micro suite, latest run")
    L.append("")
    if problem:
        L.append(f"(no chart: {problem})")
    else:
        L.append(f"![coro against its peers, per row, log scale]({rel_png})")
    L.append("")
    L += table_lines(rows, order, markdown=True)
    L.append("")
    L.append("ns/op: nanoseconds per operation (best of 3); B/task: resident bytes per pending task. "
             "coro/peer below 1 means coro is faster or smaller; `-` means the peer has no such row. "
             "`floor` is one indirect function call, the least a resume can cost.")
    L.append("")
    L.append("### Against the aims")
    L.append("")
    for ok, text in checks:
        mark = "met" if ok else ("not measured" if ok is None else "**missed**")
        L.append(f"- {mark}: {text}")
    L.append("")
    L.append("## The machine")
    L.append("")
    for m in mach:
        L.append(f"- {m}")
    L.append("")
    L.append("## Reproduce")
    L.append("")
    L.append("```sh")
    L.append("make bench                 # build coro -O2 -DNDEBUG, build the peers, run every row (< 4 min on 2 cores)")
    L.append("bash bench/run.sh check    # the aims above; exits non-zero naming each miss")
    L.append("bash bench/run.sh docs     # rewrite this page and its chart from the latest run")
    L.append("```")
    L.append("")
    L.append("Toolchains missing from the machine (g++, golang-go, libuv1-dev, python3, gnuplot-nox) "
             "are installed with apt-get when `make bench` runs as root; otherwise the peer is "
             "skipped with a one-line reason. Peer binaries go to `build/<config>/bench/peers/`, "
             "every measurement is appended to `bench/out/results.jsonl`, and one peer row runs "
             "alone with e.g. `build/cc-epoll-ndebug/bench/peers/cpp20 yield` (or "
             "`python3 bench/peers/asyncio_micro.py yield`).")
    L.append("")
    L.append("## What each peer does")
    L.append("")
    L.append("Every peer does the work of its coro twin in `bench/micro.c`, no less: same "
             "iteration shape, same division into a per-op figure, the result checked. "
             "Sources: `bench/peers/`.")
    L.append("")
    L.append("- **cpp20** (`cpp20.cc`, g++ -O2 -std=c++20 -fcoroutines): a `task<T>` coroutine type "
             "(lazy start, symmetric transfer to the awaiter at final_suspend; every frame from the "
             "global operator new, i.e. glibc malloc, as g++ allocates it: no recycling allocator) and a tiny single-threaded scheduler: a `std::deque` FIFO "
             "of ready `coroutine_handle`s and a binary min-heap of timers. `resume`: "
             "`handle.resume()` of a coroutine looping on `co_await suspend_always`. `yield`, "
             "`yield_many`: 2 or 1,000 tasks, each yield re-queues the handle. `await_depth_D`: "
             "D coroutines awaiting each other, the bottom one yields; per yield. `call_depth_32`: "
             "co_await a fresh 32-deep chain that returns at once (32 frame allocations, as C++ "
             "does it). `spawn`: batches of 1,000 empty tasks created, scheduled, run, destroyed. "
             "`memory_per_task`: 1M tasks each parked on a timer-heap entry. `skynet`: every node "
             "a task whose 10 children are scheduled and joined.")
    L.append("- **go** (`go/micro.go`, GOMAXPROCS=1): `yield`: goroutines looping on "
             "`runtime.Gosched()`; `spawn`: `go func` + `sync.WaitGroup` in batches of 1,000; "
             "`memory_per_task`: 1M goroutines in `time.Sleep(time.Hour)`, RSS from "
             "/proc/self/statm; `timers`: `time.AfterFunc`; `timeout_churn`: "
             "`context.WithTimeout` + a select on a ready channel and `ctx.Done()` + cancel; "
             "`queue_pingpong`: two unbuffered channels, per round trip; `skynet`: the classic "
             "channel version.")
    L.append("- **asyncio** (`asyncio_micro.py`, Debian's python3, default loop): `sleep(0)` "
             "yields, coroutine chains for the depth rows, `create_task` in batches of 1,000, "
             "tasks in `sleep(3600)` for memory (200k), `call_at`, `wait_for` on an already "
             "completed future with a one-hour timeout, two `asyncio.Queue(1)` per round trip, "
             "`gather` for skynet (100k leaves); fewer iterations than coro, the same per-op "
             "division.")
    L.append("- **libuv** (`libuv.c`, libuv1-dev): `timers`: 1M `uv_timer_t` (initialised before "
             "the clock) started with deadlines spread over 0-99 ms, the loop run until every one "
             "fired; `timeout_churn`: `uv_timer_start` of a one-hour timeout + `uv_timer_stop`.")
    L.append("")
    L.append("`timers` rows count process CPU time per timer (arming, the timer heap, the "
             "callbacks) with deadlines spread pseudo-randomly over 0-99 ms, so the wait for the "
             "last deadline is not counted; every other row counts wall time. `queue_pingpong` "
             "counts a round trip, `skynet` a leaf (1M leaves; asyncio 100k).")
    L.append("")
    with open(page, "w") as f:
        f.write("\n".join(L))
    return problem


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, run = argv[1], argv[2]
    if not os.path.exists(run) or os.path.getsize(run) == 0:
        print(f"bench: no results in {run}: run 'make bench' first", file=sys.stderr)
        return 2
    rows, order = load(run)
    if mode == "table":
        print("\n".join(table_lines(rows, order)))
        return 0
    if mode == "check":
        res = check(rows)
        misses = [t for ok, t in res if ok is False]
        for ok, text in res:
            print(("ok     " if ok else "n/a    " if ok is None else "MISSED ") + text)
        if misses:
            sys.stdout.flush()
            print(f"bench-check: {len(misses)} aim(s) missed: "
                  + ", ".join(t.split(":")[0] for t in misses), file=sys.stderr)
            return 1
        return 0
    if mode == "docs" and len(argv) == 7:
        problem = docs(run, argv[3], argv[4], argv[5], argv[6])
        print(f"wrote {argv[4]}" + (f" ({problem})" if problem else f" and {argv[5]}"))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
