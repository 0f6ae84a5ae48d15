/*
 * examples/http_parse.h - an incremental HTTP/1.1 request parser, header only.
 *
 * Used by examples/http_server.c and tests/test_http.c. No allocation, no
 * dependency (not even on coro.h): a state machine over a caller-owned
 * buffer, a byte at a time where the grammar changes and a tight loop over
 * each run of one kind of byte (a token, a target, a value), in the spirit
 * of picohttpparser and llhttp, reduced to what a small origin server needs.
 *
 *   http_request r;
 *   http_request_init(&r);
 *   for (;;) {                               buf holds the request from its
 *       long n = http_parse_request(&r, buf, len);   first byte, len bytes
 *       if (n > 0)  the head is complete: n bytes (request line, headers,
 *                   the blank line); then skip r.content_length body bytes;
 *                   the next request (pipelining) starts at buf + n + body
 *       if (n == 0) need more: read more bytes behind the first len, call again
 *       if (n < 0)  -n is the status to answer with (400, 414, 431, 501, 505),
 *                   then close the connection
 *   }
 *
 * Incremental: each call scans only the bytes it has not seen yet (r keeps
 * the state and the position), so feeding a request one byte at a time costs
 * the same as feeding it whole. Between calls the caller may move the bytes
 * (compact or grow its buffer) as long as `buf` starts at the same request
 * byte and still holds every byte given before: the request keeps offsets,
 * never pointers. A result (complete or error) is final: calling again
 * returns it again; http_request_init starts the next request.
 *
 * Contract: never reads outside buf[0, len), for any bytes; never fails on
 * a prefix of a valid request (0: need more), and reaches the same result
 * whatever the chunking.
 *
 * What it accepts (RFC 9112), and the choices made where the RFC leaves one:
 *   - request-line = method SP request-target SP HTTP-version, one SP each;
 *     method a token (tchar+), target visible ASCII (0x21-0x7E), version
 *     exactly HTTP/1.0 or HTTP/1.1. "HTTP/" DIGIT "." DIGIT otherwise is 505;
 *     a missing version (HTTP/0.9) or any other shape is 400.
 *   - Line ends: CRLF, and a bare LF is accepted as one too (RFC 9112 2.2
 *     allows it; nginx does the same). A CR not followed by LF is 400.
 *   - Empty lines before the request line are skipped (RFC 9112 2.2: a
 *     client may send a CRLF after a body); they count in the bytes consumed.
 *   - field-line = field-name ":" OWS field-value OWS; the name a token
 *     (whitespace before the colon is 400), the value VCHAR, obs-text, SP
 *     and HTAB (other control bytes are 400), trailing OWS trimmed.
 *     obs-fold (a line starting with SP or HTAB) is 400.
 *   - Limits: the whole head (leading empty lines, request line, fields, the
 *     blank line) at most HTTP_MAX_HEAD bytes: exceeded while still in the
 *     request line is 414 URI Too Long, in the fields 431 Request Header
 *     Fields Too Large (reported as soon as the limit is crossed, without
 *     waiting for the end). More than HTTP_MAX_HEADERS fields is 431.
 *   - Content-Length: 1 to 18 digits, nothing else (no sign, no list); two
 *     that differ are 400. The body is not parsed: the caller skips
 *     r.content_length bytes.
 *   - Transfer-Encoding: any (chunked included) is 501 Not Implemented: this
 *     parser reads no chunked bodies; together with Content-Length it is 400
 *     (RFC 9112 6.1: a smuggling attempt).
 *   - Host: an HTTP/1.1 request must carry exactly one (RFC 9112 3.2), else
 *     400; HTTP/1.0 at most one.
 *   - Keep-alive: HTTP/1.1 keeps the connection unless Connection lists
 *     "close"; HTTP/1.0 closes it unless Connection lists "keep-alive"
 *     (tokens compared case-insensitively; close wins).
 */
#ifndef CORO_EXAMPLES_HTTP_PARSE_H
#define CORO_EXAMPLES_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HTTP_MAX_HEAD 8192  /* bytes of one request head, all told */
#define HTTP_MAX_HEADERS 64 /* fields in one request */

/* Results besides "n > 0 bytes consumed": 0 needs more, -status is an error. */
#define HTTP_NEED_MORE 0
#define HTTP_E400 (-400) /* Bad Request */
#define HTTP_E414 (-414) /* URI Too Long: the request line passed the limit */
#define HTTP_E431 (-431) /* Request Header Fields Too Large */
#define HTTP_E501 (-501) /* Not Implemented: a Transfer-Encoding */
#define HTTP_E505 (-505) /* HTTP Version Not Supported */

/* A piece of the request: buf[off, off + len). Offsets fit 16 bits since
 * the head is at most HTTP_MAX_HEAD bytes. */
typedef struct http_span {
    uint16_t off, len;
} http_span;

typedef struct http_header {
    http_span name, value; /* the value without its surrounding whitespace */
} http_header;

typedef struct http_request {
    /* read-only, valid once http_parse_request returned n > 0 */
    http_span method, target;
    int minor;              /* HTTP/1.<minor>: 0 or 1 */
    int keep_alive;         /* 1: the connection stays open after this one */
    int64_t content_length; /* body bytes following the head (0 if none) */
    unsigned nheaders;
    http_header headers[HTTP_MAX_HEADERS];
    /* private: the parser's state */
    uint32_t pos;  /* bytes scanned */
    uint16_t mark; /* where the token being scanned started */
    uint16_t vend; /* the end of the value so far, trailing OWS excluded */
    uint8_t state;
    long result; /* the final result once reached, else 0 */
} http_request;

#if defined(__GNUC__) || defined(__clang__)
#define HTTP__FALLTHROUGH __attribute__((fallthrough))
#else
#define HTTP__FALLTHROUGH ((void)0)
#endif

typedef char http__head_fits_u16[HTTP_MAX_HEAD < 65536 ? 1 : -1];

enum {
    HTTP__START, /* before the request line: empty lines are skipped */
    HTTP__START_LF,
    HTTP__METHOD,
    HTTP__TARGET,
    HTTP__VERSION,
    HTTP__LINE_LF, /* after the request line's CR */
    HTTP__FIELD,   /* at the start of a field line, or of the blank line */
    HTTP__NAME,
    HTTP__OWS, /* after the colon */
    HTTP__VALUE,
    HTTP__FIELD_LF,
    HTTP__END_LF, /* after the blank line's CR */
    HTTP__DONE
};

/* Start parsing a new request. */
static inline void http_request_init(http_request *r)
{
    r->method.off = r->method.len = 0;
    r->target = r->method;
    r->minor = 1;
    r->keep_alive = 0;
    r->content_length = 0;
    r->nheaders = 0;
    r->pos = 0;
    r->mark = 0;
    r->vend = 0;
    r->state = HTTP__START;
    r->result = 0;
}

/* Character classes: bit 1 tchar (RFC 9110 5.6.2), bit 2 field-value byte
 * (VCHAR, obs-text, SP, HTAB), bit 4 request-target byte (VCHAR); one
 * table lookup a byte, the table built by the compiler from the rules. */
#define HTTP__TCHAR(c)                                                                          \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || \
     (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' ||       \
     (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||        \
     (c) == '`' || (c) == '|' || (c) == '~')
#define HTTP__VCHAR(c) ((c) >= 0x21 && (c) <= 0x7E)
#define HTTP__FIELDV(c) (HTTP__VCHAR(c) || (c) >= 0x80 || (c) == ' ' || (c) == '\t')
#define HTTP__CLASS(c) (HTTP__TCHAR(c) | HTTP__FIELDV(c) << 1 | HTTP__VCHAR(c) << 2)
#define HTTP__C4(c) HTTP__CLASS(c), HTTP__CLASS((c) + 1), HTTP__CLASS((c) + 2), HTTP__CLASS((c) + 3)
#define HTTP__C16(c) HTTP__C4(c), HTTP__C4((c) + 4), HTTP__C4((c) + 8), HTTP__C4((c) + 12)
#define HTTP__C64(c) HTTP__C16(c), HTTP__C16((c) + 16), HTTP__C16((c) + 32), HTTP__C16((c) + 48)
static const unsigned char http__classes[256] = { HTTP__C64(0), HTTP__C64(64), HTTP__C64(128),
                                                  HTTP__C64(192) };

static inline unsigned http__class(unsigned char c) { return http__classes[c]; }

/* The last index of the run of bytes of class `cls` that goes on from
 * buf[p], below `lim`: the hot states (target, name, value) take a run in
 * this tight loop instead of a pass of the state machine a byte. */
static inline uint32_t http__run_end(const char *buf, uint32_t p, uint32_t lim, unsigned cls)
{
    while (p + 1 < lim && (http__classes[(unsigned char)buf[p + 1]] & cls))
        p++;
    return p;
}

static inline int http__lower(int c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

/* Case-insensitive: does buf[s] equal the NUL-terminated `lit`? */
static inline int http_span_ieq(const char *buf, http_span s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (http__lower((unsigned char)buf[s.off + i]) != http__lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

/* Case-sensitive (methods are): does buf[s] equal `lit`? */
static inline int http_span_eq(const char *buf, http_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(buf + s.off, lit, n) == 0;
}

/* The first field named `name` (case-insensitive): its index, or -1. */
static inline int http_find_header(const http_request *r, const char *buf, const char *name)
{
    for (unsigned i = 0; i < r->nheaders; i++)
        if (http_span_ieq(buf, r->headers[i].name, name))
            return (int)i;
    return -1;
}

/* Content-Length's value: 1 to 18 digits. -1 if it is anything else. */
static inline int64_t http__content_length(const char *buf, http_span v)
{
    int64_t n = 0;
    if (v.len == 0 || v.len > 18)
        return -1;
    for (unsigned i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)buf[v.off + i];
        if (c < '0' || c > '9')
            return -1;
        n = n * 10 + (c - '0');
    }
    return n;
}

/* Connection's tokens: bit 1 "close", bit 2 "keep-alive". */
static inline unsigned http__connection(const char *buf, http_span v)
{
    unsigned seen = 0, i = 0;
    while (i < v.len) {
        http_span tok;
        while (i < v.len &&
               (buf[v.off + i] == ' ' || buf[v.off + i] == '\t' || buf[v.off + i] == ','))
            i++;
        tok.off = (uint16_t)(v.off + i);
        while (i < v.len && buf[v.off + i] != ',')
            i++;
        tok.len = (uint16_t)(v.off + i - tok.off);
        while (tok.len > 0 &&
               (buf[tok.off + tok.len - 1] == ' ' || buf[tok.off + tok.len - 1] == '\t'))
            tok.len--;
        if (http_span_ieq(buf, tok, "close"))
            seen |= 1;
        else if (http_span_ieq(buf, tok, "keep-alive"))
            seen |= 2;
    }
    return seen;
}

/* The head is complete: check the fields that matter and fill in
 * content_length and keep_alive. Returns 0 or an HTTP_E* code. */
static inline long http__finish(http_request *r, const char *buf)
{
    int64_t cl = -1;
    unsigned conn = 0, hosts = 0, te = 0;
    for (unsigned i = 0; i < r->nheaders; i++) {
        const http_header *h = &r->headers[i];
        if (http_span_ieq(buf, h->name, "content-length")) {
            int64_t v = http__content_length(buf, h->value);
            if (v < 0 || (cl >= 0 && v != cl))
                return HTTP_E400;
            cl = v;
        } else if (http_span_ieq(buf, h->name, "transfer-encoding")) {
            te = 1;
        } else if (http_span_ieq(buf, h->name, "connection")) {
            conn |= http__connection(buf, h->value);
        } else if (http_span_ieq(buf, h->name, "host")) {
            hosts++;
        }
    }
    if (te)
        return cl >= 0 ? HTTP_E400 : HTTP_E501;
    if (hosts > 1 || (r->minor == 1 && hosts == 0))
        return HTTP_E400;
    r->content_length = cl < 0 ? 0 : cl;
    if (conn & 1)
        r->keep_alive = 0;
    else
        r->keep_alive = r->minor == 1 || (conn & 2);
    return 0;
}

/* May byte i of the version be c? The shape is "HTTP/" DIGIT "." DIGIT. */
static inline int http__version_byte(uint32_t i, unsigned char c)
{
    if (i < 5)
        return c == (unsigned char)"HTTP/"[i];
    if (i == 6)
        return c == '.';
    return i < 8 && c >= '0' && c <= '9';
}

/* The request line ended at buf[end) (its CR or LF): check the version. */
static inline long http__version(http_request *r, const char *buf, uint32_t end)
{
    const char *v = buf + r->mark;
    if (end - r->mark != 8)
        return HTTP_E400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return HTTP_E505;
    r->minor = v[7] - '0';
    return 0;
}

/* Parse what is new in buf[0, len): see the top of the file. Returns the
 * head's length (> 0) when complete, HTTP_NEED_MORE, or an HTTP_E* code. */
static inline long http_parse_request(http_request *r, const char *buf, size_t len)
{
    uint32_t p = r->pos;
    uint32_t lim = len < HTTP_MAX_HEAD ? (uint32_t)len : HTTP_MAX_HEAD; /* where runs stop */
    long err = 0;
    if (r->result != 0)
        return r->result;
    for (; p < len; p++) {
        unsigned char c = (unsigned char)buf[p];
        if (p >= HTTP_MAX_HEAD) {
            if (r->state == HTTP__START || r->state == HTTP__START_LF)
                err = HTTP_E400; /* nothing but empty lines */
            else if (r->state <= HTTP__LINE_LF)
                err = HTTP_E414;
            else
                err = HTTP_E431;
            break;
        }
        switch (r->state) {
        case HTTP__START:
            if (c == '\r') {
                r->state = HTTP__START_LF;
            } else if (c == '\n') {
                /* a bare empty line: skip it */
            } else if (http__class(c) & 1) {
                r->mark = (uint16_t)p;
                r->state = HTTP__METHOD;
            } else {
                err = HTTP_E400;
            }
            break;
        case HTTP__START_LF:
            if (c != '\n')
                err = HTTP_E400;
            r->state = HTTP__START;
            break;
        case HTTP__METHOD:
            if (c == ' ') {
                r->method.off = r->mark;
                r->method.len = (uint16_t)(p - r->mark);
                r->mark = (uint16_t)(p + 1);
                r->state = HTTP__TARGET;
            } else if (!(http__class(c) & 1)) {
                err = HTTP_E400;
            } else {
                p = http__run_end(buf, p, lim, 1);
            }
            break;
        case HTTP__TARGET:
            if (c == ' ' && p > r->mark) {
                r->target.off = r->mark;
                r->target.len = (uint16_t)(p - r->mark);
                r->mark = (uint16_t)(p + 1);
                r->state = HTTP__VERSION;
            } else if (!(http__class(c) & 4)) {
                err = HTTP_E400; /* an empty target, a control byte, no version */
            } else {
                p = http__run_end(buf, p, lim, 4);
            }
            break;
        case HTTP__VERSION: {
            uint32_t i = p - r->mark;
            if (c == '\r' || c == '\n') {
                err = http__version(r, buf, p);
                r->state = c == '\r' ? HTTP__LINE_LF : HTTP__FIELD;
            } else if (!http__version_byte(i, c)) {
                err = HTTP_E400;
            } else { /* the rest of "HTTP/x.y" in a tight loop */
                while (p + 1 < lim && http__version_byte(i + 1, (unsigned char)buf[p + 1])) {
                    p++;
                    i++;
                }
            }
            break;
        }
        case HTTP__LINE_LF:
        case HTTP__FIELD_LF:
            if (c != '\n')
                err = HTTP_E400;
            r->state = HTTP__FIELD;
            break;
        case HTTP__FIELD:
            if (c == '\r') {
                r->state = HTTP__END_LF;
            } else if (c == '\n') {
                r->state = HTTP__DONE;
            } else if (http__class(c) & 1) {
                if (r->nheaders == HTTP_MAX_HEADERS) {
                    err = HTTP_E431;
                    break;
                }
                r->mark = (uint16_t)p;
                r->state = HTTP__NAME;
            } else {
                err = HTTP_E400; /* obs-fold, or a stray byte */
            }
            break;
        case HTTP__NAME:
            if (c == ':') {
                http_header *h = &r->headers[r->nheaders];
                h->name.off = r->mark;
                h->name.len = (uint16_t)(p - r->mark);
                r->state = HTTP__OWS;
            } else if (!(http__class(c) & 1)) {
                err = HTTP_E400;
            } else {
                p = http__run_end(buf, p, lim, 1);
            }
            break;
        case HTTP__OWS:
            if (c == ' ' || c == '\t')
                break;
            r->mark = r->vend = (uint16_t)p;
            r->state = HTTP__VALUE;
            HTTP__FALLTHROUGH; /* c is the value's first byte, or the line's end */
        case HTTP__VALUE:
            if (c == '\r' || c == '\n') {
                http_header *h = &r->headers[r->nheaders++];
                h->value.off = r->mark;
                h->value.len = (uint16_t)(r->vend - r->mark);
                r->state = c == '\r' ? HTTP__FIELD_LF : HTTP__FIELD;
            } else if (http__class(c) & 2) {
                uint32_t vend = r->vend;
                for (;;) { /* the value's run; vend: past its last non-blank byte */
                    if (c != ' ' && c != '\t')
                        vend = p + 1;
                    if (p + 1 >= lim || !(http__classes[(unsigned char)buf[p + 1]] & 2))
                        break;
                    c = (unsigned char)buf[++p];
                }
                r->vend = (uint16_t)vend;
            } else {
                err = HTTP_E400;
            }
            break;
        case HTTP__END_LF:
            if (c != '\n')
                err = HTTP_E400;
            r->state = HTTP__DONE;
            break;
        default:
            break;
        }
        if (err)
            break;
        if (r->state == HTTP__DONE) {
            p++;
            err = http__finish(r, buf);
            break;
        }
    }
    r->pos = p;
    if (err)
        r->result = err;
    else if (r->state == HTTP__DONE)
        r->result = (long)p;
    return r->result;
}

/* The reason phrase of the statuses the server sends. */
static inline const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

#endif /* CORO_EXAMPLES_HTTP_PARSE_H */
