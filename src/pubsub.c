/*
 * pubsub.c - the RESP2/RESP3 pub/sub server: clients, commands, fan-out,
 * output.
 *
 * Clients. Each connection is a client_t on the loop. Bytes read go through
 * resp_parse(); a request cut short by the end of a read waits in the
 * client's input buffer (never more than pubsub.max_request bytes). Commands
 * are the subset of Redis that a subscriber needs, answered byte for byte as
 * Redis 7.0 answers them, errors included, so that redis-cli, hiredis,
 * redis-py, node-redis and ioredis work unchanged with their defaults.
 *
 * Protocols. A connection speaks RESP2 until HELLO 3 and again after
 * HELLO 2 or RESET (CLIENT_RESP3). What RESP3 changes here is small: the
 * (p)(un)subscribe confirmations and the message/pmessage frames are push
 * frames, '>' where RESP2 has '*'; a null is "_"; HELLO answers a map and
 * INFO a verbatim string; and a subscribed client may run any command
 * (PING then answers +PONG). HELLO and INFO name the server as Redis
 * REDIS_COMPAT_VERSION, the release whose pub/sub tickd matches; INFO's
 * tickd_version is tickd's own. tickd has one user, "default", whose
 * password is pubsub.password; no error reply ever repeats an argument
 * that held a credential.
 *
 * Registry. A channel or a pattern is a topic_t; channels and patterns each
 * have a hash table by name. A subscription (sub_t) links one client and one
 * topic and is listed on both sides, each list remembering its index in the
 * other, so SUBSCRIBE and UNSUBSCRIBE are O(1) apart from the duplicate check
 * (a scan of the shorter of the two lists). A pattern and each channel topic
 * it matches are linked the same way (match_t, listed on both), so a tick
 * reads its channel's patterns off a list and what a pattern costs is
 * proportional to what it matches. The links are made when the second of
 * the two topics comes: a new pattern makes one pass over the channel
 * topics (a byte compare of its literal prefix, the bytes before any
 * wildcard, before any glob); a new channel looks up only the patterns whose
 * literal prefix starts its name (patterns are grouped by that prefix, one
 * hash lookup per prefix length in use). Dropping either drops its links
 * and nothing else: adding or removing a pattern never rescans the other
 * patterns, nor any channel's. While patterns exist, a tick on a channel
 * nobody subscribed to creates its (empty) channel topic once, to hold those
 * links; when the last pattern goes, such topics are dropped. Every table
 * entry is allocated at (P)SUBSCRIBE time or on a channel's first tick:
 * never per tick in the steady state. Tables whose entries fall to a quarter
 * of their buckets give the buckets back, so a burst of topics leaves no
 * mapped memory behind once it is gone.
 *
 * Fan-out. pubsub_tick() returns at once when nothing at all is subscribed,
 * and after one hash lookup when nobody subscribed to the tick's channel and
 * there are no patterns. Otherwise the tick is encoded once and its frames
 * are written at the end of the fan-out stream (batch.h): the message frame,
 * and a whole pmessage frame for each matching pattern (the pattern's head
 * copied in front of the tick's channel and text; a pattern longer than
 * PATTERN_COPY_MAX is sent as its precomputed head plus the message frame's
 * tail instead). Each subscriber's output ring gets a reference to its frame
 * in the open span, and a reference that follows on from the ring's last
 * entry just extends it: a subscriber of one channel or one pattern holds
 * one entry per flush, written as one contiguous buffer. pubsub_flush()
 * seals the span once the writes are done.
 *
 * There is one stream per protocol. Every topic counts its RESP3
 * subscribers (nsubs3, kept by (un)subscribe and HELLO), and a tick's frames
 * go into the RESP3 stream only when a RESP3 client subscribes to its
 * channel or a matching pattern: the same frames with '>' first, written
 * once for all of them. Interleaving both variants in one stream would
 * break every subscriber's run of frames into one queue entry per tick;
 * with a stream each, a RESP3 subscriber's frames follow on just as a
 * RESP2 subscriber's do. A RESP2-only fan-out pays a sum of counts and a
 * flag test per subscriber, nothing more; the RESP3 stream then takes no
 * chunk at all. A tick's latency is observed once, in the first stream it
 * went to (the RESP2 one when it has subscribers in both). Snapshots on
 * subscribe are blocks of their own, framed for the subscriber's protocol.
 *
 * Output. A client's output is a ring of (payload, byte range) entries that
 * doubles when full (rare: a ring only grows past the size its client's
 * batches need while the client lags) and is cut back by the housekeeping
 * timer once it has used a quarter or less of itself for a whole pass.
 * Command replies are gathered in one scratch buffer per read and queued as
 * one payload. pubsub_flush() walks the clients with pending output (an
 * intrusive list, never all the clients) and writes each with one
 * uv_try_write() of up to IOV_BATCH buffers; what the socket does not take
 * is handed to uv_write() (at most four buffers, which libuv keeps without
 * allocating) and the client is skipped until its callback, which resumes
 * writing. Entries that belong to the uv_write() in flight are never
 * extended.
 *
 * Limits. They judge what a client fails to take, not what a batch puts in
 * front of it: a feed read can make a batch far bigger than the hard limit,
 * and a subscriber that reads must not be cut for it. So the hard limit
 * applies to what tickd still holds for a client once the socket has been
 * offered the output (after every write attempt, at every flush for a
 * client whose socket is full, and at every housekeeping pass): that is
 * tickd's memory at stake. Queued ticks share the stream's chunks, and a
 * chunk lives while anyone's entry points into it, so what a client holds
 * is its queued bytes or, when its oldest entry is in the stream,
 * everything the stream wrote since, whichever is more: a subscriber of a
 * quiet channel that stops reading cannot pin the busy channels' chunks
 * for longer than the hard limit's worth of fan-out. Snapshots are
 * judged while they are made. A pattern's snapshot walks the market in
 * steps: what the read that asked for it may spend, then a step a loop
 * turn while the client holds less than SNAPSHOT_PAUSE, so no request
 * stalls the loop or piles up output however many patterns it names
 * (snapshot_pattern()). What a read does build at once is held to the hard
 * limit there and then: over it, the socket is offered the client's
 * output, and a client still over the limit is cut and the rest of its
 * request dropped. The soft limit asks whether the client keeps up at all:
 * the housekeeping timer samples what it has not received yet, tickd's
 * queue plus the kernel's (SIOCOUTQ), and a client over the limit at every
 * pass for output_soft_seconds is cut; one that reads through a burst is
 * not. Either way the client is marked and disconnected once the work at
 * hand is over: nobody ever waits for it.
 *
 * Housekeeping. A timer (at most every second, more often when idle_timeout
 * or output_soft_seconds is short) closes idle clients (never subscribers),
 * samples the soft limit, and trims output rings.
 *
 * Never blocks, never allocates from the system allocator per tick; every
 * buffer, table and client comes from the daemon's heap.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "feed/digits.h"
#include "batch.h"
#include "clock.h"
#include "glob.h"
#include "payload.h"
#include "process.h"
#include "pubsub.h"
#include "resp.h"

#define LISTEN_BACKLOG   511
#define READ_BUF_SIZE    (64 * 1024)
#define IOV_BATCH        128 /* buffers per uv_try_write() */
#define WRITE_BUFS       4   /* buffers per uv_write(): libuv keeps four without allocating */
#define RING_INITIAL     16  /* output ring entries of a new client, and the least kept */
#define INPUT_KEEP       (16 * 1024) /* an emptied input buffer bigger than this is freed */
#define REPLY_SCRATCH    (16 * 1024) /* replies gathered before they become a payload */
#define TABLE_INITIAL    64
#define HOUSEKEEPING_MS  1000 /* at most; shorter when idle_timeout or soft_seconds is */
#define ERROR_TEXT_MAX   512
#define PATTERN_COPY_MAX 128   /* pmessage heads up to this long are copied into each frame */
#define INFO_TEXT_MAX    4096  /* the longest INFO report, with room to spare */
#define HELD_MAX         16384 /* PUBLISH replies held for the journal before tickd stops reading */
#define HELD_TIMEOUT_MS  10000 /* a reply held longer than this becomes a journal error */
#define PREFIX_LENS      64    /* prefix lengths counted one by one; longer ones share the last */
#define SNAPSHOT_STEP    4096  /* symbol table slots a pattern snapshot looks at per loop turn */
#define SNAPSHOT_READ    (4 * SNAPSHOT_STEP) /* ... and at most in the read that asked for it */
#define SNAPSHOT_PAUSE   (256 * 1024) /* a client holding more waits for its socket to drain */

/* What HELLO and INFO say the server is: the Redis release whose pub/sub
 * tickd answers as, byte for byte (RESP3 push frames, RESET, the 7.0 error
 * texts); tickd's own version is INFO's tickd_version. */
#define REDIS_COMPAT_VERSION "7.0.0"

static const char max_clients_error[] = "-ERR max number of clients reached\r\n";

typedef struct client client_t;
typedef struct topic topic_t;

typedef struct snapshot_job snapshot_job_t;

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
 * table to keep the lists true. */
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
     * made when it first has a frame to send (pattern_heads()). */
    payload_t *head[PAYLOAD_NPROTO];
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
    CLIENT_AUTHED = 1 << 0,   /* AUTH succeeded, or no password when it connected */
    CLIENT_CLOSING = 1 << 1,  /* QUIT, protocol error or stop: close once the output is out */
    CLIENT_CLOSED = 1 << 2,   /* uv_close() called; freed in its callback */
    CLIENT_WRITING = 1 << 3,  /* a uv_write() is in flight: flushes skip the client */
    CLIENT_DIRTY = 1 << 4,    /* on the server's dirty list */
    CLIENT_SLOW = 1 << 5,     /* over an output limit: on the doomed list */
    CLIENT_SOFT = 1 << 6,     /* over the soft limit at every pass since soft_since_ms */
    CLIENT_COUNTED = 1 << 7,  /* counted in stats.clients (not a refused connection) */
    CLIENT_HELD = 1 << 8,     /* PUBLISH replies wait for the journal: output waits with them */
    CLIENT_RESP3 = 1 << 9,    /* HELLO 3: replies and messages in RESP3 (RESET ends it) */
    CLIENT_PAUSED = 1 << 10,  /* not read: HELD_MAX replies held, or CLIENT_WAITING */
    CLIENT_WAITING = 1 << 11, /* a PUBLISH waits in `in` for room in the journal */
    CLIENT_RETRY = 1 << 12,   /* ... and is run again now (pubsub_journal_ready()) */
    CLIENT_NO_WAIT = 1 << 13, /* ... and waited HELD_TIMEOUT_MS: it gets the error instead */
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
    /* What the fan-out touches for every tick and subscriber (enqueue(),
     * dirty_add()), together at the front: one or two cache lines a
     * subscriber instead of three. Output: ring[(head + i) & (cap - 1)] for
     * i < count; the first inflight entries belong to the uv_write() in
     * flight. */
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

    topic_table_t channels;
    topic_table_t patterns;
    group_table_t groups; /* the patterns by literal prefix */

    pubsub_stats_t stats;
    histogram_t latency;
    batch_t batch[PAYLOAD_NPROTO]; /* the fan-out streams: every tick's frames, per protocol */

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
    char *rbuf; /* READ_BUF_SIZE: every read lands here */

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

static void client_close(client_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void serve(client_t *c, const char *data, size_t len);
static void client_write(client_t *c);
static void on_snapshots(uv_idle_t *h);

/* ---- memory ---- */

static void *zalloc(heap_t *heap, size_t size)
{
    void *p = heap_alloc(heap, size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

/* Makes room for need elements of size elem in *arr (capacity *cap),
 * doubling. 0 or -ENOMEM. */
static int grow(heap_t *heap, void **arr, uint32_t *cap, size_t elem, uint32_t need)
{
    if (need <= *cap)
        return 0;
    uint32_t ncap = *cap != 0 ? *cap : 4;
    while (ncap < need)
        ncap *= 2;
    void *n = heap_alloc(heap, (size_t)ncap * elem);
    if (n == NULL)
        return -ENOMEM;
    if (*arr != NULL) {
        memcpy(n, *arr, (size_t)*cap * elem);
        heap_free(heap, *arr);
    }
    *arr = n;
    *cap = ncap;
    return 0;
}

/* ---- topics ---- */

static uint32_t hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int table_init(heap_t *heap, topic_table_t *t)
{
    t->buckets = zalloc(heap, TABLE_INITIAL * sizeof(topic_t *));
    t->mask = TABLE_INITIAL - 1;
    t->count = 0;
    return t->buckets != NULL ? 0 : -ENOMEM;
}

static topic_t *table_find(const topic_table_t *t, const char *name, size_t len, uint32_t hash)
{
    for (topic_t *e = t->buckets[hash & t->mask]; e != NULL; e = e->next)
        if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

/* Rehashes t into nmask + 1 buckets. 0 or -ENOMEM (t unchanged). */
static int table_resize(heap_t *heap, topic_table_t *t, uint32_t nmask)
{
    topic_t **nb = zalloc(heap, ((size_t)nmask + 1) * sizeof(topic_t *));
    if (nb == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i <= t->mask; i++) {
        topic_t *x = t->buckets[i];
        while (x != NULL) {
            topic_t *next = x->next;
            x->next = nb[x->hash & nmask];
            nb[x->hash & nmask] = x;
            x = next;
        }
    }
    heap_free(heap, t->buckets);
    t->buckets = nb;
    t->mask = nmask;
    return 0;
}

static int table_insert(heap_t *heap, topic_table_t *t, topic_t *e)
{
    if (t->count > t->mask && table_resize(heap, t, t->mask * 2 + 1) != 0)
        return -ENOMEM;
    e->next = t->buckets[e->hash & t->mask];
    t->buckets[e->hash & t->mask] = e;
    t->count++;
    return 0;
}

/* Never resizes: the callers may be walking the buckets. */
static void table_remove(topic_table_t *t, topic_t *e)
{
    topic_t **pp = &t->buckets[e->hash & t->mask];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    t->count--;
}

/* Gives back the buckets of a table that has fallen to a quarter of them
 * (what a burst of topics grew stays mapped otherwise). Called where no
 * one walks the table; on no memory the table keeps its size. */
static void table_shrink(heap_t *heap, topic_table_t *t)
{
    uint32_t nmask = t->mask;
    while (nmask + 1 > TABLE_INITIAL && (uint64_t)t->count * 4 <= nmask)
        nmask /= 2;
    if (nmask != t->mask)
        table_resize(heap, t, nmask);
}

/* ---- pattern prefix groups ---- */

/* The literal prefix of a pattern: the bytes before its first * ? [ or \. */
static size_t literal_prefix(const char *pat, size_t len)
{
    size_t i = 0;
    while (i < len && pat[i] != '*' && pat[i] != '?' && pat[i] != '[' && pat[i] != '\\')
        i++;
    return i;
}

static inline uint32_t prefix_slot(size_t len)
{
    return len < PREFIX_LENS ? (uint32_t)len : PREFIX_LENS - 1;
}

static prefix_group_t *group_find(const group_table_t *g, const char *name, size_t len,
                                  uint32_t hash)
{
    for (prefix_group_t *e = g->buckets[hash & g->mask]; e != NULL; e = e->next)
        if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

/* Rehashes g into nmask + 1 buckets. 0 or -ENOMEM (g unchanged). */
static int group_resize(heap_t *heap, group_table_t *g, uint32_t nmask)
{
    prefix_group_t **nb = zalloc(heap, ((size_t)nmask + 1) * sizeof(prefix_group_t *));
    if (nb == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; g->buckets != NULL && i <= g->mask; i++) {
        prefix_group_t *x = g->buckets[i];
        while (x != NULL) {
            prefix_group_t *next = x->next;
            x->next = nb[x->hash & nmask];
            nb[x->hash & nmask] = x;
            x = next;
        }
    }
    heap_free(heap, g->buckets);
    g->buckets = nb;
    g->mask = nmask;
    return 0;
}

/* Puts pattern p in the group of its literal prefix, making the group if
 * it is the first. 0 or -ENOMEM. */
static int group_add(pubsub_t *ps, topic_t *p)
{
    group_table_t *g = &ps->groups;
    size_t len = literal_prefix(p->name, p->len);
    uint32_t hash = hash_name(p->name, len);
    prefix_group_t *e = group_find(g, p->name, len, hash);

    if (e == NULL) {
        if (g->count > g->mask && group_resize(ps->heap, g, g->mask * 2 + 1) != 0)
            return -ENOMEM;
        e = heap_alloc(ps->heap, sizeof(prefix_group_t) + len);
        if (e == NULL)
            return -ENOMEM;
        memcpy(e->name, p->name, len);
        e->len = (uint32_t)len;
        e->hash = hash;
        e->first = NULL;
        e->next = g->buckets[hash & g->mask];
        g->buckets[hash & g->mask] = e;
        g->count++;
        g->lens[prefix_slot(len)]++;
    }
    p->group = e;
    p->group_prev = NULL;
    p->group_next = e->first;
    if (e->first != NULL)
        e->first->group_prev = p;
    e->first = p;
    return 0;
}

/* Takes pattern p out of its group, dropping the group when it empties and
 * the table's buckets when they fall to a quarter. */
static void group_remove(pubsub_t *ps, topic_t *p)
{
    group_table_t *g = &ps->groups;
    prefix_group_t *e = p->group;

    if (e == NULL)
        return;
    if (p->group_prev != NULL)
        p->group_prev->group_next = p->group_next;
    else
        e->first = p->group_next;
    if (p->group_next != NULL)
        p->group_next->group_prev = p->group_prev;
    p->group = NULL;
    if (e->first != NULL)
        return;
    prefix_group_t **pp = &g->buckets[e->hash & g->mask];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    g->count--;
    g->lens[prefix_slot(e->len)]--;
    heap_free(ps->heap, e);
    uint32_t nmask = g->mask;
    while (nmask + 1 > TABLE_INITIAL && (uint64_t)g->count * 4 <= nmask)
        nmask /= 2;
    if (nmask != g->mask)
        group_resize(ps->heap, g, nmask);
}

/* ---- matches ---- */

/* Makes pattern p's pmessage heads, the first time it has a frame to send
 * (a channel it matches, a snapshot): a pattern that matches nothing has
 * none. Besides their cost, heads made for every pattern at PSUBSCRIBE
 * would share pools with the ticks of their size made meanwhile, and a
 * tick that outlives the patterns as a last value would then keep one of
 * their pools, and its arena, mapped each. 0 or -ENOMEM. */
static int pattern_heads(pubsub_t *ps, topic_t *p)
{
    for (int v = 0; v < PAYLOAD_NPROTO; v++)
        if (p->head[v] == NULL &&
            payload_pattern_head(ps->heap, p->name, p->len, v, &p->head[v]) != 0)
            return -ENOMEM;
    return 0;
}

/* Records that pattern p matches channel ch. 0 or -ENOMEM. */
static int match_add(pubsub_t *ps, topic_t *p, topic_t *ch)
{
    match_t *m = heap_alloc(ps->heap, sizeof(match_t));
    if (m == NULL || pattern_heads(ps, p) != 0 ||
        grow(ps->heap, (void **)&p->matches, &p->matches_cap, sizeof(match_t *), p->nmatches + 1) !=
            0 ||
        grow(ps->heap, (void **)&ch->matches, &ch->matches_cap, sizeof(match_t *),
             ch->nmatches + 1) != 0) {
        heap_free(ps->heap, m);
        return -ENOMEM;
    }
    m->pattern = p;
    m->channel = ch;
    m->pattern_idx = p->nmatches;
    m->channel_idx = ch->nmatches;
    p->matches[p->nmatches++] = m;
    ch->matches[ch->nmatches++] = m;
    return 0;
}

static void match_remove(pubsub_t *ps, match_t *m)
{
    topic_t *p = m->pattern, *ch = m->channel;

    p->matches[m->pattern_idx] = p->matches[--p->nmatches];
    p->matches[m->pattern_idx]->pattern_idx = m->pattern_idx;
    ch->matches[m->channel_idx] = ch->matches[--ch->nmatches];
    ch->matches[m->channel_idx]->channel_idx = m->channel_idx;
    heap_free(ps->heap, m);
}

/* Links a new pattern to the channel topics it matches: one pass over the
 * channels, at PSUBSCRIBE, with a byte compare of the literal prefix before
 * any glob. 0 or -ENOMEM (the caller frees the pattern and its links). */
static int pattern_link(pubsub_t *ps, topic_t *p)
{
    size_t pre = literal_prefix(p->name, p->len);
    for (uint32_t i = 0; i <= ps->channels.mask; i++)
        for (topic_t *ch = ps->channels.buckets[i]; ch != NULL; ch = ch->next)
            if (ch->len >= pre && memcmp(ch->name, p->name, pre) == 0 &&
                glob_match(p->name, p->len, ch->name, ch->len) && match_add(ps, p, ch) != 0)
                return -ENOMEM;
    return 0;
}

/* Links a new channel topic to the patterns matching its name: only those
 * whose literal prefix starts the name are tried, found by looking up each
 * of the name's prefixes that some group has the length of. 0 or -ENOMEM
 * (the caller frees the channel and its links). */
static int channel_link(pubsub_t *ps, topic_t *ch)
{
    const group_table_t *g = &ps->groups;
    uint32_t h = 2166136261u; /* hash_name() of the first k bytes, as k grows */

    for (size_t k = 0; k <= ch->len; k++) {
        if (k > 0)
            h = (h ^ (unsigned char)ch->name[k - 1]) * 16777619u;
        if (g->lens[prefix_slot(k)] == 0)
            continue;
        prefix_group_t *e = group_find(g, ch->name, k, h);
        for (topic_t *p = e != NULL ? e->first : NULL; p != NULL; p = p->group_next)
            if (glob_match(p->name, p->len, ch->name, ch->len) && match_add(ps, p, ch) != 0)
                return -ENOMEM;
    }
    return 0;
}

static void topic_free(pubsub_t *ps, topic_t *e)
{
    table_remove(e->is_pattern ? &ps->patterns : &ps->channels, e);
    while (e->nmatches > 0)
        match_remove(ps, e->matches[e->nmatches - 1]);
    if (e->is_pattern) {
        group_remove(ps, e);
        for (int v = 0; v < PAYLOAD_NPROTO; v++)
            if (e->head[v] != NULL)
                payload_release(ps->heap, &ps->latency, e->head[v]);
    }
    heap_free(ps->heap, e->subs);
    heap_free(ps->heap, e->matches);
    heap_free(ps->heap, e);
}

/* A new channel or pattern topic, in its table and linked to the topics of
 * the other kind that it matches. 0 or -ENOMEM. */
static int topic_create(pubsub_t *ps, int is_pattern, const char *name, size_t len, uint32_t hash,
                        topic_t **out)
{
    topic_t *e = zalloc(ps->heap, sizeof(topic_t) + len + 1);
    if (e == NULL)
        return -ENOMEM;
    memcpy(e->name, name, len);
    e->len = (uint32_t)len;
    e->hash = hash;
    e->is_pattern = (uint8_t)is_pattern;
    if (table_insert(ps->heap, is_pattern ? &ps->patterns : &ps->channels, e) != 0) {
        heap_free(ps->heap, e);
        return -ENOMEM;
    }
    int r = is_pattern ? group_add(ps, e) : 0;
    if (r == 0)
        r = is_pattern ? pattern_link(ps, e) : ps->patterns.count > 0 ? channel_link(ps, e) : 0;
    if (r != 0) {
        topic_free(ps, e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

/* Drops the channel topics that only held a pattern cache: called when the
 * last pattern went away. */
static void sweep_channels(pubsub_t *ps)
{
    for (uint32_t i = 0; i <= ps->channels.mask; i++) {
        topic_t *e = ps->channels.buckets[i];
        while (e != NULL) {
            topic_t *next = e->next;
            if (e->nsubs == 0)
                topic_free(ps, e);
            e = next;
        }
    }
    table_shrink(ps->heap, &ps->channels);
}

/* ---- subscriptions ---- */

/* The protocol c's replies and messages are in (enum payload_proto). */
static inline int client_proto(const client_t *c)
{
    return (c->flags & CLIENT_RESP3) != 0 ? PAYLOAD_RESP3 : PAYLOAD_RESP2;
}

/* Subscribers of t in protocol proto. */
static inline uint32_t subs_in(const topic_t *t, int proto)
{
    return proto == PAYLOAD_RESP3 ? t->nsubs3 : t->nsubs - t->nsubs3;
}

static sub_t *sub_find(const client_t *c, const topic_t *t)
{
    if (c->nsubs <= t->nsubs) {
        for (uint32_t i = 0; i < c->nsubs; i++)
            if (c->subs[i]->topic == t)
                return c->subs[i];
    } else {
        for (uint32_t i = 0; i < t->nsubs; i++)
            if (t->subs[i]->client == c)
                return t->subs[i];
    }
    return NULL;
}

/* Subscribes c to the channel or pattern name. 1 if new, 0 if c already
 * was, -ENOMEM. *topic is the topic either way. */
static int sub_add(client_t *c, int is_pattern, const char *name, size_t len, topic_t **topic)
{
    pubsub_t *ps = c->ps;
    uint32_t hash = hash_name(name, len);
    topic_t *t = table_find(is_pattern ? &ps->patterns : &ps->channels, name, len, hash);
    int created = 0;

    if (t == NULL) {
        if (topic_create(ps, is_pattern, name, len, hash, &t) != 0)
            return -ENOMEM;
        created = 1;
    } else if (sub_find(c, t) != NULL) {
        *topic = t;
        return 0;
    }
    sub_t *s = heap_alloc(ps->heap, sizeof(sub_t));
    if (s == NULL ||
        grow(ps->heap, (void **)&c->subs, &c->subs_cap, sizeof(sub_t *), c->nsubs + 1) != 0 ||
        grow(ps->heap, (void **)&t->subs, &t->subs_cap, sizeof(sub_t *), t->nsubs + 1) != 0) {
        heap_free(ps->heap, s);
        if (created)
            topic_free(ps, t);
        return -ENOMEM;
    }
    s->client = c;
    s->topic = t;
    s->job = NULL;
    s->client_idx = c->nsubs;
    s->topic_idx = t->nsubs;
    c->subs[c->nsubs++] = s;
    t->subs[t->nsubs++] = s;
    t->nsubs3 += client_proto(c) == PAYLOAD_RESP3;
    ps->stats.subscriptions++;
    *topic = t;
    return 1;
}

/* Takes job j off its client's list and frees it. */
static void job_drop(client_t *c, snapshot_job_t *j)
{
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        c->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    else
        c->jobs_tail = j->prev;
    j->sub->job = NULL;
    heap_free(c->ps->heap, j);
}

static void sub_remove(pubsub_t *ps, sub_t *s)
{
    client_t *c = s->client;
    topic_t *t = s->topic;

    if (HEAP_UNLIKELY(s->job != NULL))
        job_drop(c, s->job); /* no pmessage of it after the reply that ends it */
    c->subs[s->client_idx] = c->subs[--c->nsubs];
    c->subs[s->client_idx]->client_idx = s->client_idx;
    t->subs[s->topic_idx] = t->subs[--t->nsubs];
    t->subs[s->topic_idx]->topic_idx = s->topic_idx;
    t->nsubs3 -= client_proto(c) == PAYLOAD_RESP3;
    heap_free(ps->heap, s);
    ps->stats.subscriptions--;
    if (t->nsubs == 0 && (t->is_pattern || ps->patterns.count == 0)) {
        topic_table_t *table = t->is_pattern ? &ps->patterns : &ps->channels;
        int was_pattern = t->is_pattern;
        topic_free(ps, t);
        table_shrink(ps->heap, table);
        if (was_pattern && ps->patterns.count == 0)
            sweep_channels(ps);
    }
}

static uint32_t client_count_subs(const client_t *c, int is_pattern)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->nsubs; i++)
        n += c->subs[i]->topic->is_pattern == is_pattern;
    return n;
}

/* Switches c to protocol proto (HELLO), moving its subscriptions between
 * their topics' counts of RESP2 and RESP3 subscribers. */
static void client_set_proto(client_t *c, int proto)
{
    if (client_proto(c) == proto)
        return;
    for (uint32_t i = 0; i < c->nsubs; i++) {
        topic_t *t = c->subs[i]->topic;
        if (proto == PAYLOAD_RESP3)
            t->nsubs3++;
        else
            t->nsubs3--;
    }
    if (proto == PAYLOAD_RESP3)
        c->flags |= CLIENT_RESP3;
    else
        c->flags &= ~CLIENT_RESP3;
}

/* Drops every subscription of c, without replies. */
static void unsubscribe_quietly(client_t *c)
{
    while (c->nsubs > 0)
        sub_remove(c->ps, c->subs[c->nsubs - 1]);
}

/* ---- output queue ---- */

static void dirty_add(client_t *c)
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

static void dirty_remove(client_t *c)
{
    if (!(c->flags & CLIENT_DIRTY))
        return;
    c->flags &= ~CLIENT_DIRTY;
    if (c->dirty_prev != NULL)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        c->ps->dirty = c->dirty_next;
    if (c->dirty_next != NULL)
        c->dirty_next->dirty_prev = c->dirty_prev;
}

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

static void held_remove(client_t *c)
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

/* Marks c to be disconnected as a slow consumer once the work at hand (a
 * fan-out, a command) is over. */
static void doom(client_t *c)
{
    if (c->flags & (CLIENT_SLOW | CLIENT_CLOSED))
        return;
    c->flags |= CLIENT_SLOW;
    c->doomed_next = c->ps->doomed;
    c->ps->doomed = c;
}

static void reap_slow(pubsub_t *ps)
{
    client_t *c;
    while ((c = ps->doomed) != NULL) {
        ps->doomed = c->doomed_next;
        c->flags &= ~CLIENT_SLOW;
        ps->stats.slow_consumer_disconnects_total++;
        client_close(c);
    }
}

/* Doubles the ring, keeping the entries in order from index 0. */
static int ring_grow(client_t *c)
{
    heap_t *heap = c->ps->heap;
    uint32_t ncap = c->ring_cap * 2;
    out_entry_t *n = heap_alloc(heap, (size_t)ncap * sizeof(out_entry_t));
    if (n == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < c->ring_count; i++)
        n[i] = c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
    heap_free(heap, c->ring);
    c->ring = n;
    c->ring_cap = ncap;
    c->ring_head = 0;
    return 0;
}

/* Gives back most of a ring that a burst grew and that has been using a
 * quarter of it or less since the last pass: growing stays rare for a client
 * whose batches are regularly big, and a lull frees the memory. */
static void ring_shrink(client_t *c)
{
    uint32_t cap = RING_INITIAL;
    while (cap < 2 * c->ring_peak)
        cap *= 2;
    if (c->ring_count == 0 && !(c->flags & CLIENT_WRITING) && cap * 4 <= c->ring_cap) {
        out_entry_t *small = heap_alloc(c->ps->heap, cap * sizeof(out_entry_t));
        if (small != NULL) {
            heap_free(c->ps->heap, c->ring);
            c->ring = small;
            c->ring_cap = cap;
            c->ring_head = 0;
        }
    }
    c->ring_peak = c->ring_count;
}

static void reply_seal(pubsub_t *ps);

/* enqueue() for bytes that do not continue c's last entry: a new entry, and
 * the checks that come with one. */
static int enqueue_entry(client_t *c, payload_t *p, uint32_t off, uint32_t end)
{
    pubsub_t *ps = c->ps;

    if (HEAP_UNLIKELY(c->flags & (CLIENT_SLOW | CLIENT_CLOSED)))
        return -EPIPE;
    if (HEAP_UNLIKELY(ps->reply_client == c))
        reply_seal(ps); /* replies gathered so far go first */
    if (HEAP_UNLIKELY(c->ring_count == c->ring_cap) && ring_grow(c) != 0) {
        doom(c);
        return -EPIPE;
    }
    out_entry_t *e = &c->ring[(c->ring_head + c->ring_count) & (c->ring_cap - 1)];
    e->p = p;
    e->off = off;
    e->end = end;
    payload_incref(p);
    if (++c->ring_count > c->ring_peak)
        c->ring_peak = c->ring_count;
    c->queued += end - off;
    ps->stats.output_buffer_bytes += end - off;
    dirty_add(c);
    return 0;
}

/* Queues bytes [off, end) of p on c, taking a reference, or extending the
 * last entry when it ends where these bytes begin (and is not being
 * written): what a subscriber's ticks nearly always do, as they follow one
 * another in the fan-out's stream, so that case is inline. 0, or -EPIPE
 * when c takes no more output. The limits are applied once the socket has
 * been offered the output (client_write(), housekeeping), never here: a
 * batch bigger than the hard limit is no reason to cut a client that
 * reads. */
static inline int enqueue(client_t *c, payload_t *p, uint32_t off, uint32_t end)
{
    if (HEAP_LIKELY(c->ring_count > c->inflight && !(c->flags & (CLIENT_SLOW | CLIENT_CLOSED)) &&
                    c->ps->reply_client != c)) {
        out_entry_t *e = &c->ring[(c->ring_head + c->ring_count - 1) & (c->ring_cap - 1)];
        if (HEAP_LIKELY(e->p == p && e->end == off)) {
            e->end = end;
            c->queued += end - off;
            c->ps->stats.output_buffer_bytes += end - off;
            dirty_add(c);
            return 0;
        }
    }
    return enqueue_entry(c, p, off, end);
}

/* Has the snapshot runner look at the clients with snapshot work. */
static void snapshots_wake(pubsub_t *ps)
{
    if (!ps->stopping && !uv_is_active((uv_handle_t *)&ps->snapshots))
        uv_idle_start(&ps->snapshots, on_snapshots);
}

/* Takes bytes written off the front of c's ring; fully written entries are
 * released, a tick's buffer first stamped with the time of the write. */
static void consume(client_t *c, size_t bytes, int64_t *now)
{
    pubsub_t *ps = c->ps;

    if (HEAP_UNLIKELY(c->jobs != NULL) && c->queued - bytes <= SNAPSHOT_PAUSE)
        snapshots_wake(ps); /* its socket drains: its snapshots may go on */
    c->queued -= bytes;
    ps->stats.output_buffer_bytes -= bytes;
    while (bytes > 0) {
        out_entry_t *e = &c->ring[c->ring_head];
        size_t n = e->end - e->off;
        if (bytes < n) {
            e->off += (uint32_t)bytes;
            break;
        }
        bytes -= n;
        if (e->p->flags & PAYLOAD_TICK) {
            if (*now < 0)
                *now = clock_realtime_ns();
            e->p->ts_written = *now;
            e->p->flags |= PAYLOAD_WRITTEN;
        }
        payload_release(ps->heap, &ps->latency, e->p);
        c->ring_head = (c->ring_head + 1) & (c->ring_cap - 1);
        c->ring_count--;
    }
}

/* Fills iov with up to max entries from the front of c's ring. Returns the
 * number of buffers; *bytes gets their total. */
static unsigned fill_iov(const client_t *c, uv_buf_t *iov, unsigned max, size_t *bytes)
{
    unsigned n = c->ring_count < max ? c->ring_count : max;
    *bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        const out_entry_t *e = &c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
        iov[i] = uv_buf_init(e->p->data + e->off, e->end - e->off);
        *bytes += e->end - e->off;
    }
    return n;
}

static void on_write(uv_write_t *req, int status)
{
    client_t *c = req->data;
    int64_t now = -1;
    size_t bytes = 0;

    c->flags &= ~CLIENT_WRITING;
    if (status < 0) {
        client_close(c); /* no-op when the write was cancelled by a close */
        return;
    }
    for (uint32_t i = 0; i < c->inflight; i++) {
        const out_entry_t *e = &c->ring[(c->ring_head + i) & (c->ring_cap - 1)];
        bytes += e->end - e->off;
    }
    c->inflight = 0;
    consume(c, bytes, &now);
    client_write(c);
    reap_slow(c->ps);
}

/* What tickd holds for c: its queued bytes or, when the oldest of them is
 * in the stream, all that the stream wrote since (every chunk from there on
 * lives while c's entry does), whichever is more. */
static size_t held_bytes(const client_t *c)
{
    size_t held = c->queued;
    if (c->ring_count == 0)
        return held;
    const out_entry_t *e = &c->ring[c->ring_head];
    if (e->p->chunk != NULL) {
        uint64_t since = batch_position(e->p->chunk->owner) - (e->p->pos + e->off);
        if (since > held)
            held = (size_t)since;
    }
    return held;
}

/* The hard limit, on what tickd still holds for c after offering it to the
 * socket: over it, c is marked for disconnection. */
static void over_hard_limit(client_t *c)
{
    size_t hard = c->ps->opt.hard_limit;
    if (hard != 0 && held_bytes(c) > hard)
        doom(c);
}

/* Writes as much of c's output as the socket takes now; the rest goes to a
 * uv_write() and counts against the hard limit. Closes c once a closing
 * client's output is out. */
static void client_write(client_t *c)
{
    uv_buf_t iov[IOV_BATCH];
    int64_t now = -1;
    size_t total;

    if (c->flags & CLIENT_CLOSED)
        return;
    if (c->nheld != 0)
        return; /* a PUBLISH reply waits for the journal: so does what follows it */
    if (c->flags & CLIENT_WRITING) {
        over_hard_limit(c);
        return;
    }
    while (c->ring_count > 0) {
        unsigned n = fill_iov(c, iov, IOV_BATCH, &total);
        int r = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
        if (r == UV_EAGAIN) {
            r = 0;
        } else if (r < 0) {
            client_close(c);
            return;
        }
        consume(c, (size_t)r, &now);
        if ((size_t)r < total) {
            n = fill_iov(c, iov, WRITE_BUFS, &total);
            c->wreq.data = c;
            if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, iov, n, on_write) != 0) {
                client_close(c);
                return;
            }
            c->inflight = n;
            c->flags |= CLIENT_WRITING;
            over_hard_limit(c);
            return;
        }
    }
    if (c->flags & CLIENT_CLOSING)
        client_close(c);
}

/* ---- replies ---- */

/* Queues the replies gathered in the scratch as one payload. */
static void reply_seal(pubsub_t *ps)
{
    client_t *c = ps->reply_client;
    size_t n = ps->reply_len;

    ps->reply_client = NULL;
    ps->reply_len = 0;
    if (c == NULL || n == 0)
        return;
    payload_t *p = payload_alloc(ps->heap, n);
    if (p == NULL) {
        doom(c); /* a reply lost would desynchronise the client */
        return;
    }
    memcpy(p->data, ps->reply, n);
    p->len = (uint32_t)n;
    enqueue(c, p, 0, p->len);
    payload_release(ps->heap, &ps->latency, p);
}

static void reply_raw(client_t *c, const char *s, size_t n)
{
    pubsub_t *ps = c->ps;

    if (ps->reply_client != c) {
        reply_seal(ps);
        ps->reply_client = c;
    }
    if (ps->reply_len + n > REPLY_SCRATCH) {
        reply_seal(ps);
        if (n > REPLY_SCRATCH) {
            payload_t *p = payload_alloc(ps->heap, n);
            if (p == NULL) {
                doom(c);
                return;
            }
            memcpy(p->data, s, n);
            p->len = (uint32_t)n;
            enqueue(c, p, 0, p->len);
            payload_release(ps->heap, &ps->latency, p);
            return;
        }
        ps->reply_client = c;
    }
    memcpy(ps->reply + ps->reply_len, s, n);
    ps->reply_len += n;
}

static void reply_str(client_t *c, const char *s)
{
    reply_raw(c, s, strlen(s));
}

/* "<prefix><n>\r\n": ":5", "$3", "*2" into buf (NUMBER_MAX bytes); returns
 * its length. Digits by hand: every PUBLISH replies with one. */
#define NUMBER_MAX 24 /* prefix, sign, 20 digits, CRLF */
static size_t format_number(char *buf, char prefix, long long n)
{
    char *w = buf;
    *w++ = prefix;
    if (n < 0)
        *w++ = '-';
    w = digits_u64(w, n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n);
    *w++ = '\r';
    *w++ = '\n';
    return (size_t)(w - buf);
}

static void reply_number(client_t *c, char prefix, long long n)
{
    char buf[NUMBER_MAX];
    reply_raw(c, buf, format_number(buf, prefix, n));
}

static void reply_bulk(client_t *c, const char *s, size_t n)
{
    reply_number(c, '$', (long long)n);
    reply_raw(c, s, n);
    reply_raw(c, "\r\n", 2);
}

/* "-<text>\r\n", with any CR or LF in the text turned into spaces as Redis
 * does, so that an echoed argument cannot break the framing. */
static void reply_error(client_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(client_t *c, const char *fmt, ...)
{
    char buf[ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + 1, sizeof buf - 3, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf - 3 ? (size_t)n : sizeof buf - 4;
    buf[0] = '-';
    for (size_t i = 1; i <= len; i++)
        if (buf[i] == '\r' || buf[i] == '\n')
            buf[i] = ' ';
    buf[len + 1] = '\r';
    buf[len + 2] = '\n';
    reply_raw(c, buf, len + 3);
}

/* The head of a reply to (P)(UN)SUBSCRIBE: *3 $<kind>, or >3 (a push
 * frame) in RESP3. */
static void reply_subscription_head(client_t *c, const char *kind)
{
    reply_raw(c, client_proto(c) == PAYLOAD_RESP3 ? ">3\r\n" : "*3\r\n", 4);
    reply_bulk(c, kind, strlen(kind));
}

/* *3 $<kind> $<name> :<count>, the reply to (P)(UN)SUBSCRIBE; name NULL
 * for the null of an UNSUBSCRIBE with nothing to drop ($-1, or _ in RESP3). */
static void reply_subscription(client_t *c, const char *kind, const char *name, size_t len)
{
    reply_subscription_head(c, kind);
    if (name != NULL)
        reply_bulk(c, name, len);
    else if (client_proto(c) == PAYLOAD_RESP3)
        reply_raw(c, "_\r\n", 3);
    else
        reply_raw(c, "$-1\r\n", 5);
    reply_number(c, ':', c->nsubs);
}

/* ---- snapshots ---- */

/* Queues the message frame of tick t on c: whole for a channel subscriber,
 * after the pattern's head for a pattern subscriber. */
static void send_tick(client_t *c, const tick_t *t, const topic_t *pattern)
{
    pubsub_t *ps = c->ps;
    char name[PAYLOAD_CHANNEL_MAX];
    size_t n = payload_channel(t, name);
    int proto = client_proto(c);
    payload_t *p;

    if (payload_message(ps->heap, t, ps->opt.payload, proto, name, n, &p) != 0) {
        ps->stats.encode_errors_total++;
        return;
    }
    if (pattern == NULL)
        enqueue(c, p, 0, p->len);
    else if (enqueue(c, pattern->head[proto], 0, pattern->head[proto]->len) == 0)
        enqueue(c, p, PAYLOAD_MESSAGE_HEAD, p->len);
    payload_release(ps->heap, &ps->latency, p);
}

/* The output limit while a snapshot is built: once c holds more than the
 * hard limit, the socket is offered what it has, and if tickd still holds
 * more than the limit for c, c is marked as a slow consumer. A snapshot
 * stops as soon as its client is marked, so what one request can make
 * tickd hold is the hard limit plus one frame, however many patterns it
 * names. Returns whether c takes no more output. */
static int snapshot_stopped(client_t *c)
{
    size_t hard = c->ps->opt.hard_limit;
    if (hard != 0 && c->queued > hard && !(c->flags & (CLIENT_SLOW | CLIENT_CLOSED))) {
        reply_seal(c->ps);
        client_write(c);
        if (!(c->flags & CLIENT_CLOSED) && held_bytes(c) > hard)
            doom(c);
    }
    return (c->flags & (CLIENT_SLOW | CLIENT_CLOSED)) != 0;
}

/* SUBSCRIBE trade.AAPL: the last trade of AAPL, if any. */
static void snapshot_channel(client_t *c, const topic_t *t)
{
    market_t *m = c->ps->market;
    int trade = t->len > 6 && memcmp(t->name, "trade.", 6) == 0;
    int quote = t->len > 6 && memcmp(t->name, "quote.", 6) == 0;

    if (m == NULL || !(trade || quote))
        return;
    symbol_t *sym = market_find(m, t->name + 6, t->len - 6);
    if (sym == NULL)
        return;
    const tick_t *last = trade ? sym->last_trade : sym->last_quote;
    if (last != NULL) {
        send_tick(c, last, NULL);
        snapshot_stopped(c);
    }
}

struct snapshot_walk {
    client_t *client;
    topic_t *pattern;
    size_t prefix; /* the pattern's literal prefix: a channel not starting with it cannot match */
};

static int snapshot_symbol(symbol_t *sym, void *arg)
{
    struct snapshot_walk *w = arg;
    topic_t *pat = w->pattern;
    const tick_t *ticks[2] = {sym->last_trade, sym->last_quote};
    char name[PAYLOAD_CHANNEL_MAX];

    for (int i = 0; i < 2; i++) {
        if (ticks[i] == NULL)
            continue;
        size_t n = payload_channel(ticks[i], name);
        if (n < w->prefix || memcmp(name, pat->name, w->prefix) != 0 ||
            !glob_match(pat->name, pat->len, name, n))
            continue;
        if (pattern_heads(w->client->ps, pat) != 0) {
            w->client->ps->stats.encode_errors_total++;
            return 1;
        }
        send_tick(w->client, ticks[i], pat);
        if (snapshot_stopped(w->client))
            return 1;
    }
    return 0;
}

/* Walks c's snapshot jobs, oldest first, for up to *budget symbol table
 * slots, a step at a time. Returns whether work is left. */
static int snapshots_run(client_t *c, size_t *budget)
{
    pubsub_t *ps = c->ps;
    snapshot_job_t *j;

    while ((j = c->jobs) != NULL && *budget > 0 && !(c->flags & (CLIENT_SLOW | CLIENT_CLOSED))) {
        size_t step = *budget < SNAPSHOT_STEP ? *budget : SNAPSHOT_STEP;
        topic_t *pat = j->sub->topic;
        struct snapshot_walk w = {c, pat, literal_prefix(pat->name, pat->len)};
        *budget -= step;
        int r = ps->market == NULL ? 1
                                   : market_foreach_step(ps->market, &j->cursor, &j->generation,
                                                         step, snapshot_symbol, &w);
        if (c->flags & CLIENT_CLOSED)
            return 0; /* the close dropped every job, j with them */
        if (r != 0 || j->cursor == SIZE_MAX)
            job_drop(c, j);
    }
    return c->jobs != NULL && !(c->flags & (CLIENT_SLOW | CLIENT_CLOSED));
}

/* PSUBSCRIBE trade.*: the last tick of every channel the pattern matches.
 * A market of many symbols is walked in steps: what the read that asked
 * for it may spend (SNAPSHOT_READ slots, over all its commands) now, and
 * the rest a step a loop turn while the client takes its output
 * (on_snapshots()), so that no request stalls the loop however many
 * patterns it names. The frames are pmessages, which a subscriber takes at
 * any point, so replies to later commands may come before them; none comes
 * after the reply that unsubscribes its pattern. */
static void snapshot_pattern(client_t *c, sub_t *s)
{
    pubsub_t *ps = c->ps;
    if (ps->market == NULL)
        return;
    snapshot_job_t *j = heap_alloc(ps->heap, sizeof(snapshot_job_t));
    if (j == NULL) {
        ps->stats.encode_errors_total++;
        return;
    }
    j->prev = c->jobs_tail;
    j->next = NULL;
    j->sub = s;
    j->cursor = 0;
    j->generation = 0;
    if (c->jobs_tail != NULL)
        c->jobs_tail->next = j;
    else
        c->jobs = j;
    c->jobs_tail = j;
    s->job = j;
    if (snapshots_run(c, &ps->snapshot_budget))
        snapshots_wake(ps);
}

/* The snapshot runner: a step of each client's snapshot work per loop turn,
 * for the clients whose output is under SNAPSHOT_PAUSE (the others are
 * woken by their socket draining, consume()). Stops when none is left. */
static void on_snapshots(uv_idle_t *h)
{
    pubsub_t *ps = h->data;
    int more = 0;

    for (client_t *c = ps->clients; c != NULL; c = c->next) {
        if (c->jobs == NULL || c->queued > SNAPSHOT_PAUSE)
            continue;
        size_t budget = SNAPSHOT_STEP;
        more |= snapshots_run(c, &budget);
    }
    if (!more)
        uv_idle_stop(h);
    reap_slow(ps);
    pubsub_flush(ps);
}

/* ---- commands ---- */

typedef struct command command_t;
typedef void (*command_fn)(client_t *c, size_t argc, const resp_arg_t *argv);

enum command_flags {
    CMD_NO_AUTH = 1,   /* allowed before AUTH */
    CMD_SUBSCRIBED = 2 /* allowed in subscribed mode */
};

struct command {
    const char *name;     /* lowercase */
    const char *fullname; /* as Redis names it in errors: "client|setname" */
    int arity;            /* Redis' convention: n exactly, -n at least n (the name included) */
    unsigned flags;       /* enum command_flags */
    command_fn proc;
    const command_t *subcommands; /* NULL-terminated by name, or NULL */
};

/* Whether a is name in any case. Names are lowercase letters, which differ
 * from their capitals in bit 5 only; the first difference ends the test
 * (every request runs it over the command table). */
static int arg_is(const resp_arg_t *a, const char *name)
{
    size_t i = 0;
    for (; i < a->len; i++)
        if (name[i] == '\0' || (a->ptr[i] | 0x20) != name[i])
            return 0;
    return name[i] == '\0';
}

/* An argument as printf's "%.*s" takes it: up to max bytes, stopping at a
 * NUL as Redis' C strings do. */
static int arg_width(const resp_arg_t *a, size_t max)
{
    const char *nul = memchr(a->ptr, '\0', a->len);
    size_t n = nul != NULL ? (size_t)(nul - a->ptr) : a->len;
    return (int)(n < max ? n : max);
}

static int auth_required(const client_t *c)
{
    return c->ps->opt.password[0] != '\0' && !(c->flags & CLIENT_AUTHED);
}

static void subscribe_generic(client_t *c, size_t argc, const resp_arg_t *argv, int is_pattern)
{
    for (size_t i = 1; i < argc; i++) {
        topic_t *t;
        int r = sub_add(c, is_pattern, argv[i].ptr, argv[i].len, &t);
        if (r < 0) {
            reply_error(c, "ERR out of memory");
            continue;
        }
        reply_subscription(c, is_pattern ? "psubscribe" : "subscribe", argv[i].ptr, argv[i].len);
        if (r == 1 && c->ps->opt.snapshot) {
            if (is_pattern)
                snapshot_pattern(c, c->subs[c->nsubs - 1]); /* the one sub_add() made */
            else
                snapshot_channel(c, t);
        }
        if (c->flags & (CLIENT_SLOW | CLIENT_CLOSED))
            return; /* cut while its snapshots were built: the rest is moot */
    }
}

static void unsubscribe_generic(client_t *c, size_t argc, const resp_arg_t *argv, int is_pattern)
{
    const char *kind = is_pattern ? "punsubscribe" : "unsubscribe";
    pubsub_t *ps = c->ps;

    if (argc == 1) {
        if (client_count_subs(c, is_pattern) == 0) {
            reply_subscription(c, kind, NULL, 0);
            return;
        }
        for (uint32_t i = c->nsubs; i-- > 0;) {
            if (i >= c->nsubs || c->subs[i]->topic->is_pattern != is_pattern)
                continue;
            /* The reply names the topic, which may go with the
             * subscription: write the name first, the count after. */
            const topic_t *t = c->subs[i]->topic;
            reply_subscription_head(c, kind);
            reply_bulk(c, t->name, t->len);
            sub_remove(ps, c->subs[i]);
            reply_number(c, ':', c->nsubs);
        }
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        topic_table_t *table = is_pattern ? &ps->patterns : &ps->channels;
        topic_t *t =
            table_find(table, argv[i].ptr, argv[i].len, hash_name(argv[i].ptr, argv[i].len));
        sub_t *s = t != NULL ? sub_find(c, t) : NULL;
        if (s != NULL)
            sub_remove(ps, s);
        reply_subscription(c, kind, argv[i].ptr, argv[i].len);
    }
}

static void cmd_subscribe(client_t *c, size_t argc, const resp_arg_t *argv)
{
    subscribe_generic(c, argc, argv, 0);
}

static void cmd_psubscribe(client_t *c, size_t argc, const resp_arg_t *argv)
{
    subscribe_generic(c, argc, argv, 1);
}

static void cmd_unsubscribe(client_t *c, size_t argc, const resp_arg_t *argv)
{
    unsubscribe_generic(c, argc, argv, 0);
}

static void cmd_punsubscribe(client_t *c, size_t argc, const resp_arg_t *argv)
{
    unsubscribe_generic(c, argc, argv, 1);
}

static void cmd_ping(client_t *c, size_t argc, const resp_arg_t *argv)
{
    if (argc > 2) {
        reply_error(c, "ERR wrong number of arguments for 'ping' command");
    } else if (c->nsubs > 0 && client_proto(c) == PAYLOAD_RESP2) {
        reply_raw(c, "*2\r\n$4\r\npong\r\n", 14);
        if (argc == 2)
            reply_bulk(c, argv[1].ptr, argv[1].len);
        else
            reply_bulk(c, "", 0);
    } else if (argc == 2) {
        reply_bulk(c, argv[1].ptr, argv[1].len);
    } else {
        reply_str(c, "+PONG\r\n");
    }
}

/* Stops reading from c, drops its subscriptions, and closes it once its
 * output (the reply at hand included) is written. */
static void begin_closing(client_t *c)
{
    c->flags |= CLIENT_CLOSING;
    uv_read_stop((uv_stream_t *)&c->tcp);
    unsubscribe_quietly(c);
}

static void cmd_quit(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    reply_str(c, "+OK\r\n");
    begin_closing(c);
}

static void cmd_reset(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    unsubscribe_quietly(c);
    client_set_proto(c, PAYLOAD_RESP2);
    if (c->ps->opt.password[0] != '\0')
        c->flags &= ~CLIENT_AUTHED;
    reply_str(c, "+RESET\r\n");
}

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

/* ---- held replies ----
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
 * error instead: backpressure, bounded. */

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
        held_remove(c);
    if ((c->flags & CLIENT_PAUSED) && c->nheld < HELD_MAX && !(c->flags & CLIENT_WAITING)) {
        c->flags &= ~CLIENT_PAUSED;
        if (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSED)) &&
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            client_close(c);
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
            serve(c, c->in, c->in_len);
    }
}

/* Decides c's n oldest held replies: acknowledgements when error is NULL,
 * else each becomes error. Output flows again once none is held, and
 * reading once fewer than HELD_MAX are. */
static void held_decide(client_t *c, uint32_t n, payload_t *error)
{
    pubsub_t *ps = c->ps;
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
        dirty_add(c);
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
static void held_expire(pubsub_t *ps, uint64_t now)
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
    size_t len = format_number(text, ':', (long long)receivers);
    if (c->nheld == c->held_cap) {
        uint32_t cap = c->held_cap != 0 ? 2 * c->held_cap : 16;
        held_reply_t *n = heap_alloc(ps->heap, cap * sizeof(held_reply_t));
        if (n == NULL) {
            doom(c); /* a reply lost would desynchronise the client */
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
        doom(c);
        return;
    }
    memcpy(p->data, text, len);
    p->len = (uint32_t)len;
    if (enqueue_entry(c, p, 0, p->len) == 0) { /* an entry of its own, never extended */
        c->held_replies[c->nheld++] = (held_reply_t){p, at, uv_now(ps->loop)};
        held_add(c);
        if (c->nheld >= HELD_MAX && !(c->flags & CLIENT_PAUSED)) {
            c->flags |= CLIENT_PAUSED;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
    }
    payload_release(ps->heap, &ps->latency, p);
}

static void cmd_publish(client_t *c, size_t argc, const resp_arg_t *argv)
{
    pubsub_t *ps = c->ps;
    const char *reason = NULL;
    int r;

    (void)argc;
    if (ps->on_publish == NULL) {
        reply_error(c, "ERR PUBLISH is not accepted here");
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
        reply_error(
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
        reply_error(c, "ERR %s", reason != NULL ? reason : strerror(-r));
        return;
    }
    ps->published = 1;
    ps->stats.publish_total++;
    if (durable_at != 0)
        held_reply(c, durable_at, ps->publish_receivers); /* acknowledged once synced */
    else
        reply_number(c, ':', (long long)ps->publish_receivers);
}

/* Compares without an early exit, so that the time taken says nothing
 * about how much of the password was right. */
static int password_equal(const char *want, const resp_arg_t *got)
{
    size_t n = strlen(want);
    unsigned char diff = got->len != n;
    for (size_t i = 0; i < got->len; i++)
        diff |= (unsigned char)(got->ptr[i] ^ want[i % (n != 0 ? n : 1)]);
    return diff == 0;
}

/* tickd has one user, Redis' "default", whose password is pubsub.password
 * (none: any password will do, as for Redis' nopass default user). Another
 * username is a user that does not exist: WRONGPASS, as Redis answers.
 * user NULL: AUTH <password>. Sets CLIENT_AUTHED when the pair is right;
 * a wrong pair leaves the client as it was. Errors never show the
 * password. */
static int authenticate(client_t *c, const resp_arg_t *user, const resp_arg_t *password)
{
    const char *want = c->ps->opt.password;
    int user_ok = user == NULL || (user->len == 7 && memcmp(user->ptr, "default", 7) == 0);

    if (user_ok && (want[0] == '\0' || password_equal(want, password))) {
        c->flags |= CLIENT_AUTHED;
        return 1;
    }
    reply_error(c, "WRONGPASS invalid username-password pair or user is disabled.");
    return 0;
}

static void cmd_auth(client_t *c, size_t argc, const resp_arg_t *argv)
{
    if (argc > 3)
        reply_error(c, "ERR syntax error");
    else if (c->ps->opt.password[0] == '\0' && argc == 2)
        reply_error(c, "ERR AUTH <password> called without any password configured for the "
                       "default user. Are you sure your configuration is correct?");
    else if (authenticate(c, argc == 3 ? &argv[1] : NULL, &argv[argc - 1]))
        reply_str(c, "+OK\r\n");
}

/* Redis' rule for client names: printable ASCII, no spaces. */
static int client_name_ok(client_t *c, const resp_arg_t *name)
{
    for (size_t i = 0; i < name->len; i++)
        if (name->ptr[i] < '!' || name->ptr[i] > '~') {
            reply_error(c, "ERR Client names cannot contain spaces, newlines or special "
                           "characters.");
            return 0;
        }
    return 1;
}

/* CLIENT SETNAME: checked as Redis checks it; tickd lists no clients, so
 * the name is not kept. */
static void cmd_client_setname(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    if (client_name_ok(c, &argv[2]))
        reply_str(c, "+OK\r\n");
}

/* A decimal integer argument as Redis' string2ll() reads one: an optional
 * '-', digits, no leading zero, at most 18 digits (more is out of range for
 * anything asked here). 1, or 0 when it is not one. */
static int arg_integer(const resp_arg_t *a, long long *out)
{
    size_t i = a->len > 0 && a->ptr[0] == '-';
    long long v = 0;

    if (a->len == 1 && a->ptr[0] == '0') {
        *out = 0;
        return 1;
    }
    if (i >= a->len || a->len - i > 18 || a->ptr[i] < '1' || a->ptr[i] > '9')
        return 0;
    for (size_t k = i; k < a->len; k++) {
        if (a->ptr[k] < '0' || a->ptr[k] > '9')
            return 0;
        v = v * 10 + (a->ptr[k] - '0');
    }
    *out = i ? -v : v;
    return 1;
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]]: the
 * options are read first, then the credentials checked, then the protocol
 * switched, and the reply is in the protocol now in force: a map in RESP3,
 * a flat array of the same pairs in RESP2. Redis' texts for every error. */
static void cmd_hello(client_t *c, size_t argc, const resp_arg_t *argv)
{
    const resp_arg_t *user = NULL, *password = NULL;
    long long ver = 0;
    size_t j = 1;

    if (argc >= 2) {
        if (!arg_integer(&argv[1], &ver)) {
            reply_error(c, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            reply_str(c, "-NOPROTO unsupported protocol version\r\n");
            return;
        }
        j = 2;
    }
    for (; j < argc; j++) {
        size_t more = argc - 1 - j;
        if (arg_is(&argv[j], "auth") && more >= 2) {
            user = &argv[j + 1];
            password = &argv[j + 2];
            j += 2;
        } else if (arg_is(&argv[j], "setname") && more >= 1) {
            if (!client_name_ok(c, &argv[j + 1]))
                return;
            j++;
        } else {
            /* An option word, never an AUTH argument: those were taken. */
            reply_error(c, "ERR Syntax error in HELLO option '%.*s'", arg_width(&argv[j], 128),
                        argv[j].ptr);
            return;
        }
    }
    if (user != NULL && !authenticate(c, user, password))
        return;
    if (auth_required(c)) {
        reply_str(c, "-NOAUTH HELLO must be called with the client already authenticated, "
                     "otherwise the HELLO AUTH <user> <pass> option can be used to authenticate "
                     "the client and select the RESP protocol version at the same time\r\n");
        return;
    }
    if (ver != 0)
        client_set_proto(c, ver == 3 ? PAYLOAD_RESP3 : PAYLOAD_RESP2);
    int resp3 = client_proto(c) == PAYLOAD_RESP3;
    reply_raw(c, resp3 ? "%7\r\n" : "*14\r\n", resp3 ? 4 : 5);
    reply_bulk(c, "server", 6);
    reply_bulk(c, "redis", 5);
    reply_bulk(c, "version", 7);
    reply_bulk(c, REDIS_COMPAT_VERSION, strlen(REDIS_COMPAT_VERSION));
    reply_bulk(c, "proto", 5);
    reply_number(c, ':', resp3 ? 3 : 2);
    reply_bulk(c, "id", 2);
    reply_number(c, ':', (long long)c->id);
    reply_bulk(c, "mode", 4);
    reply_bulk(c, "standalone", 10);
    reply_bulk(c, "role", 4);
    reply_bulk(c, "master", 6);
    reply_bulk(c, "modules", 7);
    reply_raw(c, "*0\r\n", 4);
}

/* ---- INFO ---- */

enum info_section {
    INFO_SERVER = 1 << 0,
    INFO_CLIENTS = 1 << 1,
    INFO_MEMORY = 1 << 2,
    INFO_PERSISTENCE = 1 << 3, /* only loading:0, what ready checks look for */
    INFO_STATS = 1 << 4,
    INFO_ALL = (1 << 5) - 1, /* "default", "all" and "everything" alike */
};

static const struct {
    const char *name;
    unsigned bits;
} info_sections[] = {
    {"server", INFO_SERVER}, {"clients", INFO_CLIENTS},
    {"memory", INFO_MEMORY}, {"persistence", INFO_PERSISTENCE},
    {"stats", INFO_STATS},   {"default", INFO_ALL},
    {"all", INFO_ALL},       {"everything", INFO_ALL},
};

static void info_add(info_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info_add(info_text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->text + t->len, sizeof t->text - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n < sizeof t->text - t->len ? (size_t)n : sizeof t->text - t->len - 1;
}

/* "<key>:<n>\r\n<key>_human:<n as Redis writes it: 1.50K, 12.00M>\r\n" */
static void info_bytes(info_text_t *t, const char *key, uint64_t n)
{
    static const char units[] = "KMGTP";
    double v = (double)n;
    int u = -1;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    info_add(t, "%s:%llu\r\n", key, (unsigned long long)n);
    if (u < 0)
        info_add(t, "%s_human:%lluB\r\n", key, (unsigned long long)n);
    else
        info_add(t, "%s_human:%.2f%c\r\n", key, v, units[u]);
}

/* Channels with at least one subscriber (not the empty ones that only hold
 * a pattern cache). */
static uint64_t live_channels(const pubsub_t *ps)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i <= ps->channels.mask; i++)
        for (const topic_t *t = ps->channels.buckets[i]; t != NULL; t = t->next)
            n += t->nsubs > 0;
    return n;
}

static void info_report(pubsub_t *ps, unsigned sections, info_text_t *t)
{
    pubsub_info_t d = {"", ps->start_ns, 0, 0};
    const pubsub_stats_t *st = &ps->stats;
    int64_t up = (clock_realtime_ns() - d.start_time_ns) / 1000000000;

    if (ps->info_fn != NULL) {
        ps->info_fn(ps->info_arg, &d);
        up = (clock_realtime_ns() - d.start_time_ns) / 1000000000;
    }
    if (up < 0)
        up = 0;
    t->len = 0;
    if (sections & INFO_SERVER) {
        info_add(t, "# Server\r\nredis_version:%s\r\ntickd_version:%s\r\n", REDIS_COMPAT_VERSION,
                 d.version);
        info_add(t, "redis_mode:standalone\r\narch_bits:%d\r\nprocess_id:%ld\r\ntcp_port:%d\r\n",
                 (int)(sizeof(void *) * 8), (long)getpid(), pubsub_port(ps));
        info_add(t, "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n", (long long)up,
                 (long long)up / 86400);
    }
    if (sections & INFO_CLIENTS) {
        info_add(t, "%s# Clients\r\nconnected_clients:%llu\r\nmaxclients:%u\r\n",
                 t->len > 0 ? "\r\n" : "", (unsigned long long)st->clients, ps->opt.max_clients);
        info_add(t, "output_buffer_bytes:%llu\r\n", (unsigned long long)st->output_buffer_bytes);
    }
    if (sections & INFO_MEMORY) {
        heap_stats_t hs;
        process_stats_t pr;
        heap_get_stats(ps->heap, &hs);
        info_add(t, "%s# Memory\r\n", t->len > 0 ? "\r\n" : "");
        info_bytes(t, "used_memory", hs.used_bytes + hs.large_bytes);
        if (process_get_stats(&pr) == 0)
            info_bytes(t, "used_memory_rss", pr.resident_bytes);
        info_bytes(t, "heap_mapped", hs.mapped_bytes);
        info_bytes(t, "heap_mapped_peak", hs.mapped_bytes_peak);
        info_add(t, "mem_allocator:tickd\r\n");
    }
    if (sections & INFO_PERSISTENCE)
        info_add(t, "%s# Persistence\r\nloading:0\r\nasync_loading:0\r\n",
                 t->len > 0 ? "\r\n" : "");
    if (sections & INFO_STATS) {
        info_add(t, "%s# Stats\r\ntotal_connections_received:%llu\r\n", t->len > 0 ? "\r\n" : "",
                 (unsigned long long)st->connections_total);
        info_add(t, "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n",
                 (unsigned long long)st->commands_total, (unsigned long long)st->rejected_total);
        info_add(t, "pubsub_channels:%llu\r\npubsub_patterns:%u\r\n",
                 (unsigned long long)live_channels(ps), ps->patterns.count);
        info_add(t, "total_trades_received:%llu\r\ntotal_quotes_received:%llu\r\n",
                 (unsigned long long)d.trades_total, (unsigned long long)d.quotes_total);
        info_add(t, "total_messages_sent:%llu\r\ntotal_publish_accepted:%llu\r\n",
                 (unsigned long long)st->messages_sent_total,
                 (unsigned long long)st->publish_total);
        info_add(t, "slow_consumer_disconnections:%llu\r\nprotocol_error_disconnections:%llu\r\n",
                 (unsigned long long)st->slow_consumer_disconnects_total,
                 (unsigned long long)st->protocol_errors_total);
        info_add(t, "encode_errors:%llu\r\n", (unsigned long long)st->encode_errors_total);
    }
}

/* INFO [section ...]: the sections named (any case; none: all of them;
 * unknown ones are skipped, as Redis does), as a bulk string, or a verbatim
 * string "txt:" in RESP3. */
static void cmd_info(client_t *c, size_t argc, const resp_arg_t *argv)
{
    unsigned sections = argc == 1 ? INFO_ALL : 0;
    info_text_t *t = &c->ps->info;

    for (size_t i = 1; i < argc; i++)
        for (size_t k = 0; k < sizeof info_sections / sizeof info_sections[0]; k++)
            if (arg_is(&argv[i], info_sections[k].name))
                sections |= info_sections[k].bits;
    info_report(c->ps, sections, t);
    if (client_proto(c) == PAYLOAD_RESP3) {
        reply_number(c, '=', (long long)t->len + 4);
        reply_raw(c, "txt:", 4);
        reply_raw(c, t->text, t->len);
        reply_raw(c, "\r\n", 2);
    } else {
        reply_bulk(c, t->text, t->len);
    }
}

/* ---- PUBSUB ---- */

/* PUBSUB CHANNELS [pattern]: the channels with subscribers, matching the
 * pattern if one is given. */
static void cmd_pubsub_channels(client_t *c, size_t argc, const resp_arg_t *argv)
{
    const topic_table_t *table = &c->ps->channels;
    long long n = 0;

    if (argc > 3) {
        reply_error(c,
                    "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                    "PUBSUB HELP.",
                    arg_width(&argv[1], 128), argv[1].ptr);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            reply_number(c, '*', n);
        for (uint32_t i = 0; i <= table->mask; i++)
            for (const topic_t *t = table->buckets[i]; t != NULL; t = t->next) {
                if (t->nsubs == 0 ||
                    (argc == 3 && !glob_match(argv[2].ptr, argv[2].len, t->name, t->len)))
                    continue;
                if (pass == 0)
                    n++;
                else
                    reply_bulk(c, t->name, t->len);
            }
    }
}

/* PUBSUB NUMSUB [channel ...]: each channel and its subscribers (patterns
 * not counted). */
static void cmd_pubsub_numsub(client_t *c, size_t argc, const resp_arg_t *argv)
{
    reply_number(c, '*', (long long)(argc - 2) * 2);
    for (size_t i = 2; i < argc; i++) {
        const topic_t *t = table_find(&c->ps->channels, argv[i].ptr, argv[i].len,
                                      hash_name(argv[i].ptr, argv[i].len));
        reply_bulk(c, argv[i].ptr, argv[i].len);
        reply_number(c, ':', t != NULL ? t->nsubs : 0);
    }
}

/* PUBSUB NUMPAT: the patterns subscribed to, each counted once. */
static void cmd_pubsub_numpat(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    reply_number(c, ':', c->ps->patterns.count);
}

static void cmd_pubsub_help(client_t *c, size_t argc, const resp_arg_t *argv)
{
    static const char *const lines[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "HELP",
        "    Prints this help.",
    };
    (void)argc;
    (void)argv;
    reply_number(c, '*', sizeof lines / sizeof lines[0]);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        reply_raw(c, "+", 1);
        reply_raw(c, lines[i], strlen(lines[i]));
        reply_raw(c, "\r\n", 2);
    }
}

static void cmd_ok(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    reply_str(c, "+OK\r\n");
}

/* COMMAND, COMMAND INFO/LIST: no command table to show (redis-cli asks
 * for the docs at start-up and does without). */
static void cmd_command_empty(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    reply_str(c, "*0\r\n");
}

/* COMMAND DOCS: no docs either, an empty map in RESP3. */
static void cmd_command_docs(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    reply_str(c, client_proto(c) == PAYLOAD_RESP3 ? "%0\r\n" : "*0\r\n");
}

static void cmd_command_count(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    reply_str(c, ":0\r\n");
}

static const command_t client_subcommands[] = {
    {"setname", "client|setname", 3, 0, cmd_client_setname, NULL},
    {"setinfo", "client|setinfo", 4, 0, cmd_ok, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};

static const command_t command_subcommands[] = {
    {"docs", "command|docs", -2, 0, cmd_command_docs, NULL},
    {"info", "command|info", -2, 0, cmd_command_empty, NULL},
    {"list", "command|list", -2, 0, cmd_command_empty, NULL},
    {"count", "command|count", 2, 0, cmd_command_count, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};

static const command_t pubsub_subcommands[] = {
    {"channels", "pubsub|channels", -2, 0, cmd_pubsub_channels, NULL},
    {"numsub", "pubsub|numsub", -2, 0, cmd_pubsub_numsub, NULL},
    {"numpat", "pubsub|numpat", 2, 0, cmd_pubsub_numpat, NULL},
    {"help", "pubsub|help", 2, 0, cmd_pubsub_help, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};

/* PUBLISH first: a publisher sends nothing else, as fast as it can. */
static const command_t commands[] = {
    {"publish", "publish", 3, 0, cmd_publish, NULL},
    {"subscribe", "subscribe", -2, CMD_SUBSCRIBED, cmd_subscribe, NULL},
    {"psubscribe", "psubscribe", -2, CMD_SUBSCRIBED, cmd_psubscribe, NULL},
    {"unsubscribe", "unsubscribe", -1, CMD_SUBSCRIBED, cmd_unsubscribe, NULL},
    {"punsubscribe", "punsubscribe", -1, CMD_SUBSCRIBED, cmd_punsubscribe, NULL},
    {"ping", "ping", -1, CMD_SUBSCRIBED, cmd_ping, NULL},
    {"quit", "quit", -1, CMD_SUBSCRIBED | CMD_NO_AUTH, cmd_quit, NULL},
    {"reset", "reset", 1, CMD_SUBSCRIBED | CMD_NO_AUTH, cmd_reset, NULL},
    {"auth", "auth", -2, CMD_NO_AUTH, cmd_auth, NULL},
    {"hello", "hello", -1, CMD_NO_AUTH, cmd_hello, NULL},
    {"info", "info", -1, 0, cmd_info, NULL},
    {"pubsub", "pubsub", -2, 0, NULL, pubsub_subcommands},
    {"client", "client", -2, 0, NULL, client_subcommands},
    {"command", "command", -1, 0, cmd_command_empty, command_subcommands},
    {NULL, NULL, 0, 0, NULL, NULL},
};

static const command_t *lookup(const command_t *table, const resp_arg_t *name)
{
    for (const command_t *cmd = table; cmd->name != NULL; cmd++)
        if (arg_is(name, cmd->name))
            return cmd;
    return NULL;
}

static void reply_unknown_command(client_t *c, size_t argc, const resp_arg_t *argv)
{
    char args[ERROR_TEXT_MAX];
    size_t len = 0;

    args[0] = '\0';
    for (size_t i = 1; i < argc && len < 128; i++) {
        int n = snprintf(args + len, sizeof args - len, "'%.*s' ", arg_width(&argv[i], 128 - len),
                         argv[i].ptr);
        len += (size_t)n;
    }
    reply_error(c, "ERR unknown command '%.*s', with args beginning with: %s",
                arg_width(&argv[0], 128), argv[0].ptr, args);
}

static void dispatch(client_t *c, size_t argc, const resp_arg_t *argv)
{
    const command_t *cmd = lookup(commands, &argv[0]);

    if (cmd == NULL) {
        reply_unknown_command(c, argc, argv);
        return;
    }
    if (cmd->subcommands != NULL && argc >= 2) {
        const command_t *sub = lookup(cmd->subcommands, &argv[1]);
        if (sub == NULL) {
            char upper[16];
            size_t n = strlen(cmd->name);
            for (size_t i = 0; i <= n; i++)
                upper[i] = (char)(cmd->name[i] >= 'a' && cmd->name[i] <= 'z' ? cmd->name[i] - 32
                                                                             : cmd->name[i]);
            reply_error(c, "ERR unknown subcommand '%.*s'. Try %s HELP.", arg_width(&argv[1], 128),
                        argv[1].ptr, upper);
            return;
        }
        cmd = sub;
    }
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
        (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        reply_error(c, "ERR wrong number of arguments for '%s' command", cmd->fullname);
        return;
    }
    if (auth_required(c) && !(cmd->flags & CMD_NO_AUTH)) {
        reply_str(c, "-NOAUTH Authentication required.\r\n");
        return;
    }
    if (c->nsubs > 0 && client_proto(c) == PAYLOAD_RESP2 && !(cmd->flags & CMD_SUBSCRIBED)) {
        reply_error(c,
                    "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                    "QUIT / RESET are allowed in this context",
                    cmd->fullname);
        return;
    }
    c->ps->stats.commands_total++;
    cmd->proc(c, argc, argv);
}

/* ---- reading ---- */

/* Runs the complete requests at the start of data[0..len); returns the
 * bytes used (the rest is an unfinished request). */
static size_t process(client_t *c, const char *data, size_t len)
{
    pubsub_t *ps = c->ps;
    resp_parser_t *p = &ps->parser;
    size_t pos = 0;

    while (pos < len &&
           !(c->flags & (CLIENT_CLOSING | CLIENT_CLOSED | CLIENT_SLOW | CLIENT_WAITING))) {
        p->unauthenticated = auth_required(c);
        int r = resp_parse(p, data + pos, len - pos);
        if (r == RESP_NEED_MORE)
            break;
        if (r == RESP_ERROR) {
            reply_error(c, "ERR %s", p->err);
            ps->stats.protocol_errors_total++;
            begin_closing(c);
            return len;
        }
        size_t start = pos;
        pos += p->consumed;
        if (p->argc > 0)
            dispatch(c, p->argc, p->argv);
        if (HEAP_UNLIKELY(c->flags & CLIENT_WAITING))
            pos = start; /* a PUBLISH the journal cannot take yet: it stays in the input */
    }
    return pos;
}

/* Makes room for n bytes of unfinished request in c->in, keeping what it
 * holds. 0 or -ENOMEM. */
static int input_reserve(client_t *c, size_t n)
{
    if (n <= c->in_cap)
        return 0;
    size_t cap = c->in_cap != 0 ? c->in_cap : 512;
    while (cap < n)
        cap *= 2;
    char *in = heap_alloc(c->ps->heap, cap);
    if (in == NULL)
        return -ENOMEM;
    if (c->in_len > 0)
        memcpy(in, c->in, c->in_len);
    heap_free(c->ps->heap, c->in);
    c->in = in;
    c->in_cap = cap;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client_t *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->ps->rbuf, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = stream->data;
    pubsub_t *ps = c->ps;
    const char *data = buf->base;
    size_t len = (size_t)nread;

    if (nread == 0)
        return;
    if (nread < 0) { /* EOF or error, mid-request or not */
        client_close(c);
        return;
    }
    ps->read_ns = -1; /* taken by the read's first PUBLISH */
    ps->snapshot_budget = SNAPSHOT_READ;
    if (c->flags & (CLIENT_CLOSING | CLIENT_CLOSED))
        return;
    c->last_active_ms = uv_now(ps->loop);
    if (c->in_len > 0) {
        /* An unfinished inline line with no newline in sight needs no
         * re-parse: just keep the bytes. */
        int skip = c->in[0] != '*' && memchr(data, '\n', len) == NULL &&
                   c->in_len + len < ps->opt.max_request;
        if (input_reserve(c, c->in_len + len) != 0) {
            client_close(c);
            return;
        }
        memcpy(c->in + c->in_len, data, len);
        c->in_len += len;
        if (skip)
            return;
        data = c->in;
        len = c->in_len;
    }
    serve(c, data, len);
}

/* Runs the whole requests in data (c->in, or a read's bytes that follow
 * it), keeps the unfinished rest in c->in, and sends what they made. */
static void serve(client_t *c, const char *data, size_t len)
{
    pubsub_t *ps = c->ps;
    size_t used = process(c, data, len);
    if (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSED))) {
        size_t rest = len - used;
        if (data == c->in) {
            memmove(c->in, c->in + used, rest);
            c->in_len = rest;
        } else if (rest > 0) {
            if (input_reserve(c, rest) != 0) {
                client_close(c);
            } else {
                memcpy(c->in, data + used, rest);
                c->in_len = rest;
            }
        }
        if (c->in_len == 0 && c->in_cap > INPUT_KEEP) {
            heap_free(ps->heap, c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
    }
    reply_seal(ps);
    reap_slow(ps);
    dirty_remove(c);
    if (ps->published) {
        /* One write per subscriber for all the read published, ahead of
         * the publisher's replies: a reply can wait for the fan-out's few
         * writes, the ticks' readers should not wait for the reply's. */
        ps->published = 0;
        pubsub_flush(ps);
    }
    client_write(c);
}

/* ---- clients ---- */

static void maybe_done(pubsub_t *ps)
{
    if (ps->stopping && ps->handles == 0 && ps->done != NULL) {
        void (*done)(void *) = ps->done;
        ps->done = NULL;
        done(ps->done_arg);
    }
}

static void on_drain_timer(uv_timer_t *t);

static void on_handle_closed(uv_handle_t *h)
{
    pubsub_t *ps = h->data;
    ps->handles--;
    maybe_done(ps);
}

static void on_client_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    pubsub_t *ps = c->ps;

    while (c->ring_count > 0) {
        out_entry_t *e = &c->ring[c->ring_head];
        c->queued -= e->end - e->off;
        ps->stats.output_buffer_bytes -= e->end - e->off;
        payload_release(ps->heap, &ps->latency, e->p);
        c->ring_head = (c->ring_head + 1) & (c->ring_cap - 1);
        c->ring_count--;
    }
    heap_free(ps->heap, c->ring);
    heap_free(ps->heap, c->in);
    heap_free(ps->heap, c->subs);
    heap_free(ps->heap, c->held_replies);
    heap_free(ps->heap, c);
    ps->handles--;
    maybe_done(ps);
}

static void client_close(client_t *c)
{
    pubsub_t *ps = c->ps;

    if (c->flags & CLIENT_CLOSED)
        return;
    if (c->flags & CLIENT_SLOW) { /* closing for another reason first */
        client_t **pp = &ps->doomed;
        while (*pp != c)
            pp = &(*pp)->doomed_next;
        *pp = c->doomed_next;
        c->flags &= ~CLIENT_SLOW;
    }
    unsubscribe_quietly(c);
    dirty_remove(c);
    held_remove(c);
    c->nheld = 0; /* a publisher that is gone is told nothing */
    if (ps->reply_client == c) {
        ps->reply_client = NULL;
        ps->reply_len = 0;
    }
    if (c->flags & CLIENT_COUNTED) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            ps->clients = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        ps->stats.clients--;
    }
    c->flags |= CLIENT_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
    if (ps->stopping && ps->clients == NULL && uv_is_active((uv_handle_t *)&ps->drain))
        on_drain_timer(&ps->drain);
}

static void on_connection(uv_stream_t *server, int status)
{
    listener_t *l = server->data;
    pubsub_t *ps = l->ps;

    if (status < 0 || ps == NULL || ps->stopping)
        return;
    client_t *c = zalloc(ps->heap, sizeof(client_t));
    if (c == NULL)
        return; /* the connection waits in the backlog for better times */
    c->ps = ps;
    uv_tcp_init(ps->loop, &c->tcp);
    c->tcp.data = c;
    ps->handles++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->flags |= CLIENT_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
        return;
    }
    if (ps->stats.clients >= ps->opt.max_clients) {
        /* Redis' answer: a fresh socket takes these few bytes at once. */
        uv_buf_t b = uv_buf_init((char *)max_clients_error, sizeof max_clients_error - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        ps->stats.rejected_total++;
        c->flags |= CLIENT_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
        return;
    }
    c->ring = heap_alloc(ps->heap, RING_INITIAL * sizeof(out_entry_t));
    if (c->ring == NULL) {
        c->flags |= CLIENT_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
        return;
    }
    c->ring_cap = RING_INITIAL;
    c->flags = CLIENT_COUNTED | (ps->opt.password[0] == '\0' ? CLIENT_AUTHED : 0);
    c->last_active_ms = uv_now(ps->loop);
    c->next = ps->clients;
    if (ps->clients != NULL)
        ps->clients->prev = c;
    ps->clients = c;
    ps->stats.clients++;
    ps->stats.connections_total++;
    c->id = ps->stats.connections_total;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        client_close(c);
}

/* ---- housekeeping ---- */

/* Bytes the kernel holds for c that the client has not received yet (sent
 * but not acknowledged, or not sent at all); 0 when it cannot tell. */
static size_t kernel_backlog(const client_t *c)
{
    uv_os_fd_t fd;
    int n;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &n) != 0 || n < 0)
        return 0;
    return (size_t)n;
}

/* The soft limit, sampled: a client whose output not yet received (tickd's
 * queue and the kernel's) is over the limit at every pass for soft_ns is
 * marked for disconnection. Sampling lets a burst that the client reads
 * through pass, however big; a client that stops reading stays over. */
static void check_soft_limit(client_t *c, uint64_t now)
{
    const settings_t *o = &c->ps->opt;
    if (o->soft_limit == 0 || c->queued + kernel_backlog(c) <= o->soft_limit) {
        c->flags &= ~CLIENT_SOFT;
    } else if (!(c->flags & CLIENT_SOFT)) {
        c->flags |= CLIENT_SOFT;
        c->soft_since_ms = now;
    } else if ((now - c->soft_since_ms) * 1000000 >= o->soft_ns) {
        doom(c);
    }
}

static void on_housekeeping(uv_timer_t *t)
{
    pubsub_t *ps = t->data;
    uint64_t now = uv_now(ps->loop);
    client_t *next;

    for (client_t *c = ps->clients; c != NULL; c = next) {
        next = c->next;
        if (ps->opt.idle_timeout_ns != 0 && c->nsubs == 0 &&
            (now - c->last_active_ms) * 1000000 >= ps->opt.idle_timeout_ns) {
            client_close(c);
        } else {
            if (c->flags & CLIENT_WRITING)
                over_hard_limit(c);
            check_soft_limit(c, now);
            ring_shrink(c);
        }
    }
    held_expire(ps, now);
    reap_slow(ps);
}

/* Half the shortest time limit in force, between 1 ms and HOUSEKEEPING_MS. */
static uint64_t housekeeping_ms(const settings_t *o)
{
    uint64_t ns = (uint64_t)HOUSEKEEPING_MS * 2000000;
    if (o->idle_timeout_ns != 0 && o->idle_timeout_ns < ns)
        ns = o->idle_timeout_ns;
    if (o->soft_limit != 0 && o->soft_ns < ns)
        ns = o->soft_ns;
    uint64_t ms = ns / 2000000;
    return ms < 1 ? 1 : ms;
}

static void housekeeping_start(pubsub_t *ps)
{
    uint64_t ms = housekeeping_ms(&ps->opt);
    uv_timer_start(&ps->housekeeping, on_housekeeping, ms, ms);
}

/* ---- listening ---- */

/* "host:port", "[v6]:port" or "localhost:port" into addr. */
static int parse_listen(const char *s, struct sockaddr_storage *addr)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hlen = colon != NULL ? (size_t)(colon - s) : 0;
    char *end;

    if (colon == NULL || colon[1] == '\0')
        return -EINVAL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -EINVAL;
    int v6 = hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']';
    if (v6) {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (v6)
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr);
    if (strcmp(host, "localhost") == 0)
        return uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)addr);
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr);
}

static void on_listener_closed(uv_handle_t *h)
{
    listener_t *l = h->data;
    pubsub_t *ps = l->ps;
    heap_free(l->heap, l);
    if (ps != NULL) {
        ps->handles--;
        maybe_done(ps);
    }
}

static void listener_close(listener_t *l)
{
    if (l != NULL)
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
}

static int listener_open(pubsub_t *ps, const char *listen, listener_t **out, char *err,
                         size_t errlen)
{
    struct sockaddr_storage addr;
    int r = parse_listen(listen, &addr);

    if (r != 0) {
        snprintf(err, errlen, "pubsub.listen: expected host:port, got \"%s\"", listen);
        return -EINVAL;
    }
    listener_t *l = heap_alloc(ps->heap, sizeof(listener_t));
    if (l == NULL) {
        snprintf(err, errlen, "pubsub: out of memory");
        return -ENOMEM;
    }
    l->ps = ps;
    l->heap = ps->heap;
    uv_tcp_init(ps->loop, &l->tcp);
    l->tcp.data = l;
    ps->handles++;
    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    if (r != 0) {
        snprintf(err, errlen,
                 "pubsub.listen: cannot listen on %s: %s (is another process using it? change "
                 "pubsub.listen)",
                 listen, uv_strerror(r));
        ps->handles--;
        l->ps = NULL;
        listener_close(l);
        return r;
    }
    *out = l;
    return 0;
}

/* ---- settings ---- */

static void settings_from(settings_t *o, const config_t *cfg)
{
    snprintf(o->listen, sizeof o->listen, "%s", cfg->pubsub.listen);
    o->payload = cfg->pubsub.payload;
    snprintf(o->password, sizeof o->password, "%s", cfg->pubsub.password);
    o->max_clients = cfg->pubsub.max_clients;
    o->max_request = cfg->pubsub.max_request;
    o->idle_timeout_ns = cfg->pubsub.idle_timeout_ns;
    o->hard_limit = cfg->pubsub.hard_limit;
    o->soft_limit = cfg->pubsub.soft_limit;
    o->soft_ns = cfg->pubsub.soft_ns;
    o->snapshot = cfg->pubsub.snapshot;
}

/* Points the parser at a scratch of at least max_request bytes. */
static int parser_setup(pubsub_t *ps, size_t max_request)
{
    if (max_request > ps->scratch_cap) {
        char *s = heap_alloc(ps->heap, max_request);
        if (s == NULL)
            return -ENOMEM;
        heap_free(ps->heap, ps->scratch);
        ps->scratch = s;
        ps->scratch_cap = max_request;
    }
    ps->parser.max_request = max_request;
    ps->parser.max_args = RESP_MAX_ARGS;
    ps->parser.argv = ps->argv;
    ps->parser.scratch = ps->scratch;
    return 0;
}

/* ---- the public interface ---- */

void pubsub_free(pubsub_t *ps)
{
    if (ps == NULL)
        return;
    topic_table_t *tables[2] = {&ps->patterns, &ps->channels};
    for (int t = 0; t < 2; t++) {
        if (tables[t]->buckets == NULL)
            continue;
        for (uint32_t i = 0; i <= tables[t]->mask; i++)
            while (tables[t]->buckets[i] != NULL)
                topic_free(ps, tables[t]->buckets[i]);
        heap_free(ps->heap, tables[t]->buckets);
    }
    heap_free(ps->heap, ps->groups.buckets);
    for (int v = 0; v < PAYLOAD_NPROTO; v++)
        batch_free(&ps->batch[v]);
    heap_free(ps->heap, ps->scratch);
    heap_free(ps->heap, ps->rbuf);
    heap_free(ps->heap, ps);
}

int pubsub_start(uv_loop_t *loop, heap_t *heap, market_t *market, const config_t *cfg,
                 pubsub_publish_fn on_publish, void *arg, pubsub_t **out, char *err, size_t errlen)
{
    pubsub_t *ps = zalloc(heap, sizeof(pubsub_t));
    int r;

    if (ps == NULL) {
        snprintf(err, errlen, "pubsub: out of memory");
        return -ENOMEM;
    }
    ps->loop = loop;
    ps->heap = heap;
    ps->market = market;
    ps->on_publish = on_publish;
    ps->publish_arg = arg;
    settings_from(&ps->opt, cfg);
    histogram_init(&ps->latency, histogram_latency_bounds, histogram_latency_nbounds);
    for (int v = 0; v < PAYLOAD_NPROTO; v++)
        batch_init(&ps->batch[v], heap, &ps->latency);
    ps->start_ns = clock_realtime_ns();
    ps->rbuf = heap_alloc(heap, READ_BUF_SIZE);
    if (ps->rbuf == NULL || table_init(heap, &ps->channels) != 0 ||
        table_init(heap, &ps->patterns) != 0 ||
        group_resize(heap, &ps->groups, TABLE_INITIAL - 1) != 0 ||
        parser_setup(ps, ps->opt.max_request) != 0) {
        pubsub_free(ps);
        snprintf(err, errlen, "pubsub: out of memory");
        return -ENOMEM;
    }
    r = listener_open(ps, ps->opt.listen, &ps->listener, err, errlen);
    if (r != 0) {
        pubsub_free(ps);
        return r;
    }
    uv_timer_init(loop, &ps->housekeeping);
    uv_timer_init(loop, &ps->drain);
    uv_idle_init(loop, &ps->snapshots);
    ps->housekeeping.data = ps;
    ps->drain.data = ps;
    ps->snapshots.data = ps;
    ps->handles += 3;
    housekeeping_start(ps);
    uv_unref((uv_handle_t *)&ps->housekeeping);
    *out = ps;
    return 0;
}

void pubsub_set_info_source(pubsub_t *ps, pubsub_info_fn fn, void *arg)
{
    ps->info_fn = fn;
    ps->info_arg = arg;
}

void pubsub_set_market(pubsub_t *ps, market_t *market)
{
    ps->market = market;
    for (client_t *c = ps->clients; c != NULL; c = c->next)
        for (snapshot_job_t *j = c->jobs; j != NULL; j = j->next) {
            j->cursor = 0; /* the new day's symbols, from the start */
            j->generation = 0;
        }
}

/* Whether pattern pat's pmessage frame (f bytes) goes whole into the
 * stream, *used bytes of whole frames being there already: its head is
 * short, and the tick's frames stay within BATCH_TICK_MAX with the message
 * frame (msg bytes). Counts it in *used. Calling it again from *used = 0
 * over the same patterns gives the same answers. */
static int pmessage_whole(const payload_t *head, size_t f, size_t msg, size_t *used)
{
    if (head->len > PATTERN_COPY_MAX || *used + f + msg > BATCH_TICK_MAX)
        return 0;
    *used += f;
    return 1;
}

/* Writes one tick's frames in protocol proto at the end of that protocol's
 * stream, for the subscribers of channel ch and its npat matching patterns
 * who speak proto, and queues them there; returns the messages queued. The
 * stream takes the tick's receipt time ts_recv, or BATCH_UNTIMED when the
 * other stream observes its latency. */
static uint64_t fan_out(pubsub_t *ps, const topic_t *ch, uint32_t npat, int proto, const char *name,
                        size_t n, const char *text, size_t len, int64_t ts_recv)
{
    size_t msg = payload_frame_size(PAYLOAD_MESSAGE_HEAD, n, len);
    size_t whole = 0;
    int tails = 0;
    for (uint32_t j = 0; j < npat; j++) {
        const topic_t *pat = ch->matches[j]->pattern;
        const payload_t *h = pat->head[proto];
        if (subs_in(pat, proto) > 0)
            tails |= !pmessage_whole(h, payload_frame_size(h->len, n, len), msg, &whole);
    }
    int with_msg = subs_in(ch, proto) > 0 || tails;
    batch_t *b = &ps->batch[proto];
    payload_t *span = batch_reserve(b, whole + (with_msg ? msg : 0));
    if (span == NULL) {
        ps->stats.encode_errors_total++;
        return 0;
    }

    uint32_t at = span->len, msg_at = at;
    uint64_t sent = 0;
    if (with_msg)
        at += (uint32_t)payload_put_frame(span->data + at, payload_message_head(proto),
                                          PAYLOAD_MESSAGE_HEAD, name, n, text, len);
    for (uint32_t i = 0; i < ch->nsubs; i++) {
        client_t *c = ch->subs[i]->client;
        if (client_proto(c) == proto)
            sent += enqueue(c, span, msg_at, msg_at + (uint32_t)msg) == 0;
    }
    whole = 0;
    for (uint32_t j = 0; j < npat; j++) {
        const topic_t *pat = ch->matches[j]->pattern;
        payload_t *h = pat->head[proto];
        if (subs_in(pat, proto) == 0)
            continue;
        if (pmessage_whole(h, payload_frame_size(h->len, n, len), msg, &whole)) {
            uint32_t from = at;
            at += (uint32_t)payload_put_frame(span->data + at, h->data, h->len, name, n, text, len);
            for (uint32_t i = 0; i < pat->nsubs; i++) {
                client_t *c = pat->subs[i]->client;
                if (client_proto(c) == proto)
                    sent += enqueue(c, span, from, at) == 0;
            }
        } else {
            for (uint32_t i = 0; i < pat->nsubs; i++) {
                client_t *c = pat->subs[i]->client;
                if (client_proto(c) == proto)
                    sent += enqueue(c, h, 0, h->len) == 0 &&
                            enqueue(c, span, msg_at + PAYLOAD_MESSAGE_HEAD,
                                    msg_at + (uint32_t)msg) == 0;
            }
        }
    }
    batch_commit(b, at - span->len, ts_recv);
    return sent;
}

void pubsub_tick(pubsub_t *ps, tick_t *tick)
{
    pubsub_tick_text(ps, tick, NULL, 0);
}

void pubsub_tick_text(pubsub_t *ps, tick_t *tick, const char *given, size_t given_len)
{
    if (HEAP_LIKELY(ps->stats.subscriptions == 0))
        return;

    char name[PAYLOAD_CHANNEL_MAX];
    size_t n = payload_channel(tick, name);
    uint32_t hash = hash_name(name, n);
    topic_t *ch = table_find(&ps->channels, name, n, hash);

    /* While patterns exist, a channel's first tick makes its topic, linked
     * to the patterns that match it, once: later ticks find it. */
    if (ch == NULL && (ps->patterns.count == 0 || topic_create(ps, 0, name, n, hash, &ch) != 0))
        return;
    uint32_t npat = ch->nmatches;
    if (ch->nsubs == 0 && npat == 0)
        return;

    char buf[PAYLOAD_TEXT_MAX];
    const char *text = given;
    int tn = (int)given_len;
    if (given == NULL) {
        text = buf;
        tn = payload_format_tick(tick, ps->opt.payload, buf, sizeof buf);
    }
    if (tn < 0) {
        ps->stats.encode_errors_total++;
        return;
    }
    uint32_t all = ch->nsubs, resp3 = ch->nsubs3;
    for (uint32_t j = 0; j < npat; j++) {
        all += ch->matches[j]->pattern->nsubs;
        resp3 += ch->matches[j]->pattern->nsubs3;
    }
    uint64_t sent = 0;
    int64_t ts_recv = tick->ts_recv;
    if (HEAP_LIKELY(all > resp3)) {
        sent += fan_out(ps, ch, npat, PAYLOAD_RESP2, name, n, text, (size_t)tn, ts_recv);
        ts_recv = BATCH_UNTIMED;
    }
    if (resp3 > 0)
        sent += fan_out(ps, ch, npat, PAYLOAD_RESP3, name, n, text, (size_t)tn, ts_recv);
    ps->stats.messages_sent_total += sent;
    if (ps->publishing)
        ps->publish_receivers += sent;
    if (HEAP_UNLIKELY(ps->doomed != NULL))
        reap_slow(ps);
}

void pubsub_flush(pubsub_t *ps)
{
    client_t *c;
    while ((c = ps->dirty) != NULL) {
        dirty_remove(c);
        client_write(c);
    }
    for (int v = 0; v < PAYLOAD_NPROTO; v++)
        batch_seal(&ps->batch[v]);
    reap_slow(ps);
}

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
                doom(c);
            reap_slow(ps);
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

int pubsub_reconfigure(pubsub_t *ps, const config_t *cfg, char *err, size_t errlen)
{
    int r;

    if ((strcmp(cfg->pubsub.listen, ps->opt.listen) != 0 || ps->listener == NULL) &&
        !ps->stopping) {
        listener_t *l;
        r = listener_open(ps, cfg->pubsub.listen, &l, err, errlen);
        if (r == UV_EADDRINUSE) {
            /* Same port on another address of this host: let go of the old
             * socket first (uv_close() closes it at once), and take it
             * back if the new one still cannot bind. */
            char ignored[CONFIG_ERR_LEN];
            listener_close(ps->listener);
            ps->listener = NULL;
            r = listener_open(ps, cfg->pubsub.listen, &l, err, errlen);
            if (r != 0)
                listener_open(ps, ps->opt.listen, &ps->listener, ignored, sizeof ignored);
        }
        if (r != 0)
            return r;
        listener_close(ps->listener);
        ps->listener = l;
    }
    r = parser_setup(ps, cfg->pubsub.max_request);
    if (r != 0) {
        snprintf(err, errlen, "pubsub: out of memory");
        return r;
    }
    settings_from(&ps->opt, cfg);
    if (!ps->stopping)
        housekeeping_start(ps);
    return 0;
}

static void on_drain_timer(uv_timer_t *t)
{
    pubsub_t *ps = t->data;
    client_t *c;

    uv_timer_stop(t);
    while ((c = ps->clients) != NULL)
        client_close(c);
    if (!uv_is_closing((uv_handle_t *)t))
        uv_close((uv_handle_t *)t, on_handle_closed);
}

void pubsub_stop(pubsub_t *ps, uint64_t drain_ns, void (*done)(void *arg), void *arg)
{
    if (ps == NULL || ps->stopping) {
        if (ps == NULL && done != NULL)
            done(arg);
        return;
    }
    ps->stopping = 1;
    ps->done = done;
    ps->done_arg = arg;
    listener_close(ps->listener);
    ps->listener = NULL;
    uv_timer_stop(&ps->housekeeping);
    uv_close((uv_handle_t *)&ps->housekeeping, on_handle_closed);
    uv_idle_stop(&ps->snapshots);
    uv_close((uv_handle_t *)&ps->snapshots, on_handle_closed);
    for (client_t *c = ps->clients; c != NULL; c = c->next) {
        begin_closing(c);
        dirty_add(c);
    }
    uv_timer_start(&ps->drain, on_drain_timer, (drain_ns + 999999) / 1000000, 0);
    pubsub_flush(ps); /* closes the clients that had nothing left to send */
    if (ps->clients == NULL && uv_is_active((uv_handle_t *)&ps->drain))
        on_drain_timer(&ps->drain);
}

void pubsub_get_stats(const pubsub_t *ps, pubsub_stats_t *out)
{
    *out = ps->stats;
}

int pubsub_port(const pubsub_t *ps)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;

    if (ps->listener == NULL)
        return -EBADF;
    int r = uv_tcp_getsockname(&ps->listener->tcp, (struct sockaddr *)&ss, &len);
    if (r != 0)
        return r;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

const histogram_t *pubsub_latency(const pubsub_t *ps)
{
    return &ps->latency;
}
