#!/usr/bin/env python3
"""bench/net/shutdown.py - a check of issue 8's "servers that hold up" (not part of make bench-net):
    shutdown.py BIN KIND: start the server, one client that sends a lot and
    never reads, SIGTERM after 0.5 s; print seconds until exit (cap 10 s)
"""
import os, signal, socket, subprocess, sys, time, re
binp, kind = sys.argv[1], sys.argv[2]
p = subprocess.Popen([binp, "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
line = p.stdout.readline()
port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.setblocking(False)
payload = (b"x" * 65536) if kind == "echo" else b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
sent = 0; t_end = time.time() + 0.5
while time.time() < t_end:
    try:
        sent += s.send(payload)
    except BlockingIOError:
        time.sleep(0.01)
os.kill(p.pid, signal.SIGTERM); t0 = time.time()
try:
    p.wait(timeout=10); print(f"{kind}: exited {p.returncode} {time.time()-t0:.2f} s after SIGTERM (client sent {sent} bytes, read none)")
except subprocess.TimeoutExpired:
    print(f"{kind}: still running 10 s after SIGTERM (client sent {sent} bytes, read none)"); p.kill(); p.wait()
