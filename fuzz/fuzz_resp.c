/*
 * fuzz/fuzz_resp.c - examples/resp_parse.h (kv_server's RESP parser) under
 * libFuzzer.
 *
 * Input: byte 0 seeds the chunking, the rest is what a client sends on one
 * connection (pipelined commands, multibulk or inline, or garbage).
 *
 * The harness models kv_server's connection buffer: bytes arrive in chunks,
 * the parser is called after each one over the bytes of the current
 * command so far, from a fresh heap block of exactly those bytes (the
 * buffer "moves" between calls, as the header allows, and a read outside
 * it is caught by ASan); a complete command is followed by the next
 * (pipelining), an error ends the connection. max_bulk is small (1000) so
 * the limits are reachable.
 *
 * Checks, from the header's contract:
 *   - every result is 0, a length within the bytes given, or one of the
 *     RESP_E_* codes (never RESP_E_NOMEM here);
 *   - a complete command's arguments lie inside the bytes given (multibulk)
 *     or inside the parser's scratch (inline), are at most max_bulk bytes
 *     (multibulk), and number at most RESP_MAX_ARGS;
 *   - the same connection fed whole and in random chunks gives the same
 *     outcomes (results and the arguments' bytes);
 *   - every prefix of a complete command (up to 512 bytes) gives 0: never
 *     fails on a prefix of a valid command;
 *   - a protocol error's reply starts "-ERR Protocol error: " and ends CRLF.
 */
#include "examples/resp_parse.h"
#include "fuzz/fuzz.h"

#define MAX_CMDS 64
#define MAX_BULK 1000

typedef struct trace {
    int n;
    long result[MAX_CMDS];
    size_t argc[MAX_CMDS];
    uint64_t hash[MAX_CMDS];
} trace;

static uint64_t hash_args(const resp_parser *p)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < p->argc; i++) {
        h = (h ^ p->argv[i].len) * 1099511628211ull;
        for (size_t j = 0; j < p->argv[i].len; j++)
            h = (h ^ (unsigned char)p->argv[i].p[j]) * 1099511628211ull;
    }
    return h;
}

/* One call over an exact-size copy of buf[0, len); a complete command is
 * checked and hashed while the copy lives. */
static long parse_exact(resp_parser *p, const uint8_t *buf, size_t len, uint64_t *hash)
{
    char *b = malloc(len ? len : 1);
    FUZZ_CHECK(b != NULL, "out of memory");
    if (len)
        memcpy(b, buf, len);
    long r = resp_parse(p, b, len);
    FUZZ_CHECK(r >= RESP_E_QUOTES && (r <= 0 || (size_t)r <= len), "result %ld for %zu bytes", r,
               len);
    if (r > 0) {
        int is_inline = b[0] != '*';
        FUZZ_CHECK(p->argc <= RESP_MAX_ARGS, "%zu arguments", p->argc);
        for (size_t i = 0; i < p->argc; i++) {
            const char *a = p->argv[i].p;
            size_t n = p->argv[i].len;
            if (is_inline) {
                FUZZ_CHECK(a >= p->scratch && a + n <= p->scratch + p->scap,
                           "inline argument %zu outside the scratch", i);
            } else {
                FUZZ_CHECK(a >= b && a + n <= b + r, "argument %zu outside the command", i);
                FUZZ_CHECK(n <= MAX_BULK, "argument %zu of %zu bytes", i, n);
            }
        }
        *hash = hash_args(p);
    }
    if (r < 0) {
        char text[64];
        size_t n = resp_error_text(p, r, text);
        FUZZ_CHECK(n >= 23 && memcmp(text, "-ERR Protocol error: ", 21) == 0 &&
                       memcmp(text + n - 2, "\r\n", 2) == 0,
                   "error text for %ld", r);
    }
    free(b);
    return r;
}

static void drive(const uint8_t *d, size_t n, uint32_t seed, int chunked, trace *t)
{
    resp_parser p;
    size_t start = 0, avail = 0;
    resp_parser_init(&p, MAX_BULK);
    t->n = 0;
    while (avail < n && t->n < MAX_CMDS) {
        size_t chunk = chunked ? 1 + fuzz_rand(&seed) % 97 : n;
        avail = avail + chunk < n ? avail + chunk : n;
        while (start < avail && t->n < MAX_CMDS) {
            uint64_t h = 0;
            long r = parse_exact(&p, d + start, avail - start, &h);
            if (r == RESP_NEED_MORE)
                break;
            t->result[t->n] = r;
            t->argc[t->n] = r > 0 ? p.argc : 0;
            t->hash[t->n] = h;
            t->n++;
            if (r < 0)
                goto done;
            start += (size_t)r;
            resp_parser_reset(&p);
        }
    }
done:
    resp_parser_free(&p);
}

/* Every prefix of a complete command gives 0, the whole the same result. */
static void check_prefixes(const uint8_t *d, size_t n, long full)
{
    for (size_t k = 0; k < (size_t)full; k++) {
        resp_parser p;
        uint64_t h;
        resp_parser_init(&p, MAX_BULK);
        long r = parse_exact(&p, d, k, &h);
        FUZZ_CHECK(r == 0, "prefix %zu of a %ld-byte command gives %ld", k, full, r);
        resp_parser_free(&p);
    }
    (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static trace whole, chunks;
    if (size < 1)
        return 0;
    uint32_t seed = data[0] * 2654435761u + 1;
    drive(data + 1, size - 1, seed, 0, &whole);
    drive(data + 1, size - 1, seed, 1, &chunks);
    FUZZ_CHECK(whole.n == chunks.n, "%d outcomes whole, %d in chunks", whole.n, chunks.n);
    for (int i = 0; i < whole.n; i++)
        FUZZ_CHECK(whole.result[i] == chunks.result[i] && whole.argc[i] == chunks.argc[i] &&
                       whole.hash[i] == chunks.hash[i],
                   "outcome %d: %ld/%zu whole, %ld/%zu in chunks", i, whole.result[i],
                   whole.argc[i], chunks.result[i], chunks.argc[i]);
    /* the first command's prefixes (short ones: the check is quadratic) */
    if (whole.n > 0 && whole.result[0] > 0 && whole.result[0] <= 512)
        check_prefixes(data + 1, size - 1, whole.result[0]);
    return 0;
}
