/*
 * selectors/none.c - the backend for platforms without file descriptors
 * (a microcontroller, an RTOS task): the loop's timers and ready queue,
 * and an idle wait through the port (coro_platform_idle), nothing else.
 *
 * What it is for: SELECTOR=none, the build of the core and structure
 * layers that needs no POSIX. Watching an fd is refused with -ENOSYS (the
 * awaiting code gets a future failed with it); the poll is the port's idle
 * wait for at most the loop's timeout.
 *
 * It must never: allocate, or wait longer than the timeout it is given.
 */
#include "../coro_int.h"
#include "../coro_platform.h"

const char *coro_selector_name(void)
{
    return "none";
}

int coro__sel_init(coro_loop *loop)
{
    loop->selector = NULL;
    loop->nwatched = 0;
    coro_platform_idle(loop, 0); /* the port sets up its wait here, not in an ISR */
    return 0;
}

void coro__sel_fini(coro_loop *loop) { (void)loop; }

int coro__sel_set(coro_loop *loop, coro_fd *w, unsigned old_events, unsigned new_events)
{
    (void)loop;
    (void)w;
    (void)old_events;
    return new_events ? -ENOSYS : 0;
}

int coro__sel_poll(coro_loop *loop, int64_t timeout_ns)
{
    coro_platform_idle(loop, timeout_ns);
    return 0;
}

void coro__sel_forget(coro_loop *loop, coro_fd *w)
{
    (void)loop;
    (void)w;
}
