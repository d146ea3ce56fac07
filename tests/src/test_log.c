/*
 * test_log.c - src/log.c: journal priority prefixes when $JOURNAL_STREAM
 * names stderr, a timestamp and level word otherwise, the level threshold,
 * and one line per message.
 *
 * Each test points fd 2 at a temporary file while it logs, and puts stderr
 * back before asserting (cmocka reports failures on stderr).
 */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "src/log.h"

typedef struct capture {
    int saved; /* the real stderr */
    int fd;    /* the temporary file on fd 2 meanwhile */
    char text[8192];
    size_t len;
} capture_t;

static void capture_start(capture_t *c)
{
    char path[] = "/tmp/tickd-test-log.XXXXXX";
    c->fd = mkstemp(path);
    assert_true(c->fd >= 0);
    unlink(path);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(c->fd, STDERR_FILENO) >= 0);
}

/* Sets $JOURNAL_STREAM to the device:inode of the captured stderr. */
static void journal_is_stderr(const capture_t *c)
{
    struct stat st;
    char v[64];
    fstat(c->fd, &st);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
}

static void capture_stop(capture_t *c)
{
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    ssize_t n = pread(c->fd, c->text, sizeof(c->text) - 1, 0);
    close(c->fd);
    assert_true(n >= 0);
    c->len = (size_t)n;
    c->text[c->len] = '\0';
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int r = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (r != 0)
        fail_msg("\"%s\" does not match /%s/", text, pattern);
}

static void journal_stream_naming_stderr_gives_priority_prefixes(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    journal_is_stderr(&c);
    log_init(LOG_DEBUG);
    log_msg(LOG_WARNING, "disk %s", "full");
    log_msg(LOG_ERR, "journal: write failed");
    log_msg(LOG_DEBUG, "details");
    capture_stop(&c);
    assert_string_equal(c.text, "<4>disk full\n<3>journal: write failed\n<7>details\n");
}

static void journal_stream_of_another_file_gives_time_and_level_word(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    setenv("JOURNAL_STREAM", "1:2", 1);
    log_init(LOG_INFO);
    log_msg(LOG_WARNING, "disk %s", "full");
    log_msg(LOG_INFO, "ready");
    capture_stop(&c);
    assert_matches(c.text, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                           "warning: disk full\n"
                           "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z info: ready\n$");
}

static void no_journal_stream_gives_time_and_level_word(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    unsetenv("JOURNAL_STREAM");
    log_init(LOG_INFO);
    log_msg(LOG_ERR, "bad");
    capture_stop(&c);
    assert_matches(c.text, "^[0-9-]{10}T[0-9:.]{12}Z error: bad\n$");
}

static void malformed_journal_stream_is_not_the_journal(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    journal_is_stderr(&c);
    char v[80];
    snprintf(v, sizeof(v), "%sx", getenv("JOURNAL_STREAM"));
    setenv("JOURNAL_STREAM", v, 1);
    log_init(LOG_INFO);
    log_msg(LOG_ERR, "bad");
    capture_stop(&c);
    assert_matches(c.text, "Z error: bad\n$");
}

static void messages_above_the_threshold_are_dropped_until_it_changes(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    journal_is_stderr(&c);
    log_init(LOG_WARNING);
    log_msg(LOG_INFO, "dropped");
    log_msg(LOG_DEBUG, "dropped too");
    log_msg(LOG_WARNING, "kept");
    log_set_level(LOG_DEBUG);
    log_msg(LOG_DEBUG, "now kept");
    capture_stop(&c);
    assert_string_equal(c.text, "<4>kept\n<7>now kept\n");
}

static void a_message_is_one_line_whatever_line_feeds_it_holds(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    journal_is_stderr(&c);
    log_init(LOG_INFO);
    log_msg(LOG_INFO, "first\nsecond\n");
    log_msg(LOG_INFO, "\n");
    capture_stop(&c);
    assert_string_equal(c.text, "<6>first second\n<6>\n");
}

static void long_messages_are_cut_to_one_line_ending_in_an_ellipsis(void **state)
{
    (void)state;
    static char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    capture_t c;
    capture_start(&c);
    journal_is_stderr(&c);
    log_init(LOG_INFO);
    log_msg(LOG_INFO, "%s", big);
    log_msg(LOG_INFO, "after");
    capture_stop(&c);
    const char *nl = strchr(c.text, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - c.text + 1, 4096);
    assert_memory_equal(nl - 3, "...", 3);
    assert_memory_equal(c.text, "<6>xxx", 6);
    assert_string_equal(nl + 1, "<6>after\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(journal_stream_naming_stderr_gives_priority_prefixes),
        cmocka_unit_test(journal_stream_of_another_file_gives_time_and_level_word),
        cmocka_unit_test(no_journal_stream_gives_time_and_level_word),
        cmocka_unit_test(malformed_journal_stream_is_not_the_journal),
        cmocka_unit_test(messages_above_the_threshold_are_dropped_until_it_changes),
        cmocka_unit_test(a_message_is_one_line_whatever_line_feeds_it_holds),
        cmocka_unit_test(long_messages_are_cut_to_one_line_ending_in_an_ellipsis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
