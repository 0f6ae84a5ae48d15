/*
 * coro_thread.h - part of coro.h: threads and signals: call_soon_threadsafe, the thread pool (to_thread, run_in_executor), signal handlers.
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes.
 */
#ifndef CORO_THREAD_H
#define CORO_THREAD_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

#endif
