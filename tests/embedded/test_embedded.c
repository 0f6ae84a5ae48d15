/*
 * test_embedded.c - a share of coro's suite, run on the bare-metal target
 * (a Cortex-M3/M4 under QEMU): generators, yield from, timers in deadline
 * order (FIFO on ties), cancellation, tasks allocated with their frames
 * (coro_spawn_new), Lock, Event, Queue, gather, a
 * timeout scope and task groups, plus the loop's idle wait against the
 * host's clock.
 *
 * Every check prints one line ("ok   ..." or "FAIL ... (line N)"); the
 * last line is "N passed, N failed" and the exit status (QEMU's, through
 * semihosting) is 0 only if none failed. Each test is a coroutine the main
 * one awaits in turn (yield from), all under coro_run, on a loop that uses
 * the default allocator (newlib's malloc over the linker script's heap).
 * Frames and tasks are static, as firmware would hold them, but for the
 * coro_spawn_new section: those come from the loop's slab (newlib's
 * malloc, whose high-water mark the last line prints).
 */
#include "coro.h"

#include "cortex-m.h"
#include "print.h"
#include "semihost.h"

/* ---- checks ---- */

static int passed, failed;

static void check(int ok, const char *what, int line)
{
    cm_puts(ok ? "ok   " : "FAIL ");
    cm_puts(what);
    if (!ok) {
        cm_puts(" (line ");
        cm_puti(line);
        cm_puts(")");
    }
    cm_puts("\n");
    if (ok)
        passed++;
    else
        failed++;
}
#define CHECK(cond, what) check((cond) ? 1 : 0, (what), __LINE__)

static void section(const char *name)
{
    cm_puts("-- ");
    cm_puts(name);
    cm_puts("\n");
}

/* A log of small integers, to check orders. */
typedef struct {
    int v[16];
    int n;
} tlog;

static void tlog_add(tlog *l, int v)
{
    if (l->n < 16)
        l->v[l->n++] = v;
}

static int tlog_is(const tlog *l, const int *want, int n)
{
    if (l->n != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (l->v[i] != want[i])
            return 0;
    return 1;
}
#define TLOG_IS(l, ...) \
    tlog_is((l), (const int[]){ __VA_ARGS__ }, (int)(sizeof((int[]){ __VA_ARGS__ }) / sizeof(int)))

static void tlog_print(const char *what, const tlog *l)
{
    cm_puts("     ");
    cm_puts(what);
    cm_puts(":");
    for (int i = 0; i < l->n; i++) {
        cm_puts(" ");
        cm_puti(l->v[i]);
    }
    cm_puts("\n");
}

#define E_USER1 (CORO_EUSER - 1)
#define E_USER2 (CORO_EUSER - 2)
#define MS (1000000LL)

static int64_t now_ns(void) { return coro_loop_time_ns(NULL); }

/* ======================================================================== */
/* 1. generators: next, send, throw, close (outside any loop)                */
/* ======================================================================== */

struct acc { /* yields its running total; adds what is sent; returns total*10 */
    coro_frame co;
    int64_t total;
    int i;
    int cleanups;
};

static CORO_FN(acc_step)
{
    struct acc *self = CORO_SELF(struct acc);
    CORO_BEGIN();
    for (self->i = 0; self->i < 3; self->i++) {
        CORO_YIELD(coro_int(self->total));
        if (CORO_RESULT.tag == CORO_INT)
            self->total += CORO_RESULT.u.i;
    }
    CORO_RETURN(coro_int(self->total * 10));
    CORO_FINALLY;
    self->cleanups++;
    CORO_END();
}

static void acc_init(struct acc *a)
{
    coro_frame_init(&a->co, acc_step);
    a->total = 0;
    a->i = 0;
    a->cleanups = 0;
}

static void test_generators(void)
{
    section("generators");
    struct acc a;
    coro_gen g;
    coro_value v;
    acc_init(&a);
    CHECK(coro_gen_init(&g, &a.co) == 0, "gen_init");
    int r1 = coro_gen_next(&g, &v);
    CHECK(r1 == 1 && v.tag == CORO_INT && v.u.i == 0, "next runs to the first yield (0)");
    int r2 = coro_gen_send(&g, coro_int(5), &v);
    CHECK(r2 == 1 && v.u.i == 5, "send(5) is the yield's value: yields 5");
    int r3 = coro_gen_send(&g, coro_int(7), &v);
    CHECK(r3 == 1 && v.u.i == 12, "send(7): yields 12");
    int r4 = coro_gen_send(&g, coro_int(1), &v);
    CHECK(r4 == 0 && v.u.i == 130 && g.done, "the return is StopIteration's value (130)");
    CHECK(a.cleanups == 1, "its CORO_FINALLY ran once on return");
    CHECK(coro_gen_next(&g, NULL) == CORO_ESTATE, "next after the end: CORO_ESTATE");

    acc_init(&a);
    coro_gen_init(&g, &a.co);
    coro_gen_next(&g, NULL);
    v = coro_int(-1);
    CHECK(coro_gen_throw(&g, E_USER1, &v) == E_USER1 && g.done && a.cleanups == 1,
          "throw: the error comes back out, the cleanup ran");

    acc_init(&a);
    coro_gen_init(&g, &a.co);
    coro_gen_next(&g, NULL);
    CHECK(coro_gen_close(&g) == 0 && a.cleanups == 1, "close: the cleanup ran");
}

/* ======================================================================== */
/* 2. await a child frame (yield from), errors through the chain            */
/* ======================================================================== */

struct leaf {
    coro_frame co;
    int x;
};

static CORO_FN(leaf_step)
{
    struct leaf *self = CORO_SELF(struct leaf);
    CORO_BEGIN();
    CORO_YIELD(coro_none()); /* a bare yield: one loop pass */
    if (self->x < 0)
        CORO_RAISE(self->x);
    CORO_RETURN(coro_int(self->x * 2));
    CORO_END();
}

static coro_frame *leaf_init(struct leaf *l, int x)
{
    coro_frame_init(&l->co, leaf_step);
    l->x = x;
    return &l->co;
}

struct mid {
    coro_frame co;
    struct leaf leaf; /* the child lives inside its parent: no allocation */
    int x;
    int64_t sum;
    int *cleanups;
};

static CORO_FN(mid_step)
{
    struct mid *self = CORO_SELF(struct mid);
    CORO_BEGIN();
    CORO_AWAIT(leaf_init(&self->leaf, self->x));
    self->sum = CORO_RESULT.u.i;
    CORO_AWAIT(leaf_init(&self->leaf, self->x + 1));
    self->sum += CORO_RESULT.u.i;
    CORO_RETURN(coro_int(self->sum));
    CORO_FINALLY;
    (*self->cleanups)++;
    CORO_END();
}

static coro_frame *mid_init(struct mid *m, int x, int *cleanups)
{
    coro_frame_init(&m->co, mid_step);
    m->x = x;
    m->sum = 0;
    m->cleanups = cleanups;
    return &m->co;
}

struct deep { /* a chain of depth n: returns n */
    coro_frame co;
    int n;
};
static struct deep deeps[12];

static CORO_FN(deep_step)
{
    struct deep *self = CORO_SELF(struct deep);
    CORO_BEGIN();
    if (self->n == 0) {
        CORO_SLEEP_NS(1 * MS); /* the innermost frame suspends the whole chain */
        CORO_RETURN(coro_int(0));
    }
    coro_frame_init(&deeps[self->n - 1].co, deep_step);
    deeps[self->n - 1].n = self->n - 1;
    CORO_AWAIT(&deeps[self->n - 1].co);
    CORO_RETURN(coro_int(CORO_RESULT.u.i + 1));
    CORO_END();
}

struct t_await {
    coro_frame co;
    struct mid mid;
    int cleanups, err;
};

static CORO_FN(t_await_step)
{
    struct t_await *self = CORO_SELF(struct t_await);
    CORO_BEGIN();
    section("await a child frame (yield from)");
    self->cleanups = 0;
    CORO_AWAIT(mid_init(&self->mid, 3, &self->cleanups));
    CHECK(CORO_RESULT.tag == CORO_INT && CORO_RESULT.u.i == 14,
          "a task awaits mid, which awaits leaf twice: 6 + 8 = 14");
    CHECK(self->cleanups == 1, "mid's cleanup ran on return");
    CORO_AWAIT_ERR(mid_init(&self->mid, -5, &self->cleanups), self->err);
    CHECK(self->err == -5, "an error raised two frames down reaches the task (CORO_AWAIT_ERR)");
    CHECK(self->cleanups == 2, "mid's cleanup ran on the error");
    coro_frame_init(&deeps[11].co, deep_step);
    deeps[11].n = 11;
    CORO_AWAIT(&deeps[11].co);
    CHECK(CORO_RESULT.u.i == 11, "a chain 12 frames deep suspends in a sleep and returns 11");
    CORO_END();
}

/* ======================================================================== */
/* 3. timers: sleeps wake in deadline order; equal deadlines FIFO           */
/* ======================================================================== */

struct napper {
    coro_frame co;
    int id, ms;
    tlog *log;
};

static CORO_FN(napper_step)
{
    struct napper *self = CORO_SELF(struct napper);
    CORO_BEGIN();
    CORO_SLEEP_NS(self->ms * MS);
    tlog_add(self->log, self->id);
    CORO_RETURN(coro_int(self->id));
    CORO_END();
}

static coro_frame *napper_init(struct napper *n, int id, int ms, tlog *log)
{
    coro_frame_init(&n->co, napper_step);
    n->id = id;
    n->ms = ms;
    n->log = log;
    return &n->co;
}

static tlog tie_log;
static int tie_cb(void *arg)
{
    tlog_add(&tie_log, (int)(intptr_t)arg);
    return 0;
}

struct t_timers {
    coro_frame co;
    struct napper n[5];
    coro_task t[5];
    coro_handle h[5];
    tlog log;
    int i;
    int64_t t0;
};

static CORO_FN(t_timers_step)
{
    struct t_timers *self = CORO_SELF(struct t_timers);
    static const int ms[5] = { 30, 10, 20, 12, 14 };
    CORO_BEGIN();
    section("timers");
    self->log.n = 0;
    for (int i = 0; i < 5; i++)
        coro_task_init(&self->t[i], NULL, napper_init(&self->n[i], i + 1, ms[i], &self->log));
    for (self->i = 0; self->i < 5; self->i++)
        CORO_AWAIT(&self->t[self->i]);
    CHECK(TLOG_IS(&self->log, 2, 4, 5, 3, 1), "five sleeps (30,10,20,12,14 ms) wake in deadline order");
    tlog_print("woke", &self->log);

    /* equal deadlines: call_at with one instant, armed 5, 1, 3, 2, 4 */
    tie_log.n = 0;
    for (int i = 0; i < 5; i++)
        coro_handle_init(&self->h[i]);
    self->t0 = now_ns() + 5 * MS;
    for (int i = 0; i < 5; i++)
        coro_call_at(coro_get_running_loop(), &self->h[i], self->t0, tie_cb,
                     (void *)(intptr_t)((int[]){ 5, 1, 3, 2, 4 })[i]);
    coro_handle_cancel(&self->h[2]); /* the 3 never runs */
    CORO_SLEEP_NS(10 * MS);
    CHECK(TLOG_IS(&tie_log, 5, 1, 2, 4), "equal deadlines run in the order armed (FIFO), a cancelled one never");
    tlog_print("ran", &tie_log);
    CORO_END();
}

/* ======================================================================== */
/* 4. cancelling a sleeping task                                            */
/* ======================================================================== */

struct sleeper {
    coro_frame co;
    int woke, cleanups;
};

static CORO_FN(sleeper_step)
{
    struct sleeper *self = CORO_SELF(struct sleeper);
    CORO_BEGIN();
    CORO_SLEEP_NS(1000 * MS);
    self->woke = 1;
    CORO_FINALLY;
    self->cleanups++;
    CORO_END();
}

struct t_cancel {
    coro_frame co;
    struct sleeper s;
    coro_task t;
    int err;
    int64_t t0;
};

static CORO_FN(t_cancel_step)
{
    struct t_cancel *self = CORO_SELF(struct t_cancel);
    CORO_BEGIN();
    section("cancellation");
    coro_frame_init(&self->s.co, sleeper_step);
    self->s.woke = self->s.cleanups = 0;
    self->t0 = now_ns();
    coro_task_init(&self->t, NULL, &self->s.co);
    CORO_SLEEP_NS(5 * MS);
    CHECK(coro_task_cancel(&self->t) == 1, "cancel a task sleeping for 1 s: it was pending");
    CORO_AWAIT_ERR(&self->t, self->err);
    CHECK(self->err == CORO_ECANCELLED && coro_task_cancelled(&self->t),
          "awaiting it fails with CORO_ECANCELLED; it is cancelled");
    CHECK(!self->s.woke && self->s.cleanups == 1, "its sleep never returned; its cleanup ran");
    CHECK(now_ns() - self->t0 < 500 * MS, "it ended long before its deadline");
    CORO_END();
}

/* ======================================================================== */
/* 4b. tasks from the loop's memory: coro_spawn_new, task and frame in one  */
/* ======================================================================== */

struct adder {
    coro_frame co;
    int a, b;
    int64_t *out; /* where a fire-and-forget one leaves its sum */
};

static CORO_FN(adder_step)
{
    struct adder *self = CORO_SELF(struct adder);
    CORO_BEGIN();
    CORO_SLEEP_NS(1 * MS);
    if (self->out)
        *self->out = self->a + self->b;
    CORO_RETURN(coro_int(self->a + self->b));
    CORO_END();
}

struct t_spawn {
    coro_frame co;
    coro_task *t[3];
    int i, laid_out;
    int64_t sum, forgotten;
};

static CORO_FN(t_spawn_step)
{
    struct t_spawn *self = CORO_SELF(struct t_spawn);
    CORO_BEGIN();
    section("tasks with their frames in one block (coro_spawn_new)");
    self->laid_out = 1;
    self->sum = self->forgotten = 0;
    for (self->i = 0; self->i < 3; self->i++) {
        coro_task *t = coro_spawn_new(NULL, sizeof(struct adder), adder_step);
        struct adder *a = coro_task_frame(t);
        if (!a)
            break;
        self->laid_out &= (uintptr_t)a % 8 == 0 && (char *)a >= (char *)t + sizeof(coro_task);
        a->a = self->i;
        a->b = 10;
        self->t[self->i] = t;
    }
    CHECK(self->i == 3 && self->laid_out, "three spawned, each frame 8-aligned after its task");
    if (self->i != 3)
        CORO_RETURN(coro_none());
    for (self->i = 0; self->i < 3; self->i++) {
        CORO_AWAIT(self->t[self->i]);
        self->sum += CORO_RESULT.u.i;
        coro_task_release(self->t[self->i]);
    }
    CHECK(self->sum == 33, "their results: 10 + 11 + 12");
    {
        coro_task *t = coro_spawn_new(NULL, sizeof(struct adder), adder_step);
        struct adder *a = coro_task_frame(t);
        if (a) {
            a->a = 40;
            a->b = 2;
            a->out = &self->forgotten;
        }
        coro_task_release(t); /* fire and forget */
    }
    CORO_SLEEP_NS(10 * MS);
    CHECK(self->forgotten == 42, "a fire-and-forget one ran on its own (42)");
    CHECK(coro_spawn_new(NULL, sizeof(coro_frame) - 1, adder_step) == NULL,
          "a frame smaller than its header: NULL");
    CORO_END();
}

/* ======================================================================== */
/* 5. Lock, Event, Queue between tasks                                      */
/* ======================================================================== */

static coro_lock lock;
static int inside, max_inside;

struct locker {
    coro_frame co;
    coro_lock_acquire_op acq;
    int id;
    tlog *log;
};

static CORO_FN(locker_step)
{
    struct locker *self = CORO_SELF(struct locker);
    CORO_BEGIN();
    CORO_AWAIT(coro_lock_acquire(&self->acq, &lock));
    tlog_add(self->log, self->id);
    if (++inside > max_inside)
        max_inside = inside;
    CORO_SLEEP_NS(2 * MS); /* hold it across a suspension */
    inside--;
    coro_lock_release(&lock);
    CORO_END();
}

static coro_event event;
static int woken;

struct waiter {
    coro_frame co;
    coro_event_wait_op wait;
};

static CORO_FN(waiter_step)
{
    struct waiter *self = CORO_SELF(struct waiter);
    CORO_BEGIN();
    CORO_AWAIT(coro_event_wait(&self->wait, &event));
    woken++;
    CORO_END();
}

static coro_queue queue;
static coro_value queue_buf[2];
static size_t queue_peak;

struct producer {
    coro_frame co;
    coro_queue_put_op put;
    int i;
};

static CORO_FN(producer_step)
{
    struct producer *self = CORO_SELF(struct producer);
    CORO_BEGIN();
    for (self->i = 1; self->i <= 6; self->i++) {
        CORO_AWAIT(coro_queue_put(&self->put, &queue, coro_int(self->i)));
        if (coro_queue_qsize(&queue) > queue_peak)
            queue_peak = coro_queue_qsize(&queue);
    }
    CORO_END();
}

struct consumer {
    coro_frame co;
    coro_queue_get_op get;
    int i;
    tlog *log;
};

static CORO_FN(consumer_step)
{
    struct consumer *self = CORO_SELF(struct consumer);
    CORO_BEGIN();
    for (self->i = 0; self->i < 6; self->i++) {
        CORO_AWAIT(coro_queue_get(&self->get, &queue));
        tlog_add(self->log, (int)CORO_RESULT.u.i);
        CORO_SLEEP_NS(1 * MS); /* slower than the producer: it fills the queue */
    }
    CORO_END();
}

struct t_sync {
    coro_frame co;
    struct locker lk[3];
    struct waiter w[3];
    struct producer prod;
    struct consumer cons;
    coro_task t[3], tp, tc;
    tlog log;
    int i;
};

static CORO_FN(t_sync_step)
{
    struct t_sync *self = CORO_SELF(struct t_sync);
    CORO_BEGIN();
    section("Lock, Event, Queue");
    /* Lock */
    coro_lock_init(&lock, NULL);
    self->log.n = 0;
    inside = max_inside = 0;
    for (int i = 0; i < 3; i++) {
        coro_frame_init(&self->lk[i].co, locker_step);
        self->lk[i].id = i + 1;
        self->lk[i].log = &self->log;
        coro_task_init(&self->t[i], NULL, &self->lk[i].co);
    }
    for (self->i = 0; self->i < 3; self->i++)
        CORO_AWAIT(&self->t[self->i]);
    CHECK(max_inside == 1, "Lock: one holder at a time across sleeps");
    CHECK(TLOG_IS(&self->log, 1, 2, 3), "Lock: taken in the order asked (FIFO)");
    CHECK(!coro_lock_locked(&lock), "Lock: free at the end");

    /* Event */
    coro_event_init(&event, NULL);
    woken = 0;
    for (int i = 0; i < 3; i++) {
        coro_frame_init(&self->w[i].co, waiter_step);
        coro_task_init(&self->t[i], NULL, &self->w[i].co);
    }
    CORO_SLEEP_NS(3 * MS);
    CHECK(woken == 0, "Event: three waiters wait while it is clear");
    coro_event_set(&event);
    for (self->i = 0; self->i < 3; self->i++)
        CORO_AWAIT(&self->t[self->i]);
    CHECK(woken == 3 && coro_event_is_set(&event), "Event: set wakes all three");

    /* Queue */
    coro_queue_init_buf(&queue, NULL, queue_buf, 2);
    queue_peak = 0;
    self->log.n = 0;
    coro_frame_init(&self->prod.co, producer_step);
    coro_frame_init(&self->cons.co, consumer_step);
    self->cons.log = &self->log;
    coro_task_init(&self->tp, NULL, &self->prod.co);
    coro_task_init(&self->tc, NULL, &self->cons.co);
    CORO_AWAIT(&self->tp);
    CORO_AWAIT(&self->tc);
    CHECK(TLOG_IS(&self->log, 1, 2, 3, 4, 5, 6), "Queue: six items through a queue of two, in order");
    CHECK(queue_peak == 2, "Queue: the producer waited while it was full (never above 2)");
    CHECK(coro_queue_empty(&queue) && coro_queue_fini(&queue) == 0, "Queue: empty at the end, fini");
    CORO_END();
}

/* ======================================================================== */
/* 6. gather, timeout, task groups                                          */
/* ======================================================================== */

struct worker { /* sleeps ms, then returns value or fails with it if negative */
    coro_frame co;
    int ms, value;
    tlog *log;
    int cancelled;
};

static CORO_FN(worker_step)
{
    struct worker *self = CORO_SELF(struct worker);
    CORO_BEGIN();
    CORO_SLEEP_NS(self->ms * MS);
    if (self->log)
        tlog_add(self->log, self->value);
    if (self->value < 0)
        CORO_RAISE(self->value);
    CORO_RETURN(coro_int(self->value));
    CORO_FINALLY;
    if (coro_value_error(CORO_RESULT) == CORO_ECANCELLED)
        self->cancelled = 1;
    CORO_END();
}

static coro_frame *worker_init(struct worker *w, int ms, int value, tlog *log)
{
    coro_frame_init(&w->co, worker_step);
    w->ms = ms;
    w->value = value;
    w->log = log;
    w->cancelled = 0;
    return &w->co;
}

struct tg_body { /* starts three workers in the group */
    coro_frame co;
    coro_task_group_op *tg;
    struct worker *w;
    coro_group_task *c;
    const int *ms, *values;
};

static CORO_FN(tg_body_step)
{
    struct tg_body *self = CORO_SELF(struct tg_body);
    CORO_BEGIN();
    for (int i = 0; i < 3; i++)
        coro_task_group_start(self->tg, &self->c[i],
                              worker_init(&self->w[i], self->ms[i], self->values[i], NULL));
    CORO_SLEEP_NS(1 * MS);
    CORO_RETURN(coro_int(42));
    CORO_END();
}

struct t_groups {
    coro_frame co;
    struct worker w[3];
    coro_task t[3];
    CORO_GATHER_OP(g, 3);
    tlog log;
    coro_timeout_op to;
    coro_task_group_op tg;
    struct tg_body body;
    coro_group_task c[3];
    int errs[4];
    int err;
    int64_t t0;
};

static CORO_FN(t_groups_step)
{
    struct t_groups *self = CORO_SELF(struct t_groups);
    static const int ok_ms[3] = { 6, 2, 4 }, ok_values[3] = { 1, 2, 3 };
    static const int bad_ms[3] = { 1000, 3, 1000 }, bad_values[3] = { 1, E_USER2, 3 };
    CORO_BEGIN();
    section("gather, timeout, task groups");
    /* gather */
    self->log.n = 0;
    {
        static const int ms[3] = { 15, 5, 10 };
        for (int i = 0; i < 3; i++) {
            coro_task_init(&self->t[i], NULL, worker_init(&self->w[i], ms[i], 100 * (i + 1), &self->log));
            self->g.futs[i] = coro_task_future(&self->t[i]);
        }
    }
    CORO_AWAIT(CORO_GATHER(&self->g, 0));
    CHECK(self->g.results[0].u.i == 100 && self->g.results[1].u.i == 200 && self->g.results[2].u.i == 300,
          "gather of three: results in argument order (100 200 300)");
    CHECK(TLOG_IS(&self->log, 200, 300, 100), "gather: they finished in their own order (200 300 100)");

    /* timeout scope */
    self->t0 = now_ns();
    CORO_AWAIT_ERR(coro_timeout(&self->to, 0.02, worker_init(&self->w[0], 1000, 7, NULL)), self->err);
    CHECK(self->err == CORO_ETIMEDOUT, "timeout(20 ms) around a 1 s sleep: CORO_ETIMEDOUT");
    CHECK(self->w[0].cancelled && coro_timeout_expired(&self->to), "the body was cancelled (its cleanup saw it)");
    CHECK(now_ns() - self->t0 >= 20 * MS && now_ns() - self->t0 < 500 * MS, "after 20 ms, not 1 s");
    CHECK(coro_task_cancelling(coro_current_task(NULL)) == 0, "the scope took its cancel back");
    CORO_AWAIT_ERR(coro_timeout(&self->to, 1.0, worker_init(&self->w[0], 2, 9, NULL)), self->err);
    CHECK(self->err == 0 && CORO_RESULT.u.i == 9, "timeout(1 s) around a 2 ms body: its result (9)");

    /* task group: all succeed */
    coro_frame_init(&self->body.co, tg_body_step);
    self->body.tg = &self->tg;
    self->body.w = self->w;
    self->body.c = self->c;
    self->body.ms = ok_ms;
    self->body.values = ok_values;
    CORO_AWAIT_ERR(coro_task_group(&self->tg, &self->body.co, self->errs, 4), self->err);
    CHECK(self->err == 0 && CORO_RESULT.u.i == 42, "task group: the body's result once all three children are done");
    CHECK(coro_task_done(&self->c[0].task) && coro_task_done(&self->c[1].task) && coro_task_done(&self->c[2].task) &&
              coro_task_group_error_count(&self->tg) == 0,
          "task group: every child done, no error");
    {
        coro_value v;
        int64_t sum = 0;
        for (int i = 0; i < 3; i++)
            if (coro_task_result(&self->c[i].task, &v) == 0)
                sum += v.u.i;
        CHECK(sum == 6, "task group: children's results 1 + 2 + 3");
    }

    /* task group: one child fails, the others are cancelled */
    self->t0 = now_ns();
    coro_frame_init(&self->body.co, tg_body_step);
    self->body.ms = bad_ms;
    self->body.values = bad_values;
    CORO_AWAIT_ERR(coro_task_group(&self->tg, &self->body.co, self->errs, 4), self->err);
    CHECK(self->err == E_USER2 && coro_task_group_error_count(&self->tg) == 1 && self->errs[0] == E_USER2,
          "task group: a child's error is the group's");
    CHECK(coro_task_cancelled(&self->c[0].task) && coro_task_cancelled(&self->c[2].task) && self->w[0].cancelled &&
              self->w[2].cancelled,
          "task group: its siblings were cancelled (cleanups ran)");
    CHECK(now_ns() - self->t0 < 500 * MS, "task group: it did not wait for the 1 s siblings");
    CHECK(coro_task_cancelling(coro_current_task(NULL)) == 0, "task group: the task is not left cancelled");
    CORO_END();
}

/* ======================================================================== */
/* 7. the idle wait: a 50 ms sleep takes 50 ms of QEMU's time, asleep        */
/* ======================================================================== */

struct t_idle {
    coro_frame co;
    int64_t t0, h0;
    uint32_t wfi0;
};

static CORO_FN(t_idle_step)
{
    struct t_idle *self = CORO_SELF(struct t_idle);
    CORO_BEGIN();
    section("idle wait");
    self->wfi0 = cm_idle_wfi_count();
    self->h0 = sh_elapsed_ns();
    self->t0 = now_ns();
    CORO_SLEEP(0.05);
    {
        int64_t dt = now_ns() - self->t0, dh = sh_elapsed_ns() - self->h0;
        uint32_t wfi = cm_idle_wfi_count() - self->wfi0;
        cm_puts("     sleep(0.05): loop clock ");
        cm_putfix(dt / 1000, 3);
        cm_puts(" ms, host clock ");
        cm_putfix(dh / 1000, 3);
        cm_puts(" ms, ");
        cm_putu(wfi);
        cm_puts(" WFI\n");
        CHECK(dt >= 50 * MS, "sleep(0.05) lasted at least 50 ms by the loop's clock");
        CHECK(dh >= 45 * MS && dh < 300 * MS, "and about 50 ms by the host's (QEMU's virtual clock)");
        CHECK(wfi > 0 && wfi < 200, "the loop slept in WFI (about once a 1 ms tick), it did not spin");
    }
    CORO_END();
}

/* ======================================================================== */
/* an interrupt posts to the loop (coro_call_soon_isr)                      */
/* ======================================================================== */

static coro_loop *isr_loop;
static coro_isr_node isr_node;
static coro_event isr_event;
static volatile uint32_t isr_ticks;
static volatile int isr_posted;
static uint32_t isr_ipsr; /* the exception number the callback ran in: 0 is thread mode */

static int isr_cb(void *arg)
{
    uint32_t ipsr;
    (void)arg;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    isr_ipsr = ipsr;
    coro_event_set(&isr_event);
    return 0;
}

/* In the SysTick interrupt: the 5th tick posts, once. */
static void isr_tick(void)
{
    if (++isr_ticks == 5 && coro_call_soon_isr(isr_loop, &isr_node, isr_cb, NULL) == 1)
        isr_posted = 1;
}

struct t_isr {
    coro_frame co;
    coro_event_wait_op wait;
    coro_wait_for_op wf;
    int err;
    uint32_t wfi0;
};

static CORO_FN(t_isr_step)
{
    struct t_isr *self = CORO_SELF(struct t_isr);
    CORO_BEGIN();
    section("an interrupt posts to the loop");
    isr_loop = coro_get_running_loop();
    coro_event_init(&isr_event, NULL);
    isr_ticks = 0;
    self->wfi0 = cm_idle_wfi_count();
    cm_tick_hook = isr_tick;
    /* no timer but the 1 s guard: the loop sleeps in WFI until the post */
    CORO_AWAIT_ERR(coro_wait_for_ns(&self->wf, 1000 * MS,
                                    coro_event_wait(&self->wait, &isr_event)), self->err);
    cm_tick_hook = 0;
    CHECK(isr_posted, "the SysTick interrupt posted a callback (coro_call_soon_isr)");
    CHECK(self->err == 0, "the callback ran and set the event the task waited on");
    CHECK(isr_ipsr == 0, "it ran on the loop, in thread mode, not in the interrupt");
    CHECK(cm_idle_wfi_count() > self->wfi0, "the loop slept in WFI until the interrupt's post");
    CORO_END();
}

/* ======================================================================== */
/* main: every test in one task under coro_run                              */
/* ======================================================================== */

static struct {
    struct t_await await;
    struct t_timers timers;
    struct t_cancel cancel;
    struct t_spawn spawn;
    struct t_sync sync;
    struct t_groups groups;
    struct t_idle idle;
    struct t_isr isr;
} tf;

struct suite {
    coro_frame co;
};

static void on_error(coro_loop *loop, const coro_exception_context *c, void *arg);

static CORO_FN(suite_step)
{
    CORO_BEGIN();
    coro_loop_set_exception_handler(coro_get_running_loop(), on_error, NULL);
    CORO_AWAIT((coro_frame_init(&tf.await.co, t_await_step), &tf.await.co));
    CORO_AWAIT((coro_frame_init(&tf.timers.co, t_timers_step), &tf.timers.co));
    CORO_AWAIT((coro_frame_init(&tf.cancel.co, t_cancel_step), &tf.cancel.co));
    CORO_AWAIT((coro_frame_init(&tf.spawn.co, t_spawn_step), &tf.spawn.co));
    CORO_AWAIT((coro_frame_init(&tf.sync.co, t_sync_step), &tf.sync.co));
    CORO_AWAIT((coro_frame_init(&tf.groups.co, t_groups_step), &tf.groups.co));
    CORO_AWAIT((coro_frame_init(&tf.idle.co, t_idle_step), &tf.idle.co));
    CORO_AWAIT((coro_frame_init(&tf.isr.co, t_isr_step), &tf.isr.co));
    CORO_RETURN(coro_int(7));
    CORO_END();
}

static void on_error(coro_loop *loop, const coro_exception_context *c, void *arg)
{
    (void)loop;
    (void)arg;
    cm_puts("     coro reports: ");
    cm_puts(c->message);
    cm_puts(" (");
    cm_puts(coro_err_name(c->error));
    cm_puts(")\n");
}

int main(void)
{
    cm_clock_init();
    cm_puts("coro on ");
#if defined(__ARM_ARCH_7EM__)
    cm_puts("Cortex-M4 (ARMv7E-M)");
#else
    cm_puts("Cortex-M3 (ARMv7-M)");
#endif
    cm_puts(", selector ");
    cm_puts(coro_selector_name());
    cm_puts("\n");
    test_generators();

    static struct suite main_frame;
    coro_value result = coro_none();
    coro_frame_init(&main_frame.co, suite_step);
#ifdef CORO_NO_MALLOC
    /* the heap-free image: the whole loop in 16 KB given here, no malloc linked */
    static max_align_t arena[16 * 1024 / sizeof(max_align_t)];
    coro_loop_options opt = { 0 };
    opt.arena = arena;
    opt.arena_size = sizeof arena;
    opt.reserve_tasks = 32;
    opt.reserve_timers = 32;
    cm_puts("heap-free: the loop's storage is a 16 KB arena\n");
    int rc = coro_run(&main_frame.co, &result, &opt);
#else
    int rc = coro_run(&main_frame.co, &result, NULL);
#endif
    section("coro_run");
    CHECK(rc == 0 && result.u.i == 7, "coro_run: the main task ran every test and returned 7");

    section("reports");
    {
        coro_exception_context c = { 0 };
        uint32_t before = cm_report_lines();
        c.message = "a report through the default handler";
        c.error = CORO_ETIMEDOUT;
        coro_loop_call_exception_handler(NULL, &c);
        CHECK(cm_report_lines() == before + 1, "the default handler wrote one line through coro_platform_write");
    }

    /* what the objects cost here (informational, not checks) */
    cm_puts("     sizes: loop ");
    cm_putu(sizeof(coro_loop));
    cm_puts(", task ");
    cm_putu(sizeof(coro_task));
    cm_puts(", frame header ");
    cm_putu(sizeof(coro_frame));
    cm_puts(", future ");
    cm_putu(sizeof(coro_future));
    cm_puts(", lock ");
    cm_putu(sizeof(coro_lock));
    cm_puts(", queue ");
    cm_putu(sizeof(coro_queue));
    cm_puts(" bytes; malloc heap high-water ");
    cm_putu(cm_heap_used());
    cm_puts(" bytes\n");

    cm_putu((uint64_t)passed);
    cm_puts(" passed, ");
    cm_putu((uint64_t)failed);
    cm_puts(" failed\n");
    return failed == 0 && passed > 0 ? 0 : 1;
}
