/*
 * coro_sync.h - part of coro.h: locks, events, conditions, semaphores, barriers (asyncio/locks.py).
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes.
 */
#ifndef CORO_SYNC_H
#define CORO_SYNC_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

#endif
