/*
 * waitq.c - the FIFO of waiters every synchronisation primitive shares.
 *
 * asyncio's locks, queues and barriers keep a collections.deque of futures
 * and wake them in order. Here a waiter is a future plus two links, embedded
 * in the operation's frame (coro_lock_acquire_op, coro_queue_get_op, ...),
 * so parking a task and waking it allocate nothing and removing a cancelled
 * waiter is O(1).
 *
 * Invariants: a waiter is on at most one queue (w->q says which); waking
 * unlinks it, so a woken waiter can never be woken twice; a cancelled
 * waiter stays linked until its own frame removes it (its cleanup must
 * call coro__waitq_remove), and the wake functions skip it.
 */
#include "coro_int.h"

int coro__waitq_push(coro_waitq *q, coro_waiter *w, coro_loop *loop, unsigned kind)
{
    int rc = coro_future_init(&w->fut, loop);
    if (rc != 0)
        return rc;
    coro__future_set_kind(&w->fut, kind);
    w->q = q;
    coro__list_push(&q->list, &w->link);
    return 0;
}

void coro__waitq_remove(coro_waiter *w)
{
    if (!w->q)
        return;
    coro__list_remove(&w->q->list, &w->link);
    w->q = NULL;
}

coro_waiter *coro__waitq_first_pending(const coro_waitq *q)
{
    CORO__LIST_FOREACH(w, &q->list, coro_waiter, link)
        if (!coro_future_done(&w->fut))
            return w;
    return NULL;
}

int coro__waitq_wake_first(coro_waitq *q, coro_value v)
{
    coro_waiter *w = coro__waitq_first_pending(q);
    if (!w)
        return 0;
    coro__waitq_remove(w);
    coro_future_set_result(&w->fut, v);
    return 1;
}

int coro__waitq_wake_all(coro_waitq *q, coro_value v)
{
    int n = 0;
    while (coro__waitq_wake_first(q, v))
        n++;
    return n;
}

int coro__waitq_fail_all(coro_waitq *q, int err)
{
    int n = 0;
    coro_waiter *w;
    while ((w = coro__waitq_first_pending(q)) != NULL) {
        coro__waitq_remove(w);
        if (err == CORO_ECANCELLED)
            coro_future_cancel(&w->fut);
        else
            coro_future_set_error(&w->fut, err);
        n++;
    }
    return n;
}
