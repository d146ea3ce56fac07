/*
 * daemon_internal.h - what the daemon offers the modules that feed it
 * (feeds.c), beyond the read-only daemon_t.
 */
#ifndef TICKD_SRC_DAEMON_INTERNAL_H
#define TICKD_SRC_DAEMON_INTERNAL_H

#include <stdint.h>

#include "daemon.h"

/* The end of a batch of input (a decoded slice, a read, a datagram): flush
 * the subscribers and hand the journal its records. */
void daemon_batch_done(daemon_t *d);

/* Logs a bad input of a feed, at most a few per second (the counters keep
 * the full count). */
void daemon_input_error(daemon_t *d, const char *feed, uint64_t where, const char *reason);

/* CLOCK_REALTIME in nanoseconds. */
int64_t daemon_realtime_ns(void);

#endif
