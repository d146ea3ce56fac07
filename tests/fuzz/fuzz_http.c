/*
 * fuzz_http.c - libFuzzer harness: the HTTP/1.1 protocol engine of the
 * operations server (http_conn_*, src/http.h), with no socket.
 *
 * Input: a settings byte, then what a client sent on one connection. The
 * settings byte picks:
 *
 *   bits 0-2  largest piece the bytes arrive in: all at once, 1, 2, 3, 8,
 *             64, 512 or 4096 bytes (lengths drawn up to it)
 *   bits 3-4  http.max_header: 64, 1024, 8192 or 65536 bytes
 *   bit 5     /healthz reports unhealthy
 *   bit 6     the /metrics route fails (a 500)
 *   bit 7     /metrics is a 24 KiB page, so that a few pipelined requests
 *             reach the engine's output high-water mark
 *
 * Each piece is fed from a buffer of its exact size; when the engine stops
 * early at its high-water mark the output is "sent" (kept aside and
 * emptied) and the rest fed again, as the server does.
 *
 * Checked: the engine always makes progress; output, when there is any,
 * starts with a status line; "Connection: close" is said once at most and
 * exactly when the connection turns closing, after which input is swallowed
 * and nothing more is written. And the answer does not depend on how the
 * bytes were cut: the same bytes fed whole produce the same output, Date
 * headers aside, except that a request malformed in more than one way may
 * be refused for either fault (400, 413, 431 or 505) depending on where the
 * pieces fall.
 *
 * Seeds (corpus/fuzz_http/): what curl, Prometheus and a browser send to
 * /metrics, /debug/mallocstats, /healthz, /debug/heap and /debug/heap.json
 * (whose routes here are stand-ins of the daemon's: a short page, the heap's
 * arena count as JSON); HEAD, HTTP/1.0, keep-alive,
 * pipelining, absolute targets, and refused requests (a body, chunked, POST,
 * two Host headers, oversized headers, HTTP/2.0, garbage).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "tests/fuzz/fuzz_market.h"
#include "src/http.h"

#define BIG_PAGE (24 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct route_state {
    heap_t *heap; /* for /debug/mallocstats */
    int unhealthy;
    int fail;
    int big;
} route_state_t;

static int route_metrics(void *arg, http_body_t *body)
{
    const route_state_t *s = arg;
    if (s->fail)
        return -EIO;
    if (!s->big)
        return http_body_printf(body, "# TYPE tickd_up gauge\ntickd_up 1\n");
    int err = http_body_reserve(body, BIG_PAGE);
    if (err != 0)
        return err;
    for (size_t i = 0; i < BIG_PAGE; i++)
        body->data[body->len + i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
    body->len += BIG_PAGE;
    return 0;
}

static int route_mallocstats(void *arg, http_body_t *body)
{
    const route_state_t *s = arg;
    size_t need = heap_format_stats(s->heap, NULL, 0);
    int err = http_body_reserve(body, need + 1);
    if (err != 0)
        return err;
    body->len += heap_format_stats(s->heap, body->data + body->len, need + 1);
    return 0;
}

static int route_health(void *arg, int json, http_body_t *body)
{
    const route_state_t *s = arg;
    const char *status = s->unhealthy ? "unhealthy" : "ok";
    int err = json ? http_body_printf(body, "{\"status\":\"%s\"}\n", status)
                   : http_body_printf(body, "%s\n", status);
    return err != 0 ? err : !s->unhealthy;
}

static int route_heap_page(void *arg, http_body_t *body)
{
    (void)arg;
    return http_body_printf(body, "<!DOCTYPE html><title>heap</title>\n");
}

static int route_heap_json(void *arg, http_body_t *body)
{
    const route_state_t *s = arg;
    heap_stats_t st;
    heap_get_stats(s->heap, &st);
    return http_body_printf(body, "{\"heap\":{\"arenas\":%u}}\n", st.arenas);
}

/* What came out of one connection. */
typedef struct transcript {
    http_body_t text; /* every byte written, Date values masked */
    size_t last;      /* where the last response starts */
    unsigned closes;  /* "Connection: close" headers */
    int closing;
} transcript_t;

/* Does text[at..len) start with lit? */
static int has(const char *text, size_t len, size_t at, const char *lit)
{
    size_t n = strlen(lit);
    return len - at >= n && memcmp(text + at, lit, n) == 0;
}

/* "Sends" what the engine wrote: checks it, keeps it, empties it. Status
 * lines and headers start a line, so only line starts are looked at. */
static void drain(transcript_t *t, http_body_t *out)
{
    char *text = out->data;
    size_t len = out->len;
    if (len == 0)
        return;
    if (!has(text, len, 0, "HTTP/1.1 "))
        fuzz_fail("output does not start with a status line");
    for (size_t at = 0; at < len;) {
        if (has(text, len, at, "HTTP/1.1 "))
            t->last = t->text.len + at;
        if (at >= 2 && text[at - 2] == '\r') {
            if (has(text, len, at, "Connection: close\r\n"))
                t->closes++;
            if (has(text, len, at, "Date: "))
                for (size_t v = at + 6; v < len && text[v] != '\r'; v++)
                    text[v] = 'X';
        }
        const char *nl = memchr(text + at, '\n', len - at);
        if (nl == NULL)
            break;
        at = (size_t)(nl - text) + 1;
    }
    if (http_body_append(&t->text, text, len) != 0)
        fuzz_fail("out of memory");
    out->len = 0;
}

static transcript_t run(const http_routes_t *routes, size_t max_header, const uint8_t *data,
                        size_t len, size_t max_piece, uint64_t seed)
{
    transcript_t t;
    memset(&t, 0, sizeof(t));
    http_conn_t *c;
    if (http_conn_new(routes, max_header, &c) != 0)
        fuzz_fail("http_conn_new failed");
    http_body_t out = {0};
    uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t off = 0; off < len;) {
        size_t n = len - off;
        if (max_piece > 0) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            size_t want = 1 + (size_t)(rng % max_piece);
            n = want < n ? want : n;
        }
        char *piece = fuzz_dup(data + off, n);
        for (size_t used = 0; used < n;) {
            int was_closing = http_conn_closing(c);
            size_t got = http_conn_feed(c, piece + used, n - used, &out);
            if (got > n - used || (got == 0 && out.len == 0))
                fuzz_fail("http_conn_feed took %zu of %zu bytes, wrote %zu", got, n - used,
                          out.len);
            if (was_closing && out.len > 0)
                fuzz_fail("a closing connection wrote %zu more bytes", out.len);
            /* Bytes that completed no head leave one awaited (the server's
             * head deadline runs); a closing connection awaits none. */
            int awaiting = http_conn_awaiting_head(c);
            if (http_conn_closing(c) ? awaiting : got > 0 && out.len == 0 && !awaiting)
                fuzz_fail("awaiting a head: %d, closing %d, %zu bytes taken, %zu written", awaiting,
                          http_conn_closing(c), got, out.len);
            drain(&t, &out);
            used += got;
        }
        free(piece);
        off += n;
    }
    t.closing = http_conn_closing(c);
    http_conn_free(c);
    http_body_free(&out);
    if (t.closes > 1 || (t.closes == 1) != (t.closing != 0))
        fuzz_fail("%u \"Connection: close\" headers, closing %d", t.closes, t.closing);
    return t;
}

/* The status of the last response, or 0 when there is none. */
static int last_status(const transcript_t *t)
{
    if (t->text.len < t->last + 12)
        return 0;
    const char *p = t->text.data + t->last + 9;
    return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* Is this the status of a request the engine could not parse to its end?
 * Input that is malformed in more than one way may be refused for either,
 * depending on where the pieces fall (http-parser reports data in pieces). */
static int refused(int status)
{
    return status == 400 || status == 413 || status == 431 || status == 505;
}

/* The same bytes in pieces or whole must get the same answers, except that
 * the final refusal of a bad request may name another of its faults. */
static void compare(const transcript_t *cut, const transcript_t *whole, size_t max_piece)
{
    if (cut->closing != whole->closing)
        fuzz_fail("fed in pieces of up to %zu bytes: closing %d; fed whole: %d", max_piece,
                  cut->closing, whole->closing);
    if (cut->text.len == whole->text.len &&
        (cut->text.len == 0 || memcmp(cut->text.data, whole->text.data, cut->text.len) == 0))
        return;
    int a = last_status(cut), b = last_status(whole);
    int same_before = cut->last == whole->last &&
                      (cut->last == 0 || memcmp(cut->text.data, whole->text.data, cut->last) == 0);
    if (!same_before || !cut->closing || a == b || !refused(a) || !refused(b))
        fuzz_fail("fed in pieces of up to %zu bytes: %zu bytes out, the last a %d at %zu; "
                  "fed whole: %zu bytes, the last a %d at %zu",
                  max_piece, cut->text.len, a, cut->last, whole->text.len, b, whole->last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_pieces[8] = {0, 1, 2, 3, 8, 64, 512, 4096};
    static const size_t max_headers[4] = {64, 1024, 8192, 65536};
    static route_state_t state;
    if (state.heap == NULL && heap_create(NULL, &state.heap) != 0)
        fuzz_fail("heap_create failed");
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    state.unhealthy = (ctl >> 5) & 1;
    state.fail = (ctl >> 6) & 1;
    state.big = (ctl >> 7) & 1;
    http_routes_t routes = {
        .metrics = route_metrics,
        .mallocstats = route_mallocstats,
        .health = route_health,
        .heap_page = route_heap_page,
        .heap_json = route_heap_json,
        .arg = &state,
    };
    size_t max_header = max_headers[(ctl >> 3) & 3];

    transcript_t cut = run(&routes, max_header, data + 1, size - 1, max_pieces[ctl & 7], size);
    transcript_t whole = run(&routes, max_header, data + 1, size - 1, 0, 0);
    compare(&cut, &whole, max_pieces[ctl & 7]);
    http_body_free(&cut.text);
    http_body_free(&whole.text);
    return 0;
}
