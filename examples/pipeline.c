/*
 * examples/pipeline.c - asyncio's producer / workers pipeline, with every
 * `async with` and `try` written inside the coroutine that uses it
 * (CORO_WITH_TASK_GROUP, CORO_WITH_TIMEOUT, CORO_TRY), so the C reads like
 * the Python it retells:
 *
 *     async def producer(q, n):
 *         for i in range(1, n + 1):
 *             await q.put(i)                  # waits while the queue is full
 *         q.shutdown()                        # the workers drain it, then stop
 *
 *     async def worker(q, results):
 *         while True:
 *             try:
 *                 i = await q.get()
 *             except asyncio.QueueShutDown:
 *                 return
 *             try:
 *                 async with asyncio.timeout(0.1):
 *                     await asyncio.sleep(10 if i == 4 else 0.01)   # the job
 *                     results[i] = i * i
 *             except TimeoutError:
 *                 results[i] = "timed out"
 *
 *     async def main():
 *         q, results = asyncio.Queue(maxsize=2), {}
 *         async with asyncio.TaskGroup() as tg:
 *             tg.create_task(producer(q, 8))
 *             for _ in range(3):
 *                 tg.create_task(worker(q, results))
 *         for i in sorted(results):
 *             print(f"job {i}: {results[i]}")
 *
 *     asyncio.run(main())
 *
 * examples/pipeline_frames.c is the same program written with the older
 * forms, a body frame per `async with`; `make test-pipeline` checks that
 * both print the same and that this one is at most half as long.
 */
#include "coro.h"
#include <stdio.h>

#define NJOBS 8
#define NWORKERS 3
#define SLOW_JOB 4 /* the job that outlives its timeout */

struct producer {
    coro_frame co;
    coro_queue *q;
    coro_queue_put_op put;
    int i;
};

static CORO_FN(producer_step)
{
    struct producer *self = CORO_SELF(struct producer);
    CORO_BEGIN();
    for (self->i = 1; self->i <= NJOBS; self->i++)
        CORO_AWAIT(coro_queue_put(&self->put, self->q, coro_int(self->i)));
    coro_queue_shutdown(self->q, 0);
    CORO_END();
}

static coro_frame *producer(struct producer *p, coro_queue *q)
{
    coro_frame_init(&p->co, producer_step);
    p->q = q;
    return &p->co;
}

struct worker {
    coro_frame co;
    coro_queue *q;
    coro_value *results;
    coro_queue_get_op get;
    coro_timeout_op to;
    int i, err;
};

static CORO_FN(worker_step)
{
    struct worker *self = CORO_SELF(struct worker);
    CORO_BEGIN();
    for (;;) {
        CORO_AWAIT_ERR(coro_queue_get(&self->get, self->q), self->err);
        if (self->err == CORO_ESHUTDOWN)
            CORO_RETURN(coro_none());
        if (self->err)
            CORO_RAISE(self->err);
        self->i = (int)CORO_RESULT.u.i;
        CORO_TRY {
            CORO_WITH_TIMEOUT(&self->to, 0.1) {
                CORO_SLEEP(self->i == SLOW_JOB ? 10.0 : 0.01); /* the job */
                self->results[self->i] = coro_int(self->i * self->i);
            } CORO_WITH_END;
        } CORO_EXCEPT(self->err) {
            if (self->err != CORO_ETIMEDOUT)
                CORO_RAISE(self->err);
            self->results[self->i] = coro_error(self->err);
        } CORO_TRY_END;
    }
    CORO_END();
}

static coro_frame *worker(struct worker *w, coro_queue *q, coro_value *results)
{
    coro_frame_init(&w->co, worker_step);
    w->q = q;
    w->results = results;
    return &w->co;
}

struct main {
    coro_frame co;
    coro_queue q;
    coro_task_group_op tg;
    struct producer producer;
    struct worker workers[NWORKERS];
    coro_value results[NJOBS + 1]; /* by job id, so already sorted */
    int err;
};

static CORO_FN(main_step)
{
    struct main *self = CORO_SELF(struct main);
    CORO_BEGIN();
    self->err = coro_queue_init(&self->q, NULL, 2);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_WITH_TASK_GROUP(&self->tg) {
        self->err = coro_task_group_spawn(&self->tg, producer(&self->producer, &self->q), NULL);
        for (int i = 0; i < NWORKERS && !self->err; i++)
            self->err = coro_task_group_spawn(
                &self->tg, worker(&self->workers[i], &self->q, self->results), NULL);
        if (self->err)
            CORO_RAISE(self->err);
    } CORO_WITH_END;
    for (int i = 1; i <= NJOBS; i++) {
        if (coro_value_error(self->results[i]))
            printf("job %d: %s\n", i, coro_strerror(coro_value_error(self->results[i])));
        else
            printf("job %d: %lld\n", i, (long long)self->results[i].u.i);
    }
    CORO_END();
}

int main(void)
{
    static struct main m;
    coro_frame_init(&m.co, main_step);
    int rc = coro_run(&m.co, NULL, NULL);
    if (rc)
        fprintf(stderr, "pipeline: %s\n", coro_strerror(rc));
    return rc != 0;
}
