/*
 * test_health.c - src/health.c: the staleness rule of /healthz and the text
 * and JSON pages it writes. The feeds are snapshots made here, judged at a
 * time the test chooses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "src/health.h"

#define SEC 1000000000LL
#define T0  (1700000000LL * SEC) /* when the feeds started */

/* A TCP feed, up, with a source connected, that last spoke at T0 + 1s. */
static health_feed_t tcp_feed(void)
{
    return (health_feed_t){.name = "live",
                           .type = "tcp",
                           .up = 1,
                           .connected = 1,
                           .last_message_ns = T0 + SEC,
                           .quiet_since_ns = T0 + SEC};
}

/* A non-looping file feed at its end, its last message at T0 + 2s. */
static health_feed_t finished_file(void)
{
    return (health_feed_t){.name = "day",
                           .type = "file",
                           .up = 1,
                           .connected = 1,
                           .finished = 1,
                           .last_message_ns = T0 + 2 * SEC,
                           .quiet_since_ns = T0 + 2 * SEC};
}

static int judge(const health_feed_t *h, int64_t now, char reason[128])
{
    return health_judge(h, now, reason, 128);
}

static void a_feed_that_is_not_up_is_unhealthy_with_or_without_a_limit(void **state)
{
    (void)state;
    char reason[128];
    health_feed_t h = finished_file();
    h.up = 0;
    assert_int_equal(judge(&h, T0 + 3 * SEC, reason), 0);
    assert_string_equal(reason, "not up (its file cannot be read)");
    h = tcp_feed();
    h.up = 0;
    h.stale_after_ns = 3600 * SEC;
    assert_int_equal(judge(&h, T0 + 3 * SEC, reason), 0);
    assert_string_equal(reason, "not up (not listening)");
}

static void without_a_limit_quiet_feeds_and_finished_replays_stay_healthy(void **state)
{
    (void)state;
    char reason[128];
    health_feed_t h = tcp_feed();
    h.connected = 0;
    assert_int_equal(judge(&h, T0 + 86400 * SEC, reason), 1);
    assert_string_equal(reason, "");
    h = finished_file();
    assert_int_equal(judge(&h, T0 + 86400 * SEC, reason), 1);
    assert_string_equal(reason, "");
}

static void with_a_limit_a_feed_is_stale_only_once_the_limit_has_passed(void **state)
{
    (void)state;
    char reason[128];
    health_feed_t h = tcp_feed();
    h.stale_after_ns = 5 * SEC;
    assert_int_equal(judge(&h, T0 + 6 * SEC, reason), 1); /* exactly the limit */
    assert_int_equal(judge(&h, T0 + 6 * SEC + 1, reason), 0);
    assert_string_equal(reason, "no message for 5.0s (stale_after 5s)");
    assert_int_equal(judge(&h, T0 + 8 * SEC + 3 * SEC / 10, reason), 0);
    assert_string_equal(reason, "no message for 7.3s (stale_after 5s)");
}

static void a_stale_tcp_feed_without_a_source_and_a_stale_finished_file_say_so(void **state)
{
    (void)state;
    char reason[128];
    health_feed_t h = tcp_feed();
    h.connected = 0;
    h.last_message_ns = 0;
    h.quiet_since_ns = T0;
    h.stale_after_ns = SEC + SEC / 2;
    assert_int_equal(judge(&h, T0 + SEC, reason), 1);
    assert_int_equal(judge(&h, T0 + 2 * SEC, reason), 0);
    assert_string_equal(reason, "no source connected for 2.0s (stale_after 1.5s)");
    h = finished_file();
    h.stale_after_ns = SEC;
    assert_int_equal(judge(&h, T0 + 5 * SEC, reason), 0);
    assert_string_equal(reason, "finished, no message for 3.0s (stale_after 1s)");
}

static void a_clock_that_went_back_reads_as_no_silence(void **state)
{
    (void)state;
    char reason[128];
    health_feed_t h = tcp_feed();
    h.stale_after_ns = 1;
    assert_int_equal(judge(&h, T0 - 3600 * SEC, reason), 1);
}

/* The page for feeds at now, after no reload, and what health_render()
 * returned. */
static int render(const health_feed_t *feeds, size_t n, int stopping, int64_t now, int json,
                  http_body_t *b)
{
    int r = health_render(feeds, n, NULL, stopping, now, json, b);
    assert_true(r == 0 || r == 1);
    assert_int_equal(http_body_append(b, "", 1), 0);
    return r;
}

static void the_text_page_is_ok_or_names_each_faulty_feed_on_a_line(void **state)
{
    (void)state;
    health_feed_t feeds[3] = {tcp_feed(), finished_file(), tcp_feed()};
    feeds[2].name = "backup";
    feeds[2].connected = 0;
    feeds[2].stale_after_ns = SEC;
    http_body_t b = {0};
    assert_int_equal(render(feeds, 3, 0, T0 + 2 * SEC, 0, &b), 1);
    assert_string_equal(b.data, "ok\n");
    b.len = 0;
    assert_int_equal(render(feeds, 3, 0, T0 + 4 * SEC, 0, &b), 0);
    assert_string_equal(b.data, "unhealthy\nfeed backup: no source connected for 3.0s "
                                "(stale_after 1s)\n");
    b.len = 0;
    feeds[0].up = 0;
    assert_int_equal(render(feeds, 3, 0, T0 + 4 * SEC, 0, &b), 0);
    assert_string_equal(b.data, "unhealthy\nfeed live: not up (not listening)\n"
                                "feed backup: no source connected for 3.0s (stale_after 1s)\n");
    http_body_free(&b);
}

static void a_stopping_daemon_is_unhealthy_whatever_its_feeds_say(void **state)
{
    (void)state;
    health_feed_t h = tcp_feed();
    http_body_t b = {0};
    assert_int_equal(render(&h, 1, 1, T0 + 2 * SEC, 0, &b), 0);
    assert_string_equal(b.data, "unhealthy\ntickd is stopping\n");
    b.len = 0;
    assert_int_equal(render(NULL, 0, 1, T0, 1, &b), 0);
    assert_string_equal(b.data, "{\"status\":\"unhealthy\",\"stopping\":true,\"feeds\":[],"
                                "\"last_reload\":null}\n");
    http_body_free(&b);
}

static void the_json_page_reports_every_feed_with_null_for_what_does_not_apply(void **state)
{
    (void)state;
    health_feed_t feeds[2] = {tcp_feed(), finished_file()};
    feeds[0].connected = 0;
    feeds[0].last_message_ns = 0;
    feeds[0].quiet_since_ns = T0;
    feeds[0].stale_after_ns = 2500 * 1000000LL;
    http_body_t b = {0};
    assert_int_equal(render(feeds, 2, 0, T0 + 3 * SEC + SEC / 2, 1, &b), 0);
    assert_string_equal(
        b.data,
        "{\"status\":\"unhealthy\",\"stopping\":false,\"feeds\":["
        "{\"name\":\"live\",\"type\":\"tcp\",\"up\":true,\"connected\":false,\"finished\":false,"
        "\"seconds_since_last_message\":null,\"stale_after_seconds\":2.5,"
        "\"holding_seconds\":null,\"healthy\":false,"
        "\"reason\":\"no source connected for 3.5s (stale_after 2.5s)\"},"
        "{\"name\":\"day\",\"type\":\"file\",\"up\":true,\"connected\":true,\"finished\":true,"
        "\"seconds_since_last_message\":1.500,\"stale_after_seconds\":null,"
        "\"holding_seconds\":null,\"healthy\":true,\"reason\":null}],\"last_reload\":null}\n");
    b.len = 0;
    assert_int_equal(render(feeds + 1, 1, 0, T0 + 3 * SEC, 1, &b), 1);
    assert_non_null(strstr(b.data, "{\"status\":\"ok\",\"stopping\":false,\"feeds\":[{"));
    http_body_free(&b);
}

/* A JetStream nats feed restarted at T0 + 1s, holding back what it fetches
 * for its consumer's pending messages since then. */
static health_feed_t holding_nats(void)
{
    return (health_feed_t){.name = "edge",
                           .type = "nats",
                           .up = 1,
                           .connected = 1,
                           .quiet_since_ns = T0 + SEC,
                           .hold_since_ns = T0 + SEC};
}

static void a_holding_nats_feed_says_since_when_and_is_healthy_until_stale(void **state)
{
    (void)state;
    char reason[128];
    health_feed_t h = holding_nats();
    http_body_t b = {0};
    assert_int_equal(render(&h, 1, 0, T0 + 3 * SEC + SEC / 4, 1, &b), 1);
    assert_non_null(strstr(b.data, "\"stale_after_seconds\":null,\"holding_seconds\":2.250,"
                                   "\"healthy\":true,\"reason\":null}"));
    http_body_free(&b);
    h.stale_after_ns = 2 * SEC;
    assert_int_equal(judge(&h, T0 + 3 * SEC, reason), 1);
    assert_int_equal(judge(&h, T0 + 3 * SEC + SEC / 2, reason), 0);
    assert_string_equal(reason, "holding back for the consumer's pending messages, no message "
                                "for 2.5s (stale_after 2s)");
    h.hold_since_ns = 0; /* the hold is over, and still nothing came */
    assert_int_equal(judge(&h, T0 + 3 * SEC + SEC / 2, reason), 0);
    assert_string_equal(reason, "no message for 2.5s (stale_after 2s)");
}

static void a_file_feed_in_error_says_why_it_is_not_up(void **state)
{
    (void)state;
    char reason[128];
    health_feed_t h = finished_file();
    h.up = 0;
    h.error = "no message in day.csv (it is empty, or nothing in it decodes)";
    assert_int_equal(judge(&h, T0 + 3 * SEC, reason), 0);
    assert_string_equal(reason,
                        "not up (no message in day.csv (it is empty, or nothing in it decodes))");
    h.up = 1; /* an error left over from before it came up again is not reported */
    assert_int_equal(judge(&h, T0 + 3 * SEC, reason), 1);
}

static void a_failed_reload_shows_on_both_pages_and_leaves_the_status_ok(void **state)
{
    (void)state;
    health_feed_t h = tcp_feed();
    health_reload_t failed = {
        .ok = 0, .error = "feed live: cannot listen on 127.0.0.1:1: \"in use\"", .at_ns = T0 + SEC};
    http_body_t b = {0};
    assert_int_equal(health_render(&h, 1, &failed, 0, T0 + 3 * SEC, 0, &b), 1);
    assert_int_equal(http_body_append(&b, "", 1), 0);
    assert_string_equal(b.data, "ok\nlast reload failed: feed live: cannot listen on "
                                "127.0.0.1:1: \"in use\"\n");
    b.len = 0;
    assert_int_equal(health_render(&h, 1, &failed, 0, T0 + 3 * SEC + SEC / 4, 1, &b), 1);
    assert_int_equal(http_body_append(&b, "", 1), 0);
    assert_non_null(strstr(b.data, "{\"status\":\"ok\","));
    assert_non_null(strstr(b.data, "],\"last_reload\":{\"ok\":false,\"error\":\"feed live: "
                                   "cannot listen on 127.0.0.1:1: \\\"in use\\\"\","
                                   "\"seconds_ago\":2.250}}\n"));
    health_reload_t ok = {.ok = 1, .error = "", .at_ns = T0 + SEC};
    b.len = 0;
    assert_int_equal(health_render(&h, 1, &ok, 0, T0 + 2 * SEC, 0, &b), 1);
    assert_int_equal(http_body_append(&b, "", 1), 0);
    assert_string_equal(b.data, "ok\n");
    b.len = 0;
    assert_int_equal(health_render(&h, 1, &ok, 0, T0 + 2 * SEC, 1, &b), 1);
    assert_int_equal(http_body_append(&b, "", 1), 0);
    assert_non_null(
        strstr(b.data, "\"last_reload\":{\"ok\":true,\"error\":null,\"seconds_ago\":1.000}}"));
    http_body_free(&b);
}

static void json_strings_are_escaped(void **state)
{
    (void)state;
    health_feed_t h = tcp_feed();
    h.name = "a\"b\\c\n\x01";
    http_body_t b = {0};
    render(&h, 1, 0, T0 + SEC, 1, &b);
    assert_non_null(strstr(b.data, "\"name\":\"a\\\"b\\\\c\\u000a\\u0001\","));
    http_body_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_feed_that_is_not_up_is_unhealthy_with_or_without_a_limit),
        cmocka_unit_test(without_a_limit_quiet_feeds_and_finished_replays_stay_healthy),
        cmocka_unit_test(with_a_limit_a_feed_is_stale_only_once_the_limit_has_passed),
        cmocka_unit_test(a_stale_tcp_feed_without_a_source_and_a_stale_finished_file_say_so),
        cmocka_unit_test(a_clock_that_went_back_reads_as_no_silence),
        cmocka_unit_test(the_text_page_is_ok_or_names_each_faulty_feed_on_a_line),
        cmocka_unit_test(a_stopping_daemon_is_unhealthy_whatever_its_feeds_say),
        cmocka_unit_test(the_json_page_reports_every_feed_with_null_for_what_does_not_apply),
        cmocka_unit_test(a_holding_nats_feed_says_since_when_and_is_healthy_until_stale),
        cmocka_unit_test(a_file_feed_in_error_says_why_it_is_not_up),
        cmocka_unit_test(a_failed_reload_shows_on_both_pages_and_leaves_the_status_ok),
        cmocka_unit_test(json_strings_are_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
