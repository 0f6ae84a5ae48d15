/*
 * coro_net.h - part of coro.h: networking: sockets on the loop, streams
 * (reader/writer), servers (asyncio's loop.sock_* calls, streams.py,
 * base_events.create_server / Server).
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes. A NULL loop in coro_socket_open,
 * coro_socket_wrap, coro_socketpair, coro_stream_init and coro_server_init
 * is the running loop; "NULL" in their return codes means a NULL object, or
 * a NULL loop with no loop running.
 *
 *   asyncio                               coro (an awaitable: CORO_AWAIT what the call returns)
 *   ------------------------------------  ------------------------------------------------------
 *   await loop.getaddrinfo(host, port)    coro_getaddrinfo(&op, host, port, fam, flags, addrs, n)
 *   socket.socket(...), non-blocking      coro_socket_open(&s, loop, AF_INET, SOCK_STREAM, 0)
 *   socket.socketpair()                   coro_socketpair(pair, loop)
 *   sock.close()                          coro_socket_close(&s)
 *   sock.recv / send / accept, at once    coro_socket_recv / coro_socket_send / coro_socket_accept
 *   await loop.sock_connect(sock, addr)   coro_sock_connect(&op, &s, &addr)
 *   await loop.sock_accept(sock)          coro_sock_accept(&op, &ls, &conn, &peer)
 *   await loop.sock_recv(sock, n)         coro_sock_recv(&op, &s, buf, n)
 *   await loop.sock_recv_into(sock, buf)  the same call: C always reads into your buffer
 *   await loop.sock_sendall(sock, data)   coro_sock_sendall(&op, &s, data, n)
 *   sock.send(data) once writable         coro_sock_send(&op, &s, data, n)
 *
 *   await open_connection(host, port)     coro_open_connection(&op, &stream, host, port, NULL)
 *   await open_unix_connection(path)      coro_open_unix_connection(&op, &stream, path, NULL)
 *   await reader.read(n) / read()         coro_stream_read(&op, &stream, n) / n = -1
 *   await reader.readexactly(n)           coro_stream_readexactly(&op, &stream, n)
 *   await reader.readline()               coro_stream_readline(&op, &stream)
 *   await reader.readuntil(sep)           coro_stream_readuntil(&op, &stream, sep, len)
 *     the bytes a read returns            coro_stream_data(&stream, &len), until the next read
 *   reader.at_eof()                       coro_stream_at_eof(&stream)
 *   writer.write(data)                    coro_stream_write(&stream, data, n)
 *   await writer.drain()                  coro_stream_drain(&op, &stream)
 *   writer.write_eof()                    coro_stream_write_eof(&stream)
 *   writer.close()                        coro_stream_close(&stream)
 *   await writer.wait_closed()            coro_stream_wait_closed(&op, &stream)
 *   writer.transport.abort()              coro_stream_abort(&stream)
 *   writer.get_extra_info('peername')     coro_stream_peername(&stream, &addr)
 *   set_write_buffer_limits(high, low)    coro_stream_set_write_limits(&stream, high, low)
 *   wait_for(reader.read(n), t) across    coro_stream_set_read_deadline(&stream, t) (one timer
 *     reads / send_timeout / idle           per stream) / _set_write_deadline / _set_idle_timeout
 *
 *   await start_server(cb, host, port)    coro_start_server(&op, &srv, host, port, cb, arg, NULL)
 *   await start_unix_server(cb, path)     coro_start_unix_server(&op, &srv, path, cb, arg, NULL)
 *   await server.serve_forever()          coro_server_serve_forever(&op, &srv)
 *   server.close()                        coro_server_close(&srv)
 *   await server.wait_closed()            coro_server_wait_closed(&op, &srv)
 *   server.is_serving() / server.sockets  coro_server_is_serving(&srv) / coro_server_sockname(...)
 *   server.abort_clients() (3.13)         coro_server_cancel_clients(&srv)
 *
 * Rules shared by everything here:
 *   - Every descriptor coro opens is non-blocking and close-on-exec
 *     (SOCK_NONBLOCK | SOCK_CLOEXEC, or fcntl where those flags do not
 *     exist). Writing to a socket whose peer has gone never raises SIGPIPE
 *     (MSG_NOSIGNAL on every send, SO_NOSIGPIPE where it exists): the
 *     operation fails with -EPIPE instead.
 *   - Every operation tries its system call first and waits for readiness
 *     (coro_fd) only when the call says EAGAIN: data already there costs no
 *     loop round trip. One exception, libuv's: a stream read right after a
 *     recv that returned less than it asked for (the socket was empty then)
 *     waits for readiness first, which saves the recv that would say EAGAIN
 *     in request/response traffic.
 *   - System errors arrive as -errno (-ECONNREFUSED, -ECONNRESET, -EPIPE,
 *     -ETIMEDOUT, ...); coro's own codes are below. A cancelled operation
 *     fails with CORO_ECANCELLED and leaves its socket or stream usable (a
 *     read that was cancelled consumed nothing). For a timeout, await the
 *     operation inside coro_wait_for or coro_timeout (coro_group.h).
 *   - An operation frame (`*_op`) is filled by its init function, which runs
 *     nothing and returns the frame to await, or NULL for bad arguments
 *     (awaiting NULL fails with CORO_EINVAL). Re-initialise it for each
 *     await; don't touch it while it is pending. Its fields are private.
 *   - Objects (sockets, streams, servers) are caller-owned, must not move
 *     while in use, and must stay valid while an operation on them is
 *     pending. Close them before coro_loop_close: the loop frees the memory
 *     it gave them, but only a close closes their descriptors.
 */
#ifndef CORO_NET_H
#define CORO_NET_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* Error codes of this part (CORO_EINCOMPLETE: EOF before the read was
 * satisfied, the partial data is the stream's view, coro_stream_data;
 * CORO_ELIMIT: a line or chunk longer than the stream's limit; CORO_EADDRINFO:
 * a name did not resolve, the getaddrinfo code is coro_getaddrinfo_error)
 * are defined in coro.h with the others. */

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */
/* ------------------------------------------------------------------------ */

/* A socket address of any family coro speaks (IPv4, IPv6, Unix), with its
 * length. Plain data: copy it freely. */
typedef struct coro_sockaddr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
    } u;
    socklen_t len;
} coro_sockaddr;

/* Room for any coro_sockaddr_format output ("[ipv6%scope]:port" or a path). */
#define CORO_SOCKADDR_STRLEN 128

/* Fill `a` from a numeric IPv4 or IPv6 address ("127.0.0.1", "::1") and a
 * port (0-65535). Never resolves a name. Returns 0, CORO_EINVAL for NULL,
 * a bad port or a string that is not a numeric address. */
int coro_sockaddr_ip(coro_sockaddr *a, const char *ip, int port);
/* Fill `a` with a Unix socket path. Returns 0, CORO_EINVAL for NULL, an
 * empty path or one too long for sun_path. */
int coro_sockaddr_unix(coro_sockaddr *a, const char *path);
/* The port of an IPv4/IPv6 address; -1 for NULL or another family. */
int coro_sockaddr_port(const coro_sockaddr *a);
/* Write "127.0.0.1:8080", "[::1]:8080" or the Unix path into buf (at most
 * len bytes, always terminated when len > 0) and return buf. An unknown
 * family gives "?"; a NULL `a` gives "". */
const char *coro_sockaddr_format(const coro_sockaddr *a, char *buf, size_t len);

/* The frame of one getaddrinfo. All fields private. */
typedef struct coro_getaddrinfo_op {
    coro_frame co;
    const char *host;
    int port, family, flags;
    coro_sockaddr *addrs;
    size_t max;
    int gai_err; /* the EAI_* code of a failure, or 0 */
    int err;
    struct coro__gai *job; /* what the pool thread works on */
    coro_to_thread_op thread;
} coro_getaddrinfo_op;

/* await loop.getaddrinfo(host, port, family=family, type=SOCK_STREAM,
 * flags=flags): resolve `host` into at most `max` stream addresses written
 * to addrs[0..n), and complete with CORO_INT n (at least 1). `family` is
 * AF_UNSPEC (0), AF_INET or AF_INET6; `flags` are getaddrinfo's AI_* flags:
 * with AI_PASSIVE a NULL or empty host means the wildcard addresses
 * (0.0.0.0 and ::), without it the loopback ones. Numeric addresses, NULL
 * and "localhost" (127.0.0.1, then ::1) are resolved at once, without
 * suspending; any other name goes to getaddrinfo(3) on the loop's thread
 * pool (coro_to_thread: the loop thread never blocks on DNS), in the order
 * it returns. Fails with CORO_EADDRINFO when the name does not resolve (or
 * the family excludes a numeric address): coro_getaddrinfo_error(op) gives
 * the EAI_* code (gai_strerror names it); CORO_ECANCELLED (a lookup
 * already running finishes on its thread and is dropped); CORO_ENOMEM, or
 * the pool's errors. Only a task can await it. The host string is copied
 * before the await suspends; `addrs` must stay valid until the await
 * returns. NULL if `op` or `addrs` is NULL, max is 0, the port is outside
 * 0-65535, the family is not one of the three, or the host is longer than
 * NI_MAXHOST. */
coro_frame *coro_getaddrinfo(coro_getaddrinfo_op *op, const char *host, int port, int family,
                             int flags, coro_sockaddr *addrs, size_t max);
/* The EAI_* code of the last failure of `op` (0 if none; 0 for NULL). */
int coro_getaddrinfo_error(const coro_getaddrinfo_op *op);

/* ------------------------------------------------------------------------ */
/* Sockets on the loop                                                      */
/* ------------------------------------------------------------------------ */

/* A non-blocking socket watched by the loop: the descriptor plus its
 * readiness watcher. At most one operation per direction at a time (one
 * reading, one writing: asyncio's one reader and one writer per fd). */
typedef struct coro_socket {
    coro_fd w; /* private: the readiness watcher */
    int fd;    /* read-only: the descriptor, -1 once closed (coro_socket_fd) */
} coro_socket;

/* socket(family, type, protocol) with SOCK_NONBLOCK and SOCK_CLOEXEC
 * added, watched on `loop`. Returns 0, -errno from socket(2) (-EMFILE,
 * -EAFNOSUPPORT, ...), CORO_EINVAL for NULL, CORO_ECLOSED for a closed
 * loop. On failure `s` holds nothing (its fd is -1). */
int coro_socket_open(coro_socket *s, coro_loop *loop, int family, int type, int protocol);
/* Adopt an open socket descriptor (asyncio's sock= arguments): make it
 * non-blocking and close-on-exec, and watch it on `loop`. From here on
 * coro_socket_close closes it. Returns 0, CORO_EINVAL (NULL, fd < 0),
 * CORO_ECLOSED, or -errno from fcntl (the fd is then left open and yours). */
int coro_socket_wrap(coro_socket *s, coro_loop *loop, int fd);
/* socket.socketpair(): two connected AF_UNIX stream sockets. 0, -errno,
 * CORO_EINVAL, CORO_ECLOSED; on failure nothing is open. */
int coro_socketpair(coro_socket pair[2], coro_loop *loop);
/* Close: operations waiting on the socket resume and fail with
 * CORO_ECLOSED, the watcher is detached (no event for the fd is ever
 * delivered after this), then the descriptor is closed. The storage must
 * stay valid until those operations have resumed. Returns 0 (also when
 * already closed, and after the loop was closed), -errno from close(2)
 * (EINTR is not reported: the fd is gone either way), CORO_EINVAL for
 * NULL. */
int coro_socket_close(coro_socket *s);
/* The descriptor, or -1 when closed (or NULL). */
int coro_socket_fd(const coro_socket *s);
/* bind(2) and listen(2); 0 or -errno (CORO_EINVAL for NULL). A backlog
 * <= 0 means SOMAXCONN. */
int coro_socket_bind(coro_socket *s, const coro_sockaddr *addr);
int coro_socket_listen(coro_socket *s, int backlog);
/* getsockname / getpeername into *addr: 0, -errno, CORO_EINVAL. */
int coro_socket_sockname(const coro_socket *s, coro_sockaddr *addr);
int coro_socket_peername(const coro_socket *s, coro_sockaddr *addr);
/* One non-blocking recv / send (sock.recv, sock.send on a non-blocking
 * socket): the byte count (recv: 0 at EOF), -EAGAIN when the socket has
 * nothing / no room now, or -errno (-ECONNRESET, -EPIPE: never SIGPIPE).
 * EINTR is retried. CORO_EINVAL for NULL, CORO_ECLOSED once closed. The
 * awaitable forms below wait on EAGAIN. */
ssize_t coro_socket_recv(coro_socket *s, void *buf, size_t len);
ssize_t coro_socket_send(coro_socket *s, const void *buf, size_t len);
/* One non-blocking accept on a listening socket: the connection goes to
 * `out` (non-blocking, close-on-exec, watched on the listener's loop; close
 * it with coro_socket_close) and its address to *peer (may be NULL).
 * Returns 0, -EAGAIN when no connection is pending, -errno (-EMFILE,
 * -ECONNABORTED, ...), CORO_EINVAL, CORO_ECLOSED. This is what
 * coro_sock_accept awaits and what a server calls. */
int coro_socket_accept(coro_socket *listener, coro_socket *out, coro_sockaddr *peer);

/* The frame of one socket operation (any of the coro_sock_* below). All
 * fields private. */
typedef struct coro_sock_op {
    coro_frame co;
    coro_socket *sock;
    union {
        void *in;
        const void *out;
    } buf;
    size_t len;
    size_t done;       /* bytes moved so far (coro_sock_op_count) */
    coro_socket *conn; /* accept: where the connection goes */
    coro_sockaddr *peer;
    coro_sockaddr addr; /* connect: the address */
    int kind;
    int started;
} coro_sock_op;

/* await loop.sock_recv(sock, len) / sock_recv_into(sock, buf): receive up
 * to `len` bytes into `buf`; completes with CORO_INT the count, 0 at EOF
 * (and for len 0). Errors: -ECONNRESET and the like, CORO_ECLOSED if the
 * socket is (or gets) closed, CORO_ECANCELLED. NULL for a NULL op, socket
 * or buffer. */
coro_frame *coro_sock_recv(coro_sock_op *op, coro_socket *s, void *buf, size_t len);
/* Send what the socket takes now, waiting until it takes at least one
 * byte; completes with CORO_INT the count (0 for len 0). Errors as recv,
 * -EPIPE when the peer has gone. */
coro_frame *coro_sock_send(coro_sock_op *op, coro_socket *s, const void *buf, size_t len);
/* await loop.sock_sendall(sock, data): send all `len` bytes, waiting for
 * room as often as needed; completes with CORO_INT len. On failure or
 * cancellation, coro_sock_op_count(op) says how many bytes were sent.
 * `buf` must stay valid until the await returns. */
coro_frame *coro_sock_sendall(coro_sock_op *op, coro_socket *s, const void *buf, size_t len);
/* await loop.sock_accept(sock): wait for a connection on listening socket
 * `s` and accept it into `out` (as coro_socket_accept; `peer` may be NULL);
 * completes with CORO_PTR out. Errors: -EMFILE and the like, CORO_ECLOSED,
 * CORO_ECANCELLED. NULL for a NULL op, socket or out. */
coro_frame *coro_sock_accept(coro_sock_op *op, coro_socket *s, coro_socket *out,
                             coro_sockaddr *peer);
/* await loop.sock_connect(sock, addr): connect `s` to `addr` (copied);
 * completes with CORO_INT 0 once connected. Errors: -ECONNREFUSED,
 * -ETIMEDOUT, -ENETUNREACH, ... (-EAGAIN for a Unix socket whose server's
 * backlog is full), CORO_ECLOSED, CORO_ECANCELLED (the attempt is then
 * abandoned: close the socket). NULL for a NULL op, socket or address. */
coro_frame *coro_sock_connect(coro_sock_op *op, coro_socket *s, const coro_sockaddr *addr);
/* Bytes moved by the operation so far: after a sendall that failed or was
 * cancelled, how much of the buffer went out. 0 for NULL. */
size_t coro_sock_op_count(const coro_sock_op *op);

/* ------------------------------------------------------------------------ */
/* Streams (asyncio StreamReader + StreamWriter, one object)                */
/* ------------------------------------------------------------------------ */

#define CORO_STREAM_LIMIT (64 * 1024) /* default reader limit */
#define CORO_STREAM_HIGH (64 * 1024)  /* default write high-water mark */
#define CORO_STREAM_LOW (16 * 1024)   /* default write low-water mark */

/* Stream settings; a NULL pointer or a zeroed struct means the defaults. */
typedef struct coro_stream_options {
    size_t limit;        /* the reader's limit (asyncio limit=): 0 for 64 KiB */
    size_t write_high;   /* 0: high 64 KiB and low 16 KiB (asyncio's defaults) */
    size_t write_low;    /* used only when write_high is set; must be <= it */
    double idle_timeout; /* coro_stream_set_idle_timeout at the start; 0: none */
} coro_stream_options;

/* A connected byte stream: asyncio's StreamReader and StreamWriter over
 * one socket, in caller-owned storage. Reads pull from the socket into a
 * read buffer when they need data (there is no background reader);
 * writes go out at once when the socket takes them, and what it does not
 * take waits in a write buffer that the loop flushes whenever the socket
 * becomes writable. Both buffers come from the loop's allocator, grow only
 * when needed, and are given back as soon as they are empty (the read
 * buffer when a read has to wait with nothing unread, the write buffer
 * once flushed): an idle stream holds no buffer. The loop keeps a few
 * emptied buffers for the next stream, so steady request/response traffic
 * does not call the allocator. A read buffer is 16 KiB at first; after a
 * recv of 16 KiB or more, a read that asks for more takes a 64 KiB one
 * (bulk traffic: one recv per 64 KiB; eight small recvs end it), which
 * the allocator gives each time the stream has waited.
 *
 * One task may read and another write at the same time; two concurrent
 * reads are refused (CORO_ESTATE), as asyncio refuses them. A reader that
 * always finds data waiting (a peer sending faster than it reads) still
 * yields one loop pass every 16 recvs, so one connection cannot starve the
 * others (asyncio reads a connection once per loop pass). All fields
 * private. */
typedef struct coro_stream {
    coro_socket sock;
    coro_loop *loop;
    char *rbuf, *wbuf;
    size_t rcap, rpos, rend; /* unread bytes: rbuf[rpos, rend) */
    size_t wcap, wpos, wend; /* unsent bytes: wbuf[wpos, wend) */
    size_t limit, high, low;
    const char *view; /* the last read's bytes */
    size_t view_len;
    coro_done_node flush; /* the writer's callback on writability */
    coro_waitq drainers, closers;
    int err;                  /* the sticky transport error, or 0 */
    uint8_t state;            /* open, closing (flushing), closed */
    uint8_t eof;              /* the peer's EOF was read */
    uint8_t reading;          /* a read operation is in progress */
    uint8_t paused;           /* above high, not yet back to low */
    uint8_t shut;             /* write_eof: 1 pending, 2 done */
    uint8_t drained;          /* the last recv emptied the socket */
    uint8_t streak;           /* recvs since the reader last let the loop run */
    uint8_t active;           /* a byte moved since the last idle check */
    uint8_t quiet;            /* idle checks in a row that saw nothing move */
    uint8_t rexpired;         /* the read deadline passed */
    uint8_t bulk;             /* recent recvs were large: read 64 KiB at a time */
    uint8_t rehold;           /* a wait kept the bulk buffer again since hold_at was set */
    int flushing;             /* the flush callback is registered */
    coro_handle timer;        /* the one deadline timer, re-armed lazily */
    int64_t timer_at;         /* when it is armed for (loop ns), 0: not armed */
    int64_t rdl, wdl;         /* read and write deadlines (loop ns), 0: none */
    int64_t idle_ns, idle_at; /* the idle timeout, the next idle check */
    int64_t hold_at;          /* a waiting reader's empty bulk buffer goes then, 0: none held */
} coro_stream;

/* Adopt a connected socket descriptor (asyncio open_connection(sock=...)):
 * `fd` becomes non-blocking and close-on-exec and belongs to the stream
 * (coro_stream_close closes it). `opt` may be NULL. Returns 0, CORO_EINVAL
 * (NULL, fd < 0, write_low > write_high), CORO_ECLOSED, -errno from fcntl
 * (the fd is then still yours). */
int coro_stream_init(coro_stream *s, coro_loop *loop, int fd, const coro_stream_options *opt);

/* The frame of one open_connection. All fields private. */
typedef struct coro_open_connection_op {
    coro_frame co;
    coro_stream *stream;
    coro_stream_options opt;
    coro_getaddrinfo_op gai;
    coro_sock_op conn;
    coro_sockaddr addrs[4];
    const char *host;
    int port;
    size_t n, i;
    int first_err;
} coro_open_connection_op;

/* await open_connection(host, port): resolve `host` (coro_getaddrinfo,
 * AF_UNSPEC), then try each address in turn until one connects; the stream
 * is initialised in `stream` (caller-owned; close it when done) and the
 * await completes with CORO_PTR stream. Runs in a task of the loop the
 * stream will belong to. Fails with the first address's error
 * (-ECONNREFUSED, ...), CORO_EADDRINFO, CORO_ECANCELLED (nothing stays
 * open), CORO_ESTATE outside a task; `stream` is then not initialised.
 * `host` must stay valid until the await returns; `opt` (may be NULL) is
 * copied. NULL for a NULL op, stream or host, a port outside 0-65535, or
 * bad options. */
coro_frame *coro_open_connection(coro_open_connection_op *op, coro_stream *stream, const char *host,
                                 int port, const coro_stream_options *opt);
/* await open_unix_connection(path): the same over a Unix socket. NULL also
 * for a NULL or too long path. */
coro_frame *coro_open_unix_connection(coro_open_connection_op *op, coro_stream *stream,
                                      const char *path, const coro_stream_options *opt);

/* The frame of one stream operation (any read, drain, wait_closed). All
 * fields private. */
typedef struct coro_stream_op {
    coro_frame co;
    coro_stream *s;
    const char *sep;
    size_t seplen;
    size_t n;
    size_t offset;
    coro_waiter w;
    int kind;
    int owns; /* holds the stream's `reading` flag */
} coro_stream_op;

/* ---- reading (StreamReader) ----
 *
 * What a read returns: the await completes with CORO_INT the number of
 * bytes, and the bytes themselves are the stream's data view:
 * coro_stream_data(s, &len). The view points into the read buffer and stays
 * valid until the next read operation starts on this stream, or the stream
 * is closed; copy what must live longer. A read completes without
 * suspending when the buffer (or one non-blocking recv) satisfies it. A
 * read that fails, or is cancelled, consumes nothing, except where said.
 * Once the connection failed (-ECONNRESET, ...), every read fails with that
 * error (asyncio's reader.exception()). A stream closed (locally) reads as
 * at EOF with its unread data dropped, also for a read waiting at that
 * moment. Another read already in progress fails it with CORO_ESTATE. */

/* await reader.read(n): n > 0: up to n bytes, at least one unless at EOF
 * (then 0); n == 0: 0 at once; n < 0: everything until EOF (the buffer grows
 * as needed: no limit applies, as in asyncio). NULL for a NULL op or
 * stream. */
coro_frame *coro_stream_read(coro_stream_op *op, coro_stream *s, ssize_t n);
/* await reader.readexactly(n): exactly n bytes (the buffer grows to n).
 * At EOF before n bytes: fails with CORO_EINCOMPLETE, and the partial data
 * (consumed) is the data view. NULL for a NULL op or stream, or n < 0. */
coro_frame *coro_stream_readexactly(coro_stream_op *op, coro_stream *s, ssize_t n);
/* await reader.readuntil(sep): the bytes up to and including the first
 * occurrence of sep[0..seplen). At EOF without it: CORO_EINCOMPLETE, the
 * whole rest (consumed) is the view. When the data before the separator
 * would exceed the limit (found after more than `limit` bytes, or more than
 * `limit` bytes buffered without it): CORO_ELIMIT, and the data stays in
 * the buffer (asyncio's LimitOverrunError). `sep` must stay valid until the
 * await returns. NULL for a NULL op, stream or sep, or seplen 0. */
coro_frame *coro_stream_readuntil(coro_stream_op *op, coro_stream *s, const void *sep,
                                  size_t seplen);
/* await reader.readline(): readuntil("\n"), except that at EOF it returns
 * the partial line (0 bytes at EOF: the end), and past the limit it fails
 * with CORO_ELIMIT AND consumes: the whole line if its "\n" is in the
 * buffer, else everything buffered (asyncio's ValueError). */
coro_frame *coro_stream_readline(coro_stream_op *op, coro_stream *s);
/* The last read's bytes (the data view): the pointer, and its length in
 * *len (may be NULL). "" with 0 before any read, or for NULL. */
const char *coro_stream_data(const coro_stream *s, size_t *len);
/* reader.at_eof(): 1 when the peer's EOF was read (or the stream was
 * closed) and nothing is left in the buffer; 0 otherwise (and for NULL). */
int coro_stream_at_eof(const coro_stream *s);
/* Bytes read from the socket and not yet consumed (0 for NULL). */
size_t coro_stream_buffered(const coro_stream *s);

/* ---- writing (StreamWriter) ---- */

/* writer.write(data): never blocks and never suspends. The bytes go to the
 * socket at once if it takes them, and otherwise are copied into the write
 * buffer (`data` may be reused as soon as this returns), which the loop
 * flushes as the socket becomes writable. Above the high-water mark the
 * writer is paused: call coro_stream_drain. Returns 0; the connection's
 * error (-EPIPE, -ECONNRESET, ...) once it has failed (what was buffered is
 * then dropped); CORO_ESTATE after write_eof; CORO_ECLOSED after close;
 * CORO_ENOMEM if the buffer could not grow (the stream then fails with
 * it); CORO_EINVAL for NULL (data may be NULL when n is 0). */
int coro_stream_write(coro_stream *s, const void *data, size_t n);
/* await writer.drain(): completes with CORO_INT 0 at once unless the writer
 * is paused (the buffer went above the high-water mark); then waits until
 * the buffer is back at or below the low-water mark (SEMANTICS 43). Fails
 * with the connection's error if it fails (also while waiting), -ECONNRESET
 * once the stream is closed, CORO_ECANCELLED. Several tasks may drain at
 * once. NULL for a NULL op or stream. */
coro_frame *coro_stream_drain(coro_stream_op *op, coro_stream *s);
/* writer.write_eof(): half-close. Once the buffer is flushed (now, if it is
 * empty) the socket is shut down for writing (shutdown SHUT_WR): the peer
 * reads EOF, and this side can still read. Further writes fail with
 * CORO_ESTATE. Returns 0 (also when called twice), the connection's
 * error, -errno from shutdown(2), CORO_ECLOSED, CORO_EINVAL. */
int coro_stream_write_eof(coro_stream *s);
/* writer.close(): stop reading (a read waiting now ends as at EOF), flush
 * what is buffered, then close the socket; returns at once. Once closed,
 * the buffers are freed and the data view is gone. The stream storage must
 * stay valid until coro_stream_wait_closed has returned (or
 * coro_stream_is_closed says 1). Returns 0 (also when already closing),
 * CORO_EINVAL for NULL. */
int coro_stream_close(coro_stream *s);
/* transport.abort(): close at once, dropping what is buffered (the storage
 * may go as soon as waiting operations have resumed). 0, CORO_EINVAL. */
int coro_stream_abort(coro_stream *s);
/* await writer.wait_closed(): wait until the socket is closed after
 * coro_stream_close (at once if it is); completes with CORO_INT 0, or fails
 * with the error the connection failed with, or CORO_ECANCELLED (the close
 * goes on). NULL for a NULL op or stream. */
coro_frame *coro_stream_wait_closed(coro_stream_op *op, coro_stream *s);
/* writer.is_closing(): 1 after close or abort (0 otherwise and for NULL). */
int coro_stream_is_closing(const coro_stream *s);
/* 1 once the socket is closed (the storage may then go), 0 otherwise. */
int coro_stream_is_closed(const coro_stream *s);
/* transport.get_write_buffer_size(): bytes waiting to be sent. */
size_t coro_stream_write_buffer_size(const coro_stream *s);
/* transport.set_write_buffer_limits(high, low): 0, CORO_EINVAL for NULL
 * or low > high. A write above `high` pauses the writer; it resumes (drain
 * returns) at or below `low`. */
int coro_stream_set_write_limits(coro_stream *s, size_t high, size_t low);
/* ---- deadlines (nginx's client_header_timeout, keepalive_timeout,
 * send_timeout; what asyncio users build with wait_for around reads) ----
 *
 * Each stream has one timer, armed for its nearest deadline and re-armed
 * only when a nearer one is set, so reads and writes cost nothing extra:
 * no timer is started or stopped per operation. Deadlines are absolute:
 * `seconds` counts from the call, and a client that trickles one byte at a
 * time cannot stretch them (unlike wait_for around each read). A deadline
 * may fire up to one loop iteration late, never early. */

/* Read deadline: `seconds` from now (0 clears it). A read waiting for data
 * when it passes, or started after it passed, fails with CORO_ETIMEDOUT and
 * consumes nothing; data that arrived before it is still returned by a read
 * that does not have to wait. The stream is left to the caller, open: it
 * may still write (a "408 Request Timeout") and close, or set a new
 * deadline and read on. Returns 0, CORO_EINVAL (NULL, negative or NaN
 * seconds), CORO_ECLOSED (closed stream), CORO_ENOMEM (no timer). */
int coro_stream_set_read_deadline(coro_stream *s, double seconds);
/* 1 once the read deadline has passed (until it is set again). */
int coro_stream_read_timed_out(const coro_stream *s);
/* Write deadline: `seconds` from now (0 clears it). If output is still
 * buffered when it passes (the peer does not read), the connection fails
 * with CORO_ETIMEDOUT and the stream is aborted: the output is dropped, a
 * waiting drain and wait_closed fail with CORO_ETIMEDOUT, reads fail with it
 * and writes return it. If nothing is buffered then, the deadline just
 * lapses. Bounds the flush after coro_stream_close too. Codes as above. */
int coro_stream_set_write_deadline(coro_stream *s, double seconds);
/* Idle timeout (also coro_stream_options.idle_timeout): once no byte has
 * been received or sent for `seconds` (0 turns it off), the stream fails
 * with CORO_ETIMEDOUT and is aborted, as above. Checked seconds/4 apart, so
 * it fires after between `seconds` and 1.25 x `seconds` of silence. Codes
 * as above. */
int coro_stream_set_idle_timeout(coro_stream *s, double seconds);

/* Bytes of buffer the stream holds now (read + write buffers; 0 for NULL).
 * A stream holds none while it waits for data with nothing unread and
 * nothing unsent: buffers are taken when data arrives and given back to the
 * loop (which keeps a few for reuse) when the stream goes idle. */
size_t coro_stream_memory(const coro_stream *s);

/* get_extra_info('peername') / ('sockname'): 0, -errno, CORO_EINVAL,
 * CORO_ECLOSED. */
int coro_stream_peername(const coro_stream *s, coro_sockaddr *addr);
int coro_stream_sockname(const coro_stream *s, coro_sockaddr *addr);
/* The stream's loop (for coro_frame_new in an on_connect callback), and
 * its descriptor (-1 once closed); NULL / -1 for NULL. */
coro_loop *coro_stream_loop(const coro_stream *s);
int coro_stream_fd(const coro_stream *s);

/* ------------------------------------------------------------------------ */
/* Servers (asyncio start_server / Server)                                  */
/* ------------------------------------------------------------------------ */

/* Listening sockets one server may hold (host NULL or "localhost" give two:
 * IPv4 and IPv6). */
#define CORO_SERVER_MAX_SOCKETS 4

/* The per-connection coroutine: called once per accepted connection, at
 * the start of the connection's task (so coro_current_task is that task),
 * with the connection's stream. Return a freshly initialised frame to run
 * as the handler (asyncio's client_connected_cb(reader, writer)), or NULL to
 * refuse the connection (it is closed).
 *
 * Ownership: the connection's task owns the stream and the frame. A frame
 * from coro_frame_new is freed by the server once it has finished; any
 * other frame is the program's. The stream stays valid until the handler
 * frame has finished; then the server closes it (if the handler did not),
 * lets the write buffer flush (wait_closed), and frees it. Anything that
 * keeps `conn` must be done with it before the handler returns. A handler
 * that fails with an error is reported to the loop's exception handler
 * ("Unhandled exception in client_connected_cb"), as asyncio does, except
 * CORO_ETIMEDOUT from the stream's own deadline or idle timeout (the
 * server's policy ending the connection, not a fault). Once
 * the connection's task was cancelled (coro_server_cancel_clients, or a
 * cancel of its own), its stream is aborted, its unsent data dropped,
 * rather than flushed, also when the handler caught the cancel and
 * returned: a client that stopped reading cannot hold a shutdown. */
typedef coro_frame *(*coro_connect_fn)(coro_stream *conn, void *arg);

/* Server settings; NULL or a zeroed struct means the defaults. */
typedef struct coro_server_options {
    coro_stream_options stream; /* for every connection's stream */
    int backlog;                /* listen(2) backlog; 0 for SOMAXCONN */
    size_t max_connections;     /* connections served at once; 0: no limit */
    int reuse_port;             /* 1: SO_REUSEPORT (see below) */
} coro_server_options;
/* reuse_port: several servers, each on its own loop (one loop per thread),
 * listen on the same TCP address and port, and the kernel spreads the new
 * connections over their sockets (Linux: by a hash of the client's address
 * and port, so the split is uneven for few connections; nginx's
 * `listen ... reuseport`). Every server on the port must ask for it. To
 * share a port picked by the system: start the first with port 0, read the
 * port with coro_server_sockname, start the others on it (docs/net.md, "One
 * loop per thread"). A server with it refuses to listen on a Unix socket,
 * and on a platform without SO_REUSEPORT, with -EOPNOTSUPP (CORO_EINVAL is
 * kept for bad arguments). Linux drops the connections still waiting in a
 * socket's accept queue when that socket closes: close the servers of a
 * port together, at shutdown. */

/* A listening socket of a server (private). */
typedef struct coro__listener {
    coro_socket sock;
    coro_done_node node;
    struct coro_server *server;
    int waiting; /* node registered on the readable future (or queued) */
} coro__listener;

/* A server: listening sockets, and one task per connection. All fields
 * private (tests read the counters). */
typedef struct coro_server {
    coro_loop *loop;
    coro__listener ls[CORO_SERVER_MAX_SOCKETS];
    unsigned nls;
    coro_connect_fn on_connect;
    void *arg;
    coro_server_options opt;
    coro__list conns;    /* the live connections */
    void *spare;         /* a connection allocated and not used yet */
    size_t nconns, peak; /* live now, most ever at once */
    uint64_t accepts;    /* accept(2) calls made */
    uint64_t pauses;     /* times accepting paused on EMFILE and the like */
    int64_t logged_at;   /* when a pause was last reported (loop ns) */
    uint64_t unlogged;   /* pauses not reported since */
    coro_handle retry;   /* the resume timer while paused */
    coro_waitq closers, forever;
    int state;  /* new, serving, closed */
    int paused; /* waiting for the retry timer */
    int full;   /* at max_connections */
    int forever_running;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t unix_dev;
    ino_t unix_ino;
} coro_server;

/* Initialise a server with no socket yet (the building block under
 * coro_start_server: add sockets with coro_server_listen, then start). `opt`
 * (may be NULL) is copied. Returns 0, CORO_EINVAL (NULL server, loop or
 * on_connect; write_low > write_high), CORO_ECLOSED. */
int coro_server_init(coro_server *srv, coro_loop *loop, coro_connect_fn on_connect, void *arg,
                     const coro_server_options *opt);
/* Open a listening socket on `addr` (SO_REUSEADDR for TCP, IPV6_V6ONLY for
 * IPv6, SO_REUSEPORT if asked; a Unix path that exists as a socket is
 * replaced, and removed again by close). Returns 0, -errno from
 * socket/bind/listen (-EADDRINUSE, ...), -EOPNOTSUPP for reuse_port on a
 * Unix socket or without SO_REUSEPORT, CORO_ENOMEM when the server
 * already has CORO_SERVER_MAX_SOCKETS, CORO_ESTATE once closed,
 * CORO_EINVAL. */
int coro_server_listen(coro_server *srv, const coro_sockaddr *addr);
/* Server.start_serving(): accept connections from now on. 0 (also when
 * already serving), CORO_ESTATE once closed, CORO_EINVAL. */
int coro_server_start(coro_server *srv);

/* The frame of one start_server. All fields private. */
typedef struct coro_start_server_op {
    coro_frame co;
    coro_server *srv;
    coro_getaddrinfo_op gai;
    coro_sockaddr addrs[CORO_SERVER_MAX_SOCKETS];
    const char *host;
    int port;
    coro_connect_fn on_connect;
    void *arg;
    coro_server_options opt;
    int is_unix;
    size_t n;
} coro_start_server_op;

/* await start_server(client_connected_cb, host, port): resolve `host`
 * (AI_PASSIVE: NULL means every interface, IPv4 and IPv6; "localhost" both
 * loopbacks), listen on each address and start serving; completes with
 * CORO_PTR srv. Port 0 picks a free port (per address: read it with
 * coro_server_sockname). Each accepted connection runs in a task of its own
 * (see coro_connect_fn); accepting stops while max_connections are being
 * served and resumes when one ends; on EMFILE, ENFILE, ENOBUFS or ENOMEM
 * accepting pauses for 100 ms and retries, so the loop neither spins nor
 * stops serving. Such a pause is reported to the loop's exception handler
 * at most once every 10 s (the next report counts those left out). Runs in a task. Fails with the
 * bind/listen error, the resolver's, CORO_ECANCELLED, CORO_ESTATE outside a task; `srv` then holds
 * nothing to close (closing it is harmless). `host` must stay valid until
 * the await returns. NULL for a NULL op, server or callback, or a port
 * outside 0-65535. */
coro_frame *coro_start_server(coro_start_server_op *op, coro_server *srv, const char *host,
                              int port, coro_connect_fn on_connect, void *arg,
                              const coro_server_options *opt);
/* await start_unix_server(client_connected_cb, path): the same on a Unix
 * socket at `path`. NULL also for a NULL or too long path. */
coro_frame *coro_start_unix_server(coro_start_server_op *op, coro_server *srv, const char *path,
                                   coro_connect_fn on_connect, void *arg,
                                   const coro_server_options *opt);

/* Server.close(): stop accepting and close the listening sockets (a Unix
 * socket's file is removed). Connections keep running; serve_forever
 * returns. Returns 0 (also when already closed), CORO_EINVAL for NULL. The
 * storage must stay valid until wait_closed has returned or no connection
 * is left (coro_server_connections). */
int coro_server_close(coro_server *srv);
/* Server.abort_clients() (asyncio 3.13): cancel every connection's task
 * and return how many were cancelled (0 for NULL). Each handler sees
 * CORO_ECANCELLED at its current or next suspension point; whether it
 * lets the cancel through or catches it and returns, its stream is then
 * aborted (unsent output dropped, the socket closed) without waiting for
 * the client, so the connections are gone within a loop pass or two of
 * the handlers returning. Does not close the server: call
 * coro_server_close first to stop new connections (docs/net.md, "Shutting
 * a server down"). */
size_t coro_server_cancel_clients(coro_server *srv);
/* 1 while accepting (started and not closed), 0 otherwise. */
int coro_server_is_serving(const coro_server *srv);
/* Connections being served now (0 for NULL). */
size_t coro_server_connections(const coro_server *srv);
/* The address of listening socket i (0 <= i < its count): 0, -errno,
 * CORO_EINVAL (NULL, or no such socket, or closed). */
int coro_server_sockname(const coro_server *srv, unsigned i, coro_sockaddr *addr);

/* The frame of serve_forever and wait_closed. All fields private. */
typedef struct coro_server_op {
    coro_frame co;
    coro_server *srv;
    coro_waiter w;
    int kind, err;
} coro_server_op;

/* await server.serve_forever(): start serving if needed, then wait until
 * the server is closed (coro_server_close from anywhere: completes with
 * CORO_INT 0; asyncio raises CancelledError there instead). If the awaiting
 * task is cancelled, the server is closed, its connections are waited for
 * (wait_closed), then the await fails with CORO_ECANCELLED. Fails with
 * CORO_ESTATE if the server is closed or another serve_forever runs. NULL
 * for a NULL op or server. */
coro_frame *coro_server_serve_forever(coro_server_op *op, coro_server *srv);
/* await server.wait_closed(): wait until the server is closed and every
 * connection has ended (3.12.1 semantics); at once if so. CORO_INT 0, or
 * CORO_ECANCELLED. NULL for a NULL op or server. */
coro_frame *coro_server_wait_closed(coro_server_op *op, coro_server *srv);

#endif
