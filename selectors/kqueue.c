/*
 * selectors/kqueue.c - the BSD/macOS backend: one kqueue per loop.
 *
 * What it is for: the same job as epoll.c, which it mirrors line for line.
 * Each direction is its own filter (EVFILT_READ, EVFILT_WRITE) with
 * udata = the coro_fd; every returned kevent becomes one
 * coro__fd_ready(w, events) call (an fd ready both ways may arrive as two
 * events of one batch).
 *
 * Invariants:
 *   - level-triggered: no EV_CLEAR, no EV_ONESHOT. Interest stays registered
 *     until fd.c changes it, so a read loop costs no kevent change;
 *   - EV_EOF/EV_ERROR wake both directions (CORO_READABLE|CORO_WRITABLE);
 *   - loop->nwatched counts the fds registered (old 0 -> new !0: +1,
 *     old !0 -> new 0: -1);
 *   - while a batch is dispatched, events[0..nbatch) is that batch, and
 *     coro__sel_forget nulls the entries for a detached watcher, so an event
 *     already polled for it is dropped instead of delivered.
 *
 * It must never: allocate except through the loop's allocator, block in
 * anything but kevent with an event list, or deliver an event to a watcher
 * after coro__sel_forget(w) returned.
 *
 * Not built on Linux: the Makefile picks one backend per platform.
 */
#include "../coro_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MIN_EVENTS 64u
#define MAX_EVENTS 4096u

typedef struct sel_state {
    int kq;
    unsigned cap; /* size of `events` */
    int nbatch;   /* events in the batch being dispatched */
    struct kevent *events;
} sel_state;

const char *coro_selector_name(void)
{
    return "kqueue";
}

int coro__sel_init(coro_loop *loop)
{
    sel_state *s = coro__realloc(loop, NULL, 0, sizeof *s);
    if (!s)
        return CORO_ENOMEM;
    s->cap = MIN_EVENTS;
    s->nbatch = 0;
    s->events = coro__realloc(loop, NULL, 0, s->cap * sizeof *s->events);
    if (!s->events) {
        coro__realloc(loop, s, sizeof *s, 0);
        return CORO_ENOMEM;
    }
    s->kq = kqueue();
    if (s->kq < 0 || fcntl(s->kq, F_SETFD, FD_CLOEXEC) < 0) {
        int err = -errno;
        if (s->kq >= 0)
            close(s->kq);
        coro__realloc(loop, s->events, s->cap * sizeof *s->events, 0);
        coro__realloc(loop, s, sizeof *s, 0);
        return err;
    }
    loop->selector = s;
    loop->nwatched = 0;
    return 0;
}

void coro__sel_fini(coro_loop *loop)
{
    sel_state *s = loop->selector;
    if (!s)
        return;
    close(s->kq);
    coro__realloc(loop, s->events, s->cap * sizeof *s->events, 0);
    coro__realloc(loop, s, sizeof *s, 0);
    loop->selector = NULL;
    loop->nwatched = 0;
}

static unsigned from_kevent(const struct kevent *ev)
{
    if (ev->flags & (EV_EOF | EV_ERROR))
        return CORO_READABLE | CORO_WRITABLE;
    return ev->filter == EVFILT_WRITE ? CORO_WRITABLE : CORO_READABLE;
}

static int kq_change(sel_state *s, coro_fd *w, short filter, unsigned short flags)
{
    struct kevent ch;
    EV_SET(&ch, w->fd, filter, flags, 0, 0, w);
    return kevent(s->kq, &ch, 1, NULL, 0, NULL) < 0 ? -errno : 0;
}

/* Delete the filters of `dirs`. A delete fails only when the filter is gone
 * already (the fd was closed: EBADF, ENOENT), so errors are ignored. */
static void del_filters(sel_state *s, coro_fd *w, unsigned dirs)
{
    if (dirs & CORO_READABLE)
        (void)kq_change(s, w, EVFILT_READ, EV_DELETE);
    if (dirs & CORO_WRITABLE)
        (void)kq_change(s, w, EVFILT_WRITE, EV_DELETE);
}

/* Add the filters of `dirs`, all or nothing. */
static int add_filters(sel_state *s, coro_fd *w, unsigned dirs)
{
    int rc;
    if ((dirs & CORO_READABLE) && (rc = kq_change(s, w, EVFILT_READ, EV_ADD)) < 0)
        return rc;
    if ((dirs & CORO_WRITABLE) && (rc = kq_change(s, w, EVFILT_WRITE, EV_ADD)) < 0) {
        del_filters(s, w, dirs & CORO_READABLE);
        return rc;
    }
    return 0;
}

int coro__sel_set(coro_loop *loop, coro_fd *w, unsigned old_events, unsigned new_events)
{
    sel_state *s = loop->selector;
    int rc;

    if (!s)
        return new_events ? -EBADF : 0;
    /* adds first: when one fails, nothing was deleted yet */
    if ((rc = add_filters(s, w, new_events & ~old_events)) < 0)
        return rc;
    del_filters(s, w, old_events & ~new_events);
    if (!old_events && new_events)
        loop->nwatched++;
    else if (old_events && !new_events && loop->nwatched > 0)
        loop->nwatched--;
    return 0;
}

void coro__sel_forget(coro_loop *loop, coro_fd *w)
{
    sel_state *s = loop->selector;
    if (!s)
        return;
    for (int i = 0; i < s->nbatch; i++)
        if (s->events[i].udata == (void *)w)
            s->events[i].udata = NULL;
}

/* A full batch means more may be waiting: take more at once next time. */
static void grow_events(coro_loop *loop, sel_state *s)
{
    unsigned ncap = s->cap * 2;
    struct kevent *e;
    if (ncap > MAX_EVENTS)
        return;
    e = coro__realloc(loop, s->events, s->cap * sizeof *e, ncap * sizeof *e);
    if (!e)
        return; /* keep the old array: a smaller batch is still correct */
    s->events = e;
    s->cap = ncap;
}

int coro__sel_poll(coro_loop *loop, int64_t timeout_ns)
{
    sel_state *s = loop->selector;
    struct timespec ts, *tp = NULL;
    int n;

    if (!s)
        return CORO_ECLOSED;
    if (timeout_ns >= 0) {
        if (timeout_ns > 86400LL * 1000000000LL)
            timeout_ns = 86400LL * 1000000000LL; /* at most a day, as the others */
        ts.tv_sec = (time_t)(timeout_ns / 1000000000LL);
        ts.tv_nsec = (long)(timeout_ns % 1000000000LL);
        tp = &ts;
    }
    n = kevent(s->kq, NULL, 0, s->events, (int)s->cap, tp);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    s->nbatch = n;
    for (int i = 0; i < n; i++) {
        coro_fd *w = (coro_fd *)s->events[i].udata; /* NULL: forgotten mid-batch */
        if (w)
            coro__fd_ready(w, from_kevent(&s->events[i]));
    }
    s->nbatch = 0;
    if ((unsigned)n == s->cap)
        grow_events(loop, s);
    return 0;
}
