/*
 * coro_impl.h - part of coro.h: how it works. The private layouts of the
 * types coro.h declares, and the machinery behind its macros.
 *
 * Included by coro.h after the public API; users include coro.h only and
 * never touch what is here (fields may change without notice). The layouts
 * are visible only so that every object can live in caller-owned storage
 * (a frame field, a stack variable, a static) with no allocation.
 *
 * The macro core is protothreads' local continuation, grown up: the resume
 * point is a `case __LINE__:` of one switch (or, with CORO_LABELS, a
 * GCC/clang label address kept as an offset), and every suspension point
 * stores it and returns a status to the driver (gen.c). The WARNING block
 * at the top of coro.h states the limits that follow from it.
 */
#ifndef CORO_IMPL_H
#define CORO_IMPL_H

/* ------------------------------------------------------------------------ */
/* Frames: the header, the statuses, the macro core                         */
/* ------------------------------------------------------------------------ */

/* The frame header. Embed it as the FIRST member of your frame struct. */
struct coro_frame {
    coro_step_fn step;  /* private: the body */
    coro_frame *parent; /* private: who awaits this frame (yield from) */
    int32_t resume;     /* read-only: the resume point, the source line of the
                           suspension point it waits at (0 = not started) */
    uint8_t flags;      /* private */
    uint8_t ptag;       /* private: outcome kept while CORO_FINALLY runs */
    uint16_t size8;     /* private: size / 8 (rounded up) when from coro_frame_new */
    union {
        int64_t i;
        double d;
        void *p;
    } pending; /* private */
#ifdef CORO_LABELS
    int32_t label; /* private: the resume label, as its distance from the
                      body's dispatch label (the header is 40 bytes then) */
#endif
};

/* Step statuses (internal, but visible to the macros). */
enum { CORO__DONE = 0, CORO__YIELD, CORO__AWAIT, CORO__CALL, CORO__SLEEP, CORO__PASS };
/* Special resume points. */
#define CORO__RS_FINALLY (-1)
#define CORO__RS_DONE (-2)
#define CORO__RS_INFO (-3) /* a query: the body names itself (coro__frame_describe) */
/* Frame flags. */
#define CORO__F_FINALLY 0x01u /* inside the cleanup section */
#define CORO__F_LABEL 0x02u   /* resume holds a label offset (CORO_LABELS) */
#define CORO__F_OWNED 0x04u   /* allocated by coro_frame_new */
#define CORO__F_RUNNING 0x08u /* on some driver's chain */
#define CORO__F_AGEN 0x10u    /* an async generator's frame (coro_agen) */
#define CORO__F_INSIDE 0x20u  /* a task's root, in the task's own allocation (coro_spawn_new) */

static inline void coro_frame_init(coro_frame *co, coro_step_fn step)
{
    co->step = step;
    co->parent = NULL;
    co->resume = 0;
    co->flags = 0;
    co->ptag = CORO_NONE;
    co->size8 = 0;
    co->pending.i = 0;
#ifdef CORO_LABELS
    co->label = 0;
#endif
}
#ifdef CORO_LABELS
#define CORO__FRAME_INIT(step) { (step), NULL, 0, 0, CORO_NONE, 0, { 0 }, 0 }
#else
#define CORO__FRAME_INIT(step) { (step), NULL, 0, 0, CORO_NONE, 0, { 0 } }
#endif

/* Internal, called by CORO_BEGIN / CORO_END (see gen.c). */
typedef struct coro__frame_info {
    const char *function; /* the step function's name (__func__) */
    const char *file;     /* its source file (__FILE__) */
} coro__frame_info;
static inline void coro__describe(coro_value *io, const char *function, const char *file)
{
    coro__frame_info *info = (coro__frame_info *)io->u.p;
    info->function = function;
    info->file = file;
}
/* Report a resume point the body does not hold and fail the frame with
 * CORO_ESTATE through its cleanup section (a tail call: the hot path of a
 * body keeps no stack frame for it). */
int coro__bad_resume(coro_frame *co, coro_value *io, const char *function, const char *file);


#if defined(__GNUC__) || defined(__clang__)
#define CORO__FALLTHROUGH __attribute__((fallthrough))
#else
#define CORO__FALLTHROUGH ((void)0)
#endif
#define CORO__CAT2(a, b) a##b
#define CORO__CAT(a, b) CORO__CAT2(a, b)

/* Layout hints for the code the macros expand to, so a step's common case
 * is a straight line: a suspension is the likely path out of the code
 * before it (GCC's hot label; clang has none), an error thrown in at a
 * resume the unlikely one. */
#if defined(__GNUC__) && !defined(__clang__)
#define CORO__HOT_PATH() CORO__CAT(coro__H, __LINE__) : __attribute__((hot, unused))
#else
#define CORO__HOT_PATH() ((void)0)
#endif
#if defined(__GNUC__) || defined(__clang__)
#define CORO__RARELY(x) __builtin_expect(!!(x), 0)
#else
#define CORO__RARELY(x) (x)
#endif

#ifdef CORO_LABELS
/* labels-as-values: `label` holds the distance from coro__dispatch to the
 * resume label (resume still holds its line, for reports), so a suspension
 * point may sit inside a switch of the body. */
#define CORO__PEDANTIC_OFF                                                      \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wpedantic\"")
#define CORO__PEDANTIC_ON _Pragma("GCC diagnostic pop")
#define CORO__JUMP_LABEL()                                                      \
    if (co->flags & CORO__F_LABEL) {                                            \
        co->flags &= (uint8_t)~CORO__F_LABEL;                                   \
        goto *((char *)&&coro__dispatch + co->label);                           \
    }
#define CORO__SUSPEND(st)                                                       \
    do {                                                                        \
        CORO__HOT_PATH();                                                       \
        co->label = (int32_t)((char *)&&CORO__CAT(coro__L, __LINE__) -          \
                              (char *)&&coro__dispatch);                        \
        co->resume = __LINE__;                                                  \
        co->flags |= CORO__F_LABEL;                                             \
        return (st);                                                            \
        CORO__CAT(coro__L, __LINE__):;                                          \
    } while (0)
#else
#define CORO__PEDANTIC_OFF
#define CORO__PEDANTIC_ON
#define CORO__JUMP_LABEL()
#define CORO__SUSPEND(st)                                                       \
    do {                                                                        \
        CORO__HOT_PATH();                                                       \
        co->resume = __LINE__;                                                  \
        return (st);                                                            \
        case __LINE__:;                                                         \
    } while (0)
#endif

/* Leave the body with the outcome already in *io: through the cleanup
 * section if there is one; straight out when already inside it. */
/* try/except (CORO_TRY): the handler of the innermost try block around a
 * given point of the body, known at compile time: 0 outside any, and each
 * CORO_TRY shadows it in its own block with its except section's resume
 * point (its line, negated, below the special resume points). So a frame
 * keeps no field for it, and a leave outside any try costs nothing. */
enum { coro__try_here = 0 };
/* async with (CORO_WITH_*): the same for the innermost open scope, whose
 * exit must run however the body leaves it (a return too, not only an
 * error). Inside a scope both name its exit section; a try inside a scope
 * shadows coro__try_here only. */
enum { coro__exit_here = 0 };

/* Leave with the outcome in *io: an error inside a try block goes to its
 * except section; any outcome inside an open scope goes to the scope's
 * exit section; else through the cleanup section if there is one, or
 * straight out when already inside it. Outside every try and scope the
 * first two tests are constant and compile to nothing. */
#define CORO__LEAVE()                                                           \
    do {                                                                        \
        if (coro__try_here != 0 && io->tag == CORO_ERROR) {                     \
            co->resume = coro__try_here;                                        \
            goto coro__dispatch;                                                \
        }                                                                       \
        if (coro__exit_here != 0) {                                             \
            co->resume = coro__exit_here;                                       \
            goto coro__dispatch;                                                \
        }                                                                       \
        if (co->flags & CORO__F_FINALLY) {                                      \
            co->resume = CORO__RS_DONE;                                         \
            return CORO__DONE;                                                  \
        }                                                                       \
        co->resume = CORO__RS_FINALLY;                                          \
        goto coro__dispatch;                                                    \
    } while (0)

#define CORO__PUT(v)                                                            \
    do {                                                                        \
        coro_value coro__v = (v);                                               \
        *io = coro__v;                                                          \
    } while (0)

/* Propagate an error the suspension point received, like an exception. */
#define CORO__CHECK()                                                           \
    do {                                                                        \
        if (CORO__RARELY(io->tag == CORO_ERROR))                                \
            CORO__LEAVE();                                                      \
    } while (0)

/* try: a block whose try part sees this try's handler, then (EXCEPT) the
 * except section, entered only through its case label, and seeing the
 * enclosing handler again. */
#if defined(__GNUC__) || defined(__clang__)
#define CORO__SHADOW_OFF                                                        \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wshadow\"")
#define CORO__SHADOW_ON _Pragma("GCC diagnostic pop")
#else
#define CORO__SHADOW_OFF
#define CORO__SHADOW_ON
#endif
#define CORO__TRY_IMPL()                                                        \
    {                                                                           \
        CORO__SHADOW_OFF /* the shadowing is the point */                       \
        enum { coro__try_this = -(__LINE__)-8 };                                \
        CORO__SHADOW_ON                                                         \
        {                                                                       \
            CORO__SHADOW_OFF                                                    \
            enum { coro__try_here = coro__try_this };                           \
            CORO__SHADOW_ON
#define CORO__EXCEPT_IMPL(err)                                                  \
        }                                                                       \
        if (0) {                                                                \
        case coro__try_this:                                                    \
            (err) = coro_value_error(*io);                                      \
            *io = coro_none();                                                  \
            {
#define CORO__TRY_END_IMPL()                                                    \
            }                                                                   \
        }                                                                       \
    }

/* async with, inside one body. An open scope's header, embedded in its
 * operation (coro_timeout_op, coro_with_lock_op, ...; private). The open
 * scopes of a frame form a chain through the header's `pending` word,
 * which nothing else uses while the body runs (inside CORO_FINALLY it holds
 * the outcome: a scope opened there keeps it in `prev` and gives it back).
 * So a frame keeps no field for its scopes either. */
typedef struct coro__scope {
    int64_t prev;       /* the frame's pending word before the scope opened */
    coro_value outcome; /* how the block ended (CORO__FELL: off its end) */
    /* __aexit__: with s->outcome set, either set *io (to s->outcome, or an
     * error that replaces it) and return 0, or put a frame to await in *io
     * (CORO__CALL) and return 1; that frame's error, if it fails, replaces
     * the block's outcome too. */
    int (*exit)(struct coro__scope *s, coro_value *io);
} coro__scope;
/* The tag of an outcome that is no outcome: the block ran off its end (or
 * left it by break/continue), and the body goes on after CORO_WITH_END. */
#define CORO__FELL 100
static inline void coro__scope_push(coro_frame *co, coro__scope *s)
{
    s->prev = co->pending.i;
    co->pending.i = 0;
    co->pending.p = s;
}
/* Entering the exit section with the block's outcome in *io. */
int coro__scope_exit(coro_frame *co, coro_value *io);
/* After the exit: close the scope; 1 if the body must go on leaving with
 * *io (a return, an error), 0 if it goes on after the block. */
int coro__scope_pop(coro_frame *co, coro_value *io);

/* Open a scope whose __aenter__ succeeded: push it, then run the block
 * in a do-while, with the handlers naming this scope's exit section. For
 * a `with` the loop runs once (a break or continue ends the block, not
 * more); for an `async for` it loops (coro__with_loops). */
#define CORO__SCOPE_OPEN(push, loops)                                           \
    {                                                                           \
        CORO__SHADOW_OFF                                                        \
        enum { coro__with_this = -(__LINE__)-8, coro__with_loops = (loops) };   \
        CORO__SHADOW_ON                                                         \
        push;                                                                   \
        do {                                                                    \
            CORO__SHADOW_OFF                                                    \
            enum { coro__try_here = coro__with_this,                            \
                   coro__exit_here = coro__with_this };                         \
            CORO__SHADOW_ON
#define CORO__WITH_OPEN(s) CORO__SCOPE_OPEN(coro__scope_push(co, (s)), 0)
/* async for: a scope (its exit closes the generator) whose block first
 * awaits the next value; exhaustion ends the loop like a break. `g` is
 * evaluated once (it is often an init call: async for x in ticker(3)):
 * the entry pushes its scope, and each pass finds the generator there. */
#define CORO__ASYNC_FOR_IMPL(g, var)                                            \
    CORO__RAISE_IF(coro__agen_for_open(co, (g)));                               \
    CORO__SCOPE_OPEN((void)0, 1)                                                \
            if (coro__await_frame(coro__agen_for_next(co), io))                 \
                CORO__SUSPEND(io->tag);                                         \
            if (io->tag == CORO_ERROR && io->u.i == CORO_ESTOP)                 \
                break;                                                          \
            CORO__CHECK();                                                      \
            (var) = *io;
/* The exit section: entered by running off the block or through a leave;
 * may await (a task group waits for its children here). */
#define CORO__WITH_END_IMPL()                                                   \
        } while (coro__with_loops);                                             \
        io->u.i = 0;                                                            \
        io->tag = CORO__FELL;                                                   \
        CORO__FALLTHROUGH;                                                      \
    case coro__with_this:                                                       \
        if (coro__scope_exit(co, io))                                           \
            CORO__SUSPEND(io->tag);                                             \
        if (coro__scope_pop(co, io))                                            \
            CORO__LEAVE();                                                      \
    }
/* An __aenter__ that failed (or an error at its await): raise it in the
 * enclosing handler, the scope never opened. */
#define CORO__RAISE_IF(expr)                                                    \
    do {                                                                        \
        int coro__e = (expr);                                                   \
        if (coro__e != 0) {                                                     \
            *io = coro_error(coro__e);                                          \
            CORO__LEAVE();                                                      \
        }                                                                       \
    } while (0)

#define CORO__BEGIN_IMPL()                                                            \
    CORO__PEDANTIC_OFF                                                          \
    coro__dispatch:                                                             \
    CORO__JUMP_LABEL()                                                          \
    switch (co->resume) {                                                       \
    case CORO__RS_INFO:                                                         \
        coro__describe(io, __func__, __FILE__);                                 \
        return CORO__DONE;                                                      \
    case 0:

#define CORO__FINALLY_IMPL                                                            \
    *io = coro_none();                                                          \
    CORO__FALLTHROUGH;                                                          \
    case CORO__RS_FINALLY:                                                      \
        co->pending.i = io->u.i;                                                \
        co->ptag = (uint8_t)io->tag;                                            \
        co->flags |= CORO__F_FINALLY;

#define CORO__END_IMPL()                                                              \
    if (co->flags & CORO__F_FINALLY) {                                          \
        io->u.i = co->pending.i;                                                \
        io->tag = co->ptag;                                                     \
    } else {                                                                    \
        *io = coro_none();                                                      \
    }                                                                           \
    break;                                                                      \
    default:                                                                    \
        if (co->resume != CORO__RS_FINALLY)                                     \
            return coro__bad_resume(co, io, __func__, __FILE__);                \
        if (0)                                                                  \
            goto coro__dispatch;                                                \
        break;                                                                  \
    }                                                                           \
    co->resume = CORO__RS_DONE;                                                 \
    return CORO__DONE;                                                          \
    CORO__PEDANTIC_ON

#define CORO__RETURN_IMPL(v)                                                          \
    do {                                                                        \
        CORO__PUT(v);                                                           \
        CORO__LEAVE();                                                          \
    } while (0)

#define CORO__YIELD_IMPL(v)                                                           \
    do {                                                                        \
        CORO__PUT(v);                                                           \
        CORO__SUSPEND(CORO__YIELD);                                             \
        CORO__CHECK();                                                          \
    } while (0)

#define CORO__AWAIT_IMPL(x)                                                           \
    do {                                                                        \
        if (CORO__AWAIT_START(x))                                               \
            CORO__SUSPEND(io->tag);                                             \
        CORO__CHECK();                                                          \
    } while (0)

#define CORO__AWAIT_ERR_IMPL(x, err)                                                  \
    do {                                                                        \
        if (CORO__AWAIT_START(x))                                               \
            CORO__SUSPEND(io->tag);                                             \
        (err) = coro_value_error(*io);                                          \
    } while (0)

/* sleep(s): CORO__SLEEP with the delay in io->u.i (the tag is not read),
 * or for s <= 0 CORO__PASS, one loop pass, with nothing stored (a constant
 * 0 folds to that alone). */
static inline int coro__sleep_status(coro_value *io, int64_t ns)
{
    if (ns <= 0)
        return CORO__PASS;
    io->u.i = ns;
    return CORO__SLEEP;
}
#define CORO__SLEEP_NS_IMPL(ns)                                                       \
    do {                                                                        \
        CORO__SUSPEND(coro__sleep_status(io, (ns)));                            \
        CORO__CHECK();                                                          \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Generators, the loop, handles                                            */
/* ------------------------------------------------------------------------ */

struct coro_gen {
    coro_frame *root;    /* private */
    coro_frame *current; /* private: innermost frame (yield from) */
    int done;            /* read-only: 1 once the generator finished */
    int running;         /* private: inside send/throw (no re-entry) */
};

/* coro_gen_next's hot case, inline as a C++ handle.resume() is: a started,
 * idle generator whose step yields costs one test, the step call and the
 * copy of its value. Everything else (first resume, return, failure, an
 * await refused, re-entry) is gen.c's coro__gen_settle / coro__gen_resume. */
int coro__gen_resume(coro_gen *g, coro_value in, coro_value *out);
int coro__gen_settle(coro_gen *g, coro_frame *f, coro_value *io, int st, coro_value *out);
static inline int coro__gen_next(coro_gen *g, coro_value *out)
{
    coro_frame *f;
    if (!g || (g->running | g->done) || !(f = g->current) || f->resume == 0)
        return coro__gen_resume(g, coro_none(), out);
    coro_value io = coro_none();
    g->running = 1;
    int st = f->step(f, &io);
    if (st != CORO__YIELD)
        return coro__gen_settle(g, f, &io, st, out);
    g->running = 0;
    if (out) { /* field by field: a 16-byte copy of what the step just
                  stored as 8 + 4 bytes would stall on store forwarding */
        out->u = io.u;
        out->tag = io.tag;
    }
    return 1;
}
#define coro_gen_next(g, out) coro__gen_next((g), (out))

/* An async generator's frame header (coro.h's coro_agen). */
struct coro_agen {
    coro_frame co;       /* private: the body, flagged CORO__F_AGEN */
    coro_frame op;       /* private: the frame anext/asend/athrow/aclose return */
    coro_value send;     /* private: what its next resume receives */
    coro__scope scope;   /* private: CORO_ASYNC_FOR's (its exit closes) */
    uint8_t closing;     /* private: an aclose is running it */
};
static inline void coro_agen_init(coro_agen *g, coro_step_fn step)
{
    if (!g)
        return;
    coro_frame_init(&g->co, step);
    g->co.flags = CORO__F_AGEN;
    coro_frame_init(&g->op, 0);
    g->send.u.i = 0;
    g->send.tag = CORO_NONE;
    g->closing = 0;
    g->scope.exit = 0;
}
/* Internal: CORO_ASYNC_FOR's entry (0 with the loop's scope pushed on
 * `co`, or CORO_EINVAL for NULL), and each pass's anext. */
int coro__agen_for_open(coro_frame *co, coro_agen *g);
coro_frame *coro__agen_for_next(coro_frame *co);

/* The intrusive node of every queue the loop runs (private). */
typedef struct coro__node {
    struct coro__node *next;
    union {
        void (*run)(struct coro__node *n);
        struct coro__node *prev; /* a far timer's link back instead (heap.c) */
    };
} coro__node;

/* A timer's place in the loop's heap (private). */
typedef struct coro__timer {
    coro__node node;
    uint32_t heap_index;
    uint32_t seq;
} coro__timer;

/* A post from an interrupt handler or another thread (coro_isr_node). */
struct coro_isr_node {
    struct coro_isr_node *next;
    coro_callback fn;
    void *arg;
    int queued; /* atomic: 1 from the post until its callback starts */
};

/* A scheduled callback (coro_handle). */
struct coro_handle {
    coro__timer t;
    coro_loop *loop;
    coro_callback fn;
    void *arg;
    unsigned flags;
};

/* The loop. Allocate it anywhere; all fields private. */
struct coro_loop {
    coro_alloc_fn alloc;
    void *alloc_ud;
    coro__node *ready_head;              /* the FIFO of callbacks */
    coro__node **ready_tail;             /* its last node's next link (&ready_head: empty) */
    coro__node *pass_head;               /* the running pass's batch, still to run */
    struct coro__heap_entry *heap;       /* timers: array-backed min-heap */
    uint32_t heap_len, heap_cap, heap_dead;
    uint32_t timer_seq;
    uint32_t far_len, far_cap;           /* timers far ahead: their buckets (heap.c) */
    uint32_t far_timers;                 /* how many timers wait in them */
    struct coro__far **far;              /* sorted by deadline, the latest first */
    void (*far_runs[2])(coro__node *);   /* the run callbacks a far timer may have */
    int64_t heap_now;                    /* the clock at the last run_due (0: not yet) */
    void *selector;                      /* the backend's private state */
    unsigned nwatched;                   /* fds registered with the selector */
    coro_task **tasks;                   /* the listed tasks (task.c: listed lazily) */
    uint32_t *task_numbers;              /* a listed pending task's number, by index */
    uint32_t ntasks, tasks_cap;
    uint32_t tasks_unlisted;             /* tasks not done and not listed: their room is kept */
    uint32_t tasks_alive;                /* spawned tasks not freed yet (tests, benchmarks) */
    uint32_t task_counter;               /* for default names Task-N */
    struct coro__name *names;            /* tasks given a name */
    coro_task *current;                  /* the running task, or NULL */
    void *slab;                          /* small-object pool */
    uint64_t slab_allocs;                /* objects handed out (tests, benchmarks) */
    void *threads;                       /* thread.c's state (wake-up fd, pool), or NULL */
    void (*threads_fini)(coro_loop *);   /* called by coro_loop_close when set */
    struct coro_isr_node *posts;         /* coro_call_soon_isr's stack, newest first (atomic) */
    void (*wake)(coro_loop *);           /* wakes the selector's wait (thread.c), atomic */
    coro_exception_handler on_error;
    void *on_error_arg;
    int64_t slow_ns;
    int state;                           /* closed / idle / running */
    uint8_t attn;                        /* CORO__ATTN_*: the pass's end has work (stop, trace) */
    uint8_t debug;                       /* asyncio's debug mode */
    uint8_t trace;                       /* trace mode (trace.c) */
    uint8_t watch;                       /* debug || trace: a step takes the slow path */
    uint8_t phase;                       /* CORO__PHASE_*: polling, or running callbacks */
    int64_t vnow;                        /* virtual time: the clock; 0: the real clock */
#if CORO_HOSTED
    struct coro__tracer *tracer;         /* trace.c's state, or NULL (no trace on bare metal) */
#endif
    struct coro_timeout_op *unarmed;     /* timeout scopes not armed yet (group.c) */
};

/* ------------------------------------------------------------------------ */
/* Futures and tasks                                                        */
/* ------------------------------------------------------------------------ */

/* A done callback's node, when the caller owns it (all fields private). */
struct coro_done_node {
    coro__node node;
    coro_done_fn fn;
    void *arg;
    coro_future *fut;
    unsigned flags;
};

/* A future: pending, done with a result or an error, or cancelled. All
 * fields private. */
struct coro_future {
    coro_loop *loop;
    coro__node *callbacks; /* done callbacks, newest first until completion */
    union {
        int64_t i;
        double d;
        void *p;
        int (*cancel_hook)(coro_future *); /* pending, FUT_T_CANCEL_HOOK */
        struct coro_frame *frame;          /* a pending task: its innermost frame */
    } val;
    uint8_t state;   /* pending / result / error / cancelled */
    uint8_t tag;     /* the result's tag (a pending task: its cancel count's top) */
    uint8_t flags;   /* retrieved, is-task, allocated, ... */
    uint8_t tflags;  /* task flags; a plain future's cancel hook */
    uint32_t aux;    /* task: its number, or its index in the loop's task list */
};

/* Internal: the await protocol the macros use. */
int coro__await_future(coro_future *f, coro_value *io);
int coro__await_task(coro_task *t, coro_value *io);
static inline int coro__await_frame(coro_frame *f, coro_value *io)
{
    io->u.p = f;
    io->tag = CORO__CALL;
    return 1;
}
#define CORO__AWAIT_START(x)                                                    \
    _Generic((x), coro_future *: coro__await_future, coro_task *: coro__await_task, \
             coro_frame *: coro__await_frame)((x), io)

/* The one conversion of seconds (a double, as asyncio takes them) to
 * nanoseconds, rounded to the nearest: NaN is 0, beyond +-9.2e9 s clamps to
 * +-INT64_MAX (INT64_MAX: never). A sleep of 0 or less is one loop pass;
 * a deadline in the past is overdue. */
static inline int64_t coro__seconds_to_ns(double s)
{
    if (s != s)
        return 0;
    if (s >= 9.2e9)
        return INT64_MAX;
    if (s <= -9.2e9)
        return -INT64_MAX;
    return (int64_t)(s * 1e9 + (s < 0 ? -0.5 : 0.5));
}
/* The deadline `ns` after `now`, saturating: INT64_MAX stays "never", and
 * far in the past stays INT64_MIN / 2 (still ordered, never overflowing). */
static inline int64_t coro__deadline_after(int64_t now, int64_t ns)
{
    if (ns == INT64_MAX || (ns > 0 && now > INT64_MAX - ns))
        return INT64_MAX;
    if (ns < 0 && now < INT64_MIN / 2 - ns)
        return INT64_MIN / 2;
    return now + ns;
}

/* A task. All fields private. While it is pending its future's value is
 * the innermost frame of its await chain (fut.val.frame): a result exists
 * only once it is done. */
struct coro_task {
    coro_future fut; /* a task IS a future */
    union {
        coro__timer timer; /* while sleeping: the task is its own timer */
        struct {
            coro__node node;     /* while waiting: its node on the future */
            coro_future *waiter; /* the future it waits on */
        } w;
    } u;
};

static inline coro_future *coro_task_future(coro_task *t) { return t ? &t->fut : NULL; }

/* ------------------------------------------------------------------------ */
/* Waiters: how every primitive parks a task without allocating             */
/* ------------------------------------------------------------------------ */


/* The one intrusive doubly linked list every module uses (private; its
 * operations are in coro_int.h): a link embedded in the element, a list
 * that holds its first and last link, NULL-terminated both ways, so an
 * empty list is all zeroes and may be moved or copied. */
typedef struct coro__link {
    struct coro__link *prev, *next;
} coro__link;
typedef struct coro__list {
    coro__link *first, *last;
} coro__list;

/* A future some task awaits, linked on a primitive's FIFO of waiters.
 * Embedded in the operation frames below (coro_lock_acquire_op, ...), so a
 * wait allocates nothing. All fields private. */
typedef struct coro_waiter {
    coro_future fut;
    coro__link link;
    struct coro_waitq *q; /* the queue it is on, or NULL */
} coro_waiter;

/* A FIFO of waiters (asyncio's collections.deque of futures). Private. */
typedef struct coro_waitq {
    coro__list list;
} coro_waitq;

/* A watched fd. */
struct coro_fd {
    coro_loop *loop;
    int fd;
    unsigned armed;     /* directions registered with the selector */
    unsigned wanted;    /* directions someone waits for */
    coro_future rfut;   /* completes when readable */
    coro_future wfut;   /* completes when writable */
};

/* ------------------------------------------------------------------------ */
/* The floating-point conveniences: inline, so a program that never calls  */
/* them (a microcontroller's) links no floating point                      */
/* ------------------------------------------------------------------------ */

static inline double coro_loop_time(const coro_loop *loop)
{
    return (double)coro_loop_time_ns(loop) / 1e9;
}

static inline int coro_call_later(coro_loop *loop, coro_handle *h, double delay, coro_callback fn,
                                  void *arg)
{
    if (delay != delay)
        return CORO_EINVAL; /* NaN */
    return coro_call_at(loop, h, coro__deadline_after(coro_loop_time_ns(loop), coro__seconds_to_ns(delay)),
                        fn, arg);
}

#endif /* CORO_IMPL_H */
