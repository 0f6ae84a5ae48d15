/*
 * tests/talloc.h - a counting allocator with the coro_alloc_fn (realloc)
 * shape: live bytes and blocks, a check that every osize the library
 * passes is the size it allocated, and failure injection (fail the Nth
 * call, or every call from the Nth on). Shared by the cmocka tests
 * (through helpers.h) and the fuzz harnesses (fuzz/fuzz.h), so it uses
 * nothing but libc.
 */
#ifndef CORO_TESTS_TALLOC_H
#define CORO_TESTS_TALLOC_H

#include <stdlib.h>
#include <string.h>

#include "../coro.h"

/* ---- the counting allocator ---- */

#define TALLOC_HDR 16u

typedef struct talloc {
    size_t live;       /* bytes allocated and not freed */
    long calls;        /* allocation calls (nsize > 0) so far */
    long fail_at;      /* fail the call with this number (1-based); 0: never */
    int persistent;    /* fail every call from fail_at on, not just that one */
    long failures;     /* calls failed on purpose */
    long bad_osize;    /* frees or reallocs that passed a wrong osize */
    size_t last_nsize; /* the size asked for by the last allocation call */
    long blocks;       /* blocks allocated and not freed */
} talloc;

static inline void *talloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    talloc *a = ud;
    char *base = ptr ? (char *)ptr - TALLOC_HDR : NULL;
    size_t old = 0;
    if (base) {
        memcpy(&old, base, sizeof old);
        if (old != osize)
            a->bad_osize++;
    }
    if (nsize == 0) {
        if (base) {
            a->live -= old;
            a->blocks--;
            free(base);
        }
        return NULL;
    }
    a->calls++;
    a->last_nsize = nsize;
    if (a->fail_at > 0 && (a->calls == a->fail_at || (a->persistent && a->calls > a->fail_at))) {
        a->failures++;
        return NULL;
    }
    char *nb = realloc(base, nsize + TALLOC_HDR);
    if (!nb)
        return NULL;
    memcpy(nb, &nsize, sizeof nsize);
    a->live = a->live - old + nsize;
    if (!base)
        a->blocks++;
    return nb + TALLOC_HDR;
}

static inline coro_loop_options talloc_options(talloc *a)
{
    coro_loop_options o;
    memset(&o, 0, sizeof o);
    o.alloc = talloc_fn;
    o.alloc_ud = a;
    o.debug = -1;
    return o;
}

#endif /* CORO_TESTS_TALLOC_H */
