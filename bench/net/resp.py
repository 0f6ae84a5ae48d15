#!/usr/bin/env python3
"""bench/net/resp.py - the Redis-protocol rows of the network suite.

  resp.py load --port P --bench NAME --impl IMPL --server-pid PID --cpus A,B
               --requests N [--pipeline K] [--conns C]
      redis-benchmark -c C -n N -r 100000 -t set,get [-P K] --csv against
      127.0.0.1:P, pinned to CPU B (taskset); prints the suite's two JSON
      lines (req_per_s: both tests' requests over both tests' time, p99_us:
      the worse test's), with client_cpu, server_cpu (from /proc/PID/stat)
      and other_cpu (what CPUs A and B spent on anything else) over the run,
      as netload does. A one-line summary goes to stderr.

  resp.py mem --port P --pid PID --impl IMPL [--conns N] [--keys K]
      RSS per idle connection: N connections (default 1,000), each answered
      one PING, then held; RSS per stored key: K keys (default 100,000) set
      with SET key:NNNNNNNN <16 bytes> (pipelined), RSS after minus before.
      Prints JSON lines (bench resp_mem, metrics bytes_per_conn and
      bytes_per_key).

Loopback only; every wait is bounded (redis-benchmark under a timeout, a
socket timeout of 10 s).
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / TICK  # utime, stime


def cpus_busy(cpus):
    busy, found = 0, 0
    with open("/proc/stat") as f:
        for line in f:
            p = line.split()
            if not p[0].startswith("cpu") or p[0] == "cpu" or int(p[0][3:]) not in cpus:
                continue
            v = [int(x) for x in p[1:9]]
            busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
            found += 1
    return busy / TICK if found else None


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def emit(bench, impl, metric, value, extra):
    d = {"suite": "net", "bench": bench, "impl": impl, "metric": metric, "value": round(value, 1)}
    d.update(extra)
    print(json.dumps(d, separators=(",", ":")))


def load(a):
    srv_cpu, cli_cpu = [int(x) for x in a.cpus.split(",")]
    cmd = ["taskset", "-c", str(cli_cpu), "redis-benchmark", "-h", "127.0.0.1", "-p", str(a.port),
           "-c", str(a.conns), "-n", str(a.requests), "-r", "100000", "-t", "set,get", "--csv"]
    if a.pipeline > 1:
        cmd += ["-P", str(a.pipeline)]
    s0, b0, c0, t0 = proc_cpu(a.server_pid), cpus_busy({srv_cpu, cli_cpu}), children_cpu(), time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=a.timeout)
    s1, b1, c1, t1 = proc_cpu(a.server_pid), cpus_busy({srv_cpu, cli_cpu}), children_cpu(), time.time()
    out = r.stdout.decode()
    if r.returncode != 0:
        sys.exit("resp.py: redis-benchmark failed (status %d): %s" % (r.returncode, (out + r.stderr.decode())[-300:]))
    tests = {}
    for line in out.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if len(f) >= 7 and f[0] in ("SET", "GET"):
            tests[f[0]] = (float(f[1]), float(f[6]) * 1000)  # rps, p99 in us
    if set(tests) != {"SET", "GET"} or min(v[0] for v in tests.values()) <= 0:
        sys.exit("resp.py: no SET and GET figures in redis-benchmark's output: %s" % out[-300:])
    # both tests' requests over the time both took
    rps = 2 * a.requests / sum(a.requests / v[0] for v in tests.values())
    p99 = max(v[1] for v in tests.values())
    wall = t1 - t0
    extra = {"client_cpu": round((c1 - c0) / wall, 3)}
    if s0 is not None and s1 is not None:
        extra["server_cpu"] = round((s1 - s0) / wall, 3)
        if b0 is not None and b1 is not None:
            extra["other_cpu"] = round(max(0.0, (b1 - b0) / wall - extra["client_cpu"] - extra["server_cpu"]), 3)
    print("resp.py: %s (%s): %d requests, %.0f req/s (SET %.0f, GET %.0f), p99 %.0f us; client CPU %.0f%%, "
          "server CPU %s" % (a.bench, a.impl, 2 * a.requests, rps, tests["SET"][0], tests["GET"][0], p99,
                             extra["client_cpu"] * 100,
                             "%.0f%%" % (extra["server_cpu"] * 100) if "server_cpu" in extra else "unknown"),
          file=sys.stderr)
    emit(a.bench, a.impl, "req_per_s", rps, extra)
    emit(a.bench, a.impl, "p99_us", p99, extra)


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("resp.py: no VmRSS for %d" % pid)


def recv_until(s, want):
    got = b""
    while not got.endswith(want):
        d = s.recv(1 << 20)
        if not d:
            raise SystemExit("resp.py: the server closed the connection")
        got += d
    return got


def mem(a):
    addr = ("127.0.0.1", a.port)
    time.sleep(0.5)
    base = rss(a.pid)
    conns = []
    for _ in range(a.conns):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(b"PING\r\n")
        conns.append(s)
    for s in conns:
        recv_until(s, b"+PONG\r\n")
    time.sleep(0.5)
    per_conn = (rss(a.pid) - base) / a.conns
    for s in conns:
        s.close()
    time.sleep(0.5)
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"FLUSHALL\r\n")
    recv_until(s, b"+OK\r\n")
    time.sleep(0.2)
    before = rss(a.pid)
    batch = 1000
    for i in range(0, a.keys, batch):
        n = min(batch, a.keys - i)
        s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$12\r\nkey:%08d\r\n$16\r\nvalue:%010d\r\n" % (j, j)
                           for j in range(i, i + n)))
        recv_until(s, b"+OK\r\n" * n)
    s.sendall(b"DBSIZE\r\n")
    got = recv_until(s, b"\r\n")
    if got != b":%d\r\n" % a.keys:
        raise SystemExit("resp.py: DBSIZE says %r after %d SETs" % (got, a.keys))
    per_key = (rss(a.pid) - before) / a.keys
    s.sendall(b"FLUSHALL\r\n")
    recv_until(s, b"+OK\r\n")
    s.close()
    print("resp.py: resp_mem (%s): %.0f bytes per idle connection (%d), %.0f bytes per key (%d, 12-byte "
          "keys, 16-byte values)" % (a.impl, per_conn, a.conns, per_key, a.keys), file=sys.stderr)
    emit("resp_mem", a.impl, "bytes_per_conn", per_conn, {"conns": a.conns})
    emit("resp_mem", a.impl, "bytes_per_key", per_key, {"keys": a.keys})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["load", "mem"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bench", default="resp")
    p.add_argument("--impl", default="?")
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--cpus", default="0,1")
    p.add_argument("--requests", type=int, default=200000)
    p.add_argument("--pipeline", type=int, default=1)
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--keys", type=int, default=100000)
    p.add_argument("--timeout", type=int, default=120)
    a = p.parse_args()
    if a.mode == "load":
        load(a)
    else:
        mem(a)


if __name__ == "__main__":
    main()
