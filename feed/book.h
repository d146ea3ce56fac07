/*
 * book.h - price levels of one symbol's book (internal to feed/).
 *
 * A book keeps, per side, the aggregate of its live orders at each price:
 * total shares and order count. Orders themselves live in the market's order
 * map; the book needs no list of them, because every ITCH message that
 * changes an order names the order, and the order knows its price and side.
 *
 * Each side is an array of levels sorted so that the best price is last
 * (bids ascending, asks descending): nearly all activity is at or near the
 * top, where inserting and removing move few levels.
 */
#ifndef TICKD_FEED_BOOK_H
#define TICKD_FEED_BOOK_H

#include <errno.h>
#include <stdint.h>

typedef struct book_level {
    int64_t price;   /* 4 implied decimals */
    uint64_t shares; /* total shares of the orders at this price */
    uint32_t orders; /* how many orders */
} book_level_t;

typedef struct book_side {
    book_level_t *levels; /* best last */
    uint32_t n;           /* levels in use */
    uint32_t cap;         /* levels allocated */
    int ask;              /* 1 for the ask side (descending prices) */
} book_side_t;

struct book {
    book_side_t bid;
    book_side_t ask;
    uint64_t version; /* bumped by every book_add() and every book_reduce() of a level */
};

typedef struct book book_t;

/* A new empty book; NULL when out of memory. */
book_t *book_new(void);
void book_free(book_t *book);

/* The best level of a side, or NULL when the side is empty. */
static inline const book_level_t *book_best(const book_side_t *s)
{
    return s->n > 0 ? &s->levels[s->n - 1] : (const book_level_t *)0;
}

/* Doubles a side's level array (book_add() when it is full): 0 or -ENOMEM
 * (nothing changed). */
int book_side_grow(book_side_t *s);

/* The search, book_add() and book_reduce() are inline (book__ names are
 * theirs alone): the market calls one of them for nearly every message.
 * The search is written once and compiled for each side. A level that joins
 * or leaves moves the levels above it one place, in a plain loop: best
 * last, that is a level or two most of the time, less than a call to
 * memmove() costs. */

/* Does price a sort below price b on this side (further from the best)? */
static inline __attribute__((always_inline)) int book__below(int ask, int64_t a, int64_t b)
{
    return ask ? a > b : a < b;
}

/* Index of the level with price, or of where it would go. Searches from the
 * best end first: most changes happen within a few levels of the top. ask
 * is a constant at each call, so each side gets its own loop. */
static inline __attribute__((always_inline)) uint32_t
book__find_in(const book_side_t *s, int64_t price, int *found, int ask)
{
    uint32_t lo = 0, hi = s->n;
    for (uint32_t i = s->n, steps = 0; i > 0 && steps < 4; i--, steps++) {
        int64_t p = s->levels[i - 1].price;
        if (p == price) {
            *found = 1;
            return i - 1;
        }
        if (book__below(ask, p, price)) {
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
        if (book__below(ask, p, price))
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* book__find_in() for the side named by side ('B' or 'S'), inlined into each
 * caller with the side's comparison fixed. */
static inline __attribute__((always_inline)) uint32_t book__find(const book_side_t *s, char side,
                                                                 int64_t price, int *found)
{
    return side == 'B' ? book__find_in(s, price, found, 0) : book__find_in(s, price, found, 1);
}

/* Adds an order of shares at price on side ('B' or 'S'). Returns 1 when the
 * best level of the side changed (its price or its shares), 0 when not, or
 * -ENOMEM (nothing changed). */
static inline __attribute__((always_inline)) int book_add(book_t *book, char side, int64_t price,
                                                          uint32_t shares)
{
    book_side_t *s = side == 'B' ? &book->bid : &book->ask;
    int found;
    uint32_t i = book__find(s, side, price, &found);
    if (found) {
        book->version++;
        s->levels[i].shares += shares;
        s->levels[i].orders++;
        return i == s->n - 1 && shares > 0;
    }
    if (__builtin_expect(s->n == s->cap, 0) && book_side_grow(s) != 0)
        return -ENOMEM;
    for (uint32_t j = s->n; j > i; j--) /* a level or two, most of the time */
        s->levels[j] = s->levels[j - 1];
    s->levels[i] = (book_level_t){.price = price, .shares = shares, .orders = 1};
    s->n++;
    book->version++;
    return i == s->n - 1;
}

/* Takes shares off the level at price; gone says the order left the book
 * (its count goes down too). A level left with no order is removed. Returns
 * 1 when the best level of the side changed, else 0. */
static inline __attribute__((always_inline)) int book_reduce(book_t *book, char side, int64_t price,
                                                             uint32_t shares, int gone)
{
    book_side_t *s = side == 'B' ? &book->bid : &book->ask;
    int found;
    uint32_t i = book__find(s, side, price, &found);
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

#endif
