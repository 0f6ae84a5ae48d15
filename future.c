/*
 * future.c - asyncio.Future: pending, then done with a result, an error, or
 * cancelled, exactly once.
 *
 * The result is a small tagged value stored in place (no allocation). Done
 * callbacks are intrusive nodes on a singly linked list kept newest-first
 * (O(1) add); completion reverses it once and appends it to the loop's ready
 * queue, so callbacks run in registration order and never inline, as
 * asyncio's __schedule_callbacks does with call_soon. A task waiting on a
 * future is just one more node on that list (its wakeup), which is how an
 * await costs no allocation.
 *
 * Never: call a callback from set_result/set_error/cancel; allocate on any
 * path but add_done_callback without a caller-owned node.
 */
#include "coro_int.h"

#include <string.h>

int coro_future_init(coro_future *f, coro_loop *loop)
{
    loop = coro__loop_or_running(loop);
    if (!f || !loop)
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    memset(f, 0, sizeof *f);
    f->loop = loop;
    return 0;
}

coro_future *coro_future_new(coro_loop *loop)
{
    loop = coro__loop_or_running(loop);
    if (!loop || loop->state == LOOP_CLOSED)
        return NULL;
    coro_future *f = coro__alloc(loop, sizeof *f);
    if (!f)
        return NULL;
    f->loop = loop;
    f->flags = FUT_F_ALLOCATED;
    return f;
}

void coro_future_free(coro_future *f)
{
    if (!f || !(f->flags & FUT_F_ALLOCATED) || (f->flags & FUT_F_TASK))
        return;
    coro__free(f->loop, f, sizeof *f);
}

/* ---- completion ---- */

void coro__future_set_cancel_hook(coro_future *f, int (*hook)(coro_future *))
{
    f->val.cancel_hook = hook;
    f->tflags |= FUT_T_CANCEL_HOOK;
}

void coro__future_schedule_callbacks(coro_future *f)
{
    if (f->loop->trace)
        coro__trace_wakes(f); /* the tasks it wakes, and who woke them */
    coro__node *n = f->callbacks, *in_order = NULL;
    f->callbacks = NULL;
    while (n) { /* reverse: the list is newest-first */
        coro__node *next = n->next;
        n->next = in_order;
        in_order = n;
        n = next;
    }
    while (in_order) {
        coro__node *next = in_order->next;
        coro__ready_push(f->loop, in_order);
        in_order = next;
    }
}

static int check_pending(const coro_future *f)
{
    if (!f)
        return CORO_EINVAL;
    if (f->state != FUT_PENDING)
        return CORO_ESTATE;
    if (!f->loop || f->loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    return 0;
}

int coro_future_set_result(coro_future *f, coro_value v)
{
    if (f && (f->flags & FUT_F_TASK))
        return CORO_EINVAL; /* a task sets its own result */
    int rc = check_pending(f);
    if (rc != 0)
        return rc;
    if (v.tag == CORO_ERROR)
        return coro_future_set_error(f, (int)v.u.i);
    f->val.i = v.u.i; /* a cancel hook, if any, goes: val holds the outcome */
    f->tflags = 0;
    f->tag = (uint8_t)v.tag;
    f->state = FUT_RESULT;
    coro__future_schedule_callbacks(f);
    return 0;
}

int coro_future_set_error(coro_future *f, int err)
{
    if (f && (f->flags & FUT_F_TASK))
        return CORO_EINVAL;
    int rc = check_pending(f);
    if (rc != 0)
        return rc;
    if (err >= 0 || err == CORO_ECANCELLED)
        return CORO_EINVAL;
    f->val.i = err;
    f->tflags = 0;
    f->tag = CORO_ERROR;
    f->state = FUT_ERROR;
    coro__future_schedule_callbacks(f);
    return 0;
}

int coro_future_cancel(coro_future *f)
{
    if (f && (f->flags & FUT_F_TASK)) /* asyncio: _fut_waiter.cancel() is Task.cancel() */
        return coro_task_cancel((coro_task *)(void *)f);
    if (check_pending(f) != 0)
        return 0;
    if (f->tflags & FUT_T_CANCEL_HOOK)
        return f->val.cancel_hook(f); /* it stands for others: they are cancelled */
    f->state = FUT_CANCELLED; /* (a plain future's tflags hold nothing else) */
    coro__future_schedule_callbacks(f);
    return 1;
}

/* ---- the outcome ---- */

int coro_future_done(const coro_future *f) { return f && f->state != FUT_PENDING; }
int coro_future_cancelled(const coro_future *f) { return f && f->state == FUT_CANCELLED; }

int coro__future_outcome(coro_future *f, coro_value *io)
{
    f->flags |= FUT_F_RETRIEVED;
    switch (f->state) {
    case FUT_RESULT:
        io->u.i = f->val.i;
        io->tag = f->tag;
        return 0;
    case FUT_ERROR:
        *io = coro_error((int)f->val.i);
        return (int)f->val.i;
    case FUT_CANCELLED:
        *io = coro_error(CORO_ECANCELLED);
        return CORO_ECANCELLED;
    default:
        *io = coro_error(CORO_ESTATE);
        return CORO_ESTATE;
    }
}

int coro_future_result(coro_future *f, coro_value *out)
{
    if (!f)
        return CORO_EINVAL;
    if (f->state == FUT_PENDING)
        return CORO_ESTATE;
    coro_value v;
    int rc = coro__future_outcome(f, &v);
    if (out && rc == 0)
        *out = v;
    return rc;
}

int coro_future_error(coro_future *f) { return coro_future_result(f, NULL); }

/* the await protocol: a done future does not suspend */
int coro__await_future(coro_future *f, coro_value *io)
{
    if (!f) {
        *io = coro_error(CORO_EINVAL);
        return 0;
    }
    if (f->state != FUT_PENDING) {
        coro__future_outcome(f, io);
        return 0;
    }
    io->u.p = f;
    io->tag = CORO__AWAIT;
    return 1;
}

int coro__await_task(coro_task *t, coro_value *io)
{
    return coro__await_future(t ? &t->fut : NULL, io);
}

/* ---- done callbacks ---- */

static void done_node_run(coro__node *n)
{
    coro_done_node *d = CORO__CONTAINER(n, coro_done_node, node);
    coro_loop *loop = d->fut->loop;
    unsigned flags = d->flags;
    int64_t t0 = loop->debug ? coro__clock_ns() : 0;
    d->fn(d->fut, d->arg); /* may free a caller-owned d */
    if (loop->debug)
        coro__check_slow(loop, t0, NULL, 0);
    if (flags & DONE_F_ALLOCATED)
        coro__free(loop, d, sizeof *d);
}

void coro__future_add_node(coro_future *f, coro__node *n)
{
    if (f->state != FUT_PENDING) {
        if (f->flags & FUT_F_TASK)
            f->tflags &= (uint8_t)~TASK_F_QUIET; /* n will read it: no free at release */
        coro__ready_push(f->loop, n); /* scheduled, never inline */
        return;
    }
    n->next = f->callbacks;
    f->callbacks = n;
}

void coro__future_remove_node(coro_future *f, coro__node *n)
{
    for (coro__node **p = &f->callbacks; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            n->next = NULL;
            return;
        }
}

int coro_future_add_done_node(coro_future *f, coro_done_node *n, coro_done_fn fn, void *arg)
{
    if (!f || !n || !fn || !f->loop)
        return CORO_EINVAL;
    if (f->loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    n->node.run = done_node_run;
    n->fn = fn;
    n->arg = arg;
    n->fut = f;
    n->flags = 0;
    coro__future_add_node(f, &n->node);
    return 0;
}

int coro_future_add_done_callback(coro_future *f, coro_done_fn fn, void *arg)
{
    if (!f || !fn || !f->loop)
        return CORO_EINVAL;
    if (f->loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    coro_done_node *n = coro__alloc(f->loop, sizeof *n);
    if (!n)
        return CORO_ENOMEM;
    coro_future_add_done_node(f, n, fn, arg);
    n->flags = DONE_F_ALLOCATED;
    return 0;
}

int coro_future_remove_done_callback(coro_future *f, coro_done_fn fn, void *arg)
{
    if (!f)
        return 0;
    int removed = 0;
    coro__node **p = &f->callbacks;
    while (*p) {
        coro__node *n = *p;
        coro_done_node *d = CORO__CONTAINER(n, coro_done_node, node);
        if (n->run == done_node_run && d->fn == fn && d->arg == arg) {
            *p = n->next;
            if (d->flags & DONE_F_ALLOCATED)
                coro__free(f->loop, d, sizeof *d);
            removed++;
        } else {
            p = &n->next;
        }
    }
    return removed;
}
