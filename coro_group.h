/*
 * coro_group.h - part of coro.h: running things together: gather, wait,
 * wait_for, timeouts, shield, as_completed, task groups (asyncio/tasks.py,
 * timeouts.py, taskgroups.py).
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes.
 *
 *   asyncio                              coro
 *   ---------------------------------    ---------------------------------------------
 *   await gather(*fs)                    CORO_AWAIT(coro_gather(&op, futs, n, results, nodes, 0))
 *                                        or, with CORO_GATHER_OP(g, N) storage:
 *                                        CORO_AWAIT(CORO_GATHER(&self->g, 0))
 *   gather(*fs, return_exceptions=True)  flags CORO_RETURN_ERRORS
 *   g = gather(*fs); g.cancel()          coro_gather_start(&op, ...), then coro_gather_future(&op):
 *                                        await it from any task, coro_future_cancel,
 *                                        add_done_callback; coro_gather_close(&op)
 *   await wait(fs, timeout, return_when) CORO_AWAIT(coro_wait(&op, futs, n, nodes, done, when, s))
 *                                        or CORO_AWAIT(CORO_WAIT(&self->w, when, s))
 *   for f in as_completed(fs, timeout=s) coro_as_completed_init(&it, futs, n, nodes, s), then
 *       r = await f                      CORO_AWAIT(coro_as_completed_next(&op, &it)) per item
 *   await shield(fut)                    CORO_AWAIT(coro_shield(&op, fut))
 *   async with timeout(s) as cm: body    CORO_AWAIT(coro_timeout(&op, s, body_frame))
 *   async with timeout_at(when)          CORO_AWAIT(coro_timeout_at(&op, when_ns, body_frame))
 *   cm.reschedule(w) / when() / expired  coro_timeout_reschedule / _when / _expired
 *   await wait_for(coro(), s)            CORO_AWAIT(coro_wait_for(&op, s, frame))
 *   await wait_for(fut_or_task, s)       CORO_AWAIT(coro_wait_for_future(&op, s, fut))
 *   async with TaskGroup() as tg: body   CORO_AWAIT(coro_task_group(&tg, body_frame, errs, cap))
 *       tg.create_task(coro())           coro_task_group_spawn(&tg, frame, &task)  (or NULL)
 *                                        coro_task_group_start(&tg, &child, frame) (no malloc)
 *   None as a timeout                    CORO_NO_TIMEOUT (seconds), CORO_NO_DEADLINE (ns)
 *
 * Rules shared by everything here:
 *   - An operation frame (`*_op`) is filled by its function, which runs
 *     nothing and returns the frame to await, or NULL for bad arguments
 *     (awaiting NULL fails with CORO_EINVAL). Re-initialise it for each
 *     await; don't touch it while it is pending. Its fields are private.
 *   - "Futures" are coro_future pointers; a task is one: coro_task_future(t).
 *     All the futures of one call must belong to the same loop, and the
 *     caller must be a task of that loop.
 *   - Nothing allocates, except coro_task_group_spawn (the task, and one
 *     small node). Per-child storage (the futures array, the results, one
 *     coro_child_node per child) is the caller's; the CORO_*_OP macros
 *     declare it all for N children in one field.
 *   - An operation never finishes while the loop still holds a pointer into
 *     it: when a child completed but its done callback has not run yet, or a
 *     timer fired but has not run, the operation lets one more loop pass go
 *     by before it returns. So once an await has returned, its storage is
 *     free to reuse. (coro_as_completed, which is no frame, says it through
 *     coro_as_completed_close.)
 *   - Cancelling the awaiting task while an operation waits makes the await
 *     fail with CORO_ECANCELLED; what happens to the children is said per
 *     operation (gather cancels them, wait and as_completed leave them
 *     running, shield protects its inner future, wait_for cancels its inner
 *     one and waits for it).
 *   - Timeouts: seconds are relative to the call that takes them (as
 *     asyncio computes loop.time() + delay at once); 0 or less is already
 *     expired; NaN is an invalid argument; CORO_NO_TIMEOUT, INFINITY or
 *     anything above 9.2e9 seconds means none. Absolute deadlines are
 *     nanoseconds on the loop's clock (coro_loop_time_ns); CORO_NO_DEADLINE
 *     means none.
 */
#ifndef CORO_GROUP_H
#define CORO_GROUP_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

/* No timeout (asyncio's None), in seconds and as an absolute deadline. */
#define CORO_NO_TIMEOUT 1e300
#define CORO_NO_DEADLINE INT64_MAX

#define CORO__COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

/* One child's done-callback node for gather, wait and as_completed: one per
 * child future, in caller-owned storage that stays valid while the
 * operation runs. Nothing to initialise. All fields private. */
typedef struct coro_child_node {
    coro_done_node done;
    void *owner;
    struct coro_child_node *next;
    unsigned state;
} coro_child_node;

/* ------------------------------------------------------------------------ */
/* gather (asyncio.gather)                                                  */
/* ------------------------------------------------------------------------ */

/* gather's flag: asyncio's return_exceptions=True. */
#define CORO_RETURN_ERRORS 1

/* The frame of one gather. All fields private. */
typedef struct coro_gather_op {
    coro_frame co;
    coro_future **futs;
    coro_value *results;
    coro_child_node *nodes;
    size_t n, ndone;
    coro_loop *loop;
    int flags;
    int code; /* the outcome the callbacks decided */
    int err;
    uint8_t finished;         /* `outer` was completed by a callback */
    uint8_t cancel_requested; /* the awaiting task was cancelled */
    uint8_t started;          /* coro_gather_start: `outer` is the user's future */
    coro_future outer;        /* what the awaiting task waits on */
} coro_gather_op;

/* await gather(futs[0], ..., futs[n-1]): wait for every future (tasks via
 * coro_task_future) and write each outcome into results[i], in argument
 * order whatever the completion order: its value, or coro_error(code) for
 * one that failed (CORO_ECANCELLED for one cancelled). The arrays are the
 * caller's: `futs` (read once, here), `results` and `nodes` (n entries
 * each), valid until the await returns. The same future may appear twice.
 *
 * Outcome: CORO_PTR `results` once every future is done. Without
 * CORO_RETURN_ERRORS, the first future to fail (or be cancelled) fails the
 * gather at once with its code (CORO_ECANCELLED for a cancel); the other
 * futures are NOT cancelled and keep running (their slots are filled as
 * they finish, until the await returns; later ones stay CORO_NONE). With
 * CORO_RETURN_ERRORS the gather always waits for all, and errors are only
 * in the slots.
 *
 * Cancelling the awaiting task cancels every future still pending (asyncio's
 * _GatheringFuture.cancel; here on the task's next step, not inside
 * coro_task_cancel). The gather then completes as above, and fails with
 * CORO_ECANCELLED even if every child caught its cancel (with
 * CORO_RETURN_ERRORS the slots are filled first).
 *
 * n == 0 completes at once with `results` (which may then be NULL). Returns
 * NULL if `op` is NULL, if n > 0 and an array or an entry of `futs` is
 * NULL, if the futures belong to different loops, or for unknown flags. */
coro_frame *coro_gather(coro_gather_op *op, coro_future **futs, size_t n, coro_value *results,
                        coro_child_node *nodes, int flags);

/* fut = gather(...), asyncio's way: start watching the futures now and
 * hand back the gather as a future (coro_gather_future) that any number of
 * tasks may await, that takes done callbacks, and that can be cancelled:
 *
 *     coro_gather_start(&self->g.op, NULL, self->g.futs, 3, self->g.results, self->g.nodes, 0);
 *     CORO_AWAIT(coro_gather_future(&self->g.op));   (here, and in other tasks)
 *     ... self->g.results[i] ...
 *     coro_gather_close(&self->g.op);                 (then the storage may go)
 *
 * Its outcome is coro_gather's: CORO_PTR `results` once all are done, or
 * the first error (without CORO_RETURN_ERRORS). coro_future_cancel on it is
 * _GatheringFuture.cancel: it cancels every child still pending and
 * returns 1 if any was, 0 once every child is done (or the gather is); the
 * future is then cancelled when the children are done (even if they
 * caught the cancel). A task awaiting it that is cancelled cancels it the
 * same way (asyncio: the gather is cancelled for every awaiter). `loop` is
 * used only when n == 0 (NULL: the running loop): the future is then done
 * at once with `results`.
 *
 * `op`, `futs`, `results` and `nodes` must stay valid until
 * coro_gather_close has returned 0: a child that finishes after the
 * gather failed still writes its slot. Returns 0; CORO_EINVAL for the
 * arguments coro_gather refuses, or n == 0 with no loop; CORO_ECLOSED if the
 * loop is closed. Allocates nothing. */
int coro_gather_start(coro_gather_op *op, coro_loop *loop, coro_future **futs, size_t n,
                      coro_value *results, coro_child_node *nodes, int flags);
/* The started gather's future; NULL for NULL or a gather not started with
 * coro_gather_start. It belongs to `op`: never free it. */
coro_future *coro_gather_future(coro_gather_op *op);
/* Stop watching: take the callbacks off the children still pending (they
 * keep running) and, if the gather is not done, cancel its future (its
 * awaiters get CORO_ECANCELLED; the children are not cancelled). Returns
 * how many callbacks the loop still holds into `op` (children done whose
 * callbacks have not run): 0 means the storage may go; more means let the
 * loop run a pass (CORO_SLEEP(0)) and call again. CORO_EINVAL for NULL or
 * a gather not started with coro_gather_start. */
int coro_gather_close(coro_gather_op *op);

/* Storage for a gather of up to N children, as one field of your frame:
 *
 *     struct main { coro_frame co; CORO_GATHER_OP(g, 3); ... };
 *     self->g.futs[i] = coro_task_future(task_i);      (fill all N)
 *     CORO_AWAIT(CORO_GATHER(&self->g, 0));
 *     ... self->g.results[i] ...
 *
 * CORO_GATHER gathers all N; for fewer, call coro_gather with the arrays. */
#define CORO_GATHER_OP(name, N)   \
    struct {                      \
        coro_gather_op op;        \
        coro_future *futs[N];     \
        coro_value results[N];    \
        coro_child_node nodes[N]; \
    } name
#define CORO_GATHER(g, flags) \
    coro_gather(&(g)->op, (g)->futs, CORO__COUNTOF((g)->futs), (g)->results, (g)->nodes, (flags))

/* ------------------------------------------------------------------------ */
/* wait (asyncio.wait)                                                      */
/* ------------------------------------------------------------------------ */

/* wait's return_when. */
enum { CORO_ALL_COMPLETED = 0, CORO_FIRST_COMPLETED = 1, CORO_FIRST_EXCEPTION = 2 };

/* The frame of one wait. All fields private. */
typedef struct coro_wait_op {
    coro_frame co;
    coro_future **futs;
    coro_child_node *nodes;
    unsigned char *done;
    size_t n, counter;
    int64_t timeout_ns; /* CORO_NO_DEADLINE: none */
    int return_when;
    int err;
    coro_handle timer;
    coro_future waiter;
} coro_wait_op;

/* await wait(futs, timeout, return_when): wait until the futures are all
 * done (CORO_ALL_COMPLETED), any is done (CORO_FIRST_COMPLETED), any fails
 * with an error (CORO_FIRST_EXCEPTION; a cancelled one is no error; if none
 * fails it is ALL_COMPLETED), or `timeout` seconds have passed. It never
 * cancels the futures, nor fails because of them: on return, done[i] is 1
 * for each future done and 0 for each still pending (done may be NULL), and
 * the result is CORO_INT the number done (0 after a timeout with nothing
 * done). Read each one's outcome with coro_future_result. As asyncio, the
 * callbacks are scheduled: even futures already done are reported after one
 * loop pass.
 *
 * Fails with CORO_ECANCELLED if the awaiting task is cancelled (the futures
 * keep running). Returns NULL (so the await fails with CORO_EINVAL) if `op`
 * is NULL, for an empty set (n == 0: asyncio's ValueError), a NULL `futs`,
 * `nodes` or entry, futures of different loops, an unknown return_when or a
 * NaN timeout. */
static inline coro_frame *coro_wait(coro_wait_op *op, coro_future **futs, size_t n,
                                    coro_child_node *nodes, unsigned char *done, int return_when,
                                    double timeout);
/* The same with the timeout in integer nanoseconds (CORO_NO_DEADLINE: none;
 * no floating point involved, for a build without it). */
coro_frame *coro_wait_ns(coro_wait_op *op, coro_future **futs, size_t n, coro_child_node *nodes,
                         unsigned char *done, int return_when, int64_t timeout_ns);

/* Storage for a wait on N futures, as CORO_GATHER_OP (fields futs, nodes,
 * done):  CORO_AWAIT(CORO_WAIT(&self->w, CORO_FIRST_COMPLETED, 0.5)); */
#define CORO_WAIT_OP(name, N)     \
    struct {                      \
        coro_wait_op op;          \
        coro_future *futs[N];     \
        coro_child_node nodes[N]; \
        unsigned char done[N];    \
    } name
#define CORO_WAIT(w, return_when, timeout)                                                         \
    coro_wait(&(w)->op, (w)->futs, CORO__COUNTOF((w)->futs), (w)->nodes, (w)->done, (return_when), \
              (timeout))

/* ------------------------------------------------------------------------ */
/* as_completed (asyncio.as_completed)                                      */
/* ------------------------------------------------------------------------ */

/* An iterator over futures in completion order, in caller-owned storage.
 * All fields private. */
typedef struct coro_as_completed {
    coro_loop *loop;
    coro_future **futs;
    coro_child_node *nodes;
    size_t n;
    coro_child_node *head, *tail; /* completed, not yet handed out */
    size_t left;                  /* items (futures or timeouts) still to hand out */
    size_t pending;               /* callbacks armed and not yet run */
    size_t timedout;              /* timeouts still to report */
    coro_waitq waiters;           /* next operations waiting */
    coro_handle timer;
    int state;
} coro_as_completed;

/* for f in as_completed(futs, timeout=timeout): start watching n futures
 * (their done callbacks are registered and the timer armed now; asyncio
 * does the same when the iterator is made). `futs` and `nodes` (n entries)
 * and `it` must stay valid until coro_as_completed_close says so. Returns
 * 0; CORO_EINVAL for a NULL `it`, a NULL array or entry with n > 0,
 * futures of different loops, a NaN timeout; CORO_ECLOSED if their loop is
 * closed; CORO_ENOMEM if the timer could not be armed. n == 0 is an empty
 * iteration. */
static inline int coro_as_completed_init(coro_as_completed *it, coro_future **futs, size_t n,
                                         coro_child_node *nodes, double timeout);
/* The same with the timeout in integer nanoseconds (CORO_NO_DEADLINE: none). */
int coro_as_completed_init_ns(coro_as_completed *it, coro_future **futs, size_t n,
                              coro_child_node *nodes, int64_t timeout_ns);
/* How many items the iterator still has to hand out (futures not yet
 * returned by next, plus timeouts not yet reported); 0 for NULL. Loop
 * while this is nonzero: it is asyncio's `for` over the n awaitables. */
size_t coro_as_completed_remaining(const coro_as_completed *it);
/* Stop watching (also when breaking out early): disarm the timer, take the
 * callbacks off the futures still pending, and fail next operations still
 * waiting with CORO_ESTATE. Returns how many callbacks the loop still
 * holds into `it` (children done whose callbacks have not run yet, or a
 * timer that fired): 0 means `it`, `futs` and `nodes` may go now; more
 * means let the loop run one pass first (in a task: CORO_SLEEP(0)), after
 * which close returns 0. Safe to call again; after it every next fails with
 * CORO_ESTATE. CORO_EINVAL for NULL. */
int coro_as_completed_close(coro_as_completed *it);

/* The frame of one next. All fields private. */
typedef struct coro_as_completed_op {
    coro_frame co;
    coro_as_completed *it;
    coro_waiter w;
    coro_future *fut;
    int err;
} coro_as_completed_op;

/* await the next awaitable of as_completed: completes with CORO_PTR the
 * next future to be done (done: read its outcome with coro_future_result;
 * its own error does not fail this await), waiting if none is done yet.
 * Futures come in the order their done callbacks ran. Once the timeout has
 * passed, each future still pending is reported by one next failing with
 * CORO_ETIMEDOUT (futures that completed before the timer ran are still
 * handed out). Fails with CORO_ECANCELLED if the awaiting task is cancelled
 * (nothing is lost: a future it was about to receive goes to the next
 * call), CORO_ESTATE when nothing is left (more nexts than futures) or
 * after close. Several tasks may wait at once; they are served FIFO. NULL
 * if `op` or `it` is NULL. */
coro_frame *coro_as_completed_next(coro_as_completed_op *op, coro_as_completed *it);

/* Storage for as_completed over N futures (fields it, futs, nodes):
 *     CORO_AS_COMPLETED_ITER(ac, 3);   ...   CORO_AS_COMPLETED_INIT(&self->ac, 1.0) */
#define CORO_AS_COMPLETED_ITER(name, N) \
    struct {                            \
        coro_as_completed it;           \
        coro_future *futs[N];           \
        coro_child_node nodes[N];       \
    } name
#define CORO_AS_COMPLETED_INIT(a, timeout) \
    coro_as_completed_init(&(a)->it, (a)->futs, CORO__COUNTOF((a)->futs), (a)->nodes, (timeout))

/* ------------------------------------------------------------------------ */
/* shield (asyncio.shield)                                                  */
/* ------------------------------------------------------------------------ */

/* The frame of one shield. All fields private. */
typedef struct coro_shield_op {
    coro_frame co;
    coro_future *inner;
    coro_child_node node;
    coro_value value;
    int err;
    coro_future outer;
} coro_shield_op;

/* await shield(inner): the outcome of `inner` (a future, or a task via
 * coro_task_future), which a cancel of the awaiting task does not reach:
 * that cancel fails this await with CORO_ECANCELLED at once while `inner`
 * keeps running, and its result stays in `inner` (await or read it later).
 * Cancelling `inner` itself fails the await with CORO_ECANCELLED. A done
 * `inner` gives its outcome without suspending. To shield a coroutine,
 * spawn it as a task first. `inner` must stay valid until the await returns.
 * NULL if `op` or `inner` is NULL. */
coro_frame *coro_shield(coro_shield_op *op, coro_future *inner);

/* ------------------------------------------------------------------------ */
/* Timeout scopes (asyncio.timeout, asyncio.timeout_at)                     */
/* ------------------------------------------------------------------------ */

/* A timeout scope: the frame that runs `async with timeout(...): body`.
 * All fields private; the body may keep a pointer to it to reschedule or
 * query it. */
typedef struct coro_timeout_op {
    coro_frame co;
    coro_frame *body;
    coro_handle timer;
    coro_task *task;
    coro_loop *loop;
    int64_t when;
    int state;
    int cancelling; /* the task's cancelling() at entry */
    int err;
    coro_value result;
    struct coro_timeout_op *unarmed_next; /* on loop->unarmed while `lazy` */
    uint32_t seq;                         /* its place among equal deadlines */
    uint8_t lazy;                         /* entered, its timer not armed yet */
    uint8_t rel;                          /* `when` holds a delay, not a deadline yet */
    coro__scope scope; /* CORO_WITH_TIMEOUT */
} coro_timeout_op;

/* async with timeout(seconds): await `body` (a freshly initialised child
 * frame: it runs inside the awaiting task, as `yield from`) under a
 * deadline. The scope arms a timer (the handle lives in `op`); when it
 * fires before the body is done it cancels the task (coro_task_cancel, so
 * the body's current await fails with CORO_ECANCELLED). When the body
 * ends, the scope disarms the timer and, if it fired, takes its cancel back
 * (coro_task_uncancel): if the body ended with CORO_ECANCELLED and no other
 * cancel request is left beyond those seen at entry, the outcome becomes
 * CORO_ETIMEDOUT; otherwise the cancel propagates (someone else cancelled
 * the task too). The task's cancelling() count is back to its entry value.
 * Every other outcome is the body's own: its result, or its error (even
 * after the deadline, if the body caught the cancel).
 *
 * Scopes nest (a body may await another scope); with equal deadlines only
 * the outermost reports CORO_ETIMEDOUT, the inner ones propagate
 * CORO_ECANCELLED. A cancel from elsewhere inside an unexpired scope stays
 * CORO_ECANCELLED. Fails with CORO_ESTATE, without starting the body,
 * outside a task; CORO_ENOMEM if the timer could not be armed. The deadline
 * is `seconds` from the body's first suspension: the clock is read there (or
 * by coro_timeout_when), not at entry, so a body that never suspends reads
 * no clock; nothing else runs between the entry and that suspension, so the
 * body gets at least `seconds`. NULL if `op` or `body` is NULL, or
 * `seconds` is NaN. */
static inline coro_frame *coro_timeout(coro_timeout_op *op, double seconds, coro_frame *body);
/* async with timeout_at(when): the same with an absolute deadline in loop
 * time (coro_loop_time_ns); CORO_NO_DEADLINE for none. */
coro_frame *coro_timeout_at(coro_timeout_op *op, int64_t when_ns, coro_frame *body);
/* async with timeout(seconds): inside the body itself, no body frame:
 *
 *     struct job { coro_frame co; coro_timeout_op to; ... };
 *
 *     CORO_WITH_TIMEOUT(&self->to, 0.5) {
 *         CORO_AWAIT(...);              any awaits; a return or raise too
 *     } CORO_WITH_END;                  the deadline passed: CORO_ETIMEDOUT
 *                                       is raised here (catch it with CORO_TRY)
 *
 * The same rules as coro_timeout (the deadline cancels the task; the
 * scope takes that cancel back and raises CORO_ETIMEDOUT in its place,
 * reschedule / when / expired work on `op` while the block runs). The
 * block's own outcome goes on: off its end, on after CORO_WITH_END; a
 * CORO_RETURN or an error leaves the body through the scope's exit. A
 * failed entry (CORO_ESTATE outside a task, CORO_ENOMEM, CORO_EINVAL for a
 * NULL `op` or a NaN) is raised before the block, which does not run. See
 * CORO_WITH_END (coro.h) for the rules every inline scope shares. */
#define CORO_WITH_TIMEOUT(op, seconds)                                                             \
    CORO__RAISE_IF(coro__timeout_open_s((op), (seconds)));                                         \
    CORO__WITH_OPEN(&(op)->scope)
/* async with timeout_at(when): the same with a deadline in loop time. */
#define CORO_WITH_TIMEOUT_AT(op, when_ns)                                                          \
    CORO__RAISE_IF(coro__timeout_open((op), (when_ns), 0));                                           \
    CORO__WITH_OPEN(&(op)->scope)
/* Internal: CORO_WITH_TIMEOUT's __aenter__ (rel: `when_ns` is a delay,
 * the deadline is fixed at the first suspension, as coro_timeout's), and
 * coro_timeout's frame. */
int coro__timeout_open(coro_timeout_op *op, int64_t when_ns, int rel);
int coro__timeout_step(coro_frame *co, coro_value *io);
/* The frame form, inline (a scope around a short body is a hot path): only
 * what is read before the entry; the entry sets the rest, and the handle is
 * initialised when the timer is first needed. */
static inline coro_frame *coro__timeout_frame(coro_timeout_op *op, int64_t when_ns, int rel,
                                              coro_frame *body)
{
    if (!op || !body)
        return NULL;
    coro_frame_init(&op->co, coro__timeout_step);
    op->body = body;
    op->when = when_ns;
    op->state = 0; /* created */
    op->lazy = 0;
    op->rel = (uint8_t)rel;
    return &op->co;
}
static inline coro_frame *coro__timeout_in(coro_timeout_op *op, int64_t delay_ns, coro_frame *body)
{
    return coro__timeout_frame(op, delay_ns, 1, body);
}
static inline int coro__timeout_open_s(coro_timeout_op *op, double seconds)
{
    if (seconds != seconds)
        return CORO_EINVAL;
    return coro__timeout_open(op, coro__seconds_to_ns(seconds), 1);
}
/* cm.reschedule(when): move the deadline of a running scope (while its
 * body runs) to `when_ns`, or disable it with CORO_NO_DEADLINE; a deadline
 * already past fires on the next loop pass. Returns 0, CORO_ESTATE if the
 * scope is not running or has expired (asyncio's RuntimeError), CORO_EINVAL
 * for NULL, CORO_ENOMEM if the timer could not be armed. */
int coro_timeout_reschedule(coro_timeout_op *op, int64_t when_ns);
/* cm.when(): the deadline (CORO_NO_DEADLINE if none, or for NULL). */
int64_t coro_timeout_when(const coro_timeout_op *op);
/* cm.expired(): 1 once the deadline passed while the body ran (the timer
 * cancelled the task), even if the body caught it; 0 otherwise (and NULL). */
int coro_timeout_expired(const coro_timeout_op *op);

/* ------------------------------------------------------------------------ */
/* wait_for (asyncio.wait_for, 3.12)                                        */
/* ------------------------------------------------------------------------ */

/* The body wait_for runs under its scope to await a future (private). */
typedef struct coro__await_op {
    coro_frame co;
    coro_future *fut;
} coro__await_op;

/* The frame of one wait_for. All fields private. */
typedef struct coro_wait_for_op {
    coro_frame co;
    coro_timeout_op scope;
    coro__await_op inner;
    coro_frame *body;
    coro_future *fut;
    coro_task *task;
    int64_t when;  /* the timeout in ns: a delay (the scope fixes its deadline) */
    int immediate; /* seconds <= 0 */
    int cancelling;
    int err;
    coro_value result;
} coro_wait_for_op;

/* await wait_for(coroutine, seconds): run `body` (a freshly initialised
 * child frame) in the awaiting task under a timeout scope, exactly as 3.12
 * does `async with timeout(seconds): return await coro`: its outcome, or
 * CORO_ETIMEDOUT once the deadline passed (the body was cancelled and its
 * cleanup has run). As with coro_timeout, the deadline counts from the
 * body's first suspension (no clock is read for a body that never suspends). With seconds <= 0 it fails with CORO_ETIMEDOUT at once
 * and the body never starts. Cancelling the awaiting task cancels the body
 * (CORO_ECANCELLED). NULL if `op` or `body` is NULL, or `seconds` is NaN. */
static inline coro_frame *coro_wait_for(coro_wait_for_op *op, double seconds, coro_frame *body);
/* The same with the timeout in integer nanoseconds (CORO_NO_DEADLINE: none). */
coro_frame *coro_wait_for_ns(coro_wait_for_op *op, int64_t timeout_ns, coro_frame *body);
/* await wait_for(future_or_task, seconds): the future's outcome (its
 * result, its error, CORO_ECANCELLED if it was cancelled by someone else).
 * When the deadline passes first, the future is cancelled (a task: it runs
 * its cleanup) and the await WAITS for it to be done, then fails with
 * CORO_ETIMEDOUT, unless the future ended with a result or an error
 * anyway (a task that caught the cancel, or a result that raced the
 * timer): that outcome is returned. A done future gives its outcome at once,
 * even with seconds <= 0; with seconds <= 0 a pending one is cancelled and
 * waited for at once. Cancelling the awaiting task cancels the future and
 * waits for it the same way, then fails with CORO_ECANCELLED (or gives the
 * future's result if it caught the cancel and returned, as asyncio). NULL
 * if `op` or `fut` is NULL, or `seconds` is NaN. */
static inline coro_frame *coro_wait_for_future(coro_wait_for_op *op, double seconds, coro_future *fut);
/* The same with the timeout in integer nanoseconds (CORO_NO_DEADLINE: none). */
coro_frame *coro_wait_for_future_ns(coro_wait_for_op *op, int64_t timeout_ns, coro_future *fut);

/* ------------------------------------------------------------------------ */
/* Task groups (asyncio.TaskGroup)                                          */
/* ------------------------------------------------------------------------ */

/* How a group holds one child (private). */
typedef struct coro__tg_link {
    coro_done_node done;
    coro__link link; /* on the group's children */
    struct coro_task_group_op *group;
    coro_task *task;
    unsigned flags;
} coro__tg_link;

/* A child task in caller-owned storage, for coro_task_group_start (the
 * no-allocation way). `task` is public: await it, read its result; it is
 * never freed by coro. The link is private. */
typedef struct coro_group_task {
    coro_task task;
    coro__tg_link link;
} coro_group_task;

/* A task group: the frame that runs `async with TaskGroup() as tg: body`.
 * All fields private. */
typedef struct coro_task_group_op {
    coro_frame co;
    coro_frame *body;
    int *errors;
    size_t cap;
    coro_loop *loop;
    coro_task *parent;       /* the task running the group */
    coro__list children;     /* children whose done callback has not run */
    size_t npending, nerrors;
    int first_error;
    unsigned flags;
    int body_err, err;
    uint8_t propagate_cancel, pending_cancel;
    coro_value body_result;
    coro_future on_completed;
    coro__scope scope; /* CORO_WITH_TASK_GROUP */
} coro_task_group_op;

/* async with TaskGroup() as tg: body. Runs `body` (a freshly initialised
 * child frame, in the awaiting task) with the group open: the body, its
 * children, or anyone holding `g`, add tasks with coro_task_group_spawn or
 * coro_task_group_start. The body needs `g` to do so: give its frame a field
 * pointing at the group, filled before the await:
 *
 *     struct body { coro_frame co; coro_task_group_op *tg; ... };
 *     b->tg = &self->tg;
 *     CORO_AWAIT(coro_task_group(&self->tg, &b->co, self->errs, 4));
 *
 * When the body ends, the group waits for every child. The first child to
 * fail (with an error: a cancelled child is not a failure) cancels every
 * other child and the body (the task is cancelled, so the body's current
 * await fails with CORO_ECANCELLED; the group takes that cancel back at the
 * end). A body failing with an error does the same to the children.
 *
 * A cancel of the task from outside (reaching the body, or the wait for
 * the children) cancels every child and the body too, and is waited out the
 * same way.
 *
 * Outcome, once no child is left: if any child or the body failed with an
 * error, the first error (children's errors in the order they failed, then
 * the body's: C has no ExceptionGroup; an outside cancel that came too is
 * then re-armed, so the task's next suspension fails with CORO_ECANCELLED,
 * as asyncio 3.13 does); else CORO_ECANCELLED if the task was cancelled
 * from outside; else the body's result. The group's own cancel of the task
 * is taken back (coro_task_uncancel): a failure never leaves the task
 * cancelled. Every failure's code goes to errors[0..cap-1] in that order
 * (errors may be NULL with cap 0); coro_task_group_error_count says how
 * many there were in all.
 *
 * Fails with CORO_ESTATE outside a task (the body does not start). `g`, the
 * body and `errors` must stay valid until the await returns; re-initialise
 * `g` to use it again. NULL if `g` or `body` is NULL, or errors is NULL
 * with cap > 0. */
coro_frame *coro_task_group(coro_task_group_op *g, coro_frame *body, int *errors, size_t cap);

/* async with TaskGroup() as tg: inside the body itself, no body frame:
 *
 *     struct main { coro_frame co; coro_task_group_op tg; int i; ... };
 *
 *     CORO_WITH_TASK_GROUP(&self->tg) {
 *         for (self->i = 0; self->i < 3; self->i++)
 *             coro_task_group_spawn(&self->tg, worker(self->i), NULL);
 *         CORO_AWAIT(...);              the block may await too
 *     } CORO_WITH_END;                  waits for every child here
 *
 * The same rules as coro_task_group, with the block as the body: the first
 * child to fail cancels the others and the block's current await, and at
 * CORO_WITH_END the first error is raised (catch it with CORO_TRY;
 * coro_task_group_error_count says how many there were; no errors array).
 * A block that returns or fails waits for the children the same way on
 * its way out. CORO_ESTATE outside a task (raised before the block). */
#define CORO_WITH_TASK_GROUP(g)                                                                    \
    CORO__RAISE_IF(coro__task_group_open(g));                                                      \
    CORO__WITH_OPEN(&(g)->scope)
/* Internal: CORO_WITH_TASK_GROUP's __aenter__. */
int coro__task_group_open(coro_task_group_op *g);

/* tg.create_task(coro): spawn `root` (a freshly initialised frame) as a
 * task of the group (coro_spawn: the task is allocated, plus one small
 * node the group frees when the task is done). With `out` non-NULL the
 * task is also yours, as coro_spawn's: read it, and coro_task_release it
 * when you no longer need it (even after the group finished); with `out`
 * NULL the group drops it for you and it is freed once done. A root from
 * coro_frame_new belongs to the task, and is freed even if this fails
 * (except when `g` was never entered: no loop is known then).
 * Returns 0; CORO_ESTATE if the group is not running (not entered yet, or
 * finished: its await returned or it has exited with no child left) or is
 * shutting down after a failure or a cancel (asyncio's RuntimeError);
 * CORO_EINVAL for NULL `g` or `root`, or a root already started or running;
 * CORO_ENOMEM. *out is NULL on failure. */
int coro_task_group_spawn(coro_task_group_op *g, coro_frame *root, coro_task **out);
/* The same in caller-owned storage, allocating nothing: the task is
 * &c->task (coro_task_init), never freed by coro; `c` and `root` must stay
 * valid until the task is done and the group's await has returned.
 * Same return codes (a root is never freed on failure, as coro_task_init). */
int coro_task_group_start(coro_task_group_op *g, coro_group_task *c, coro_frame *root);
/* How many failures the group has seen so far (children and body; may be
 * more than the `cap` given). 0 for NULL. */
size_t coro_task_group_error_count(const coro_task_group_op *g);

/* ---- the seconds forms: inline over the nanosecond ones, so a program that
 * never calls them links no floating point ---- */

static inline coro_frame *coro_wait(coro_wait_op *op, coro_future **futs, size_t n,
                                    coro_child_node *nodes, unsigned char *done, int return_when,
                                    double timeout)
{
    if (timeout != timeout)
        return NULL;
    return coro_wait_ns(op, futs, n, nodes, done, return_when, coro__seconds_to_ns(timeout));
}

static inline int coro_as_completed_init(coro_as_completed *it, coro_future **futs, size_t n,
                                         coro_child_node *nodes, double timeout)
{
    if (timeout != timeout)
        return CORO_EINVAL;
    return coro_as_completed_init_ns(it, futs, n, nodes, coro__seconds_to_ns(timeout));
}

static inline coro_frame *coro_timeout(coro_timeout_op *op, double seconds, coro_frame *body)
{
    if (seconds != seconds)
        return NULL;
    return coro__timeout_in(op, coro__seconds_to_ns(seconds), body);
}

static inline coro_frame *coro_wait_for(coro_wait_for_op *op, double seconds, coro_frame *body)
{
    return seconds == seconds ? coro_wait_for_ns(op, coro__seconds_to_ns(seconds), body) : NULL;
}

static inline coro_frame *coro_wait_for_future(coro_wait_for_op *op, double seconds,
                                               coro_future *fut)
{
    return seconds == seconds ? coro_wait_for_future_ns(op, coro__seconds_to_ns(seconds), fut)
                              : NULL;
}

#endif
