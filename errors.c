/*
 * errors.c - what a code means: coro_strerror and coro_err_name.
 *
 * Both are generated from CORO_ERRNO_MAP in coro.h (one table for codes,
 * names and messages, as libuv's UV_ERRNO_MAP), so a new code is one line
 * there. A system error is -errno: its message is the system's strerror,
 * its name comes from the short list below of the errno values a loop,
 * a socket or a pipe returns (others are "UNKNOWN").
 *
 * Never: allocate, or return NULL.
 */
#include "coro_int.h"

#include <string.h>

/* The errno values a loop, a socket or a pipe returns: they get a name. */
#define SYS_ERRNO_MAP(X)                                                                      \
    X(EPERM) X(ENOENT) X(EINTR) X(EIO) X(EBADF) X(EAGAIN) X(EACCES) X(EFAULT) X(EBUSY)      \
    X(EEXIST) X(ENOTDIR) X(EISDIR) X(ENFILE) X(EMFILE) X(ENOSPC) X(EPIPE) X(ERANGE)          \
    X(ENOSYS) X(ENOTSOCK) X(EMSGSIZE) X(EPROTONOSUPPORT) X(EOPNOTSUPP) X(EAFNOSUPPORT)       \
    X(EADDRINUSE) X(EADDRNOTAVAIL) X(ENETDOWN) X(ENETUNREACH) X(ECONNABORTED) X(ECONNRESET)  \
    X(ENOBUFS) X(EISCONN) X(ENOTCONN) X(ECONNREFUSED) X(EHOSTUNREACH) X(EALREADY)            \
    X(EINPROGRESS)

const char *coro_strerror(int err)
{
    switch (err) {
    case 0: return "success";
#define MESSAGE_CASE(name, value, message) case CORO_##name: return message;
        CORO_ERRNO_MAP(MESSAGE_CASE)
#undef MESSAGE_CASE
    default: break;
    }
    if (err < 0 && err > -4000)
        return strerror(-err);
    return err <= CORO_EUSER ? "application error" : "unknown error";
}

static const char *sys_err_name(int err)
{
#define NAME_IF(name)                                                                         \
    if (err == -(name))                                                                       \
        return #name;
    SYS_ERRNO_MAP(NAME_IF)
#undef NAME_IF
    return "UNKNOWN";
}

const char *coro_err_name(int err)
{
    switch (err) {
    case 0: return "CORO_OK";
#define NAME_CASE(name, value, message) case CORO_##name: return "CORO_" #name;
        CORO_ERRNO_MAP(NAME_CASE)
#undef NAME_CASE
    default: break;
    }
    if (err < 0 && err > -4000)
        return sys_err_name(err);
    return err <= CORO_EUSER ? "CORO_EUSER" : "UNKNOWN";
}
