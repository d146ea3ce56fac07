/*
 * assert.h - TICKD_ASSERT: an invariant that the prose states, checked in
 * debug builds and compiled away in release builds.
 *
 * TICKD_ASSERT(expr) is for what must be true whatever the input (a pool's
 * free list is empty exactly when the pool is full, a scratch count stays
 * within its object's count): a false expr is a bug in tickd, never bad
 * input, which gets an error instead. When the build defines TICKD_ASSERTS
 * (the CMake option of that name: on in Debug builds and in the asan
 * preset, off in RelWithDebInfo and Release) a false expr prints
 *
 *   tickd: assertion failed: <expr> (<file>:<line>, in <function>)
 *
 * on stderr and aborts. Without it the macro compiles to nothing: expr is
 * not evaluated (it may be as costly as a whole heap_check()) and costs the
 * fast paths not one instruction, yet the compiler still sees it, so an
 * assertion cannot rot in the release build. It must therefore have no
 * effect the program relies on.
 *
 * For alloc/, feed/ and src/ alike: alloc/ is the lowest layer, and this
 * needs libc only.
 */
#ifndef TICKD_ALLOC_ASSERT_H
#define TICKD_ALLOC_ASSERT_H

/* Prints the failed assertion on stderr and aborts (alloc/assert.c). */
__attribute__((noreturn, cold)) void tickd__assert_fail(const char *expr, const char *file,
                                                        int line, const char *func);

#ifdef TICKD_ASSERTS

#define TICKD_ASSERT(expr)                                                                         \
    (__builtin_expect(!!(expr), 1) ? (void)0                                                       \
                                   : tickd__assert_fail(#expr, __FILE__, __LINE__, __func__))

#else

#define TICKD_ASSERT(expr) ((void)sizeof(!(expr)))

#endif

#endif
