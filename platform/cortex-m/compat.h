/*
 * compat.h - force-included (-include) into the core's sources for the
 * bare-metal build, to make up for what newlib does not declare, WITHOUT
 * touching the core. Each entry is a stop-gap for a change proposed to the
 * core (issue 9); delete it once the core has the platform layer.
 *
 *   loop.c reads the clock with clock_gettime(CLOCK_MONOTONIC): newlib for
 *   arm-none-eabi has no _POSIX_TIMERS, so neither the function nor
 *   CLOCK_MONOTONIC exists. Declared here, defined in libc_stubs.c on
 *   SysTick (cm_clock_ns). Proposed: the platform layer's clock hook
 *   (coro__platform_now_ns) replaces the call.
 */
#ifndef CM_COMPAT_H
#define CM_COMPAT_H

#include <sys/types.h>
#include <time.h>

#ifndef CLOCK_MONOTONIC
#define CLOCK_MONOTONIC ((clockid_t)4)
#endif
#if !defined(_POSIX_TIMERS)
int clock_gettime(clockid_t clock_id, struct timespec *tp);
#endif

#endif
