/*
 * agen.c - async generators (PEP 525): anext, asend, athrow, aclose, and
 * the finalisation CORO_ASYNC_FOR gives every loop.
 *
 * An async generator is a frame (coro_agen: a coro_frame flagged
 * CORO__F_AGEN, plus what its next resume receives) that the consumer
 * awaits again and again: each await is of a small frame (`op`, what
 * coro_anext and the others return) that pushes the generator on the
 * consumer's chain as its child (yield from), so its own awaits suspend
 * the consumer's task, and a CORO_YIELD takes it off again with the value
 * (gen.c's driver does both only on paths a plain frame never takes: the
 * await of a frame that is not fresh, and a yield). The op frame turns the
 * outcome into asyncio's. The mapping to CPython's Objects/genobject.c:
 *   async_gen_asend (anext, asend)      coro_anext, coro_asend
 *   async_gen_athrow (athrow, aclose)   coro_athrow, coro_aclose (the
 *                                        thrown GeneratorExit is
 *                                        CORO_EGENEXIT; `closing` is
 *                                        athrow's "is aclose" flag)
 *   StopAsyncIteration                  CORO_ESTOP, made from the body's return
 *   shutdown_asyncgens / aclosing()     CORO_ASYNC_FOR's exit: agen_for_exit
 *
 * Never: allocate, or run the generator anywhere but inside the consumer's
 * await.
 */
#include "coro_int.h"

static bool agen_started(const coro_agen *g) { return g->co.resume != 0; }

int coro_agen_done(const coro_agen *g) { return g && g->co.resume == CORO__RS_DONE; }

coro_value coro__agen_sent(coro_agen *g)
{
    coro_value v = g->send;
    g->send = coro_none();
    return v;
}

/* Nothing runs: a finished generator (aclose is a no-op, the rest is
 * StopAsyncIteration), an athrow or aclose before its first step (it is
 * finished unrun), a non-None asend before it. 1 with *io the outcome. */
static int agen_settled_at_once(coro_agen *g, coro_value *io)
{
    coro_value send = g->send;
    if (coro_agen_done(g)) {
        *io = g->closing ? coro_none() : coro_error(CORO_ESTOP);
    } else if (!agen_started(g) && send.tag == CORO_ERROR) {
        g->co.resume = CORO__RS_DONE;
        *io = g->closing ? coro_none() : send;
    } else if (!agen_started(g) && send.tag != CORO_NONE) {
        *io = coro_error(CORO_EINVAL); /* "can't send non-None value to a just-started async generator" */
    } else {
        return 0;
    }
    g->send = coro_none();
    g->closing = 0;
    return 1;
}

/* The generator stopped: at a yield (*io its value) or finished (*io its
 * outcome). What the consumer's await receives. */
static void agen_outcome(coro_agen *g, coro_value *io)
{
    bool closing = g->closing;
    g->closing = 0;
    if (!coro_agen_done(g)) { /* it yielded */
        if (closing)
            *io = coro_error(CORO_ESTATE); /* "async generator ignored GeneratorExit" */
        return;
    }
    if (io->tag != CORO_ERROR) /* returned: StopAsyncIteration, or closed */
        *io = closing ? coro_none() : coro_error(CORO_ESTOP);
    else if (closing && io->u.i == CORO_EGENEXIT)
        *io = coro_none(); /* it let GeneratorExit through: closed */
}

/* The frame every anext/asend/athrow/aclose returns: one resume of the
 * generator (async_gen_asend / async_gen_athrow's send). */
static CORO_FN(agen_op_step)
{
    coro_agen *g = CORO__CONTAINER(co, coro_agen, op);
    CORO_BEGIN();
    if (agen_settled_at_once(g, io))
        CORO_RETURN(*io);
    if (coro__await_frame(&g->co, io)) /* yield from the generator */
        CORO__SUSPEND(io->tag);
    agen_outcome(g, io);
    CORO_RETURN(*io);
    CORO_END();
}

static coro_frame *agen_resume_with(coro_agen *g, coro_value v, uint8_t closing)
{
    if (!g)
        return NULL;
    if (g->op.flags & CORO__F_RUNNING)
        return &g->op; /* another await runs it: that await fails, reported */
    g->send = v;
    g->closing = closing;
    coro_frame_init(&g->op, agen_op_step);
    return &g->op;
}

coro_frame *coro_anext(coro_agen *g) { return agen_resume_with(g, coro_none(), 0); }

coro_frame *coro_asend(coro_agen *g, coro_value v) { return agen_resume_with(g, v, 0); }

coro_frame *coro_athrow(coro_agen *g, int err)
{
    return agen_resume_with(g, coro_error(err < 0 ? err : CORO_EINVAL), 0);
}

coro_frame *coro_aclose(coro_agen *g) { return agen_resume_with(g, coro_error(CORO_EGENEXIT), 1); }

/* CORO_ASYNC_FOR's exit: a generator left unfinished is closed, in the
 * consumer's task, before the loop is left. */
static int agen_for_exit(coro__scope *s, coro_value *io)
{
    coro_agen *g = CORO__CONTAINER(s, coro_agen, scope);
    if (!agen_started(g) || coro_agen_done(g)) {
        *io = s->outcome;
        return 0;
    }
    io->u.p = coro_aclose(g);
    io->tag = CORO__CALL;
    return 1;
}

int coro__agen_for_open(coro_frame *co, coro_agen *g)
{
    if (!g)
        return CORO_EINVAL;
    g->scope.exit = agen_for_exit;
    coro__scope_push(co, &g->scope);
    return 0;
}

/* At the top of each pass no other scope of the body is open: the
 * innermost one is the loop's. */
coro_frame *coro__agen_for_next(coro_frame *co)
{
    return coro_anext(CORO__CONTAINER(co->pending.p, coro_agen, scope));
}
