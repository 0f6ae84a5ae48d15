/*
 * examples/kv_server.c - a key-value server that speaks Redis's protocol
 * (RESP2), on coro streams: redis-cli and redis-benchmark talk to it.
 *
 *   ./build/examples/kv_server [-c MAXCLIENTS] [-b MAXBULK] [-o OUTLIMIT] [-w SEND]
 *                              [-i IDLE] PORT [HOST]
 *
 *   HOST     127.0.0.1 (the default), another address or name, or the path
 *            of a Unix socket (anything with a '/'; PORT is then ignored)
 *   PORT     0 picks a free one (printed on stdout: "serving on ADDR")
 *   -c N     clients at once (default 10000, Redis's maxclients); one more
 *            is told "-ERR max number of clients reached" and closed
 *   -b N     the longest argument, in bytes (default 64 MiB; Redis allows
 *            512 MB): a longer bulk is "-ERR Protocol error: invalid bulk
 *            length" and the client is closed; a partial command may hold
 *            at most twice this (the query buffer limit)
 *   -o N     replies a client may leave unread, in bytes (default 64 MiB):
 *            past it the client is closed at once (Redis's
 *            client-output-buffer-limit, hard)
 *   -w S     seconds replies may stay unread above 64 KiB (default 60):
 *            then the client is closed (the soft limit); reading goes on
 *            meanwhile, as in Redis, so a client may pipeline any amount
 *            before it reads, up to -o
 *   -i S     seconds a silent client is kept (default 0: forever, Redis's
 *            timeout 0)
 *
 * Commands: PING, ECHO, GET, SET key value [NX|XX] [GET] [EX s|PX ms|KEEPTTL],
 * DEL, EXISTS, INCR, DECR, INCRBY, DECRBY, MGET, MSET, EXPIRE key s
 * [NX|XX|GT|LT], TTL, PTTL, PERSIST, DBSIZE, FLUSHALL [ASYNC|SYNC], QUIT,
 * and CONFIG GET save|appendonly (what redis-benchmark asks); values are
 * strings. Not here: SET's EXAT/PXAT, other types (so no -WRONGTYPE),
 * persistence, AUTH, SELECT. Replies and errors are Redis 7.0's, byte for
 * byte (scripts/kv_test.py, run by make test-kv, checks them against a real
 * redis-server).
 *
 * The shape: one task per connection (start_server). A read brings what the
 * socket has; every complete command in it is parsed where it lies
 * (examples/resp_parse.h) and run, the replies gathered in one buffer
 * shared by all connections (nothing runs between the parse and the write,
 * so one is enough), and written with one coro_stream_write: pipelining
 * costs one read and one write per batch. Only a partial command is copied,
 * into a buffer of the connection's that lives until the command is whole.
 *
 * The keys: a hash table of chained entries that grows (and shrinks) by
 * incremental rehashing, Redis's dict: two tables while a resize runs, and
 * every lookup, insert or delete moves one bucket (visiting at most ten
 * empty ones) from the old to the new, so no command ever pauses for the
 * table's size. An entry is one allocation (key and value inline).
 *
 * Expiry: the keys with a deadline sit in a min-heap; one loop timer
 * (coro_call_at) is armed for the earliest, and when it fires it deletes
 * what is due (1,000 at most per run, then it re-arms at once so clients get
 * their turn) and re-arms for the next: a key goes on time without being
 * touched. A key found past its deadline by a command is deleted there too
 * (lazily), so no reply ever shows an expired key. Deadlines are wall-clock
 * milliseconds, as Redis keeps them; the timer waits on the loop's clock.
 *
 * SIGINT or SIGTERM: the server closes, every client is cancelled at its
 * next wait (unsent replies dropped), the keys are freed, exit 0.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "coro.h"

#include <ctype.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "resp_parse.h"

#define READ_MAX 16384
#define WRITE_HIGH (64 * 1024)
#define WRITE_LOW (16 * 1024)
#define OUT_FLUSH (64 * 1024)    /* gathered replies written out early past this */
#define EXPIRE_BATCH 1000        /* keys deleted per timer run at most */
#define DEFAULT_MAXCLIENTS 10000 /* Redis's maxclients */
#define DEFAULT_MAXBULK (64u * 1024 * 1024)
#define DEFAULT_OUTLIMIT ((size_t)64 * 1024 * 1024)
#define DEFAULT_SEND 60.0
#define NO_HEAP UINT32_MAX

/* ------------------------------------------------------------------------ */
/* The keyspace: an incrementally rehashed table, and the expiry heap       */
/* ------------------------------------------------------------------------ */

typedef struct entry {
    struct entry *next; /* the bucket's chain */
    int64_t expire;     /* ms on the loop clock; 0: none */
    uint32_t hash;
    uint32_t hidx; /* position in the heap, NO_HEAP when not there */
    uint32_t klen, vlen;
    char data[]; /* key, then value */
} entry;

typedef struct table {
    entry **b;
    size_t mask; /* size - 1; b NULL: no table */
    size_t used;
} table;

typedef struct db {
    table t[2];      /* t[1] exists while a rehash runs */
    size_t rehash;   /* next bucket of t[0] to move, while t[1].b */
    entry **heap;    /* the keys with a deadline, earliest first */
    size_t hn, hcap;
    uint64_t seed;
    int found; /* the table find_link found its entry in */
} db;

static inline const char *ekey(const entry *e) { return e->data; }
static inline char *evalue(entry *e) { return e->data + e->klen; }

static uint32_t hash_key(const db *d, const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ d->seed; /* FNV-1a, seeded per run */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h ^ (h >> 32));
}

static size_t db_size(const db *d) { return d->t[0].used + d->t[1].used; }
static int rehashing(const db *d) { return d->t[1].b != NULL; }

/* Move up to n buckets of t[0] to t[1] (visiting at most 10 n empty ones). */
static void rehash_step(db *d, size_t n)
{
    size_t empty = n * 10;
    while (n-- && d->t[0].used > 0) {
        entry *e, *next;
        while (d->t[0].b[d->rehash] == NULL) {
            d->rehash++;
            if (--empty == 0)
                return;
        }
        for (e = d->t[0].b[d->rehash]; e; e = next) {
            size_t i = e->hash & d->t[1].mask;
            next = e->next;
            e->next = d->t[1].b[i];
            d->t[1].b[i] = e;
            d->t[0].used--;
            d->t[1].used++;
        }
        d->t[0].b[d->rehash++] = NULL;
    }
    if (d->t[0].used == 0) {
        free(d->t[0].b);
        d->t[0] = d->t[1];
        memset(&d->t[1], 0, sizeof d->t[1]);
        d->rehash = 0;
    }
}

/* Start moving to a table of `size` buckets (a power of two). Without
 * memory the table just stays as it is (longer chains, still correct). */
static void resize(db *d, size_t size)
{
    entry **b = calloc(size, sizeof *b);
    if (!b)
        return;
    if (d->t[0].b == NULL) {
        d->t[0].b = b;
        d->t[0].mask = size - 1;
        return;
    }
    d->t[1].b = b;
    d->t[1].mask = size - 1;
    d->t[1].used = 0;
    d->rehash = 0;
}

/* Grow at load 1, shrink under 1/10 (never below 4 buckets). */
static void maybe_resize(db *d)
{
    size_t size = d->t[0].b ? d->t[0].mask + 1 : 0, n = d->t[0].used, want = 4;
    if (rehashing(d))
        return;
    if (size == 0 || n >= size) {
        while (want <= n)
            want *= 2;
        resize(d, want);
    } else if (size > 4 && n * 10 < size) {
        while (want < n)
            want *= 2;
        resize(d, want);
    }
}

/* The link that points at the key's entry, or NULL. */
static entry **find_link(db *d, const char *k, size_t n, uint32_t h)
{
    if (rehashing(d))
        rehash_step(d, 1);
    for (int t = 0; t <= 1; t++) {
        entry **l;
        if (!d->t[t].b)
            break;
        for (l = &d->t[t].b[h & d->t[t].mask]; *l; l = &(*l)->next)
            if ((*l)->hash == h && (*l)->klen == n && memcmp(ekey(*l), k, n) == 0) {
                d->found = t;
                return l;
            }
    }
    return NULL;
}

/* ---- the heap (min on expire) ---- */

static void heap_set(db *d, size_t i, entry *e)
{
    d->heap[i] = e;
    e->hidx = (uint32_t)i;
}

static void heap_up(db *d, size_t i)
{
    entry *e = d->heap[i];
    while (i > 0 && d->heap[(i - 1) / 2]->expire > e->expire) {
        heap_set(d, i, d->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(d, i, e);
}

static void heap_down(db *d, size_t i)
{
    entry *e = d->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= d->hn)
            break;
        if (c + 1 < d->hn && d->heap[c + 1]->expire < d->heap[c]->expire)
            c++;
        if (d->heap[c]->expire >= e->expire)
            break;
        heap_set(d, i, d->heap[c]);
        i = c;
    }
    heap_set(d, i, e);
}

static void heap_remove(db *d, entry *e)
{
    size_t i = e->hidx;
    if (i == NO_HEAP)
        return;
    e->hidx = NO_HEAP;
    if (i != --d->hn) {
        entry *m = d->heap[d->hn];
        heap_set(d, i, m);
        heap_up(d, i);
        heap_down(d, m->hidx);
    }
    if (d->hcap > 64 && d->hn < d->hcap / 4) { /* give memory back */
        entry **h = realloc(d->heap, d->hcap / 2 * sizeof *h);
        if (h) {
            d->heap = h;
            d->hcap /= 2;
        }
    }
}

/* Set (ms > 0) or clear (0) the key's deadline. Returns 0 or -1 (no memory
 * for the heap: the deadline is not set). */
static int set_expire(db *d, entry *e, int64_t ms)
{
    if (ms == 0) {
        heap_remove(d, e);
        e->expire = 0;
        return 0;
    }
    if (e->hidx == NO_HEAP) {
        if (d->hn == d->hcap) {
            size_t ncap = d->hcap ? d->hcap * 2 : 64;
            entry **h = realloc(d->heap, ncap * sizeof *h);
            if (!h)
                return -1;
            d->heap = h;
            d->hcap = ncap;
        }
        e->expire = ms;
        heap_set(d, d->hn++, e);
        heap_up(d, d->hn - 1);
        return 0;
    }
    e->expire = ms;
    heap_up(d, e->hidx);
    heap_down(d, e->hidx);
    return 0;
}

/* Unlink *l (what find_link returned last) and free its entry. */
static void delete_at(db *d, entry **l)
{
    entry *e = *l;
    *l = e->next;
    d->t[d->found].used--;
    heap_remove(d, e);
    free(e);
    maybe_resize(d);
}

/* The key's entry, or NULL (deleted on the spot if past its deadline). */
static entry **lookup(db *d, const char *k, size_t n, int64_t now, uint32_t *hash)
{
    uint32_t h = hash_key(d, k, n);
    entry **l = find_link(d, k, n, h);
    if (hash)
        *hash = h;
    if (l && (*l)->expire && (*l)->expire <= now) {
        delete_at(d, l);
        return NULL;
    }
    return l;
}

/* Store value v for key k: a new entry, or the old one resized (its deadline
 * kept when keepttl, else cleared). The entry, or NULL without memory. */
static entry *store(db *d, const char *k, size_t kn, const char *v, size_t vn, int keepttl,
                    int64_t now)
{
    uint32_t h;
    entry **l = lookup(d, k, kn, now, &h), *e;
    if (l) {
        e = *l;
        if (e->vlen != vn) {
            entry *ne = realloc(e, sizeof *e + kn + vn);
            if (!ne)
                return NULL;
            e = *l = ne;
            if (e->hidx != NO_HEAP)
                d->heap[e->hidx] = e;
        }
        memcpy(evalue(e), v, vn);
        e->vlen = (uint32_t)vn;
        if (!keepttl)
            set_expire(d, e, 0);
        return e;
    }
    maybe_resize(d);
    e = malloc(sizeof *e + kn + vn);
    if (!e)
        return NULL;
    e->expire = 0;
    e->hash = h;
    e->hidx = NO_HEAP;
    e->klen = (uint32_t)kn;
    e->vlen = (uint32_t)vn;
    memcpy(e->data, k, kn);
    memcpy(evalue(e), v, vn);
    {
        table *t = &d->t[rehashing(d) ? 1 : 0];
        size_t i = h & t->mask;
        e->next = t->b[i];
        t->b[i] = e;
        t->used++;
    }
    return e;
}

static void db_flush(db *d)
{
    for (int t = 0; t <= 1; t++) {
        if (!d->t[t].b)
            continue;
        for (size_t i = 0; i <= d->t[t].mask; i++) {
            entry *e = d->t[t].b[i], *next;
            for (; e; e = next) {
                next = e->next;
                free(e);
            }
        }
        free(d->t[t].b);
        memset(&d->t[t], 0, sizeof d->t[t]);
    }
    free(d->heap);
    d->heap = NULL;
    d->hn = d->hcap = 0;
    d->rehash = 0;
}

/* ------------------------------------------------------------------------ */
/* The server                                                               */
/* ------------------------------------------------------------------------ */

struct app {
    coro_frame co;
    coro_loop *loop;
    const char *host;
    int port;
    size_t maxclients, maxbulk, outlimit;
    double send_s, idle_s;
    db db;
    coro_handle expiry;  /* armed for expiry_at */
    int64_t expiry_at;   /* ms; 0: not armed */
    char *out;           /* the replies of the batch being run */
    size_t olen, ocap;
    int oom;             /* the reply buffer could not grow */
    coro_server srv;
    coro_start_server_op start;
    coro_server_op op;
    int signals;
    int err;
};

struct conn {
    coro_frame co;
    struct app *app;
    coro_stream *s;
    coro_stream_op op;
    resp_parser p;
    char *pend; /* a partial command, pend[0, plen), while one waits */
    size_t plen, pcap;
    unsigned reads;
    int closing; /* QUIT, a protocol error: write what is queued, then close */
    int refused;  /* over maxclients */
    int deadline; /* the write deadline is set */
    int err;
};

/* Redis's mstime(): deadlines are wall-clock milliseconds, as Redis keeps
 * them (the timer is armed on the loop's clock for the time left). */
static int64_t now_ms(struct app *a)
{
    struct timespec ts;
    (void)a;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- replies, into app->out ---- */

static int out_room(struct app *a, size_t n)
{
    if (a->olen + n <= a->ocap)
        return 1;
    size_t cap = a->ocap ? a->ocap : 16384;
    while (cap < a->olen + n)
        cap *= 2;
    char *o = realloc(a->out, cap);
    if (!o) {
        a->oom = 1;
        return 0;
    }
    a->out = o;
    a->ocap = cap;
    return 1;
}

static void out_raw(struct app *a, const char *p, size_t n)
{
    if (out_room(a, n)) {
        memcpy(a->out + a->olen, p, n);
        a->olen += n;
    }
}

#define OUT_LIT(a, s) out_raw((a), (s), sizeof(s) - 1)

/* "<type><v>\r\n" into buf (32 bytes); its length. No printf on the hot
 * path. */
static size_t fmt_int(char *buf, char type, long long v)
{
    char tmp[24];
    size_t n = 0, len = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    buf[len++] = type;
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    buf[len++] = '\r';
    buf[len++] = '\n';
    return len;
}

static void out_int(struct app *a, char type, long long v)
{
    char buf[32];
    out_raw(a, buf, fmt_int(buf, type, v));
}

static void out_bulk(struct app *a, const char *p, size_t n)
{
    char head[32];
    size_t h = fmt_int(head, '$', (long long)n);
    if (out_room(a, h + n + 2)) {
        memcpy(a->out + a->olen, head, h);
        memcpy(a->out + a->olen + h, p, n);
        memcpy(a->out + a->olen + h + n, "\r\n", 2);
        a->olen += h + n + 2;
    }
}

#define NULL_BULK "$-1\r\n"
#define E_INT "-ERR value is not an integer or out of range\r\n"
#define E_SYNTAX "-ERR syntax error\r\n"
#define E_OVERFLOW "-ERR increment or decrement would overflow\r\n"

/* "-ERR wrong number of arguments for 'NAME' command" */
static void out_arity(struct app *a, const char *name)
{
    OUT_LIT(a, "-ERR wrong number of arguments for '");
    out_raw(a, name, strlen(name));
    OUT_LIT(a, "' command\r\n");
}

static void out_bad_expire(struct app *a, const char *name)
{
    OUT_LIT(a, "-ERR invalid expire time in '");
    out_raw(a, name, strlen(name));
    OUT_LIT(a, "' command\r\n");
}

/* Redis's error text goes through printf's %s: it ends at a NUL byte, and
 * CR and LF become spaces. */
static void out_errtext(struct app *a, const char *p, size_t n, size_t max)
{
    size_t i;
    for (i = 0; i < n && i < max && p[i] != '\0'; i++) {
        char c = p[i] == '\r' || p[i] == '\n' ? ' ' : p[i];
        out_raw(a, &c, 1);
    }
}

/* "-ERR unknown command 'X', with args beginning with: 'a' 'b' " */
static void out_unknown(struct app *a, const resp_arg *argv, size_t argc)
{
    size_t args = 0;
    OUT_LIT(a, "-ERR unknown command '");
    out_errtext(a, argv[0].p, argv[0].len, 128);
    OUT_LIT(a, "', with args beginning with: ");
    for (size_t i = 1; i < argc && args < 128; i++) {
        size_t before = a->olen;
        OUT_LIT(a, "'");
        out_errtext(a, argv[i].p, argv[i].len, 128 - args);
        OUT_LIT(a, "' ");
        args += a->olen - before;
    }
    OUT_LIT(a, "\r\n");
}

/* ---- the commands ---- */

typedef struct cmdctx {
    struct app *a;
    struct conn *c;
    const resp_arg *argv;
    size_t argc;
    int64_t now;
} cmdctx;

static int arg_is(const resp_arg *x, const char *lit)
{
    size_t n = strlen(lit);
    return x->len == n && strncasecmp(x->p, lit, n) == 0;
}

static int arg_ll(const resp_arg *x, long long *v) { return resp_ll(x->p, x->len, v); }

static entry *get_entry(cmdctx *x, const resp_arg *k)
{
    entry **l = lookup(&x->a->db, k->p, k->len, x->now, NULL);
    return l ? *l : NULL;
}

static void oom_reply(struct app *a) { OUT_LIT(a, "-OOM command not allowed when used memory > 'maxmemory'.\r\n"); }

/* Arm the expiry timer for the earliest deadline if it is not armed for it
 * or earlier already. */
static void arm_expiry(struct app *a);

static void cmd_ping(cmdctx *x)
{
    if (x->argc == 1)
        OUT_LIT(x->a, "+PONG\r\n");
    else
        out_bulk(x->a, x->argv[1].p, x->argv[1].len);
}

static void cmd_echo(cmdctx *x) { out_bulk(x->a, x->argv[1].p, x->argv[1].len); }

static void cmd_get(cmdctx *x)
{
    entry *e = get_entry(x, &x->argv[1]);
    if (e)
        out_bulk(x->a, evalue(e), e->vlen);
    else
        OUT_LIT(x->a, NULL_BULK);
}

/* A relative expire time in `unit` ms (1000: seconds) to a deadline: 0 and
 * a reply when it is not valid (as Redis's getExpireMillisecondsOrReply). */
static int64_t deadline(cmdctx *x, const resp_arg *v, long long unit, const char *name, int setcmd)
{
    long long t;
    if (!arg_ll(v, &t)) {
        OUT_LIT(x->a, E_INT);
        return 0;
    }
    if (setcmd && t <= 0) {
        out_bad_expire(x->a, name);
        return 0;
    }
    if (t > LLONG_MAX / unit || t < LLONG_MIN / unit) {
        out_bad_expire(x->a, name);
        return 0;
    }
    t *= unit;
    if (t > LLONG_MAX - x->now) {
        out_bad_expire(x->a, name);
        return 0;
    }
    t += x->now;
    return t > 0 ? t : -1; /* -1: already past (EXPIRE only) */
}

enum { F_NX = 1, F_XX = 2, F_GET = 4, F_KEEPTTL = 8, F_EX = 16, F_PX = 32 };

static void cmd_set(cmdctx *x)
{
    struct app *a = x->a;
    int f = 0;
    const resp_arg *exp = NULL;
    int64_t when = 0;
    entry *e;
    for (size_t j = 3; j < x->argc; j++) {
        const resp_arg *o = &x->argv[j];
        int next = j + 1 < x->argc;
        if (arg_is(o, "nx") && !(f & F_XX))
            f |= F_NX;
        else if (arg_is(o, "xx") && !(f & F_NX))
            f |= F_XX;
        else if (arg_is(o, "get"))
            f |= F_GET;
        else if (arg_is(o, "keepttl") && !(f & (F_EX | F_PX)))
            f |= F_KEEPTTL;
        else if (arg_is(o, "ex") && !(f & (F_KEEPTTL | F_PX)) && next) {
            f |= F_EX;
            exp = &x->argv[++j];
        } else if (arg_is(o, "px") && !(f & (F_KEEPTTL | F_EX)) && next) {
            f |= F_PX;
            exp = &x->argv[++j];
        } else {
            OUT_LIT(a, E_SYNTAX);
            return;
        }
    }
    if (exp && (when = deadline(x, exp, (f & F_EX) ? 1000 : 1, "set", 1)) == 0)
        return;
    e = get_entry(x, &x->argv[1]);
    if ((f & F_GET)) {
        if (e)
            out_bulk(a, evalue(e), e->vlen);
        else
            OUT_LIT(a, NULL_BULK);
    }
    if (((f & F_NX) && e) || ((f & F_XX) && !e)) {
        if (!(f & F_GET))
            OUT_LIT(a, NULL_BULK);
        return;
    }
    e = store(&a->db, x->argv[1].p, x->argv[1].len, x->argv[2].p, x->argv[2].len,
              (f & F_KEEPTTL) != 0, x->now);
    if (!e) {
        if (!(f & F_GET))
            oom_reply(a);
        return;
    }
    if (when > 0) {
        set_expire(&a->db, e, when);
        arm_expiry(a);
    }
    if (!(f & F_GET))
        OUT_LIT(a, "+OK\r\n");
}

static void cmd_del(cmdctx *x, int del)
{
    long long n = 0;
    for (size_t i = 1; i < x->argc; i++) {
        entry **l = lookup(&x->a->db, x->argv[i].p, x->argv[i].len, x->now, NULL);
        if (l) {
            n++;
            if (del)
                delete_at(&x->a->db, l);
        }
    }
    out_int(x->a, ':', n);
}

static void incr_by(cmdctx *x, long long by)
{
    entry *e = get_entry(x, &x->argv[1]);
    long long v = 0;
    char buf[32];
    size_t n;
    if (e && !resp_ll(evalue(e), e->vlen, &v)) {
        OUT_LIT(x->a, E_INT);
        return;
    }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
        OUT_LIT(x->a, E_OVERFLOW);
        return;
    }
    v += by;
    n = fmt_int(buf, ' ', v) - 3; /* the digits, without the type and CRLF */
    if (!store(&x->a->db, x->argv[1].p, x->argv[1].len, buf + 1, n, 1, x->now)) {
        oom_reply(x->a);
        return;
    }
    out_int(x->a, ':', v);
}

static void cmd_incrby(cmdctx *x, int sign)
{
    long long by;
    if (!arg_ll(&x->argv[2], &by)) {
        OUT_LIT(x->a, E_INT);
        return;
    }
    if (sign < 0) {
        if (by == LLONG_MIN) {
            OUT_LIT(x->a, "-ERR decrement would overflow\r\n");
            return;
        }
        by = -by;
    }
    incr_by(x, by);
}

static void cmd_mget(cmdctx *x)
{
    out_int(x->a, '*', (long long)x->argc - 1);
    for (size_t i = 1; i < x->argc; i++) {
        entry *e = get_entry(x, &x->argv[i]);
        if (e)
            out_bulk(x->a, evalue(e), e->vlen);
        else
            OUT_LIT(x->a, NULL_BULK);
    }
}

static void cmd_mset(cmdctx *x)
{
    if (x->argc % 2 == 0) {
        out_arity(x->a, "mset");
        return;
    }
    for (size_t i = 1; i < x->argc; i += 2)
        if (!store(&x->a->db, x->argv[i].p, x->argv[i].len, x->argv[i + 1].p, x->argv[i + 1].len,
                   0, x->now)) {
            oom_reply(x->a);
            return;
        }
    OUT_LIT(x->a, "+OK\r\n");
}

enum { X_NX = 1, X_XX = 2, X_GT = 4, X_LT = 8 };

static void cmd_expire(cmdctx *x)
{
    struct app *a = x->a;
    int f = 0;
    int64_t when;
    entry **l;
    for (size_t j = 3; j < x->argc; j++) {
        const resp_arg *o = &x->argv[j];
        if (arg_is(o, "nx"))
            f |= X_NX;
        else if (arg_is(o, "xx"))
            f |= X_XX;
        else if (arg_is(o, "gt"))
            f |= X_GT;
        else if (arg_is(o, "lt"))
            f |= X_LT;
        else {
            OUT_LIT(a, "-ERR Unsupported option ");
            out_errtext(a, o->p, o->len, (size_t)-1);
            OUT_LIT(a, "\r\n");
            return;
        }
    }
    if ((f & X_NX) && (f & (X_XX | X_GT | X_LT))) {
        OUT_LIT(a, "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
        return;
    }
    if ((f & X_GT) && (f & X_LT)) {
        OUT_LIT(a, "-ERR GT and LT options at the same time are not compatible\r\n");
        return;
    }
    if ((when = deadline(x, &x->argv[2], 1000, "expire", 0)) == 0)
        return;
    l = lookup(&a->db, x->argv[1].p, x->argv[1].len, x->now, NULL);
    if (!l) {
        OUT_LIT(a, ":0\r\n");
        return;
    }
    {
        int64_t cur = (*l)->expire; /* 0: none, i.e. forever */
        int64_t w = when < 0 ? LLONG_MIN : when;
        if (((f & X_NX) && cur) || ((f & X_XX) && !cur) || ((f & X_GT) && (!cur || w <= cur)) ||
            ((f & X_LT) && cur && w >= cur)) {
            OUT_LIT(a, ":0\r\n");
            return;
        }
    }
    if (when < 0 || when <= x->now) { /* already past: the key goes now */
        delete_at(&a->db, l);
    } else {
        set_expire(&a->db, *l, when);
        arm_expiry(a);
    }
    OUT_LIT(a, ":1\r\n");
}

static void cmd_ttl(cmdctx *x, int ms)
{
    entry *e = get_entry(x, &x->argv[1]);
    long long t;
    if (!e) {
        OUT_LIT(x->a, ":-2\r\n");
        return;
    }
    if (!e->expire) {
        OUT_LIT(x->a, ":-1\r\n");
        return;
    }
    t = e->expire - x->now;
    if (t < 0)
        t = 0;
    out_int(x->a, ':', ms ? t : (t + 500) / 1000);
}

static void cmd_persist(cmdctx *x)
{
    entry *e = get_entry(x, &x->argv[1]);
    if (!e || !e->expire) {
        OUT_LIT(x->a, ":0\r\n");
        return;
    }
    set_expire(&x->a->db, e, 0);
    OUT_LIT(x->a, ":1\r\n");
}

/* CONFIG GET save / appendonly, what redis-benchmark asks first: this
 * server saves nothing; any other parameter is unknown (an empty array, as
 * Redis answers one). Other subcommands: Redis's error. */
static void cmd_config(cmdctx *x)
{
    if (!arg_is(&x->argv[1], "get")) {
        OUT_LIT(x->a, "-ERR unknown subcommand '");
        out_errtext(x->a, x->argv[1].p, x->argv[1].len, 128);
        OUT_LIT(x->a, "'. Try CONFIG HELP.\r\n");
        return;
    }
    if (x->argc != 3) {
        out_arity(x->a, "config|get");
        return;
    }
    if (arg_is(&x->argv[2], "save") || arg_is(&x->argv[2], "appendonly")) {
        OUT_LIT(x->a, "*2\r\n"); /* the name as asked, then the value */
        out_bulk(x->a, x->argv[2].p, x->argv[2].len);
        if (x->argv[2].len == 4)
            OUT_LIT(x->a, "$0\r\n\r\n");
        else
            OUT_LIT(x->a, "$2\r\nno\r\n");
    } else {
        OUT_LIT(x->a, "*0\r\n");
    }
}

static void cmd_flushall(cmdctx *x)
{
    if (x->argc == 2 && !arg_is(&x->argv[1], "async") && !arg_is(&x->argv[1], "sync")) {
        OUT_LIT(x->a, E_SYNTAX);
        return;
    }
    db_flush(&x->a->db);
    OUT_LIT(x->a, "+OK\r\n");
}

enum {
    C_PING, C_ECHO, C_GET, C_SET, C_DEL, C_EXISTS, C_INCR, C_DECR, C_INCRBY, C_DECRBY, C_MGET,
    C_MSET, C_EXPIRE, C_TTL, C_PTTL, C_PERSIST, C_DBSIZE, C_FLUSHALL, C_QUIT, C_CONFIG
};

/* name, Redis's arity (negative: at least), id */
static const struct {
    const char *name;
    int arity, id;
} commands[] = {
    {"ping", -1, C_PING},      {"echo", 2, C_ECHO},         {"get", 2, C_GET},
    {"set", -3, C_SET},        {"del", -2, C_DEL},          {"exists", -2, C_EXISTS},
    {"incr", 2, C_INCR},       {"decr", 2, C_DECR},         {"incrby", 3, C_INCRBY},
    {"decrby", 3, C_DECRBY},   {"mget", -2, C_MGET},        {"mset", -3, C_MSET},
    {"expire", -3, C_EXPIRE},  {"ttl", 2, C_TTL},           {"pttl", 2, C_PTTL},
    {"persist", 2, C_PERSIST}, {"dbsize", 1, C_DBSIZE},     {"flushall", -1, C_FLUSHALL},
    {"quit", -1, C_QUIT},      {"config", -2, C_CONFIG},
};

/* Run one command; its reply goes to app->out. */
static void run_command(struct conn *c, const resp_arg *argv, size_t argc, int64_t now)
{
    struct app *a = c->app;
    cmdctx x = {a, c, argv, argc, now};
    size_t i, n = sizeof commands / sizeof commands[0];
    for (i = 0; i < n; i++)
        if (arg_is(&argv[0], commands[i].name))
            break;
    if (i == n) {
        out_unknown(a, argv, argc);
        return;
    }
    if ((commands[i].arity > 0 && (size_t)commands[i].arity != argc) ||
        (commands[i].arity < 0 && argc < (size_t)-commands[i].arity) ||
        (commands[i].id == C_PING && argc > 2)) {
        out_arity(a, commands[i].name);
        return;
    }
    switch (commands[i].id) {
    case C_PING: cmd_ping(&x); break;
    case C_ECHO: cmd_echo(&x); break;
    case C_GET: cmd_get(&x); break;
    case C_SET: cmd_set(&x); break;
    case C_DEL: cmd_del(&x, 1); break;
    case C_EXISTS: cmd_del(&x, 0); break;
    case C_INCR: incr_by(&x, 1); break;
    case C_DECR: incr_by(&x, -1); break;
    case C_INCRBY: cmd_incrby(&x, 1); break;
    case C_DECRBY: cmd_incrby(&x, -1); break;
    case C_MGET: cmd_mget(&x); break;
    case C_MSET: cmd_mset(&x); break;
    case C_EXPIRE: cmd_expire(&x); break;
    case C_TTL: cmd_ttl(&x, 0); break;
    case C_PTTL: cmd_ttl(&x, 1); break;
    case C_PERSIST: cmd_persist(&x); break;
    case C_DBSIZE: out_int(a, ':', (long long)db_size(&a->db)); break;
    case C_FLUSHALL: cmd_flushall(&x); break;
    case C_CONFIG: cmd_config(&x); break;
    case C_QUIT:
        OUT_LIT(a, "+OK\r\n");
        c->closing = 1;
        break;
    }
}

/* ---- expiry on the loop's timer ---- */

static int expiry_cb(void *arg)
{
    struct app *a = arg;
    db *d = &a->db;
    int64_t now = now_ms(a);
    int n = 0;
    a->expiry_at = 0;
    while (d->hn > 0 && d->heap[0]->expire <= now && n++ < EXPIRE_BATCH) {
        entry *e = d->heap[0];
        entry **l = find_link(d, ekey(e), e->klen, e->hash);
        if (l)
            delete_at(d, l);
        else
            heap_remove(d, e); /* cannot happen: every heap entry is in the table */
    }
    arm_expiry(a);
    return 0;
}

static void arm_expiry(struct app *a)
{
    int64_t at;
    if (a->db.hn == 0 || a->signals)
        return;
    at = a->db.heap[0]->expire;
    if (a->expiry_at && a->expiry_at <= at)
        return;
    coro_handle_cancel(&a->expiry);
    if (coro_call_later(a->loop, &a->expiry, (double)(at - now_ms(a)) / 1e3, expiry_cb, a) == 0)
        a->expiry_at = at;
}

/* ---- the connection ---- */

/* Room for `need` bytes of partial command (the buffer doubles from 4 KiB);
 * 0, or -1 when out of memory. */
static int reserve_pending(struct conn *c, size_t need)
{
    if (need <= c->pcap)
        return 0;
    size_t cap = c->pcap ? c->pcap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(c->pend, cap);
    if (!p)
        return -1;
    c->pend = p;
    c->pcap = cap;
    return 0;
}

/* Keep data[off, len) as the partial command (it may be pend itself).
 * Returns 0, or -1 when it is over the query buffer limit or no memory. */
static int keep_partial(struct conn *c, const char *data, size_t off, size_t len)
{
    size_t rest = len - off;
    if (rest == 0) {
        free(c->pend);
        c->pend = NULL;
        c->plen = c->pcap = 0;
        return 0;
    }
    if (rest > 2 * c->app->maxbulk + RESP_MAX_INLINE)
        return -1;
    if (data == c->pend) {
        memmove(c->pend, data + off, rest);
    } else {
        if (reserve_pending(c, rest) != 0)
            return -1;
        memcpy(c->pend, data + off, rest);
    }
    c->plen = rest;
    return 0;
}

/* Append the read's bytes behind the partial command. */
static int append_pending(struct conn *c, const char *v, size_t n)
{
    if (reserve_pending(c, c->plen + n) != 0)
        return -1;
    memcpy(c->pend + c->plen, v, n);
    c->plen += n;
    return 0;
}

/* Write the gathered replies; close a client over the output limit. */
static int flush_out(struct conn *c)
{
    struct app *a = c->app;
    int err = 0;
    if (a->olen)
        err = coro_stream_write(c->s, a->out, a->olen);
    a->olen = 0;
    if (a->ocap > 1024 * 1024) { /* a big reply: give the buffer back */
        free(a->out);
        a->out = NULL;
        a->ocap = 0;
    }
    if (err == 0 && coro_stream_write_buffer_size(c->s) > a->outlimit) {
        fprintf(stderr, "kv_server: a client left %zu bytes of replies unread: closed\n",
                coro_stream_write_buffer_size(c->s));
        coro_stream_abort(c->s);
        err = CORO_ELIMIT;
    }
    return err;
}

/* Run every complete command in the bytes a read brought (behind a partial
 * command, if one waits). */
static int run_batch(struct conn *c, const char *v, size_t n)
{
    struct app *a = c->app;
    const char *data = v;
    size_t len = n, off = 0;
    int64_t now = now_ms(a);
    if (c->plen) {
        if (append_pending(c, v, n) != 0)
            return CORO_ENOMEM;
        data = c->pend;
        len = c->plen;
    }
    while (off < len && !c->closing) {
        long r = resp_parse(&c->p, data + off, len - off);
        if (r == RESP_NEED_MORE)
            break;
        if (r < 0) {
            char text[64];
            out_raw(a, text, resp_error_text(&c->p, r, text));
            c->closing = 1;
            break;
        }
        if (c->p.argc > 0)
            run_command(c, c->p.argv, c->p.argc, now);
        resp_parser_reset(&c->p);
        off += (size_t)r;
        if (a->oom) {
            a->oom = 0;
            a->olen = 0;
            c->closing = 1;
            return CORO_ENOMEM;
        }
        if (a->olen > OUT_FLUSH) {
            int err = flush_out(c);
            if (err)
                return err;
        }
    }
    if (c->closing)
        return flush_out(c);
    if (keep_partial(c, data, off, len) != 0) {
        fprintf(stderr, "kv_server: a client's partial command is over the query buffer limit: closed\n");
        a->olen = 0;
        return CORO_ELIMIT;
    }
    return flush_out(c);
}

static CORO_FN(conn_step)
{
    struct conn *self = CORO_SELF(struct conn);
    const char *v;
    size_t n;
    CORO_BEGIN();
    if (self->refused) {
        self->err = coro_stream_write(self->s, "-ERR max number of clients reached\r\n", 36);
        CORO_RETURN(coro_none());
    }
    while (!self->closing && !self->app->signals) {
        CORO_AWAIT_ERR(coro_stream_read(&self->op, self->s, READ_MAX), self->err);
        if (self->err == CORO_ETIMEDOUT && self->deadline)
            fprintf(stderr, "kv_server: a client left its replies unread for %g s: closed\n",
                    self->app->send_s);
        if (self->err || CORO_RESULT.u.i == 0)
            break; /* EOF, a reset, a timeout, or a cancel */
        v = coro_stream_data(self->s, &n);
        self->err = run_batch(self, v, n);
        if (self->err)
            break;
        /* Replies above 64 KiB unread: the client has send_s to read them
         * (the stream's write deadline: if they are still there then, it
         * aborts the connection and the read above fails). Reading goes on
         * meanwhile, as Redis reads on: a client may pipeline any amount
         * before it reads, up to the output limit (flush_out). */
        if (coro_stream_write_buffer_size(self->s) > WRITE_HIGH) {
            if (!self->deadline)
                self->err = coro_stream_set_write_deadline(self->s, self->app->send_s);
            self->deadline = 1;
        } else if (self->deadline) {
            self->err = coro_stream_set_write_deadline(self->s, 0);
            self->deadline = 0;
        }
        if (self->err)
            break;
        if (++self->reads % 16 == 0)
            CORO_YIELD(coro_none());
    }
    CORO_FINALLY;
    free(self->pend);
    self->pend = NULL;
    resp_parser_free(&self->p);
    if (self->err == CORO_ETIMEDOUT || self->err == CORO_ELIMIT || self->err == CORO_ENOMEM)
        self->err = 0; /* the server's policy ending a client, not a fault */
    CORO_END();
}

static coro_frame *on_connect(coro_stream *s, void *arg)
{
    struct app *app = arg;
    struct conn *c = CORO_FRAME_NEW(coro_stream_loop(s), struct conn, conn_step);
    if (!c)
        return NULL;
    c->app = app;
    c->s = s;
    c->refused = coro_server_connections(&app->srv) > app->maxclients;
    resp_parser_init(&c->p, app->maxbulk);
    return &c->co;
}

static int on_signal(void *arg)
{
    struct app *app = arg;
    if (app->signals++ == 0)
        fprintf(stderr, "kv_server: stopping (%zu client%s)\n",
                coro_server_connections(&app->srv),
                coro_server_connections(&app->srv) == 1 ? "" : "s");
    coro_server_close(&app->srv);
    coro_server_cancel_clients(&app->srv);
    return 0;
}

static CORO_FN(app_step)
{
    struct app *self = CORO_SELF(struct app);
    coro_server_options opt;
    coro_sockaddr addr;
    char where[CORO_SOCKADDR_STRLEN];
    CORO_BEGIN();
    self->loop = coro_get_running_loop();
    memset(&opt, 0, sizeof opt);
    opt.backlog = 511; /* Redis's tcp-backlog */
    /* accept a few past the limit, to tell them so (Redis does the same) */
    opt.max_connections = self->maxclients + 32;
    opt.stream.idle_timeout = self->idle_s;
    opt.stream.write_high = WRITE_HIGH;
    opt.stream.write_low = WRITE_LOW;
    if (strchr(self->host, '/'))
        CORO_AWAIT(
            coro_start_unix_server(&self->start, &self->srv, self->host, on_connect, self, &opt));
    else
        CORO_AWAIT(coro_start_server(&self->start, &self->srv, self->host, self->port, on_connect,
                                     self, &opt));
    self->err = coro_add_signal_handler(self->loop, SIGINT, on_signal, self);
    if (self->err == 0)
        self->err = coro_add_signal_handler(self->loop, SIGTERM, on_signal, self);
    if (self->err == 0)
        self->err = coro_server_sockname(&self->srv, 0, &addr);
    if (self->err) {
        coro_server_close(&self->srv);
        CORO_RAISE(self->err);
    }
    printf("kv_server: serving on %s (Ctrl-C stops)\n",
           coro_sockaddr_format(&addr, where, sizeof where));
    fflush(stdout);
    CORO_AWAIT(coro_server_serve_forever(&self->op, &self->srv));
    CORO_AWAIT(coro_server_wait_closed(&self->op, &self->srv));
    CORO_FINALLY;
    coro_handle_cancel(&self->expiry);
    db_flush(&self->db);
    free(self->out);
    self->out = NULL;
    if (self->signals)
        fprintf(stderr, "kv_server: stopped\n");
    CORO_END();
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-c MAXCLIENTS] [-b MAXBULK] [-o OUTLIMIT] [-w SEND] [-i IDLE] PORT [HOST]\n"
            "  Redis's protocol on HOST:PORT (HOST: 127.0.0.1 by default, or a Unix socket\n"
            "  path containing '/'; PORT 0 picks one)\n"
            "  -c  clients at once (default %d)\n"
            "  -b  the longest argument in bytes (default %u)\n"
            "  -o  unread replies a client may leave, in bytes, before it is closed (default %zu)\n"
            "  -w  seconds replies may stay unread above 64 KiB (default %g)\n"
            "  -i  seconds a silent client is kept (default 0: forever)\n",
            argv0, DEFAULT_MAXCLIENTS, DEFAULT_MAXBULK, DEFAULT_OUTLIMIT, DEFAULT_SEND);
    return 2;
}

static int size_arg(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v < 1 || *s == '-')
        return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    struct app app;
    char *end;
    long port;
    int c;
    struct timespec ts;
    memset(&app, 0, sizeof app);
    app.maxclients = DEFAULT_MAXCLIENTS;
    app.maxbulk = DEFAULT_MAXBULK;
    app.outlimit = DEFAULT_OUTLIMIT;
    app.send_s = DEFAULT_SEND;
    while ((c = getopt(argc, argv, "c:b:o:w:i:")) != -1) {
        if (c == 'c' && size_arg(optarg, &app.maxclients) == 0)
            continue;
        if (c == 'b' && size_arg(optarg, &app.maxbulk) == 0 && app.maxbulk <= UINT32_MAX / 2)
            continue;
        if (c == 'o' && size_arg(optarg, &app.outlimit) == 0)
            continue;
        if (c == 'w' && (app.send_s = strtod(optarg, &end), *end == '\0' && app.send_s > 0))
            continue;
        if (c == 'i' && (app.idle_s = strtod(optarg, &end), *end == '\0' && app.idle_s >= 0))
            continue;
        return usage(argv[0]);
    }
    if (argc - optind < 1 || argc - optind > 2)
        return usage(argv[0]);
    port = strtol(argv[optind], &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return usage(argv[0]);
    app.host = argc - optind == 2 ? argv[optind + 1] : "127.0.0.1";
    app.port = (int)port;
    clock_gettime(CLOCK_REALTIME, &ts);
    app.db.seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    coro_frame_init(&app.co, app_step);
    int rc = coro_run(&app.co, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "kv_server: %s\n", coro_strerror(rc));
        return 1;
    }
    return 0;
}
