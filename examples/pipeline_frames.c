/*
 * examples/pipeline_frames.c - examples/pipeline.c written the way a user
 * had to before `async with` could sit inside a coroutine's body: every
 * `async with` body is a coroutine of its own (a frame struct, a step
 * function, an init function), awaited with coro_task_group and
 * coro_timeout, and `except TimeoutError` is a CORO_AWAIT_ERR. It exists to
 * show the difference: it prints exactly what pipeline.c prints (the Python
 * both retell is at the top of pipeline.c), and `make test-pipeline` checks
 * that and compares their lengths. Read pipeline.c first.
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

/* The body of `async with asyncio.timeout(0.1):`, the job: returns i * i. */
struct job {
    coro_frame co;
    int i;
};

static CORO_FN(job_step)
{
    struct job *self = CORO_SELF(struct job);
    CORO_BEGIN();
    CORO_SLEEP(self->i == SLOW_JOB ? 10.0 : 0.01);
    CORO_RETURN(coro_int(self->i * self->i));
    CORO_END();
}

static coro_frame *job(struct job *j, int i)
{
    coro_frame_init(&j->co, job_step);
    j->i = i;
    return &j->co;
}

struct worker {
    coro_frame co;
    coro_queue *q;
    coro_value *results;
    coro_queue_get_op get;
    coro_timeout_op to;
    struct job job;
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
        CORO_AWAIT_ERR(coro_timeout(&self->to, 0.1, job(&self->job, self->i)), self->err);
        if (self->err && self->err != CORO_ETIMEDOUT)
            CORO_RAISE(self->err);
        self->results[self->i] = self->err ? coro_error(self->err) : CORO_RESULT;
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

struct main;

/* The body of `async with asyncio.TaskGroup() as tg:`; the group is the
 * main frame's, which the body reaches through its pointer. */
struct main_body {
    coro_frame co;
    struct main *m;
};

struct main {
    coro_frame co;
    coro_queue q;
    coro_task_group_op tg;
    struct main_body body;
    struct producer producer;
    struct worker workers[NWORKERS];
    coro_value results[NJOBS + 1]; /* by job id, so already sorted */
    int err;
};

static CORO_FN(main_body_step)
{
    struct main *m = CORO_SELF(struct main_body)->m;
    int err;
    CORO_BEGIN();
    err = coro_task_group_spawn(&m->tg, producer(&m->producer, &m->q), NULL);
    for (int i = 0; i < NWORKERS && !err; i++)
        err = coro_task_group_spawn(&m->tg, worker(&m->workers[i], &m->q, m->results), NULL);
    if (err)
        CORO_RAISE(err);
    CORO_END();
}

static coro_frame *main_body(struct main_body *b, struct main *m)
{
    coro_frame_init(&b->co, main_body_step);
    b->m = m;
    return &b->co;
}

static CORO_FN(main_step)
{
    struct main *self = CORO_SELF(struct main);
    CORO_BEGIN();
    self->err = coro_queue_init(&self->q, NULL, 2);
    if (self->err)
        CORO_RAISE(self->err);
    CORO_AWAIT(coro_task_group(&self->tg, main_body(&self->body, self), NULL, 0));
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
