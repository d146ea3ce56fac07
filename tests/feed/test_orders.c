/*
 * test_orders.c - the order table: the window over recent references, the
 * hash for the rest, and the moves between them (growing, sliding, starting
 * anew), checked against a plain array of which references are live.
 *
 * The table only reads an order's reference, so the orders here are plain
 * structs in an array indexed by reference, not heap objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "feed/orders.h"

#define WINDOW0 (1u << 16) /* orders.c's first window */

typedef struct fixture {
    order_table_t t;
    order_t *orders; /* [ref] */
    uint8_t *live;   /* [ref]: 1 while in the table */
    uint64_t cap;
} fixture_t;

static void open_fixture(fixture_t *f, uint64_t cap)
{
    assert_int_equal(order_table_init(&f->t), 0);
    f->orders = calloc(cap, sizeof(*f->orders));
    f->live = calloc(cap, 1);
    assert_non_null(f->orders);
    assert_non_null(f->live);
    f->cap = cap;
    for (uint64_t r = 0; r < cap; r++)
        f->orders[r].ref = r;
}

static void close_fixture(fixture_t *f)
{
    order_table_free(&f->t);
    free(f->orders);
    free(f->live);
}

static void add(fixture_t *f, uint64_t ref)
{
    assert_null(order_table_find(&f->t, ref));
    assert_int_equal(order_table_insert(&f->t, &f->orders[ref]), 0);
    f->live[ref] = 1;
}

static void drop(fixture_t *f, uint64_t ref)
{
    assert_ptr_equal(order_table_find(&f->t, ref), &f->orders[ref]);
    order_table_remove(&f->t, &f->orders[ref]);
    f->live[ref] = 0;
}

/* Every reference is found exactly when it is live, and the counts add up. */
static void assert_matches(const fixture_t *f)
{
    uint64_t n = 0;
    for (uint64_t r = 0; r < f->cap; r++) {
        order_t *o = order_table_find(&f->t, r);
        if (f->live[r]) {
            assert_ptr_equal(o, &f->orders[r]);
            n++;
        } else {
            assert_null(o);
        }
    }
    assert_int_equal(order_table_count(&f->t), n);
}

static void reference_zero_is_never_found(void **state)
{
    (void)state;
    fixture_t f;
    open_fixture(&f, 4);
    add(&f, 1);
    assert_null(order_table_find(&f.t, 0));
    close_fixture(&f);
}

static void an_order_the_window_slides_past_moves_to_the_hash_and_stays_found(void **state)
{
    (void)state;
    fixture_t f;
    uint64_t last = 3 * (uint64_t)WINDOW0;
    open_fixture(&f, last + 1);
    add(&f, 1); /* lives all day */
    for (uint64_t r = 2; r <= last; r++) {
        add(&f, r);
        if (r > 2)
            drop(&f, r - 1); /* a short life for everyone else */
    }
    assert_true(f.t.base > 1);           /* the window moved on ... */
    assert_int_equal(f.t.hash_count, 1); /* ... and order 1 went to the hash */
    assert_int_equal(f.t.window_bits, 16);
    assert_matches(&f);
    drop(&f, 1);
    assert_int_equal(f.t.hash_count, 0);
    assert_matches(&f);
    close_fixture(&f);
}

static void a_window_half_full_grows_instead_of_sliding(void **state)
{
    (void)state;
    fixture_t f;
    uint64_t n = WINDOW0 + WINDOW0 / 2;
    open_fixture(&f, n + 1);
    for (uint64_t r = 1; r <= n; r++)
        add(&f, r);
    assert_true(f.t.window_bits > 16);
    assert_int_equal(f.t.hash_count, 0);
    assert_matches(&f);
    close_fixture(&f);
}

static void a_reference_below_the_window_goes_to_the_hash(void **state)
{
    (void)state;
    fixture_t f;
    uint64_t last = 2 * (uint64_t)WINDOW0 + 10;
    open_fixture(&f, last + 1);
    add(&f, last - 5); /* the window starts here: the table was empty */
    assert_int_equal(f.t.base, last - 5);
    add(&f, 7); /* below it, out of order */
    assert_int_equal(f.t.hash_count, 1);
    add(&f, last);
    assert_matches(&f);
    close_fixture(&f);
}

static void an_emptied_table_starts_its_window_at_the_next_reference(void **state)
{
    (void)state;
    fixture_t f;
    open_fixture(&f, 5 * (uint64_t)WINDOW0);
    for (uint64_t r = 4 * (uint64_t)WINDOW0; r < 4 * (uint64_t)WINDOW0 + 100; r++)
        add(&f, r);
    for (uint64_t r = 4 * (uint64_t)WINDOW0; r < 4 * (uint64_t)WINDOW0 + 100; r++)
        drop(&f, r);
    /* A replay looping over its file adds the day's references again. */
    for (uint64_t r = 1; r <= 100; r++)
        add(&f, r);
    assert_int_equal(f.t.base, 1);
    assert_int_equal(f.t.hash_count, 0);
    assert_matches(&f);
    close_fixture(&f);
}

static int take_odd(order_t *o, void *arg)
{
    fixture_t *f = arg;
    f->live[o->ref] += 2; /* seen */
    if (o->ref % 2 == 0)
        return 0;
    order_table_remove(&f->t, o);
    f->live[o->ref] = 0;
    return 1;
}

static void a_walk_sees_every_order_and_may_remove_the_one_it_is_given(void **state)
{
    (void)state;
    fixture_t f;
    uint64_t cap = 4 * (uint64_t)WINDOW0;
    open_fixture(&f, cap);
    /* Live orders spread over the window and the hash: every 7th of the
     * first 3 windows' worth survives its neighbours. */
    for (uint64_t r = 1; r < cap; r++) {
        add(&f, r);
        if (r > 1 && (r - 1) % 7 != 0)
            drop(&f, r - 1);
    }
    assert_true(f.t.hash_count > 0);
    assert_true(f.t.window_count > 0);
    uint64_t before = order_table_count(&f.t), odd = 0;
    for (uint64_t r = 1; r < cap; r++)
        odd += f.live[r] && r % 2 == 1;
    order_table_walk(&f.t, take_odd, &f);
    for (uint64_t r = 1; r < cap; r++) {
        assert_true(f.live[r] == 0 || f.live[r] >= 3); /* every kept one was seen */
        if (f.live[r])
            f.live[r] = 1;
    }
    assert_int_equal(order_table_count(&f.t), before - odd);
    assert_matches(&f);
    close_fixture(&f);
}

static void random_adds_and_removes_match_a_plain_array(void **state)
{
    (void)state;
    fixture_t f;
    uint64_t cap = 600000;
    open_fixture(&f, cap);
    uint64_t *live = malloc(cap * sizeof(*live)), n = 0;
    assert_non_null(live);
    srand(17);
    for (uint64_t r = 1; r < cap; r++) {
        add(&f, r);
        live[n++] = r;
        /* Once 20,000 are live, a random live order leaves at every add:
         * some live long, and the window slides past them. */
        if (n > 20000 || rand() % 2) {
            uint64_t i = (uint64_t)rand() % n;
            drop(&f, live[i]);
            live[i] = live[--n];
        }
    }
    assert_true(f.t.hash_count > 0);
    assert_matches(&f);
    free(live);
    close_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_zero_is_never_found),
        cmocka_unit_test(an_order_the_window_slides_past_moves_to_the_hash_and_stays_found),
        cmocka_unit_test(a_window_half_full_grows_instead_of_sliding),
        cmocka_unit_test(a_reference_below_the_window_goes_to_the_hash),
        cmocka_unit_test(an_emptied_table_starts_its_window_at_the_next_reference),
        cmocka_unit_test(a_walk_sees_every_order_and_may_remove_the_one_it_is_given),
        cmocka_unit_test(random_adds_and_removes_match_a_plain_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
