/*
 * examples/loops.h - one loop per thread for the example servers (--loops N),
 * header only: nginx's workers, each an ordinary coro program.
 *
 * Used by examples/echo_server.c and examples/http_server.c; docs/net.md
 * ("One loop per thread") explains the pattern. Loop 0 runs on the main
 * thread and is the conductor; loops 1..N-1 run on threads of their own.
 * Every loop has its own server on the same TCP port
 * (coro_server_options.reuse_port: loop 0 binds first, maybe port 0, and
 * the others bind the port it got), so the kernel spreads the connections
 * and the loops share nothing. They talk only through
 * coro_call_soon_threadsafe, in a fixed protocol that never posts to a
 * closed loop:
 *
 *   worker -> loop 0   "ready" (its server listens, or its error), once;
 *                      "stopped" (its server is closed and drained), once
 *   loop 0 -> worker   "stop" (the program's stop callback, on the
 *                      worker's loop), after ready, once per signal;
 *                      "finish", once, after the worker's "stopped" and
 *                      the last message loop 0 sends it
 *
 * A worker's loop closes only after "finish" (it waits for it), and loop 0
 * sends it only once every worker has said "stopped" or failed, and sends
 * nothing after it. Loop 0 returns only then, so nothing posts to it once
 * it closes either. Loop 0 owns the signals (SIGINT, SIGTERM): its stop
 * callback calls loops_forward, which hands the stop to every worker that is
 * up (and to any that comes up later). A worker that fails to start stops
 * the whole program: a half-started server is worse than none.
 *
 * What a worker may touch: its own app and loop, its loops_member's `own`,
 * `err` and `finish` before it posts, nothing of loop 0's. Loop 0 touches
 * the state marked "loop 0 only". Fields set before the threads start are
 * read-only afterwards.
 */
#ifndef EXAMPLES_LOOPS_H
#define EXAMPLES_LOOPS_H

#include "coro.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOPS_MAX 64

enum { MEMBER_STARTING = 0, MEMBER_SERVING, MEMBER_STOPPED, MEMBER_FAILED };

typedef struct loops loops;

typedef struct loops_member {
    loops *all;
    int index;
    void *app;         /* the program's state for this loop (read-only) */
    pthread_t th;      /* started by loops_start (main thread joins it) */
    int started;       /* the thread exists (read-only once loop 0 returned) */
    int rc;            /* what the thread's run returned (read after the join) */
    coro_loop *own;    /* worker: its loop, set before "ready" */
    int err;           /* worker: its start error, set before "ready" */
    int reported;      /* worker's thread only: "ready" was sent */
    coro_event finish; /* on the worker's loop: set by "finish" */
    coro_event_wait_op wait;
    coro_threadsafe_node ready, stopped, fin;
    int state; /* loop 0 only */
} loops_member;

struct loops {
    int n;                 /* loops, 1..LOOPS_MAX (read-only) */
    int port;              /* the port every loop serves (set before the threads) */
    coro_loop *loop0;      /* (set before the threads) */
    int (*run)(void *app); /* a worker thread's body: run its loop to the end */
    coro_callback stop;    /* the program's stop, called with a member's app */
    int stopping, failed;  /* loop 0 only */
    int pending;           /* loop 0 only: workers not stopped or failed yet */
    coro_event all_done;   /* on loop 0 */
    coro_event_wait_op wait;
    loops_member m[LOOPS_MAX];
};

/* Set up (main thread, before anything runs): n loops, app i for each. */
static inline void loops_init(loops *L, int n, void **apps, int (*run)(void *), coro_callback stop)
{
    memset(L, 0, sizeof *L);
    L->n = n;
    L->run = run;
    L->stop = stop;
    for (int i = 0; i < n; i++) {
        L->m[i].all = L;
        L->m[i].index = i;
        L->m[i].app = apps[i];
    }
}

/* Loop 0: hand the stop to every worker that is up (a no-op elsewhere, so
 * the program's stop callback may call it on every loop). */
static inline void loops_forward(loops *L)
{
    if (!L || L->n < 2 || coro_get_running_loop() != L->loop0)
        return;
    L->stopping++;
    for (int i = 1; i < L->n; i++) {
        loops_member *m = &L->m[i];
        if (m->state == MEMBER_SERVING || m->state == MEMBER_STOPPED)
            if (coro_call_soon_threadsafe(m->own, L->stop, m->app) != 0)
                fprintf(stderr, "loop %d: the stop could not be handed over\n", i);
    }
}

static inline void loops_pending_down(loops *L)
{
    if (--L->pending == 0)
        coro_event_set(&L->all_done);
}

static inline int loops_on_ready(void *arg) /* on loop 0 */
{
    loops_member *m = arg;
    loops *L = m->all;
    if (m->err) {
        fprintf(stderr, "loop %d: %s: stopping every loop\n", m->index, coro_strerror(m->err));
        m->state = MEMBER_FAILED;
        L->failed = 1;
        loops_pending_down(L);
        return L->stop(L->m[0].app);
    }
    m->state = MEMBER_SERVING;
    if (L->stopping && coro_call_soon_threadsafe(m->own, L->stop, m->app) != 0)
        fprintf(stderr, "loop %d: the stop could not be handed over\n", m->index);
    return 0;
}

static inline int loops_on_stopped(void *arg) /* on loop 0 */
{
    loops_member *m = arg;
    m->state = MEMBER_STOPPED;
    loops_pending_down(m->all);
    return 0;
}

static inline int loops_on_finish(void *arg) /* on the worker's loop */
{
    loops_member *m = arg;
    return coro_event_set(&m->finish);
}

static inline void *loops_thread(void *arg)
{
    loops_member *m = arg;
    m->rc = m->all->run(m->app);
    if (!m->reported) { /* its loop never got as far as loops_ready */
        m->own = NULL;
        m->err = m->rc ? m->rc : CORO_ESTATE;
        m->reported = 1;
        if (coro_call_soon_threadsafe_node(m->all->loop0, &m->ready, loops_on_ready, m) != 0)
            abort();
    }
    return NULL;
}

/* Loop 0, once its own server listens on `port` (and its signal handlers
 * are in place, so the workers' coro_run leaves SIGINT alone): start the
 * workers. Returns 0 or an error (loop 0 should then stop and still await
 * loops_join: the workers already started must finish). */
static inline int loops_start(loops *L, int port)
{
    int rc;
    L->port = port;
    L->loop0 = coro_get_running_loop();
    if ((rc = coro_event_init(&L->all_done, L->loop0)) != 0 ||
        (rc = coro_threads_init(L->loop0)) != 0)
        return rc;
    L->pending = 1; /* held until every thread is started */
    for (int i = 1; i < L->n; i++) {
        L->pending++;
        if ((rc = pthread_create(&L->m[i].th, NULL, loops_thread, &L->m[i])) != 0) {
            L->pending--;
            L->failed = 1;
            loops_pending_down(L);
            return -rc;
        }
        L->m[i].started = 1;
    }
    loops_pending_down(L);
    return 0;
}

/* A worker, once its server listens (err 0) or failed to start: tell loop
 * 0. Returns err, or the error of making the loop reachable. */
static inline int loops_ready(loops *L, int i, int err)
{
    loops_member *m = &L->m[i];
    m->own = coro_get_running_loop();
    if (err == 0 && (err = coro_threads_init(m->own)) == 0)
        err = coro_event_init(&m->finish, m->own);
    m->err = err;
    m->reported = 1;
    if (coro_call_soon_threadsafe_node(L->loop0, &m->ready, loops_on_ready, m) != 0)
        abort(); /* loop 0 waits for this message: it cannot be lost */
    return err;
}

/* A worker, once its server is closed and its connections are gone: await
 * this before returning (its loop must outlive loop 0's messages). */
static inline coro_frame *loops_done(loops *L, int i)
{
    loops_member *m = &L->m[i];
    if (coro_call_soon_threadsafe_node(L->loop0, &m->stopped, loops_on_stopped, m) != 0)
        abort();
    return coro_event_wait(&m->wait, &m->finish);
}

/* Loop 0, once its own server is done: await every worker's end. After
 * this, loop 0 sends nothing more and may return. */
static inline coro_frame *loops_join(loops *L) { return coro_event_wait(&L->wait, &L->all_done); }

/* Loop 0, after loops_join: let the workers close. */
static inline void loops_release(loops *L)
{
    for (int i = 1; i < L->n; i++)
        if (L->m[i].state == MEMBER_STOPPED &&
            coro_call_soon_threadsafe_node(L->m[i].own, &L->m[i].fin, loops_on_finish, &L->m[i]) !=
                0)
            abort();
}

/* Main thread, after loop 0's run returned: join the workers. Returns 1 if
 * any loop failed, else 0. */
static inline int loops_wait(loops *L)
{
    int bad = L->failed;
    for (int i = 1; i < L->n; i++)
        if (L->m[i].started) {
            pthread_join(L->m[i].th, NULL);
            bad |= L->m[i].rc != 0;
        }
    return bad;
}

/* "--loops N" / "-l N": 1..LOOPS_MAX, else -1. */
static inline int loops_arg(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    return *end == '\0' && n >= 1 && n <= LOOPS_MAX ? (int)n : -1;
}

#endif
