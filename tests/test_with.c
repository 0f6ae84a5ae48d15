/*
 * tests/test_with.c - `async with` inside one body: CORO_WITH_TIMEOUT,
 * CORO_WITH_TIMEOUT_AT, CORO_WITH_LOCK, CORO_WITH_SEMAPHORE,
 * CORO_WITH_TASK_GROUP, closed by CORO_WITH_END.
 *
 * Each scope's exit must run however its block ends: off the end, an error,
 * a cancel (from outside, from the deadline, from a failing child), a
 * CORO_RETURN, a break; and the outcome after the exit must be asyncio's
 * (a timeout's TimeoutError, a group's first error, a refused release).
 * Scopes nest with each other and with CORO_TRY, and open inside
 * CORO_FINALLY without losing the outcome kept there. A failed entry raises
 * before the block, in the enclosing handler. The file builds in both macro
 * forms (the labels build runs it too).
 */
#include "helpers.h"

#include <math.h>

#define E1 (CORO_EUSER - 1)
#define E2 (CORO_EUSER - 2)
#define LONG 10.0

/* Every loop here runs on virtual time: the tests check the order of
 * events, and a LONG sleep costs nothing. */
static const coro_loop_options virtual_time = { .virtual_time = 1 }; /* a sleep only a cancel ends */

static int live_timers(const coro_loop *loop) { return (int)(loop->heap_len - loop->heap_dead); }

/* Run `root` as a task on a fresh loop; returns its error code, the result
 * in *out. The loop is closed (every task done) before returning. */
static int run_root(coro_frame *root, coro_value *out)
{
    coro_loop loop;
    coro_task t;
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    assert_int_equal(coro_task_init(&t, &loop, root), 0);
    int rc = coro_loop_run_until_complete(&loop, coro_task_future(&t));
    if (out)
        coro_task_result(&t, out);
    assert_int_equal(live_timers(&loop), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
    return rc;
}

/* ---- timeout ---- */

enum { HOW_END, HOW_RETURN, HOW_RAISE, HOW_BREAK };

struct tmain {
    coro_frame co;
    coro_timeout_op to, inner;
    double secs, sleep;
    int how, err, after, expired, cancelling, finally_ran;
    tlog log;
};

static CORO_FN(timeout_main)
{
    struct tmain *self = CORO_SELF(struct tmain);
    CORO_BEGIN();
    CORO_TRY {
        tlog_add(&self->log, 1);
        CORO_WITH_TIMEOUT(&self->to, self->secs) {
            tlog_add(&self->log, 2);
            CORO_SLEEP(self->sleep);
            tlog_add(&self->log, 3);
            if (self->how == HOW_RETURN)
                CORO_RETURN(coro_int(42));
            if (self->how == HOW_RAISE)
                CORO_RAISE(E1);
            if (self->how == HOW_BREAK)
                break;
            tlog_add(&self->log, 4);
        } CORO_WITH_END;
        tlog_add(&self->log, 5);
    } CORO_EXCEPT(self->err) {
        tlog_add(&self->log, 6);
    } CORO_TRY_END;
    self->expired = coro_timeout_expired(&self->to);
    self->cancelling = coro_task_cancelling(coro_current_task(NULL));
    CORO_RETURN(coro_int(7));
    CORO_FINALLY
    self->finally_ran++;
    CORO_END();
}

static void tmain_init(struct tmain *m, double secs, double sleep, int how)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, timeout_main);
    m->secs = secs;
    m->sleep = sleep;
    m->how = how;
}

/* async with timeout(): the deadline passes inside the block: the sleep is
 * cancelled, TimeoutError comes out of the block, the task is not left
 * cancelled, the timer is gone */
static void test_timeout_expires(void **state)
{
    (void)state;
    struct tmain m;
    coro_value v;
    tmain_init(&m, 0.01, LONG, HOW_END);
    int64_t t0 = mono_ns();
    assert_int_equal(run_root(&m.co, &v), 0);
    assert_true(mono_ns() - t0 < 2000000000);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    TLOG_EXPECT(&m.log, 1, 2, 6);
    assert_int_equal(m.expired, 1);
    assert_int_equal(m.cancelling, 0);
    assert_int_equal(v.u.i, 7);
    assert_int_equal(m.finally_ran, 1);
}

/* the block ends in time: the body goes on after CORO_WITH_END */
static void test_timeout_not_reached(void **state)
{
    (void)state;
    struct tmain m;
    tmain_init(&m, LONG, 0, HOW_END);
    assert_int_equal(run_root(&m.co, NULL), 0);
    assert_int_equal(m.err, 0);
    TLOG_EXPECT(&m.log, 1, 2, 3, 4, 5);
    assert_int_equal(m.expired, 0);
}

/* a return, a raise and a break inside the block all run the exit (the
 * timer is disarmed: run_root checks none is left) */
static void test_timeout_return_raise_break(void **state)
{
    (void)state;
    struct tmain m;
    coro_value v;
    tmain_init(&m, LONG, 0, HOW_RETURN);
    assert_int_equal(run_root(&m.co, &v), 0);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 42);
    TLOG_EXPECT(&m.log, 1, 2, 3);
    assert_int_equal(m.finally_ran, 1);
    assert_int_equal(coro_timeout_expired(&m.to), 0);

    tmain_init(&m, LONG, 0, HOW_RAISE);
    assert_int_equal(run_root(&m.co, &v), 0);
    assert_int_equal(m.err, E1); /* through the scope into the except part */
    TLOG_EXPECT(&m.log, 1, 2, 3, 6);

    tmain_init(&m, LONG, 0, HOW_BREAK);
    assert_int_equal(run_root(&m.co, &v), 0);
    assert_int_equal(m.err, 0);
    TLOG_EXPECT(&m.log, 1, 2, 3, 5); /* break ends the block only */
}

/* a cancel from outside inside an unexpired scope stays a cancel */
static int cancel_cb(void *task)
{
    coro_task_cancel(task);
    return 0;
}

static void test_timeout_foreign_cancel(void **state)
{
    (void)state;
    struct tmain m;
    coro_loop loop;
    coro_task t;
    coro_handle h;
    tmain_init(&m, LONG, LONG, HOW_END);
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    assert_int_equal(coro_task_init(&t, &loop, &m.co), 0);
    coro_handle_init(&h);
    assert_int_equal(coro_call_later(&loop, &h, 0.01, cancel_cb, &t), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(m.err, CORO_ECANCELLED); /* caught by the try, not a timeout */
    assert_int_equal(m.expired, 0);
    assert_int_equal(m.cancelling, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* nested: the inner, shorter deadline raises TimeoutError inside the outer
 * scope, which goes on; the outer one then expires too */
struct nested {
    coro_frame co;
    coro_timeout_op outer, inner;
    int inner_err, outer_err;
    tlog log;
};

static CORO_FN(nested_main)
{
    struct nested *self = CORO_SELF(struct nested);
    CORO_BEGIN();
    CORO_TRY {
        CORO_WITH_TIMEOUT(&self->outer, 0.05) {
            CORO_TRY {
                CORO_WITH_TIMEOUT(&self->inner, 0.01) {
                    CORO_SLEEP(LONG);
                    tlog_add(&self->log, 99);
                } CORO_WITH_END;
            } CORO_EXCEPT(self->inner_err) {
                tlog_add(&self->log, 1);
                assert_int_equal(coro_timeout_expired(&self->outer), 0);
            } CORO_TRY_END;
            CORO_SLEEP(LONG); /* the outer deadline */
            tlog_add(&self->log, 98);
        } CORO_WITH_END;
    } CORO_EXCEPT(self->outer_err) {
        tlog_add(&self->log, 2);
    } CORO_TRY_END;
    CORO_END();
}

static void test_timeout_nested(void **state)
{
    (void)state;
    struct nested m;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, nested_main);
    assert_int_equal(run_root(&m.co, NULL), 0);
    assert_int_equal(m.inner_err, CORO_ETIMEDOUT);
    assert_int_equal(m.outer_err, CORO_ETIMEDOUT);
    TLOG_EXPECT(&m.log, 1, 2);
}

/* reschedule inside the block (cm.reschedule): an earlier deadline fires,
 * CORO_NO_DEADLINE disables it */
struct resched {
    coro_frame co;
    coro_timeout_op to;
    int disable, err, rc;
};

static CORO_FN(resched_main)
{
    struct resched *self = CORO_SELF(struct resched);
    CORO_BEGIN();
    CORO_TRY {
        CORO_WITH_TIMEOUT(&self->to, self->disable ? 0.01 : LONG) {
            self->rc = coro_timeout_reschedule(
                &self->to, self->disable ? CORO_NO_DEADLINE : coro_loop_time_ns(NULL) + 10000000);
            CORO_SLEEP(0.03);
        } CORO_WITH_END;
    } CORO_EXCEPT(self->err) {
    } CORO_TRY_END;
    self->rc = self->rc ? self->rc : coro_timeout_reschedule(&self->to, 0); /* exited: refused */
    CORO_END();
}

static void test_timeout_reschedule(void **state)
{
    (void)state;
    struct resched m;
    for (int disable = 0; disable < 2; disable++) {
        memset(&m, 0, sizeof m);
        coro_frame_init(&m.co, resched_main);
        m.disable = disable;
        assert_int_equal(run_root(&m.co, NULL), 0);
        assert_int_equal(m.err, disable ? 0 : CORO_ETIMEDOUT);
        assert_int_equal(m.rc, CORO_ESTATE);
    }
}

/* timeout_at in the past: the block's first await times out */
struct at_main {
    coro_frame co;
    coro_timeout_op to;
    int err;
};

static CORO_FN(at_step)
{
    struct at_main *self = CORO_SELF(struct at_main);
    CORO_BEGIN();
    CORO_TRY {
        CORO_WITH_TIMEOUT_AT(&self->to, coro_loop_time_ns(NULL) - 1000) {
            CORO_SLEEP(0);
        } CORO_WITH_END;
    } CORO_EXCEPT(self->err) {
    } CORO_TRY_END;
    CORO_END();
}

static void test_timeout_at_past(void **state)
{
    (void)state;
    struct at_main m;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, at_step);
    assert_int_equal(run_root(&m.co, NULL), 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
}

/* a scope inside CORO_FINALLY keeps the outcome being returned (it lives
 * in the frame word the scope chain uses) */
struct fin {
    coro_frame co;
    coro_timeout_op to;
    int raise_in_block;
};

static CORO_FN(fin_step)
{
    struct fin *self = CORO_SELF(struct fin);
    CORO_BEGIN();
    CORO_RETURN(coro_int(1234567));
    CORO_FINALLY
    CORO_WITH_TIMEOUT(&self->to, LONG) {
        CORO_SLEEP(0);
        if (self->raise_in_block)
            CORO_RAISE(E2);
    } CORO_WITH_END;
    CORO_END();
}

static void test_scope_inside_finally(void **state)
{
    (void)state;
    struct fin m;
    coro_value v;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, fin_step);
    assert_int_equal(run_root(&m.co, &v), 0);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 1234567);
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, fin_step);
    m.raise_in_block = 1;
    assert_int_equal(run_root(&m.co, &v), E2); /* an error in finally replaces */
}

/* a failed entry raises before the block, in the enclosing handler: outside
 * a task (a generator), a NaN */
struct bad_entry {
    coro_frame co;
    coro_timeout_op to;
    double secs;
    int err, ran;
};

static CORO_FN(bad_entry_step)
{
    struct bad_entry *self = CORO_SELF(struct bad_entry);
    CORO_BEGIN();
    CORO_TRY {
        CORO_WITH_TIMEOUT(&self->to, self->secs) {
            self->ran = 1;
        } CORO_WITH_END;
    } CORO_EXCEPT(self->err) {
    } CORO_TRY_END;
    CORO_YIELD(coro_int(self->err));
    CORO_END();
}

static void test_timeout_bad_entry(void **state)
{
    (void)state;
    struct bad_entry b;
    coro_gen g;
    coro_value v;
    memset(&b, 0, sizeof b);
    coro_frame_init(&b.co, bad_entry_step);
    b.secs = 1.0;
    assert_int_equal(coro_gen_init(&g, &b.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(v.u.i, CORO_ESTATE); /* "Timeout should be used inside a task" */
    assert_int_equal(b.ran, 0);
    assert_int_equal(coro_gen_next(&g, &v), 0);

    memset(&b, 0, sizeof b);
    coro_frame_init(&b.co, bad_entry_step);
    b.secs = NAN;
    assert_int_equal(coro_gen_init(&g, &b.co), 0);
    assert_int_equal(coro_gen_next(&g, &v), 1);
    assert_int_equal(v.u.i, CORO_EINVAL);
    assert_int_equal(b.ran, 0);
    assert_int_equal(coro_gen_next(&g, &v), 0);
}

/* ---- lazy arming: a scope arms its timer only once its body suspends ---- */

struct lazy {
    coro_frame co;
    coro_timeout_op to;
    coro_handle h;
    int64_t when;
    int suspend, err, timers_in_body, expired_seen, spins;
};

static int saw_expired(void *arg)
{
    struct lazy *self = arg;
    self->expired_seen = coro_timeout_expired(&self->to) ? 1 : -1;
    return 0;
}

static CORO_FN(lazy_step)
{
    struct lazy *self = CORO_SELF(struct lazy);
    coro_loop *loop = coro_get_running_loop();
    CORO_BEGIN();
    CORO_TRY {
        CORO_WITH_TIMEOUT_AT(&self->to, self->when) {
            self->timers_in_body = (int)(loop->heap_len - loop->heap_dead);
            if (self->suspend == 1) { /* a timer due at the same time, armed later */
                coro_handle_init(&self->h);
                coro_call_at(loop, &self->h, self->when, saw_expired, self);
                CORO_SLEEP(LONG);
            }
            while (self->suspend == 2) { /* busy, yielding with sleep(0) only */
                self->spins++;
                CORO_SLEEP(0);
            }
        } CORO_WITH_END;
    } CORO_EXCEPT(self->err) {
    } CORO_TRY_END;
    CORO_END();
}

static void test_timeout_arms_lazily(void **state)
{
    (void)state;
    struct lazy m;
    /* a body that never suspends arms no timer */
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, lazy_step);
    m.when = INT64_MAX / 2;
    assert_int_equal(run_root(&m.co, NULL), 0);
    assert_int_equal(m.timers_in_body, 0);
    assert_int_equal(m.err, 0);

    /* armed at the suspension, in the place its entry took: at an equal
     * deadline it fires before a timer the body armed after the entry */
    coro_loop loop;
    coro_task t;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, lazy_step);
    m.suspend = 1;
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    m.when = coro_loop_time_ns(&loop) + 50000000;
    assert_int_equal(coro_task_init(&t, &loop, &m.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_int_equal(m.expired_seen, 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* a body that only ever yields with sleep(0) still times out (real time:
 * the ready queue never empties, so virtual time would never move) */
static void test_timeout_busy_body_times_out(void **state)
{
    (void)state;
    struct lazy m;
    coro_loop loop;
    coro_task t;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, lazy_step);
    m.suspend = 2;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    m.when = coro_loop_time_ns(&loop) + 10000000;
    assert_int_equal(coro_task_init(&t, &loop, &m.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    assert_true(m.spins > 1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- lock and semaphore ---- */

struct locker {
    coro_frame co;
    coro_lock *lock;
    coro_semaphore *sem;
    coro_with_lock_op wl;
    coro_with_semaphore_op ws;
    int id, how, release_inside, err, locked_after;
    double hold;
    tlog *log;
};

static CORO_FN(locker_step)
{
    struct locker *self = CORO_SELF(struct locker);
    CORO_BEGIN();
    CORO_TRY {
        if (self->lock) {
            CORO_WITH_LOCK(&self->wl, self->lock) {
                tlog_add(self->log, self->id);
                if (self->release_inside)
                    coro_lock_release(self->lock);
                CORO_SLEEP(self->hold);
                if (self->how == HOW_RAISE)
                    CORO_RAISE(E1);
                if (self->how == HOW_RETURN)
                    CORO_RETURN(coro_int(self->id));
                if (self->how == HOW_BREAK)
                    break;
                tlog_add(self->log, 10 + self->id);
            } CORO_WITH_END;
        } else {
            CORO_WITH_SEMAPHORE(&self->ws, self->sem) {
                tlog_add(self->log, self->id);
                CORO_SLEEP(self->hold);
                if (self->how == HOW_RAISE)
                    CORO_RAISE(E1);
                tlog_add(self->log, 10 + self->id);
            } CORO_WITH_END;
        }
    } CORO_EXCEPT(self->err) {
        tlog_add(self->log, -self->id);
    } CORO_TRY_END;
    self->locked_after = self->lock ? coro_lock_locked(self->lock) : coro_semaphore_value(self->sem);
    CORO_END();
}

static void locker_init(struct locker *k, int id, coro_lock *l, coro_semaphore *s, double hold,
                        int how, tlog *log)
{
    memset(k, 0, sizeof *k);
    coro_frame_init(&k->co, locker_step);
    k->id = id;
    k->lock = l;
    k->sem = s;
    k->hold = hold;
    k->how = how;
    k->log = log;
}

/* three tasks take the lock in turn; it is released however each block
 * ends (off the end, a raise, a return, a break); a task cancelled while
 * inside releases it too */
static void test_lock_released_every_way(void **state)
{
    (void)state;
    static const int hows[] = { HOW_END, HOW_RAISE, HOW_RETURN, HOW_BREAK };
    for (unsigned h = 0; h < sizeof hows / sizeof hows[0]; h++) {
        coro_loop loop;
        coro_lock lock;
        struct locker k[3];
        coro_task t[3];
        tlog log = { 0 };
        assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
        assert_int_equal(coro_lock_init(&lock, &loop), 0);
        for (int i = 0; i < 3; i++) {
            locker_init(&k[i], i + 1, &lock, NULL, 0.005, i == 0 ? hows[h] : HOW_END, &log);
            assert_int_equal(coro_task_init(&t[i], &loop, &k[i].co), 0);
        }
        assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t[2])), 0);
        assert_int_equal(coro_lock_locked(&lock), 0);
        if (hows[h] == HOW_RAISE)
            TLOG_EXPECT(&log, 1, -1, 2, 12, 3, 13);
        else if (hows[h] == HOW_END)
            TLOG_EXPECT(&log, 1, 11, 2, 12, 3, 13);
        else
            TLOG_EXPECT(&log, 1, 2, 12, 3, 13);
        assert_int_equal(k[0].err, hows[h] == HOW_RAISE ? E1 : 0);
        assert_int_equal(coro_loop_close(&loop), 0);
    }
}

static void test_lock_cancelled_inside_and_while_queued(void **state)
{
    (void)state;
    coro_loop loop;
    coro_lock lock;
    struct locker k[3];
    coro_task t[3];
    coro_handle h1, h2;
    tlog log = { 0 };
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    assert_int_equal(coro_lock_init(&lock, &loop), 0);
    locker_init(&k[0], 1, &lock, NULL, LONG, HOW_END, &log);
    locker_init(&k[1], 2, &lock, NULL, 0, HOW_END, &log);
    locker_init(&k[2], 3, &lock, NULL, 0, HOW_END, &log);
    for (int i = 0; i < 3; i++)
        assert_int_equal(coro_task_init(&t[i], &loop, &k[i].co), 0);
    coro_handle_init(&h1);
    coro_handle_init(&h2);
    /* task 2 is cancelled while queued for the lock (the block never runs),
     * task 1 while holding it */
    assert_int_equal(coro_call_later(&loop, &h2, 0.005, cancel_cb, &t[1]), 0);
    assert_int_equal(coro_call_later(&loop, &h1, 0.01, cancel_cb, &t[0]), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t[2])), 0);
    TLOG_EXPECT(&log, 1, -2, -1, 3, 13);
    assert_int_equal(k[1].err, CORO_ECANCELLED);
    assert_int_equal(k[0].err, CORO_ECANCELLED);
    assert_int_equal(coro_lock_locked(&lock), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* the block released the lock itself: the exit's release is refused and
 * raises CORO_ESTATE (asyncio's RuntimeError from __aexit__) */
static void test_lock_released_inside(void **state)
{
    (void)state;
    coro_lock lock;
    coro_loop loop;
    struct locker k;
    coro_task t;
    tlog log = { 0 };
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    assert_int_equal(coro_lock_init(&lock, &loop), 0);
    locker_init(&k, 1, &lock, NULL, 0, HOW_END, &log);
    k.release_inside = 1;
    assert_int_equal(coro_task_init(&t, &loop, &k.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(k.err, CORO_ESTATE);
    TLOG_EXPECT(&log, 1, 11, -1);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* a semaphore of 2: two blocks run at once, the third waits; a raise
 * inside still gives the permit back */
static void test_semaphore_scope(void **state)
{
    (void)state;
    coro_loop loop;
    coro_semaphore sem;
    struct locker k[3];
    coro_task t[3];
    tlog log = { 0 };
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    assert_int_equal(coro_semaphore_init(&sem, &loop, 2), 0);
    for (int i = 0; i < 3; i++) {
        locker_init(&k[i], i + 1, NULL, &sem, 0.005 * (i + 1), i == 0 ? HOW_RAISE : HOW_END, &log);
        assert_int_equal(coro_task_init(&t[i], &loop, &k[i].co), 0);
    }
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t[2])), 0);
    TLOG_EXPECT(&log, 1, 2, -1, 3, 12, 13);
    assert_int_equal(coro_semaphore_value(&sem), 2);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* NULL arguments: the acquire's await fails with CORO_EINVAL before the
 * block */
static void test_lock_null(void **state)
{
    (void)state;
    coro_semaphore *none = NULL;
    struct locker k;
    tlog log = { 0 };
    locker_init(&k, 1, NULL, none, 0, HOW_END, &log);
    assert_int_equal(run_root(&k.co, NULL), 0);
    assert_int_equal(k.err, CORO_EINVAL);
    TLOG_EXPECT(&log, -1);
}

/* ---- task group ---- */

struct kid {
    coro_frame co;
    double secs;
    int id, err;
    tlog *log;
};

static CORO_FN(kid_step)
{
    struct kid *self = CORO_SELF(struct kid);
    CORO_BEGIN();
    CORO_SLEEP(self->secs);
    if (self->err)
        CORO_RAISE(self->err);
    tlog_add(self->log, self->id);
    CORO_RETURN(coro_int(self->id));
    CORO_FINALLY
    tlog_add(self->log, 100 + self->id);
    CORO_END();
}

static coro_frame *kid(struct kid *k, int id, double secs, int err, tlog *log)
{
    coro_frame_init(&k->co, kid_step);
    k->id = id;
    k->secs = secs;
    k->err = err;
    k->log = log;
    return &k->co;
}

struct gmain {
    coro_frame co;
    coro_task_group_op tg;
    struct kid kids[3];
    coro_group_task tasks[3];
    double secs[3], body_secs;
    int errs[3], i, err, how, spawn_rc, cancelling;
    tlog log;
};

static CORO_FN(gmain_step)
{
    struct gmain *self = CORO_SELF(struct gmain);
    CORO_BEGIN();
    CORO_TRY {
        CORO_WITH_TASK_GROUP(&self->tg) {
            for (self->i = 0; self->i < 3; self->i++)
                coro_task_group_start(&self->tg, &self->tasks[self->i],
                                      kid(&self->kids[self->i], self->i + 1, self->secs[self->i],
                                          self->errs[self->i], &self->log));
            CORO_SLEEP(self->body_secs);
            tlog_add(&self->log, 40);
            if (self->how == HOW_RAISE)
                CORO_RAISE(E2);
            if (self->how == HOW_RETURN)
                CORO_RETURN(coro_int(77));
        } CORO_WITH_END;
        tlog_add(&self->log, 50);
    } CORO_EXCEPT(self->err) {
        tlog_add(&self->log, 60);
    } CORO_TRY_END;
    self->spawn_rc = coro_task_group_spawn(&self->tg, kid(&self->kids[0], 9, 0, 0, &self->log), NULL);
    self->cancelling = coro_task_cancelling(coro_current_task(NULL));
    CORO_RETURN(coro_int(5));
    CORO_END();
}

static void gmain_init(struct gmain *m, double s1, double s2, double s3, double body, int how)
{
    memset(m, 0, sizeof *m);
    coro_frame_init(&m->co, gmain_step);
    m->secs[0] = s1;
    m->secs[1] = s2;
    m->secs[2] = s3;
    m->body_secs = body;
    m->how = how;
}

/* the block ends first; the group waits for all three children at
 * CORO_WITH_END, then the body goes on; no more tasks once it exited */
static void test_group_waits(void **state)
{
    (void)state;
    struct gmain m;
    coro_value v;
    gmain_init(&m, 0.015, 0.005, 0.01, 0, HOW_END);
    assert_int_equal(run_root(&m.co, &v), 0);
    TLOG_EXPECT(&m.log, 40, 2, 102, 3, 103, 1, 101, 50);
    assert_int_equal(m.err, 0);
    assert_int_equal(m.spawn_rc, CORO_ESTATE);
    assert_int_equal(v.u.i, 5);
    for (int i = 0; i < 3; i++)
        assert_true(coro_task_done(&m.tasks[i].task));
}

/* a child fails: the siblings and the block are cancelled, the group
 * raises that error at CORO_WITH_END; the task is not left cancelled */
static void test_group_child_fails(void **state)
{
    (void)state;
    struct gmain m;
    gmain_init(&m, LONG, 0.005, LONG, LONG, HOW_END);
    m.errs[1] = E1;
    assert_int_equal(run_root(&m.co, NULL), 0);
    TLOG_EXPECT(&m.log, 102, 101, 103, 60);
    assert_int_equal(m.err, E1);
    assert_int_equal(coro_task_group_error_count(&m.tg), 1);
    assert_int_equal(m.cancelling, 0);
}

/* the block raises: the children are cancelled and waited for, the
 * block's error comes out */
static void test_group_block_raises(void **state)
{
    (void)state;
    struct gmain m;
    gmain_init(&m, LONG, LONG, 0, 0.005, HOW_RAISE);
    assert_int_equal(run_root(&m.co, NULL), 0);
    TLOG_EXPECT(&m.log, 3, 103, 40, 101, 102, 60);
    assert_int_equal(m.err, E2);
}

/* the block returns: the group still waits for the children on the way
 * out, and the return value survives */
static void test_group_block_returns(void **state)
{
    (void)state;
    struct gmain m;
    coro_value v;
    gmain_init(&m, 0.005, 0.01, 0, 0, HOW_RETURN);
    assert_int_equal(run_root(&m.co, &v), 0);
    TLOG_EXPECT(&m.log, 40, 3, 103, 1, 101, 2, 102);
    assert_int_equal(v.tag, CORO_INT);
    assert_int_equal(v.u.i, 77);
}

/* a cancel from outside: every child and the block are cancelled, and the
 * group raises CORO_ECANCELLED */
static void test_group_cancelled_from_outside(void **state)
{
    (void)state;
    struct gmain m;
    coro_loop loop;
    coro_task t;
    coro_handle h;
    gmain_init(&m, LONG, LONG, LONG, LONG, HOW_END);
    assert_int_equal(coro_loop_init(&loop, &virtual_time), 0);
    assert_int_equal(coro_task_init(&t, &loop, &m.co), 0);
    coro_handle_init(&h);
    assert_int_equal(coro_call_later(&loop, &h, 0.01, cancel_cb, &t), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    TLOG_EXPECT(&m.log, 101, 102, 103, 60);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* a group nested in a timeout: the deadline cancels the block and the
 * children, and comes out as TimeoutError */
struct gt {
    coro_frame co;
    coro_timeout_op to;
    coro_task_group_op tg;
    struct kid kids[2];
    int err;
    tlog log;
};

static CORO_FN(gt_step)
{
    struct gt *self = CORO_SELF(struct gt);
    CORO_BEGIN();
    CORO_TRY {
        CORO_WITH_TIMEOUT(&self->to, 0.01) {
            CORO_WITH_TASK_GROUP(&self->tg) {
                coro_task_group_spawn(&self->tg, kid(&self->kids[0], 1, LONG, 0, &self->log), NULL);
                coro_task_group_spawn(&self->tg, kid(&self->kids[1], 2, LONG, 0, &self->log), NULL);
            } CORO_WITH_END;
        } CORO_WITH_END;
    } CORO_EXCEPT(self->err) {
    } CORO_TRY_END;
    CORO_END();
}

static void test_group_inside_timeout(void **state)
{
    (void)state;
    struct gt m;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, gt_step);
    assert_int_equal(run_root(&m.co, NULL), 0);
    assert_int_equal(m.err, CORO_ETIMEDOUT);
    TLOG_EXPECT(&m.log, 101, 102);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_expires),
        cmocka_unit_test(test_timeout_not_reached),
        cmocka_unit_test(test_timeout_return_raise_break),
        cmocka_unit_test(test_timeout_foreign_cancel),
        cmocka_unit_test(test_timeout_nested),
        cmocka_unit_test(test_timeout_reschedule),
        cmocka_unit_test(test_timeout_at_past),
        cmocka_unit_test(test_scope_inside_finally),
        cmocka_unit_test(test_timeout_bad_entry),
        cmocka_unit_test(test_timeout_arms_lazily),
        cmocka_unit_test(test_timeout_busy_body_times_out),
        cmocka_unit_test(test_lock_released_every_way),
        cmocka_unit_test(test_lock_cancelled_inside_and_while_queued),
        cmocka_unit_test(test_lock_released_inside),
        cmocka_unit_test(test_semaphore_scope),
        cmocka_unit_test(test_lock_null),
        cmocka_unit_test(test_group_waits),
        cmocka_unit_test(test_group_child_fails),
        cmocka_unit_test(test_group_block_raises),
        cmocka_unit_test(test_group_block_returns),
        cmocka_unit_test(test_group_cancelled_from_outside),
        cmocka_unit_test(test_group_inside_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
