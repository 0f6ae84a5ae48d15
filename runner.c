/*
 * runner.c - asyncio.run (asyncio/runners.py): coro_run.
 *
 * The mapping to runners.py:
 *   Runner.run            coro_run: a loop in this frame, the main coroutine
 *                         as a task, run_until_complete
 *   Runner._on_sigint     on_sigint: while coro_run runs, the first SIGINT
 *                         cancels the main task, so its cleanup runs and
 *                         coro_run returns CORO_ECANCELLED; the handler is
 *                         then removed, so a second SIGINT meets the old
 *                         disposition (the default one: the process stops
 *                         at once, as an uncaught KeyboardInterrupt does)
 *   _cancel_all_tasks     cancel_all_tasks: cancel what is left, let it finish
 *   Runner.close          coro_loop_close (which restores every signal
 *                         disposition the loop changed)
 *
 * As asyncio installs its SIGINT handler only over Python's default one,
 * coro_run takes SIGINT only while its disposition is SIG_DFL: a program
 * that ignores SIGINT or handles it itself keeps it. The signal arrives
 * through the loop like any handler of coro_add_signal_handler (thread.c),
 * never in signal context. Installing it is best effort: without it (no
 * memory for the wake-up fd, another loop owns SIGINT, a platform without
 * signals) coro_run works the same, only Ctrl-C stays the default.
 */
/* The POSIX interfaces this file uses (clock_gettime, sigaction, ...),
 * whatever the compiler's default: a plain `cc -std=c11 -c` builds it. */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "coro_int.h"

#if CORO_HOSTED /* signals come with the hosted layer (thread.c) */
#define HAVE_SIGNALS 1
#include <signal.h>
#else
#define HAVE_SIGNALS 0
#endif

static coro_task *first_listed_pending(coro_loop *loop)
{
    for (uint32_t i = 0; i < loop->ntasks; i++)
        if (loop->tasks[i]->fut.state == FUT_PENDING)
            return loop->tasks[i];
    return NULL;
}

/* A task not done, or NULL: the listed ones first, then (a task joins the
 * list lazily) after listing all. */
static coro_task *first_pending(coro_loop *loop)
{
    coro_task *t = first_listed_pending(loop);
    if (!t) {
        coro__tasks_list_all(loop);
        t = first_listed_pending(loop);
    }
    return t;
}

/* asyncio.run's _cancel_all_tasks: cancel what is left, let it finish. */
static int cancel_all_tasks(coro_loop *loop)
{
    coro__tasks_list_all(loop);
    for (uint32_t i = 0; i < loop->ntasks; i++)
        coro_task_cancel(loop->tasks[i]);
    coro_task *t;
    while ((t = first_pending(loop)) != NULL) {
        int rc = coro_loop_run_until_complete(loop, &t->fut);
        if (rc == CORO_ERUNNING || rc == CORO_ECLOSED || rc == CORO_ESTATE)
            return rc;
    }
    return 0;
}

struct runner {
    coro_loop loop;
    coro_task main;
};

#if HAVE_SIGNALS
/* Runner._on_sigint, on the loop: cancel the main task once, and hand the
 * next SIGINT back to the old disposition. */
static int on_sigint(void *arg)
{
    struct runner *r = arg;
    coro_remove_signal_handler(&r->loop, SIGINT);
    coro_task_cancel(&r->main);
    return 0;
}

static void take_sigint(struct runner *r)
{
    struct sigaction old;
    if (sigaction(SIGINT, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
        old.sa_handler != SIG_DFL)
        return; /* the program's own: leave it */
    (void)coro_add_signal_handler(&r->loop, SIGINT, on_sigint, r); /* best effort */
}
#else
static void take_sigint(struct runner *r) { (void)r; }
#endif

int coro_run(coro_frame *main, coro_value *result, const coro_loop_options *opt)
{
    struct runner r;
    if (!main)
        return CORO_EINVAL;
    int rc = coro_loop_init(&r.loop, opt);
    if (rc != 0)
        return rc;
    rc = coro_task_init(&r.main, &r.loop, main);
    if (rc == 0) {
        take_sigint(&r);
        rc = coro_loop_run_until_complete(&r.loop, &r.main.fut);
        int rc2 = cancel_all_tasks(&r.loop);
        if (result)
            coro_task_result(&r.main, result);
        if (rc == 0)
            rc = rc2;
    }
    coro_loop_close(&r.loop);
    return rc;
}
