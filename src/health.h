/*
 * health.h - the /healthz verdict: is every feed delivering?
 *
 * The daemon takes a snapshot of each feed (feed_get_health(), feeds.h) and
 * health_render() judges them against their stale_after limits and writes
 * the page, as text or as JSON. A feed is unhealthy when it is not up (its
 * file cannot be read, its socket is closed), or when it has a stale_after
 * limit and has been quiet for longer than that. A non-looping file feed at
 * its end is finished, which is healthy unless it has a limit: then it goes
 * stale like any other feed once the limit has passed since its last
 * message. A JetStream nats feed that holds back what it fetches at a
 * restart (waiting for messages delivered before, for at most its
 * hold_timeout) says so and since when; holding is not a fault in itself,
 * but a stale feed that holds says that is why it is quiet.
 *
 * Pure: no clock, no loop, no feed; the caller says what time it is.
 */
#ifndef TICKD_SRC_HEALTH_H
#define TICKD_SRC_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "src/http.h"

/* One feed, as /healthz sees it. */
typedef struct health_feed {
    const char *name;        /* the feed's name; lives as long as the feed */
    const char *type;        /* "file", "tcp", "udp", "nats"; "nats-sink" for the NATS sink,
                              * up while connected */
    int up;                  /* file open, socket bound */
    const char *error;       /* when not up, why (e.g. "no message in day.csv (...)"), or NULL
                              * for the type's usual reason; lives as long as the feed */
    int connected;           /* file: open; tcp: a source connected now; udp: a datagram seen */
    int finished;            /* a non-looping file feed has reached its end */
    int64_t last_message_ns; /* CLOCK_REALTIME of the last message; 0 before the first */
    int64_t quiet_since_ns;  /* silence counts from here: the latest of the feed's start, its
                              * last message and (tcp) a source's connect or disconnect */
    uint64_t stale_after_ns; /* feeds[].stale_after; 0: no limit */
    int64_t hold_since_ns;   /* nats (JetStream): CLOCK_REALTIME since which it holds back what
                              * it fetches for the consumer's pending messages, at most
                              * hold_timeout (nats_feed.h); 0 when it does not */
} health_feed_t;

/* Judges h at now_ns: 1 healthy, 0 not. When not, why goes in reason (a
 * short phrase, e.g. "no message for 6.2s (stale_after 5s)"); "" when
 * healthy. */
int health_judge(const health_feed_t *h, int64_t now_ns, char *reason, size_t len);

/* The last SIGHUP reload, as /healthz shows it. A reload that failed leaves
 * the parts that could not change as they were, still running: the daemon
 * stays healthy, and the page says what was kept and why. */
typedef struct health_reload {
    int ok;            /* every part of the new configuration applied */
    const char *error; /* when not ok: the parts kept and why; lives until the next reload */
    int64_t at_ns;     /* CLOCK_REALTIME of the reload */
} health_reload_t;

/*
 * Appends the report on n feeds and on the last reload (NULL: none yet) to
 * body and returns 1 when all is well, 0
 * when not, or -ENOMEM. stopping: the daemon is draining, unhealthy whatever
 * its feeds say.
 *
 * Text: "ok\n" when healthy, else "unhealthy\n" then one line per fault
 * ("feed live: no source connected for 3.0s (stale_after 1s)\n",
 * "tickd is stopping\n"); either way, when the last reload failed, a last
 * line "last reload failed: <error>\n".
 *
 * JSON: {"status":"ok"|"unhealthy","stopping":false,"feeds":[{"name":..,
 * "type":..,"up":true,"connected":true,"finished":false,
 * "seconds_since_last_message":1.25 or null,"stale_after_seconds":5 or null,
 * "holding_seconds":2.5 or null,"healthy":true,"reason":null or "..."}, ...],
 * "last_reload":null or {"ok":false,"error":"..." or null,"seconds_ago":3.5}}
 */
int health_render(const health_feed_t *feeds, size_t n, const health_reload_t *reload, int stopping,
                  int64_t now_ns, int json, http_body_t *body);

#endif
