#!/usr/bin/env python3
"""bench/net/echo_asyncio.py - the asyncio peers of the echo benchmarks.

    python3 echo_asyncio.py streams PORT     asyncio.start_server, reader/writer
    python3 echo_asyncio.py protocol PORT    an asyncio.Protocol

Listens on 127.0.0.1:PORT until killed; the default event loop, one thread.
streams: each connection a task looping on reader.read(65536) ->
writer.write() -> await writer.drain(). protocol: data_received ->
transport.write(), reading paused while the transport's buffer is over its
high-water mark (back-pressure). asyncio sets TCP_NODELAY itself; backlog 1024.
Standard library only.
"""
import asyncio
import sys


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def main(mode, port):
    loop = asyncio.get_running_loop()
    if mode == "streams":
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    else:
        server = await loop.create_server(Echo, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("streams", "protocol"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
