/*
 * tests/test_heapfree.c - the heap-free mode: a loop given all of its
 * storage at init (coro_loop_options.arena) never calls an allocator, fails
 * the operation that finds the arena full with CORO_ENOMEM and nothing else,
 * and gives every byte back at close, so the same arena serves again.
 * (make test-arena also runs the core and structure suites this way.)
 */
#include "helpers.h"

static long hook_calls;

static void *forbidden_hook(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)ptr;
    (void)osize;
    (void)nsize;
    hook_calls++;
    return NULL;
}

/* An arena, a hook that counts (it must never be called), and room
 * reserved at init for every task and timer the tests make, as an embedded
 * user sizes a loop. */
static coro_loop_options arena_options(void *bytes, size_t size)
{
    coro_loop_options o;
    memset(&o, 0, sizeof o);
    o.arena = bytes;
    o.arena_size = size;
    o.alloc = forbidden_hook;
    o.debug = -1;
    o.reserve_tasks = 256;
    o.reserve_timers = 256;
    return o;
}

struct napper {
    coro_frame co;
    int64_t ns;
    int *done;
};

static CORO_FN(napper_step)
{
    struct napper *self = CORO_SELF(struct napper);
    CORO_BEGIN();
    CORO_SLEEP_NS(self->ns);
    (*self->done)++;
    CORO_END();
}

/* Spawn sleeping tasks until the arena is full; returns how many. */
static int spawn_until_full(coro_loop *loop, int *done)
{
    int n = 0;
    for (;;) {
        struct napper *f = coro_frame_new(loop, sizeof *f, napper_step);
        if (!f)
            break;
        f->ns = 1000000 + (n % 7) * 100000; /* 1.0 .. 1.6 ms */
        f->done = done;
        coro_task *t = coro_spawn(loop, &f->co);
        if (!t)
            break; /* its frame was freed by coro_spawn */
        coro_task_release(t);
        n++;
        assert_true(n < 100000);
    }
    return n;
}

static max_align_t arena[32 * 1024 / sizeof(max_align_t)];

static void test_arena_full_then_drains(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options o = arena_options(arena, sizeof arena);
    hook_calls = 0;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    size_t used, peak, size;
    assert_int_equal(coro_loop_arena_usage(&loop, &used, &peak, &size), 0);
    assert_true(size > 30 * 1024 && size <= sizeof arena);
    int done = 0;
    int n = spawn_until_full(&loop, &done);
    assert_true(n > 20); /* a 32 KB arena holds dozens of sleeping tasks */
    /* full: the loop still runs every task it took, then has room again */
    run_for(&loop, 0.02);
    assert_int_equal(done, n);
    int again = spawn_until_full(&loop, &done);
    assert_true(again >= n - 1);
    run_for(&loop, 0.02);
    assert_int_equal(done, n + again);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(coro_loop_arena_usage(&loop, &used, &peak, NULL), 0);
    assert_true(used == 0); /* every byte given back */
    assert_true(peak > size / 2);
    assert_int_equal(hook_calls, 0);

    /* the same bytes serve a new loop, as much as before */
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    done = 0;
    int third = spawn_until_full(&loop, &done);
    assert_true(third >= n - 1);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(hook_calls, 0);
}

static void test_arena_bad_arguments(void **state)
{
    (void)state;
    coro_loop loop;
    static max_align_t tiny[4];
    coro_loop_options o = arena_options(tiny, 16);
    assert_int_equal(coro_loop_init(&loop, &o), CORO_EINVAL); /* too small for its header */
    o = arena_options(tiny, sizeof tiny);
    assert_int_equal(coro_loop_init(&loop, &o), CORO_ENOMEM); /* too small for the loop */
    o = arena_options(arena, sizeof arena);
    o.reserve_tasks = 1u << 20; /* 8 MB of task list: more than the arena */
    assert_int_equal(coro_loop_init(&loop, &o), CORO_ENOMEM);
    size_t used = 1;
    o = arena_options(arena, sizeof arena);
    assert_int_equal(coro_loop_arena_usage(NULL, NULL, NULL, NULL), CORO_EINVAL);
    coro_loop_options plain;
    memset(&plain, 0, sizeof plain);
    plain.alloc = forbidden_hook; /* an allocator, no arena */
    hook_calls = 0;
    assert_int_equal(coro_loop_init(&loop, &plain), CORO_ENOMEM); /* the hook refuses */
    assert_true(hook_calls > 0);
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    assert_int_equal(coro_loop_arena_usage(&loop, NULL, NULL, NULL), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(coro_loop_arena_usage(&loop, &used, NULL, NULL), 0);
    assert_true(used == 0); /* a failed init left nothing behind either */
#ifdef CORO_TEST_ARENA
    /* make test-arena: a loop made with no options is on an arena too */
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_arena_usage(&loop, NULL, NULL, NULL), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
#endif
}

/* A full arena: a caller-owned task still runs (its storage is the
 * caller's, its task-list slot was reserved), and close gives every byte
 * back. */
struct greedy {
    coro_frame co;
    int err;
};

static CORO_FN(greedy_step)
{
    struct greedy *self = CORO_SELF(struct greedy);
    CORO_BEGIN();
    CORO_FINALLY
    self->err = coro_value_error(CORO_RESULT);
    CORO_END();
}

static void test_arena_close_with_pending(void **state)
{
    (void)state;
    coro_loop loop;
    coro_loop_options o = arena_options(arena, sizeof arena);
    hook_calls = 0;
    assert_int_equal(coro_loop_init(&loop, &o), 0);
    int done = 0;
    int n = spawn_until_full(&loop, &done);
    assert_true(n > 0);
    struct greedy g = { .err = 1 };
    coro_frame_init(&g.co, greedy_step);
    coro_task t;
    /* a caller-owned task still fits: it needs no arena byte but a task-list slot */
    int rc = coro_task_init(&t, &loop, &g.co);
    assert_true(rc == 0 || rc == CORO_ENOMEM);
    run_for(&loop, 0.02);
    assert_int_equal(done, n);
    if (rc == 0)
        assert_int_equal(g.err, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
    size_t used = 1;
    assert_int_equal(coro_loop_arena_usage(&loop, &used, NULL, NULL), 0);
    assert_true(used == 0);
    assert_int_equal(hook_calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_full_then_drains),
        cmocka_unit_test(test_arena_bad_arguments),
        cmocka_unit_test(test_arena_close_with_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
