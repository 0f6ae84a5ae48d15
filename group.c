/*
 * group.c - running things together: gather, wait, as_completed, shield,
 * timeout scopes, wait_for and task groups.
 *
 * The mapping to CPython 3.12:
 *   tasks.py gather, _GatheringFuture   coro_gather: an `outer` future the
 *                                        task awaits, one done node per child
 *                                        (gather_child_done = _done_callback)
 *   tasks.py wait, _wait                 coro_wait: a `waiter` future, a timer
 *                                        that releases it, _on_completion
 *   tasks.py as_completed                coro_as_completed: asyncio's `done`
 *                                        Queue is a FIFO of completed nodes
 *                                        plus a waitq of next operations;
 *                                        _on_timeout / _on_completion
 *   tasks.py shield                      coro_shield: _inner_done_callback
 *                                        completes `outer`; the cancel of the
 *                                        awaiting task only reaches `outer`
 *   timeouts.py Timeout                  coro_timeout_op: to_enter/to_exit are
 *                                        __aenter__/__aexit__, to_on_timeout is
 *                                        _on_timeout, the states are _State's
 *   tasks.py wait_for (3.12)             coro_wait_for*: `async with
 *                                        timeout(): return await fut`, and
 *                                        _cancel_and_wait for timeout <= 0
 *   taskgroups.py TaskGroup              coro_task_group_op: tg_step is
 *                                        __aenter__ + body + _aexit,
 *                                        tg_child_done is _on_task_done,
 *                                        tg_abort is _abort
 *
 * Where asyncio overrides Future.cancel (_GatheringFuture) we cannot: the
 * awaiting task's cancel cancels our plain `outer` future, and the
 * operation reacts when the task wakes (one loop pass later than asyncio).
 *
 * Invariant: an operation frame never finishes while the loop holds a
 * pointer into it. A timer handle is always taken back by
 * coro_handle_cancel (from the heap or the ready queue); a done node cannot
 * be once its future is done (it sits on the ready queue). The cleanup of
 * each operation takes back what it can and, while a node is still held,
 * yields one loop pass: FIFO order guarantees that what was queued before
 * the yield has run when the task resumes. So the caller may reuse or free
 * an operation's storage as soon as its await returns.
 *
 * Never: allocate (except coro_task_group_spawn: the task and its link);
 * call a user callback inline; keep a pointer to an operation after it
 * finished.
 */
#include "coro_int.h"

#include <limits.h>
#include <string.h>

/* ---- shared: child nodes, timer handles, deadlines ---- */

enum { NODE_ARMED = 1u, NODE_RAN = 2u };

static int node_arm(coro_child_node *c, coro_future *f, coro_done_fn fn, void *owner)
{
    c->owner = owner;
    c->next = NULL;
    c->state = NODE_ARMED;
    return coro_future_add_done_node(f, &c->done, fn, c);
}

/* In a done callback: mark the node as run and return its owner. */
static void *node_ran(coro_child_node *c)
{
    c->state |= NODE_RAN;
    return c->owner;
}

/* Take back the nodes still armed: those on a pending future come off;
 * those whose future is done are queued and can't: returns their count. */
static size_t nodes_detach(coro_child_node *nodes, coro_future **futs, size_t n, coro_done_fn fn)
{
    size_t held = 0;
    for (size_t i = 0; i < n; i++) {
        if (nodes[i].state != NODE_ARMED)
            continue;
        if (coro_future_done(futs[i])) {
            held++;
        } else {
            coro_future_remove_done_callback(futs[i], fn, &nodes[i]);
            nodes[i].state = 0;
        }
    }
    return held;
}

static void nodes_reset(coro_child_node *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nodes[i].state = 0;
}

/* The loop still holds `h`: armed in the heap, or queued to run. */
static bool handle_held(const coro_handle *h)
{
    return (h->flags & (HANDLE_F_READY | HANDLE_F_TIMER)) != 0;
}

/* In the heap: coro_handle_cancel takes it out at once. */
static bool handle_in_heap(const coro_handle *h)
{
    return (h->flags & HANDLE_F_TIMER) && h->t.heap_index != CORO__HEAP_NONE;
}

/* Timeouts are kept in integer nanoseconds (the double forms convert once,
 * with coro__seconds_to_ns); a deadline is taken when the wait starts. */
static int64_t deadline_in(coro_loop *loop, int64_t timeout_ns)
{
    return coro__deadline_after(loop ? coro__now(loop) : coro__clock_ns(), timeout_ns);
}

/* Every entry non-NULL and on the loop of the first. */
static bool same_loop(coro_future **futs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!futs[i] || futs[i]->loop != futs[0]->loop)
            return false;
    return true;
}

static void release_future(coro_future *f)
{
    if (!coro_future_done(f))
        coro_future_set_result(f, coro_none());
}

/* ---- gather ---- */

static void gather_finish(coro_gather_op *op, int code)
{
    op->finished = 1;
    op->code = code;
    if (!op->started) {
        release_future(&op->outer); /* the awaiting gather_step reads `code` */
        return;
    }
    if (code == CORO_ECANCELLED) { /* the hook goes: a plain cancel now */
        op->outer.tflags &= (uint8_t)~FUT_T_CANCEL_HOOK;
        coro_future_cancel(&op->outer);
    } else if (code != 0) {
        coro_future_set_error(&op->outer, code);
    } else {
        coro_future_set_result(&op->outer, coro_ptr(op->results));
    }
}

/* _done_callback */
static void gather_child_done(coro_future *f, void *arg)
{
    coro_child_node *c = arg;
    coro_gather_op *op = node_ran(c);
    coro_value v = coro_none();
    int err = coro_future_result(f, &v);
    op->results[c - op->nodes] = err ? coro_error(err) : v;
    op->ndone++;
    if (op->finished)
        return;
    if (err && !(op->flags & CORO_RETURN_ERRORS))
        gather_finish(op, err);
    else if (op->ndone == op->n)
        gather_finish(op, op->cancel_requested ? CORO_ECANCELLED : 0);
}

/* _GatheringFuture.cancel: the awaiting task's cancel reaches `outer`;
 * the children are cancelled at once (a child's failure can no longer
 * overtake the cancel), and gather ends with CORO_ECANCELLED once they
 * are done. 1 if a child was cancelled, else 0 (the task then keeps the
 * request for its next step, as asyncio's _must_cancel). */
static int gather_outer_cancel(coro_future *outer)
{
    coro_gather_op *op = CORO__CONTAINER(outer, coro_gather_op, outer);
    int cancelled = 0;
    for (size_t i = 0; i < op->n; i++)
        if (op->nodes[i].state == NODE_ARMED) /* not detached by close */
            cancelled |= coro_future_cancel(op->futs[i]);
    if (cancelled)
        op->cancel_requested = 1;
    return cancelled;
}

static int gather_start(coro_gather_op *op)
{
    nodes_reset(op->nodes, op->n);
    for (size_t i = 0; i < op->n; i++)
        op->results[i] = coro_none();
    int rc = coro_future_init(&op->outer, op->loop);
    coro__future_set_kind(&op->outer, FUT_KIND_GATHER);
    if (rc == 0)
        coro__future_set_cancel_hook(&op->outer, gather_outer_cancel);
    for (size_t i = 0; rc == 0 && i < op->n; i++)
        rc = node_arm(&op->nodes[i], op->futs[i], gather_child_done, op);
    return rc;
}

/* The awaiting task was cancelled (its cancel hit `outer`): cancel the
 * children and wait on, as _GatheringFuture.cancel. */
static void gather_cancel(coro_gather_op *op)
{
    op->cancel_requested = 1;
    for (size_t i = 0; i < op->n; i++)
        if (!coro_future_done(op->futs[i]))
            coro_future_cancel(op->futs[i]);
    coro_future_init(&op->outer, op->loop);
    coro__future_set_kind(&op->outer, FUT_KIND_GATHER);
    coro__future_set_cancel_hook(&op->outer, gather_outer_cancel);
}

static CORO_FN(gather_step)
{
    coro_gather_op *self = CORO_SELF(coro_gather_op);
    CORO_BEGIN();
    if (self->n == 0)
        CORO_RETURN(coro_ptr(self->results));
    self->err = gather_start(self);
    if (self->err)
        CORO_RAISE(self->err);
    while (!self->finished) {
        CORO_AWAIT_ERR(&self->outer, self->err);
        if (self->finished || self->err != CORO_ECANCELLED)
            break; /* done, or refused (a task of another loop: CORO_EINVAL) */
        gather_cancel(self);
    }
    if (!self->err) /* else a cancel that came after `outer` completed */
        self->err = self->code;
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_ptr(self->results));
    CORO_FINALLY
    while (nodes_detach(self->nodes, self->futs, self->n, gather_child_done) > 0)
        CORO_YIELD(coro_none());
    CORO_END();
}

static bool gather_args_ok(coro_gather_op *op, coro_future **futs, size_t n, coro_value *results,
                           coro_child_node *nodes, int flags)
{
    if (!op || (flags & ~CORO_RETURN_ERRORS))
        return false;
    return n == 0 || (futs && results && nodes && same_loop(futs, n));
}

/* gather() as asyncio returns it: a future, watching from now on. */
int coro_gather_start(coro_gather_op *op, coro_loop *loop, coro_future **futs, size_t n,
                      coro_value *results, coro_child_node *nodes, int flags)
{
    if (!gather_args_ok(op, futs, n, results, nodes, flags))
        return CORO_EINVAL;
    loop = n > 0 ? futs[0]->loop : coro__loop_or_running(loop);
    if (!loop)
        return CORO_EINVAL;
    memset(op, 0, sizeof *op);
    op->futs = futs;
    op->results = results;
    op->nodes = nodes;
    op->n = n;
    op->loop = loop;
    op->flags = flags;
    op->started = 1;
    int rc = gather_start(op);
    if (rc != 0) {
        nodes_detach(nodes, futs, n, gather_child_done);
        return rc;
    }
    if (n == 0)
        gather_finish(op, 0);
    return 0;
}

coro_future *coro_gather_future(coro_gather_op *op) { return op && op->started ? &op->outer : NULL; }

int coro_gather_close(coro_gather_op *op)
{
    if (!op || !op->started)
        return CORO_EINVAL;
    size_t held = nodes_detach(op->nodes, op->futs, op->n, gather_child_done);
    if (!op->finished) { /* abandoned: its awaiters are not left waiting */
        op->finished = 1;
        op->outer.tflags &= (uint8_t)~FUT_T_CANCEL_HOOK;
        coro_future_cancel(&op->outer);
    }
    return (int)held;
}

coro_frame *coro_gather(coro_gather_op *op, coro_future **futs, size_t n, coro_value *results,
                        coro_child_node *nodes, int flags)
{
    if (!gather_args_ok(op, futs, n, results, nodes, flags))
        return NULL;
    memset(op, 0, sizeof *op);
    coro_frame_init(&op->co, gather_step);
    op->futs = futs;
    op->results = results;
    op->nodes = nodes;
    op->n = n;
    op->loop = n > 0 ? futs[0]->loop : NULL;
    op->flags = flags;
    return &op->co;
}

/* ---- wait ---- */

/* _on_completion */
static void wait_child_done(coro_future *f, void *arg)
{
    coro_child_node *c = arg;
    coro_wait_op *op = node_ran(c);
    op->counter--;
    if (op->counter == 0 || op->return_when == CORO_FIRST_COMPLETED ||
        (op->return_when == CORO_FIRST_EXCEPTION && !coro_future_cancelled(f) &&
         coro_future_error(f) != 0))
        release_future(&op->waiter);
}

/* _release_waiter */
static int wait_timed_out(void *arg)
{
    coro_wait_op *op = arg;
    release_future(&op->waiter);
    return 0;
}

static int wait_start(coro_wait_op *op)
{
    coro_loop *loop = op->futs[0]->loop;
    coro_handle_init(&op->timer);
    nodes_reset(op->nodes, op->n);
    op->counter = op->n;
    int rc = coro_future_init(&op->waiter, loop);
    coro__future_set_kind(&op->waiter, FUT_KIND_WAIT);
    if (rc == 0 && op->timeout_ns != CORO_NO_DEADLINE)
        rc = coro_call_at(loop, &op->timer, deadline_in(loop, op->timeout_ns), wait_timed_out, op);
    for (size_t i = 0; rc == 0 && i < op->n; i++)
        rc = node_arm(&op->nodes[i], op->futs[i], wait_child_done, op);
    return rc;
}

static size_t wait_collect(coro_wait_op *op)
{
    size_t ndone = 0;
    for (size_t i = 0; i < op->n; i++) {
        int d = coro_future_done(op->futs[i]);
        ndone += (size_t)d;
        if (op->done)
            op->done[i] = (unsigned char)d;
    }
    return ndone;
}

static size_t wait_detach(coro_wait_op *op)
{
    coro_handle_cancel(&op->timer);
    return nodes_detach(op->nodes, op->futs, op->n, wait_child_done) + handle_held(&op->timer);
}

static CORO_FN(wait_step)
{
    coro_wait_op *self = CORO_SELF(coro_wait_op);
    CORO_BEGIN();
    self->err = wait_start(self);
    if (self->err == 0)
        CORO_AWAIT_ERR(&self->waiter, self->err);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_int((int64_t)wait_collect(self)));
    CORO_FINALLY
    while (wait_detach(self) > 0)
        CORO_YIELD(coro_none());
    CORO_END();
}

coro_frame *coro_wait_ns(coro_wait_op *op, coro_future **futs, size_t n, coro_child_node *nodes,
                         unsigned char *done, int return_when, int64_t timeout_ns)
{
    if (!op || n == 0 || !futs || !nodes || !same_loop(futs, n))
        return NULL;
    if (return_when != CORO_ALL_COMPLETED && return_when != CORO_FIRST_COMPLETED &&
        return_when != CORO_FIRST_EXCEPTION)
        return NULL;
    memset(op, 0, sizeof *op);
    coro_frame_init(&op->co, wait_step);
    op->futs = futs;
    op->nodes = nodes;
    op->done = done;
    op->n = n;
    op->return_when = return_when;
    op->timeout_ns = timeout_ns;
    return &op->co;
}

/* ---- as_completed ---- */

enum { AC_IDLE = 0, AC_ACTIVE, AC_CLOSED };

/* _on_completion: the future joins the FIFO of done ones. */
static void ac_child_done(coro_future *f, void *arg)
{
    coro_child_node *c = arg;
    coro_as_completed *it = node_ran(c);
    (void)f;
    it->pending--;
    if (it->tail)
        it->tail->next = c;
    else
        it->head = c;
    it->tail = c;
    if (it->pending == 0)
        coro_handle_cancel(&it->timer);
    coro__waitq_wake_first(&it->waiters, coro_none());
}

/* _on_timeout: what is still pending is reported as timed out; futures
 * already done (their callback queued) still come as themselves. */
static int ac_timed_out(void *arg)
{
    coro_as_completed *it = arg;
    for (size_t i = 0; i < it->n; i++) {
        if (it->nodes[i].state != NODE_ARMED || coro_future_done(it->futs[i]))
            continue;
        coro_future_remove_done_callback(it->futs[i], ac_child_done, &it->nodes[i]);
        it->nodes[i].state = 0;
        it->pending--;
        it->timedout++;
    }
    coro__waitq_wake_all(&it->waiters, coro_none());
    return 0;
}

int coro_as_completed_init_ns(coro_as_completed *it, coro_future **futs, size_t n,
                              coro_child_node *nodes, int64_t timeout_ns)
{
    if (!it || (n > 0 && (!futs || !nodes || !same_loop(futs, n))))
        return CORO_EINVAL;
    memset(it, 0, sizeof *it);
    coro_handle_init(&it->timer);
    if (n == 0)
        return 0;
    it->loop = futs[0]->loop;
    if (it->loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    it->futs = futs;
    it->nodes = nodes;
    it->n = it->left = it->pending = n;
    nodes_reset(nodes, n);
    int rc = 0;
    if (timeout_ns != CORO_NO_DEADLINE)
        rc = coro_call_at(it->loop, &it->timer, deadline_in(it->loop, timeout_ns), ac_timed_out, it);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = node_arm(&nodes[i], futs[i], ac_child_done, it);
    if (rc != 0) {
        coro_as_completed_close(it);
        return rc;
    }
    it->state = AC_ACTIVE;
    return 0;
}

size_t coro_as_completed_remaining(const coro_as_completed *it)
{
    return it && it->state == AC_ACTIVE ? it->left : 0;
}

int coro_as_completed_close(coro_as_completed *it)
{
    if (!it)
        return CORO_EINVAL;
    it->state = AC_CLOSED;
    coro_handle_cancel(&it->timer);
    size_t held = nodes_detach(it->nodes, it->futs, it->n, ac_child_done) + handle_held(&it->timer);
    coro__waitq_fail_all(&it->waiters, CORO_ESTATE);
    return held > INT_MAX ? INT_MAX : (int)held;
}

/* Take the next item: 1 with the future in op->fut, 0 with a timeout in
 * op->err, -1 when the caller must wait. */
static int ac_take(coro_as_completed_op *op)
{
    coro_as_completed *it = op->it;
    if (it->head) {
        coro_child_node *c = it->head;
        it->head = c->next;
        if (!it->head)
            it->tail = NULL;
        it->left--;
        op->fut = it->futs[c - it->nodes];
        return 1;
    }
    if (it->timedout) {
        it->timedout--;
        it->left--;
        op->err = CORO_ETIMEDOUT;
        return 0;
    }
    return -1;
}

/* A next that was woken may have been cancelled before it ran: pass what
 * is ready on to the next waiter (asyncio's Queue.get does the same). */
static void ac_pass_on(coro_as_completed *it)
{
    if (it->head || it->timedout)
        coro__waitq_wake_first(&it->waiters, coro_none());
}

static CORO_FN(ac_next_step)
{
    coro_as_completed_op *self = CORO_SELF(coro_as_completed_op);
    CORO_BEGIN();
    for (;;) {
        if (self->it->state != AC_ACTIVE || (self->it->left == 0))
            CORO_RAISE(CORO_ESTATE);
        if (ac_take(self) >= 0)
            break;
        self->err = coro__waitq_push(&self->it->waiters, &self->w, self->it->loop, FUT_KIND_AS_COMPLETED);
        if (self->err)
            CORO_RAISE(self->err);
        CORO_AWAIT_ERR(&self->w.fut, self->err);
        coro__waitq_remove(&self->w);
        if (self->err && self->err != CORO_ESTATE)
            ac_pass_on(self->it);
        if (self->err)
            CORO_RAISE(self->err);
    }
    if (self->it->left == 0) /* more nexts than items: they fail */
        coro__waitq_fail_all(&self->it->waiters, CORO_ESTATE);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(coro_ptr(self->fut));
    CORO_END();
}

coro_frame *coro_as_completed_next(coro_as_completed_op *op, coro_as_completed *it)
{
    if (!op || !it)
        return NULL;
    memset(op, 0, sizeof *op);
    coro_frame_init(&op->co, ac_next_step);
    op->it = it;
    return &op->co;
}

/* ---- shield ---- */

/* _inner_done_callback */
static void shield_inner_done(coro_future *f, void *arg)
{
    coro_child_node *c = arg;
    coro_shield_op *op = node_ran(c);
    if (coro_future_done(&op->outer)) { /* outer was cancelled: mark retrieved */
        if (!coro_future_cancelled(f))
            coro_future_error(f);
        return;
    }
    release_future(&op->outer);
}

static CORO_FN(shield_step)
{
    coro_shield_op *self = CORO_SELF(coro_shield_op);
    CORO_BEGIN();
    if (!coro_future_done(self->inner)) {
        self->err = coro_future_init(&self->outer, self->inner->loop);
        coro__future_set_kind(&self->outer, FUT_KIND_SHIELD);
        if (self->err == 0)
            self->err = node_arm(&self->node, self->inner, shield_inner_done, self);
        if (self->err == 0)
            CORO_AWAIT_ERR(&self->outer, self->err);
        if (self->err) /* the awaiting task was cancelled: `inner` runs on */
            CORO_RAISE(self->err);
    }
    self->err = coro_future_result(self->inner, &self->value);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(self->value);
    CORO_FINALLY
    while (nodes_detach(&self->node, &self->inner, 1, shield_inner_done) > 0)
        CORO_YIELD(coro_none());
    CORO_END();
}

coro_frame *coro_shield(coro_shield_op *op, coro_future *inner)
{
    if (!op || !inner)
        return NULL;
    memset(op, 0, sizeof *op);
    coro_frame_init(&op->co, shield_step);
    op->inner = inner;
    return &op->co;
}

/* ---- timeout scopes ---- */

/* timeouts.py _State */
enum { TO_CREATED = 0, TO_ENTERED, TO_EXPIRING, TO_EXPIRED, TO_EXITED };

/* _on_timeout. A reschedule while this run was queued may have moved or
 * disabled the deadline: look again. */
static int to_on_timeout(void *arg)
{
    coro_timeout_op *op = arg;
    if (op->state != TO_ENTERED || op->when == CORO_NO_DEADLINE)
        return 0;
    if (op->when > coro__now(op->loop))
        return coro_call_at(op->loop, &op->timer, op->when, to_on_timeout, op);
    op->state = TO_EXPIRING;
    coro_task_cancel(op->task);
    return 0;
}

/* reschedule: a timer in the heap comes out and is armed again; one already
 * queued to run is left alone: to_on_timeout reads the new deadline. A
 * deadline already past runs with call_soon, as asyncio's, so that it comes
 * before whatever the body queues next (timeout(0) + sleep(0) times out). */
static int to_arm(coro_timeout_op *op)
{
    if (handle_in_heap(&op->timer))
        coro_handle_cancel(&op->timer);
    if (op->when == CORO_NO_DEADLINE || handle_held(&op->timer))
        return 0;
    if (op->when <= coro__now(op->loop))
        return coro_call_soon(op->loop, &op->timer, to_on_timeout, op);
    return coro_call_at(op->loop, &op->timer, op->when, to_on_timeout, op);
}

/* Lazy arming. A scope whose deadline is still ahead arms no timer when it
 * is entered: it takes its place among equal deadlines (a timer sequence
 * number) and waits on the loop's list of unarmed scopes. The task's next
 * suspension arms them all (task.c calls coro__timeouts_arm before it
 * parks), and a scope left before any suspension just leaves the list. A
 * body that never suspends costs no timer at all (timeout_churn), and the
 * timers fire in the order eager arming would give: nothing can run
 * between the entry and the task's suspension, and the place is kept. */
static void to_unarmed_remove(coro_timeout_op *op)
{
    coro_timeout_op **p = &op->loop->unarmed;
    while (*p && *p != op) /* the innermost scope: the first, in practice */
        p = &(*p)->unarmed_next;
    if (*p)
        *p = op->unarmed_next;
    op->lazy = 0;
    if (!op->loop->unarmed)
        op->task->fut.tflags &= (uint8_t)~TASK_F_UNARMED;
}

/* A relative scope's deadline (coro_timeout, CORO_WITH_TIMEOUT), fixed at
 * its first need: the body's first suspension, or coro_timeout_when. */
static void to_fix(coro_timeout_op *op, int64_t now)
{
    if (op->rel) {
        op->rel = 0;
        op->when = coro__deadline_after(now, op->when);
    }
}

void coro__timeouts_arm(coro_loop *loop)
{
    coro_timeout_op *op = loop->unarmed;
    int64_t now = op ? coro__now(loop) : 0; /* one clock read for them all */
    loop->unarmed = NULL;
    for (; op; op = op->unarmed_next) {
        op->lazy = 0;
        to_fix(op, now);
        coro_handle_init(&op->timer); /* a lazy scope's handle waits for this */
        if (coro__call_at_seq(loop, &op->timer, op->when, to_on_timeout, op, op->seq) != 0) {
            op->state = TO_EXPIRING; /* no room for the timer: time out now, never hang */
            coro_task_cancel(op->task);
        }
    }
}

/* The deadline is still ahead: the scope may arm lazily. A positive finite
 * delay is ahead by definition (no clock read); any other relative one is
 * fixed here, and an absolute one compared with the clock. */
static CORO__NOINLINE bool to_ahead_slow(coro_timeout_op *op)
{
    int64_t now = coro__now(op->loop);
    to_fix(op, now);
    return op->when != CORO_NO_DEADLINE && op->when > now;
}

static inline CORO__ALWAYS_INLINE bool to_ahead(coro_timeout_op *op)
{
    if (op->rel && op->when > 0 && op->when != CORO_NO_DEADLINE)
        return true;
    return to_ahead_slow(op);
}

/* __aenter__ (inlined into coro__timeout_step, the frame form's hot path) */
static inline CORO__ALWAYS_INLINE int to_enter(coro_timeout_op *op)
{
    op->loop = coro_get_running_loop(); /* one thread-local read for both */
    op->task = op->loop ? op->loop->current : NULL;
    if (!op->task)
        return CORO_ESTATE; /* "Timeout should be used inside a task" */
    op->cancelling = coro__task_cancelling(op->task);
    op->state = TO_ENTERED;
    if (to_ahead(op)) {
        op->seq = op->loop->timer_seq++;
        op->lazy = 1;
        op->unarmed_next = op->loop->unarmed;
        op->loop->unarmed = op;
        op->task->fut.tflags |= TASK_F_UNARMED; /* its next suspension arms it */
        return 0;
    }
    coro_handle_init(&op->timer);
    int rc = to_arm(op); /* none, or already due: call_soon, as asyncio */
    if (rc != 0)
        op->state = TO_EXITED;
    return rc;
}

/* __aexit__: the body ended with `err`; returns the scope's outcome. */
static int to_exit(coro_timeout_op *op, int err)
{
    if (op->lazy)
        to_unarmed_remove(op);
    else
        coro_handle_cancel(&op->timer);
    if (op->state == TO_EXPIRING) {
        op->state = TO_EXPIRED;
        /* uncancel first, always: our own cancel request is taken back */
        if (coro_task_uncancel(op->task) <= op->cancelling && err == CORO_ECANCELLED)
            err = CORO_ETIMEDOUT;
    } else if (op->state == TO_ENTERED) {
        op->state = TO_EXITED;
    }
    return err;
}

CORO_FN(coro__timeout_step)
{
    coro_timeout_op *self = CORO_SELF(coro_timeout_op);
    CORO_BEGIN();
    self->err = to_enter(self);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT_ERR(self->body, self->err);
    self->result = CORO_RESULT;
    self->err = to_exit(self, self->err); /* cancels the timer: never held after */
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(self->result);
    CORO_END();
}

_Static_assert(TO_CREATED == 0, "coro__timeout_frame (coro_group.h) writes 0");

coro_frame *coro_timeout_at(coro_timeout_op *op, int64_t when_ns, coro_frame *body)
{
    return coro__timeout_frame(op, when_ns, 0, body);
}

/* The same scope inside the caller's body (CORO_WITH_TIMEOUT_AT). */
static int to_scope_exit(coro__scope *s, coro_value *io)
{
    coro_timeout_op *op = CORO__CONTAINER(s, coro_timeout_op, scope);
    int err = to_exit(op, coro_value_error(s->outcome)); /* the timer is never held after */
    *io = s->outcome;
    if (err != coro_value_error(*io))
        *io = coro_error(err); /* our cancel became CORO_ETIMEDOUT */
    return 0;
}

int coro__timeout_open(coro_timeout_op *op, int64_t when_ns, int rel)
{
    if (!op)
        return CORO_EINVAL;
    memset(op, 0, sizeof *op);
    op->when = when_ns;
    op->rel = (uint8_t)rel;
    op->state = TO_CREATED;
    op->scope.exit = to_scope_exit;
    return to_enter(op);
}

int coro_timeout_reschedule(coro_timeout_op *op, int64_t when_ns)
{
    if (!op)
        return CORO_EINVAL;
    if (op->state != TO_ENTERED)
        return CORO_ESTATE;
    op->when = when_ns;
    op->rel = 0;
    if (op->lazy) {
        to_unarmed_remove(op); /* armed now, at its new deadline (a new place, as asyncio) */
        coro_handle_init(&op->timer);
    }
    return to_arm(op);
}

int64_t coro_timeout_when(const coro_timeout_op *op)
{
    if (!op)
        return CORO_NO_DEADLINE;
    if (op->rel && op->state == TO_ENTERED) /* asked first: fixed now, kept after */
        to_fix((coro_timeout_op *)op, coro__now(op->loop));
    return op->rel ? CORO_NO_DEADLINE : op->when;
}

int coro_timeout_expired(const coro_timeout_op *op)
{
    return op && (op->state == TO_EXPIRING || op->state == TO_EXPIRED);
}

/* ---- wait_for ---- */

/* return await fut */
static CORO_FN(await_step)
{
    coro__await_op *self = CORO_SELF(coro__await_op);
    CORO_BEGIN();
    CORO_AWAIT(self->fut);
    CORO_RETURN(CORO_RESULT);
    CORO_END();
}

/* After _cancel_and_wait: a cancelled future is a timeout, unless the task
 * was cancelled by someone else meanwhile. */
static int wait_for_cancelled_outcome(coro_wait_for_op *op, int err)
{
    if (err == CORO_ECANCELLED && coro_future_cancelled(op->fut) &&
        coro_task_cancelling(op->task) <= op->cancelling)
        return CORO_ETIMEDOUT;
    return err;
}

/* The scope timed out, but the future has an outcome of its own (it caught
 * the cancel, or completed before our cancel reached the task): it wins. */
static int wait_for_race(coro_wait_for_op *op, int err)
{
    if (err == CORO_ETIMEDOUT && coro_future_done(op->fut) && !coro_future_cancelled(op->fut))
        return coro_future_result(op->fut, &op->result);
    return err;
}

static CORO_FN(wait_for_step)
{
    coro_wait_for_op *self = CORO_SELF(coro_wait_for_op);
    CORO_BEGIN();
    if (!self->fut && self->immediate)
        CORO_RAISE(CORO_ETIMEDOUT); /* the coroutine never starts */
    if (self->fut && coro_future_done(self->fut)) {
        CORO_AWAIT(self->fut); /* done: no suspension */
        CORO_RETURN(CORO_RESULT);
    }
    if (self->fut && self->immediate) {
        self->task = coro_current_task(NULL);
        self->cancelling = coro_task_cancelling(self->task);
        coro_future_cancel(self->fut);
        CORO_AWAIT_ERR(self->fut, self->err);
        self->result = CORO_RESULT;
        self->err = wait_for_cancelled_outcome(self, self->err);
    } else if (self->fut) {
        coro_frame_init(&self->inner.co, await_step);
        self->inner.fut = self->fut;
        CORO_AWAIT_ERR(coro__timeout_in(&self->scope, self->when, &self->inner.co), self->err);
        self->result = CORO_RESULT;
        self->err = wait_for_race(self, self->err);
    } else {
        CORO_AWAIT_ERR(coro__timeout_in(&self->scope, self->when, self->body), self->err);
        self->result = CORO_RESULT;
    }
    if (self->err)
        CORO_RAISE(self->err);
    CORO_RETURN(self->result);
    CORO_END();
}

static coro_frame *wait_for_setup(coro_wait_for_op *op, int64_t timeout_ns, coro_frame *body,
                                  coro_future *fut)
{
    if (!op)
        return NULL;
    memset(op, 0, sizeof *op);
    coro_frame_init(&op->co, wait_for_step);
    op->body = body;
    op->fut = fut;
    op->immediate = timeout_ns <= 0;
    op->when = timeout_ns; /* a delay: the scope fixes the deadline (coro__timeout_in) */
    return &op->co;
}

coro_frame *coro_wait_for_ns(coro_wait_for_op *op, int64_t timeout_ns, coro_frame *body)
{
    return body ? wait_for_setup(op, timeout_ns, body, NULL) : NULL;
}

coro_frame *coro_wait_for_future_ns(coro_wait_for_op *op, int64_t timeout_ns, coro_future *fut)
{
    return fut ? wait_for_setup(op, timeout_ns, NULL, fut) : NULL;
}

/* ---- task groups ---- */

#define TG_ENTERED 0x01u
#define TG_EXITING 0x02u
#define TG_ABORTING 0x04u
#define TG_PARENT_CANCEL 0x08u /* we cancelled the parent: uncancel at the end */
#define TG_WAITING 0x10u       /* on_completed is awaited */
#define TG_DONE 0x20u
#define TG_INLINE 0x40u /* CORO_WITH_TASK_GROUP: the body runs in the caller */

#define LINK_ALLOCATED 0x01u

static void tg_record(coro_task_group_op *g, int err)
{
    if (g->nerrors == 0)
        g->first_error = err;
    if (g->nerrors < g->cap)
        g->errors[g->nerrors] = err;
    g->nerrors++;
}

/* _abort */
static void tg_abort(coro_task_group_op *g)
{
    g->flags |= TG_ABORTING;
    CORO__LIST_FOREACH(l, &g->children, coro__tg_link, link)
        if (!coro_task_done(l->task))
            coro_task_cancel(l->task);
}

static void tg_unlink(coro_task_group_op *g, coro__tg_link *l)
{
    coro__list_remove(&g->children, &l->link);
    g->npending--;
}

/* _on_task_done */
static void tg_child_done(coro_future *f, void *arg)
{
    coro__tg_link *l = arg;
    coro_task_group_op *g = l->group;
    tg_unlink(g, l);
    if (l->flags & LINK_ALLOCATED)
        coro__free(g->loop, l, sizeof *l);
    if ((g->flags & TG_WAITING) && g->npending == 0)
        release_future(&g->on_completed);
    int err = coro_future_cancelled(f) ? 0 : coro_future_error(f);
    if (err == 0)
        return;
    tg_record(g, err);
    if (!(g->flags & (TG_ABORTING | TG_PARENT_CANCEL))) {
        tg_abort(g);
        g->flags |= TG_PARENT_CANCEL;
        coro_task_cancel(g->parent); /* the body's current await */
    }
}

static void tg_track(coro_task_group_op *g, coro__tg_link *l, coro_task *t)
{
    l->group = g;
    l->task = t;
    coro__list_push(&g->children, &l->link);
    g->npending++;
    coro_future_add_done_node(coro_task_future(t), &l->done, tg_child_done, l);
}

/* create_task's checks: entered, not finished, not shutting down. */
static int tg_open(const coro_task_group_op *g)
{
    if (!(g->flags & TG_ENTERED) || (g->flags & (TG_ABORTING | TG_DONE)))
        return CORO_ESTATE;
    if ((g->flags & TG_EXITING) && g->npending == 0)
        return CORO_ESTATE;
    return 0;
}

int coro_task_group_spawn(coro_task_group_op *g, coro_frame *root, coro_task **out)
{
    if (out)
        *out = NULL;
    if (!g || !root)
        return CORO_EINVAL;
    int rc = tg_open(g);
    if (rc == 0 && !coro__frame_fresh(root))
        rc = CORO_EINVAL;
    coro__tg_link *l = rc == 0 ? coro__alloc(g->loop, sizeof *l) : NULL;
    if (rc == 0 && !l)
        rc = CORO_ENOMEM;
    if (rc != 0) {
        if (g->loop)
            coro_frame_free(g->loop, root); /* ours now, as coro_spawn's */
        return rc;
    }
    coro_task *t = coro_spawn(g->loop, root);
    if (!t) {
        coro__free(g->loop, l, sizeof *l);
        return CORO_ENOMEM;
    }
    l->flags = LINK_ALLOCATED;
    tg_track(g, l, t);
    if (out)
        *out = t;
    else
        coro_task_release(t); /* freed once done; our callback runs before */
    return 0;
}

int coro_task_group_start(coro_task_group_op *g, coro_group_task *c, coro_frame *root)
{
    if (!g || !c || !root)
        return CORO_EINVAL;
    int rc = tg_open(g);
    if (rc == 0)
        rc = coro_task_init(&c->task, g->loop, root);
    if (rc != 0)
        return rc;
    c->link.flags = 0;
    tg_track(g, &c->link, &c->task);
    return 0;
}

size_t coro_task_group_error_count(const coro_task_group_op *g) { return g ? g->nerrors : 0; }

/* __aenter__ */
static int tg_enter(coro_task_group_op *g)
{
    g->parent = coro_current_task(NULL);
    if (!g->parent)
        return CORO_ESTATE; /* "cannot determine the parent task" */
    g->loop = coro_get_running_loop();
    g->flags |= TG_ENTERED;
    return 0;
}

/* _aexit, before waiting: a body that failed or was cancelled aborts. */
static void tg_begin_exit(coro_task_group_op *g)
{
    g->flags |= TG_EXITING;
    g->propagate_cancel = g->body_err == CORO_ECANCELLED;
    if (g->body_err && !(g->flags & TG_ABORTING))
        tg_abort(g);
}

/* The wait for the children was cancelled: from outside, unless we are
 * aborting already (then it is our own cancel of the parent, or absorbed). */
static void tg_cancelled_while_exiting(coro_task_group_op *g)
{
    g->pending_cancel = 1;
    if (!(g->flags & TG_ABORTING)) {
        g->propagate_cancel = 1;
        tg_abort(g);
    }
}

/* _aexit, after the children: the group's outcome. */
static int tg_outcome(coro_task_group_op *g)
{
    g->flags |= TG_DONE;
    if (g->flags & TG_PARENT_CANCEL) {
        if (coro_task_uncancel(g->parent) == 0)
            g->propagate_cancel = 0; /* the only cancel was ours */
        else if (!g->propagate_cancel)
            g->propagate_cancel = g->pending_cancel; /* not ours: keep it */
    }
    if (g->propagate_cancel && g->nerrors == 0)
        return CORO_ECANCELLED;
    if (g->body_err && g->body_err != CORO_ECANCELLED)
        tg_record(g, g->body_err);
    if (g->nerrors == 0)
        return 0;
    if (coro_task_cancelling(g->parent) > 0) { /* an outside cancel is not lost */
        coro_task_uncancel(g->parent);
        coro_task_cancel(g->parent);
    }
    return g->first_error;
}

static CORO_FN(tg_step)
{
    coro_task_group_op *g = CORO_SELF(coro_task_group_op);
    CORO_BEGIN();
    if (!(g->flags & TG_INLINE)) { /* the frame form: __aenter__, the body as a child */
        g->err = tg_enter(g);
        if (g->err)
            CORO_RAISE(g->err);
        CORO_AWAIT_ERR(g->body, g->body_err);
        g->body_result = CORO_RESULT;
    } /* else the body ran inline in the caller: this is its scope's exit */
    tg_begin_exit(g);
    while (g->npending > 0) {
        coro_future_init(&g->on_completed, g->loop);
        coro__future_set_kind(&g->on_completed, FUT_KIND_TASK_GROUP);
        g->flags |= TG_WAITING;
        CORO_AWAIT_ERR(&g->on_completed, g->err);
        g->flags &= ~TG_WAITING;
        if (g->err == CORO_ECANCELLED)
            tg_cancelled_while_exiting(g);
    }
    g->err = tg_outcome(g);
    if (g->err)
        CORO_RAISE(g->err);
    CORO_RETURN(g->body_result);
    CORO_END();
}

/* The group inside the caller's body (CORO_WITH_TASK_GROUP): the block's
 * outcome is the body's, and tg_step, awaited from the exit section, is
 * _aexit. Its outcome is the block's (CORO__FELL included) or the group's
 * error. */
static int tg_scope_exit(coro__scope *s, coro_value *io)
{
    coro_task_group_op *g = CORO__CONTAINER(s, coro_task_group_op, scope);
    g->body_result = s->outcome;
    g->body_err = coro_value_error(s->outcome);
    coro_frame_init(&g->co, tg_step);
    io->u.p = &g->co;
    io->tag = CORO__CALL;
    return 1;
}

int coro__task_group_open(coro_task_group_op *g)
{
    if (!g)
        return CORO_EINVAL;
    memset(g, 0, sizeof *g);
    g->flags = TG_INLINE;
    g->scope.exit = tg_scope_exit;
    return tg_enter(g);
}

coro_frame *coro_task_group(coro_task_group_op *g, coro_frame *body, int *errors, size_t cap)
{
    if (!g || !body || (!errors && cap > 0))
        return NULL;
    memset(g, 0, sizeof *g);
    coro_frame_init(&g->co, tg_step);
    g->body = body;
    g->errors = errors;
    g->cap = cap;
    g->loop = coro_get_running_loop();
    return &g->co;
}
