/*
 * arena.c - the heap-free mode: a loop that was given all of its storage at
 * init (coro_loop_options.arena) allocates from those bytes and nothing else.
 *
 * It is an allocator with the hook's own realloc shape (coro_alloc_fn), so
 * everything that allocates (mem.c's slab and arrays, the task list, the
 * timer heap, a selector's state) works unchanged on top of it, and a full
 * arena fails exactly the operation that needed more with CORO_ENOMEM, as
 * an allocator that returns NULL does. Embassy's static task pools and
 * protothreads' "no heap" are the model; the difference is that asyncio's
 * whole model (growing task lists, timers, queues) still fits, up to the
 * arena's size.
 *
 * The bytes: the arena's header, then blocks. Every block starts with a
 * 16-byte header holding its size (header included; a multiple of 16, so
 * payloads stay 16-byte aligned); a free block also holds the next free
 * block, and the free list is kept in address order so a free merges with
 * both neighbours (first fit, immediate coalescing: what a small embedded
 * allocator does, O(free blocks) per call, which the slab keeps few).
 *
 * Never: touch memory outside the arena, or call any other allocator.
 */
#include "coro_int.h"

#include <string.h>

#define GRAIN 16u

struct blk {
    size_t size;      /* of the whole block, header included */
    struct blk *next; /* free blocks only: the next one by address */
};
#define HDR ((sizeof(struct blk) + GRAIN - 1) & ~(size_t)(GRAIN - 1))

struct arena {
    struct blk *free; /* by address */
    size_t size;      /* bytes of blocks */
    size_t used;      /* bytes of allocated blocks, headers included */
    size_t peak;
};
#define ARENA_HDR ((sizeof(struct arena) + GRAIN - 1) & ~(size_t)(GRAIN - 1))

static size_t round_up(size_t n) { return (n + GRAIN - 1) & ~(size_t)(GRAIN - 1); }

struct arena *coro__arena_init(void *mem, size_t size)
{
    uintptr_t start = ((uintptr_t)mem + GRAIN - 1) & ~(uintptr_t)(GRAIN - 1);
    size_t lost = (size_t)(start - (uintptr_t)mem);
    if (!mem || size < lost + ARENA_HDR + 2 * HDR)
        return NULL;
    size = (size - lost - ARENA_HDR) & ~(size_t)(GRAIN - 1);
    struct arena *a = (struct arena *)start;
    struct blk *b = (struct blk *)(start + ARENA_HDR);
    b->size = size;
    b->next = NULL;
    a->free = b;
    a->size = size;
    a->used = a->peak = 0;
    return a;
}

static void *arena_take(struct arena *a, size_t need)
{
    for (struct blk **p = &a->free; *p; p = &(*p)->next) {
        struct blk *b = *p;
        if (b->size < need)
            continue;
        if (b->size - need >= 2 * HDR) { /* split: the tail stays free */
            struct blk *rest = (struct blk *)((char *)b + need);
            rest->size = b->size - need;
            rest->next = b->next;
            *p = rest;
            b->size = need;
        } else {
            *p = b->next;
        }
        a->used += b->size;
        if (a->used > a->peak)
            a->peak = a->used;
        return (char *)b + HDR;
    }
    return NULL;
}

static void arena_give(struct arena *a, void *ptr)
{
    struct blk *b = (struct blk *)((char *)ptr - HDR), **p = &a->free;
    a->used -= b->size;
    while (*p && *p < b)
        p = &(*p)->next;
    b->next = *p;
    *p = b;
    if (b->next && (char *)b + b->size == (char *)b->next) { /* merge with the next */
        b->size += b->next->size;
        b->next = b->next->next;
    }
    if (p != &a->free) { /* merge with the previous */
        struct blk *prev = (struct blk *)((char *)p - offsetof(struct blk, next));
        if ((char *)prev + prev->size == (char *)b) {
            prev->size += b->size;
            prev->next = b->next;
        }
    }
}

void *coro__arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct arena *a = ud;
    (void)osize;
    if (nsize == 0) {
        if (ptr)
            arena_give(a, ptr);
        return NULL;
    }
    if (nsize > a->size)
        return NULL;
    size_t need = round_up(nsize) + HDR;
    if (!ptr)
        return arena_take(a, need);
    struct blk *b = (struct blk *)((char *)ptr - HDR);
    if (need <= b->size)
        return ptr; /* shrinking (or as big): keep the block */
    void *q = arena_take(a, need);
    if (!q)
        return NULL; /* ptr untouched, as realloc */
    memcpy(q, ptr, b->size - HDR);
    arena_give(a, ptr);
    return q;
}

void coro__arena_usage(const struct arena *a, size_t *used, size_t *peak, size_t *size)
{
    if (used)
        *used = a->used;
    if (peak)
        *peak = a->peak;
    if (size)
        *size = a->size;
}
