/*
 * fuzz/fuzz_http.c - examples/http_parse.h under libFuzzer.
 *
 * Input: byte 0 seeds the chunking, the rest is what a client sends on one
 * connection (any bytes: pipelined requests, bodies, garbage).
 *
 * The harness models the server's connection buffer: bytes arrive in chunks,
 * the parser is called after each one over the bytes of the current request
 * so far, a complete head is followed by content_length body bytes, then the
 * next request starts (pipelining); an error ends the connection. Every call
 * gets a fresh heap block of exactly the bytes it may read (the buffer
 * "moves" between calls, as the header allows), so a read outside
 * buf[0, len) is caught by ASan.
 *
 * Checks, from the header's contract:
 *   - every result is 0, a head length, or one of the five HTTP_E* codes;
 *   - a complete head lies inside the bytes given and within HTTP_MAX_HEAD,
 *     ends with LF, and its method, target and header spans lie inside it,
 *     in order, with the grammar's bytes (token method and names, visible
 *     target, values without surrounding whitespace); minor is 0 or 1,
 *     keep_alive 0 or 1, content_length >= 0, nheaders <= HTTP_MAX_HEADERS;
 *   - 0 (need more) only while the head is not over HTTP_MAX_HEAD;
 *   - a result is final: calling again, even with more bytes, returns it;
 *   - the same connection fed whole, one byte at a time (short inputs), and
 *     in random chunks gives the same sequence of outcomes (results, spans,
 *     fields);
 *   - a complete head's prefixes all give 0 (never fails on a prefix of a
 *     valid request), and the head alone parses to the same result.
 */
#include "examples/http_parse.h"
#include "fuzz/fuzz.h"

#define MAX_REQS 32

/* One outcome, comparable with memcmp (zeroed first). */
typedef struct outcome {
    long result;
    http_span method, target;
    int minor, keep_alive;
    int64_t content_length;
    unsigned nheaders;
    http_header headers[HTTP_MAX_HEADERS];
} outcome;

typedef struct trace {
    int n;        /* outcomes recorded */
    int pending;  /* at the end: bytes of an unfinished head; -1 after an
                     error or in a body, -2 once MAX_REQS were seen */
    int64_t skip; /* at the end: body bytes still expected */
    outcome o[MAX_REQS];
} trace;

static int is_tchar(unsigned char c) { return (http__class(c) & 1) != 0; }

/* Parse buf[0, len) (copied to an exact-size block) with `r`. */
static long parse_exact(http_request *r, const uint8_t *buf, size_t len)
{
    char *b = malloc(len ? len : 1);
    FUZZ_CHECK(b != NULL, "out of memory");
    if (len)
        memcpy(b, buf, len);
    long rc = http_parse_request(r, b, len);
    free(b);
    return rc;
}

static void check_span(http_span s, long head, const char *what)
{
    FUZZ_CHECK((long)s.off + s.len <= head, "%s [%u, +%u) outside the head of %ld bytes", what,
               s.off, s.len, head);
}

/* Every promise a complete head makes, checked against its bytes. */
static void check_complete(const http_request *r, const uint8_t *buf, size_t len, long n)
{
    FUZZ_CHECK(n > 0 && (size_t)n <= len, "head %ld of %zu bytes", n, len);
    FUZZ_CHECK(n <= HTTP_MAX_HEAD, "head %ld over the limit", n);
    FUZZ_CHECK(buf[n - 1] == '\n', "head does not end with LF");
    check_span(r->method, n, "method");
    check_span(r->target, n, "target");
    FUZZ_CHECK(r->method.len > 0 && r->target.len > 0, "empty method or target");
    FUZZ_CHECK(r->target.off == r->method.off + r->method.len + 1, "target not after method");
    FUZZ_CHECK(buf[r->method.off + r->method.len] == ' ', "no SP after the method");
    for (unsigned i = 0; i < r->method.len; i++)
        FUZZ_CHECK(is_tchar(buf[r->method.off + i]), "method byte %u", i);
    for (unsigned i = 0; i < r->target.len; i++) {
        unsigned char c = buf[r->target.off + i];
        FUZZ_CHECK(c >= 0x21 && c <= 0x7E, "target byte 0x%02x", c);
    }
    for (unsigned i = 0; i < r->method.off; i++)
        FUZZ_CHECK(buf[i] == '\r' || buf[i] == '\n', "skipped a byte 0x%02x", buf[i]);
    FUZZ_CHECK(r->minor == 0 || r->minor == 1, "minor %d", r->minor);
    FUZZ_CHECK(r->keep_alive == 0 || r->keep_alive == 1, "keep_alive %d", r->keep_alive);
    FUZZ_CHECK(r->content_length >= 0 && r->content_length < 1000000000000000000LL,
               "content_length %lld", (long long)r->content_length);
    FUZZ_CHECK(r->nheaders <= HTTP_MAX_HEADERS, "nheaders %u", r->nheaders);
    unsigned prev_end = r->target.off + r->target.len;
    for (unsigned h = 0; h < r->nheaders; h++) {
        const http_header *x = &r->headers[h];
        check_span(x->name, n, "name");
        check_span(x->value, n, "value");
        FUZZ_CHECK(x->name.off > prev_end, "header %u not after what precedes it", h);
        FUZZ_CHECK(x->name.len > 0, "empty name");
        for (unsigned i = 0; i < x->name.len; i++)
            FUZZ_CHECK(is_tchar(buf[x->name.off + i]), "name byte %u", i);
        FUZZ_CHECK(buf[x->name.off + x->name.len] == ':', "no colon after the name");
        FUZZ_CHECK(x->value.off > x->name.off + x->name.len, "value before the colon");
        if (x->value.len > 0) {
            unsigned char a = buf[x->value.off], z = buf[x->value.off + x->value.len - 1];
            FUZZ_CHECK(a != ' ' && a != '\t' && z != ' ' && z != '\t', "value not trimmed");
        }
        for (unsigned i = 0; i < x->value.len; i++) {
            unsigned char c = buf[x->value.off + i];
            FUZZ_CHECK(c != '\r' && c != '\n' && (c >= 0x20 || c == '\t') && c != 0x7F,
                       "value byte 0x%02x", c);
        }
        prev_end = x->value.off + x->value.len;
    }
}

static int is_error(long rc)
{
    return rc == HTTP_E400 || rc == HTTP_E414 || rc == HTTP_E431 || rc == HTTP_E501 ||
           rc == HTTP_E505;
}

static void record(outcome *o, const http_request *r, long rc)
{
    memset(o, 0, sizeof *o);
    o->result = rc;
    if (rc <= 0)
        return;
    o->method = r->method;
    o->target = r->target;
    o->minor = r->minor;
    o->keep_alive = r->keep_alive;
    o->content_length = r->content_length;
    o->nheaders = r->nheaders;
    memcpy(o->headers, r->headers, r->nheaders * sizeof r->headers[0]);
}

/* One complete head: its prefixes need more, the head alone gives the same. */
static void check_prefixes(const http_request *r, const uint8_t *buf, long n)
{
    http_request q;
    http_request_init(&q);
    FUZZ_CHECK(parse_exact(&q, buf, (size_t)n) == n, "the head alone parses differently");
    FUZZ_CHECK(q.nheaders == r->nheaders && q.content_length == r->content_length &&
                   q.keep_alive == r->keep_alive,
               "the head alone gives other fields");
    /* a few prefixes, each parsed from scratch */
    for (long cut = n - 1; cut >= 0; cut = cut > 64 ? cut / 2 : cut - 1 - (cut > 8) * 3) {
        http_request_init(&q);
        long rc = parse_exact(&q, buf, (size_t)cut);
        FUZZ_CHECK(rc == 0, "the prefix of %ld bytes of a %ld-byte head gives %ld", cut, n, rc);
    }
}

/* Feed in[0, n) to a connection in chunks of the sizes `next_chunk` gives. */
static void drive(const uint8_t *in, size_t n, uint32_t seed, int mode, trace *t, int deep)
{
    http_request r;
    size_t start = 0, got = 0; /* the request starts at in[start]; in[0, got) arrived */
    int64_t skip = 0;          /* body bytes still to skip */
    int parsing = 1;
    long last = 0;
    memset(t, 0, sizeof *t);
    http_request_init(&r);
    while (got < n) {
        size_t c;
        if (mode == 0)
            c = n;
        else if (mode == 1)
            c = 1;
        else
            c = 1 + fuzz_rand(&seed) % (1 + (seed >> 24) % 97);
        got = got + c > n ? n : got + c;
        for (;;) {
            if (!parsing) { /* skipping a body */
                int64_t avail = (int64_t)(got - start);
                if (avail < skip) {
                    skip -= avail;
                    start = got;
                    break;
                }
                start += (size_t)skip;
                skip = 0;
                parsing = 1;
                http_request_init(&r);
                last = 0;
            }
            if (start == got)
                break;
            long rc = parse_exact(&r, in + start, got - start);
            FUZZ_CHECK(rc >= 0 || is_error(rc), "result %ld", rc);
            FUZZ_CHECK(last == 0 || rc == last, "a final result changed: %ld then %ld", last, rc);
            if (rc == 0) {
                FUZZ_CHECK(got - start <= HTTP_MAX_HEAD, "need more after %zu bytes", got - start);
                break;
            }
            last = rc;
            /* final: calling again, with or without more bytes, says the same */
            FUZZ_CHECK(parse_exact(&r, in + start, got - start) == rc, "not final");
            if (got < n)
                FUZZ_CHECK(parse_exact(&r, in + start, got - start + 1) == rc, "not final");
            record(&t->o[t->n++], &r, rc);
            if (rc < 0) {
                t->pending = -1;
                return; /* the server answers and closes */
            }
            check_complete(&r, in + start, got - start, rc);
            if (deep)
                check_prefixes(&r, in + start, rc);
            start += (size_t)rc;
            skip = r.content_length;
            parsing = 0;
            if (t->n == MAX_REQS) {
                t->pending = -2; /* enough: the rest is not compared */
                return;
            }
        }
    }
    t->pending = parsing ? (int)(got - start) : -1;
    t->skip = skip;
}

static void same(const trace *a, const trace *b, const char *how)
{
    FUZZ_CHECK(a->n == b->n, "%s: %d outcomes, not %d", how, b->n, a->n);
    for (int i = 0; i < a->n; i++)
        FUZZ_CHECK(memcmp(&a->o[i], &b->o[i], sizeof a->o[i]) == 0,
                   "%s: outcome %d differs (result %ld, not %ld)", how, i, b->o[i].result,
                   a->o[i].result);
    FUZZ_CHECK(a->pending == b->pending && a->skip == b->skip, "%s: the end differs", how);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static trace whole, other;
    if (size < 1)
        return 0;
    uint32_t seed = data[0] * 0x01000193u + 1;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    drive(in, n, seed, 0, &whole, 1);
    if (n <= 1024) {
        drive(in, n, seed, 1, &other, 0);
        same(&whole, &other, "byte at a time");
    }
    drive(in, n, seed, 2, &other, 0);
    same(&whole, &other, "random chunks");
    return 0;
}
