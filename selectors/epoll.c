/*
 * selectors/epoll.c - the Linux backend: one epoll instance per loop.
 *
 * What it is for: tell fd.c which watched fds are readable or writable.
 * The loop calls coro__sel_poll once per iteration; every event becomes one
 * coro__fd_ready(w, events) call, where w is the coro_fd stored in
 * epoll_event.data.ptr when it was registered.
 *
 * Invariants:
 *   - level-triggered: no EPOLLET, no EPOLLONESHOT. Interest stays
 *     registered until fd.c changes it, so a read loop costs no epoll_ctl;
 *   - EPOLLERR/EPOLLHUP wake both directions (CORO_READABLE|CORO_WRITABLE);
 *   - loop->nwatched counts the fds registered (ADD +1, DEL -1);
 *   - while a batch is dispatched, events[0..nbatch) is that batch, and
 *     coro__sel_forget nulls the entries for a detached watcher, so an event
 *     already polled for it is dropped instead of delivered (libuv's
 *     uv__platform_invalidate_fd).
 *
 * It must never: allocate except through the loop's allocator, block in
 * anything but epoll_wait, or deliver an event to a watcher after
 * coro__sel_forget(w) returned.
 */
#include "../coro_int.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MIN_EVENTS 64u
#define MAX_EVENTS 4096u

typedef struct sel_state {
    int epfd;
    unsigned cap; /* size of `events` */
    int nbatch;   /* events in the batch being dispatched */
    struct epoll_event *events;
} sel_state;

const char *coro_selector_name(void)
{
    return "epoll";
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
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        int err = -errno;
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
    close(s->epfd);
    coro__realloc(loop, s->events, s->cap * sizeof *s->events, 0);
    coro__realloc(loop, s, sizeof *s, 0);
    loop->selector = NULL;
    loop->nwatched = 0;
}

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & CORO_READABLE)
        e |= EPOLLIN;
    if (events & CORO_WRITABLE)
        e |= EPOLLOUT;
    return e;
}

static unsigned from_epoll(uint32_t e)
{
    unsigned events = 0;
    if (e & EPOLLIN)
        events |= CORO_READABLE;
    if (e & EPOLLOUT)
        events |= CORO_WRITABLE;
    if (e & (EPOLLERR | EPOLLHUP))
        events |= CORO_READABLE | CORO_WRITABLE;
    return events;
}

static int sel_del(coro_loop *loop, sel_state *s, coro_fd *w)
{
    struct epoll_event ev = { 0 }; /* non-NULL for kernels before 2.6.9 */
    /* The fd may be closed already (EBADF), or gone from the set because
     * its last descriptor was closed (ENOENT): it is unwatched either way. */
    if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, w->fd, &ev) < 0 && errno != ENOENT && errno != EBADF)
        return -errno;
    if (loop->nwatched > 0)
        loop->nwatched--;
    return 0;
}

int coro__sel_set(coro_loop *loop, coro_fd *w, unsigned old_events, unsigned new_events)
{
    sel_state *s = loop->selector;
    struct epoll_event ev = { 0 };
    int op = old_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    if (!s)
        return new_events ? -EBADF : 0;
    if (!new_events)
        return old_events ? sel_del(loop, s, w) : 0;
    ev.events = to_epoll(new_events);
    ev.data.ptr = w;
    if (epoll_ctl(s->epfd, op, w->fd, &ev) == 0) {
        loop->nwatched += op == EPOLL_CTL_ADD;
        return 0;
    }
    /* ENOENT on MOD: the kernel dropped the fd when its last descriptor was
     * closed (and the number may have been reused): register it afresh,
     * still counted once. */
    if (op == EPOLL_CTL_MOD && errno == ENOENT &&
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0)
        return 0;
    return -errno;
}

void coro__sel_forget(coro_loop *loop, coro_fd *w)
{
    sel_state *s = loop->selector;
    if (!s)
        return;
    for (int i = 0; i < s->nbatch; i++)
        if (s->events[i].data.ptr == w)
            s->events[i].data.ptr = NULL;
}

/* A full batch means more may be waiting: take more at once next time. */
static void grow_events(coro_loop *loop, sel_state *s)
{
    unsigned ncap = s->cap * 2;
    struct epoll_event *e;
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
    int n;

    if (!s)
        return CORO_ECLOSED;
    n = epoll_wait(s->epfd, s->events, (int)s->cap, coro__timeout_ms(timeout_ns));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    s->nbatch = n;
    for (int i = 0; i < n; i++) {
        coro_fd *w = s->events[i].data.ptr; /* NULL: forgotten mid-batch */
        if (w)
            coro__fd_ready(w, from_epoll(s->events[i].events));
    }
    s->nbatch = 0;
    if ((unsigned)n == s->cap)
        grow_events(loop, s);
    return 0;
}
