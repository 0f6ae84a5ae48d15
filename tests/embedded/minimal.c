/*
 * minimal.c - the program issue 9 measures its size aims on: one task
 * that sleeps and one generator, on a loop in static storage. Prints two
 * lines and exits 0 when both behaved.
 */
#include "coro.h"

#include "cortex-m.h"
#include "print.h"

struct counter { /* a generator: yields 1, 2, 3 */
    coro_frame co;
    int i;
};

static CORO_FN(counter_step)
{
    struct counter *self = CORO_SELF(struct counter);
    CORO_BEGIN();
    for (self->i = 1; self->i <= 3; self->i++)
        CORO_YIELD(coro_int(self->i));
    CORO_END();
}

struct sleeper { /* a task: sleeps 10 ms, returns the time it took */
    coro_frame co;
    int64_t t0;
};

static CORO_FN(sleeper_step)
{
    struct sleeper *self = CORO_SELF(struct sleeper);
    CORO_BEGIN();
    self->t0 = coro_loop_time_ns(NULL);
    CORO_SLEEP_NS(10 * 1000000);
    CORO_RETURN(coro_int(coro_loop_time_ns(NULL) - self->t0));
    CORO_END();
}

static coro_loop loop;
static coro_task task;
static struct sleeper sleeper;
static struct counter counter;

int main(void)
{
    cm_clock_init();
    coro_gen g;
    coro_value v;
    int64_t sum = 0;
    coro_frame_init(&counter.co, counter_step);
    coro_gen_init(&g, &counter.co);
    while (coro_gen_next(&g, &v) == 1)
        sum += v.u.i;
    cm_puts("generator: sum ");
    cm_puti(sum);
    cm_puts("\n");

    if (coro_loop_init(&loop, NULL) != 0)
        return 2;
    coro_frame_init(&sleeper.co, sleeper_step);
    coro_task_init(&task, &loop, &sleeper.co);
    int rc = coro_loop_run_until_complete(&loop, coro_task_future(&task));
    coro_task_result(&task, &v);
    cm_puts("task: slept ");
    cm_putfix(v.u.i / 1000, 3);
    cm_puts(" ms\n");
    coro_loop_close(&loop);
    cm_puts("malloc heap high-water: ");
    cm_putu(cm_heap_used());
    cm_puts(" bytes (the loop's slab, task list and timer heap)\n");
    return rc == 0 && sum == 6 && v.u.i >= 10 * 1000000 ? 0 : 1;
}
