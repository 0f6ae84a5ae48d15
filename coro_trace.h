/*
 * coro_trace.h - part of coro.h: watch the state machines run. Trace mode
 * reports every step of every task (where it resumed, where it suspended,
 * what it now waits for) and every wake-up (who caused it), as text, as a
 * Chrome Trace Event file for ui.perfetto.dev / chrome://tracing, or to
 * your own hook. asyncio has no such view; its debug mode reports slow
 * callbacks only.
 *
 * Included by coro.h in hosted builds; users include coro.h only.
 *
 *   CORO_TRACE=1 ./prog              one line per event on stderr
 *   CORO_TRACE=out.json ./prog       a timeline for Perfetto (any other
 *                                    value is a text file to write)
 *   coro_loop_set_trace(loop, stderr, "out.json")   the same from code
 *
 * A text line reads:
 *
 *   coro trace 0.100213 pass 7 Task-2 greet_step (tour.c) resume@51 -> suspend@53 greet_step: sleep until 0.300213
 *   coro trace 0.300251 pass 12 wake Task-2: timer (sleep until 0.300213)
 *
 * loop time (seconds since the trace started), the loop's pass, the task,
 * the frame it resumed in and the line (its resume point: `start` for the
 * first step), then the innermost frame after the step and the line it
 * suspended at (a child it entered with yield from shows here), and what
 * it waits for: a future, a task, a lock, a queue, an event, a semaphore,
 * an fd and direction, a sleep until T, the next pass, or how it ended.
 * The lines come from the frames' resume points, never reconstructed.
 *
 * Cost: with trace off, none on the hot path beyond the one predictable
 * test a step already makes for debug mode. With trace on, every step
 * takes the slow path and describes its frames (a call of the body).
 * Trace mode takes its state from the loop's allocator (the arena in the
 * heap-free mode); a JSON file's buffer is stdio's.
 */
#ifndef CORO_TRACE_H
#define CORO_TRACE_H

#ifndef CORO_H
#error "include coro.h, not this part"
#endif

#include <stdio.h>

/* What happened. */
enum { CORO_TRACE_STEP = 1, CORO_TRACE_WAKE = 2 };

/* One event, as the hook receives it. Strings live until the hook returns. */
typedef struct coro_trace_event {
    int kind;                     /* CORO_TRACE_STEP or CORO_TRACE_WAKE */
    int64_t time_ns;              /* loop time since the trace started */
    uint64_t pass;                /* the loop's pass (1 = the first) */
    coro_task *task;              /* the task that stepped, or that was woken */
    uint32_t task_number;         /* its creation number (Task-N) */
    const char *task_name;
    /* step: the frame it resumed in, and where (0: its first step) */
    const char *function, *file;
    int resume_line;
    /* step: the innermost frame after it, and where it suspended (0 when
     * the task finished) */
    const char *suspend_function;
    int suspend_line;
    /* step: what the task now waits for, or how it ended; wake: the cause */
    const char *what;
    int64_t duration_ns;          /* step: the real time it took */
    uint32_t waker_number;        /* wake: the task that caused it (0: the loop) */
} coro_trace_event;

typedef void (*coro_trace_fn)(const coro_trace_event *ev, void *arg);

/* Trace mode: text lines to `text` (e.g. stderr), and/or the Chrome Trace
 * Event format written to `json_path` (a track per task, a slice per step
 * named function:line, instant events and flow arrows for wake-ups from
 * the waker's step to the step they cause, counters for the ready queue
 * and the pending timers; the file is complete once the loop is closed or
 * trace mode is switched off). Both NULL switches trace mode off (the hook
 * too). Returns 0; CORO_EINVAL for a NULL loop; -errno if the file cannot
 * be created (trace mode is then unchanged). `text` stays the caller's. */
int coro_loop_set_trace(coro_loop *loop, FILE *text, const char *json_path);
/* Trace mode with your own consumer: `fn(ev, arg)` for every event (with
 * or without text and JSON). NULL fn removes it. Returns 0, CORO_EINVAL
 * for a NULL loop, CORO_ENOMEM. The tour draws its timeline with it. */
int coro_loop_set_trace_hook(coro_loop *loop, coro_trace_fn fn, void *arg);

/* ---- where is every task, printed (coro.h's coro_loop_dump, to a FILE) ---- */

/* task.print_stack(file=out): coro_task_dump to `out` (NULL: stderr). */
int coro_task_print_stack(coro_task *t, FILE *out);
/* Every task of the loop (NULL: the running one) and its await chain to
 * `out` (NULL: stderr); returns how many tasks, or CORO_EINVAL. */
int coro_loop_print_tasks(coro_loop *loop, FILE *out);
/* On demand, as Go's SIGQUIT: when `signo` (SIGQUIT, SIGUSR1...) arrives,
 * the loop prints every task and its await chain to `out` (NULL: stderr)
 * and goes on. The signal is delivered through the loop like any
 * coro_add_signal_handler (so the dump runs between steps, never inside
 * one); coro_remove_signal_handler(loop, signo) undoes it. Returns what
 * coro_add_signal_handler returns. */
int coro_loop_dump_on_signal(coro_loop *loop, int signo, FILE *out); /* NULL loop: the running one */


#endif
