/*
 * hiredis_client.c - hiredis (Debian's libhiredis-dev 0.14, RESP2) through the
 * pub/sub scenario every client test in this folder runs, with assertions.
 * test_hiredis.py starts the server and runs
 *
 *   hiredis_client <port> <password> <wrong-password>
 *
 * The synchronous API makes the commands: AUTH right and wrong, PUBLISH, and
 * PING in subscribe mode (hiredis 0.14's asynchronous API has no way to hand
 * a subscribe-mode PING reply to its callback: it routes every reply of a
 * subscribed context by channel name). The libuv adapter
 * (hiredis/adapters/libuv.h) runs the subscriber: AUTH, SUBSCRIBE and
 * PSUBSCRIBE, the published tick on both, then UNSUBSCRIBE and PUNSUBSCRIBE
 * each stopping delivery. Callbacks move the scenario on one step at a time;
 * a watchdog timer fails a step that gets no answer.
 *
 * Prints each step; exits 0 when every assertion held, 1 at the first that
 * did not. The server is left to the caller.
 */
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

enum { STEP_MS = 5000, QUIET_MS = 300 };

static const struct timeval io_timeout = {.tv_sec = 5, .tv_usec = 0};

static const char *const CHANNEL = "trade.AAPL";
static const char *const PATTERN = "trade.*";
static const char *const TICKS[] = {
    "T,1700000000000000000,AAPL,101.2500,100,B",
    "T,1700000000000000001,AAPL,101.5000,30,S",
    "T,1700000000000000002,AAPL,101.7500,5,B",
};

/* The scenario's state, shared by the callbacks. */
struct run {
    int port;
    const char *password;
    const char *step; /* what is being checked now, for a failure */
    uv_loop_t loop;
    uv_timer_t watchdog; /* fails the run when a step gets no answer */
    uv_timer_t quiet;    /* waits to see that nothing more arrives */
    void (*after_quiet)(struct run *);
    redisContext *pub;      /* synchronous, authenticated: PUBLISH */
    redisAsyncContext *sub; /* asynchronous on the loop: the subscriber */
    int confirmed;          /* subscribe + psubscribe confirmations */
    int on_channel;         /* messages on CHANNEL */
    int on_pattern;         /* pmessages on PATTERN */
    int published;          /* ticks published so far: TICKS[published - 1] is the last */
    bool done;
};

static void fail(const struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void fail(const struct run *r, const char *fmt, ...)
{
    va_list ap;
    printf("FAILED at step \"%s\": ", r->step);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(1);
}

static void on_watchdog(uv_timer_t *t)
{
    const struct run *r = t->data;
    fail(r, "no answer within %d ms (channel messages %d, pattern messages %d)", STEP_MS,
         r->on_channel, r->on_pattern);
}

/* Names the step now checked; the subscriber's steps must finish in STEP_MS
 * (the synchronous calls have the same limit as their socket timeout). */
static void step(struct run *r, const char *what)
{
    r->step = what;
    printf("step: %s\n", what);
    fflush(stdout);
    uv_timer_start(&r->watchdog, on_watchdog, STEP_MS, 0);
}

static bool str_is(const redisReply *rep, const char *s)
{
    return rep != NULL && (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) &&
           rep->len == strlen(s) && memcmp(rep->str, s, rep->len) == 0;
}

static const char *describe(const redisReply *rep)
{
    static char out[512];
    if (rep == NULL)
        return "no reply";
    switch (rep->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        snprintf(out, sizeof(out), "%s \"%.*s\"",
                 rep->type == REDIS_REPLY_ERROR ? "error" : "string", (int)rep->len, rep->str);
        return out;
    case REDIS_REPLY_INTEGER:
        snprintf(out, sizeof(out), "integer %lld", rep->integer);
        return out;
    case REDIS_REPLY_ARRAY:
        snprintf(out, sizeof(out), "array of %zu", rep->elements);
        for (size_t i = 0; i < rep->elements && strlen(out) < sizeof(out) - 80; i++) {
            const redisReply *e = rep->element[i];
            size_t used = strlen(out);
            if (e->type == REDIS_REPLY_INTEGER)
                snprintf(out + used, sizeof(out) - used, " [%lld]", e->integer);
            else
                snprintf(out + used, sizeof(out) - used, " [%.*s]", (int)e->len,
                         e->str != NULL ? e->str : "");
        }
        return out;
    default:
        snprintf(out, sizeof(out), "reply of type %d", rep->type);
        return out;
    }
}

/* A (p)(un)subscribe confirmation: [kind, name, count]. */
static bool is_confirmation(const redisReply *rep, const char *kind, const char *name,
                            long long count)
{
    return rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
           str_is(rep->element[0], kind) && str_is(rep->element[1], name) &&
           rep->element[2]->type == REDIS_REPLY_INTEGER && rep->element[2]->integer == count;
}

static bool is_kind(const redisReply *rep, const char *kind)
{
    return rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
           str_is(rep->element[0], kind);
}

/* ------------------------------------------------------------------------ */
/* synchronous API                                                          */
/* ------------------------------------------------------------------------ */

static redisContext *connect_sync(const struct run *r)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, io_timeout);
    if (c == NULL || c->err)
        fail(r, "cannot connect to 127.0.0.1:%d: %s", r->port, c ? c->errstr : "out of memory");
    if (redisSetTimeout(c, io_timeout) != REDIS_OK)
        fail(r, "cannot set a timeout: %s", c->errstr);
    return c;
}

/* A command's reply; a connection error (a timeout included) fails the run. */
static redisReply *command(const struct run *r, redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (rep == NULL)
        fail(r, "no reply: %s", c->errstr);
    return rep;
}

static void expect_refused_password(struct run *r, const char *wrong)
{
    step(r, "a wrong password is refused");
    redisContext *c = connect_sync(r);
    redisReply *rep = command(r, c, "AUTH %s", wrong);
    if (rep->type != REDIS_REPLY_ERROR)
        fail(r, "AUTH with a wrong password got %s", describe(rep));
    if (strstr(rep->str, wrong) != NULL)
        fail(r, "the error repeats the wrong password: %s", rep->str);
    if (strstr(rep->str, "WRONGPASS") == NULL && strstr(rep->str, "invalid") == NULL)
        fail(r, "the error does not say the password is wrong: %s", rep->str);
    printf("refused: %s\n", rep->str);
    freeReplyObject(rep);

    step(r, "a command without AUTH is refused");
    rep = command(r, c, "PUBLISH %s %s", CHANNEL, TICKS[0]);
    if (rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "NOAUTH", 6) != 0)
        fail(r, "PUBLISH before AUTH got %s", describe(rep));
    freeReplyObject(rep);
    redisFree(c);
}

static redisContext *connect_authenticated(struct run *r)
{
    redisContext *c = connect_sync(r);
    redisReply *rep = command(r, c, "AUTH %s", r->password);
    if (!str_is(rep, "OK") || rep->type != REDIS_REPLY_STATUS)
        fail(r, "AUTH with the right password got %s", describe(rep));
    freeReplyObject(rep);
    return c;
}

static void expect_ping_in_subscribe_mode(struct run *r)
{
    step(r, "PING in subscribe mode answers");
    redisContext *c = connect_authenticated(r);
    redisReply *rep = command(r, c, "SUBSCRIBE %s", "trade.IBM");
    if (!is_confirmation(rep, "subscribe", "trade.IBM", 1))
        fail(r, "SUBSCRIBE got %s", describe(rep));
    freeReplyObject(rep);
    rep = command(r, c, "PING");
    if (!is_kind(rep, "pong") || rep->elements != 2 || !str_is(rep->element[1], ""))
        fail(r, "PING got %s", describe(rep));
    freeReplyObject(rep);
    rep = command(r, c, "PING %s", "still-there");
    if (!is_kind(rep, "pong") || rep->elements != 2 || !str_is(rep->element[1], "still-there"))
        fail(r, "PING still-there got %s", describe(rep));
    freeReplyObject(rep);
    redisFree(c);
}

/* PUBLISHes the next tick; its reply must count `receivers`. */
static void publish_next(struct run *r, long long receivers)
{
    const char *tick = TICKS[r->published++];
    redisReply *rep = command(r, r->pub, "PUBLISH %s %s", CHANNEL, tick);
    if (rep->type != REDIS_REPLY_INTEGER || rep->integer != receivers)
        fail(r, "PUBLISH %s got %s, expected %lld receivers", tick, describe(rep), receivers);
    freeReplyObject(rep);
}

/* ------------------------------------------------------------------------ */
/* the subscriber, asynchronous on libuv                                    */
/* ------------------------------------------------------------------------ */

static void on_quiet(uv_timer_t *t)
{
    struct run *r = t->data;
    r->after_quiet(r);
}

static void wait_quiet(struct run *r, void (*then)(struct run *))
{
    r->after_quiet = then;
    uv_timer_start(&r->quiet, on_quiet, QUIET_MS, 0);
}

static void finish(struct run *r)
{
    if (r->on_channel != 1 || r->on_pattern != 2)
        fail(r, "a tick arrived after PUNSUBSCRIBE (channel %d, pattern %d)", r->on_channel,
             r->on_pattern);
    r->done = true;
    uv_timer_stop(&r->watchdog);
    redisAsyncDisconnect(r->sub);
}

static void punsubscribe(struct run *r)
{
    if (r->on_channel != 1 || r->on_pattern != 2)
        fail(r,
             "after UNSUBSCRIBE, expected the tick on the pattern only (channel %d, "
             "pattern %d)",
             r->on_channel, r->on_pattern);
    step(r, "PUNSUBSCRIBE stops delivery on the pattern");
    redisAsyncCommand(r->sub, NULL, NULL, "PUNSUBSCRIBE %s", PATTERN);
}

static void check_payload(const struct run *r, const redisReply *payload)
{
    const char *tick = TICKS[r->published - 1];
    if (!str_is(payload, tick))
        fail(r, "payload %s, expected \"%s\"", describe(payload), tick);
}

/* Moves the scenario on once the confirmations and messages it waits for are
 * in: both confirmations -> the first tick; that tick on the channel and the
 * pattern -> UNSUBSCRIBE (whose confirmation publishes the second tick); the
 * second tick on the pattern -> a quiet wait, then PUNSUBSCRIBE (whose
 * confirmation publishes the third and waits for nothing to arrive). */
static void advance(struct run *r)
{
    if (r->confirmed == 2 && r->published == 0) {
        step(r, "PUBLISH counts both receivers and the tick arrives on the channel and the "
                "pattern");
        publish_next(r, 2);
    } else if (r->published == 1 && r->on_channel == 1 && r->on_pattern == 1) {
        step(r, "UNSUBSCRIBE stops delivery on the channel, the pattern still delivers");
        redisAsyncCommand(r->sub, NULL, NULL, "UNSUBSCRIBE %s", CHANNEL);
    } else if (r->published == 2 && r->on_pattern == 2) {
        wait_quiet(r, punsubscribe);
    }
}

static void on_channel(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct run *r = ac->data;
    const redisReply *rep = reply;
    (void)privdata;
    if (is_kind(rep, "subscribe")) {
        if (!is_confirmation(rep, "subscribe", CHANNEL, 1))
            fail(r, "SUBSCRIBE confirmation %s", describe(rep));
        r->confirmed++;
    } else if (is_kind(rep, "message")) {
        if (rep->elements != 3 || !str_is(rep->element[1], CHANNEL))
            fail(r, "message %s", describe(rep));
        check_payload(r, rep->element[2]);
        r->on_channel++;
    } else if (is_kind(rep, "unsubscribe")) {
        if (!is_confirmation(rep, "unsubscribe", CHANNEL, 1))
            fail(r, "UNSUBSCRIBE confirmation %s", describe(rep));
        publish_next(r, 1);
        return;
    } else {
        fail(r, "the channel's callback got %s", describe(rep));
    }
    advance(r);
}

static void on_pattern(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct run *r = ac->data;
    const redisReply *rep = reply;
    (void)privdata;
    if (is_kind(rep, "psubscribe")) {
        if (!is_confirmation(rep, "psubscribe", PATTERN, 2))
            fail(r, "PSUBSCRIBE confirmation %s", describe(rep));
        r->confirmed++;
    } else if (is_kind(rep, "pmessage")) {
        if (rep->elements != 4 || !str_is(rep->element[1], PATTERN) ||
            !str_is(rep->element[2], CHANNEL))
            fail(r, "pmessage %s", describe(rep));
        check_payload(r, rep->element[3]);
        r->on_pattern++;
    } else if (is_kind(rep, "punsubscribe")) {
        if (!is_confirmation(rep, "punsubscribe", PATTERN, 0))
            fail(r, "PUNSUBSCRIBE confirmation %s", describe(rep));
        publish_next(r, 0);
        wait_quiet(r, finish);
        return;
    } else {
        fail(r, "the pattern's callback got %s", describe(rep));
    }
    advance(r);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct run *r = ac->data;
    const redisReply *rep = reply;
    (void)privdata;
    if (rep == NULL || rep->type != REDIS_REPLY_STATUS || !str_is(rep, "OK"))
        fail(r, "AUTH on the subscriber got %s", describe(rep));
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct run *r = ac->data;
    if (status != REDIS_OK)
        fail(r, "the subscriber cannot connect: %s", ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct run *r = ac->data;
    if (!r->done || status != REDIS_OK)
        fail(r, "the subscriber was disconnected: %s", ac->errstr);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    uv_close((uv_handle_t *)&r->quiet, NULL);
}

static void run_subscriber(struct run *r)
{
    step(r, "SUBSCRIBE and PSUBSCRIBE are confirmed with their counts (libuv)");
    r->sub = redisAsyncConnect("127.0.0.1", r->port);
    if (r->sub == NULL || r->sub->err)
        fail(r, "cannot connect the subscriber: %s", r->sub ? r->sub->errstr : "out of memory");
    r->sub->data = r;
    if (redisLibuvAttach(r->sub, &r->loop) != REDIS_OK)
        fail(r, "cannot attach the subscriber to libuv");
    redisAsyncSetConnectCallback(r->sub, on_connect);
    redisAsyncSetDisconnectCallback(r->sub, on_disconnect);
    redisAsyncCommand(r->sub, on_auth, NULL, "AUTH %s", r->password);
    redisAsyncCommand(r->sub, on_channel, NULL, "SUBSCRIBE %s", CHANNEL);
    redisAsyncCommand(r->sub, on_pattern, NULL, "PSUBSCRIBE %s", PATTERN);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (!r->done)
        fail(r, "the loop ended before the scenario did");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s <port> <password> <wrong-password>\n", argv[0]);
        return 64;
    }
    static struct run r;
    r.port = atoi(argv[1]);
    r.password = argv[2];
    r.step = "start";
    printf("hiredis %d.%d.%d, RESP2\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    if (uv_loop_init(&r.loop) != 0 || uv_timer_init(&r.loop, &r.watchdog) != 0 ||
        uv_timer_init(&r.loop, &r.quiet) != 0)
        fail(&r, "cannot set up the libuv loop");
    r.watchdog.data = &r;
    r.quiet.data = &r;

    expect_refused_password(&r, argv[3]);
    step(&r, "the right password connects");
    r.pub = connect_authenticated(&r);
    expect_ping_in_subscribe_mode(&r);
    run_subscriber(&r);

    redisFree(r.pub);
    if (uv_loop_close(&r.loop) != 0)
        fail(&r, "handles left open on the loop");
    printf("ok\n");
    return 0;
}
