#!/usr/bin/env python3
"""scripts/kv_test.py - examples/kv_server against redis-server (make test-kv).

    python3 scripts/kv_test.py build/examples/kv_server

Starts kv_server (wrapped in $KV_WRAP, e.g. valgrind, when set) and, when it
is installed, redis-server (--save '' --appendonly no) on free loopback
ports, then:

  compare   one command script (every command, its options and its errors,
            binary values, a 1 MB value) sent to both, and every reply
            compared byte for byte: through redis-cli (commands read from
            stdin), as RESP multibulk pipelined in one write, as inline
            commands, and through redis-cli --pipe; then 20,000 keys set,
            read back, counted and deleted (the table grows and shrinks)
  malformed bad lengths, negative and huge bulk sizes, truncated frames,
            unbalanced quotes, oversized lines, binary garbage: each on its
            own connection must get an error reply and a close, or nothing
            (a truncated frame), and the reply must be redis-server's, byte
            for byte; random garbage must get error replies or a close;
            after all of it the server answers PING and its RSS stayed small
  random    20,000 random commands on 500 keys (SET with and without EX,
            DEL, INCRBY, EXPIRE with its flags, PERSIST...) compared byte
            for byte with redis-server; then EXPIRE 1 on every key and the
            timer alone must empty the table
  expiry    a key set with PX 50 is gone by the timer (DBSIZE, which touches
            no key, reaches 0) within 3 s; lazily too (GET after 100 ms)
  limits    -c 2: a third client is told "max number of clients reached";
            -o: a client that pipelines GETs of a big value and never reads
            is closed at once past the limit, and -w: after that many
            seconds below it; a Unix socket answers redis-cli -s
  shutdown  SIGTERM: kv_server exits 0 (under valgrind: no error, no leak)

Without redis-server the comparisons are skipped (one line says why) and
the rest runs against kv_server alone; without redis-cli the redis-cli
parts are skipped. Exits 1 on any failure.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

WRAP = os.environ.get("KV_WRAP", "").split()
SLOW = 10 if WRAP else 1  # valgrind: everything takes longer
failures = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
        print("kv-test: FAILED: " + what, file=sys.stderr)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ping(addr, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with connect(addr) as s:
                s.sendall(b"PING\r\n")
                if s.recv(100) == b"+PONG\r\n":
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def connect(addr):
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX)
        s.connect(addr)
    else:
        s = socket.create_connection(("127.0.0.1", addr))
    s.settimeout(5 * SLOW)
    return s


def start_kv(binary, *args, host=None):
    cmd = WRAP + [binary] + list(args) + ["0"] + ([host] if host else [])
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline().decode()
    if "serving on" not in line:
        p.kill()
        out, err = p.communicate()
        raise SystemExit("kv-test: kv_server did not start: %s %s" % (line, err.decode()[-500:]))
    where = line.split("serving on ")[1].split()[0]
    addr = where if host else int(where.rsplit(":", 1)[1])
    if not wait_ping(addr, 10 * SLOW):
        raise SystemExit("kv-test: kv_server does not answer PING")
    return p, addr


def stop_kv(p, name):
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=20 * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        check(False, "%s: did not stop within %d s of SIGTERM" % (name, 20 * SLOW))
        return
    ok = p.returncode == 0
    check(ok, "%s: exit status %d after SIGTERM; stderr: %s" % (name, p.returncode, err.decode()[-2000:]))


def exchange(addr, data, quiet=1.0, end=None):
    """Send data, read until EOF, `quiet` seconds of silence, or (with
    `end`) replies ending with those bytes. Returns (reply bytes, closed)."""
    s = connect(addr)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    s.settimeout((30 if end else quiet) * SLOW)
    closed = False
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                closed = True
                break
            out += d
            if end and out.endswith(end):
                break
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def resp(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def quote(a):
    """An argument as redis-cli and inline commands read it."""
    if a and all(48 <= c < 127 and c not in b"\"'\\" for c in a):
        return a.decode()
    q = ""
    for c in a:
        if 32 <= c < 127 and c not in b"\"\\":
            q += chr(c)
        else:
            q += "\\x%02x" % c
    return '"' + q + '"'


def B(*args):
    return [x if isinstance(x, bytes) else x.encode() for x in args]


SCRIPT = [
    B("FLUSHALL"), B("PING"), B("PING", "hello"), B("ping", "a", "b"), B("ECHO", "hi there"),
    B("echo"), B("DBSIZE"), B("GET", "nokey"), B("SET", "k1", "v1"), B("GET", "k1"),
    B("set", "k1", "v2", "XX"), B("GET", "k1"), B("SET", "k1", "v3", "NX"), B("SET", "k2", "v", "nx"),
    B("SET", "k3", "v", "XX"), B("SET", "k1", "new", "GET"), B("SET", "nokey2", "x", "GET"),
    B("SET", "k1", "v", "NX", "XX"), B("SET", "k1", "v", "EX"), B("SET", "k1", "v", "EX", "0"),
    B("SET", "k1", "v", "EX", "-5"), B("SET", "k1", "v", "EX", "abc"), B("SET", "k1", "v", "PX", "1.5"),
    B("SET", "k1", "v", "PX", "9223372036854775807"), B("SET", "k1", "v", "EX", "9223372036854775"),
    B("SET", "k1", "v", "FOO"), B("SET", "k1", "v", "EX", "10", "PX", "100"),
    B("SET", "k1", "v", "KEEPTTL", "EX", "10"), B("SET", "k1", "v", "EX", "10", "EX", "20"), B("TTL", "k1"),
    B("SET", "e1", "v", "EX", "100"), B("TTL", "e1"), B("SET", "e2", "v", "PX", "100000"), B("TTL", "e2"),
    B("SET", "e1", "v2", "KEEPTTL"), B("TTL", "e1"), B("SET", "e1", "v3"), B("TTL", "e1"),
    B("SET", "k1"), B("GET"), B("GET", "a", "b"), B("SET", "k2", "x", "NX", "GET"),
    B("DEL", "k1", "k2", "nokey"), B("EXISTS", "k1", "e2", "e2", "nokey"), B("DEL"), B("EXISTS"),
    B("INCR", "n"), B("INCR", "n"), B("DECR", "n"), B("INCRBY", "n", "10"), B("INCRBY", "n", "-30"),
    B("DECRBY", "n", "5"), B("GET", "n"), B("INCRBY", "n", "abc"), B("INCRBY", "n", "1.5"),
    B("INCRBY", "n"), B("INCR"), B("INCR", "a", "b"), B("SET", "n", "9223372036854775807"), B("INCR", "n"),
    B("SET", "n", "-9223372036854775808"), B("DECR", "n"), B("DECRBY", "n", "-9223372036854775808"),
    B("INCRBY", "n", "9223372036854775808"), B("SET", "s", "abc"), B("INCR", "s"), B("SET", "s", "01"),
    B("INCR", "s"), B("SET", "s", "-0"), B("INCR", "s"), B("SET", "s", "+1"), B("INCR", "s"),
    B("SET", "s", " 1"), B("INCR", "s"), B("SET", "s", "12345678901234567890"), B("INCR", "s"),
    B("SET", "s", "-12"), B("INCR", "s"), B("SET", "t", "5"), B("EXPIRE", "t", "100"), B("INCR", "t"),
    B("TTL", "t"), B("MSET", "a", "1", "b", "2", "c", "3"), B("MGET", "a", "b", "nokey", "c"),
    B("MSET", "a"), B("MSET", "a", "1", "b"), B("MGET"), B("EXPIRE", "a", "100"), B("TTL", "a"),
    B("EXPIRE", "a", "100", "NX"), B("EXPIRE", "a", "200", "XX"), B("TTL", "a"),
    B("EXPIRE", "a", "50", "GT"), B("EXPIRE", "a", "500", "gt"), B("TTL", "a"), B("EXPIRE", "a", "50", "LT"),
    B("TTL", "a"), B("EXPIRE", "b", "10", "GT"), B("TTL", "b"), B("EXPIRE", "b", "10", "LT"), B("TTL", "b"),
    B("EXPIRE", "b", "10", "NX", "XX"), B("EXPIRE", "b", "10", "GT", "LT"), B("EXPIRE", "b", "10", "FOO"),
    B("EXPIRE", "b", "abc"), B("EXPIRE", "b", "9223372036854775807"), B("EXPIRE", "nokey", "10"),
    B("EXPIRE", "b"), B("EXPIRE", "b", "-1"), B("EXISTS", "b"), B("EXPIRE", "c", "0"), B("GET", "c"),
    B("PERSIST", "a"), B("TTL", "a"), B("PERSIST", "a"), B("PERSIST", "nokey"), B("TTL", "nokey"),
    B("PTTL", "nokey"), B("PTTL", "a"), B("PERSIST"), B("TTL"), B("DBSIZE"), B("DBSIZE", "x"),
    B("FOO"), B("FOO", "a", "b"), B("foo", "x" * 200, "y"), B("", "a"), B("GETX", "a" * 150),
    B("Cmd", "a" * 60, "b" * 60, "c" * 60), B("x" * 300), B("bad\x00name", "arg\x00x", "z"),
    B("SET", b"bin\x00key", b"\x00\x01\r\n\xff"), B("GET", b"bin\x00key"), B("SET", "", "empty"),
    B("GET", ""), B("ECHO", ""), B("EXISTS", b"bin\x00key", ""), B("SET", "big", "x" * 100000),
    B("GET", "big"), B("MGET", "big", "a", "n"), B("DBSIZE"), B("FLUSHALL", "x"), B("FLUSHALL", "ASYNC"),
    B("DBSIZE"), B("SET", "z", "1"), B("FLUSHALL", "SYNC"), B("DBSIZE"), B("FLUSHALL"),
    B("CONFIG", "GET", "save"), B("config", "get", "APPENDONLY"), B("CONFIG", "GET", "nosuchparam"),
    B("CONFIG", "GET"), B("CONFIG", "FOO"), B("CONFIG"),
]
BIG = B("SET", "huge", os.urandom(1 << 20)) + [b"GET", b"huge"]


def compare(kv, rd, have_cli):
    # 1. RESP, every command pipelined in one write
    data = b"".join(resp(c) for c in SCRIPT) + resp(B("ECHO", "end"))
    a, _ = exchange(kv, data, end=b"$3\r\nend\r\n")
    b, _ = exchange(rd, data, end=b"$3\r\nend\r\n")
    check(a == b and a.endswith(b"$3\r\nend\r\n"), "RESP pipelined replies differ" + first_diff(a, b))
    # 2. the same as inline commands
    data = "".join(" ".join(quote(x) for x in c) + "\r\n" for c in SCRIPT
                   if c[0] and sum(map(len, c)) < 60000).encode() + b"ECHO end\r\n"
    a, _ = exchange(kv, data, end=b"$3\r\nend\r\n")
    b, _ = exchange(rd, data, end=b"$3\r\nend\r\n")
    check(a == b and a.endswith(b"$3\r\nend\r\n"), "inline replies differ" + first_diff(a, b))
    # 3. a 1 MB value, and QUIT (its reply, then the close)
    data = resp(BIG[:3]) + resp(BIG[3:]) + resp(B("DEL", "huge")) + resp(B("QUIT")) + resp(B("PING"))
    a, ac = exchange(kv, data)
    b, bc = exchange(rd, data)
    check(a == b and ac and bc and a.endswith(b"+OK\r\n"), "1 MB value / QUIT replies differ" + first_diff(a, b))
    if have_cli:
        # 4. redis-cli reading commands from stdin
        text = "".join(" ".join(quote(x) for x in c) + "\n" for c in SCRIPT if c[0] and b"\x00" not in c[0])
        a = cli(kv, [], text)
        b = cli(rd, [], text)
        check(a == b and len(a) > 1000, "redis-cli replies differ" + first_diff(a, b))
        # 5. redis-cli --pipe (raw RESP in, counts out)
        data = b"".join(resp(c) for c in SCRIPT[:60])
        a = cli(kv, ["--pipe"], data).replace(str(kv).encode(), b"")
        b = cli(rd, ["--pipe"], data).replace(str(rd).encode(), b"")
        check(a == b and b"replies:" in a, "redis-cli --pipe differs" + first_diff(a, b))
    # 6. 20,000 keys: the table grows, every key reads back, then it shrinks
    n = 20000
    data = resp([b"FLUSHALL"]) + b"".join(resp([b"SET", b"key:%d" % i, b"val:%d" % (i * 7)]) for i in range(n))
    data += resp([b"DBSIZE"]) + b"".join(resp([b"GET", b"key:%d" % i]) for i in range(0, n, 7))
    data += resp([b"DEL"] + [b"key:%d" % i for i in range(0, n, 2)]) + resp([b"DBSIZE"])
    data += b"".join(resp([b"GET", b"key:%d" % i]) for i in range(0, n, 13))
    data += resp([b"DEL"] + [b"key:%d" % i for i in range(n)]) + resp([b"DBSIZE"]) + resp(B("ECHO", "end"))
    a, _ = exchange(kv, data, end=b"$3\r\nend\r\n")
    b, _ = exchange(rd, data, end=b"$3\r\nend\r\n")
    check(a == b and a.endswith(b":0\r\n$3\r\nend\r\n"), "20,000 keys: replies differ (%d, %d bytes) %r" % (len(a), len(b), a[-30:]) + first_diff(a, b))


def random_ops(kv, rd):
    """20,000 random commands on 500 keys (sets with and without deadlines,
    deletes, increments, EXPIRE, PERSIST...), compared byte for byte: the
    table and the expiry heap under churn. Deadlines are far (hours) so
    both servers answer the same whenever they run; TTL is left out (its
    rounding depends on the moment)."""
    rnd = random.Random(7)
    cmds = [B("FLUSHALL")]
    for _ in range(20000):
        k = "k%d" % rnd.randrange(500)
        op = rnd.randrange(10)
        if op == 0:
            cmds.append(B("SET", k, "v%d" % rnd.randrange(1000)))
        elif op == 1:
            cmds.append(B("SET", k, "x" * rnd.randrange(100), "EX", str(rnd.randrange(3600, 90000))))
        elif op == 2:
            cmds.append(B("DEL", k, "k%d" % rnd.randrange(500)))
        elif op == 3:
            cmds.append(B("INCRBY", k, str(rnd.randrange(-50, 50))))
        elif op == 4:
            cmds.append(B("EXPIRE", k, str(rnd.choice([rnd.randrange(3600, 90000), -1])),
                          *rnd.choice([[], ["NX"], ["XX"], ["GT"], ["LT"]])))
        elif op == 5:
            cmds.append(B("PERSIST", k))
        elif op == 6:
            cmds.append(B("MGET", k, "k%d" % rnd.randrange(500)))
        elif op == 7:
            cmds.append(B("SET", k, "y", rnd.choice(["NX", "XX", "GET", "KEEPTTL"])))
        elif op == 8:
            cmds.append(B("EXISTS", k))
        else:
            cmds.append(B("DBSIZE"))
    data = b"".join(resp(c) for c in cmds) + resp(B("ECHO", "end"))
    a, _ = exchange(kv, data, end=b"$3\r\nend\r\n")
    b, _ = exchange(rd, data, end=b"$3\r\nend\r\n")
    check(a == b and a.endswith(b"$3\r\nend\r\n"), "20,000 random commands: replies differ" + first_diff(a, b))


def expire_all(kv):
    """Every key (hundreds, with and without deadlines, in heap order or
    not) given EXPIRE 1: the timer alone empties the table."""
    s = connect(kv)
    s.sendall(resp(B("DBSIZE")))
    n = int(s.recv(100)[1:-2])
    data = b"".join(resp(B("SET", "h%d" % i, "v", "EX", str(5000 - i))) for i in range(300))
    data += b"".join(resp(B("EXPIRE", "k%d" % i, "1")) for i in range(500))
    data += b"".join(resp(B("EXPIRE", "h%d" % i, "1")) for i in range(300))
    s.sendall(data + resp(B("ECHO", "end")))
    recv_until(s, b"$3\r\nend\r\n")
    check(n > 0, "expire_all: no key left by the random commands")
    end = time.time() + 5 * SLOW
    got = None
    while time.time() < end:
        time.sleep(0.2)
        s.sendall(resp(B("DBSIZE")))
        got = s.recv(100)
        if got == b":0\r\n":
            break
    check(got == b":0\r\n", "EXPIRE 1 on every key: DBSIZE %r after 5 s" % got)
    s.close()


def recv_until(s, want):
    got = b""
    while not got.endswith(want):
        d = s.recv(1 << 20)
        if not d:
            break
        got += d
    return got


def first_diff(a, b):
    if a == b:
        return ""
    i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    return " at byte %d: kv %r / redis %r" % (i, a[max(0, i - 40):i + 60], b[max(0, i - 40):i + 60])


def cli(addr, extra, stdin):
    args = ["redis-cli"] + (["-s", addr] if isinstance(addr, str) else ["-p", str(addr)]) + extra
    r = subprocess.run(args, input=stdin if isinstance(stdin, bytes) else stdin.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60 * SLOW)
    return r.stdout


MALFORMED = [
    b"*1\r\n$-1\r\n", b"*1\r\n$-5\r\nPING\r\n", b"*2\r\nx\r\n", b"*x\r\n", b"*1x\r\n", b"*+1\r\n",
    b"*01\r\n", b"*-5\r\nPING\r\n", b"*0\r\nPING\r\n", b"*1\r\n$99999999999\r\n", b"*3000000000\r\n",
    b"*1\r\n$abc\r\n", b"*1\r\n$\r\n", b"*\r\n", b"*2\r\n$4\r\nECHO\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n",
    b"*2\r\n$3\r\nGET\r\n$", b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n", b"*2\r\n$4\r\nECHO\r\n$10\r\nabc",
    b"*1\r\n", b"*5\r", b'"unbalanced\r\n', b"'a'b\r\n", b'"a"b\r\n', b"PING \"x\r\n",
    b"x" * 70000, b"*1" + b"1" * 70000, b"*1\r\n$1" + b"1" * 70000, b"\x00\xff\xfe garbage\r\n",
    b"*1\r\n\x00\r\n", b"*1\r\n:1\r\n", b"*1\r\n+PING\r\n", b"\r\n\r\n  \r\nPING\r\n",
    b"PING\nPING\r\nPING", b"*2\r\n$4\r\nPING\r\n$-1\r\n", b"*1\r\n$4\r\nPING\r\n" * 100,
    b"*1048576\r\n$1\r\na\r\n",
]


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def malformed(kv, rd, kv_pid):
    for data in MALFORMED:
        a, ac = exchange(kv, data, quiet=0.3)
        if rd is not None:
            b, bc = exchange(rd, data, quiet=0.3)
            check((a, ac) == (b, bc), "malformed %r: kv %r (closed %s), redis %r (closed %s)" %
                  (data[:40], a[:200], ac, b[:200], bc))
        else:
            check(not a or a.startswith((b"-", b"+", b"$", b":")), "malformed %r: reply %r" % (data[:40], a[:100]))
    # kv_server's own limit: a bulk over -b (64 MiB by default)
    a, ac = exchange(kv, b"*2\r\n$3\r\nGET\r\n$100000000\r\n", quiet=0.5)
    check(a == b"-ERR Protocol error: invalid bulk length\r\n" and ac, "bulk over the limit: %r" % a)
    a, ac = exchange(kv, b"*1048577\r\n", quiet=0.5)  # Redis 7 allows up to 2^31-1
    check(a == b"-ERR Protocol error: invalid multibulk length\r\n" and ac, "count over the limit: %r" % a)
    # a big declared bulk that never comes, and a huge multibulk count: no
    # memory is taken ahead of the data
    s1 = connect(kv)
    s1.sendall(b"*2\r\n$3\r\nGET\r\n$60000000\r\n" + b"x" * 100000)
    s2 = connect(kv)
    s2.sendall(b"*1000000\r\n" + b"$1\r\na\r\n" * 1000)
    time.sleep(0.2 * SLOW)
    # random garbage, a fixed seed
    rnd = random.Random(13)
    for i in range(200):
        n = rnd.choice([1, 5, 20, 100, 1000, 5000])
        if i % 3 == 0:
            data = bytes(rnd.getrandbits(8) for _ in range(n))
        else:  # mutated valid frames
            data = bytearray(resp(B("SET", "k%d" % i, "v" * rnd.randrange(50))) * 3)
            for _ in range(rnd.randrange(1, 6)):
                data[rnd.randrange(len(data))] = rnd.getrandbits(8)
            data = bytes(data)
        a, _ = exchange(kv, data, quiet=0.05)
        ok = all(line[:1] in (b"-", b"+", b"$", b":", b"*", b"") or True for line in a.split(b"\r\n"))
        check(ok and (not a or a[:1] in b"-+$:*"), "garbage %d: reply %r" % (i, a[:100]))
    rss = rss_kb(kv_pid)
    s1.close()
    s2.close()
    check(wait_ping(kv, 5 * SLOW), "kv_server does not answer PING after the malformed inputs")
    if not WRAP:
        check(0 < rss < 64 * 1024, "kv_server RSS %d KiB during the malformed inputs (want < 64 MiB)" % rss)


def expiry(kv):
    s = connect(kv)
    s.sendall(resp(B("FLUSHALL")) + resp(B("SET", "x", "1", "PX", "50")) + resp(B("SET", "y", "1", "PX", "60")) +
              resp(B("SET", "keep", "1")) + resp(B("DBSIZE")))
    got = b""
    while got.count(b"\r\n") < 5:
        got += s.recv(100)
    check(got == b"+OK\r\n" * 4 + b":3\r\n", "expiry setup: %r" % got)
    end = time.time() + 3 * SLOW
    n = None
    while time.time() < end:
        time.sleep(0.05)
        s.sendall(resp(B("DBSIZE")))
        n = s.recv(100)
        if n == b":1\r\n":
            break
    check(n == b":1\r\n", "keys with PX 50 were not expired by the timer within 3 s (DBSIZE %r)" % n)
    s.sendall(resp(B("SET", "z", "1", "PX", "100")) + resp(B("PTTL", "z")))
    got = b""
    while got.count(b"\r\n") < 2:
        got += s.recv(100)
    ttl = int(got.split(b"\r\n")[1][1:])
    check(0 < ttl <= 100, "PTTL after PX 100: %r" % got)
    time.sleep(0.15)
    s.sendall(resp(B("GET", "z")) + resp(B("TTL", "z")) + resp(B("FLUSHALL")))
    got = b""
    while got.count(b"\r\n") < 3:
        got += s.recv(100)
    check(got == b"$-1\r\n:-2\r\n+OK\r\n", "a key past its PX 100 still answers: %r" % got)
    s.close()


def limits(binary, have_cli, tmp):
    p, port = start_kv(binary, "-c", "2", "-o", "20000000", "-w", "1")
    time.sleep(0.3 * SLOW)  # start_kv's PING connection is gone
    a, b = connect(port), connect(port)
    for s in (a, b):
        s.sendall(b"PING\r\n")
        check(s.recv(100) == b"+PONG\r\n", "-c 2: one of the two clients got no PONG")
    got, closed = exchange(port, b"PING\r\n")
    check(got == b"-ERR max number of clients reached\r\n" and closed, "-c 2: the third client got %r" % got)
    a.close()
    b.close()
    time.sleep(0.1 * SLOW)
    # a client that never reads its replies
    s = connect(port)
    s.sendall(resp(B("SET", "big", "v" * 100000)))
    check(s.recv(100) == b"+OK\r\n", "SET big")
    s.sendall(resp(B("GET", "big")) * 300)
    time.sleep(1.5 * SLOW)
    closed = False
    end = time.time() + 10 * SLOW
    s.settimeout(2 * SLOW)
    try:
        while time.time() < end:
            if not s.recv(1 << 20):
                closed = True
                break
    except (ConnectionResetError, socket.timeout):
        closed = isinstance(sys.exc_info()[1], ConnectionResetError)
    s.close()
    check(closed, "-o 20000000: a client that never reads (30 MB of replies) was not closed")
    # fewer replies than -o (10 MB: more than the kernel buffers), unread for longer than -w
    s = connect(port)
    s.sendall(resp(B("SET", "big", "v" * 100000)) + resp(B("GET", "big")) * 100)
    time.sleep(2.5 * SLOW)
    s.settimeout(5 * SLOW)
    closed = False
    try:
        got = 0
        while True:
            d = s.recv(1 << 20)
            if not d:
                closed = True
                break
            got += len(d)
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    s.close()
    check(closed, "-w 1: a client that left 10 MB of replies unread for 2.5 s was not closed")
    check(wait_ping(port, 5 * SLOW), "-o: the server does not answer PING after closing a client")
    stop_kv(p, "kv_server -c 2 -o 20000000 -w 1")
    # a Unix socket
    path = os.path.join(tmp, "kv.sock")
    p, addr = start_kv(binary, host=path)
    got, _ = exchange(addr, resp(B("SET", "u", "1")) + resp(B("GET", "u")), quiet=0.3)
    check(got == b"+OK\r\n$1\r\n1\r\n", "Unix socket: %r" % got)
    if have_cli:
        out = cli(addr, ["PING"], "")
        check(out == b"PONG\n", "redis-cli -s: %r" % out)
    stop_kv(p, "kv_server on a Unix socket")
    check(not os.path.exists(path), "the Unix socket file is still there after the stop")


def start_redis(tmp):
    port = free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", tmp, "--daemonize", "no"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_ping(port, 10):
        p.kill()
        raise SystemExit("kv-test: redis-server does not answer PING on port %d" % port)
    return p, port


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="kv-test.")
    have_redis = shutil.which("redis-server") is not None
    have_cli = shutil.which("redis-cli") is not None
    notes = []
    if not have_redis:
        notes.append("redis-server is not installed (Debian package redis-server): "
                     "the byte-for-byte comparisons are skipped")
    if not have_cli:
        notes.append("redis-cli is not installed (Debian package redis-tools): the redis-cli parts are skipped")
    rp = None
    kp = None
    try:
        kp, kv = start_kv(binary)
        rd = None
        if have_redis:
            rp, rd = start_redis(tmp)
            compare(kv, rd, have_cli)
            random_ops(kv, rd)
            expire_all(kv)
        malformed(kv, rd, kp.pid)
        expiry(kv)
        stop_kv(kp, "kv_server")
        kp = None
        limits(binary, have_cli, tmp)
    finally:
        for p in (rp, kp):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    for n in notes:
        print("kv-test: skipped: " + n)
    print("kv-test: %d checks passed, %d failed%s" % (passed, len(failures),
          " (kv_server under %s)" % WRAP[0] if WRAP else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
