/*
 * orders.c - the live orders by reference: a window over the recent
 * references and a hash for the rest (see orders.h for the design and its
 * invariants).
 *
 * Everything that can fail (a bigger window, a bigger hash) is allocated
 * before anything moves, so a failed insert leaves the table as it was.
 */
#include <errno.h>
#include <stdlib.h>

#include "feed/orders.h"

#define WINDOW_INITIAL_BITS 16 /* 65,536 references, 512 KiB */
#define WINDOW_MAX_BITS     27
#define HASH_INITIAL_BITS   12
#define HASH_MULTIPLIER     0x9E3779B97F4A7C15ull

static size_t hash_home(uint64_t ref, uint32_t bits)
{
    return (size_t)((ref * HASH_MULTIPLIER) >> (64 - bits));
}

int order_table_init(order_table_t *t)
{
    t->base = 1;
    t->window_bits = WINDOW_INITIAL_BITS;
    t->window_mask = ((uint64_t)1 << WINDOW_INITIAL_BITS) - 1;
    t->window_count = 0;
    t->window = calloc((size_t)1 << WINDOW_INITIAL_BITS, sizeof(*t->window));
    t->hash_bits = HASH_INITIAL_BITS;
    t->hash_count = 0;
    t->hash = calloc((size_t)1 << HASH_INITIAL_BITS, sizeof(*t->hash));
    if (t->window == NULL || t->hash == NULL) {
        order_table_free(t);
        return -ENOMEM;
    }
    return 0;
}

void order_table_free(order_table_t *t)
{
    free(t->window);
    free(t->hash);
    t->window = NULL;
    t->hash = NULL;
}

/* ---- the hash ---- */

/* Slot index of ref in the hash, or of the empty slot where it would go. */
static size_t hash_slot(const order_table_t *t, uint64_t ref)
{
    size_t mask = ((size_t)1 << t->hash_bits) - 1;
    size_t i = hash_home(ref, t->hash_bits);
    while (t->hash[i].ref != 0 && t->hash[i].ref != ref)
        i = (i + 1) & mask;
    return i;
}

order_t *order_table_find_outlier(const order_table_t *t, uint64_t ref)
{
    if (ref == 0)
        return NULL;
    size_t i = hash_slot(t, ref);
    return t->hash[i].ref == ref ? t->hash[i].order : NULL;
}

/* Makes room for `count` orders in the hash (at most half full). */
static int hash_reserve(order_table_t *t, uint64_t count)
{
    uint32_t bits = t->hash_bits;
    while (count * 2 > (uint64_t)1 << bits)
        bits++;
    if (bits == t->hash_bits)
        return 0;
    size_t size = (size_t)1 << bits, mask = size - 1;
    order_slot_t *grown = calloc(size, sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < (size_t)1 << t->hash_bits; i++) {
        if (t->hash[i].ref == 0)
            continue;
        size_t j = hash_home(t->hash[i].ref, bits);
        while (grown[j].ref != 0)
            j = (j + 1) & mask;
        grown[j] = t->hash[i];
    }
    free(t->hash);
    t->hash = grown;
    t->hash_bits = bits;
    return 0;
}

/* Puts o in the hash, which has room (hash_reserve()). */
static void hash_put(order_table_t *t, order_t *o)
{
    size_t i = hash_slot(t, o->ref);
    t->hash[i].ref = o->ref;
    t->hash[i].order = o;
    t->hash_count++;
}

/* Empties slot i and shifts later members of its probe run back, so lookups
 * never need tombstones. */
static void hash_clear(order_table_t *t, size_t i)
{
    size_t mask = ((size_t)1 << t->hash_bits) - 1;
    size_t j = i;
    t->hash_count--;
    for (;;) {
        t->hash[i].ref = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (t->hash[j].ref == 0)
                return;
            size_t home = hash_home(t->hash[j].ref, t->hash_bits);
            /* Can the entry at j move to i? Only if its home is not in (i, j]. */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        t->hash[i] = t->hash[j];
        i = j;
    }
}

/* ---- the window ---- */

static int window_grow(order_table_t *t)
{
    uint32_t bits = t->window_bits + 1;
    size_t size = (size_t)1 << bits;
    order_t **grown = calloc(size, sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < (size_t)1 << t->window_bits; i++)
        if (t->window[i] != NULL)
            grown[t->window[i]->ref & (size - 1)] = t->window[i];
    free(t->window);
    t->window = grown;
    t->window_bits = bits;
    t->window_mask = size - 1;
    return 0;
}

/* Makes the window reach ref (past its end): grows it while it is at least
 * half full, else slides it forward, moving the orders it leaves behind into
 * the hash. */
static int window_reach(order_table_t *t, uint64_t ref)
{
    for (;;) {
        uint64_t size = (uint64_t)1 << t->window_bits;
        if (ref - t->base < size)
            return 0;
        if (t->window_count * 2 >= size && t->window_bits < WINDOW_MAX_BITS && window_grow(t) == 0)
            continue;
        /* Slide a quarter of the window at least: one pass over the slots
         * left behind (and one hash_reserve()) serves many adds. */
        uint64_t base = ref - size + 1;
        if (base - t->base < size / 4)
            base = t->base + size / 4;
        uint64_t passed = base - t->base < size ? base - t->base : size;
        uint64_t moving = passed < t->window_count ? passed : t->window_count;
        int err = hash_reserve(t, t->hash_count + moving);
        if (err != 0)
            return err;
        for (uint64_t r = t->base; r < t->base + passed; r++) {
            order_t **slot = &t->window[r & (size - 1)];
            if (*slot != NULL) {
                hash_put(t, *slot);
                *slot = NULL;
                t->window_count--;
            }
        }
        t->base = base;
    }
}

int order_table_insert_generic(order_table_t *t, order_t *o)
{
    uint64_t ref = o->ref;
    int err;
    if (order_table_count(t) == 0) {
        t->base = ref; /* nothing is live: the window may start anywhere */
    } else if (ref < t->base) {
        if ((err = hash_reserve(t, t->hash_count + 1)) != 0)
            return err;
        hash_put(t, o);
        return 0;
    } else if ((err = window_reach(t, ref)) != 0) {
        return err;
    }
    t->window[ref & (((uint64_t)1 << t->window_bits) - 1)] = o;
    t->window_count++;
    return 0;
}

void order_table_remove_outlier(order_table_t *t, const order_t *o)
{
    hash_clear(t, hash_slot(t, o->ref));
}

/* In the hash, removing slot i's order moves a later member of its probe run
 * into i, so the walk looks at i again after a removal instead of moving on.
 * A move brings an entry from further along the walk, or, across the end of
 * the array, one already seen and kept, into the slot: no order is passed
 * over, and a kept one may be seen twice. */
void order_table_walk(order_table_t *t, int (*cb)(order_t *o, void *arg), void *arg)
{
    for (size_t i = 0; i < (size_t)1 << t->window_bits; i++)
        if (t->window[i] != NULL)
            cb(t->window[i], arg);
    for (size_t i = 0; i < (size_t)1 << t->hash_bits;) {
        if (t->hash[i].ref == 0 || !cb(t->hash[i].order, arg))
            i++;
    }
}
