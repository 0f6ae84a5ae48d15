/*
 * print.c - integers to decimal without printf. Output is buffered per
 * call into one SYS_WRITE0, so a line costs a few semihosting traps, not
 * one per character.
 */
#include "print.h"
#include "semihost.h"

void cm_puts(const char *s) { sh_write0(s); }

void cm_putc(char c) { sh_writec(c); }

/* Digits of v into the end of buf (at least 21 bytes); returns the first. */
static char *digits(char *end, uint64_t v)
{
    *--end = '\0';
    do {
        *--end = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    return end;
}

void cm_putu(uint64_t v)
{
    char buf[24];
    sh_write0(digits(buf + sizeof buf, v));
}

void cm_puti(int64_t v)
{
    char buf[24];
    uint64_t m = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    char *p = digits(buf + sizeof buf, m);
    if (v < 0)
        *--p = '-';
    sh_write0(p);
}

void cm_putfix(int64_t v, unsigned decimals)
{
    uint64_t scale = 1;
    for (unsigned i = 0; i < decimals; i++)
        scale *= 10u;
    if (v < 0) {
        sh_writec('-');
        v = -v;
    }
    cm_putu((uint64_t)v / scale);
    if (decimals == 0)
        return;
    char buf[24];
    char *p = digits(buf + sizeof buf, (uint64_t)v % scale + scale); /* leading 1 keeps zeros */
    sh_writec('.');
    sh_write0(p + 1);
}
