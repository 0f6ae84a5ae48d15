/*
 * mem.c - the loop's allocator hook and its small-object slab.
 *
 * Every byte a loop allocates goes through one hook with Lua's realloc shape
 * (coro_alloc_fn), so an embedded user can supply a static arena and the
 * tests can fail the Nth allocation on purpose.
 *
 * Small objects (tasks, frames from coro_frame_new, futures, callback nodes,
 * loop-owned handles) come from a slab: size classes of 8 bytes up to
 * SLAB_MAX, each with a free list, carved from chunks. Why:
 *   - a malloc'd 96-byte object costs 112 bytes; a slab object costs 96, and
 *     a 24-byte frame 24, which is what keeps an empty sleeping task within
 *     96 bytes all told;
 *   - a free-list pop is cheaper than malloc on the spawn path;
 *   - coro_loop_close releases every chunk, so nothing a loop handed out can
 *     leak even if the program forgot a task or a future.
 * Larger objects go straight to the hook behind a small header that links
 * them into a list, for the same reason.
 *
 * Giving memory back (reclaim): a free stays O(1) (a push on its class's
 * list, and a count of the live bytes); when the live bytes have fallen to
 * a quarter of the chunk bytes (and, after a reclaim, each time they halve
 * again), the next time the loop goes idle (a poll with nothing ready:
 * coro__mem_idle) one pass sorts the chunks by address, finds each free
 * object's chunk by binary search, and returns every chunk whose bytes are
 * all free to the hook, dropping its objects from the free lists. So a
 * spike of tasks or connections gives its memory back once it is over,
 * and a busy loop (a tree of a million tasks growing and collapsing, where
 * a pass per halving cost more than the tasks themselves) never pays for
 * it while it is busy. A chunk retired for a fresh one has its unused
 * tail put on the free list of that size, so every byte of a chunk is
 * either live, free, or (the current chunk only) not carved yet.
 *
 * Alignment: an object whose rounded size is a multiple of 16 is 16-byte
 * aligned (it may hold anything, max_align_t included); any other is 8-byte
 * aligned, which is all it can need (a type's size is a multiple of its
 * alignment, so no type of 24 bytes wants 16). A chunk is carved from both
 * ends: 16-multiples from the front, other sizes from the back.
 *
 * Invariants: objects are aligned as above and zeroed when handed out; a
 * freed object goes back to its class; live_bytes is the sum of the rounded
 * sizes of the objects handed out and not freed.
 */
#include "coro_int.h"

#include <stdlib.h> /* malloc, unless CORO_NO_MALLOC */
#include <string.h>

/* Under AddressSanitizer, memory in a chunk that is not handed out is
 * poisoned, so a use after coro__free is reported like a use after free(). */
#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SLAB_GRAIN CORO__SLAB_GRAIN
#define SLAB_MAX CORO__SLAB_MAX
#define SLAB_CLASSES (SLAB_MAX / SLAB_GRAIN)
#define CHUNK_MIN 4096u
#define CHUNK_MAX (256u * 1024u)
#define BUF_POOL 32u                 /* idle stream buffers a loop keeps for reuse */
#define RECLAIM_MIN (512u * 1024u)   /* no reclaim below this many chunk bytes */

struct chunk {
    struct chunk *next;
    size_t size;
};

struct big {
    coro__link link; /* on slab.bigs */
    size_t size;
    size_t pad_; /* keeps the payload 16-byte aligned */
};

struct slab {
    struct coro__slab_head head; /* the free lists and live bytes (coro_int.h's
                                    inline fast paths read them too) */
    struct chunk *chunks;
    char *bump;       /* the current chunk's uncarved span: [bump, bump + bump_left) */
    size_t bump_left;
    size_t next_chunk;
    coro__list bigs;
    void *bufs;     /* idle stream buffers (coro__buf_get), linked through the first word */
    unsigned nbufs; /* how many: at most BUF_POOL */
    size_t nchunks;
    size_t chunk_bytes; /* the chunks' sizes, summed */
};

#define SLAB_ALIGN 16u /* of a chunk's first object, and of 16-multiple classes */
#define CHUNK_HDR ((sizeof(struct chunk) + SLAB_ALIGN - 1) & ~(size_t)(SLAB_ALIGN - 1))

#ifndef CORO_NO_MALLOC /* the heap-free build has no default allocator */
void *coro__default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}
#endif

void *coro__realloc(coro_loop *loop, void *p, size_t osize, size_t nsize)
{
    return loop->alloc(loop->alloc_ud, p, osize, nsize);
}

int coro__mem_init(coro_loop *loop)
{
    struct slab *s = coro__realloc(loop, NULL, 0, sizeof *s);
    if (!s)
        return CORO_ENOMEM;
    memset(s, 0, sizeof *s);
    s->next_chunk = CHUNK_MIN;
    loop->slab = s;
    return 0;
}

void coro__mem_fini(coro_loop *loop)
{
    struct slab *s = loop->slab;
    if (!s)
        return;
    while (s->chunks) {
        struct chunk *c = s->chunks;
        s->chunks = c->next;
        UNPOISON(c, c->size);
        coro__realloc(loop, c, c->size, 0);
    }
    for (void *p = s->bufs; p; p = *(void **)p)
        UNPOISON(p, CORO__BUF_SIZE);
    while (!coro__list_empty(&s->bigs)) {
        struct big *b = CORO__CONTAINER(s->bigs.first, struct big, link);
        coro__list_remove(&s->bigs, &b->link);
        coro__realloc(loop, b, sizeof *b + b->size, 0);
    }
    coro__realloc(loop, s, sizeof *s, 0);
    loop->slab = NULL;
}

/* Put [p, p + n) on the free list of its size (n a multiple of the grain,
 * at most SLAB_MAX), p aligned for that class. */
static void give_one(struct slab *s, char *p, size_t n)
{
    size_t k = n / SLAB_GRAIN - 1;
    UNPOISON(p, sizeof(void *));
    *(void **)p = s->head.free[k];
    POISON(p, n);
    s->head.free[k] = p;
}

/* The same for any grain-aligned span less than SLAB_MAX (the tail of a
 * chunk being retired): a leading 8 bytes first if p is not 16-aligned. */
static void give_tail(struct slab *s, char *p, size_t n)
{
    if (n >= SLAB_GRAIN && (uintptr_t)p % SLAB_ALIGN) {
        give_one(s, p, SLAB_GRAIN);
        p += SLAB_GRAIN;
        n -= SLAB_GRAIN;
    }
    if (n >= SLAB_GRAIN)
        give_one(s, p, n);
}

static int slab_refill(coro_loop *loop, struct slab *s, size_t need)
{
    size_t size = s->next_chunk;
    while (size - CHUNK_HDR < need)
        size *= 2;
    struct chunk *c = coro__realloc(loop, NULL, 0, size);
    if (!c)
        return CORO_ENOMEM;
    c->size = size;
    c->next = s->chunks;
    s->chunks = c;
    s->nchunks++;
    s->chunk_bytes += size;
    if (s->chunk_bytes >= RECLAIM_MIN && s->head.reclaim_at < s->chunk_bytes / 4)
        s->head.reclaim_at = s->chunk_bytes / 4;
    give_tail(s, s->bump, s->bump_left);
    s->bump = (char *)c + CHUNK_HDR;
    s->bump_left = size - CHUNK_HDR;
    POISON(s->bump, s->bump_left);
    if (s->next_chunk < CHUNK_MAX)
        s->next_chunk *= 2;
    return 0;
}

/* ---- reclaim: return the chunks that are entirely free ---- */

struct span {
    struct chunk *c;
    size_t free; /* bytes of it on free lists (or not carved yet) */
};

/* Sort the spans by chunk address: a shell sort (Ciura's gaps), in place
 * and small, where qsort would bring 1.5 KB of libc into a Cortex-M image;
 * a reclaim sorts one span per chunk, a few hundred at most. */
static void spans_sort(struct span *v, size_t n)
{
    static const size_t gaps[] = { 701, 301, 132, 57, 23, 10, 4, 1 };
    for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            struct span x = v[i];
            size_t j = i;
            for (; j >= gap && (uintptr_t)v[j - gap].c > (uintptr_t)x.c; j -= gap)
                v[j] = v[j - gap];
            v[j] = x;
        }
    }
}

/* The span holding p (a slab object), by binary search. */
static struct span *span_of(struct span *v, size_t n, const void *p)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)v[mid].c <= (uintptr_t)p)
            lo = mid;
        else
            hi = mid;
    }
    return &v[lo];
}

static bool span_empty(const struct span *sp) { return sp->free == sp->c->size - CHUNK_HDR; }

/* The link word of a free object (poisoned but for these reads/writes). */
static void *link_get(void **at)
{
    void *v;
    UNPOISON(at, sizeof(void *));
    v = *at;
    POISON(at, sizeof(void *));
    return v;
}

static void link_set(void **at, void *v)
{
    UNPOISON(at, sizeof(void *));
    *at = v;
    POISON(at, sizeof(void *));
}

/* Drop the objects of empty chunks from every free list. */
static void unlink_empty(struct slab *s, struct span *v, size_t n)
{
    for (size_t k = 0; k < SLAB_CLASSES; k++) {
        void *keep = NULL, **tail = NULL;
        for (void *p = s->head.free[k], *next; p; p = next) {
            next = link_get((void **)p);
            if (span_empty(span_of(v, n, p)))
                continue;
            if (tail)
                link_set(tail, p);
            else
                keep = p;
            tail = (void **)p;
        }
        if (tail)
            link_set(tail, NULL);
        s->head.free[k] = keep;
    }
}

static void release_empty(coro_loop *loop, struct slab *s, struct span *v, size_t n)
{
    struct chunk **link = &s->chunks;
    while (*link) {
        struct chunk *c = *link;
        if (!span_empty(span_of(v, n, c))) {
            link = &c->next;
            continue;
        }
        *link = c->next;
        if (s->bump && (uintptr_t)s->bump - (uintptr_t)c < c->size) {
            s->bump = NULL; /* the current chunk goes: the next alloc refills */
            s->bump_left = 0;
        }
        s->nchunks--;
        s->chunk_bytes -= c->size;
        UNPOISON(c, c->size);
        coro__realloc(loop, c, c->size, 0);
    }
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline)) /* the cold path: coro__free stays a leaf */
#endif
static void reclaim(coro_loop *loop, struct slab *s)
{
    size_t n = s->nchunks, i = 0, empty = 0;
    struct span *v;
    s->head.reclaim_at = s->head.live_bytes / 2; /* the next one: once live halves again */
    v = n > 1 ? coro__realloc(loop, NULL, 0, n * sizeof *v) : NULL;
    if (!v)
        return; /* one chunk (kept), or no memory for the pass: later */
    for (struct chunk *c = s->chunks; c; c = c->next, i++) {
        v[i].c = c;
        v[i].free = 0;
    }
    spans_sort(v, n);
    for (size_t k = 0; k < SLAB_CLASSES; k++)
        for (void *p = s->head.free[k]; p; p = link_get((void **)p))
            span_of(v, n, p)->free += (k + 1) * SLAB_GRAIN;
    if (s->bump_left)
        span_of(v, n, s->bump)->free += s->bump_left;
    for (i = 0; i < n; i++)
        empty += span_empty(&v[i]);
    if (empty > 0) {
        unlink_empty(s, v, n);
        release_empty(loop, s, v, n);
    }
    coro__realloc(loop, v, n * sizeof *v, 0);
}

/* A block beyond the slab's classes, on the list of big ones; zeroed
 * unless the caller fills it itself (a stream buffer: `zero` false). */
static void *big_alloc(coro_loop *loop, struct slab *s, size_t size, bool zero)
{
    struct big *b = coro__realloc(loop, NULL, 0, sizeof *b + size);
    if (!b)
        return NULL;
    b->size = size;
    coro__list_push(&s->bigs, &b->link);
    if (zero)
        memset(b + 1, 0, size);
    return b + 1;
}

static void big_free(coro_loop *loop, struct slab *s, void *p)
{
    struct big *b = (struct big *)p - 1;
    coro__list_remove(&s->bigs, &b->link);
    coro__realloc(loop, b, sizeof *b + b->size, 0);
}

/* Arrays that modules grow (a queue's ring): realloc-able, and linked on
 * the same list as big objects, so coro_loop_close frees what a module
 * forgot. Not zeroed on growth. */
void *coro__array_realloc(coro_loop *loop, void *p, size_t osize, size_t nsize)
{
    struct slab *s = loop->slab;
    (void)osize;
    if (!s)
        return NULL;
    if (nsize == 0) {
        if (p)
            big_free(loop, s, p);
        return NULL;
    }
    if (!p)
        return big_alloc(loop, s, nsize, true);
    struct big *b = (struct big *)p - 1;
    coro__list_remove(&s->bigs, &b->link); /* the block may move */
    struct big *nb = coro__realloc(loop, b, sizeof *b + b->size, sizeof *b + nsize);
    if (!nb) {
        coro__list_push(&s->bigs, &b->link); /* unchanged */
        return NULL;
    }
    nb->size = nsize;
    coro__list_push(&s->bigs, &nb->link);
    return nb + 1;
}

static size_t class_of(size_t size) { return (size + SLAB_GRAIN - 1) / SLAB_GRAIN - 1; }

/* Small objects are a few 8-byte grains: zero them with plain stores
 * (the compiler unrolls them), not a call of memset for 64 bytes. */
static void zero_grains(void *p, size_t rounded) { coro__zero_words(p, rounded / 8); }

/* Carve `rounded` bytes from the current chunk (refilled if short): a
 * 16-multiple from the front of its free span (which so stays 16-aligned),
 * any other size from the back (a chunk's size is a multiple of 16, so the
 * back stays 8-aligned). No padding either way. */
static void *bump_take(coro_loop *loop, struct slab *s, size_t rounded)
{
    if (s->bump_left < rounded && slab_refill(loop, s, rounded) != 0)
        return NULL;
    s->bump_left -= rounded;
    if (rounded % SLAB_ALIGN == 0) {
        void *p = s->bump;
        s->bump += rounded;
        return p;
    }
    return s->bump + s->bump_left;
}

void *coro__alloc_raw(coro_loop *loop, size_t size)
{
    struct slab *s = loop->slab;
    if (!s || size == 0)
        return NULL;
    loop->slab_allocs++;
    if (size > SLAB_MAX)
        return big_alloc(loop, s, size, true);
    size_t k = class_of(size), rounded = (k + 1) * SLAB_GRAIN;
    void *p = s->head.free[k];
    s->head.live_bytes += rounded;
    if (p) {
        UNPOISON(p, rounded);
        s->head.free[k] = *(void **)p;
    } else {
        p = bump_take(loop, s, rounded);
        if (!p) {
            s->head.live_bytes -= rounded;
            return NULL;
        }
        UNPOISON(p, rounded);
    }
    return p;
}

void *coro__alloc(coro_loop *loop, size_t size)
{
    void *p = coro__alloc_raw(loop, size);
    if (p && size <= SLAB_MAX)
        zero_grains(p, (class_of(size) + 1) * SLAB_GRAIN);
    return p; /* a big block is zeroed by big_alloc */
}

void coro__free(coro_loop *loop, void *p, size_t size)
{
    struct slab *s = loop->slab;
    if (!p || !s)
        return;
    if (size > SLAB_MAX) {
        big_free(loop, s, p);
        return;
    }
    size_t k = class_of(size);
    *(void **)p = s->head.free[k];
    s->head.free[k] = p;
    POISON(p, (k + 1) * SLAB_GRAIN);
    s->head.live_bytes -= (k + 1) * SLAB_GRAIN;
    if (s->head.live_bytes <= s->head.reclaim_at)
        s->head.reclaim_due = true; /* coro__mem_idle does it */
}

void coro__mem_idle(coro_loop *loop)
{
    struct slab *s = loop->slab;
    if (!s || !s->head.reclaim_due)
        return;
    s->head.reclaim_due = false;
    if (s->head.live_bytes <= s->head.reclaim_at) /* still: the spike is over */
        reclaim(loop, s);
}

/* Stream buffers (stream.c): a stream takes a buffer
 * when data arrives and gives it back when it goes idle, so a loop keeps a
 * few idle ones (BUF_POOL, at most 512 KiB) for the next stream that needs
 * one: request/response traffic then calls the hook for none, and a spike
 * of connections gives its memory back as soon as it is over. A buffer is
 * an array (coro__array_realloc can grow it; coro_loop_close frees it). */
void *coro__buf_get(coro_loop *loop, size_t size)
{
    struct slab *s = loop->slab;
    void *p;
    if (!s)
        return NULL;
    if (size != CORO__BUF_SIZE || !s->bufs)
        return big_alloc(loop, s, size, false); /* recv fills it: no memset of 64 KiB */
    p = s->bufs;
    UNPOISON(p, CORO__BUF_SIZE);
    s->bufs = *(void **)p;
    s->nbufs--;
    return p;
}

void coro__buf_put(coro_loop *loop, void *p, size_t size)
{
    struct slab *s = loop->slab;
    if (!p || !s)
        return;
    if (size != CORO__BUF_SIZE || s->nbufs >= BUF_POOL) {
        coro__array_realloc(loop, p, size, 0);
        return;
    }
    *(void **)p = s->bufs;
    s->bufs = p;
    s->nbufs++;
    POISON((char *)p + sizeof(void *), CORO__BUF_SIZE - sizeof(void *));
}
