/*
 * tests/test_thread.c - threads and signals (thread.c).
 *
 * Covers: call_soon_threadsafe from four threads at once (every callback
 * once, per-thread order kept, on the loop's thread), the coalescing of
 * wake-ups (counted through thread.c's private counters), the caller-owned
 * node, set-up rules (CORO_ESTATE before coro_threads_init from another
 * thread, implicit set-up on the running loop, CORO_ECLOSED after close, no
 * fd and no watched fd for a loop that never uses threads), stop from
 * another thread; to_thread results and errors, the pool's size limit,
 * cancellation while queued, while running and after completion (discard
 * called exactly once, fn never run when queued), run_in_executor with a
 * plain future, close with work in flight (close waits for running work and
 * discards queued work), a loop per thread; signals delivered as ordinary
 * callbacks on the running loop (not in signal context), coalesced,
 * replaced, removed (the previous disposition restored, also by close),
 * SIGINT stopping a blocked loop, one loop per signal, bad arguments;
 * allocation failure at every site of set-up, to_thread and signals.
 *
 * Every test closes its loop and asserts it closed cleanly; the talloc
 * allocator proves nothing a loop allocated is left after close. Meant to
 * pass under valgrind and -fsanitize=thread (make test-one SANITIZER=thread).
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

/* thread.c's private counters: wake-up writes made, drains run */
void coro__threads_counts(const coro_loop *loop, uint64_t *writes, uint64_t *drains);

static uint64_t wake_writes(const coro_loop *loop)
{
    uint64_t w;
    coro__threads_counts(loop, &w, NULL);
    return w;
}

static uint64_t wake_drains(const coro_loop *loop)
{
    uint64_t d;
    coro__threads_counts(loop, NULL, &d);
    return d;
}

/* the lowest free fd number: proves which fds a loop holds */
static int lowest_free_fd(void)
{
    int fd = dup(0);
    assert_true(fd >= 0);
    close(fd);
    return fd;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Run one pass at a time until *flag is set (or `seconds` pass: fail). */
static void run_until_flag(coro_loop *loop, atomic_int *flag, double seconds)
{
    int64_t t0 = mono_ns();
    while (!atomic_load(flag)) {
        assert_true(mono_ns() - t0 < (int64_t)(seconds * 1e9));
        run_one_pass(loop);
        if (!atomic_load(flag))
            sleep_ms(1);
    }
}

static void close_loop(coro_loop *loop)
{
    assert_int_equal(coro_loop_close(loop), 0);
    assert_true(coro_loop_is_closed(loop));
}

static void close_talloc_loop(coro_loop *loop, talloc *a)
{
    close_loop(loop);
    assert_int_equal(a->live, 0);
    assert_int_equal(a->bad_osize, 0);
}

/* ------------------------------------------------------------------------ */
/* call_soon_threadsafe                                                     */
/* ------------------------------------------------------------------------ */

#define POSTERS 4
#define PER_POSTER 10000

struct hammer;

struct call {
    struct hammer *h;
    int tid, seq;
};

struct hammer {
    coro_loop *loop;
    struct call *calls; /* POSTERS * PER_POSTER */
    int next[POSTERS];  /* loop thread: the next seq expected per poster */
    int total, out_of_order, off_loop;
    int tid_of[POSTERS];
    atomic_int post_errors;
};

static int hammer_cb(void *arg)
{
    struct call *c = arg;
    struct hammer *h = c->h;
    if (coro_get_running_loop() != h->loop)
        h->off_loop++;
    if (c->seq != h->next[c->tid])
        h->out_of_order++;
    h->next[c->tid] = c->seq + 1;
    if (++h->total == POSTERS * PER_POSTER)
        coro_loop_stop(h->loop);
    return 0;
}

struct poster {
    struct hammer *h;
    int tid;
};

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    for (int i = 0; i < PER_POSTER; i++) {
        struct call *c = &p->h->calls[p->tid * PER_POSTER + i];
        if (coro_call_soon_threadsafe(p->h->loop, hammer_cb, c) != 0)
            atomic_fetch_add(&p->h->post_errors, 1);
    }
    return NULL;
}

/* a guard timer: stops a loop that waited too long, and says so */
struct guard {
    coro_handle h;
    coro_loop *loop;
    int fired;
};

static int guard_cb(void *arg)
{
    struct guard *g = arg;
    g->fired = 1;
    coro_loop_stop(g->loop);
    return 0;
}

static void guard_arm(struct guard *g, coro_loop *loop, double seconds)
{
    coro_handle_init(&g->h);
    g->loop = loop;
    g->fired = 0;
    assert_int_equal(coro_call_later(loop, &g->h, seconds, guard_cb, g), 0);
}

static void guard_disarm(struct guard *g)
{
    coro_handle_cancel(&g->h);
    assert_int_equal(g->fired, 0);
}

static void test_threadsafe_four_threads(void **state)
{
    (void)state;
    coro_loop loop;
    struct hammer h;
    struct poster p[POSTERS];
    pthread_t th[POSTERS];
    struct guard guard;
    memset(&h, 0, sizeof h);
    h.loop = &loop;
    h.calls = calloc(POSTERS * PER_POSTER, sizeof *h.calls);
    assert_non_null(h.calls);
    for (int t = 0; t < POSTERS; t++)
        for (int i = 0; i < PER_POSTER; i++)
            h.calls[t * PER_POSTER + i] = (struct call){ &h, t, i };
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_threads_init(&loop), 0);
    for (int t = 0; t < POSTERS; t++) {
        p[t] = (struct poster){ &h, t };
        assert_int_equal(pthread_create(&th[t], NULL, poster_main, &p[t]), 0);
    }
    guard_arm(&guard, &loop, 60.0);
    assert_int_equal(coro_loop_run_forever(&loop), 0);
    for (int t = 0; t < POSTERS; t++)
        pthread_join(th[t], NULL);
    guard_disarm(&guard);
    assert_int_equal(atomic_load(&h.post_errors), 0);
    assert_int_equal(h.total, POSTERS * PER_POSTER);
    assert_int_equal(h.out_of_order, 0);
    assert_int_equal(h.off_loop, 0);
    for (int t = 0; t < POSTERS; t++)
        assert_int_equal(h.next[t], PER_POSTER);
    uint64_t writes = wake_writes(&loop), drains = wake_drains(&loop);
    print_message("    %d calls: %llu wake-up writes, %llu drains\n", POSTERS * PER_POSTER,
                  (unsigned long long)writes, (unsigned long long)drains);
    assert_true(writes >= 1);
    assert_true(writes < (uint64_t)POSTERS * PER_POSTER / 4); /* coalesced */
    assert_true(drains >= 1 && drains <= writes);
    close_loop(&loop);
    free(h.calls);
}

/* Posts made while the loop does not run cost one write in all, and one
 * drain takes them all, in order. */
struct burst {
    coro_loop *loop;
    int n;
    tlog log;
};

static int burst_cb(void *arg)
{
    tlog_arg *a = arg;
    tlog_add(a->log, a->value);
    return 0;
}

struct burst_thread {
    coro_loop *loop;
    tlog_arg *args;
    int n;
    int errors;
};

static void *burst_main(void *arg)
{
    struct burst_thread *b = arg;
    for (int i = 0; i < b->n; i++)
        if (coro_call_soon_threadsafe(b->loop, burst_cb, &b->args[i]) != 0)
            b->errors++;
    return NULL;
}

static void test_threadsafe_coalesced(void **state)
{
    (void)state;
    coro_loop loop;
    tlog log = { 0 };
    tlog_arg args[300];
    pthread_t th;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_threads_init(&loop), 0);
    for (int i = 0; i < 300; i++)
        args[i] = (tlog_arg){ &log, i };
    struct burst_thread b = { &loop, args, 300, 0 };
    assert_int_equal(pthread_create(&th, NULL, burst_main, &b), 0);
    pthread_join(th, NULL);
    assert_int_equal(b.errors, 0);
    assert_int_equal(wake_writes(&loop), 1); /* 300 posts, one write */
    assert_int_equal(wake_drains(&loop), 0);
    assert_int_equal(log.n, 0); /* nothing runs inline */
    run_one_pass(&loop);        /* the drain: the callbacks join the ready queue */
    assert_int_equal(wake_drains(&loop), 1);
    assert_int_equal(log.n, 0);
    run_one_pass(&loop); /* now they run, in order */
    assert_int_equal(log.n, 300);
    for (int i = 0; i < 300; i++)
        assert_int_equal(log.ev[i], i);
    /* the flag is clear again: the next post writes once more */
    b.n = 2;
    assert_int_equal(pthread_create(&th, NULL, burst_main, &b), 0);
    pthread_join(th, NULL);
    assert_int_equal(wake_writes(&loop), 2);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(log.n, 302);
    assert_int_equal(wake_drains(&loop), 2);
    /* the fd was drained: idle passes see nothing more */
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(wake_drains(&loop), 2);
    close_loop(&loop);
}

/* a caller-owned node that re-posts itself from its own callback */
struct repost {
    coro_threadsafe_node node;
    coro_loop *loop;
    int runs;
};

static int repost_cb(void *arg)
{
    struct repost *r = arg;
    if (++r->runs < 5)
        assert_int_equal(coro_call_soon_threadsafe_node(r->loop, &r->node, repost_cb, r), 0);
    else
        coro_loop_stop(r->loop);
    return 0;
}

static void *node_main(void *arg)
{
    struct repost *r = arg;
    intptr_t rc = coro_call_soon_threadsafe_node(r->loop, &r->node, repost_cb, r);
    return (void *)rc;
}

static void test_threadsafe_node(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    struct repost r;
    pthread_t th;
    void *ret;
    memset(&r, 0, sizeof r);
    r.loop = &loop;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_threads_init(&loop), 0);
    assert_int_equal(pthread_create(&th, NULL, node_main, &r), 0);
    pthread_join(th, &ret);
    assert_int_equal((intptr_t)ret, 0);
    assert_int_equal(coro_loop_run_forever(&loop), 0);
    assert_int_equal(r.runs, 5);
    /* posted but never run: dropped by close, and the node is the caller's */
    assert_int_equal(coro_call_soon_threadsafe_node(&loop, &r.node, repost_cb, &r), 0);
    assert_int_equal(coro_call_soon_threadsafe(&loop, repost_cb, &r), 0); /* malloc'd: freed */
    close_talloc_loop(&loop, &a);
    assert_int_equal(r.runs, 5);
    assert_int_equal(coro_call_soon_threadsafe_node(&loop, &r.node, repost_cb, &r), CORO_ECLOSED);
}

/* A callback moved to the ready queue but not run when the loop closes is
 * dropped (and a malloc'd node freed: valgrind and ASan check). */
static void test_threadsafe_dropped_on_ready_queue(void **state)
{
    (void)state;
    coro_loop loop;
    tlog log = { 0 };
    tlog_arg a1 = { &log, 1 };
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_threads_init(&loop), 0);
    assert_int_equal(coro_call_soon_threadsafe(&loop, tlog_cb, &a1), 0);
    run_one_pass(&loop); /* drained: now on the ready queue */
    assert_int_equal(log.n, 0);
    close_loop(&loop);
    assert_int_equal(log.n, 0);
}

struct estate {
    coro_loop *loop;
    int rc;
};

static void *estate_main(void *arg)
{
    struct estate *e = arg;
    e->rc = coro_call_soon_threadsafe(e->loop, stop_cb, e->loop);
    return NULL;
}

static int post_from_loop_cb(void *arg)
{
    struct estate *e = arg;
    e->rc = coro_call_soon_threadsafe(e->loop, stop_cb, e->loop); /* implicit set-up */
    return 0;
}

static int noop_cb(void *arg)
{
    (void)arg;
    return 0;
}

static void test_setup_rules(void **state)
{
    (void)state;
    coro_loop loop;
    pthread_t th;
    struct estate e = { &loop, 1 };
    int fd0 = lowest_free_fd();
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    int fd1 = lowest_free_fd(); /* after the selector's fd */
    /* no machinery yet: another thread is refused, so is a thread not
     * running the loop */
    assert_int_equal(pthread_create(&th, NULL, estate_main, &e), 0);
    pthread_join(th, NULL);
    assert_int_equal(e.rc, CORO_ESTATE);
    assert_int_equal(coro_call_soon_threadsafe(&loop, noop_cb, NULL), CORO_ESTATE);
    assert_null(loop.threads);
    assert_int_equal(loop.nwatched, 0);
    assert_int_equal(lowest_free_fd(), fd1);
    /* from a callback of the running loop: set up on the spot */
    e.rc = 1;
    assert_int_equal(coro_call_soon(&loop, NULL, post_from_loop_cb, &e), 0);
    assert_int_equal(coro_loop_run_forever(&loop), 0); /* the posted stop_cb stops it */
    assert_int_equal(e.rc, 0);
    assert_non_null(loop.threads);
    assert_int_equal(loop.nwatched, 1); /* the wake fd */
    assert_true(lowest_free_fd() != fd1);
    assert_int_equal(coro_threads_init(&loop), 0); /* again: nothing */
    assert_int_equal(loop.nwatched, 1);
    /* bad arguments */
    assert_int_equal(coro_threads_init(NULL), CORO_EINVAL);
    assert_int_equal(coro_call_soon_threadsafe(NULL, noop_cb, NULL), CORO_EINVAL);
    assert_int_equal(coro_call_soon_threadsafe(&loop, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_call_soon_threadsafe_node(&loop, NULL, noop_cb, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_stop_threadsafe(NULL), CORO_EINVAL);
    close_loop(&loop);
    assert_int_equal(lowest_free_fd(), fd0); /* every fd closed */
    e.rc = 1;
    assert_int_equal(pthread_create(&th, NULL, estate_main, &e), 0);
    pthread_join(th, NULL);
    assert_int_equal(e.rc, CORO_ECLOSED);
    assert_int_equal(coro_threads_init(&loop), CORO_ECLOSED);
}

/* a loop that never uses threads: no wake fd, nothing watched */
struct yielder {
    coro_frame co;
    int i;
};

static CORO_FN(yield_a_bit)
{
    struct yielder *self = CORO_SELF(struct yielder);
    CORO_BEGIN();
    for (self->i = 0; self->i < 3; self->i++)
        CORO_YIELD(coro_none());
    CORO_END();
}

static void test_no_threads_no_cost(void **state)
{
    (void)state;
    struct yielder y;
    coro_frame_init(&y.co, yield_a_bit);
    coro_loop loop;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_task_init(&t, &loop, &y.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_null(loop.threads);
    assert_null(loop.threads_fini);
    assert_int_equal(loop.nwatched, 0);
    close_loop(&loop);
}

static void *stopper_main(void *arg)
{
    sleep_ms(20);
    intptr_t rc = coro_loop_stop_threadsafe(arg);
    return (void *)rc;
}

static void test_stop_threadsafe(void **state)
{
    (void)state;
    coro_loop loop;
    pthread_t th;
    void *ret;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_threads_init(&loop), 0);
    assert_int_equal(pthread_create(&th, NULL, stopper_main, &loop), 0);
    int64_t t0 = mono_ns();
    assert_int_equal(coro_loop_run_forever(&loop), 0); /* blocked in the poll until then */
    pthread_join(th, &ret);
    assert_int_equal((intptr_t)ret, 0);
    assert_true(mono_ns() - t0 >= 15 * MS);
    close_loop(&loop);
}

/* a posted callback's error goes to the exception handler */
static int fail_einval(void *arg)
{
    (void)arg;
    return CORO_EINVAL;
}

static void test_threadsafe_callback_error(void **state)
{
    (void)state;
    coro_loop loop;
    texc x = { 0 };
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_loop_set_exception_handler(&loop, texc_handler, &x);
    assert_int_equal(coro_threads_init(&loop), 0);
    assert_int_equal(coro_call_soon_threadsafe(&loop, fail_einval, NULL), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(x.callback_errors, 1);
    assert_int_equal(x.last_error, CORO_EINVAL);
    close_loop(&loop);
}

/* ------------------------------------------------------------------------ */
/* to_thread                                                                */
/* ------------------------------------------------------------------------ */

static pthread_t main_thread;

struct job {
    int64_t in;
    int ret_mode; /* 0: in * 2; 1: coro_error(in); 2: a positive "error" */
    int sleep_ms;
    atomic_int on_main; /* fn ran on the loop's thread: must stay 0 */
};

static coro_value job_fn(void *arg)
{
    struct job *j = arg;
    if (pthread_equal(pthread_self(), main_thread))
        atomic_store(&j->on_main, 1);
    if (j->sleep_ms)
        sleep_ms(j->sleep_ms);
    switch (j->ret_mode) {
    case 1:
        return coro_error((int)j->in);
    case 2:
        return coro_error(5);
    default:
        return coro_int(j->in * 2);
    }
}

struct results_main {
    coro_frame co;
    coro_to_thread_op op;
    struct job jobs[5];
    int errs[5];
    int64_t vals[5];
    int i, dropped;
};

static CORO_FN(results_main_step)
{
    struct results_main *self = CORO_SELF(struct results_main);
    CORO_BEGIN();
    for (self->i = 0; self->i < 5; self->i++) {
        CORO_AWAIT_ERR(coro_to_thread(&self->op, job_fn, &self->jobs[self->i]),
                       self->errs[self->i]);
        if (self->errs[self->i] == 0)
            self->vals[self->i] = CORO_RESULT.u.i;
        self->dropped += coro_to_thread_discarded(&self->op); /* fn's outcomes: none */
    }
    CORO_RETURN(coro_int(7));
    CORO_END();
}

static void test_to_thread_results(void **state)
{
    (void)state;
    struct results_main m;
    coro_value out;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, results_main_step);
    m.jobs[0] = (struct job){ .in = 21 };
    m.jobs[1] = (struct job){ .in = -ENOENT, .ret_mode = 1 };
    m.jobs[2] = (struct job){ .in = CORO_ECANCELLED, .ret_mode = 1 };
    m.jobs[3] = (struct job){ .ret_mode = 2 };
    m.jobs[4] = (struct job){ .in = 1000, .sleep_ms = 10 };
    assert_int_equal(coro_run(&m.co, &out, NULL), 0);
    assert_int_equal(out.u.i, 7);
    assert_int_equal(m.errs[0], 0);
    assert_int_equal(m.vals[0], 42);
    assert_int_equal(m.errs[1], -ENOENT);
    assert_int_equal(m.errs[2], CORO_ECANCELLED);
    assert_int_equal(m.errs[3], CORO_EINVAL);
    assert_int_equal(m.errs[4], 0);
    assert_int_equal(m.vals[4], 2000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(atomic_load(&m.jobs[i].on_main), 0);
    assert_int_equal(m.dropped, 0);
    assert_int_equal(coro_to_thread_discarded(NULL), 0);
}

/* Many tasks at once through a pool of 2: never more than 2 at a time. */
static atomic_int running_now, running_max;

static coro_value busy_fn(void *arg)
{
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int max = atomic_load(&running_max);
    while (now > max && !atomic_compare_exchange_weak(&running_max, &max, now)) {
    }
    sleep_ms(5);
    atomic_fetch_sub(&running_now, 1);
    return coro_int((int64_t)(intptr_t)arg);
}

struct busy_task {
    coro_frame co;
    coro_to_thread_op op;
    int64_t id, got;
};

static CORO_FN(busy_task_step)
{
    struct busy_task *self = CORO_SELF(struct busy_task);
    CORO_BEGIN();
    CORO_AWAIT(coro_to_thread(&self->op, busy_fn, (void *)(intptr_t)self->id));
    self->got = CORO_RESULT.u.i;
    CORO_END();
}

static void test_to_thread_pool_limit(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    struct busy_task bt[12];
    coro_task t[12];
    atomic_store(&running_now, 0);
    atomic_store(&running_max, 0);
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_loop_set_executor_threads(&loop, 0), CORO_EINVAL);
    assert_int_equal(coro_loop_set_executor_threads(&loop, CORO_EXECUTOR_THREADS_MAX + 1),
                     CORO_EINVAL);
    assert_int_equal(coro_loop_set_executor_threads(NULL, 2), CORO_EINVAL);
    assert_int_equal(coro_loop_set_executor_threads(&loop, 2), 0);
    for (int i = 0; i < 12; i++) {
        memset(&bt[i], 0, sizeof bt[i]);
        coro_frame_init(&bt[i].co, busy_task_step);
        bt[i].id = i + 100;
        assert_int_equal(coro_task_init(&t[i], &loop, &bt[i].co), 0);
    }
    for (int i = 0; i < 12; i++) {
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t[i])), 0);
        assert_int_equal(bt[i].got, i + 100);
    }
    assert_int_equal(atomic_load(&running_max), 2);
    assert_int_equal(coro_loop_set_executor_threads(&loop, 3), CORO_ESTATE); /* started */
    close_talloc_loop(&loop, &a);
    assert_int_equal(coro_loop_set_executor_threads(&loop, 3), CORO_ECLOSED);
}

/* ---- cancellation ---- */

/* fn blocks until the test opens its gate. */
struct gated {
    atomic_int started, finished, gate;
    atomic_int *ran; /* counts runs, if set */
    int64_t value;
};

static coro_value gated_fn(void *arg)
{
    struct gated *g = arg;
    atomic_store(&g->started, 1);
    if (g->ran)
        atomic_fetch_add(g->ran, 1);
    while (!atomic_load(&g->gate))
        sleep_ms(1);
    atomic_store(&g->finished, 1);
    return coro_int(g->value);
}

/* discard: records what it got, frees the argument it owns */
struct discards {
    atomic_int count;
    coro_value last;
    int64_t sum;
};

struct owned_arg {
    struct gated *g;
    struct discards *d;
};

static coro_value owned_fn(void *arg)
{
    struct owned_arg *o = arg;
    return gated_fn(o->g);
}

static void owned_discard(void *arg, coro_value v)
{
    struct owned_arg *o = arg;
    o->d->last = v;
    o->d->sum += v.tag == CORO_INT ? v.u.i : 0;
    atomic_fetch_add(&o->d->count, 1);
    free(o);
}

struct cancel_task {
    coro_frame co;
    coro_to_thread_op op;
    struct owned_arg *arg;
    int *discarded; /* test storage: coro_to_thread_discarded after the await */
    int err;
    int64_t got;
};

static CORO_FN(cancel_task_step)
{
    struct cancel_task *self = CORO_SELF(struct cancel_task);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_to_thread_ex(&self->op, owned_fn, self->arg, owned_discard), self->err);
    if (self->discarded)
        *self->discarded = coro_to_thread_discarded(&self->op);
    if (self->err != 0)
        CORO_RAISE(self->err);
    self->got = CORO_RESULT.u.i;
    free(self->arg); /* delivered: ours to free */
    CORO_RETURN(coro_int(self->got));
    CORO_END();
}

static struct owned_arg *owned_new(struct gated *g, struct discards *d)
{
    struct owned_arg *o = malloc(sizeof *o);
    assert_non_null(o);
    o->g = g;
    o->d = d;
    return o;
}

/* The frame is the loop's (coro_frame_new) and goes when the task is done,
 * long before the worker finishes: the worker must never touch it. */
static void test_to_thread_cancel_running(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    struct gated g = { .value = 33 };
    struct discards d = { 0 };
    int discarded = -1;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    struct cancel_task *ct = CORO_FRAME_NEW(&loop, struct cancel_task, cancel_task_step);
    assert_non_null(ct);
    ct->arg = owned_new(&g, &d);
    ct->discarded = &discarded;
    coro_task *t = coro_spawn(&loop, &ct->co);
    assert_non_null(t);
    run_until_flag(&loop, &g.started, 5.0);
    assert_int_equal(coro_task_cancel(t), 1);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), CORO_ECANCELLED);
    assert_true(coro_task_cancelled(t));
    assert_int_equal(discarded, 1); /* the argument is discard's now */
    coro_task_release(t);           /* the frame goes with it */
    run_one_pass(&loop);
    assert_int_equal(atomic_load(&d.count), 0); /* fn still runs */
    atomic_store(&g.gate, 1);
    run_until_flag(&loop, &d.count, 5.0); /* the result comes back, discarded */
    assert_int_equal(atomic_load(&d.count), 1);
    assert_int_equal(d.last.tag, CORO_INT);
    assert_int_equal(d.last.u.i, 33);
    run_one_pass(&loop);
    assert_int_equal(atomic_load(&d.count), 1);
    close_talloc_loop(&loop, &a);
}

/* Pool of 1: the second piece of work waits in the queue; cancelling it
 * takes it off (fn never runs, discard sees CORO_ECANCELLED at once). */
static void test_to_thread_cancel_queued(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    atomic_int ran2 = 0;
    struct gated g1 = { .value = 1 }, g2 = { .value = 2, .ran = &ran2 };
    struct discards d = { 0 };
    int discarded1 = -1, discarded2 = -1;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_loop_set_executor_threads(&loop, 1), 0);
    struct cancel_task *c1 = CORO_FRAME_NEW(&loop, struct cancel_task, cancel_task_step);
    struct cancel_task *c2 = CORO_FRAME_NEW(&loop, struct cancel_task, cancel_task_step);
    c1->arg = owned_new(&g1, &d);
    c2->arg = owned_new(&g2, &d);
    c1->discarded = &discarded1;
    c2->discarded = &discarded2;
    coro_task *t1 = coro_spawn(&loop, &c1->co), *t2 = coro_spawn(&loop, &c2->co);
    run_until_flag(&loop, &g1.started, 5.0);
    run_one_pass(&loop);
    assert_int_equal(atomic_load(&g2.started), 0); /* queued behind g1 */
    assert_int_equal(coro_task_cancel(t2), 1);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t2)), CORO_ECANCELLED);
    assert_int_equal(atomic_load(&d.count), 1); /* dropped from the queue */
    assert_int_equal(d.last.tag, CORO_ERROR);
    assert_int_equal(d.last.u.i, CORO_ECANCELLED);
    assert_int_equal(discarded2, 1);
    atomic_store(&g1.gate, 1);
    atomic_store(&g2.gate, 1);
    coro_value v;
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t1)), 0);
    assert_int_equal(coro_task_result(t1, &v), 0); /* (the frame went with the task) */
    assert_int_equal(v.u.i, 1);
    assert_int_equal(discarded1, 0); /* delivered: the task freed its argument */
    run_for(&loop, 0.02);
    assert_int_equal(atomic_load(&ran2), 0); /* never ran */
    assert_int_equal(atomic_load(&d.count), 1);
    coro_task_release(t1);
    coro_task_release(t2);
    close_talloc_loop(&loop, &a);
}

/* fn's value reached the op's future, but the task was cancelled before it
 * resumed: the value is discarded, not leaked. */
static void test_to_thread_cancel_after_completion(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    struct gated g = { .value = 77 };
    struct discards d = { 0 };
    int discarded = -1;
    atomic_store(&g.gate, 1);
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    struct cancel_task *ct = CORO_FRAME_NEW(&loop, struct cancel_task, cancel_task_step);
    ct->arg = owned_new(&g, &d);
    ct->discarded = &discarded;
    coro_task *t = coro_spawn(&loop, &ct->co);
    int64_t t0 = mono_ns();
    while (!coro_future_done(&ct->op.fut)) { /* one pass at a time */
        assert_true(mono_ns() - t0 < 5000 * MS);
        run_one_pass(&loop);
    }
    assert_false(coro_task_done(t)); /* its wakeup is queued */
    assert_int_equal(coro_task_cancel(t), 1);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), CORO_ECANCELLED);
    assert_int_equal(atomic_load(&d.count), 1);
    assert_int_equal(d.last.tag, CORO_INT);
    assert_int_equal(d.last.u.i, 77);
    assert_int_equal(discarded, 1);
    coro_task_release(t);
    close_talloc_loop(&loop, &a);
}

/* Close with work in flight: close waits for the running work (its value is
 * discarded) and drops the queued work unrun. The tasks are still pending:
 * close drops them (debug mode off: no report). */
static void test_close_with_work_in_flight(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    atomic_int ran = 0;
    struct gated g[3] = { { .value = 10, .ran = &ran },
                          { .value = 20, .ran = &ran },
                          { .value = 30, .ran = &ran } };
    struct discards d = { 0 };
    struct cancel_task *ct[3];
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_loop_set_executor_threads(&loop, 1), 0);
    for (int i = 0; i < 3; i++) {
        ct[i] = CORO_FRAME_NEW(&loop, struct cancel_task, cancel_task_step);
        ct[i]->arg = owned_new(&g[i], &d);
        coro_task_release(coro_spawn(&loop, &ct[i]->co));
    }
    run_until_flag(&loop, &g[0].started, 5.0);
    atomic_store(&g[0].gate, 1); /* it finishes while close waits */
    close_talloc_loop(&loop, &a);
    assert_int_equal(atomic_load(&g[0].finished), 1); /* close waited */
    assert_int_equal(atomic_load(&ran), 1);           /* the queued ones never ran */
    assert_int_equal(atomic_load(&d.count), 3);       /* every argument freed */
    assert_int_equal(d.sum, 10);
}

/* The same with a worker still sleeping in fn when close starts. */
struct sleepy {
    atomic_int started, finished;
};

static coro_value sleepy_fn(void *arg)
{
    struct sleepy *s = arg;
    atomic_store(&s->started, 1);
    sleep_ms(100);
    atomic_store(&s->finished, 1);
    return coro_none();
}

static void test_close_waits_for_worker(void **state)
{
    (void)state;
    coro_loop loop;
    struct sleepy s = { 0 };
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_future *f = coro_future_new(&loop);
    assert_int_equal(coro_run_in_executor(&loop, f, sleepy_fn, &s, NULL), 0);
    int64_t t0 = mono_ns();
    while (!atomic_load(&s.started)) { /* the pool runs without the loop running */
        assert_true(mono_ns() - t0 < 5000 * MS);
        sleep_ms(1);
    }
    assert_int_equal(atomic_load(&s.finished), 0);
    close_loop(&loop);
    assert_int_equal(atomic_load(&s.finished), 1); /* close joined the worker */
    assert_true(mono_ns() - t0 >= 90 * MS);
}

/* ---- run_in_executor ---- */

static void test_run_in_executor(void **state)
{
    (void)state;
    coro_loop loop, other;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    struct job ok = { .in = 4 }, bad = { .in = -EPERM, .ret_mode = 1 };
    coro_value v;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_loop_init(&other, NULL), 0);
    coro_future *f = coro_future_new(&loop), *f2 = coro_future_new(&loop);
    coro_future *fo = coro_future_new(&other);
    assert_int_equal(coro_run_in_executor(&loop, f, job_fn, &ok, NULL), 0);
    assert_int_equal(coro_run_in_executor(&loop, f2, job_fn, &bad, NULL), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, f), 0);
    assert_int_equal(coro_future_result(f, &v), 0);
    assert_int_equal(v.u.i, 8);
    assert_int_equal(coro_loop_run_until_complete(&loop, f2), -EPERM);
    /* cancelled while running: the value goes to discard */
    struct gated g = { .value = 5 };
    struct discards d = { 0 };
    coro_future *f3 = coro_future_new(&loop);
    assert_int_equal(coro_run_in_executor(&loop, f3, owned_fn, owned_new(&g, &d), owned_discard),
                     0);
    run_until_flag(&loop, &g.started, 5.0);
    assert_int_equal(coro_future_cancel(f3), 1);
    run_one_pass(&loop);
    assert_int_equal(atomic_load(&d.count), 0);
    atomic_store(&g.gate, 1);
    run_until_flag(&loop, &d.count, 5.0);
    assert_int_equal(d.last.u.i, 5);
    assert_true(coro_future_cancelled(f3));
    /* bad arguments */
    coro_task *t;
    struct yielder y;
    coro_frame_init(&y.co, yield_a_bit);
    t = coro_spawn(&loop, &y.co);
    assert_int_equal(coro_run_in_executor(NULL, f, job_fn, &ok, NULL), CORO_EINVAL);
    assert_int_equal(coro_run_in_executor(&loop, NULL, job_fn, &ok, NULL), CORO_EINVAL);
    assert_int_equal(coro_run_in_executor(&loop, fo, job_fn, &ok, NULL), CORO_EINVAL);
    assert_int_equal(coro_run_in_executor(&loop, coro_task_future(t), job_fn, &ok, NULL),
                     CORO_EINVAL);
    assert_int_equal(coro_run_in_executor(&loop, f, NULL, &ok, NULL), CORO_EINVAL);
    assert_int_equal(coro_run_in_executor(&loop, f, job_fn, &ok, NULL), CORO_ESTATE); /* done */
    assert_null(coro_to_thread(NULL, job_fn, NULL));
    coro_to_thread_op op;
    assert_null(coro_to_thread(&op, NULL, NULL));
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), 0);
    coro_task_release(t);
    close_talloc_loop(&loop, &a);
    close_loop(&other);
    assert_null(other.threads); /* never used threads */
}

/* to_thread driven by a generator (not a task): refused, nothing leaks */
struct gen_ctx {
    coro_to_thread_op op;
    coro_gen g;
    struct owned_arg *arg;
    int rc, discarded;
};

static int drive_gen_cb(void *arg)
{
    struct gen_ctx *c = arg;
    assert_int_equal(
        coro_gen_init(&c->g, coro_to_thread_ex(&c->op, owned_fn, c->arg, owned_discard)), 0);
    c->rc = coro_gen_next(&c->g, NULL); /* submitted, then the await is refused */
    c->discarded = coro_to_thread_discarded(&c->op);
    return 0;
}

static void test_to_thread_outside_task(void **state)
{
    (void)state;
    coro_to_thread_op op;
    coro_gen g;
    struct job j = { .in = 1 };
    /* no running loop at all: refused before anything is submitted */
    assert_int_equal(coro_gen_init(&g, coro_to_thread(&op, job_fn, &j)), 0);
    assert_int_equal(coro_gen_next(&g, NULL), CORO_EINVAL);
    assert_int_equal(coro_to_thread_discarded(&op), 0);
    /* a generator driven by a callback of a running loop: the work was
     * submitted, the refused await drops it, discard gets the argument */
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    struct gated gt = { .value = 9 };
    struct discards d = { 0 };
    struct gen_ctx c = { .arg = owned_new(&gt, &d), .rc = 1, .discarded = -1 };
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_call_soon(&loop, NULL, drive_gen_cb, &c), 0);
    run_one_pass(&loop);
    assert_int_equal(c.rc, CORO_EINVAL);
    assert_int_equal(c.discarded, 1);
    atomic_store(&gt.gate, 1);
    run_until_flag(&loop, &d.count, 5.0);
    assert_int_equal(atomic_load(&d.count), 1);
    close_talloc_loop(&loop, &a);
}

/* ---- a loop per thread ---- */

struct lpt_child {
    coro_frame co;
    coro_to_thread_op op;
    struct job job;
    int i;
    int64_t sum;
};

static CORO_FN(lpt_child_step)
{
    struct lpt_child *self = CORO_SELF(struct lpt_child);
    CORO_BEGIN();
    for (self->i = 0; self->i < 5; self->i++) {
        self->job.in = self->i;
        CORO_AWAIT(coro_to_thread(&self->op, job_fn, &self->job));
        self->sum += CORO_RESULT.u.i;
        CORO_SLEEP(0.001);
    }
    CORO_RETURN(coro_int(self->sum));
    CORO_END();
}

struct lpt_main {
    coro_frame co;
    struct lpt_child kids[3];
    coro_task tasks[3];
    int i;
    int64_t total;
    coro_loop *loop;
    int pings, foreign; /* posted callbacks run; run on the wrong loop */
};

static int lpt_ping_cb(void *arg)
{
    struct lpt_main *m = arg;
    m->pings++;
    if (coro_get_running_loop() != m->loop)
        m->foreign++;
    return 0;
}

static CORO_FN(lpt_main_step)
{
    struct lpt_main *self = CORO_SELF(struct lpt_main);
    CORO_BEGIN();
    self->loop = coro_get_running_loop();
    if (coro_call_soon_threadsafe(self->loop, lpt_ping_cb, self) != 0)
        CORO_RAISE(CORO_ESTATE);
    for (self->i = 0; self->i < 3; self->i++) {
        coro_frame_init(&self->kids[self->i].co, lpt_child_step);
        if (coro_task_init(&self->tasks[self->i], coro_get_running_loop(),
                           &self->kids[self->i].co) != 0)
            CORO_RAISE(CORO_ENOMEM);
    }
    for (self->i = 0; self->i < 3; self->i++) {
        CORO_AWAIT(&self->tasks[self->i]);
        self->total += CORO_RESULT.u.i;
    }
    CORO_RETURN(coro_int(self->total));
    CORO_END();
}

struct lpt_thread {
    struct lpt_main m;
    int rc;
    coro_value out;
};

static void *lpt_thread_main(void *arg)
{
    struct lpt_thread *t = arg;
    coro_frame_init(&t->m.co, lpt_main_step);
    t->rc = coro_run(&t->m.co, &t->out, NULL);
    return NULL;
}

static void test_loop_per_thread(void **state)
{
    (void)state;
    static struct lpt_thread lt[2];
    pthread_t th[2];
    memset(lt, 0, sizeof lt);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, lpt_thread_main, &lt[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(lt[i].rc, 0);
        /* 3 tasks x 2 * (0+1+2+3+4) */
        assert_int_equal(lt[i].out.u.i, 60);
        assert_int_equal(lt[i].m.pings, 1);
        assert_int_equal(lt[i].m.foreign, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* Signals                                                                  */
/* ------------------------------------------------------------------------ */

static volatile sig_atomic_t prev_hits;

static void prev_handler(int sig)
{
    (void)sig;
    prev_hits++;
}

static void set_prev_handler(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prev_handler;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(sig, &sa, NULL), 0);
}

static void (*current_handler(int sig))(int)
{
    struct sigaction sa;
    assert_int_equal(sigaction(sig, NULL, &sa), 0);
    return sa.sa_handler;
}

static void restore_default(int sig) { signal(sig, SIG_DFL); }

struct sigrec {
    coro_loop *loop;
    int runs;
    int not_on_loop;
};

static int sig_cb(void *arg)
{
    struct sigrec *r = arg;
    r->runs++;
    if (coro_get_running_loop() != r->loop || !coro_loop_is_running(r->loop))
        r->not_on_loop++;
    return 0;
}

static void test_signal_delivered_as_callback(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options o = talloc_options(&a);
    struct sigrec r = { &loop, 0, 0 };
    prev_hits = 0;
    set_prev_handler(SIGUSR1);
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_add_signal_handler(&loop, SIGUSR1, sig_cb, &r), 0);
    assert_true(current_handler(SIGUSR1) != prev_handler);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(r.runs, 0); /* not in signal context: nothing ran yet */
    assert_int_equal(prev_hits, 0);
    run_one_pass(&loop); /* the drain schedules it */
    run_one_pass(&loop); /* it runs */
    assert_int_equal(r.runs, 1);
    assert_int_equal(r.not_on_loop, 0);
    /* two before the loop looks: one run */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(r.runs, 2);
    /* remove: the previous handler is back */
    assert_int_equal(coro_remove_signal_handler(&loop, SIGUSR1), 1);
    assert_int_equal(coro_remove_signal_handler(&loop, SIGUSR1), 0);
    assert_true(current_handler(SIGUSR1) == prev_handler);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(prev_hits, 1);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(r.runs, 2);
    /* close restores it too */
    assert_int_equal(coro_add_signal_handler(&loop, SIGUSR1, sig_cb, &r), 0);
    assert_int_equal(raise(SIGUSR1), 0); /* pending at close: dropped */
    run_one_pass(&loop);                 /* drained: the delivery is queued */
    close_talloc_loop(&loop, &a);
    assert_int_equal(r.runs, 2);
    assert_true(current_handler(SIGUSR1) == prev_handler);
    restore_default(SIGUSR1);
}

/* a handler that removes itself, and a replaced handler */
static int self_remove_cb(void *arg)
{
    struct sigrec *r = arg;
    r->runs++;
    return coro_remove_signal_handler(r->loop, SIGUSR2) == 1 ? 0 : CORO_ESTATE;
}

static void test_signal_replace_and_self_remove(void **state)
{
    (void)state;
    coro_loop loop;
    texc x = { 0 };
    struct sigrec r1 = { &loop, 0, 0 }, r2 = { &loop, 0, 0 };
    prev_hits = 0;
    set_prev_handler(SIGUSR2);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    coro_loop_set_exception_handler(&loop, texc_handler, &x);
    assert_int_equal(coro_add_signal_handler(&loop, SIGUSR2, sig_cb, &r1), 0);
    assert_int_equal(coro_add_signal_handler(&loop, SIGUSR2, self_remove_cb, &r2), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    run_one_pass(&loop);
    run_one_pass(&loop);
    assert_int_equal(r1.runs, 0);
    assert_int_equal(r2.runs, 1);
    assert_int_equal(x.count, 0);
    assert_true(current_handler(SIGUSR2) == prev_handler);
    close_loop(&loop);
    restore_default(SIGUSR2);
}

static int sigint_stop_cb(void *arg)
{
    struct sigrec *r = arg;
    r->runs++;
    coro_loop_stop(r->loop);
    return 0;
}

static void *kill_main(void *arg)
{
    (void)arg;
    sleep_ms(30);
    kill(getpid(), SIGINT); /* any thread may take it */
    return NULL;
}

static void test_sigint_stops_loop(void **state)
{
    (void)state;
    coro_loop loop;
    struct sigrec r = { &loop, 0, 0 };
    struct guard guard;
    pthread_t th;
    void (*before)(int) = current_handler(SIGINT);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_add_signal_handler(&loop, SIGINT, sigint_stop_cb, &r), 0);
    guard_arm(&guard, &loop, 30.0);
    assert_int_equal(pthread_create(&th, NULL, kill_main, NULL), 0);
    assert_int_equal(coro_loop_run_forever(&loop), 0); /* blocked until SIGINT */
    pthread_join(th, NULL);
    guard_disarm(&guard);
    assert_int_equal(r.runs, 1);
    close_loop(&loop); /* removes the handler */
    assert_true(current_handler(SIGINT) == before);
}

static void test_signal_bad_arguments(void **state)
{
    (void)state;
    coro_loop l1, l2;
    struct sigrec r = { &l1, 0, 0 };
    assert_int_equal(coro_loop_init(&l1, NULL), 0);
    assert_int_equal(coro_loop_init(&l2, NULL), 0);
    assert_int_equal(coro_add_signal_handler(NULL, SIGUSR1, sig_cb, &r), CORO_EINVAL);
    assert_int_equal(coro_add_signal_handler(&l1, SIGUSR1, NULL, &r), CORO_EINVAL);
    assert_int_equal(coro_add_signal_handler(&l1, SIGKILL, sig_cb, &r), CORO_EINVAL);
    assert_int_equal(coro_add_signal_handler(&l1, SIGSTOP, sig_cb, &r), CORO_EINVAL);
    assert_int_equal(coro_add_signal_handler(&l1, 0, sig_cb, &r), CORO_EINVAL);
    assert_int_equal(coro_add_signal_handler(&l1, -1, sig_cb, &r), CORO_EINVAL);
    assert_int_equal(coro_add_signal_handler(&l1, 100000, sig_cb, &r), CORO_EINVAL);
    assert_int_equal(coro_remove_signal_handler(NULL, SIGUSR1), CORO_EINVAL);
    assert_int_equal(coro_remove_signal_handler(&l1, SIGKILL), CORO_EINVAL);
    assert_int_equal(coro_remove_signal_handler(&l1, 0), CORO_EINVAL);
    assert_int_equal(coro_remove_signal_handler(&l1, SIGUSR1), 0); /* none */
    /* one loop per signal */
    assert_int_equal(coro_add_signal_handler(&l1, SIGUSR1, sig_cb, &r), 0);
    assert_int_equal(coro_add_signal_handler(&l2, SIGUSR1, sig_cb, &r), CORO_ESTATE);
    assert_int_equal(coro_remove_signal_handler(&l2, SIGUSR1), 0);
    assert_int_equal(coro_remove_signal_handler(&l1, SIGUSR1), 1);
    assert_int_equal(coro_add_signal_handler(&l2, SIGUSR1, sig_cb, &r), 0); /* free again */
    close_loop(&l1);
    close_loop(&l2);
    assert_int_equal(coro_add_signal_handler(&l1, SIGUSR1, sig_cb, &r), CORO_ECLOSED);
    assert_int_equal(coro_remove_signal_handler(&l1, SIGUSR1), 0);
    assert_true(current_handler(SIGUSR1) == SIG_DFL);
}

/* ------------------------------------------------------------------------ */
/* Allocation failure at every site                                         */
/* ------------------------------------------------------------------------ */

struct oom_main {
    coro_frame co;
    coro_to_thread_op op;
    struct job job;
    int err;
    int64_t got;
};

static CORO_FN(oom_main_step)
{
    struct oom_main *self = CORO_SELF(struct oom_main);
    CORO_BEGIN();
    CORO_AWAIT_ERR(coro_to_thread(&self->op, job_fn, &self->job), self->err);
    if (self->err == 0)
        self->got = CORO_RESULT.u.i;
    CORO_END();
}

static void test_out_of_memory(void **state)
{
    (void)state;
    int ok_init = 0, ok_sig = 0, ok_work = 0;
    for (long n = 1; n < 200 && !(ok_init && ok_sig && ok_work); n++) {
        talloc a = { 0 };
        coro_loop_options o = talloc_options(&a);
        coro_loop loop;
        struct sigrec r = { &loop, 0, 0 };
        assert_int_equal(coro_loop_init(&loop, &o), 0);
        a.fail_at = a.calls + n;
        int rc = coro_threads_init(&loop);
        assert_true(rc == 0 || rc == CORO_ENOMEM);
        if (rc == 0) {
            ok_init = 1;
            assert_int_equal(loop.nwatched, 1);
        } else {
            assert_null(loop.threads);
        }
        a.fail_at = a.calls + n;
        rc = coro_add_signal_handler(&loop, SIGUSR1, sig_cb, &r);
        assert_true(rc == 0 || rc == CORO_ENOMEM);
        if (rc == 0)
            ok_sig = 1;
        else
            assert_true(current_handler(SIGUSR1) == SIG_DFL);
        struct oom_main m;
        memset(&m, 0, sizeof m);
        m.job.in = 3;
        coro_frame_init(&m.co, oom_main_step);
        coro_task t;
        a.fail_at = a.calls + n;
        if (coro_task_init(&t, &loop, &m.co) == 0) {
            coro_loop_run_until_complete(&loop, coro_task_future(&t));
            assert_true(m.err == 0 || m.err == CORO_ENOMEM);
            if (m.err == 0) {
                assert_int_equal(m.got, 6);
                ok_work = 1;
            }
        }
        a.fail_at = 0;
        close_talloc_loop(&loop, &a);
        assert_true(current_handler(SIGUSR1) == SIG_DFL);
    }
    assert_true(ok_init && ok_sig && ok_work);
}

int main(void)
{
    main_thread = pthread_self();
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threadsafe_four_threads),
        cmocka_unit_test(test_threadsafe_coalesced),
        cmocka_unit_test(test_threadsafe_node),
        cmocka_unit_test(test_threadsafe_dropped_on_ready_queue),
        cmocka_unit_test(test_setup_rules),
        cmocka_unit_test(test_no_threads_no_cost),
        cmocka_unit_test(test_stop_threadsafe),
        cmocka_unit_test(test_threadsafe_callback_error),
        cmocka_unit_test(test_to_thread_results),
        cmocka_unit_test(test_to_thread_pool_limit),
        cmocka_unit_test(test_to_thread_cancel_running),
        cmocka_unit_test(test_to_thread_cancel_queued),
        cmocka_unit_test(test_to_thread_cancel_after_completion),
        cmocka_unit_test(test_close_with_work_in_flight),
        cmocka_unit_test(test_close_waits_for_worker),
        cmocka_unit_test(test_run_in_executor),
        cmocka_unit_test(test_to_thread_outside_task),
        cmocka_unit_test(test_loop_per_thread),
        cmocka_unit_test(test_signal_delivered_as_callback),
        cmocka_unit_test(test_signal_replace_and_self_remove),
        cmocka_unit_test(test_sigint_stops_loop),
        cmocka_unit_test(test_signal_bad_arguments),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
