/*
 * coro_group.h - part of coro.h: running things together: gather, wait, wait_for, timeouts, shield, as_completed, task groups (asyncio/tasks.py, timeouts.py, taskgroups.py).
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes.
 */
#ifndef CORO_GROUP_H
#define CORO_GROUP_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

#endif
