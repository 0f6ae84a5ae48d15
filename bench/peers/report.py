#!/usr/bin/env python3
"""bench/peers/report.py - the table, the aims check and the docs page.

    report.py table RUN.jsonl            the side-by-side table (stdout)
    report.py check RUN.jsonl            the aims of BENCHMARKS.md; exit 1 on a miss
    report.py nettable NET.jsonl         the network suite's table (stdout)
    report.py docs RUN.jsonl MACHINE.txt PAGE.md CHART.png DATA_DIR
                   [NET.jsonl NET_MACHINE.txt NET_CHART.png NET_SKIPS.txt NET_NOTES.txt]
                                         write docs/benchmarks.md and its charts
                                         (the network section when NET... are given)

bench/run.sh calls it; RUN.jsonl holds one run's JSON lines (bench/out/last-micro.jsonl,
bench/out/last-net.jsonl).
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
UNITS = {"ns_per_op": "ns/op", "bytes_per_task": "B/task", "req_per_s": "req/s", "p99_us": "p99 us",
         "cpu_us_per_req": "cpu us/req", "bytes_per_conn": "B/idle conn", "bytes_per_key": "B/key"}
LOWER_IS_BETTER = {"ns_per_op", "bytes_per_task", "p99_us", "cpu_us_per_req", "bytes_per_conn",
                   "bytes_per_key"}

# The network suite (bench/net/): its rows, its peers in table order.
NET_BENCH_ORDER = ["echo_1k_c50", "echo_1k_c1", "echo_64k_c10", "http_c100", "http_c1000",
                   "resp_c50", "resp_c50_p16", "resp_mem", "http_c100_loops1", "http_c100_loops2"]
NET_LOOPS = ["http_c100_loops1", "http_c100_loops2"]  # coro only: http_server --loops N
NET_PEERS = ["libuv", "nginx", "redis", "go", "node", "asyncio", "asyncio_proto"]
NET_METRICS = ["req_per_s", "p99_us", "cpu_us_per_req", "bytes_per_conn", "bytes_per_key"]
BUSY = 0.90  # a load client above this share of its core is (close to) the bottleneck
CONTENDED = 0.10  # other work on the two pinned CPUs above this (in cores) makes a row unreliable


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


# ---- the network suite -----------------------------------------------------

def load_net(path):
    """(rows, order, cpu): rows {(bench, metric): {impl: value}} with the derived
    metric cpu_us_per_req (the server's CPU time per request), cpu {(bench, impl):
    (client_cpu, server_cpu, other_cpu)} in cores (None where unknown)."""
    rows, cpu = {}, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r.get("suite") != "net":
                continue
            b, i = r["bench"], r["impl"]
            rows.setdefault((b, r["metric"]), {})[i] = float(r["value"])
            if "client_cpu" in r:
                cpu[(b, i)] = (float(r["client_cpu"]),
                               float(r["server_cpu"]) if "server_cpu" in r else None,
                               float(r["other_cpu"]) if "other_cpu" in r else None)
    for (b, m), v in list(rows.items()):
        if m != "req_per_s":
            continue
        for i, rps in v.items():
            s = cpu.get((b, i), (None, None, None))[1]
            if s is not None and rps > 0:
                rows.setdefault((b, "cpu_us_per_req"), {})[i] = s / rps * 1e6
    benches = [b for b in NET_BENCH_ORDER if any(k[0] == b for k in rows)]
    benches += sorted({k[0] for k in rows} - set(benches))
    order = [(b, m) for b in benches for m in NET_METRICS if (b, m) in rows]
    return rows, order, cpu


def net_peers(rows):
    present = {i for v in rows.values() for i in v}
    return [p for p in NET_PEERS if p in present] + sorted(present - set(NET_PEERS) - {"coro"})


def contended(cpu, bench, impl):
    """None, or a sentence on other work competing for the two pinned CPUs."""
    o = cpu.get((bench, impl), (None, None, None))[2]
    if o is None or o < CONTENDED:
        return None
    return (f"{bench} {impl}: other work took {o:.0%} of a core on the two pinned CPUs during "
            f"the row (other processes, interrupts, steal): its figures are unreliable")


def client_bound(cpu, bench, impl):
    """None, or a sentence on the client being (close to) the bottleneck."""
    c, s, _ = cpu.get((bench, impl), (None, None, None))
    if c is None or c < BUSY:
        return None
    if s is not None and s < BUSY:
        return (f"{bench} {impl}: the client was the bottleneck (client {c:.0%} of its core, "
                f"server {s:.0%}): the server could do more than this figure")
    srv = f"server {s:.0%}" if s is not None else "server CPU unknown"
    return (f"{bench} {impl}: client and server both near saturation (client {c:.0%} of its core, "
            f"{srv}): the client may limit this figure as much as the server")


def net_table_lines(rows, order, cpu, markdown=False):
    peers = net_peers(rows)

    def cell(key, impl):
        v = rows[key].get(impl)
        if v is None:
            return "-"
        mark = ""
        if key[1] == "req_per_s":
            mark += "*" if client_bound(cpu, key[0], impl) else ""
            mark += "!" if contended(cpu, key[0], impl) else ""
        return num(v) + mark

    def rat(key, p):
        v = rows[key]
        return ratio(v["coro"] / v[p]) if p in v and "coro" in v and v[p] else ""

    out = []
    if markdown:
        head = ["bench", "unit", "coro"] + [x for p in peers for x in (p, f"coro/{p}")]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * 2 + "---:|" * (1 + 2 * len(peers)))
        for key in order:
            cells = [key[0], UNITS.get(key[1], key[1]), cell(key, "coro")]
            for p in peers:
                cells += [cell(key, p), rat(key, p)]
            out.append("| " + " | ".join(cells) + " |")
        return out
    w = {p: max(11, len(p) + 2) for p in peers}
    bw = max([14] + [len(k[0]) + 2 for k in order])
    head = f"{'bench':<{bw}}{'unit':<12}{'coro':>11}" + "".join(f"{p:>{w[p]}}{'ratio':>7}" for p in peers)
    out += [head, "-" * len(head)]
    for key in order:
        line = f"{key[0]:<{bw}}{UNITS.get(key[1], key[1]):<12}{cell(key, 'coro'):>11}"
        for p in peers:
            line += f"{cell(key, p):>{w[p]}}{rat(key, p):>7}"
        out.append(line)
    out += net_legend()
    return out


def net_legend():
    return ["ratio = coro / peer. req/s: above 1 means coro is faster. p99 us (99th percentile "
            "round trip) and cpu us/req: below 1 means coro is better.",
            "cpu us/req = the server's CPU time per request over the measured window (/proc): what a "
            "request costs the server, whether or not the client was the bottleneck.",
            "* = the load client used at least 90% of its core; ! = other work competed for the "
            "two CPUs (10% of a core or more): see the notes below."]


def net_notes(rows, cpu):
    impls = ["coro"] + net_peers(rows)
    benches = [b for b in NET_BENCH_ORDER if (b, "req_per_s") in rows]
    return [n for b in benches for i in impls if i in rows[(b, "req_per_s")]
            for n in [client_bound(cpu, b, i), contended(cpu, b, i)] if n]


def loops_note(rows, cpu):
    """None, or the plain word on the one-loop-per-thread rows (coro only)."""
    have = [b for b in NET_LOOPS if "coro" in rows.get((b, "req_per_s"), {})]
    if not have:
        return None
    figs = []
    for b in have:
        rps = rows[(b, "req_per_s")]["coro"]
        us = rows.get((b, "cpu_us_per_req"), {}).get("coro")
        c, s, _ = cpu.get((b, "coro"), (None, None, None))
        f = f"{b[-6:].replace('loops', '')} loop{'s' if not b.endswith('1') else ''}: {num(rps)} req/s"
        if us is not None:
            f += f", {num(us)} us of server CPU per request"
        if c is not None and s is not None:
            f += f" (server {s:.2f} cores, client {c:.2f})"
        figs.append(f)
    return ("http_c100_loops1/_loops2: coro's http_server with --loops 1 and 2 (one loop per thread, "
            "each with its own SO_REUSEPORT listener), wrk -t1 -c100 as in http_c100, but server and "
            "client may both run on the two CPUs. On this 2-core machine the client takes about a "
            "core's share of the two, so 2 loops cannot double req/s: the second loop mostly "
            "competes with wrk for the same cores. Compare the server CPU per request (every thread "
            "of the process). " + "; ".join(figs) + ".")


def net_check(rows, cpu):
    """[(True/False/None, text)] for the network aims of BENCHMARKS.md."""
    res = []

    def get(b, i):
        return rows.get((b, "req_per_s"), {}).get(i)

    def bound(b, peer):
        """A word on the client's core when it was near saturation on the row."""
        if contended(cpu, b, "coro") or contended(cpu, b, peer):
            return " (other work competed for the CPUs on this row: not a fair reading)"
        if not (client_bound(cpu, b, "coro") or client_bound(cpu, b, peer)):
            return ""
        cu = rows.get((b, "cpu_us_per_req"), {})
        if "coro" in cu and peer in cu:
            return (f" (the client was near saturation, so req/s is capped by it: the server CPU per "
                    f"request, coro {num(cu['coro'])} us against {peer} {num(cu[peer])} us, "
                    f"ratio {ratio(cu['coro'] / cu[peer])}, says more)")
        return " (the client was near saturation, so req/s is capped by it)"

    def cpu_req(b, i):
        return rows.get((b, "cpu_us_per_req"), {}).get(i)

    c, u, g = get("echo_1k_c50", "coro"), get("echo_1k_c50", "libuv"), get("echo_1k_c50", "go")
    goal = "coro >= 1.2 x libuv" + (" and >= Go" if g is not None else "") + ", req/s"
    if c is None or u is None:
        miss = [n for n, x in (("coro", c), ("libuv", u)) if x is None]
        res.append((None, f"echo_1k_c50: not measured, no {' and no '.join(miss)} row (aim: {goal})"))
    else:
        go = f", {ratio(c / g)} x Go" if g is not None else " (no Go row)"
        res.append((c >= 1.2 * u and (g is None or c >= g),
                    f"echo_1k_c50: coro {num(c)} req/s = {ratio(c / u)} x libuv{go}"
                    f"{bound('echo_1k_c50', 'libuv')} (aim: {goal})"))
    c, u = get("echo_64k_c10", "coro"), get("echo_64k_c10", "libuv")
    goal = "coro >= libuv, req/s"
    if c is None or u is None:
        miss = [n for n, x in (("coro", c), ("libuv", u)) if x is None]
        res.append((None, f"echo_64k_c10: not measured, no {' and no '.join(miss)} row (aim: {goal})"))
    else:
        res.append((c >= u, f"echo_64k_c10: coro {num(c)} req/s = {ratio(c / u)} x libuv"
                            f"{bound('echo_64k_c10', 'libuv')} (aim: {goal})"))
    c, n = cpu_req("http_c100", "coro"), cpu_req("http_c100", "nginx")
    goal = "server CPU per request, coro <= nginx (one worker) / 1.3"
    if c is None or n is None:
        miss = [x for x, v in (("coro", c), ("nginx", n)) if v is None]
        res.append((None, f"http_c100: not measured, no server CPU per request for "
                          f"{' and none for '.join(miss)} (aim: {goal})"))
    else:
        busy = contended(cpu, "http_c100", "coro") or contended(cpu, "http_c100", "nginx")
        res.append((c * 1.3 <= n, f"http_c100: coro {num(c)} us of server CPU per request = "
                                  f"{ratio(c / n)} x nginx's {num(n)} us (1/1.3 = 0.77)"
                                  + (" (other work competed for the CPUs on this row: not a fair "
                                     "reading)" if busy else "") + f" (aim: {goal})"))
    # the Redis-protocol rows: server CPU per request at most redis-server's on
    # both, and req/s at least redis-server's with -P 16
    for b, want_rps in (("resp_c50", False), ("resp_c50_p16", True)):
        cu = rows.get((b, "cpu_us_per_req"), {})
        c, r = get(b, "coro"), get(b, "redis")
        goal = "coro's server CPU per request <= redis-server's" + (", and req/s >= redis-server's"
                                                                    if want_rps else "")
        if "coro" not in cu or "redis" not in cu or c is None or r is None:
            res.append((None, f"{b}: not measured, no coro or no redis row with server CPU (aim: {goal})"))
            continue
        ok = cu["coro"] <= cu["redis"] and (not want_rps or c >= r)
        res.append((ok, f"{b}: coro {num(cu['coro'])} us/request = {ratio(cu['coro'] / cu['redis'])} x "
                        f"redis-server's, {num(c)} req/s = {ratio(c / r)} x redis-server's{bound(b, 'redis')} (aim: {goal})"))
    return res


def net_chart(rows, order, png, data_dir):
    """Three dot-plot panels, one line per bench, log axes: req/s (higher is
    better), p99 us and server CPU us per request (lower is better)."""
    gp = shutil.which("gnuplot")
    if not gp:
        return "gnuplot is not installed (apt-get install gnuplot-nox): no chart"
    impls = ["coro"] + net_peers(rows)
    style = {"coro": ("#d62728", 7, 2.6), "libuv": ("#9467bd", 10, 2.2), "nginx": ("#e377c2", 6, 2.2),
             "go": ("#0e9fb0", 8, 2.2), "node": ("#8c564b", 14, 2.0), "asyncio": ("#2ca02c", 12, 2.4),
             "asyncio_proto": ("#2ca02c", 2, 2.0), "redis": ("#ff7f0e", 4, 2.2)}
    os.makedirs(data_dir, exist_ok=True)
    panels = [("req_per_s", "requests per second (higher is better)"),
              ("p99_us", "p99 latency, microseconds (lower is better)"),
              ("cpu_us_per_req", "server CPU microseconds per request (lower is better)")]
    panels = [(m, t, [k for k in order if k[1] == m]) for m, t in panels]
    panels = [p for p in panels if p[2]]
    if not panels:
        return "no figure to draw"
    n_lines = sum(len(p[2]) for p in panels)
    height = 130 + 40 * n_lines + 95 * len(panels)
    top = 1 - 100 / height
    bottom = 0.02
    unit = (top - bottom) / (n_lines + 1.9 * len(panels))  # screen height of one line
    script = [f"set terminal pngcairo size 1100,{height} font 'DejaVu Sans,12'",
              f"set output '{png}'", "set termoption noenhanced", "set datafile missing 'NaN'",
              "set multiplot title '" + ("coro (red discs)" if any("coro" in rows[k] for k in order)
                                         else "no coro row yet: the peers") +
              " against its peers, network suite, loopback, log scale' font ',14'",
              "set lmargin at screen 0.15", "set rmargin at screen 0.97", "set logscale x",
              "set format x '%.0s%c'", "set grid xtics mxtics ytics lc rgb '#dddddd' lt 1",
              "set ytics nomirror",
              f"set key at screen 0.56,screen {1 - 52 / height:.4f} center horizontal samplen 1 "
              "spacing 1 width 2"]
    y = top
    for j, (metric, title, keys) in enumerate(panels):
        path = os.path.join(data_dir, f"net-{metric}.dat")
        with open(path, "w") as f:
            for k in keys:
                v = rows[k]
                f.write(k[0] + " " + " ".join(f"{v[i]:.6g}" if i in v else "NaN" for i in impls) + "\n")
        vals = [x for k in keys for x in rows[k].values() if x > 0]
        lo, hi = (min(vals) / 2, max(vals) * 2) if vals else (1, 10)
        h = unit * (len(keys) + 0.6)
        plots = []
        for n, i in enumerate(impls):
            color, pt, ps = style.get(i, ("#000000", 1, 1.6))
            ytic = ":ytic(1)" if n == 0 else ""
            t = f"title '{i}'" if j == 0 else "notitle"
            plots.append(f"'{path}' using {n + 2}:0{ytic} with points pt {pt} ps {ps} lw 2 "
                         f"lc rgb '{color}' {t}")
        script += [f"set tmargin at screen {y:.4f}", f"set bmargin at screen {y - h:.4f}",
                   f"set xrange [{lo}:{hi}]", f"set yrange [{len(keys) - 0.5}:-0.5]",
                   f"set xlabel '{title}' offset 0,0.4", "plot " + ", ".join(plots)]
        if j == 0:
            script.append("unset key")
        y -= h + unit * 1.3
    script.append("unset multiplot")
    sp = os.path.join(data_dir, "net-chart.gp")
    with open(sp, "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run([gp, sp], capture_output=True, text=True)
    if r.returncode != 0:
        return "gnuplot failed: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return None


def read_lines(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return [x.rstrip("\n") for x in f if x.strip()]


def net_docs(run, machine, png, skips, notes, page, data_dir):
    """The lines of the network section of docs/benchmarks.md."""
    rows, order, cpu = load_net(run)
    problem = net_chart(rows, order, png, data_dir)
    rel_png = os.path.relpath(png, os.path.dirname(page))
    L = ["## The network suite, latest run", ""]
    L.append("Loopback only. Each row starts the server afresh pinned to one CPU, the load client "
             "pinned to the other (`taskset`), a warm-up, then the measured window; the server is "
             "stopped afterwards and checked for a crash. One load client for every echo server "
             "(`bench/net/netload.c`, plain C on epoll, not coro) checks every byte it gets back; "
             "the http rows use `wrk -t1 --latency` after a check that `GET /` answers "
             "`hello, world\\n` twice on one keep-alive connection; the resp rows use "
             "`redis-benchmark`.")
    L.append("")
    if problem:
        L.append(f"(no chart: {problem})")
    else:
        L.append(f"![coro against its peers, network suite, log scale]({rel_png})")
    L.append("")
    L += net_table_lines(rows, order, cpu, markdown=True)
    L.append("")
    L.append(" ".join(net_legend()).replace("* =", "`*` ="))
    L.append("`-`: that server has no such row (or did not run: see below).")
    L.append("")
    bound = net_notes(rows, cpu)
    if bound:
        L.append("### Where the client was the bottleneck, where other work competed")
        L.append("")
        L.append("Two cores: one for the server, one for the client, and on loopback the client's "
                 "writes pay for a good part of the TCP work, so a fast server saturates the "
                 "client's core about when it saturates its own. There, req/s says how fast the "
                 "pair went; `cpu us/req` still compares the servers. The machine may also run "
                 "other work: the client reports what the two pinned CPUs spent on anything but "
                 "the client and the server (`other_cpu`), and a row with 10% of a core or more of "
                 "that is marked `!`.")
        L.append("")
        L += [f"- {n}" for n in bound]
        L.append("")
    ln = loops_note(rows, cpu)
    if ln:
        L.append("### One loop per thread (2 cores, shared with the client)")
        L.append("")
        L.append(ln)
        L.append("")
    L.append("### Against the aims")
    L.append("")
    for ok, text in net_check(rows, cpu):
        mark = "met" if ok else ("not measured" if ok is None else "**missed**")
        L.append(f"- {mark}: {text}")
    L.append("")
    sk, nt = read_lines(skips), read_lines(notes)
    if sk or nt:
        L.append("### Skipped, failed, warned")
        L.append("")
        L += [f"- skipped {x}" for x in sk]
        L += [f"- {x.replace('bench-net: ', '', 1)}" for x in nt]
        L.append("")
    L.append("### The machine (network run)")
    L.append("")
    L += [f"- {m}" for m in read_lines(machine)]
    L.append("")
    L.append("### Reproduce")
    L.append("")
    L.append("```sh")
    L.append("make bench-net             # the client, the peers and coro's example servers, every row (< 6 min on 2 cores)")
    L.append("bash bench/run.sh docs     # rewrite this page and docs/bench-net.png from the latest runs")
    L.append("```")
    L.append("")
    L.append("golang-go, libuv1-dev, nodejs, nginx-light, wrk and python3 are installed with apt-get "
             "when `make bench-net` runs as root; otherwise the peer is skipped with a one-line "
             "reason. Server and client logs go to `bench/out/net-logs/`; every figure is appended "
             "to `bench/out/results.jsonl` with the client's and the server's CPU use "
             "(`client_cpu`, `server_cpu`, in cores), and the server's CPU time per request as a "
             "line of its own (metric `cpu_us_per_req`). `BENCH_NET_IMPLS`, `BENCH_NET_BENCHES`, "
             "`BENCH_NET_DURATION` and `BENCH_NET_WARMUP` narrow or lengthen a run, e.g. "
             "`BENCH_NET_IMPLS='coro libuv' BENCH_NET_BENCHES=echo_1k_c50 make bench-net`. "
             "One row by hand (`make bench-net` builds into `build/cc-epoll-ndebug/bench/net/`): "
             "`taskset -c 0 build/cc-epoll-ndebug/bench/net/echo_libuv 9000 &` then "
             "`taskset -c 1 build/cc-epoll-ndebug/bench/net/netload echo --port 9000 --conns 50 "
             "--size 1024`.")
    L.append("")
    L.append("### What each server does")
    L.append("")
    L.append("Every server listens on 127.0.0.1, runs on one thread where its runtime allows it, "
             "sets TCP_NODELAY (or has it set by its runtime) and uses a listen backlog of 1,024. "
             "Sources: `bench/net/`.")
    L.append("")
    L.append("- **coro**: `examples/echo_server.c`, `examples/http_server.c` and `examples/kv_server.c`, built -O2 -DNDEBUG "
             "like the micro suite by `make bench-net` (a bare `bash bench/run.sh net` takes "
             "`build/examples/` as it is; the machine list above names the binaries used).")
    L.append("- **libuv** (`echo_libuv.c`): one loop; a 64 KiB read buffer per connection, "
             "`uv_try_write` first and a `uv_write` of the rest (reading stopped until it is done).")
    L.append("- **go** (`go/echo`, `go/http`, GOMAXPROCS=1): a goroutine per connection, "
             "`Read` into 64 KiB and `Write` it back; `net/http` with a handler that sets "
             "Content-Length.")
    L.append("- **node** (`echo_node.js`, `http_node.js`): `socket.pipe(socket)`; the `http` "
             "module with `res.end(body)` and Content-Length.")
    L.append("- **asyncio** (`echo_asyncio.py streams`, Debian's python3, default loop): "
             "`asyncio.start_server`, `reader.read(65536)`, `writer.write`, `await writer.drain()`.")
    L.append("- **asyncio_proto** (`echo_asyncio.py protocol`, `http_asyncio.py`): a bare "
             "`asyncio.Protocol`: `data_received` -> `transport.write` (reading paused over the "
             "high-water mark); for http a minimal HTTP/1.1 keep-alive parser (request line, "
             "Connection and Content-Length, pipelined requests answered in one write).")
    L.append("- **redis** (Debian's redis-server, `--save '' --appendonly no`): the resp rows' "
             "peer, against coro's `examples/kv_server.c`; the load is `redis-benchmark -c 50 "
             "-r 100000 -t set,get` (3-byte values), without and with `-P 16`, through "
             "`bench/net/resp.py`, which also measures `resp_mem` (RSS per idle connection and "
             "per stored key).")
    L.append("- **nginx** (nginx-light, a generated config): one worker, `return 200 "
             "\"hello, world\\n\";`, `access_log off`, `keepalive_requests` high enough that "
             "no connection is closed during a run, `daemon off`.")
    L.append("")
    return L, problem


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

    c, p = get("resume", "coro"), get("resume", "floor")
    aim("resume", [("coro", c), ("floor", p)], lambda: c <= 1.5 * p,
        lambda: f"coro {num(c)} ns, floor {num(p)} ns, 1.5x it {num(1.5 * p)} ns",
        "coro <= 1.5 x the floor, an indirect call")
    for row in ("yield", "yield_many", "await_depth_1", "await_depth_32", "spawn", "skynet"):
        c, p = get(row, "coro"), get(row, "cpp20")
        aim(row, [("coro", c), ("cpp20", p)], lambda c=c, p=p: c <= p,
            lambda c=c, p=p: f"coro {num(c)} ns, cpp20 {num(p)} ns = {ratio(c / p)} x",
            "coro <= C++20 in the same run")
    d1, d32 = get("await_depth_1", "coro"), get("await_depth_32", "coro")
    aim("await_depth_32/await_depth_1", [("coro await_depth_1", d1), ("coro await_depth_32", d32)],
        lambda: d32 / d1 <= 1.2,
        lambda: f"coro {num(d32)} / {num(d1)} = {ratio(d32 / d1)}",
        "<= 1.2, resume cost flat in depth")
    c = get("memory_per_task", "coro", "bytes_per_task")
    aim("memory_per_task", [("coro", c)], lambda: c <= 96.0,
        lambda: f"coro {num(c)} bytes/task", "<= 96 bytes per task sleeping on a timer")
    c, p = get("timers", "coro"), get("timers", "libuv")
    aim("timers", [("coro", c), ("libuv", p)], lambda: c <= 0.25 * p,
        lambda: f"coro {num(c)} ns, libuv {num(p)} ns, a quarter of it {num(0.25 * p)} ns",
        "coro <= 0.25 x libuv")
    c, p = get("timeout_churn", "coro"), get("timeout_churn", "libuv")
    aim("timeout_churn", [("coro", c), ("libuv", p)], lambda: c <= 3 * p,
        lambda: f"coro {num(c)} ns, libuv {num(p)} ns = {ratio(c / p)} x",
        "coro <= 3 x libuv's bare timer start/stop")
    c, p = get("queue_pingpong", "coro"), get("queue_pingpong", "go")
    aim("queue_pingpong", [("coro", c), ("go", p)], lambda: c <= 0.5 * p,
        lambda: f"coro {num(c)} ns, go {num(p)} ns = {ratio(c / p)} x",
        "coro <= half of Go's channel round trip")
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


def docs(run, machine, page, png, data_dir, net=None):
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
             "in one run. The machines are shared and noisy: "
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
    L.append("Every micro row, coro's and each peer's, runs pinned to the same CPU (`taskset`; "
             "`BENCH_CPU` picks it, `none` does not pin).")
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
    L.append("make bench-instr           # instructions per op under callgrind, coro beside C++20")
    L.append("```")
    L.append("")
    L.append("`make bench-instr` (bench/instr.sh) is the profile beside the timed rows, not a "
             "substitute: an instruction count does not move with the machine, but it is not time. "
             "A yield costs coro about 10 more instructions than C++20 and still runs faster: "
             "jumps taken, calls and where the code sits count too (in this project, removing "
             "two taken jumps from a step and its pass was worth about 10%, removing a load and "
             "a store alone nothing). The commits that touch a hot path quote both.")
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
    L.append("- **coro** (`bench/micro.c`): `spawn` uses `coro_spawn_new` (task and frame in "
             "one allocation, as C++20 allocates one frame); `memory_per_task` and `skynet` use "
             "`coro_frame_new` + `coro_spawn`, whose frame is freed when the task finishes (the "
             "smaller footprint: 8 bytes less a task, and a finished child's frame goes before "
             "its parent reads its result).")
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
    if net:
        nl, net_problem = net_docs(*net[:5], page, data_dir)
        L += nl
        if net_problem:
            problem = (problem + "; " if problem else "") + "network chart: " + net_problem
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
    if mode == "nettable":
        rows, order, cpu = load_net(run)
        print("\n".join(net_table_lines(rows, order, cpu)))
        notes = net_notes(rows, cpu)
        if notes:
            print()
            print("\n".join("note: " + n for n in notes))
        ln = loops_note(rows, cpu)
        if ln:
            print()
            print("note: " + ln)
        print()
        for ok, text in net_check(rows, cpu):
            print(("ok     " if ok else "n/a    " if ok is None else "MISSED ") + text)
        return 0
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
    if mode == "docs" and len(argv) in (7, 12):
        net = argv[7:12] if len(argv) == 12 else None
        problem = docs(run, argv[3], argv[4], argv[5], argv[6], net)
        charts = argv[5] + (" and " + argv[9] if net else "")
        print(f"wrote {argv[4]}" + (f" ({problem})" if problem else f" and {charts}"))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
