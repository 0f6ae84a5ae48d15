/*
 * sel_none.c - the selector for a platform without file descriptors: the
 * interface of coro_int.h ("selectors/<backend>.c: one small interface")
 * with no fds at all. Its only job is the loop's wait: coro__sel_poll
 * sleeps the core (WFI, cortex-m.h) until the timeout the loop computed
 * (the nearest timer, rounded up to the millisecond), or until cm_wake()
 * is called from an interrupt handler.
 *
 * Built in place of selectors/<backend>.c; it holds no state (the loop's
 * selector pointer is set to a constant so code that checks it sees an
 * open selector) and allocates nothing. Registering an fd fails with
 * -ENOSYS, so coro_fd_wait_* hands back a failed future, as any selector
 * does for an fd it refuses.
 */
#include "../../coro_int.h"

#include "cortex-m.h"

static const char none_state = 0;

const char *coro_selector_name(void) { return "none"; }

int coro__sel_init(coro_loop *loop)
{
    loop->selector = (void *)(uintptr_t)&none_state;
    loop->nwatched = 0;
    return 0;
}

void coro__sel_fini(coro_loop *loop)
{
    loop->selector = NULL;
    loop->nwatched = 0;
}

int coro__sel_set(coro_loop *loop, coro_fd *w, unsigned old_events, unsigned new_events)
{
    (void)loop;
    (void)w;
    (void)old_events;
    return new_events ? -ENOSYS : 0;
}

void coro__sel_forget(coro_loop *loop, coro_fd *w)
{
    (void)loop;
    (void)w;
}

int coro__sel_poll(coro_loop *loop, int timeout_ms)
{
    if (!loop->selector)
        return CORO_ECLOSED;
    if (timeout_ms == 0)
        return 0;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : cm_clock_ns() + (int64_t)timeout_ms * 1000000;
    (void)cm_idle_until(deadline);
    return 0;
}
