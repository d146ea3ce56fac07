/*
 * book.c - price levels of one symbol's book.
 *
 * Levels of a side are sorted best last: bids by ascending price, asks by
 * descending price; the search is written once and compiled for each side.
 * The arrays grow by doubling (rarely: a book's depth settles early in the
 * day), never shrink until the book is freed with its symbol. A level that
 * joins or leaves moves the levels above it one place, in a plain loop:
 * best last, that is a level or two most of the time, less than a call to
 * memmove() costs.
 */
#include <errno.h>
#include <stdlib.h>

#include "feed/book.h"

#define BOOK_INITIAL_LEVELS 16

static int side_init(book_side_t *s, int ask)
{
    s->levels = malloc(BOOK_INITIAL_LEVELS * sizeof(*s->levels));
    s->n = 0;
    s->cap = BOOK_INITIAL_LEVELS;
    s->ask = ask;
    return s->levels == NULL ? -ENOMEM : 0;
}

book_t *book_new(void)
{
    book_t *book = calloc(1, sizeof(*book)); /* a failed side_init() leaves NULLs to free */
    if (book == NULL)
        return NULL;
    int err = side_init(&book->bid, 0);
    if (err == 0)
        err = side_init(&book->ask, 1);
    if (err != 0) {
        book_free(book);
        return NULL;
    }
    return book;
}

void book_free(book_t *book)
{
    if (book == NULL)
        return;
    free(book->bid.levels);
    free(book->ask.levels);
    free(book);
}

/* Does price a sort below price b on this side (further from the best)? */
static inline __attribute__((always_inline)) int below(int ask, int64_t a, int64_t b)
{
    return ask ? a > b : a < b;
}

/* Index of the level with price, or of where it would go. Searches from the
 * best end first: most changes happen within a few levels of the top. ask
 * is a constant at each call, so each side gets its own loop. */
static inline __attribute__((always_inline)) uint32_t find_in(const book_side_t *s, int64_t price,
                                                              int *found, int ask)
{
    uint32_t lo = 0, hi = s->n;
    for (uint32_t i = s->n, steps = 0; i > 0 && steps < 4; i--, steps++) {
        int64_t p = s->levels[i - 1].price;
        if (p == price) {
            *found = 1;
            return i - 1;
        }
        if (below(ask, p, price)) {
            *found = 0;
            return i;
        }
        hi = i - 1;
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int64_t p = s->levels[mid].price;
        if (p == price) {
            *found = 1;
            return mid;
        }
        if (below(ask, p, price))
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* find_in() for the side named by side ('B' or 'S'), inlined into each
 * caller with the side's comparison fixed. */
static inline __attribute__((always_inline)) uint32_t find(const book_side_t *s, char side,
                                                           int64_t price, int *found)
{
    return side == 'B' ? find_in(s, price, found, 0) : find_in(s, price, found, 1);
}

int book_add(book_t *book, char side, int64_t price, uint32_t shares)
{
    book_side_t *s = side == 'B' ? &book->bid : &book->ask;
    int found;
    uint32_t i = find(s, side, price, &found);
    if (found) {
        book->version++;
        s->levels[i].shares += shares;
        s->levels[i].orders++;
        return i == s->n - 1 && shares > 0;
    }
    if (s->n == s->cap) {
        book_level_t *grown = realloc(s->levels, 2 * (size_t)s->cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        s->levels = grown;
        s->cap *= 2;
    }
    for (uint32_t j = s->n; j > i; j--) /* a level or two, most of the time */
        s->levels[j] = s->levels[j - 1];
    s->levels[i] = (book_level_t){.price = price, .shares = shares, .orders = 1};
    s->n++;
    book->version++;
    return i == s->n - 1;
}

int book_reduce(book_t *book, char side, int64_t price, uint32_t shares, int gone)
{
    book_side_t *s = side == 'B' ? &book->bid : &book->ask;
    int found;
    uint32_t i = find(s, side, price, &found);
    if (!found)
        return 0;
    book->version++;
    book_level_t *l = &s->levels[i];
    uint64_t taken = shares < l->shares ? shares : l->shares;
    int top = i == s->n - 1;
    l->shares -= taken;
    if (gone && l->orders > 0)
        l->orders--;
    if (l->orders == 0) {
        for (uint32_t j = i; j + 1 < s->n; j++)
            s->levels[j] = s->levels[j + 1];
        s->n--;
        return top;
    }
    return top && taken > 0;
}
