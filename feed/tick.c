/*
 * tick.c - the object types of the feed: Tick, Symbol and Order.
 *
 * Tick and Symbol are containers (a tick holds its symbol; a symbol holds its
 * last trade and last quote), so the collector can break the Symbol <-> Tick
 * cycles left when a market drops its symbol table at the end of the day.
 * An Order holds no reference (its symbol is borrowed), so it carries no GC
 * header and costs the collector nothing: with millions of them live, that
 * matters.
 */
#include <stddef.h>
#include <string.h>

#include "feed/book.h"
#include "feed/journal.h"
#include "feed/market.h"

enum feed_type_slot {
    FEED_SLOT_TICK = 1,
    FEED_SLOT_SYMBOL = 2,
    FEED_SLOT_ORDER = 3,
};

static void tick_dealloc(heap_t *heap, obj_t *self)
{
    tick_t *t = (tick_t *)self;
    OBJ_CLEAR(heap, t->sym);
}

static int tick_traverse(obj_t *self, obj_visit_fn visit, void *arg)
{
    tick_t *t = (tick_t *)self;
    OBJ_VISIT(t->sym);
    return 0;
}

static void tick_clear(heap_t *heap, obj_t *self)
{
    tick_t *t = (tick_t *)self;
    OBJ_CLEAR(heap, t->sym);
}

const obj_type_t tick_type = {
    .name = "tick",
    .size = sizeof(tick_t),
    .slot = FEED_SLOT_TICK,
    .dealloc = tick_dealloc,
    .traverse = tick_traverse,
    .clear = tick_clear,
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

static int symbol_traverse(obj_t *self, obj_visit_fn visit, void *arg)
{
    symbol_t *s = (symbol_t *)self;
    OBJ_VISIT(s->last_trade);
    OBJ_VISIT(s->last_quote);
    return 0;
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
