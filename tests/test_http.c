/*
 * tests/test_http.c - examples/http_parse.h, the HTTP/1.1 request parser of
 * examples/http_server.c: valid requests, pipelining, every truncation,
 * malformed requests, the size limits, and a fuzz loop.
 *
 * Every call to the parser reads from a heap block of exactly the bytes it
 * is given (xdup), so a read past the end is caught by ASan or valgrind (CI
 * runs this file under both). The fuzz loop feeds 200,000 random and
 * mutated byte sequences through a model of the server's connection buffer
 * (drive): once whole, once in random-sized chunks with the buffer moved
 * between calls, and checks that both give the same outcomes and that every
 * outcome is well-formed. The seed is fixed (HTTP_FUZZ_SEED overrides it, and
 * HTTP_FUZZ_ITERS the count) so a failure is reproducible.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/http_parse.h"

/* A heap copy of exactly n bytes (at least one byte is allocated, none
 * readable beyond n as far as the sanitizers are concerned). */
static char *xdup(const void *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    assert_non_null(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

/* Parse `s` (n bytes) in one call, from an exact-size copy. */
static long parse_n(http_request *r, const char *s, size_t n)
{
    char *b = xdup(s, n);
    http_request_init(r);
    long rc = http_parse_request(r, b, n);
    free(b);
    return rc;
}

static long parse(http_request *r, const char *s) { return parse_n(r, s, strlen(s)); }

/* Span checks against the source string. */
static void expect_span(const char *src, http_span s, const char *want)
{
    size_t n = strlen(want);
    if (s.len != n || memcmp(src + s.off, want, n) != 0)
        fail_msg("span [%u, +%u) is \"%.*s\", want \"%s\"", s.off, s.len, (int)s.len, src + s.off,
                 want);
}

static void expect_header(const char *src, const http_request *r, const char *name,
                          const char *value)
{
    int i = http_find_header(r, src, name);
    if (i < 0)
        fail_msg("no header %s", name);
    expect_span(src, r->headers[i].value, value);
}

/* ---- valid requests ---- */

static void test_simple_get(void **state)
{
    (void)state;
    const char *s = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    http_request r;
    assert_int_equal(parse(&r, s), (long)strlen(s));
    expect_span(s, r.method, "GET");
    expect_span(s, r.target, "/");
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.keep_alive, 1);
    assert_int_equal(r.content_length, 0);
    assert_int_equal(r.nheaders, 1);
    expect_span(s, r.headers[0].name, "Host");
    expect_span(s, r.headers[0].value, "example.com");
    assert_true(http_span_eq(s, r.method, "GET"));
    assert_false(http_span_eq(s, r.method, "get"));
    assert_true(http_span_ieq(s, r.headers[0].name, "HOST"));
    assert_int_equal(http_find_header(&r, s, "host"), 0);
    assert_int_equal(http_find_header(&r, s, "content-length"), -1);
}

static void test_versions_and_keep_alive(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        int minor, keep_alive;
    } cases[] = {
        { "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, 1 },
        { "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 1, 0 },
        { "GET / HTTP/1.1\r\nHost: a\r\nconnection: CLOSE\r\n\r\n", 1, 0 },
        { "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, close\r\n\r\n", 1, 0 },
        { "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", 1, 1 },
        { "GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", 1, 1 },
        { "GET / HTTP/1.0\r\n\r\n", 0, 0 },
        { "GET / HTTP/1.0\r\nHost: a\r\n\r\n", 0, 0 },
        { "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, 1 },
        { "GET / HTTP/1.0\r\nConnection: keep-alive , close\r\n\r\n", 0, 0 },
        { "GET / HTTP/1.0\r\nConnection: x\r\nConnection: keep-alive\r\n\r\n", 0, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_request r;
        long n = parse(&r, cases[i].req);
        if (n != (long)strlen(cases[i].req))
            fail_msg("case %zu: %ld", i, n);
        assert_int_equal(r.minor, cases[i].minor);
        if (r.keep_alive != cases[i].keep_alive)
            fail_msg("case %zu: keep_alive %d", i, r.keep_alive);
    }
}

static void test_fields(void **state)
{
    (void)state;
    const char *s = "POST /submit?q=1&r=%20 HTTP/1.1\r\n"
                    "Host:   example.com  \t\r\n"
                    "X-Empty:\r\n"
                    "X-Spaces: \t \r\n"
                    "Content-Length: 5\r\n"
                    "X-Obs: caf\xc3\xa9 au lait\r\n"
                    "content-length: 5\r\n"
                    "\r\n";
    http_request r;
    assert_int_equal(parse(&r, s), (long)strlen(s));
    expect_span(s, r.method, "POST");
    expect_span(s, r.target, "/submit?q=1&r=%20");
    assert_int_equal(r.nheaders, 6);
    expect_header(s, &r, "host", "example.com");
    expect_header(s, &r, "x-empty", "");
    expect_header(s, &r, "x-spaces", "");
    expect_header(s, &r, "X-OBS", "caf\xc3\xa9 au lait");
    assert_int_equal(r.content_length, 5);
}

static void test_bare_lf_and_leading_lines(void **state)
{
    (void)state;
    http_request r;
    const char *lf = "GET /x HTTP/1.1\nHost: a\n\n";
    assert_int_equal(parse(&r, lf), (long)strlen(lf));
    expect_span(lf, r.target, "/x");
    expect_header(lf, &r, "Host", "a");

    const char *mixed = "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\n";
    assert_int_equal(parse(&r, mixed), (long)strlen(mixed));
    assert_int_equal(r.nheaders, 2);

    const char *lead = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(parse(&r, lead), (long)strlen(lead));
    expect_span(lead, r.method, "GET");
}

static void test_methods(void **state)
{
    (void)state;
    static const char *methods[] = { "GET", "HEAD", "OPTIONS", "M-SEARCH", "X!#$%&'*+.^_`|~9" };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        char s[128];
        http_request r;
        snprintf(s, sizeof s, "%s * HTTP/1.1\r\nHost: a\r\n\r\n", methods[i]);
        assert_int_equal(parse(&r, s), (long)strlen(s));
        expect_span(s, r.method, methods[i]);
        expect_span(s, r.target, "*");
    }
}

/* A result is final; the buffer may move between calls. */
static void test_final_and_movable(void **state)
{
    (void)state;
    const char *s = "GET /moved HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE";
    size_t head = strlen(s) - strlen("GARBAGE");
    http_request r;
    http_request_init(&r);
    char *a = xdup(s, 10);
    assert_int_equal(http_parse_request(&r, a, 10), 0);
    free(a);
    char *b = xdup(s, strlen(s)); /* a new block: offsets still apply */
    assert_int_equal(http_parse_request(&r, b, strlen(s)), (long)head);
    assert_int_equal(http_parse_request(&r, b, strlen(s)), (long)head);
    expect_span(b, r.target, "/moved");
    free(b);

    http_request_init(&r);
    assert_int_equal(http_parse_request(&r, "BAD\x01", 4), HTTP_E400);
    assert_int_equal(http_parse_request(&r, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27), HTTP_E400);
}

/* ---- pipelining ---- */

static void test_pipelined(void **state)
{
    (void)state;
    const char *s = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                    "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
                    "\r\n" /* a stray CRLF after a body, as old clients send */
                    "GET /3 HTTP/1.0\r\n\r\n"
                    "GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    static const char *targets[] = { "/1", "/2", "/3", "/4" };
    static const int keep[] = { 1, 1, 0, 0 };
    size_t len = strlen(s), at = 0;
    char *b = xdup(s, len);
    for (int i = 0; i < 4; i++) {
        http_request r;
        http_request_init(&r);
        long n = http_parse_request(&r, b + at, len - at);
        assert_true(n > 0);
        expect_span(b + at, r.target, targets[i]);
        assert_int_equal(r.keep_alive, keep[i]);
        at += (size_t)n + (size_t)r.content_length;
        assert_true(at <= len);
    }
    assert_int_equal(at, len);
    free(b);
}

/* ---- truncation ---- */

static const char *valid_requests[] = {
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ("GET /city/Paris HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\n"
     "Accept: */*\r\n\r\n"),
    "HEAD /a/b/c?d=e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
    "GET / HTTP/1.1\nHost: x\n\n",
    "\r\nGET / HTTP/1.1\r\nHost:x\r\nX:\r\nY: \t z \t\r\n\r\n",
};

/* Every proper prefix needs more data, in one call or byte by byte; the
 * whole gives the head's length either way. */
static void test_truncated_at_every_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_requests / sizeof valid_requests[0]; i++) {
        const char *s = valid_requests[i];
        size_t len = strlen(s);
        http_request r, inc;
        http_request_init(&inc);
        for (size_t k = 0; k <= len; k++) {
            long want = k == len ? (long)len : 0;
            long whole = parse_n(&r, s, k);
            char *b = xdup(s, k);
            long step = http_parse_request(&inc, b, k);
            free(b);
            if (whole != want || step != want)
                fail_msg("request %zu cut at %zu: one call %ld, byte by byte %ld, want %ld", i, k,
                         whole, step, want);
        }
    }
}

/* ---- malformed ---- */

static void test_malformed(void **state)
{
    (void)state;
    /* C(literal, code): the length counts the NUL bytes inside the literal */
    /* clang-format off */
#define C(lit, code) { lit, sizeof lit - 1, code }
    /* clang-format on */
    static const struct {
        const char *req;
        size_t len;
        long want;
    } cases[] = {
        /* the request line */
        C("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_E400),
        C("GET\x7f / HTTP/1.1\r\n\r\n", HTTP_E400),
        C(" GET / HTTP/1.1\r\n\r\n", HTTP_E400),
        C("GET  / HTTP/1.1\r\n\r\n", HTTP_E400),
        C("GET /  HTTP/1.1\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1 \r\n\r\n", HTTP_E400),
        C("GET\t/ HTTP/1.1\r\n\r\n", HTTP_E400),
        C("GET /\r\n\r\n", HTTP_E400),  /* no version (HTTP/0.9) */
        C("GET / \r\n\r\n", HTTP_E400), /* an empty version */
        C("GET\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1x\r\n\r\n", HTTP_E400),
        C("GET / http/1.1\r\n\r\n", HTTP_E400),
        C("GET / HTTP/11\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.\r\n\r\n", HTTP_E400),
        C("GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP_E505),
        C("GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP_E505),
        C("GET / HTTP/0.9\r\n\r\n", HTTP_E505),
        C("GET /a\x01 HTTP/1.1\r\n\r\n", HTTP_E400),
        C("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\r\n\r\n", HTTP_E400), /* a bare CR */
        C("\rGET / HTTP/1.1\r\n\r\n", HTTP_E400),
        C("\x16\x03\x01\x02\x00", HTTP_E400), /* a TLS ClientHello */
        C("\0", HTTP_E400),
        /* fields */
        C("GET / HTTP/1.1\r\nHost a\r\n\r\n", HTTP_E400), /* no colon */
        C("GET / HTTP/1.1\r\nHost\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\n\rX", HTTP_E400),
        /* Host */
        C("GET / HTTP/1.1\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", HTTP_E400),
        /* Content-Length */
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
          HTTP_E400),
        C("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HTTP_E400),
        /* Transfer-Encoding */
        C("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_E501),
        C("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: gzip, chunked\r\n\r\n", HTTP_E501),
        C("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
          HTTP_E400),
    };
#undef C
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i].req;
        size_t len = cases[i].len;
        http_request r;
        long n = parse_n(&r, s, len);
        if (n != cases[i].want)
            fail_msg("case %zu (%.*s): %ld, want %ld", i, (int)len, s, n, cases[i].want);
        /* the same result byte by byte */
        http_request inc;
        http_request_init(&inc);
        long step = 0;
        for (size_t k = 1; k <= len && step == 0; k++) {
            char *b = xdup(s, k);
            step = http_parse_request(&inc, b, k);
            free(b);
        }
        if (step != cases[i].want)
            fail_msg("case %zu byte by byte: %ld, want %ld", i, step, cases[i].want);
    }
}

/* The largest Content-Length accepted: 18 digits. */
static void test_content_length_range(void **state)
{
    (void)state;
    http_request r;
    const char *s = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n";
    assert_int_equal(parse(&r, s), (long)strlen(s));
    assert_true(r.content_length == 999999999999999999LL);
    const char *z = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n";
    assert_int_equal(parse(&r, z), (long)strlen(z));
    assert_int_equal(r.content_length, 0);
}

/* ---- limits ---- */

/* A request whose head is exactly `size` bytes: one filler field. */
static char *sized_request(size_t size, size_t *len)
{
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX-Fill: ";
    const char *post = "\r\n\r\n";
    size_t fixed = strlen(pre) + strlen(post);
    assert_true(size > fixed);
    char *b = malloc(size);
    assert_non_null(b);
    memcpy(b, pre, strlen(pre));
    memset(b + strlen(pre), 'f', size - fixed);
    memcpy(b + size - strlen(post), post, strlen(post));
    *len = size;
    return b;
}

static void test_oversized(void **state)
{
    (void)state;
    http_request r;
    size_t len;

    /* exactly at the limit: fine; one more byte: 431 */
    char *b = sized_request(HTTP_MAX_HEAD, &len);
    assert_int_equal(parse_n(&r, b, len), HTTP_MAX_HEAD);
    free(b);
    b = sized_request(HTTP_MAX_HEAD + 1, &len);
    assert_int_equal(parse_n(&r, b, len), HTTP_E431);
    free(b);

    /* 431 as soon as the limit is crossed, with no end in sight */
    b = sized_request(64 * 1024, &len);
    assert_int_equal(parse_n(&r, b, HTTP_MAX_HEAD), 0);
    assert_int_equal(parse_n(&r, b, HTTP_MAX_HEAD + 1), HTTP_E431);
    free(b);

    /* many small fields: the size limit */
    char *big = malloc(3 * HTTP_MAX_HEAD);
    assert_non_null(big);
    int o = sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
    while (o < 2 * HTTP_MAX_HEAD)
        o += sprintf(big + o, "X-Header-%d: some value\r\n", o);
    o += sprintf(big + o, "\r\n");
    assert_int_equal(parse_n(&r, big, (size_t)o), HTTP_E431);

    /* too many fields within the size: 431 */
    o = sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < HTTP_MAX_HEADERS; i++)
        o += sprintf(big + o, "X%d: v\r\n", i);
    o += sprintf(big + o, "\r\n");
    assert_int_equal(parse_n(&r, big, (size_t)o), o);
    assert_int_equal(r.nheaders, HTTP_MAX_HEADERS);
    o -= 2;
    o += sprintf(big + o, "X: one too many\r\n\r\n");
    assert_int_equal(parse_n(&r, big, (size_t)o), HTTP_E431);

    /* a request line past the limit: 414 */
    o = sprintf(big, "GET /");
    memset(big + o, 'a', HTTP_MAX_HEAD);
    o += HTTP_MAX_HEAD;
    o += sprintf(big + o, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(parse_n(&r, big, (size_t)o), HTTP_E414);

    /* nothing but empty lines: 400 once past the limit */
    for (int i = 0; i < HTTP_MAX_HEAD + 2; i += 2)
        memcpy(big + i, "\r\n", 2);
    assert_int_equal(parse_n(&r, big, HTTP_MAX_HEAD), 0);
    assert_int_equal(parse_n(&r, big, HTTP_MAX_HEAD + 2), HTTP_E400);
    free(big);
}

/* ---- fuzz ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* One request's outcome, as the server would see it. */
typedef struct outcome {
    long result;     /* the head's length or an error */
    uint64_t digest; /* method, target, fields */
    int minor, keep_alive;
    int64_t content_length;
    unsigned nheaders;
} outcome;

#define MAX_OUTCOMES 64

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* A complete request: check everything it reports lies inside its head. */
static void check_complete(const http_request *r, const char *buf, long n, size_t avail)
{
    assert_true(n > 0 && (size_t)n <= avail && n <= HTTP_MAX_HEAD);
    assert_true(r->method.len > 0 && r->method.off + r->method.len <= n);
    for (unsigned i = 0; i < r->method.len; i++)
        assert_non_null(memchr(tchars, buf[r->method.off + i], sizeof tchars - 1));
    assert_true(r->target.len > 0 && r->target.off + r->target.len <= n);
    assert_true(r->minor == 0 || r->minor == 1);
    assert_true(r->keep_alive == 0 || r->keep_alive == 1);
    assert_true(r->content_length >= 0);
    assert_true(r->nheaders <= HTTP_MAX_HEADERS);
    for (unsigned i = 0; i < r->nheaders; i++) {
        const http_header *h = &r->headers[i];
        assert_true(h->name.len > 0 && h->name.off + h->name.len <= n);
        assert_true(h->value.off + h->value.len <= n);
    }
}

/* The server's connection buffer, modelled: the input arrives in chunks
 * (chunk == 0: all at once); each chunk makes a new exact-size block (the
 * old one is freed: any stale pointer would be caught); complete requests
 * are consumed, their bodies skipped, the rest parsed next (pipelining).
 * Returns the number of outcomes; the last one may be 0 (need more). */
static int drive(const char *data, size_t len, int chunked, outcome *out)
{
    char *buf = NULL;
    size_t have = 0, fed = 0;
    int64_t skip = 0;
    int n = 0;
    http_request r;
    http_request_init(&r);
    out[0].result = 0;
    while (fed < len && n < MAX_OUTCOMES) {
        size_t c = len - fed;
        if (chunked) {
            size_t limit = below(4) == 0 ? 512 : 16;
            c = 1 + below(limit);
            if (c > len - fed)
                c = len - fed;
        }
        /* the body still being skipped eats the chunk's start */
        size_t eat = skip > (int64_t)c ? c : (size_t)skip;
        skip -= (int64_t)eat;
        char *nb = malloc(have + c - eat ? have + c - eat : 1);
        assert_non_null(nb);
        if (have)
            memcpy(nb, buf, have);
        memcpy(nb + have, data + fed + eat, c - eat);
        free(buf);
        buf = nb;
        have += c - eat;
        fed += c;
        while (have > 0 && n < MAX_OUTCOMES) {
            long rc = http_parse_request(&r, buf, have);
            out[n].result = rc;
            if (rc == 0)
                break;
            if (rc < 0) {
                n++;
                free(buf);
                return n; /* the server answers and closes */
            }
            check_complete(&r, buf, rc, have);
            outcome *o = &out[n++];
            uint64_t h = fnv(1469598103934665603ULL, buf + r.method.off, r.method.len);
            h = fnv(h, buf + r.target.off, r.target.len);
            for (unsigned i = 0; i < r.nheaders; i++) {
                h = fnv(h, buf + r.headers[i].name.off, r.headers[i].name.len);
                h = fnv(h, ":", 1);
                h = fnv(h, buf + r.headers[i].value.off, r.headers[i].value.len);
            }
            o->digest = h;
            o->minor = r.minor;
            o->keep_alive = r.keep_alive;
            o->content_length = r.content_length;
            o->nheaders = r.nheaders;
            /* consume the head and what is here of the body */
            size_t used = (size_t)rc;
            size_t body = have - used;
            if ((int64_t)body > r.content_length)
                body = (size_t)r.content_length;
            skip = r.content_length - (int64_t)body;
            used += body;
            memmove(buf, buf + used, have - used);
            have -= used;
            http_request_init(&r);
            if (n < MAX_OUTCOMES)
                out[n].result = 0;
        }
    }
    free(buf);
    return n < MAX_OUTCOMES && out[n].result == 0 ? n + 1 : n;
}

static const char *fragments[] = {
    "GET",
    "HEAD",
    "POST",
    " ",
    "/",
    "/city/Paris",
    "*",
    " HTTP/1.1",
    " HTTP/1.0",
    "HTTP/",
    "1.1",
    "\r\n",
    "\n",
    "\r",
    "\t",
    ":",
    ": ",
    "Host: x",
    "Host",
    "Content-Length: ",
    "Content-Length",
    "0",
    "1",
    "12",
    "-1",
    "99999999999999999999",
    "Transfer-Encoding: chunked",
    "Connection: close",
    "Connection: keep-alive",
    ",",
    "\r\n\r\n",
    "\0",
    "\x80",
    "\xff",
    "\x7f",
    "a",
    "Z",
    "%",
    "?q=1",
};

static const char *seeds[] = {
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ("GET /city/Oslo HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"
     "GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbodyGET / HTTP/1.0\r\n\r\n",
    "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\nX: y\r\n\r\n",
    "GET / HTTP/1.1\nHost: x\n\n\r\nGET /2 HTTP/1.1\nHost: y\nConnection: close\n\n",
};

static void append(char *buf, size_t *len, size_t cap, const char *p, size_t n)
{
    if (n > cap - *len)
        n = cap - *len;
    memcpy(buf + *len, p, n);
    *len += n;
}

static void add_fragment(char *buf, size_t *len, size_t cap)
{
    size_t k = below(sizeof fragments / sizeof fragments[0]);
    const char *f = fragments[k];
    append(buf, len, cap, f, f[0] ? strlen(f) : 1); /* "\0" is one NUL byte */
}

#define FUZZ_CAP (HTTP_MAX_HEAD + 1024)

/* One test input into buf (at most FUZZ_CAP bytes); returns its length. */
static size_t make_input(char *buf)
{
    size_t len = 0;
    switch (below(8)) {
    case 0: /* random bytes */
        len = below(300);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)rnd();
        break;
    case 1: /* random fragments */
        for (size_t k = 1 + below(40); k > 0; k--)
            add_fragment(buf, &len, FUZZ_CAP);
        break;
    case 2: /* near the size limit: a valid start, a long field */
        append(buf, &len, FUZZ_CAP, seeds[0], strlen(seeds[0]) - 2);
        append(buf, &len, FUZZ_CAP, "X-Long: ", 8);
        {
            size_t fill = HTTP_MAX_HEAD - 40 - len + below(80);
            memset(buf + len, 'v', fill);
            len += fill;
        }
        append(buf, &len, FUZZ_CAP, "\r\n\r\n", 4);
        break;
    default: { /* a mutated valid (often pipelined) input */
        for (size_t k = 1 + below(3); k > 0; k--) {
            const char *s = seeds[below(sizeof seeds / sizeof seeds[0])];
            append(buf, &len, FUZZ_CAP, s, strlen(s));
        }
        for (size_t m = below(5); m > 0 && len > 0; m--) {
            size_t at = below(len);
            switch (below(6)) {
            case 0:
                buf[at] = (char)rnd();
                break;
            case 1:
                buf[at] ^= (char)(1u << below(8));
                break;
            case 2: { /* delete a range */
                size_t n = 1 + below(len - at < 8 ? len - at : 8);
                memmove(buf + at, buf + at + n, len - at - n);
                len -= n;
                break;
            }
            case 3: { /* insert a fragment at `at` */
                char tmp[64];
                size_t tl = 0;
                add_fragment(tmp, &tl, sizeof tmp);
                if (len + tl <= FUZZ_CAP) {
                    memmove(buf + at + tl, buf + at, len - at);
                    memcpy(buf + at, tmp, tl);
                    len += tl;
                }
                break;
            }
            case 4: /* truncate */
                len = at;
                break;
            default: { /* duplicate a range */
                size_t n = 1 + below(len - at < 32 ? len - at : 32);
                if (len + n <= FUZZ_CAP) {
                    memmove(buf + at + n, buf + at, len - at);
                    len += n;
                }
                break;
            }
            }
        }
        break;
    }
    }
    return len;
}

static int same_outcome(const outcome *a, const outcome *b)
{
    if (a->result != b->result)
        return 0;
    if (a->result <= 0)
        return 1;
    return a->digest == b->digest && a->minor == b->minor && a->keep_alive == b->keep_alive &&
           a->content_length == b->content_length && a->nheaders == b->nheaders;
}

static int is_error(long rc)
{
    return rc == HTTP_E400 || rc == HTTP_E414 || rc == HTTP_E431 || rc == HTTP_E501 ||
           rc == HTTP_E505;
}

static void test_fuzz(void **state)
{
    (void)state;
    const char *seed_env = getenv("HTTP_FUZZ_SEED");
    const char *iters_env = getenv("HTTP_FUZZ_ITERS");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x5eed1234abcdULL;
    long iters = iters_env ? strtol(iters_env, NULL, 0) : 200000;
    long complete = 0, errors = 0, more = 0;
    char *input = malloc(FUZZ_CAP);
    assert_non_null(input);
    rng_state = seed ? seed : 1;
    for (long it = 0; it < iters; it++) {
        outcome whole[MAX_OUTCOMES], parts[MAX_OUTCOMES];
        size_t len = make_input(input);
        int nw = drive(input, len, 0, whole);
        int np = drive(input, len, 1, parts);
        int same = nw == np;
        for (int i = 0; same && i < nw; i++)
            same = same_outcome(&whole[i], &parts[i]);
        if (!same) {
            print_error("input %ld (seed %#llx), %zu bytes:\n", it, (unsigned long long)seed, len);
            for (size_t i = 0; i < len; i++)
                print_error("\\x%02x", (unsigned char)input[i]);
            print_error("\nwhole: %d outcomes, chunked: %d\n", nw, np);
            for (int i = 0; i < nw || i < np; i++)
                print_error("  %d: %ld vs %ld\n", i, i < nw ? whole[i].result : 999,
                            i < np ? parts[i].result : 999);
            fail_msg("the chunked parse differs from the whole one");
        }
        for (int i = 0; i < nw; i++) {
            if (whole[i].result > 0)
                complete++;
            else if (whole[i].result == 0)
                more++;
            else if (is_error(whole[i].result))
                errors++;
            else
                fail_msg("input %ld: result %ld", it, whole[i].result);
        }
    }
    free(input);
    print_message("fuzz: %ld random inputs, each parsed whole and in chunks with the same "
                  "outcome: %ld complete requests, %ld rejected as malformed (as intended), "
                  "%ld incomplete (waiting for more)\n",
                  iters, complete, errors, more);
    /* the generator must reach every kind of outcome, or it tests little */
    assert_true(complete > iters / 10);
    assert_true(errors > iters / 10);
    assert_true(more > iters / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get), cmocka_unit_test(test_versions_and_keep_alive),
        cmocka_unit_test(test_fields),     cmocka_unit_test(test_bare_lf_and_leading_lines),
        cmocka_unit_test(test_methods),    cmocka_unit_test(test_final_and_movable),
        cmocka_unit_test(test_pipelined),  cmocka_unit_test(test_truncated_at_every_byte),
        cmocka_unit_test(test_malformed),  cmocka_unit_test(test_content_length_range),
        cmocka_unit_test(test_oversized),  cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
