/*
 * loop.c - the event loop: asyncio's BaseEventLoop in C.
 *
 * The loop is a FIFO of callbacks (the ready queue), a heap of timers
 * (heap.c) and a selector (selectors/). One iteration, in asyncio's
 * _run_once order:
 *   1. when the ready queue is empty, or CORO__POLL_EVERY callbacks ran since
 *      the last poll: drop cancelled timers, compute the timeout (0 when work
 *      is ready or stop was called, else the nearest deadline rounded UP to
 *      the millisecond, else forever), poll (I/O callbacks join the queue);
 *   2. when a timer is armed: read the clock and move the due timers to the
 *      queue in deadline order (every pass, busy or not);
 *   3. run exactly the callbacks that were queued when the pass began, FIFO;
 *      what they schedule runs in the next pass.
 * So a yield through a busy loop costs no system call (the poll is skipped
 * while callbacks are ready, and made without one when no fd is watched;
 * the clock is read through the vDSO, and only when a timer is armed), yet
 * a ready fd waits at most CORO__POLL_EVERY callbacks.
 *
 * Invariants: a node is on the ready queue at most once; the queue and the
 * heap only hold intrusive nodes, so scheduling never allocates (except a
 * call_soon without a caller-owned handle).
 */
/* The POSIX interfaces this file uses (clock_gettime, sigaction, ...),
 * whatever the compiler's default: a plain `cc -std=c11 -c` builds it. */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "coro_int.h"
#include "coro_platform.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_SLOW_NS (100 * 1000000LL)

/* ---- clock ---- */

int64_t coro__clock_ns(void) { return coro_platform_clock_ns(); }

int coro__virtual_loops;

int64_t coro_loop_time_ns(const coro_loop *loop)
{
    if (!loop && !__atomic_load_n(&coro__virtual_loops, __ATOMIC_RELAXED))
        return coro__clock_ns(); /* the common case: no loop runs on virtual time */
    loop = coro__loop_or_running((coro_loop *)loop);
    return loop ? coro__now(loop) : coro__clock_ns();
}

int coro_loop_set_virtual_time(coro_loop *loop, int on)
{
    if (!loop)
        return CORO_EINVAL;
    if (!on && loop->vnow) {
        loop->vnow = 0;
        __atomic_fetch_sub(&coro__virtual_loops, 1, __ATOMIC_RELAXED);
    } else if (on && !loop->vnow) {
        loop->vnow = coro__clock_ns() > 0 ? coro__clock_ns() : 1;
        __atomic_fetch_add(&coro__virtual_loops, 1, __ATOMIC_RELAXED);
    }
    return 0;
}

int coro_loop_advance(coro_loop *loop, int64_t ns)
{
    if (!loop || ns < 0)
        return CORO_EINVAL;
    if (!loop->vnow)
        return CORO_ESTATE;
    loop->vnow = coro__deadline_after(loop->vnow, ns);
    return 0;
}


/* ---- init / close ---- */

static int debug_from_env(int opt)
{
    if (opt != 0)
        return opt > 0;
#if CORO_HOSTED
    const char *e = getenv("CORO_DEBUG");
    return e && strcmp(e, "1") == 0;
#else
    return 0; /* no environment on bare metal */
#endif
}

int coro_loop_init(coro_loop *loop, const coro_loop_options *opt)
{
    if (!loop)
        return CORO_EINVAL;
    coro_loop_options none = { 0 };
    if (!opt)
        opt = &none;
    memset(loop, 0, sizeof *loop);
    coro__ready_clear(loop);
    if (opt->arena) { /* the heap-free mode: every byte from the arena */
        loop->alloc_ud = coro__arena_init(opt->arena, opt->arena_size);
        if (!loop->alloc_ud)
            return CORO_EINVAL;
        loop->alloc = coro__arena_alloc;
    } else if (opt->alloc) {
        loop->alloc = opt->alloc;
        loop->alloc_ud = opt->alloc_ud;
    } else {
#ifdef CORO_NO_MALLOC
        return CORO_EINVAL; /* no heap in this build: give an allocator or an arena */
#else
        loop->alloc = coro__default_alloc;
#endif
    }
    loop->debug = (uint8_t)debug_from_env(opt->debug);
    loop->watch = loop->debug;
    if (opt->virtual_time)
        coro_loop_set_virtual_time(loop, 1);

    loop->slow_ns = opt->slow_callback_ns > 0 ? opt->slow_callback_ns : DEFAULT_SLOW_NS;
    int rc = coro__mem_init(loop);
    if (rc != 0)
        return rc;
    rc = coro__sel_init(loop);
    if (rc != 0) {
        coro__mem_fini(loop);
        return rc;
    }
    rc = coro__tasks_reserve(loop, opt->reserve_tasks);
    if (rc == 0)
        rc = coro__heap_reserve(loop, opt->reserve_timers);
    if (rc != 0) {
        coro__tasks_fini(loop);
        coro__heap_fini(loop);
        coro__sel_fini(loop);
        coro__mem_fini(loop);
        return rc;
    }
    loop->state = LOOP_IDLE;
    coro__trace_from_env(loop); /* CORO_TRACE=1 or =file.json */
    return 0;
}

int coro_loop_arena_usage(const coro_loop *loop, size_t *used, size_t *peak, size_t *size)
{
    if (!loop || loop->alloc != coro__arena_alloc)
        return CORO_EINVAL;
    coro__arena_usage(loop->alloc_ud, used, peak, size);
    return 0;
}

#ifndef CORO_NO_MALLOC
coro_loop *coro_loop_new(const coro_loop_options *opt)
{
    coro_loop *loop = malloc(sizeof *loop);
    if (loop && coro_loop_init(loop, opt) != 0) {
        free(loop);
        return NULL;
    }
    return loop;
}
#endif

static void drop_posts(coro_loop *loop);

int coro_loop_close(coro_loop *loop)
{
    if (!loop)
        return CORO_EINVAL;
    if (loop->state == LOOP_RUNNING)
        return CORO_ERUNNING;
    if (loop->state == LOOP_CLOSED)
        return 0;
    if (loop->threads_fini) /* first: the pool's threads may still post to us */
        loop->threads_fini(loop);
    coro__trace_stop(loop); /* the JSON file is complete */
    coro_loop_set_virtual_time(loop, 0);
    drop_posts(loop);
    coro__tasks_fini(loop);
    coro__heap_fini(loop);
    coro__sel_fini(loop);
    coro__mem_fini(loop); /* every node still queued lived in the slab */
    coro__ready_clear(loop);
    loop->pass_head = NULL;
    loop->state = LOOP_CLOSED;
    return 0;
}

#ifndef CORO_NO_MALLOC
void coro_loop_free(coro_loop *loop)
{
    if (!loop || coro_loop_close(loop) != 0)
        return;
    free(loop);
}
#endif

int coro_loop_is_running(const coro_loop *loop) { return loop && loop->state == LOOP_RUNNING; }
int coro_loop_is_closed(const coro_loop *loop) { return !loop || loop->state == LOOP_CLOSED; }

/* ---- the ready queue ---- */

/* Run the callbacks queued when the pass began, and no others: the pass
 * takes the whole queue as its batch (loop->pass_head) and walks it; nodes
 * queued meanwhile start a new queue for the next pass. coro__ready_remove
 * looks in both. The queue is not empty (run_once sees to it), so the walk
 * is a do-while: the busy pass falls into its first callback without a
 * jump. Returns `ran` plus the callbacks run. */
static CORO__ALWAYS_INLINE inline unsigned run_ready(coro_loop *loop, unsigned ran)
{
    coro__node *n = loop->ready_head;
    coro__ready_clear(loop);
    do {
        loop->pass_head = n->next;
        ran++;
        if (CORO__LIKELY(n->run == coro__task_step))
            coro__task_step_fast(loop, n); /* Task.__step, inline */
        else
            n->run(n); /* may free n */
        n = loop->pass_head; /* a callback may have taken the next one back */
    } while (n);
    return ran;
}

/* Unlink n from the list at *head (tail: the list's last link, or NULL). */
static int unlink_node(coro__node **head, coro__node ***tail, coro__node *n)
{
    for (coro__node **link = head; *link; link = &(*link)->next) {
        if (*link != n)
            continue;
        *link = n->next;
        if (tail && *tail == &n->next)
            *tail = link;
        return 1;
    }
    return 0;
}

int coro__ready_remove(coro_loop *loop, coro__node *n)
{
    return unlink_node(&loop->pass_head, NULL, n) ||
           unlink_node(&loop->ready_head, &loop->ready_tail, n);
}

/* ---- posts from interrupts and other threads ---- */

int coro_call_soon_isr(coro_loop *loop, coro_isr_node *p, coro_callback fn, void *arg)
{
    if (!loop || !p || !fn)
        return CORO_EINVAL;
    if (__atomic_exchange_n(&p->queued, 1, __ATOMIC_ACQ_REL))
        return 0; /* still queued: coalesced */
    p->fn = fn;
    p->arg = arg;
    coro_isr_node *old = __atomic_load_n(&loop->posts, __ATOMIC_RELAXED);
    do {
        p->next = old;
    } while (!__atomic_compare_exchange_n(&loop->posts, &old, p, true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    void (*wake)(coro_loop *) = __atomic_load_n(&loop->wake, __ATOMIC_ACQUIRE);
    if (wake)
        wake(loop);
    else
        coro_platform_wake(loop);
    return 1;
}

/* Take every post (one exchange), put them in posting order, run them. A
 * post's flag is cleared before its callback, so the callback (or an
 * interrupt meanwhile) may post it again: it runs on the next pass. */
static void run_posts(coro_loop *loop)
{
    coro_isr_node *p = __atomic_exchange_n(&loop->posts, NULL, __ATOMIC_ACQUIRE), *in_order = NULL;
    while (p) { /* the stack is newest first */
        coro_isr_node *next = p->next;
        p->next = in_order;
        in_order = p;
        p = next;
    }
    while (in_order) {
        coro_isr_node *q = in_order;
        coro_callback fn = q->fn;
        void *arg = q->arg;
        in_order = q->next;
        __atomic_store_n(&q->queued, 0, __ATOMIC_RELEASE);
        int rc = fn(arg);
        if (rc < 0)
            coro__report(loop, "Exception in a posted callback", rc, NULL);
    }
}

/* Close: posts never run are let go (a post may be made again, elsewhere). */
static void drop_posts(coro_loop *loop)
{
    coro_isr_node *p = __atomic_exchange_n(&loop->posts, NULL, __ATOMIC_ACQUIRE);
    while (p) {
        coro_isr_node *next = p->next;
        __atomic_store_n(&p->queued, 0, __ATOMIC_RELEASE);
        p = next;
    }
}

static bool posts_pending(const coro_loop *loop)
{
    return __atomic_load_n(&loop->posts, __ATOMIC_RELAXED) != NULL;
}

/* ---- one iteration ---- */

/* How long the poll may block, in nanoseconds: 0 when work is ready, -1
 * with no timer, else until the nearest deadline (each selector rounds it
 * UP to its own unit: never wake early). */
static int64_t poll_timeout(coro_loop *loop)
{
    int64_t next = coro__heap_next(loop);
    if (loop->ready_head || (loop->attn & CORO__ATTN_STOP) || posts_pending(loop))
        return 0;
    if (next < 0)
        return -1;
    int64_t wait = next - coro__now(loop);
    return wait <= 0 ? 0 : wait;
}

/* Virtual time: never wait for a timer. Watched fds are polled without
 * waiting; if that made nothing ready, the clock jumps to the deadline. */
static void virtual_poll(coro_loop *loop, int64_t timeout)
{
    if (loop->nwatched > 0)
        coro__sel_poll(loop, 0);
    if (!loop->ready_head && !posts_pending(loop))
        loop->vnow = coro__deadline_after(loop->vnow, timeout);
}

static void poll_phase(coro_loop *loop)
{
    if (!loop->ready_head)
        coro__mem_idle(loop); /* nothing to do: a good time to give memory back */
    int64_t timeout = poll_timeout(loop);
    loop->phase = CORO__PHASE_POLL; /* fd events complete futures now */
    if (loop->vnow && timeout > 0)
        virtual_poll(loop, timeout);
    else if (timeout != 0 || loop->nwatched > 0)
        coro__sel_poll(loop, timeout);
    loop->phase = CORO__PHASE_READY;
    coro__heap_run_due(loop, coro__now(loop)); /* the clock, again after the poll */
}

/* One pass (the trace and the stop are the caller's: run_forever looks at
 * them between passes, in one test of loop->attn). `since_poll` counts the
 * callbacks run since the last poll; run_forever keeps it in a register
 * from one pass to the next. Returns the new count. */
static CORO__ALWAYS_INLINE inline unsigned run_once(coro_loop *loop, unsigned since_poll)
{
    if (posts_pending(loop))
        run_posts(loop);
    if (CORO__UNLIKELY(!loop->ready_head || since_poll >= CORO__POLL_EVERY)) {
        poll_phase(loop);
        since_poll = 0;
        if (!loop->ready_head)
            return 0; /* the poll made nothing ready: next pass */
    } else if (loop->heap_len > 0) { /* busy: no poll, but due timers join */
        coro__heap_run_due(loop, coro__now(loop));
    }
    return run_ready(loop, since_poll);
}

/* Between two passes, when loop->attn is set: true to stop; else the trace
 * records the next pass. Out of line: the busy loop keeps its registers. */
static CORO__NOINLINE bool pass_end_stops(coro_loop *loop)
{
    if (loop->attn & CORO__ATTN_STOP)
        return true;
    coro__trace_pass(loop); /* before the next pass */
    return false;
}

/* asyncio's _running_loop: the one piece of per-thread state, set only
 * while a loop runs on this thread, so a coroutine can find its loop
 * (thread-local where there are threads: coro_platform.h). */
CORO_RUNNING_LOOP_STORAGE coro_loop *running_loop;

coro_loop *coro_get_running_loop(void) { return running_loop; }

int coro_loop_run_forever(coro_loop *loop)
{
    if (!loop)
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    if (loop->state == LOOP_RUNNING || running_loop)
        return CORO_ERUNNING; /* this loop, or another on this thread */
    loop->state = LOOP_RUNNING;
    running_loop = loop;
    if (loop->attn & CORO__ATTN_TRACE)
        coro__trace_pass(loop);
    unsigned since_poll = 0; /* a new run polls within its first POLL_EVERY */
    do {
        since_poll = run_once(loop, since_poll); /* one pass even when stop came first, as asyncio */
    } while (!(CORO__UNLIKELY(loop->attn) && pass_end_stops(loop)));
    running_loop = NULL;
    loop->attn &= (uint8_t)~CORO__ATTN_STOP;
    loop->state = LOOP_IDLE;
    return 0;
}

void coro_loop_stop(coro_loop *loop)
{
    if (loop && loop->state != LOOP_CLOSED)
        loop->attn |= CORO__ATTN_STOP;
}

struct until {
    coro_loop *loop;
    int ran;
};

static void stop_when_done(coro_future *f, void *arg)
{
    struct until *u = arg;
    (void)f;
    u->ran = 1;
    coro_loop_stop(u->loop);
}

int coro_loop_run_until_complete(coro_loop *loop, coro_future *fut)
{
    if (!loop || !fut || fut->loop != loop)
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    if (loop->state == LOOP_RUNNING)
        return CORO_ERUNNING;
    struct until u = { loop, 0 };
    coro_done_node node; /* on this stack: take it back before returning */
    coro_future_add_done_node(fut, &node, stop_when_done, &u);
    coro__task_pin(fut); /* a released task must outlive this call */
    int rc = coro_loop_run_forever(loop);
    if (!u.ran) {
        if (coro_future_done(fut))
            coro__ready_remove(loop, &node.node);
        else
            coro__future_remove_node(fut, &node.node);
    }
    if (rc == 0)
        rc = coro_future_done(fut) ? coro_future_error(fut)
                                   : CORO_ESTATE; /* stopped before it completed */
    coro__task_unpin(fut);
    return rc;
}

/* ---- callbacks and timers ---- */

static void handle_run(coro__node *n)
{
    coro_handle *h = CORO__CONTAINER(n, coro_handle, t.node);
    coro_loop *loop = h->loop;
    unsigned flags = h->flags;
    h->flags &= ~(HANDLE_F_READY | HANDLE_F_TIMER);
    int64_t t0 = loop->debug ? coro__clock_ns() : 0;
    int rc = h->fn(h->arg); /* may reschedule or free a caller-owned h */
    if (rc < 0)
        coro__report(loop, "Exception in callback", rc, NULL);
    if (loop->debug)
        coro__check_slow(loop, t0, NULL, 0);
    if (flags & HANDLE_F_ALLOCATED)
        coro__free(loop, h, sizeof *h);
}

void coro_handle_init(coro_handle *h)
{
    if (h) {
        memset(h, 0, sizeof *h);
        h->t.heap_index = CORO__HEAP_NONE;
    }
}

/* Check the arguments and get a handle ready to schedule. */
static coro_handle *prepare(coro_loop *loop, coro_handle *h, coro_callback fn, void *arg, int *rc)
{
    *rc = CORO_EINVAL;
    if (!loop || !fn)
        return NULL;
    if (loop->state == LOOP_CLOSED) {
        *rc = CORO_ECLOSED;
        return NULL;
    }
    if (h) {
        if (h->flags & (HANDLE_F_READY | HANDLE_F_TIMER))
            return NULL; /* already scheduled */
        h->flags = 0;
    } else {
        h = coro__alloc(loop, sizeof *h);
        if (!h) {
            *rc = CORO_ENOMEM;
            return NULL;
        }
        h->flags = HANDLE_F_ALLOCATED;
    }
    h->loop = loop;
    h->fn = fn;
    h->arg = arg;
    h->t.node.run = handle_run;
    h->t.heap_index = CORO__HEAP_NONE;
    *rc = 0;
    return h;
}

int coro_call_soon(coro_loop *loop, coro_handle *h, coro_callback fn, void *arg)
{
    int rc;
    h = prepare(loop, h, fn, arg, &rc);
    if (!h)
        return rc;
    h->flags |= HANDLE_F_READY;
    coro__ready_push(loop, &h->t.node);
    return 0;
}

int coro_call_at(coro_loop *loop, coro_handle *h, int64_t when_ns, coro_callback fn, void *arg)
{
    return coro__call_at_seq(loop, h, when_ns, fn, arg, loop ? loop->timer_seq : 0);
}

int coro__call_at_seq(coro_loop *loop, coro_handle *h, int64_t when_ns, coro_callback fn, void *arg,
                      uint32_t seq)
{
    int rc;
    coro_handle *owned = h;
    h = prepare(loop, h, fn, arg, &rc);
    if (!h)
        return rc;
    if (seq == loop->timer_seq)
        loop->timer_seq++; /* a fresh place, as coro__heap_push takes */
    rc = coro__heap_push_seq(loop, &h->t, when_ns, seq);
    if (rc != 0) {
        if (!owned)
            coro__free(loop, h, sizeof *h);
        return rc;
    }
    h->flags |= HANDLE_F_TIMER;
    return 0;
}


int coro_handle_cancel(coro_handle *h)
{
    if (!h || !(h->flags & (HANDLE_F_READY | HANDLE_F_TIMER)))
        return 0;
    if ((h->flags & HANDLE_F_TIMER) && h->t.heap_index != CORO__HEAP_NONE)
        coro__heap_cancel(h->loop, &h->t); /* a tombstone: O(1) */
    else
        coro__ready_remove(h->loop, &h->t.node); /* queued: take it back */
    h->flags &= ~(HANDLE_F_READY | HANDLE_F_TIMER);
    return 1;
}

/* ---- errors and debug mode ---- */

void coro_loop_set_exception_handler(coro_loop *loop, coro_exception_handler fn, void *arg)
{
    if (!loop)
        return;
    loop->on_error = fn;
    loop->on_error_arg = arg;
}

void coro_loop_call_exception_handler(coro_loop *loop, const coro_exception_context *ctx)
{
    if (!ctx)
        return;
    if (loop && loop->on_error)
        loop->on_error(loop, ctx, loop->on_error_arg);
    else
        coro__default_report(ctx);
}

static void report_ex(coro_loop *loop, const char *msg, int err, coro_task *task, int line,
                      int64_t ns)
{
    char buf[32];
    coro_exception_context c = { msg, err, task, NULL, line, 0, NULL, NULL, ns, NULL, NULL, 0 };
#if CORO_HOSTED /* a bare-metal build links no floating point: duration_ns only */
    c.seconds = (double)ns / 1e9;
#endif
    if (task) {
        c.task_name = coro__task_name(task, buf, sizeof buf);
        coro__task_creator(task, &c);
    }
    coro_loop_call_exception_handler(loop, &c);
}

void coro__report_frame(const char *msg, int err, int line, const char *function, const char *file)
{
    char buf[32];
    coro_loop *loop = coro_get_running_loop();
    coro_task *task = loop ? loop->current : NULL;
    coro_exception_context c = { msg, err, task, NULL, line, 0, function, file, 0, NULL, NULL, 0 };
    if (task) {
        c.task_name = coro__task_name(task, buf, sizeof buf);
        coro__task_creator(task, &c);
    }
    coro_loop_call_exception_handler(loop, &c);
}

void coro__report(coro_loop *loop, const char *message, int error, coro_task *task)
{
    report_ex(loop, message, error, task, coro_task_resume_line(task), 0);
}

void coro__report_line(coro_loop *loop, const char *message, int error, coro_task *task, int line)
{
    report_ex(loop, message, error, task, line, 0);
}

void coro__check_slow(coro_loop *loop, int64_t t0, coro_task *task, int line)
{
    if (t0 == 0)
        return; /* debug mode was switched on during the callback: not timed */
    int64_t dt = coro__clock_ns() - t0;
    if (dt >= loop->slow_ns)
        report_ex(loop, task ? "Executing task was slow" : "Executing callback was slow", 0, task,
                  line, dt);
}

void coro_loop_set_debug(coro_loop *loop, int on)
{
    if (loop) {
        loop->debug = on != 0;
        loop->watch = loop->debug || loop->trace;
    }
}

int coro_loop_get_debug(const coro_loop *loop) { return loop && loop->debug; }

