/*
 * report.c - the default exception handler's words (asyncio's
 * default_exception_handler): one line per report, built without stdio and
 * handed to the port (coro_platform_write: stderr on POSIX, a UART or
 * nothing on a microcontroller).
 *
 *   coro: Task exception was never retrieved [Task-3, line 42]: timed out (-110)
 *   coro: coroutine resumed at a point its body does not hold (...) [Task-1]
 *         in worker_step (worker.c:57): invalid state (-4002)
 *
 * Never: allocate, or call the printf family (a bare-metal image links none).
 */
#include "coro_int.h"
#include "coro_platform.h"

#include <string.h>

struct line {
    char buf[320];
    size_t len;
};

static void put(struct line *l, const char *s)
{
    size_t n = strlen(s);
    if (n > sizeof l->buf - 1 - l->len)
        n = sizeof l->buf - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void put_int(struct line *l, int64_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    *--p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(l, p);
}

/* "1.234": microseconds as seconds with three decimals, integer only. */
static void put_seconds(struct line *l, int64_t ns)
{
    put_int(l, ns / 1000000000);
    put(l, ".");
    int64_t ms = ns % 1000000000 / 1000000;
    if (ms < 100)
        put(l, ms < 10 ? "00" : "0");
    put_int(l, ms);
}

void coro__default_report(const coro_exception_context *c)
{
    struct line l = { { 0 }, 0 };
    put(&l, "coro: ");
    put(&l, c->message);
    if (c->task_name) {
        put(&l, " [");
        put(&l, c->task_name);
        if (c->resume_line > 0 && !c->function) {
            put(&l, ", line ");
            put_int(&l, c->resume_line);
        }
        put(&l, "]");
    }
    if (c->function) {
        put(&l, " in ");
        put(&l, c->function);
        put(&l, " (");
        put(&l, c->file ? c->file : "?");
        put(&l, ":");
        put_int(&l, c->resume_line);
        put(&l, ")");
    }
    if (c->error) {
        put(&l, ": ");
        put(&l, coro_strerror(c->error));
        put(&l, " (");
        put_int(&l, c->error);
        put(&l, ")");
    }
    if (c->created_function) {
        put(&l, " (created in ");
        put(&l, c->created_function);
        put(&l, " (");
        put(&l, c->created_file ? c->created_file : "?");
        put(&l, ":");
        put_int(&l, c->created_line);
        put(&l, "))");
    }
    if (c->duration_ns > 0) {
        put(&l, " took ");
        put_seconds(&l, c->duration_ns);
        put(&l, " seconds");
    }
    coro_platform_write(l.buf);
}
