/*
 * assert.c - what a failed TICKD_ASSERT does (alloc/assert.h): one line on
 * stderr naming the expression and where it is, then abort(). Built in every
 * build, so that a file compiled with TICKD_ASSERTS links against a library
 * built without.
 */
#include <stdio.h>
#include <stdlib.h>

#include "alloc/assert.h"

void tickd__assert_fail(const char *expr, const char *file, int line, const char *func)
{
    fprintf(stderr, "tickd: assertion failed: %s (%s:%d, in %s)\n", expr, file, line, func);
    fflush(stderr);
    abort();
}
