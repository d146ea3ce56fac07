/*
 * tick.c - the object types of the feed: Tick, Symbol and Order.
 *
 * A symbol holds its last trade and last quote, and each tick holds its
 * symbol: a cycle, which the collector must break when a market drops its
 * symbol table at the end of the day. Only the Symbol is a container,
 * though. A tick reaches a cycle only as a last value, and a last value
 * that nothing but its symbol holds (refcount 1) is part of that symbol as
 * far as reachability goes: its one reference, back to the symbol, is one
 * the symbol's traverse reports as its own (a visit of the symbol itself).
 * A last value someone else holds too (a sink keeps a tick with a reference
 * of its own) is reported as nothing: its reference to the symbol is then
 * an outside one, and keeps the symbol alive until that holder lets go; the
 * next collection after that finds the cycle. So the collector needs no GC
 * header on a tick and tracks none: a tick costs it nothing at birth or
 * death, on the hot path where a quote is made and the one it replaces dies
 * for nearly every other message.
 *
 * An Order holds no reference (its symbol is borrowed): no GC header
 * either, and with millions of them live, that matters.
 */
#include <stddef.h>
#include <string.h>

#include "alloc/assert.h"
#include "feed/book.h"
#include "feed/journal.h"
#include "feed/market.h"

enum feed_type_slot {
    FEED_SLOT_TICK = 1,
    FEED_SLOT_SYMBOL = 2,
    FEED_SLOT_ORDER = 3,
};

/* A tick always has its symbol (the market sets it at birth). */
static void tick_dealloc(heap_t *heap, obj_t *self)
{
    obj_decref(heap, &((tick_t *)self)->sym->ob);
}

const obj_type_t tick_type = {
    .name = "tick",
    .size = sizeof(tick_t),
    .slot = FEED_SLOT_TICK,
    .dealloc = tick_dealloc,
};

static void symbol_clear(heap_t *heap, obj_t *self)
{
    symbol_t *s = (symbol_t *)self;
    OBJ_CLEAR(heap, s->last_trade);
    OBJ_CLEAR(heap, s->last_quote);
}

static void symbol_dealloc(heap_t *heap, obj_t *self)
{
    symbol_t *s = (symbol_t *)self;
    symbol_clear(heap, self);
    book_free(s->book);
    s->book = NULL;
}

/* A last value only s holds is part of s: its reference to s is one of
 * s's own (see the top of the file). */
static int last_value_visit(const symbol_t *s, const tick_t *t, obj_visit_fn visit, void *arg)
{
    if (t == NULL || t->ob.refcnt != 1)
        return 0;
    TICKD_ASSERT(t->sym == s);
    return visit((obj_t *)&s->ob, arg);
}

static int symbol_traverse(obj_t *self, obj_visit_fn visit, void *arg)
{
    symbol_t *s = (symbol_t *)self;
    int r = last_value_visit(s, s->last_trade, visit, arg);
    return r != 0 ? r : last_value_visit(s, s->last_quote, visit, arg);
}

const obj_type_t symbol_type = {
    .name = "symbol",
    .size = sizeof(symbol_t),
    .slot = FEED_SLOT_SYMBOL,
    .dealloc = symbol_dealloc,
    .traverse = symbol_traverse,
    .clear = symbol_clear,
};

const obj_type_t order_type = {
    .name = "order",
    .size = sizeof(order_t),
    .slot = FEED_SLOT_ORDER,
};

void tick_to_journal_rec(const tick_t *t, journal_rec_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->kind = t->kind == TICK_TRADE ? JOURNAL_TRADE : JOURNAL_QUOTE;
    rec->side = t->side;
    memcpy(rec->sym, t->sym->name, t->sym->len);
    rec->price = t->price;
    rec->size = t->size;
    rec->ask = t->ask;
    rec->ask_size = t->ask_size;
    rec->seq = t->seq;
    rec->ts_exch = t->ts_exch;
    rec->ts_recv = t->ts_recv;
}
