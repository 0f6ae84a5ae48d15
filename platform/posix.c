/*
 * platform/posix.c - the port for POSIX systems (Linux, macOS, the BSDs):
 * the hosted default of coro_platform.h.
 *
 * The clock is CLOCK_MONOTONIC (read through the vDSO on Linux: no system
 * call); reports go to stderr. The idle wait and the wake-up are for the
 * `none` selector only (epoll, kqueue and poll wait and wake themselves):
 * a POSIX semaphore, whose sem_post is async-signal-safe, so a SELECTOR=none
 * build runs, and is tested, on a POSIX machine with posts from threads and
 * signal handlers alike. One semaphore serves the process: a wake-up meant
 * for another loop only ends an idle wait early, which is allowed.
 */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "../coro_platform.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>

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

static sem_t wake_sem;
static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static volatile int wake_ready; /* set once, on a loop's thread (the none selector's init) */

static void wake_init(void)
{
    sem_init(&wake_sem, 0, 0);
    __atomic_store_n(&wake_ready, 1, __ATOMIC_RELEASE);
}

void coro_platform_idle(struct coro_loop *loop, int64_t timeout_ns)
{
    (void)loop;
    pthread_once(&wake_once, wake_init);
    if (timeout_ns == 0) {
        while (sem_trywait(&wake_sem) == 0) /* take the wake-ups that came */
            ;
        return;
    }
    if (timeout_ns < 0) {
        while (sem_wait(&wake_sem) != 0 && errno == EINTR)
            return; /* a signal: early, which is allowed */
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + timeout_ns % 1000000000LL;
        ts.tv_sec += (time_t)(timeout_ns / 1000000000LL + ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        (void)sem_timedwait(&wake_sem, &ts); /* ETIMEDOUT, EINTR: both fine */
    }
    while (sem_trywait(&wake_sem) == 0) /* one wake-up ends this wait: drop the rest */
        ;
}

void coro_platform_wake(struct coro_loop *loop)
{
    (void)loop;
    if (__atomic_load_n(&wake_ready, __ATOMIC_ACQUIRE)) /* no idle wait yet: nothing to wake */
        sem_post(&wake_sem);
}
