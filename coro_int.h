/*
 * coro_int.h - what the modules share and users must not touch.
 *
 * Naming: internal non-static functions are coro__*, statics unprefixed.
 * Invariants worth knowing before reading any module:
 *   - every queue the loop runs is made of coro__node, intrusive: putting a
 *     task, a timer or a done callback on the ready queue never allocates;
 *   - a task is in exactly one place: running, on the ready queue, in the
 *     timer heap (sleeping), on one future's callback list (waiting), or done;
 *   - small objects come from the loop's slab (mem.c), so coro_loop_close can
 *     release everything the loop ever handed out.
 */
#ifndef CORO_INT_H
#define CORO_INT_H

#include "coro.h"

#include <stdbool.h>
#include <string.h>

#define CORO__CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* A frame a task, a generator or an await may start: it has a body, has
 * not run yet (resume point 0), is on no chain and is no task's own root
 * (that one lives and dies with its task). */
static inline bool coro__frame_fresh(const coro_frame *f)
{
    return f && f->step && f->resume == 0 && !(f->flags & (CORO__F_RUNNING | CORO__F_INSIDE));
}

#if defined(__GNUC__) || defined(__clang__)
#define CORO__ALWAYS_INLINE __attribute__((always_inline))
#define CORO__NOINLINE __attribute__((noinline))
#define CORO__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CORO__LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define CORO__ALWAYS_INLINE
#define CORO__NOINLINE
#define CORO__UNLIKELY(x) (x)
#define CORO__LIKELY(x) (x)
#endif

/* loop states */
enum { LOOP_CLOSED = 0, LOOP_IDLE, LOOP_RUNNING };

/* A timer not in the heap. */
#define CORO__HEAP_NONE UINT32_MAX

/* The loop polls for I/O at least once every this many callbacks, even while
 * the ready queue never empties: a ready fd waits at most this long. */
#define CORO__POLL_EVERY 1024u

/* future states and flags */
enum { FUT_PENDING = 0, FUT_RESULT, FUT_ERROR, FUT_CANCELLED };
#define FUT_F_RETRIEVED 0x01u /* the outcome was read (no "never retrieved") */
#define FUT_F_TASK 0x02u      /* this future is a task */
#define FUT_F_ALLOCATED 0x04u /* from coro_future_new / coro_spawn */
#define FUT_F_RELEASED 0x08u  /* task: nobody holds it; free when done */
#define FUT_F_NAMED 0x10u     /* task: has an entry in loop->names */
#define FUT_F_LISTED 0x20u    /* task: in loop->tasks (aux is its index) */
#define FUT_F_PINNED 0x40u    /* task: run_until_complete holds it: don't free */
#define FUT_F_FREEING 0x80u   /* task: its free is queued on the ready queue */
/* What a pending future stands for, kept in its `tag` byte (which holds
 * the result's tag only once it is done): the trace (trace.c) and the task
 * dump say what a task waits on with it. Set by whoever makes the future. */
enum coro__future_kind {
    FUT_KIND_FUTURE = 0, FUT_KIND_FD_READ, FUT_KIND_FD_WRITE, FUT_KIND_LOCK, FUT_KIND_EVENT,
    FUT_KIND_CONDITION, FUT_KIND_SEMAPHORE, FUT_KIND_BARRIER, FUT_KIND_QUEUE_GET,
    FUT_KIND_QUEUE_PUT, FUT_KIND_QUEUE_JOIN, FUT_KIND_GATHER, FUT_KIND_WAIT, FUT_KIND_AS_COMPLETED,
    FUT_KIND_SHIELD, FUT_KIND_TASK_GROUP, FUT_KIND_THREAD, FUT_KIND_STREAM, FUT_KIND_SERVER,
    FUT_KIND_COUNT
};
static inline void coro__future_set_kind(coro_future *f, unsigned kind) { f->tag = (uint8_t)kind; }
static inline unsigned coro__future_kind(const coro_future *f) { return f->tag; }

/* a plain future's tflags: its cancel is a hook (val.cancel_hook) */
#define FUT_T_CANCEL_HOOK 0x01u
/* task flags (future.tflags) */
#define TASK_F_MUST_CANCEL 0x01u
#define TASK_F_SLEEPING 0x02u /* u.timer is in the heap */
#define TASK_F_WAITING 0x04u  /* u.w is on a future */
#define TASK_F_UNARMED 0x08u  /* it entered timeout scopes not armed yet (group.c) */
/* Once done, UNARMED's bit means: no done callback was queued for it (none
 * was added when it finished, or since), so nothing queued will read it and
 * its release may free it at once. */
#define TASK_F_QUIET 0x08u
/* Once done, SLEEPING's bit means: the root frame was allocated with the
 * task (coro_spawn_new), so the task's free frees both at once. */
#define TASK_F_FRAME_INSIDE 0x02u
/* Where coro_spawn_new puts the root frame: after the task, at the
 * alignment a frame from coro_frame_new may need (16 on LP64 targets, so
 * a frame whose size is a multiple of 16 is 16-aligned, as mem.c's slab
 * gives it; the task's size on 32-bit targets, where 8 is enough). */
#define CORO__TASK_FRAME_OFFSET (sizeof(void *) == 8 ? (sizeof(coro_task) + 15u) / 16u * 16u \
                                                     : (sizeof(coro_task) + 7u) / 8u * 8u)
/* The cancel-request count (cancelling()) is 12 bits, saturating at 4095:
 * its low 4 bits are tflags bits 4..7, its high 8 bits the `tag` byte while
 * the task is pending (a result's tag exists only once it is done), then
 * the top of aux. A pending task's aux is its number, or, once it is in
 * loop->tasks, its index there (its number then in loop->task_numbers); a
 * done task's aux holds its index in the low 24 bits. */
#define TASK_F_COUNT_SHIFT 4
#define TASK_COUNT_MAX 4095
#define TASK_INDEX_BITS 24
#define TASK_INDEX_MASK ((1u << TASK_INDEX_BITS) - 1)

/* coro_task_cancelling for a task known non-NULL, inline (timeout scopes). */
static inline int coro__task_cancelling(const coro_task *t)
{
    unsigned hi = t->fut.state == FUT_PENDING ? t->fut.tag : t->fut.aux >> TASK_INDEX_BITS;
    return (int)((t->fut.tflags >> TASK_F_COUNT_SHIFT) | hi << 4);
}

/* handle flags */
#define HANDLE_F_READY 0x01u
#define HANDLE_F_TIMER 0x02u
#define HANDLE_F_ALLOCATED 0x08u

/* done node flags */
#define DONE_F_ALLOCATED 0x01u

struct coro__heap_entry {
    int64_t when;
    coro__timer *t; /* NULL: a cancelled timer still in the heap */
};

struct coro__name {
    struct coro__name *next;
    const coro_task *task;
    /* debug mode: the coroutine whose step created the task (asyncio's
     * source_traceback, one frame deep), and the line that step resumed at */
    const char *created_function, *created_file;
    int created_line;
    uint8_t named; /* name[] was given by coro_task_set_name */
    char name[];
};
/* Where a task was created (debug mode; all NULL/0 when not recorded). */
void coro__task_creator(const coro_task *t, coro_exception_context *c);

/* A NULL loop argument means the loop running on this thread (asyncio's
 * get_running_loop(), implied by create_task and every primitive's
 * constructor); still NULL outside a running loop. */
static inline coro_loop *coro__loop_or_running(coro_loop *loop)
{
    return loop ? loop : coro_get_running_loop();
}

/* ---- arena.c: the heap-free mode's allocator (the hook's shape) ---- */
struct arena;
struct arena *coro__arena_init(void *mem, size_t size); /* NULL: too small */
void *coro__arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void coro__arena_usage(const struct arena *a, size_t *used, size_t *peak, size_t *size);

/* ---- mem.c: the allocator hook and the small-object slab ---- */
#ifndef CORO_NO_MALLOC
void *coro__default_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
#endif
int coro__mem_init(coro_loop *loop);
void coro__mem_fini(coro_loop *loop);
void *coro__alloc(coro_loop *loop, size_t size); /* zeroed; NULL on failure */
void *coro__alloc_raw(coro_loop *loop, size_t size); /* the same, not zeroed (the caller fills it) */
void coro__free(coro_loop *loop, void *p, size_t size);

/* The slab's head (the first member of mem.c's struct slab), which the
 * inline fast paths below read and write as mem.c does. */
#define CORO__SLAB_GRAIN 8u /* classes of 8 bytes (mem.c: how they stay aligned) */
#define CORO__SLAB_MAX 512u
struct coro__slab_head {
    void *free[CORO__SLAB_MAX / CORO__SLAB_GRAIN]; /* a free list per class */
    size_t live_bytes;                             /* handed out, not freed */
    size_t reclaim_at;                             /* reclaim at or below this */
    bool reclaim_due;
};
#if defined(__SANITIZE_ADDRESS__)
#define CORO__FAST_SLAB 0 /* mem.c poisons what is free: its own paths only */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO__FAST_SLAB 0
#endif
#endif
#ifndef CORO__FAST_SLAB
#define CORO__FAST_SLAB 1
#endif

/* Zero `n8` 8-byte words with plain stores, two at a time: the small
 * objects of the slab are a few words, and a loop of single stores is what
 * GCC turns into `rep stos`, which costs more than the whole spawn path for
 * 32 bytes (spawn 17 -> 22 ns when it did). */
static inline void coro__zero_words(void *p, size_t n8)
{
    uint64_t *w = p;
    size_t i = 0;
    for (; i + 1 < n8; i += 2) {
        w[i] = 0;
        w[i + 1] = 0;
    }
    if (i < n8)
        w[i] = 0;
}

/* A pop from the free list of `size`'s class, inline and call-free, or
 * NULL (an empty list, a size beyond the slab, a sanitized build): the hot
 * callers' way to the slab, which then take their general path. Not zeroed.
 * `size` is usually a constant, so the class is too. */
static inline void *coro__slab_pop(coro_loop *loop, size_t size)
{
    struct coro__slab_head *s = (struct coro__slab_head *)loop->slab;
    size_t k = (size - 1) / CORO__SLAB_GRAIN;
    void *p;
    if (!CORO__FAST_SLAB || size - 1 >= CORO__SLAB_MAX || !s || !(p = s->free[k]))
        return NULL;
    s->free[k] = *(void **)p;
    s->live_bytes += (k + 1) * CORO__SLAB_GRAIN;
    loop->slab_allocs++;
    return p;
}

/* coro__alloc_raw for a hot caller (spawn): coro__slab_pop, or mem.c. */
static inline void *coro__alloc_fast(coro_loop *loop, size_t size)
{
    void *p = coro__slab_pop(loop, size);
    return p ? p : coro__alloc_raw(loop, size);
}

/* A push on the free list of `size`'s class, inline and call-free; false
 * when mem.c must take it (coro__free). */
static inline bool coro__slab_push(coro_loop *loop, void *p, size_t size)
{
    struct coro__slab_head *s = (struct coro__slab_head *)loop->slab;
    size_t k = (size - 1) / CORO__SLAB_GRAIN;
    if (!CORO__FAST_SLAB || size - 1 >= CORO__SLAB_MAX || !s || !p)
        return false;
    *(void **)p = s->free[k];
    s->free[k] = p;
    s->live_bytes -= (k + 1) * CORO__SLAB_GRAIN;
    if (s->live_bytes <= s->reclaim_at)
        s->reclaim_due = true; /* coro__mem_idle does it */
    return true;
}

/* coro__free for a hot caller: coro__slab_push, or mem.c. */
static inline void coro__free_fast(coro_loop *loop, void *p, size_t size)
{
    if (!coro__slab_push(loop, p, size))
        coro__free(loop, p, size);
}
/* The loop is idle (a poll with nothing ready): give back the slab chunks a
 * spike left empty, if the live bytes fell far enough since. */
void coro__mem_idle(coro_loop *loop);
/* the loop's own arrays: straight through the hook */
void *coro__realloc(coro_loop *loop, void *p, size_t osize, size_t nsize);
/* a module's arrays: realloc shape, released by coro_loop_close if the
 * module did not free them (nsize 0 frees) */
void *coro__array_realloc(coro_loop *loop, void *p, size_t osize, size_t nsize);
/* I/O buffers (a stream's): CORO__BUF_SIZE ones come from a small per-loop
 * pool of idle buffers, other sizes are arrays; put gives one back. Not
 * zeroed: the caller writes before it reads. */
#define CORO__BUF_SIZE (16u * 1024u)
void *coro__buf_get(coro_loop *loop, size_t size);
void coro__buf_put(coro_loop *loop, void *p, size_t size);

/* ---- loop.c ---- */
/* Append a node to the ready queue (call_soon without the handle). */
static inline void coro__ready_push(coro_loop *loop, coro__node *n)
{
    n->next = NULL;
    *loop->ready_tail = n;
    loop->ready_tail = &n->next;
}
/* Empty the ready queue (its nodes are the caller's now). */
static inline void coro__ready_clear(coro_loop *loop)
{
    loop->ready_head = NULL;
    loop->ready_tail = &loop->ready_head;
}
/* loop->attn: what the end of a pass must look at, kept by their writers,
 * so that a busy pass tests one byte for all of them. */
#define CORO__ATTN_STOP 0x01u  /* coro_loop_stop was called */
#define CORO__ATTN_TRACE 0x02u /* trace mode: coro__trace_pass before each pass */

/* ---- task.c: Task.__step, whose hot case the loop's pass runs inline ---- */
void coro__task_step(coro__node *n);                                  /* the node's run */
void coro__task_step_slow(coro_task *t);                              /* watched, cancel, after a sleep */
void coro__task_after_step(coro_task *t, int status, coro_value *io); /* all but sleep(0) */

/* Task.__step's hot case: resume the innermost frame of the task's chain
 * (one call, whatever the await depth); a sleep(0) goes straight back on
 * the ready queue, as call_soon(self.__step). Debug or trace mode, a
 * pending cancel and the wake-up from a sleep take the slow path; every
 * other outcome (await, return, a real sleep) coro__task_after_step. The
 * loop's pass (loop.c's run_ready) calls this inline for a node whose run
 * is coro__task_step, so the common step costs no call of its own. */
static inline void coro__task_step_fast(coro_loop *loop, coro__node *n)
{
    coro_task *t = CORO__CONTAINER(n, coro_task, u.timer.node);
    if (CORO__UNLIKELY(loop->watch | (t->fut.tflags & (TASK_F_MUST_CANCEL | TASK_F_SLEEPING)))) {
        coro__task_step_slow(t);
        return;
    }
    coro_frame *f = t->fut.val.frame;
    coro_value io = coro_none();
    loop->current = t;
    int status = f->step(f, &io);
    if (CORO__LIKELY(status == CORO__PASS && !(t->fut.tflags & TASK_F_UNARMED))) {
        coro__ready_push(loop, n); /* n->run is coro__task_step already */
        loop->current = NULL;
    } else {
        coro__task_after_step(t, status, &io); /* clears loop->current; may free t */
    }
}

/* Unlink a node from the ready queue before it runs: O(queue length), for
 * the rare owner that must take a node back. 1 if it was there. */
int coro__ready_remove(coro_loop *loop, coro__node *n);
void coro__report(coro_loop *loop, const char *message, int error, coro_task *task);
/* The default exception handler (report.c): one line to coro_platform_write. */
void coro__default_report(const coro_exception_context *c);
/* The same, at `line` (a done task's last resume line). */
void coro__report_line(coro_loop *loop, const char *message, int error, coro_task *task, int line);
/* Report a fault of one coroutine (its function, file and line) through the
 * running loop's handler (the running task named), or the default one. */
void coro__report_frame(const char *message, int error, int line, const char *function,
                        const char *file);
int64_t coro__clock_ns(void);

/* How many loops run on virtual time (any thread): while none does, the
 * running loop's clock is the platform's without finding the loop. */
extern int coro__virtual_loops;
/* The loop's clock: the platform's monotonic one, or in virtual time the
 * loop's own (coro_loop_set_virtual_time). Timers and deadlines use this;
 * debug timing (slow callbacks) stays on the real clock. */
static inline int64_t coro__now(const coro_loop *loop)
{
    return loop->vnow ? loop->vnow : coro__clock_ns();
}
/* Debug mode: report the callback that started at t0 (0: not timed) if it
 * was slow; `line` is the task's resume point when the step began. */
void coro__check_slow(coro_loop *loop, int64_t t0, coro_task *task, int line);

/* ---- heap.c: the timer heap ---- */
/* Room for `cap` armed timers (init's reserve, or doubling). 0 or CORO_ENOMEM. */
int coro__heap_reserve(coro_loop *loop, uint32_t cap);
int coro__heap_push(coro_loop *loop, coro__timer *t, int64_t when);
/* The same with the sequence number (the FIFO order among equal deadlines)
 * taken earlier from loop->timer_seq: a lazily armed timeout keeps the
 * place it had when its scope was entered. */
int coro__heap_push_seq(coro_loop *loop, coro__timer *t, int64_t when, uint32_t seq);
/* call_at with such a sequence number (loop.c). */
int coro__call_at_seq(coro_loop *loop, coro_handle *h, int64_t when_ns, coro_callback fn, void *arg,
                      uint32_t seq);
/* group.c: arm the timeout scopes the running task entered since it last
 * suspended (they arm no timer while their body has not suspended). */
void coro__timeouts_arm(coro_loop *loop);
void coro__heap_cancel(coro_loop *loop, coro__timer *t);
/* Move every timer due at `now` to the ready queue, deadline order. */
void coro__heap_run_due(coro_loop *loop, int64_t now);
/* The earliest live deadline, or -1 when no timer is armed. */
int64_t coro__heap_next(coro_loop *loop);
void coro__heap_fini(coro_loop *loop);
/* A timer's deadline, if armed (in the heap or far): for the task dumps. */
bool coro__timer_when(const coro_loop *loop, const coro__timer *t, int64_t *when);
/* fn(t, run, arg) for every armed timer (in the heap or far ahead), in no
 * order; `run` is its node's callback (a far timer keeps it elsewhere). fn
 * must not arm or cancel a timer. */
typedef void (*coro__timer_visit_fn)(coro__timer *t, void (*run)(coro__node *), void *arg);
void coro__timers_each(coro_loop *loop, coro__timer_visit_fn fn, void *arg);

/* ---- future.c ---- */
void coro__future_schedule_callbacks(coro_future *f);
/* Make cancelling the pending future `f` call hook(f) at once instead:
 * what an operation that stands for other futures does (gather's
 * _GatheringFuture.cancel cancels its children, synchronously). The hook
 * returns what coro_future_cancel returns; `f` stays pending, and the hook
 * goes when `f` completes. */
void coro__future_set_cancel_hook(coro_future *f, int (*hook)(coro_future *));
void coro__future_add_node(coro_future *f, coro__node *n);
void coro__future_remove_node(coro_future *f, coro__node *n);
int coro__future_outcome(coro_future *f, coro_value *io);

/* ---- task.c ---- */
/* Room for `cap` live tasks in the task list. 0 or CORO_ENOMEM. */
int coro__tasks_reserve(coro_loop *loop, uint32_t cap);
/* Put every task not done into loop->tasks (most join it lazily: task.c's
 * "the list of live tasks"), so a walk of the list sees them all. Never
 * allocates: their slots are kept from their creation. */
void coro__tasks_list_all(coro_loop *loop);
void coro__tasks_fini(coro_loop *loop);
const char *coro__task_name(const coro_task *t, char *buf, size_t len);
/* Hold a task's memory while run_until_complete waits on it (asyncio keeps
 * a reference); unpin frees it if it was released meanwhile. */
void coro__task_pin(coro_future *f);
void coro__task_unpin(coro_future *f);

/* ---- gen.c: the frame driver (yield from) ---- */
/* Resume the chain whose innermost frame is *cur with *io until a frame
 * suspends for the driver (returns its status, *cur is the suspended frame)
 * or the root returns (CORO__DONE, outcome in *io). */
int coro__drive(coro_frame **cur, coro_value *io);
/* The same, once the innermost frame f has already stepped and returned st. */
int coro__drive_on(coro_frame **cur, coro_frame *f, coro_value *io, int st);
/* The step function's name and file, asked of the body itself (its
 * CORO_BEGIN answers the RS_INFO query without running anything). */
coro__frame_info coro__frame_describe(coro_frame *f);

/* ---- agen.c: async generators, as the driver sees them ---- */
/* An async generator set aside at a yield is awaited again (by its anext
 * frame): what it receives there. */
coro_value coro__agen_sent(coro_agen *g);

/* ---- report.c: one line of text, built without the printf family (a
 * bare-metal image links none) ---- */
typedef struct coro__line {
    char buf[320];
    size_t len;
} coro__line;
void coro__line_put(coro__line *l, const char *s);
void coro__line_put_int(coro__line *l, int64_t v);
void coro__line_put_seconds(coro__line *l, int64_t ns); /* "1.234" */

/* ---- inspect.c: what a task waits on (the trace and the dump share it) ---- */
/* The kind of future `f` stands for, in words ("a lock", "queue get"). */
const char *coro__future_kind_name(unsigned kind);

/* ---- trace.c: trace mode (hosted builds) ---- */
/* Why a step runs: its first step or a yield (ready), a sleep's timer, a
 * future it waited on. */
enum { CORO__WOKEN_READY = 0, CORO__WOKEN_TIMER, CORO__WOKEN_FUTURE };
/* What the loop is doing (loop->phase): who completed a future when no task
 * runs. */
enum { CORO__PHASE_READY = 0, CORO__PHASE_POLL };
typedef struct coro__step_mark {
    int64_t t0, now;          /* real clock, loop clock at the step's start */
    const char *function;     /* the frame it resumes, named before the step: a */
    const char *file;         /* task's own frame is freed when it finishes */
    int32_t line;             /* and where */
} coro__step_mark;
/* task.c: the task whose wakeup node `n` is, or NULL; a task's Task-N. */
coro_task *coro__task_waking(coro__node *n);
uint32_t coro__task_number(const coro_task *t);
#if CORO_HOSTED
void coro__trace_from_env(coro_loop *loop);
void coro__trace_stop(coro_loop *loop);
void coro__trace_pass(coro_loop *loop);
void coro__trace_step_begin(coro_task *t, coro__step_mark *m, int cause);
void coro__trace_step_end(coro_task *t, const coro__step_mark *m);
void coro__trace_wakes(coro_future *f);
#else /* no trace mode on bare metal: loop->trace stays 0 */
static inline void coro__trace_from_env(coro_loop *loop) { (void)loop; }
static inline void coro__trace_stop(coro_loop *loop) { (void)loop; }
static inline void coro__trace_pass(coro_loop *loop) { (void)loop; }
static inline void coro__trace_step_begin(coro_task *t, coro__step_mark *m, int cause)
{
    (void)t, (void)m, (void)cause;
}
static inline void coro__trace_step_end(coro_task *t, const coro__step_mark *m) { (void)t, (void)m; }
static inline void coro__trace_wakes(coro_future *f) { (void)f; }
#endif

/* ---- selectors/<backend>.c: one small interface ---- */
int coro__sel_init(coro_loop *loop);
void coro__sel_fini(coro_loop *loop);
/* Set the directions (CORO_READABLE|CORO_WRITABLE) watched for w->fd;
 * 0 removes it. Returns 0 or -errno. */
int coro__sel_set(coro_loop *loop, coro_fd *w, unsigned old_events, unsigned new_events);
/* Poll for at most timeout_ns (-1: forever, 0: don't block), rounded up to
 * the backend's unit, and call coro__fd_ready for each event. EINTR is an
 * empty poll. */
int coro__sel_poll(coro_loop *loop, int64_t timeout_ns);
/* A poll timeout in milliseconds for epoll_wait/poll: rounded up, at most a day. */
static inline int coro__timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return -1;
    int64_t ms = (timeout_ns + 999999) / 1000000;
    return ms > 86400000 ? 86400000 : (int)ms;
}
/* Forget `w` in any batch being dispatched (no stale event after detach). */
void coro__sel_forget(coro_loop *loop, coro_fd *w);

/* ---- the intrusive list (coro__list, coro__link in coro.h) ---- */
static inline void coro__list_init(coro__list *l) { l->first = l->last = NULL; }
static inline bool coro__list_empty(const coro__list *l) { return l->first == NULL; }
/* Append n (not on any list). */
static inline void coro__list_push(coro__list *l, coro__link *n)
{
    n->next = NULL;
    n->prev = l->last;
    if (l->last)
        l->last->next = n;
    else
        l->first = n;
    l->last = n;
}
/* Unlink n from l, which holds it; n's links are cleared. O(1). */
static inline void coro__list_remove(coro__list *l, coro__link *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->last = n->prev;
    n->prev = n->next = NULL;
}
/* Each element of l, as `type *var` of its `member` link; the body must not
 * remove var (take the next one first: CORO__LIST_FOREACH_SAFE). */
#define CORO__LIST_FOREACH(var, l, type, member)                                \
    for (type *var = (l)->first ? CORO__CONTAINER((l)->first, type, member) : NULL; var; \
         var = var->member.next ? CORO__CONTAINER(var->member.next, type, member) : NULL)

/* ---- waiters (waitq.c): the FIFO every primitive parks tasks on ---- */
/* Initialise w's future on `loop` and append it to q. 0 or CORO_E*. */
int coro__waitq_push(coro_waitq *q, coro_waiter *w, coro_loop *loop, unsigned kind);
/* Unlink w if it is on a queue (O(1); safe to call twice). */
void coro__waitq_remove(coro_waiter *w);
/* The first waiter whose future is still pending, or NULL (cancelled ones
 * are skipped, not removed: their frames remove them). */
coro_waiter *coro__waitq_first_pending(const coro_waitq *q);
/* Wake the first pending waiter with `v` (unlinking it); 1 if one woke. */
int coro__waitq_wake_first(coro_waitq *q, coro_value v);
/* Wake every pending waiter with `v`; returns how many. */
int coro__waitq_wake_all(coro_waitq *q, coro_value v);
/* Fail every pending waiter with `err` (cancel for CORO_ECANCELLED). */
int coro__waitq_fail_all(coro_waitq *q, int err);
/* A waiter on no queue, its future not yet initialised (an op's start). */
static inline void coro__waiter_clear(coro_waiter *w) { memset(w, 0, sizeof *w); }

/* ---- fd.c ---- */
void coro__fd_ready(coro_fd *w, unsigned events);

#if CORO_HOSTED
/* ---- stream.c, shared with server.c ---- */
/* Register fn(arg) for the next readiness of `dir` on `w`; *armed says it is
 * registered. 0 or CORO_ECLOSED (the watcher is detached). */
int coro__watch_arm(coro_fd *w, unsigned dir, coro_done_node *node, coro_done_fn fn, void *arg,
                    int *armed);
/* Take that callback back: off the future, or off the ready queue. */
void coro__watch_disarm(coro_loop *loop, coro_future *f, coro_done_node *node, coro_done_fn fn,
                        void *arg, int *armed);
bool coro__stream_bad_options(const coro_stream_options *o);
void coro__stream_setup(coro_stream *s, const coro_stream_options *opt, bool nodelay);
#endif

#endif /* CORO_INT_H */
