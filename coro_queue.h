/*
 * coro_queue.h - part of coro.h: queues: FIFO, LIFO, priority (asyncio/queues.py).
 *
 * Included by coro.h; users include coro.h only. The contracts follow
 * coro.h's conventions: caller-owned objects with *_init, one operation frame
 * per awaitable operation (embed it in your frame, await what its init
 * function returns), negative error codes. A NULL `loop` in an *_init is
 * the running loop (coro_get_running_loop()); "NULL" in the return codes
 * below means a NULL object, or a NULL loop with no loop running.
 *
 *   asyncio                          coro
 *   ------------------------------   ---------------------------------------------
 *   q = Queue(maxsize)               coro_queue_init(&q, loop, maxsize)
 *   q = LifoQueue(maxsize)           coro_lifo_queue_init(&q, loop, maxsize)
 *   q = PriorityQueue(maxsize)       coro_priority_queue_init(&q, loop, maxsize, cmp, arg)
 *   (no heap: your own array)        coro_queue_init_buf, coro_lifo_queue_init_buf,
 *                                    coro_priority_queue_init_buf
 *   (garbage collection)             coro_queue_fini(&q)
 *   await q.put(item)                CORO_AWAIT(coro_queue_put(&self->put, &q, item))
 *   item = await q.get()             CORO_AWAIT(coro_queue_get(&self->get, &q));
 *                                    item = CORO_RESULT
 *   q.put_nowait(item)               coro_queue_put_nowait(&q, item)   (CORO_EFULL)
 *   item = q.get_nowait()            coro_queue_get_nowait(&q, &item)  (CORO_EEMPTY)
 *   q.task_done()                    coro_queue_task_done(&q)
 *   await q.join()                   CORO_AWAIT(coro_queue_join(&self->join, &q))
 *   q.shutdown(immediate)            coro_queue_shutdown(&q, immediate) (CORO_ESHUTDOWN)
 *   q.qsize() empty() full() maxsize coro_queue_qsize / _empty / _full / _maxsize
 *
 * Items are coro_values, copied in and out by value: a CORO_PTR item's
 * pointee is the program's business (a queue never frees what it drops).
 * Waking follows asyncio exactly: a put wakes the first waiting getter, a
 * get wakes the first waiting putter; a woken waiter takes its item (or its
 * room) only when it runs, so an item never sits inside a waiter and a
 * cancelled one loses nothing; a waiter woken and then cancelled before it
 * ran passes its wakeup on to the next one. None of this allocates: a wait
 * is the coro_waiter inside the operation frame.
 */
#ifndef CORO_QUEUE_H
#define CORO_QUEUE_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

/* A priority queue's order: negative when `a` must come out before `b`,
 * positive when after, 0 for equal priorities (those come out in the order
 * they were put: a sequence number breaks the tie). `arg` is the one given
 * at init. It must not touch the queue. */
typedef int (*coro_queue_cmp_fn)(coro_value a, coro_value b, void *arg);

/* One slot of a priority queue's storage: the item and its insertion
 * number. Only needed to size the array of coro_priority_queue_init_buf.
 * All fields private. */
typedef struct coro_queue_pentry {
    coro_value v;
    uint64_t seq;
} coro_queue_pentry;

/* A queue, in caller-owned storage. All fields private: read them through
 * the functions below. */
typedef struct coro_queue {
    coro_loop *loop;       /* NULL: not initialised, or finalised */
    void *slots;           /* coro_value[cap], or coro_queue_pentry[cap] */
    size_t cap;            /* slots allocated (or given) */
    size_t head;           /* FIFO: the oldest item's slot */
    size_t len;            /* items held (qsize) */
    size_t maxsize;        /* 0: unbounded */
    size_t unfinished;     /* puts not yet matched by task_done */
    uint64_t seq;          /* priority: the next insertion number */
    coro_queue_cmp_fn cmp; /* priority: NULL for the numeric default */
    void *cmp_arg;
    coro_waitq getters; /* asyncio's _getters */
    coro_waitq putters; /* asyncio's _putters */
    coro_waitq joiners; /* the waiters of asyncio's _finished event */
    size_t parked;      /* operation frames suspended on the queue */
    uint8_t kind;       /* FIFO, LIFO or priority */
    uint8_t flags;      /* shut down, storage owned */
} coro_queue;

/* ---- creating and destroying ---------------------------------------- */

/* Initialise a FIFO queue (asyncio.Queue) holding at most `maxsize` items;
 * 0 means unbounded. A bounded queue allocates its maxsize slots
 * (sizeof(coro_value) each) here, once, through the loop's allocator; an unbounded one
 * allocates nothing here, and its first put allocates 8 slots, doubled
 * whenever a put finds them full (the array keeps its largest size until
 * fini). Returns 0, CORO_EINVAL if `q` or `loop` is NULL, CORO_ECLOSED if
 * the loop is closed, CORO_ENOMEM (nothing to undo then: `q` is left
 * uninitialised). */
int coro_queue_init(coro_queue *q, coro_loop *loop, size_t maxsize);
/* The same for a LIFO queue (asyncio.LifoQueue): the last item put comes
 * out first. */
int coro_lifo_queue_init(coro_queue *q, coro_loop *loop, size_t maxsize);
/* The same for a priority queue (asyncio.PriorityQueue), a binary heap: the
 * item that `cmp` orders first comes out first, and items of equal priority
 * come out in the order they were put (asyncio leaves ties to tuple
 * comparison; coro numbers the puts). With `cmp` NULL, items must be
 * CORO_INT or CORO_DOUBLE and the smallest number comes first (an INT and
 * a DOUBLE compare as doubles; NaN comes after every number); a put of any
 * other tag is refused with CORO_EINVAL. Slots are
 * sizeof(coro_queue_pentry) (24 bytes). Same return codes. */
int coro_priority_queue_init(coro_queue *q, coro_loop *loop, size_t maxsize, coro_queue_cmp_fn cmp,
                             void *arg);

/* Heap-free variants: the queue keeps its items in `buf`, `capacity` slots
 * that the caller owns and keeps valid until coro_queue_fini; maxsize is
 * `capacity` (the queue is bounded, never grows, and allocates nothing,
 * ever). Returns 0, CORO_EINVAL if `q`, `loop` or `buf` is NULL or
 * `capacity` is 0, CORO_ECLOSED if the loop is closed. */
int coro_queue_init_buf(coro_queue *q, coro_loop *loop, coro_value *buf, size_t capacity);
int coro_lifo_queue_init_buf(coro_queue *q, coro_loop *loop, coro_value *buf, size_t capacity);
int coro_priority_queue_init_buf(coro_queue *q, coro_loop *loop, coro_queue_pentry *buf,
                                 size_t capacity, coro_queue_cmp_fn cmp, void *arg);

/* Release what init allocated. Refused with CORO_ESTATE while any
 * operation frame is suspended on the queue (a get, put or join waiting,
 * or woken and not yet resumed): nothing changes then. Shut the queue down
 * (that wakes getters and putters; joiners wake only when nothing is
 * unfinished) or cancel those tasks, and let the loop run them first. Once the
 * loop is closed its tasks can never resume, and fini always succeeds.
 * Items still held are dropped (not freed: see above). Afterwards `q` is
 * uninitialised: the operations return CORO_EINVAL (NULL for the
 * operation frames); fini again returns 0. The array comes from the
 * loop, so coro_loop_close releases it if fini was never called; call fini
 * to release it earlier. Returns 0, CORO_EINVAL for NULL, CORO_ESTATE. */
int coro_queue_fini(coro_queue *q);

/* ---- state ----------------------------------------------------------- */

/* The number of items held (qsize); 0 for NULL. */
size_t coro_queue_qsize(const coro_queue *q);
/* 1 if no item is held, else 0 (0 for NULL). */
int coro_queue_empty(const coro_queue *q);
/* 1 if the queue is bounded and holds maxsize items, else 0 (an unbounded
 * queue is never full, even when its next growth would fail; 0 for NULL). */
int coro_queue_full(const coro_queue *q);
/* The bound given at init (the capacity for the _buf variants); 0 for an
 * unbounded queue or NULL. */
size_t coro_queue_maxsize(const coro_queue *q);

/* ---- without waiting ------------------------------------------------- */

/* put_nowait: add `item` at once, or fail. The first waiting getter is
 * woken (it takes an item when it runs). Counts one unfinished task (see
 * task_done). Returns 0; CORO_EINVAL for a NULL or uninitialised queue, or
 * an item the default priority order cannot compare; CORO_ESHUTDOWN once
 * the queue is shut down; CORO_EFULL when it is full; CORO_ENOMEM when an
 * unbounded queue needed to grow and could not (the queue is unchanged);
 * CORO_ECLOSED once the loop is closed. */
int coro_queue_put_nowait(coro_queue *q, coro_value item);
/* get_nowait: remove the next item (FIFO, LIFO or priority order) into
 * *out, or fail. The first waiting putter is woken. `out` may be NULL (the
 * item is dropped). Returns 0; CORO_EEMPTY when there is none;
 * CORO_ESHUTDOWN when there is none and the queue is shut down (a shut
 * down queue still hands out what it holds); CORO_EINVAL for a NULL or
 * uninitialised queue; CORO_ECLOSED once the loop is closed. */
int coro_queue_get_nowait(coro_queue *q, coro_value *out);

/* ---- awaitable operations -------------------------------------------- */

/* Each is an operation frame: embed it in your frame, and await what its
 * function returns, freshly each time (coro.h's rule 4):
 *
 *     CORO_AWAIT(coro_queue_get(&self->get, &self->q));
 *     self->item = CORO_RESULT;
 *
 * The functions run nothing; they return NULL for a NULL `op`, a NULL or
 * uninitialised queue (awaiting NULL fails with CORO_EINVAL). An operation
 * that can proceed at once (an item to get, room to put, nothing
 * unfinished) does not suspend; otherwise it parks its coro_waiter on the
 * queue and suspends: no operation allocates (except an unbounded queue's
 * growth). All fields private. */
typedef struct coro_queue_get_op {
    coro_frame co;
    coro_waiter w;
    coro_queue *q;
    int parked;
} coro_queue_get_op;

typedef struct coro_queue_put_op {
    coro_frame co;
    coro_waiter w;
    coro_queue *q;
    coro_value item;
    int parked;
} coro_queue_put_op;

typedef struct coro_queue_join_op {
    coro_frame co;
    coro_waiter w;
    coro_queue *q;
    int parked;
} coro_queue_join_op;

/* await q.get(): the result is the item. Waits while the queue is empty,
 * in FIFO order with the other getters. Fails with CORO_ESHUTDOWN when the
 * queue is (or becomes) shut down and empty, with CORO_ECANCELLED when
 * cancelled: then no item was taken, and a wakeup it had received goes to
 * the next getter. Also fails as get_nowait does. An item tagged CORO_ERROR
 * is taken and comes out as that error (the await protocol's rule, as
 * coro_future_set_result makes such a value the future's error): catch it
 * with CORO_AWAIT_ERR; get_nowait hands it over as a value. */
coro_frame *coro_queue_get(coro_queue_get_op *op, coro_queue *q);
/* await q.put(item): waits while the queue is full, in FIFO order with the
 * other putters, then puts as put_nowait does (whose errors it fails with,
 * CORO_EFULL excepted). Fails with CORO_ESHUTDOWN when the queue is (or
 * becomes) shut down, with CORO_ECANCELLED when cancelled: then the item
 * was not put, and a wakeup it had received goes to the next putter. */
coro_frame *coro_queue_put(coro_queue_put_op *op, coro_queue *q, coro_value item);

/* ---- unfinished tasks ------------------------------------------------ */

/* task_done: a consumer has finished with an item it got. When every item
 * put has been matched, the joiners wake. Returns 0, CORO_EINVAL if called
 * more times than items were put (or for a NULL or uninitialised queue),
 * CORO_ECLOSED once the loop is closed. */
int coro_queue_task_done(coro_queue *q);
/* await q.join(): returns (CORO_NONE) at once when every item put has been
 * matched by a task_done, else waits until then (a joiner woken stays
 * woken, as asyncio's Event). Fails with CORO_ECANCELLED when cancelled.
 * Shutdown does not wake joiners, unless an immediate one drops the last
 * unfinished items. */
coro_frame *coro_queue_join(coro_queue_join_op *op, coro_queue *q);

/* ---- shutdown (asyncio 3.13) ----------------------------------------- */

/* Shut the queue down: from now on every put fails with CORO_ESHUTDOWN,
 * and gets hand out what is left, then fail with CORO_ESHUTDOWN. Every
 * waiting getter and putter is woken: putters fail, getters take an item
 * if one is left or fail. With `immediate` nonzero the items held are
 * dropped first (not freed: drain with get_nowait after a plain shutdown
 * to release what they own), the unfinished count goes down by one per
 * item dropped (not below 0), and the joiners wake if it reaches 0. May be
 * called again (an immediate shutdown after a plain one drops what is
 * left). Returns 0, CORO_EINVAL for a NULL or uninitialised queue,
 * CORO_ECLOSED once the loop is closed. */
int coro_queue_shutdown(coro_queue *q, int immediate);

#endif
