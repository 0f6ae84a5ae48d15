/*
 * coro_thread.h - part of coro.h: threads and signals: call_soon_threadsafe, the thread pool (to_thread, run_in_executor), signal handlers.
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes.
 *
 *   asyncio                                  coro
 *   -------------------------------------    ------------------------------------------------
 *   loop.call_soon_threadsafe(fn, arg)       coro_call_soon_threadsafe(loop, fn, arg)
 *   loop.call_soon_threadsafe(loop.stop)     coro_loop_stop_threadsafe(loop)
 *   await asyncio.to_thread(fn, arg)         CORO_AWAIT(coro_to_thread(&self->op, fn, arg))
 *   loop.run_in_executor(None, fn, arg)      coro_run_in_executor(loop, fut, fn, arg, NULL)
 *   ThreadPoolExecutor(max_workers=n)        coro_loop_set_executor_threads(loop, n)
 *   loop.add_signal_handler(sig, fn, arg)    coro_add_signal_handler(loop, sig, fn, arg)
 *   loop.remove_signal_handler(sig)          coro_remove_signal_handler(loop, sig)
 *
 * THE THREAD-SAFETY RULE: a loop belongs to the thread that runs it. From
 * any other thread (a pool worker, a thread of yours, a signal handler of
 * yours) the ONLY coro calls allowed on a loop are coro_call_soon_threadsafe,
 * coro_call_soon_threadsafe_node and coro_loop_stop_threadsafe. Everything
 * else, every function in this header included, is for the loop's thread.
 * Separate loops share nothing (each has its own wake-up fd and its own
 * pool), so one loop per thread needs no locking at all.
 *
 * Set-up: a loop gets its thread machinery (an eventfd on Linux, a
 * non-blocking pipe elsewhere, watched by the loop; a mutex-protected queue;
 * the pool, whose threads start on demand) on first use, from its own
 * thread: coro_threads_init, which every function here that runs on the loop
 * thread calls for you. A loop that never uses them holds no extra fd and
 * starts no thread. Because the loop can only start watching the wake-up fd
 * from its own thread, a call from another thread before that fails with
 * CORO_ESTATE: call coro_threads_init(loop) before handing the loop to
 * another thread.
 *
 * Close: coro_loop_close removes the loop's signal handlers (restoring the
 * previous dispositions), stops the pool and WAITS for the work that is
 * running (work still queued never runs), and drops the callbacks posted
 * from other threads that have not run. No other thread may call into the
 * loop during or after coro_loop_close: stop or join your threads first.
 *
 * Memory: everything here comes from the loop's allocator hook, called on
 * the loop's thread only, with one exception: coro_call_soon_threadsafe,
 * which may run on any thread, takes its node from malloc (the hook need not
 * be thread-safe). coro_call_soon_threadsafe_node takes none.
 */
#ifndef CORO_THREAD_H
#define CORO_THREAD_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */
/* ------------------------------------------------------------------------ */

/* Give `loop` its wake-up fd and cross-thread queue now (the pool's threads
 * still start on demand). Call it on the loop's thread, before another
 * thread may call coro_call_soon_threadsafe; the functions of this header
 * that run on the loop thread call it themselves. Calling it again does
 * nothing. Returns 0, CORO_EINVAL for NULL, CORO_ECLOSED, CORO_ENOMEM, or
 * -errno when the fd cannot be made (EMFILE, ...). On failure nothing is
 * left to undo. */
int coro_threads_init(coro_loop *loop);

/* ------------------------------------------------------------------------ */
/* call_soon_threadsafe                                                     */
/* ------------------------------------------------------------------------ */

/* Schedule fn(arg) on `loop` from ANY thread (asyncio's
 * call_soon_threadsafe). The callback runs on the loop's thread as an
 * ordinary ready callback (a negative return goes to the exception handler).
 * Callbacks run in the order the loop received them: FIFO for the calls of
 * one thread, and in lock order across threads. Wake-ups are coalesced:
 * however many calls come in before the loop drains them, the loop is woken
 * once (one eventfd write).
 * Returns 0; CORO_EINVAL (NULL loop or fn); CORO_ESTATE if the loop has no
 * thread machinery yet and this thread is not running it (call
 * coro_threads_init on the loop's thread first); CORO_ECLOSED once the loop
 * is closed (but see the close rule above: no call may race with close);
 * CORO_ENOMEM if malloc fails. Callbacks not yet run when the loop closes
 * are dropped. */
int coro_call_soon_threadsafe(coro_loop *loop, coro_callback fn, void *arg);

/* A call_soon_threadsafe request in caller-owned storage. All fields
 * private. */
typedef struct coro_threadsafe_node {
    coro__node node;
    coro_callback fn;
    void *arg;
    coro_loop *loop;
    unsigned flags;
} coro_threadsafe_node;

/* The same with a caller-owned node: no allocation at all. The node must
 * stay valid, and must not be posted again, until its callback has started
 * (it may re-post its own node) or the loop has closed. Same return codes,
 * CORO_EINVAL for a NULL node; never CORO_ENOMEM. */
int coro_call_soon_threadsafe_node(coro_loop *loop, coro_threadsafe_node *n, coro_callback fn,
                                   void *arg);

/* loop.call_soon_threadsafe(loop.stop): stop `loop` from any thread (it
 * stops after the pass that runs the request). Codes as
 * coro_call_soon_threadsafe. */
int coro_loop_stop_threadsafe(coro_loop *loop);

/* ------------------------------------------------------------------------ */
/* The thread pool: to_thread and run_in_executor                           */
/* ------------------------------------------------------------------------ */

/* Blocking work for a pool thread: return its value, or coro_error(code)
 * (code < 0) for a failure. It runs on a pool thread: it must not call coro
 * on the loop except coro_call_soon_threadsafe. */
typedef coro_value (*coro_work_fn)(void *arg);

/* Called on the loop's thread, exactly once, when the outcome of a piece of
 * work will never reach whoever asked for it (the await was cancelled, the
 * future was cancelled, or the loop closed): `result` is what fn returned,
 * or coro_error(CORO_ECANCELLED) when fn never ran. It is the moment fn is
 * certainly done with `arg`: free `arg`, and `result` if it owns memory. It
 * must not call the loop (it may run inside coro_loop_close). */
typedef void (*coro_discard_fn)(void *arg, coro_value result);

#define CORO_EXECUTOR_THREADS_DEFAULT 4u
#define CORO_EXECUTOR_THREADS_MAX 256u

/* The pool's size (ThreadPoolExecutor's max_workers): at most `n` threads,
 * started one at a time as work arrives and no thread is idle, and kept
 * until coro_loop_close. Default CORO_EXECUTOR_THREADS_DEFAULT. Call it
 * before the first piece of work. Returns 0, CORO_EINVAL (NULL, n == 0, n >
 * CORO_EXECUTOR_THREADS_MAX), CORO_ECLOSED, CORO_ESTATE once the pool has
 * started, or the errors of coro_threads_init. */
int coro_loop_set_executor_threads(coro_loop *loop, unsigned n);

/* The frame of one to_thread. All fields private. */
typedef struct coro_to_thread_op {
    coro_frame co;
    coro_future fut;         /* completed on the loop thread with fn's value */
    struct coro__work *work; /* the pool's work item while it is in flight */
    coro_work_fn fn;
    void *arg;
    coro_discard_fn discard;
    int err;
    int lost;    /* done, but the awaiting task was cancelled first */
    int dropped; /* the outcome went, or will go, to discard */
} coro_to_thread_op;

/* await asyncio.to_thread(fn, arg): run fn(arg) on a pool thread of the
 * running loop; the await completes with fn's value, or fails with the code
 * of the coro_error fn returned (a code >= 0 in it reads as CORO_EINVAL;
 * CORO_ECANCELLED as a cancel). Only a task of the running loop can await
 * it (otherwise CORO_EINVAL). It may also fail with CORO_ENOMEM, or -errno
 * (EAGAIN) when no pool thread could be started.
 *
 * Cancellation is asyncio's: the awaiting task's cancel fails the await with
 * CORO_ECANCELLED at once. Work not started yet is taken off the queue and
 * never runs; work already running is NOT interrupted (C cannot stop a
 * thread): it runs to the end and its result is discarded. The op itself
 * may go right after the await returns: the work item is the pool's, the
 * worker never touches the op. But fn keeps using `arg`: so `arg` must stay
 * valid until fn has returned, which is when the await completes, or else
 * when `discard` runs (see coro_to_thread_ex; with plain coro_to_thread,
 * keep `arg` alive until coro_loop_close, or don't cancel).
 * NULL if `op` or `fn` is NULL. */
coro_frame *coro_to_thread(coro_to_thread_op *op, coro_work_fn fn, void *arg);
/* The same, with `discard` (may be NULL) called when the outcome is dropped:
 * cancelled before fn ran (result coro_error(CORO_ECANCELLED)), cancelled
 * while it ran or before the awaiting task resumed (fn's value), or the loop
 * closed first. Use it to free `arg`, or a result that owns memory. */
coro_frame *coro_to_thread_ex(coro_to_thread_op *op, coro_work_fn fn, void *arg,
                              coro_discard_fn discard);
/* After the await returned: 1 if the outcome was dropped, so `discard` has
 * run or will run for this call and `arg` is its business; 0 if `arg` is
 * still the caller's (fn's value or error was delivered, or the work was
 * never submitted: CORO_ENOMEM, -EAGAIN, no running loop). Decide with it,
 * not with the error code: a cancel (CORO_ECANCELLED) and an await refused
 * outside a task (CORO_EINVAL) drop the outcome, while fn may itself return
 * any code. 0 for NULL. */
int coro_to_thread_discarded(const coro_to_thread_op *op);

/* loop.run_in_executor(None, fn, arg), with a future you own: submit
 * fn(arg) to `loop`'s pool; `fut` (a pending, non-task future of `loop`,
 * from coro_future_init or coro_future_new) completes with fn's value or
 * error, as coro_to_thread's await does. Cancelling `fut` cancels the work
 * as coro_to_thread's cancel does (queued: dropped; running: result
 * discarded through `discard`, which may be NULL). `fut` must stay valid
 * until it is done and its done callbacks have run. Returns 0, CORO_EINVAL
 * (NULL loop, fut or fn; a task's future; a future of another loop),
 * CORO_ESTATE (fut already done), CORO_ECLOSED, CORO_ENOMEM, -EAGAIN (no
 * thread could start). On failure nothing was submitted. */
int coro_run_in_executor(coro_loop *loop, coro_future *fut, coro_work_fn fn, void *arg,
                         coro_discard_fn discard);

/* ------------------------------------------------------------------------ */
/* Signals                                                                  */
/* ------------------------------------------------------------------------ */

/* loop.add_signal_handler(signum, fn, arg): when `signum` arrives (on any
 * thread), fn(arg) runs on the loop as an ordinary ready callback, never in
 * signal context: the real handler only sets a flag and writes the loop's
 * wake-up fd (async-signal-safe). Signals that arrive before the callback
 * runs are coalesced into one run. Adding a handler for a signal this loop
 * already handles replaces fn and arg. The handler is installed with
 * SA_RESTART; pool threads block every signal, so they never take one.
 * Unlike asyncio (main thread's loop only), any loop may handle signals,
 * but a signal belongs to one loop at a time: the process's disposition is
 * one. Returns 0; CORO_EINVAL (NULL loop or fn, signum out of range,
 * SIGKILL, SIGSTOP, or a signal sigaction refuses); CORO_ESTATE if another
 * loop handles `signum`; CORO_ECLOSED; CORO_ENOMEM; the errors of
 * coro_threads_init. Nothing in coro relies on SIGPIPE (sockets write with
 * MSG_NOSIGNAL); ignore it yourself if your own writes may raise it. */
int coro_add_signal_handler(coro_loop *loop, int signum, coro_callback fn, void *arg);

/* loop.remove_signal_handler(signum): restore the disposition that was in
 * place when the handler was added; a delivery not yet run is dropped.
 * coro_loop_close does this for every signal the loop still handles.
 * Returns 1 if a handler was removed, 0 if this loop had none for signum,
 * CORO_EINVAL (NULL loop, signum out of range, SIGKILL, SIGSTOP). */
int coro_remove_signal_handler(coro_loop *loop, int signum);

#endif
