/*
 * port.c - coro's port (coro_platform.h) for the Cortex-M images: the
 * three functions a bare-metal user writes, on this directory's clock,
 * idle wait and semihosting.
 *
 *   coro_platform_clock_ns  the free-running timer, in ns (clock.c)
 *   coro_platform_write     one report line to the semihosting console
 *   coro_platform_idle      WFI until the timeout passes or cm_wake()
 *   coro_platform_wake      cm_wake(): from an interrupt handler too
 *
 * The running loop is a plain static on this target (coro_platform.h's
 * default when not __unix__), so no TLS is involved.
 */
#include "../../coro_platform.h"

#include "cortex-m.h"
#include "semihost.h"

int64_t coro_platform_clock_ns(void) { return cm_clock_ns(); }

static uint32_t lines_written;

uint32_t cm_report_lines(void) { return lines_written; }

void coro_platform_write(const char *line)
{
    lines_written++;
    sh_write0(line);
    sh_write0("\n");
}

void coro_platform_idle(struct coro_loop *loop, int64_t timeout_ns)
{
    (void)loop;
    if (timeout_ns == 0)
        return;
    (void)cm_idle_until(timeout_ns < 0 ? INT64_MAX : cm_clock_ns() + timeout_ns);
}

void coro_platform_wake(struct coro_loop *loop)
{
    (void)loop;
    cm_wake(); /* the flag cm_idle_until checks with interrupts masked, then SEV */
}
