/*
 * bench/peers/libuv.c - the libuv peer of the micro suite (the rows and aims: docs/benchmarks.md).
 *
 *   libuv list                 the rows this peer runs ("name impl" lines)
 *   libuv BENCH [ITERATIONS]   run one row, print one JSON line
 *
 * Build: cc -O2 libuv.c -luv (bench/run.sh does it). Best of 3.
 *
 *   timers         N uv_timer_t armed with deadlines spread pseudo-randomly
 *                  over 0-99 ms (libuv counts in ms), the loop run until every
 *                  one fired; each callback counts. The figure is process CPU
 *                  time per timer (arming, the heap, the callbacks), so the
 *                  wait for the last deadline is not counted.
 *   timeout_churn  uv_timer_start of a one-hour timeout, then uv_timer_stop:
 *                  the arm + cancel of a timeout that never fires.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, CLOCK_PROCESS_CPUTIME_ID */

#include <uv.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void emit(const char *bench, const char *metric, double value)
{
    printf("{\"suite\":\"micro\",\"bench\":\"%s\",\"impl\":\"libuv\",\"metric\":\"%s\",\"value\":%.3f}\n",
           bench, metric, value);
}

static void die(const char *what, int err)
{
    fprintf(stderr, "libuv: %s: %s\n", what, err ? uv_strerror(err) : "failed");
    exit(1);
}

/* ---- timers ---- */

static long fired;

static void count_cb(uv_timer_t *t)
{
    (void)t;
    fired++;
}

static double bench_timers(long n)
{
    uv_loop_t loop;
    int err = uv_loop_init(&loop);
    if (err)
        die("uv_loop_init", err);
    uv_timer_t *ts = malloc((size_t)n * sizeof *ts);
    if (!ts)
        die("malloc", 0);
    for (long i = 0; i < n; i++)
        uv_timer_init(&loop, &ts[i]);
    fired = 0;
    uint32_t seed = 12345;
    int64_t c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        uv_timer_start(&ts[i], count_cb, (seed >> 8) % 100, 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once no timer is active */
    int64_t dc = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (fired != n)
        die("not every timer fired", 0);
    for (long i = 0; i < n; i++)
        uv_close((uv_handle_t *)&ts[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if ((err = uv_loop_close(&loop)) != 0)
        die("uv_loop_close", err);
    free(ts);
    return (double)dc / (double)n;
}

/* ---- timeout_churn ---- */

static void never_cb(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "libuv: timeout_churn: the timeout fired\n");
    exit(1);
}

static double bench_timeout_churn(long n)
{
    uv_loop_t loop;
    uv_timer_t t;
    int err = uv_loop_init(&loop);
    if (err)
        die("uv_loop_init", err);
    uv_timer_init(&loop, &t);
    int64_t t0 = clock_ns(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        uv_timer_start(&t, never_cb, 3600 * 1000, 0);
        uv_timer_stop(&t);
    }
    int64_t dt = clock_ns(CLOCK_MONOTONIC) - t0;
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if ((err = uv_loop_close(&loop)) != 0)
        die("uv_loop_close", err);
    return (double)dt / (double)n;
}

/* ---- the table ---- */

struct bench {
    const char *name;
    const char *metric;
    double (*run)(long n);
    long n;
    int repeat;
};

static const struct bench benches[] = {
    { "timers", "ns_per_op", bench_timers, 1000000, 3 },
    { "timeout_churn", "ns_per_op", bench_timeout_churn, 20000000, 3 },
};

int main(int argc, char **argv)
{
    size_t nb = sizeof benches / sizeof benches[0];
    if (argc < 2 || strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < nb; i++)
            printf("%s libuv\n", benches[i].name);
        return argc < 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 0;
    for (size_t i = 0; i < nb; i++) {
        const struct bench *b = &benches[i];
        if (strcmp(b->name, argv[1]) != 0)
            continue;
        double best = 0;
        for (int r = 0; r < b->repeat; r++) {
            double v = b->run(n > 0 ? n : b->n);
            if (r == 0 || v < best)
                best = v;
        }
        emit(b->name, b->metric, best);
        return 0;
    }
    fprintf(stderr, "libuv: no benchmark '%s' (try: libuv list)\n", argv[1]);
    return 2;
}
