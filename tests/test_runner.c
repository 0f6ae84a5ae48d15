/*
 * tests/test_runner.c - coro_run as asyncio.run: Ctrl-C.
 *
 * Since Python 3.11 asyncio.run turns the first SIGINT into a cancel of the
 * main task (its cleanup runs) and lets a second one stop the program at
 * once; it leaves SIGINT alone when the program handles it itself. Each
 * test raises SIGINT in its own process (the second-SIGINT test in a child
 * process, which must die of it).
 */
#include "helpers.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int sigint_is(void (*handler)(int))
{
    struct sigaction sa;
    assert_int_equal(sigaction(SIGINT, NULL, &sa), 0);
    return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == handler;
}

/* ---- a sleeping child, awaited so the cancel can be caught ---- */

struct nap {
    coro_frame co;
    double secs;
};

static CORO_FN(nap_step)
{
    struct nap *self = CORO_SELF(struct nap);
    CORO_BEGIN();
    CORO_SLEEP(self->secs);
    CORO_END();
}

static void nap_init(struct nap *n, double secs)
{
    coro_frame_init(&n->co, nap_step);
    n->secs = secs;
}

/* main: raise SIGINT, then sleep long; `catch_` swallows the first cancel
 * (and with `again`, raises SIGINT a second time and sleeps on). */
struct interrupted {
    coro_frame co;
    struct nap nap;
    int catch_, again, err, fin;
    int64_t t0, t1;
};

static CORO_FN(interrupted_step)
{
    struct interrupted *self = CORO_SELF(struct interrupted);
    CORO_BEGIN();
    self->t0 = coro_loop_time_ns(NULL);
    raise(SIGINT);
    nap_init(&self->nap, 10.0);
    if (!self->catch_)
        CORO_AWAIT(&self->nap.co);
    CORO_AWAIT_ERR(&self->nap.co, self->err);
    self->t1 = coro_loop_time_ns(NULL);
    if (self->again) {
        raise(SIGINT);
        nap_init(&self->nap, 5.0);
        CORO_AWAIT(&self->nap.co);
    }
    CORO_RETURN(coro_int(7));
    CORO_FINALLY
    self->fin++;
    CORO_END();
}

static void test_first_sigint_cancels_main(void **state)
{
    (void)state;
    assert_true(sigint_is(SIG_DFL));
    struct interrupted m;
    memset(&m, 0, sizeof m);
    coro_frame_init(&m.co, interrupted_step);
    coro_value v = coro_none();
    assert_int_equal(coro_run(&m.co, &v, NULL), CORO_ECANCELLED);
    assert_int_equal(m.fin, 1); /* its cleanup ran */
    assert_true(sigint_is(SIG_DFL)); /* given back */
}

static void test_main_may_catch_the_cancel(void **state)
{
    (void)state;
    struct interrupted m;
    memset(&m, 0, sizeof m);
    m.catch_ = 1;
    coro_frame_init(&m.co, interrupted_step);
    coro_value v = coro_none();
    assert_int_equal(coro_run(&m.co, &v, NULL), 0);
    assert_int_equal(m.err, CORO_ECANCELLED);
    assert_true(m.t1 - m.t0 < 5000000000LL); /* woken by the cancel, not the timer */
    assert_int_equal(v.u.i, 7);
    assert_int_equal(m.fin, 1);
    assert_true(sigint_is(SIG_DFL));
}

/* The second SIGINT is not delayed by a main task that goes on: the
 * process stops at once, killed by SIGINT (exit status 130 in a shell). */
static void test_second_sigint_stops_at_once(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct interrupted m;
        memset(&m, 0, sizeof m);
        m.catch_ = 1;
        m.again = 1;
        coro_frame_init(&m.co, interrupted_step);
        coro_run(&m.co, NULL, NULL);
        _exit(3); /* not reached: the second SIGINT stopped the process */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGINT);
}

/* A program that ignores SIGINT (or handles it) keeps it: coro_run does not
 * take it, the main task is not cancelled. */
struct shrugging {
    coro_frame co;
    int done;
};

static CORO_FN(shrugging_step)
{
    struct shrugging *self = CORO_SELF(struct shrugging);
    CORO_BEGIN();
    raise(SIGINT);
    CORO_SLEEP(0.02);
    self->done = 1;
    CORO_END();
}

static void test_program_own_sigint_kept(void **state)
{
    (void)state;
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGINT, &ign, &old), 0);
    struct shrugging m = { .done = 0 };
    coro_frame_init(&m.co, shrugging_step);
    assert_int_equal(coro_run(&m.co, NULL, NULL), 0);
    assert_int_equal(m.done, 1);
    assert_true(sigint_is(SIG_IGN));
    assert_int_equal(sigaction(SIGINT, &old, NULL), 0);
}

/* SIGTERM as asyncio programs add it: the main task cancelled from the
 * loop by coro_task_cancel_callback, its cleanup run. */
struct terminated {
    coro_frame co;
    int fin;
};

static CORO_FN(terminated_step)
{
    struct terminated *self = CORO_SELF(struct terminated);
    CORO_BEGIN();
    assert_int_equal(coro_add_signal_handler(coro_get_running_loop(), SIGTERM,
                                             coro_task_cancel_callback, coro_current_task(NULL)),
                     0);
    raise(SIGTERM);
    CORO_SLEEP(10);
    CORO_FINALLY
    self->fin++;
    CORO_END();
}

static void test_sigterm_cancels_main_by_callback(void **state)
{
    (void)state;
    struct terminated m = { .fin = 0 };
    coro_frame_init(&m.co, terminated_step);
    assert_int_equal(coro_run(&m.co, NULL, NULL), CORO_ECANCELLED);
    assert_int_equal(m.fin, 1);
    struct sigaction sa;
    assert_int_equal(sigaction(SIGTERM, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_DFL); /* the loop's close gave it back */
    assert_int_equal(coro_task_cancel_callback(NULL), 0);
}

/* coro_run's own argument errors. */
static void test_run_bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(coro_run(NULL, NULL, NULL), CORO_EINVAL);
    coro_frame nostep = CORO_FRAME_INIT(NULL);
    assert_int_equal(coro_run(&nostep, NULL, NULL), CORO_EINVAL);
    assert_true(sigint_is(SIG_DFL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sigint_cancels_main),
        cmocka_unit_test(test_main_may_catch_the_cancel),
        cmocka_unit_test(test_second_sigint_stops_at_once),
        cmocka_unit_test(test_program_own_sigint_kept),
        cmocka_unit_test(test_sigterm_cancels_main_by_callback),
        cmocka_unit_test(test_run_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
