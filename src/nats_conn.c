/*
 * nats_conn.c - a NATS connection on a thread of its own (nats_conn.h).
 *
 * The thread: builds the options from the nats settings (servers, the one
 * way to authenticate, TLS, the name, reconnecting forever with
 * reconnect_wait between attempts, and retrying a first connection that
 * fails), connects, runs its owner's work, and at the end flushes, closes,
 * waits for the closed callback and destroys the connection. libnats's
 * callbacks (disconnected, reconnected, closed, errors) only note what
 * happened under c->mu and wake the loop.
 *
 * Every thread started here is recorded (threads[]) and joined once it has
 * finished: by the next start, and by nats_conn_wait_all() after the loop
 * has returned, which waits for them all. A thread is joined, not detached,
 * so that its own cleanup (its thread-local state in libnats and OpenSSL)
 * is over before libnats is closed and the process exits.
 */
#include "src/nats_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/log.h"

#define CLOSE_WAIT_MS 5000 /* for libnats's closed callback at the end */

/* A thread started here, until joined. */
typedef struct thread_rec {
    pthread_t id;
    int done; /* its work is over: joining it waits only for its exit */
} thread_rec_t;

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cond = PTHREAD_COND_INITIALIZER;
static thread_rec_t *threads; /* live_mu: nthreads of them */
static size_t nthreads, threads_cap;
static int nats_opened; /* live_mu */

/* Joins the finished threads (live_mu held); returns how many are left. */
static size_t reap_locked(void)
{
    size_t kept = 0;
    for (size_t i = 0; i < nthreads; i++) {
        if (threads[i].done)
            pthread_join(threads[i].id, NULL);
        else
            threads[kept++] = threads[i];
    }
    nthreads = kept;
    if (nthreads == 0) {
        free(threads);
        threads = NULL;
        threads_cap = 0;
    }
    return nthreads;
}

/* ---- life ---- */

static void unref(nats_conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    c->release(c);
}

static void async_closed(uv_handle_t *h)
{
    unref(h->data);
}

static void on_async(uv_async_t *a)
{
    nats_conn_t *c = a->data;
    c->on_wake(c);
}

void nats_conn_wake_loop(nats_conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->async_open)
        uv_async_send(&c->async);
    pthread_mutex_unlock(&c->mu);
}

int nats_conn_stopping(nats_conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    int stop = c->stop;
    pthread_mutex_unlock(&c->mu);
    return stop;
}

void nats_conn_wait(nats_conn_t *c, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    if (!c->stop)
        pthread_cond_timedwait(&c->cond, &c->mu, &until);
    pthread_mutex_unlock(&c->mu);
}

void nats_conn_signal(nats_conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* Notes events for the loop and wakes it. */
static void note(nats_conn_t *c, unsigned events, const char *error)
{
    pthread_mutex_lock(&c->mu);
    c->events |= events;
    if (error != NULL)
        snprintf(c->error, sizeof(c->error), "%s", error);
    if (c->async_open)
        uv_async_send(&c->async);
    pthread_mutex_unlock(&c->mu);
}

void nats_conn_fail_text(nats_conn_t *c, const char *why)
{
    note(c, NATS_EV_ERROR, why);
}

void nats_conn_fail(nats_conn_t *c, const char *doing, natsStatus s)
{
    char why[256];
    const char *last = nats_GetLastError(NULL);
    snprintf(why, sizeof(why), "%s: %s%s%s", doing, natsStatus_GetText(s),
             last != NULL && last[0] != '\0' ? ": " : "", last != NULL ? last : "");
    note(c, NATS_EV_ERROR, why);
}

void nats_conn_ok(nats_conn_t *c)
{
    note(c, NATS_EV_OK, NULL);
}

void nats_conn_log_events(nats_conn_t *c)
{
    char error[sizeof(c->error)], url[sizeof(c->url)];
    pthread_mutex_lock(&c->mu);
    unsigned ev = c->events;
    c->events = 0;
    memcpy(error, c->error, sizeof(error));
    memcpy(url, c->url, sizeof(url));
    pthread_mutex_unlock(&c->mu);
    if (ev & (NATS_EV_OK | NATS_EV_CONNECTED | NATS_EV_RECONNECTED))
        c->loop_error[0] = '\0';
    /* An error is logged once, and again only when it changes or comes
     * back after things worked. */
    if ((ev & NATS_EV_ERROR) && strcmp(c->loop_error, error) == 0)
        ev &= ~(unsigned)NATS_EV_ERROR;
    if (ev & NATS_EV_ERROR)
        memcpy(c->loop_error, error, sizeof(c->loop_error));
    if (ev & NATS_EV_ERROR)
        log_msg(LOG_ERR, "%s: %s (tickd keeps serving; it tries again every %llu ms)", c->what,
                error, (unsigned long long)(c->cfg.reconnect_wait_ns / 1000000));
    if (ev & NATS_EV_CONNECTED)
        log_msg(LOG_INFO, "%s: connected to %s", c->what, url);
    if (ev & NATS_EV_DISCONNECTED)
        log_msg(LOG_WARNING, "%s: connection to NATS lost; reconnecting", c->what);
    if (ev & NATS_EV_RECONNECTED)
        log_msg(LOG_INFO, "%s: reconnected to %s", c->what, url);
}

/* ---- libnats's callbacks (its threads) ---- */

static void note_url(nats_conn_t *c, natsConnection *nc)
{
    char url[sizeof(c->url)];
    if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
        url[0] = '\0';
    pthread_mutex_lock(&c->mu);
    memcpy(c->url, url, sizeof(url));
    pthread_mutex_unlock(&c->mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
    nats_conn_t *c = closure;
    note_url(c, nc);
    atomic_store(&c->connected, 1);
    note(c, NATS_EV_CONNECTED, NULL);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    nats_conn_t *c = closure;
    (void)nc;
    if (atomic_exchange(&c->connected, 0))
        note(c, NATS_EV_DISCONNECTED, NULL);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    nats_conn_t *c = closure;
    note_url(c, nc);
    atomic_store(&c->connected, 1);
    atomic_fetch_add(&c->reconnects, 1);
    note(c, NATS_EV_RECONNECTED, NULL);
}

static void on_closed(natsConnection *nc, void *closure)
{
    nats_conn_t *c = closure;
    (void)nc;
    atomic_store(&c->connected, 0);
    pthread_mutex_lock(&c->mu);
    c->closed = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    nats_conn_t *c = closure;
    const char *last = NULL;
    char why[256];
    (void)sub;
    natsConnection_GetLastError(nc, &last);
    snprintf(why, sizeof(why), "%s%s%s", natsStatus_GetText(err),
             last != NULL && last[0] != '\0' ? ": " : "", last != NULL ? last : "");
    note(c, NATS_EV_ERROR, why);
}

/* ---- the thread ---- */

/* The options from c->cfg; NATS_OK, or the status with the error noted. */
static natsStatus make_options(nats_conn_t *c, natsOptions **out)
{
    const config_nats_t *n = &c->cfg;
    natsOptions *o = NULL;
    const char *servers[CONFIG_MAX_NATS_SERVERS];
    const char *doing = "options";
    int tls = n->tls_ca[0] != '\0' || n->tls_cert[0] != '\0';
    for (size_t i = 0; i < n->nservers; i++) {
        servers[i] = n->servers[i];
        tls |= strncmp(n->servers[i], "tls://", 6) == 0;
    }
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, servers, (int)n->nservers);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, n->name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* forever */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, (int64_t)(n->reconnect_wait_ns / 1000000));
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    /* No buffering of publishes while reconnecting: a publish then fails at
     * once and stays in tickd's own queue (the sink's ring, a feed's
     * unacknowledged message), to go out in order once the connection is
     * back, never ahead of what is resent. */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, 1);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, c);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, c);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, c);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, c);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, c);
    if (s == NATS_OK && n->user[0] != '\0') {
        doing = "nats.user/nats.password";
        s = natsOptions_SetUserInfo(o, n->user, n->password);
    }
    if (s == NATS_OK && n->token[0] != '\0') {
        doing = "nats.token";
        s = natsOptions_SetToken(o, n->token);
    }
    if (s == NATS_OK && n->credentials[0] != '\0') {
        doing = "nats.credentials";
        s = natsOptions_SetUserCredentialsFromFiles(o, n->credentials, NULL);
    }
    if (s == NATS_OK && tls) {
        doing = "TLS";
        s = natsOptions_SetSecure(o, true);
    }
    if (s == NATS_OK && n->tls_ca[0] != '\0') {
        doing = "nats.tls_ca";
        s = natsOptions_LoadCATrustedCertificates(o, n->tls_ca);
    }
    if (s == NATS_OK && n->tls_cert[0] != '\0') {
        doing = "nats.tls_cert/nats.tls_key";
        s = natsOptions_LoadCertificatesChain(o, n->tls_cert, n->tls_key);
    }
    if (s != NATS_OK) {
        nats_conn_fail(c, doing, s);
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}

static void *thread_main(void *arg)
{
    nats_conn_t *c = arg;
    natsOptions *o = NULL;
    if (make_options(c, &o) == NATS_OK) {
        /* One attempt first, for a clear reason when it fails (no server,
         * a refused password, a TLS mismatch); then with retries, which
         * returns at once (NATS_NOT_YET_CONNECTED): libnats goes on trying,
         * and on_connected says when it got there. */
        natsOptions_SetRetryOnFailedConnect(o, false, NULL, NULL);
        natsStatus s = natsConnection_Connect(&c->nc, o);
        if (s != NATS_OK) {
            nats_conn_fail(c, "cannot connect", s);
            natsOptions_SetRetryOnFailedConnect(o, true, on_connected, c);
            s = natsConnection_Connect(&c->nc, o);
        }
        if (s == NATS_OK)
            on_connected(c->nc, c);
        else if (s != NATS_NOT_YET_CONNECTED)
            nats_conn_fail(c, "cannot connect", s);
        if (c->nc != NULL) {
            c->run(c);
            natsConnection_FlushTimeout(c->nc, 1000);
            natsConnection_Close(c->nc);
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += CLOSE_WAIT_MS / 1000;
            pthread_mutex_lock(&c->mu);
            while (!c->closed)
                if (pthread_cond_timedwait(&c->cond, &c->mu, &until) != 0)
                    break;
            pthread_mutex_unlock(&c->mu);
            natsConnection_Destroy(c->nc);
            c->nc = NULL;
        }
        natsOptions_Destroy(o);
    }
    nats_ReleaseThreadMemory();
    unref(c);
    pthread_mutex_lock(&live_mu);
    for (size_t i = 0; i < nthreads; i++)
        if (pthread_equal(threads[i].id, pthread_self()))
            threads[i].done = 1;
    pthread_cond_broadcast(&live_cond);
    pthread_mutex_unlock(&live_mu);
    return NULL;
}

int nats_conn_start(uv_loop_t *loop, nats_conn_t *c, const config_nats_t *cfg, char *err,
                    size_t errlen)
{
    pthread_condattr_t ca;
    c->cfg = *cfg;
    pthread_mutex_lock(&live_mu);
    if (!nats_opened) {
        natsStatus s = nats_Open(-1);
        if (s != NATS_OK) {
            pthread_mutex_unlock(&live_mu);
            snprintf(err, errlen, "%s: cannot start libnats: %s", c->what, natsStatus_GetText(s));
            return -ENOMEM;
        }
        nats_opened = 1;
    }
    pthread_mutex_unlock(&live_mu);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    int r = uv_async_init(loop, &c->async, on_async);
    if (r != 0) {
        snprintf(err, errlen, "%s: %s", c->what, uv_strerror(r));
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cond);
        return r;
    }
    c->async.data = c;
    c->async_open = 1;
    c->refs = 2;
    pthread_mutex_lock(&live_mu);
    reap_locked();
    if (nthreads == threads_cap) {
        size_t cap = threads_cap ? 2 * threads_cap : 8;
        thread_rec_t *grown = realloc(threads, cap * sizeof(*grown));
        if (grown != NULL) {
            threads = grown;
            threads_cap = cap;
        }
    }
    r = nthreads < threads_cap ? pthread_create(&c->thread, NULL, thread_main, c) : ENOMEM;
    if (r == 0)
        threads[nthreads++] = (thread_rec_t){c->thread, 0};
    pthread_mutex_unlock(&live_mu);
    if (r != 0) {
        snprintf(err, errlen, "%s: cannot start its thread: %s", c->what, strerror(r));
        c->refs = 1;
        c->async_open = 0;
        uv_close((uv_handle_t *)&c->async, async_closed);
        return -r;
    }
    return 0;
}

void nats_conn_stop(nats_conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    c->async_open = 0;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    uv_close((uv_handle_t *)&c->async, async_closed);
}

int nats_conn_wait_all(int64_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    int r = 0;
    pthread_mutex_lock(&live_mu);
    while (reap_locked() > 0 && r == 0)
        r = pthread_cond_timedwait(&live_cond, &live_mu, &until);
    int opened = nats_opened;
    size_t left = nthreads;
    nats_opened = left > 0;
    pthread_mutex_unlock(&live_mu);
    if (left > 0)
        return -ETIMEDOUT;
    if (opened)
        nats_CloseAndWait(timeout_ms);
    return 0;
}
