/*
 * floor_server.h - the fan-out benchmark's floor: the least a one-thread
 * RESP pub/sub server can do, run beside tickd and Redis to show how much of
 * a figure is the machine's (the wake-ups, the loopback writes, the client)
 * and how much is the server's.
 *
 * Per read from a publisher it parses the PUBLISH commands, frames each
 * payload as a pub/sub "message" into one buffer, writes that buffer to
 * every subscriber (one write each, the last to subscribe first) and then
 * answers the publisher. It keeps no channel table (every subscriber gets
 * every PUBLISH, whatever the channel: the benchmark uses one), no ticks,
 * no queues, no limits; its sockets block on write. Commands: PING,
 * SUBSCRIBE (one channel), PUBLISH; anything else is answered
 * "-ERR unknown command". A connection that sends bytes that are not RESP
 * arrays of bulk strings, or an argument over 1 MiB, is closed.
 */
#ifndef TICKD_BENCH_FLOOR_SERVER_H
#define TICKD_BENCH_FLOOR_SERVER_H

/* Serves 127.0.0.1:port until the process is killed. Returns only when it
 * cannot start or its event loop fails: -errno. */
int floor_serve(int port);

#endif
