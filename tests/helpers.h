/*
 * tests/helpers.h - what the core's cmocka tests share.
 *
 *   tlog     an ordered event log: callbacks and coroutines append small
 *            integers, the test compares the whole sequence (TLOG_EXPECT);
 *   talloc   a counting allocator with the coro_alloc_fn (realloc) shape:
 *            live bytes, a check that every osize the library passes is the
 *            size it allocated, and failure injection (fail the Nth call,
 *            or every call from the Nth on);
 *   texc     an exception handler that counts what it receives;
 *   run_one_pass / run_for
 *            drive a loop for exactly one iteration, or for a while.
 *
 * Everything is static inline so each test program takes what it uses and
 * nothing else (no unused-function warnings under -Werror).
 */
#ifndef CORO_TESTS_HELPERS_H
#define CORO_TESTS_HELPERS_H

/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coro.h"

/* ---- the event log ---- */

#define TLOG_MAX 512

typedef struct tlog {
    int n;
    int ev[TLOG_MAX];
} tlog;

static inline void tlog_add(tlog *l, int v)
{
    assert_true(l->n < TLOG_MAX);
    l->ev[l->n++] = v;
}

static inline void tlog_print(const char *what, const int *ev, int n)
{
    print_error("%s (%d):", what, n);
    for (int i = 0; i < n; i++)
        print_error(" %d", ev[i]);
    print_error("\n");
}

static inline void tlog_expect(const tlog *l, const int *want, int n)
{
    int same = l->n == n;
    for (int i = 0; same && i < n; i++)
        same = l->ev[i] == want[i];
    if (!same) {
        tlog_print("got ", l->ev, l->n);
        tlog_print("want", want, n);
        fail_msg("the event log differs");
    }
}

#define TLOG_EXPECT(l, ...)                                             \
    do {                                                                \
        const int want_[] = { __VA_ARGS__ };                            \
        tlog_expect((l), want_, (int)(sizeof want_ / sizeof want_[0])); \
    } while (0)

/* A coro_callback that logs (int)(intptr_t)arg. Pass the log through a
 * struct when a test needs both. */
typedef struct tlog_arg {
    tlog *log;
    int value;
} tlog_arg;

static inline int tlog_cb(void *arg)
{
    tlog_arg *a = arg;
    tlog_add(a->log, a->value);
    return 0;
}

/* ---- for the tests of fds, sockets and servers ---- */

#include <fcntl.h>

/* Open file descriptors of this process (a test ends with as many as it
 * began with: no fd leaked). */
static inline int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

/* Under valgrind (make VALGRIND=1): the load tests run fewer rounds. */
static inline int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

#include "talloc.h" /* the counting allocator: talloc, talloc_fn, talloc_options */

/* ---- the heap-free run (make test-arena: -DCORO_TEST_ARENA) ----
 * Every loop a test makes without an allocator of its own gets an arena
 * (coro_loop_options.arena) and, as its hook, one that fails the test if it
 * is ever called: the whole suite then shows that a loop given its storage
 * at init calls no allocator. The arenas are the test's own memory, freed
 * at exit. */
#ifdef CORO_TEST_ARENA
#define TEST_ARENA_SIZE (8u << 20)

struct test_arena {
    struct test_arena *next;
    max_align_t bytes[];
};
static struct test_arena *test_arenas;

static void test_arenas_free(void)
{
    while (test_arenas) {
        struct test_arena *a = test_arenas;
        test_arenas = a->next;
        free(a);
    }
}

static inline void *test_arena_forbidden(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)ptr;
    (void)osize;
    (void)nsize;
    fail_msg("a loop with an arena called its allocator hook");
    return NULL;
}

static inline coro_loop_options test_arena_options(const coro_loop_options *opt)
{
    coro_loop_options o;
    if (opt)
        o = *opt;
    else
        memset(&o, 0, sizeof o);
    if (o.alloc || o.arena)
        return o; /* the test brings its own: keep it */
    struct test_arena *a = malloc(sizeof *a + TEST_ARENA_SIZE);
    assert_non_null(a);
    if (!test_arenas)
        atexit(test_arenas_free);
    a->next = test_arenas;
    test_arenas = a;
    o.arena = a->bytes;
    o.arena_size = TEST_ARENA_SIZE;
    o.alloc = test_arena_forbidden;
    return o;
}

static inline int test_arena_loop_init(coro_loop *loop, const coro_loop_options *opt)
{
    coro_loop_options o = test_arena_options(opt);
    return (coro_loop_init)(loop, &o);
}

static inline int test_arena_run(coro_frame *main, coro_value *result, const coro_loop_options *opt)
{
    coro_loop_options o = test_arena_options(opt);
    return (coro_run)(main, result, &o);
}
#define coro_loop_init(loop, opt) test_arena_loop_init((loop), (opt))
#define coro_run(main, result, opt) test_arena_run((main), (result), (opt))
#endif

/* ---- the exception handler ---- */

typedef struct texc {
    int count;             /* every call */
    int slow;              /* "... was slow" */
    int never_retrieved;   /* "... never retrieved" */
    int destroyed_pending; /* "... destroyed but it is pending" */
    int callback_errors;   /* "Exception in callback" */
    int last_error;
    int last_line;
    double last_seconds;
    coro_task *last_task;
    char last_message[128];
    char last_task_name[64];
    char last_created_function[64]; /* debug mode: where the task was created */
    int last_created_line;
} texc;

static inline void texc_handler(coro_loop *loop, const coro_exception_context *c, void *arg)
{
    texc *x = arg;
    (void)loop;
    assert_non_null(c);
    assert_non_null(c->message);
    x->count++;
    if (strstr(c->message, "slow"))
        x->slow++;
    if (strstr(c->message, "never retrieved"))
        x->never_retrieved++;
    if (strstr(c->message, "destroyed but it is pending"))
        x->destroyed_pending++;
    if (strstr(c->message, "Exception in callback"))
        x->callback_errors++;
    x->last_error = c->error;
    x->last_line = c->resume_line;
    x->last_seconds = c->seconds;
    x->last_task = c->task;
    snprintf(x->last_message, sizeof x->last_message, "%s", c->message);
    snprintf(x->last_task_name, sizeof x->last_task_name, "%s", c->task_name ? c->task_name : "");
    snprintf(x->last_created_function, sizeof x->last_created_function, "%s",
             c->created_function ? c->created_function : "");
    x->last_created_line = c->created_line;
}

/* ---- driving the loop ---- */

/* Exactly one iteration: stop() before run_forever makes asyncio's loop run
 * one pass (polling without blocking) and return. */
static inline void run_one_pass(coro_loop *loop)
{
    coro_loop_stop(loop);
    assert_int_equal(coro_loop_run_forever(loop), 0);
}

static inline int stop_cb(void *arg)
{
    coro_loop_stop(arg);
    return 0;
}

/* Run the loop for about `seconds` (a timer stops it). */
static inline void run_for(coro_loop *loop, double seconds)
{
    coro_handle h;
    coro_handle_init(&h);
    assert_int_equal(coro_call_later(loop, &h, seconds, stop_cb, loop), 0);
    assert_int_equal(coro_loop_run_forever(loop), 0);
    coro_handle_cancel(&h);
}

/* Busy-wait (no sleep: the point is to take CPU time in a callback). */
static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void spin_ns(int64_t ns)
{
    int64_t t0 = mono_ns();
    while (mono_ns() - t0 < ns) {
    }
}

#define MS (1000000LL)

#endif /* CORO_TESTS_HELPERS_H */
