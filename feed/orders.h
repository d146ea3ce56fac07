/*
 * orders.h - the live orders of a market by reference number (internal to
 * feed/).
 *
 * ITCH hands out order reference numbers in increasing order through the
 * day, and most orders live briefly, so the live ones sit in a narrow band
 * just below the newest reference. The table keeps that band in a window: an
 * array of order pointers indexed by reference (modulo its size) that covers
 * the references [base, base + size). Finding an order there is one
 * subtraction, one compare and one load, with no hashing and no probing, and
 * the slot of the next messages' orders can be computed (and prefetched)
 * before they are needed.
 *
 * A reference outside the window lives in an open addressing hash (linear
 * probing, the key stored in the slot): the few old orders that outlive the
 * band, and the references that come out of order (a replay looping over its
 * file adds the day's references again). When an add comes past the end of
 * the window, the window grows (doubling) if it is at least half full, and
 * otherwise slides forward by at least a quarter of its size, moving the
 * orders it leaves behind into the hash. Each reference is passed over by a
 * slide once, so sliding costs O(1) per add.
 *
 * Invariants: every reference in the hash is below base (the window only
 * slides forward, and starts anew only when the table is empty); a
 * window slot holds NULL or the order whose reference is in range and
 * congruent to the slot; the window holds window_count orders and the hash
 * hash_count, and together they are the live orders. Memory: the window is
 * at most about twice the live orders in it (8 bytes each), the hash at most
 * twice its own (16 bytes each), beyond the initial sizes.
 *
 * The table owns no order: the market holds each order's reference and
 * drops it after order_table_remove().
 */
#ifndef TICKD_FEED_ORDERS_H
#define TICKD_FEED_ORDERS_H

#include <stddef.h>
#include <stdint.h>

#include "feed/market.h"

typedef struct order_slot {
    uint64_t ref; /* 0 marks an empty slot (ITCH never uses reference 0) */
    order_t *order;
} order_slot_t;

typedef struct order_table {
    order_t **window;      /* [ref & window_mask] for base <= ref <= base + window_mask */
    uint64_t base;         /* the lowest reference the window covers; never 0 */
    uint64_t window_mask;  /* the window's size - 1 (kept, not shifted out of window_bits, on
                              the hot path) */
    uint32_t window_bits;  /* log2 of the window's size */
    uint64_t window_count; /* orders in the window */
    order_slot_t *hash;    /* the orders outside the window */
    uint32_t hash_bits;    /* log2 of the hash's size */
    uint64_t hash_count;   /* orders in the hash */
} order_table_t;

/* An empty table. 0 or -ENOMEM. */
int order_table_init(order_table_t *t);
/* Frees the table's arrays (not the orders). */
void order_table_free(order_table_t *t);

/* The order with reference ref (below the window) in the hash, or NULL. */
order_t *order_table_find_outlier(const order_table_t *t, uint64_t ref);

/* The live order with reference ref, or NULL (always for ref 0). */
static inline order_t *order_table_find(const order_table_t *t, uint64_t ref)
{
    if (__builtin_expect(ref - t->base <= t->window_mask, 1))
        return t->window[ref & t->window_mask];
    return ref < t->base ? order_table_find_outlier(t, ref) : (order_t *)0;
}

/* Where order_table_find() would look first for ref: its window slot, or
 * NULL when ref is outside the window. For a prefetch. */
static inline order_t *const *order_table_slot(const order_table_t *t, uint64_t ref)
{
    return ref - t->base <= t->window_mask ? &t->window[ref & t->window_mask] : (order_t *const *)0;
}

/* order_table_insert() for a reference outside the window. */
int order_table_insert_generic(order_table_t *t, order_t *o);
/* order_table_remove() for an order in the hash. */
void order_table_remove_outlier(order_table_t *t, const order_t *o);

/* Adds o under o->ref (non-zero, not live: the caller has looked). 0 or
 * -ENOMEM (nothing changed). */
static inline int order_table_insert(order_table_t *t, order_t *o)
{
    if (__builtin_expect(o->ref - t->base > t->window_mask, 0))
        return order_table_insert_generic(t, o);
    t->window[o->ref & t->window_mask] = o;
    t->window_count++;
    return 0;
}

/* Takes o (live in the table) out. */
static inline void order_table_remove(order_table_t *t, const order_t *o)
{
    if (__builtin_expect(o->ref - t->base > t->window_mask, 0)) {
        order_table_remove_outlier(t, o);
        return;
    }
    t->window[o->ref & t->window_mask] = NULL;
    t->window_count--;
}

/* Live orders in the table. */
static inline uint64_t order_table_count(const order_table_t *t)
{
    return t->window_count + t->hash_count;
}

/* Calls cb for every live order, in no particular order. cb may remove the
 * order it is given, and no other, and returns whether it did. */
void order_table_walk(order_table_t *t, int (*cb)(order_t *o, void *arg), void *arg);

#endif
