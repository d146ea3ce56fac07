/*
 * log.h - the daemon's log: one line per message on stderr.
 *
 * Levels are syslog priorities (<syslog.h>): LOG_ERR, LOG_WARNING,
 * LOG_NOTICE, LOG_INFO, LOG_DEBUG. A message above the threshold (log.level)
 * is dropped. Under systemd, when stderr is the journal ($JOURNAL_STREAM
 * names stderr's device and inode), each line starts with the priority as
 * "<N>" and journald adds the time; anywhere else it starts with the UTC
 * time and the level as a word:
 *
 *   <4>feed nasdaq: input 12: bad length (skipped)
 *   2024-05-01T14:03:07.118Z warning: feed nasdaq: input 12: bad length (skipped)
 *
 * A message is one line: line feeds in it become spaces. Lines over 4 KiB
 * are cut and end in "...".
 */
#ifndef TICKD_SRC_LOG_H
#define TICKD_SRC_LOG_H

#include <syslog.h>

/* Sets the threshold and decides the line format (journal or plain) from
 * $JOURNAL_STREAM and stderr as they are now. Call again after either
 * changes. */
void log_init(int level);

/* Changes the threshold (configuration reload). */
void log_set_level(int level);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
