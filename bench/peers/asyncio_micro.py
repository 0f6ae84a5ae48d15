#!/usr/bin/env python3
"""bench/peers/asyncio_micro.py - the asyncio peer of the micro suite.

    python3 asyncio_micro.py list                 the rows ("name impl" lines)
    python3 asyncio_micro.py BENCH [ITERATIONS]   run one row, print one JSON line

The default event loop (no uvloop), standard library only. Each row does the
work of its coro twin in bench/micro.c with fewer iterations (asyncio is
slow); the per-op figure is divided the same way, so the rows compare. Time
is time.perf_counter_ns around the measured part (process CPU time for
timers, whose deadlines are in the future), best of 3. The loop is created
before the clock starts and closed after it stops.
"""
import asyncio
import gc
import json
import os
import sys
import time


def emit(bench, metric, value):
    print(json.dumps({"suite": "micro", "bench": bench, "impl": "asyncio",
                      "metric": metric, "value": round(value, 3)},
                     separators=(",", ":")), flush=True)


def die(msg):
    print(f"asyncio: {msg}", file=sys.stderr)
    sys.exit(1)


def run(coro):
    """Run `coro` on a fresh loop; it returns the measured figure."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


# ---- yield / yield_many: tasks alternating with sleep(0) ----

async def yielder(n):
    for _ in range(n):
        await asyncio.sleep(0)


async def yielders(ntasks, total):
    per = total // ntasks
    tasks = [asyncio.create_task(yielder(per)) for _ in range(ntasks)]
    t0 = time.perf_counter_ns()  # created, none has run yet (as in micro.c)
    await tasks[-1]
    dt = time.perf_counter_ns() - t0
    if not all(t.done() for t in tasks):
        die("a yielder did not finish")
    return dt / (per * ntasks)


def bench_yield(n):
    return run(yielders(2, n))


def bench_yield_many(n):
    return run(yielders(1000, n))


# ---- await depth: a yield at the bottom of a chain of D coroutines ----

async def level(depth, n):
    if depth == 0:
        for _ in range(n):
            await asyncio.sleep(0)
        return 0
    return await level(depth - 1, n) + 1


async def depth_chain(depth, n):
    t0 = time.perf_counter_ns()
    got = await asyncio.create_task(level(depth - 1, n))  # the chain is one task
    dt = time.perf_counter_ns() - t0
    if got != depth - 1:
        die(f"await chain returned {got}, want {depth - 1}")
    return dt / n


def bench_await_depth_1(n):
    return run(depth_chain(1, n))


def bench_await_depth_32(n):
    return run(depth_chain(32, n))


# ---- call_depth_32: call and return through 32 awaited coroutines ----

async def caller(n):
    total = 0
    for _ in range(n):
        total += await level(31, 0)
    return total


async def call_chain(n):
    t0 = time.perf_counter_ns()
    total = await asyncio.create_task(caller(n))
    dt = time.perf_counter_ns() - t0
    if total != 31 * n:
        die("call chain returned a wrong value")
    return dt / n


def bench_call_depth_32(n):
    return run(call_chain(n))


# ---- spawn: create_task of an empty coroutine, batches of 1000 ----

async def empty():
    pass


async def spawner(n, batch=1000):
    t0 = time.perf_counter_ns()
    for _ in range(0, n, batch):
        tasks = [asyncio.create_task(empty()) for _ in range(batch)]
        await tasks[-1]  # FIFO: every one of the batch is done
    dt = time.perf_counter_ns() - t0
    return dt / n


def bench_spawn(n):
    return run(spawner(n))


# ---- memory_per_task: tasks each sleeping on a timer ----

def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


async def sleeper():
    await asyncio.sleep(3600)


async def sleepers(n):
    tasks = [None] * n  # the program keeps its tasks: the list is not counted
    gc.collect()
    before = rss_bytes()
    for i in range(n):
        tasks[i] = asyncio.create_task(sleeper())
    await asyncio.sleep(0)  # every task runs to its sleep
    after = rss_bytes()
    loop = asyncio.get_running_loop()
    if len(loop._scheduled) < n:  # noqa: SLF001 - a check, not the work
        die("not every task is sleeping")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return (after - before) / n


def bench_memory_per_task(n):
    return run(sleepers(n))


# ---- timers: call_at with spread deadlines, all fired ----
# Deadlines spread pseudo-randomly over 0-99 ms (as for every timers peer);
# the figure is process CPU time per timer, so the wait is not counted.

async def timers(n):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    fired = 0

    def cb():
        nonlocal fired
        fired += 1
        if fired == n:
            done.set_result(None)

    seed = 12345
    c0 = time.process_time_ns()
    base = loop.time()
    for _ in range(n):
        seed = (seed * 1664525 + 1013904223) & 0xFFFFFFFF
        loop.call_at(base + ((seed >> 8) % 100000) * 1e-6, cb)
    await done
    dc = time.process_time_ns() - c0
    return dc / n


def bench_timers(n):
    return run(timers(n))


# ---- timeout_churn: wait_for on a future that completes before the timeout ----

async def churn(n):
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    for i in range(n):
        fut = loop.create_future()
        fut.set_result(i)  # done before the wait: the timeout never fires
        if await asyncio.wait_for(fut, 3600) != i:
            die("timeout_churn: wrong result")
    dt = time.perf_counter_ns() - t0
    return dt / n


def bench_timeout_churn(n):
    return run(churn(n))


# ---- queue_pingpong: a token through two asyncio.Queue(1) ----
# One op = one round trip (ping -> pong -> ping), as in micro.c.

async def pingpong(n):
    q1 = asyncio.Queue(1)
    q2 = asyncio.Queue(1)

    async def pong():
        for _ in range(n):
            await q2.put(await q1.get())

    t0 = time.perf_counter_ns()
    other = asyncio.create_task(pong())
    for i in range(n):
        await q1.put(i)
        if await q2.get() != i:
            die("queue_pingpong: wrong token")
    await other
    dt = time.perf_counter_ns() - t0
    return dt / n


def bench_queue_pingpong(n):
    return run(pingpong(n))


# ---- skynet: 10^k leaves, fan-out 10, a task per node ----

async def skynet(num, size):
    if size == 1:
        return num
    sub = size // 10
    tasks = [asyncio.create_task(skynet(num + i * sub, sub)) for i in range(10)]
    return sum(await asyncio.gather(*tasks))


async def skynet_root(n):
    t0 = time.perf_counter_ns()
    got = await asyncio.create_task(skynet(0, n))
    dt = time.perf_counter_ns() - t0
    if got != n * (n - 1) // 2:
        die(f"skynet: sum {got}, want {n * (n - 1) // 2}")
    return dt / n  # per leaf


def bench_skynet(n):
    return run(skynet_root(n))


# ---- the table ----

BENCHES = [
    # name, metric, function, iterations, repeat
    ("yield", "ns_per_op", bench_yield, 200_000, 3),
    ("yield_many", "ns_per_op", bench_yield_many, 200_000, 3),
    ("await_depth_1", "ns_per_op", bench_await_depth_1, 200_000, 3),
    ("await_depth_32", "ns_per_op", bench_await_depth_32, 100_000, 3),
    ("call_depth_32", "ns_per_op", bench_call_depth_32, 20_000, 3),
    ("spawn", "ns_per_op", bench_spawn, 100_000, 3),
    ("memory_per_task", "bytes_per_task", bench_memory_per_task, 200_000, 1),
    ("timers", "ns_per_op", bench_timers, 200_000, 3),
    ("timeout_churn", "ns_per_op", bench_timeout_churn, 100_000, 3),
    ("queue_pingpong", "ns_per_op", bench_queue_pingpong, 100_000, 3),
    ("skynet", "ns_per_op", bench_skynet, 100_000, 3),
]


def main(argv):
    if len(argv) < 2 or argv[1] == "list":
        for b in BENCHES:
            print(f"{b[0]} asyncio")
        return 1 if len(argv) < 2 else 0
    n = int(argv[2]) if len(argv) > 2 else 0
    for name, metric, fn, default_n, repeat in BENCHES:
        if name != argv[1]:
            continue
        best = None
        for _ in range(repeat):
            gc.collect()
            v = fn(n if n > 0 else default_n)
            best = v if best is None else min(best, v)
        emit(name, metric, best)
        return 0
    print(f"asyncio: no benchmark '{argv[1]}' (try: list)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
