/*
 * trace.c - trace mode: every step and every wake-up of every task, as
 * text, as a Chrome Trace Event file (Perfetto), or to a hook.
 *
 * Where the events come from (the only hooks, each behind one test of a
 * loop byte, so trace off costs the hot path nothing new):
 *   task.c   task_run_watched: a step, between coro__trace_step_begin and
 *            coro__trace_step_end (a step takes that path when loop->watch
 *            is set: debug or trace);
 *   future.c coro__future_schedule_callbacks: a future completed; each
 *            task whose wakeup node is on it is woken (coro__trace_wakes);
 *   loop.c   coro__trace_pass at each pass, coro__trace_stop at close.
 * What a step resumed at and suspended at is the frame's resume point
 * (co->resume) before and after the step; the function and file are asked
 * of the body itself (coro__frame_describe). What a task waits for comes
 * from its flags, its timer's deadline, or the kind of the future it waits
 * on (coro__future_kind), set by whoever made that future.
 *
 * The JSON sink: one track (tid) per task, tid 0 the loop itself; a
 * complete event ("X") per step; for a wake-up an instant ("i") on the
 * woken task's track and a flow ("s" on the waker's track, "f" bound to
 * the woken task's next step) so Perfetto draws an arrow; a counter ("C")
 * per pass for the ready queue and the pending timers.
 *
 * Memory: the loop's allocator (so trace mode works in the heap-free mode
 * too, from the arena), the FILE buffers aside.
 *
 * Never: touch a task's fields, or allocate, when trace mode is off.
 */
#include "coro_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct task_slot {
    uint32_t flow;   /* the flow id of the wake-up its next step ends, or 0 */
    uint8_t named;   /* its JSON track has its name */
};

struct coro__tracer {
    coro_loop *loop;
    FILE *text;
    FILE *json;
    int json_events;
    coro_trace_fn hook;
    void *hook_arg;
    int64_t t0;
    uint64_t pass;
    uint32_t next_flow;
    struct task_slot *slots; /* by task number */
    uint32_t nslots;
};

/* ---- on and off ---- */

static struct coro__tracer *tracer_get(coro_loop *loop)
{
    if (!loop->tracer) {
        loop->tracer = coro__alloc(loop, sizeof *loop->tracer); /* zeroed */
        if (loop->tracer) {
            loop->tracer->t0 = coro__now(loop);
            loop->tracer->loop = loop;
        }
    }
    return loop->tracer;
}

static void json_close(struct coro__tracer *tr)
{
    if (!tr->json)
        return;
    fputs("\n]}\n", tr->json);
    fclose(tr->json);
    tr->json = NULL;
}

static void tracer_update(coro_loop *loop)
{
    struct coro__tracer *tr = loop->tracer;
    loop->trace = tr && (tr->text || tr->json || tr->hook);
    loop->watch = loop->debug || loop->trace;
    loop->attn = (uint8_t)((loop->attn & ~CORO__ATTN_TRACE) | (loop->trace ? CORO__ATTN_TRACE : 0));
    if (tr && !loop->trace) {
        coro__free(loop, tr->slots, tr->nslots * sizeof *tr->slots);
        coro__free(loop, tr, sizeof *tr);
        loop->tracer = NULL;
    }
}

static int json_open(struct coro__tracer *tr, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return errno ? -errno : CORO_EINVAL;
    fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
          "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"coro loop\"}},\n"
          "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"loop\"}}",
          f);
    tr->json = f;
    tr->json_events = 2;
    return 0;
}

int coro_loop_set_trace(coro_loop *loop, FILE *text, const char *json_path)
{
    if (!loop)
        return CORO_EINVAL;
    if (!text && !json_path) {
        if (loop->tracer) {
            json_close(loop->tracer);
            loop->tracer->text = NULL;
            loop->tracer->hook = NULL;
        }
        tracer_update(loop);
        return 0;
    }
    struct coro__tracer *tr = tracer_get(loop);
    if (!tr)
        return CORO_ENOMEM;
    if (json_path) {
        FILE *old = tr->json;
        tr->json = NULL;
        int rc = json_open(tr, json_path);
        if (rc != 0) {
            tr->json = old;
            tracer_update(loop);
            return rc;
        }
        if (old) {
            fputs("\n]}\n", old);
            fclose(old);
        }
    }
    tr->text = text;
    tracer_update(loop);
    return 0;
}

int coro_loop_set_trace_hook(coro_loop *loop, coro_trace_fn fn, void *arg)
{
    if (!loop)
        return CORO_EINVAL;
    struct coro__tracer *tr = fn ? tracer_get(loop) : loop->tracer;
    if (fn && !tr)
        return CORO_ENOMEM;
    if (tr) {
        tr->hook = fn;
        tr->hook_arg = arg;
    }
    tracer_update(loop);
    return 0;
}

void coro__trace_from_env(coro_loop *loop)
{
    const char *v = getenv("CORO_TRACE");
    if (!v || !*v || strcmp(v, "0") == 0)
        return;
    size_t n = strlen(v);
    int rc;
    if (strcmp(v, "1") == 0) {
        rc = coro_loop_set_trace(loop, stderr, NULL);
    } else if (n > 5 && strcmp(v + n - 5, ".json") == 0) {
        rc = coro_loop_set_trace(loop, NULL, v);
    } else {
        FILE *f = fopen(v, "a");
        rc = f ? coro_loop_set_trace(loop, f, NULL) : -errno;
        /* the file stays open for the process: CORO_TRACE is a debugging aid */
    }
    if (rc != 0)
        fprintf(stderr, "coro: CORO_TRACE=%s: %s\n", v, coro_strerror(rc));
}

void coro__trace_stop(coro_loop *loop)
{
    if (!loop->tracer)
        return;
    json_close(loop->tracer);
    loop->tracer->text = NULL;
    loop->tracer->hook = NULL;
    tracer_update(loop);
}

/* ---- the task dump, printed (inspect.c builds it) ---- */

static void write_line(const char *line, void *arg)
{
    FILE *out = arg;
    fputs(line, out);
    fputc('\n', out);
}

int coro_task_print_stack(coro_task *t, FILE *out)
{
    return coro_task_dump(t, write_line, out ? out : stderr);
}

int coro_loop_print_tasks(coro_loop *loop, FILE *out)
{
    int n = coro_loop_dump(loop, write_line, out ? out : stderr);
    if (n >= 0)
        fflush(out ? out : stderr);
    return n;
}

/* Where each signal's dump goes (a signal has one disposition per process). */
static FILE *dump_out[65];

static int dump_on_signal(void *arg)
{
    int signo = (int)(intptr_t)arg;
    coro_loop_print_tasks(NULL, signo > 0 && signo < 65 ? dump_out[signo] : NULL);
    return 0;
}

int coro_loop_dump_on_signal(coro_loop *loop, int signo, FILE *out)
{
    loop = coro__loop_or_running(loop);
    if (!loop || signo <= 0 || signo >= 65)
        return CORO_EINVAL;
    dump_out[signo] = out;
    return coro_add_signal_handler(loop, signo, dump_on_signal, (void *)(intptr_t)signo);
}

/* ---- per-task state: flow ids, named tracks ---- */

static struct task_slot *slot(coro_loop *loop, uint32_t number)
{
    struct coro__tracer *tr = loop->tracer;
    if (number >= tr->nslots) {
        uint32_t n = tr->nslots ? tr->nslots : 64;
        while (n <= number)
            n *= 2;
        struct task_slot *s = coro__alloc(loop, n * sizeof *s); /* zeroed */
        if (!s)
            return NULL;
        if (tr->slots)
            memcpy(s, tr->slots, tr->nslots * sizeof *s);
        coro__free(loop, tr->slots, tr->nslots * sizeof *s);
        tr->slots = s;
        tr->nslots = n;
    }
    return &tr->slots[number];
}

/* ---- what a task waits for ---- */


static double rel_seconds(const coro_loop *loop, int64_t when)
{
    return (double)(when - loop->tracer->t0) / 1e9;
}

static void describe_future(coro_future *f, char *buf, size_t len)
{
    char name[32];
    unsigned kind = coro__future_kind(f);
    if (f->flags & FUT_F_TASK) {
        snprintf(buf, len, "task %s", coro__task_name((coro_task *)(void *)f, name, sizeof name));
    } else if (kind == FUT_KIND_FD_READ || kind == FUT_KIND_FD_WRITE) {
        coro_fd *w = kind == FUT_KIND_FD_READ ? CORO__CONTAINER(f, coro_fd, rfut)
                                              : CORO__CONTAINER(f, coro_fd, wfut);
        snprintf(buf, len, "fd %d %s", w->fd, kind == FUT_KIND_FD_READ ? "readable" : "writable");
    } else {
        snprintf(buf, len, "%s", coro__future_kind_name(kind));
    }
}

static void describe_wait(coro_task *t, char *buf, size_t len)
{
    coro_loop *loop = t->fut.loop;
    int64_t when;
    if (t->fut.state == FUT_RESULT) {
        snprintf(buf, len, "done (returned)");
    } else if (t->fut.state == FUT_ERROR) {
        snprintf(buf, len, "done (failed: %s)", coro_err_name((int)t->fut.val.i));
    } else if (t->fut.state == FUT_CANCELLED) {
        snprintf(buf, len, "done (cancelled)");
    } else if (t->fut.tflags & TASK_F_WAITING) {
        describe_future(t->u.w.waiter, buf, len);
    } else if ((t->fut.tflags & TASK_F_SLEEPING) && coro__timer_when(loop, &t->u.timer, &when)) {
        snprintf(buf, len, "sleep until %.6f", rel_seconds(loop, when));
    } else {
        snprintf(buf, len, "the next pass");
    }
}

/* ---- the sinks ---- */

static void json_sep(struct coro__tracer *tr)
{
    fputs(tr->json_events++ ? ",\n" : "\n", tr->json);
}

/* A JSON string: the names here are C identifiers and file paths, but
 * escape what JSON requires all the same. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_track_name(struct coro__tracer *tr, const coro_trace_event *ev)
{
    struct task_slot *s = slot(tr->loop, ev->task_number);
    if (!s || s->named)
        return;
    s->named = 1;
    json_sep(tr);
    fprintf(tr->json, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"args\":{\"name\":",
            ev->task_number);
    json_str(tr->json, ev->task_name);
    fputs("}}", tr->json);
    json_sep(tr);
    fprintf(tr->json, "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":%u,"
            "\"args\":{\"sort_index\":%u}}", ev->task_number, ev->task_number);
}

static void json_step(struct coro__tracer *tr, const coro_trace_event *ev, uint32_t flow)
{
    double ts = (double)ev->time_ns / 1e3, dur = (double)ev->duration_ns / 1e3;
    json_track_name(tr, ev);
    if (flow) { /* the arrow from the wake-up ends at this step */
        json_sep(tr);
        fprintf(tr->json, "{\"name\":\"wake\",\"cat\":\"wake\",\"ph\":\"f\",\"bp\":\"e\",\"id\":%u,"
                "\"ts\":%.3f,\"pid\":1,\"tid\":%u}", flow, ts, ev->task_number);
    }
    json_sep(tr);
    fputs("{\"name\":", tr->json);
    char name[160];
    snprintf(name, sizeof name, "%s:%d", ev->function ? ev->function : "?", ev->resume_line);
    json_str(tr->json, name);
    fprintf(tr->json, ",\"cat\":\"step\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":1,\"tid\":%u,"
            "\"args\":{\"resume\":%d,\"suspend\":%d,\"function\":",
            ts, dur > 0 ? dur : 0.001, ev->task_number, ev->resume_line, ev->suspend_line);
    json_str(tr->json, ev->function);
    fputs(",\"suspend_function\":", tr->json);
    json_str(tr->json, ev->suspend_function);
    fputs(",\"file\":", tr->json);
    json_str(tr->json, ev->file);
    fputs(",\"waits\":", tr->json);
    json_str(tr->json, ev->what);
    fprintf(tr->json, ",\"pass\":%llu}}", (unsigned long long)ev->pass);
}

static void json_wake(struct coro__tracer *tr, const coro_trace_event *ev, uint32_t flow)
{
    double ts = (double)ev->time_ns / 1e3;
    json_track_name(tr, ev);
    json_sep(tr);
    fprintf(tr->json, "{\"name\":\"wake\",\"cat\":\"wake\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%.3f,"
            "\"pid\":1,\"tid\":%u,\"args\":{\"by\":", ts, ev->task_number);
    json_str(tr->json, ev->what);
    fputs("}}", tr->json);
    if (flow) {
        json_sep(tr);
        fprintf(tr->json, "{\"name\":\"wake\",\"cat\":\"wake\",\"ph\":\"s\",\"id\":%u,\"ts\":%.3f,"
                "\"pid\":1,\"tid\":%u}", flow, ts, ev->waker_number);
    }
}

static void text_line(struct coro__tracer *tr, const coro_trace_event *ev)
{
    double t = (double)ev->time_ns / 1e9;
    if (ev->kind == CORO_TRACE_WAKE) {
        fprintf(tr->text, "coro trace %.6f pass %llu wake %s: %s\n", t,
                (unsigned long long)ev->pass, ev->task_name, ev->what);
        return;
    }
    char from[24], to[24];
    if (ev->resume_line > 0)
        snprintf(from, sizeof from, "resume@%d", ev->resume_line);
    else
        snprintf(from, sizeof from, "start");
    if (ev->suspend_line > 0)
        snprintf(to, sizeof to, "suspend@%d", ev->suspend_line);
    else
        snprintf(to, sizeof to, "end");
    fprintf(tr->text, "coro trace %.6f pass %llu %s %s (%s) %s -> %s %s: %s\n", t,
            (unsigned long long)ev->pass, ev->task_name, ev->function ? ev->function : "?",
            ev->file ? ev->file : "?", from, to, ev->suspend_function ? ev->suspend_function : "?",
            ev->what);
}

static void emit(coro_loop *loop, const coro_trace_event *ev, uint32_t flow)
{
    struct coro__tracer *tr = loop->tracer;
    if (tr->text)
        text_line(tr, ev);
    if (tr->json) {
        if (ev->kind == CORO_TRACE_STEP)
            json_step(tr, ev, flow);
        else
            json_wake(tr, ev, flow);
    }
    if (tr->hook)
        tr->hook(ev, tr->hook_arg);
}

/* ---- the events ---- */

static void event_init(coro_loop *loop, coro_trace_event *ev, int kind, coro_task *t, char *name,
                       size_t len)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->time_ns = coro__now(loop) - loop->tracer->t0;
    ev->pass = loop->tracer->pass;
    ev->task = t;
    ev->task_number = coro__task_number(t);
    ev->task_name = coro__task_name(t, name, len);
}

void coro__trace_pass(coro_loop *loop)
{
    struct coro__tracer *tr = loop->tracer;
    tr->pass++;
    if (!tr->json)
        return;
    unsigned ready = 0;
    for (coro__node *n = loop->ready_head; n; n = n->next)
        ready++;
    json_sep(tr);
    fprintf(tr->json, "{\"name\":\"loop\",\"ph\":\"C\",\"ts\":%.3f,\"pid\":1,"
            "\"args\":{\"ready\":%u,\"timers\":%u}}",
            (double)(coro__now(loop) - tr->t0) / 1e3, ready,
            loop->heap_len - loop->heap_dead + loop->far_timers);
}

void coro__trace_step_begin(coro_task *t, coro__step_mark *m, int cause)
{
    coro_loop *loop = t->fut.loop;
    m->t0 = coro__clock_ns();
    m->now = coro__now(loop);
    coro__frame_info at = coro__frame_describe(t->fut.val.frame);
    m->function = at.function;
    m->file = at.file;
    m->line = t->fut.val.frame ? t->fut.val.frame->resume : 0;
    if (cause != CORO__WOKEN_TIMER || !t->fut.val.frame)
        return;
    /* a sleep ended: its timer is the waker (no future, no arrow) */
    char name[32];
    coro_trace_event ev;
    event_init(loop, &ev, CORO_TRACE_WAKE, t, name, sizeof name);
    ev.time_ns = m->now - loop->tracer->t0;
    ev.what = "timer (its sleep ended)";
    emit(loop, &ev, 0);
}

void coro__trace_step_end(coro_task *t, const coro__step_mark *m)
{
    coro_loop *loop = t->fut.loop;
    struct coro__tracer *tr = loop->tracer;
    if (!tr)
        return; /* switched off inside the step */
    char name[32], what[96];
    coro_trace_event ev;
    event_init(loop, &ev, CORO_TRACE_STEP, t, name, sizeof name);
    ev.duration_ns = coro__clock_ns() - m->t0;
    ev.time_ns = m->now - tr->t0; /* a slice starts when the step did */
    coro__frame_info at = { m->function, m->file };
    ev.function = at.function;
    ev.file = at.file;
    ev.resume_line = m->line > 0 ? m->line : 0;
    bool done = t->fut.state != FUT_PENDING;
    coro__frame_info now = done ? at : coro__frame_describe(t->fut.val.frame);
    ev.suspend_function = now.function;
    ev.suspend_line = done ? 0 : t->fut.val.frame->resume;
    describe_wait(t, what, sizeof what);
    ev.what = what;
    struct task_slot *s = slot(loop, ev.task_number);
    uint32_t flow = s ? s->flow : 0;
    if (s)
        s->flow = 0;
    emit(loop, &ev, flow);
}

void coro__trace_wakes(coro_future *f)
{
    coro_loop *loop = f->loop;
    struct coro__tracer *tr = loop->tracer;
    char cause[128], name[32], fut[64];
    coro_task *by = loop->current;
    describe_future(f, fut, sizeof fut);
    if (by == (coro_task *)(void *)f)
        snprintf(cause, sizeof cause, "%s finished", coro__task_name(by, name, sizeof name));
    else if (by)
        snprintf(cause, sizeof cause, "%s done, by %s", fut, coro__task_name(by, name, sizeof name));
    else
        snprintf(cause, sizeof cause, "%s done, by %s", fut,
                 loop->phase == CORO__PHASE_POLL ? "the selector (fd ready)" : "a loop callback");
    for (coro__node *n = f->callbacks; n; n = n->next) {
        coro_task *t = coro__task_waking(n);
        if (!t)
            continue;
        coro_trace_event ev;
        event_init(loop, &ev, CORO_TRACE_WAKE, t, name, sizeof name);
        ev.what = cause;
        ev.waker_number = by ? coro__task_number(by) : 0;
        struct task_slot *s = slot(loop, ev.task_number);
        uint32_t flow = 0;
        if (s && tr->json)
            s->flow = flow = ++tr->next_flow;
        emit(loop, &ev, flow);
    }
}
