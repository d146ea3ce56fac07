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

/* Adds an order of shares at price on side ('B' or 'S'). Returns 1 when the
 * best level of the side changed (its price or its shares), 0 when not, or
 * -ENOMEM (nothing changed). */
int book_add(book_t *book, char side, int64_t price, uint32_t shares);

/* Takes shares off the level at price; gone says the order left the book
 * (its count goes down too). A level left with no order is removed. Returns
 * 1 when the best level of the side changed, else 0. */
int book_reduce(book_t *book, char side, int64_t price, uint32_t shares, int gone);

/* The best level of a side, or NULL when the side is empty. */
static inline const book_level_t *book_best(const book_side_t *s)
{
    return s->n > 0 ? &s->levels[s->n - 1] : (const book_level_t *)0;
}

#endif
