/*
 * test_assert_off.c - TICKD_ASSERT compiled without TICKD_ASSERTS, as in a
 * release build, for test_assert.c: the expression is type-checked but never
 * evaluated, so a false one does nothing.
 */
#undef TICKD_ASSERTS
#include "alloc/assert.h"

int assert_off_evaluations(void);

static int evaluations;

static int counted(int value)
{
    evaluations++;
    return value;
}

int assert_off_evaluations(void)
{
    evaluations = 0;
    TICKD_ASSERT(counted(0) == 1);
    return evaluations;
}
