/*
 * clock.h - the two clocks tickd reads, in nanoseconds.
 *
 * CLOCK_REALTIME stamps what an outsider compares with a wall clock: a
 * tick's receipt, a feed's last message, the start time, a reload. The
 * monotonic clock measures spans within this process (a replay's duration,
 * pacing, progress); it never jumps when the wall clock is set. Both are one
 * vDSO call, cheap enough for once per batch, never meant for once per tick.
 */
#ifndef TICKD_SRC_CLOCK_H
#define TICKD_SRC_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ns_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Nanoseconds since the Unix epoch. */
static inline int64_t clock_realtime_ns(void)
{
    return clock_ns_of(CLOCK_REALTIME);
}

/* Nanoseconds since an arbitrary fixed point (boot). */
static inline int64_t clock_monotonic_ns(void)
{
    return clock_ns_of(CLOCK_MONOTONIC);
}

#endif
