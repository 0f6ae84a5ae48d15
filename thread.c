/*
 * thread.c - threads and signals: call_soon_threadsafe, the executor
 * (to_thread, run_in_executor) and signal handlers; asyncio's
 * _write_to_self/_read_from_self, ThreadPoolExecutor and unix_events'
 * add_signal_handler in C.
 *
 * One state per loop (struct threads, from the loop's allocator), made by
 * coro_threads_init on the loop's thread and published in loop->threads:
 *
 *   wake fd     an eventfd (Linux) or a non-blocking pipe, watched with a
 *               coro_fd; its readable future's done callback (on_wake)
 *               drains it, moves the posted nodes to the ready queue in
 *               order, turns raised signal flags into ready callbacks, and
 *               waits again. Interest stays armed, so that costs no syscall.
 *   queue       posted nodes (coro_threadsafe_node), under `mu`. A poster
 *               appends, and writes the fd only if `wake_pending` was clear;
 *               on_wake clears it when it takes the whole queue. So many
 *               posts before a drain cost one write (the coalescing), and no
 *               post is ever left without a write after it: a node is in
 *               the queue before its poster looks at the flag, and the flag
 *               is cleared only together with taking the queue.
 *   pool        up to `max` threads (started when work arrives and none is
 *               idle) taking work items FIFO under `pmu`. A work item is the
 *               pool's (the loop's slab, allocated and freed on the loop
 *               thread only); the worker runs fn, stores the value in the
 *               item, and posts the item's own node: that is the item's last
 *               touch by the worker. Everything else about an item (its
 *               target future, the op pointing at it) is loop-thread only.
 *   signals     the process-wide part is static (a signal has one
 *               disposition): the owner loop per signal (under sig_mu), and
 *               for the handler, which may only touch lock-free atomics, the
 *               owner's wake fd and a "raised" flag per signal.
 *
 * Cancellation of work: the item watches its target future (a done node).
 * If the future is cancelled (the awaiting task was, or the user cancelled
 * run_in_executor's future), the item lets go of it: still queued, it leaves
 * the queue and is discarded (fn never runs); running, it is orphaned, and
 * its completion discards fn's value instead of delivering it. The worker
 * never sees any of this, so it never touches caller storage.
 *
 * Close (threads_fini, called first by coro_loop_close): restore signal
 * dispositions, stop and JOIN the pool (running work finishes; queued work
 * is discarded), then discard every completion not yet delivered and drop
 * every posted callback not yet run (also those already moved to the ready
 * queue: they are not the slab's), close the fd, and leave loop->threads at
 * a "closed" mark so a late poster gets CORO_ECLOSED.
 *
 * Known limit: removing a handler restores the disposition, then clears the
 * routed fd; a handler already running on another thread at that instant
 * may still write the old fd once (harmless while the loop lives; close
 * removes handlers before it closes the fd, so only that instant is open).
 *
 * It must never: call the allocator hook off the loop thread; let a worker
 * touch an op, a future or the loop; do anything in a signal handler but
 * atomic stores and write(); run a posted callback inline.
 */
/* The POSIX interfaces this file uses (clock_gettime, sigaction, ...),
 * whatever the compiler's default: a plain `cc -std=c11 -c` builds it. */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "coro_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__) && !defined(CORO_WAKE_PIPE)
#include <sys/eventfd.h>
#define HAVE_EVENTFD 1
#endif

#ifndef NSIG
#define NSIG 65
#endif

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler needs lock-free atomic ints");

/* threadsafe node flags */
#define TS_MALLOC 0x01u /* from malloc: freed when it runs or is dropped */
#define TS_WORK 0x02u   /* a work item's completion: arg is the item */

enum { WORK_QUEUED = 0, WORK_RUNNING };

struct coro__work {
    coro__link link;                /* on the pool's queue (pmu) */
    coro_threadsafe_node done;      /* the completion the worker posts */
    coro_done_node watch;           /* on the target future: learns its cancel */
    coro_work_fn fn;
    void *arg;
    coro_discard_fn discard;
    coro_value result;     /* written by the worker before it posts */
    coro_future *fut;      /* loop thread: the target, NULL once let go */
    coro_to_thread_op *op; /* loop thread: the op pointing at this item */
    int state;             /* pmu: queued / running */
};

struct sigent {
    struct sigent *next;
    int signum;
    coro_callback fn;
    void *arg;
    coro_handle h; /* the delivery, on the ready queue */
    struct sigaction old;
};

typedef struct threads {
    coro_loop *loop;
    int rfd, wfd; /* the same fd for an eventfd */
    coro_fd watch;
    coro_done_node on_readable;
    /* the cross-thread queue */
    pthread_mutex_t mu;
    coro__node *head, *tail;
    int wake_pending;
    uint64_t writes, drains; /* tests: wake-ups asked for / taken */
    /* the pool */
    pthread_mutex_t pmu;
    pthread_cond_t pcv;
    coro__list queue; /* work not started yet (pmu) */
    pthread_t *thr; /* `max` slots, allocated at the first start */
    unsigned nthr, max, idle, nqueued;
    int stopping;
    /* signals */
    struct sigent *sigs;
} threads;

/* loop->threads after close: a late poster reads it and gets CORO_ECLOSED */
static const char closed_mark;
#define THREADS_CLOSED ((void *)&closed_mark)

static void *state_load(const coro_loop *loop)
{
    return __atomic_load_n(&loop->threads, __ATOMIC_ACQUIRE);
}

static void wake_write(int fd);

/* loop->wake while the wake-up fd exists: how coro_call_soon_isr (core) wakes a
 * selector's wait from an ISR-like context. Async-signal-safe. */
static void threads_wake(coro_loop *loop)
{
    threads *st = state_load(loop);
    if (st && st != THREADS_CLOSED)
        wake_write(st->wfd);
}

static void state_store(coro_loop *loop, void *st)
{
    __atomic_store_n(&loop->threads, st, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------------ */
/* The wake-up fd                                                           */
/* ------------------------------------------------------------------------ */

/* async-signal-safe: the signal handler calls it */
static void wake_write(int fd)
{
#ifdef HAVE_EVENTFD
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
#else
    char c = 0;
    ssize_t r = write(fd, &c, 1); /* EAGAIN: full, so readable already */
#endif
    (void)r;
}

static void wake_drain(threads *st)
{
#ifdef HAVE_EVENTFD
    uint64_t v;
    ssize_t r = read(st->rfd, &v, sizeof v); /* resets the counter */
    (void)r;
#else
    char buf[256];
    while (read(st->rfd, buf, sizeof buf) > 0) {
    }
#endif
}

static int wake_open(threads *st)
{
#ifdef HAVE_EVENTFD
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    st->rfd = st->wfd = fd;
#else
    int p[2];
    if (pipe(p) != 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(p[i], F_GETFL);
        if (fl < 0 || fcntl(p[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(p[i], F_SETFD, FD_CLOEXEC) != 0) {
            int err = -errno;
            close(p[0]);
            close(p[1]);
            return err;
        }
    }
    st->rfd = p[0];
    st->wfd = p[1];
#endif
    return 0;
}

static void wake_close(threads *st)
{
    if (st->wfd != st->rfd)
        close(st->wfd);
    close(st->rfd);
}

/* ------------------------------------------------------------------------ */
/* Posting and running nodes                                                */
/* ------------------------------------------------------------------------ */

static void post(threads *st, coro_threadsafe_node *n)
{
    int need;
    pthread_mutex_lock(&st->mu);
    n->node.next = NULL;
    if (st->tail)
        st->tail->next = &n->node;
    else
        st->head = &n->node;
    st->tail = &n->node;
    need = !st->wake_pending;
    st->wake_pending = 1;
    if (need)
        st->writes++;
    pthread_mutex_unlock(&st->mu);
    if (need)
        wake_write(st->wfd);
}

/* A posted node's turn on the ready queue. The node is released before the
 * callback runs, so the callback may post it again. */
static void ts_run(coro__node *node)
{
    coro_threadsafe_node *n = CORO__CONTAINER(node, coro_threadsafe_node, node);
    coro_loop *loop = n->loop;
    coro_callback fn = n->fn;
    void *arg = n->arg;
    if (n->flags & TS_MALLOC)
        free(n);
    int64_t t0 = loop->debug ? coro__clock_ns() : 0;
    int rc = fn(arg);
    if (rc < 0)
        coro__report(loop, "Exception in callback", rc, NULL);
    if (loop->debug)
        coro__check_slow(loop, t0, NULL, 0);
}

static void work_drop(struct coro__work *w, coro_value v);
static void work_let_go(struct coro__work *w);

/* A node that will never run (close): release what it holds. */
static void ts_drop(coro__node *node)
{
    coro_threadsafe_node *n = CORO__CONTAINER(node, coro_threadsafe_node, node);
    if (n->flags & TS_WORK) {
        struct coro__work *w = n->arg;
        work_let_go(w);
        work_drop(w, w->result);
    } else if (n->flags & TS_MALLOC) {
        free(n);
    }
}

static void on_wake(coro_future *f, void *arg);

/* Wait for the wake fd again (the interest stays armed: no syscall). */
static int watch(threads *st)
{
    coro_future *f = coro_fd_wait_readable(&st->watch);
    if (!f)
        return CORO_ECLOSED;
    if (coro_future_done(f)) {
        int rc = coro_future_error(f);
        return rc < 0 ? rc : CORO_ESTATE;
    }
    return coro_future_add_done_node(f, &st->on_readable, on_wake, st);
}

static void deliver_signals(threads *st);

static void on_wake(coro_future *f, void *arg)
{
    threads *st = arg;
    coro__node *n, *next;
    if (coro_future_cancelled(f))
        return;     /* detached */
    wake_drain(st); /* first: a post after this writes again */
    pthread_mutex_lock(&st->mu);
    n = st->head;
    st->head = st->tail = NULL;
    st->wake_pending = 0;
    st->drains++;
    pthread_mutex_unlock(&st->mu);
    for (; n; n = next) {
        next = n->next;
        coro__ready_push(st->loop, n);
    }
    deliver_signals(st);
    int rc = watch(st);
    if (rc < 0)
        coro__report(st->loop, "thread wake-up fd lost: cross-thread calls will not run", rc, NULL);
}

/* ------------------------------------------------------------------------ */
/* Set-up and close                                                         */
/* ------------------------------------------------------------------------ */

static void pool_stop(threads *st);
static void signals_fini(threads *st);

static void state_free(coro_loop *loop, threads *st)
{
    pthread_cond_destroy(&st->pcv);
    pthread_mutex_destroy(&st->pmu);
    pthread_mutex_destroy(&st->mu);
    coro__realloc(loop, st, sizeof *st, 0);
}

/* Take every node of ours off the ready queue (close: they will not run,
 * and they are not the slab's). */
static void ready_filter(coro_loop *loop)
{
    coro__node *n = loop->ready_head, *ours = NULL, *next;
    coro__ready_clear(loop);
    for (; n; n = next) { /* split first: dropping may take other nodes back */
        next = n->next;
        if (n->run == ts_run) {
            n->next = ours;
            ours = n;
        } else {
            coro__ready_push(loop, n);
        }
    }
    for (n = ours; n; n = next) {
        next = n->next;
        ts_drop(n);
    }
}

static void threads_fini(coro_loop *loop)
{
    __atomic_store_n(&loop->wake, NULL, __ATOMIC_RELEASE); /* before the fd goes */
    threads *st = loop->threads;
    coro__node *n, *next;
    signals_fini(st);
    pool_stop(st); /* joins: from here on, this is the only thread */
    if (coro_future_done(&st->watch.rfut))
        coro__ready_remove(loop, &st->on_readable.node);
    else
        coro_future_remove_done_callback(&st->watch.rfut, on_wake, st);
    coro_fd_detach(&st->watch);
    for (n = st->head; n; n = next) {
        next = n->next;
        ts_drop(n);
    }
    st->head = st->tail = NULL;
    ready_filter(loop);
    wake_close(st);
    state_free(loop, st);
    state_store(loop, THREADS_CLOSED);
    loop->threads_fini = NULL;
}

int coro_threads_init(coro_loop *loop)
{
    threads *st;
    int rc;
    if (!loop)
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    if (state_load(loop))
        return 0;
    st = coro__realloc(loop, NULL, 0, sizeof *st);
    if (!st)
        return CORO_ENOMEM;
    memset(st, 0, sizeof *st);
    st->loop = loop;
    st->max = CORO_EXECUTOR_THREADS_DEFAULT;
    if ((rc = pthread_mutex_init(&st->mu, NULL)) != 0)
        goto fail_mu;
    if ((rc = pthread_mutex_init(&st->pmu, NULL)) != 0)
        goto fail_pmu;
    if ((rc = pthread_cond_init(&st->pcv, NULL)) != 0)
        goto fail_pcv;
    rc = -wake_open(st);
    if (rc != 0)
        goto fail_fd;
    rc = coro_fd_init(&st->watch, loop, st->rfd);
    if (rc == 0)
        rc = watch(st);
    if (rc != 0) {
        coro_fd_detach(&st->watch);
        wake_close(st);
        state_free(loop, st);
        return rc;
    }
    loop->threads_fini = threads_fini;
    state_store(loop, st);
    __atomic_store_n(&loop->wake, threads_wake, __ATOMIC_RELEASE);
    return 0;

fail_fd:
    pthread_cond_destroy(&st->pcv);
fail_pcv:
    pthread_mutex_destroy(&st->pmu);
fail_pmu:
    pthread_mutex_destroy(&st->mu);
fail_mu:
    coro__realloc(loop, st, sizeof *st, 0);
    return -rc;
}

/* tests: how many wake-up writes were made and how many drains ran */
void coro__threads_counts(const coro_loop *loop, uint64_t *writes, uint64_t *drains);
void coro__threads_counts(const coro_loop *loop, uint64_t *writes, uint64_t *drains)
{
    threads *st = loop ? state_load(loop) : NULL;
    uint64_t w = 0, d = 0;
    if (st && st != THREADS_CLOSED) {
        pthread_mutex_lock(&st->mu);
        w = st->writes;
        d = st->drains;
        pthread_mutex_unlock(&st->mu);
    }
    if (writes)
        *writes = w;
    if (drains)
        *drains = d;
}

/* ------------------------------------------------------------------------ */
/* call_soon_threadsafe                                                     */
/* ------------------------------------------------------------------------ */

/* The state a poster may use, from any thread. */
static threads *state_for_post(coro_loop *loop, int *rc)
{
    threads *st = state_load(loop);
    *rc = 0;
    if (st == THREADS_CLOSED) {
        *rc = CORO_ECLOSED;
        return NULL;
    }
    if (st)
        return st;
    if (coro_get_running_loop() != loop) {
        *rc = CORO_ESTATE; /* only the loop's thread may set it up */
        return NULL;
    }
    if ((*rc = coro_threads_init(loop)) != 0)
        return NULL;
    return state_load(loop);
}

static void node_fill(coro_threadsafe_node *n, coro_loop *loop, coro_callback fn, void *arg,
                      unsigned flags)
{
    n->node.run = ts_run;
    n->node.next = NULL;
    n->fn = fn;
    n->arg = arg;
    n->loop = loop;
    n->flags = flags;
}

int coro_call_soon_threadsafe_node(coro_loop *loop, coro_threadsafe_node *n, coro_callback fn,
                                   void *arg)
{
    int rc;
    if (!loop || !n || !fn)
        return CORO_EINVAL;
    threads *st = state_for_post(loop, &rc);
    if (!st)
        return rc;
    node_fill(n, loop, fn, arg, 0);
    post(st, n);
    return 0;
}

int coro_call_soon_threadsafe(coro_loop *loop, coro_callback fn, void *arg)
{
    int rc;
    if (!loop || !fn)
        return CORO_EINVAL;
    threads *st = state_for_post(loop, &rc);
    if (!st)
        return rc;
    coro_threadsafe_node *n = malloc(sizeof *n);
    if (!n)
        return CORO_ENOMEM;
    node_fill(n, loop, fn, arg, TS_MALLOC);
    post(st, n);
    return 0;
}

static int stop_cb(void *arg)
{
    coro_loop_stop(arg);
    return 0;
}

int coro_loop_stop_threadsafe(coro_loop *loop)
{
    return coro_call_soon_threadsafe(loop, stop_cb, loop);
}

/* ------------------------------------------------------------------------ */
/* The pool                                                                 */
/* ------------------------------------------------------------------------ */

static void queue_append(threads *st, struct coro__work *w)
{
    coro__list_push(&st->queue, &w->link);
    st->nqueued++;
}

static void queue_unlink(threads *st, struct coro__work *w)
{
    coro__list_remove(&st->queue, &w->link);
    st->nqueued--;
}

static void *worker(void *arg)
{
    threads *st = arg;
    pthread_mutex_lock(&st->pmu);
    for (;;) {
        while (coro__list_empty(&st->queue) && !st->stopping) {
            st->idle++;
            pthread_cond_wait(&st->pcv, &st->pmu);
            st->idle--;
        }
        if (st->stopping)
            break; /* queued work is the closing loop's to discard */
        struct coro__work *w = CORO__CONTAINER(st->queue.first, struct coro__work, link);
        queue_unlink(st, w);
        w->state = WORK_RUNNING;
        pthread_mutex_unlock(&st->pmu);
        w->result = w->fn(w->arg);
        post(st, &w->done); /* the last touch: w is the loop's again */
        pthread_mutex_lock(&st->pmu);
    }
    pthread_mutex_unlock(&st->pmu);
    return NULL;
}

/* Start one more worker (pmu held), with every signal blocked: signals are
 * for the program's own threads. */
static int spawn(threads *st)
{
    sigset_t all, old;
    if (!st->thr) {
        st->thr = coro__realloc(st->loop, NULL, 0, st->max * sizeof *st->thr);
        if (!st->thr)
            return CORO_ENOMEM;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&st->thr[st->nthr], NULL, worker, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    st->nthr++;
    return 0;
}

static void pool_stop(threads *st)
{
    pthread_mutex_lock(&st->pmu);
    st->stopping = 1;
    pthread_cond_broadcast(&st->pcv);
    pthread_mutex_unlock(&st->pmu);
    for (unsigned i = 0; i < st->nthr; i++)
        pthread_join(st->thr[i], NULL);
    if (st->thr)
        coro__realloc(st->loop, st->thr, st->max * sizeof *st->thr, 0);
    st->thr = NULL;
    st->nthr = 0;
    while (!coro__list_empty(&st->queue)) { /* never started */
        struct coro__work *w = CORO__CONTAINER(st->queue.first, struct coro__work, link);
        queue_unlink(st, w);
        work_let_go(w);
        work_drop(w, coro_error(CORO_ECANCELLED));
    }
}

int coro_loop_set_executor_threads(coro_loop *loop, unsigned n)
{
    if (!loop || n == 0 || n > CORO_EXECUTOR_THREADS_MAX)
        return CORO_EINVAL;
    int rc = coro_threads_init(loop);
    if (rc != 0)
        return rc;
    threads *st = state_load(loop);
    if (st->thr)
        return CORO_ESTATE; /* the pool has started */
    st->max = n;
    return 0;
}

/* ---- work items (loop thread) ---- */

/* Hand the outcome to the discard function, and free the item. */
static void work_drop(struct coro__work *w, coro_value v)
{
    coro_loop *loop = w->done.loop;
    if (w->discard)
        w->discard(w->arg, v);
    coro__free(loop, w, sizeof *w);
}

/* Let go of the target future and of the op's pointer. */
static void work_unhook(struct coro__work *w)
{
    coro_future *f = w->fut;
    if (f) {
        if (!coro_future_done(f))
            coro__future_remove_node(f, &w->watch.node);
        else /* done, and our watch is queued to run: take it back */
            coro__ready_remove(f->loop, &w->watch.node);
        w->fut = NULL;
    }
    if (w->op) {
        w->op->work = NULL;
        w->op = NULL;
    }
}

/* The outcome will go to the discard function, not to the op: say so in the
 * op (coro_to_thread_discarded), then let go of it. */
static void work_let_go(struct coro__work *w)
{
    if (w->op)
        w->op->dropped = 1;
    work_unhook(w);
}

/* The target is cancelled: a queued item is dropped, a running one orphaned
 * (its completion will discard the value). */
static void work_cancel(struct coro__work *w)
{
    threads *st = state_load(w->done.loop);
    int queued;
    work_let_go(w);
    pthread_mutex_lock(&st->pmu);
    queued = w->state == WORK_QUEUED;
    if (queued)
        queue_unlink(st, w);
    pthread_mutex_unlock(&st->pmu);
    if (queued)
        work_drop(w, coro_error(CORO_ECANCELLED));
}

/* the target future's done callback: someone else completed it (a cancel) */
static void work_target_done(coro_future *f, void *arg)
{
    struct coro__work *w = arg;
    (void)f;
    w->fut = NULL; /* our watch just ran: nothing to take back */
    work_cancel(w);
}

static void deliver(coro_future *f, coro_value v)
{
    if (v.tag != CORO_ERROR) {
        coro_future_set_result(f, v);
        return;
    }
    int err = (int)v.u.i;
    if (err == CORO_ECANCELLED)
        coro_future_cancel(f);
    else
        coro_future_set_error(f, err < 0 ? err : CORO_EINVAL);
}

/* the completion, on the loop thread */
static int work_done(void *arg)
{
    struct coro__work *w = arg;
    coro_future *f = w->fut;
    if (f && !coro_future_done(f)) {
        coro__future_remove_node(f, &w->watch.node);
        w->fut = NULL;
        work_unhook(w); /* the op's pointer */
        deliver(f, w->result);
        coro__free(w->done.loop, w, sizeof *w);
        return 0;
    }
    work_let_go(w);
    work_drop(w, w->result);
    return 0;
}

static int submit(coro_loop *loop, coro_future *fut, coro_work_fn fn, void *arg,
                  coro_discard_fn discard, coro_to_thread_op *op)
{
    int rc = coro_threads_init(loop);
    if (rc != 0)
        return rc;
    threads *st = state_load(loop);
    struct coro__work *w = coro__alloc(loop, sizeof *w);
    if (!w)
        return CORO_ENOMEM;
    node_fill(&w->done, loop, work_done, w, TS_WORK);
    w->fn = fn;
    w->arg = arg;
    w->discard = discard;
    w->state = WORK_QUEUED;
    pthread_mutex_lock(&st->pmu);
    queue_append(st, w);
    if (st->nqueued > st->idle && st->nthr < st->max)
        rc = spawn(st);
    if (rc != 0 && st->nthr > 0)
        rc = 0; /* the threads there will get to it */
    if (rc != 0)
        queue_unlink(st, w);
    else
        pthread_cond_signal(&st->pcv);
    pthread_mutex_unlock(&st->pmu);
    if (rc != 0) {
        coro__free(loop, w, sizeof *w);
        return rc;
    }
    /* loop-thread fields: the worker never reads them */
    w->fut = fut;
    w->op = op;
    if (op)
        op->work = w;
    coro_future_add_done_node(fut, &w->watch, work_target_done, w);
    return 0;
}

int coro_run_in_executor(coro_loop *loop, coro_future *fut, coro_work_fn fn, void *arg,
                         coro_discard_fn discard)
{
    if (!loop || !fut || !fn || fut->loop != loop || (fut->flags & FUT_F_TASK))
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    if (coro_future_done(fut))
        return CORO_ESTATE;
    return submit(loop, fut, fn, arg, discard, NULL);
}

/* ---- to_thread ---- */

static CORO_FN(to_thread_step)
{
    coro_to_thread_op *self = CORO_SELF(coro_to_thread_op);
    coro_loop *loop;
    coro_value v;
    int rc;
    CORO_BEGIN();
    loop = coro_get_running_loop();
    if (!loop)
        CORO_RAISE(CORO_EINVAL);
    rc = coro_future_init(&self->fut, loop);
    coro__future_set_kind(&self->fut, FUT_KIND_THREAD);
    if (rc == 0)
        rc = submit(loop, &self->fut, self->fn, self->arg, self->discard, self);
    if (rc != 0)
        CORO_RAISE(rc);
    CORO_AWAIT_ERR(&self->fut, self->err);
    if (self->err == 0)
        CORO_RETURN(CORO_RESULT);
    /* fn's outcome arrived, but a cancel of the task came first */
    if (self->err == CORO_ECANCELLED && !self->work && coro_future_done(&self->fut) &&
        !coro_future_cancelled(&self->fut))
        self->lost = self->dropped = 1;
    CORO_RAISE(self->err);
    CORO_FINALLY
    if (self->work) {
        work_cancel(self->work); /* clears self->work */
    } else if (self->lost && self->discard) {
        rc = coro_future_result(&self->fut, &v);
        self->discard(self->arg, rc == 0 ? v : coro_error(rc));
    }
    CORO_END();
}

coro_frame *coro_to_thread_ex(coro_to_thread_op *op, coro_work_fn fn, void *arg,
                              coro_discard_fn discard)
{
    if (!op || !fn)
        return NULL;
    coro_frame_init(&op->co, to_thread_step);
    memset(&op->fut, 0, sizeof op->fut);
    op->work = NULL;
    op->fn = fn;
    op->arg = arg;
    op->discard = discard;
    op->err = 0;
    op->lost = 0;
    op->dropped = 0;
    return &op->co;
}

int coro_to_thread_discarded(const coro_to_thread_op *op) { return op && op->dropped; }

coro_frame *coro_to_thread(coro_to_thread_op *op, coro_work_fn fn, void *arg)
{
    return coro_to_thread_ex(op, fn, arg, NULL);
}

/* ------------------------------------------------------------------------ */
/* Signals                                                                  */
/* ------------------------------------------------------------------------ */

/* Process-wide, as dispositions are. sig_owner under sig_mu; the handler
 * reads only the atomics: the owner's wake fd plus one (0: none), and sets
 * the "raised" flag the owner's on_wake clears. */
static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER;
static coro_loop *sig_owner[NSIG];
static atomic_int sig_fd1[NSIG];
static atomic_int sig_raised[NSIG];

static void on_signal(int signum)
{
    int saved = errno;
    if (signum > 0 && signum < NSIG) {
        atomic_store(&sig_raised[signum], 1);
        int fd = atomic_load(&sig_fd1[signum]) - 1;
        if (fd >= 0)
            wake_write(fd);
    }
    errno = saved;
}

static int valid_signal(int signum)
{
    return signum > 0 && signum < NSIG && signum != SIGKILL && signum != SIGSTOP;
}

static int sig_run(void *arg)
{
    struct sigent *e = arg;
    return e->fn(e->arg); /* may remove e */
}

static void deliver_signals(threads *st)
{
    for (struct sigent *e = st->sigs; e; e = e->next)
        if (atomic_exchange(&sig_raised[e->signum], 0))
            coro_call_soon(st->loop, &e->h, sig_run, e); /* already queued: coalesced */
}

static struct sigent **sig_find(threads *st, int signum)
{
    struct sigent **p = &st->sigs;
    while (*p && (*p)->signum != signum)
        p = &(*p)->next;
    return p;
}

int coro_add_signal_handler(coro_loop *loop, int signum, coro_callback fn, void *arg)
{
    struct sigaction sa;
    struct sigent *e;
    if (!loop || !fn || !valid_signal(signum))
        return CORO_EINVAL;
    int rc = coro_threads_init(loop);
    if (rc != 0)
        return rc;
    threads *st = state_load(loop);
    e = *sig_find(st, signum);
    if (e) { /* asyncio replaces the handler */
        e->fn = fn;
        e->arg = arg;
        return 0;
    }
    e = coro__alloc(loop, sizeof *e);
    if (!e)
        return CORO_ENOMEM;
    e->signum = signum;
    e->fn = fn;
    e->arg = arg;
    coro_handle_init(&e->h);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    pthread_mutex_lock(&sig_mu);
    if (sig_owner[signum]) {
        pthread_mutex_unlock(&sig_mu);
        coro__free(loop, e, sizeof *e);
        return CORO_ESTATE; /* another loop handles it */
    }
    atomic_store(&sig_raised[signum], 0);
    atomic_store(&sig_fd1[signum], st->wfd + 1); /* before: a signal at once is routed */
    if (sigaction(signum, &sa, &e->old) != 0) {
        rc = -errno;
        atomic_store(&sig_fd1[signum], 0);
        pthread_mutex_unlock(&sig_mu);
        coro__free(loop, e, sizeof *e);
        return rc;
    }
    sig_owner[signum] = loop;
    pthread_mutex_unlock(&sig_mu);
    e->next = st->sigs;
    st->sigs = e;
    return 0;
}

/* Restore the old disposition, forget the signal, free the entry. */
static void sig_release(coro_loop *loop, struct sigent *e)
{
    pthread_mutex_lock(&sig_mu);
    sigaction(e->signum, &e->old, NULL);
    atomic_store(&sig_fd1[e->signum], 0);
    atomic_store(&sig_raised[e->signum], 0);
    sig_owner[e->signum] = NULL;
    pthread_mutex_unlock(&sig_mu);
    coro_handle_cancel(&e->h);
    coro__free(loop, e, sizeof *e);
}

int coro_remove_signal_handler(coro_loop *loop, int signum)
{
    if (!loop || !valid_signal(signum))
        return CORO_EINVAL;
    threads *st = state_load(loop);
    if (!st || st == THREADS_CLOSED)
        return 0;
    struct sigent **p = sig_find(st, signum), *e = *p;
    if (!e)
        return 0;
    *p = e->next;
    sig_release(loop, e);
    return 1;
}

static void signals_fini(threads *st)
{
    while (st->sigs) {
        struct sigent *e = st->sigs;
        st->sigs = e->next;
        sig_release(st->loop, e);
    }
}
