/*
 * test_journaling.c - src/journaling.c: the daemon's journal pipeline on a
 * real libuv loop, writing real journal files in a temporary directory,
 * seen through what it gives its owner: its hooks (decided, ready,
 * drained), its figures, and the files it leaves.
 *
 * The ticks are built on the stack (the pipeline reads a tick's fields and
 * its symbol's name, never the object headers). The loop runs until what a
 * test waits for has happened, with a generous guard against hanging; no
 * timing is asserted. Every test closes the pipeline and checks the loop
 * has nothing left open.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "src/journaling.h"

#define GUARD_ITERATIONS 2000000 /* loop turns that mean a hang */

typedef struct fixture {
    uv_loop_t loop;
    config_t *cfg;
    journaling_t j;
    char dir[64], dir2[64];
    symbol_t sym;
    tick_t tick;
    /* what reached the hooks */
    unsigned decisions;
    uint64_t decided_upto;
    int decided_err;
    unsigned writes;
    uint64_t written_upto;
    unsigned readies, drains;
} fixture_t;

/* ---- the owner's part: the hooks ---- */

static void on_decided(void *arg, uint64_t upto, int err)
{
    fixture_t *f = arg;
    f->decisions++;
    f->decided_upto = upto;
    f->decided_err = err;
}

static void on_written(void *arg, uint64_t upto)
{
    fixture_t *f = arg;
    f->writes++;
    f->written_upto = upto;
}

static void on_ready(void *arg)
{
    ((fixture_t *)arg)->readies++;
}

static void on_drained(void *arg)
{
    ((fixture_t *)arg)->drains++;
}

/* ---- set-up ---- */

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->cfg = calloc(1, sizeof(*f->cfg));
    assert_non_null(f->cfg);
    strcpy(f->dir, "/tmp/test_journaling.XXXXXX");
    strcpy(f->dir2, "/tmp/test_journaling.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_non_null(mkdtemp(f->dir2));
    f->cfg->journal.enabled = 1;
    f->cfg->journal.fsync = JOURNAL_FSYNC_ALWAYS;
    snprintf(f->cfg->journal.dir, sizeof(f->cfg->journal.dir), "%s", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    journaling_hooks_t hooks = {
        .decided = on_decided,
        .written = on_written,
        .ready = on_ready,
        .drained = on_drained,
        .arg = f,
    };
    journaling_init(&f->j, &f->loop, f->cfg, &hooks);

    f->sym.len = 4;
    memcpy(f->sym.name, "AAPL", 4);
    f->tick.sym = &f->sym;
    f->tick.kind = TICK_TRADE;
    f->tick.price = 1012500;
    f->tick.size = 100;
    f->tick.side = 'B';
    *state = f;
    return 0;
}

/* Today's file in dir, as the pipeline names it. */
static void today_file(const char *dir, char *path, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char name[64];
    journal_filename(name, sizeof(name), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    snprintf(path, len, "%s/%s", dir, name);
}

static void remove_dir(const char *dir)
{
    char path[128];
    today_file(dir, path, sizeof(path));
    unlink(path);
    snprintf(path, sizeof(path), "%s/.lock", dir);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    journaling_close(&f->j);
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    remove_dir(f->dir);
    remove_dir(f->dir2);
    free(f->cfg);
    free(f);
    return 0;
}

/* Turns the loop until *counter passes was. */
static void run_until(fixture_t *f, const unsigned *counter, unsigned was)
{
    for (long i = 0; *counter == was; i++) {
        assert_true(i < GUARD_ITERATIONS);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void append(fixture_t *f, int n)
{
    for (int i = 0; i < n; i++) {
        f->tick.seq++;
        journaling_append(&f->j, &f->tick);
    }
}

/* Good records in dir's file of today. */
static uint64_t records_in(const char *dir)
{
    char path[128];
    today_file(dir, path, sizeof(path));
    journal_scan_t scan;
    assert_int_equal(journal_scan(path, NULL, NULL, &scan), 0);
    return scan.records;
}

/* ---- tests ---- */

static void appended_ticks_are_written_and_synced_by_a_worker_then_decided(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(journaling_open(&f->j), 0);
    append(f, 10);
    assert_int_equal(f->j.records_total, 10);
    journaling_kick(&f->j);
    assert_true(f->j.batch_out);
    assert_int_equal(f->decisions, 0); /* nothing is durable before the worker is back */
    run_until(f, &f->decisions, 0);
    assert_int_equal(f->decided_upto, 10);
    assert_int_equal(f->decided_err, 0);
    assert_int_equal(f->j.written_total, 10);
    assert_int_equal(f->j.durable_total, 10);
    assert_int_equal(f->j.dropped_total, 0);
    assert_int_equal(f->readies, 1); /* a buffer is back */
    assert_int_equal(f->j.fsync.count, 1);
    assert_int_equal(records_in(f->dir), 10);
}

static void with_the_interval_policy_a_batch_is_synced_only_when_the_sync_is_due(void **state)
{
    fixture_t *f = *state;
    f->cfg->journal.fsync = JOURNAL_FSYNC_INTERVAL;
    assert_int_equal(journaling_open(&f->j), 0);
    append(f, 3);
    journaling_kick(&f->j);
    run_until(f, &f->readies, 0);
    assert_int_equal(f->j.written_total, 3);
    assert_int_equal(f->j.durable_total, 0);
    assert_int_equal(f->decisions, 0); /* no reply waits under this policy */
    assert_int_equal(f->writes, 1);    /* but what waits for the write goes on */
    assert_int_equal(f->written_upto, 3);
    journaling_sync_soon(&f->j); /* a sync alone, with nothing new to write */
    run_until(f, &f->decisions, 0);
    assert_int_equal(f->j.durable_total, 3);
    assert_int_equal(f->decided_upto, 3);
}

static void a_second_pipeline_on_the_same_directory_is_refused(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(journaling_open(&f->j), 0);
    journaling_t other;
    journaling_hooks_t hooks = {
        .decided = on_decided,
        .written = on_written,
        .ready = on_ready,
        .drained = on_drained,
        .arg = f,
    };
    journaling_init(&other, &f->loop, f->cfg, &hooks);
    assert_int_equal(journaling_open(&other), -EBUSY);
    assert_null(other.writer);
    char err[CONFIG_ERR_LEN];
    assert_int_equal(journaling_check(&other, f->cfg, err, sizeof(err)), -EBUSY);
    journaling_close(&other);
    journaling_close(&f->j); /* the directory is free again */
    assert_int_equal(journaling_open(&other), 0);
    journaling_close(&other);
}

static void a_publish_is_refused_when_fsync_always_has_no_journal(void **state)
{
    fixture_t *f = *state;
    const char *reason = NULL;
    assert_int_equal(journaling_admit(&f->j, &reason), -ENODEV); /* enabled, never opened */
    assert_non_null(strstr(reason, "not open"));
    assert_int_equal(f->j.refused_total, 1);
    f->cfg->journal.fsync = JOURNAL_FSYNC_INTERVAL;
    assert_int_equal(journaling_admit(&f->j, &reason), 0); /* ticks go unjournaled */
    f->cfg->journal.enabled = 0;
    f->cfg->journal.fsync = JOURNAL_FSYNC_ALWAYS;
    assert_int_equal(journaling_admit(&f->j, &reason), 0);
    assert_int_equal(f->j.refused_total, 1);
}

static void a_published_tick_waits_for_its_own_record_to_be_synced(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(journaling_open(&f->j), 0);
    const char *reason = NULL;
    uint64_t durable_at = 0;
    assert_int_equal(journaling_admit(&f->j, &reason), 0);
    uint64_t before = f->j.records_total;
    append(f, 1); /* the market made the tick */
    assert_int_equal(journaling_published(&f->j, before, &reason, &durable_at), 0);
    assert_int_equal(durable_at, 1);
    assert_true(f->j.batch_out); /* sent on its way at once */
    run_until(f, &f->decisions, 0);
    assert_int_equal(f->decided_upto, 1);
    assert_int_equal(f->decided_err, 0);

    before = f->j.records_total; /* a tick that never reached the buffer */
    assert_int_equal(journaling_published(&f->j, before, &reason, &durable_at), -EIO);
    assert_non_null(strstr(reason, "could not be buffered"));
    assert_int_equal(f->j.refused_total, 1);
}

static void a_move_waits_for_the_batch_out_then_closes_decides_and_opens_the_new_file(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(journaling_open(&f->j), 0);
    append(f, 5);
    journaling_kick(&f->j);
    char err[CONFIG_ERR_LEN];
    config_t *fresh = calloc(1, sizeof(*fresh));
    assert_non_null(fresh);
    *fresh = *f->cfg;
    snprintf(fresh->journal.dir, sizeof(fresh->journal.dir), "%s", f->dir2);
    assert_int_equal(journaling_check(&f->j, fresh, err, sizeof(err)), 0);
    *f->cfg = *fresh; /* the reload applies the configuration in place */
    free(fresh);
    append(f, 2); /* into the second buffer, for the old file */
    assert_int_equal(journaling_reopen(&f->j), -EINPROGRESS);
    unsigned decisions = f->decisions;
    run_until(f, &f->readies, 0);
    assert_true(f->decisions >= decisions + 2); /* the batch, then the close */
    assert_int_equal(f->decided_upto, 7);
    assert_int_equal(f->decided_err, 0);
    assert_int_equal(records_in(f->dir), 7);
    assert_non_null(f->j.writer);
    assert_string_equal(f->j.locked_dir, f->dir2);
    append(f, 1);
    journaling_kick(&f->j);
    run_until(f, &f->decisions, f->decisions);
    assert_int_equal(records_in(f->dir2), 1);
}

static void turning_journaling_off_closes_the_file_and_lets_the_directory_go(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(journaling_open(&f->j), 0);
    append(f, 4);
    f->cfg->journal.enabled = 0;
    assert_int_equal(journaling_reopen(&f->j), 0); /* no batch out: at once */
    assert_null(f->j.writer);
    assert_int_equal(f->j.dir_lock, -1);
    assert_int_equal(f->decided_upto, 4); /* the close synced what was buffered */
    assert_int_equal(f->written_upto, 4); /* and wrote it */
    assert_int_equal(f->readies, 1);
    assert_int_equal(records_in(f->dir), 4);
    append(f, 1); /* off: nothing is counted */
    assert_int_equal(f->j.records_total, 4);
}

static void drain_waits_for_the_batch_out_then_syncs_and_decides_everything_once(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(journaling_open(&f->j), 0);
    append(f, 6);
    journaling_kick(&f->j);
    append(f, 3); /* buffered while the batch is out */
    assert_int_equal(journaling_drain(&f->j), -EBUSY);
    run_until(f, &f->drains, 0);
    assert_int_equal(f->readies, 0); /* stopping: no PUBLISH is let in again */
    assert_int_equal(journaling_drain(&f->j), 0);
    assert_int_equal(f->written_upto, 9); /* what waits for the write goes on */
    assert_int_equal(f->decided_upto, 9);
    assert_int_equal(f->decided_err, 0);
    assert_int_equal(records_in(f->dir), 9);
    assert_int_equal(journaling_drain(&f->j), -EALREADY);
    append(f, 1);
    journaling_kick(&f->j); /* drained: nothing goes out again */
    assert_false(f->j.batch_out);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(appended_ticks_are_written_and_synced_by_a_worker_then_decided),
        T(with_the_interval_policy_a_batch_is_synced_only_when_the_sync_is_due),
        T(a_second_pipeline_on_the_same_directory_is_refused),
        T(a_publish_is_refused_when_fsync_always_has_no_journal),
        T(a_published_tick_waits_for_its_own_record_to_be_synced),
        T(a_move_waits_for_the_batch_out_then_closes_decides_and_opens_the_new_file),
        T(turning_journaling_off_closes_the_file_and_lets_the_directory_go),
        T(drain_waits_for_the_batch_out_then_syncs_and_decides_everything_once),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
