/*
 * support.c - the helpers shared by the tests of alloc/; support.h says what
 * each one proves. They assert with cmocka, except child_heap(), which runs
 * in a death test's child and exits instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/alloc/support.h"

/* ---- heaps ---- */

heap_t *heap_new(int debug)
{
    return heap_new_sized(0, 0, debug);
}

heap_t *heap_new_sized(size_t arena_size, size_t pool_size, int debug)
{
    heap_options_t opts;
    heap_options_init(&opts);
    opts.arena_size = arena_size;
    opts.pool_size = pool_size;
    opts.debug = debug;
    heap_t *heap = NULL;
    assert_int_equal(heap_create(&opts, &heap), 0);
    assert_non_null(heap);
    return heap;
}

void heap_assert_valid(const heap_t *heap)
{
    char why[512] = "";
    int rc = heap_check(heap, why, sizeof(why));
    if (rc != 0)
        print_error("heap_check: %s\n", why);
    assert_int_equal(rc, 0);
}

void heap_assert_empty_and_destroy(heap_t *heap)
{
    heap_stats_t st;
    heap_get_stats(heap, &st);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.large_bytes, 0);
    assert_int_equal(st.large_allocs, st.large_frees);
    for (unsigned i = 0; i < HEAP_NCLASSES; i++) {
        assert_int_equal(st.classes[i].used_blocks, 0);
        assert_int_equal(st.classes[i].allocs, st.classes[i].frees);
    }
    heap_assert_valid(heap);
    /* Blocks in the free caches are free, but their pools count them until
     * they go home: once they have, no pool is full. */
    heap_flush(heap);
    heap_get_stats(heap, &st);
    assert_int_equal(st.used_bytes, 0);
    assert_int_equal(st.pools_full, 0);
    heap_assert_valid(heap);
    heap_destroy(heap);
}

/* ---- pools ---- */

size_t pool_header_size(void)
{
    return (sizeof(heap_pool_t) + HEAP_ALIGN - 1) & ~(size_t)(HEAP_ALIGN - 1);
}

size_t blocks_per_pool(size_t pool_size, unsigned cls)
{
    return (pool_size - pool_header_size()) / heap_class_size(cls);
}

uintptr_t pool_of(const void *p, size_t pool_size)
{
    return (uintptr_t)p & ~(uintptr_t)(pool_size - 1);
}

void **blocks_new(size_t n)
{
    void **v = calloc(n, sizeof(void *));
    assert_non_null(v);
    return v;
}

/* ---- random numbers ---- */

uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- death tests ---- */

heap_t *child_heap(int debug)
{
    heap_options_t opts;
    heap_options_init(&opts);
    opts.debug = debug;
    heap_t *heap = NULL;
    if (heap_create(&opts, &heap) != 0)
        _exit(99);
    return heap;
}

void run_child(void (*op)(void), death_t *d)
{
    memset(d, 0, sizeof(*d));
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        /* cmocka catches these in the parent; the child must die of them. */
        static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            signal(sigs[i], SIG_DFL);
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0)
            _exit(98);
        close(fds[1]);
        op();
        _exit(0);
    }
    close(fds[1]);
    /* Read to the end, keeping what fits: the child must never block on a
     * full pipe. */
    size_t got = 0;
    for (;;) {
        char sink[512];
        char *dst = got < sizeof(d->stderr_text) - 1 ? d->stderr_text + got : sink;
        size_t room =
            got < sizeof(d->stderr_text) - 1 ? sizeof(d->stderr_text) - 1 - got : sizeof(sink);
        ssize_t r = read(fds[0], dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (dst != sink)
            got += (size_t)r;
    }
    d->stderr_text[got] = '\0';
    close(fds[0]);
    int status = 0;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    assert_int_equal(w, pid);
    d->exited = WIFEXITED(status);
    d->exit_code = d->exited ? WEXITSTATUS(status) : 0;
    d->signaled = WIFSIGNALED(status);
    d->signal = d->signaled ? WTERMSIG(status) : 0;
}

void assert_child_aborted(const death_t *d)
{
    if (!d->signaled || d->signal != SIGABRT)
        print_error("child %s %d, stderr:\n%s\n", d->signaled ? "killed by signal" : "exited with",
                    d->signaled ? d->signal : d->exit_code, d->stderr_text);
    assert_true(d->signaled);
    assert_int_equal(d->signal, SIGABRT);
}

void assert_dies_naming(void (*op)(void), const char *word, const char *other_word)
{
    death_t d;
    run_child(op, &d);
    assert_child_aborted(&d);
    if (strstr(d.stderr_text, word) == NULL || strstr(d.stderr_text, other_word) == NULL)
        print_error("expected \"%s\" and \"%s\" in:\n%s\n", word, other_word, d.stderr_text);
    assert_non_null(strstr(d.stderr_text, word));
    assert_non_null(strstr(d.stderr_text, other_word));
}
