/*
 * coro.h - asyncio for C: stackless coroutines, futures, tasks, one loop.
 *
 * The one public header. Python's own story is the model:
 *
 *   asyncio                      coro
 *   -------------------------    -----------------------------------------
 *   async def f(x): ...          struct f { coro_frame co; ...fields... };
 *                                static CORO_FN(f_step) { CORO_BEGIN(); ... CORO_END(); }
 *   f(x)  (builds a coroutine)   f_init(&frame, x)  (fills a frame, runs nothing)
 *   await child()                CORO_AWAIT(child_frame)     (yield from)
 *   await fut / await task       CORO_AWAIT(fut) / CORO_AWAIT(task)
 *   await asyncio.sleep(s)       CORO_SLEEP(s)
 *   yield v / x = yield v        CORO_YIELD(v), then CORO_RESULT
 *   return v                     CORO_RETURN(v)
 *   raise E                      CORO_RAISE(code)
 *   try: ... except E as e:      CORO_TRY ... CORO_EXCEPT(err) ... CORO_TRY_END,
 *                                or for one await CORO_AWAIT_ERR(x, err)
 *   finally:                     CORO_FINALLY
 *   async with timeout(s):       CORO_WITH_TIMEOUT(&self->to, s) { ... } CORO_WITH_END;
 *   async with lock / sem / tg   CORO_WITH_LOCK / _SEMAPHORE / CORO_WITH_TASK_GROUP
 *   asyncio.run(main())          coro_run(&main.co, &result)
 *   asyncio.create_task(c)       coro_spawn(loop, frame), or coro_spawn_new(loop,
 *                                sizeof(F), step) for task and frame in one block
 *
 * WARNING - the limits of a stackless coroutine, as protothreads states them:
 *
 *   1. C locals do NOT survive a suspension point. Every CORO_AWAIT,
 *      CORO_AWAIT_ERR, CORO_YIELD and CORO_SLEEP returns from the step
 *      function and re-enters it later; anything that must live across one
 *      is a field of the frame struct (self->i, never a local i).
 *   2. In the default switch form (resume point = `case __LINE__:`) no
 *      suspension point may sit inside a `switch` statement of the body, and
 *      at most one suspension point may stand on one source line. Build with
 *      -DCORO_LABELS (GCC/clang labels-as-values) to lift the switch limit;
 *      both forms pass the same tests. The compiler cannot see a suspension
 *      point inside a switch, but the resume does: the body's dispatch has
 *      no case for it, so the coroutine fails with CORO_ESTATE (its
 *      CORO_FINALLY runs) and the loop's exception handler is told the
 *      function, file and line ("a suspension point inside a switch?"). It
 *      never finishes quietly.
 *   3. The step function's parameters are named `co` and `io` (CORO_FN
 *      declares them); the macros use those names.
 *   4. A child frame awaited with CORO_AWAIT(frame) must be freshly
 *      initialised (resume point 0): call its init function each time. An
 *      await of a frame that already ran, or that another await is running,
 *      fails with CORO_ESTATE and is reported at the awaiting line.
 *   5. A step function is written with CORO_BEGIN ... CORO_END (the driver
 *      asks a body its name through them); never by hand.
 *   6. A CORO_TRY block's except part is a resume point too, and so is the
 *      exit of a CORO_WITH_* scope and of a CORO_ASYNC_FOR loop: none of
 *      them inside a `switch` of the body (in either form), and no other
 *      suspension point on their opening and closing lines. They cost no
 *      frame field (open scopes chain through the header's `pending`
 *      word). `break` inside a CORO_WITH_* block ends that block only.
 *   7. Never leave a CORO_WITH_* block or a CORO_ASYNC_FOR loop with
 *      `goto` or a C `return`: only by its end, break/continue, CORO_RETURN,
 *      CORO_RAISE or an error, so that its exit runs.
 *
 * Errors are negative int codes (0 is success): system errors are -errno,
 * coro's own are CORO_E*; coro_strerror() names every one.
 *
 * The loop argument: every function that creates something on a loop
 * (coro_spawn, coro_spawn_new, coro_task_init, coro_frame_new, coro_future_init/_new and
 * every other *_init that takes a coro_loop *) reads a NULL loop as the loop
 * running on this thread (coro_get_running_loop(), as asyncio.create_task
 * and asyncio.Lock() do); with no loop running, NULL is CORO_EINVAL (or a
 * NULL return) like any other missing argument.
 *
 * Storage: every object may live in caller-owned memory (the *_init
 * functions); the conveniences that allocate (coro_spawn, coro_spawn_new, coro_frame_new,
 * coro_future_new, coro_loop_new) use the loop's allocator (or, in the
 * heap-free mode, the arena the loop was given at init: coro_loop_options),
 * and everything a loop allocated is released by coro_loop_close. Nothing
 * here is global but the running-loop pointer (coro_platform.h).
 * Fields marked "private" may change without notice; read the public ones
 * through the accessor functions.
 */
#ifndef CORO_H
#define CORO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* The hosted layer (threads, signals, sockets, streams: coro_thread.h and
 * coro_net.h) comes with coro.h on POSIX systems; elsewhere (a
 * microcontroller, -ffreestanding) coro.h is the core and structure layers
 * only. Define CORO_HOSTED to 0 or 1 to choose. */
#ifndef CORO_HOSTED
#if defined(__unix__) || defined(__APPLE__)
#define CORO_HOSTED 1
#else
#define CORO_HOSTED 0
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Error codes                                                              */
/* ------------------------------------------------------------------------ */

/* Every code coro itself returns, written once (libuv's UV_ERRNO_MAP): the
 * enum below, coro_strerror and coro_err_name are generated from it.
 * X(name, value, message); the asyncio exception each one stands for is in
 * the comment. Three are the system's own -errno values, so a system call's
 * failure and coro's agree; the rest are coro's, from -4001 down. */
#define CORO_ERRNO_MAP(X)                                                                     \
    X(ENOMEM, -ENOMEM, "out of memory")                          /* MemoryError */            \
    X(EINVAL, -EINVAL, "invalid argument")                       /* ValueError, TypeError */  \
    X(ETIMEDOUT, -ETIMEDOUT, "timed out")                        /* TimeoutError */           \
    X(ECANCELLED, -4001, "cancelled")                            /* CancelledError */         \
    X(ESTATE, -4002, "invalid state")                            /* InvalidStateError */      \
    X(ERUNNING, -4003, "loop already running")                   /* RuntimeError */           \
    X(ECLOSED, -4004, "closed")                                  /* RuntimeError: closed */   \
    X(EFULL, -4005, "queue full")                                /* QueueFull */              \
    X(EEMPTY, -4006, "queue empty")                              /* QueueEmpty */             \
    X(ESHUTDOWN, -4007, "queue shut down")                       /* QueueShutDown */          \
    X(EBROKEN, -4008, "barrier broken")                          /* BrokenBarrierError */     \
    X(EINCOMPLETE, -4009, "incomplete read (EOF came first)")    /* IncompleteReadError */    \
    X(ELIMIT, -4010, "stream limit exceeded")                    /* LimitOverrunError */      \
    X(EADDRINFO, -4011, "host name not resolved")                /* socket.gaierror */        \
    X(ESTOP, -4012, "async generator exhausted")                 /* StopAsyncIteration */     \
    X(EGENEXIT, -4013, "generator closed")                       /* GeneratorExit */

#define CORO__ERRNO_ENUM(name, value, message) CORO_##name = (value),
enum coro_errno { CORO_OK = 0, CORO_ERRNO_MAP(CORO__ERRNO_ENUM) };
#define CORO_EUSER (-5000) /* first code free for applications; codes at or
                              below it are the user's own */

/* A short English description of `err`, never NULL: coro's words for its
 * own codes (CORO_ETIMEDOUT is "timed out", not the socket's "Connection
 * timed out"), the system's strerror for other -errno values ("system
 * error" when not CORO_HOSTED), "application error" at or below CORO_EUSER,
 * "unknown error" otherwise. */
const char *coro_strerror(int err);
/* The code's name: "CORO_ECANCELLED" for coro's codes, "EPIPE" and the like
 * for the common system -errno values, "CORO_OK" for 0, "CORO_EUSER" at or
 * below CORO_EUSER, "UNKNOWN" otherwise. Never NULL (libuv's uv_err_name). */
const char *coro_err_name(int err);
/* The selector this library was built with: "epoll", "kqueue" or "poll"
 * (make SELECTOR=...). Never NULL. */
const char *coro_selector_name(void);

/* ------------------------------------------------------------------------ */
/* Values: a small tagged result, so no common case allocates               */
/* ------------------------------------------------------------------------ */

enum { CORO_NONE = 0, CORO_INT, CORO_DOUBLE, CORO_PTR, CORO_ERROR };

typedef struct coro_value {
    union {
        int64_t i; /* CORO_INT, and the error code when tag is CORO_ERROR */
        double d;  /* CORO_DOUBLE */
        void *p;   /* CORO_PTR (ownership is the program's business) */
    } u;
    int tag; /* CORO_NONE, CORO_INT, CORO_DOUBLE, CORO_PTR or CORO_ERROR */
} coro_value;

static inline coro_value coro_none(void) { coro_value v; v.u.i = 0; v.tag = CORO_NONE; return v; }
static inline coro_value coro_int(int64_t i) { coro_value v; v.u.i = i; v.tag = CORO_INT; return v; }
static inline coro_value coro_double(double d) { coro_value v; v.u.d = d; v.tag = CORO_DOUBLE; return v; }
static inline coro_value coro_ptr(void *p) { coro_value v; v.u.p = p; v.tag = CORO_PTR; return v; }
/* An error value; `err` should be negative. */
static inline coro_value coro_error(int err) { coro_value v; v.u.i = err; v.tag = CORO_ERROR; return v; }
/* The error code carried by `v`, or 0 when `v` is not an error. */
static inline int coro_value_error(coro_value v) { return v.tag == CORO_ERROR ? (int)v.u.i : 0; }

/* ------------------------------------------------------------------------ */
/* Frames: a coroutine is a frame struct plus a step function               */
/* ------------------------------------------------------------------------ */

/* The frame header: embed a coro_frame as the FIRST member of your frame
 * struct, whose other fields are the coroutine's arguments and the
 * variables that live across its suspension points. Its layout is private
 * (coro_impl.h) but for `resume`, read-only: the source line of the
 * suspension point the frame waits at (0: not started). 32 bytes (40 with
 * CORO_LABELS). */
typedef struct coro_frame coro_frame;

/* A step function resumes its frame at the saved resume point, runs to the
 * next suspension point and returns what it suspends for (CORO__* status).
 * `io` carries values both ways: in, what the suspension point receives (a
 * sent value, an awaited result, a thrown error); out, what it hands over. */
typedef int (*coro_step_fn)(coro_frame *co, coro_value *io);

/* Initialise a frame header for `step`; the frame runs nothing until a task
 * or a generator drives it. `co` must not be NULL. */
static inline void coro_frame_init(coro_frame *co, coro_step_fn step);
/* The same as an initializer: `coro_frame fr = CORO_FRAME_INIT(step);`. */
#define CORO_FRAME_INIT(step) CORO__FRAME_INIT(step)

/* Declare a step function: `static CORO_FN(name) { ... }`. */
#define CORO_FN(name) int name(coro_frame *co, coro_value *io)
/* The typed frame inside a step function: `struct f *self = CORO_SELF(struct f);` */
#define CORO_SELF(type) ((type *)(void *)co)
/* What the last suspension point received (awaited result, sent value). */
#define CORO_RESULT (*io)

/* Open the body. Nothing before it may suspend. The RS_INFO case answers
 * coro__frame_describe: the body's function and file, without running it. */
#define CORO_BEGIN() CORO__BEGIN_IMPL()

/* The cleanup section: runs after the body on return, on error and on
 * cancellation (try/finally). It may await; the outcome being returned is
 * kept meanwhile and restored at CORO_END. An error inside it replaces that
 * outcome, and so does a CORO_RETURN inside it (as in Python). */
#define CORO_FINALLY CORO__FINALLY_IMPL

/* Close the body. Falling off the end returns CORO_NONE. The default case
 * is reached by a leave with no cleanup section (RS_FINALLY), or by a resume
 * point the dispatch does not hold: a suspension point inside a switch of
 * the body (switch form), or a frame resumed after it finished. That one
 * is reported and fails the coroutine with CORO_ESTATE, never finishes it. */
#define CORO_END() CORO__END_IMPL()

/* return v (a coro_value). */
#define CORO_RETURN(v) CORO__RETURN_IMPL(v)

/* raise: fail the coroutine with `err` (negative), running the cleanup. */
#define CORO_RAISE(err) CORO_RETURN(coro_error(err))

/* Generator yield: hand `v` (a coro_value) to the consumer; CORO_RESULT then
 * holds what the consumer sent (CORO_NONE for next). An error thrown in by
 * the consumer propagates. Inside a task, CORO_YIELD(coro_none()) is a bare
 * yield (one loop pass, like sleep(0)); any other value is an error. */
#define CORO_YIELD(v) CORO__YIELD_IMPL(v)

/* await x: x is a coro_future *, a coro_task * or a coro_frame * (a child
 * coroutine, run inside this task: yield from). A done future does not
 * suspend. The result is then CORO_RESULT; an error propagates. */
#define CORO_AWAIT(x) CORO__AWAIT_IMPL(x)

/* try: ... except as err: ..., inside one body (nestable, awaits allowed in
 * both parts):
 *
 *     CORO_TRY
 *         CORO_AWAIT(...);          an error here (the cancel error included),
 *         CORO_SLEEP(1.0);          or a CORO_RAISE, jumps to the except part
 *     CORO_EXCEPT(self->err)        err (an int lvalue) is its code
 *         if (self->err != CORO_ECANCELLED)
 *             CORO_RAISE(self->err); a raise here goes to the enclosing try,
 *     CORO_TRY_END                  or leaves through CORO_FINALLY
 *
 * Without an error the except part is skipped. It costs no field: which
 * try encloses a suspension point is known when the body compiles. The
 * except part is a resume point of the body, so a try block may not sit
 * inside a `switch` of the body (in either form), and its CORO_TRY shares
 * its line with no suspension point. */
#define CORO_TRY CORO__TRY_IMPL()
#define CORO_EXCEPT(err) CORO__EXCEPT_IMPL(err)
#define CORO_TRY_END CORO__TRY_END_IMPL()

/* async with, inside one body: CORO_WITH_TIMEOUT, CORO_WITH_TIMEOUT_AT,
 * CORO_WITH_TASK_GROUP (coro_group.h), CORO_WITH_LOCK,
 * CORO_WITH_SEMAPHORE (coro_sync.h) open a block that CORO_WITH_END
 * closes:
 *
 *     CORO_WITH_LOCK(&self->wl, &lock) {      async with lock:
 *         CORO_AWAIT(...);                        await ...
 *     } CORO_WITH_END;
 *
 * Rules every inline scope shares:
 *   - The scope's state is its operation (a frame field, as every
 *     operation); the frame keeps no other field for it.
 *   - The exit (__aexit__) runs however the block ends: off its end, an
 *     error (the cancel error included), a CORO_RETURN or CORO_RAISE in it.
 *     The exit may change the outcome (a timeout raises CORO_ETIMEDOUT, a
 *     task group its first child error); an error or a return then goes on
 *     to the enclosing try, scope or CORO_FINALLY.
 *   - `break` and `continue` inside the block end the block (its exit
 *     runs) and the body goes on after CORO_WITH_END; they do not reach a
 *     loop around it (set a field and test it after CORO_WITH_END).
 *   - Never leave the block by `goto`, and never put it inside a `switch`
 *     of the body (its exit is a resume point, as a try's except part);
 *     no suspension point on the CORO_WITH_* or CORO_WITH_END line. Each
 *     CORO_WITH_* is a statement of its own (not the body of a bare `if`),
 *     and evaluates its operation argument twice: pass `&self->field`.
 *   - Scopes and tries nest in any order; a scope inside CORO_FINALLY
 *     works too. Outside every scope the macros cost nothing. */
#define CORO_WITH_END CORO__WITH_END_IMPL()

/* await x, handing the error to the code: `err` (an int lvalue, a frame
 * field or a local used at once) becomes 0 on success or the error code,
 * the cancel error included; nothing propagates. */
#define CORO_AWAIT_ERR(x, err) CORO__AWAIT_ERR_IMPL(x, err)

/* await asyncio.sleep(seconds): only inside a task. 0 or less yields exactly
 * one loop pass. */
#define CORO_SLEEP(seconds) CORO_SLEEP_NS(coro__seconds_to_ns(seconds))
#define CORO_SLEEP_NS(ns) CORO__SLEEP_NS_IMPL(ns)

/* ------------------------------------------------------------------------ */
/* Generators: the base layer, consumed with next/send/throw/close          */
/* ------------------------------------------------------------------------ */

/* A generator consumer, in caller-owned storage. Its layout is private but
 * for `done`, read-only: 1 once the generator finished. */
typedef struct coro_gen coro_gen;

/* Bind a generator consumer to a frame (freshly initialised). `g` and `root`
 * must not be NULL; returns CORO_EINVAL otherwise. */
int coro_gen_init(coro_gen *g, coro_frame *root);
/* Resume the generator with `send` as the value of the pending CORO_YIELD
 * (ignored at the first resume). Returns 1 when it yielded (the value in
 * *out), 0 when it returned (StopIteration; the return value in *out), or a
 * negative error when it failed (or CORO_ESTATE when it had already
 * finished, CORO_EINVAL when it tried to await or sleep: only tasks can, or
 * when called from inside the generator itself: "already executing").
 * `out` may be NULL. */
int coro_gen_send(coro_gen *g, coro_value send, coro_value *out);
/* next(g): coro_gen_send with CORO_NONE. Its hot case (a started, idle
 * generator that yields) is inline (coro_impl.h); &coro_gen_next is the
 * same function out of line. */
int(coro_gen_next)(coro_gen *g, coro_value *out);
/* Throw `err` into the generator at its suspension point; results as send. */
int coro_gen_throw(coro_gen *g, int err, coro_value *out);
/* Close: throw CORO_ECANCELLED so the cleanup sections run. Returns 0 when
 * the generator finished, or CORO_ESTATE if it yielded again. */
int coro_gen_close(coro_gen *g);

/* ------------------------------------------------------------------------ */
/* Async generators: `async def` with `yield`, consumed by `async for`      */
/* ------------------------------------------------------------------------ */

/* An async generator is a coroutine body that both awaits and yields. Its
 * frame struct starts with a coro_agen where a coroutine's starts with a
 * coro_frame; the step function is written as usual (CORO_SELF works):
 *
 *     struct ticker { coro_agen ag; int i, n; };      async def ticker(n):
 *     static CORO_FN(ticker_step) {                       for i in range(n):
 *         struct ticker *self = CORO_SELF(struct ticker);
 *         CORO_BEGIN();
 *         for (self->i = 0; self->i < self->n; self->i++) {
 *             CORO_YIELD(coro_int(self->i));                  yield i
 *             CORO_SLEEP(0.1);                                await sleep(0.1)
 *         }
 *         CORO_END();
 *     }
 *
 * A consumer (a coroutine of a task) drives it with awaits: the generator
 * runs inside the consumer's task, as a child frame while it runs (its
 * awaits suspend the task), and is set aside at each CORO_YIELD, which
 * hands the value to the consumer's await. The layout is private. */
typedef struct coro_agen coro_agen;

/* Fill `g` for a fresh run of `step` (as coro_frame_init; NULL-safe: a
 * NULL `g` is ignored). Re-initialise it to run it again. */
static inline void coro_agen_init(coro_agen *g, coro_step_fn step);
/* await anext(g) (asyncio: `await g.__anext__()`): resume the generator
 * until its next CORO_YIELD, whose value is the result. Fails with
 * CORO_ESTOP (StopAsyncIteration) once the body has returned (its
 * CORO_RETURN value is discarded, as Python forbids one), with the
 * generator's own error if it raised, with CORO_ESTATE (reported) if the
 * generator is being run by another await already. NULL for a NULL `g`
 * (the await fails with CORO_EINVAL). Only inside a task. */
coro_frame *coro_anext(coro_agen *g);
/* await g.asend(v): as anext, with CORO_RESULT at the generator's pending
 * CORO_YIELD being `v`. On a generator not started yet `v` must be
 * CORO_NONE (else CORO_EINVAL, Python's TypeError). */
coro_frame *coro_asend(coro_agen *g, coro_value v);
/* await g.athrow(err): raise `err` at the generator's pending CORO_YIELD;
 * the result is the next value it yields if it catches it (CORO_TRY), else
 * the await fails with its error (or CORO_ESTOP if it returned). A
 * generator not started yet is finished at once and the await fails with
 * `err`. */
coro_frame *coro_athrow(coro_agen *g, int err);
/* await g.aclose(): raise CORO_EGENEXIT (GeneratorExit) at the pending
 * CORO_YIELD, so the generator's CORO_TRY/CORO_WITH exits and CORO_FINALLY
 * run (they may await). Completes with CORO_NONE once it has finished
 * (also when it was not started, or had finished already); fails with
 * CORO_ESTATE if it yields instead (asyncio's "async generator ignored
 * GeneratorExit"), or with the error its cleanup raised. */
coro_frame *coro_aclose(coro_agen *g);
/* 1 once the generator's body has finished (returned, failed or closed);
 * 0 before, and for NULL. */
int coro_agen_done(const coro_agen *g);

/* async for v in g: ... : a loop over the values the generator yields,
 * closed by CORO_ASYNC_FOR_END; `var` (a coro_value lvalue, a frame field)
 * holds each value:
 *
 *     ticker_init(&self->t, 3);
 *     CORO_ASYNC_FOR(&self->t.ag, self->v) {
 *         printf("%lld\n", (long long)self->v.u.i);
 *         if (self->v.u.i == 1)
 *             break;
 *     } CORO_ASYNC_FOR_END;
 *
 * It ends when the generator is exhausted; an error the generator raises
 * propagates from the loop. However the loop is left (exhausted, break, a
 * return or an error in the block, the task cancelled) the generator is
 * finalised at CORO_ASYNC_FOR_END: an unfinished one is closed as by
 * coro_aclose (its cleanup runs, and may await), which is what asyncio's
 * aclosing() and shutdown_asyncgens give a Python program, but at once and
 * in the consumer's task. `break` and `continue` act on this loop. The
 * other rules are CORO_WITH_END's (a scope: no `goto` out, not inside a
 * `switch`, nothing else suspending on its two lines). CORO_EINVAL for a
 * NULL `g` (raised before the loop). `g` is evaluated once, so it may be
 * the generator's init call: CORO_ASYNC_FOR(ticker(&self->t, 3), self->v). */
#define CORO_ASYNC_FOR(g, var) CORO__ASYNC_FOR_IMPL(g, var)
#define CORO_ASYNC_FOR_END CORO__WITH_END_IMPL()

/* ------------------------------------------------------------------------ */
/* Where is every task: all_tasks, stacks, the dump (inspect.c)             */
/* ------------------------------------------------------------------------ */

/* A task's state (coro_task_state). */
enum { CORO_TASK_SCHEDULED = 1, CORO_TASK_RUNNING, CORO_TASK_WAITING, CORO_TASK_SLEEPING,
       CORO_TASK_CANCELLING, CORO_TASK_DONE };

typedef struct coro_loop coro_loop;
typedef struct coro_task coro_task;
/* Visitors: return nonzero from a task visitor to stop the walk. */
typedef int (*coro_task_visit_fn)(coro_task *t, void *arg);
typedef void (*coro_frame_visit_fn)(const char *function, const char *file, int line, void *arg);
/* A line of a dump, without its newline. */
typedef void (*coro_write_fn)(const char *line, void *arg);

/* asyncio.all_tasks(): fn(t, arg) for every task of `loop` (NULL: the
 * running loop) that is not done, in no set order, allocating nothing.
 * Tasks fn creates are not visited; fn must not make a task finish (no
 * cancel that completes at once is possible: cancels land on the next
 * step, so cancelling from fn is fine). Returns how many were visited;
 * CORO_EINVAL for a NULL fn or no loop. */
int coro_all_tasks(coro_loop *loop, coro_task_visit_fn fn, void *arg);
/* CORO_TASK_SCHEDULED (ready to run), _RUNNING (the task asking, or the
 * one whose step is running), _WAITING (on a future: a task, a lock, a
 * queue, an fd...), _SLEEPING, _CANCELLING (a cancel requested and not
 * taken back: it wins over waiting and sleeping), _DONE; CORO_EINVAL for
 * NULL. */
int coro_task_state(const coro_task *t);
/* What the task waits on, in words, into buf[len]: "waiting on task
 * Task-3", "waiting on fd 9 readable", "waiting on a lock", "sleeping,
 * wakes in 1.250 s", "scheduled (runs on the next pass)", "done (failed)".
 * 0, or CORO_EINVAL for NULL or len 0 (truncated to fit). */
int coro_task_describe_wait(coro_task *t, char *buf, size_t len);
/* task.get_stack(): fn(function, file, line, arg) for each frame of the
 * task's await chain, from its root coroutine to the innermost frame, the
 * line being where that frame is suspended (its resume point). Returns the
 * depth (0 for a done task); CORO_EINVAL for NULL. Costs nothing before it
 * is called: each body names itself when asked. */
int coro_task_get_stack(coro_task *t, coro_frame_visit_fn fn, void *arg);
/* task.print_stack(): the task's line and its chain, one line per frame,
 * through write(line, arg), or coro_platform_write (stderr, a UART...) when
 * write is NULL:
 *     Task-12 "conn 127.0.0.1:51234" waiting on fd 9 readable
 *       handle_client (examples/http_server.c:212)
 *       read_request (examples/http_server.c:140)
 * Returns 0; CORO_EINVAL for NULL. */
int coro_task_dump(coro_task *t, coro_write_fn write, void *arg);
/* The whole loop (NULL: the running one): a header line ("coro: 4 tasks,
 * running: Task-1"), then coro_task_dump of every task not done. Returns
 * how many tasks were dumped; CORO_EINVAL with no loop. */
int coro_loop_dump(coro_loop *loop, coro_write_fn write, void *arg);

/* ------------------------------------------------------------------------ */
/* The loop                                                                 */
/* ------------------------------------------------------------------------ */

/* The loop, a future, a task: declare them anywhere (a frame field, the
 * stack, a static) and initialise them with their *_init; their layouts
 * are private (coro_impl.h). */
typedef struct coro_future coro_future;

/* The allocator hook, Lua's shape: nsize 0 frees `ptr` (returns NULL);
 * otherwise (re)allocates `ptr` from osize to nsize bytes, returning NULL on
 * failure and leaving `ptr` untouched. */
typedef void *(*coro_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* A callback run by the loop. A negative return goes to the exception
 * handler; the loop keeps running. */
typedef int (*coro_callback)(void *arg);

/* What the exception handler receives (asyncio's context dict). */
typedef struct coro_exception_context {
    const char *message; /* what happened */
    int error;           /* the error code, or 0 */
    coro_task *task;     /* the task concerned, or NULL */
    const char *task_name;
    int resume_line;     /* the task's innermost resume point, or 0 */
    double seconds;      /* for slow callbacks: how long it took (hosted builds;
                            duration_ns everywhere) */
    const char *function; /* the coroutine concerned (its step function), or NULL */
    const char *file;     /* that function's source file, or NULL */
    int64_t duration_ns;  /* `seconds` in integer nanoseconds */
    /* debug mode: where `task` was created (asyncio's source_traceback, one
     * frame deep): the step function that called coro_spawn/_task_init,
     * its file and the line that step had resumed at; NULL/0 when the task
     * was created outside a task or with debug mode off */
    const char *created_function;
    const char *created_file;
    int created_line;
} coro_exception_context;

typedef void (*coro_exception_handler)(coro_loop *loop, const coro_exception_context *ctx,
                                       void *arg);

typedef struct coro_loop_options {
    coro_alloc_fn alloc; /* NULL: malloc/realloc/free (not in a CORO_NO_MALLOC build) */
    void *alloc_ud;
    int debug;           /* 1: asyncio's debug mode; -1: off even if CORO_DEBUG=1 in the
                            environment; 0: on only if CORO_DEBUG=1 */
    int64_t slow_callback_ns; /* debug threshold; 0: 100 ms */
    int virtual_time;    /* 1: the loop runs on virtual time (coro_loop_set_virtual_time) */
    /* The heap-free mode: all of the loop's storage, given here. With `arena`
     * set, the loop takes every byte it needs (its slab of tasks, frames and
     * futures, the task list, the timer heap, a selector's state) from these
     * `arena_size` bytes, never calls `alloc`, and an operation that finds
     * the arena full fails with CORO_ENOMEM, nothing else breaks. The bytes
     * must outlive the loop; a few KB run a handful of tasks (the embedded
     * suite runs in 16 KB: docs/embedding.md). */
    void *arena;
    size_t arena_size;
    /* Room taken at init for this many live tasks and armed timers (0: none
     * yet). Both lists still grow when they must (by doubling, from the hook
     * or the arena); with enough reserved a running loop needs no more. The
     * task list's room is taken when a task is created; a task is written
     * into it only when it first waits on a future (or when all_tasks or the
     * dump looks), so tasks that only run or sleep never touch it. */
    uint32_t reserve_tasks;
    uint32_t reserve_timers;
} coro_loop_options;

/* A scheduled callback (asyncio's Handle and TimerHandle in one), in
 * caller-owned storage. Its layout is private. */
typedef struct coro_handle coro_handle;

/* Initialise a loop in caller-owned storage. `opt` may be NULL (defaults).
 * Returns 0, CORO_EINVAL if `loop` is NULL, or an arena too small for its
 * own header (under a hundred bytes), or, in a CORO_NO_MALLOC build, neither
 * an allocator nor an arena; CORO_ENOMEM, or -errno when the selector
 * cannot be created. On failure nothing needs closing. */
int coro_loop_init(coro_loop *loop, const coro_loop_options *opt);
/* Allocate and initialise a loop with malloc; NULL on failure. Free it with
 * coro_loop_free. Not in a CORO_NO_MALLOC build (nor coro_loop_free). */
coro_loop *coro_loop_new(const coro_loop_options *opt);
/* Close: release the selector and everything the loop allocated (tasks
 * spawned on it, frames from coro_frame_new, futures from coro_future_new,
 * pending callbacks). Pending tasks are reported in debug mode and dropped
 * without running their cleanup (cancel them first; coro_run does). Returns
 * 0, CORO_ERUNNING if the loop is running, 0 again when already closed,
 * CORO_EINVAL for NULL. */
int coro_loop_close(coro_loop *loop);
/* In the heap-free mode: the arena's bytes in use now, the most ever in use,
 * and its size (any pointer may be NULL). 0, or CORO_EINVAL for a NULL loop
 * or one without an arena. */
int coro_loop_arena_usage(const coro_loop *loop, size_t *used, size_t *peak, size_t *size);
/* Close (if needed) and free a loop from coro_loop_new. NULL is a no-op. */
void coro_loop_free(coro_loop *loop);

/* Run until coro_loop_stop. Returns 0, CORO_ERUNNING if this loop or
 * another one is already running on this thread,
 * CORO_ECLOSED if closed, CORO_EINVAL for NULL. */
int coro_loop_run_forever(coro_loop *loop);
/* Run until `fut` is done (a task is a future: pass coro_task_future(t)).
 * Returns the future's error code (0 on a result; CORO_ECANCELLED if
 * cancelled), CORO_ESTATE if the loop was stopped first, or the errors of
 * run_forever. */
int coro_loop_run_until_complete(coro_loop *loop, coro_future *fut);
/* Stop after the current pass (asyncio's stop). NULL is a no-op. */
void coro_loop_stop(coro_loop *loop);
/* The loop running on this thread, or NULL (asyncio.get_running_loop; the
 * one per-thread pointer coro keeps, set only while a loop runs). Lets a
 * coroutine started by coro_run spawn tasks on its loop. */
coro_loop *coro_get_running_loop(void);
/* 1 while the loop runs, 0 otherwise. */
int coro_loop_is_running(const coro_loop *loop);
/* 1 after close, 0 otherwise. */
int coro_loop_is_closed(const coro_loop *loop);

/* The loop's clock, CLOCK_MONOTONIC, read now (asyncio's loop.time());
 * `loop` may be NULL: every loop shares the one clock. */
int64_t coro_loop_time_ns(const coro_loop *loop);
static inline double coro_loop_time(const coro_loop *loop);

/* Debug mode (asyncio's loop.set_debug) and the slow-callback threshold:
 * reports slow callbacks and steps, tasks destroyed pending, and the line
 * of a failure. A spawned task that failed and was never retrieved is
 * reported in every mode, once, when it is freed. */
void coro_loop_set_debug(coro_loop *loop, int on);
int coro_loop_get_debug(const coro_loop *loop);

/* Virtual time, for tests (what asyncio users get from third-party virtual
 * clocks): the loop's clock becomes its own counter, started at the real
 * clock's value. When nothing is ready, instead of waiting for the next
 * timer the loop moves its clock to that timer's deadline (it still polls
 * watched fds first, without waiting), so an hour of timeouts runs in
 * microseconds, in exactly the order real time would give. Everything that
 * reads the loop's time follows: sleeps, call_at/call_later, timeouts,
 * coro_loop_time_ns. Slow-callback timing stays real. What virtual time
 * cannot see: I/O and threads that take real time (a socket's peer, a
 * to_thread job) race timers that now fire at once; use it for code that
 * only waits on the loop's own timers and futures. Switch it on before
 * arming timers (on: 1, off: 0, back to the real clock). Returns 0;
 * CORO_EINVAL for NULL. Also coro_loop_options.virtual_time. */
int coro_loop_set_virtual_time(coro_loop *loop, int on);
/* Move a virtual clock forward by `ns` (>= 0): timers now due run on the
 * loop's next pass (asyncio's clock.advance() in test frameworks).
 * Returns 0; CORO_EINVAL for NULL or ns < 0, CORO_ESTATE if the loop is
 * not in virtual time. */
int coro_loop_advance(coro_loop *loop, int64_t ns);
/* Replace the exception handler (NULL restores the default, which prints
 * to stderr). */
void coro_loop_set_exception_handler(coro_loop *loop, coro_exception_handler fn, void *arg);
/* Call the handler with `ctx` (asyncio's call_exception_handler). With a
 * NULL `loop` the default handler prints it (a generator driven outside
 * any loop reports that way). NULL `ctx` is a no-op. */
void coro_loop_call_exception_handler(coro_loop *loop, const coro_exception_context *ctx);

/* call_soon: run fn(arg) on a later pass, FIFO. With `h` NULL the loop
 * allocates the handle and frees it after the run (not cancellable);
 * otherwise `h` is caller-owned and must stay valid until it has run or is
 * cancelled. Returns 0, CORO_EINVAL (NULL loop/fn, or `h` already
 * scheduled), CORO_ECLOSED, CORO_ENOMEM. */
int coro_call_soon(coro_loop *loop, coro_handle *h, coro_callback fn, void *arg);
/* call_later: run fn(arg) once `delay` seconds have passed (negative delays
 * are overdue, and run in deadline order). Same handle rules and codes;
 * CORO_EINVAL for a NaN delay. */
static inline int coro_call_later(coro_loop *loop, coro_handle *h, double delay, coro_callback fn,
                                  void *arg);
/* call_at: at absolute loop time `when_ns` (see coro_loop_time_ns). */
int coro_call_at(coro_loop *loop, coro_handle *h, int64_t when_ns, coro_callback fn, void *arg);
/* A post from an interrupt handler, a signal handler or another thread, in
 * caller-owned storage (a static, usually). Its layout is private. */
typedef struct coro_isr_node coro_isr_node;
/* Run fn(arg) on the loop's thread soon, from anywhere: an interrupt
 * handler, a signal handler, another thread (asyncio's
 * call_soon_threadsafe, made for an ISR). Lock-free and allocation-free.
 * `p` is yours and must stay valid until fn has run; posting it again
 * while it is still queued does nothing and returns 0 (posts coalesce, as
 * interrupts do; once fn starts, `p` may be posted anew). Posts run in the
 * order they were made, each once, before the next loop pass's callbacks;
 * a negative return goes to the exception handler. The loop is woken from
 * its wait: with SELECTOR=none through coro_platform_wake; with the other
 * selectors through the loop's wake-up fd, which exists once
 * coro_threads_init(loop) ran (call it first, on the loop's thread; without
 * it a post waits for the loop's next wake-up, but one from a signal
 * handler wakes the wait anyway).
 * Returns 1 when queued, 0 when it already was, CORO_EINVAL for a NULL
 * loop, `p` or `fn`. */
int coro_call_soon_isr(coro_loop *loop, coro_isr_node *p, coro_callback fn, void *arg);
/* Cancel a scheduled handle: it will never run, the loop holds no pointer
 * to it any more (its storage may go, or it may be scheduled again at once).
 * Returns 1 if it was scheduled, 0 if it had run, was cancelled or never
 * scheduled (NULL too). O(1) while in the timer heap; O(queue length) once
 * on the ready queue (a due timer, a call_soon), which is rare. */
int coro_handle_cancel(coro_handle *h);
/* Initialise a caller-owned handle as "not scheduled" (optional: a zeroed
 * handle is the same). */
void coro_handle_init(coro_handle *h);

/* asyncio.run: make a loop (options may be NULL), run `main` as a task to
 * completion, cancel what is left and let it finish, close the loop. The
 * main result goes to *result (may be NULL). Returns the main task's error
 * (0 on success, CORO_ECANCELLED if it was cancelled), CORO_EINVAL for a
 * NULL or running `main`, or a loop error.
 * Ctrl-C (asyncio.run since 3.11): while it runs, and if SIGINT still has
 * its default disposition, the first SIGINT cancels the main task (its
 * cleanup runs, so servers close; coro_run then returns CORO_ECANCELLED
 * unless main caught the cancel) and gives SIGINT its old disposition
 * back, so a second one stops the process at once. A program that ignores
 * or handles SIGINT itself keeps its own. On POSIX only. */
int coro_run(coro_frame *main, coro_value *result, const coro_loop_options *opt);

/* ------------------------------------------------------------------------ */
/* Futures                                                                  */
/* ------------------------------------------------------------------------ */

typedef void (*coro_done_fn)(coro_future *fut, void *arg);

/* A done callback's node, when the caller owns it (layout private). */
typedef struct coro_done_node coro_done_node;

/* A future (asyncio.Future) is pending, then done exactly once: with a
 * result, with an error, or cancelled. */

/* Initialise a pending future in caller-owned storage. `loop` NULL: the
 * running loop. Returns 0, CORO_EINVAL (NULL `f`, or no loop), CORO_ECLOSED. */
int coro_future_init(coro_future *f, coro_loop *loop);
/* Allocate a pending future from the loop (NULL: the running loop); NULL on
 * failure. Free it with
 * coro_future_free (or let coro_loop_close do it). */
coro_future *coro_future_new(coro_loop *loop);
/* Free a future from coro_future_new. Its done callbacks are dropped.
 * NULL is a no-op. */
void coro_future_free(coro_future *f);

/* Mark done with a result / an error (err < 0, not CORO_ECANCELLED: use
 * cancel). Done callbacks are scheduled (never called inline) in
 * registration order. Returns 0, CORO_ESTATE if already done, CORO_EINVAL
 * for NULL, a bad error code or a task's future (a task sets its own
 * result, as asyncio's Task refuses set_result), CORO_ECLOSED if the loop
 * is closed. */
int coro_future_set_result(coro_future *f, coro_value v);
int coro_future_set_error(coro_future *f, int err);
/* Cancel: returns 1 if the future was pending and is now cancelled, 0 if it
 * was already done (or NULL). */
int coro_future_cancel(coro_future *f);
int coro_future_done(const coro_future *f);
int coro_future_cancelled(const coro_future *f);
/* The outcome: 0 with the result in *out (may be NULL); the error code for
 * a failed future; CORO_ECANCELLED if cancelled; CORO_ESTATE if pending;
 * CORO_EINVAL for NULL. Marks the error as retrieved. */
int coro_future_result(coro_future *f, coro_value *out);
/* The error alone: 0 if it has a result, else as coro_future_result. */
int coro_future_error(coro_future *f);

/* add_done_callback: fn(f, arg) is scheduled with call_soon when `f` is
 * done (at once if it already is), in registration order. Allocates a node
 * from the loop: 0, CORO_ENOMEM, CORO_EINVAL. */
int coro_future_add_done_callback(coro_future *f, coro_done_fn fn, void *arg);
/* The same with a caller-owned node, which must stay valid until the
 * callback has run or was removed. */
int coro_future_add_done_node(coro_future *f, coro_done_node *n, coro_done_fn fn, void *arg);
/* Remove every pending registration of (fn, arg); returns how many. */
int coro_future_remove_done_callback(coro_future *f, coro_done_fn fn, void *arg);


/* ------------------------------------------------------------------------ */
/* Tasks: a Future that drives a coroutine                                  */
/* ------------------------------------------------------------------------ */

/* A task (asyncio.Task) is a future whose result is its coroutine's: it
 * drives a chain of frames from the innermost one, so a resume costs the
 * same at any await depth. 56 bytes (40 on a 32-bit target). */

/* Initialise a task in caller-owned storage driving `root` (a freshly
 * initialised frame, which must stay valid until the task is done) and
 * schedule its first step (asyncio.create_task). `loop` NULL: the running
 * loop. Returns 0, CORO_EINVAL (NULL `t` or `root`, no loop, or `root`
 * already running), CORO_ECLOSED, CORO_ENOMEM. */
int coro_task_init(coro_task *t, coro_loop *loop, coro_frame *root);
/* A loop holds at most 16,777,215 live tasks (CORO_ENOMEM beyond). */
/* Allocate a task for `root` on `loop` (NULL: the running loop) and
 * schedule it. A root from coro_frame_new is
 * owned by the task from here on (even when this fails), and freed when the
 * task is done. Returns NULL on failure (NULL root, no loop, closed loop,
 * out of memory). The task lives until coro_task_release, or coro_loop_close. */
coro_task *coro_spawn(coro_loop *loop, coro_frame *root);
/* asyncio.create_task(coro(...)) in one allocation: allocate a task and a
 * zeroed root frame of `size` bytes (at least sizeof(coro_frame)) for
 * `step` together, on `loop` (NULL: the running loop), and schedule its
 * first step. Fill the frame's arguments through coro_task_frame before
 * the loop runs again (the first step runs on a later pass). Both are freed
 * together when the task is freed (coro_task_release once it is done, or
 * coro_loop_close); the frame is never yours to free or to start again.
 * Returns NULL on failure (NULL step, size out of range, no loop, closed
 * loop, out of memory). The cheapest way to spawn: one allocation, where
 * coro_frame_new + coro_spawn make two. The trade: the frame lives until
 * the task is freed (a frame from coro_frame_new goes when the task
 * finishes), and on 64-bit targets the block is 8 bytes more than the two
 * apart (the frame stays 16-aligned). So it suits a task released early
 * (fire-and-forget) or awaited and released at once. */
coro_task *coro_spawn_new(coro_loop *loop, size_t size, coro_step_fn step);
/* The root frame of a pending task from coro_spawn_new (its arguments are
 * yours to fill until its first step runs). NULL when `t` is NULL, done, or
 * was not made by coro_spawn_new. */
void *coro_task_frame(coro_task *t);
/* Drop your reference to a task from coro_spawn: it is freed once done and
 * its done callbacks have run (on a later loop pass, or at coro_loop_close).
 * Don't use `t` afterwards. NULL is a no-op; a
 * caller-owned task (coro_task_init) is never freed. */
void coro_task_release(coro_task *t);

/* Allocate a zeroed frame of `size` bytes (at least sizeof(coro_frame))
 * from `loop` (NULL: the running loop), its header initialised for `step`.
 * NULL on failure. */
void *coro_frame_new(coro_loop *loop, size_t size, coro_step_fn step);
#define CORO_FRAME_NEW(loop, type, step) ((type *)coro_frame_new((loop), sizeof(type), (step)))
/* Free a frame from coro_frame_new that was never given to a task, to the
 * loop it came from (NULL: the running loop). NULL `f` is a no-op. */
void coro_frame_free(coro_loop *loop, coro_frame *f);

/* The task as a future (for run_until_complete, callbacks, results). */
static inline coro_future *coro_task_future(coro_task *t);
int coro_task_done(const coro_task *t);
int coro_task_cancelled(const coro_task *t);
/* The task's outcome, as coro_future_result. */
int coro_task_result(coro_task *t, coro_value *out);

/* Request cancellation (asyncio Task.cancel): the future it waits on is
 * cancelled (a task it awaits is itself cancelled: the request travels down
 * the chain), or its next suspension point receives CORO_ECANCELLED. Counts
 * the request. Returns 1 if the task was pending, 0 if done (or NULL).
 * coro_future_cancel on a task's future is the same call. */
int coro_task_cancel(coro_task *t);
/* coro_task_cancel in the shape of a coro_callback, so that asyncio's
 * loop.call_soon(task.cancel) and add_signal_handler(SIGTERM, task.cancel)
 * are one line: coro_call_soon(loop, NULL, coro_task_cancel_callback, t).
 * `task` is a coro_task *. Returns 0 (NULL is a no-op). */
int coro_task_cancel_callback(void *task);
/* How many cancel requests are outstanding (Task.cancelling); counts up to
 * 4095 and stays there. */
int coro_task_cancelling(const coro_task *t);
/* Lower that count by one, not below 0, and return it (Task.uncancel).
 * Does nothing once the task is done. */
int coro_task_uncancel(coro_task *t);

/* The running task of `loop` (NULL: the loop running on this thread), or
 * NULL outside any task (asyncio.current_task). */
coro_task *coro_current_task(const coro_loop *loop);
/* Name a task (the string is copied). 0, CORO_EINVAL, CORO_ENOMEM. */
int coro_task_set_name(coro_task *t, const char *name);
/* The task's name: the one set, or "Task-N" written into `buf` (at least
 * 24 bytes is enough). Never NULL for a valid task; "" for NULL. */
const char *coro_task_get_name(const coro_task *t, char *buf, size_t len);
/* The innermost frame's resume point: where the task will continue. */
int coro_task_resume_line(const coro_task *t);


/* ------------------------------------------------------------------------ */
/* File descriptors: awaitable readiness                                    */
/* ------------------------------------------------------------------------ */

enum { CORO_READABLE = 1, CORO_WRITABLE = 2 };

/* A watched fd in caller-owned storage (asyncio add_reader/add_writer as
 * futures). Its layout is private. */
typedef struct coro_fd coro_fd;

/* Watch `fd` (non-blocking is the caller's business) on `loop`. Nothing is
 * registered until a wait. `loop` NULL: the running loop. 0, CORO_EINVAL
 * (NULL `w`, no loop, fd < 0), CORO_ECLOSED. */
int coro_fd_init(coro_fd *w, coro_loop *loop, int fd);
/* A future that completes (result: CORO_READABLE or CORO_WRITABLE, plus
 * both on ERR/HUP) once the fd is readable / writable: await it. Waiting
 * again while a wait is pending returns the same future. If the selector
 * refuses the fd, the future is returned already failed with its -errno
 * (EPERM for a regular file, EEXIST for a second watcher of the same fd).
 * NULL only for a NULL or detached watcher or a closed loop.
 * One watcher per fd, one waiting task per direction (as asyncio allows one
 * reader and one writer per fd); detach before closing the fd. */
coro_future *coro_fd_wait_readable(coro_fd *w);
coro_future *coro_fd_wait_writable(coro_fd *w);
/* Stop watching: unregister (no event for it is ever delivered after this,
 * even one already polled) and cancel pending waits. The fd stays open.
 * Returns 0, CORO_EINVAL for NULL. Safe to call twice. */
int coro_fd_detach(coro_fd *w);

#include "coro_impl.h"  /* the private layouts and the macro machinery */
#include "coro_sync.h"  /* Lock, Event, Condition, Semaphore, Barrier */
#include "coro_queue.h" /* Queue, LifoQueue, PriorityQueue */
#include "coro_group.h" /* gather, wait, wait_for, timeout, shield, TaskGroup */
#if CORO_HOSTED
#include "coro_thread.h" /* call_soon_threadsafe, to_thread, signals */
#include "coro_trace.h"  /* trace mode: every step and wake-up, text or Perfetto */
#include "coro_net.h"   /* sockets, streams, servers */
#endif

#ifdef __cplusplus
}
#endif
#endif /* CORO_H */
