/*
 * tests/test_trace.c - trace mode: the events of a known scene, in order,
 * with the real resume and suspend lines; the text lines; the Chrome Trace
 * Event file (valid JSON, the fields the format requires, the slices of
 * each task in order, every flow arrow with both ends); CORO_TRACE from
 * the environment; the error paths.
 *
 * The scene is the tour's two sleeping tasks: main starts a (sleeps 0.1 s)
 * and b (sleeps 0.2 s) and awaits a, then b. The loop runs on virtual time,
 * so the times in the trace are exact.
 */
#include "helpers.h"

#include <ctype.h>
#include <unistd.h>

/* ---- the scene ---- */

static int line_sleep, line_await_a, line_await_b;

struct sleeper {
    coro_frame co;
    double secs;
};

static CORO_FN(sleeper_step)
{
    struct sleeper *self = CORO_SELF(struct sleeper);
    CORO_BEGIN();
    line_sleep = __LINE__ + 1;
    CORO_SLEEP(self->secs);
    CORO_END();
}

struct scene {
    coro_frame co;
    struct sleeper a, b;
    coro_task ta, tb;
};

static CORO_FN(scene_step)
{
    struct scene *self = CORO_SELF(struct scene);
    CORO_BEGIN();
    self->a = (struct sleeper){ CORO_FRAME_INIT(sleeper_step), 0.1 };
    self->b = (struct sleeper){ CORO_FRAME_INIT(sleeper_step), 0.2 };
    coro_task_init(&self->ta, NULL, &self->a.co);
    coro_task_init(&self->tb, NULL, &self->b.co);
    line_await_a = __LINE__ + 1;
    CORO_AWAIT(&self->ta);
    line_await_b = __LINE__ + 1;
    CORO_AWAIT(&self->tb);
    CORO_END();
}

/* Run the scene on a virtual-time loop set up by `setup`. */
static void run_scene(void (*setup)(coro_loop *, void *), void *arg)
{
    static const coro_loop_options vt = { .virtual_time = 1 };
    coro_loop loop;
    static struct scene s;
    coro_task t;
    memset(&s, 0, sizeof s);
    coro_frame_init(&s.co, scene_step);
    assert_int_equal(coro_loop_init(&loop, &vt), 0);
    if (setup)
        setup(&loop, arg);
    assert_int_equal(coro_task_init(&t, &loop, &s.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- the hook: the events in order ---- */

#define MAX_EVENTS 64

struct rec {
    int kind;
    uint32_t task, waker;
    int resume, suspend;
    int64_t time_ns;
    char function[32], suspend_function[32], what[96];
};

struct recs {
    int n;
    struct rec r[MAX_EVENTS];
};

static void record(const coro_trace_event *ev, void *arg)
{
    struct recs *rs = arg;
    assert_true(rs->n < MAX_EVENTS);
    struct rec *r = &rs->r[rs->n++];
    r->kind = ev->kind;
    r->task = ev->task_number;
    r->waker = ev->waker_number;
    r->resume = ev->resume_line;
    r->suspend = ev->suspend_line;
    r->time_ns = ev->time_ns;
    snprintf(r->function, sizeof r->function, "%s", ev->function ? ev->function : "");
    snprintf(r->suspend_function, sizeof r->suspend_function, "%s",
             ev->suspend_function ? ev->suspend_function : "");
    snprintf(r->what, sizeof r->what, "%s", ev->what ? ev->what : "");
    assert_non_null(ev->task_name);
}

static void setup_hook(coro_loop *loop, void *arg)
{
    assert_int_equal(coro_loop_set_trace_hook(loop, record, arg), 0);
}

static void expect_step(const struct rec *r, uint32_t task, const char *fn, int resume,
                        const char *sfn, int suspend, const char *what_prefix)
{
    assert_int_equal(r->kind, CORO_TRACE_STEP);
    assert_int_equal(r->task, task);
    assert_string_equal(r->function, fn);
    assert_int_equal(r->resume, resume);
    assert_string_equal(r->suspend_function, sfn);
    assert_int_equal(r->suspend, suspend);
    if (strncmp(r->what, what_prefix, strlen(what_prefix)) != 0)
        fail_msg("what: \"%s\", want \"%s...\"", r->what, what_prefix);
}

static void expect_wake(const struct rec *r, uint32_t task, uint32_t waker, const char *what_prefix)
{
    assert_int_equal(r->kind, CORO_TRACE_WAKE);
    assert_int_equal(r->task, task);
    assert_int_equal(r->waker, waker);
    if (strncmp(r->what, what_prefix, strlen(what_prefix)) != 0)
        fail_msg("what: \"%s\", want \"%s...\"", r->what, what_prefix);
}

/* every step and wake of the scene, with the lines the frames resumed and
 * suspended at, what each task waits for, and who woke it */
static void test_events_of_two_sleepers(void **state)
{
    (void)state;
    struct recs rs = { 0 };
    run_scene(setup_hook, &rs);
    int i = 0;
    expect_step(&rs.r[i++], 1, "scene_step", 0, "scene_step", line_await_a, "task Task-2");
    expect_step(&rs.r[i++], 2, "sleeper_step", 0, "sleeper_step", line_sleep, "sleep until 0.100000");
    expect_step(&rs.r[i++], 3, "sleeper_step", 0, "sleeper_step", line_sleep, "sleep until 0.200000");
    expect_wake(&rs.r[i++], 2, 0, "timer");
    expect_wake(&rs.r[i++], 1, 2, "Task-2 finished"); /* a's completion wakes main */
    expect_step(&rs.r[i++], 2, "sleeper_step", line_sleep, "sleeper_step", 0, "done (returned)");
    expect_step(&rs.r[i++], 1, "scene_step", line_await_a, "scene_step", line_await_b, "task Task-3");
    expect_wake(&rs.r[i++], 3, 0, "timer");
    expect_wake(&rs.r[i++], 1, 3, "Task-3 finished");
    expect_step(&rs.r[i++], 3, "sleeper_step", line_sleep, "sleeper_step", 0, "done (returned)");
    expect_step(&rs.r[i++], 1, "scene_step", line_await_b, "scene_step", 0, "done (returned)");
    assert_int_equal(rs.n, i);
    /* virtual time: exact */
    assert_int_equal(rs.r[3].time_ns, 100000000);
    assert_int_equal(rs.r[7].time_ns, 200000000);
}

/* ---- text ---- */

static void setup_text(coro_loop *loop, void *arg)
{
    assert_int_equal(coro_loop_set_trace(loop, arg, NULL), 0);
}

static void test_text_lines(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    run_scene(setup_text, f);
    rewind(f);
    char line[256], want[64];
    int n = 0, found = 0;
    snprintf(want, sizeof want, "resume@%d -> suspend@%d scene_step: task Task-3", line_await_a,
             line_await_b);
    while (fgets(line, sizeof line, f)) {
        assert_memory_equal(line, "coro trace ", 11);
        n++;
        found += strstr(line, want) != NULL;
    }
    fclose(f);
    assert_int_equal(n, 11);
    assert_int_equal(found, 1);
}

/* ---- JSON: a small validator, then the format's fields ---- */

struct json {
    const char *p;
};

static void ws(struct json *j)
{
    while (isspace((unsigned char)*j->p))
        j->p++;
}

static int value(struct json *j);

static int string(struct json *j)
{
    if (*j->p != '"')
        return 0;
    for (j->p++; *j->p != '"'; j->p++) {
        if (!*j->p || (unsigned char)*j->p < 0x20)
            return 0;
        if (*j->p == '\\') {
            j->p++;
            if (*j->p == 'u') {
                for (int k = 0; k < 4; k++)
                    if (!isxdigit((unsigned char)*++j->p))
                        return 0;
            } else if (!strchr("\"\\/bfnrt", *j->p)) {
                return 0;
            }
        }
    }
    j->p++;
    return 1;
}

static int number(struct json *j)
{
    const char *s = j->p;
    if (*j->p == '-')
        j->p++;
    if (!isdigit((unsigned char)*j->p))
        return 0;
    while (isdigit((unsigned char)*j->p))
        j->p++;
    if (*j->p == '.') {
        j->p++;
        if (!isdigit((unsigned char)*j->p))
            return 0;
        while (isdigit((unsigned char)*j->p))
            j->p++;
    }
    return j->p > s;
}

static int members(struct json *j, char open, char close)
{
    j->p++;
    ws(j);
    if (*j->p == close) {
        j->p++;
        return 1;
    }
    for (;;) {
        ws(j);
        if (open == '{') {
            if (!string(j))
                return 0;
            ws(j);
            if (*j->p++ != ':')
                return 0;
        }
        if (!value(j))
            return 0;
        ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p != close)
            return 0;
        j->p++;
        return 1;
    }
}

static int value(struct json *j)
{
    ws(j);
    switch (*j->p) {
    case '{':
        return members(j, '{', '}');
    case '[':
        return members(j, '[', ']');
    case '"':
        return string(j);
    case 't':
        return strncmp(j->p, "true", 4) == 0 ? (j->p += 4, 1) : 0;
    case 'f':
        return strncmp(j->p, "false", 5) == 0 ? (j->p += 5, 1) : 0;
    case 'n':
        return strncmp(j->p, "null", 4) == 0 ? (j->p += 4, 1) : 0;
    default:
        return number(j);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++)
        n++;
    return n;
}

static void check_chrome_trace(const char *text)
{
    struct json j = { text };
    assert_true(value(&j));
    ws(&j);
    assert_int_equal(*j.p, '\0');
    assert_non_null(strstr(text, "\"traceEvents\":["));
    /* 7 steps, each a complete event with the fields the format requires */
    assert_int_equal(count(text, "\"ph\":\"X\""), 7);
    for (const char *p = text; (p = strstr(p, "\"ph\":\"X\"")); p++) {
        const char *end = strchr(p, '}');
        const char *start = p;
        while (start > text && *start != '{')
            start--;
        char ev[512];
        size_t len = (size_t)(end - start) < sizeof ev - 1 ? (size_t)(end - start) : sizeof ev - 1;
        memcpy(ev, start, len);
        ev[len] = '\0';
        for (const char *field = "name\0ts\0dur\0pid\0tid\0"; *field; field += strlen(field) + 1) {
            char key[16];
            snprintf(key, sizeof key, "\"%s\":", field);
            if (!strstr(ev, key))
                fail_msg("a step without %s: %s", key, ev);
        }
    }
    /* every flow arrow has both ends; one per wake by a future (2) */
    assert_int_equal(count(text, "\"ph\":\"s\""), 2);
    assert_int_equal(count(text, "\"ph\":\"f\""), 2);
    assert_int_equal(count(text, "\"ph\":\"i\""), 4);
    assert_true(count(text, "\"ph\":\"C\"") >= 3);
    /* the tracks have names; a's slices in order: start, then the resume */
    assert_non_null(strstr(text, "\"args\":{\"name\":\"Task-2\"}"));
    char first[64], second[64];
    snprintf(first, sizeof first, "\"name\":\"sleeper_step:0\"");
    snprintf(second, sizeof second, "\"name\":\"sleeper_step:%d\"", line_sleep);
    const char *p1 = strstr(text, first), *p2 = strstr(text, second);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_true(p1 < p2);
}

static char json_path[64];

static void setup_json(coro_loop *loop, void *arg)
{
    (void)arg;
    assert_int_equal(coro_loop_set_trace(loop, NULL, json_path), 0);
}

static void make_path(void)
{
    snprintf(json_path, sizeof json_path, "/tmp/coro-trace-%d.json", (int)getpid());
}

static void test_chrome_trace_file(void **state)
{
    (void)state;
    make_path();
    run_scene(setup_json, NULL); /* complete once the loop is closed */
    check_chrome_trace(slurp(json_path));
    unlink(json_path);
}

/* The per-pass counter counts every armed timer, those far ahead (in a far
 * bucket, not the heap) included: a task asleep for an hour and one for a
 * millisecond are 2 timers. */
struct nap {
    coro_frame co;
    double seconds;
};

static CORO_FN(nap_step)
{
    struct nap *self = CORO_SELF(struct nap);
    CORO_BEGIN();
    CORO_SLEEP(self->seconds);
    CORO_END();
}

static void test_counter_counts_far_timers(void **state)
{
    (void)state;
    make_path();
    coro_loop loop;
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_set_trace(&loop, NULL, json_path), 0);
    struct nap far = { CORO_FRAME_INIT(nap_step), 3600 }, near = { CORO_FRAME_INIT(nap_step), 0.001 };
    coro_task tf, tn;
    assert_int_equal(coro_task_init(&tf, &loop, &far.co), 0);
    assert_int_equal(coro_task_init(&tn, &loop, &near.co), 0);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tn)), 0);
    coro_task_cancel(&tf);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tf)), CORO_ECANCELLED);
    assert_int_equal(coro_loop_close(&loop), 0);
    char *text = slurp(json_path);
    assert_non_null(strstr(text, "\"timers\":2}")); /* both asleep */
    assert_non_null(strstr(text, "\"timers\":1}")); /* the near one fired */
    unlink(json_path);
}

/* CORO_TRACE=path.json from the environment, as a user runs a program */
static void test_env(void **state)
{
    (void)state;
    make_path();
    assert_int_equal(setenv("CORO_TRACE", json_path, 1), 0);
    run_scene(NULL, NULL);
    unsetenv("CORO_TRACE");
    check_chrome_trace(slurp(json_path));
    unlink(json_path);
}

/* errors; switching off completes the file; the hook and the sinks part */
static void test_errors_and_off(void **state)
{
    (void)state;
    coro_loop loop;
    assert_int_equal(coro_loop_set_trace(NULL, stderr, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_set_trace_hook(NULL, record, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_loop_set_trace(&loop, NULL, "/nonexistent-dir/x.json"), -ENOENT);
    make_path();
    assert_int_equal(coro_loop_set_trace(&loop, NULL, json_path), 0);
    assert_int_equal(coro_loop_set_trace(&loop, NULL, NULL), 0); /* off: the file is complete */
    struct json j = { slurp(json_path) };
    assert_true(value(&j));
    unlink(json_path);
    assert_int_equal(coro_loop_set_trace_hook(&loop, NULL, NULL), 0); /* nothing to remove */
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* a task whose frame is its own (coro_frame_new) is freed when it ends:
 * the trace names its last step from what it recorded before (ASan checks) */
static void test_owned_frames(void **state)
{
    (void)state;
    static const coro_loop_options vt = { .virtual_time = 1 };
    coro_loop loop;
    struct recs rs = { 0 };
    assert_int_equal(coro_loop_init(&loop, &vt), 0);
    assert_int_equal(coro_loop_set_trace_hook(&loop, record, &rs), 0);
    struct sleeper *s = CORO_FRAME_NEW(&loop, struct sleeper, sleeper_step);
    assert_non_null(s);
    s->secs = 0.01;
    coro_task *t = coro_spawn(&loop, &s->co);
    assert_non_null(t);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(t)), 0);
    coro_task_release(t);
    assert_true(rs.n >= 2);
    expect_step(&rs.r[rs.n - 1], rs.r[rs.n - 1].task, "sleeper_step", line_sleep, "sleeper_step", 0,
                "done (returned)");
    assert_int_equal(coro_loop_close(&loop), 0);
}

int main(void)
{
    unsetenv("CORO_TRACE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_of_two_sleepers),
        cmocka_unit_test(test_text_lines),
        cmocka_unit_test(test_chrome_trace_file),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_counter_counts_far_timers),
        cmocka_unit_test(test_errors_and_off),
        cmocka_unit_test(test_owned_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
