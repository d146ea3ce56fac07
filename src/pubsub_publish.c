/*
 * pubsub_publish.c - PUBLISH, the ingest path: PUBLISH <channel> <csv tick
 * line> hands the line to the daemon's on_publish callback, which parses,
 * validates, journals and fans it out like any feed's tick; the reply is the
 * number of subscribers the tick reached.
 *
 * With journal.fsync always, a PUBLISH is acknowledged only once its tick is
 * synced. Its reply ":<n>" is queued in order as a block of its own and
 * listed in the client's held_replies with the tick's journal position; the
 * client is on the server's held list and none of its output is written
 * (what follows a reply must not overtake it). pubsub_durable() decides a
 * prefix of every held client's replies: synced, the blocks stay as they
 * are; not, each is swapped in the ring for the journal error. A reply held
 * for HELD_TIMEOUT_MS becomes an error too (the housekeeping pass), so a
 * journal that never answers cannot keep a publisher waiting. A client with
 * HELD_MAX replies held is not read until some are decided: a fast publisher
 * is slowed to the disk's pace rather than filling the journal's buffers.
 *
 * Under any policy, on_publish() answers -EAGAIN when the journal's
 * buffers are full. The PUBLISH is then not run: it stays at the head of
 * the client's unprocessed input (CLIENT_WAITING), the client is not read,
 * and pubsub_journal_ready() runs it and what follows once the journal has
 * room again. One that waits HELD_TIMEOUT_MS is answered with the journal's
 * error instead: backpressure, bounded.
 *
 * Never blocks: a publisher waits for the journal by not being read, and
 * every held reply is a block of the daemon's heap.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "src/clock.h"
#include "src/pubsub_internal.h"

#define HELD_MAX        16384 /* PUBLISH replies held for the journal before tickd stops reading */
#define HELD_TIMEOUT_MS 10000 /* a reply held longer than this becomes a journal error */

/* ---- the held list ---- */

static void held_add(client_t *c)
{
    pubsub_t *ps = c->ps;
    if (c->flags & CLIENT_HELD)
        return;
    c->flags |= CLIENT_HELD;
    c->held_prev = NULL;
    c->held_next = ps->held;
    if (ps->held != NULL)
        ps->held->held_prev = c;
    ps->held = c;
}

void pubsub__held_remove(client_t *c)
{
    if (!(c->flags & CLIENT_HELD))
        return;
    c->flags &= ~CLIENT_HELD;
    if (c->held_prev != NULL)
        c->held_prev->held_next = c->held_next;
    else
        c->ps->held = c->held_next;
    if (c->held_next != NULL)
        c->held_next->held_prev = c->held_prev;
}

/* ---- held replies ---- */

/* The journal error for a tick that was not made durable, why naming the
 * cause: a block with one reference, or NULL when memory ran out. */
static payload_t *journal_error(pubsub_t *ps, const char *why)
{
    char text[ERROR_TEXT_MAX];
    int n = snprintf(text, sizeof text, "-ERR journal: %s; the tick was not made durable\r\n", why);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    payload_t *p = payload_alloc(ps->heap, len);
    if (p != NULL) {
        memcpy(p->data, text, len);
        p->len = (uint32_t)len;
    }
    return p;
}

/* After a change of c's held replies or waiting: off the held list when it
 * waits for nothing, read again when nothing stops it. */
static void held_settle(client_t *c)
{
    if (c->nheld == 0 && !(c->flags & CLIENT_WAITING))
        pubsub__held_remove(c);
    if ((c->flags & CLIENT_PAUSED) && c->nheld < HELD_MAX && !(c->flags & CLIENT_WAITING)) {
        c->flags &= ~CLIENT_PAUSED;
        if (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSED)) && pubsub__read_start(c) != 0)
            pubsub__client_close(c);
    }
}

/* The PUBLISH at the head of c's input waits for room in the journal. */
static void wait_for_room(client_t *c)
{
    if (!(c->flags & CLIENT_WAITING))
        c->waiting_since_ms = uv_now(c->ps->loop);
    c->flags |= CLIENT_WAITING;
    held_add(c);
    if (!(c->flags & CLIENT_PAUSED)) {
        c->flags |= CLIENT_PAUSED;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

/* Runs again the waiting PUBLISHes of every client marked CLIENT_RETRY, and
 * what follows them in their input. Serving one client can close or hold
 * others, so each pass starts from the head of the held list. */
static void retry_waiting(pubsub_t *ps)
{
    for (;;) {
        client_t *c = ps->held;
        while (c != NULL && !(c->flags & CLIENT_RETRY))
            c = c->held_next;
        if (c == NULL)
            return;
        c->flags &= ~(CLIENT_RETRY | CLIENT_WAITING);
        held_settle(c);
        ps->read_ns = -1;
        if (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSED)) && c->in_len > 0)
            pubsub__serve(c, c->in, c->in_len);
    }
}

/* Decides c's n oldest held replies: acknowledgements when error is NULL,
 * else each becomes error. Output flows again once none is held, and
 * reading once fewer than HELD_MAX are. */
static void held_decide(client_t *c, uint32_t n, payload_t *error)
{
    pubsub_t *ps = c->ps;
    TICKD_ASSERT(n <= c->nheld);
    if (error != NULL) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < c->ring_count && k < n; i++) {
            out_entry_t *e = &c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
            if (e->p != c->held_replies[k].p)
                continue;
            c->queued -= e->end - e->off;
            ps->stats.output_buffer_bytes -= e->end - e->off;
            payload_release(ps->heap, &ps->latency, e->p);
            payload_incref(error);
            e->p = error;
            e->off = 0;
            e->end = error->len;
            c->queued += error->len;
            ps->stats.output_buffer_bytes += error->len;
            k++;
        }
        ps->stats.publish_journal_errors_total += n;
    }
    c->nheld -= n;
    memmove(c->held_replies, c->held_replies + n, c->nheld * sizeof(held_reply_t));
    if (c->nheld == 0)
        pubsub__dirty_add(c);
    held_settle(c);
}

/* Decides, on every held client, the replies that pass: journal position
 * at or before upto (within), or held since before a time (!within). */
static void held_decide_all(pubsub_t *ps, int within, uint64_t upto, payload_t *error)
{
    client_t *c = ps->held, *next;
    for (; c != NULL; c = next) {
        next = c->held_next;
        uint32_t n = 0;
        while (n < c->nheld &&
               (within ? c->held_replies[n].at <= upto : c->held_replies[n].since_ms < upto))
            n++;
        if (n > 0)
            held_decide(c, n, error);
    }
}

/* Replies held since HELD_TIMEOUT_MS ago or longer become errors: the
 * journal has not answered for them in time. */
void pubsub__held_expire(pubsub_t *ps, uint64_t now)
{
    if (ps->held == NULL || now < HELD_TIMEOUT_MS)
        return;
    char why[64];
    snprintf(why, sizeof why, "not synced within %d s", HELD_TIMEOUT_MS / 1000);
    payload_t *error = journal_error(ps, why);
    if (error == NULL)
        return; /* the next pass tries again */
    held_decide_all(ps, 0, now - HELD_TIMEOUT_MS + 1, error);
    payload_release(ps->heap, &ps->latency, error);
    for (client_t *c = ps->held; c != NULL; c = c->held_next)
        if ((c->flags & CLIENT_WAITING) && now - c->waiting_since_ms >= HELD_TIMEOUT_MS)
            c->flags |= CLIENT_RETRY | CLIENT_NO_WAIT;
    retry_waiting(ps);
    pubsub_flush(ps);
}

/* The reply ":<receivers>" to a PUBLISH whose tick is at journal position
 * at, held until the journal decides it. */
static void held_reply(client_t *c, uint64_t at, uint64_t receivers)
{
    pubsub_t *ps = c->ps;
    char text[NUMBER_MAX];
    size_t len = pubsub__format_number(text, ':', (long long)receivers);
    if (c->nheld == c->held_cap) {
        uint32_t cap = c->held_cap != 0 ? 2 * c->held_cap : 16;
        held_reply_t *n = heap_alloc(ps->heap, cap * sizeof(held_reply_t));
        if (n == NULL) {
            pubsub__doom(c); /* a reply lost would desynchronise the client */
            return;
        }
        if (c->nheld != 0)
            memcpy(n, c->held_replies, c->nheld * sizeof(held_reply_t));
        heap_free(ps->heap, c->held_replies);
        c->held_replies = n;
        c->held_cap = cap;
    }
    payload_t *p = payload_alloc(ps->heap, len);
    if (p == NULL) {
        pubsub__doom(c);
        return;
    }
    memcpy(p->data, text, len);
    p->len = (uint32_t)len;
    if (pubsub__enqueue_entry(c, p, 0, p->len) == 0) { /* an entry of its own, never extended */
        c->held_replies[c->nheld++] = (held_reply_t){p, at, uv_now(ps->loop)};
        held_add(c);
        if (c->nheld >= HELD_MAX && !(c->flags & CLIENT_PAUSED)) {
            c->flags |= CLIENT_PAUSED;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
    }
    payload_release(ps->heap, &ps->latency, p);
}

/* ---- PUBLISH ---- */

/* The first QUOTE_BYTES bytes of a, in double quotes, with '"',
 * '\\' and every byte outside printable ASCII escaped (\xHH), and "..." after
 * the quotes when a is longer: what an error may show of what a client sent. */
#define QUOTE_BYTES 32
#define QUOTE_MAX   (2 + 4 * QUOTE_BYTES + 3 + 1)
static void quote_arg(const resp_arg_t *a, char out[QUOTE_MAX])
{
    static const char hex[] = "0123456789abcdef";
    size_t n = a->len < QUOTE_BYTES ? a->len : QUOTE_BYTES;
    char *w = out;

    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)a->ptr[i];
        if (b == '"' || b == '\\') {
            *w++ = '\\';
            *w++ = (char)b;
        } else if (b < 0x20 || b > 0x7e) {
            *w++ = '\\';
            *w++ = 'x';
            *w++ = hex[b >> 4];
            *w++ = hex[b & 15];
        } else {
            *w++ = (char)b;
        }
    }
    *w++ = '"';
    if (a->len > n) {
        memcpy(w, "...", 3);
        w += 3;
    }
    *w = '\0';
}

void pubsub__cmd_publish(client_t *c, size_t argc, const resp_arg_t *argv)
{
    pubsub_t *ps = c->ps;
    const char *reason = NULL;
    int r;

    (void)argc;
    if (ps->on_publish == NULL) {
        pubsub__reply_error(c, "ERR PUBLISH is not accepted here");
        return;
    }
    if (HEAP_UNLIKELY(c->user != NULL) &&
        !pubsub__acl_may(c->user, ACL_PUBLISH, argv[1].ptr, argv[1].len)) {
        pubsub__reply_str(c, ACL_NOPERM_CHANNEL);
        return;
    }
    uint64_t durable_at = 0;
    int no_wait = (c->flags & CLIENT_NO_WAIT) != 0; /* the first PUBLISH retried only */
    c->flags &= ~CLIENT_NO_WAIT;
    if (ps->read_ns < 0)
        ps->read_ns = clock_realtime_ns();
    ps->publishing = 1;
    ps->publish_receivers = 0;
    r = ps->on_publish(ps->publish_arg, argv[1].ptr, argv[1].len, argv[2].ptr, argv[2].len,
                       ps->read_ns, &reason, &durable_at);
    ps->publishing = 0;
    if (r == -EBADMSG) {
        char got[QUOTE_MAX];
        quote_arg(&argv[2], got);
        pubsub__reply_error(
            c,
            "ERR payload: expected a CSV tick line \"T,<ts>,<sym>,<price>,<size>[,<side>]\" "
            "or \"Q,<ts>,<sym>,<bid>,<bid_size>,<ask>,<ask_size>\", got %s (%s)",
            got, reason != NULL ? reason : "not a tick");
        return;
    }
    if (r == -EAGAIN && !no_wait) {
        wait_for_room(c); /* process() leaves the command in the input */
        return;
    }
    if (r == -EAGAIN)
        ps->stats.publish_journal_errors_total++;
    if (r < 0) {
        ps->stats.publish_symbol_limit_total += r == -ENOSPC;
        pubsub__reply_error(c, "ERR %s", reason != NULL ? reason : strerror(-r));
        return;
    }
    ps->published = 1;
    ps->stats.publish_total++;
    if (durable_at != 0)
        held_reply(c, durable_at, ps->publish_receivers); /* acknowledged once synced */
    else
        pubsub__reply_number(c, ':', (long long)ps->publish_receivers);
}

/* ---- the journal's answers ---- */

void pubsub_durable(pubsub_t *ps, uint64_t upto, int err)
{
    if (ps == NULL || ps->held == NULL)
        return;
    payload_t *error = NULL;
    if (err != 0) {
        char why[128];
        snprintf(why, sizeof why, "write or sync failed (%s)", strerror(-err));
        if ((error = journal_error(ps, why)) == NULL) {
            /* No memory for the error: the publishers are closed rather than
             * acknowledged. */
            for (client_t *c = ps->held; c != NULL; c = c->held_next)
                pubsub__doom(c);
            pubsub__reap_slow(ps);
            return;
        }
    }
    held_decide_all(ps, 1, upto, error);
    if (error != NULL)
        payload_release(ps->heap, &ps->latency, error);
}

void pubsub_journal_ready(pubsub_t *ps)
{
    if (ps == NULL || ps->held == NULL)
        return;
    for (client_t *c = ps->held; c != NULL; c = c->held_next)
        if (c->flags & CLIENT_WAITING)
            c->flags |= CLIENT_RETRY;
    retry_waiting(ps);
}
