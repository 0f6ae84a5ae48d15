/*
 * fuzz/fuzz.h - what the harnesses share: the libFuzzer entry point, a
 * check that aborts with a message (libFuzzer and fuzz/replay.c both report
 * an abort as a crash, with the input that caused it), a counting allocator
 * for the loop's alloc hook, and a small deterministic PRNG for choices that
 * the input does not spell out byte by byte.
 *
 * No cmocka here: a harness is built by clang with libFuzzer (make fuzz) and
 * by any compiler with fuzz/replay.c (make fuzz-replay), and nothing else.
 */
#ifndef CORO_FUZZ_H
#define CORO_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* ---- a counting allocator: the tests' own (talloc, talloc_fn) ---- */

#include "../tests/talloc.h"

/* ---- xorshift32: chunk sizes and the like, seeded from the input ---- */

static inline uint32_t fuzz_rand(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9E3779B9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

#endif /* CORO_FUZZ_H */
