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

void coro__line_put(coro__line *l, const char *s)
{
    size_t n = strlen(s);
    if (n > sizeof l->buf - 1 - l->len)
        n = sizeof l->buf - 1 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

void coro__line_put_int(coro__line *l, int64_t v)
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
    coro__line_put(l, p);
}

/* "1.234": nanoseconds as seconds with three decimals, integer only. */
void coro__line_put_seconds(coro__line *l, int64_t ns)
{
    if (ns < 0) {
        coro__line_put(l, "-");
        ns = -ns;
    }
    coro__line_put_int(l, ns / 1000000000);
    coro__line_put(l, ".");
    int64_t ms = ns % 1000000000 / 1000000;
    if (ms < 100)
        coro__line_put(l, ms < 10 ? "00" : "0");
    coro__line_put_int(l, ms);
}

void coro__default_report(const coro_exception_context *c)
{
    coro__line l = { { 0 }, 0 };
    coro__line_put(&l, "coro: ");
    coro__line_put(&l, c->message);
    if (c->task_name) {
        coro__line_put(&l, " [");
        coro__line_put(&l, c->task_name);
        if (c->resume_line > 0 && !c->function) {
            coro__line_put(&l, ", line ");
            coro__line_put_int(&l, c->resume_line);
        }
        coro__line_put(&l, "]");
    }
    if (c->function) {
        coro__line_put(&l, " in ");
        coro__line_put(&l, c->function);
        coro__line_put(&l, " (");
        coro__line_put(&l, c->file ? c->file : "?");
        coro__line_put(&l, ":");
        coro__line_put_int(&l, c->resume_line);
        coro__line_put(&l, ")");
    }
    if (c->error) {
        coro__line_put(&l, ": ");
        coro__line_put(&l, coro_strerror(c->error));
        coro__line_put(&l, " (");
        coro__line_put_int(&l, c->error);
        coro__line_put(&l, ")");
    }
    if (c->created_function) {
        coro__line_put(&l, " (created in ");
        coro__line_put(&l, c->created_function);
        coro__line_put(&l, " (");
        coro__line_put(&l, c->created_file ? c->created_file : "?");
        coro__line_put(&l, ":");
        coro__line_put_int(&l, c->created_line);
        coro__line_put(&l, "))");
    }
    if (c->duration_ns > 0) {
        coro__line_put(&l, " took ");
        coro__line_put_seconds(&l, c->duration_ns);
        coro__line_put(&l, " seconds");
    }
    coro_platform_write(l.buf);
}
