/*
 * platform/posix.c - the port for POSIX systems (Linux, macOS, the BSDs):
 * the hosted default of coro_platform.h.
 *
 * The clock is CLOCK_MONOTONIC (read through the vDSO on Linux: no system
 * call); reports go to stderr. The idle wait is for the `none` selector
 * only (epoll, kqueue and poll wait themselves): a nanosleep, so a
 * SELECTOR=none build also runs, and is tested, on a POSIX machine.
 */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "../coro_platform.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

int64_t coro_platform_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void coro_platform_write(const char *line)
{
    fputs(line, stderr);
    fputc('\n', stderr);
}

void coro_platform_idle(struct coro_loop *loop, int64_t timeout_ns)
{
    (void)loop;
    if (timeout_ns == 0)
        return;
    if (timeout_ns < 0) {
        pause(); /* nothing can wake this loop but a signal */
        return;
    }
    struct timespec ts = { (time_t)(timeout_ns / 1000000000LL), (long)(timeout_ns % 1000000000LL) };
    nanosleep(&ts, NULL); /* EINTR: early, which is allowed */
}
