/*
 * fuzz/fuzz_sched.c - the scheduler, model-checked: tasks, cancellation,
 * futures, a Lock, a Queue, sleeps and wait_for, on one loop.
 *
 * Input: [cfg][op args...]... decoded as a program for a driver that works
 * between loop passes:
 *   cfg      the queue's maxsize: cfg & 3 (0: unbounded); the semaphore's
 *            permits: 1 + ((cfg >> 2) & 3)
 *   op % 11  0 spawn a task: 3 action bytes follow (below)
 *            1 cancel task arg % ntasks     2 set_result F[arg % 4]
 *            3 cancel F[arg % 4]            4 run one loop pass
 *            5 run for (arg % 4) * 100 us   6 put_nowait an item
 *            7 get_nowait                   8 set_error F[arg % 4]
 *            9 set the event               10 clear the event
 *            every op but 0 takes one arg byte; at most 16 tasks, 96 ops
 *   action   kind = b % 14, p = b / 14 (0-18):
 *            0 sleep p * 50 us              1 yield (p % 4) + 1 times
 *            2 await F[p % 4]               3 acquire the lock, hold it for
 *                                              (p % 4) yields, release it
 *            4 put an item (await)          5 get an item (await)
 *            6 wait_for(a sleep of (p >> 2) * 200 us, (p & 3) * 150 us)
 *            7 wait_for_future(F[p & 3], (p >> 2) * 100 us)
 *            8 await task p % id (one spawned earlier; none for task 0)
 *            9 acquire the semaphore, hold it (p % 4) yields, release it
 *           10 wait for the event
 *           11 timeout((p & 3) * 150 us): a sleep of (p >> 2) * 200 us
 *           12 join the queue
 *           13 gather(F[p & 3], and F[(p >> 2) & 3], or for p >= 16 (in a
 *              task but the first) the task p % id), with return_errors
 *              when p is odd
 *            A get (awaited or not) is followed by task_done.
 * After the program the driver sets every pending future and the event,
 * shuts the queue down (waiting getters and putters fail with
 * CORO_ESHUTDOWN) and drains it (so joiners wake), and runs the loop
 * until every task is done, with a
 * watchdog: a task still pending after 5 s is a lost wake-up. A task fails
 * only with the cancel error (it lets every other error go and goes on),
 * and releases the lock or permit it holds in its cleanup section.
 *
 * Checks (asyncio's invariants, SEMANTICS.md):
 *   - every task ends, and its done callback runs exactly once, after it is
 *     done; coro_task_cancel returns 1 exactly when the task is not done,
 *     and a task whose cancel returned 1 ends cancelled (these tasks never
 *     swallow the cancel error), unless a gather used the request up (a
 *     child's error won, as in asyncio), in this task or in a task it
 *     awaited (the request goes down the await chain);
 *   - the lock is held by one task at a time, the semaphore's permits by at
 *     most its value, and acquisitions of each happen in the order the
 *     acquire calls were made, skipping those cancelled (FIFO, no barging:
 *     SEMANTICS 33, 35);
 *   - an event wait returns only once the event was set (SEMANTICS 34);
 *   - awaiting a task gives its outcome, and the task is done by then;
 *   - gather completes with every slot holding its future's outcome, or
 *     fails with the error of a future that failed (SEMANTICS 22-24);
 *   - queue items come out in the order they went in, each once: every get
 *     (awaited or not) returns the oldest item not yet got, and after the
 *     shutdown what is left drains in order (SEMANTICS 37, 38); a join
 *     returns only once every item put had its task_done (then or since
 *     the join began: a woken joiner stays woken), task_done never fails
 *     (SEMANTICS 39);
 *   - a sleep, a wait_for or a timeout scope never ends before its time,
 *     and a timeout reports CORO_ETIMEDOUT only after its deadline
 *     (SEMANTICS 6, 29, 32);
 *   - coro_loop_close leaves no allocation behind (a counting allocator on
 *     coro_loop_options.alloc), and every free passes the size allocated;
 *   - nothing reaches the exception handler.
 */
#include "coro.h"
#include "fuzz/fuzz.h"

#define MAX_TASKS 16
#define MAX_DRIVER_OPS 96
#define NFUT 4
#define NACTS 3
#define MAX_ITEMS 4096
#define US (1000LL)

typedef struct trec {
    struct ctx *x;
    coro_task *t;
    int done_calls;
    int cancel_ok;    /* a coro_task_cancel returned 1 */
    int cancel_taken; /* a gather took a cancel request (kinds 8, 13) */
    uint8_t acts[NACTS];
} trec;

typedef struct ctx {
    coro_loop loop;
    talloc alloc;
    coro_lock lock;
    coro_semaphore sem;
    coro_event ev;
    coro_queue q;
    coro_future f[NFUT];
    coro_future all_done;
    trec tasks[MAX_TASKS];
    int ntasks, ndone;
    int holder;            /* the task holding the lock, or -1 */
    long tickets;          /* acquire calls so far */
    long last_acquired;    /* the ticket of the last acquisition */
    int permits, sem_held; /* the semaphore's value, and permits held */
    long sem_tickets, sem_last;
    int ev_sets; /* times the event was set */
    int64_t put_log[MAX_ITEMS];
    long nput, ngot;
    long zero_epoch; /* times task_done brought the unfinished count to 0 */
    int64_t next_item;
    int watchdog_fired;
    int finishing; /* the program is over: all_done completes with the last task */
} ctx;

static int64_t now(ctx *x) { return coro_loop_time_ns(&x->loop); }

static void on_exception(coro_loop *loop, const coro_exception_context *c, void *arg)
{
    (void)loop;
    (void)arg;
    FUZZ_CHECK(0, "the exception handler was called: %s (error %d)", c->message, c->error);
}

/* ---- queue bookkeeping ---- */

static void log_put(ctx *x, int64_t item)
{
    FUZZ_CHECK(x->nput < MAX_ITEMS, "too many items");
    x->put_log[x->nput++] = item;
}

static void log_get(ctx *x, coro_value v)
{
    FUZZ_CHECK(v.tag == CORO_INT, "an item of tag %d", v.tag);
    FUZZ_CHECK(x->ngot < x->nput, "got item %lld, more than were put (%ld)", (long long)v.u.i,
               x->nput);
    FUZZ_CHECK(v.u.i == x->put_log[x->ngot], "got item %lld, the oldest is %lld (get %ld)",
               (long long)v.u.i, (long long)x->put_log[x->ngot], x->ngot);
    x->ngot++;
    int rc = coro_queue_task_done(&x->q);
    FUZZ_CHECK(rc == 0, "task_done after get %ld: %d", x->ngot, rc);
    if (x->ngot == x->nput)
        x->zero_epoch++;
}

/* ---- a child coroutine: sleep, and check the time taken ---- */

typedef struct sleeper {
    coro_frame co;
    ctx *x;
    int64_t ns, t0;
} sleeper;

static CORO_FN(sleeper_step)
{
    sleeper *self = CORO_SELF(sleeper);
    CORO_BEGIN();
    self->t0 = now(self->x);
    CORO_SLEEP_NS(self->ns);
    FUZZ_CHECK(now(self->x) - self->t0 >= self->ns, "a sleep of %lld ns ended after %lld",
               (long long)self->ns, (long long)(now(self->x) - self->t0));
    CORO_RETURN(coro_int(7));
    CORO_END();
}

/* ---- the tasks ---- */

typedef struct actor {
    coro_frame co;
    ctx *x;
    int id, i, k, err, held, sem_held, kind, param;
    long ticket;
    int64_t t0, ns;
    coro_future *fut;
    void *gres; /* gather's CORO_PTR result */
    union {
        coro_lock_acquire_op acq;
        coro_queue_put_op put;
        coro_queue_get_op get;
        coro_queue_join_op join;
        coro_wait_for_op wf;
        coro_semaphore_acquire_op sacq;
        coro_event_wait_op ew;
        coro_timeout_op to;
        CORO_GATHER_OP(g, 2);
    } u;
    sleeper inner;
} actor;

/* A cancel error propagates (the task ends cancelled); others are let go. */
#define ACTOR_AWAIT(what)                 \
    do {                                  \
        CORO_AWAIT_ERR(what, self->err);  \
        if (self->err == CORO_ECANCELLED) \
            CORO_RAISE(CORO_ECANCELLED);  \
    } while (0)

static void took_lock(ctx *x, actor *self)
{
    FUZZ_CHECK(x->holder == -1, "task %d took the lock held by task %d", self->id, x->holder);
    FUZZ_CHECK(self->ticket > x->last_acquired,
               "task %d took the lock with ticket %ld after ticket %ld (not FIFO)", self->id,
               self->ticket, x->last_acquired);
    x->last_acquired = self->ticket;
    x->holder = self->id;
    self->held = 1;
}

static void drop_lock(ctx *x, actor *self)
{
    FUZZ_CHECK(x->holder == self->id, "task %d releases a lock held by %d", self->id, x->holder);
    x->holder = -1;
    self->held = 0;
    int rc = coro_lock_release(&x->lock);
    FUZZ_CHECK(rc == 0, "release: %d", rc);
}

static void took_permit(ctx *x, actor *self)
{
    FUZZ_CHECK(x->sem_held < x->permits, "task %d took permit %d of %d", self->id, x->sem_held + 1,
               x->permits);
    FUZZ_CHECK(self->ticket > x->sem_last,
               "task %d took a permit with ticket %ld after ticket %ld (not FIFO)", self->id,
               self->ticket, x->sem_last);
    x->sem_last = self->ticket;
    x->sem_held++;
    self->sem_held = 1;
}

static void drop_permit(ctx *x, actor *self)
{
    x->sem_held--;
    self->sem_held = 0;
    int rc = coro_semaphore_release(&x->sem);
    FUZZ_CHECK(rc == 0, "semaphore release: %d", rc);
}

/* gather's outcome against its futures (SEMANTICS 22-24). */
static void check_gather(actor *self, int err, int return_errors)
{
    coro_future **f = self->u.g.futs;
    if (err) {
        int found = 0;
        FUZZ_CHECK(!return_errors, "gather with return_errors failed: %d", err);
        for (int i = 0; i < 2; i++)
            found |= coro_future_done(f[i]) && coro_future_error(f[i]) == err;
        FUZZ_CHECK(found, "gather failed with %d, which no child failed with", err);
        return;
    }
    FUZZ_CHECK(self->gres == (void *)self->u.g.results, "gather's result is not its results array");
    for (int i = 0; i < 2; i++) {
        coro_value v;
        coro_value got = self->u.g.results[i];
        FUZZ_CHECK(coro_future_done(f[i]), "gather returned with child %d pending", i);
        int rc = coro_future_result(f[i], &v);
        if (rc)
            FUZZ_CHECK(got.tag == CORO_ERROR && got.u.i == rc, "slot %d: tag %d, child error %d", i,
                       got.tag, rc);
        else
            FUZZ_CHECK(got.tag == v.tag && got.u.i == v.u.i, "slot %d: tag %d, child tag %d", i,
                       got.tag, v.tag);
        FUZZ_CHECK(return_errors || !rc, "gather succeeded with child %d failed (%d)", i, rc);
    }
}

static void init_sleeper(actor *self, int64_t ns)
{
    memset(&self->inner, 0, sizeof self->inner);
    coro_frame_init(&self->inner.co, sleeper_step);
    self->inner.x = self->x;
    self->inner.ns = ns;
}

static CORO_FN(actor_step)
{
    actor *self = CORO_SELF(actor);
    ctx *x = self->x;
    CORO_BEGIN();
    for (self->i = 0; self->i < NACTS; self->i++) {
        self->kind = x->tasks[self->id].acts[self->i] % 14;
        self->param = x->tasks[self->id].acts[self->i] / 14;
        if (self->kind == 0) {
            self->ns = self->param * 50 * US;
            self->t0 = now(x);
            CORO_SLEEP_NS(self->ns);
            FUZZ_CHECK(now(x) - self->t0 >= self->ns, "slept %lld of %lld ns",
                       (long long)(now(x) - self->t0), (long long)self->ns);
        } else if (self->kind == 1) {
            for (self->k = self->param % 4; self->k >= 0; self->k--)
                CORO_YIELD(coro_none());
        } else if (self->kind == 2) {
            ACTOR_AWAIT(&x->f[self->param % NFUT]);
        } else if (self->kind == 3) {
            self->ticket = ++x->tickets;
            CORO_AWAIT(coro_lock_acquire(&self->u.acq, &x->lock));
            took_lock(x, self);
            for (self->k = self->param % 4; self->k > 0; self->k--)
                CORO_YIELD(coro_none());
            drop_lock(x, self);
        } else if (self->kind == 4) {
            self->t0 = x->next_item++; /* the item: unique, logged once it is in */
            ACTOR_AWAIT(coro_queue_put(&self->u.put, &x->q, coro_int(self->t0)));
            if (self->err == 0)
                log_put(x, self->t0);
            else
                FUZZ_CHECK(self->err == CORO_ESHUTDOWN, "put: %d", self->err);
        } else if (self->kind == 5) {
            ACTOR_AWAIT(coro_queue_get(&self->u.get, &x->q));
            if (self->err == 0)
                log_get(x, CORO_RESULT);
            else
                FUZZ_CHECK(self->err == CORO_ESHUTDOWN, "get: %d", self->err);
        } else if (self->kind == 6) {
            init_sleeper(self, (self->param >> 2) * 200 * US);
            self->ns = (self->param & 3) * 150 * US;
            self->t0 = now(x);
            ACTOR_AWAIT(coro_wait_for(&self->u.wf, (double)self->ns * 1e-9, &self->inner.co));
            if (self->err == CORO_ETIMEDOUT)
                FUZZ_CHECK(now(x) - self->t0 >= self->ns, "wait_for timed out after %lld of %lld",
                           (long long)(now(x) - self->t0), (long long)self->ns);
            else
                FUZZ_CHECK(self->err == 0 && CORO_RESULT.u.i == 7, "wait_for: %d", self->err);
        } else if (self->kind == 7) {
            self->fut = &x->f[self->param & 3];
            self->ns = (self->param >> 2) * 100 * US;
            self->t0 = now(x);
            ACTOR_AWAIT(coro_wait_for_future(&self->u.wf, (double)self->ns * 1e-9, self->fut));
            FUZZ_CHECK(coro_future_done(self->fut), "wait_for_future left its future pending");
            if (self->err == CORO_ETIMEDOUT)
                FUZZ_CHECK(now(x) - self->t0 >= self->ns, "wait_for_future timed out early");
        } else if (self->kind == 8) {
            if (self->id == 0)
                continue;
            self->k = self->param % self->id; /* earlier tasks only: no cycle */
            ACTOR_AWAIT(x->tasks[self->k].t);
            /* A cancel of this task went down to the awaited one (asyncio:
             * the waiter is cancelled instead); if that one used it up (a
             * gather, above), this one goes on too. */
            if (coro_task_cancelling(x->tasks[self->id].t) > 0)
                x->tasks[self->id].cancel_taken = 1;
            FUZZ_CHECK(coro_task_done(x->tasks[self->k].t), "awaited task %d is pending", self->k);
            FUZZ_CHECK(self->err == coro_task_result(x->tasks[self->k].t, NULL),
                       "awaiting task %d gave %d, its outcome is %d", self->k, self->err,
                       coro_task_result(x->tasks[self->k].t, NULL));
        } else if (self->kind == 9) {
            self->ticket = ++x->sem_tickets;
            CORO_AWAIT(coro_semaphore_acquire(&self->u.sacq, &x->sem));
            took_permit(x, self);
            for (self->k = self->param % 4; self->k > 0; self->k--)
                CORO_YIELD(coro_none());
            drop_permit(x, self);
        } else if (self->kind == 10) {
            ACTOR_AWAIT(coro_event_wait(&self->u.ew, &x->ev));
            FUZZ_CHECK(self->err == 0 && x->ev_sets > 0, "event wait: %d after %d sets", self->err,
                       x->ev_sets);
        } else if (self->kind == 13) {
            self->u.g.futs[0] = &x->f[self->param & 3];
            if (self->param >= 16 && self->id > 0)
                self->u.g.futs[1] = coro_task_future(x->tasks[self->param % self->id].t);
            else
                self->u.g.futs[1] = &x->f[(self->param >> 2) & 3];
            ACTOR_AWAIT(CORO_GATHER(&self->u.g, self->param & 1 ? CORO_RETURN_ERRORS : 0));
            self->gres = self->err ? NULL : CORO_RESULT.u.p;
            /* A cancel that reached the gather when a child had already
             * failed (its callback not yet run) gives that child's error:
             * the request is used up, as asyncio's gather does when a child
             * fails before the cancel (_GatheringFuture.cancel returns True,
             * the first exception still wins). */
            if (self->err && coro_task_cancelling(x->tasks[self->id].t) > 0)
                x->tasks[self->id].cancel_taken = 1;
            check_gather(self, self->err, self->param & 1);
        } else if (self->kind == 12) {
            self->t0 = x->zero_epoch;
            ACTOR_AWAIT(coro_queue_join(&self->u.join, &x->q));
            FUZZ_CHECK(self->err == 0, "join: %d", self->err);
            FUZZ_CHECK(x->ngot == x->nput || x->zero_epoch > self->t0,
                       "join returned with %ld of %ld items done, none since it began", x->ngot,
                       x->nput);
        } else {
            init_sleeper(self, (self->param >> 2) * 200 * US);
            self->ns = (self->param & 3) * 150 * US;
            self->t0 = now(x);
            ACTOR_AWAIT(coro_timeout(&self->u.to, (double)self->ns * 1e-9, &self->inner.co));
            if (self->err == CORO_ETIMEDOUT)
                FUZZ_CHECK(now(x) - self->t0 >= self->ns, "timeout after %lld of %lld",
                           (long long)(now(x) - self->t0), (long long)self->ns);
            else
                FUZZ_CHECK(self->err == 0 && CORO_RESULT.u.i == 7, "timeout: %d", self->err);
        }
    }
    CORO_FINALLY
    if (self->held)
        drop_lock(x, self);
    if (self->sem_held)
        drop_permit(x, self);
    CORO_END();
}

/* The task's done callback: exactly once, after it is done. */
static void on_done(coro_future *f, void *arg)
{
    trec *r = arg;
    ctx *x = r->x;
    FUZZ_CHECK(coro_future_done(f), "a done callback before the task is done");
    r->done_calls++;
    FUZZ_CHECK(r->done_calls == 1, "a task's done callback ran %d times", r->done_calls);
    x->ndone++;
    if (x->finishing && x->ndone == x->ntasks)
        coro_future_set_result(&x->all_done, coro_none());
}

static void spawn(ctx *x, const uint8_t *acts)
{
    if (x->ntasks == MAX_TASKS)
        return;
    actor *a = CORO_FRAME_NEW(&x->loop, actor, actor_step);
    FUZZ_CHECK(a != NULL, "frame_new");
    trec *r = &x->tasks[x->ntasks];
    a->x = x;
    a->id = x->ntasks;
    r->x = x;
    memcpy(r->acts, acts, NACTS);
    r->t = coro_spawn(&x->loop, &a->co);
    FUZZ_CHECK(r->t != NULL, "spawn");
    FUZZ_CHECK(coro_future_add_done_callback(coro_task_future(r->t), on_done, r) == 0,
               "add_done_callback");
    x->ntasks++;
}

/* ---- driving the loop ---- */

static int stop_cb(void *arg)
{
    coro_loop_stop(arg);
    return 0;
}

static int watchdog_cb(void *arg)
{
    ctx *x = arg;
    x->watchdog_fired = 1;
    coro_loop_stop(&x->loop);
    return 0;
}

static void one_pass(ctx *x)
{
    coro_loop_stop(&x->loop);
    FUZZ_CHECK(coro_loop_run_forever(&x->loop) == 0, "run_forever");
}

static void run_for(ctx *x, int64_t ns)
{
    coro_handle h;
    coro_handle_init(&h);
    FUZZ_CHECK(coro_call_later(&x->loop, &h, (double)ns * 1e-9, stop_cb, &x->loop) == 0,
               "call_later");
    FUZZ_CHECK(coro_loop_run_forever(&x->loop) == 0, "run_forever");
    coro_handle_cancel(&h);
}

static void set_future(ctx *x, int k, int err)
{
    int was = coro_future_done(&x->f[k]);
    int rc = err ? coro_future_set_error(&x->f[k], err)
                 : coro_future_set_result(&x->f[k], coro_int(100 + k));
    FUZZ_CHECK(rc == (was ? CORO_ESTATE : 0), "set F%d: %d (done before: %d)", k, rc, was);
}

static void driver(ctx *x, const uint8_t *p, size_t n)
{
    int ops = 0;
    while (n > 0 && ops++ < MAX_DRIVER_OPS) {
        int op = p[0] % 11;
        if (op == 0) {
            uint8_t acts[NACTS] = { 0, 0, 0 };
            for (size_t i = 0; i < NACTS && i + 1 < n; i++)
                acts[i] = p[1 + i];
            spawn(x, acts);
            p += n < 1 + NACTS ? n : 1 + NACTS;
            n -= n < 1 + NACTS ? n : 1 + NACTS;
            continue;
        }
        uint8_t arg = n > 1 ? p[1] : 0;
        p += n > 1 ? 2 : 1;
        n -= n > 1 ? 2 : 1;
        if (op == 1) {
            if (x->ntasks == 0)
                continue;
            trec *r = &x->tasks[arg % x->ntasks];
            int done = coro_task_done(r->t);
            int rc = coro_task_cancel(r->t);
            FUZZ_CHECK(rc == !done, "cancel returned %d for a task %s", rc,
                       done ? "done" : "pending");
            if (rc)
                r->cancel_ok = 1;
        } else if (op == 2 || op == 8) {
            set_future(x, arg % NFUT, op == 8 ? CORO_EUSER - 1 : 0);
        } else if (op == 3) {
            int was = coro_future_done(&x->f[arg % NFUT]);
            FUZZ_CHECK(coro_future_cancel(&x->f[arg % NFUT]) == !was, "future cancel");
        } else if (op == 4) {
            one_pass(x);
        } else if (op == 5) {
            run_for(x, (arg % 4) * 100 * US);
        } else if (op == 9) {
            x->ev_sets++;
            FUZZ_CHECK(coro_event_set(&x->ev) == 0, "event_set");
        } else if (op == 10) {
            FUZZ_CHECK(coro_event_clear(&x->ev) == 0, "event_clear");
        } else if (op == 6) {
            int full = coro_queue_full(&x->q);
            int rc = coro_queue_put_nowait(&x->q, coro_int(x->next_item));
            FUZZ_CHECK(rc == (full ? CORO_EFULL : 0), "put_nowait: %d (full: %d)", rc, full);
            if (rc == 0)
                log_put(x, x->next_item);
            x->next_item++;
        } else {
            coro_value v;
            int empty = coro_queue_empty(&x->q);
            int rc = coro_queue_get_nowait(&x->q, &v);
            FUZZ_CHECK(rc == (empty ? CORO_EEMPTY : 0), "get_nowait: %d (empty: %d)", rc, empty);
            if (rc == 0)
                log_get(x, v);
        }
    }
}

static void finish(ctx *x)
{
    for (int k = 0; k < NFUT; k++)
        if (!coro_future_done(&x->f[k]))
            set_future(x, k, 0);
    x->ev_sets++;
    FUZZ_CHECK(coro_event_set(&x->ev) == 0, "event_set");
    FUZZ_CHECK(coro_queue_shutdown(&x->q, 0) == 0, "shutdown");
    /* what is left comes out in order, and joiners wake */
    for (;;) {
        coro_value v;
        int rc = coro_queue_get_nowait(&x->q, &v);
        if (rc != 0) {
            FUZZ_CHECK(rc == CORO_ESHUTDOWN, "draining: %d", rc);
            break;
        }
        log_get(x, v);
    }
    x->finishing = 1;
    if (x->ndone < x->ntasks) {
        coro_handle wd;
        coro_handle_init(&wd);
        FUZZ_CHECK(coro_call_later(&x->loop, &wd, 5.0, watchdog_cb, x) == 0, "call_later");
        int rc = coro_loop_run_until_complete(&x->loop, &x->all_done);
        coro_handle_cancel(&wd);
        if (rc != 0) {
            for (int i = 0; i < x->ntasks; i++)
                if (!coro_task_done(x->tasks[i].t))
                    fprintf(stderr, "task %d (actions %u %u %u) never ended, at line %d\n", i,
                            x->tasks[i].acts[0], x->tasks[i].acts[1], x->tasks[i].acts[2],
                            coro_task_resume_line(x->tasks[i].t));
            FUZZ_CHECK(0, "lost wake-up: %d of %d tasks ended (rc %d, watchdog %d)", x->ndone,
                       x->ntasks, rc, x->watchdog_fired);
        }
    }
    for (int i = 0; i < x->ntasks; i++) {
        trec *r = &x->tasks[i];
        FUZZ_CHECK(coro_task_done(r->t), "task %d pending", i);
        FUZZ_CHECK(r->done_calls == 1, "task %d: %d done callbacks", i, r->done_calls);
        if (r->cancel_ok && !r->cancel_taken)
            FUZZ_CHECK(coro_task_cancelled(r->t), "task %d was cancelled but ended with %d", i,
                       coro_task_result(r->t, NULL));
        int err = coro_task_result(r->t, NULL);
        FUZZ_CHECK(err == 0 || err == CORO_ECANCELLED, "task %d ended with %d", i, err);
    }
    FUZZ_CHECK(x->holder == -1 && !coro_lock_locked(&x->lock), "the lock is still held");
    FUZZ_CHECK(x->sem_held == 0 && coro_semaphore_value(&x->sem) == x->permits,
               "the semaphore has %d of %d permits", coro_semaphore_value(&x->sem), x->permits);
    FUZZ_CHECK(x->ngot == x->nput, "%ld items put, %ld got", x->nput, x->ngot);
    FUZZ_CHECK(coro_queue_fini(&x->q) == 0, "queue_fini");
    for (int i = 0; i < x->ntasks; i++)
        coro_task_release(x->tasks[i].t);
    one_pass(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ctx x;
    if (size < 1)
        return 0;
    memset(&x, 0, sizeof x);
    x.holder = -1;
    coro_loop_options o = talloc_options(&x.alloc); /* counted, debug off */
    FUZZ_CHECK(coro_loop_init(&x.loop, &o) == 0, "loop_init");
    coro_loop_set_exception_handler(&x.loop, on_exception, NULL);
    FUZZ_CHECK(coro_lock_init(&x.lock, &x.loop) == 0, "lock_init");
    x.permits = 1 + ((data[0] >> 2) & 3);
    FUZZ_CHECK(coro_bsemaphore_init(&x.sem, &x.loop, x.permits) == 0, "semaphore_init");
    FUZZ_CHECK(coro_event_init(&x.ev, &x.loop) == 0, "event_init");
    FUZZ_CHECK(coro_queue_init(&x.q, &x.loop, data[0] & 3) == 0, "queue_init");
    for (int k = 0; k < NFUT; k++)
        FUZZ_CHECK(coro_future_init(&x.f[k], &x.loop) == 0, "future_init");
    FUZZ_CHECK(coro_future_init(&x.all_done, &x.loop) == 0, "future_init");
    driver(&x, data + 1, size - 1);
    finish(&x);
    FUZZ_CHECK(coro_loop_close(&x.loop) == 0, "loop_close");
    FUZZ_CHECK(x.alloc.live == 0 && x.alloc.blocks == 0, "%zu bytes in %ld blocks left at close",
               x.alloc.live, x.alloc.blocks);
    FUZZ_CHECK(x.alloc.bad_osize == 0, "%ld frees with a wrong size", x.alloc.bad_osize);
    return 0;
}
