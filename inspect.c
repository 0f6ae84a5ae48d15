/*
 * inspect.c - where is every task right now: asyncio's all_tasks(),
 * Task.get_stack() / print_stack(), and the whole-loop dump aiomonitor and
 * Go's SIGQUIT give.
 *
 *   asyncio / Go                        coro
 *   all_tasks(loop)                     coro_all_tasks(loop, fn, arg)
 *   task.get_stack()                    coro_task_get_stack(t, fn, arg)
 *   task.print_stack()                  coro_task_dump(t, write, arg)
 *   (aiomonitor "ps", Go's SIGQUIT)     coro_loop_dump(loop, write, arg),
 *                                       coro_loop_dump_on_signal (hosted)
 *
 * Nothing here is on a hot path or costs a task a byte: a task's await
 * chain is its innermost frame (t->fut.val.frame, while pending) and each frame's parent; each
 * frame's line is its resume point, and its function and file are asked of
 * the body itself (coro__frame_describe: CORO_BEGIN answers, no per-frame
 * record). What a task waits on comes from its flags, its timer's deadline
 * or the kind of the future it waits on (coro__future_kind). The text is
 * built without the printf family, so the dump works on bare metal too,
 * through coro_platform_write when no writer is given.
 *
 * Never: allocate, or change a task.
 */
#include "coro_int.h"
#include "coro_platform.h"

#include <string.h>

static const char *const kind_names[FUT_KIND_COUNT] = {
    [FUT_KIND_FUTURE] = "a future",       [FUT_KIND_FD_READ] = "fd readable",
    [FUT_KIND_FD_WRITE] = "fd writable",  [FUT_KIND_LOCK] = "a lock",
    [FUT_KIND_EVENT] = "an event",        [FUT_KIND_CONDITION] = "a condition",
    [FUT_KIND_SEMAPHORE] = "a semaphore", [FUT_KIND_BARRIER] = "a barrier",
    [FUT_KIND_QUEUE_GET] = "queue get",   [FUT_KIND_QUEUE_PUT] = "queue put",
    [FUT_KIND_QUEUE_JOIN] = "queue join", [FUT_KIND_GATHER] = "gather",
    [FUT_KIND_WAIT] = "wait",             [FUT_KIND_AS_COMPLETED] = "as_completed",
    [FUT_KIND_SHIELD] = "shield",         [FUT_KIND_TASK_GROUP] = "its task group's children",
    [FUT_KIND_THREAD] = "a thread",       [FUT_KIND_STREAM] = "a stream",
    [FUT_KIND_SERVER] = "a server",
};

const char *coro__future_kind_name(unsigned kind)
{
    return kind < FUT_KIND_COUNT && kind_names[kind] ? kind_names[kind] : "a future";
}

/* ---- all_tasks ---- */

int coro_all_tasks(coro_loop *loop, coro_task_visit_fn fn, void *arg)
{
    loop = coro__loop_or_running(loop);
    if (!loop || !fn)
        return CORO_EINVAL;
    coro__tasks_list_all(loop);
    uint32_t n = loop->ntasks, seen = 0; /* tasks made by fn are not visited */
    for (uint32_t i = 0; i < n && i < loop->ntasks; i++) {
        coro_task *t = loop->tasks[i];
        if (t->fut.state != FUT_PENDING)
            continue; /* asyncio's all_tasks: the tasks not done */
        seen++;
        if (fn(t, arg) != 0)
            break;
    }
    return (int)seen;
}

/* ---- one task: its state, what it waits on, its await chain ---- */

int coro_task_state(const coro_task *t)
{
    if (!t)
        return CORO_EINVAL;
    if (t->fut.state != FUT_PENDING)
        return CORO_TASK_DONE;
    if (t->fut.loop->current == t)
        return CORO_TASK_RUNNING;
    if (coro_task_cancelling((coro_task *)t) > 0)
        return CORO_TASK_CANCELLING;
    if (t->fut.tflags & TASK_F_WAITING)
        return CORO_TASK_WAITING;
    if (t->fut.tflags & TASK_F_SLEEPING)
        return CORO_TASK_SLEEPING;
    return CORO_TASK_SCHEDULED;
}

static void put_waits(coro__line *l, coro_task *t)
{
    char name[32];
    int64_t when;
    coro_loop *loop = t->fut.loop;
    if (t->fut.state != FUT_PENDING) {
        coro__line_put(l, t->fut.state == FUT_RESULT  ? "done (returned)"
                          : t->fut.state == FUT_ERROR ? "done (failed)"
                                                      : "done (cancelled)");
    } else if (t->fut.tflags & TASK_F_WAITING) {
        coro_future *f = t->u.w.waiter;
        unsigned kind = coro__future_kind(f);
        coro__line_put(l, "waiting on ");
        if (f->flags & FUT_F_TASK) {
            coro__line_put(l, "task ");
            coro__line_put(l, coro__task_name((coro_task *)(void *)f, name, sizeof name));
        } else if (kind == FUT_KIND_FD_READ || kind == FUT_KIND_FD_WRITE) {
            coro_fd *w = kind == FUT_KIND_FD_READ ? CORO__CONTAINER(f, coro_fd, rfut)
                                                  : CORO__CONTAINER(f, coro_fd, wfut);
            coro__line_put(l, "fd ");
            coro__line_put_int(l, w->fd);
            coro__line_put(l, kind == FUT_KIND_FD_READ ? " readable" : " writable");
        } else {
            coro__line_put(l, coro__future_kind_name(kind));
        }
    } else if (loop->current == t) {
        coro__line_put(l, "running");
    } else if ((t->fut.tflags & TASK_F_SLEEPING) && coro__timer_when(loop, &t->u.timer, &when)) {
        coro__line_put(l, "sleeping, wakes in ");
        coro__line_put_seconds(l, when - coro__now(loop));
        coro__line_put(l, " s");
    } else {
        coro__line_put(l, "scheduled (runs on the next pass)");
    }
}

int coro_task_describe_wait(coro_task *t, char *buf, size_t len)
{
    if (!t || !buf || len == 0)
        return CORO_EINVAL;
    coro__line l = { { 0 }, 0 };
    put_waits(&l, t);
    size_t n = l.len < len - 1 ? l.len : len - 1;
    memcpy(buf, l.buf, n);
    buf[n] = '\0';
    return 0;
}

#define CHAIN_MAX 256 /* deeper chains are cut (said so in the dump) */

int coro_task_get_stack(coro_task *t, coro_frame_visit_fn fn, void *arg)
{
    if (!t || !fn)
        return CORO_EINVAL;
    if (t->fut.state != FUT_PENDING || !t->fut.val.frame)
        return 0; /* a done task has no stack, as asyncio's */
    const coro_frame *chain[CHAIN_MAX];
    int depth = 0;
    for (const coro_frame *f = t->fut.val.frame; f && depth < CHAIN_MAX; f = f->parent)
        chain[depth++] = f;
    for (int i = depth - 1; i >= 0; i--) { /* from the root to the innermost */
        coro__frame_info info = coro__frame_describe((coro_frame *)chain[i]);
        fn(info.function, info.file, chain[i]->resume > 0 ? chain[i]->resume : 0, arg);
    }
    return depth;
}

/* ---- the dump ---- */

struct dump {
    coro_write_fn write;
    void *arg;
};

static void dump_line(struct dump *d, const char *line)
{
    if (d->write)
        d->write(line, d->arg);
    else
        coro_platform_write(line); /* the report hook: stderr, a UART, ... */
}

static void dump_frame(const char *function, const char *file, int line, void *arg)
{
    coro__line l = { { 0 }, 0 };
    coro__line_put(&l, "  ");
    coro__line_put(&l, function ? function : "?");
    coro__line_put(&l, " (");
    coro__line_put(&l, file ? file : "?");
    coro__line_put(&l, ":");
    coro__line_put_int(&l, line);
    coro__line_put(&l, ")");
    dump_line(arg, l.buf);
}

static int dump_task(coro_task *t, void *arg)
{
    struct dump *d = arg;
    char name[32];
    coro__line l = { { 0 }, 0 };
    /* Task-12 "conn 127.0.0.1:51234" waiting on fd 9 readable */
    coro__line_put(&l, "Task-");
    coro__line_put_int(&l, coro__task_number(t));
    const char *given = coro__task_name(t, name, sizeof name);
    if (strncmp(given, "Task-", 5) != 0 || strcmp(given + 5, l.buf + 5) != 0) {
        coro__line_put(&l, " \""); /* a name of its own */
        coro__line_put(&l, given);
        coro__line_put(&l, "\"");
    }
    coro__line_put(&l, coro_task_state(t) == CORO_TASK_CANCELLING ? " cancelling, " : " ");
    put_waits(&l, t);
    dump_line(d, l.buf);
    int depth = coro_task_get_stack(t, dump_frame, d);
    if (depth >= CHAIN_MAX)
        dump_line(d, "  ... (the chain goes deeper)");
    return 0;
}

int coro_task_dump(coro_task *t, coro_write_fn write, void *arg)
{
    if (!t)
        return CORO_EINVAL;
    struct dump d = { write, arg };
    return dump_task(t, &d);
}

int coro_loop_dump(coro_loop *loop, coro_write_fn write, void *arg)
{
    loop = coro__loop_or_running(loop);
    if (!loop)
        return CORO_EINVAL;
    struct dump d = { write, arg };
    coro__line l = { { 0 }, 0 };
    coro__line_put(&l, "coro: ");
    uint32_t live = 0;
    coro__tasks_list_all(loop);
    for (uint32_t i = 0; i < loop->ntasks; i++)
        live += loop->tasks[i]->fut.state == FUT_PENDING;
    coro__line_put_int(&l, live);
    coro__line_put(&l, live == 1 ? " task" : " tasks");
    if (loop->current) {
        char name[32];
        coro__line_put(&l, ", running: ");
        coro__line_put(&l, coro__task_name(loop->current, name, sizeof name));
    }
    dump_line(&d, l.buf);
    return coro_all_tasks(loop, dump_task, &d);
}
