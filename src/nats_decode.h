/*
 * nats_decode.h - a tick from the payload tickd publishes to NATS.
 *
 * A nats feed reads what another tickd's sink published: the JSON object
 * payload.c writes ({"sym":"AAPL","kind":"trade","price":"101.2500",
 * "size":100,"side":"B","ts":...,"seq":...}) or the CSV line of feed/csv.h,
 * told apart by the first byte ('{' is JSON). Pure: no allocation, never a
 * read outside data[0..len), every fault a -EINVAL with a short static
 * reason. A fuzz target.
 */
#ifndef TICKD_SRC_NATS_DECODE_H
#define TICKD_SRC_NATS_DECODE_H

#include <stddef.h>

#include "feed/csv.h"

#define NATS_DECODE_MAX 1024 /* a payload longer than this is not a tick of tickd's */

/* The tick in data[0..len) into *out (kind, symbol, ts_ns as the exchange
 * time, and the trade or quote fields). 0, or -EINVAL with *reason set. */
int nats_decode_tick(const char *data, size_t len, struct csv_tick *out, const char **reason);

#endif
