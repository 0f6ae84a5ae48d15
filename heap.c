/*
 * heap.c - the loop's timers: an array-backed 4-ary min-heap.
 *
 * asyncio keeps TimerHandles in a heapq ordered by deadline; so do we, with
 * integer nanoseconds of CLOCK_MONOTONIC and an insertion sequence that
 * breaks ties, so equal deadlines fire in the order they were armed.
 *
 * Entries are {deadline, timer*} by value, 16 bytes, so sifting compares
 * deadlines without touching the timers, ties included: the sequence is
 * read only when timers fire, where each run of one deadline is sorted
 * back into arming order (run_due).
 * Each timer knows its index (updated on every move), which makes cancel O(1):
 * like asyncio, a cancelled timer stays in the heap as a tombstone (its entry's
 * timer pointer is NULL, so the caller may free it at once), tombstones at
 * the top are dropped as they surface, and once they are more than half of a
 * heap of more than 100 entries the heap is rebuilt without them
 * (asyncio's _MIN_SCHEDULED_TIMER_HANDLES / _MIN_CANCELLED_TIMER_HANDLES_FRACTION).
 * Two shortcuts keep a task that arms and cancels without ever yielding
 * (a timeout around a body that never suspends) from growing the heap: the
 * last entry is dropped rather than marked, and a full heap that is mostly
 * tombstones is rebuilt rather than grown.
 *
 * Timers far ahead (more than ~17 s) skip the heap: they wait in buckets
 * linked through their own nodes (the section at the end), which is what
 * lets a task sleeping an hour cost no heap entry.
 *
 * Never: allocate except to grow the array or make a far bucket (amortised;
 * never on cancel or fire).
 */
#include "coro_int.h"

#define HEAP_MIN_CAP 64u
#define HEAP_MAX_CAP 0x80000000u /* indices below FAR_MARK */
/* far timers (their section at the end) */
#define FAR_SHIFT 29
#define FAR_MIN ((int64_t)1 << 34)  /* ~17 s ahead: far */
#define FAR_LEAD ((int64_t)1 << 32) /* a bucket joins the heap ~4.3 s before it starts */
#define FAR_MARK 0x80000000u        /* heap_index: 10 kind(1) low(29) */
#define FAR_KIND 0x20000000u
#define FAR_LOW ((1u << FAR_SHIFT) - 1)
#define FAR_RING 0xC0000000u /* heap_index of a bucket's list head */

#define PURGE_MIN_LEN 100u

/* Deadlines only: sifting never reads a timer (at a million timers each
 * read is a cache miss, and coarse deadlines tie all the time). The order
 * among equal deadlines is restored when they fire (run_due sorts them). */
static bool entry_less(const struct coro__heap_entry *a, const struct coro__heap_entry *b)
{
    return a->when < b->when;
}

static void place(struct coro__heap_entry *h, uint32_t i, struct coro__heap_entry e)
{
    h[i] = e;
    if (e.t)
        e.t->heap_index = i;
}

/* A 4-ary heap (libev's choice): half the depth of a binary heap, and the
 * four children of a node are 64 contiguous bytes, one cache line, so a
 * pop in a heap of a million timers misses the cache half as often. */
#define ARITY 4u

static void sift_up(struct coro__heap_entry *h, uint32_t i)
{
    struct coro__heap_entry e = h[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;
        if (!entry_less(&e, &h[parent]))
            break;
        place(h, i, h[parent]);
        i = parent;
    }
    place(h, i, e);
}

static void sift_down(struct coro__heap_entry *h, uint32_t len, uint32_t i)
{
    struct coro__heap_entry e = h[i];
    for (;;) {
        uint32_t first = ARITY * i + 1, best = first;
        if (first >= len)
            break;
        uint32_t end = first + ARITY < len ? first + ARITY : len;
        for (uint32_t c = first + 1; c < end; c++)
            if (entry_less(&h[c], &h[best]))
                best = c;
        if (!entry_less(&h[best], &e))
            break;
        place(h, i, h[best]);
        i = best;
    }
    place(h, i, e);
}

int coro__heap_reserve(coro_loop *loop, uint32_t cap)
{
    if (cap <= loop->heap_cap)
        return 0;
    struct coro__heap_entry *h =
        coro__realloc(loop, loop->heap, (size_t)loop->heap_cap * sizeof *h, (size_t)cap * sizeof *h);
    if (!h)
        return CORO_ENOMEM;
    loop->heap = h;
    loop->heap_cap = cap;
    return 0;
}

static int heap_grow(coro_loop *loop)
{
    uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : HEAP_MIN_CAP;
    if (cap <= loop->heap_cap || cap > HEAP_MAX_CAP)
        return CORO_ENOMEM; /* an index must stay below the far mark */
    return coro__heap_reserve(loop, cap);
}

static void purge(coro_loop *loop);

int coro__heap_push(coro_loop *loop, coro__timer *t, int64_t when)
{
    return coro__heap_push_seq(loop, t, when, loop->timer_seq++);
}

static int far_push(coro_loop *loop, coro__timer *t, int64_t when);

static inline CORO__ALWAYS_INLINE int heap_insert(coro_loop *loop, coro__timer *t, int64_t when,
                                                  uint32_t seq)
{
    if (loop->heap_len == loop->heap_cap && loop->heap_dead * 2 > loop->heap_len)
        purge(loop); /* full of tombstones: reuse their room rather than grow */
    if (loop->heap_len == loop->heap_cap && heap_grow(loop) != 0)
        return CORO_ENOMEM;
    t->seq = seq;
    uint32_t i = loop->heap_len++;
    loop->heap[i].when = when;
    loop->heap[i].t = t;
    sift_up(loop->heap, i);
    return 0;
}

int coro__heap_push_seq(coro_loop *loop, coro__timer *t, int64_t when, uint32_t seq)
{
    if (CORO__UNLIKELY(loop->heap_now <= 0)) /* no run_due yet: the clock once */
        loop->heap_now = coro__now(loop);
    if (when - loop->heap_now > FAR_MIN) { /* far ahead: a bucket */
        t->seq = seq;
        if (far_push(loop, t, when) == 0)
            return 0;
    }
    return heap_insert(loop, t, when, seq);
}

static void far_cancel(coro_loop *loop, coro__timer *t);
static bool far_timer(uint32_t heap_index);

void coro__heap_cancel(coro_loop *loop, coro__timer *t)
{
    uint32_t i = t->heap_index;
    if (far_timer(i)) {
        far_cancel(loop, t);
        return;
    }
    if (i == CORO__HEAP_NONE || i >= loop->heap_len || loop->heap[i].t != t)
        return;
    t->heap_index = CORO__HEAP_NONE;
    if (i == loop->heap_len - 1) { /* the last entry: just drop it */
        loop->heap_len--;
        return;
    }
    loop->heap[i].t = NULL;
    loop->heap_dead++;
}

static struct coro__heap_entry pop_top(coro_loop *loop)
{
    struct coro__heap_entry top = loop->heap[0];
    uint32_t len = --loop->heap_len;
    if (len > 0) {
        place(loop->heap, 0, loop->heap[len]);
        sift_down(loop->heap, len, 0);
    }
    if (top.t)
        top.t->heap_index = CORO__HEAP_NONE;
    else
        loop->heap_dead--;
    return top;
}

/* Rebuild without tombstones: O(n), amortised over the cancels that made them. */
static void purge(coro_loop *loop)
{
    struct coro__heap_entry *h = loop->heap;
    uint32_t n = 0;
    for (uint32_t i = 0; i < loop->heap_len; i++)
        if (h[i].t)
            h[n++] = h[i];
    loop->heap_len = n;
    loop->heap_dead = 0;
    for (uint32_t i = 0; i < n; i++)
        h[i].t->heap_index = i;
    for (uint32_t i = n / ARITY + 1; i-- > 0;)
        if (i < n)
            sift_down(h, n, i);
}

static void drop_dead(coro_loop *loop)
{
    if (loop->heap_len > PURGE_MIN_LEN && loop->heap_dead * 2 > loop->heap_len)
        purge(loop);
    while (loop->heap_len > 0 && loop->heap[0].t == NULL)
        pop_top(loop);
}

static int64_t far_next(const coro_loop *loop);
static void far_migrate_due(coro_loop *loop, int64_t now);
static void far_fini(coro_loop *loop);

int64_t coro__heap_next(coro_loop *loop)
{
    drop_dead(loop);
    int64_t next = loop->heap_len ? loop->heap[0].when : -1, far = far_next(loop);
    return far >= 0 && (next < 0 || far < next) ? far : next;
}

/* ---- firing: a batch in deadline order, FIFO among equal deadlines ---- */

/* In a batch entry the deadline's word holds the timer's sequence number
 * while its run is sorted (the run shares one deadline), so the sort reads
 * no timer. Descending: the batch is read from its end. */
static bool seq_before(const struct coro__heap_entry *a, const struct coro__heap_entry *b)
{
    return (int32_t)((uint32_t)a->when - (uint32_t)b->when) > 0;
}

static void run_sift(struct coro__heap_entry *v, uint32_t n, uint32_t i)
{
    struct coro__heap_entry e = v[i];
    for (uint32_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && seq_before(&v[c + 1], &v[c]))
            c++;
        if (!seq_before(&v[c], &e))
            break;
        v[i] = v[c];
    }
    v[i] = e;
}

/* Floyd's bottom-up step of the heapsort: the hole at the root goes down
 * the larger children to a leaf (one compare a level), then `x` climbs back
 * from there (it came from a leaf: a level or two at most). */
static void run_leaf(struct coro__heap_entry *v, uint32_t n, struct coro__heap_entry x)
{
    uint32_t i = 0;
    for (uint32_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && seq_before(&v[c + 1], &v[c]))
            c++;
        v[i] = v[c];
    }
    while (i > 0 && seq_before(&x, &v[(i - 1) / 2])) {
        v[i] = v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    v[i] = x;
}

/* Sort one run by sequence, descending: an in-place heapsort (no
 * allocation on the fire path), insertion for the short runs of the usual
 * case (distinct deadlines). */
static void run_sort(struct coro__heap_entry *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        v[i].when = v[i].t->seq;
    if (n <= 8) {
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = i; j > 0 && seq_before(&v[j], &v[j - 1]); j--) {
                struct coro__heap_entry x = v[j];
                v[j] = v[j - 1];
                v[j - 1] = x;
            }
        return;
    }
    for (uint32_t i = n / 2; i-- > 0;)
        run_sift(v, n, i);
    for (uint32_t k = n - 1; k > 0; k--) {
        struct coro__heap_entry x = v[k];
        v[k] = v[0];
        run_leaf(v, k, x);
    }
    for (uint32_t i = 0; i < n / 2; i++) { /* the heapsort gave ascending */
        struct coro__heap_entry x = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = x;
    }
}

/* Pop every live timer due at `now` into the array's freed tail: h[*lo, end)
 * in reverse firing order (the slot a pop frees is the one at heap_len). */
static uint32_t pop_due(coro_loop *loop, int64_t now, uint32_t end)
{
    uint32_t lo = end;
    while (loop->heap_len > 0 && loop->heap[0].when <= now) {
        struct coro__heap_entry e = pop_top(loop);
        if (e.t)
            loop->heap[--lo] = e;
    }
    return lo;
}

void coro__heap_run_due(coro_loop *loop, int64_t now)
{
    loop->heap_now = now;
    far_migrate_due(loop, now); /* first: what they hold may be due now */
    drop_dead(loop);
    struct coro__heap_entry *h = loop->heap;
    uint32_t end = loop->heap_len, lo = pop_due(loop, now, end);
    for (uint32_t hi = end; hi > lo;) { /* each run of one deadline */
        uint32_t a = hi - 1;
        while (a > lo && h[a - 1].when == h[hi - 1].when)
            a--;
        run_sort(h + a, hi - a);
        for (uint32_t i = hi; i-- > a;)
            coro__ready_push(loop, &h[i].t->node);
        hi = a;
    }
    while (loop->heap_len > 0 && loop->heap[0].t == NULL)
        pop_top(loop); /* tombstones that surfaced */
}

void coro__heap_fini(coro_loop *loop)
{
    far_fini(loop);
    for (uint32_t i = 0; i < loop->heap_len; i++)
        if (loop->heap[i].t)
            loop->heap[i].t->heap_index = CORO__HEAP_NONE;
    coro__realloc(loop, loop->heap, (size_t)loop->heap_cap * sizeof *loop->heap, 0);
    loop->heap = NULL;
    loop->heap_len = loop->heap_cap = loop->heap_dead = 0;
}

/* ---- far timers: buckets out of the heap ----
 *
 * A timer due more than FAR_MIN after the clock's last reading (a task
 * sleeping an hour, a long timeout) needs no heap order yet. It waits in
 * the bucket of its deadline's high bits (2^FAR_SHIFT ns, about half a
 * second), on a circular list through its own node: node.next forward,
 * node.prev back (over node.run, which the loop keeps as one of two kinds,
 * far_runs), its deadline's low bits, its kind and the far mark in
 * heap_index, its sequence number unchanged. So a far timer costs no heap
 * entry, and cancelling it is an unlink. The buckets are an array sorted by
 * deadline, the latest first; run_due moves a bucket's timers into the heap
 * (with their own sequence numbers) once the clock is FAR_LEAD before the
 * bucket starts, before it pops anything, so a jump of virtual time still
 * fires every timer in (deadline, sequence) order. A timer that cannot go
 * far (no room for a bucket, a third kind of callback) goes to the heap.
 */
struct coro__far {
    coro__timer ring; /* the list's head: ring.node.next the first, .prev the last */
    int64_t hi;       /* every deadline in it, >> FAR_SHIFT */
};

static bool far_timer(uint32_t heap_index) { return (heap_index >> 30) == 2u; }

static int64_t far_start(const struct coro__far *b) { return b->hi * ((int64_t)1 << FAR_SHIFT); }

static int64_t far_next(const coro_loop *loop)
{
    return loop->far_len ? far_start(loop->far[loop->far_len - 1]) - FAR_LEAD : -1;
}

/* The kind of a run callback (0 or 1), or -1 when both are taken. */
static int far_kind(coro_loop *loop, void (*run)(coro__node *))
{
    for (int k = 0; k < 2; k++) {
        if (!loop->far_runs[k])
            loop->far_runs[k] = run;
        if (loop->far_runs[k] == run)
            return k;
    }
    return -1;
}

/* The bucket for `hi`, made (and placed in order) if missing; NULL if no memory. */
static struct coro__far *far_bucket(coro_loop *loop, int64_t hi)
{
    uint32_t lo = 0, n = loop->far_len;
    while (lo < n) { /* the first bucket not later than hi */
        uint32_t mid = lo + (n - lo) / 2;
        if (loop->far[mid]->hi > hi)
            lo = mid + 1;
        else
            n = mid;
    }
    if (lo < loop->far_len && loop->far[lo]->hi == hi)
        return loop->far[lo];
    if (loop->far_len == loop->far_cap) {
        uint32_t cap = loop->far_cap ? loop->far_cap * 2 : 16;
        struct coro__far **a = coro__realloc(loop, loop->far, loop->far_cap * sizeof *a, cap * sizeof *a);
        if (!a)
            return NULL;
        loop->far = a;
        loop->far_cap = cap;
    }
    struct coro__far *b = coro__alloc(loop, sizeof *b);
    if (!b)
        return NULL;
    b->hi = hi;
    b->ring.node.next = b->ring.node.prev = &b->ring.node;
    b->ring.heap_index = FAR_RING;
    memmove(&loop->far[lo + 1], &loop->far[lo], (loop->far_len - lo) * sizeof *loop->far);
    loop->far[lo] = b;
    loop->far_len++;
    return b;
}

/* Park t (its seq set) in its bucket: 0, or 1 when the heap must take it. */
static int far_push(coro_loop *loop, coro__timer *t, int64_t when)
{
    int k = far_kind(loop, t->node.run);
    struct coro__far *b = k < 0 ? NULL : far_bucket(loop, when >> FAR_SHIFT);
    if (!b)
        return 1;
    coro__node *last = b->ring.node.prev;
    t->node.next = &b->ring.node;
    t->node.prev = last;
    last->next = &t->node;
    b->ring.node.prev = &t->node;
    t->heap_index = FAR_MARK | (uint32_t)k << FAR_SHIFT | ((uint32_t)when & FAR_LOW);
    loop->far_timers++;
    return 0;
}

/* Unlink t; its run callback back in place. */
static void far_cancel(coro_loop *loop, coro__timer *t)
{
    coro__node *prev = t->node.prev, *next = t->node.next;
    prev->next = next;
    next->prev = prev;
    t->node.next = NULL;
    t->node.run = loop->far_runs[(t->heap_index & FAR_KIND) != 0];
    t->heap_index = CORO__HEAP_NONE;
    loop->far_timers--;
}

/* Move the earliest bucket's timers into the heap: 0, or CORO_ENOMEM
 * (the bucket stays, to be tried again). */
static int far_migrate(coro_loop *loop)
{
    struct coro__far *b = loop->far[loop->far_len - 1];
    uint32_t n = 0;
    for (coro__node *x = b->ring.node.next; x != &b->ring.node; x = x->next)
        n++;
    while (loop->heap_cap - loop->heap_len < n)
        if (heap_grow(loop) != 0)
            return CORO_ENOMEM;
    loop->far_len--;
    loop->far_timers -= n;
    for (coro__node *x = b->ring.node.next, *next; x != &b->ring.node; x = next) {
        coro__timer *t = CORO__CONTAINER(x, coro__timer, node);
        uint32_t i = t->heap_index;
        next = x->next;
        t->node.run = loop->far_runs[(i & FAR_KIND) != 0];
        heap_insert(loop, t, far_start(b) | (int64_t)(i & FAR_LOW), t->seq); /* room made */
    }
    coro__free(loop, b, sizeof *b);
    return 0;
}

static void far_migrate_due(coro_loop *loop, int64_t now)
{
    while (loop->far_len && far_next(loop) <= now && far_migrate(loop) == 0)
        ;
}

static void far_fini(coro_loop *loop)
{
    for (uint32_t k = 0; k < loop->far_len; k++) {
        struct coro__far *b = loop->far[k];
        while (b->ring.node.next != &b->ring.node)
            far_cancel(loop, CORO__CONTAINER(b->ring.node.next, coro__timer, node));
        coro__free(loop, b, sizeof *b);
    }
    coro__realloc(loop, loop->far, loop->far_cap * sizeof *loop->far, 0);
    loop->far = NULL;
    loop->far_len = loop->far_cap = loop->far_timers = 0;
    loop->far_runs[0] = loop->far_runs[1] = NULL;
    loop->heap_now = 0;
}

void coro__timers_each(coro_loop *loop, coro__timer_visit_fn fn, void *arg)
{
    for (uint32_t i = 0; i < loop->heap_len; i++)
        if (loop->heap[i].t) /* not a tombstone */
            fn(loop->heap[i].t, loop->heap[i].t->node.run, arg);
    for (uint32_t k = 0; k < loop->far_len; k++) {
        struct coro__far *b = loop->far[k];
        for (coro__node *x = b->ring.node.next; x != &b->ring.node; x = x->next) {
            coro__timer *t = CORO__CONTAINER(x, coro__timer, node);
            fn(t, loop->far_runs[(t->heap_index & FAR_KIND) != 0], arg);
        }
    }
}

bool coro__timer_when(const coro_loop *loop, const coro__timer *t, int64_t *when)
{
    uint32_t i = t->heap_index;
    if (i < loop->heap_len && loop->heap[i].t == t) {
        *when = loop->heap[i].when;
        return true;
    }
    if (!far_timer(i))
        return false;
    const coro__node *x = t->node.next; /* to the bucket's head: a dump's cost, bounded */
    for (unsigned k = 0; k < 4096 && CORO__CONTAINER(x, coro__timer, node)->heap_index != FAR_RING; k++)
        x = x->next;
    const coro__timer *ring = CORO__CONTAINER(x, coro__timer, node);
    if (ring->heap_index != FAR_RING)
        return false;
    *when = far_start((const struct coro__far *)(const void *)ring) | (int64_t)(i & FAR_LOW);
    return true;
}
