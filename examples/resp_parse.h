/*
 * examples/resp_parse.h - an incremental parser of Redis's request protocol
 * (RESP2 multibulk, and inline commands), header only.
 *
 * Used by examples/kv_server.c and fuzz/fuzz_resp.c. No dependency on
 * coro.h. The caller keeps the bytes of the command being parsed, from its
 * first byte, and calls resp_parse again when more arrive:
 *
 *   resp_parser p;
 *   resp_parser_init(&p, max_bulk);
 *   long n = resp_parse(&p, buf, len);   buf: the command's first byte on
 *   n > 0   a command of n bytes: p.argc arguments in p.argv (pointers into
 *           buf, or into the parser's own scratch for an inline command),
 *           valid until the next call; p.argc may be 0 (an empty line, *0
 *           or *-1: nothing to run); then resp_parser_reset(&p)
 *   n == 0  need more: call again with the same bytes and more behind them
 *   n < 0   a protocol error: resp_error_text(n) is Redis's reply
 *           ("-ERR Protocol error: ..."); answer it and close the connection
 *   resp_parser_free(&p) when done.
 *
 * Incremental: the parser keeps offsets, never pointers, between calls, so
 * the caller may move or grow its buffer as long as it starts at the same
 * command byte; a bulk argument's bytes are looked at once, when complete.
 *
 * Redis 7.0's rules (networking.c: processMultibulkBuffer and
 * processInlineBuffer), replies worded as Redis words them:
 *   - A command starting with '*' is multibulk: "*N\r\n" then N times
 *     "$LEN\r\n" LEN bytes "\r\n". As Redis does, a header line is found by
 *     its '\r' (the byte after it is skipped, unchecked), and so are the two
 *     bytes after a bulk; a NUL byte before the '\r' hides it, as it
 *     does from Redis's strchr). N not an integer, or above RESP_MAX_ARGS:
 *     "invalid multibulk length"; N <= 0: an empty command. A bulk header
 *     not starting with '$': "expected '$', got 'X'"; LEN not an integer,
 *     negative or above max_bulk: "invalid bulk length". Integers as
 *     Redis's string2ll reads them: no sign but '-', no leading zero,
 *     at most 20 characters.
 *   - A header line (multibulk count or bulk length) without its '\r'
 *     in its first RESP_MAX_INLINE bytes: "too big mbulk count string" /
 *     "too big bulk count string".
 *   - Anything else is an inline command: one line up to '\n' (a '\r'
 *     before it dropped), split into arguments as redis-cli and Redis split
 *     them (sdssplitargs): blanks separate, "double quotes" take \n \r \t \b
 *     \a \xHH and \<any byte>, 'single quotes' take \'; a closing quote must
 *     be followed by a blank or the end; a NUL byte ends the line's
 *     arguments. Unbalanced quotes: "unbalanced quotes in request". No '\n'
 *     within RESP_MAX_INLINE bytes: "too big inline request" (Redis lets a
 *     longer line through when it happens to read it whole; here the
 *     outcome never depends on how the bytes arrive).
 *   - Limits: RESP_MAX_INLINE (64 KiB, Redis's PROTO_INLINE_MAX_SIZE),
 *     RESP_MAX_ARGS arguments (1 Mi), max_bulk bytes per argument (the
 *     caller's; Redis's proto-max-bulk-len is 512 MB). Memory: the argument
 *     table grows with the arguments that actually arrived (8 live in the
 *     parser itself), never ahead of the data, so a "*1000000\r\n" alone
 *     costs nothing; the inline scratch is at most the line's length.
 *
 * Contract: never reads outside buf[0, len); never fails on a prefix of a
 * valid command (0: need more); the same result whatever the chunking.
 */
#ifndef RESP_PARSE_H
#define RESP_PARSE_H

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RESP_MAX_INLINE (64 * 1024)
#define RESP_MAX_ARGS (1024 * 1024)
#define RESP_SMALL_ARGS 8

/* Results below 0. */
#define RESP_NEED_MORE 0
#define RESP_E_MBULK_LEN (-1)   /* invalid multibulk length */
#define RESP_E_BULK_LEN (-2)    /* invalid bulk length */
#define RESP_E_DOLLAR (-3)      /* expected '$', got '%c' */
#define RESP_E_BIG_INLINE (-4)  /* too big inline request */
#define RESP_E_BIG_MBULK (-5)   /* too big mbulk count string */
#define RESP_E_BIG_BULK (-6)    /* too big bulk count string */
#define RESP_E_QUOTES (-7)      /* unbalanced quotes in request */
#define RESP_E_NOMEM (-8)       /* the argument table could not grow */

typedef struct resp_arg {
    const char *p; /* set when the command is complete */
    size_t off;    /* private: the offset from the command's start */
    size_t len;
} resp_arg;

typedef struct resp_parser {
    size_t max_bulk;  /* read-only after init */
    size_t argc;      /* the arguments parsed so far / of the command */
    resp_arg *argv;   /* small, or a heap table of cap entries */
    /* private */
    size_t cap;
    long long nargs;  /* multibulk: the arguments announced */
    long long bulk;   /* multibulk: the pending bulk's length, -1: a header next */
    size_t pos;       /* where parsing goes on, from the command's start */
    int state;        /* 0 new, 1 multibulk, 2 inline */
    char got;         /* RESP_E_DOLLAR: the byte found instead */
    char *scratch;    /* inline: the unquoted arguments */
    size_t scap;
    resp_arg small[RESP_SMALL_ARGS];
} resp_parser;

static inline void resp_parser_init(resp_parser *p, size_t max_bulk)
{
    memset(p, 0, sizeof *p);
    p->max_bulk = max_bulk;
    p->argv = p->small;
    p->cap = RESP_SMALL_ARGS;
    p->bulk = -1;
}

/* Ready for the next command. A big argument table or scratch goes back to
 * the allocator, so a connection keeps no memory a past command needed. */
static inline void resp_parser_reset(resp_parser *p)
{
    if (p->argv != p->small && p->cap > 1024) {
        free(p->argv);
        p->argv = p->small;
        p->cap = RESP_SMALL_ARGS;
    }
    if (p->scap > 4096) {
        free(p->scratch);
        p->scratch = NULL;
        p->scap = 0;
    }
    p->argc = 0;
    p->nargs = 0;
    p->bulk = -1;
    p->pos = 0;
    p->state = 0;
}

static inline void resp_parser_free(resp_parser *p)
{
    if (p->argv != p->small)
        free(p->argv);
    free(p->scratch);
    p->argv = p->small;
    p->cap = RESP_SMALL_ARGS;
    p->scratch = NULL;
    p->scap = 0;
}

/* Redis's string2ll: the whole span is a long long in canonical form. */
static inline int resp_ll(const char *s, size_t n, long long *out)
{
    unsigned long long v;
    int neg = 0;
    if (n == 0 || n >= 21)
        return 0;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    if (s[0] == '-') {
        neg = 1;
        s++;
        n--;
        if (n == 0)
            return 0;
    }
    if (s[0] < '1' || s[0] > '9')
        return 0;
    v = (unsigned long long)(s[0] - '0');
    for (size_t i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        if (v > ULLONG_MAX / 10)
            return 0;
        v *= 10;
        if (v > ULLONG_MAX - (unsigned long long)(s[i] - '0'))
            return 0;
        v += (unsigned long long)(s[i] - '0');
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return 0;
        *out = (long long)v;
    }
    return 1;
}

static inline int resp__push(resp_parser *p, size_t off, size_t len)
{
    if (p->argc == p->cap) {
        size_t ncap = p->cap * 2;
        resp_arg *n;
        if (p->argv == p->small) {
            n = (resp_arg *)malloc(ncap * sizeof *n);
            if (n)
                memcpy(n, p->small, sizeof p->small);
        } else {
            n = (resp_arg *)realloc(p->argv, ncap * sizeof *n);
        }
        if (!n)
            return -1;
        p->argv = n;
        p->cap = ncap;
    }
    p->argv[p->argc].off = off;
    p->argv[p->argc].len = len;
    p->argc++;
    return 0;
}

static inline int resp__hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline int resp__blank(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

/* sdssplitargs over line[0, n) into p->scratch; arguments' offs index the
 * scratch. Returns 0, RESP_E_QUOTES or RESP_E_NOMEM. */
static inline long resp__split(resp_parser *p, const char *line, size_t n)
{
    size_t i = 0, o = 0;
    if (n + 1 > p->scap) {
        char *s = (char *)realloc(p->scratch, n + 1);
        if (!s)
            return RESP_E_NOMEM;
        p->scratch = s;
        p->scap = n + 1;
    }
    for (;;) {
        size_t start;
        int inq = 0, insq = 0, done = 0;
        while (i < n && resp__blank((unsigned char)line[i]))
            i++;
        if (i >= n || line[i] == '\0')
            return 0;
        start = o;
        while (!done) {
            unsigned char c = i < n ? (unsigned char)line[i] : 0;
            if (inq) {
                if (c == 0)
                    return RESP_E_QUOTES;
                if (c == '\\' && i + 3 < n && line[i + 1] == 'x' &&
                    resp__hex((unsigned char)line[i + 2]) >= 0 &&
                    resp__hex((unsigned char)line[i + 3]) >= 0) {
                    p->scratch[o++] = (char)(resp__hex((unsigned char)line[i + 2]) * 16 +
                                             resp__hex((unsigned char)line[i + 3]));
                    i += 3;
                } else if (c == '\\' && i + 1 < n && line[i + 1] != '\0') {
                    char e = line[++i];
                    p->scratch[o++] = e == 'n'   ? '\n'
                                      : e == 'r' ? '\r'
                                      : e == 't' ? '\t'
                                      : e == 'b' ? '\b'
                                      : e == 'a' ? '\a'
                                                 : e;
                } else if (c == '"') {
                    if (i + 1 < n && line[i + 1] != '\0' && !resp__blank((unsigned char)line[i + 1]))
                        return RESP_E_QUOTES;
                    done = 1;
                } else {
                    p->scratch[o++] = (char)c;
                }
            } else if (insq) {
                if (c == 0)
                    return RESP_E_QUOTES;
                if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
                    i++;
                    p->scratch[o++] = '\'';
                } else if (c == '\'') {
                    if (i + 1 < n && line[i + 1] != '\0' && !resp__blank((unsigned char)line[i + 1]))
                        return RESP_E_QUOTES;
                    done = 1;
                } else {
                    p->scratch[o++] = (char)c;
                }
            } else if (c == 0 || resp__blank(c)) {
                done = 1;
            } else if (c == '"') {
                inq = 1;
            } else if (c == '\'') {
                insq = 1;
            } else {
                p->scratch[o++] = (char)c;
            }
            if (i < n)
                i++;
        }
        if (p->argc >= RESP_MAX_ARGS || resp__push(p, start, o - start) != 0)
            return RESP_E_NOMEM;
    }
}

/* The offset of the first '\r' in buf[from, len), or -1. As Redis looks
 * for it with strchr, a NUL byte before it hides it. Only the first
 * RESP_MAX_INLINE + 1 bytes are searched (a longer header line fails,
 * whatever the chunking). */
static inline long resp__cr(const char *buf, size_t from, size_t len)
{
    if (len - from > RESP_MAX_INLINE + 1)
        len = from + RESP_MAX_INLINE + 1;
    for (size_t i = from; i < len; i++) {
        if (buf[i] == '\r')
            return (long)i;
        if (buf[i] == '\0')
            return -1;
    }
    return -1;
}

static inline long resp__done(resp_parser *p, const char *base, size_t used)
{
    for (size_t i = 0; i < p->argc; i++)
        p->argv[i].p = base + p->argv[i].off;
    p->state = 3; /* complete: reset before the next command */
    return (long)used;
}

static inline long resp__inline(resp_parser *p, const char *buf, size_t len)
{
    /* only the first RESP_MAX_INLINE + 1 bytes may hold the '\n': a longer
     * line fails whatever the chunking (Redis's check depends on it) */
    size_t lim = len < RESP_MAX_INLINE + 1 ? len : RESP_MAX_INLINE + 1;
    const char *nl = p->pos < lim ? (const char *)memchr(buf + p->pos, '\n', lim - p->pos) : NULL;
    size_t n;
    long rc;
    if (!nl) {
        p->pos = len;
        return len > RESP_MAX_INLINE ? RESP_E_BIG_INLINE : RESP_NEED_MORE;
    }
    n = (size_t)(nl - buf);
    rc = resp__split(p, buf, n > 0 && buf[n - 1] == '\r' ? n - 1 : n);
    if (rc < 0)
        return rc;
    return resp__done(p, p->scratch, n + 1);
}

static inline long resp__multibulk(resp_parser *p, const char *buf, size_t len)
{
    long long ll;
    long cr;
    if (p->nargs == 0) { /* the "*N\r\n" line */
        cr = resp__cr(buf, 0, len);
        if (cr < 0)
            return len > RESP_MAX_INLINE ? RESP_E_BIG_MBULK : RESP_NEED_MORE;
        if ((size_t)cr + 2 > len && len > RESP_MAX_INLINE)
            return RESP_E_BIG_MBULK;
        if ((size_t)cr + 2 > len)
            return RESP_NEED_MORE;
        if (!resp_ll(buf + 1, (size_t)cr - 1, &ll) || ll > RESP_MAX_ARGS)
            return RESP_E_MBULK_LEN;
        p->pos = (size_t)cr + 2;
        if (ll <= 0)
            return resp__done(p, buf, p->pos);
        p->nargs = ll;
    }
    while ((long long)p->argc < p->nargs) {
        if (p->bulk < 0) { /* "$LEN\r\n" */
            cr = resp__cr(buf, p->pos, len);
            if (cr < 0)
                return len - p->pos > RESP_MAX_INLINE ? RESP_E_BIG_BULK : RESP_NEED_MORE;
            if ((size_t)cr + 2 > len && len - p->pos > RESP_MAX_INLINE)
                return RESP_E_BIG_BULK;
            if ((size_t)cr + 2 > len)
                return RESP_NEED_MORE;
            if (buf[p->pos] != '$') {
                p->got = buf[p->pos];
                return RESP_E_DOLLAR;
            }
            if (!resp_ll(buf + p->pos + 1, (size_t)cr - p->pos - 1, &ll) || ll < 0 ||
                (unsigned long long)ll > p->max_bulk)
                return RESP_E_BULK_LEN;
            p->bulk = ll;
            p->pos = (size_t)cr + 2;
        }
        if (len - p->pos < (size_t)p->bulk + 2)
            return RESP_NEED_MORE;
        if (resp__push(p, p->pos, (size_t)p->bulk) != 0)
            return RESP_E_NOMEM;
        p->pos += (size_t)p->bulk + 2;
        p->bulk = -1;
    }
    return resp__done(p, buf, p->pos);
}

/* Parse the command starting at buf[0] (len bytes so far): see the top. */
static inline long resp_parse(resp_parser *p, const char *buf, size_t len)
{
    if (p->state == 0) {
        if (len == 0)
            return RESP_NEED_MORE;
        p->state = buf[0] == '*' ? 1 : 2;
        p->pos = 0;
    }
    if (p->state == 1)
        return resp__multibulk(p, buf, len);
    if (p->state == 2)
        return resp__inline(p, buf, len);
    return RESP_E_NOMEM; /* complete already: the caller did not reset */
}

/* The reply to a protocol error code (with its CRLF), into out (at least
 * 64 bytes); returns its length. */
static inline size_t resp_error_text(const resp_parser *p, long code, char *out)
{
    const char *m;
    size_t n;
    switch (code) {
    case RESP_E_MBULK_LEN: m = "invalid multibulk length"; break;
    case RESP_E_BULK_LEN: m = "invalid bulk length"; break;
    case RESP_E_BIG_INLINE: m = "too big inline request"; break;
    case RESP_E_BIG_MBULK: m = "too big mbulk count string"; break;
    case RESP_E_BIG_BULK: m = "too big bulk count string"; break;
    case RESP_E_QUOTES: m = "unbalanced quotes in request"; break;
    case RESP_E_DOLLAR: m = "expected '$', got ' '"; break;
    default: m = "out of memory"; break;
    }
    n = strlen("-ERR Protocol error: ");
    memcpy(out, "-ERR Protocol error: ", n);
    memcpy(out + n, m, strlen(m));
    n += strlen(m);
    if (code == RESP_E_DOLLAR) { /* Redis writes the byte (CR, LF: a space; NUL ends it) */
        out[n - 2] = (p->got == '\r' || p->got == '\n') ? ' ' : p->got;
        if (p->got == '\0')
            n -= 2;
    }
    memcpy(out + n, "\r\n", 2);
    return n + 2;
}

#endif
