#!/usr/bin/env python3
"""bench/net/slowloris.py - a check of issue 8's "servers that hold up" (not part of make bench-net):
    slowloris.py BIN [ARGS...]: under ulimit -n 256, 300 connections sending one
    header byte a second; after 3 s, 6 normal clients (10 s timeout each);
    prints how many were served.
"""
import resource, socket, subprocess, sys, time, re, threading, signal
args = sys.argv[1:]
def lim(): resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
p = subprocess.Popen(args + ["0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=lim)
port = int(re.search(r"127\.0\.0\.1:(\d+)", p.stdout.readline()).group(1))
threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
loris = []
for i in range(300):
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    loris.append(s)
stop = time.time() + 16
def trickle():
    while time.time() < stop:
        for s in loris:
            try: s.send(b"G")
            except OSError: pass
        time.sleep(1)
threading.Thread(target=trickle, daemon=True).start()
time.sleep(3)
res = [None]*6
def normal(i):
    t0 = time.time()
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.settimeout(max(0.1, 10 - (time.time()-t0)))
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        d = b""
        while b"hello, world" not in d:
            x = c.recv(4096)
            if not x: break
            d += x
        res[i] = (b"hello, world" in d, time.time()-t0)
    except Exception as e:
        res[i] = (False, time.time()-t0)
th = [threading.Thread(target=normal, args=(i,)) for i in range(6)]
[t.start() for t in th]; [t.join() for t in th]
ok = sum(1 for r in res if r[0])
print(f"slowloris: {ok} of 6 normal clients served within 10 s (times: {', '.join(f'{r[1]:.1f}' for r in res)}) with 300 slowloris connections at ulimit -n 256")
p.send_signal(signal.SIGINT)
try: p.wait(timeout=10)
except subprocess.TimeoutExpired: p.kill()
