/*
 * config.h - tickd's configuration: the YAML file, parsed and validated.
 *
 * config_load() reads a YAML file with libyaml into a config_t. Every key is
 * documented in config/tickd.yaml; unknown keys are errors; a bad value is
 * reported once with its place and the fix, e.g.
 *
 *   config/tickd.yaml:12:5: pubsub.listen: expected host:port, got "6380"
 *
 * Sizes take 512, 64KiB, 32MiB, 1GiB (also KB/MB/GB as powers of 1000 and a
 * bare number of bytes); durations take 250ms, 10s, 5m, 1h, 100us. Relative
 * paths in the file are relative to the directory of the file.
 */
#ifndef TICKD_SRC_CONFIG_H
#define TICKD_SRC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_FEEDS        32
#define CONFIG_ERR_LEN          512
#define CONFIG_MAX_NATS_SERVERS 8
#define CONFIG_MAX_USERS        64          /* pubsub.users */
#define CONFIG_USER_TEXT        (32 * 1024) /* every user's patterns, NUL-terminated, together */
#define CONFIG_SLOW_CONFLATE    1           /* pubsub.slow_consumer: conflate */

enum feed_kind {
    FEED_FILE = 1, /* replay a recorded file */
    FEED_TCP = 2,  /* accept connections that stream ITCH (BinaryFILE) or CSV */
    FEED_UDP = 3,  /* MoldUDP64 datagrams, unicast or a multicast group */
    FEED_NATS = 4, /* tickd's ticks from NATS: core subjects or a JetStream durable consumer */
};

/* Where a JetStream consumer of a nats feed starts (its first start only: a
 * durable consumer that exists goes on from where it stopped). */
enum nats_deliver {
    NATS_DELIVER_ALL = 0,           /* the whole stream (default) */
    NATS_DELIVER_NEW = 1,           /* what is published from now on */
    NATS_DELIVER_BY_START_TIME = 2, /* from start_time on */
};

/* A JetStream stream's storage. */
enum nats_storage {
    NATS_STORAGE_FILE = 0,
    NATS_STORAGE_MEMORY = 1,
};

/* A place in the configuration file, 1-based; line 0 when the key was not
 * given. */
typedef struct config_place {
    uint32_t line, column;
} config_place_t;

typedef struct config_feed {
    char name[64]; /* unique; the `feed` label of the metrics */
    enum feed_kind kind;
    int format;              /* enum ingest_format */
    char path[4096];         /* file: the file to replay */
    double speed;            /* file: 0 for as fast as possible, else N x recorded speed */
    int loop;                /* file: start over at the end (a new trading day each time) */
    char listen[256];        /* tcp, udp: host:port to bind */
    char group[64];          /* udp: multicast group to join, "" for unicast */
    char interface[64];      /* udp: local address of the interface for the group, "" any */
    uint64_t stale_after_ns; /* all: /healthz fails after this long without a message; 0 off */
    char subject[256];       /* nats: the subject to subscribe to (wildcards allowed) */
    char stream[64];         /* nats: a JetStream stream to consume, "" for core NATS */
    char durable[64];        /* nats: the durable consumer's name (with stream) */
    int deliver;             /* nats: enum nats_deliver */
    int64_t start_time_ns;   /* nats: deliver by_start_time from here (CLOCK_REALTIME ns) */
    int64_t hold_timeout_ns; /* nats: a restart holds back for the consumer's pending messages
                              * at most this long; 0: three times its ack wait */
} config_feed_t;

/* NATS: the sink that publishes every tick, and the connection settings of
 * the sink and of every nats feed. Credentials (password, token) are never
 * written into a message, a log line or a page. */
typedef struct config_nats {
    char servers[CONFIG_MAX_NATS_SERVERS][256]; /* nats.servers: nats://host:port ... */
    size_t nservers;                            /* 0: no NATS at all (the default) */
    int publish;                /* nats.publish: the sink publishes ticks, default true */
    char prefix[64];            /* nats.prefix: subjects <prefix>.trade.<SYM>, default tickd */
    int payload;                /* nats.payload: 0 json (default), 1 csv */
    char name[64];              /* nats.name: the connection's name, default tickd */
    char user[128];             /* nats.user, "" none (with password) */
    char password[256];         /* nats.password */
    char token[256];            /* nats.token, "" none */
    char credentials[4096];     /* nats.credentials: a .creds file, "" none */
    char tls_ca[4096];          /* nats.tls_ca: CA certificates to trust, "" none */
    char tls_cert[4096];        /* nats.tls_cert: client certificate chain, "" none */
    char tls_key[4096];         /* nats.tls_key: its private key */
    size_t max_pending;         /* nats.max_pending: ticks held while NATS is away, 8MiB */
    uint64_t reconnect_wait_ns; /* nats.reconnect_wait: between attempts, default 1s */
    struct {
        char stream[64];     /* nats.jetstream.stream: bind or create it, "" none */
        uint64_t max_age_ns; /* its limits when tickd creates it; 0 unlimited */
        size_t max_bytes;    /* 0 unlimited */
        uint32_t replicas;   /* 1 (default) to 5 */
        int storage;         /* enum nats_storage, default file */
    } jetstream;
} config_nats_t;

/* Some of pubsub.acl_text's patterns: n of them, one after another from
 * off, each ending in a NUL (config_user_pattern() walks them). */
typedef struct config_patterns {
    uint32_t off, n;
} config_patterns_t;

/* One of pubsub.users: a name and the SHA-256 of its password (never the
 * password), and the channel patterns (Redis globs) it may subscribe to (and
 * GET) and publish to. No pattern: no right. */
typedef struct config_user {
    char name[64];               /* unique, printable, not "default" */
    uint8_t password_sha256[32]; /* the digest, from 64 hex digits */
    config_patterns_t subscribe; /* SUBSCRIBE, PSUBSCRIBE, snapshots, GET/MGET/KEYS/SCAN */
    config_patterns_t publish;   /* PUBLISH */
} config_user_t;

typedef struct config {
    char path[4096]; /* the file this was read from */

    struct {
        size_t arena_size; /* heap.arena_size, default 1MiB */
        size_t pool_size;  /* heap.pool_size, default 16KiB */
        int debug;         /* heap.debug, default false */
    } heap;

    struct {
        uint64_t interval_ns;   /* gc.interval, default 100ms */
        uint32_t thresholds[3]; /* gc.thresholds, default [700, 10, 10] */
    } gc;

    struct {
        char listen[256];             /* pubsub.listen, default 127.0.0.1:6380 */
        int payload;                  /* pubsub.payload: 0 json (default), 1 csv */
        char password[256];           /* pubsub.password, "" for no AUTH */
        uint32_t max_clients;         /* pubsub.max_clients, default 10000 */
        size_t max_request;           /* pubsub.max_request, default 64KiB */
        uint64_t idle_timeout_ns;     /* pubsub.idle_timeout, default 0 (none) */
        size_t hard_limit;            /* pubsub.output_hard_limit, default 32MiB */
        size_t soft_limit;            /* pubsub.output_soft_limit, default 8MiB */
        uint64_t soft_ns;             /* pubsub.output_soft_seconds, default 60s */
        int snapshot;                 /* pubsub.snapshot_on_subscribe, default true */
        int slow_consumer;            /* pubsub.slow_consumer: 0 disconnect (default),
                                         1 conflate (CONFIG_SLOW_CONFLATE) */
        uint32_t max_publish_symbols; /* pubsub.max_publish_symbols: new symbols a day may
                                         get through PUBLISH, default 100000 */
        uint32_t nusers;              /* pubsub.users, none by default */
        config_user_t users[CONFIG_MAX_USERS];
        uint32_t user_text_len;           /* bytes of user_text in use */
        char user_text[CONFIG_USER_TEXT]; /* the users' patterns (config_patterns_t) */
    } pubsub;

    struct {
        char listen[256];           /* http.listen, default 127.0.0.1:9108 */
        uint32_t max_connections;   /* http.max_connections, default 64 */
        size_t max_header;          /* http.max_header, default 8KiB */
        uint64_t idle_timeout_ns;   /* http.idle_timeout, default 30s */
        uint64_t header_timeout_ns; /* http.header_timeout, default 5s */
    } http;

    struct {
        int enabled;                /* journal.enabled, default false */
        char dir[4096];             /* journal.dir, default /var/lib/tickd */
        int fsync;                  /* journal.fsync: enum journal_fsync, default interval */
        uint64_t fsync_interval_ns; /* journal.fsync_interval, default 1s */
    } journal;

    struct {
        int roll_minute;   /* session.roll_at "HH:MM" as minutes, default 0 */
        char timezone[64]; /* session.timezone, default UTC */
    } session;

    struct {
        int level; /* log.level: 3 error, 4 warning, 6 info (default), 7 debug */
    } log;

    struct {
        int64_t intervals_ns[8]; /* bars.intervals, default [1s, 1m]; [] makes no bars */
        size_t nintervals;
        uint64_t grace_ns; /* bars.grace: the clock closes a bar this long after its end,
                              default 250ms */
    } bars;

    config_nats_t nats; /* nats: the sink and the connection of nats feeds */

    size_t nfeeds;
    config_feed_t feeds[CONFIG_MAX_FEEDS];

    /* Where the values that config_check_files() looks up were given, for
     * its messages; kept apart from the values so that moving a line of the
     * file does not change a feed's settings (reload compares them). */
    struct {
        config_place_t journal; /* journal.dir, or journal.enabled if dir was not given */
        config_place_t feed_path[CONFIG_MAX_FEEDS];    /* feeds[i].path */
        config_place_t feed_subject[CONFIG_MAX_FEEDS]; /* feeds[i].subject (nats) */
        config_place_t nats_files[4]; /* nats.credentials, tls_ca, tls_cert, tls_key */
    } at;
} config_t;

/* The first of ps's patterns in cfg (NULL when it has none); the next one
 * is config_user_pattern_next() of it. */
const char *config_user_pattern(const config_t *cfg, config_patterns_t ps);
const char *config_user_pattern_next(const char *p);

/* Fills cfg with the defaults (no feeds). */
void config_defaults(config_t *cfg);

/* Reads and validates path into cfg. Returns 0, or -EINVAL with the message
 * (file:line:column: key: what is wrong) in err; -errno when the file cannot
 * be read, also with a message. */
int config_load(const char *path, config_t *cfg, char *err, size_t errlen);

/* The same from len bytes at data (need not end in a NUL), named name in
 * messages and in cfg->path; relative paths are taken from name's
 * directory. For config_load() and for fuzzing. On an error cfg holds
 * defaults and part of the file: use it only after a 0. */
int config_load_buffer(const char *name, const char *data, size_t len, config_t *cfg, char *err,
                       size_t errlen);

/* Looks up what cfg names on the file system: with journal.enabled, that
 * journal.dir is a directory this user can create files in; that every file
 * feed's path is a file this user can read. Returns 0, or -errno with the
 * message (file:line:column: key: what is wrong, and the fix) in err.
 * config_load() does not look (it is a function of the file's bytes): the
 * daemon, a reload and --check-config call this after it. */
int config_check_files(const config_t *cfg, char *err, size_t errlen);

/* Parses "32MiB" etc. into bytes; 0 or -EINVAL. */
int config_parse_size(const char *s, size_t *out);
/* Parses "100ms" etc. into nanoseconds; 0 or -EINVAL. */
int config_parse_duration(const char *s, uint64_t *out);
/* Splits "host:port" ("[v6]:port" too); 0 or -EINVAL. */
int config_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
