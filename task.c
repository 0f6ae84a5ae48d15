/*
 * task.c - asyncio.Task: a Future that drives a coroutine.
 *
 * The mapping to asyncio/tasks.py:
 *   Task.__init__       coro_task_init / coro_spawn (schedules the first step)
 *   Task.__step         coro__task_step (its hot case runs inline in the loop's
 *                       pass: coro_int.h's coro__task_step_fast): resume the
 *                       innermost frame (gen.c drives the await chain), then
 *                       look at what it suspended for:
 *                         a pending future  -> wait: our node joins its done
 *                                              callbacks (task_suspend)
 *                         sleep(0) / bare yield -> schedule the next step
 *                         sleep(s)          -> the task is its own timer
 *                         return / error    -> set our own result (task_finish)
 *   Task.__wakeup       task_wakeup: the awaited future is done; step with its
 *                       outcome
 *   Task.cancel         coro_task_cancel: cancel what we wait on, or mark
 *                       must_cancel so the next step throws CORO_ECANCELLED
 *   cancelling/uncancel the request count
 *   _enter_task/_leave_task  loop->current
 * Invariant (asyncio's): a pending task is running, or has its step on the
 * ready queue, or waits on exactly one future, or sleeps on its own timer;
 * one node and one union serve all four, and the pending task keeps its
 * innermost frame in its own future's value, which is why a task costs 56
 * bytes.
 *
 * The loop can find every live task (asyncio's all_tasks) so that coro_run
 * can cancel what is left and coro_loop_close can report what is lost. A
 * task is always in one place: running, on the ready queue, on a timer, or
 * waiting on a future. The first three the loop can walk; only a task that
 * waits on a future joins the loop's list of tasks, the first time it does
 * (and a spawned one that failed with nobody holding it, for close's
 * report). coro__tasks_list_all lists the others when a walk needs them. So
 * a task that never waits on a future (spawned, run, done; or sleeping)
 * costs no list slot and no list work.
 */
#include "coro_int.h"

#include <string.h>

#define FRAME_MAX_SIZE (65535u * 8u)


/* ---- flags ---- */

static bool must_cancel(const coro_task *t) { return t->fut.tflags & TASK_F_MUST_CANCEL; }

static int cancel_count(const coro_task *t) { return coro__task_cancelling(t); }

/* Only while pending (coro_int.h: where the count's bits live). */
static void set_cancel_count(coro_task *t, int n)
{
    t->fut.tflags = (uint8_t)((t->fut.tflags & 0x0fu) | ((n & 0xf) << TASK_F_COUNT_SHIFT));
    t->fut.tag = (uint8_t)(n >> 4);
}

static uint32_t list_index(const coro_task *t) { return t->fut.aux & TASK_INDEX_MASK; }

static void set_list_index(coro_task *t, uint32_t i)
{
    t->fut.aux = (t->fut.aux & ~TASK_INDEX_MASK) | i;
}

/* ---- the list of live tasks (listed lazily: see the top) ----
 * Room is kept for every task not done, listed or not: ntasks +
 * tasks_unlisted <= tasks_cap. So only a task's creation may grow the list
 * (and fail with CORO_ENOMEM, as it always could); joining it later, at a
 * wait or in a walk, never allocates, and a wait stays infallible. The
 * slots of tasks that never join are never written (on a hosted system,
 * never resident). */

#define LIST_SLOT (sizeof(coro_task *) + sizeof(uint32_t))

/* Room for `cap` live tasks (asked once at init by the loop's options, or
 * doubled as needed). 0 or CORO_ENOMEM. */
int coro__tasks_reserve(coro_loop *loop, uint32_t cap)
{
    if (cap <= loop->tasks_cap)
        return 0;
    if (cap > TASK_INDEX_MASK)
        return CORO_ENOMEM;
    /* one block, the tasks then their numbers; a new one with only the
     * listed part copied (not realloc, which copies the whole old
     * capacity): room never written stays untouched */
    coro_task **a = coro__realloc(loop, NULL, 0, cap * LIST_SLOT);
    if (!a)
        return CORO_ENOMEM;
    uint32_t *nums = (uint32_t *)(void *)(a + cap);
    if (loop->ntasks) {
        memcpy(a, loop->tasks, loop->ntasks * sizeof *a);
        memcpy(nums, loop->task_numbers, loop->ntasks * sizeof *nums);
    }
    coro__realloc(loop, loop->tasks, loop->tasks_cap * LIST_SLOT, 0);
    loop->tasks = a;
    loop->task_numbers = nums;
    loop->tasks_cap = cap;
    return 0;
}

/* The list has no room for one more task: double it (up to TASK_INDEX_MASK). */
static CORO__NOINLINE int list_grow(coro_loop *loop)
{
    uint32_t cap = loop->tasks_cap ? loop->tasks_cap * 2 : 64;
    return coro__tasks_reserve(loop, cap < TASK_INDEX_MASK ? cap : TASK_INDEX_MASK);
}

/* A new task: room for it (0 or CORO_ENOMEM), counted as not listed. */
static inline int list_reserve(coro_loop *loop)
{
    if (CORO__UNLIKELY(loop->ntasks + loop->tasks_unlisted >= loop->tasks_cap)) {
        int rc = list_grow(loop);
        if (rc != 0)
            return rc;
    }
    loop->tasks_unlisted++;
    return 0;
}

/* Into its reserved slot (a pending task's number moves beside it). */
static void list_put(coro_loop *loop, coro_task *t)
{
    uint32_t n = loop->ntasks;
    if (t->fut.state == FUT_PENDING) {
        loop->task_numbers[n] = t->fut.aux;
        t->fut.aux = n;
    } else {
        set_list_index(t, n);
    }
    loop->tasks[n] = t;
    loop->ntasks = n + 1;
    t->fut.flags |= FUT_F_LISTED;
}

/* A task not done joins the list (at its first wait, or a walk). */
static void list_join(coro_loop *loop, coro_task *t)
{
    loop->tasks_unlisted--;
    list_put(loop, t);
}

static CORO__NOINLINE void list_unlink(coro_loop *loop, coro_task *t)
{
    uint32_t i = list_index(t), n = --loop->ntasks; /* t is done: its number is kept */
    coro_task *last = loop->tasks[n];
    loop->tasks[i] = last;
    loop->task_numbers[i] = loop->task_numbers[n];
    set_list_index(last, i);
    t->fut.flags &= (uint8_t)~FUT_F_LISTED;
}

/* A task leaves the list (if it is in it: most never join). */
static inline void list_remove(coro_loop *loop, coro_task *t)
{
    if (CORO__UNLIKELY(t->fut.flags & FUT_F_LISTED))
        list_unlink(loop, t);
}

static void list_if_live(coro_loop *loop, coro_task *t)
{
    if (t->fut.state == FUT_PENDING && !(t->fut.flags & FUT_F_LISTED))
        list_join(loop, t);
}

static void list_queued(coro_loop *loop, coro__node *n)
{
    for (; n; n = n->next)
        if (n->run == coro__task_step) /* a task's next step (a waking one is listed) */
            list_if_live(loop, CORO__CONTAINER(n, coro_task, u.timer.node));
}

static void list_sleeper(coro__timer *t, void (*run)(coro__node *), void *arg)
{
    if (run == coro__task_step)
        list_if_live(arg, CORO__CONTAINER(t, coro_task, u.timer));
}

void coro__tasks_list_all(coro_loop *loop)
{
    if (loop->current)
        list_if_live(loop, loop->current);
    list_queued(loop, loop->pass_head);
    list_queued(loop, loop->ready_head);
    coro__timers_each(loop, list_sleeper, loop);
}

/* ---- names ---- */

static struct coro__name **name_slot(coro_loop *loop, const coro_task *t)
{
    struct coro__name **p = &loop->names;
    while (*p && (*p)->task != t)
        p = &(*p)->next;
    return p;
}

/* A task's side record (struct coro__name): its name, where it was created
 * (debug mode), or both. Kept off the task so a task stays small. */
static struct coro__name *name_record(const coro_task *t)
{
    return (t->fut.flags & FUT_F_NAMED) ? *name_slot(t->fut.loop, t) : NULL;
}

static CORO__NOINLINE void name_drop(coro_loop *loop, coro_task *t)
{
    struct coro__name **p = name_slot(loop, t);
    if (*p) {
        struct coro__name *n = *p;
        *p = n->next;
        coro__free(loop, n, sizeof *n + strlen(n->name) + 1);
    }
    t->fut.flags &= (uint8_t)~FUT_F_NAMED;
}

/* Replace t's record by one holding `name` (NULL: none), keeping where the
 * task was created. */
static int name_record_set(coro_task *t, const char *name, const struct coro__name *created)
{
    coro_loop *loop = t->fut.loop;
    size_t len = name ? strlen(name) : 0;
    struct coro__name *n = coro__alloc(loop, sizeof *n + len + 1);
    if (!n)
        return CORO_ENOMEM;
    n->created_function = created ? created->created_function : NULL;
    n->created_file = created ? created->created_file : NULL;
    n->created_line = created ? created->created_line : 0;
    n->named = name != NULL;
    memcpy(n->name, name ? name : "", len + 1);
    if (t->fut.flags & FUT_F_NAMED)
        name_drop(loop, t);
    n->task = t;
    n->next = loop->names;
    loop->names = n;
    t->fut.flags |= FUT_F_NAMED;
    return 0;
}

int coro_task_set_name(coro_task *t, const char *name)
{
    if (!t || !name)
        return CORO_EINVAL;
    struct coro__name *old = name_record(t), keep;
    if (old)
        keep = *old;
    return name_record_set(t, name, old ? &keep : NULL);
}

/* Debug mode: remember which coroutine created `t` (the running task's
 * innermost frame, and the line its step resumed at). Best effort: no
 * memory, no record. */
static CORO__NOINLINE void record_creator(coro_loop *loop, coro_task *t)
{
    coro_task *by = loop->current;
    if (!by || !by->fut.val.frame)
        return;
    coro_frame *at = by->fut.val.frame;
    coro__frame_info info = coro__frame_describe(at);
    struct coro__name created = { 0 };
    created.created_function = info.function;
    created.created_file = info.file;
    created.created_line = at->resume > 0 ? at->resume : 0;
    (void)name_record_set(t, NULL, &created);
}

void coro__task_creator(const coro_task *t, coro_exception_context *c)
{
    const struct coro__name *n = name_record(t);
    if (!n)
        return;
    c->created_function = n->created_function;
    c->created_file = n->created_file;
    c->created_line = n->created_line;
}

/* Copy `s` into buf[len], truncated to fit (snprintf's "%s", without stdio). */
static void copy_name(char *buf, size_t len, const char *s)
{
    size_t n = strlen(s);
    if (len == 0)
        return;
    if (n >= len)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

/* The task's creation number (asyncio's _task_name_counter), kept without a
 * field of its own: in aux while the task is pending (beside its slot in
 * the list once it is listed there), then in the timer's sequence slot,
 * which a done task no longer uses. */
static uint32_t task_number(const coro_task *t)
{
    if (t->fut.state != FUT_PENDING)
        return t->u.timer.seq;
    return (t->fut.flags & FUT_F_LISTED) ? t->fut.loop->task_numbers[t->fut.aux] : t->fut.aux;
}

uint32_t coro__task_number(const coro_task *t) { return task_number(t); }

/* Tasks are named Task-N as asyncio does, N counting the tasks created on
 * the loop; the string is written into `buf` (nothing is allocated). */
const char *coro__task_name(const coro_task *t, char *buf, size_t len)
{
    const struct coro__name *rec = name_record(t);
    if (rec && rec->named)
        return rec->name;
    char num[16], *p = num + sizeof num;
    uint32_t n = task_number(t);
    *--p = '\0';
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    copy_name(buf, len, "Task-");
    size_t used = strlen(buf);
    copy_name(buf + used, len - used, p);
    return buf;
}

/* The line the task's last step resumed at, once it is done: task_run
 * records it in debug mode in the timer's index, which is CORO__HEAP_NONE
 * otherwise (a done task is in no heap): where a failure report points. */
static int finished_line(const coro_task *t)
{
    uint32_t line = t->u.timer.heap_index;
    return line == CORO__HEAP_NONE ? 0 : (int)line;
}

const char *coro_task_get_name(const coro_task *t, char *buf, size_t len)
{
    if (!t || !buf || len == 0)
        return "";
    const char *name = coro__task_name(t, buf, len);
    if (name != buf)
        copy_name(buf, len, name);
    return buf;
}

/* ---- life cycle ---- */

static void frame_release(coro_loop *loop, coro_frame *f)
{
    if (f && (f->flags & CORO__F_OWNED))
        coro__free_fast(loop, f, (size_t)f->size8 * 8u);
}

/* A task and the root frame allocated with it (coro_spawn_new): the root
 * at CORO__TASK_FRAME_OFFSET, its header kept intact until the task is
 * freed, so its size8 tells the object's size. */
static coro_frame *inside_frame(coro_task *t)
{
    return (coro_frame *)(void *)((char *)t + CORO__TASK_FRAME_OFFSET);
}

static size_t task_alloc_size(coro_task *t)
{
    if (t->fut.tflags & TASK_F_FRAME_INSIDE)
        return CORO__TASK_FRAME_OFFSET + (size_t)inside_frame(t)->size8 * 8u;
    return sizeof *t;
}

/* The root returned: free a frame from coro_frame_new; a root inside the
 * task goes with the task, which says so from now on. */
static CORO__ALWAYS_INLINE inline void root_release(coro_task *t, coro_frame *root)
{
    if (CORO__UNLIKELY(root->flags & (CORO__F_OWNED | CORO__F_INSIDE))) {
        if (root->flags & CORO__F_INSIDE)
            t->fut.tflags |= TASK_F_FRAME_INSIDE;
        else
            frame_release(t->fut.loop, root);
    }
}


static void schedule_step(coro_task *t)
{
    t->u.timer.node.run = coro__task_step;
    coro__ready_push(t->fut.loop, &t->u.timer.node);
}

/* The fields of a new task, each written once (no memset first: this is
 * the spawn path), and its first step scheduled. No call: spawn_new's hot
 * path is this and checks. */
static CORO__ALWAYS_INLINE inline void task_fields(coro_task *t, coro_loop *loop, coro_frame *root,
                                                   uint8_t flags)
{
    t->fut.loop = loop;
    t->fut.callbacks = NULL;
    t->fut.state = FUT_PENDING;
    t->fut.tag = 0;
    t->fut.flags = FUT_F_TASK | flags;
    t->fut.tflags = 0;
    t->u.timer.seq = 0;
    if (CORO__UNLIKELY(++loop->task_counter == 0))
        loop->task_counter = 1;
    t->fut.aux = loop->task_counter; /* task_number() while pending and not listed */
    root->parent = NULL;
    root->flags |= CORO__F_RUNNING;
    t->fut.val.frame = root;
    t->u.timer.heap_index = CORO__HEAP_NONE;
    schedule_step(t);
}

/* task_fields, with what may call out: a reused storage's old name, the
 * list's room (which may grow it), debug mode's creator record. */
static CORO__ALWAYS_INLINE inline int task_setup(coro_task *t, coro_loop *loop, coro_frame *root,
                                                 uint8_t flags)
{
    if (loop->names && !(flags & FUT_F_ALLOCATED))
        name_drop(loop, t); /* caller's storage reused: forget its old record
                               (an allocated task's went in task_free) */
    int rc = list_reserve(loop);
    if (rc != 0)
        return rc;
    task_fields(t, loop, root, flags);
    if (loop->debug)
        record_creator(loop, t);
    return 0;
}

int coro_task_init(coro_task *t, coro_loop *loop, coro_frame *root)
{
    loop = coro__loop_or_running(loop);
    if (!t || !loop || !coro__frame_fresh(root))
        return CORO_EINVAL;
    if (loop->state == LOOP_CLOSED)
        return CORO_ECLOSED;
    return task_setup(t, loop, root, 0);
}

/* The spawns' hot case makes no call (so it saves no register): debug mode
 * off, an open loop, room in the task list (list_reserve's test), and then
 * a free object in the slab. Anything else takes the general way. */
static CORO__ALWAYS_INLINE inline bool spawn_fast_ok(const coro_loop *loop)
{
    return !loop->debug && loop->state != LOOP_CLOSED &&
           loop->ntasks + loop->tasks_unlisted < loop->tasks_cap;
}

/* coro_spawn the general way. */
static CORO__NOINLINE coro_task *spawn_general(coro_loop *loop, coro_frame *root)
{
    if (!root)
        return NULL;
    loop = coro__loop_or_running(loop);
    coro_task *t = NULL;
    if (loop && loop->state != LOOP_CLOSED && coro__frame_fresh(root))
        t = coro__alloc_fast(loop, sizeof *t); /* task_setup writes every field */
    if (t && task_setup(t, loop, root, FUT_F_ALLOCATED) == 0) {
        loop->tasks_alive++;
        return t;
    }
    if (t) {
        coro__free(loop, t, sizeof *t);
        t = NULL;
    }
    if (loop && loop->state != LOOP_CLOSED && !(root->flags & CORO__F_RUNNING))
        frame_release(loop, root); /* we own it, even on failure */
    return t;
}

/* What a spawn that passed spawn_fast_ok does with its new task `t`. */
static CORO__ALWAYS_INLINE inline coro_task *spawned(coro_task *t, coro_loop *loop, coro_frame *root)
{
    loop->tasks_unlisted++; /* list_reserve, its room checked by spawn_fast_ok */
    task_fields(t, loop, root, FUT_F_ALLOCATED);
    loop->tasks_alive++;
    return t;
}

/* coro_spawn past its checks, when the slab's free list is empty. */
static CORO__NOINLINE coro_task *spawn_refill(coro_loop *loop, coro_frame *root)
{
    coro_task *t = coro__alloc_raw(loop, sizeof *t);
    if (!t) {
        frame_release(loop, root); /* we own it, even on failure */
        return NULL;
    }
    return spawned(t, loop, root);
}

coro_task *coro_spawn(coro_loop *loop, coro_frame *root)
{
    if (!loop || !spawn_fast_ok(loop) || !coro__frame_fresh(root))
        return spawn_general(loop, root);
    coro_task *t = coro__slab_pop(loop, sizeof *t);
    if (!t)
        return spawn_refill(loop, root);
    return spawned(t, loop, root);
}

/* The frame's header for coro_frame_new's and coro_spawn_new's frames. */
static void frame_header(coro_frame *f, size_t size, coro_step_fn step, uint8_t flags)
{
    f->step = step;
    f->flags = flags;
    f->size8 = (uint16_t)((size + 7) / 8);
}

static size_t spawn_new_size(size_t size)
{
    return CORO__TASK_FRAME_OFFSET + (size + 7) / 8 * 8;
}

/* coro_spawn_new the general way: any size, any loop state. */
static CORO__NOINLINE coro_task *spawn_new_general(coro_loop *loop, size_t size, coro_step_fn step)
{
    loop = coro__loop_or_running(loop);
    if (!loop || loop->state == LOOP_CLOSED || !step || size < sizeof(coro_frame) ||
        size > FRAME_MAX_SIZE)
        return NULL;
    size_t total = spawn_new_size(size);
    coro_task *t = coro__alloc_fast(loop, total);
    if (!t)
        return NULL;
    coro_frame *root = inside_frame(t);
    if (total <= CORO__SLAB_MAX)
        coro__zero_words(root, (size + 7) / 8); /* a big one comes zeroed */
    frame_header(root, size, step, CORO__F_INSIDE);
    if (task_setup(t, loop, root, FUT_F_ALLOCATED) != 0) {
        coro__free(loop, t, total);
        return NULL;
    }
    loop->tasks_alive++;
    return t;
}

/* The hot case (spawn_fast_ok, and a small frame) makes no call. */
coro_task *coro_spawn_new(coro_loop *loop, size_t size, coro_step_fn step)
{
    coro_task *t;
    if (!loop || !step || size < sizeof(coro_frame) || size > CORO__SLAB_MAX ||
        !spawn_fast_ok(loop) || !(t = coro__slab_pop(loop, spawn_new_size(size))))
        return spawn_new_general(loop, size, step);
    coro_frame *root = inside_frame(t);
    coro__zero_words(root, (size + 7) / 8);
    frame_header(root, size, step, CORO__F_INSIDE);
    return spawned(t, loop, root);
}

void *coro_task_frame(coro_task *t)
{
    if (!t || t->fut.state != FUT_PENDING || !(t->fut.flags & FUT_F_ALLOCATED))
        return NULL;
    coro_frame *f = t->fut.val.frame;
    while (f && f->parent)
        f = f->parent;
    return f && f == inside_frame(t) ? f : NULL;
}

/* Zero a new frame, 8 bytes at a time (a slab object is a whole number
 * of 8-byte grains; a big one comes zeroed from the hook's path). */
static void zero_frame(void *f, size_t size)
{
    if (size <= CORO__SLAB_MAX)
        coro__zero_words(f, (size + 7) / 8);
}

/* A new frame from coro_frame_new: zeroed, its header written (NULL
 * stays NULL: the allocation failed). */
static CORO__ALWAYS_INLINE inline void *owned_frame(coro_frame *f, size_t size, coro_step_fn step)
{
    if (!f)
        return NULL;
    zero_frame(f, size); /* the header's fields are all 0 but step and flags */
    frame_header(f, size, step, CORO__F_OWNED);
    return f;
}

/* coro_frame_new the general way. */
static CORO__NOINLINE void *frame_new_general(coro_loop *loop, size_t size, coro_step_fn step)
{
    loop = coro__loop_or_running(loop);
    if (!loop || loop->state == LOOP_CLOSED || size < sizeof(coro_frame) || size > FRAME_MAX_SIZE)
        return NULL;
    return owned_frame(coro__alloc_fast(loop, size), size, step);
}

/* coro_frame_new past its checks, when the slab's free list is empty. */
static CORO__NOINLINE void *frame_refill(coro_loop *loop, size_t size, coro_step_fn step)
{
    return owned_frame(coro__alloc_raw(loop, size), size, step);
}

/* The hot case, a small frame from a free object in the slab, makes no
 * call. */
void *coro_frame_new(coro_loop *loop, size_t size, coro_step_fn step)
{
    if (!loop || loop->state == LOOP_CLOSED || size < sizeof(coro_frame) || size > CORO__SLAB_MAX)
        return frame_new_general(loop, size, step);
    coro_frame *f = coro__slab_pop(loop, size);
    if (!f)
        return frame_refill(loop, size, step);
    return owned_frame(f, size, step);
}

void coro_frame_free(coro_loop *loop, coro_frame *f)
{
    loop = coro__loop_or_running(loop);
    if (loop && loop->state != LOOP_CLOSED && f && !(f->flags & CORO__F_RUNNING))
        frame_release(loop, f);
}

static void report_unretrieved(coro_task *t)
{
    if (t->fut.state == FUT_ERROR && !(t->fut.flags & FUT_F_RETRIEVED))
        coro__report_line(t->fut.loop, "Task exception was never retrieved", (int)t->fut.val.i, t,
                          finished_line(t));
}

/* task_free's common case without a call: nothing to report, not listed,
 * not named, and the slab takes the object back inline. False, with
 * nothing done: task_free. */
static CORO__ALWAYS_INLINE inline bool task_free_quick(coro_task *t)
{
    coro_loop *loop = t->fut.loop;
    if ((t->fut.flags & (FUT_F_LISTED | FUT_F_NAMED)) || t->fut.state == FUT_ERROR ||
        !coro__slab_push(loop, t, task_alloc_size(t)))
        return false;
    loop->tasks_alive--;
    return true;
}

static void task_free(coro_task *t)
{
    coro_loop *loop = t->fut.loop;
    report_unretrieved(t);
    list_remove(loop, t);
    if (t->fut.flags & FUT_F_NAMED)
        name_drop(loop, t);
    loop->tasks_alive--;
    coro__free_fast(loop, t, task_alloc_size(t));
}

static void task_free_node(coro__node *n)
{
    coro_task *t = CORO__CONTAINER(n, coro_task, u.timer.node);
    t->fut.flags &= (uint8_t)~FUT_F_FREEING;
    if (!(t->fut.flags & FUT_F_PINNED)) /* else coro__task_unpin frees it */
        task_free(t);
}

/* After the done callbacks (FIFO): they may still read the task. */
static void schedule_free(coro_task *t)
{
    t->fut.flags |= FUT_F_FREEING;
    t->u.timer.node.run = task_free_node;
    coro__ready_push(t->fut.loop, &t->u.timer.node);
}

void coro__task_pin(coro_future *f)
{
    if (f->flags & FUT_F_TASK)
        f->flags |= FUT_F_PINNED;
}

void coro__task_unpin(coro_future *f)
{
    if (!(f->flags & FUT_F_PINNED))
        return;
    f->flags &= (uint8_t)~FUT_F_PINNED;
    if ((f->flags & FUT_F_RELEASED) && f->state != FUT_PENDING && !(f->flags & FUT_F_FREEING))
        schedule_free((coro_task *)(void *)f);
}

static bool free_at_once(const coro_task *t);

void coro_task_release(coro_task *t)
{
    if (!t || !(t->fut.flags & FUT_F_ALLOCATED) || (t->fut.flags & FUT_F_RELEASED))
        return;
    t->fut.flags |= FUT_F_RELEASED;
    if (t->fut.state == FUT_PENDING || t->fut.loop->state == LOOP_CLOSED)
        return;
    if (!free_at_once(t))
        schedule_free(t);
    else if (!task_free_quick(t))
        task_free(t);
}

/* A done, released task nothing queued will read (no done callback pending,
 * not held by run_until_complete, no free queued) may be freed now. */
static bool free_at_once(const coro_task *t)
{
    return (t->fut.tflags & TASK_F_QUIET) && !(t->fut.flags & (FUT_F_PINNED | FUT_F_FREEING));
}

/* The coroutine returned or failed: the task's own future completes. A
 * released task is freed after its done callbacks; with none, and
 * `may_free`, it is left to the caller to free (returns true). Its common
 * case has a call-free twin, task_return_quick: a change to what a done
 * task holds is made in both. */
static CORO__ALWAYS_INLINE inline bool task_finish(coro_task *t, coro_value *io, bool may_free)
{
    coro_loop *loop = t->fut.loop;
    coro_frame *root = t->fut.val.frame;
    uint32_t number = task_number(t), count_hi = t->fut.tag;
    root_release(t, root);
    t->u.timer.seq = number; /* task_number() once done */
    t->fut.aux = ((t->fut.flags & FUT_F_LISTED) ? list_index(t) : 0) | count_hi << TASK_INDEX_BITS;
    t->fut.val.i = 0;
    if (io->tag == CORO_ERROR && io->u.i != CORO_ECANCELLED) {
        t->fut.state = FUT_ERROR;
        t->fut.val.i = io->u.i;
        t->fut.tag = CORO_ERROR;
    } else if (io->tag == CORO_ERROR || must_cancel(t)) {
        t->fut.state = FUT_CANCELLED; /* asyncio: super().cancel() */
    } else {
        t->fut.state = FUT_RESULT;
        t->fut.val.i = io->u.i;
        t->fut.tag = (uint8_t)io->tag;
    }
    t->fut.tflags &= (uint8_t)~(TASK_F_MUST_CANCEL | TASK_F_UNARMED);
    if (!(t->fut.flags & FUT_F_LISTED))
        loop->tasks_unlisted--; /* its slot stays free, or takes the report below */
    if (t->fut.callbacks)
        coro__future_schedule_callbacks(&t->fut);
    else
        t->fut.tflags |= TASK_F_QUIET;
    if (!(t->fut.flags & FUT_F_ALLOCATED))
        list_remove(loop, t); /* caller-owned: the loop is done with it */
    else if (t->fut.flags & FUT_F_RELEASED) {
        if (may_free && free_at_once(t))
            return true;
        schedule_free(t);
    } else if (t->fut.state == FUT_ERROR && !(t->fut.flags & FUT_F_LISTED)) {
        list_put(loop, t); /* in the slot it had: close reports it if never retrieved */
    }
    return false;
}

/* ---- step and wakeup ---- */

static void task_wakeup(coro__node *n);

/* Park the task on what its chain suspended for. Returns false when the
 * suspension is refused: *io then holds the error to throw back in. */
static bool task_suspend(coro_task *t, int status, coro_value *io)
{
    coro_loop *loop = t->fut.loop;
    if (CORO__UNLIKELY(t->fut.tflags & TASK_F_UNARMED)) { /* timeout scopes entered since */
        t->fut.tflags &= (uint8_t)~TASK_F_UNARMED;             /* the last suspension */
        coro__timeouts_arm(loop);
    }
    if (status == CORO__AWAIT) {
        coro_future *f = io->u.p;
        if (f == &t->fut || f->loop != loop) {
            *io = coro_error(CORO_EINVAL); /* a task awaiting itself */
            return false;
        }
        if (CORO__UNLIKELY(!(t->fut.flags & FUT_F_LISTED)))
            list_join(loop, t); /* a waiting task must be findable: its slot was kept */
        t->u.w.node.run = task_wakeup;
        t->u.w.waiter = f;
        t->fut.tflags |= TASK_F_WAITING;
        coro__future_add_node(f, &t->u.w.node);
        if (must_cancel(t) && coro_future_cancel(f))
            t->fut.tflags &= (uint8_t)~TASK_F_MUST_CANCEL;
        return true;
    }
    if (status == CORO__YIELD && io->tag != CORO_NONE) {
        *io = coro_error(CORO_EINVAL); /* asyncio: "Task got bad yield" */
        return false;
    }
    if (status == CORO__SLEEP && !must_cancel(t)) {
        int64_t when = coro__deadline_after(coro__now(loop), io->u.i);
        t->u.timer.node.run = coro__task_step;
        if (coro__heap_push(loop, &t->u.timer, when) != 0) {
            *io = coro_error(CORO_ENOMEM);
            return false;
        }
        t->fut.tflags |= TASK_F_SLEEPING;
        return true;
    }
    schedule_step(t); /* sleep(0), a bare yield, or a sleep that must be cancelled */
    return true;
}

/* The chain stopped with `status`: finish, park, or throw the refusal back
 * in and drive again. */
static void task_settle(coro_task *t, int status, coro_value *io)
{
    for (;;) {
        if (status == CORO__DONE) {
            task_finish(t, io, false);
            return;
        }
        if (task_suspend(t, status, io))
            return;
        status = coro__drive(&t->fut.val.frame, io);
    }
}

/* __step: a pending cancel wins. */
static void take_cancel(coro_task *t, coro_value *io)
{
    if (!must_cancel(t))
        return;
    t->fut.tflags &= (uint8_t)~TASK_F_MUST_CANCEL;
    if (!(io->tag == CORO_ERROR && io->u.i == CORO_ECANCELLED))
        *io = coro_error(CORO_ECANCELLED);
}

/* One step, watched: debug timing and the failing line, the trace. */
static void task_run_watched(coro_task *t, coro_value *io, int cause)
{
    coro_loop *loop = t->fut.loop;
    int64_t t0 = 0;
    int line = t->fut.val.frame->resume;
    coro__step_mark mark;
    if (loop->debug)
        t0 = coro__clock_ns();
    if (loop->trace)
        coro__trace_step_begin(t, &mark, cause);
    take_cancel(t, io);
    loop->current = t;
    task_settle(t, coro__drive(&t->fut.val.frame, io), io);
    loop->current = NULL;
    if (loop->trace)
        coro__trace_step_end(t, &mark);
    if (t0 != 0 && t->fut.state != FUT_PENDING)
        t->u.timer.heap_index = (uint32_t)line; /* finished_line() */
    if (loop->debug)
        coro__check_slow(loop, t0, t, line);
}

/* One step, the general way: a pending cancel; watched when debug or
 * trace mode is on (one test of one byte). */
static void task_run(coro_task *t, coro_value *io, int cause)
{
    coro_loop *loop = t->fut.loop;
    if (loop->watch) {
        task_run_watched(t, io, cause);
        return;
    }
    take_cancel(t, io);
    loop->current = t;
    task_settle(t, coro__drive(&t->fut.val.frame, io), io);
    loop->current = NULL;
}

/* Task.__step's common end (super().set_result), written without a call so
 * that the pass's inline step keeps its registers: the root returned a
 * value, no cancel is pending, no done callback waits, the task is not in
 * the list and came from coro_spawn or coro_spawn_new. A released task is
 * freed here (after run_until_complete, when that holds it). False, with
 * nothing changed: task_finish's general way. */
static CORO__ALWAYS_INLINE inline bool task_return_quick(coro_task *t, coro_frame *root,
                                                         const coro_value *io)
{
    coro_loop *loop = t->fut.loop;
    if (io->tag == CORO_ERROR || t->fut.callbacks || (t->fut.tflags & TASK_F_MUST_CANCEL) ||
        (t->fut.flags & (FUT_F_LISTED | FUT_F_ALLOCATED)) != FUT_F_ALLOCATED)
        return false;
    if (root->flags & CORO__F_OWNED) {
        if (!coro__slab_push(loop, root, (size_t)root->size8 * 8u))
            return false;
    } else if (root->flags & CORO__F_INSIDE) {
        t->fut.tflags |= TASK_F_FRAME_INSIDE;
    }
    t->u.timer.seq = t->fut.aux;                          /* its number (not listed) */
    t->fut.aux = (uint32_t)t->fut.tag << TASK_INDEX_BITS; /* the cancel count's top */
    t->fut.state = FUT_RESULT;
    t->fut.val.i = io->u.i;
    t->fut.tag = (uint8_t)io->tag;
    t->fut.tflags |= TASK_F_QUIET; /* UNARMED's bit: no timeout scope is left */
    loop->tasks_unlisted--;
    loop->current = NULL;
    if (!(t->fut.flags & FUT_F_RELEASED))
        return true;
    if (t->fut.flags & FUT_F_PINNED)
        schedule_free(t); /* run_until_complete reads it first */
    else if (!task_free_quick(t))
        task_free(t);
    return true;
}

/* The root returned or failed: the general way. */
static CORO__NOINLINE void task_end(coro_task *t, coro_value *io)
{
    bool free_it = task_finish(t, io, true);
    t->fut.loop->current = NULL;
    if (free_it)
        task_free(t); /* released, and no callback to wait for */
}

/* An await, a sleep, a yield, or a child frame that returned: drive on. */
static CORO__NOINLINE void task_drive_on(coro_task *t, coro_frame *f, int status, coro_value *io)
{
    task_settle(t, coro__drive_on(&t->fut.val.frame, f, io, status), io);
    t->fut.loop->current = NULL;
}

/* The step's chain stopped with anything but the hot sleep(0): finish,
 * or drive on and settle (out of line, so that the inline fast path,
 * coro_int.h's coro__task_step_fast, stays small). Leaves the task
 * (loop->current = NULL); a released task that returned with no done
 * callback is freed. */
void coro__task_after_step(coro_task *t, int status, coro_value *io)
{
    coro_frame *f = t->fut.val.frame;
    if (status != CORO__DONE || f->parent) {
        task_drive_on(t, f, status, io);
        return;
    }
    f->flags &= (uint8_t)~CORO__F_RUNNING; /* the root returned: the driver */
    if (!task_return_quick(t, f, io))      /* has nothing to follow */
        task_end(t, io);
}

/* A step that is watched, has a cancel to throw in, or follows a sleep. */
void coro__task_step_slow(coro_task *t)
{
    coro_value io = coro_none();
    int cause = (t->fut.tflags & TASK_F_SLEEPING) ? CORO__WOKEN_TIMER : CORO__WOKEN_READY;
    t->fut.tflags &= (uint8_t)~TASK_F_SLEEPING;
    task_run(t, &io, cause);
}

/* Task.__step, as a ready-queue node's callback. The loop's pass calls the
 * same code inline (coro__task_step_fast) when it sees this function. */
void coro__task_step(coro__node *n)
{
    coro_task *t = CORO__CONTAINER(n, coro_task, u.timer.node);
    coro__task_step_fast(t->fut.loop, n);
}

static void task_wakeup(coro__node *n)
{
    coro_task *t = CORO__CONTAINER(n, coro_task, u.w.node);
    coro_value io;
    coro__future_outcome(t->u.w.waiter, &io);
    t->u.w.waiter = NULL;
    t->fut.tflags &= (uint8_t)~TASK_F_WAITING;
    task_run(t, &io, CORO__WOKEN_FUTURE);
}

coro_task *coro__task_waking(coro__node *n)
{
    return n->run == task_wakeup ? CORO__CONTAINER(n, coro_task, u.w.node) : NULL;
}

/* ---- cancellation ---- */

int coro_task_cancel(coro_task *t)
{
    if (!t || t->fut.state != FUT_PENDING)
        return 0;
    if (cancel_count(t) < TASK_COUNT_MAX)
        set_cancel_count(t, cancel_count(t) + 1);
    if ((t->fut.tflags & TASK_F_WAITING) && coro_future_cancel(t->u.w.waiter))
        return 1; /* its wakeup will throw the cancel in */
    t->fut.tflags |= TASK_F_MUST_CANCEL;
    if ((t->fut.tflags & TASK_F_SLEEPING) && t->u.timer.heap_index != CORO__HEAP_NONE) {
        coro__heap_cancel(t->fut.loop, &t->u.timer);
        t->fut.tflags &= (uint8_t)~TASK_F_SLEEPING;
        schedule_step(t);
    }
    return 1;
}

int coro_task_cancel_callback(void *task)
{
    coro_task_cancel(task);
    return 0;
}

int coro_task_cancelling(const coro_task *t) { return t ? cancel_count(t) : 0; }

int coro_task_uncancel(coro_task *t)
{
    if (!t)
        return 0;
    int n = cancel_count(t);
    if (t->fut.state != FUT_PENDING || n == 0)
        return n;
    set_cancel_count(t, --n); /* a cancel already delivered stays (3.12) */
    return n;
}

/* ---- queries ---- */

int coro_task_done(const coro_task *t) { return t && t->fut.state != FUT_PENDING; }
int coro_task_cancelled(const coro_task *t) { return t && t->fut.state == FUT_CANCELLED; }
int coro_task_result(coro_task *t, coro_value *out) { return coro_future_result(t ? &t->fut : NULL, out); }
coro_task *coro_current_task(const coro_loop *loop)
{
    if (!loop)
        loop = coro_get_running_loop();
    return loop ? loop->current : NULL;
}

int coro_task_resume_line(const coro_task *t)
{
    return t && t->fut.state == FUT_PENDING && t->fut.val.frame ? t->fut.val.frame->resume : 0;
}

/* ---- shutdown ---- */

void coro__tasks_fini(coro_loop *loop)
{
    coro__tasks_list_all(loop);
    for (uint32_t i = 0; i < loop->ntasks; i++) {
        coro_task *t = loop->tasks[i];
        if (loop->debug && t->fut.state == FUT_PENDING)
            coro__report(loop, "Task was destroyed but it is pending!", 0, t);
        else
            report_unretrieved(t);
    }
    coro__realloc(loop, loop->tasks, loop->tasks_cap * LIST_SLOT, 0);
    loop->tasks = NULL;
    loop->task_numbers = NULL;
    loop->ntasks = loop->tasks_cap = 0;
    loop->names = NULL; /* in the slab, released with it */
}
