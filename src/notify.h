/*
 * notify.h - systemd's service notification protocol (sd_notify(3)), spoken
 * directly: no libsystemd.
 *
 * Under Type=notify systemd passes $NOTIFY_SOCKET, an AF_UNIX datagram socket
 * (a path, or an abstract name when it starts with '@'); each notification
 * is one datagram of newline-separated VAR=value assignments. Without
 * $NOTIFY_SOCKET every call does nothing and returns 0, so the daemon calls
 * them unconditionally.
 *
 * The life of a notified service:
 *
 *   notify_ready()       READY=1, once start-up is done (and again after a
 *                        reload, finished or failed)
 *   notify_status(...)   STATUS=..., a line for `systemctl status`
 *   notify_reloading()   RELOADING=1 with MONOTONIC_USEC=, when a reload
 *                        begins (systemd 253+ wants both; 252 ignores them)
 *   notify_stopping()    STOPPING=1, when shutdown begins
 *   notify_watchdog()    WATCHDOG=1, at least every notify_watchdog_usec()/2
 *
 * Each call opens a non-blocking socket, sends, and closes it: nothing is
 * kept between calls, and a systemd that does not keep up makes a call fail
 * with -EAGAIN instead of stalling the loop.
 */
#ifndef TICKD_SRC_NOTIFY_H
#define TICKD_SRC_NOTIFY_H

#include <stdint.h>

/* Non-zero when $NOTIFY_SOCKET is set (we run under Type=notify). */
int notify_enabled(void);

/* Sends state (VAR=value lines) as one datagram. 0 (also when there is no
 * $NOTIFY_SOCKET), -EAFNOSUPPORT for an address other than a path or '@name',
 * -ENAMETOOLONG, or the -errno of socket()/sendto(). */
int notify_send(const char *state);

int notify_ready(void);
int notify_reloading(void);
int notify_stopping(void);
int notify_watchdog(void);

/* STATUS=<text>; a line feed in the text becomes a space (it would end the
 * assignment). Texts over 1 KiB are cut. */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval systemd expects pings within, in microseconds, from
 * $WATCHDOG_USEC; 0 when the watchdog is off: the variable is unset, not a
 * positive number, or $WATCHDOG_PID names another process. */
uint64_t notify_watchdog_usec(void);

#endif
