/*
 * book.c - price levels of one symbol's book.
 *
 * Levels of a side are sorted best last: bids by ascending price, asks by
 * descending price. The arrays grow by doubling (rarely: a book's depth
 * settles early in the day), never shrink until the book is freed with its
 * symbol. The search and the changes to a level are inline in book.h.
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

int book_side_grow(book_side_t *s)
{
    book_level_t *grown = realloc(s->levels, 2 * (size_t)s->cap * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    s->levels = grown;
    s->cap *= 2;
    return 0;
}
