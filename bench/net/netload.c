/*
 * bench/net/netload.c - the one load client of the network suite
 * (rows and aims: docs/benchmarks.md), plain C on epoll: it does not use coro,
 * so every server, coro's included, is measured by the same client.
 *
 *   netload echo --port P --conns C --size S [--warmup SEC] [--duration SEC]
 *                [--bench NAME] [--impl IMPL] [--server-pid PID] [--cpus A,B]
 *       C connections to 127.0.0.1:P, each a loop of: send S bytes of
 *       pseudo-random content (a fresh offset into a random pool for every
 *       message), read back exactly S bytes, compare every byte, record the
 *       round trip. Warm-up first (not counted), then the measured window;
 *       then no new messages, the ones in flight are read back and checked
 *       (at most 2 s), and the connections are closed. Prints two JSON lines
 *       (metric req_per_s and p99_us). A wrong byte, a short echo, a closed
 *       or reset connection, no progress for 5 s, or a round trip still
 *       unanswered 2 s after the end is fatal: a message on stderr, exit 3,
 *       no JSON.
 *
 *   netload wrk --bench NAME --impl IMPL [--server-pid PID] [--cpus A,B] -- WRK ARGS...
 *       run wrk (with --latency among its ARGS), parse Requests/sec and the
 *       99% latency, print the same JSON lines; wrk's socket errors and
 *       non-2xx answers go to stderr as "netload: warning" lines (exit 3 when
 *       more than 1% of the requests were not 2xx).
 *
 *   netload httpcheck --port P
 *       two "GET /" on one keep-alive connection: each must answer 200 with
 *       Content-Length 13 and the body "hello, world\n" (exit 3 otherwise).
 *
 *   netload freeport
 *       print a TCP port on 127.0.0.1 that was free a moment ago.
 *
 * Every JSON line carries two extra fields besides the suite's own:
 * "client_cpu" (the client's CPU time over the measured window, in cores:
 * 1.0 is one core busy all the time) and "server_cpu" (the same for the
 * process --server-pid names, from /proc; absent without it). The runner
 * uses them to say when the client, not the server, was the bottleneck.
 * With --cpus A,B (the server's and the client's CPUs) and --server-pid, a
 * third, "other_cpu": what those two CPUs spent on anything else over the
 * window (other processes, interrupts, the hypervisor's steal), in cores;
 * the runner flags a row where other work competed.
 *
 * Loopback only: the address is 127.0.0.1, always. Bounded: the run lasts
 * warmup + duration + at most 2 s of drain; connecting gives up after 5 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STALL_NS (5 * 1000000000ull)
#define DRAIN_NS (2 * 1000000000ull)

static const char *g_bench = "echo";
static const char *g_impl = "unknown";

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "netload: %s (%s): ", g_bench, g_impl);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(3);
}

static void usage(void)
{
    fprintf(stderr, "usage: netload echo --port P --conns C --size S [--warmup SEC] [--duration SEC]\n"
                    "                    [--bench NAME] [--impl IMPL] [--server-pid PID] [--cpus A,B]\n"
                    "       netload wrk --bench NAME --impl IMPL [--server-pid PID] [--cpus A,B] -- WRK ARGS...\n"
                    "       netload httpcheck --port P\n"
                    "       netload freeport\n");
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU seconds of this process so far. */
static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of process PID (every thread) so far, or -1. */
static double proc_cpu(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The CPUs the run is pinned to (--cpus A,B), for the "other_cpu" field. */
static int g_cpus[2] = {-1, -1};

/* Busy seconds (everything but idle and iowait, steal included) of the CPUs
 * in g_cpus so far, from /proc/stat, or -1. */
static double cpus_busy(void)
{
    if (g_cpus[0] < 0)
        return -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[512];
    double busy = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        int cpu;
        unsigned long long v[8] = {0};
        if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) < 9)
            continue;
        if (cpu != g_cpus[0] && cpu != g_cpus[1])
            continue;
        if (cpu == g_cpus[0] && cpu == g_cpus[1] && found)
            continue;
        /* user nice system idle iowait irq softirq steal */
        busy += (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
        found++;
    }
    fclose(f);
    return found ? busy / (double)sysconf(_SC_CLK_TCK) : -1;
}

static double g_other = -1; /* cores the pinned CPUs spent on anything but client and server */

static void emit(const char *metric, double value, double ccpu, double scpu)
{
    int prec = strcmp(metric, "cpu_us_per_req") == 0 ? 3 : 1;
    printf("{\"suite\":\"net\",\"bench\":\"%s\",\"impl\":\"%s\",\"metric\":\"%s\",\"value\":%.*f,"
           "\"client_cpu\":%.3f",
           g_bench, g_impl, metric, prec, value, ccpu);
    if (scpu >= 0)
        printf(",\"server_cpu\":%.3f", scpu);
    if (g_other > -1)
        printf(",\"other_cpu\":%.3f", g_other);
    printf("}\n");
}

/* The three lines of a row: req/s, p99 and, when the server's CPU time is
 * known, the server's CPU microseconds per request over the same window. */
static void emit_row(double rps, double p99, double ccpu, double scpu)
{
    emit("req_per_s", rps, ccpu, scpu);
    emit("p99_us", p99, ccpu, scpu);
    if (scpu >= 0 && rps > 0)
        emit("cpu_us_per_req", scpu / rps * 1e6, ccpu, scpu);
}

/* g_other from the busy time of the pinned CPUs over a window of WIN seconds */
static void set_other(double b0, double b1, double ccpu, double scpu, double win)
{
    if (b0 < 0 || b1 < 0 || scpu < 0)
        return;
    g_other = (b1 - b0) / win - ccpu - scpu;
    if (g_other < 0)
        g_other = 0;
}

static int connect_local(int port, uint64_t deadline)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        int e = errno;
        close(fd);
        if (now_ns() > deadline || (e != ECONNREFUSED && e != EAGAIN && e != ETIMEDOUT && e != EINTR))
            die("connect to 127.0.0.1:%d: %s", port, strerror(e));
        usleep(10000);
    }
}

/* ---- echo ------------------------------------------------------------------ */

struct conn {
    int fd;
    int id;
    int busy;              /* a message is in flight */
    int want_out;          /* EPOLLOUT is armed */
    size_t sent, rcvd;     /* of the message in flight */
    const unsigned char *msg;
    unsigned char *rbuf;
    uint64_t t0;           /* when its first byte was written */
    uint64_t done;         /* round trips completed */
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int g_ep;
static size_t g_size;
static unsigned char *g_pool;
static size_t g_pool_len;

static void set_out(struct conn *c, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

static void pump_out(struct conn *c)
{
    while (c->sent < g_size) {
        ssize_t n = write(c->fd, c->msg + c->sent, g_size - c->sent);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(c, 1);
            return;
        } else {
            die("connection %d: write: %s", c->id, n < 0 ? strerror(errno) : "wrote nothing");
        }
    }
    set_out(c, 0);
}

static void start_msg(struct conn *c, uint64_t t)
{
    c->msg = g_pool + rng() % (g_pool_len - g_size + 1);
    c->sent = c->rcvd = 0;
    c->busy = 1;
    c->t0 = t;
    pump_out(c);
}

static void check_msg(struct conn *c)
{
    if (memcmp(c->rbuf, c->msg, g_size) == 0)
        return;
    size_t i = 0;
    while (c->rbuf[i] == c->msg[i])
        i++;
    die("MISMATCH on connection %d, round trip %llu, byte %zu of %zu: sent 0x%02x, got back 0x%02x",
        c->id, (unsigned long long)c->done + 1, i, g_size, c->msg[i], c->rbuf[i]);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int run_echo(int port, int nconn, size_t size, double warmup, double duration, long spid)
{
    if (nconn < 1 || size < 1 || duration <= 0 || warmup < 0)
        usage();
    g_size = size;
    g_pool_len = (1u << 20) + size;
    g_pool = malloc(g_pool_len);
    struct conn *cs = calloc((size_t)nconn, sizeof *cs);
    if (!g_pool || !cs)
        die("out of memory");
    for (size_t i = 0; i < g_pool_len; i += 8) {
        uint64_t r = rng();
        memcpy(g_pool + i, &r, g_pool_len - i < 8 ? g_pool_len - i : 8);
    }
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        die("epoll_create1: %s", strerror(errno));

    uint64_t deadline = now_ns() + 5000000000ull;
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &cs[i];
        c->id = i;
        c->fd = connect_local(port, deadline);
        c->rbuf = malloc(size);
        if (!c->rbuf)
            die("out of memory");
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl: %s", strerror(errno));
    }

    size_t cap = 1u << 20, nlat = 0;
    uint32_t *lat = malloc(cap * sizeof *lat);
    if (!lat)
        die("out of memory");

    uint64_t t_start = now_ns();
    uint64_t t_meas = t_start + (uint64_t)(warmup * 1e9);
    uint64_t t_end = t_meas + (uint64_t)(duration * 1e9);
    uint64_t t_drain = t_end + DRAIN_NS;
    uint64_t last_progress = t_start, counted = 0;
    double c0 = -1, s0 = -1, c1 = 0, s1 = 0, b0 = -1, b1 = -1;
    int measuring = 0, ending = 0, inflight = 0;

    for (int i = 0; i < nconn; i++) {
        start_msg(&cs[i], now_ns());
        inflight++;
    }
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= t_meas) {
            measuring = 1;
            c0 = self_cpu();
            s0 = proc_cpu(spid);
            b0 = cpus_busy();
        }
        if (!ending && t >= t_end) {
            ending = 1;
            c1 = self_cpu();
            s1 = proc_cpu(spid);
            b1 = cpus_busy();
        }
        if (ending && (inflight == 0 || t >= t_drain))
            break;
        if (t - last_progress > STALL_NS)
            die("no round trip completed for %llu s (%d messages in flight): the server stalled",
                (unsigned long long)(STALL_NS / 1000000000ull), inflight);
        uint64_t next = !measuring ? t_meas : !ending ? t_end : t_drain;
        int ms = (int)((next - t) / 1000000ull) + 1;
        if (ms > 100)
            ms = 100;
        int n = epoll_wait(g_ep, evs, 256, ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if ((evs[k].events & EPOLLOUT) && c->busy)
                pump_out(c);
            if (!(evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            if (!c->busy) {
                char x;
                ssize_t r = read(c->fd, &x, 1);
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                    continue;
                die("connection %d: %s between two round trips", c->id,
                    r == 0 ? "the server closed it" : r > 0 ? "the server sent bytes nobody asked for"
                                                        : strerror(errno));
            }
            while (c->rcvd < size) {
                ssize_t r = read(c->fd, c->rbuf + c->rcvd, size - c->rcvd);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                if (r < 0)
                    die("connection %d: read: %s", c->id, strerror(errno));
                if (r == 0)
                    die("connection %d: the server closed it with %zu of %zu bytes echoed", c->id,
                        c->rcvd, size);
                c->rcvd += (size_t)r;
            }
            if (c->rcvd < size)
                continue;
            if (c->sent < size)
                die("connection %d: %zu bytes echoed before they were all sent", c->id, c->rcvd);
            uint64_t t1 = now_ns();
            check_msg(c);
            c->done++;
            c->busy = 0;
            inflight--;
            last_progress = t1;
            if (measuring && !ending && t1 < t_end) {
                counted++;
                if (nlat == cap) {
                    cap *= 2;
                    uint32_t *nl = realloc(lat, cap * sizeof *lat);
                    if (!nl)
                        die("out of memory");
                    lat = nl;
                }
                uint64_t d = t1 - c->t0;
                lat[nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
            }
            if (t1 < t_end) {
                start_msg(c, t1);
                inflight++;
            }
        }
    }
    if (inflight)
        die("the server stalled: %d round trips still unanswered %.0f s after the end", inflight, DRAIN_NS / 1e9);
    int idle = 0;
    for (int i = 0; i < nconn; i++)
        idle += cs[i].done == 0;
    if (idle)
        fprintf(stderr, "netload: warning: %s (%s): %d of %d connections never completed a round trip\n",
                g_bench, g_impl, idle, nconn);
    for (int i = 0; i < nconn; i++)
        close(cs[i].fd);
    if (counted == 0)
        die("no round trip completed in the measured window");

    double win = (double)(t_end - t_meas) / 1e9;
    qsort(lat, nlat, sizeof *lat, cmp_u32);
    size_t i99 = (size_t)((double)nlat * 0.99);
    if (i99 >= nlat)
        i99 = nlat - 1;
    double p50 = lat[nlat / 2] / 1e3, p99 = lat[i99] / 1e3;
    double ccpu = (c1 - c0) / win;
    double scpu = (s0 >= 0 && s1 >= 0) ? (s1 - s0) / win : -1;
    set_other(b0, b1, ccpu, scpu, win);
    fprintf(stderr, "netload: %s (%s): %llu round trips of %zu bytes in %.1f s on %d connections, "
                    "p50 %.1f us, p99 %.1f us, every byte checked; client CPU %.0f%%",
            g_bench, g_impl, (unsigned long long)counted, size, win, nconn, p50, p99, ccpu * 100);
    if (scpu >= 0)
        fprintf(stderr, ", server CPU %.0f%%", scpu * 100);
    if (scpu >= 0 && counted > 0)
        fprintf(stderr, " (%.2f us per request)", scpu * win / (double)counted * 1e6);
    if (g_other > -1)
        fprintf(stderr, ", other work on the two CPUs %.0f%%", g_other * 100);
    fputc('\n', stderr);
    emit_row((double)counted / win, p99, ccpu, scpu);
    return 0;
}

/* ---- wrk ------------------------------------------------------------------- */

/* "1.23ms" -> microseconds, or -1 */
static double wrk_time_us(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    if (strncmp(end, "us", 2) == 0)
        return v;
    if (strncmp(end, "ms", 2) == 0)
        return v * 1e3;
    if (strncmp(end, "s", 1) == 0)
        return v * 1e6;
    if (strncmp(end, "m", 1) == 0)
        return v * 60e6;
    return -1;
}

static int run_wrk(char **argv, long spid)
{
    int pfd[2];
    if (pipe(pfd) < 0)
        die("pipe: %s", strerror(errno));
    double s0 = proc_cpu(spid), b0 = cpus_busy();
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "netload: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            out = realloc(out, cap);
        }
        if (!out)
            die("out of memory");
        ssize_t n = read(pfd[0], out + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    out[len] = 0;
    close(pfd[0]);
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR)
            die("wait4: %s", strerror(errno));
    double s1 = proc_cpu(spid), b1 = cpus_busy();
    double wall = (double)(now_ns() - t0) / 1e9;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("wrk failed (status %d); its output:\n%s", st, out);

    double rps = -1, p99 = -1;
    long long reqs = -1, non2xx = 0, ec = 0, er = 0, ew = 0, et = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (strncmp(line, "Requests/sec:", 13) == 0)
            rps = strtod(line + 13, NULL);
        else if (strncmp(line, "99%", 3) == 0)
            p99 = wrk_time_us(line + 3 + strspn(line + 3, " \t"));
        else if (strstr(line, " requests in "))
            reqs = strtoll(line, NULL, 10);
        else if (strncmp(line, "Non-2xx or 3xx responses:", 25) == 0)
            non2xx = strtoll(line + 25, NULL, 10);
        else if (strncmp(line, "Socket errors:", 14) == 0)
            sscanf(line, "Socket errors: connect %lld, read %lld, write %lld, timeout %lld", &ec, &er, &ew, &et);
    }
    if (rps < 0 || p99 < 0)
        die("could not read Requests/sec and the 99%% latency from wrk's output (was --latency given?)");
    if (reqs <= 0)
        die("wrk completed no request");
    if (ec || er || ew || et)
        fprintf(stderr, "netload: warning: %s (%s): wrk socket errors: connect %lld, read %lld, write %lld, timeout %lld\n",
                g_bench, g_impl, ec, er, ew, et);
    if (non2xx) {
        fprintf(stderr, "netload: warning: %s (%s): %lld of %lld answers were not 2xx/3xx\n", g_bench, g_impl,
                non2xx, reqs);
        if (non2xx * 100 > reqs)
            die("too many wrong answers: no figure");
    }
    double ccpu = ((double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                   ru.ru_stime.tv_usec / 1e6) / wall;
    double scpu = (s0 >= 0 && s1 >= 0) ? (s1 - s0) / wall : -1;
    set_other(b0, b1, ccpu, scpu, wall);
    fprintf(stderr, "netload: %s (%s): %lld requests, %.0f req/s, p99 %.1f us; client (wrk) CPU %.0f%%", g_bench,
            g_impl, reqs, rps, p99, ccpu * 100);
    if (scpu >= 0)
        fprintf(stderr, ", server CPU %.0f%%", scpu * 100);
    if (scpu >= 0 && rps > 0)
        fprintf(stderr, " (%.2f us per request)", scpu / rps * 1e6);
    if (g_other > -1)
        fprintf(stderr, ", other work on the two CPUs %.0f%%", g_other * 100);
    fputc('\n', stderr);
    emit_row(rps, p99, ccpu, scpu);
    return 0;
}

/* ---- httpcheck ------------------------------------------------------------- */

static int run_httpcheck(int port)
{
    int fd = connect_local(port, now_ns() + 3000000000ull);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: netload\r\nAccept: */*\r\n\r\n";
    static char buf[65536];
    size_t len = 0;
    for (int round = 1; round <= 2; round++) {
        if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
            die("write: %s", strerror(errno));
        /* read one response: the head, then Content-Length bytes */
        char *head_end = NULL;
        long clen = -1;
        for (;;) {
            buf[len] = 0;
            if (!head_end && (head_end = strstr(buf, "\r\n\r\n"))) {
                if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
                    die("request %d: the status line is not HTTP/1.1 200: %.*s", round, (int)strcspn(buf, "\r\n"), buf);
                for (char *p = buf; p < head_end; p++) {
                    if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                        clen = strtol(p + 15, NULL, 10);
                    if ((p == buf || p[-1] == '\n') && strncasecmp(p, "connection:", 11) == 0 &&
                        strncasecmp(p + 11 + strspn(p + 11, " "), "close", 5) == 0)
                        die("request %d: the server answered Connection: close", round);
                }
                if (clen != 13)
                    die("request %d: Content-Length is %ld, not 13", round, clen);
            }
            if (head_end && (size_t)(head_end + 4 - buf) + (size_t)clen <= len)
                break;
            if (len + 1 >= sizeof buf)
                die("request %d: the answer is too long", round);
            ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                die("request %d: %s", round,
                    n == 0 ? "the server closed the connection" : strerror(errno));
            len += (size_t)n;
        }
        char *body = head_end + 4;
        if (memcmp(body, "hello, world\n", 13) != 0)
            die("request %d: the body is not \"hello, world\\n\"", round);
        size_t used = (size_t)(body + 13 - buf);
        memmove(buf, buf + used, len - used);
        len -= used;
    }
    if (len)
        die("%zu bytes more than two answers", len);
    close(fd);
    return 0;
}

static int run_freeport(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        die("freeport: %s", strerror(errno));
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    signal(SIGPIPE, SIG_IGN);
    const char *mode = argv[1];
    int port = 0, conns = 1;
    size_t size = 1024;
    double warmup = 1, duration = 5;
    long spid = 0;
    int i = 2;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--conns") == 0)
            conns = atoi(v);
        else if (strcmp(a, "--size") == 0)
            size = (size_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atof(v);
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v);
        else if (strcmp(a, "--bench") == 0)
            g_bench = v;
        else if (strcmp(a, "--impl") == 0)
            g_impl = v;
        else if (strcmp(a, "--server-pid") == 0)
            spid = atol(v);
        else if (strcmp(a, "--cpus") == 0) {
            if (sscanf(v, "%d,%d", &g_cpus[0], &g_cpus[1]) != 2)
                usage();
        }
        else
            usage();
    }
    if (strcmp(mode, "echo") == 0) {
        if (port <= 0)
            usage();
        return run_echo(port, conns, size, warmup, duration, spid);
    }
    if (strcmp(mode, "wrk") == 0) {
        if (i >= argc)
            usage();
        return run_wrk(argv + i, spid);
    }
    if (strcmp(mode, "httpcheck") == 0) {
        if (port <= 0)
            usage();
        g_bench = "httpcheck";
        return run_httpcheck(port);
    }
    if (strcmp(mode, "freeport") == 0)
        return run_freeport();
    usage();
    return 2;
}
