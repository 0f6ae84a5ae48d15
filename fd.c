/*
 * fd.c - awaitable fd readiness (asyncio's add_reader/add_writer, as
 * futures).
 *
 * What it is for: a task awaits coro_fd_wait_readable(&w) and resumes once
 * w.fd is readable; the selector (selectors/<backend>.c) reports readiness
 * through coro__fd_ready. Each direction has one embedded future (rfut,
 * wfut), so a wait allocates nothing.
 *
 * The two masks of a watcher:
 *   armed  - the directions registered with the selector (exactly what was
 *            last passed to coro__sel_set as new_events);
 *   wanted - the directions whose future a wait handed out and no event has
 *            completed yet (that future may since have been cancelled by
 *            its waiting task: then nobody waits, as if it were clear).
 *
 * Invariants:
 *   - interest outlives an event: a direction stays armed after it fired, so
 *     a read loop (wait, read until EAGAIN, wait ...) costs no selector call;
 *   - a direction that fires while nobody waits is disarmed at once (lazily),
 *     so level-triggered readiness never spins the loop;
 *   - a pending future is never re-initialised; a done one is, by the next
 *     wait of its direction;
 *   - a detached watcher (loop == NULL) is never registered and never sees
 *     an event: coro__sel_forget drops any already polled.
 *
 * It must never: call a future's callbacks itself (future.c schedules
 * them), touch a future's fields (public future API only), or re-arm the
 * selector from coro__fd_ready.
 *
 * Caveats for callers:
 *   - as with asyncio's one reader per fd: the next wait of a direction
 *     re-initialises its future, so one task per direction at a time; a
 *     second task must not start a wait between the first one's completion
 *     and its resumption (the task's wakeup reads the future when it runs);
 *   - detach before closing the fd, re-initialising the watcher or freeing
 *     it, and keep the storage alive until the waiters it cancelled resumed.
 */
#include "coro_int.h"

static coro_future *dir_future(coro_fd *w, unsigned dir)
{
    return dir == CORO_READABLE ? &w->rfut : &w->wfut;
}

int coro_fd_init(coro_fd *w, coro_loop *loop, int fd)
{
    int rc;
    loop = coro__loop_or_running(loop);
    if (!w || !loop || fd < 0)
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    w->loop = NULL;
    w->fd = fd;
    w->armed = w->wanted = 0;
    if ((rc = coro_future_init(&w->rfut, loop)) < 0 || (rc = coro_future_init(&w->wfut, loop)) < 0)
        return rc;
    w->loop = loop;
    return 0;
}

/* Register `dir` with the selector unless it is already. */
static int arm(coro_fd *w, unsigned dir)
{
    int rc;
    if (w->armed & dir)
        return 0;
    rc = coro__sel_set(w->loop, w, w->armed, w->armed | dir);
    if (rc == 0)
        w->armed |= dir;
    return rc;
}

static coro_future *wait_for(coro_fd *w, unsigned dir)
{
    coro_future *f;
    if (!w || !w->loop || w->loop->state == LOOP_CLOSED)
        return NULL;
    f = dir_future(w, dir);
    if (coro_future_done(f) && coro_future_init(f, w->loop) < 0)
        return NULL;
    coro__future_set_kind(f, dir == CORO_READABLE ? FUT_KIND_FD_READ : FUT_KIND_FD_WRITE);
    int rc = arm(w, dir);
    if (rc < 0) {
        /* the awaiting code gets the selector's reason (EPERM for a
         * regular file, EEXIST for a second watcher on the fd, ...) */
        if (!coro_future_done(f))
            coro_future_set_error(f, rc);
        return f;
    }
    w->wanted |= dir;
    return f;
}

coro_future *coro_fd_wait_readable(coro_fd *w)
{
    return wait_for(w, CORO_READABLE);
}

coro_future *coro_fd_wait_writable(coro_fd *w)
{
    return wait_for(w, CORO_WRITABLE);
}

/* Deliver `events` to direction `dir`: the directions that fired with
 * nobody waiting (to disarm), i.e. `dir` or 0. */
static unsigned fire(coro_fd *w, unsigned dir, unsigned events)
{
    coro_future *f = dir_future(w, dir);
    int waiting;
    if (!(events & dir))
        return 0;
    waiting = (w->wanted & dir) && !coro_future_done(f);
    w->wanted &= ~dir;
    if (!waiting)
        return dir;
    coro_future_set_result(f, coro_int((int64_t)events));
    return 0;
}

void coro__fd_ready(coro_fd *w, unsigned events)
{
    unsigned idle, keep;
    if (!w || !w->loop)
        return;
    events &= CORO_READABLE | CORO_WRITABLE;
    idle = fire(w, CORO_READABLE, events) | fire(w, CORO_WRITABLE, events);
    if (!(idle & w->armed))
        return;
    keep = w->armed & ~idle;
    /* On failure armed stays as it is, so the next event retries. */
    if (coro__sel_set(w->loop, w, w->armed, keep) == 0)
        w->armed = keep;
}

int coro_fd_detach(coro_fd *w)
{
    coro_loop *loop;
    if (!w)
        return CORO_EINVAL;
    loop = w->loop;
    if (!loop)
        return 0; /* detached already */
    /* A closed loop dropped its selector and every task: nothing to undo. */
    if (loop->state != LOOP_CLOSED) {
        if (w->armed)
            coro__sel_set(loop, w, w->armed, 0);
        coro__sel_forget(loop, w);
        coro_future_cancel(&w->rfut);
        coro_future_cancel(&w->wfut);
    }
    w->loop = NULL;
    w->fd = -1;
    w->armed = w->wanted = 0;
    return 0;
}
