/*
 * coro_sync.h - part of coro.h: locks, events, conditions, semaphores, barriers (asyncio/locks.py).
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes. A NULL `loop` in an *_init is
 * the running loop (coro_get_running_loop()); "NULL" in the return codes
 * below means a NULL object, or a NULL loop with no loop running.
 *
 *   asyncio                          coro
 *   -----------------------------    ---------------------------------------------
 *   lock = asyncio.Lock()            coro_lock_init(&lock, loop)
 *   await lock.acquire()             CORO_AWAIT(coro_lock_acquire(&self->op, &lock))
 *   lock.release() / lock.locked()   coro_lock_release(&lock) / coro_lock_locked(&lock)
 *   async with lock: body()          CORO_AWAIT(coro_with_lock(&self->with, &lock, body_frame))
 *   ev.set() / clear() / is_set()    coro_event_set / coro_event_clear / coro_event_is_set
 *   await ev.wait()                  CORO_AWAIT(coro_event_wait(&self->op, &ev))
 *   cond = asyncio.Condition(lock)   coro_condition_init(&cond, loop, &lock)  (NULL: its own)
 *   await cond.wait()                CORO_AWAIT(coro_condition_wait(&self->op, &cond))
 *   await cond.wait_for(pred)        CORO_AWAIT(coro_condition_wait_for(&self->op, &cond, fn, arg))
 *   cond.notify(n) / notify_all()    coro_condition_notify(&cond, n) / coro_condition_notify_all
 *   asyncio.Semaphore(v)             coro_semaphore_init(&sem, loop, v)
 *   asyncio.BoundedSemaphore(v)      coro_bsemaphore_init(&sem, loop, v)
 *   await sem.acquire()              CORO_AWAIT(coro_semaphore_acquire(&self->op, &sem))
 *   sem.release() / sem.locked()     coro_semaphore_release(&sem) / coro_semaphore_locked
 *   async with sem: body()           CORO_AWAIT(coro_with_semaphore(&self->with, &sem, body_frame))
 *   asyncio.Barrier(n)               coro_barrier_init(&b, loop, n)
 *   await b.wait()                   CORO_AWAIT(coro_barrier_wait(&self->op, &b))  (the index)
 *   await b.abort() / b.reset()      coro_barrier_abort(&b) / coro_barrier_reset(&b)
 *
 * Rules shared by every primitive here:
 *   - The object is caller-owned and must stay valid (and unmoved: a
 *     condition may point into itself) while any operation on it is pending.
 *     Nothing here allocates, and there is nothing to free: a primitive with
 *     no pending operation can simply be dropped.
 *   - An operation frame (`*_op`) is filled by its init function, which
 *     returns the frame to await (NULL when the frame or the primitive is
 *     NULL: awaiting NULL fails with CORO_EINVAL). Like any child frame, it
 *     must be re-initialised for each await and must not be touched while it
 *     is pending. Its fields are private.
 *   - Fast paths never suspend: acquiring a free lock, waiting on a set
 *     event, taking an available permit, finish in the awaiting step,
 *     as asyncio returns without yielding.
 *   - Waiters are served FIFO. A waiter cancelled before it is woken leaves
 *     the queue and disturbs nobody; one woken and cancelled before it could
 *     run hands what it was given (the lock, the permit, the notification)
 *     to the next waiter, so nothing is lost and nothing is given twice.
 *   - The loop is the one the primitive was initialised with; only tasks of
 *     that loop may wait on it (others fail with CORO_EINVAL, as does a
 *     coro_gen driving an operation that would have to wait: only a task
 *     can). A refused wait leaves the primitive as it was. Operations after
 *     coro_loop_close are undefined.
 */
#ifndef CORO_SYNC_H
#define CORO_SYNC_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

/* ------------------------------------------------------------------------ */
/* Lock (asyncio.Lock)                                                      */
/* ------------------------------------------------------------------------ */

/* A FIFO-fair lock, not owned by any task (any task may release it). All
 * fields private. */
typedef struct coro_lock {
    coro_loop *loop;
    coro_waitq waiters;
    int locked;
    int woken; /* 1 while a woken waiter has yet to run and take the lock */
} coro_lock;

/* Initialise an unlocked lock on `loop` (NULL: the running loop, as for
 * every *_init here). Returns 0, CORO_EINVAL for NULL `l` or no loop,
 * CORO_ECLOSED if the loop is closed. */
int coro_lock_init(coro_lock *l, coro_loop *loop);
/* 1 if the lock is held, 0 if not (or NULL). As in asyncio, a lock released
 * to a waiter that has not run yet reads 0 until that waiter takes it. */
int coro_lock_locked(const coro_lock *l);
/* Release the lock and wake the first waiter (FIFO). Never suspends.
 * Returns 0, CORO_ESTATE if the lock is not held (asyncio's RuntimeError),
 * CORO_EINVAL for NULL. */
int coro_lock_release(coro_lock *l);

/* The frame of one acquire. All fields private. */
typedef struct coro_lock_acquire_op {
    coro_frame co;
    coro_waiter w;
    coro_lock *lock;
    int queued, err;
} coro_lock_acquire_op;

/* await lock.acquire(): returns the frame to await. The await completes
 * with CORO_INT 1 once the lock is held by the caller, at once (no
 * suspension) when it is free and nobody waits; otherwise the caller queues
 * FIFO. It fails with CORO_ECANCELLED if the task is cancelled meanwhile
 * (the lock is then not held; if it had already been passed to the caller,
 * it passes on to the next waiter), CORO_ECLOSED if the loop is closed.
 * NULL if `op` or `l` is NULL. */
coro_frame *coro_lock_acquire(coro_lock_acquire_op *op, coro_lock *l);

/* ------------------------------------------------------------------------ */
/* Scoped acquire: async with lock / async with sem                         */
/* ------------------------------------------------------------------------ */

/* `async with lock: await body()` as one frame: acquire, await `body` (a
 * freshly initialised child frame, run in the caller's task), and release
 * in a cleanup section, which runs whether the body returns, fails or is
 * cancelled. The await's outcome is the body's: its result or its error.
 * If acquiring fails (cancelled while queued) the body never starts and
 * that error is the outcome. If the lock is no longer held when the body
 * ends (the body released it), the release's CORO_ESTATE replaces the
 * outcome, as asyncio's __aexit__ would raise. All fields private. */
typedef struct coro_with_lock_op {
    coro_frame co;
    coro_lock_acquire_op acq;
    coro_lock *lock;
    coro_frame *body;
    int held;
    coro__scope scope; /* CORO_WITH_LOCK */
} coro_with_lock_op;

/* Returns the frame to await; NULL if `op`, `l` or `body` is NULL. */
coro_frame *coro_with_lock(coro_with_lock_op *op, coro_lock *l, coro_frame *body);

/* async with lock: inside the body itself, no body frame:
 *
 *     struct f { coro_frame co; coro_with_lock_op wl; ... };
 *
 *     CORO_WITH_LOCK(&self->wl, &lock) {
 *         ... awaits, a return, a raise ...
 *     } CORO_WITH_END;                  released here, however the block ends
 *
 * The acquire is awaited first: its error (CORO_ECANCELLED while queued,
 * CORO_EINVAL for a NULL `op` or lock) is raised before the block, which
 * then does not run. A release refused at the end (the block released the
 * lock itself) raises CORO_ESTATE in place of the block's outcome. See
 * CORO_WITH_END (coro.h) for the rules every inline scope shares. */
#define CORO_WITH_LOCK(op, lock)                                                                   \
    CORO__AWAIT_IMPL(coro__with_lock_open((op), (lock)));                                          \
    CORO__WITH_OPEN(&(op)->scope)
/* Internal: CORO_WITH_LOCK's __aenter__ (the acquire to await). */
coro_frame *coro__with_lock_open(coro_with_lock_op *op, coro_lock *l);

/* ------------------------------------------------------------------------ */
/* Event (asyncio.Event)                                                    */
/* ------------------------------------------------------------------------ */

/* A flag tasks can wait for. All fields private. */
typedef struct coro_event {
    coro_loop *loop;
    coro_waitq waiters;
    int value;
} coro_event;

/* Initialise a clear event on `loop`. 0, CORO_EINVAL for NULL, CORO_ECLOSED. */
int coro_event_init(coro_event *e, coro_loop *loop);
/* Set the flag and wake every waiter (they resume on the loop's next pass,
 * in the order they came, and all report success even if the event is
 * cleared before they run). Setting a set event does nothing. 0, or
 * CORO_EINVAL for NULL. */
int coro_event_set(coro_event *e);
/* Clear the flag: later waits block until the next set. 0, CORO_EINVAL. */
int coro_event_clear(coro_event *e);
/* 1 if set, 0 if clear (or NULL). */
int coro_event_is_set(const coro_event *e);

/* The frame of one wait. All fields private. */
typedef struct coro_event_wait_op {
    coro_frame co;
    coro_waiter w;
    coro_event *ev;
} coro_event_wait_op;

/* await ev.wait(): completes with CORO_INT 1 once the event is set, at
 * once if it already is; fails with CORO_ECANCELLED if cancelled meanwhile,
 * CORO_ECLOSED if the loop is closed. NULL if `op` or `e` is NULL. */
coro_frame *coro_event_wait(coro_event_wait_op *op, coro_event *e);

/* ------------------------------------------------------------------------ */
/* Condition (asyncio.Condition)                                            */
/* ------------------------------------------------------------------------ */

/* A condition variable bound to a lock. All fields private. */
typedef struct coro_condition {
    coro_loop *loop;
    coro_lock *lock; /* `own`, or the caller's */
    coro_waitq waiters;
    coro_lock own;
} coro_condition;

/* Initialise a condition on `loop` using `lock` (caller-owned, on the same
 * loop, which must outlive the condition), or a lock of its own when `lock`
 * is NULL (the condition must then not be moved or copied after init).
 * Returns 0, CORO_EINVAL (NULL `c` or `loop`, or `lock` on another loop),
 * CORO_ECLOSED. */
int coro_condition_init(coro_condition *c, coro_loop *loop, coro_lock *lock);
/* The lock: acquire it with coro_lock_acquire or coro_with_lock, release
 * it with coro_lock_release (asyncio's cond.acquire/release/locked and
 * `async with cond`). NULL for NULL. */
coro_lock *coro_condition_lock(coro_condition *c);
/* Wake up to `n` waiters, FIFO (n <= 0 wakes none). The caller must hold
 * the lock; woken waiters return from their wait only once they have taken
 * it back, so they run after the notifier releases it. Returns how many
 * were woken, CORO_ESTATE if the lock is not held, CORO_EINVAL for NULL. */
int coro_condition_notify(coro_condition *c, int n);
/* Wake every waiter; as coro_condition_notify. */
int coro_condition_notify_all(coro_condition *c);

/* The frame of one wait. All fields private. */
typedef struct coro_condition_wait_op {
    coro_frame co;
    coro_waiter w;
    coro_lock_acquire_op acq;
    coro_condition *cond;
    int err, aerr, notified;
} coro_condition_wait_op;

/* await cond.wait(): release the lock, wait to be notified, take the lock
 * back, complete with CORO_INT 1. Fails at once with CORO_ESTATE if the
 * lock is not held. The lock is held again whenever the wait ends,
 * cancelled or not, as asyncio does: a task cancelled while waiting first
 * re-acquires the lock (waiting for it if need be; further cancels during
 * that are absorbed), then fails with CORO_ECANCELLED. A waiter notified
 * and then cancelled passes its notification to the next waiter (asyncio
 * 3.13's fix; 3.12 dropped it). NULL if `op` or `c` is NULL. */
coro_frame *coro_condition_wait(coro_condition_wait_op *op, coro_condition *c);

/* A predicate for wait_for: nonzero when satisfied. */
typedef int (*coro_predicate)(void *arg);

/* The frame of one wait_for. All fields private. */
typedef struct coro_condition_wait_for_op {
    coro_frame co;
    coro_condition_wait_op wait;
    coro_condition *cond;
    coro_predicate pred;
    void *arg;
    int result;
} coro_condition_wait_for_op;

/* await cond.wait_for(pred): call pred(arg); while it returns 0, wait (as
 * coro_condition_wait) and call it again. Completes with CORO_INT holding
 * the predicate's last (nonzero) value; without suspending if it holds at
 * once. The lock must be held when it has to wait (else CORO_ESTATE);
 * errors are the wait's. NULL if `op`, `c` or `pred` is NULL. */
coro_frame *coro_condition_wait_for(coro_condition_wait_for_op *op, coro_condition *c,
                                    coro_predicate pred, void *arg);

/* ------------------------------------------------------------------------ */
/* Semaphore and BoundedSemaphore (asyncio.Semaphore, BoundedSemaphore)     */
/* ------------------------------------------------------------------------ */

/* A counter of permits; bounded or not. All fields private. */
typedef struct coro_semaphore {
    coro_loop *loop;
    coro_waitq waiters;
    int value; /* permits free now */
    int bound; /* the initial value for a bounded semaphore, -1 otherwise */
    int woken; /* woken waiters (each holding a permit) that have not run yet */
} coro_semaphore;

/* Initialise a semaphore with `value` permits. Returns 0, CORO_EINVAL for
 * NULL or value < 0 (asyncio's ValueError), CORO_ECLOSED. */
int coro_semaphore_init(coro_semaphore *s, coro_loop *loop, int value);
/* The same for a bounded semaphore: releasing it above `value` is an error
 * (asyncio.BoundedSemaphore). Every other call is coro_semaphore_*. */
int coro_bsemaphore_init(coro_semaphore *s, coro_loop *loop, int value);
/* 1 if an acquire would have to wait (no permit free, or others queued
 * ahead: asyncio's locked()), 0 otherwise (and for NULL). */
int coro_semaphore_locked(const coro_semaphore *s);
/* The permits free now (not counting those already handed to woken
 * waiters); 0 for NULL. */
int coro_semaphore_value(const coro_semaphore *s);
/* Give a permit back and wake the first waiter (FIFO). Never suspends.
 * Returns 0; CORO_EINVAL for NULL, for a bounded semaphore already at its
 * initial value (asyncio's "released too many times"), or when the count
 * would overflow an int. */
int coro_semaphore_release(coro_semaphore *s);

/* The frame of one acquire. All fields private. */
typedef struct coro_semaphore_acquire_op {
    coro_frame co;
    coro_waiter w;
    coro_semaphore *sem;
    int queued, err;
} coro_semaphore_acquire_op;

/* await sem.acquire(): completes with CORO_INT 1 once the caller holds a
 * permit, at once when one is free and nobody is queued (FIFO: a newcomer
 * never overtakes a waiter). Fails with CORO_ECANCELLED if cancelled while
 * queued; a permit already handed to the cancelled waiter goes to the next
 * one (asyncio 3.12: a release is never lost). CORO_ECLOSED if the loop is
 * closed. NULL if `op` or `s` is NULL. */
coro_frame *coro_semaphore_acquire(coro_semaphore_acquire_op *op, coro_semaphore *s);

/* `async with sem: await body()`, as coro_with_lock. All fields private. */
typedef struct coro_with_semaphore_op {
    coro_frame co;
    coro_semaphore_acquire_op acq;
    coro_semaphore *sem;
    coro_frame *body;
    int held;
    coro__scope scope; /* CORO_WITH_SEMAPHORE */
} coro_with_semaphore_op;

/* Returns the frame to await; NULL if `op`, `s` or `body` is NULL. The
 * permit is released when the body ends, however it ends; a release
 * refused (a bounded semaphore released inside the body as well) replaces
 * the outcome with CORO_EINVAL. */
coro_frame *coro_with_semaphore(coro_with_semaphore_op *op, coro_semaphore *s, coro_frame *body);

/* async with sem: inside the body itself, as CORO_WITH_LOCK (a refused
 * release raises CORO_EINVAL):
 *     CORO_WITH_SEMAPHORE(&self->ws, &sem) { ... } CORO_WITH_END; */
#define CORO_WITH_SEMAPHORE(op, sem)                                                               \
    CORO__AWAIT_IMPL(coro__with_semaphore_open((op), (sem)));                                      \
    CORO__WITH_OPEN(&(op)->scope)
/* Internal: CORO_WITH_SEMAPHORE's __aenter__ (the acquire to await). */
coro_frame *coro__with_semaphore_open(coro_with_semaphore_op *op, coro_semaphore *s);

/* ------------------------------------------------------------------------ */
/* Barrier (asyncio.Barrier)                                                */
/* ------------------------------------------------------------------------ */

/* A barrier for `parties` tasks. All fields private. */
typedef struct coro_barrier {
    coro_loop *loop;
    coro_waitq waiters;
    int parties;
    int count; /* tasks inside wait: arrived and not yet gone */
    int state; /* filling, draining, resetting, broken */
} coro_barrier;

/* Initialise a barrier for `parties` (>= 1) tasks. Returns 0, CORO_EINVAL
 * for NULL or parties < 1, CORO_ECLOSED. */
int coro_barrier_init(coro_barrier *b, coro_loop *loop, int parties);
/* Break the barrier: every task waiting in it, and every later wait, fails
 * with CORO_EBROKEN until coro_barrier_reset. 0, CORO_EINVAL for NULL.
 * (asyncio's abort() is a coroutine only to take the condition's lock,
 * which its barrier never holds across a suspension: this acts at once.) */
int coro_barrier_abort(coro_barrier *b);
/* Return the barrier to its empty state: tasks waiting in it fail with
 * CORO_EBROKEN; once they have left, the barrier fills again (a broken
 * barrier is mended). 0, CORO_EINVAL for NULL. */
int coro_barrier_reset(coro_barrier *b);
/* The number of parties; 0 for NULL. */
int coro_barrier_parties(const coro_barrier *b);
/* How many tasks wait for the barrier to fill (0 while it drains or is
 * broken, as asyncio's n_waiting); 0 for NULL. */
int coro_barrier_n_waiting(const coro_barrier *b);
/* 1 if broken (aborted and not reset), 0 otherwise (and for NULL). */
int coro_barrier_broken(const coro_barrier *b);

/* The frame of one wait. All fields private. */
typedef struct coro_barrier_wait_op {
    coro_frame co;
    coro_waiter w;
    coro_barrier *barrier;
    int index, counted, err;
} coro_barrier_wait_op;

/* await barrier.wait(): wait until `parties` tasks have arrived, then all
 * of them complete with CORO_INT holding their arrival index (0 for the
 * first, parties - 1 for the one that filled the barrier, which does not
 * suspend), and the barrier can be used again. A task that arrives while
 * the previous round drains waits for the next one. Fails with CORO_EBROKEN
 * if the barrier is broken, aborted or reset while waiting; with
 * CORO_ECANCELLED if cancelled (the task leaves: the barrier is not broken,
 * it now needs one more arrival). NULL if `op` or `b` is NULL. */
coro_frame *coro_barrier_wait(coro_barrier_wait_op *op, coro_barrier *b);

#endif
