/*
 * queue.c - asyncio's Queue, LifoQueue and PriorityQueue (queues.py, 3.13).
 *
 * The mapping to asyncio/queues.py:
 *   Queue.__init__ / _init   coro_queue_init, coro_lifo_queue_init,
 *                            coro_priority_queue_init (+ the _buf variants):
 *                            the storage (a ring, a stack or a heap array)
 *   _put / _get              store / take, by kind
 *   _wakeup_next             coro__waitq_wake_first (waitq.c), with None
 *   put_nowait / get_nowait  coro_queue_put_nowait / coro_queue_get_nowait
 *   put()  (while full: wait on a future in _putters; except: ... wake the
 *          next putter)      put_step: loop on put_nowait while it says
 *                            CORO_EFULL; the except clause is give_up, run
 *                            by the CORO_FINALLY section
 *   get()                    get_step, the same shape on get_nowait
 *   task_done / join         coro_queue_task_done / join_step: the _finished
 *                            Event is `unfinished == 0` plus the joiners'
 *                            waitq (set = wake them all)
 *   shutdown(immediate)      coro_queue_shutdown
 *
 * Invariants:
 *   - an item lives only in the storage: a woken waiter is just told to look
 *     again (set_result(None)) and takes its item, or its room, when it runs.
 *     So a waiter cancelled at any point takes nothing and loses nothing, and
 *     a woken waiter that is cancelled before it runs passes the wakeup on
 *     (asyncio's `if not self.empty() and not getter.cancelled()`);
 *   - a waiter is parked (counted in q->parked, op->parked set) from the push
 *     on a waitq until its frame resumes; waking unlinks it, cancelling
 *     leaves it linked until its frame removes it (waitq.c);
 *   - storage is allocated at init for a bounded queue, on growth for an
 *     unbounded one (doubling when full), never elsewhere; caller-given
 *     storage is never grown nor freed.
 * Never: hand an item to a waiter directly; allocate on a wait or a wakeup.
 */
#include "coro_int.h"

#include <string.h>

enum { KIND_FIFO = 0, KIND_LIFO, KIND_PRIORITY };

#define Q_SHUTDOWN 0x01u
#define Q_OWNED 0x02u /* slots come from the loop's allocator */

#define MIN_CAP 8u

/* ---- storage ---- */

static size_t slot_size(const coro_queue *q)
{
    return q->kind == KIND_PRIORITY ? sizeof(coro_queue_pentry) : sizeof(coro_value);
}

static bool queue_full(const coro_queue *q) { return q->maxsize > 0 && q->len >= q->maxsize; }

static int default_cmp(coro_value a, coro_value b)
{
    if (a.tag == CORO_INT && b.tag == CORO_INT)
        return (a.u.i > b.u.i) - (a.u.i < b.u.i);
    double x = a.tag == CORO_INT ? (double)a.u.i : a.u.d;
    double y = b.tag == CORO_INT ? (double)b.u.i : b.u.d;
    if (x < y)
        return -1;
    if (x > y)
        return 1;
    return (x != x) - (y != y); /* NaN after every number */
}

/* The heap order: the comparator, then the insertion number (FIFO ties). */
static bool before(const coro_queue *q, const coro_queue_pentry *a, const coro_queue_pentry *b)
{
    int c = q->cmp ? q->cmp(a->v, b->v, q->cmp_arg) : default_cmp(a->v, b->v);
    return c < 0 || (c == 0 && (int64_t)(a->seq - b->seq) < 0);
}

static void heap_push(coro_queue *q, coro_value v)
{
    coro_queue_pentry *h = q->slots;
    coro_queue_pentry e = { v, q->seq++ };
    size_t i = q->len;
    while (i > 0 && before(q, &e, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

/* Remove the top; q->len is already one less. */
static coro_value heap_pop(coro_queue *q)
{
    coro_queue_pentry *h = q->slots;
    coro_value top = h[0].v;
    coro_queue_pentry last = h[q->len];
    size_t i = 0, n = q->len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(q, &h[c + 1], &h[c]))
            c++;
        if (!before(q, &h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* _put: room is guaranteed (len < cap). */
static void store(coro_queue *q, coro_value v)
{
    coro_value *a = q->slots;
    if (q->kind == KIND_FIFO) {
        size_t i = q->head + q->len;
        a[i < q->cap ? i : i - q->cap] = v;
    } else if (q->kind == KIND_LIFO) {
        a[q->len] = v;
    } else {
        heap_push(q, v);
    }
    q->len++;
}

/* _get: an item is guaranteed (len > 0). */
static coro_value take(coro_queue *q)
{
    coro_value *a = q->slots;
    q->len--;
    if (q->kind == KIND_LIFO)
        return a[q->len];
    if (q->kind == KIND_PRIORITY)
        return heap_pop(q);
    coro_value v = a[q->head];
    q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
    return v;
}

/* Double an unbounded queue's array (the first growth makes MIN_CAP slots;
 * caller-given storage is bounded, so never gets here). On failure nothing
 * changes. A FIFO ring grows only when full, so its wrapped part is slots
 * [0, head): move it after the old end. */
static int ring_grow(coro_queue *q)
{
    size_t sz = slot_size(q), cap = q->cap ? q->cap * 2 : MIN_CAP;
    if (cap > SIZE_MAX / sz)
        return CORO_ENOMEM;
    char *p = coro__array_realloc(q->loop, q->slots, q->cap * sz, cap * sz);
    if (!p)
        return CORO_ENOMEM;
    if (q->kind == KIND_FIFO && q->head > 0)
        memcpy(p + q->cap * sz, p, q->head * sz);
    q->slots = p;
    q->cap = cap;
    return 0;
}

/* ---- life cycle ---- */

static int setup(coro_queue *q, coro_loop *loop, int kind, size_t maxsize, void *buf)
{
    loop = coro__loop_or_running(loop);
    if (!q || !loop)
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    memset(q, 0, sizeof *q);
    q->kind = (uint8_t)kind;
    q->maxsize = maxsize;
    if (buf) {
        q->slots = buf;
        q->cap = maxsize;
    } else if (maxsize > 0) {
        size_t sz = slot_size(q);
        q->slots = maxsize <= SIZE_MAX / sz ? coro__array_realloc(loop, NULL, 0, maxsize * sz) : NULL;
        if (!q->slots)
            return CORO_ENOMEM;
        q->cap = maxsize;
    }
    q->flags = buf ? 0 : Q_OWNED;
    q->loop = loop;
    return 0;
}

int coro_queue_init(coro_queue *q, coro_loop *loop, size_t maxsize)
{
    return setup(q, loop, KIND_FIFO, maxsize, NULL);
}

int coro_lifo_queue_init(coro_queue *q, coro_loop *loop, size_t maxsize)
{
    return setup(q, loop, KIND_LIFO, maxsize, NULL);
}

static int set_order(int rc, coro_queue *q, coro_queue_cmp_fn cmp, void *arg)
{
    if (rc == 0) {
        q->cmp = cmp;
        q->cmp_arg = arg;
    }
    return rc;
}

int coro_priority_queue_init(coro_queue *q, coro_loop *loop, size_t maxsize, coro_queue_cmp_fn cmp,
                             void *arg)
{
    return set_order(setup(q, loop, KIND_PRIORITY, maxsize, NULL), q, cmp, arg);
}

int coro_queue_init_buf(coro_queue *q, coro_loop *loop, coro_value *buf, size_t capacity)
{
    if (!buf || capacity == 0)
        return CORO_EINVAL;
    return setup(q, loop, KIND_FIFO, capacity, buf);
}

int coro_lifo_queue_init_buf(coro_queue *q, coro_loop *loop, coro_value *buf, size_t capacity)
{
    if (!buf || capacity == 0)
        return CORO_EINVAL;
    return setup(q, loop, KIND_LIFO, capacity, buf);
}

int coro_priority_queue_init_buf(coro_queue *q, coro_loop *loop, coro_queue_pentry *buf,
                                 size_t capacity, coro_queue_cmp_fn cmp, void *arg)
{
    if (!buf || capacity == 0)
        return CORO_EINVAL;
    return set_order(setup(q, loop, KIND_PRIORITY, capacity, buf), q, cmp, arg);
}

int coro_queue_fini(coro_queue *q)
{
    if (!q)
        return CORO_EINVAL;
    if (!q->loop)
        return 0;
    if (q->parked > 0 && q->loop->state != LOOP_CLOSED)
        return CORO_ESTATE;
    if ((q->flags & Q_OWNED) && q->loop->state != LOOP_CLOSED) /* else: freed by close */
        coro__array_realloc(q->loop, q->slots, q->cap * slot_size(q), 0);
    memset(q, 0, sizeof *q);
    return 0;
}

/* ---- state ---- */

size_t coro_queue_qsize(const coro_queue *q) { return q ? q->len : 0; }
int coro_queue_empty(const coro_queue *q) { return q && q->len == 0; }
int coro_queue_full(const coro_queue *q) { return q && queue_full(q); }
size_t coro_queue_maxsize(const coro_queue *q) { return q ? q->maxsize : 0; }

/* 0 if `q` can be operated on. */
static int usable(const coro_queue *q)
{
    if (!q || !q->loop)
        return CORO_EINVAL;
    return q->loop->state == LOOP_CLOSED ? CORO_ECLOSED : 0;
}

/* The default priority order compares numbers only (Python: TypeError). */
static bool comparable(const coro_queue *q, coro_value v)
{
    return q->kind != KIND_PRIORITY || q->cmp || v.tag == CORO_INT || v.tag == CORO_DOUBLE;
}

/* ---- without waiting ---- */

int coro_queue_put_nowait(coro_queue *q, coro_value item)
{
    int rc = usable(q);
    if (rc != 0)
        return rc;
    if (!comparable(q, item))
        return CORO_EINVAL;
    if (q->flags & Q_SHUTDOWN)
        return CORO_ESHUTDOWN;
    if (queue_full(q))
        return CORO_EFULL;
    if (q->len == q->cap && (rc = ring_grow(q)) != 0)
        return rc;
    store(q, item);
    q->unfinished++;
    coro__waitq_wake_first(&q->getters, coro_none());
    return 0;
}

int coro_queue_get_nowait(coro_queue *q, coro_value *out)
{
    int rc = usable(q);
    if (rc != 0)
        return rc;
    if (q->len == 0)
        return q->flags & Q_SHUTDOWN ? CORO_ESHUTDOWN : CORO_EEMPTY;
    coro_value v = take(q);
    if (out)
        *out = v;
    coro__waitq_wake_first(&q->putters, coro_none());
    return 0;
}

/* ---- parking an operation frame ---- */

static int park(coro_queue *q, coro_waitq *wq, coro_waiter *w, int *parked)
{
    unsigned kind = wq == &q->getters   ? FUT_KIND_QUEUE_GET
                    : wq == &q->putters ? FUT_KIND_QUEUE_PUT
                                        : FUT_KIND_QUEUE_JOIN;
    int rc = coro__waitq_push(wq, w, q->loop, kind);
    if (rc == 0) {
        *parked = 1;
        q->parked++;
    }
    return rc;
}

static void unpark(coro_queue *q, int *parked)
{
    *parked = 0;
    q->parked--;
}

/* asyncio's `except:` around `await getter` / `await putter`: leave the
 * waitq, and if we had been woken (not cancelled) but cannot use it, pass
 * the wakeup to the next waiter while there is something for it. */
static void give_up(coro_queue *q, coro_waitq *wq, coro_waiter *w, int *parked, bool something)
{
    bool woken = coro_future_done(&w->fut) && !coro_future_cancelled(&w->fut);
    unpark(q, parked);
    coro__waitq_remove(w);
    if (woken && something)
        coro__waitq_wake_first(wq, coro_none());
}

/* ---- awaitable operations ---- */

static CORO_FN(get_step)
{
    coro_queue_get_op *self = CORO_SELF(coro_queue_get_op);
    coro_value item = coro_none();
    int rc;
    CORO_BEGIN();
    while ((rc = coro_queue_get_nowait(self->q, &item)) == CORO_EEMPTY) {
        rc = park(self->q, &self->q->getters, &self->w, &self->parked);
        if (rc != 0)
            CORO_RAISE(rc);
        CORO_AWAIT(&self->w.fut); /* an error leaves parked: give_up */
        unpark(self->q, &self->parked);
    }
    if (rc != 0)
        CORO_RAISE(rc);
    CORO_RETURN(item);
    CORO_FINALLY
    if (self->parked)
        give_up(self->q, &self->q->getters, &self->w, &self->parked, self->q->len > 0);
    CORO_END();
}

static CORO_FN(put_step)
{
    coro_queue_put_op *self = CORO_SELF(coro_queue_put_op);
    int rc;
    CORO_BEGIN();
    while ((rc = coro_queue_put_nowait(self->q, self->item)) == CORO_EFULL) {
        rc = park(self->q, &self->q->putters, &self->w, &self->parked);
        if (rc != 0)
            CORO_RAISE(rc);
        CORO_AWAIT(&self->w.fut);
        unpark(self->q, &self->parked);
    }
    if (rc != 0)
        CORO_RAISE(rc);
    CORO_FINALLY
    if (self->parked)
        give_up(self->q, &self->q->putters, &self->w, &self->parked, !queue_full(self->q));
    CORO_END();
}

static CORO_FN(join_step)
{
    coro_queue_join_op *self = CORO_SELF(coro_queue_join_op);
    int rc;
    CORO_BEGIN();
    rc = usable(self->q);
    if (rc != 0)
        CORO_RAISE(rc);
    if (self->q->unfinished > 0) {
        rc = park(self->q, &self->q->joiners, &self->w, &self->parked);
        if (rc != 0)
            CORO_RAISE(rc);
        CORO_AWAIT(&self->w.fut);
        unpark(self->q, &self->parked);
    }
    CORO_FINALLY
    if (self->parked)
        give_up(self->q, &self->q->joiners, &self->w, &self->parked, false);
    CORO_END();
}

coro_frame *coro_queue_get(coro_queue_get_op *op, coro_queue *q)
{
    if (!op || !q || !q->loop)
        return NULL;
    coro_frame_init(&op->co, get_step);
    coro__waiter_clear(&op->w);
    op->q = q;
    op->parked = 0;
    return &op->co;
}

coro_frame *coro_queue_put(coro_queue_put_op *op, coro_queue *q, coro_value item)
{
    if (!op || !q || !q->loop)
        return NULL;
    coro_frame_init(&op->co, put_step);
    coro__waiter_clear(&op->w);
    op->q = q;
    op->item = item;
    op->parked = 0;
    return &op->co;
}

coro_frame *coro_queue_join(coro_queue_join_op *op, coro_queue *q)
{
    if (!op || !q || !q->loop)
        return NULL;
    coro_frame_init(&op->co, join_step);
    coro__waiter_clear(&op->w);
    op->q = q;
    op->parked = 0;
    return &op->co;
}

/* ---- unfinished tasks and shutdown ---- */

int coro_queue_task_done(coro_queue *q)
{
    int rc = usable(q);
    if (rc != 0)
        return rc;
    if (q->unfinished == 0)
        return CORO_EINVAL; /* ValueError: task_done() called too many times */
    if (--q->unfinished == 0)
        coro__waitq_wake_all(&q->joiners, coro_none());
    return 0;
}

int coro_queue_shutdown(coro_queue *q, int immediate)
{
    int rc = usable(q);
    if (rc != 0)
        return rc;
    q->flags |= Q_SHUTDOWN;
    if (immediate) {
        q->unfinished -= q->unfinished < q->len ? q->unfinished : q->len;
        q->len = 0;
        q->head = 0;
        if (q->unfinished == 0)
            coro__waitq_wake_all(&q->joiners, coro_none());
    }
    coro__waitq_wake_all(&q->getters, coro_none());
    coro__waitq_wake_all(&q->putters, coro_none());
    return 0;
}
