/*
 * stubs.c - a measurement, not a fix: what the minimal image weighs when
 * the two pieces of newlib the core still reaches are replaced by the
 * smallest thing that links (linked into minimal-stubs.elf only):
 *   strerror               errors.c: coro_strerror of a system -errno
 *   malloc, realloc, free  mem.c: the default allocator (the loop's slab
 *                          struct, its task list and timer heap)
 * Here: no message, and a bump allocator over a static arena that never
 * gives memory back (realloc copies). What is left beyond coro and the
 * platform is libgcc's soft-float and 64-bit division, and memset/memcpy.
 */
#include <stddef.h>
#include <string.h>

char *strerror(int err)
{
    (void)err;
    return (char *)"error";
}

static _Alignas(8) unsigned char arena[8192];
static size_t used;

void *malloc(size_t n)
{
    n = (n + 7u) & ~(size_t)7u;
    if (n + sizeof(size_t) * 2 > sizeof arena - used)
        return NULL;
    size_t *p = (size_t *)(void *)(arena + used);
    p[0] = n;
    used += n + sizeof(size_t) * 2;
    return p + 2;
}

void free(void *p) { (void)p; }

void *realloc(void *p, size_t n)
{
    void *q = malloc(n);
    if (q && p) {
        size_t old = ((size_t *)p)[-2];
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}
