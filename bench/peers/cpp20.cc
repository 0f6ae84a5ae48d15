// bench/peers/cpp20.cc - the C++20 peer of the micro suite (the rows and aims: docs/benchmarks.md).
//
//   cpp20 list                 the rows this peer runs ("name impl" lines)
//   cpp20 BENCH [ITERATIONS]   run one row, print one JSON line
//
// Build: g++ -O2 -std=c++20 -fcoroutines (bench/run.sh does it).
//
// What a C++ programmer would write for each row, with the standard library
// only: a task<T> coroutine type (lazy start, symmetric transfer to the
// awaiting coroutine at final_suspend, the frame owned by the task object)
// and a tiny single-threaded scheduler: a FIFO of ready coroutine_handles
// and a min-heap of timers. Each row does the work of its coro twin in
// bench/micro.c: same counts, same shape, the per-op figure divided the same
// way. Time is CLOCK_MONOTONIC around the measured part, best of 3.
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <utility>
#include <vector>

#include <unistd.h>

static int64_t now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

static void emit(const char *bench, const char *metric, double value)
{
    std::printf("{\"suite\":\"micro\",\"bench\":\"%s\",\"impl\":\"cpp20\",\"metric\":\"%s\",\"value\":%.3f}\n",
                bench, metric, value);
}

[[noreturn]] static void die(const char *what)
{
    std::fprintf(stderr, "cpp20: %s\n", what);
    std::exit(1);
}

// ---- the scheduler: a ready FIFO and a timer heap ------------------------

struct timer_entry {
    int64_t when;
    std::coroutine_handle<> h;
};

struct scheduler {
    std::deque<std::coroutine_handle<>> ready;
    std::vector<timer_entry> timers; // a binary min-heap on `when`

    void schedule(std::coroutine_handle<> h) { ready.push_back(h); }

    // Run until nothing is ready. Timers are never due in this suite (the
    // sleepers sleep an hour), so an idle ready queue ends the run.
    void run()
    {
        while (!ready.empty()) {
            std::coroutine_handle<> h = ready.front();
            ready.pop_front();
            h.resume();
        }
    }

    void add_timer(int64_t when, std::coroutine_handle<> h)
    {
        timers.push_back({ when, h });
        // sift up
        size_t i = timers.size() - 1;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (timers[p].when <= timers[i].when)
                break;
            std::swap(timers[p], timers[i]);
            i = p;
        }
    }
};

// co_await yield_to(s): go to the back of the ready FIFO (asyncio sleep(0)).
struct yield_to {
    scheduler &s;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { s.schedule(h); }
    void await_resume() const noexcept {}
};

// co_await sleep_for(s, ns): park on the timer heap.
struct sleep_for {
    scheduler &s;
    int64_t ns;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { s.add_timer(now_ns() + ns, h); }
    void await_resume() const noexcept {}
};

// ---- task<T> ----------------------------------------------------------------

struct join_counter; // skynet: many children, one waiting parent

struct promise_base {
    std::coroutine_handle<> continuation; // who co_awaits this task
    join_counter *join = nullptr;         // or: the gather waiting on it

    std::suspend_always initial_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { std::terminate(); }
};

struct join_counter {
    int remaining;
    std::coroutine_handle<> parent;
};

struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class P> std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept
    {
        promise_base &p = h.promise();
        if (p.continuation)
            return p.continuation; // symmetric transfer back up the chain
        if (p.join && --p.join->remaining == 0)
            return p.join->parent;
        return std::noop_coroutine(); // a root task: back to the scheduler
    }
    void await_resume() const noexcept {}
};

template <class T> struct task {
    struct promise_type : promise_base {
        T value{};
        task get_return_object() { return task(std::coroutine_handle<promise_type>::from_promise(*this)); }
        final_awaiter final_suspend() noexcept { return {}; }
        void return_value(T v) { value = std::move(v); }
    };
    using handle = std::coroutine_handle<promise_type>;

    handle h;

    task() = default;
    explicit task(handle hh) : h(hh) {}
    task(task &&o) noexcept : h(std::exchange(o.h, {})) {}
    task &operator=(task &&o) noexcept
    {
        if (this != &o) {
            if (h)
                h.destroy();
            h = std::exchange(o.h, {});
        }
        return *this;
    }
    task(const task &) = delete;
    ~task()
    {
        if (h)
            h.destroy();
    }

    struct awaiter {
        handle h;
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> cont) const noexcept
        {
            h.promise().continuation = cont;
            return h; // symmetric transfer down into the child
        }
        T await_resume() const { return std::move(h.promise().value); }
    };
    awaiter operator co_await() const noexcept { return awaiter{ h }; }
};

template <> struct task<void> {
    struct promise_type : promise_base {
        task get_return_object() { return task(std::coroutine_handle<promise_type>::from_promise(*this)); }
        final_awaiter final_suspend() noexcept { return {}; }
        void return_void() {}
    };
    using handle = std::coroutine_handle<promise_type>;

    handle h;

    task() = default;
    explicit task(handle hh) : h(hh) {}
    task(task &&o) noexcept : h(std::exchange(o.h, {})) {}
    task &operator=(task &&o) noexcept
    {
        if (this != &o) {
            if (h)
                h.destroy();
            h = std::exchange(o.h, {});
        }
        return *this;
    }
    task(const task &) = delete;
    ~task()
    {
        if (h)
            h.destroy();
    }
    // hand the frame over (a detached task owned by whoever resumes it last)
    handle release() { return std::exchange(h, {}); }

    struct awaiter {
        handle h;
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> cont) const noexcept
        {
            h.promise().continuation = cont;
            return h;
        }
        void await_resume() const noexcept {}
    };
    awaiter operator co_await() const noexcept { return awaiter{ h }; }
};

// ---- resume: handle.resume() of a suspended coroutine, no scheduler -------

struct resumable {
    struct promise_type {
        resumable get_return_object() { return resumable{ std::coroutine_handle<promise_type>::from_promise(*this) }; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
    std::coroutine_handle<promise_type> h;
};

static resumable loop_forever()
{
    for (;;)
        co_await std::suspend_always{};
}

static double bench_resume(long n)
{
    resumable r = loop_forever();
    r.h.resume(); // to the first suspension inside the loop
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        r.h.resume();
    int64_t dt = now_ns() - t0;
    r.h.destroy();
    return double(dt) / double(n);
}

// ---- yield / yield_many: tasks alternating through the FIFO ---------------

static task<void> yielder(scheduler &s, long n)
{
    for (long i = 0; i < n; i++)
        co_await yield_to{ s };
}

static double run_yielders(int ntasks, long total)
{
    scheduler s;
    long per = total / ntasks;
    std::vector<task<void>> ts;
    ts.reserve(size_t(ntasks));
    for (int i = 0; i < ntasks; i++) {
        ts.push_back(yielder(s, per));
        s.schedule(ts.back().h);
    }
    int64_t t0 = now_ns();
    s.run();
    int64_t dt = now_ns() - t0;
    for (auto &t : ts)
        if (!t.h.done())
            die("a yielder did not finish");
    return double(dt) / (double(per) * ntasks);
}

static double bench_yield(long n) { return run_yielders(2, n); }
static double bench_yield_many(long n) { return run_yielders(1000, n); }

// ---- await depth: a yield at the bottom of a chain of D coroutines --------

static task<int> level(scheduler &s, int depth, long n)
{
    if (depth == 0) {
        for (long i = 0; i < n; i++)
            co_await yield_to{ s };
        co_return 0;
    }
    int below = co_await level(s, depth - 1, n);
    co_return below + 1;
}

// The chain: `depth` coroutines in all, the outermost the scheduled task
// (as in micro.c, where levels[0] is the task's root frame).
static double run_depth(int depth, long n)
{
    scheduler s;
    task<int> root = level(s, depth - 1, n);
    s.schedule(root.h);
    int64_t t0 = now_ns();
    s.run();
    int64_t dt = now_ns() - t0;
    if (!root.h.done() || root.h.promise().value != depth - 1)
        die("the await chain returned a wrong value");
    return double(dt) / double(n);
}

static double bench_await_depth_1(long n) { return run_depth(1, n); }
static double bench_await_depth_32(long n) { return run_depth(32, n); }

// ---- call_depth_32: call and return through 32 awaited coroutines --------

static task<void> caller(scheduler &s, long n, long *sum)
{
    for (long i = 0; i < n; i++)
        *sum += co_await level(s, 31, 0);
}

static double bench_call_depth_32(long n)
{
    scheduler s;
    long sum = 0;
    task<void> t = caller(s, n, &sum);
    s.schedule(t.h);
    int64_t t0 = now_ns();
    s.run();
    int64_t dt = now_ns() - t0;
    if (!t.h.done() || sum != 31 * n)
        die("call chain returned a wrong value");
    return double(dt) / double(n);
}

// ---- spawn: create, run and finish an empty task --------------------------

static task<void> empty_task() { co_return; }

enum { SPAWN_BATCH = 1000 };

static double bench_spawn(long n)
{
    scheduler s;
    std::vector<task<void>> batch(SPAWN_BATCH);
    int64_t t0 = now_ns();
    for (long done = 0; done < n; done += SPAWN_BATCH) {
        for (int i = 0; i < SPAWN_BATCH; i++) {
            batch[size_t(i)] = empty_task(); // frees the previous batch's frame
            s.schedule(batch[size_t(i)].h);
        }
        s.run();
        if (!batch[SPAWN_BATCH - 1].h.done())
            die("spawned task did not finish");
    }
    int64_t dt = now_ns() - t0;
    return double(dt) / double(n);
}

// ---- memory_per_task: a frame per task, each parked on a timer ------------

static long rss_bytes()
{
    long pages = 0, resident = 0;
    FILE *f = std::fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    std::fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static task<void> sleeper(scheduler &s)
{
    co_await sleep_for{ s, 3600LL * 1000000000LL };
}

static double bench_memory_per_task(long n)
{
    scheduler s;
    long before = rss_bytes();
    for (long i = 0; i < n; i++)
        s.schedule(sleeper(s).release()); // owned by the scheduler from here
    s.run();                              // every task runs to its sleep
    long after = rss_bytes();
    if (long(s.timers.size()) != n)
        die("not every task is sleeping");
    for (auto &e : s.timers)
        e.h.destroy();
    return double(after - before) / double(n);
}

// ---- skynet: 10^k leaves, fan-out 10, every node a scheduled task ---------

// Spawn the children on the ready FIFO, then suspend until the last of them
// finishes (it transfers straight back to this parent).
struct gather_all {
    scheduler &s;
    task<long> *kids;
    int n;
    join_counter j;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> parent)
    {
        j.remaining = n;
        j.parent = parent;
        for (int i = 0; i < n; i++) {
            kids[i].h.promise().join = &j;
            s.schedule(kids[i].h);
        }
    }
    void await_resume() const noexcept {}
};

static task<long> skynet(scheduler &s, long num, long size)
{
    if (size == 1)
        co_return num;
    task<long> kids[10];
    long sub = size / 10;
    for (int i = 0; i < 10; i++)
        kids[i] = skynet(s, num + i * sub, sub);
    co_await gather_all{ s, kids, 10, {} };
    long sum = 0;
    for (int i = 0; i < 10; i++)
        sum += kids[i].h.promise().value;
    co_return sum;
}

static double bench_skynet(long n)
{
    scheduler s;
    task<long> root = skynet(s, 0, n);
    int64_t t0 = now_ns();
    s.schedule(root.h);
    s.run();
    int64_t dt = now_ns() - t0;
    long want = n * (n - 1) / 2;
    if (!root.h.done() || root.h.promise().value != want)
        die("skynet: wrong sum");
    return double(dt) / double(n); // per leaf
}

// ---- the table ---------------------------------------------------------------

struct bench {
    const char *name;
    const char *metric;
    double (*run)(long n);
    long n;
    int repeat;
};

static const bench benches[] = {
    { "resume", "ns_per_op", bench_resume, 50000000, 3 },
    { "yield", "ns_per_op", bench_yield, 20000000, 3 },
    { "yield_many", "ns_per_op", bench_yield_many, 20000000, 3 },
    { "await_depth_1", "ns_per_op", bench_await_depth_1, 20000000, 3 },
    { "await_depth_32", "ns_per_op", bench_await_depth_32, 20000000, 3 },
    { "call_depth_32", "ns_per_op", bench_call_depth_32, 1000000, 3 },
    { "spawn", "ns_per_op", bench_spawn, 1000000, 3 },
    { "memory_per_task", "bytes_per_task", bench_memory_per_task, 1000000, 1 },
    { "skynet", "ns_per_op", bench_skynet, 1000000, 3 },
};

int main(int argc, char **argv)
{
    if (argc < 2 || std::strcmp(argv[1], "list") == 0) {
        for (const bench &b : benches)
            std::printf("%s cpp20\n", b.name);
        return argc < 2;
    }
    long n = argc > 2 ? std::atol(argv[2]) : 0;
    for (const bench &b : benches) {
        if (std::strcmp(b.name, argv[1]) != 0)
            continue;
        double best = 0;
        for (int r = 0; r < b.repeat; r++) {
            double v = b.run(n > 0 ? n : b.n);
            if (r == 0 || v < best)
                best = v;
        }
        emit(b.name, b.metric, best);
        return 0;
    }
    std::fprintf(stderr, "cpp20: no benchmark '%s' (try: cpp20 list)\n", argv[1]);
    return 2;
}
