/*
 * coro_queue.h - part of coro.h: queues: FIFO, LIFO, priority (asyncio/queues.py).
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes.
 */
#ifndef CORO_QUEUE_H
#define CORO_QUEUE_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

#endif
