/*
 * selectors/poll.c - the portable backend: poll(2) over a dense array.
 *
 * What it is for: the same job as epoll.c where nothing better exists, and a
 * second implementation the whole test suite runs against (SELECTOR=poll).
 *
 * Data: `pfds` is the array handed to poll(2); `ws[i]` is the watcher of
 * `pfds[i]`; `map[fd]` is that index, or -1. A removal swaps the last entry
 * into the hole, so the arrays stay dense and every operation but the poll
 * itself is O(1).
 *
 * Invariants:
 *   - level-triggered; POLLERR/POLLHUP/POLLNVAL wake both directions;
 *   - loop->nwatched == n, the fds registered;
 *   - map[pfds[i].fd] == i for every i < n, and ws[i]->fd == pfds[i].fd;
 *   - dispatch walks the array from the end and zeroes each entry's
 *     revents before delivering it. An entry added, moved or re-targeted
 *     during dispatch therefore either carries revents 0 (done, or new) or
 *     still sits below the cursor with its own events; a removed entry takes
 *     its undelivered events with it. That is what makes coro__sel_set and
 *     coro__sel_forget safe from inside a batch.
 *
 * It must never: allocate except through the loop's allocator, deliver an
 * event to a watcher after it was removed or forgotten, or deliver one
 * entry's events twice in a batch.
 */
#include "../coro_int.h"

#include <errno.h>
#include <poll.h>

typedef struct sel_state {
    struct pollfd *pfds;
    coro_fd **ws;
    int *map;            /* fd -> index in pfds, or -1 */
    unsigned n;          /* entries in use */
    unsigned pcap, wcap; /* capacities of pfds and ws */
    unsigned mcap;       /* capacity of map */
} sel_state;

const char *coro_selector_name(void)
{
    return "poll";
}

int coro__sel_init(coro_loop *loop)
{
    sel_state *s = coro__realloc(loop, NULL, 0, sizeof *s);
    if (!s)
        return CORO_ENOMEM;
    s->pfds = NULL;
    s->ws = NULL;
    s->map = NULL;
    s->n = s->pcap = s->wcap = s->mcap = 0;
    loop->selector = s;
    loop->nwatched = 0;
    return 0;
}

void coro__sel_fini(coro_loop *loop)
{
    sel_state *s = loop->selector;
    if (!s)
        return;
    coro__realloc(loop, s->pfds, s->pcap * sizeof *s->pfds, 0);
    coro__realloc(loop, s->ws, s->wcap * sizeof *s->ws, 0);
    coro__realloc(loop, s->map, s->mcap * sizeof *s->map, 0);
    coro__realloc(loop, s, sizeof *s, 0);
    loop->selector = NULL;
    loop->nwatched = 0;
}

/* Grow array `p` of `*cap` elements of `size` bytes to hold `need`:
 * the new array, or NULL (then `p` and `*cap` are unchanged). */
static void *grow(coro_loop *loop, void *p, unsigned *cap, size_t size, unsigned need)
{
    unsigned ncap = *cap ? *cap : 8;
    void *np;
    while (ncap < need) {
        if (ncap > UINT32_MAX / 2)
            return NULL;
        ncap *= 2;
    }
    if (ncap == *cap)
        return p;
    np = coro__realloc(loop, p, *cap * size, ncap * size);
    if (np)
        *cap = ncap;
    return np;
}

static int reserve(coro_loop *loop, sel_state *s, int fd)
{
    unsigned old = s->mcap;
    void *p;
    if ((unsigned)fd >= s->mcap) {
        if (!(p = grow(loop, s->map, &s->mcap, sizeof *s->map, (unsigned)fd + 1)))
            return CORO_ENOMEM;
        s->map = p;
        for (unsigned i = old; i < s->mcap; i++)
            s->map[i] = -1;
    }
    if (!(p = grow(loop, s->pfds, &s->pcap, sizeof *s->pfds, s->n + 1)))
        return CORO_ENOMEM;
    s->pfds = p;
    if (!(p = grow(loop, s->ws, &s->wcap, sizeof *s->ws, s->n + 1)))
        return CORO_ENOMEM;
    s->ws = p;
    return 0;
}

static short to_poll(unsigned events)
{
    short e = 0;
    if (events & CORO_READABLE)
        e |= POLLIN;
    if (events & CORO_WRITABLE)
        e |= POLLOUT;
    return e;
}

static unsigned from_poll(short e)
{
    unsigned events = 0;
    if (e & POLLIN)
        events |= CORO_READABLE;
    if (e & POLLOUT)
        events |= CORO_WRITABLE;
    if (e & (POLLERR | POLLHUP | POLLNVAL))
        events |= CORO_READABLE | CORO_WRITABLE;
    return events;
}

/* w's index, or -1 when w is not registered. */
static int find(const sel_state *s, const coro_fd *w)
{
    int i;
    if (w->fd < 0 || (unsigned)w->fd >= s->mcap)
        return -1;
    i = s->map[w->fd];
    return i >= 0 && s->ws[i] == w ? i : -1;
}

static void remove_at(coro_loop *loop, sel_state *s, unsigned i)
{
    unsigned last = --s->n;
    s->map[s->pfds[i].fd] = -1;
    if (i != last) {
        s->pfds[i] = s->pfds[last];
        s->ws[i] = s->ws[last];
        s->map[s->pfds[i].fd] = (int)i;
    }
    loop->nwatched = s->n;
}

static int add(coro_loop *loop, sel_state *s, coro_fd *w, unsigned events)
{
    int i, rc;
    if (w->fd < 0)
        return -EBADF;
    if ((rc = reserve(loop, s, w->fd)) < 0)
        return rc;
    i = s->map[w->fd];
    if (i < 0) { /* a new entry; otherwise a stale watcher of a reused fd */
        i = (int)s->n++;
        s->map[w->fd] = i;
        loop->nwatched = s->n;
    }
    s->pfds[i].fd = w->fd;
    s->pfds[i].events = to_poll(events);
    s->pfds[i].revents = 0;
    s->ws[i] = w;
    return 0;
}

int coro__sel_set(coro_loop *loop, coro_fd *w, unsigned old_events, unsigned new_events)
{
    sel_state *s = loop->selector;
    int i;
    (void)old_events; /* the map knows what is registered */
    if (!s)
        return new_events ? -EBADF : 0;
    i = find(s, w);
    if (!new_events) {
        if (i >= 0)
            remove_at(loop, s, (unsigned)i);
        return 0;
    }
    if (i < 0) {
        if (w->fd >= 0 && (unsigned)w->fd < s->mcap && s->map[w->fd] >= 0)
            return -EEXIST; /* another watcher has this fd, as epoll says */
        return add(loop, s, w, new_events);
    }
    s->pfds[i].events = to_poll(new_events);
    s->pfds[i].revents &= (short)(s->pfds[i].events | POLLERR | POLLHUP | POLLNVAL);
    return 0;
}

void coro__sel_forget(coro_loop *loop, coro_fd *w)
{
    sel_state *s = loop->selector;
    int i;
    if (s && (i = find(s, w)) >= 0)
        s->pfds[i].revents = 0;
}

int coro__sel_poll(coro_loop *loop, int64_t timeout_ns)
{
    sel_state *s = loop->selector;
    int n;
    if (!s)
        return CORO_ECLOSED;
    n = poll(s->pfds, (nfds_t)s->n, coro__timeout_ms(timeout_ns));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    /* n counts the entries still to deliver: each is delivered once. */
    for (unsigned i = s->n; n > 0 && i-- > 0;) {
        short re;
        if (i >= s->n || !(re = s->pfds[i].revents))
            continue; /* removed, already delivered, or quiet */
        s->pfds[i].revents = 0;
        n--;
        coro__fd_ready(s->ws[i], from_poll(re));
    }
    return 0;
}
