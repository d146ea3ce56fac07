/*
 * test_assert.c - TICKD_ASSERT (alloc/assert.h, alloc/assert.c): with
 * TICKD_ASSERTS a false expression aborts and says which and where; a true
 * one costs nothing else; without TICKD_ASSERTS the expression is not even
 * evaluated (test_assert_off.c, compiled without it whatever the build).
 *
 * This file turns assertions on for itself, so that it proves what a Debug
 * or asan build does in every build; whether the library's own assertions
 * are on is the build's choice, tested where they sit (test_pool.c,
 * test_heap.c, test_object.c, test_gc.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#ifndef TICKD_ASSERTS
#define TICKD_ASSERTS 1
#endif
#include "alloc/assert.h"
#include "tests/alloc/support.h"

/* test_assert_off.c: how many times TICKD_ASSERT evaluated its expression
 * there (assertions off), after one false assertion. */
int assert_off_evaluations(void);

static int evaluations;

static int counted(int value)
{
    evaluations++;
    return value;
}

/* The line of the assertion below. */
enum { VIOLATED_LINE = __LINE__ + 4 };
static void op_violate_an_assertion(void)
{
    int pool_used = 3;
    TICKD_ASSERT(pool_used == 0);
}

/* One line: what failed, then where, the file named from the top of the
 * source tree in builds with TICKD_ASSERTS (and by whatever path the
 * compiler was given otherwise). */
static void test_a_false_assertion_aborts_naming_the_expression_file_line_and_function(void **state)
{
    (void)state;
    static const char what[] = "tickd: assertion failed: pool_used == 0 (";
    char where[128];
    snprintf(where, sizeof(where), "tests/alloc/test_assert.c:%d, in op_violate_an_assertion)\n",
             (int)VIOLATED_LINE);
    death_t d;
    run_child(op_violate_an_assertion, &d);
    assert_child_aborted(&d);
    const char *at = strstr(d.stderr_text, where);
    if (strncmp(d.stderr_text, what, strlen(what)) != 0 || at == NULL || at[strlen(where)] != '\0')
        print_error("want \"%s...%s\", got:\n%s\n", what, where, d.stderr_text);
    assert_memory_equal(d.stderr_text, what, strlen(what));
    assert_non_null(at);
    assert_int_equal(at[strlen(where)], '\0');
    assert_ptr_equal(strchr(d.stderr_text, '\n'), at + strlen(where) - 1); /* one line */
}

static void test_a_true_assertion_evaluates_once_and_goes_on(void **state)
{
    (void)state;
    evaluations = 0;
    TICKD_ASSERT(counted(1) == 1);
    assert_int_equal(evaluations, 1);
}

static void test_without_asserts_the_expression_is_not_evaluated(void **state)
{
    (void)state;
    assert_int_equal(assert_off_evaluations(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_a_false_assertion_aborts_naming_the_expression_file_line_and_function),
        cmocka_unit_test(test_a_true_assertion_evaluates_once_and_goes_on),
        cmocka_unit_test(test_without_asserts_the_expression_is_not_evaluated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
