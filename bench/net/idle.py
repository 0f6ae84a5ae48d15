#!/usr/bin/env python3
"""bench/net/idle.py - memory of idle keep-alive HTTP connections, and what
comes back after they go (the idle_conn_bytes row of the network suite).

    idle.py --port PORT --pid PID --conns N [--impl coro] [--bench idle_conn_bytes]

Against a server already listening on 127.0.0.1:PORT (process PID): one
warm-up connection; then N connections, each sending one keep-alive
"GET /" and reading the whole answer (checked: "hello, world"), then kept
open and silent. The server's resident memory (VmRSS, /proc/PID/status) is
read before, with all N idle, and 1 s after all N closed. N is lowered to
what the descriptor limit allows (the figure says which N it used).

Prints JSON lines (the suite's format) on stdout:
  metric bytes_per_conn       (RSS with N idle - RSS before) / N
  metric rss_after_spike      RSS 1 s after the N connections closed (bytes)
  metric rss_before           RSS before the connections (bytes)
each with "conns": N. Everything is bounded: 5 s per connection, 120 s in all.
"""
import argparse
import json
import resource
import socket
import sys
import time

REQ = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def one(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(REQ)
    got = b""
    while b"hello, world\n" not in got:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("the server closed a connection before answering")
        got += d
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--impl", default="coro")
    ap.add_argument("--bench", default="idle_conn_bytes")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.conns + 64
    if soft < want:
        soft = min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    n = min(a.conns, soft - 64)
    t_end = time.monotonic() + 120
    one(a.port).close()
    time.sleep(0.3)
    before = rss(a.pid)
    socks = []
    try:
        for _ in range(n):
            if time.monotonic() > t_end:
                raise RuntimeError(f"only {len(socks)} connections in 120 s")
            socks.append(one(a.port))
        time.sleep(0.5)
        busy = rss(a.pid)
    finally:
        for s in socks:
            s.close()
    time.sleep(1.0)
    after = rss(a.pid)
    row = {"suite": "net", "bench": a.bench, "impl": a.impl, "conns": n}
    for metric, value in (("bytes_per_conn", round((busy - before) / n, 1)),
                          ("rss_after_spike", after), ("rss_before", before)):
        print(json.dumps(dict(row, metric=metric, value=value)))
    print(f"idle.py: {n} idle keep-alive connections: {(busy - before) / n:.0f} bytes each "
          f"(RSS {before / 1e6:.1f} MB before, {busy / 1e6:.1f} MB with them, "
          f"{after / 1e6:.1f} MB 1 s after they closed)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
