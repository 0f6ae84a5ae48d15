#!/usr/bin/env python3
"""bench/net/http_asyncio.py - the asyncio peer of the http benchmarks.

    python3 http_asyncio.py PORT     listen on 127.0.0.1:PORT until killed

A bare asyncio.Protocol (default event loop, one thread) with a minimal
HTTP/1.1 parser: it splits the bytes into requests at the blank line, reads
the request line and the Connection and Content-Length headers (a body is
skipped), answers GET / with 200 "hello, world\\n" and Content-Length, any
other path with 404, keeps the connection open unless the request says
otherwise (HTTP/1.0 without keep-alive, or Connection: close), and answers
pipelined requests in order with one write. A malformed request gets a 400
and the connection is closed. Standard library only.
"""
import asyncio
import sys

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n"
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 65536


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        out = []
        close = False
        pos = 0
        while True:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_HEAD:
                    out.append(BAD)
                    close = True
                break
            head = buf[pos:end]
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                out.append(BAD)
                close = True
                break
            method, path, version = parts
            keep = version == b"HTTP/1.1"
            clen = 0
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if not sep:
                    continue
                name = name.strip().lower()
                if name == b"connection":
                    v = value.strip().lower()
                    if v == b"close":
                        keep = False
                    elif v == b"keep-alive":
                        keep = True
                elif name == b"content-length":
                    try:
                        clen = int(value)
                    except ValueError:
                        clen = -1
            if clen < 0:
                out.append(BAD)
                close = True
                break
            if end + 4 + clen > len(buf):
                break  # the body is not all here yet: wait for it
            pos = end + 4 + clen
            out.append(OK if method == b"GET" and path == b"/" else NOT_FOUND)
            if not keep:
                close = True
                break
        self.buf = buf[pos:] if pos < len(buf) else b""
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            self.transport.close()


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(int(sys.argv[1])))
