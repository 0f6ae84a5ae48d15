/*
 * bench/micro.c - coro's rows of the micro suite (the rows and aims: docs/benchmarks.md).
 *
 *   micro BENCH [ITERATIONS]   run one benchmark, print one JSON line a metric
 *   micro list                 the benchmark names
 *
 * Each benchmark does the documented work and nothing else; time comes from
 * CLOCK_MONOTONIC around the measured part only, best of 3 runs. Every
 * measured part runs on a loop whose allocator counts calls: a row whose hot
 * path allocated prints "allocs_per_op" too, so "no heap allocation per await
 * or per sleep" is checked on every run, not assumed.
 */
#include "coro.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- a counting allocator ---- */

static long alloc_calls;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    alloc_calls++;
    return realloc(ptr, nsize);
}

static coro_loop *new_loop(void)
{
    coro_loop_options opt = { 0 };
    opt.alloc = counting_alloc;
    opt.debug = -1;
    coro_loop *loop = coro_loop_new(&opt);
    if (!loop) {
        fprintf(stderr, "micro: cannot create a loop\n");
        exit(1);
    }
    return loop;
}

struct result {
    double ns_per_op;
    double allocs_per_op;
};

static void emit(const char *bench, const char *impl, const char *metric, double value)
{
    printf("{\"suite\":\"micro\",\"bench\":\"%s\",\"impl\":\"%s\",\"metric\":\"%s\",\"value\":%.3f}\n",
           bench, impl, metric, value);
}

/* ---- resume: a suspended coroutine resumed directly, no loop ---- */

struct gen_frame {
    coro_frame co;
};

static CORO_FN(yield_forever)
{
    CORO_BEGIN();
    for (;;)
        CORO_YIELD(coro_none());
    CORO_END();
}

static struct result bench_resume(long n)
{
    struct gen_frame f;
    coro_gen g;
    coro_frame_init(&f.co, yield_forever);
    coro_gen_init(&g, &f.co);
    coro_value v;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        coro_gen_next(&g, &v);
    int64_t dt = now_ns() - t0;
    return (struct result){ (double)dt / (double)n, 0 };
}

/* the floor: one indirect call doing the same bookkeeping a step does */
static int floor_step(int *state) { return ++*state; }
static int (*volatile floor_fn)(int *) = floor_step;

static struct result bench_floor(long n)
{
    int state = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        floor_fn(&state);
    int64_t dt = now_ns() - t0;
    return (struct result){ (double)dt / (double)n, 0 };
}

/* ---- yield: tasks alternating through the loop with sleep(0) ---- */

struct yielder {
    coro_frame co;
    long n, i;
};

static CORO_FN(yielder_step)
{
    struct yielder *self = CORO_SELF(struct yielder);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++)
        CORO_SLEEP(0);
    CORO_END();
}

static struct result run_yielders(int ntasks, long total)
{
    coro_loop *loop = new_loop();
    struct yielder *ys = calloc((size_t)ntasks, sizeof *ys);
    coro_task *ts = calloc((size_t)ntasks, sizeof *ts);
    long per = total / ntasks;
    for (int i = 0; i < ntasks; i++) {
        coro_frame_init(&ys[i].co, yielder_step);
        ys[i].n = per;
        coro_task_init(&ts[i], loop, &ys[i].co);
    }
    long a0 = alloc_calls;
    int64_t t0 = now_ns();
    coro_loop_run_until_complete(loop, coro_task_future(&ts[ntasks - 1]));
    int64_t dt = now_ns() - t0;
    long allocs = alloc_calls - a0;
    coro_loop_free(loop);
    free(ys);
    free(ts);
    double ops = (double)per * ntasks;
    return (struct result){ (double)dt / ops, (double)allocs / ops };
}

static struct result bench_yield(long n) { return run_yielders(2, n); }
static struct result bench_yield_many(long n) { return run_yielders(1000, n); }

/* ---- await depth: a yield at the bottom of a chain of D frames ---- */

#define MAX_DEPTH 32

struct level {
    coro_frame co;
    int depth;        /* frames below this one */
    long n, i;        /* the innermost: how many yields */
    struct level *child;
};

static CORO_FN(level_step)
{
    struct level *self = CORO_SELF(struct level);
    CORO_BEGIN();
    if (self->depth == 0) {
        for (self->i = 0; self->i < self->n; self->i++)
            CORO_SLEEP(0);
        CORO_RETURN(coro_int(0));
    }
    coro_frame_init(&self->child->co, level_step);
    CORO_AWAIT(&self->child->co);
    CORO_RETURN(coro_int(CORO_RESULT.u.i + 1));
    CORO_END();
}

static void chain_init(struct level *levels, int depth, long n)
{
    for (int i = 0; i < depth; i++) {
        levels[i].depth = depth - 1 - i;
        levels[i].n = n;
        levels[i].child = i + 1 < depth ? &levels[i + 1] : NULL;
    }
    coro_frame_init(&levels[0].co, level_step);
}

static struct result run_depth(int depth, long n)
{
    coro_loop *loop = new_loop();
    struct level levels[MAX_DEPTH];
    coro_task t;
    chain_init(levels, depth, n);
    coro_task_init(&t, loop, &levels[0].co);
    long a0 = alloc_calls;
    int64_t t0 = now_ns();
    coro_loop_run_until_complete(loop, coro_task_future(&t));
    int64_t dt = now_ns() - t0;
    long allocs = alloc_calls - a0;
    coro_value v;
    if (coro_task_result(&t, &v) != 0 || v.u.i != depth - 1) {
        fprintf(stderr, "micro: await chain returned %lld, want %d\n", (long long)v.u.i, depth - 1);
        exit(1);
    }
    coro_loop_free(loop);
    return (struct result){ (double)dt / (double)n, (double)allocs / (double)n };
}

static struct result bench_await_depth_1(long n) { return run_depth(1, n); }
static struct result bench_await_depth_32(long n) { return run_depth(32, n); }

/* ---- call_depth_32: call and return through a chain of 32 frames ---- */

struct caller {
    coro_frame co;
    long n, i;
    struct level levels[MAX_DEPTH];
};

static CORO_FN(caller_step)
{
    struct caller *self = CORO_SELF(struct caller);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        chain_init(self->levels, MAX_DEPTH, 0);
        CORO_AWAIT(&self->levels[0].co);
    }
    CORO_END();
}

static struct result bench_call_depth_32(long n)
{
    coro_loop *loop = new_loop();
    struct caller *c = calloc(1, sizeof *c);
    coro_task t;
    coro_frame_init(&c->co, caller_step);
    c->n = n;
    coro_task_init(&t, loop, &c->co);
    long a0 = alloc_calls;
    int64_t t0 = now_ns();
    coro_loop_run_until_complete(loop, coro_task_future(&t));
    int64_t dt = now_ns() - t0;
    long allocs = alloc_calls - a0;
    coro_loop_free(loop);
    free(c);
    return (struct result){ (double)dt / (double)n, (double)allocs / (double)n };
}

/* ---- spawn: create, run and finish an empty task ---- */

static CORO_FN(empty_step)
{
    CORO_BEGIN();
    CORO_END();
}

#define SPAWN_BATCH 1000

static struct result bench_spawn(long n)
{
    coro_loop *loop = new_loop();
    coro_task *batch[SPAWN_BATCH];
    int64_t t0 = now_ns();
    for (long done = 0; done < n; done += SPAWN_BATCH) {
        for (int i = 0; i < SPAWN_BATCH; i++)
            batch[i] = coro_spawn_new(loop, sizeof(coro_frame), empty_step);
        coro_loop_run_until_complete(loop, coro_task_future(batch[SPAWN_BATCH - 1]));
        for (int i = 0; i < SPAWN_BATCH; i++)
            coro_task_release(batch[i]);
    }
    int64_t dt = now_ns() - t0;
    coro_loop_free(loop);
    return (struct result){ (double)dt / (double)n, 0 };
}

/* ---- memory_per_task: resident bytes per task sleeping on a timer ---- */

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static CORO_FN(sleeper_step)
{
    CORO_BEGIN();
    CORO_SLEEP(3600);
    CORO_END();
}

static int stop_cb(void *arg)
{
    coro_loop_stop(arg);
    return 0;
}

static struct result bench_memory_per_task(long n)
{
    coro_loop *loop = new_loop();
    long before = rss_bytes();
    for (long i = 0; i < n; i++) {
        coro_task *t = coro_spawn(loop, coro_frame_new(loop, sizeof(coro_frame), sleeper_step));
        if (!t) {
            fprintf(stderr, "micro: spawn failed at %ld\n", i);
            exit(1);
        }
        coro_task_release(t);
    }
    coro_call_soon(loop, NULL, stop_cb, loop); /* after every first step */
    coro_loop_run_forever(loop);
    long after = rss_bytes();
    coro_loop_free(loop);
    return (struct result){ (double)(after - before) / (double)n, 0 };
}

/* ---- timers: 1M timers with spread deadlines, all fired ---- */

/* As the peers: deadlines 0-99 ms from an LCG (seed 12345), each callback
 * counts; process CPU time, so the wait for the last deadline is not
 * counted; the handles are initialised before the clock starts. */

struct timer_count {
    coro_loop *loop;
    long fired, n;
};

static int timer_cb(void *arg)
{
    struct timer_count *c = arg;
    if (++c->fired == c->n)
        coro_loop_stop(c->loop);
    return 0;
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct result bench_timers(long n)
{
    coro_loop *loop = new_loop();
    coro_handle *hs = malloc((size_t)n * sizeof *hs);
    struct timer_count c = { loop, 0, n };
    for (long i = 0; i < n; i++)
        coro_handle_init(&hs[i]);
    uint32_t seed = 12345;
    int64_t c0 = cpu_ns();
    int64_t now = coro_loop_time_ns(loop);
    for (long i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        coro_call_at(loop, &hs[i], now + (int64_t)((seed >> 8) % 100) * 1000000, timer_cb, &c);
    }
    coro_loop_run_forever(loop);
    int64_t dc = cpu_ns() - c0;
    if (c.fired != n) {
        fprintf(stderr, "micro: %ld of %ld timers fired\n", c.fired, n);
        exit(1);
    }
    coro_loop_free(loop);
    free(hs);
    return (struct result){ (double)dc / (double)n, 0 };
}

/* ---- queue_pingpong: a token through two capacity-1 queues ---- */

struct pong {
    coro_frame co;
    coro_queue *q1, *q2;
    long n, i;
    coro_queue_get_op get;
    coro_queue_put_op put;
};

static CORO_FN(pong_step)
{
    struct pong *self = CORO_SELF(struct pong);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        CORO_AWAIT(coro_queue_get(&self->get, self->q1));
        CORO_AWAIT(coro_queue_put(&self->put, self->q2, CORO_RESULT));
    }
    CORO_END();
}

struct ping {
    coro_frame co;
    coro_queue *q1, *q2;
    long n, i, wrong;
    coro_queue_get_op get;
    coro_queue_put_op put;
};

static CORO_FN(ping_step)
{
    struct ping *self = CORO_SELF(struct ping);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        CORO_AWAIT(coro_queue_put(&self->put, self->q1, coro_int(self->i)));
        CORO_AWAIT(coro_queue_get(&self->get, self->q2));
        self->wrong += CORO_RESULT.u.i != self->i;
    }
    CORO_END();
}

static struct result bench_queue_pingpong(long n)
{
    coro_loop *loop = new_loop();
    coro_queue q1, q2;
    coro_queue_init(&q1, loop, 1);
    coro_queue_init(&q2, loop, 1);
    struct ping a = { .q1 = &q1, .q2 = &q2, .n = n };
    struct pong b = { .q1 = &q1, .q2 = &q2, .n = n };
    coro_task ta, tb;
    coro_frame_init(&a.co, ping_step);
    coro_frame_init(&b.co, pong_step);
    coro_task_init(&ta, loop, &a.co);
    coro_task_init(&tb, loop, &b.co);
    long a0 = alloc_calls;
    int64_t t0 = now_ns();
    coro_loop_run_until_complete(loop, coro_task_future(&ta));
    int64_t dt = now_ns() - t0;
    long allocs = alloc_calls - a0;
    if (a.wrong || coro_task_result(&ta, NULL) || coro_task_result(&tb, NULL)) {
        fprintf(stderr, "micro: queue_pingpong: wrong token or failed task\n");
        exit(1);
    }
    coro_queue_fini(&q1);
    coro_queue_fini(&q2);
    coro_loop_free(loop);
    return (struct result){ (double)dt / (double)n, (double)allocs / (double)n };
}

/* ---- skynet: 1M leaves, fan-out 10, a task per node ---- */

struct skynet {
    coro_frame co;
    int64_t num, size, sum;
    int i;
    coro_task *kids[10];
};

static CORO_FN(skynet_step);

static coro_task *skynet_spawn(coro_loop *loop, int64_t num, int64_t size)
{
    struct skynet *f = CORO_FRAME_NEW(loop, struct skynet, skynet_step);
    if (!f)
        return NULL;
    f->num = num;
    f->size = size;
    return coro_spawn(loop, &f->co);
}

static CORO_FN(skynet_step)
{
    struct skynet *self = CORO_SELF(struct skynet);
    CORO_BEGIN();
    if (self->size == 1)
        CORO_RETURN(coro_int(self->num));
    for (self->i = 0; self->i < 10; self->i++)
        self->kids[self->i] = skynet_spawn(coro_get_running_loop(),
                                           self->num + self->i * (self->size / 10), self->size / 10);
    for (self->i = 0; self->i < 10; self->i++) {
        CORO_AWAIT(self->kids[self->i]);
        self->sum += CORO_RESULT.u.i;
        coro_task_release(self->kids[self->i]);
    }
    CORO_RETURN(coro_int(self->sum));
    CORO_END();
}

static struct result bench_skynet(long n)
{
    coro_loop *loop = new_loop();
    int64_t t0 = now_ns();
    coro_task *root = skynet_spawn(loop, 0, n);
    coro_loop_run_until_complete(loop, coro_task_future(root));
    int64_t dt = now_ns() - t0;
    coro_value v;
    if (coro_task_result(root, &v) != 0 || v.u.i != (int64_t)n * (n - 1) / 2) {
        fprintf(stderr, "micro: skynet sum %lld, want %lld\n", (long long)v.u.i,
                (long long)n * (n - 1) / 2);
        exit(1);
    }
    coro_loop_free(loop);
    return (struct result){ (double)dt / (double)n, 0 };
}

/* ---- timeout_churn: a timeout that never fires (arm + cancel) ---- */

/* As the peers: asyncio's wait_for(done, 3600) is `async with timeout(3600):
 * return await fut`, so each op arms the scope's timer, runs a body that
 * does not suspend, and cancels the timer. coro's wait_for skips the timer
 * for a future already done, so the row uses the scope itself. */
struct quick {
    coro_frame co;
};

static CORO_FN(quick_step)
{
    CORO_BEGIN();
    CORO_RETURN(coro_int(7));
    CORO_END();
}

struct churner {
    coro_frame co;
    long n, i, bad;
    struct quick body;
    coro_timeout_op to;
};

static CORO_FN(churner_step)
{
    struct churner *self = CORO_SELF(struct churner);
    CORO_BEGIN();
    for (self->i = 0; self->i < self->n; self->i++) {
        coro_frame_init(&self->body.co, quick_step);
        CORO_AWAIT(coro_timeout(&self->to, 3600, &self->body.co));
        self->bad += CORO_RESULT.u.i != 7;
    }
    CORO_END();
}

static struct result bench_timeout_churn(long n)
{
    coro_loop *loop = new_loop();
    struct churner c = { .n = n };
    coro_task t;
    coro_frame_init(&c.co, churner_step);
    coro_task_init(&t, loop, &c.co);
    long a0 = alloc_calls;
    int64_t t0 = now_ns();
    coro_loop_run_until_complete(loop, coro_task_future(&t));
    int64_t dt = now_ns() - t0;
    long allocs = alloc_calls - a0;
    if (c.bad || coro_task_result(&t, NULL) != 0 || loop->heap_len > 100) {
        fprintf(stderr, "micro: timeout_churn: wrong result or timers left\n");
        exit(1);
    }
    coro_loop_free(loop);
    return (struct result){ (double)dt / (double)n, (double)allocs / (double)n };
}

/* ---- the table of benchmarks ---- */

struct bench {
    const char *name;
    const char *impl;
    const char *metric;
    struct result (*run)(long n);
    long n;
    int repeat;
};

static const struct bench benches[] = {
    { "resume", "coro", "ns_per_op", bench_resume, 50000000, 3 },
    { "resume", "floor", "ns_per_op", bench_floor, 50000000, 3 },
    { "yield", "coro", "ns_per_op", bench_yield, 20000000, 3 },
    { "yield_many", "coro", "ns_per_op", bench_yield_many, 20000000, 3 },
    { "await_depth_1", "coro", "ns_per_op", bench_await_depth_1, 20000000, 3 },
    { "await_depth_32", "coro", "ns_per_op", bench_await_depth_32, 20000000, 3 },
    { "call_depth_32", "coro", "ns_per_op", bench_call_depth_32, 1000000, 3 },
    { "spawn", "coro", "ns_per_op", bench_spawn, 1000000, 3 },
    { "memory_per_task", "coro", "bytes_per_task", bench_memory_per_task, 1000000, 1 },
    { "timers", "coro", "ns_per_op", bench_timers, 1000000, 3 },
    { "timeout_churn", "coro", "ns_per_op", bench_timeout_churn, 2000000, 3 },
    { "queue_pingpong", "coro", "ns_per_op", bench_queue_pingpong, 2000000, 3 },
    { "skynet", "coro", "ns_per_op", bench_skynet, 1000000, 3 },
};

#define NBENCH (sizeof benches / sizeof benches[0])

static void run_one(const struct bench *b, long n)
{
    struct result best = { 0, 0 };
    for (int r = 0; r < b->repeat; r++) {
        struct result res = b->run(n);
        if (r == 0 || res.ns_per_op < best.ns_per_op)
            best = res;
    }
    emit(b->name, b->impl, b->metric, best.ns_per_op);
    if (best.allocs_per_op > 0)
        fprintf(stderr, "micro: %s: %.0f allocations in %ld ops (%.2g per op)\n", b->name,
                best.allocs_per_op * (double)n, n, best.allocs_per_op);
    else if (b->run != bench_floor && b->run != bench_spawn && b->run != bench_resume &&
             b->run != bench_memory_per_task && b->run != bench_timers && b->run != bench_skynet)
        fprintf(stderr, "micro: %s: 0 allocations in the measured part\n", b->name);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < NBENCH; i++)
            printf("%s %s\n", benches[i].name, benches[i].impl);
        return argc < 2;
    }
    const char *impl = argc > 3 ? argv[3] : "coro";
    long n = argc > 2 ? atol(argv[2]) : 0;
    int found = 0;
    for (size_t i = 0; i < NBENCH; i++)
        if (strcmp(benches[i].name, argv[1]) == 0 &&
            (argc <= 3 || strcmp(benches[i].impl, impl) == 0)) {
            run_one(&benches[i], n > 0 ? n : benches[i].n);
            found = 1;
        }
    if (!found) {
        fprintf(stderr, "micro: no benchmark '%s' (try: micro list)\n", argv[1]);
        return 2;
    }
    return 0;
}
