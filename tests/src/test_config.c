/*
 * test_config.c - tests of src/config.c: the YAML configuration loader.
 *
 * The value parsers (sizes, durations, host:port) are tested directly; the
 * loader through the files in tests/src/configs/ (bad_*.yaml must fail with
 * the exact message asserted here, good_*.yaml must load), the shipped
 * config/tickd.yaml and config/examples/, and in-memory buffers. The last
 * tests feed it truncated and mutated files, as a fuzzer would, to check that
 * every input either loads or fails with a message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "feed/ingest.h"
#include "feed/journal.h"
#include "src/config.h"

#define CONFIGS TICKD_TEST_CONFIGS /* tests/src/configs */

static const char *new_york = "/usr/share/zoneinfo/America/New_York";

static int setup(void **state)
{
    *state = calloc(1, sizeof(config_t));
    return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Loads yaml from memory as "t.yaml", from a buffer of exactly its length
 * (no NUL after it, so that AddressSanitizer sees any read past the end). */
static int load_text(config_t *cfg, const char *yaml, char *err)
{
    size_t len = strlen(yaml);
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, yaml, len);
    int r = config_load_buffer("t.yaml", copy, len, cfg, err, CONFIG_ERR_LEN);
    free(copy);
    return r;
}

/* configs/<file> must fail with -EINVAL and exactly "<path>:<message>". */
static void assert_rejected(config_t *cfg, const char *file, const char *message)
{
    char path[1024], want[2048], err[CONFIG_ERR_LEN];
    snprintf(path, sizeof(path), "%s/%s", CONFIGS, file);
    snprintf(want, sizeof(want), "%s:%s", path, message);
    assert_int_equal(config_load(path, cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, want);
}

/* yaml in memory must fail with -EINVAL and exactly "t.yaml:<message>". */
static void assert_text_rejected(config_t *cfg, const char *yaml, const char *message)
{
    char err[CONFIG_ERR_LEN], want[1024];
    snprintf(want, sizeof(want), "t.yaml:%s", message);
    assert_int_equal(load_text(cfg, yaml, err), -EINVAL);
    assert_string_equal(err, want);
}

static void assert_loads(config_t *cfg, const char *path)
{
    char err[CONFIG_ERR_LEN] = "";
    int r = config_load(path, cfg, err, sizeof(err));
    if (r != 0)
        print_error("%s\n", err);
    assert_int_equal(r, 0);
    assert_string_equal(err, "");
}

/* ---- defaults and whole files ---- */

static void assert_defaults(const config_t *cfg)
{
    assert_int_equal(cfg->heap.arena_size, 1 << 20);
    assert_int_equal(cfg->heap.pool_size, 16 << 10);
    assert_int_equal(cfg->heap.debug, 0);
    assert_int_equal(cfg->gc.interval_ns, 100000000);
    assert_int_equal(cfg->gc.thresholds[0], 700);
    assert_int_equal(cfg->gc.thresholds[1], 10);
    assert_int_equal(cfg->gc.thresholds[2], 10);
    assert_string_equal(cfg->pubsub.listen, "127.0.0.1:6380");
    assert_int_equal(cfg->pubsub.payload, 0);
    assert_string_equal(cfg->pubsub.password, "");
    assert_int_equal(cfg->pubsub.max_clients, 10000);
    assert_int_equal(cfg->pubsub.max_request, 64 << 10);
    assert_int_equal(cfg->pubsub.idle_timeout_ns, 0);
    assert_int_equal(cfg->pubsub.hard_limit, 32 << 20);
    assert_int_equal(cfg->pubsub.soft_limit, 8 << 20);
    assert_int_equal(cfg->pubsub.soft_ns, 60000000000ULL);
    assert_int_equal(cfg->pubsub.snapshot, 1);
    assert_int_equal(cfg->pubsub.slow_consumer, 0);
    assert_int_equal(cfg->pubsub.max_publish_symbols, 100000);
    assert_string_equal(cfg->http.listen, "127.0.0.1:9108");
    assert_int_equal(cfg->http.max_connections, 64);
    assert_int_equal(cfg->http.max_header, 8 << 10);
    assert_int_equal(cfg->http.idle_timeout_ns, 30000000000ULL);
    assert_int_equal(cfg->http.header_timeout_ns, 5000000000ULL);
    assert_int_equal(cfg->journal.enabled, 0);
    assert_string_equal(cfg->journal.dir, "/var/lib/tickd");
    assert_int_equal(cfg->journal.fsync, JOURNAL_FSYNC_INTERVAL);
    assert_int_equal(cfg->journal.fsync_interval_ns, 1000000000);
    assert_int_equal(cfg->session.roll_minute, 0);
    assert_string_equal(cfg->session.timezone, "UTC");
    assert_int_equal(cfg->log.level, 6);
    assert_int_equal(cfg->bars.nintervals, 2);
    assert_int_equal(cfg->bars.intervals_ns[0], 1000000000);
    assert_int_equal(cfg->bars.intervals_ns[1], 60000000000LL);
    assert_int_equal(cfg->bars.grace_ns, 250000000);
    assert_int_equal(cfg->nfeeds, 0);
}

static void test_defaults_are_the_documented_values(void **state)
{
    config_t *cfg = *state;
    memset(cfg, 0x5A, sizeof(*cfg));
    config_defaults(cfg);
    assert_defaults(cfg);
}

static void test_empty_or_comment_only_file_gives_defaults_and_no_feeds(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_loads(cfg, CONFIGS "/empty.yaml");
    assert_defaults(cfg);
    assert_string_equal(cfg->path, CONFIGS "/empty.yaml");
    assert_loads(cfg, CONFIGS "/comments_only.yaml");
    assert_defaults(cfg);
    assert_int_equal(load_text(cfg, "---\n", err), 0);
    assert_defaults(cfg);
    assert_int_equal(load_text(cfg, "---\n...\n", err), 0);
    assert_defaults(cfg);
    assert_int_equal(config_load_buffer("t.yaml", NULL, 0, cfg, err, sizeof(err)), 0);
    assert_defaults(cfg);
}

static void test_empty_sections_keep_their_defaults(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load_text(cfg, "heap:\npubsub: ~\nhttp: {}\nfeeds:\nlog: null\n", err), 0);
    assert_defaults(cfg);
}

static void test_full_config_sets_every_key(void **state)
{
    config_t *cfg = *state;
    if (access(new_york, R_OK) != 0)
        skip(); /* no tzdata on this machine */
    assert_loads(cfg, CONFIGS "/good_full.yaml");
    assert_int_equal(cfg->heap.arena_size, 4 << 20);
    assert_int_equal(cfg->heap.pool_size, 64 << 10);
    assert_int_equal(cfg->heap.debug, 1);
    assert_int_equal(cfg->gc.interval_ns, 250000000);
    assert_int_equal(cfg->gc.thresholds[0], 1000);
    assert_int_equal(cfg->gc.thresholds[1], 20);
    assert_int_equal(cfg->gc.thresholds[2], 5);
    assert_string_equal(cfg->pubsub.listen, "[::1]:6390");
    assert_int_equal(cfg->pubsub.payload, 1);
    assert_string_equal(cfg->pubsub.password, "s3cret: with a colon");
    assert_int_equal(cfg->pubsub.max_clients, 500);
    assert_int_equal(cfg->pubsub.max_request, 1 << 20);
    assert_int_equal(cfg->pubsub.idle_timeout_ns, 300000000000ULL);
    assert_int_equal(cfg->pubsub.snapshot, 0);
    assert_int_equal(cfg->pubsub.max_publish_symbols, 0);
    assert_int_equal(cfg->pubsub.hard_limit, 1 << 30);
    assert_int_equal(cfg->pubsub.soft_limit, 100000000);
    assert_int_equal(cfg->pubsub.soft_ns, 90000000000ULL);
    assert_string_equal(cfg->http.listen, "localhost:0");
    assert_int_equal(cfg->http.max_connections, 16);
    assert_int_equal(cfg->http.max_header, 16 << 10);
    assert_int_equal(cfg->http.idle_timeout_ns, 0);
    assert_int_equal(cfg->http.header_timeout_ns, 2000000000ULL);
    assert_int_equal(cfg->journal.enabled, 1);
    assert_string_equal(cfg->journal.dir, "/srv/tickd/journal");
    assert_int_equal(cfg->journal.fsync, JOURNAL_FSYNC_ALWAYS);
    assert_int_equal(cfg->journal.fsync_interval_ns, 20000000);
    assert_int_equal(cfg->session.roll_minute, 17 * 60 + 30);
    assert_string_equal(cfg->session.timezone, "America/New_York");
    assert_int_equal(cfg->log.level, 7);

    assert_int_equal(cfg->nfeeds, 4);
    const config_feed_t *f = cfg->feeds;
    assert_string_equal(f[0].name, "vendor_csv");
    assert_int_equal(f[0].kind, FEED_FILE);
    assert_int_equal(f[0].format, INGEST_CSV);
    assert_string_equal(f[0].path, "/data/vendor.csv");
    assert_true(f[0].speed == 0.5);
    assert_int_equal(f[0].loop, 1);
    assert_string_equal(f[1].name, "journal-day");
    assert_int_equal(f[1].format, INGEST_TLOG);
    assert_true(f[1].speed == 0); /* max, the default */
    assert_int_equal(f[1].loop, 0);
    assert_string_equal(f[2].name, "gateway");
    assert_int_equal(f[2].kind, FEED_TCP);
    assert_int_equal(f[2].format, INGEST_ITCH);
    assert_string_equal(f[2].listen, "0.0.0.0:0");
    assert_string_equal(f[2].path, "");
    assert_string_equal(f[3].name, "mold");
    assert_int_equal(f[3].kind, FEED_UDP);
    assert_int_equal(f[3].format, INGEST_MOLD);
    assert_string_equal(f[3].listen, "0.0.0.0:0");
    assert_string_equal(f[3].group, "239.1.2.3");
    assert_string_equal(f[3].interface, "127.0.0.1");
}

static void test_relative_paths_are_taken_from_the_config_directory(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_loads(cfg, CONFIGS "/good_relative_paths.yaml");
    assert_string_equal(cfg->journal.dir, CONFIGS "/journal");
    assert_string_equal(cfg->feeds[0].path, CONFIGS "/../build/sample/day.itch");
    assert_string_equal(cfg->feeds[1].path, "/data/ticks.csv");

    const char *yaml = "journal: {dir: j}\n";
    assert_int_equal(
        config_load_buffer("/etc/tickd/tickd.yaml", yaml, strlen(yaml), cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->journal.dir, "/etc/tickd/j");
    assert_int_equal(config_load_buffer("/tickd.yaml", yaml, strlen(yaml), cfg, err, sizeof(err)),
                     0);
    assert_string_equal(cfg->journal.dir, "/j");
    /* A file named without a directory is in the current one: as written. */
    assert_int_equal(config_load_buffer("tickd.yaml", yaml, strlen(yaml), cfg, err, sizeof(err)),
                     0);
    assert_string_equal(cfg->journal.dir, "j");
}

static void test_shipped_tickd_yaml_replays_the_sample_in_a_loop(void **state)
{
    config_t *cfg = *state;
    assert_loads(cfg, TICKD_SOURCE_DIR "/config/tickd.yaml");
    assert_int_equal(cfg->nfeeds, 1);
    assert_string_equal(cfg->feeds[0].name, "sample");
    assert_int_equal(cfg->feeds[0].kind, FEED_FILE);
    assert_int_equal(cfg->feeds[0].format, INGEST_ITCH);
    assert_string_equal(cfg->feeds[0].path, TICKD_SOURCE_DIR "/config/../build/sample/day.itch");
    assert_true(cfg->feeds[0].speed == 1);
    assert_int_equal(cfg->feeds[0].loop, 1);
    assert_string_equal(cfg->pubsub.listen, "127.0.0.1:6380");
    assert_string_equal(cfg->http.listen, "127.0.0.1:9108");
    assert_int_equal(cfg->journal.enabled, 0);
    assert_int_equal(cfg->gc.interval_ns, 100000000);
}

static void test_shipped_examples_load(void **state)
{
    config_t *cfg = *state;
    if (access(new_york, R_OK) != 0)
        skip(); /* live-mold.yaml rolls in New York time */
    assert_loads(cfg, TICKD_SOURCE_DIR "/config/examples/live-mold.yaml");
    assert_int_equal(cfg->nfeeds, 2);
    assert_int_equal(cfg->feeds[0].kind, FEED_UDP);
    assert_int_equal(cfg->feeds[1].kind, FEED_TCP);
    assert_int_equal(cfg->journal.enabled, 1);
    assert_loads(cfg, TICKD_SOURCE_DIR "/config/examples/replay-multi.yaml");
    assert_int_equal(cfg->nfeeds, 3);
    assert_string_equal(cfg->feeds[0].path,
                        TICKD_SOURCE_DIR "/config/examples/../../build/sample/day.itch");
    assert_loads(cfg, TICKD_SOURCE_DIR "/config/examples/nats-feed-handler.yaml");
    assert_int_equal(cfg->nats.nservers, 1);
    assert_int_equal(cfg->nats.publish, 1);
    assert_string_equal(cfg->nats.jetstream.stream, "TICKS");
    assert_loads(cfg, TICKD_SOURCE_DIR "/config/examples/nats-edge.yaml");
    assert_int_equal(cfg->nats.publish, 0);
    assert_int_equal(cfg->feeds[0].kind, FEED_NATS);
    assert_string_equal(cfg->feeds[0].durable, "edge1");
}

static void test_32_feeds_are_accepted(void **state)
{
    config_t *cfg = *state;
    assert_loads(cfg, CONFIGS "/good_max_feeds.yaml");
    assert_int_equal(cfg->nfeeds, CONFIG_MAX_FEEDS);
    assert_string_equal(cfg->feeds[31].name, "f31");
}

/* ---- values ---- */

static void assert_size(const char *s, uint64_t want)
{
    size_t got = 1234567;
    if (config_parse_size(s, &got) != 0)
        print_error("size \"%s\" rejected\n", s);
    assert_int_equal(config_parse_size(s, &got), 0);
    assert_int_equal(got, want);
}

static void assert_bad_size(const char *s)
{
    size_t got = 1234567;
    if (config_parse_size(s, &got) != -EINVAL)
        print_error("size \"%s\" accepted\n", s);
    assert_int_equal(config_parse_size(s, &got), -EINVAL);
    assert_int_equal(got, 1234567);
}

static void test_sizes_parse_exactly_in_binary_and_decimal_units(void **state)
{
    (void)state;
    assert_size("0", 0);
    assert_size("512", 512);
    assert_size("7B", 7);
    assert_size("64KiB", 65536);
    assert_size("32MiB", 33554432);
    assert_size("1GiB", 1073741824);
    assert_size("2TiB", 2199023255552ULL);
    assert_size("1KB", 1000);
    assert_size("5MB", 5000000);
    assert_size("3GB", 3000000000ULL);
    assert_size("1TB", 1000000000000ULL);
    assert_size("16kib", 16384);
    assert_size("0064KiB", 65536);
    assert_size("18446744073709551615", UINT64_MAX);
    assert_size("16777215TiB", UINT64_MAX - (1ULL << 40) + 1);
}

static void test_sizes_reject_garbage_negatives_fractions_and_overflow(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "abc",
                         "MiB",
                         "-1",
                         "-64KiB",
                         "+1",
                         "1.5MiB",
                         "0.5",
                         "32XB",
                         "32MB5",
                         "1 KiB",
                         " 1",
                         "1K",
                         "1e6",
                         "0x400",
                         "18446744073709551616",
                         "16777216TiB",
                         "18446744073709551615KiB",
                         "99999999999999999999GiB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_bad_size(bad[i]);
}

static void assert_duration(const char *s, uint64_t want)
{
    uint64_t got = 1234567;
    if (config_parse_duration(s, &got) != 0)
        print_error("duration \"%s\" rejected\n", s);
    assert_int_equal(config_parse_duration(s, &got), 0);
    assert_int_equal(got, want);
}

static void test_durations_parse_exactly_to_nanoseconds(void **state)
{
    (void)state;
    assert_duration("0", 0);
    assert_duration("0s", 0);
    assert_duration("10ns", 10);
    assert_duration("250us", 250000);
    assert_duration("250\xc2\xb5s", 250000);
    assert_duration("100ms", 100000000);
    assert_duration("60s", 60000000000ULL);
    assert_duration("5m", 300000000000ULL);
    assert_duration("1h", 3600000000000ULL);
    assert_duration("1h30m", 5400000000000ULL);
    assert_duration("1m30s500ms", 90500000000ULL);
    assert_duration("18446744073709551615ns", UINT64_MAX);
    assert_duration("5124095h", 5124095ULL * 3600000000000ULL);
}

static void test_durations_reject_garbage_missing_units_and_overflow(void **state)
{
    (void)state;
    const char *bad[] = {"",         "100",
                         "s",        "1.5s",
                         "-1s",      "1d",
                         "1S",       "1hh",
                         "1h30",     "1 s",
                         "+1s",      "18446744073709551616ns",
                         "5124096h", "18446744073709551615ns1ns"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t got = 1234567;
        if (config_parse_duration(bad[i], &got) != -EINVAL)
            print_error("duration \"%s\" accepted\n", bad[i]);
        assert_int_equal(config_parse_duration(bad[i], &got), -EINVAL);
        assert_int_equal(got, 1234567);
    }
}

static void assert_hostport(const char *s, const char *host, int port)
{
    char h[64];
    int p = -1;
    if (config_parse_hostport(s, h, sizeof(h), &p) != 0)
        print_error("\"%s\" rejected\n", s);
    assert_int_equal(config_parse_hostport(s, h, sizeof(h), &p), 0);
    assert_string_equal(h, host);
    assert_int_equal(p, port);
}

static void test_hostport_accepts_ipv4_bracketed_ipv6_and_localhost(void **state)
{
    (void)state;
    assert_hostport("127.0.0.1:6380", "127.0.0.1", 6380);
    assert_hostport("0.0.0.0:1", "0.0.0.0", 1);
    assert_hostport("0.0.0.0:0", "0.0.0.0", 0);
    assert_hostport("255.255.255.255:65535", "255.255.255.255", 65535);
    assert_hostport("[::1]:6380", "::1", 6380);
    assert_hostport("[::]:0", "::", 0);
    assert_hostport("[2001:db8::17]:9108", "2001:db8::17", 9108);
    assert_hostport("localhost:6380", "localhost", 6380);
}

static void test_hostport_rejects_port_alone_bad_ports_and_hostnames(void **state)
{
    (void)state;
    const char *bad[] = {"6380",
                         ":6380",
                         "127.0.0.1:",
                         "127.0.0.1:65536",
                         "127.0.0.1:-1",
                         "127.0.0.1:80x",
                         "127.0.0.1:+80",
                         "::1:6380",
                         "[::1]6380",
                         "[::1]",
                         "[::1",
                         "[]:80",
                         "[127.0.0.1]:80",
                         "1.2.3:80",
                         "example.com:80",
                         "",
                         "127.0.0.1:99999999999999999999",
                         "[fe80::1%eth0]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char h[64];
        int p = -1;
        if (config_parse_hostport(bad[i], h, sizeof(h), &p) != -EINVAL)
            print_error("\"%s\" accepted\n", bad[i]);
        assert_int_equal(config_parse_hostport(bad[i], h, sizeof(h), &p), -EINVAL);
        assert_int_equal(p, -1);
    }
    /* A host that does not fit the caller's buffer is refused, not cut. */
    char small[8];
    int p = -1;
    assert_int_equal(config_parse_hostport("[2001:db8::17]:80", small, sizeof(small), &p), -EINVAL);
}

static void test_booleans_accept_true_false_yes_no_on_off_in_any_case(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN], yaml[64];
    const char *yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "ON"};
    const char *no[] = {"false", "False", "FALSE", "no", "NO", "off", "Off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        snprintf(yaml, sizeof(yaml), "heap: {debug: %s}\n", yes[i]);
        assert_int_equal(load_text(cfg, yaml, err), 0);
        assert_int_equal(cfg->heap.debug, 1);
        snprintf(yaml, sizeof(yaml), "pubsub: {snapshot_on_subscribe: %s}\n", no[i]);
        assert_int_equal(load_text(cfg, yaml, err), 0);
        assert_int_equal(cfg->pubsub.snapshot, 0);
    }
    assert_text_rejected(cfg, "heap: {debug: 1}\n",
                         "1:15: heap.debug: expected true or false, got \"1\"");
}

static void test_roll_at_takes_hh_mm_on_the_24_hour_clock(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load_text(cfg, "session: {roll_at: \"9:05\"}\n", err), 0);
    assert_int_equal(cfg->session.roll_minute, 9 * 60 + 5);
    assert_int_equal(load_text(cfg, "session: {roll_at: 23:59}\n", err), 0);
    assert_int_equal(cfg->session.roll_minute, 23 * 60 + 59);
    const char *bad[] = {"7:5",    "12:60", "1230", "12:30:00", "-1:00",
                         "012:00", ":30",   "12:",  "ab:cd"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "session: {roll_at: \"%s\"}\n", bad[i]);
        assert_int_equal(load_text(cfg, yaml, err), -EINVAL);
    }
}

static void test_udp_feed_format_defaults_to_mold_and_file_speed_to_max(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load_text(cfg,
                               "feeds:\n"
                               "  - {name: m, type: udp, listen: \"0.0.0.0:0\"}\n"
                               "  - {name: f, type: file, format: itch, path: x}\n"
                               "  - {name: g, type: file, format: itch, path: y, speed: 2.5}\n",
                               err),
                     0);
    assert_int_equal(cfg->feeds[0].format, INGEST_MOLD);
    assert_string_equal(cfg->feeds[0].group, "");
    assert_true(cfg->feeds[1].speed == 0);
    assert_int_equal(cfg->feeds[1].loop, 0);
    assert_true(cfg->feeds[2].speed == 2.5);
}

static void test_stale_after_takes_a_duration_on_every_feed_type_and_is_off_by_default(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(
        load_text(cfg,
                  "feeds:\n"
                  "  - {name: t, type: tcp, format: csv, listen: \"0.0.0.0:0\",\n"
                  "     stale_after: 5s}\n"
                  "  - {name: m, type: udp, listen: \"0.0.0.0:0\", stale_after: 1500ms}\n"
                  "  - {name: f, type: file, format: itch, path: x, stale_after: 1m}\n"
                  "  - {name: g, type: file, format: itch, path: y}\n"
                  "  - {name: z, type: file, format: itch, path: y, stale_after: 0}\n",
                  err),
        0);
    assert_int_equal(cfg->feeds[0].stale_after_ns, 5000000000ULL);
    assert_int_equal(cfg->feeds[1].stale_after_ns, 1500000000ULL);
    assert_int_equal(cfg->feeds[2].stale_after_ns, 60000000000ULL);
    assert_int_equal(cfg->feeds[3].stale_after_ns, 0);
    assert_int_equal(cfg->feeds[4].stale_after_ns, 0);
}

/* ---- bad configs: each message exactly ---- */

static void test_bars_take_a_list_of_intervals_and_a_grace(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load_text(cfg, "bars:\n  intervals: [5s, 90s, 1h]\n  grace: 2s\n", err), 0);
    assert_int_equal(cfg->bars.nintervals, 3);
    assert_int_equal(cfg->bars.intervals_ns[0], 5000000000LL);
    assert_int_equal(cfg->bars.intervals_ns[1], 90000000000LL);
    assert_int_equal(cfg->bars.intervals_ns[2], 3600000000000LL);
    assert_int_equal(cfg->bars.grace_ns, 2000000000);
    assert_int_equal(load_text(cfg, "bars:\n  intervals: []\n", err), 0);
    assert_int_equal(cfg->bars.nintervals, 0);
}

static void test_bars_reject_bad_and_repeated_intervals_with_their_place(void **state)
{
    config_t *cfg = *state;
    assert_text_rejected(cfg, "bars:\n  intervals: [1m, 2d]\n",
                         "2:19: bars.intervals[1]: expected an interval such as 1s, 5m or 1h, got "
                         "\"2d\" (a whole number of s, m or h, from 1s to 24h)");
    assert_text_rejected(cfg, "bars:\n  intervals: [1m, 60s]\n",
                         "2:19: bars.intervals[1]: 60s is bars.intervals[0] already (as 1m); give "
                         "each interval once");
    assert_text_rejected(cfg, "bars:\n  intervals: 1m\n",
                         "2:14: bars.intervals: expected a list of intervals such as [1s, 1m], "
                         "or [] for no bars, got \"1m\"");
    assert_text_rejected(cfg, "bars:\n  grace: 2h\n",
                         "2:10: bars.grace: expected a duration from 0 to 1h, got \"2h\"");
}

static void test_rejects_unknown_top_level_key_with_suggestion(void **state)
{
    assert_rejected(*state, "bad_unknown_top_key.yaml",
                    "1:1: unknown key \"pubsb\" (did you mean \"pubsub\"?)");
}

static void test_rejects_unknown_nested_key_with_suggestion(void **state)
{
    assert_rejected(*state, "bad_unknown_nested_key.yaml",
                    "2:3: pubsub: unknown key \"lisen\" (did you mean \"listen\"?)");
    assert_rejected(*state, "bad_unknown_key_transposed.yaml",
                    "3:3: journal: unknown key \"fsnyc\" (did you mean \"fsync\"?)");
}

static void test_lists_known_keys_when_no_key_is_close(void **state)
{
    assert_rejected(*state, "bad_unknown_key_no_suggestion.yaml",
                    "2:3: http: unknown key \"port\" (known keys: listen, max_connections, "
                    "max_header, idle_timeout, header_timeout)");
}

static void test_rejects_wrong_types(void **state)
{
    assert_rejected(*state, "bad_list_for_map.yaml",
                    "2:3: pubsub: expected a map of pubsub settings, got a list");
    assert_rejected(*state, "bad_map_for_scalar.yaml",
                    "2:10: heap.debug: expected true or false, got a map");
    assert_rejected(*state, "bad_top_level_list.yaml",
                    "1:1: expected a map of sections (heap, gc, pubsub, http, journal, session, "
                    "log, nats, feeds) at the top level, got a list");
    assert_rejected(*state, "bad_feeds_map.yaml",
                    "2:3: feeds: expected a list of feeds, got a map");
    assert_rejected(*state, "bad_feed_not_map.yaml",
                    "2:5: feeds[0]: expected a map of a feed's keys (name, type, format, ...), got "
                    "\"sample\"");
    assert_text_rejected(*state, "pubsub: {listen: }\n",
                         "1:18: pubsub.listen: expected host:port, got nothing");
}

static void test_rejects_bad_sizes_with_the_reason(void **state)
{
    assert_rejected(
        *state, "bad_size_unit.yaml",
        "2:15: heap.arena_size: expected a size such as 512, 64KiB or 32MiB, got "
        "\"32MB5\" (units: B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB for powers of 1000)");
    assert_rejected(*state, "bad_size_fraction.yaml",
                    "2:16: pubsub.max_request: expected a size such as 512, 64KiB or 32MiB, got "
                    "\"1.5MiB\" (whole numbers only, e.g. 1536KiB rather than 1.5MiB)");
    assert_rejected(*state, "bad_size_overflow.yaml",
                    "2:22: pubsub.output_hard_limit: expected a size such as 512, 64KiB or 32MiB, "
                    "got \"99999999999999999999GiB\" (too large)");
    assert_rejected(*state, "bad_size_negative.yaml",
                    "2:14: heap.pool_size: expected a size such as 512, 64KiB or 32MiB, got "
                    "\"-16KiB\" (sizes cannot be negative)");
}

static void test_rejects_arena_size_not_a_power_of_two_with_the_nearest(void **state)
{
    assert_rejected(*state, "bad_arena_not_power_of_two.yaml",
                    "2:15: heap.arena_size: expected a power of two from 256KiB to 16MiB, got "
                    "\"3MiB\" (nearest: 2MiB or 4MiB)");
}

static void test_rejects_heap_sizes_out_of_range(void **state)
{
    assert_rejected(*state, "bad_arena_too_large.yaml",
                    "2:15: heap.arena_size: expected a power of two from 256KiB to 16MiB, got "
                    "\"32MiB\"");
    assert_rejected(
        *state, "bad_pool_too_small.yaml",
        "2:14: heap.pool_size: expected a power of two from 4KiB to 64KiB, got \"2KiB\"");
}

static void test_rejects_bad_durations(void **state)
{
    assert_rejected(
        *state, "bad_duration_no_unit.yaml",
        "2:13: gc.interval: expected a duration such as 250us, 100ms, 60s, 5m or 1h, got "
        "\"100\" (add a unit: ns, us, ms, s, m or h)");
    assert_rejected(*state, "bad_duration_too_short.yaml",
                    "2:13: gc.interval: expected a duration from 1ms to 1h, got \"250us\"");
    assert_rejected(*state, "bad_duration_unit.yaml",
                    "2:19: journal.fsync_interval: expected a duration such as 250us, 100ms, 60s, "
                    "5m or 1h, got \"2d\" (units: ns, us, ms, s, m, h)");
}

static void test_rejects_thresholds_that_are_not_three_positive_integers(void **state)
{
    assert_rejected(*state, "bad_thresholds_two.yaml",
                    "2:15: gc.thresholds: expected 3 thresholds (generations 0, 1 and 2), got 2");
    assert_rejected(*state, "bad_thresholds_zero.yaml",
                    "4:7: gc.thresholds[1]: expected an integer from 1 to 1000000000, got \"0\"");
    assert_text_rejected(*state, "gc: {thresholds: [1, 2, 3, 4]}\n",
                         "1:28: gc.thresholds: expected 3 thresholds (generations 0, 1 and 2), got "
                         "more");
    assert_text_rejected(*state, "gc: {thresholds: 700}\n",
                         "1:18: gc.thresholds: expected a list of 3 integers, e.g. [700, 10, 10], "
                         "got \"700\"");
}

static void test_rejects_listen_without_host_with_the_fix(void **state)
{
    assert_rejected(*state, "bad_listen_port_only.yaml",
                    "2:11: pubsub.listen: expected host:port, got \"6380\" (e.g. 127.0.0.1:6380)");
}

static void test_rejects_listen_with_bad_port_or_hostname(void **state)
{
    assert_rejected(*state, "bad_listen_port_range.yaml",
                    "2:11: http.listen: expected host:port, got \"127.0.0.1:65536\" (the port must "
                    "be a number from 0 to 65535)");
    assert_rejected(*state, "bad_listen_hostname.yaml",
                    "2:11: http.listen: expected host:port, got \"metrics.example.com:9108\" (the "
                    "host must be an IPv4 address, an IPv6 address in brackets, or localhost)");
}

static void test_rejects_bad_enum_values(void **state)
{
    assert_rejected(*state, "bad_payload.yaml",
                    "2:12: pubsub.payload: expected json or csv, got \"jsn\" (did you mean "
                    "\"json\"?)");
    assert_rejected(*state, "bad_fsync.yaml",
                    "2:10: journal.fsync: expected always, interval or never, got \"sometimes\"");
    assert_rejected(*state, "bad_log_level.yaml",
                    "2:10: log.level: expected error, warning, info or debug, got \"verbose\"");
    assert_rejected(*state, "bad_bool.yaml",
                    "2:10: heap.debug: expected true or false, got \"maybe\"");
    assert_rejected(*state, "bad_integer_range.yaml",
                    "2:16: pubsub.max_clients: expected an integer from 1 to 1000000, got \"0\"");
    assert_rejected(*state, "bad_publish_symbols.yaml",
                    "2:24: pubsub.max_publish_symbols: expected an integer from 0 to 10000000, "
                    "got \"10000001\"");
}

static void test_slow_consumer_is_disconnect_or_conflate_and_says_so_where_it_is_wrong(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load_text(cfg, "pubsub:\n  slow_consumer: conflate\n", err), 0);
    assert_int_equal(cfg->pubsub.slow_consumer, CONFIG_SLOW_CONFLATE);
    assert_int_equal(load_text(cfg, "pubsub:\n  slow_consumer: disconnect\n", err), 0);
    assert_int_equal(cfg->pubsub.slow_consumer, 0);
    assert_text_rejected(cfg, "pubsub:\n  slow_consumer: drop\n",
                         "2:18: pubsub.slow_consumer: expected disconnect or conflate, got "
                         "\"drop\"");
}

static void test_rejects_duplicate_keys(void **state)
{
    assert_rejected(*state, "bad_duplicate_key.yaml",
                    "4:3: pubsub: duplicate key \"listen\" (already set at line 2); keep one");
    assert_rejected(*state, "bad_duplicate_section.yaml",
                    "3:1: duplicate key \"log\" (already set at line 1); keep one");
}

static void test_rejects_soft_output_limit_above_the_hard_one(void **state)
{
    assert_rejected(*state, "bad_soft_above_hard.yaml",
                    "2:3: pubsub.output_soft_limit: 64MiB is above output_hard_limit (32MiB); the "
                    "soft limit must be the lower one");
    assert_text_rejected(
        *state, "pubsub:\n  output_hard_limit: 4MiB\n",
        "2:3: pubsub.output_hard_limit: 4MiB is below output_soft_limit (8MiB); the "
        "hard limit must be the higher one");
    /* Both given: the later one in the file is the one to change. */
    assert_text_rejected(*state, "pubsub:\n  output_soft_limit: 2MiB\n  output_hard_limit: 1MiB\n",
                         "3:3: pubsub.output_hard_limit: 1MiB is below output_soft_limit (2MiB); "
                         "the hard limit must be the higher one");
    assert_text_rejected(*state, "pubsub:\n  output_hard_limit: 1MiB\n  output_soft_limit: 2MiB\n",
                         "3:3: pubsub.output_soft_limit: 2MiB is above output_hard_limit (1MiB); "
                         "the soft limit must be the lower one");
}

static void test_rejects_roll_at_past_the_end_of_the_day(void **state)
{
    assert_rejected(
        *state, "bad_roll_at.yaml",
        "2:12: session.roll_at: expected a time of day HH:MM on the 24-hour clock, e.g. "
        "17:30, got \"24:00\"");
}

static void test_rejects_unknown_timezones_and_paths_posing_as_one(void **state)
{
    const char *what = "session.timezone: expected UTC or an IANA timezone name such as "
                       "America/New_York, got ";
    char want[512];
    snprintf(want, sizeof(want),
             "2:13: %s\"Mars/Olympus\" (no such zone under /usr/share/zoneinfo)", what);
    assert_rejected(*state, "bad_timezone.yaml", want);
    snprintf(want, sizeof(want),
             "2:13: %s\"../../../../etc/passwd\" (no such zone under /usr/share/zoneinfo)", what);
    assert_rejected(*state, "bad_timezone_traversal.yaml", want);
    snprintf(want, sizeof(want), "2:13: %s\"America\" (no such zone under /usr/share/zoneinfo)",
             what);
    assert_rejected(*state, "bad_timezone_directory.yaml", want);
}

static void test_timezone_accepts_utc_and_iana_names(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load_text(cfg, "session: {timezone: UTC}\n", err), 0);
    assert_string_equal(cfg->session.timezone, "UTC");
    if (access(new_york, R_OK) != 0)
        skip();
    assert_int_equal(load_text(cfg, "session: {timezone: Europe/London}\n", err), 0);
    assert_string_equal(cfg->session.timezone, "Europe/London");
    assert_int_equal(load_text(cfg, "session: {timezone: Etc/GMT+5}\n", err), 0);
    assert_int_equal(load_text(cfg, "session: {timezone: /etc/localtime}\n", err), -EINVAL);
    assert_int_equal(load_text(cfg, "session: {timezone: Europe//London}\n", err), -EINVAL);
    assert_int_equal(load_text(cfg, "session: {timezone: Europe/London/}\n", err), -EINVAL);
    assert_int_equal(load_text(cfg, "session: {timezone: zone.tab}\n", err), -EINVAL);
}

static void test_reports_tab_indentation_with_the_fix(void **state)
{
    assert_rejected(*state, "bad_tab_indent.yaml",
                    "2:1: found character that cannot start any token (while scanning for the next "
                    "token); indent with spaces, not tabs");
}

static void test_reports_unclosed_quote_with_where_it_opened(void **state)
{
    assert_rejected(
        *state, "bad_unclosed_quote.yaml",
        "5:1: found unexpected end of stream (while scanning a quoted scalar that starts "
        "at 2:13); close the quote");
}

static void test_reports_invalid_utf8_with_its_place(void **state)
{
    assert_text_rejected(*state, "log:\n  level: \xff\n",
                         "2:10: invalid leading UTF-8 octet (save the file as UTF-8 text)");
}

static void test_rejects_aliases_documents_and_nul_characters(void **state)
{
    assert_rejected(*state, "bad_alias.yaml",
                    "4:11: http.listen: aliases (*addr) are not supported; write the value out");
    assert_rejected(*state, "bad_two_documents.yaml",
                    "3:1: only one YAML document is allowed; remove the second \"---\" and what "
                    "follows");
    assert_rejected(*state, "bad_nul_in_value.yaml",
                    "2:15: heap.arena_size: a NUL character is not allowed in a value");
}

static void test_rejects_feeds_missing_a_required_key(void **state)
{
    assert_rejected(*state, "bad_feed_missing_type.yaml",
                    "2:5: feeds[0]: missing key \"type\" (file, tcp, udp or nats)");
    assert_rejected(*state, "bad_feed_missing_name.yaml",
                    "2:5: feeds[0]: missing key \"name\" (a unique name, e.g. nasdaq)");
    assert_rejected(*state, "bad_feed_missing_path.yaml",
                    "2:5: feeds[0]: missing key \"path\" (the file to replay)");
    assert_rejected(*state, "bad_feed_missing_format.yaml",
                    "2:5: feeds[0]: missing key \"format\" (itch, csv or tlog for a file feed)");
    assert_rejected(*state, "bad_feed_missing_listen.yaml",
                    "2:5: feeds[0]: missing key \"listen\" (host:port to accept connections on, "
                    "e.g. 0.0.0.0:7000)");
}

static void test_rejects_keys_that_do_not_apply_to_the_feed_type(void **state)
{
    assert_rejected(*state, "bad_udp_with_path.yaml",
                    "4:5: feeds[0].path: a udp feed takes no path (path is for file feeds); remove "
                    "it");
    assert_rejected(*state, "bad_tcp_with_loop.yaml",
                    "6:5: feeds[0].loop: a tcp feed takes no loop (loop is for file feeds); remove "
                    "it");
    assert_text_rejected(*state, "feeds:\n  - {name: f, type: file, listen: \"0.0.0.0:1\"}\n",
                         "2:27: feeds[0].listen: a file feed takes no listen (listen is for tcp "
                         "and udp feeds); remove it");
}

static void test_rejects_formats_the_feed_type_cannot_read(void **state)
{
    assert_rejected(*state, "bad_udp_format.yaml",
                    "4:13: feeds[0].format: expected mold for a udp feed, got \"itch\"");
    assert_rejected(*state, "bad_tcp_format.yaml",
                    "4:13: feeds[0].format: expected itch or csv for a tcp feed, got \"tlog\"");
    assert_rejected(*state, "bad_feed_type.yaml",
                    "3:11: feeds[0].type: expected file, tcp, udp or nats, got \"disk\"");
}

static void test_rejects_duplicate_and_malformed_feed_names(void **state)
{
    assert_rejected(*state, "bad_duplicate_feed_name.yaml",
                    "10:11: feeds[2].name: \"a\" is already the name of feeds[0]; feed names must "
                    "be unique");
    assert_rejected(*state, "bad_feed_name.yaml",
                    "2:11: feeds[0].name: expected a name of 1 to 63 letters, digits, _ or -, got "
                    "\"nasdaq itch\"");
    assert_text_rejected(*state,
                         "feeds:\n  - {name: "
                         "a123456789012345678901234567890123456789012345678901234567890123, "
                         "type: tcp}\n",
                         "2:12: feeds[0].name: expected a name of 1 to 63 letters, digits, _ or "
                         "-, got \"a12345678901234567890123456789012345678901234567...\"");
}

static void test_rejects_a_stale_after_that_is_not_a_duration_of_at_most_24h(void **state)
{
    assert_text_rejected(*state,
                         "feeds:\n"
                         "  - name: live\n"
                         "    type: tcp\n"
                         "    format: csv\n"
                         "    listen: 127.0.0.1:7000\n"
                         "    stale_after: 5\n",
                         "6:18: feeds[0].stale_after: expected a duration such as 500ms, 5s or "
                         "1m, or 0 for no limit, got \"5\" (add a unit: ns, us, ms, s, m or h)");
    assert_text_rejected(*state,
                         "feeds:\n"
                         "  - {name: live, type: tcp, format: csv, listen: \"127.0.0.1:7000\",\n"
                         "     stale_after: 25h}\n",
                         "3:19: feeds[0].stale_after: expected a duration from 0 to 24h, got "
                         "\"25h\"");
}

static void test_rejects_bad_speed_group_and_interface(void **state)
{
    assert_rejected(*state, "bad_speed.yaml",
                    "6:12: feeds[0].speed: expected max or a number of times the recorded speed, "
                    "above 0 and at most 1000000, got \"0\"");
    assert_rejected(*state, "bad_group_not_multicast.yaml",
                    "5:12: feeds[0].group: expected an IPv4 multicast address (224.0.0.0 to "
                    "239.255.255.255), got \"10.1.2.3\"");
    assert_rejected(*state, "bad_interface_without_group.yaml",
                    "5:5: feeds[0].interface: only used to join a group; add group or remove "
                    "interface");
}

static void test_rejects_more_than_32_feeds(void **state)
{
    assert_rejected(*state, "bad_too_many_feeds.yaml",
                    "34:5: feeds[32]: too many feeds (at most 32)");
}

/* ---- the edges of the interface ---- */

static void test_unreadable_file_reports_the_path_and_errno(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(config_load(CONFIGS "/no-such-file.yaml", cfg, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, CONFIGS "/no-such-file.yaml: cannot read: No such file or directory");
    assert_int_equal(config_load(CONFIGS, cfg, err, sizeof(err)), -EISDIR);
    assert_string_equal(err, CONFIGS ": cannot read: Is a directory");
}

static void test_reads_only_len_bytes_of_the_buffer(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    const char *text = "log: {level: debug}\nthis is not: [yaml";
    size_t len = strlen("log: {level: debug}\n");
    char *exact = malloc(len);
    assert_non_null(exact);
    memcpy(exact, text, len);
    assert_int_equal(config_load_buffer("t.yaml", exact, len, cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->log.level, 7);
    free(exact);
}

static void test_error_buffer_is_cut_to_its_size_or_left_alone(void **state)
{
    config_t *cfg = *state;
    char err[32];
    memset(err, '#', sizeof(err));
    assert_int_equal(config_load_buffer("t.yaml", "pubsb: 1", 8, cfg, err, 16), -EINVAL);
    assert_string_equal(err, "t.yaml:1:1: unk");
    assert_int_equal(err[16], '#');
    assert_int_equal(config_load_buffer("t.yaml", "pubsb: 1", 8, cfg, NULL, 0), -EINVAL);
}

/* A cheap deterministic generator for the mutation test. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* r is 0, or -EINVAL with a message that starts with the file's name. */
static void assert_loaded_or_explained(int r, const char *err)
{
    if (r != 0 && r != -EINVAL)
        print_error("unexpected %d: %s\n", r, err);
    assert_true(r == 0 || r == -EINVAL);
    if (r != 0)
        assert_int_equal(strncmp(err, "t.yaml:", 7), 0);
}

static void test_every_truncation_of_a_full_config_loads_or_is_explained(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    size_t len;
    char *full = read_whole(CONFIGS "/good_full.yaml", &len);
    for (size_t n = 0; n <= len; n++) {
        char *cut = malloc(n > 0 ? n : 1);
        assert_non_null(cut);
        memcpy(cut, full, n);
        assert_loaded_or_explained(config_load_buffer("t.yaml", cut, n, cfg, err, sizeof(err)),
                                   err);
        free(cut);
    }
    free(full);
}

static void test_random_mutations_load_or_are_explained(void **state)
{
    static const char *const bits[] = {":",    "-",      "- ",    "[",     "]",  "{",   "}",
                                       "\t",   "\"",     "'",     "&a ",   "*a", "\n",  "  ",
                                       "#",    "!!str ", "? ",    "|\n",   ">",  "\\0", "\xff",
                                       "\xc3", "%",      "---\n", "...\n", ",",  "~",   "1"};
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    size_t len;
    char *full = read_whole(CONFIGS "/good_full.yaml", &len);
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (int round = 0; round < 3000; round++) {
        char *m = malloc(len + 64);
        assert_non_null(m);
        memcpy(m, full, len);
        size_t mlen = len;
        for (int k = 0, edits = 1 + (int)(next_random(&seed) % 4); k < edits; k++) {
            size_t at = next_random(&seed) % (mlen + 1);
            const char *b = bits[next_random(&seed) % (sizeof(bits) / sizeof(bits[0]))];
            size_t blen = strlen(b);
            if (next_random(&seed) % 3 == 0 && at < mlen) { /* delete a run */
                size_t del = 1 + next_random(&seed) % 8;
                if (del > mlen - at)
                    del = mlen - at;
                memmove(m + at, m + at + del, mlen - at - del);
                mlen -= del;
            } else if (mlen + blen <= len + 64) { /* insert */
                memmove(m + at + blen, m + at, mlen - at);
                memcpy(m + at, b, blen);
                mlen += blen;
            }
        }
        char *exact = malloc(mlen > 0 ? mlen : 1);
        assert_non_null(exact);
        memcpy(exact, m, mlen);
        assert_loaded_or_explained(config_load_buffer("t.yaml", exact, mlen, cfg, err, sizeof(err)),
                                   err);
        free(exact);
        free(m);
    }
    free(full);
}

/* ---- nats ---- */

static void test_nats_is_off_by_default_and_a_section_sets_every_key(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(load_text(cfg, "", err), 0);
    assert_int_equal(cfg->nats.nservers, 0);
    assert_int_equal(cfg->nats.publish, 1);
    assert_string_equal(cfg->nats.prefix, "tickd");
    assert_string_equal(cfg->nats.name, "tickd");
    assert_int_equal(cfg->nats.max_pending, 8 << 20);
    assert_int_equal(cfg->nats.reconnect_wait_ns, 1000000000ULL);
    assert_int_equal(cfg->nats.jetstream.replicas, 1);
    assert_string_equal(cfg->nats.jetstream.stream, "");

    assert_int_equal(load_text(cfg,
                               "nats:\n"
                               "  servers: [nats://10.0.0.1:4222, tls://nats2.example:4443, "
                               "127.0.0.1:4222]\n"
                               "  publish: false\n"
                               "  prefix: site1.tickd\n"
                               "  payload: csv\n"
                               "  name: feed-handler\n"
                               "  user: tickd\n"
                               "  password: s3cret\n"
                               "  max_pending: 1MiB\n"
                               "  reconnect_wait: 250ms\n"
                               "  jetstream:\n"
                               "    stream: TICKS\n"
                               "    max_age: 24h\n"
                               "    max_bytes: 1GiB\n"
                               "    replicas: 3\n"
                               "    storage: memory\n",
                               err),
                     0);
    assert_int_equal(cfg->nats.nservers, 3);
    assert_string_equal(cfg->nats.servers[0], "nats://10.0.0.1:4222");
    assert_string_equal(cfg->nats.servers[1], "tls://nats2.example:4443");
    assert_string_equal(cfg->nats.servers[2], "127.0.0.1:4222");
    assert_int_equal(cfg->nats.publish, 0);
    assert_string_equal(cfg->nats.prefix, "site1.tickd");
    assert_int_equal(cfg->nats.payload, 1);
    assert_string_equal(cfg->nats.name, "feed-handler");
    assert_string_equal(cfg->nats.user, "tickd");
    assert_string_equal(cfg->nats.password, "s3cret");
    assert_int_equal(cfg->nats.max_pending, 1 << 20);
    assert_int_equal(cfg->nats.reconnect_wait_ns, 250000000ULL);
    assert_string_equal(cfg->nats.jetstream.stream, "TICKS");
    assert_int_equal(cfg->nats.jetstream.max_age_ns, 24ULL * 3600 * 1000000000ULL);
    assert_int_equal(cfg->nats.jetstream.max_bytes, 1ULL << 30);
    assert_int_equal(cfg->nats.jetstream.replicas, 3);
    assert_int_equal(cfg->nats.jetstream.storage, NATS_STORAGE_MEMORY);

    assert_int_equal(load_text(cfg, "nats: {servers: nats://127.0.0.1:4222, token: abc}\n", err),
                     0);
    assert_int_equal(cfg->nats.nservers, 1);
    assert_string_equal(cfg->nats.token, "abc");
}

static void test_nats_rejects_bad_servers_with_the_fix(void **state)
{
    config_t *cfg = *state;
    assert_text_rejected(cfg, "nats: {servers: http://a:4222}\n",
                         "1:17: nats.servers: expected a server URL such as "
                         "nats://127.0.0.1:4222, or a list of them, got \"http://a:4222\" (the "
                         "scheme is nats:// or tls://)");
    assert_text_rejected(cfg, "nats: {servers: [nats://a:4222, nats://a]}\n",
                         "1:33: nats.servers[1]: expected a server URL such as "
                         "nats://127.0.0.1:4222, got \"nats://a\" (e.g. nats://127.0.0.1:4222)");
    assert_text_rejected(cfg, "nats: {servers: []}\n",
                         "1:17: nats.servers: an empty list; name at least one server, or remove "
                         "the nats section");
    assert_text_rejected(cfg, "nats: {prefix: x}\n",
                         "1:8: nats: missing key \"servers\" (e.g. servers: "
                         "[nats://127.0.0.1:4222])");
    assert_text_rejected(cfg, "nats: {servers: nats://a:4222, prefix: 'a.>'}\n",
                         "1:40: nats.prefix: expected subject tokens such as tickd or "
                         "site1.tickd, got \"a.>\" (no wildcards in the prefix)");
    assert_text_rejected(cfg, "nats: {servers: nats://a:4222, max_pending: 1KiB}\n",
                         "1:45: nats.max_pending: expected a size from 64KiB to 4GiB, got "
                         "\"1KiB\"");
    assert_text_rejected(cfg, "nats: {servers: nats://a:4222, jetstream: {replicas: 7}}\n",
                         "1:54: nats.jetstream.replicas: expected an integer from 1 to 5, got "
                         "\"7\"");
}

/* A password in a URL would be shown wherever the URL is. */
static void test_nats_credentials_never_appear_in_an_error(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN];
    assert_int_equal(load_text(cfg, "nats: {servers: 'nats://u:hunter2@a:4222'}\n", err), -EINVAL);
    assert_non_null(strstr(err, "no credentials in the URL"));
    /* The URL itself is quoted, so its password is too: it is refused before
     * it is stored, and the message says so; a password key's value never is. */
    assert_int_equal(load_text(cfg, "nats: {servers: nats://a:4222, password: hunter2}\n", err),
                     -EINVAL);
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(load_text(cfg, "nats: {servers: nats://a:4222, password: [hunter2]}\n", err),
                     -EINVAL);
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(
        load_text(cfg, "nats: {servers: nats://a:4222, token: hunter2, user: u, password: p}\n",
                  err),
        -EINVAL);
    assert_null(strstr(err, "hunter2"));
}

static void test_nats_rejects_mixed_authentication_and_half_pairs(void **state)
{
    config_t *cfg = *state;
    assert_text_rejected(cfg, "nats: {servers: nats://a:4222, password: p}\n",
                         "1:32: nats.password: user and password go together; add user");
    assert_text_rejected(cfg, "nats: {servers: nats://a:4222, user: u, password: p, token: t}\n",
                         "1:54: nats.token: one way to authenticate: user and password, token, "
                         "or credentials; user is already given");
    assert_text_rejected(cfg, "nats: {servers: nats://a:4222, tls_cert: c.pem}\n",
                         "1:32: nats.tls_cert: tls_cert and tls_key go together; add tls_key");
}

static void test_nats_feed_reads_core_and_jetstream_settings(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN] = "";
    int r = load_text(cfg,
                      "nats: {servers: nats://127.0.0.1:4222, publish: false}\n"
                      "feeds:\n"
                      "  - {name: core, type: nats, subject: 'tickd.trade.*'}\n"
                      "  - {name: js, type: nats, subject: 'tickd.>', stream: TICKS, durable: "
                      "edge1, deliver: by_start_time, start_time: 2026-12-03T13:30:00Z, "
                      "hold_timeout: 30s}\n"
                      "  - {name: js2, type: nats, subject: 'tickd.>', stream: TICKS, durable: "
                      "edge2}\n",
                      err);
    if (r != 0)
        print_error("%s\n", err);
    assert_int_equal(r, 0);
    assert_int_equal(cfg->nfeeds, 3);
    assert_int_equal(cfg->feeds[0].kind, FEED_NATS);
    assert_string_equal(cfg->feeds[0].subject, "tickd.trade.*");
    assert_string_equal(cfg->feeds[0].stream, "");
    assert_string_equal(cfg->feeds[1].stream, "TICKS");
    assert_string_equal(cfg->feeds[1].durable, "edge1");
    assert_int_equal(cfg->feeds[1].deliver, NATS_DELIVER_BY_START_TIME);
    assert_int_equal(cfg->feeds[1].start_time_ns, 1796304600LL * 1000000000LL);
    assert_int_equal(cfg->feeds[1].hold_timeout_ns, 30LL * 1000000000LL);
    assert_int_equal(cfg->feeds[2].hold_timeout_ns, 0); /* three of the consumer's ack waits */
}

static void test_nats_feed_rejects_what_cannot_work(void **state)
{
    config_t *cfg = *state;
    assert_text_rejected(cfg, "feeds: [{name: a, type: nats, subject: tickd.>}]\n",
                         "1:40: feeds[0].subject: a nats feed connects to nats.servers; add a "
                         "nats section with servers");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222}\n"
                         "feeds: [{name: a, type: nats, subject: tickd.>}]\n",
                         "2:40: feeds[0].subject: tickd.> takes this tickd's own ticks back from "
                         "NATS (nats.prefix tickd); set nats.publish: false on a tickd fed from "
                         "NATS, or give it another nats.prefix");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats}]\n",
                         "2:9: feeds[0]: missing key \"subject\" (the subject of tickd's ticks, "
                         "e.g. tickd.>)");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats, subject: 'a.>.b'}]\n",
                         "2:40: feeds[0].subject: expected a NATS subject such as tickd.> or "
                         "tickd.trade.*, got \"a.>.b\" (> stands alone as the last token)");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats, subject: t.>, stream: S}]\n",
                         "2:45: feeds[0].stream: a JetStream feed needs a durable consumer: add "
                         "durable (e.g. durable: edge1)");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats, subject: t.>, durable: d}]\n",
                         "2:45: feeds[0].durable: only for a JetStream feed; add stream or "
                         "remove durable");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats, subject: t.>, stream: S, durable: d, "
                         "deliver: by_start_time}]\n",
                         "2:68: feeds[0].deliver: by_start_time needs start_time (e.g. "
                         "start_time: 2026-12-03T13:30:00Z)");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats, subject: t.>, format: csv}]\n",
                         "2:45: feeds[0].format: a nats feed takes no format (format is for "
                         "file and tcp and udp feeds); remove it");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats, subject: t.>, hold_timeout: 5s}]\n",
                         "2:45: feeds[0].hold_timeout: only for a JetStream feed; add stream or "
                         "remove hold_timeout");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats, subject: t.>, stream: S, durable: d, "
                         "hold_timeout: 0}]\n",
                         "2:82: feeds[0].hold_timeout: expected a duration from 100ms to 1h, "
                         "got \"0\"");
    assert_text_rejected(cfg,
                         "nats: {servers: nats://a:4222, publish: false}\n"
                         "feeds: [{name: a, type: nats, subject: t.>, stream: S, durable: d, "
                         "hold_timeout: soon}]\n",
                         "2:82: feeds[0].hold_timeout: expected a duration from 100ms to 1h, "
                         "such as 15s, got \"soon\"");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

/* ---- pubsub.users ---- */

#define ALICE_SHA "4fff294b5f645bff33429af4b5655b374e1f05efad2d7e1a0399edcf5741f32e"

static void test_users_are_read_with_their_digest_and_patterns(void **state)
{
    config_t *cfg = *state;
    char err[CONFIG_ERR_LEN] = "";
    const char *yaml = "pubsub:\n"
                       "  users:\n"
                       "    - name: alice\n"
                       "      password_sha256: " ALICE_SHA "\n"
                       "      subscribe: [quote.*, trade.AAPL]\n"
                       "      publish: [trade.Z*]\n"
                       "    - {name: bob, password_sha256: " ALICE_SHA "}\n";
    assert_int_equal(load_text(cfg, yaml, err), 0);
    assert_int_equal(cfg->pubsub.nusers, 2);
    const config_user_t *a = &cfg->pubsub.users[0], *b = &cfg->pubsub.users[1];
    assert_string_equal(a->name, "alice");
    assert_int_equal(a->password_sha256[0], 0x4f);
    assert_int_equal(a->password_sha256[31], 0x2e);
    assert_int_equal(a->subscribe.n, 2);
    const char *p = config_user_pattern(cfg, a->subscribe);
    assert_string_equal(p, "quote.*");
    assert_string_equal(config_user_pattern_next(p), "trade.AAPL");
    assert_int_equal(a->publish.n, 1);
    assert_string_equal(config_user_pattern(cfg, a->publish), "trade.Z*");
    assert_string_equal(b->name, "bob");
    assert_null(config_user_pattern(cfg, b->subscribe)); /* no pattern: no right */
    assert_null(config_user_pattern(cfg, b->publish));
}

static void test_users_reject_a_bad_digest_a_duplicate_name_and_a_bad_glob(void **state)
{
    assert_text_rejected(
        *state, "pubsub:\n  users:\n    - {name: a, password_sha256: abc}\n",
        "3:34: pubsub.users[0].password_sha256: expected the SHA-256 of the password as 64 hex "
        "digits (printf %s PASSWORD | sha256sum), got \"abc\" (3 digits, not 64)");
    assert_text_rejected(
        *state,
        "pubsub:\n  users:\n    - {name: a, password_sha256: "
        "zz" ALICE_SHA "}\n",
        "3:34: pubsub.users[0].password_sha256: expected the SHA-256 of the password as 64 hex "
        "digits (printf %s PASSWORD | sha256sum), got "
        "\"zz4fff294b5f645bff33429af4b5655b374e1f05efad2d7e...\" (only the digits 0-9 and a-f)");
    assert_text_rejected(*state,
                         "pubsub:\n  users:\n    - {name: a, password_sha256: " ALICE_SHA
                         "}\n    - {name: a, password_sha256: " ALICE_SHA "}\n",
                         "4:8: pubsub.users[1].name: \"a\" is already the name of "
                         "pubsub.users[0]; user names must be unique");
    assert_text_rejected(
        *state,
        "pubsub:\n  users:\n    - {name: a, password_sha256: " ALICE_SHA
        ", subscribe: [\"quote.[AB\"]}\n",
        "3:112: pubsub.users[0].subscribe[0]: expected a channel or a glob pattern such as "
        "quote.* or trade.[A-M]*, got \"quote.[AB\" (a [ without its ]; write \\[ for a bracket)");
    assert_text_rejected(*state,
                         "pubsub:\n  users:\n    - {name: a, password_sha256: " ALICE_SHA
                         ", publish: [\"x\\\\\"]}\n",
                         "3:110: pubsub.users[0].publish[0]: expected a channel or a glob "
                         "pattern such as quote.* or trade.[A-M]*, got \"x\\\\\" (a \\ at the "
                         "end escapes nothing; write \\\\ for a backslash)");
    assert_text_rejected(
        *state, "pubsub:\n  users:\n    - {name: default, password_sha256: " ALICE_SHA "}\n",
        "3:14: pubsub.users[0].name: expected a user name, got \"default\" "
        "(default is the user of pubsub.password; pick another name)");
    assert_text_rejected(*state, "pubsub:\n  users:\n    - {name: a}\n",
                         "3:7: pubsub.users[0]: missing key \"password_sha256\" (printf %s "
                         "PASSWORD | sha256sum)");
    assert_text_rejected(*state, "pubsub:\n  users:\n    - {password_sha256: " ALICE_SHA "}\n",
                         "3:7: pubsub.users[0]: missing key \"name\" (the user name AUTH gives)");
    assert_text_rejected(*state, "pubsub:\n  users: alice\n",
                         "2:10: pubsub.users: expected a list of users (name, password_sha256, "
                         "subscribe, publish), got \"alice\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults_are_the_documented_values),
        T(test_empty_or_comment_only_file_gives_defaults_and_no_feeds),
        T(test_empty_sections_keep_their_defaults),
        T(test_full_config_sets_every_key),
        T(test_relative_paths_are_taken_from_the_config_directory),
        T(test_shipped_tickd_yaml_replays_the_sample_in_a_loop),
        T(test_shipped_examples_load),
        T(test_32_feeds_are_accepted),
        T(test_sizes_parse_exactly_in_binary_and_decimal_units),
        T(test_sizes_reject_garbage_negatives_fractions_and_overflow),
        T(test_durations_parse_exactly_to_nanoseconds),
        T(test_durations_reject_garbage_missing_units_and_overflow),
        T(test_hostport_accepts_ipv4_bracketed_ipv6_and_localhost),
        T(test_hostport_rejects_port_alone_bad_ports_and_hostnames),
        T(test_booleans_accept_true_false_yes_no_on_off_in_any_case),
        T(test_roll_at_takes_hh_mm_on_the_24_hour_clock),
        T(test_udp_feed_format_defaults_to_mold_and_file_speed_to_max),
        T(test_bars_take_a_list_of_intervals_and_a_grace),
        T(test_bars_reject_bad_and_repeated_intervals_with_their_place),
        T(test_rejects_unknown_top_level_key_with_suggestion),
        T(test_rejects_unknown_nested_key_with_suggestion),
        T(test_lists_known_keys_when_no_key_is_close),
        T(test_rejects_wrong_types),
        T(test_rejects_bad_sizes_with_the_reason),
        T(test_rejects_arena_size_not_a_power_of_two_with_the_nearest),
        T(test_rejects_heap_sizes_out_of_range),
        T(test_rejects_bad_durations),
        T(test_rejects_thresholds_that_are_not_three_positive_integers),
        T(test_rejects_listen_without_host_with_the_fix),
        T(test_rejects_listen_with_bad_port_or_hostname),
        T(test_rejects_bad_enum_values),
        T(test_slow_consumer_is_disconnect_or_conflate_and_says_so_where_it_is_wrong),
        T(test_rejects_duplicate_keys),
        T(test_rejects_soft_output_limit_above_the_hard_one),
        T(test_rejects_roll_at_past_the_end_of_the_day),
        T(test_rejects_unknown_timezones_and_paths_posing_as_one),
        T(test_timezone_accepts_utc_and_iana_names),
        T(test_reports_tab_indentation_with_the_fix),
        T(test_reports_unclosed_quote_with_where_it_opened),
        T(test_reports_invalid_utf8_with_its_place),
        T(test_rejects_aliases_documents_and_nul_characters),
        T(test_rejects_feeds_missing_a_required_key),
        T(test_rejects_keys_that_do_not_apply_to_the_feed_type),
        T(test_rejects_formats_the_feed_type_cannot_read),
        T(test_rejects_duplicate_and_malformed_feed_names),
        T(test_rejects_bad_speed_group_and_interface),
        T(test_rejects_a_stale_after_that_is_not_a_duration_of_at_most_24h),
        T(test_stale_after_takes_a_duration_on_every_feed_type_and_is_off_by_default),
        T(test_rejects_more_than_32_feeds),
        T(test_unreadable_file_reports_the_path_and_errno),
        T(test_reads_only_len_bytes_of_the_buffer),
        T(test_error_buffer_is_cut_to_its_size_or_left_alone),
        T(test_every_truncation_of_a_full_config_loads_or_is_explained),
        T(test_random_mutations_load_or_are_explained),
        T(test_nats_is_off_by_default_and_a_section_sets_every_key),
        T(test_nats_rejects_bad_servers_with_the_fix),
        T(test_nats_credentials_never_appear_in_an_error),
        T(test_nats_rejects_mixed_authentication_and_half_pairs),
        T(test_nats_feed_reads_core_and_jetstream_settings),
        T(test_nats_feed_rejects_what_cannot_work),
        T(test_users_are_read_with_their_digest_and_patterns),
        T(test_users_reject_a_bad_digest_a_duplicate_name_and_a_bad_glob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
