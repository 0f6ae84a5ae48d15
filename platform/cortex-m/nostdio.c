/*
 * nostdio.c - a measurement, not a fix: what the minimal image would weigh
 * if the core did not reach stdio, strerror and getenv (issue 9, item 4).
 * Linked into minimal-nostdio.elf only, these replace newlib's versions of
 * exactly the functions the unmodified core calls:
 *   fprintf, fputc  loop.c's default exception handler (stderr)
 *   snprintf        task.c's "Task-N" names, gen.c's await-misuse report
 *   strerror        errors.c's coro_strerror for system codes
 *   getenv          loop.c's CORO_DEBUG
 * Each does nothing useful (no text is formatted). The allocator (malloc)
 * and the double arithmetic (coro_loop_time, slow-callback seconds) stay:
 * the core needs changes to lose them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

int fprintf(FILE *f, const char *fmt, ...)
{
    (void)f;
    (void)fmt;
    return 0;
}

int fputc(int c, FILE *f)
{
    (void)f;
    return c;
}

int snprintf(char *buf, size_t len, const char *fmt, ...)
{
    (void)fmt;
    if (len > 0)
        buf[0] = '\0';
    return 0;
}

char *strerror(int err)
{
    (void)err;
    return (char *)"error";
}

char *getenv(const char *name)
{
    (void)name;
    return NULL;
}
