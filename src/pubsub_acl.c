/*
 * pubsub_acl.c - entitlements: the users of pubsub.users, who a connection
 * is, what it may subscribe to, read and publish, and what happens to a
 * connection that guesses passwords or whose rights a reload narrows.
 *
 * Users. pubsub.users names users in the spirit of Redis 7 ACLs: a name,
 * the SHA-256 of a password (the configuration never holds the password),
 * `subscribe` patterns (Redis' &pattern: SUBSCRIBE, PSUBSCRIBE, the
 * snapshot on subscribe, GET, MGET, KEYS and SCAN) and `publish` patterns
 * (PUBLISH). pubsub.password stays the password of Redis' "default" user,
 * who may do everything, as before. With users and no pubsub.password the
 * default user is off, as Redis' `user default off`: a connection must AUTH
 * as a user before anything but AUTH, HELLO, QUIT and RESET (-NOAUTH), and
 * `AUTH <password>` is WRONGPASS. The users are built once per
 * configuration into one heap block (acl_t); a client points at its user
 * (client->user), NULL for the default user.
 *
 * AUTH. `AUTH user pass`, `AUTH pass` (the default user) and
 * `HELLO 3 AUTH user pass` hash the password given with libcrypto's
 * SHA-256 and compare digests with CRYPTO_memcmp(), in constant time; a
 * name that is no user is hashed and compared too, so the time taken does
 * not tell a user that exists from one that does not. A failure is
 * WRONGPASS as Redis answers it, logged with the peer's address and the
 * user name (never the password; nor a name that is no user, which may be
 * a password in the wrong place), and counted (auth_failures_total). A
 * connection's first two failures are answered at once; from the third the
 * answer waits 100 ms more each time (100, 200, ... 700 ms), and the tenth
 * closes the connection. The wait is a timer: the client is not read and
 * its pipelined requests stay in its input until the answer goes out; the
 * loop never sleeps. A success starts the count again.
 *
 * Checks. pubsub__acl_may() is the one rule: may user u subscribe to (or
 * publish to) channel name? It matches the name against the user's
 * patterns with glob_match(); a conflated channel's base name is what it
 * takes. A SUBSCRIBE naming a channel no subscribe pattern allows, a
 * PUBLISH outside publish, a GET or MGET of a key the user may not read
 * (book.X reads as quote.X), are refused whole with Redis 7.0's -NOPERM
 * texts, before anything is done. PSUBSCRIBE follows Redis 7: its pattern
 * must be one of the user's subscribe patterns, byte for byte
 * (pubsub__acl_may_pattern()); `quote.*` is refused to a user allowed only
 * `quote.A*`, even though it would match allowed channels too.
 *
 * Why the fan-out checks nothing. With that PSUBSCRIBE rule every channel
 * a permitted pattern P matches is a channel P itself allows, so no
 * pattern a user holds can ever match a channel the user may not see, and
 * no snapshot of it either; a SUBSCRIBE was checked when it was made. So
 * the fan-out, the snapshots and the pattern-channel matches carry no
 * per-user state and do no per-tick check: a client of a restricted user
 * costs per tick exactly what a client of the default user costs, and the
 * default user (client->user NULL) costs one pointer test per command, none
 * per tick. KEYS and SCAN, which walk the market, skip the keys (tick and
 * bar channels) the user may not read (pubsub__acl_may_read(): a glob per
 * listed key, only for a restricted user).
 *
 * Reload. pubsub__acl_reconfigure() builds the new users, then walks the
 * clients: one whose user is gone or has a new password, or holds a
 * subscription its user no longer allows (or, for the default user, the
 * default user is now off) is disconnected, as Redis 7 does, with a log
 * line naming the client's address, the user and the reason; every other
 * client is pointed at its user's new rules and goes on.
 *
 * Never blocks; nothing here runs per tick.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "src/glob.h"
#include "src/log.h"
#include "src/pubsub_internal.h"

#define AUTH_FREE_FAILURES 2   /* failures answered at once */
#define AUTH_DELAY_STEP_MS 100 /* each failure after those waits this much more */
#define AUTH_CLOSE_AFTER   10  /* the failure that closes the connection */
#define PEER_TEXT_MAX      64  /* "[ipv6]:port" */
#define NAME_SHOWN_MAX     64  /* bytes of a user name a log line shows */

static const char wrongpass[] = "WRONGPASS invalid username-password pair or user is disabled.";

/* ---- users ---- */

int pubsub__acl_build(heap_t *heap, const config_t *cfg, acl_t **out)
{
    uint32_t nusers = cfg->pubsub.nusers, npatterns = 0;

    *out = NULL;
    if (nusers == 0)
        return 0;
    for (uint32_t i = 0; i < nusers; i++)
        npatterns += cfg->pubsub.users[i].subscribe.n + cfg->pubsub.users[i].publish.n;
    size_t size = sizeof(acl_t) + nusers * sizeof(acl_user_t) + npatterns * sizeof(acl_pattern_t) +
                  cfg->pubsub.user_text_len;
    acl_t *acl = pubsub__zalloc(heap, size);
    if (acl == NULL)
        return -ENOMEM;
    acl->nusers = nusers;
    acl->users = (acl_user_t *)(acl + 1);
    acl_pattern_t *pat = (acl_pattern_t *)(acl->users + nusers);
    char *text = (char *)(pat + npatterns);
    memcpy(text, cfg->pubsub.user_text, cfg->pubsub.user_text_len);
    for (uint32_t i = 0; i < nusers; i++) {
        const config_user_t *cu = &cfg->pubsub.users[i];
        acl_user_t *u = &acl->users[i];
        const config_patterns_t *lists[2] = {&cu->subscribe, &cu->publish};
        snprintf(u->name, sizeof u->name, "%s", cu->name);
        u->name_len = strlen(u->name);
        memcpy(u->digest, cu->password_sha256, sizeof u->digest);
        for (int k = 0; k < 2; k++) {
            u->patterns[k] = pat;
            u->npatterns[k] = lists[k]->n;
            const char *s = text + lists[k]->off;
            for (uint32_t j = 0; j < lists[k]->n; j++) {
                pat->s = s;
                pat->len = (uint32_t)strlen(s);
                s += pat->len + 1;
                pat++;
            }
        }
    }
    *out = acl;
    return 0;
}

void pubsub__acl_free(heap_t *heap, acl_t *acl)
{
    heap_free(heap, acl);
}

static const acl_user_t *find_user(const acl_t *acl, const char *name, size_t len)
{
    for (uint32_t i = 0; acl != NULL && i < acl->nusers; i++)
        if (acl->users[i].name_len == len && memcmp(acl->users[i].name, name, len) == 0)
            return &acl->users[i];
    return NULL;
}

/* ---- checks ---- */

int pubsub__acl_may(const acl_user_t *u, enum acl_right right, const char *name, size_t len)
{
    if (u == NULL)
        return 1;
    for (uint32_t i = 0; i < u->npatterns[right]; i++)
        if (glob_match(u->patterns[right][i].s, u->patterns[right][i].len, name, len))
            return 1;
    return 0;
}

size_t pubsub__acl_base(const char *name, size_t len)
{
    size_t base;
    uint64_t ms;
    return pubsub__conflate_suffix(name, len, &base, &ms) > 0 ? base : len;
}

int pubsub__acl_may_pattern(const acl_user_t *u, const char *pat, size_t len)
{
    if (u == NULL)
        return 1;
    for (uint32_t i = 0; i < u->npatterns[ACL_SUBSCRIBE]; i++) {
        const acl_pattern_t *p = &u->patterns[ACL_SUBSCRIBE][i];
        if (p->len == len && memcmp(p->s, pat, len) == 0)
            return 1;
    }
    return 0;
}

int pubsub__acl_may_read(const acl_user_t *u, const char *key, size_t len)
{
    char name[PAYLOAD_CHANNEL_MAX];

    if (u == NULL)
        return 1;
    if (len > 5 && memcmp(key, "book.", 5) == 0) {
        /* book.SYM[:depth] is read from the symbol's quote channel. */
        const char *colon = memchr(key, ':', len);
        size_t sym = (colon != NULL ? (size_t)(colon - key) : len) - 5;
        if (6 + sym > sizeof name)
            return 0;
        memcpy(name, "quote.", 6);
        memcpy(name + 6, key + 5, sym);
        return pubsub__acl_may(u, ACL_SUBSCRIBE, name, 6 + sym);
    }
    return pubsub__acl_may(u, ACL_SUBSCRIBE, key, len);
}

/* Why user u may not hold c's subscriptions, or NULL. */
static const char *subs_forbidden(const client_t *c, const acl_user_t *u)
{
    for (uint32_t i = 0; u != NULL && i < c->nsubs; i++) {
        const topic_t *t = c->subs[i]->topic;
        size_t n = pubsub__acl_base(t->name, t->len);
        if (t->is_pattern && !pubsub__acl_may_pattern(u, t->name, n))
            return "the user may not subscribe to a pattern the client holds";
        if (!t->is_pattern && !pubsub__acl_may(u, ACL_SUBSCRIBE, t->name, n))
            return "the user may not subscribe to a channel the client holds";
    }
    return NULL;
}

/* ---- AUTH ---- */

/* The peer's address as "ip:port", or "?" when the socket has none. */
static void peer_text(client_t *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";

    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(buf, len, "?");
    } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
}

/* A user name as a client sent it, for a log line: at most NAME_SHOWN_MAX
 * bytes, anything but printable ASCII as '?'. */
static void name_text(const char *s, size_t n, char *buf)
{
    size_t k = n < NAME_SHOWN_MAX ? n : NAME_SHOWN_MAX;
    for (size_t i = 0; i < k; i++)
        buf[i] = s[i] >= ' ' && s[i] <= '~' ? s[i] : '?';
    buf[k] = '\0';
}

/* Whether SHA-256(password) is digest, in constant time. */
static int digest_matches(const uint8_t *digest, const resp_arg_t *password)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(password->ptr, password->len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32)
        return 0;
    return CRYPTO_memcmp(md, digest, 32) == 0;
}

/* pubsub.password's check: no early exit, so that the time taken says
 * nothing about how much of it was right. */
static int password_equal(const char *want, const resp_arg_t *got)
{
    size_t n = strlen(want);
    unsigned char diff = got->len != n;
    for (size_t i = 0; i < got->len; i++)
        diff |= (unsigned char)(got->ptr[i] ^ want[i % (n != 0 ? n : 1)]);
    return diff == 0;
}

static void auth_wait_add(client_t *c)
{
    pubsub_t *ps = c->ps;
    c->auth_prev = NULL;
    c->auth_next = ps->auth_waiting;
    if (ps->auth_waiting != NULL)
        ps->auth_waiting->auth_prev = c;
    ps->auth_waiting = c;
}

void pubsub__acl_client_gone(client_t *c)
{
    pubsub_t *ps = c->ps;
    if (!(c->flags & CLIENT_AUTH_WAIT))
        return;
    if (c->auth_prev != NULL)
        c->auth_prev->auth_next = c->auth_next;
    else
        ps->auth_waiting = c->auth_next;
    if (c->auth_next != NULL)
        c->auth_next->auth_prev = c->auth_prev;
    c->flags &= ~CLIENT_AUTH_WAIT;
}

static void auth_timer_arm(pubsub_t *ps);

/* The answers whose wait is over go out, and their clients are read
 * again, their pipelined requests first. Serving one client can close
 * others, so each pass starts from the head of the list. */
static void on_auth_timer(uv_timer_t *t)
{
    pubsub_t *ps = t->data;
    uint64_t now = uv_now(ps->loop);

    for (;;) {
        client_t *c = ps->auth_waiting;
        while (c != NULL && c->auth_until_ms > now)
            c = c->auth_next;
        if (c == NULL)
            break;
        pubsub__acl_client_gone(c);
        pubsub__reply_error(c, "%s", wrongpass);
        if (!(c->flags & (CLIENT_CLOSING | CLIENT_PAUSED)) && pubsub__read_start(c) != 0) {
            pubsub__client_close(c);
            continue;
        }
        ps->read_ns = -1;
        ps->snapshot_budget = SNAPSHOT_READ;
        pubsub__serve(c, c->in != NULL ? c->in : "", c->in_len);
    }
    auth_timer_arm(ps);
}

/* The timer at the earliest wait's end, or stopped when none waits. */
static void auth_timer_arm(pubsub_t *ps)
{
    uint64_t first = UINT64_MAX, now = uv_now(ps->loop);
    for (client_t *c = ps->auth_waiting; c != NULL; c = c->auth_next)
        if (c->auth_until_ms < first)
            first = c->auth_until_ms;
    if (first == UINT64_MAX)
        uv_timer_stop(&ps->auth_timer);
    else if (!ps->stopping)
        uv_timer_start(&ps->auth_timer, on_auth_timer, first > now ? first - now : 0, 0);
}

/* A failed AUTH or HELLO AUTH as user (NULL: the default user; known:
 * whether it names a user): logged, counted, and answered now, later (the
 * client waits, unread) or with the connection's close. A name that is no
 * user is not logged: it may be a password sent in the wrong place
 * (AUTH <password> <user>). */
static void auth_failed(client_t *c, const resp_arg_t *user, int known)
{
    pubsub_t *ps = c->ps;
    char peer[PEER_TEXT_MAX], name[NAME_SHOWN_MAX + 3];
    uint32_t n = ++c->auth_failures;

    ps->stats.auth_failures_total++;
    peer_text(c, peer, sizeof peer);
    if (user == NULL) {
        strcpy(name, "\"default\"");
    } else if (known) {
        name[0] = '"';
        name_text(user->ptr, user->len, name + 1);
        strcat(name, "\"");
    } else {
        strcpy(name, "that does not exist");
    }
    log_msg(LOG_WARNING, "pubsub: client %s: AUTH failed for user %s (%u on this connection%s)",
            peer, name, n, n >= AUTH_CLOSE_AFTER ? "; closing it" : "");
    if (n >= AUTH_CLOSE_AFTER) {
        pubsub__reply_error(c, "%s", wrongpass);
        pubsub__begin_closing(c);
    } else if (n <= AUTH_FREE_FAILURES) {
        pubsub__reply_error(c, "%s", wrongpass);
    } else {
        c->flags |= CLIENT_AUTH_WAIT;
        c->auth_until_ms =
            uv_now(ps->loop) + (uint64_t)(n - AUTH_FREE_FAILURES) * AUTH_DELAY_STEP_MS;
        uv_read_stop((uv_stream_t *)&c->tcp);
        auth_wait_add(c);
        auth_timer_arm(ps);
    }
}

int pubsub__acl_authenticate(client_t *c, const resp_arg_t *user, const resp_arg_t *password)
{
    pubsub_t *ps = c->ps;
    const char *want = ps->opt.password;
    int ok, known = 1;
    const acl_user_t *u = NULL;

    if (user == NULL || (user->len == 7 && memcmp(user->ptr, "default", 7) == 0)) {
        /* The default user: on with pubsub.password or with no users
         * (nopass: any password), off with users and no password. */
        ok = want[0] != '\0' ? password_equal(want, password) : ps->acl == NULL;
    } else {
        u = find_user(ps->acl, user->ptr, user->len);
        static const uint8_t none[32];
        ok = digest_matches(u != NULL ? u->digest : none, password) && u != NULL;
        known = u != NULL;
    }
    if (!ok) {
        auth_failed(c, user, known);
        return 0;
    }
    c->auth_failures = 0;
    const char *why = subs_forbidden(c, u);
    if (why != NULL) {
        /* A RESP3 client subscribed as one user AUTHs as another, who may
         * not have what it holds: closed, as a reload would close it. */
        char peer[PEER_TEXT_MAX];
        peer_text(c, peer, sizeof peer);
        log_msg(LOG_NOTICE, "pubsub: client %s (user \"%s\") disconnected on AUTH: %s", peer,
                u->name, why);
        pubsub__reply_str(c, ACL_NOPERM_CHANNEL);
        pubsub__begin_closing(c);
        return 0;
    }
    c->flags |= CLIENT_AUTHED;
    c->user = u;
    return 1;
}

/* ---- reload ---- */

/* Why c may not go on under the users of acl (password the default
 * user's), or NULL; *nu is its user there. */
static const char *narrowed(const client_t *c, const acl_t *acl, const char *password,
                            const acl_user_t **nu)
{
    *nu = NULL;
    if (!(c->flags & CLIENT_AUTHED))
        return NULL;
    if (c->user == NULL) {
        if (acl != NULL && password[0] == '\0')
            return "the default user is off (pubsub.users and no pubsub.password)";
        return NULL;
    }
    *nu = find_user(acl, c->user->name, c->user->name_len);
    if (*nu == NULL)
        return "the user is gone from pubsub.users";
    if (memcmp((*nu)->digest, c->user->digest, sizeof c->user->digest) != 0)
        return "the user's password changed";
    return subs_forbidden(c, *nu);
}

int pubsub__acl_reconfigure(pubsub_t *ps, const config_t *cfg, char *err, size_t errlen)
{
    acl_t *acl;

    if (pubsub__acl_build(ps->heap, cfg, &acl) != 0) {
        snprintf(err, errlen, "pubsub: out of memory");
        return -ENOMEM;
    }
    client_t *c = ps->clients;
    while (c != NULL) {
        client_t *next = c->next;
        const acl_user_t *nu;
        const char *why = narrowed(c, acl, cfg->pubsub.password, &nu);
        if (why != NULL) {
            char peer[PEER_TEXT_MAX];
            peer_text(c, peer, sizeof peer);
            log_msg(LOG_NOTICE, "pubsub: client %s (user \"%s\") disconnected on reload: %s", peer,
                    c->user != NULL ? c->user->name : "default", why);
            pubsub__client_close(c);
        } else {
            c->user = nu;
        }
        c = next;
    }
    pubsub__acl_free(ps->heap, ps->acl);
    ps->acl = acl;
    return 0;
}
