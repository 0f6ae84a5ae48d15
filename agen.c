/*
 * agen.c - async generators (PEP 525): anext, asend, athrow, aclose, and
 * the finalisation CORO_ASYNC_FOR gives every loop.
 *
 * An async generator is a frame (coro_agen: a coro_frame flagged
 * CORO__F_AGEN, plus what its next resume receives) that the consumer
 * awaits again and again: each await pushes it on the consumer's chain as a
 * child (yield from), so its own awaits suspend the consumer's task, and a
 * CORO_YIELD takes it off again with the value (gen.c's driver calls
 * coro__agen_enter and coro__agen_leave for these frames only). The mapping
 * to CPython's Objects/genobject.c:
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

static coro_frame *agen_resume_with(coro_agen *g, coro_value v, uint8_t closing)
{
    if (!g)
        return NULL;
    g->send = v;
    g->closing = closing;
    return &g->co;
}

coro_frame *coro_anext(coro_agen *g) { return agen_resume_with(g, coro_none(), 0); }

coro_frame *coro_asend(coro_agen *g, coro_value v) { return agen_resume_with(g, v, 0); }

coro_frame *coro_athrow(coro_agen *g, int err)
{
    return agen_resume_with(g, coro_error(err < 0 ? err : CORO_EINVAL), 0);
}

coro_frame *coro_aclose(coro_agen *g) { return agen_resume_with(g, coro_error(CORO_EGENEXIT), 1); }

/* The generator will not run: finish it unrun (an athrow or aclose before
 * its first step), or tell the consumer it has finished already. */
static int agen_outcome_now(coro_agen *g, coro_value *io, coro_value outcome)
{
    g->co.resume = CORO__RS_DONE;
    g->closing = 0;
    *io = outcome;
    return 1;
}

int coro__agen_enter(coro_agen *g, coro_value *io)
{
    coro_value send = g->send;
    g->send = coro_none();
    if (g->co.resume == CORO__RS_DONE) /* finished: aclose is a no-op */
        return agen_outcome_now(g, io, g->closing ? coro_none() : coro_error(CORO_ESTOP));
    if (!agen_started(g) && send.tag == CORO_ERROR)
        return agen_outcome_now(g, io, g->closing ? coro_none() : send);
    if (!agen_started(g) && send.tag != CORO_NONE)
        return CORO_EINVAL; /* "can't send non-None value to a just-started async generator" */
    *io = agen_started(g) ? send : coro_none();
    return 0;
}

void coro__agen_leave(coro_agen *g, coro_value *io, int st)
{
    bool closing = g->closing;
    g->closing = 0;
    if (st == CORO__YIELD) {
        if (closing)
            *io = coro_error(CORO_ESTATE); /* "async generator ignored GeneratorExit" */
        return;
    }
    if (io->tag != CORO_ERROR) /* returned: StopAsyncIteration, or closed */
        *io = closing ? coro_none() : coro_error(CORO_ESTOP);
    else if (closing && io->u.i == CORO_EGENEXIT)
        *io = coro_none(); /* it let GeneratorExit through: closed */
}

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
