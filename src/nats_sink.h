/*
 * nats_sink.h - every tick, published once to NATS.
 *
 * The daemon hands each tick to nats_sink_tick() on the loop. The tick is
 * encoded (json or csv, nats.payload) straight into a slot of a ring of
 * nats.max_pending bytes, allocated once at start: no allocation and no
 * libnats call per tick on the loop. The sink's own thread (nats_conn.h)
 * publishes each slot on <prefix>.trade.<SYMBOL> or <prefix>.quote.<SYMBOL>
 * with the headers Tickd-Seq (the tick's sequence number) and Nats-Msg-Id
 * (<instance>-<n>: unique per tick and per sink, the same on a retry, so
 * JetStream drops a duplicate). While NATS is away the ring fills; a tick
 * that finds it full is dropped for NATS only, counted, and logged at most
 * once a second: the loop and the local subscribers never wait for NATS.
 *
 * With nats.jetstream.stream, the thread binds to the stream or creates it
 * (subjects <prefix>.>, the configured limits) once connected, publishes
 * with acknowledgements, and keeps a tick in the ring until the stream has
 * acknowledged it: what a failure or a lost server did not store is sent
 * again, oldest first, with the same id (nats_sink.c).
 */
#ifndef TICKD_SRC_NATS_SINK_H
#define TICKD_SRC_NATS_SINK_H

#include <stdint.h>

#include <uv.h>

#include "feed/market.h"
#include "src/config.h"
#include "src/histogram.h"

typedef struct nats_sink nats_sink_t;

/* What the sink has done; read on the loop. */
typedef struct nats_sink_stats {
    uint64_t published_total;       /* ticks NATS took */
    uint64_t dropped_total;         /* ticks dropped for NATS: the ring was full */
    uint64_t pending_bytes;         /* bytes of the ring holding ticks not published (with
                                     * JetStream: not acknowledged) yet */
    uint64_t reconnects_total;      /* reconnections to NATS */
    int connected;                  /* connected to a NATS server now */
    uint64_t js_acks_total;         /* JetStream publishes acknowledged */
    uint64_t js_ack_failures_total; /* JetStream publishes refused or never acknowledged */
    histogram_t js_ack;             /* from a JetStream publish to its acknowledgement */
} nats_sink_stats_t;

/* Starts a sink with cfg (its servers, credentials, prefix, payload,
 * max_pending, jetstream) on loop. Connecting happens on the sink's thread:
 * a server that is not there yet is not an error. 0, or -errno with the
 * reason in err. */
int nats_sink_start(uv_loop_t *loop, const config_nats_t *cfg, nats_sink_t **out, char *err,
                    size_t errlen);

/* On the loop: queues tick t for publishing, or drops it (ring full).
 * Returns the length of its encoding (nats.payload) with *text pointing at
 * it, valid until the loop's next call into the sink; 0 when it was
 * dropped. */
size_t nats_sink_tick(nats_sink_t *s, const tick_t *t, const char **text);

/* On the loop: the sink's thread publishes what it holds (for at most two
 * seconds, while connected) and goes; s must not be used after. */
void nats_sink_stop(nats_sink_t *s);

void nats_sink_get_stats(nats_sink_t *s, nats_sink_stats_t *out);

/* On the loop: the last error connecting or publishing, or NULL once things
 * work; lives as long as the sink. */
const char *nats_sink_error(const nats_sink_t *s);

#endif
