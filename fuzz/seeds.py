#!/usr/bin/env python3
"""fuzz/seeds.py - write the hand-made seed inputs of fuzz/corpus/<harness>/.

Run from the repository root: python3 fuzz/seeds.py. Files are named
seed-*; inputs libFuzzer found and kept (run.sh -merge=1) sit beside them
under their hash names. Rerunning rewrites the seeds only.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- fuzz_http: byte 0 seeds the chunking, then the connection's bytes ----
HTTP = [
    ("get", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("get10", b"GET /index.html HTTP/1.0\r\n\r\n"),
    ("lf-only", b"GET / HTTP/1.1\nHost: a\n\n"),
    ("leading-crlf", b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("post-body", b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"),
    ("pipelined", b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
    ("pipelined-body", b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("keepalive10", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
    ("connection-list", b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n"),
    ("ows", b"GET / HTTP/1.1\r\nHost: \t h \t\r\nX-Empty:\r\nX-Sp:   \r\n\r\n"),
    ("obs-text", b"GET / HTTP/1.1\r\nHost: h\r\nX: \x80\xff caf\xc3\xa9\r\n\r\n"),
    ("te", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("te-cl", b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"),
    ("cl-twice-same", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"),
    ("cl-twice-diff", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"),
    ("cl-sign", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +2\r\n\r\n"),
    ("cl-18", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n"),
    ("cl-19", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n"),
    ("no-host", b"GET / HTTP/1.1\r\n\r\n"),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
    ("http2", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
    ("http09", b"GET /\r\n\r\n"),
    ("bad-version", b"GET / HTTP/1.x\r\n\r\n"),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"),
    ("space-colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
    ("bare-cr", b"GET / HTTP/1.1\rHost: a\r\n\r\n"),
    ("ctl-value", b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n"),
    ("two-spaces", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("empty-target", b"GET  HTTP/1.1\r\n\r\n"),
    ("truncated", b"GET /very/long/path?q=1 HTTP/1.1\r\nHost: exam"),
    ("long-uri", b"GET /" + b"a" * 8300 + b" HTTP/1.1\r\nHost: h\r\n\r\n"),
    ("long-header", b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 8300 + b"\r\n\r\n"),
    ("many-headers", b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(70)) + b"\r\n"),
    ("64-headers", b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(63)) + b"\r\n"),
    ("empty-lines-only", b"\r\n" * 40),
    ("method-token", b"M-SEARCH! * HTTP/1.1\r\nHost: h\r\n\r\n"),
]

# ---- fuzz_stream: [cfg][chunk seed][nops][ops: (op, arg) * nops][payload] ----
# cfg: limit = 1 + (cfg & 63) unless cfg & 64 (the default, 64 KiB);
# seed: chunk sizes (seed & 31), echo copies (seed >> 5) & 3, high-water
# mark 1024 when seed & 128 (else 64);
# ops: 0 readline, 1 readuntil(seps[arg % n]), 2 readexactly(arg % 80),
# 3 read(arg % 80), 4 read(-1), 5 yield, 6 wait_for(read(...)) (fuzz_stream.c).
def stream(cfg, seed, ops, payload):
    return bytes([cfg, seed, len(ops)]) + b"".join(bytes(o) for o in ops) + payload


STREAM = [
    ("lines", stream(64, 1, [(0, 0)] * 4, b"one\ntwo\nthree\nfour\n")),
    ("lines-small-limit", stream(4, 2, [(0, 0)] * 5, b"ab\nabcdefgh\nxy\nlonglonglong")),
    ("until-crlf", stream(64, 3, [(1, 1)] * 3, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")),
    ("until-limit", stream(6, 4, [(1, 2), (1, 2), (4, 0)], b"xxxxxxxxabxxab")),
    ("exactly", stream(64, 5, [(2, 3), (2, 10), (2, 79)], b"0123456789" * 3)),
    ("exactly-eof", stream(64, 6, [(2, 50)], b"short")),
    ("read-n", stream(64, 7, [(3, 1), (3, 5), (3, 0), (3, 70)], bytes(range(200)))),
    ("read-all", stream(64, 8, [(4, 0), (3, 4), (0, 0)], b"everything\nat once")),
    ("mixed", stream(10, 9, [(0, 0), (1, 3), (2, 4), (3, 9), (5, 0), (0, 0)], b"hello\nabcsep\x00dataxyzmore\nend")),
    ("empty", stream(64, 10, [(0, 0), (1, 0), (2, 1), (3, 1)], b"")),
    ("timeouts", stream(64, 11, [(6, 0), (6, 17), (6, 40), (0, 0)], b"a\nbb\nccc\n" * 20)),
    ("big", stream(64 + 5, 12, [(0, 0), (2, 77), (1, 1), (4, 0)], (b"line of text\r\n" * 200))),
    ("echo-lines", stream(64, 1 | (1 << 5), [(0, 0)] * 6, b"one\ntwo\nthree\n" * 20)),
    ("echo-3x-big-high", stream(64, 9 | (3 << 5) | 128, [(3, 79)] * 10 + [(4, 0)], bytes(range(256)) * 8)),
    ("echo-2x-exactly", stream(10, 31 | (2 << 5), [(2, 33), (6, 2), (2, 70), (1, 1)], b"x" * 300 + b"\r\n")),
    ("nulls", stream(3, 13, [(1, 5), (1, 5), (0, 0)], b"\x00\x00\x00ab\x00\x00\x00\x00\x00")),
]

# ---- fuzz_sched: [cfg][ops ...] (fuzz_sched.c): op byte, then its args ----
# cfg: queue maxsize cfg & 3, semaphore permits 1 + ((cfg >> 2) & 3)
def sched(cfg, *ops):
    return bytes([cfg]) + b"".join(bytes(o) for o in ops)


SPAWN, CANCEL, SET, FCANCEL, PASS, RUNFOR, PUTNW, GETNW, SETERR, EVSET, EVCLEAR = range(11)
# task actions: kind + 14 * param (param 0-18); kinds: 0 sleep, 1 yield,
# 2 await future, 3 lock, 4 put, 5 get, 6 wait_for(sleep), 7 wait_for_future,
# 8 await an earlier task, 9 semaphore, 10 event wait, 11 timeout(sleep),
# 12 join the queue, 13 gather (two of F0-3 or an earlier task)
def act(kind, param):
    assert kind + 14 * param < 256, (kind, param)
    return kind + 14 * param


def wf(timeout_idx, sleep_idx):  # kinds 6 and 11: timeout (p & 3), sleep (p >> 2)
    return timeout_idx | (sleep_idx << 2)


SCHED = [
    ("lock-fifo", sched(0, *[(SPAWN, act(3, 2), act(1, 1), 0)] * 5, (PASS, 0))),
    ("lock-cancel", sched(0, *[(SPAWN, act(3, 3), 0, 0)] * 4, (PASS, 0), (CANCEL, 1), (CANCEL, 2), (PASS, 0))),
    ("queue", sched(2, *[(SPAWN, act(5, 0), act(5, 0), 0)] * 3, *[(SPAWN, act(4, 0), act(4, 1), act(4, 2))] * 3, (RUNFOR, 2))),
    ("queue-cancel", sched(1, *[(SPAWN, act(4, 0), act(4, 0), 0)] * 3, (PASS, 0), (CANCEL, 1), (GETNW, 0), (PASS, 0), (GETNW, 0))),
    ("queue-getters-cancel", sched(0, *[(SPAWN, act(5, 0), 0, 0)] * 4, (PASS, 0), (PUTNW, 0), (CANCEL, 0), (PUTNW, 0), (CANCEL, 2), (PASS, 0), (PUTNW, 0))),
    ("futures", sched(0, (SPAWN, act(2, 0), 0, 0), (SPAWN, act(2, 1), 0, 0), (SPAWN, act(7, 3 | (1 << 2)), 0, 0), (PASS, 0), (SET, 0), (FCANCEL, 1), (SETERR, 2))),
    ("sleeps", sched(0, (SPAWN, act(0, 3), act(0, 1), 0), (SPAWN, act(0, 0), act(1, 2), 0), (RUNFOR, 3), (CANCEL, 0))),
    ("wait-for", sched(0, (SPAWN, act(6, wf(1, 2)), 0, 0), (SPAWN, act(6, wf(3, 1)), 0, 0), (SPAWN, act(6, 0), 0, 0), (RUNFOR, 3))),
    ("wait-for-cancel", sched(0, (SPAWN, act(6, wf(2, 3)), 0, 0), (PASS, 0), (CANCEL, 0), (RUNFOR, 1))),
    ("timeout", sched(0, (SPAWN, act(11, wf(1, 2)), 0, 0), (SPAWN, act(11, wf(3, 0)), 0, 0), (SPAWN, act(11, wf(0, 1)), 0, 0), (RUNFOR, 3))),
    ("timeout-cancel", sched(0, (SPAWN, act(11, wf(2, 3)), 0, 0), (RUNFOR, 1), (CANCEL, 0), (PASS, 0))),
    ("semaphore", sched(4, *[(SPAWN, act(9, 2), act(9, 1), 0)] * 5, (PASS, 0), (CANCEL, 3), (PASS, 0))),
    ("event", sched(0, *[(SPAWN, act(10, 0), act(10, 0), 0)] * 3, (PASS, 0), (EVSET, 0), (EVCLEAR, 0), (PASS, 0), (CANCEL, 1), (EVSET, 0))),
    ("await-task", sched(0, (SPAWN, act(0, 2), 0, 0), (SPAWN, act(8, 0), 0, 0), (SPAWN, act(8, 1), act(8, 0), 0), (PASS, 0), (CANCEL, 0), (RUNFOR, 1))),
    ("join", sched(1, (SPAWN, act(12, 0), 0, 0), (SPAWN, act(4, 0), act(4, 0), act(12, 0)), (SPAWN, act(5, 0), act(1, 1), act(5, 0)), (PASS, 0), (SPAWN, act(12, 0), 0, 0), (RUNFOR, 1), (PUTNW, 0), (SPAWN, act(12, 0), 0, 0), (GETNW, 0))),
    ("gather", sched(0, (SPAWN, act(0, 1), 0, 0), (SPAWN, act(13, 0 | (1 << 2)), act(13, 1 | (2 << 2)), act(13, 16)), (SPAWN, act(13, 17), act(13, 3 | (3 << 2)), 0), (PASS, 0), (SET, 1), (SETERR, 0), (PASS, 0), (FCANCEL, 2), (SET, 3))),
    ("gather-cancel", sched(0, (SPAWN, act(13, 1 | (2 << 2)), 0, 0), (SPAWN, act(13, 2 | (3 << 2)), 0, 0), (PASS, 0), (CANCEL, 0), (PASS, 0), (SET, 3), (CANCEL, 1))),
    ("mix", sched(3, (SPAWN, act(3, 1), act(4, 2), act(2, 0)), (SPAWN, act(5, 0), act(3, 0), act(6, 9)), (PUTNW, 0), (PASS, 0), (SPAWN, act(4, 0), act(7, 2), act(9, 3)), (CANCEL, 1), (SET, 0), (RUNFOR, 1), (GETNW, 0), (SPAWN, act(8, 1), act(10, 0), act(11, 5)), (EVSET, 0), (SPAWN, act(12, 0), act(5, 1), 0))),
]


# ---- fuzz_resp: byte 0 seeds the chunking, then the connection's bytes ----
def mb(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


RESP = [
    ("ping", mb(b"PING")),
    ("set-get", mb(b"SET", b"key", b"value") + mb(b"GET", b"key")),
    ("set-ex-nx", mb(b"SET", b"k", b"v", b"EX", b"10", b"NX")),
    ("mset", mb(b"MSET", b"a", b"1", b"b", b"2", b"c", b"3") + mb(b"MGET", b"a", b"b", b"c")),
    ("binary", mb(b"SET", b"\x00\r\n", b"\xff\x00\r\n\r\n")),
    ("empty-args", mb(b"ECHO", b"") + b"*0\r\n*-1\r\n"),
    ("inline", b"SET k v\r\nGET k\nPING\r\n\r\n  \r\n"),
    ("inline-quotes", b'SET "a\\x41\\n" \'b \\\' c\'\r\nECHO "q\\"x"\r\n'),
    ("inline-unbalanced", b'SET "abc\r\n'),
    ("inline-close-quote", b'"a"b\r\n'),
    ("mixed", mb(b"PING") + b"PING\r\n" + mb(b"INCR", b"n") + b"incrby n 5\n"),
    ("bad-count", b"*x\r\n"),
    ("neg-bulk", b"*1\r\n$-1\r\n"),
    ("huge-bulk", b"*1\r\n$99999999999\r\n"),
    ("over-max-bulk", b"*1\r\n$1001\r\n"),
    ("no-dollar", b"*2\r\nx\r\n"),
    ("nul-header", b"*1\r\n\x00\r\n"),
    ("truncated", mb(b"SET", b"k", b"value")[:-5]),
    ("unchecked-crlf", b"*2\r\n$4\r\nECHO\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n"),
    ("many-args", mb(*[b"a%d" % i for i in range(40)])),
    ("pipeline", mb(b"INCR", b"c") * 30),
]


def main():
    for name, data in HTTP:
        # two chunkings each, one for the long ones (the corpus stays small)
        for i, lead in enumerate((0, 7) if len(data) < 1024 else (0,)):
            write("fuzz_http", "%s-%d" % (name, i), bytes([lead]) + data)
    for name, data in STREAM:
        write("fuzz_stream", name, data)
    for name, data in SCHED:
        write("fuzz_sched", name, data)
    for name, data in RESP:
        for i, lead in enumerate((0, 7)):
            write("fuzz_resp", "%s-%d" % (name, i), bytes([lead]) + data)


if __name__ == "__main__":
    main()
