/*
 * tests/test_inspect.c - where is every task: coro_all_tasks, the task
 * states, what each waits on, its await chain (coro_task_get_stack) and
 * the dump, whole-loop and per task, on demand through a signal.
 *
 * The scene: main holds a lock and starts four tasks: "locker" (its root
 * awaits a child frame that waits for the lock), "sleeper" (sleeps), a
 * queue getter on an empty queue, and a waiter that awaits the sleeper.
 * After two passes each is parked; main inspects them, then cancels them
 * all. Lines come from __LINE__ beside each suspension point, so the
 * expected frames and lines are exact in both macro forms.
 */
#include "helpers.h"

#include <signal.h>

static int line_outer, line_inner, line_sleep, line_main;

struct inner {
    coro_frame co;
    coro_lock *lock;
    coro_lock_acquire_op acq;
};

static CORO_FN(inner_step)
{
    struct inner *self = CORO_SELF(struct inner);
    CORO_BEGIN();
    line_inner = __LINE__ + 1;
    CORO_AWAIT(coro_lock_acquire(&self->acq, self->lock));
    coro_lock_release(self->lock);
    CORO_END();
}

struct outer {
    coro_frame co;
    struct inner in;
};

static CORO_FN(outer_step)
{
    struct outer *self = CORO_SELF(struct outer);
    CORO_BEGIN();
    line_outer = __LINE__ + 1;
    CORO_AWAIT(&self->in.co);
    CORO_END();
}

struct napper {
    coro_frame co;
};

static CORO_FN(napper_step)
{
    CORO_BEGIN();
    line_sleep = __LINE__ + 1;
    CORO_SLEEP(10.0);
    CORO_END();
}

struct getter {
    coro_frame co;
    coro_queue *q;
    coro_queue_get_op get;
};

static CORO_FN(getter_step)
{
    struct getter *self = CORO_SELF(struct getter);
    CORO_BEGIN();
    CORO_AWAIT(coro_queue_get(&self->get, self->q));
    CORO_END();
}

struct awaiter {
    coro_frame co;
    coro_task *t;
};

static CORO_FN(awaiter_step)
{
    struct awaiter *self = CORO_SELF(struct awaiter);
    CORO_BEGIN();
    CORO_AWAIT(self->t);
    CORO_END();
}

/* the dump's lines, collected */
struct lines {
    int n;
    char l[32][160];
};

static void collect(const char *line, void *arg)
{
    struct lines *ls = arg;
    assert_true(ls->n < 32);
    snprintf(ls->l[ls->n++], sizeof ls->l[0], "%s", line);
}

static int find(const struct lines *ls, const char *want)
{
    for (int i = 0; i < ls->n; i++)
        if (strcmp(ls->l[i], want) == 0)
            return i;
    return -1;
}

struct frame_rec {
    int n;
    char fn[8][32];
    int line[8];
};

static void record_frame(const char *function, const char *file, int line, void *arg)
{
    struct frame_rec *r = arg;
    assert_non_null(file);
    if (r->n < 8) {
        snprintf(r->fn[r->n], sizeof r->fn[0], "%s", function ? function : "?");
        r->line[r->n++] = line;
    }
}

static int count_visit(coro_task *t, void *arg)
{
    (void)t;
    (*(int *)arg)++;
    return 0;
}

static int stop_at_two(coro_task *t, void *arg)
{
    (void)t;
    return ++*(int *)arg == 2;
}

struct main_frame {
    coro_frame co;
    coro_lock lock;
    coro_queue q;
    struct outer o;
    struct napper n;
    struct getter g;
    struct awaiter a;
    coro_task t[4];
    struct lines dump, one, sig;
    FILE *sigout;
    int i;
};

static void check_scene(struct main_frame *m)
{
    char buf[96];
    int visited = 0;
    /* all_tasks: the five live tasks, and a visitor may stop the walk */
    assert_int_equal(coro_all_tasks(NULL, count_visit, &visited), 5);
    assert_int_equal(visited, 5);
    visited = 0;
    assert_int_equal(coro_all_tasks(NULL, stop_at_two, &visited), 2);
    /* states and what each waits on */
    assert_int_equal(coro_task_state(coro_current_task(NULL)), CORO_TASK_RUNNING);
    assert_int_equal(coro_task_state(&m->t[0]), CORO_TASK_WAITING);
    assert_int_equal(coro_task_state(&m->t[1]), CORO_TASK_SLEEPING);
    assert_int_equal(coro_task_state(&m->t[2]), CORO_TASK_WAITING);
    assert_int_equal(coro_task_state(&m->t[3]), CORO_TASK_WAITING);
    assert_int_equal(coro_task_describe_wait(&m->t[0], buf, sizeof buf), 0);
    assert_string_equal(buf, "waiting on a lock");
    coro_task_describe_wait(&m->t[1], buf, sizeof buf);
    assert_memory_equal(buf, "sleeping, wakes in 9.9", 22);
    coro_task_describe_wait(&m->t[2], buf, sizeof buf);
    assert_string_equal(buf, "waiting on queue get");
    coro_task_describe_wait(&m->t[3], buf, sizeof buf);
    assert_string_equal(buf, "waiting on task sleeper"); /* its name */
    /* the locker's chain: its root, the child, then the acquire's frame */
    struct frame_rec r = { 0 };
    assert_int_equal(coro_task_get_stack(&m->t[0], record_frame, &r), 3);
    assert_string_equal(r.fn[0], "outer_step");
    assert_int_equal(r.line[0], line_outer);
    assert_string_equal(r.fn[1], "inner_step");
    assert_int_equal(r.line[1], line_inner);
    /* the whole-loop dump, as a person reads it */
    assert_int_equal(coro_loop_dump(NULL, collect, &m->dump), 5);
    assert_string_equal(m->dump.l[0], "coro: 5 tasks, running: Task-1");
    int at = find(&m->dump, "Task-2 \"locker\" waiting on a lock");
    assert_true(at > 0);
    char want[160];
    snprintf(want, sizeof want, "  outer_step (%s:%d)", __FILE__, line_outer);
    assert_string_equal(m->dump.l[at + 1], want);
    snprintf(want, sizeof want, "  inner_step (%s:%d)", __FILE__, line_inner);
    assert_string_equal(m->dump.l[at + 2], want);
    snprintf(want, sizeof want, "  main_step (%s:%d)", __FILE__, line_main + 1); /* the second sleep(0) */
    assert_true(find(&m->dump, want) > 0);
    assert_true(find(&m->dump, "Task-5 waiting on task sleeper") > 0);
    /* one task */
    assert_int_equal(coro_task_dump(&m->t[1], collect, &m->one), 0);
    assert_memory_equal(m->one.l[0], "Task-3 \"sleeper\" sleeping", 25);
    snprintf(want, sizeof want, "  napper_step (%s:%d)", __FILE__, line_sleep);
    assert_string_equal(m->one.l[1], want);
}

static CORO_FN(main_step)
{
    struct main_frame *m = CORO_SELF(struct main_frame);
    CORO_BEGIN();
    coro_lock_init(&m->lock, NULL);
    coro_queue_init(&m->q, NULL, 1);
    m->lock.locked = 1; /* main holds the lock (its layout is visible to tests) */
    coro_frame_init(&m->o.co, outer_step);
    coro_frame_init(&m->o.in.co, inner_step);
    m->o.in.lock = &m->lock;
    coro_frame_init(&m->n.co, napper_step);
    coro_frame_init(&m->g.co, getter_step);
    m->g.q = &m->q;
    coro_frame_init(&m->a.co, awaiter_step);
    m->a.t = &m->t[1];
    coro_task_init(&m->t[0], NULL, &m->o.co);
    coro_task_init(&m->t[1], NULL, &m->n.co);
    coro_task_init(&m->t[2], NULL, &m->g.co);
    coro_task_init(&m->t[3], NULL, &m->a.co);
    coro_task_set_name(&m->t[0], "locker");
    coro_task_set_name(&m->t[1], "sleeper");
    line_main = __LINE__ + 1;
    CORO_SLEEP(0);
    CORO_SLEEP(0);
    check_scene(m);
    /* on demand: a signal, delivered through the loop, prints the dump */
    assert_int_equal(coro_loop_dump_on_signal(NULL, SIGUSR1, m->sigout), 0);
    raise(SIGUSR1);
    for (m->i = 0; m->i < 5; m->i++)
        CORO_SLEEP(0.001);
    coro_remove_signal_handler(coro_get_running_loop(), SIGUSR1);
    for (m->i = 0; m->i < 4; m->i++)
        coro_task_cancel(&m->t[m->i]);
    for (m->i = 0; m->i < 4; m->i++)
        CORO_AWAIT_ERR(&m->t[m->i], m->dump.n);
    m->lock.locked = 0;
    coro_queue_fini(&m->q);
    CORO_END();
}

static void test_where_is_every_task(void **state)
{
    (void)state;
    static struct main_frame m;
    memset(&m, 0, sizeof m);
    m.sigout = tmpfile();
    assert_non_null(m.sigout);
    coro_frame_init(&m.co, main_step);
    assert_int_equal(coro_run(&m.co, NULL, NULL), 0);
    rewind(m.sigout);
    char line[200];
    int saw_locker = 0, saw_header = 0;
    while (fgets(line, sizeof line, m.sigout)) {
        saw_header += strncmp(line, "coro: 5 tasks", 13) == 0;
        saw_locker += strcmp(line, "Task-2 \"locker\" waiting on a lock\n") == 0;
    }
    fclose(m.sigout);
    assert_int_equal(saw_header, 1);
    assert_int_equal(saw_locker, 1);
}

/* the error paths, and a done task (no stack, its state) */
static int noop_visit(coro_task *t, void *arg)
{
    (void)t, (void)arg;
    return 0;
}

static void noop_frame(const char *f, const char *file, int line, void *arg)
{
    (void)f, (void)file, (void)line, (void)arg;
}

static CORO_FN(quick_step)
{
    CORO_BEGIN();
    CORO_END();
}

static void test_errors_and_done_tasks(void **state)
{
    (void)state;
    char buf[8];
    assert_int_equal(coro_all_tasks(NULL, noop_visit, NULL), CORO_EINVAL); /* no loop running */
    assert_int_equal(coro_task_state(NULL), CORO_EINVAL);
    assert_int_equal(coro_task_describe_wait(NULL, buf, sizeof buf), CORO_EINVAL);
    assert_int_equal(coro_task_get_stack(NULL, noop_frame, NULL), CORO_EINVAL);
    assert_int_equal(coro_task_dump(NULL, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_dump(NULL, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_dump_on_signal(NULL, 0, NULL), CORO_EINVAL);
    assert_int_equal(coro_task_print_stack(NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_loop_print_tasks(NULL, NULL), CORO_EINVAL);
    coro_loop loop;
    coro_task t;
    coro_frame f = CORO_FRAME_INIT(quick_step);
    assert_int_equal(coro_loop_init(&loop, NULL), 0);
    assert_int_equal(coro_all_tasks(&loop, NULL, NULL), CORO_EINVAL);
    assert_int_equal(coro_task_init(&t, &loop, &f), 0);
    assert_int_equal(coro_task_state(&t), CORO_TASK_SCHEDULED);
    FILE *out = tmpfile(); /* the FILE forms print what the writer forms write */
    assert_non_null(out);
    assert_int_equal(coro_task_print_stack(&t, out), 0);
    assert_int_equal(coro_loop_print_tasks(&loop, out), 1);
    rewind(out);
    char line[96];
    assert_non_null(fgets(line, sizeof line, out));
    assert_string_equal(line, "Task-1 scheduled (runs on the next pass)\n");
    assert_non_null(fgets(line, sizeof line, out)); /* its one frame */
    assert_non_null(strstr(line, "quick_step"));
    assert_non_null(fgets(line, sizeof line, out));
    assert_string_equal(line, "coro: 1 task\n");
    fclose(out);
    assert_int_equal(coro_task_describe_wait(&t, buf, sizeof buf), 0);
    assert_string_equal(buf, "schedul"); /* truncated to fit */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t)), 0);
    assert_int_equal(coro_task_state(&t), CORO_TASK_DONE);
    assert_int_equal(coro_task_get_stack(&t, noop_frame, NULL), 0);
    assert_int_equal(coro_all_tasks(&loop, noop_visit, NULL), 0);
    struct lines ls = { 0 };
    assert_int_equal(coro_loop_dump(&loop, collect, &ls), 0);
    assert_string_equal(ls.l[0], "coro: 0 tasks");
    assert_int_equal(coro_loop_close(&loop), 0);
}

/* ---- the lazy task list: every place a task can be ---- */

struct parker {
    coro_frame co;
    coro_future *fut; /* NULL: sleep `secs` instead */
    double secs;
    int err;
};

static CORO_FN(parker_step)
{
    struct parker *self = CORO_SELF(struct parker);
    CORO_BEGIN();
    if (self->fut) {
        CORO_AWAIT_ERR(self->fut, self->err);
    } else {
        CORO_SLEEP(self->secs);
    }
    CORO_END();
}

static void parker_init(struct parker *p, coro_future *fut, double secs)
{
    coro_frame_init(&p->co, parker_step);
    p->fut = fut;
    p->secs = secs;
    p->err = 1;
}

static int visited_current;

static int note_current(coro_task *t, void *arg)
{
    (void)arg;
    visited_current += t == coro_current_task(NULL);
    return 0;
}

struct lister {
    coro_frame co;
    int all, listed_before, listed_after;
    long allocs_before, *allocs;
};

static CORO_FN(lister_step)
{
    struct lister *self = CORO_SELF(struct lister);
    coro_loop *loop = coro_get_running_loop();
    CORO_BEGIN();
    self->listed_before = (int)loop->ntasks;
    self->allocs_before = *self->allocs;
    self->all = coro_all_tasks(NULL, note_current, NULL);
    self->listed_after = (int)loop->ntasks;
    CORO_END();
}

/* A task is written into the loop's list only when it first waits on a
 * future; all_tasks finds the others where they are (running, queued, in
 * the timer heap, in a far bucket) and allocates nothing to do it. */
static void test_all_tasks_finds_every_place_a_task_can_be(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options opt = talloc_options(&a);
    assert_int_equal(coro_loop_init(&loop, &opt), 0);
    coro_future fut;
    coro_future_init(&fut, &loop);
    struct parker waits, near, far, ready;
    parker_init(&waits, &fut, 0);
    parker_init(&near, NULL, 10);  /* in the timer heap */
    parker_init(&far, NULL, 3600); /* in a far bucket */
    parker_init(&ready, NULL, 0);
    coro_task tw, tn, tf, tr, tl;
    assert_int_equal(coro_task_init(&tw, &loop, &waits.co), 0);
    assert_int_equal(coro_task_init(&tn, &loop, &near.co), 0);
    assert_int_equal(coro_task_init(&tf, &loop, &far.co), 0);
    run_one_pass(&loop); /* each parks: only the waiter joins the list */
    assert_int_equal(coro_task_state(&tw), CORO_TASK_WAITING);
    assert_int_equal(coro_task_state(&tn), CORO_TASK_SLEEPING);
    assert_int_equal(coro_task_state(&tf), CORO_TASK_SLEEPING);
    struct lister l = { .allocs = &a.calls };
    coro_frame_init(&l.co, lister_step);
    assert_int_equal(coro_task_init(&tl, &loop, &l.co), 0);     /* the lister runs first, */
    assert_int_equal(coro_task_init(&tr, &loop, &ready.co), 0); /* so tr is still queued */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tl)), 0);
    assert_int_equal(l.listed_before, 1);
    assert_int_equal(l.all, 5); /* waiter, near, far, ready and the lister itself */
    assert_int_equal(l.listed_after, 5);
    assert_int_equal(a.calls, l.allocs_before); /* the room was kept at creation */
    assert_int_equal(visited_current, 1);
    assert_true(coro_task_done(&tr)); /* in the pass that ran the stop */
    assert_int_equal(loop.ntasks, 3); /* the lister and tr left it when they finished */
    coro_future_set_result(&fut, coro_none());
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tw)), 0);
    assert_int_equal(waits.err, 0);
    coro_task_cancel(&tn);
    coro_task_cancel(&tf);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tf)), CORO_ECANCELLED);
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&tn)), CORO_ECANCELLED);
    assert_int_equal(coro_all_tasks(&loop, noop_visit, NULL), 0);
    assert_int_equal(loop.ntasks, 0);
    assert_int_equal(loop.tasks_unlisted, 0);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(a.live, 0);
}

/* A task's room in the list is taken when it is created: with none to be
 * had, creating it fails with CORO_ENOMEM (nothing leaks, its frame from
 * coro_frame_new is freed), and a wait never allocates. */
static void test_task_list_room_is_taken_at_creation(void **state)
{
    (void)state;
    coro_loop loop;
    talloc a = { 0 };
    coro_loop_options opt = talloc_options(&a);
    opt.reserve_tasks = 1;
    assert_int_equal(coro_loop_init(&loop, &opt), 0);
    coro_future f1;
    coro_future_init(&f1, &loop);
    struct parker p1, p2;
    parker_init(&p1, &f1, 0);
    parker_init(&p2, NULL, 0);
    coro_task t1, t2;
    assert_int_equal(coro_task_init(&t1, &loop, &p1.co), 0); /* the one reserved slot */
    a.fail_at = a.calls + 1;
    a.persistent = 1;
    assert_int_equal(coro_task_init(&t2, &loop, &p2.co), CORO_ENOMEM);
    assert_null(coro_spawn(&loop, coro_frame_new(&loop, sizeof(struct parker), parker_step)));
    long calls = a.calls;
    run_one_pass(&loop); /* t1 waits: it joins the list without allocating */
    assert_int_equal(a.calls, calls);
    assert_int_equal(coro_task_state(&t1), CORO_TASK_WAITING);
    assert_int_equal(loop.ntasks, 1);
    a.fail_at = 0;
    a.persistent = 0;
    coro_future_set_result(&f1, coro_int(1));
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t1)), 0);
    assert_int_equal(p1.err, 0);
    assert_int_equal(coro_task_init(&t2, &loop, &p2.co), 0); /* its room is back */
    assert_int_equal(coro_loop_run_until_complete(&loop, coro_task_future(&t2)), 0);
    assert_int_equal(coro_loop_close(&loop), 0);
    assert_int_equal(a.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_list_room_is_taken_at_creation),
        cmocka_unit_test(test_all_tasks_finds_every_place_a_task_can_be),
        cmocka_unit_test(test_where_is_every_task),
        cmocka_unit_test(test_errors_and_done_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
