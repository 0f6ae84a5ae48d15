/*
 * examples/tour.c - the asyncio tutorial scenes, retold in C (`make demo`).
 *
 * Each scene prints the asyncio code it retells, what the C side does, and
 * the measured time beside every line ([+0.300 s] is the time since the
 * scene's clock started). Sleeps are scaled down ten times (3 s -> 0.3 s).
 *
 *   ./build/examples/tour          the whole tour (about 4.5 seconds)
 *   ./build/examples/tour 1 8 gen  only the scenes named (1 2 3 4 4b 5 6 7 8 gen)
 *
 * Reading the coroutines below, remember the WARNING at the top of coro.h:
 * a C local dies at every suspension point (CORO_AWAIT, CORO_YIELD,
 * CORO_SLEEP), so whatever must live across one is a field of the frame
 * (self->i, never a local i); one suspension point per source line; none
 * inside a `switch`.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "coro.h"
#include "http_parse.h" /* the request parser of examples/http_server.c */

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#else
#define PRINTF_LIKE(a, b)
#endif

/* ======================================================================== */
/* Printing and timing                                                      */
/* ======================================================================== */

static double clock_t0; /* the scene's clock (the tour's, not the library's) */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void clock_start(void) { clock_t0 = now(); }
static double elapsed(void) { return now() - clock_t0; }

static void scene(const char *num, const char *title)
{
    char head[96];
    int n = snprintf(head, sizeof head, "== %s%s%s ", num, *num ? ". " : "", title);
    printf("\n%s", head);
    for (; n < 78; n++)
        putchar('=');
    printf("\n");
}

/* The asyncio code a part retells: one line per argument, NULL-terminated. */
static void python(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        printf("  %s %s\n", s == first ? "asyncio:" : "        ", s);
    va_end(ap);
}

static void part(const char *title) { printf("\n  %s\n", title); }

/* A line of output with the scene clock beside it. */
PRINTF_LIKE(1, 2) static void say(const char *fmt, ...)
{
    va_list ap;
    printf("    [+%.3f s]  ", elapsed());
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* A line of output without the clock. */
PRINTF_LIKE(1, 2) static void note(const char *fmt, ...)
{
    va_list ap;
    printf("    ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void total(const char *why)
{
    printf("    total %.3f s   <- %s\n", elapsed(), why);
}

/* 1234567 -> "1,234,567" */
static const char *grouped(long v, char *buf, size_t len)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%ld", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *task_name(coro_loop *loop, char *buf, size_t len)
{
    return coro_task_get_name(coro_current_task(loop), buf, len);
}

/* asyncio.run(main()): each scene's main starts with
 * self->loop = coro_get_running_loop(), to spawn its tasks there. */
static int run_main(coro_frame *main, const coro_loop_options *opt)
{
    int rc = coro_run(main, NULL, opt);
    if (rc != 0)
        printf("    the scene failed: %s (%d)\n", coro_strerror(rc), rc);
    return rc;
}

#define SLOW 0.3 /* asyncio.sleep(3), scaled down */

/* ======================================================================== */
/* Scene 1: blocking vs concurrent                                          */
/* ======================================================================== */

/* async def find_square(n):
 *     print(f"square of {n} is {n * n}")
 *     await asyncio.sleep(3)                                                 */
struct find_square {
    coro_frame co;
    int n;
};

static CORO_FN(find_square_step)
{
    struct find_square *self = CORO_SELF(struct find_square);
    CORO_BEGIN();
    say("find_square(%d): square of %d is %d", self->n, self->n, self->n * self->n);
    CORO_SLEEP(SLOW);
    CORO_END();
}

/* find_square(n): builds the coroutine, runs nothing. */
static coro_frame *find_square_init(struct find_square *f, int n)
{
    coro_frame_init(&f->co, find_square_step);
    f->n = n;
    return &f->co;
}

/* async def find_root(n):
 *     print(f"square root of {n} is {math.sqrt(n)}")
 *     await asyncio.sleep(3)                                                 */
struct find_root {
    coro_frame co;
    int n;
};

static CORO_FN(find_root_step)
{
    struct find_root *self = CORO_SELF(struct find_root);
    CORO_BEGIN();
    say("find_root(%d):   square root of %d is %.1f", self->n, self->n, sqrt(self->n));
    CORO_SLEEP(SLOW);
    CORO_END();
}

static coro_frame *find_root_init(struct find_root *f, int n)
{
    coro_frame_init(&f->co, find_root_step);
    f->n = n;
    return &f->co;
}

/* async def sleeper(): await asyncio.sleep(3) */
struct sleeper {
    coro_frame co;
    double seconds;
};

static CORO_FN(sleeper_step)
{
    struct sleeper *self = CORO_SELF(struct sleeper);
    CORO_BEGIN();
    CORO_SLEEP(self->seconds);
    CORO_END();
}

#define HUNDRED 100

struct scene1 {
    coro_frame co;
    coro_loop *loop;
    struct find_square sq; /* child frames live inside the parent's frame */
    struct find_root rt;
    coro_task *t1, *t2;
    coro_task *tasks[HUNDRED];
    int i;
};

static CORO_FN(scene1_step)
{
    struct scene1 *self = CORO_SELF(struct scene1);
    CORO_BEGIN();
    self->loop = coro_get_running_loop(); /* asyncio.get_running_loop() */

    part("a) one after the other: each await is a plain child frame (yield from)");
    python("await find_square(4)", "await find_root(16)                       # 6 s", NULL);
    clock_start();
    CORO_AWAIT(find_square_init(&self->sq, 4));
    CORO_AWAIT(find_root_init(&self->rt, 16));
    total("the sum of the two sleeps: ~0.6 s");

    part("b) as two tasks: coro_spawn, then await each");
    python("t1 = asyncio.create_task(find_square(4))",
           "t2 = asyncio.create_task(find_root(16))",
           "await t1; await t2                        # 3 s", NULL);
    clock_start();
    self->t1 = coro_spawn(self->loop, find_square_init(&self->sq, 4));
    self->t2 = coro_spawn(self->loop, find_root_init(&self->rt, 16));
    if (!self->t1 || !self->t2)
        CORO_RAISE(CORO_ENOMEM);
    CORO_AWAIT(self->t1);
    CORO_AWAIT(self->t2);
    coro_task_release(self->t1);
    coro_task_release(self->t2);
    total("both fast parts at +0.000, one sleep: ~0.3 s");

    part("c) a hundred sleepers as tasks");
    python("tasks = [asyncio.create_task(sleeper()) for _ in range(100)]",
           "for t in tasks: await t                   # still 3 s", NULL);
    clock_start();
    for (self->i = 0; self->i < HUNDRED; self->i++) {
        struct sleeper *s = CORO_FRAME_NEW(self->loop, struct sleeper, sleeper_step);
        if (!s)
            CORO_RAISE(CORO_ENOMEM);
        s->seconds = SLOW;
        self->tasks[self->i] = coro_spawn(self->loop, &s->co); /* owns s from here */
        if (!self->tasks[self->i])
            CORO_RAISE(CORO_ENOMEM);
    }
    for (self->i = 0; self->i < HUNDRED; self->i++) {
        CORO_AWAIT(self->tasks[self->i]);
        coro_task_release(self->tasks[self->i]);
    }
    total("100 tasks sleeping side by side: still ~0.3 s");
    CORO_END();
}

static void scene1(void)
{
    struct scene1 m;
    scene("1", "Blocking vs concurrent");
    coro_frame_init(&m.co, scene1_step);
    run_main(&m.co, NULL);
}

/* ======================================================================== */
/* Scene 2: awaiting a coroutine directly is `yield from`                   */
/* ======================================================================== */

/* async def work(name, seconds):
 *     print(name, "runs in", asyncio.current_task().get_name())
 *     await asyncio.sleep(seconds)                                           */
struct work {
    coro_frame co;
    coro_loop *loop;
    const char *name;
    double seconds;
};

static CORO_FN(work_step)
{
    struct work *self = CORO_SELF(struct work);
    char buf[32];
    CORO_BEGIN();
    say("%s runs in %s, awaits sleep(%.1f)", self->name, task_name(self->loop, buf, sizeof buf),
        self->seconds);
    CORO_SLEEP(self->seconds);
    say("%s done", self->name);
    CORO_END();
}

static coro_frame *work_init(struct work *f, coro_loop *loop, const char *name, double seconds)
{
    coro_frame_init(&f->co, work_step);
    f->loop = loop;
    f->name = name;
    f->seconds = seconds;
    return &f->co;
}

struct scene2 {
    coro_frame co;
    coro_loop *loop;
    struct work f1, f2;
    coro_task *t1, *t2;
};

static CORO_FN(scene2_step)
{
    struct scene2 *self = CORO_SELF(struct scene2);
    char buf[32];
    CORO_BEGIN();
    self->loop = coro_get_running_loop(); /* asyncio.get_running_loop() */
    note("main runs in %s", task_name(self->loop, buf, sizeof buf));

    part("a) await the coroutines: they run inside main's task, one after the other");
    python("await f1()        # sleeps 1 s", "await f2()        # sleeps 2 s: 3 s in all", NULL);
    clock_start();
    CORO_AWAIT(work_init(&self->f1, self->loop, "f1", 0.1));
    CORO_AWAIT(work_init(&self->f2, self->loop, "f2", 0.2));
    total("the sum, 0.1 + 0.2 s: awaiting is not running together");

    part("b) wrap them in tasks first: each runs in its own task, beside main");
    python("t1 = asyncio.create_task(f1()); t2 = asyncio.create_task(f2())",
           "await t1; await t2                        # 2 s", NULL);
    clock_start();
    self->t1 = coro_spawn(self->loop, work_init(&self->f1, self->loop, "f1", 0.1));
    self->t2 = coro_spawn(self->loop, work_init(&self->f2, self->loop, "f2", 0.2));
    if (!self->t1 || !self->t2)
        CORO_RAISE(CORO_ENOMEM);
    CORO_AWAIT(self->t1);
    CORO_AWAIT(self->t2);
    coro_task_release(self->t1);
    coro_task_release(self->t2);
    total("the longest, 0.2 s: only a task runs beside its caller");
    CORO_END();
}

static void scene2(void)
{
    struct scene2 m;
    scene("2", "Awaiting a coroutine is `yield from`, not a task");
    coro_frame_init(&m.co, scene2_step);
    run_main(&m.co, NULL);
}

/* ======================================================================== */
/* Scene 3: what a coroutine object is                                      */
/* ======================================================================== */

/* async def brew():
 *     print("boil the water"); await asyncio.sleep(0)
 *     print("steep the tea");  await asyncio.sleep(0)
 *     print("pour");           return "a cup of tea"
 * CORO_YIELD(coro_none()) is sleep(0): one loop pass inside a task, and a
 * bare yield to whoever drives the frame by hand. */
struct brew {
    coro_frame co;
    int cups;
};

static CORO_FN(brew_step)
{
    struct brew *self = CORO_SELF(struct brew);
    CORO_BEGIN();
    note("  | the body runs: boil the water");
    CORO_YIELD(coro_none());
    note("  | the body runs: steep the tea");
    CORO_YIELD(coro_none());
    note("  | the body runs: pour");
    self->cups++;
    CORO_RETURN(coro_ptr("a cup of tea"));
    CORO_END();
}

static coro_frame *brew_init(struct brew *f)
{
    coro_frame_init(&f->co, brew_step);
    f->cups = 0;
    return &f->co;
}

static void show_resume(const char *what, int32_t resume, int done)
{
#ifdef CORO_LABELS
    const char *form = "a label offset: LABELS=1";
#else
    const char *form = "the line of tour.c it resumes at";
#endif
    if (resume == 0)
        note("%-32s f.co.resume = %d   (not started)", what, resume);
    else if (done)
        note("%-32s f.co.resume = %d  (done)", what, resume);
    else
        note("%-32s f.co.resume = %d (%s)", what, resume, form);
}

static void scene3(void)
{
    struct brew f;
    coro_gen g;
    coro_value out;
    scene("3", "What a coroutine object is");
    python("c = brew()        # builds a coroutine object: nothing runs",
           "c.send(None)      # steps it to its next await", NULL);
    printf("\n");
    brew_init(&f);
    show_resume("brew_init(&f): nothing printed", f.co.resume, 0);
    note("sizeof(struct brew) = %zu bytes: the %zu-byte coro_frame header, then the fields",
         sizeof f, sizeof f.co);
    coro_gen_init(&g, &f.co);
    for (int step = 1;; step++) {
        char what[48];
        int rc = coro_gen_next(&g, &out);
        if (rc == 1) {
            snprintf(what, sizeof what, "coro_gen_next #%d -> 1 (yielded)", step);
            show_resume(what, f.co.resume, 0);
            continue;
        }
        snprintf(what, sizeof what, "coro_gen_next #%d -> %d (returned)", step, rc);
        show_resume(what, f.co.resume, g.done);
        if (rc == 0 && out.tag == CORO_PTR)
            note("the return value: \"%s\" (StopIteration.value)", (const char *)out.u.p);
        break;
    }
}

/* ======================================================================== */
/* Scene 4: gather returns results in argument order                        */
/* ======================================================================== */

#define E_NOT_FOUND (CORO_EUSER - 2) /* an application error: UserNotFound */

/* async def fetch_user(uid):
 *     await asyncio.sleep(0.1)   # the simulated request
 *     return uid * 100           # the user record, say                      */
struct fetch_user {
    coro_frame co;
    int uid;
    double delay;
    int missing; /* raise UserNotFound instead */
};

static CORO_FN(fetch_user_step)
{
    struct fetch_user *self = CORO_SELF(struct fetch_user);
    CORO_BEGIN();
    CORO_SLEEP(self->delay);
    if (self->missing) {
        say("fetch_user(%d) fails after %.2f s: UserNotFound", self->uid, self->delay);
        CORO_RAISE(E_NOT_FOUND);
    }
    say("fetch_user(%d) done after %.2f s", self->uid, self->delay);
    CORO_RETURN(coro_int(self->uid * 100));
    CORO_END();
}

#define NUSERS 3

/* One gather of the three requests: their frames, their tasks (our
 * storage: coro_task_init allocates nothing) and the gather's arrays. */
struct user_round {
    struct fetch_user fetch[NUSERS];
    coro_task tasks[NUSERS];
    CORO_GATHER_OP(g, NUSERS); /* the op, futs[3], results[3], nodes[3] */
};

/* asyncio wraps gather's coroutines in tasks for us; in C we do it. No
 * suspension point in here: a plain function. */
static int user_round_start(struct user_round *r, coro_loop *loop, int missing_uid)
{
    static const double delay[NUSERS] = { 0.10, 0.05, 0.08 };
    for (int i = 0; i < NUSERS; i++) {
        struct fetch_user *f = &r->fetch[i];
        coro_frame_init(&f->co, fetch_user_step);
        f->uid = i + 1;
        f->delay = delay[i];
        f->missing = f->uid == missing_uid;
        int rc = coro_task_init(&r->tasks[i], loop, &f->co);
        if (rc != 0)
            return rc;
        r->g.futs[i] = coro_task_future(&r->tasks[i]);
    }
    return 0;
}

/* "[100, 200, 300]", an error slot as its exception's name. */
static const char *users_list(const coro_value *v, char *buf, size_t len)
{
    size_t o = 0;
    for (int i = 0; i < NUSERS && o < len; i++) {
        const char *sep = i ? ", " : "[";
        if (v[i].tag == CORO_ERROR)
            o += (size_t)snprintf(buf + o, len - o, "%s%s", sep,
                                  v[i].u.i == E_NOT_FOUND ? "UserNotFound()"
                                                          : coro_strerror((int)v[i].u.i));
        else
            o += (size_t)snprintf(buf + o, len - o, "%s%lld", sep, (long long)v[i].u.i);
    }
    if (o < len)
        snprintf(buf + o, len - o, "]");
    return buf;
}

struct scene4 {
    coro_frame co;
    coro_loop *loop;
    struct user_round round[2];
    int err;
};

static CORO_FN(scene4_step)
{
    struct scene4 *self = CORO_SELF(struct scene4);
    char buf[96];
    CORO_BEGIN();
    self->loop = coro_get_running_loop(); /* asyncio.get_running_loop() */

    part("a) three requests of 0.10, 0.05 and 0.08 s: one await for the three");
    python("users = await asyncio.gather(fetch_user(1), fetch_user(2), fetch_user(3))", NULL);
    note("    C: three tasks, then CORO_AWAIT(CORO_GATHER(&self->g, 0))");
    clock_start();
    self->err = user_round_start(&self->round[0], self->loop, 0);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(CORO_GATHER(&self->round[0].g, 0));
    say("users = %s   (argument order, not completion order)",
        users_list(self->round[0].g.results, buf, sizeof buf));
    total("the slowest request, 0.1 s, not the sum (0.23 s)");

    part("b) user 2 does not exist: return_exceptions=True keeps the other results");
    python("users = await asyncio.gather(fetch_user(1), fetch_user(2), fetch_user(3),",
           "                             return_exceptions=True)", NULL);
    note("    C: the flag CORO_RETURN_ERRORS; a failed slot holds coro_error(code)");
    clock_start();
    self->err = user_round_start(&self->round[1], self->loop, 2);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(CORO_GATHER(&self->round[1].g, CORO_RETURN_ERRORS));
    say("users = %s", users_list(self->round[1].g.results, buf, sizeof buf));
    total("still 0.1 s: gather waited for all three");
    CORO_END();
}

static void scene4(void)
{
    struct scene4 m;
    scene("4", "gather returns results in order");
    coro_frame_init(&m.co, scene4_step);
    run_main(&m.co, NULL);
}

/* ======================================================================== */
/* Scene 4b: a pipeline over a bounded queue                                */
/* ======================================================================== */

#define NITEMS 6
#define QUEUE_MAX 2
#define MAKE_TIME 0.01 /* the producer makes an item in 10 ms */

struct pipeline; /* the scene's frame: the queue and the counters */

/* async def producer():
 *     for i in range(1, 7):
 *         await asyncio.sleep(0.01); await q.put(i)  # waits while q is full
 *     await q.join(); q.shutdown()                                          */
struct producer {
    coro_frame co;
    struct pipeline *p;
    coro_queue_put_op put;
    coro_queue_join_op join;
    int i;
    int full;             /* the current put found the queue full */
    int waits;            /* puts that found the queue full */
    double asked, waited; /* when the current put began; time spent waiting */
};

/* async def consumer(name, work):
 *     while True:
 *         try: item = await q.get()
 *         except asyncio.QueueShutDown: return
 *         await asyncio.sleep(work); q.task_done()                          */
struct consumer {
    coro_frame co;
    struct pipeline *p;
    const char *name;
    double work; /* seconds per item */
    coro_queue_get_op get;
    int64_t item;
    int count, err;
};

struct pipeline {
    coro_frame co;
    coro_loop *loop;
    coro_queue q;
    struct producer prod;
    struct consumer cons[2];
    coro_task tasks[3];
    CORO_GATHER_OP(g, 3);
    double last_put;
    int err;
};

/* One line of the pipeline: who, what, and how full the queue is now. */
PRINTF_LIKE(3, 4) static void pipe_line(const char *who, const coro_queue *q, const char *fmt, ...)
{
    char what[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    say("%-10s  %-36s  queue %zu/%zu", who, what, coro_queue_qsize(q), coro_queue_maxsize(q));
}

static CORO_FN(producer_step)
{
    struct producer *self = CORO_SELF(struct producer);
    coro_queue *q = &self->p->q;
    CORO_BEGIN();
    for (self->i = 1; self->i <= NITEMS; self->i++) {
        CORO_SLEEP(MAKE_TIME); /* make the item */
        self->asked = elapsed();
        self->full = coro_queue_full(q);
        if (self->full) {
            pipe_line("producer", q, "item %d ready: put() waits for room", self->i);
            self->waits++;
        }
        CORO_AWAIT(coro_queue_put(&self->put, q, coro_int(self->i)));
        if (self->full) {
            self->waited += elapsed() - self->asked;
            pipe_line("producer", q, "put item %d, after waiting %.3f s", self->i,
                      elapsed() - self->asked);
        } else {
            pipe_line("producer", q, "put item %d", self->i);
        }
    }
    self->p->last_put = elapsed();
    say("%-10s  all %d put: join() waits for every task_done()", "producer", NITEMS);
    CORO_AWAIT(coro_queue_join(&self->join, q));
    say("%-10s  join() returned: %d items processed; shutdown()", "producer", NITEMS);
    coro_queue_shutdown(q, 0);
    CORO_RETURN(coro_int(self->waits));
    CORO_END();
}

static CORO_FN(consumer_step)
{
    struct consumer *self = CORO_SELF(struct consumer);
    coro_queue *q = &self->p->q;
    CORO_BEGIN();
    for (;;) {
        CORO_AWAIT_ERR(coro_queue_get(&self->get, q), self->err);
        if (self->err == CORO_ESHUTDOWN)
            break;
        if (self->err)
            CORO_RAISE(self->err);
        self->item = CORO_RESULT.u.i;
        self->count++;
        pipe_line(self->name, q, "got item %lld", (long long)self->item);
        CORO_SLEEP(self->work); /* process it */
        coro_queue_task_done(q);
    }
    say("%-10s  get(): CORO_ESHUTDOWN (QueueShutDown), returns %d", self->name, self->count);
    CORO_RETURN(coro_int(self->count));
    CORO_END();
}

static CORO_FN(pipeline_step)
{
    static const char *names[2] = { "consumer A", "consumer B" };
    static const double work[2] = { 0.06, 0.09 };
    struct pipeline *self = CORO_SELF(struct pipeline);
    CORO_BEGIN();
    self->loop = coro_get_running_loop(); /* asyncio.get_running_loop() */
    python("q = asyncio.Queue(maxsize=2)",
           "async def producer():",
           "    for i in range(1, 7): await asyncio.sleep(0.01); await q.put(i)",
           "    await q.join(); q.shutdown()      # every item task_done(), then close",
           "async def consumer(name, work):",
           "    while True:",
           "        try: item = await q.get()",
           "        except asyncio.QueueShutDown: return",
           "        await asyncio.sleep(work); q.task_done()",
           "await asyncio.gather(producer(), consumer('A', 0.06), consumer('B', 0.09))",
           NULL);
    printf("\n");
    self->err = coro_queue_init(&self->q, self->loop, QUEUE_MAX);
    if (self->err)
        CORO_RAISE(self->err);
    clock_start();
    coro_frame_init(&self->prod.co, producer_step);
    self->prod.p = self;
    self->err = coro_task_init(&self->tasks[0], self->loop, &self->prod.co);
    for (int i = 0; i < 2 && self->err == 0; i++) { /* no await inside: a local is fine */
        coro_frame_init(&self->cons[i].co, consumer_step);
        self->cons[i].p = self;
        self->cons[i].name = names[i];
        self->cons[i].work = work[i];
        self->err = coro_task_init(&self->tasks[i + 1], self->loop, &self->cons[i].co);
    }
    if (self->err)
        CORO_RAISE(self->err);
    for (int i = 0; i < 3; i++)
        self->g.futs[i] = coro_task_future(&self->tasks[i]);
    CORO_AWAIT(CORO_GATHER(&self->g, 0));
    say("gather -> [%lld, %lld, %lld]   (puts that waited, items A took, items B took)",
        (long long)self->g.results[0].u.i, (long long)self->g.results[1].u.i,
        (long long)self->g.results[2].u.i);
    total("the consumers' pace (0.06 and 0.09 s an item), not the producer's");
    note("backpressure: unhindered, the producer would have put all %d items by +%.2f s;",
         NITEMS, NITEMS * MAKE_TIME);
    note("the full queue (maxsize %d) held %d of its puts back, %.3f s in all: its last",
         QUEUE_MAX, self->prod.waits, self->prod.waited);
    note("put was at +%.3f s, the producer ran at the consumers' pace", self->last_put);
    CORO_FINALLY;
    coro_queue_fini(&self->q); /* nothing waits on it any more */
    CORO_END();
}

static void scene4b(void)
{
    struct pipeline m;
    memset(&m, 0, sizeof m);
    scene("4b", "A pipeline over a bounded queue");
    coro_frame_init(&m.co, pipeline_step);
    run_main(&m.co, NULL);
}

/* ======================================================================== */
/* Scene 5: a resource used with `async with`                               */
/* ======================================================================== */

#define E_BAD_REPLY (CORO_EUSER - 1) /* an application error code */
#define POOL_SIZE 2
#define STEP 0.05 /* open, send || receive, close: 50 ms each */

/* One operation on the connection: it takes a moment. */
struct conn_op {
    coro_frame co;
    double seconds;
};

static CORO_FN(conn_op_step)
{
    struct conn_op *self = CORO_SELF(struct conn_op);
    CORO_BEGIN();
    CORO_SLEEP(self->seconds);
    CORO_END();
}

static coro_frame *conn_op_init(struct conn_op *f, double seconds)
{
    coro_frame_init(&f->co, conn_op_step);
    f->seconds = seconds;
    return &f->co;
}

/* pool = asyncio.Semaphore(2): two connections at most. */
struct pool {
    coro_semaphore sem;
    int in_use, peak;
};

/* The connection's own `async with` (its close is this frame's CORO_FINALLY,
 * the connection's __aexit__):
 *     async with open_connection() as conn:   # open; close always
 *         await gather(conn.send(), conn.receive())
 *         if bad: raise BadReply                                            */
struct conn_body {
    coro_frame co;
    coro_loop *loop;
    const char *name;
    int bad_reply;
    double io_seconds; /* how long send and receive take */
    int opened, err;
    struct conn_op open, close, send, receive;
    coro_task ts, tr;
    CORO_GATHER_OP(io, 2);
};

static CORO_FN(conn_body_step)
{
    struct conn_body *self = CORO_SELF(struct conn_body);
    CORO_BEGIN();
    CORO_AWAIT(conn_op_init(&self->open, STEP));
    self->opened = 1;
    say("%s  conn.open() done", self->name);
    self->err = coro_task_init(&self->ts, self->loop, conn_op_init(&self->send, self->io_seconds));
    if (self->err == 0)
        self->err = coro_task_init(&self->tr, self->loop,
                                   conn_op_init(&self->receive, self->io_seconds));
    if (self->err)
        CORO_RAISE(self->err);
    self->io.futs[0] = coro_task_future(&self->ts);
    self->io.futs[1] = coro_task_future(&self->tr);
    CORO_AWAIT_ERR(CORO_GATHER(&self->io, 0), self->err);
    if (self->err) {
        say("%s  conn.send() || conn.receive(): %s", self->name,
            self->err == CORO_ECANCELLED ? "cancelled (the deadline)" : coro_strerror(self->err));
        CORO_RAISE(self->err);
    }
    say("%s  conn.send() || conn.receive() done", self->name);
    if (self->bad_reply) {
        say("%s  the body raises BadReply", self->name);
        CORO_RAISE(E_BAD_REPLY);
    }
    CORO_FINALLY; /* the connection's __aexit__: on return, error, cancellation */
    if (self->opened)
        CORO_AWAIT(conn_op_init(&self->close, STEP));
    if (self->opened)
        say("%s  conn.close() done", self->name);
    CORO_END();
}

/* async def session(name, bad=False, slow=False):
 *     async with pool:            # CORO_WITH_SEMAPHORE: released always
 *         <conn_body>                                                       */
struct session {
    coro_frame co;
    struct pool *pool;
    const char *name;
    coro_with_semaphore_op with;
    struct conn_body body;
    int err;
};

static CORO_FN(session_step)
{
    struct session *self = CORO_SELF(struct session);
    CORO_BEGIN();
    if (coro_semaphore_locked(&self->pool->sem))
        say("%s  waits for a free connection", self->name);
    CORO_TRY {
        CORO_WITH_SEMAPHORE(&self->with, &self->pool->sem) { /* async with pool: */
            if (++self->pool->in_use > self->pool->peak)
                self->pool->peak = self->pool->in_use;
            say("%s  holds a connection            (in use: %d of %d)", self->name,
                self->pool->in_use, POOL_SIZE);
            CORO_AWAIT_ERR(&self->body.co, self->err); /* async with open_connection() ... */
            self->pool->in_use--;
            if (self->err)
                CORO_RAISE(self->err);
        } CORO_WITH_END; /* the permit is given back here, however the block ends */
    } CORO_EXCEPT(self->err) {
    } CORO_TRY_END;
    if (self->err == E_BAD_REPLY)
        say("%s  gave its connection back; BadReply goes on to the caller", self->name);
    else if (self->err)
        say("%s  gave its connection back; \"%s\" goes on to the caller", self->name,
            coro_strerror(self->err));
    else
        say("%s  gave its connection back", self->name);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_END();
}

static coro_frame *session_init(struct session *s, coro_loop *loop, struct pool *pool,
                                const char *name, int bad_reply, double io_seconds)
{
    memset(s, 0, sizeof *s);
    coro_frame_init(&s->co, session_step);
    s->pool = pool;
    s->name = name;
    coro_frame_init(&s->body.co, conn_body_step);
    s->body.loop = loop;
    s->body.name = name;
    s->body.bad_reply = bad_reply;
    s->body.io_seconds = io_seconds;
    return &s->co;
}

struct scene5 {
    coro_frame co;
    coro_loop *loop;
    struct pool pool;
    struct session s[3], slow;
    coro_task tasks[3];
    CORO_GATHER_OP(g, 3);
    coro_wait_for_op wf;
    int err;
};

static const char *outcome(coro_value v, char *buf, size_t len)
{
    if (v.tag != CORO_ERROR)
        snprintf(buf, len, "None");
    else if (v.u.i == E_BAD_REPLY)
        snprintf(buf, len, "BadReply()");
    else
        snprintf(buf, len, "%s", coro_strerror((int)v.u.i));
    return buf;
}

static CORO_FN(scene5_step)
{
    static const char *names[3] = { "A", "B", "C" };
    struct scene5 *self = CORO_SELF(struct scene5);
    char a[24], b[24], c[24];
    CORO_BEGIN();
    self->loop = coro_get_running_loop(); /* asyncio.get_running_loop() */
    self->err = coro_semaphore_init(&self->pool.sem, self->loop, POOL_SIZE);
    if (self->err)
        CORO_RAISE(self->err);
    python("pool = asyncio.Semaphore(2)                   # two connections at most",
           "async def session(name, bad=False, slow=False):",
           "    async with pool:                          # CORO_WITH_SEMAPHORE",
           "        async with open_connection() as conn: # open; close always (CORO_FINALLY)",
           "            await gather(conn.send(), conn.receive())",
           "            if bad: raise BadReply", NULL);

    part("a) three sessions, two connections; B's body fails");
    python("await gather(session('A'), session('B', bad=True), session('C'),",
           "             return_exceptions=True)", NULL);
    clock_start();
    for (int i = 0; i < 3 && self->err == 0; i++) { /* no await inside: a local is fine */
        session_init(&self->s[i], self->loop, &self->pool, names[i], i == 1, STEP);
        self->err = coro_task_init(&self->tasks[i], self->loop, &self->s[i].co);
        self->g.futs[i] = coro_task_future(&self->tasks[i]);
    }
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(CORO_GATHER(&self->g, CORO_RETURN_ERRORS));
    say("gather -> [%s, %s, %s]: the caller gets B's error",
        outcome(self->g.results[0], a, sizeof a), outcome(self->g.results[1], b, sizeof b),
        outcome(self->g.results[2], c, sizeof c));
    total("A and B side by side (0.15 s), then C on a freed connection (0.15 s)");
    note("at most %d connections in use at once; free again: %d of %d", self->pool.peak,
         coro_semaphore_value(&self->pool.sem), POOL_SIZE);

    part("b) a slow session under a deadline: wait_for cancels it, its cleanup runs");
    python("try: await asyncio.wait_for(session('D', slow=True), timeout=0.08)",
           "except TimeoutError: ...", NULL);
    clock_start();
    CORO_AWAIT_ERR(coro_wait_for(&self->wf, 0.08,
                                 session_init(&self->slow, self->loop, &self->pool, "D", 0, 1.0)),
                   self->err);
    if (self->err == CORO_ETIMEDOUT)
        say("wait_for -> CORO_ETIMEDOUT: the caller catches TimeoutError");
    else
        say("wait_for -> %s (expected CORO_ETIMEDOUT)", coro_strerror(self->err));
    total("the 0.08 s deadline, then the 0.05 s close it waited for");
    note("the cleanup ran before wait_for returned: D's connection was closed and given");
    note("back to the pool (free: %d of %d)", coro_semaphore_value(&self->pool.sem), POOL_SIZE);
    CORO_END();
}

static void scene5(void)
{
    struct scene5 m;
    memset(&m, 0, sizeof m);
    scene("5", "A resource used with `async with`");
    coro_frame_init(&m.co, scene5_step);
    run_main(&m.co, NULL);
}

/* ======================================================================== */
/* Scene 6: concurrent fetches from a server on loopback                    */
/* ======================================================================== */

#define NCITIES 12
#define LOOKUP 0.1 /* the server's simulated lookup, per request */

static const char *const cities[NCITIES] = {
    "Amsterdam", "Bangkok", "Cairo", "Dakar", "Lima",  "Madrid",
    "Nairobi",   "Oslo",    "Paris", "Quito", "Seoul", "Tokyo",
};

/* The made-up weather of a city, the same as examples/http_server.c's. */
static int weather_of(char *buf, size_t cap, const char *name, size_t len)
{
    static const char *const skies[] = { "sunny", "cloudy", "rainy", "windy", "foggy" };
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    int t = (int)(h % 41) - 5;
    return snprintf(buf, cap, "%.*s: %d C, %s\n", (int)len, name, t,
                    t <= 0 ? "snowy" : skies[(h >> 8) % (sizeof skies / sizeof skies[0])]);
}

/* The server's side (examples/http_server.c is the full one):
 * async def handle(reader, writer):          -- one request per connection
 *     head = await reader.readuntil(b"\r\n\r\n")
 *     await asyncio.sleep(0.1)               -- the lookup
 *     writer.write(answer)                   -- the server then closes     */
struct weather_conn {
    coro_frame co;
    coro_stream *s;
    coro_stream_op op;
    http_request req;
    int err;
};

static void weather_answer(struct weather_conn *self, int status, const char *body, int n)
{
    char text[256];
    int len = snprintf(text, sizeof text,
                       "HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                       status, http_reason(status), n, body);
    coro_stream_write(self->s, text, (size_t)len); /* copied if not sent at once */
}

static CORO_FN(weather_conn_step)
{
    static const char prefix[] = "/city/";
    struct weather_conn *self = CORO_SELF(struct weather_conn);
    const char *head;
    size_t n;
    char body[128];
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_stream_readuntil(&self->op, self->s, "\r\n\r\n", 4), self->err);
    if (self->err)
        CORO_RETURN(coro_none()); /* the client went away */
    head = coro_stream_data(self->s, &n);
    http_request_init(&self->req);
    if (http_parse_request(&self->req, head, n) <= 0) {
        weather_answer(self, 400, "", 0);
        CORO_RETURN(coro_none());
    }
    if (self->req.target.len <= sizeof prefix - 1 ||
        memcmp(head + self->req.target.off, prefix, sizeof prefix - 1) != 0) {
        weather_answer(self, 404, "", 0);
        CORO_RETURN(coro_none());
    }
    CORO_SLEEP(LOOKUP);
    head = coro_stream_data(self->s, &n); /* still valid: nothing was read since */
    weather_answer(self, 200, body,
                   weather_of(body, sizeof body,
                              head + self->req.target.off + sizeof prefix - 1,
                              self->req.target.len - (sizeof prefix - 1)));
    CORO_END();
}

/* start_server's client_connected_cb: a frame for the connection's task
 * (from coro_frame_new: the server frees it once the handler is done). */
static coro_frame *weather_connect(coro_stream *s, void *arg)
{
    (void)arg;
    struct weather_conn *c = CORO_FRAME_NEW(coro_stream_loop(s), struct weather_conn,
                                            weather_conn_step);
    if (c)
        c->s = s;
    return c ? &c->co : NULL;
}

/* async def fetch(city):
 *     reader, writer = await asyncio.open_connection("127.0.0.1", port)
 *     writer.write(f"GET /city/{city} HTTP/1.1\r\n...\r\n\r\n".encode())
 *     await writer.drain()
 *     answer = await reader.read()           -- all of it: the server closes
 *     writer.close(); await writer.wait_closed()
 *     return answer.split(b"\r\n\r\n")[1]                                   */
struct city_fetch {
    coro_frame co;
    int port;
    const char *city;
    coro_open_connection_op open;
    coro_stream s;
    int opened, err;
    coro_stream_op op;
    char answer[64];
};

static CORO_FN(city_fetch_step)
{
    struct city_fetch *self = CORO_SELF(struct city_fetch);
    char req[128];
    const char *data;
    size_t n, i;
    CORO_BEGIN();
    CORO_AWAIT(coro_open_connection(&self->open, &self->s, "127.0.0.1", self->port, NULL));
    self->opened = 1;
    n = (size_t)snprintf(req, sizeof req, "GET /city/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                         self->city, self->port);
    self->err = coro_stream_write(&self->s, req, n);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(coro_stream_drain(&self->op, &self->s));
    CORO_AWAIT(coro_stream_read(&self->op, &self->s, -1)); /* until EOF */
    data = coro_stream_data(&self->s, &n);
    for (i = 0; i + 4 <= n && memcmp(data + i, "\r\n\r\n", 4) != 0; i++)
        ;
    data += i + 4 <= n ? i + 4 : n;
    n -= i + 4 <= n ? i + 4 : n;
    while (n > 0 && data[n - 1] == '\n')
        n--;
    snprintf(self->answer, sizeof self->answer, "%.*s", (int)n, data);
    CORO_FINALLY;
    if (self->opened) {
        self->opened = 0;
        coro_stream_close(&self->s);
        CORO_AWAIT_ERR(coro_stream_wait_closed(&self->op, &self->s), self->err);
    }
    CORO_END();
}

static coro_frame *city_fetch_init(struct city_fetch *f, int port, const char *city)
{
    memset(f, 0, sizeof *f);
    coro_frame_init(&f->co, city_fetch_step);
    f->port = port;
    f->city = city;
    return &f->co;
}

struct scene6 {
    coro_frame co;
    coro_loop *loop;
    coro_server srv;
    coro_start_server_op start;
    coro_server_op op;
    int serving, port, i, same, err;
    struct city_fetch f[NCITIES];
    coro_task tasks[NCITIES];
    CORO_GATHER_OP(g, NCITIES);
    char first[NCITIES][64]; /* a)'s answers, to compare b)'s with */
    double concurrent;
};

static CORO_FN(scene6_step)
{
    struct scene6 *self = CORO_SELF(struct scene6);
    coro_sockaddr addr;
    CORO_BEGIN();
    self->loop = coro_get_running_loop(); /* asyncio.get_running_loop() */
    python("server = await asyncio.start_server(handle, '127.0.0.1', 0)   # any free port",
           "async def fetch(city):   # open_connection, write GET /city/..., read the answer",
           NULL);
    CORO_AWAIT(coro_start_server(&self->start, &self->srv, "127.0.0.1", 0, weather_connect, NULL,
                                 NULL));
    self->serving = 1;
    self->err = coro_server_sockname(&self->srv, 0, &addr);
    if (self->err)
        CORO_RAISE(self->err);
    self->port = coro_sockaddr_port(&addr);
    note("    C: coro_start_server on 127.0.0.1:%d (port 0: a free one); its tasks run on",
         self->port);
    note("       this same loop, and answer each GET /city/NAME after a %.1f s lookup", LOOKUP);

    part("a) twelve cities at once: one gather");
    python("answers = await asyncio.gather(*(fetch(city) for city in cities))", NULL);
    clock_start();
    for (self->i = 0; self->i < NCITIES && self->err == 0; self->i++) {
        coro_frame *f = city_fetch_init(&self->f[self->i], self->port, cities[self->i]);
        self->err = coro_task_init(&self->tasks[self->i], self->loop, f);
        self->g.futs[self->i] = coro_task_future(&self->tasks[self->i]);
    }
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(CORO_GATHER(&self->g, 0));
    self->concurrent = elapsed();
    say("gather -> %d answers, in argument order:", NCITIES);
    for (self->i = 0; self->i < NCITIES; self->i += 3)
        note("    %-25s %-25s %s", self->f[self->i].answer, self->f[self->i + 1].answer,
             self->f[self->i + 2].answer);
    for (self->i = 0; self->i < NCITIES; self->i++)
        memcpy(self->first[self->i], self->f[self->i].answer, sizeof self->first[0]);
    total("about one lookup (0.1 s) for the twelve");

    part("b) the same twelve, one after the other");
    python("answers = [await fetch(city) for city in cities]", NULL);
    clock_start();
    self->same = 1;
    for (self->i = 0; self->i < NCITIES; self->i++) {
        CORO_AWAIT(city_fetch_init(&self->f[self->i], self->port, cities[self->i]));
        self->same &= strcmp(self->first[self->i], self->f[self->i].answer) == 0;
    }
    say("%d answers, %s", NCITIES, self->same ? "the same as a)'s" : "NOT the same as a)'s");
    total("twelve lookups in a row: ~1.2 s");
    note("%.0f times the concurrent time: while one fetch waits, the others run",
         elapsed() / self->concurrent);
    CORO_FINALLY;
    if (self->serving) { /* server.close(); await server.wait_closed() */
        self->serving = 0;
        coro_server_close(&self->srv);
        CORO_AWAIT_ERR(coro_server_wait_closed(&self->op, &self->srv), self->err);
    }
    CORO_END();
}

static void scene6(void)
{
    struct scene6 *m = calloc(1, sizeof *m);
    scene("6", "Concurrent fetches");
    if (!m) {
        printf("    out of memory\n");
        return;
    }
    coro_frame_init(&m->co, scene6_step);
    run_main(&m->co, NULL);
    free(m);
}

/* ======================================================================== */
/* Scene 7: when async does not help                                        */
/* ======================================================================== */

#define CRUNCH 0.06 /* seconds of CPU work per call (1 s in the tutorial) */
#define BEAT 0.01   /* the heartbeat's period */

/* def crunch(): ...pure computation, no await...  (the spin is on the CPU) */
static double crunch(double seconds)
{
    double stop = now() + seconds, acc = 0;
    long i = 0;
    while (now() < stop)
        for (int k = 0; k < 1000; k++, i++)
            acc += sqrt((double)i);
    return acc;
}

/* async def crunch_task(): crunch() */
struct crunch_task {
    coro_frame co;
};

static CORO_FN(crunch_step)
{
    CORO_BEGIN();
    crunch(CRUNCH);
    CORO_END();
}

/* crunch() as a pool thread runs it: a coro_work_fn (it touches no loop). */
static coro_value crunch_work(void *arg)
{
    (void)arg;
    return coro_double(crunch(CRUNCH));
}

/* async def threaded_task(): await asyncio.to_thread(crunch) */
struct threaded_task {
    coro_frame co;
    coro_to_thread_op op;
};

static CORO_FN(threaded_step)
{
    struct threaded_task *self = CORO_SELF(struct threaded_task);
    CORO_BEGIN();
    CORO_AWAIT(coro_to_thread(&self->op, crunch_work, NULL));
    CORO_END();
}

/* async def heartbeat():
 *     while True: await asyncio.sleep(0.01)   -- counting its ticks and the
 * longest gap between two, which is how long the loop was held.           */
struct heartbeat {
    coro_frame co;
    int stop;
    int ticks;
    double last, longest;
};

static CORO_FN(heartbeat_step)
{
    struct heartbeat *self = CORO_SELF(struct heartbeat);
    double t;
    CORO_BEGIN();
    self->last = now();
    while (!self->stop) {
        CORO_SLEEP(BEAT);
        t = now();
        self->ticks++;
        if (t - self->last > self->longest)
            self->longest = t - self->last;
        self->last = t;
    }
    CORO_END();
}

static coro_frame *heartbeat_init(struct heartbeat *h)
{
    memset(h, 0, sizeof *h);
    coro_frame_init(&h->co, heartbeat_step);
    return &h->co;
}

static void slow_report(coro_loop *loop, const coro_exception_context *c, void *arg)
{
    (void)loop;
    (void)arg;
    say("debug: %s [%s] took %.3f s", c->message, c->task_name ? c->task_name : "callback",
        c->seconds);
}

struct scene7 {
    coro_frame co;
    coro_loop *loop;
    struct heartbeat beat;
    coro_task beat_task;
    struct crunch_task work[3];
    struct threaded_task threaded[3];
    coro_task tasks[3];
    CORO_GATHER_OP(g, 3);
    int i, err;
};

static const char *crunch_names[3] = { "crunch-1", "crunch-2", "crunch-3" };

static CORO_FN(scene7_step)
{
    struct scene7 *self = CORO_SELF(struct scene7);
    CORO_BEGIN();
    self->loop = coro_get_running_loop(); /* asyncio.get_running_loop() */
    coro_loop_set_exception_handler(self->loop, slow_report, NULL);
    python("asyncio.run(main(), debug=True)            # or PYTHONASYNCIODEBUG=1",
           "async def heartbeat():                     # beside the work, all along:",
           "    while True: await asyncio.sleep(0.01)  # how often does it get to run?", NULL);

    part("a) crunch() called in three tasks: they hold the loop, the heartbeat stalls");
    python("tasks = [asyncio.create_task(crunch_task()) for _ in range(3)]",
           "for t in tasks: await t                   # 3 x 1 s: nothing suspends", NULL);
    clock_start();
    self->err = coro_task_init(&self->beat_task, self->loop, heartbeat_init(&self->beat));
    for (self->i = 0; self->i < 3 && self->err == 0; self->i++) {
        coro_frame_init(&self->work[self->i].co, crunch_step);
        self->err = coro_task_init(&self->tasks[self->i], self->loop, &self->work[self->i].co);
        if (self->err == 0)
            self->err = coro_task_set_name(&self->tasks[self->i], crunch_names[self->i]);
    }
    if (self->err)
        CORO_RAISE(self->err);
    for (self->i = 0; self->i < 3; self->i++)
        CORO_AWAIT(&self->tasks[self->i]);
    self->beat.stop = 1;
    CORO_AWAIT(&self->beat_task);
    say("heartbeat: %d tick%s in all, the longest gap %.3f s (it asked for %.2f s)",
        self->beat.ticks, self->beat.ticks == 1 ? "" : "s", self->beat.longest, BEAT);
    total("3 x 0.06 s: tasks share one thread, and these never let go of it");
    note("debug mode (options.debug = 1, coro_loop_set_debug, or CORO_DEBUG=1) names each");
    note("task that held the loop longer than slow_callback_ns (here 50 ms), as asyncio does");

    part("b) the same crunch() moved to the thread pool: the loop breathes");
    python("await asyncio.gather(*(asyncio.to_thread(crunch) for _ in range(3)))", NULL);
    note("    C: three tasks, each CORO_AWAIT(coro_to_thread(&self->op, crunch_work, NULL))");
    clock_start();
    self->err = coro_task_init(&self->beat_task, self->loop, heartbeat_init(&self->beat));
    for (self->i = 0; self->i < 3 && self->err == 0; self->i++) {
        coro_frame_init(&self->threaded[self->i].co, threaded_step);
        self->err =
            coro_task_init(&self->tasks[self->i], self->loop, &self->threaded[self->i].co);
        self->g.futs[self->i] = coro_task_future(&self->tasks[self->i]);
    }
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(CORO_GATHER(&self->g, 0));
    self->beat.stop = 1;
    CORO_AWAIT(&self->beat_task);
    say("heartbeat: %d ticks, the longest gap %.3f s: the loop ran all along",
        self->beat.ticks, self->beat.longest);
    total("~0.06 s: three pool threads side by side, and no slow report");
    note("to_thread does not make crunch() faster (%ld CPUs here); it keeps the loop free",
         sysconf(_SC_NPROCESSORS_ONLN));
    note("to serve the heartbeat, and every other task, while the work runs");
    CORO_END();
}

static void scene7(void)
{
    struct scene7 m;
    coro_loop_options opt = { 0 };
    opt.debug = 1;                          /* asyncio.run(main(), debug=True) */
    opt.slow_callback_ns = 50 * 1000000LL; /* loop.slow_callback_duration = 0.05 */
    scene("7", "When async does not help: CPU-bound work");
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, scene7_step);
    run_main(&m.co, &opt);
}

/* ======================================================================== */
/* Scene 8: memory                                                          */
/* ======================================================================== */

#define MILLION 1000000L

/* The resident set, from /proc/self/statm (0 where there is none). */
static long rss_bytes(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

struct million;

/* async def nap(): await asyncio.sleep(0.2) -- and count itself done */
struct nap {
    coro_frame co;
    struct million *m;
};

struct million {
    coro_frame co;
    coro_loop *loop;
    coro_future all_done; /* set by the last nap to finish */
    long left;
    long i;
    long rss0, rss1;
    double spawned;
};

static CORO_FN(nap_step)
{
    struct nap *self = CORO_SELF(struct nap);
    CORO_BEGIN();
    CORO_SLEEP(0.2);
    if (--self->m->left == 0)
        coro_future_set_result(&self->m->all_done, coro_none());
    CORO_END();
}

static CORO_FN(million_step)
{
    struct million *self = CORO_SELF(struct million);
    char a[32], b[32];
    CORO_BEGIN();
    self->loop = coro_get_running_loop(); /* asyncio.get_running_loop() */
    coro_future_init(&self->all_done, self->loop);
    self->left = MILLION;
    self->rss0 = rss_bytes();
    clock_start();
    for (self->i = 0; self->i < MILLION; self->i++) {
        struct nap *n = CORO_FRAME_NEW(self->loop, struct nap, nap_step);
        if (!n)
            CORO_RAISE(CORO_ENOMEM);
        n->m = self;
        coro_task *t = coro_spawn(self->loop, &n->co);
        if (!t)
            CORO_RAISE(CORO_ENOMEM);
        coro_task_release(t); /* fire and forget: freed once done */
    }
    self->spawned = elapsed();
    CORO_YIELD(coro_none()); /* one loop pass: every task takes its first step and sleeps */
    self->rss1 = rss_bytes();
    say("%s tasks spawned (%.2f s) and all asleep", grouped(MILLION, a, sizeof a),
        self->spawned);
    say("resident set %.1f MB -> %.1f MB: %ld bytes per sleeping task", (double)self->rss0 / 1e6,
        (double)self->rss1 / 1e6, (self->rss1 - self->rss0) / MILLION);
    note("            = the task (%zu B) + its frame in the slab (%zu B)", sizeof(coro_task),
         (sizeof(struct nap) + 15) / 16 * 16);
    note("              + its timer-heap entry + its slot in the loop's list of tasks");
    CORO_AWAIT(&self->all_done);
    say("all %s finished (%s left)", grouped(MILLION, a, sizeof a),
        grouped(self->left, b, sizeof b));
    total("a million concurrent sleeps of 0.2 s, on one thread");
    CORO_END();
}

/* One line of the memory table: a label, a size, what it is. */
static void row(const char *label, const char *approx, size_t v, const char *unit, const char *text)
{
    char value[32];
    snprintf(value, sizeof value, "%s%zu %s", approx, v, unit);
    note("%-18s %8s   %s", label, value, text);
}

static void scene8(void)
{
    struct million m;
    pthread_attr_t attr;
    size_t stack = 0;
    char buf[32];

    scene("8", "Memory");
    python("async def nap(): await asyncio.sleep(0.2)",
           "for _ in range(1_000_000): asyncio.create_task(nap())", NULL);
    printf("\n");
    if (pthread_attr_init(&attr) == 0) {
        pthread_attr_getstacksize(&attr, &stack);
        pthread_attr_destroy(&attr);
    }
    row("one thread", "", stack / 1024, "KB", "pthread's default stack (reserved: ulimit -s)");
    row("one asyncio task", "~", 1, "KB", "the figure usually quoted for asyncio (Task + coro)");
    row("one coro task", "", sizeof(coro_task), "B ", "sizeof(coro_task), plus its frame:");
    row("", "", sizeof(struct nap), "B ", "sizeof(struct nap): a coro_frame header + one field");
    row("", "", sizeof(coro_frame), "B ", "sizeof(coro_frame): the header every frame starts with");
    printf("\n");
    note("spawning %s tasks (coro_frame_new + coro_spawn + coro_task_release),",
         grouped(MILLION, buf, sizeof buf));
    note("each awaiting sleep(0.2):");
    coro_frame_init(&m.co, million_step);
    if (run_main(&m.co, NULL) == 0)
        note("after coro_loop_close: resident set %.1f MB", (double)rss_bytes() / 1e6);
}

/* ======================================================================== */
/* Generators: send                                                         */
/* ======================================================================== */

/* def averager():
 *     total = count = 0; avg = None
 *     try:
 *         while True:
 *             x = yield avg
 *             total += x; count += 1; avg = total / count
 *     finally:
 *         print("closed after", count, "values")                            */
struct averager {
    coro_frame co;
    double total;
    int count;
    coro_value avg;
};

static double as_double(coro_value v) { return v.tag == CORO_DOUBLE ? v.u.d : (double)v.u.i; }

static CORO_FN(averager_step)
{
    struct averager *self = CORO_SELF(struct averager);
    CORO_BEGIN();
    self->avg = coro_none();
    for (;;) {
        CORO_YIELD(self->avg); /* x = yield avg; CORO_RESULT is x */
        self->total += as_double(CORO_RESULT);
        self->count++;
        self->avg = coro_double(self->total / self->count);
    }
    CORO_FINALLY;
    note("  | finally: the averager closes after %d values", self->count);
    CORO_END();
}

static void show_step(const char *call, int rc, coro_value v)
{
    if (rc != 1)
        note("%-18s -> %d: %s", call, rc, coro_strerror(rc));
    else if (v.tag == CORO_NONE)
        note("%-18s -> None", call);
    else
        note("%-18s -> %.2f", call, v.u.d);
}

static void scene_gen(void)
{
    static const double values[] = { 10, 30, 5, 15 };
    struct averager f;
    coro_gen g;
    coro_value out = coro_none();
    char call[32];

    scene("", "Generators: a running average with send");
    python("def averager(): ... x = yield avg ...     # the generator below",
           "g = averager(); next(g); g.send(10); g.send(30); ...; g.close()", NULL);
    printf("\n");
    coro_frame_init(&f.co, averager_step);
    f.total = 0;
    f.count = 0;
    coro_gen_init(&g, &f.co);
    show_step("coro_gen_next", coro_gen_next(&g, &out), out);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        int rc = coro_gen_send(&g, coro_double(values[i]), &out);
        snprintf(call, sizeof call, "coro_gen_send(%g)", values[i]);
        show_step(call, rc, out);
    }
    int rc = coro_gen_close(&g);
    note("%-18s -> %d (%s: the cancel thrown in ran the finally)", "coro_gen_close", rc,
         rc == 0 ? "closed" : coro_strerror(rc));
}

/* ======================================================================== */
/* Scene 10: watch it run (trace mode)                                       */
/* ======================================================================== */

/* async def nap(s): await asyncio.sleep(s)                                 */
struct napper {
    coro_frame co;
    double secs;
};

static CORO_FN(napper_step)
{
    struct napper *self = CORO_SELF(struct napper);
    CORO_BEGIN();
    CORO_SLEEP(self->secs);
    CORO_END();
}

/* async def main(): t1 = create_task(nap(1)); t2 = create_task(nap(2))
 *                   await t1; await t2                                     */
struct traced {
    coro_frame co;
    struct napper n1, n2;
    coro_task t1, t2;
};

static CORO_FN(traced_step)
{
    struct traced *self = CORO_SELF(struct traced);
    CORO_BEGIN();
    self->n1 = (struct napper){ CORO_FRAME_INIT(napper_step), SLOW / 3 };
    self->n2 = (struct napper){ CORO_FRAME_INIT(napper_step), 2 * SLOW / 3 };
    coro_task_init(&self->t1, NULL, &self->n1.co);
    coro_task_init(&self->t2, NULL, &self->n2.co);
    CORO_AWAIT(&self->t1);
    CORO_AWAIT(&self->t2);
    CORO_END();
}

/* The timeline: a row per loop pass, a column per task, each cell the
 * step that task ran in that pass (trace mode's hook gives the lines). */
#define TL_TASKS 3
#define TL_ROWS 12
#define TL_WAKES 8

struct timeline {
    int nrows;
    struct {
        unsigned long long pass;
        char cell[TL_TASKS][48];
    } rows[TL_ROWS];
    char fn[TL_TASKS][24];
    int nwakes;
    char wakes[TL_WAKES][80];
};

static void timeline_event(const coro_trace_event *ev, void *arg)
{
    struct timeline *tl = arg;
    unsigned col = ev->task_number - 1;
    if (col >= TL_TASKS)
        return;
    if (ev->kind == CORO_TRACE_WAKE) {
        if (tl->nwakes < TL_WAKES)
            snprintf(tl->wakes[tl->nwakes++], sizeof tl->wakes[0], "pass %llu: wake %s (%s)",
                     (unsigned long long)ev->pass, ev->task_name, ev->what);
        return;
    }
    if (tl->nrows == 0 || tl->rows[tl->nrows - 1].pass != ev->pass) {
        if (tl->nrows == TL_ROWS)
            return;
        memset(&tl->rows[tl->nrows], 0, sizeof tl->rows[0]);
        tl->rows[tl->nrows++].pass = ev->pass;
    }
    char from[20], to[20];
    if (ev->resume_line > 0)
        snprintf(from, sizeof from, "resume@%d", ev->resume_line);
    else
        snprintf(from, sizeof from, "start");
    if (ev->suspend_line > 0)
        snprintf(to, sizeof to, "suspend@%d", ev->suspend_line);
    else
        snprintf(to, sizeof to, "done");
    snprintf(tl->rows[tl->nrows - 1].cell[col], sizeof tl->rows[0].cell[0], "%s -> %s", from, to);
    snprintf(tl->fn[col], sizeof tl->fn[0], "%s %s", ev->task_name, ev->function);
}

static void timeline_print(const struct timeline *tl)
{
    printf("\n    pass |");
    for (int c = 0; c < TL_TASKS; c++)
        printf(" %-27s|", tl->fn[c]);
    printf("\n    -----+");
    for (int c = 0; c < TL_TASKS; c++)
        printf("----------------------------+");
    printf("\n");
    for (int r = 0; r < tl->nrows; r++) {
        printf("    %4llu |", tl->rows[r].pass);
        for (int c = 0; c < TL_TASKS; c++)
            printf(" %-27s|", tl->rows[r].cell[c]);
        printf("\n");
    }
    printf("\n");
    for (int w = 0; w < tl->nwakes; w++)
        note("%s", tl->wakes[w]);
}

static void scene_trace(void)
{
    static struct timeline tl;
    static struct traced m;
    const char *json = access("build", W_OK) == 0 ? "build/tour-trace.json" : "/tmp/tour-trace.json";
    coro_loop loop;
    coro_task t;

    scene("10", "Watch it run: trace mode");
    python("async def nap(s): await asyncio.sleep(s)",
           "t1 = asyncio.create_task(nap(1)); t2 = asyncio.create_task(nap(2))",
           "await t1; await t2", NULL);
    note("(CORO_TRACE=1 prints every step of any program; here the hook draws it)");
    memset(&tl, 0, sizeof tl);
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, traced_step);
    if (coro_loop_init(&loop, NULL) != 0)
        return;
    coro_loop_set_trace_hook(&loop, timeline_event, &tl);
    int rc = coro_loop_set_trace(&loop, NULL, json);
    coro_task_init(&t, &loop, &m.co);
    coro_loop_run_until_complete(&loop, coro_task_future(&t));
    coro_loop_close(&loop); /* completes the JSON file */
    timeline_print(&tl);
    note("each cell is one step: the line the task resumed at -> the line it");
    note("suspended at (its frame's resume point), in examples/tour.c; between");
    note("passes 2 and 3, and 4 and 5, the loop waits in the selector for a timer.");
    if (rc == 0)
        note("the same run as a timeline: open https://ui.perfetto.dev and load %s", json);
}

/* ======================================================================== */
/* Scene 9: where is every task (a dump)                                   */
/* ======================================================================== */

/* async def locked(lock): async with lock: ...                              */
struct locked {
    coro_frame co;
    coro_with_lock_op wl;
    coro_lock *lock;
};

static CORO_FN(locked_step)
{
    struct locked *self = CORO_SELF(struct locked);
    CORO_BEGIN();
    CORO_WITH_LOCK(&self->wl, self->lock) {
        CORO_SLEEP(0);
    } CORO_WITH_END;
    CORO_END();
}

/* async def getter(q): await q.get()                                        */
struct getter {
    coro_frame co;
    coro_queue *q;
    coro_queue_get_op get;
};

static CORO_FN(getter_step)
{
    struct getter *self = CORO_SELF(struct getter);
    CORO_BEGIN();
    CORO_AWAIT(coro_queue_get(&self->get, self->q));
    CORO_END();
}

struct dumped {
    coro_frame co;
    coro_lock lock;
    coro_with_lock_op wl;
    coro_queue q;
    struct locked lk;
    struct getter cs;
    struct napper nap;
    coro_task t[3];
    int i, err;
};

static void print_line(const char *line, void *arg)
{
    (void)arg;
    printf("    %s\n", line);
}

static CORO_FN(dumped_step)
{
    struct dumped *self = CORO_SELF(struct dumped);
    CORO_BEGIN();
    coro_lock_init(&self->lock, NULL);
    coro_queue_init(&self->q, NULL, 4);
    coro_frame_init(&self->lk.co, locked_step);
    self->lk.lock = &self->lock;
    coro_frame_init(&self->cs.co, getter_step);
    self->cs.q = &self->q;
    self->nap = (struct napper){ CORO_FRAME_INIT(napper_step), 2 * SLOW };
    CORO_WITH_LOCK(&self->wl, &self->lock) { /* main holds the lock meanwhile */
        coro_task_init(&self->t[0], NULL, &self->lk.co);
        coro_task_init(&self->t[1], NULL, &self->cs.co);
        coro_task_init(&self->t[2], NULL, &self->nap.co);
        coro_task_set_name(&self->t[0], "worker");
        CORO_SLEEP(0); /* one pass: each has reached its first wait */
        coro_loop_dump(NULL, print_line, NULL);
    } CORO_WITH_END;
    for (self->i = 0; self->i < 3; self->i++)
        coro_task_cancel(&self->t[self->i]);
    for (self->i = 0; self->i < 3; self->i++)
        CORO_AWAIT_ERR(&self->t[self->i], self->err); /* each ends cancelled */
    coro_queue_fini(&self->q);
    CORO_END();
}

static void scene_dump(void)
{
    static struct dumped m;
    scene("9", "Where is every task: a dump");
    python("for t in asyncio.all_tasks(): t.print_stack()      # or aiomonitor's ps",
           "(a running server: kill -USR1 PID, as Go's SIGQUIT)", NULL);
    note("three tasks wait: one for a lock main holds, one on an empty queue,");
    note("one asleep; the dump says what each waits on and where, frame by frame:\n");
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, dumped_step);
    run_main(&m.co, NULL);
}

/* ======================================================================== */

static const struct {
    const char *name;
    void (*run)(void);
} scenes[] = {
    { "1", scene1 }, { "2", scene2 }, { "3", scene3 }, { "4", scene4 },
    { "4b", scene4b }, { "5", scene5 }, { "6", scene6 }, { "7", scene7 }, { "8", scene8 },
    { "gen", scene_gen }, { "9", scene_dump }, { "10", scene_trace },
};

int main(int argc, char **argv)
{
    size_t n = sizeof scenes / sizeof scenes[0];
    double t0 = now();
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("coro tour: the asyncio tutorial scenes in C (sleeps scaled down 10x: 3 s -> 0.3 s)\n");
    int excluding = argc >= 2 && argv[1][0] == '-'; /* tour -10: all but scene 10 */
    for (size_t i = 0; i < n; i++) {
        int wanted = argc < 2 || excluding;
        for (int a = 1; a < argc; a++) {
            if (excluding && argv[a][0] == '-' && strcmp(argv[a] + 1, scenes[i].name) == 0)
                wanted = 0;
            else if (!excluding)
                wanted |= strcmp(argv[a], scenes[i].name) == 0;
        }
        if (wanted)
            scenes[i].run();
    }
    printf("\ntour done in %.2f s\n", now() - t0);
    return 0;
}
