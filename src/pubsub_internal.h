/*
 * pubsub_internal.h - what the files of the pub/sub server share: the
 * server, its clients, topics and subscriptions, and the functions one file
 * calls in another. Nothing outside src/pubsub*.c includes it; the public
 * interface is src/pubsub.h.
 *
 * The server is split by concept, each file opening with an essay on what
 * it owns and its invariants:
 *
 *   pubsub.c           the core: reading and serving requests, clients,
 *                      housekeeping, listening, settings, the public
 *                      interface (start, reconfigure, stop)
 *   pubsub_topics.c    channels and patterns, the pattern prefix groups,
 *                      the pattern-channel matches, subscriptions
 *   pubsub_queue.c     the fan-out of a tick onto its subscribers' output
 *                      rings, writing them out, the output limits, replies
 *   pubsub_snapshot.c  the last values a new subscriber is sent
 *   pubsub_commands.c  the command table and dispatch, (P)(UN)SUBSCRIBE,
 *                      PING, QUIT, RESET, AUTH, HELLO, CLIENT, COMMAND
 *   pubsub_publish.c   PUBLISH, its replies held for the journal, and the
 *                      journal's backpressure
 *   pubsub_info.c      INFO and PUBSUB CHANNELS/NUMSUB/NUMPAT/HELP
 *   pubsub_query.c     GET, MGET, KEYS, SCAN: last values and books
 *                      without a subscription
 *   pubsub_acl.c       entitlements: pubsub.users, AUTH, the checks of
 *                      (P)SUBSCRIBE, PUBLISH and queries, failed AUTH,
 *                      rights narrowed by a reload
 *   pubsub_conflate.c  conflated channels and patterns (quote.AAPL@250ms):
 *                      the latest tick per symbol, sent once per interval
 *
 * Names declared here start pubsub__ (internal, not static); everything
 * else in those files is static. The inline functions below are the hot
 * paths' (a request's AUTH check, a tick's lookup of its channel and the
 * queueing of its frames), whose common case must not cost a call, and the
 * TICKD_ASSERT checks of a client's output ring.
 */
#ifndef TICKD_SRC_PUBSUB_INTERNAL_H
#define TICKD_SRC_PUBSUB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc/alloc.h"
#include "alloc/assert.h"
#include "src/fanout.h"
#include "src/payload.h"
#include "src/pubsub.h"
#include "src/resp.h"

#define READ_BUF_SIZE  (64 * 1024)
#define RING_INITIAL   16          /* output ring entries of a new client, and the least kept */
#define REPLY_SCRATCH  (16 * 1024) /* replies gathered before they become a payload */
#define TABLE_INITIAL  64
#define ERROR_TEXT_MAX 512
#define NUMBER_MAX     24   /* a reply number: prefix, sign, 20 digits, CRLF */
#define INFO_TEXT_MAX  4096 /* the longest INFO report, with room to spare */
#define PREFIX_LENS    64   /* prefix lengths counted one by one; longer ones share the last */
#define SNAPSHOT_STEP  4096 /* symbol table slots a pattern snapshot looks at per loop turn */
#define SNAPSHOT_READ  (4 * SNAPSHOT_STEP) /* ... and at most in the read that asked for it */
#define SNAPSHOT_PAUSE (256 * 1024)        /* a client holding more waits for its socket to drain */

/* What HELLO and INFO say the server is: the Redis release whose pub/sub
 * tickd answers as, byte for byte (RESP3 push frames, RESET, the 7.0 error
 * texts); tickd's own version is INFO's tickd_version. */
#define REDIS_COMPAT_VERSION "7.0.0"

typedef struct client client_t;
typedef struct topic topic_t;

typedef struct snapshot_job snapshot_job_t;
typedef struct conflation conflation_t;
typedef struct conflate_interval conflate_interval_t;
typedef struct client_conflation client_conflation_t;

/* The rights a user's patterns give (pubsub_acl.c). */
enum acl_right {
    ACL_SUBSCRIBE = 0, /* SUBSCRIBE, PSUBSCRIBE, snapshots, GET/MGET/KEYS/SCAN */
    ACL_PUBLISH = 1,   /* PUBLISH */
};

/* One of a user's channel patterns: s[0..len), NUL-terminated. */
typedef struct acl_pattern {
    const char *s;
    uint32_t len;
} acl_pattern_t;

/* A user of pubsub.users, as its clients point at it. */
typedef struct acl_user {
    char name[64];
    size_t name_len;
    uint8_t digest[32];               /* SHA-256 of the password */
    const acl_pattern_t *patterns[2]; /* by enum acl_right */
    uint32_t npatterns[2];
} acl_user_t;

/* The users of one configuration: one heap block, the users, their
 * patterns and the patterns' text behind the header. */
typedef struct acl {
    uint32_t nusers;
    acl_user_t *users;
} acl_t;

/* One subscription: a client to a channel or a pattern, listed on both. */
typedef struct sub {
    client_t *client;
    topic_t *topic;
    uint32_t client_idx; /* in client->subs */
    uint32_t topic_idx;  /* in topic->subs */
    snapshot_job_t *job; /* a pattern's snapshot not sent in full yet, or NULL */
} sub_t;

/* A pattern matching a channel's name, listed on both topics as a
 * subscription is on its client and topic: made when the second of the two
 * comes, dropped when the first goes, so neither ever rescans the other's
 * table to keep the lists true. The same link, on the topics' cf_links
 * instead, ties a conflated channel or pattern (as pattern) to each channel
 * topic whose ticks it takes (as channel). */
typedef struct match {
    topic_t *pattern;
    topic_t *channel;
    uint32_t pattern_idx; /* in pattern->matches */
    uint32_t channel_idx; /* in channel->matches */
} match_t;

/* The patterns that share one literal prefix (the bytes before the first
 * of * ? [ \): a channel name can only match a pattern whose prefix starts
 * it, so a new channel looks up its own prefixes, never every pattern. */
typedef struct prefix_group {
    struct prefix_group *next; /* hash chain */
    uint32_t hash;
    uint32_t len;
    topic_t *first; /* the patterns, linked by group_next */
    char name[];    /* len bytes */
} prefix_group_t;

/* A pattern snapshot still to send: the subscription it is for, and where
 * the walk of the market's symbols stands (market_foreach_step()). On its
 * client's list, oldest first. */
struct snapshot_job {
    snapshot_job_t *prev, *next;
    sub_t *sub;
    size_t cursor;
    uint32_t generation;
};

/* A channel or a pattern, by name. */
struct topic {
    topic_t *next; /* hash chain */
    uint32_t hash;
    uint32_t len;
    uint8_t is_pattern;
    uint8_t is_conflated; /* the name ends in a valid @<interval> suffix */
    /* Channels: the conflated channels and patterns that take this
     * channel's ticks; conflated topics: the channel topics whose ticks
     * they take (cf_links, below). Here, beside nsubs, as a tick reads both. */
    uint32_t ncf_links;
    sub_t **subs; /* the subscriptions to it */
    uint32_t nsubs, subs_cap;
    uint32_t nsubs3; /* of the nsubs, those of RESP3 clients (push frames) */
    /* Channels: the patterns matching the name; patterns: the channel
     * topics they match. */
    match_t **matches;
    uint32_t nmatches, matches_cap;
    /* Patterns: their prefix group, and the group's list. */
    prefix_group_t *group;
    topic_t *group_prev, *group_next;
    /* Patterns: the pmessage head for the name in each protocol (payload.h),
     * made when it first has a frame to send (pubsub__pattern_heads()). */
    payload_t *head[PAYLOAD_NPROTO];
    /* A conflated channel or pattern (name ends in an @<interval> suffix):
     * its latest ticks and interval (pubsub_conflate.c), else NULL. */
    conflation_t *conflate;
    match_t **cf_links; /* ncf_links of them (above), pattern the conflated topic */
    uint32_t cf_links_cap;
    char name[]; /* len bytes and a NUL */
};

typedef struct topic_table {
    topic_t **buckets;
    uint32_t mask; /* buckets - 1, a power of two minus one */
    uint32_t count;
} topic_table_t;

/* The pattern prefix groups, by prefix; lens[k] counts the groups whose
 * prefix is k bytes long (k < PREFIX_LENS; longer ones in the last), so a
 * channel skips the lengths no group has. */
typedef struct group_table {
    prefix_group_t **buckets;
    uint32_t mask;
    uint32_t count;
    uint32_t lens[PREFIX_LENS];
} group_table_t;

/* A reference to bytes [off, end) of a payload, waiting to be written. */
typedef struct out_entry {
    payload_t *p;
    uint32_t off, end;
} out_entry_t;

enum client_flags {
    CLIENT_AUTHED = 1 << 0,     /* AUTH succeeded, or no password when it connected */
    CLIENT_CLOSING = 1 << 1,    /* QUIT, protocol error or stop: close once the output is out */
    CLIENT_CLOSED = 1 << 2,     /* uv_close() called; freed in its callback */
    CLIENT_WRITING = 1 << 3,    /* a uv_write() is in flight: flushes skip the client */
    CLIENT_DIRTY = 1 << 4,      /* on the server's dirty list */
    CLIENT_SLOW = 1 << 5,       /* over an output limit: on the doomed list */
    CLIENT_SOFT = 1 << 6,       /* over the soft limit at every pass since soft_since_ms */
    CLIENT_COUNTED = 1 << 7,    /* counted in stats.clients (not a refused connection) */
    CLIENT_HELD = 1 << 8,       /* PUBLISH replies wait for the journal: output waits with them */
    CLIENT_RESP3 = 1 << 9,      /* HELLO 3: replies and messages in RESP3 (RESET ends it) */
    CLIENT_PAUSED = 1 << 10,    /* not read: HELD_MAX replies held, or CLIENT_WAITING */
    CLIENT_WAITING = 1 << 11,   /* a PUBLISH waits in `in` for room in the journal */
    CLIENT_RETRY = 1 << 12,     /* ... and is run again now (pubsub_journal_ready()) */
    CLIENT_NO_WAIT = 1 << 13,   /* ... and waited HELD_TIMEOUT_MS: it gets the error instead */
    CLIENT_AUTH_WAIT = 1 << 14, /* a failed AUTH's answer waits (auth_until_ms): not read */
    CLIENT_CONFLATED = 1 << 15, /* past the soft limit with slow_consumer conflate: its quotes
                                   are collapsed (cq) until it catches up */
};

/* A PUBLISH reply waiting for the journal (fsync always): p is its own block
 * in the client's ring, ":<n>", that stays there if the journal makes the
 * tick durable and is swapped for a journal error if it does not. */
typedef struct held_reply {
    payload_t *p;      /* the ring's reference keeps it: the ring is not written while held */
    uint64_t at;       /* the journal position of the tick */
    uint64_t since_ms; /* loop time of the PUBLISH, for HELD_TIMEOUT_MS */
} held_reply_t;

struct client {
    /* What the fan-out touches for every tick and subscriber (pubsub__enqueue(),
     * pubsub__dirty_add()), together at the front: one or two cache lines a
     * subscriber instead of three. Output: ring[(head + i) & (cap - 1)] for
     * i < count; the first inflight entries belong to the uv_write() in
     * flight; queued is the sum of the entries' bytes (pubsub__ring_ok()). */
    pubsub_t *ps;
    unsigned flags; /* enum client_flags */
    uint32_t ring_cap, ring_head, ring_count, inflight;
    uint32_t ring_peak; /* most entries held since the last housekeeping pass */
    out_entry_t *ring;
    size_t queued;                     /* bytes in the ring */
    client_t *dirty_prev, *dirty_next; /* clients with output not yet tried */

    uv_tcp_t tcp; /* tcp.data points back here */
    uv_write_t wreq;
    client_t *prev, *next;           /* every live client */
    client_t *doomed_next;           /* slow consumers to disconnect */
    client_t *held_prev, *held_next; /* CLIENT_HELD: on the server's held list */
    held_reply_t *held_replies;      /* nheld replies waiting for the journal, oldest first */
    uint32_t nheld, held_cap;
    uint64_t waiting_since_ms; /* CLIENT_WAITING: loop time the PUBLISH first waited */
    uint64_t last_active_ms;   /* loop time of the last bytes received */
    uint64_t soft_since_ms;    /* CLIENT_SOFT: loop time it went over */

    /* An unfinished request carried over from earlier reads. */
    char *in;
    size_t in_len, in_cap;

    sub_t **subs; /* channels and patterns, in no order */
    uint32_t nsubs, subs_cap;
    uint64_t id; /* HELLO's id: the connection's number, from 1 */

    /* Pattern snapshots not sent yet, oldest first; each is dropped with
     * its subscription. */
    snapshot_job_t *jobs, *jobs_tail;

    /* Entitlements (pubsub_acl.c): the user it authenticated as, NULL for
     * the default user (every right); failed AUTHs since the last success,
     * and, CLIENT_AUTH_WAIT, when the answer to the last one goes out, on
     * the server's auth_waiting list. */
    const acl_user_t *user;
    uint32_t auth_failures;
    uint64_t auth_until_ms;
    client_t *auth_prev, *auth_next;
    /* CLIENT_CONFLATED: the latest quote frame per channel not sent yet,
     * and the block its other frames are copied to (pubsub_conflate.c). */
    client_conflation_t *cq;
};

/* An INFO report being written: text[0..len), NUL-terminated. */
typedef struct info_text {
    char text[INFO_TEXT_MAX];
    size_t len;
} info_text_t;

/* pubsub.* settings in force. */
typedef struct settings {
    char listen[256];
    int payload;
    char password[256];
    uint32_t max_clients;
    size_t max_request;
    uint64_t idle_timeout_ns;
    size_t hard_limit;
    size_t soft_limit;
    uint64_t soft_ns;
    int snapshot;
    int slow_conflate; /* pubsub.slow_consumer: conflate */
} settings_t;

/* A listening socket; its own allocation so that a rebind can run the new
 * one while the old one closes. ps is NULL for one that failed to start. */
typedef struct listener {
    uv_tcp_t tcp;
    pubsub_t *ps;
    heap_t *heap;
} listener_t;

struct pubsub {
    uv_loop_t *loop;
    heap_t *heap;
    market_t *market;
    const bars_t *bars; /* the last bars for GET and snapshots (pubsub_set_bars()), or NULL */
    pubsub_publish_fn on_publish;
    void *publish_arg;
    int64_t read_ns; /* the clock at the read being processed (on_read sets -1, its first
                        PUBLISH reads the clock) */
    settings_t opt;

    listener_t *listener;
    uv_timer_t housekeeping; /* idle clients, soft limits */
    uv_timer_t drain;        /* pubsub_stop()'s deadline */
    uv_idle_t snapshots;     /* active while a client has snapshot work it can take */
    size_t snapshot_budget;  /* symbol slots the read being processed may still walk */

    client_t *clients;
    client_t *dirty;
    client_t *doomed;
    client_t *held; /* publishers waiting for the journal: replies held, or CLIENT_WAITING */

    acl_t *acl;             /* pubsub.users, NULL when there are none */
    client_t *auth_waiting; /* CLIENT_AUTH_WAIT clients */
    uv_timer_t auth_timer;  /* at the first of their auth_until_ms */

    topic_table_t channels;
    topic_table_t patterns;
    /* Bumped whenever a channel topic is made or freed, or a pattern made:
     * a symbol's slot (symbol_slot_t) filled at another version may name a
     * topic that is gone, or miss one that came or that a pattern makes on
     * the next tick. From 1, so a zeroed slot is never good. */
    uint64_t channels_version;
    group_table_t groups; /* the patterns by literal prefix */

    /* Conflation (pubsub_conflate.c): the conflated patterns (a new channel
     * topic is linked to those whose base matches it), the distinct
     * intervals in use, and the one timer that flushes them, armed for the
     * earliest due. A tick finds the conflations it belongs to on its
     * channel's topic (cf_links). */
    conflation_t *cf_patterns;
    conflate_interval_t *cf_intervals;
    uv_timer_t cf_timer;

    pubsub_stats_t stats;
    histogram_t latency;
    fanout_t stream[PAYLOAD_NPROTO]; /* the fan-out streams: every tick's frames, per protocol */

    /* INFO: the daemon's figures (pubsub_set_info_source()) and when this
     * server started, the uptime when no source says otherwise. */
    pubsub_info_fn info_fn;
    void *info_arg;
    int64_t start_ns;

    /* Request parsing: one client at a time, so shared. */
    resp_parser_t parser;
    resp_arg_t argv[RESP_MAX_ARGS];
    char *scratch; /* parser.scratch, scratch_cap >= max_request */
    size_t scratch_cap;
    char *rbuf; /* READ_HEADROOM + READ_BUF_SIZE: every read lands after the headroom (pubsub.c) */

    info_text_t info; /* the INFO report being written */

    /* Replies of the client being served, not yet queued. */
    client_t *reply_client;
    size_t reply_len;
    char reply[REPLY_SCRATCH];

    /* PUBLISH: subscribers reached by the ticks on_publish made. */
    int publishing;
    uint64_t publish_receivers;
    int published; /* this read published ticks: flush the subscribers after it */

    int stopping;
    unsigned handles; /* open handles: listeners, timers, clients */
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- pubsub_topics.c ---- */

/* heap_alloc() and zeroed; NULL when memory runs out. */
void *pubsub__zalloc(heap_t *heap, size_t size);

/* The channel and pattern tables and the prefix groups: empty, or
 * -ENOMEM. pubsub__topics_free() frees every topic and the tables. */
int pubsub__topics_init(pubsub_t *ps);
void pubsub__topics_free(pubsub_t *ps);

/* The bytes of pattern pat before its first wildcard (* ? [ \). */
size_t pubsub__literal_prefix(const char *pat, size_t len);

/* Makes pattern p's pmessage heads (p->head) if it has none yet; 0 or
 * -ENOMEM. */
int pubsub__pattern_heads(pubsub_t *ps, topic_t *p);

/* A new topic in its table, linked to the patterns or channels it matches;
 * 0 or -ENOMEM. */
int pubsub__topic_create(pubsub_t *ps, int is_pattern, const char *name, size_t len, uint32_t hash,
                         topic_t **out);

/* Conflation links (match_t on cf_links): conflated topic t takes the ticks
 * of channel topic ch (0 or -ENOMEM); conflated channel t, named
 * base@interval, takes those of the channel topic base[0..base_len), made
 * if there is none; conflated pattern t those of every channel topic whose
 * name its base matches. The channel topics hold the links and go only
 * once nothing holds them: no subscriber, no conflation link, no pattern
 * that would make them again. pubsub__cf_unlink() drops t's links, and
 * the channel topics nothing holds then. */
int pubsub__cf_link(pubsub_t *ps, topic_t *t, topic_t *ch);
int pubsub__cf_link_channel(pubsub_t *ps, topic_t *t, size_t base_len);
int pubsub__cf_link_pattern(pubsub_t *ps, topic_t *t, size_t base_len);
void pubsub__cf_unlink(pubsub_t *ps, topic_t *t);

/* pubsub__channel_of() when the symbol's slot does not hold the answer:
 * the lookup by name (and, while patterns exist, the topic made), the
 * answer kept in the slot. NULL when there is no topic, or none could be
 * made (then nothing is kept: the next tick tries again). */
topic_t *pubsub__channel_lookup(pubsub_t *ps, tick_t *tick, const char *name, size_t n);

/* Forgets every symbol slot ps filled in the market's symbols: before ps
 * goes away or moves to another market (pubsub_set_market()). */
void pubsub__slots_release(pubsub_t *ps);

/* Subscriptions: c's to t, or NULL; a new one (1), one c had (0) or
 * -ENOMEM, *topic its topic; dropping one, with its topic when nobody else
 * holds it and its snapshot job. */
sub_t *pubsub__sub_find(const client_t *c, const topic_t *t);
int pubsub__sub_add(client_t *c, int is_pattern, const char *name, size_t len, topic_t **topic);
void pubsub__sub_remove(pubsub_t *ps, sub_t *s);
void pubsub__job_drop(client_t *c, snapshot_job_t *j);
uint32_t pubsub__client_count_subs(const client_t *c, int is_pattern);
void pubsub__unsubscribe_quietly(client_t *c);

/* Switches c to protocol proto, keeping its topics' nsubs3 true. */
void pubsub__client_set_proto(client_t *c, int proto);

/* ---- pubsub_queue.c ---- */

/* pubsub__enqueue()'s slow path: a new ring entry, or for a
 * CLIENT_CONFLATED client's stream frames pubsub__conflate_client_enqueue();
 * pubsub__ring_push() is the new entry itself. */
int pubsub__enqueue_entry(client_t *c, payload_t *p, uint32_t off, uint32_t end);
int pubsub__ring_push(client_t *c, payload_t *p, uint32_t off, uint32_t end);
void pubsub__dirty_remove(client_t *c);

/* Output: written to the socket as far as it takes it; what tickd holds for
 * c; the hard limit on that; slow consumers marked (doom) and closed once
 * the work at hand is over (reap_slow); a ring cut back after a burst. */
void pubsub__client_write(client_t *c);
size_t pubsub__held_bytes(const client_t *c);
void pubsub__over_hard_limit(client_t *c);
/* The soft limit's clock, for c seen over the limit at loop time now: started
 * (CLIENT_SOFT, soft_since_ms) if it was not running; whether c has been
 * over for output_soft_seconds (soft_ns; 0: at once). Housekeeping stops it
 * when a sample finds c under. */
int pubsub__soft_expired(client_t *c, uint64_t now);
void pubsub__doom(client_t *c);
void pubsub__reap_slow(pubsub_t *ps);
void pubsub__ring_shrink(client_t *c);

/* Replies, gathered in the server's scratch for the client being served
 * and queued as one payload by pubsub__reply_seal(). */
void pubsub__reply_seal(pubsub_t *ps);
void pubsub__reply_raw(client_t *c, const char *s, size_t n);
void pubsub__reply_str(client_t *c, const char *s);
void pubsub__reply_number(client_t *c, char prefix, long long n);
void pubsub__reply_bulk(client_t *c, const char *s, size_t n);
void pubsub__reply_error(client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pubsub__reply_subscription_head(client_t *c, const char *kind);
void pubsub__reply_subscription(client_t *c, const char *kind, const char *name, size_t len);
size_t pubsub__format_number(char *buf, char prefix, long long n);

/* ---- pubsub_snapshot.c ---- */

/* The last values sent on a new subscription (pubsub.snapshot): a
 * channel's at once, a pattern's in steps (pubsub__snapshots_wake() resumes them). */
void pubsub__snapshot_channel(client_t *c, const topic_t *t);
void pubsub__snapshot_pattern(client_t *c, sub_t *s);
void pubsub__snapshots_wake(pubsub_t *ps);

/* ---- pubsub_commands.c ---- */

/* Runs one parsed request. */
void pubsub__dispatch(client_t *c, size_t argc, const resp_arg_t *argv);
int pubsub__arg_is(const resp_arg_t *a, const char *name);
int pubsub__arg_width(const resp_arg_t *a, size_t max);
/* A decimal integer as Redis' string2ll() reads one; 1, or 0 when a is not
 * one (at most 18 digits). */
int pubsub__arg_integer(const resp_arg_t *a, long long *out);
void pubsub__begin_closing(client_t *c);

/* ---- pubsub_publish.c ---- */

void pubsub__cmd_publish(client_t *c, size_t argc, const resp_arg_t *argv);
void pubsub__held_remove(client_t *c);
void pubsub__held_expire(pubsub_t *ps, uint64_t now);

/* ---- pubsub_query.c ---- */

void pubsub__cmd_get(client_t *c, size_t argc, const resp_arg_t *argv);
void pubsub__cmd_mget(client_t *c, size_t argc, const resp_arg_t *argv);
void pubsub__cmd_keys(client_t *c, size_t argc, const resp_arg_t *argv);
void pubsub__cmd_scan(client_t *c, size_t argc, const resp_arg_t *argv);
/* The last bar of the channel key[0..len) ("bar.1m.AAPL", "bar." included):
 * NULL for an interval the builder does not make, a symbol with no bar
 * yet, a key of another form, or no builder (pubsub_set_bars()). Borrowed
 * until the builder's next call. GET and the channel snapshot read bars
 * through here. */
const bar_t *pubsub__bar_of(const pubsub_t *ps, const char *key, size_t len);

/* ---- pubsub_conflate.c ---- */

#define CONFLATE_MIN_MS 10ull      /* the shortest interval, @10ms */
#define CONFLATE_MAX_MS 3600000ull /* the longest, @1h */

/* Splits a channel or pattern name into its base and its conflation
 * interval: "quote.AAPL@250ms" is base "quote.AAPL" (*base_len 10) every
 * 250 ms. 1 for a valid suffix, 0 for a name without '@' (not conflated:
 * *base_len is len), -EINVAL for an '@' whose suffix is not <n>ms, <n>s,
 * <n>m or <n>h between CONFLATE_MIN_MS and CONFLATE_MAX_MS, or with nothing
 * before it. What an entitlement check applies to is the base. */
int pubsub__conflate_suffix(const char *name, size_t len, size_t *base_len, uint64_t *interval_ms);

/* Makes topic t (just created, named base@interval) conflated and links
 * it to the channel topics whose ticks it takes; 0, or -ENOMEM with t
 * left as it was. pubsub__conflate_detach() drops its state and ticks,
 * and its interval (and stops the timer) when it was the last of that
 * interval; its links go with the topic. */
int pubsub__conflate_attach(pubsub_t *ps, topic_t *t, size_t base_len, uint64_t interval_ms);
void pubsub__conflate_detach(pubsub_t *ps, topic_t *t);

/* Notes tick in every conflated channel and pattern linked to its channel
 * topic ch. Called only when ch has such links (ch->ncf_links != 0). */
void pubsub__conflate_tick(pubsub_t *ps, const topic_t *ch, tick_t *tick);

/* Links the new channel topic ch to the conflated patterns whose base
 * matches its name; 0 or -ENOMEM. */
int pubsub__conflate_channel_new(pubsub_t *ps, topic_t *ch);

/* The flush timer: initialised with the server (one handle), closed by
 * pubsub_stop() with close_cb. */
void pubsub__conflate_init(pubsub_t *ps);
void pubsub__conflate_close(pubsub_t *ps, uv_close_cb close_cb);

/* pubsub.slow_consumer: conflate. _enter() puts c, past the soft limit,
 * in conflation: what it has queued and not in flight is taken out of the
 * fan-out stream, its quote frames collapsed to the latest per channel and
 * the rest copied (-ENOMEM dooms it). While in it, _enqueue() does the
 * same to each frame of the stream queued on it. _drained() is called when
 * c's ring is empty: it queues the pending quotes (1), or takes c out of
 * conflation when none are left (0). _free() drops the state (close). */
void pubsub__conflate_client_enter(client_t *c);
int pubsub__conflate_client_enqueue(client_t *c, payload_t *p, uint32_t off, uint32_t end);
int pubsub__conflate_client_drained(client_t *c);
void pubsub__conflate_client_free(client_t *c);

/* Frees a book copy a symbol's slot kept (symbol_slot_t.book; NULL: none):
 * pubsub__slots_release() does, for every slot ps owns. */
void pubsub__book_copy_free(pubsub_t *ps, void *copy);

/* ---- pubsub_info.c ---- */

void pubsub__cmd_info(client_t *c, size_t argc, const resp_arg_t *argv);
void pubsub__cmd_pubsub_channels(client_t *c, size_t argc, const resp_arg_t *argv);
void pubsub__cmd_pubsub_numsub(client_t *c, size_t argc, const resp_arg_t *argv);
void pubsub__cmd_pubsub_numpat(client_t *c, size_t argc, const resp_arg_t *argv);
void pubsub__cmd_pubsub_help(client_t *c, size_t argc, const resp_arg_t *argv);

/* ---- pubsub_acl.c ---- */

/* The users of cfg's pubsub.users in one heap block (*out NULL when there
 * are none); 0 or -ENOMEM. */
int pubsub__acl_build(heap_t *heap, const config_t *cfg, acl_t **out);
void pubsub__acl_free(heap_t *heap, acl_t *acl);

/* Whether user u (NULL: the default user, who may do everything) may
 * subscribe to or publish to (right) the channel name[0..len): one of its
 * patterns of that right matches it. The one rule of entitlements: a
 * conflated channel is checked by its base name. */
int pubsub__acl_may(const acl_user_t *u, enum acl_right right, const char *name, size_t len);
/* The length of name[0..len) without its conflation suffix (quote.AAPL of
 * quote.AAPL@1s): what the rules above are given. */
size_t pubsub__acl_base(const char *name, size_t len);
/* PSUBSCRIBE, as Redis 7: pat is one of u's subscribe patterns, byte for
 * byte. */
int pubsub__acl_may_pattern(const acl_user_t *u, const char *pat, size_t len);
/* GET, MGET, and KEYS and SCAN for each key they would list: the channel
 * the key reads (book.X[:n] reads quote.X). */
int pubsub__acl_may_read(const acl_user_t *u, const char *key, size_t len);

/* AUTH and HELLO AUTH (user NULL: AUTH <password>, the default user): 1
 * and the client authenticated as the user, or 0 with the failure logged,
 * counted and answered (now, after a delay, or with the close). */
int pubsub__acl_authenticate(client_t *c, const resp_arg_t *user, const resp_arg_t *password);
/* Takes c off the failed-AUTH wait (it is closing). */
void pubsub__acl_client_gone(client_t *c);
/* The users of cfg in force; clients whose rights narrowed are closed and
 * logged. 0 or -ENOMEM with a message. */
int pubsub__acl_reconfigure(pubsub_t *ps, const config_t *cfg, char *err, size_t errlen);

/* Redis 7.0's answers to a channel or a key the user may not touch. */
#define ACL_NOPERM_CHANNEL                                                                         \
    "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
#define ACL_NOPERM_KEY                                                                             \
    "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"

/* ---- pubsub.c ---- */

/* Bytes the kernel holds for c that the client has not received yet;
 * 0 when it cannot tell (an ioctl: never per tick). */
size_t pubsub__kernel_backlog(const client_t *c);
/* Runs the whole requests in data and keeps the rest (see pubsub.c). */
void pubsub__serve(client_t *c, const char *data, size_t len);
/* Reads c again; 0 or a libuv error. */
int pubsub__read_start(client_t *c);
void pubsub__client_close(client_t *c);

/* ---- inline: asked of every request ---- */

/* Whether c must AUTH before it may run a command that needs it. */
static inline int pubsub__auth_required(const client_t *c)
{
    return !(c->flags & CLIENT_AUTHED) && (c->ps->opt.password[0] != '\0' || c->ps->acl != NULL);
}

/* ---- the fan-out path, inline ---- */

/* c's output ring indices, for TICKD_ASSERT (alloc/assert.h): a capacity
 * that is a power of two and at least RING_INITIAL, the head inside it, no
 * more entries than it holds, the entries of the uv_write() in flight
 * among them, and the peak since the last housekeeping pass at least the
 * count. A few compares: cheap enough for every new entry and every write. */
static inline int pubsub__ring_ok(const client_t *c)
{
    return c->ring_cap >= RING_INITIAL && (c->ring_cap & (c->ring_cap - 1)) == 0 &&
           c->ring_head < c->ring_cap && c->ring_count <= c->ring_cap &&
           c->inflight <= c->ring_count && c->ring_peak >= c->ring_count;
}

/* The bytes c's ring entries hold, which c->queued keeps: a walk of the
 * ring, for TICKD_ASSERT off the fan-out path (housekeeping). */
static inline size_t pubsub__ring_bytes(const client_t *c)
{
    size_t n = 0;
    for (uint32_t i = 0; i < c->ring_count; i++) {
        const out_entry_t *e = &c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
        n += e->end - e->off;
    }
    return n;
}

static inline uint32_t pubsub__hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static inline topic_t *pubsub__table_find(const topic_table_t *t, const char *name, size_t len,
                                          uint32_t hash)
{
    for (topic_t *e = t->buckets[hash & t->mask]; e != NULL; e = e->next)
        if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

/* The topic of tick's channel, named name[0..n), or NULL when it has none:
 * from the tick's symbol's slot when the channel table has not changed since
 * ps filled it, without hashing the name. */
static inline topic_t *pubsub__channel_of(pubsub_t *ps, tick_t *tick, const char *name, size_t n)
{
    const symbol_slot_t *s = &tick->sym->slot;
    unsigned k = tick->kind - 1u;
    TICKD_ASSERT(k < 2);
    if (HEAP_LIKELY(s->owner == ps && s->version[k] == ps->channels_version))
        return s->ref[k];
    return pubsub__channel_lookup(ps, tick, name, n);
}

/* The protocol c's replies and messages are in (enum payload_proto). */
static inline int pubsub__client_proto(const client_t *c)
{
    return (c->flags & CLIENT_RESP3) != 0 ? PAYLOAD_RESP3 : PAYLOAD_RESP2;
}

/* Subscribers of t in protocol proto. */
static inline uint32_t pubsub__subs_in(const topic_t *t, int proto)
{
    return proto == PAYLOAD_RESP3 ? t->nsubs3 : t->nsubs - t->nsubs3;
}

static inline void pubsub__dirty_add(client_t *c)
{
    pubsub_t *ps = c->ps;
    if (c->flags & CLIENT_DIRTY)
        return;
    c->flags |= CLIENT_DIRTY;
    c->dirty_prev = NULL;
    c->dirty_next = ps->dirty;
    if (ps->dirty != NULL)
        ps->dirty->dirty_prev = c;
    ps->dirty = c;
}

/* Queues bytes [off, end) of p on c, taking a reference, or extending the
 * last entry when it ends where these bytes begin (and is not being
 * written): what a subscriber's ticks nearly always do, as they follow one
 * another in the fan-out's stream, so that case is inline. 0, or -EPIPE
 * when c takes no more output. The limits are applied once the socket has
 * been offered the output (pubsub__client_write(), housekeeping), never here: a
 * batch bigger than the hard limit is no reason to cut a client that
 * reads. */
static inline int pubsub__enqueue(client_t *c, payload_t *p, uint32_t off, uint32_t end)
{
    if (HEAP_LIKELY(c->ring_count > c->inflight &&
                    !(c->flags & (CLIENT_SLOW | CLIENT_CLOSED | CLIENT_CONFLATED)) &&
                    c->ps->reply_client != c)) {
        out_entry_t *e = &c->ring[(c->ring_head + c->ring_count - 1) & (c->ring_cap - 1)];
        if (HEAP_LIKELY(e->p == p && e->end == off)) {
            e->end = end;
            c->queued += end - off;
            c->ps->stats.output_buffer_bytes += end - off;
            pubsub__dirty_add(c);
            return 0;
        }
    }
    return pubsub__enqueue_entry(c, p, off, end);
}

#endif
