/*
 * coro_net.h - part of coro.h: networking: sockets on the loop, streams (reader/writer), servers (asyncio's sock_* calls, streams.py, base_events create_server).
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes.
 */
#ifndef CORO_NET_H
#define CORO_NET_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

#endif
