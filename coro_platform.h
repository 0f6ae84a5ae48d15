/*
 * coro_platform.h - the port: everything coro asks of the platform it runs on.
 *
 * The core and structure layers (coroutines, futures, tasks, the loop and
 * its timers, locks, queues, groups) need C11 and the functions below,
 * nothing else: no POSIX header, no stdio, no heap once the loop has its
 * storage. On a POSIX system the library brings them (platform/posix.c:
 * CLOCK_MONOTONIC, stderr), and the epoll/kqueue/poll selector does the
 * waiting. On a microcontroller or under an RTOS you write them in one
 * small file, link it with the core, and build with SELECTOR=none, whose
 * loop waits through coro_platform_idle. The models are protothreads' user
 * clock and Embassy's time driver.
 *
 *   what                      hosted (platform/posix.c)    bare metal (your port)
 *   ------------------------  ---------------------------  ---------------------------
 *   coro_platform_clock_ns    clock_gettime(MONOTONIC)     a SysTick or timer count
 *   coro_platform_write       fputs(stderr)                a UART, semihosting, or nothing
 *   coro_platform_idle        (the selector waits)         WFI until the next tick
 *   coro_platform_wake        (the selector's wake-up)     a flag + SEV, a semaphore give
 *   CORO_RUNNING_LOOP_STORAGE _Thread_local                static (one loop at a time)
 */
#ifndef CORO_PLATFORM_H
#define CORO_PLATFORM_H

#include <stdint.h>

struct coro_loop;

/* The monotonic clock, in nanoseconds from any fixed origin; it never goes
 * back. Called once or twice per loop iteration when a timer is armed, and
 * by sleep and call_later; it should be cheap. */
int64_t coro_platform_clock_ns(void);

/* Write one line of a report (the default exception handler's output:
 * "coro: Task exception was never retrieved [Task-3] ..."); `line` ends
 * without a newline. A port may drop it. */
void coro_platform_write(const char *line);

/* SELECTOR=none only: block until `timeout_ns` nanoseconds have passed
 * (-1: no limit; 0: do not block), or less: returning early (at any
 * interrupt) is always allowed, the loop checks its timers and its ready
 * queue again and calls it anew. */
void coro_platform_idle(struct coro_loop *loop, int64_t timeout_ns);

/* SELECTOR=none only: make the current coro_platform_idle of `loop`, or its
 * next one, return at once. Called by coro_call_soon_isr (an interrupt handler's or
 * another thread's post), so it must be safe there: set a flag the idle
 * wait checks with interrupts masked, then SEV; or give a semaphore. */
void coro_platform_wake(struct coro_loop *loop);

/* Where coro_get_running_loop() keeps its pointer: per thread where the
 * platform has threads, a plain static elsewhere (then one loop runs at a
 * time, as on a microcontroller). Define it to override. */
#ifndef CORO_RUNNING_LOOP_STORAGE
#if defined(__STDC_NO_THREADS__) || !(defined(__unix__) || defined(__APPLE__))
#define CORO_RUNNING_LOOP_STORAGE static
#else
#define CORO_RUNNING_LOOP_STORAGE static _Thread_local
#endif
#endif

#endif /* CORO_PLATFORM_H */
