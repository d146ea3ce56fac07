/*
 * nats_conn.h - a connection to NATS owned by a thread of its own, and that
 * thread's way back to the loop.
 *
 * libnats does I/O under its own locks, inline in a publish, and calls back on
 * threads of its own. None of that may happen on the loop. So every user of
 * NATS in tickd (the sink, each nats feed) is a nats_conn_t: a thread that
 * builds the libnats options, connects (retrying until the server is there),
 * and does every libnats call; the loop only exchanges memory with it under
 * one short mutex, and is woken through a uv_async_t. Connection events
 * (connected, lost, back, refused) are counted and noted by libnats's threads
 * under the same mutex and logged by the loop (nats_conn_log_events()).
 *
 * Life. nats_conn_start() (loop) starts the thread. nats_conn_stop() (loop)
 * tells the thread to finish, and closes the async handle at once: from then
 * on the thread never wakes the loop, so the loop may close and exit without
 * waiting for NATS. The thread finishes its own work (a last flush, acks),
 * closes the connection, waits for libnats's closed callback (the last one),
 * and lets go. The memory goes when both the loop (the async handle's close
 * callback) and the thread have let go. nats_conn_wait_all(), after the loop
 * has returned, waits for every such thread to end and for libnats to stop
 * its own threads. The mutex is never held across a libnats call or a loop
 * call other than uv_async_send(), and nothing takes another lock while
 * holding it, so no order of events can deadlock (src/README.md).
 *
 * Credentials (password, token) go to libnats and nowhere else: no message
 * made here contains them (server URLs cannot carry them, config.c).
 */
#ifndef TICKD_SRC_NATS_CONN_H
#define TICKD_SRC_NATS_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <nats/nats.h>
#include <uv.h>

#include "src/config.h"

/* Events noted by libnats's threads, for the loop to log. */
enum nats_conn_event {
    NATS_EV_CONNECTED = 1,    /* the first connection is up */
    NATS_EV_DISCONNECTED = 2, /* the connection was lost */
    NATS_EV_RECONNECTED = 4,  /* ... and is back */
    NATS_EV_ERROR = 8,        /* a connection attempt or an operation failed: see error */
    NATS_EV_OK = 16,          /* what failed works now (nats_conn_ok()) */
};

typedef struct nats_conn nats_conn_t;
typedef void (*nats_conn_fn)(nats_conn_t *c);

struct nats_conn {
    config_nats_t cfg; /* a copy of the nats settings, the thread's to read */
    char what[80];     /* "nats sink", "feed edge": the start of every log line */

    pthread_mutex_t mu; /* guards everything marked "mu" */
    pthread_cond_t cond;
    uv_async_t async;         /* wakes the loop; on_wake runs there */
    int async_open;           /* mu: the loop has not closed async */
    int stop;                 /* mu: the loop asked the thread to finish */
    int refs;                 /* mu: the loop's and the thread's */
    int closed;               /* mu: libnats's closed callback ran */
    unsigned events;          /* mu: enum nats_conn_event bits not logged yet */
    char error[256];          /* mu: the last error, for NATS_EV_ERROR */
    char url[256];            /* mu: the server connected to */
    atomic_int connected;     /* connected now */
    atomic_ullong reconnects; /* reconnections over the connection's life */

    char loop_error[256]; /* the loop's: the last error logged, "" once things work */
    natsConnection *nc;   /* the thread's */
    pthread_t thread;
    nats_conn_fn run; /* the thread's work once connecting has begun (on the thread) */
    void (*on_wake)(nats_conn_t *c); /* on the loop, when the thread woke it */
    void (*release)(nats_conn_t *c); /* frees the struct holding c, when both let go */
};

/* Starts c's thread: it connects with cfg's nats settings, then runs run(c)
 * until it returns (it should when nats_conn_stopping()), then closes. c
 * must be zero-filled but for what, run, on_wake and release; cfg is
 * copied. 0, or -errno with the reason in err. */
int nats_conn_start(uv_loop_t *loop, nats_conn_t *c, const config_nats_t *cfg, char *err,
                    size_t errlen);

/* On the loop: asks the thread to finish; c must not be used after. */
void nats_conn_stop(nats_conn_t *c);

/* On the thread: wakes the loop (on_wake), unless it has stopped listening. */
void nats_conn_wake_loop(nats_conn_t *c);

/* On the thread: 1 once the loop called nats_conn_stop(). */
int nats_conn_stopping(nats_conn_t *c);

/* On the thread: waits up to ms for a nats_conn_signal() or a stop. */
void nats_conn_wait(nats_conn_t *c, int ms);

/* On the loop: wakes the thread from nats_conn_wait(). */
void nats_conn_signal(nats_conn_t *c);

/* On the thread: notes an error (a status and what was being done) for the
 * loop to log. */
void nats_conn_fail(nats_conn_t *c, const char *doing, natsStatus s);

/* On any thread: notes an error given as text for the loop to log. */
void nats_conn_fail_text(nats_conn_t *c, const char *why);

/* On the thread: what failed works now (the loop clears loop_error). */
void nats_conn_ok(nats_conn_t *c);

/* On the loop: logs the events noted since the last call. */
void nats_conn_log_events(nats_conn_t *c);

/* After the loop has returned: waits up to timeout_ms for every thread to
 * finish and libnats to release its own. 0, or -ETIMEDOUT. */
int nats_conn_wait_all(int64_t timeout_ms);

#endif
