/*
 * gen.c - the frame driver (await = yield from) and generators on top of it.
 *
 * A chain of frames is driven from its innermost frame: a task (task.c) or a
 * generator consumer keeps a pointer to it and resumes it directly, so the
 * cost of a resume does not grow with the depth of the await chain. Each
 * step returns a status:
 *   CORO__CALL   await of a child frame: the child becomes the innermost frame
 *                and starts in the same step (yield from);
 *   CORO__DONE   the frame returned (or failed): its parent resumes in the same
 *                step with the outcome in *io (symmetric transfer); when the
 *                root returns, the driver's caller gets the outcome;
 *   CORO__YIELD, CORO__AWAIT, CORO__SLEEP, CORO__PASS (sleep(0))
 *                the chain suspends: the caller decides (a generator hands the
 *                value out; a task waits on the future or the timer, or steps
 *                again in the next pass).
 * Python's generator protocol (next/send/throw/close) sits on top.
 *
 * Faults of the program are caught, reported with the function and line,
 * and thrown in as CORO_ESTATE, never let through silently: a child frame
 * awaited again without being re-initialised (or awaited twice at once),
 * and a resume point the body's dispatch does not hold (coro__bad_resume,
 * called from CORO_END's default case: a suspension point inside a switch
 * of the body, in the switch form). A body names itself when asked
 * (coro__frame_describe): CORO_BEGIN answers the RS_INFO resume point.
 *
 * async with inside a body (CORO_WITH_*, coro_impl.h) keeps its open scopes
 * on a chain through the frame's `pending` word; the exit section of the
 * innermost one runs through coro__scope_exit / coro__scope_pop. An async
 * generator's frame (CORO__F_AGEN, agen.c) is the one frame awaited again
 * after it ran (by its anext frame, with what it is sent), and a
 * CORO_YIELD of it goes back to that frame; both only on paths a plain
 * frame never takes (a frame that is not fresh, a yield).
 *
 * Never: allocate (child frames live inside their parents), or resume a frame
 * that is already on a chain.
 */
#include "coro_int.h"

coro__frame_info coro__frame_describe(coro_frame *f)
{
    coro__frame_info info = { NULL, NULL };
    if (!f || !f->step)
        return info;
    int32_t resume = f->resume;
    uint8_t flags = f->flags;
    coro_value io;
    io.u.p = &info;
    io.tag = CORO_NONE;
    f->resume = CORO__RS_INFO;
    f->flags &= (uint8_t)~CORO__F_LABEL;
    f->step(f, &io);
    f->resume = resume;
    f->flags = flags;
    return info;
}

int coro__bad_resume(coro_frame *co, coro_value *io, const char *function, const char *file)
{
    const char *msg = co->resume == CORO__RS_DONE
                          ? "coroutine resumed after it finished"
                          : "coroutine resumed at a point its body does not hold "
                            "(a suspension point inside a switch?)";
    coro__report_frame(msg, CORO_ESTATE, co->resume > 0 ? co->resume : 0, function, file);
    *io = coro_error(CORO_ESTATE);
    if (co->flags & CORO__F_FINALLY) { /* inside the cleanup already: out */
        co->resume = CORO__RS_DONE;
        return CORO__DONE;
    }
    co->resume = CORO__RS_FINALLY; /* the cleanup section, or straight out */
    co->flags &= (uint8_t)~CORO__F_LABEL;
    return co->step(co, io);
}

/* An awaited child must be a fresh frame (asyncio: "cannot reuse already
 * awaited coroutine", "coroutine is being awaited already"). 0, CORO_EINVAL
 * for no frame, or CORO_ESTATE, reported at the parent's await line. */
static int check_child(coro_frame *parent, coro_frame *child, coro_value *io)
{
    if (!child || !child->step)
        return CORO_EINVAL;
    if (child->resume == 0 && !(child->flags & CORO__F_RUNNING)) {
        *io = coro_none();
        return 0;
    }
    if ((child->flags & (CORO__F_AGEN | CORO__F_RUNNING)) == CORO__F_AGEN) {
        *io = coro__agen_sent((coro_agen *)(void *)child); /* resumed at its yield */
        return 0;
    }
    coro__frame_info at = coro__frame_describe(parent);
    const char *msg = (child->flags & CORO__F_RUNNING)
                          ? "await of a child frame that is being awaited already"
                          : "await of a child frame that was not re-initialised "
                            "(call its init function before each await)";
    coro__report_frame(msg, CORO_ESTATE, parent->resume, at.function, at.file);
    return CORO_ESTATE;
}

int coro__drive_on(coro_frame **cur, coro_frame *f, coro_value *io, int st)
{
    for (;;) {
        if (st == CORO__CALL) {
            coro_frame *child = io->u.p;
            int bad = check_child(f, child, io);
            if (bad != 0) {
                *io = coro_error(bad); /* thrown back into the caller */
                st = f->step(f, io);
                continue;
            }
            child->parent = f;
            child->flags |= CORO__F_RUNNING;
            f = child;
            st = f->step(f, io);
            continue;
        }
        /* an async generator's yield goes back to its consumer's await (its
         * anext frame, agen.c), like a return that leaves it resumable */
        if (st != CORO__DONE && !(st == CORO__YIELD && (f->flags & CORO__F_AGEN) && f->parent)) {
            *cur = f;
            return st;
        }
        coro_frame *parent = f->parent;
        f->parent = NULL;
        f->flags &= (uint8_t)~CORO__F_RUNNING;
        if (!parent) {
            *cur = f;
            return CORO__DONE;
        }
        f = parent;
        st = f->step(f, io);
    }
}

int coro__drive(coro_frame **cur, coro_value *io)
{
    coro_frame *f = *cur;
    /* an error thrown into a frame that never ran fails it at once: the
     * body does not start (Python's throw into a new coroutine) */
    if (f->resume == 0 && io->tag == CORO_ERROR)
        return coro__drive_on(cur, f, io, CORO__DONE);
    return coro__drive_on(cur, f, io, f->step(f, io));
}

/* ---- async with inside a body: the frame's chain of open scopes ---- */

static coro__scope *innermost_scope(const coro_frame *co) { return (coro__scope *)co->pending.p; }

int coro__scope_exit(coro_frame *co, coro_value *io)
{
    coro__scope *s = innermost_scope(co);
    s->outcome = *io;
    return s->exit(s, io);
}

int coro__scope_pop(coro_frame *co, coro_value *io)
{
    coro__scope *s = innermost_scope(co);
    co->pending.i = s->prev;
    if (io->tag != CORO_ERROR)
        *io = s->outcome; /* an exit that raised nothing keeps the block's outcome */
    if (io->tag != CORO__FELL)
        return 1;
    *io = coro_none();
    return 0;
}

/* ---- generators ---- */

int coro_gen_init(coro_gen *g, coro_frame *root)
{
    if (!g || !coro__frame_fresh(root))
        return CORO_EINVAL;
    g->root = root;
    g->current = root;
    g->done = 0;
    g->running = 0;
    root->parent = NULL;
    root->flags |= CORO__F_RUNNING;
    return 0;
}

static bool not_started(const coro_gen *g) { return g->current == g->root && g->root->resume == 0; }

static int finish(coro_gen *g, coro_value *io, coro_value *out)
{
    g->done = 1;
    g->root->flags &= (uint8_t)~CORO__F_RUNNING;
    if (io->tag == CORO_ERROR)
        return (int)io->u.i;
    if (out)
        *out = *io;
    return 0;
}

/* After the innermost frame stepped with status st: follow the chain until
 * the generator yields or finishes (await and sleep are refused). */
int coro__gen_settle(coro_gen *g, coro_frame *f, coro_value *io, int st, coro_value *out)
{
    if (st != CORO__YIELD)
        st = coro__drive_on(&g->current, f, io, st);
    while (st != CORO__DONE && st != CORO__YIELD) {
        *io = coro_error(CORO_EINVAL); /* await/sleep: only a task can */
        st = coro__drive(&g->current, io);
    }
    g->running = 0;
    if (st == CORO__DONE)
        return finish(g, io, out);
    if (out)
        *out = *io;
    return 1;
}

/* Every resume but the hot one (coro_impl.h's coro__gen_next). */
int coro__gen_resume(coro_gen *g, coro_value in, coro_value *out)
{
    if (!g || !g->current)
        return CORO_EINVAL;
    if (g->done)
        return CORO_ESTATE;
    if (g->running)
        return CORO_EINVAL; /* ValueError: generator already executing */
    coro_value io = in;
    coro_frame *f = g->current;
    g->running = 1;
    if (f->resume == 0) /* not started: a thrown error fails it unrun */
        return coro__gen_settle(g, f, &io, coro__drive(&g->current, &io), out);
    return coro__gen_settle(g, f, &io, f->step(f, &io), out);
}

int coro_gen_send(coro_gen *g, coro_value send, coro_value *out)
{
    if (g && g->current && not_started(g))
        send = coro_none(); /* the first resume receives nothing */
    return coro__gen_resume(g, send, out);
}

int(coro_gen_next)(coro_gen *g, coro_value *out) { return coro__gen_next(g, out); }

int coro_gen_throw(coro_gen *g, int err, coro_value *out)
{
    if (!g || !g->current || err >= 0)
        return CORO_EINVAL;
    return coro__gen_resume(g, coro_error(err), out); /* an unstarted body never runs */
}

int coro_gen_close(coro_gen *g)
{
    if (!g || !g->current || g->running)
        return CORO_EINVAL;
    if (g->done)
        return 0;
    int rc = coro_gen_throw(g, CORO_ECANCELLED, NULL);
    if (rc == 1)
        return CORO_ESTATE; /* it yielded again: it ignored the close */
    return rc == CORO_ECANCELLED ? 0 : rc;
}
