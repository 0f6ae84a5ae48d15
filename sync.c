/*
 * sync.c - asyncio/locks.py: Lock, Event, Condition, Semaphore,
 * BoundedSemaphore, Barrier, and `async with` for locks and semaphores.
 *
 * Every awaitable operation is an operation frame (coro_sync.h) whose step
 * function is written with the same CORO_ macros as user code, so an
 * acquire is a child coroutine awaited in the caller's task, and what
 * asyncio does in `try: await fut / finally: / except CancelledError:`
 * happens in the frame's CORO_FINALLY. The waiter (waitq.c) is embedded in
 * the frame: nothing here allocates. The mapping:
 *
 *   Lock.acquire        lock_acquire_step: the fast path when free and no
 *                       waiter is pending or woken; else queue and await
 *   Lock.release        coro_lock_release -> lock_wake_first
 *   Lock._wake_up_first lock_wake_first (skips cancelled waiters, which
 *                       asyncio leaves to their own except clause)
 *   except Cancelled    lock_acquire_cleanup: a woken-then-cancelled waiter
 *                       wakes the next one
 *   Event.set/clear/is_set/wait   coro_event_* / event_wait_step
 *   Condition.wait      cond_wait_step: release, await, re-acquire in a loop
 *                       that absorbs cancels, then raise the cancel
 *   Condition.wait_for  cond_wait_for_step
 *   Condition._notify   cond_notify (FIFO, skipping cancelled waiters)
 *   Semaphore.acquire   sem_acquire_step / sem_acquire_cleanup (the 3.12
 *                       fix: undo a permit given to a cancelled waiter,
 *                       then wake as many as there are permits)
 *   Semaphore.locked    sem_locked; _wake_up_next: sem_wake_next
 *   BoundedSemaphore.release   coro_semaphore_release with a bound
 *   Barrier.wait        barrier_wait_step: _block, count, _release or _wait,
 *                       and _exit in the cleanup
 *   Barrier.abort/reset coro_barrier_abort / coro_barrier_reset
 *   __aenter__/__aexit__ with_lock_step, with_sem_step (a body frame);
 *                        coro__with_*_open, with_*_exit (CORO_WITH_LOCK /
 *                        CORO_WITH_SEMAPHORE: the block inside the caller)
 *
 * Invariants:
 *   - asyncio keeps a woken waiter's future in the deque until its task
 *     runs, and that blocks the fast path of newcomers (FIFO fairness). Our
 *     waitq unlinks a waiter when it wakes it, so Lock and Semaphore count
 *     the woken waiters that have not run yet (`woken`); each one's cleanup
 *     takes itself off that count exactly once.
 *   - A lock: woken is 0 or 1, and woken == 1 implies not locked.
 *   - A semaphore hands a permit over at wake time (value is decremented
 *     then), so `value` never counts a permit twice.
 *   - A waiter is on its primitive's queue only while its frame is pending;
 *     every frame's cleanup unlinks it (coro__waitq_remove is idempotent).
 * Never: allocate; suspend on a fast path; call into a task inline (wakeups
 * are future completions, whose callbacks the loop runs later).
 */
#include "coro_int.h"

#include <limits.h>

enum { BARRIER_FILLING = 0, BARRIER_DRAINING, BARRIER_RESETTING, BARRIER_BROKEN };

static int check_init(const void *obj, const coro_loop *loop)
{
    if (!obj || !loop) /* callers resolved a NULL loop to the running one */
        return CORO_EINVAL;
    return loop->state == LOOP_CLOSED ? CORO_ECLOSED : 0;
}

static void waitq_init(coro_waitq *q) { coro__list_init(&q->list); }

/* The waiter was woken (its future holds a result), not cancelled. */
static bool was_woken(const coro_waiter *w)
{
    return coro_future_done(&w->fut) && !coro_future_cancelled(&w->fut);
}

/* ------------------------------------------------------------------------ */
/* Lock                                                                     */
/* ------------------------------------------------------------------------ */

int coro_lock_init(coro_lock *l, coro_loop *loop)
{
    loop = coro__loop_or_running(loop);
    int rc = check_init(l, loop);
    if (rc != 0)
        return rc;
    l->loop = loop;
    waitq_init(&l->waiters);
    l->locked = 0;
    l->woken = 0;
    return 0;
}

int coro_lock_locked(const coro_lock *l) { return l && l->locked; }

static void lock_wake_first(coro_lock *l)
{
    if (!l->locked && l->woken == 0 && coro__waitq_wake_first(&l->waiters, coro_int(1)))
        l->woken = 1;
}

int coro_lock_release(coro_lock *l)
{
    if (!l)
        return CORO_EINVAL;
    if (!l->locked)
        return CORO_ESTATE;
    l->locked = 0;
    lock_wake_first(l);
    return 0;
}

static bool lock_free(coro_lock *l)
{
    return !l->locked && l->woken == 0 && !coro__waitq_first_pending(&l->waiters);
}

/* asyncio's finally/except around `await fut`. */
static void lock_acquire_cleanup(coro_lock_acquire_op *op)
{
    coro_lock *l = op->lock;
    if (!op->queued)
        return;
    op->queued = 0;
    coro__waitq_remove(&op->w);
    if (was_woken(&op->w)) {
        l->woken = 0;
        if (op->err == 0) {
            l->locked = 1; /* ours */
            return;
        }
    }
    lock_wake_first(l); /* cancelled: the lock goes on if it is free */
}

static CORO_FN(lock_acquire_step)
{
    coro_lock_acquire_op *self = CORO_SELF(coro_lock_acquire_op);
    coro_lock *l = self->lock;
    CORO_BEGIN();
    if (lock_free(l)) {
        l->locked = 1;
        CORO_RETURN(coro_int(1));
    }
    self->err = coro__waitq_push(&l->waiters, &self->w, l->loop, FUT_KIND_LOCK);
    if (self->err != 0)
        CORO_RAISE(self->err);
    self->queued = 1;
    CORO_AWAIT_ERR(&self->w.fut, self->err);
    if (self->err != 0)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(1));
    CORO_FINALLY
    lock_acquire_cleanup(self);
    CORO_END();
}

coro_frame *coro_lock_acquire(coro_lock_acquire_op *op, coro_lock *l)
{
    if (!op || !l)
        return NULL;
    coro_frame_init(&op->co, lock_acquire_step);
    coro__waiter_clear(&op->w);
    op->lock = l;
    op->queued = 0;
    op->err = 0;
    return &op->co;
}

/* ------------------------------------------------------------------------ */
/* async with lock                                                          */
/* ------------------------------------------------------------------------ */

static CORO_FN(with_lock_step)
{
    coro_with_lock_op *self = CORO_SELF(coro_with_lock_op);
    int rc;
    CORO_BEGIN();
    CORO_AWAIT(coro_lock_acquire(&self->acq, self->lock));
    self->held = 1;
    CORO_AWAIT(self->body);
    CORO_RETURN(CORO_RESULT);
    CORO_FINALLY
    if (self->held) {
        self->held = 0;
        rc = coro_lock_release(self->lock);
        if (rc != 0)
            CORO_RAISE(rc);
    }
    CORO_END();
}

coro_frame *coro_with_lock(coro_with_lock_op *op, coro_lock *l, coro_frame *body)
{
    if (!op || !l || !body)
        return NULL;
    coro_frame_init(&op->co, with_lock_step);
    op->lock = l;
    op->body = body;
    op->held = 0;
    return &op->co;
}

/* ------------------------------------------------------------------------ */
/* Event                                                                    */
/* ------------------------------------------------------------------------ */

int coro_event_init(coro_event *e, coro_loop *loop)
{
    loop = coro__loop_or_running(loop);
    int rc = check_init(e, loop);
    if (rc != 0)
        return rc;
    e->loop = loop;
    waitq_init(&e->waiters);
    e->value = 0;
    return 0;
}

int coro_event_set(coro_event *e)
{
    if (!e)
        return CORO_EINVAL;
    if (!e->value) {
        e->value = 1;
        coro__waitq_wake_all(&e->waiters, coro_int(1));
    }
    return 0;
}

int coro_event_clear(coro_event *e)
{
    if (!e)
        return CORO_EINVAL;
    e->value = 0;
    return 0;
}

int coro_event_is_set(const coro_event *e) { return e && e->value; }

static CORO_FN(event_wait_step)
{
    coro_event_wait_op *self = CORO_SELF(coro_event_wait_op);
    int rc;
    CORO_BEGIN();
    if (self->ev->value)
        CORO_RETURN(coro_int(1));
    rc = coro__waitq_push(&self->ev->waiters, &self->w, self->ev->loop, FUT_KIND_EVENT);
    if (rc != 0)
        CORO_RAISE(rc);
    CORO_AWAIT(&self->w.fut);
    CORO_RETURN(coro_int(1));
    CORO_FINALLY
    coro__waitq_remove(&self->w); /* cancelled: nothing to hand on */
    CORO_END();
}

coro_frame *coro_event_wait(coro_event_wait_op *op, coro_event *e)
{
    if (!op || !e)
        return NULL;
    coro_frame_init(&op->co, event_wait_step);
    coro__waiter_clear(&op->w);
    op->ev = e;
    return &op->co;
}

/* ------------------------------------------------------------------------ */
/* Condition                                                                */
/* ------------------------------------------------------------------------ */

int coro_condition_init(coro_condition *c, coro_loop *loop, coro_lock *lock)
{
    loop = coro__loop_or_running(loop);
    int rc = check_init(c, loop);
    if (rc != 0)
        return rc;
    if (lock && lock->loop != loop)
        return CORO_EINVAL;
    c->loop = loop;
    waitq_init(&c->waiters);
    if (!lock) {
        coro_lock_init(&c->own, loop);
        lock = &c->own;
    }
    c->lock = lock;
    return 0;
}

coro_lock *coro_condition_lock(coro_condition *c) { return c ? c->lock : NULL; }

static int cond_notify(coro_condition *c, int n)
{
    int woken = 0;
    while (woken < n && coro__waitq_wake_first(&c->waiters, coro_int(1)))
        woken++;
    return woken;
}

int coro_condition_notify(coro_condition *c, int n)
{
    if (!c)
        return CORO_EINVAL;
    if (!c->lock->locked)
        return CORO_ESTATE;
    return cond_notify(c, n);
}

int coro_condition_notify_all(coro_condition *c) { return coro_condition_notify(c, INT_MAX); }

static CORO_FN(cond_wait_step)
{
    coro_condition_wait_op *self = CORO_SELF(coro_condition_wait_op);
    coro_condition *c = self->cond;
    CORO_BEGIN();
    if (!c->lock->locked)
        CORO_RAISE(CORO_ESTATE); /* cannot wait on un-acquired lock */
    self->err = coro__waitq_push(&c->waiters, &self->w, c->loop, FUT_KIND_CONDITION);
    if (self->err != 0)
        CORO_RAISE(self->err);
    coro_lock_release(c->lock);
    CORO_AWAIT_ERR(&self->w.fut, self->err);
    coro__waitq_remove(&self->w);
    self->notified = was_woken(&self->w);
    do { /* take the lock back, even when cancelled */
        CORO_AWAIT_ERR(coro_lock_acquire(&self->acq, c->lock), self->aerr);
        if (self->aerr == CORO_ECANCELLED)
            self->err = CORO_ECANCELLED;
    } while (self->aerr == CORO_ECANCELLED);
    if (self->aerr != 0)
        self->err = self->aerr; /* not a cancel: give up, without the lock */
    if (self->err != 0 && self->notified)
        cond_notify(c, 1); /* the notification is not lost with us */
    if (self->err != 0)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(1));
    CORO_FINALLY
    coro__waitq_remove(&self->w);
    CORO_END();
}

coro_frame *coro_condition_wait(coro_condition_wait_op *op, coro_condition *c)
{
    if (!op || !c)
        return NULL;
    coro_frame_init(&op->co, cond_wait_step);
    coro__waiter_clear(&op->w);
    op->cond = c;
    op->err = op->aerr = op->notified = 0;
    return &op->co;
}

static CORO_FN(cond_wait_for_step)
{
    coro_condition_wait_for_op *self = CORO_SELF(coro_condition_wait_for_op);
    CORO_BEGIN();
    self->result = self->pred(self->arg);
    while (!self->result) {
        CORO_AWAIT(coro_condition_wait(&self->wait, self->cond));
        self->result = self->pred(self->arg);
    }
    CORO_RETURN(coro_int(self->result));
    CORO_END();
}

coro_frame *coro_condition_wait_for(coro_condition_wait_for_op *op, coro_condition *c,
                                    coro_predicate pred, void *arg)
{
    if (!op || !c || !pred)
        return NULL;
    coro_frame_init(&op->co, cond_wait_for_step);
    op->cond = c;
    op->pred = pred;
    op->arg = arg;
    op->result = 0;
    return &op->co;
}

/* ------------------------------------------------------------------------ */
/* Semaphore, BoundedSemaphore                                              */
/* ------------------------------------------------------------------------ */

static int semaphore_setup(coro_semaphore *s, coro_loop *loop, int value, int bound)
{
    loop = coro__loop_or_running(loop);
    int rc = check_init(s, loop);
    if (rc != 0)
        return rc;
    if (value < 0)
        return CORO_EINVAL;
    s->loop = loop;
    waitq_init(&s->waiters);
    s->value = value;
    s->bound = bound;
    s->woken = 0;
    return 0;
}

int coro_semaphore_init(coro_semaphore *s, coro_loop *loop, int value)
{
    return semaphore_setup(s, loop, value, -1);
}

int coro_bsemaphore_init(coro_semaphore *s, coro_loop *loop, int value)
{
    return semaphore_setup(s, loop, value, value);
}

/* asyncio's locked(): no permit, or someone (pending or woken) ahead. */
static bool sem_locked(coro_semaphore *s)
{
    return s->value == 0 || s->woken > 0 || coro__waitq_first_pending(&s->waiters);
}

int coro_semaphore_locked(const coro_semaphore *s) { return s && sem_locked((coro_semaphore *)s); }

int coro_semaphore_value(const coro_semaphore *s) { return s ? s->value : 0; }

/* _wake_up_next: hand a permit to the first pending waiter. */
static bool sem_wake_next(coro_semaphore *s)
{
    if (!coro__waitq_wake_first(&s->waiters, coro_int(1)))
        return false;
    s->value--;
    s->woken++;
    return true;
}

int coro_semaphore_release(coro_semaphore *s)
{
    if (!s)
        return CORO_EINVAL;
    if ((s->bound >= 0 && s->value >= s->bound) || s->value == INT_MAX)
        return CORO_EINVAL;
    s->value++;
    sem_wake_next(s);
    return 0;
}

static void sem_acquire_cleanup(coro_semaphore_acquire_op *op)
{
    coro_semaphore *s = op->sem;
    if (!op->queued)
        return;
    op->queued = 0;
    coro__waitq_remove(&op->w);
    if (was_woken(&op->w)) {
        s->woken--;
        if (op->err != 0)
            s->value++; /* given to us, but we are cancelled: give it back */
    }
    while (s->value > 0 && sem_wake_next(s)) {
        /* newcomers queued behind us for FIFO's sake */
    }
}

static CORO_FN(sem_acquire_step)
{
    coro_semaphore_acquire_op *self = CORO_SELF(coro_semaphore_acquire_op);
    coro_semaphore *s = self->sem;
    CORO_BEGIN();
    if (!sem_locked(s)) {
        s->value--;
        CORO_RETURN(coro_int(1));
    }
    self->err = coro__waitq_push(&s->waiters, &self->w, s->loop, FUT_KIND_SEMAPHORE);
    if (self->err != 0)
        CORO_RAISE(self->err);
    self->queued = 1;
    CORO_AWAIT_ERR(&self->w.fut, self->err);
    if (self->err != 0)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int(1));
    CORO_FINALLY
    sem_acquire_cleanup(self);
    CORO_END();
}

coro_frame *coro_semaphore_acquire(coro_semaphore_acquire_op *op, coro_semaphore *s)
{
    if (!op || !s)
        return NULL;
    coro_frame_init(&op->co, sem_acquire_step);
    coro__waiter_clear(&op->w);
    op->sem = s;
    op->queued = 0;
    op->err = 0;
    return &op->co;
}

static CORO_FN(with_sem_step)
{
    coro_with_semaphore_op *self = CORO_SELF(coro_with_semaphore_op);
    int rc;
    CORO_BEGIN();
    CORO_AWAIT(coro_semaphore_acquire(&self->acq, self->sem));
    self->held = 1;
    CORO_AWAIT(self->body);
    CORO_RETURN(CORO_RESULT);
    CORO_FINALLY
    if (self->held) {
        self->held = 0;
        rc = coro_semaphore_release(self->sem);
        if (rc != 0)
            CORO_RAISE(rc);
    }
    CORO_END();
}

coro_frame *coro_with_semaphore(coro_with_semaphore_op *op, coro_semaphore *s, coro_frame *body)
{
    if (!op || !s || !body)
        return NULL;
    coro_frame_init(&op->co, with_sem_step);
    op->sem = s;
    op->body = body;
    op->held = 0;
    return &op->co;
}

/* ---- the same inside the caller's body (CORO_WITH_LOCK, CORO_WITH_SEMAPHORE) ---- */

/* __aexit__: release; a refused release replaces the block's outcome. */
static void release_into(int rc, coro__scope *s, coro_value *io)
{
    *io = rc != 0 ? coro_error(rc) : s->outcome;
}

static int with_lock_exit(coro__scope *s, coro_value *io)
{
    coro_with_lock_op *op = CORO__CONTAINER(s, coro_with_lock_op, scope);
    op->held = 0;
    release_into(coro_lock_release(op->lock), s, io);
    return 0;
}

coro_frame *coro__with_lock_open(coro_with_lock_op *op, coro_lock *l)
{
    if (!op || !l)
        return NULL;
    op->lock = l;
    op->body = NULL;
    op->held = 1; /* once the acquire's await returns: the scope opens then */
    op->scope.exit = with_lock_exit;
    return coro_lock_acquire(&op->acq, l);
}

static int with_sem_exit(coro__scope *s, coro_value *io)
{
    coro_with_semaphore_op *op = CORO__CONTAINER(s, coro_with_semaphore_op, scope);
    op->held = 0;
    release_into(coro_semaphore_release(op->sem), s, io);
    return 0;
}

coro_frame *coro__with_semaphore_open(coro_with_semaphore_op *op, coro_semaphore *sem)
{
    if (!op || !sem)
        return NULL;
    op->sem = sem;
    op->body = NULL;
    op->held = 1;
    op->scope.exit = with_sem_exit;
    return coro_semaphore_acquire(&op->acq, sem);
}

/* ------------------------------------------------------------------------ */
/* Barrier                                                                  */
/* ------------------------------------------------------------------------ */

int coro_barrier_init(coro_barrier *b, coro_loop *loop, int parties)
{
    loop = coro__loop_or_running(loop);
    int rc = check_init(b, loop);
    if (rc != 0)
        return rc;
    if (parties < 1)
        return CORO_EINVAL;
    b->loop = loop;
    waitq_init(&b->waiters);
    b->parties = parties;
    b->count = 0;
    b->state = BARRIER_FILLING;
    return 0;
}

/* asyncio's _cond.notify_all(): every waiter re-checks the state. */
static void barrier_notify_all(coro_barrier *b) { coro__waitq_wake_all(&b->waiters, coro_none()); }

int coro_barrier_abort(coro_barrier *b)
{
    if (!b)
        return CORO_EINVAL;
    b->state = BARRIER_BROKEN;
    barrier_notify_all(b);
    return 0;
}

int coro_barrier_reset(coro_barrier *b)
{
    if (!b)
        return CORO_EINVAL;
    b->state = b->count > 0 ? BARRIER_RESETTING : BARRIER_FILLING;
    barrier_notify_all(b);
    return 0;
}

int coro_barrier_parties(const coro_barrier *b) { return b ? b->parties : 0; }

int coro_barrier_n_waiting(const coro_barrier *b)
{
    return b && b->state == BARRIER_FILLING ? b->count : 0;
}

int coro_barrier_broken(const coro_barrier *b) { return b && b->state == BARRIER_BROKEN; }

/* _exit: the last task out ends the draining or the reset. */
static void barrier_exit(coro_barrier *b)
{
    b->count--;
    if (b->count > 0)
        return;
    if (b->state == BARRIER_DRAINING || b->state == BARRIER_RESETTING)
        b->state = BARRIER_FILLING;
    barrier_notify_all(b);
}

static bool barrier_blocked(const coro_barrier *b)
{
    return b->state == BARRIER_DRAINING || b->state == BARRIER_RESETTING;
}

static CORO_FN(barrier_wait_step)
{
    coro_barrier_wait_op *self = CORO_SELF(coro_barrier_wait_op);
    coro_barrier *b = self->barrier;
    CORO_BEGIN();
    while (barrier_blocked(b)) { /* _block: the last round is leaving */
        self->err = coro__waitq_push(&b->waiters, &self->w, b->loop, FUT_KIND_BARRIER);
        if (self->err != 0)
            CORO_RAISE(self->err);
        CORO_AWAIT(&self->w.fut);
    }
    if (b->state == BARRIER_BROKEN)
        CORO_RAISE(CORO_EBROKEN);
    self->index = b->count++;
    self->counted = 1;
    if (self->index + 1 == b->parties) { /* _release: we fill it */
        b->state = BARRIER_DRAINING;
        barrier_notify_all(b);
        CORO_RETURN(coro_int(self->index));
    }
    while (b->state == BARRIER_FILLING) { /* _wait */
        self->err = coro__waitq_push(&b->waiters, &self->w, b->loop, FUT_KIND_BARRIER);
        if (self->err != 0)
            CORO_RAISE(self->err);
        CORO_AWAIT(&self->w.fut);
    }
    if (b->state != BARRIER_DRAINING)
        CORO_RAISE(CORO_EBROKEN); /* aborted or reset */
    CORO_RETURN(coro_int(self->index));
    CORO_FINALLY
    coro__waitq_remove(&self->w);
    if (self->counted) {
        self->counted = 0;
        barrier_exit(b);
    }
    CORO_END();
}

coro_frame *coro_barrier_wait(coro_barrier_wait_op *op, coro_barrier *b)
{
    if (!op || !b)
        return NULL;
    coro_frame_init(&op->co, barrier_wait_step);
    coro__waiter_clear(&op->w);
    op->barrier = b;
    op->index = op->counted = op->err = 0;
    return &op->co;
}
