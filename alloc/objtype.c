/*
 * objtype.c - the types a heap knows, and their counters.
 *
 * Types are `static const` definitions shared by every heap; what is per heap
 * is the slot table: slot n holds the type that claimed slot n first, plus
 * the number of its objects created and destroyed on this heap. obj_new()
 * and the death of an object bump those counters directly (one add each),
 * and obj_renew() both (an object reborn in place is one death and one
 * birth);
 * this file validates and registers types, and reads the counters back for
 * the metrics (tickd_objects{type}, tickd_objects_created_total{type}).
 *
 * A type keeps its slot for the life of the heap; two types may not share
 * one. The table is a fixed array in the runtime: registering never
 * allocates. The generic traverse and clear of the types that describe
 * where their references are (fields, items) live here too, beside the
 * checks of those descriptions.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc/internal.h"
#include "alloc/runtime.h"

/* The fields of a type using obj_traverse_fields or obj_clear_fields: each
 * an aligned pointer inside the object, after the header. */
static int obj_type_fields_ok(const obj_type_t *type)
{
    int uses_fields = type->traverse == obj_traverse_fields || type->clear == obj_clear_fields ||
                      type->dealloc == obj_clear_fields;
    if (type->nfields == 0)
        return !uses_fields && type->fields == NULL;
    if (type->fields == NULL || type->traverse != obj_traverse_fields)
        return 0;
    for (unsigned i = 0; i < type->nfields; i++) {
        size_t off = type->fields[i];
        if (off < sizeof(obj_t) || off % _Alignof(obj_t *) != 0 ||
            off > type->size - sizeof(obj_t *))
            return 0;
    }
    return 1;
}

/* The array hook: items exactly when traverse is obj_traverse_items (which
 * rules out fields too: they want obj_traverse_fields). */
static int obj_type_items_ok(const obj_type_t *type)
{
    return (type->items != NULL) == (type->traverse == obj_traverse_items);
}

static int obj_type_is_wellformed(const obj_type_t *type)
{
    if (type->name == NULL || type->name[0] == '\0' || type->slot >= OBJ_TYPE_SLOTS)
        return 0;
    if (type->size < sizeof(obj_t) || type->size > SIZE_MAX / 2)
        return 0;
    if (type->traverse == NULL && (type->clear != NULL || type->finalize != NULL))
        return 0;
    return obj_type_fields_ok(type) && obj_type_items_ok(type);
}

int obj_type_register(heap_t *heap, const obj_type_t *type)
{
    TICKD_ASSERT(heap->rt != NULL && "obj_runtime_create() comes before obj_type_register()");
    if (!obj_type_is_wellformed(type))
        return -EINVAL;
    obj_type_slot_t *slot = &heap->rt->types[type->slot];
    if (slot->type == type)
        return 0;
    if (slot->type != NULL)
        return -EEXIST;
    slot->type = type;
    return 0;
}

void obj__type_require(heap_t *heap, const obj_type_t *type)
{
    int err = obj_type_register(heap, type);
    if (err == 0)
        return;
    const char *name = type->name != NULL ? type->name : "(unnamed)";
    if (err == -EEXIST)
        heap__fatal("obj_new(): type %s wants slot %u, which type %s holds on this heap: give "
                    "each type its own slot",
                    name, type->slot, heap->rt->types[type->slot].type->name);
    heap__fatal("obj_new(): type %s is malformed: it needs a name, a slot below %d, a size of "
                "at least %zu bytes, traverse if it has clear or finalize, fields inside the "
                "object with obj_traverse_fields, items with obj_traverse_items, and not both",
                name, OBJ_TYPE_SLOTS, sizeof(obj_t));
}

int obj_traverse_fields(obj_t *self, obj_visit_fn visit, void *arg)
{
    const obj_type_t *type = self->type;
    for (unsigned i = 0; i < type->nfields; i++) {
        obj_t *child;
        memcpy(&child, (char *)self + type->fields[i], sizeof(child));
        OBJ_VISIT(child);
    }
    return 0;
}

void obj_clear_fields(heap_t *heap, obj_t *self)
{
    const obj_type_t *type = self->type;
    for (unsigned i = 0; i < type->nfields; i++) {
        obj_t *child;
        char *field = (char *)self + type->fields[i];
        memcpy(&child, field, sizeof(child));
        if (child != NULL) {
            obj_t *none = NULL;
            memcpy(field, &none, sizeof(none));
            obj_decref(heap, child);
        }
    }
}

int obj_traverse_items(obj_t *self, obj_visit_fn visit, void *arg)
{
    size_t len;
    obj_t *const *items = self->type->items(self, &len);
    for (size_t i = 0; i < len; i++)
        OBJ_VISIT(items[i]);
    return 0;
}

static void obj_type_fill_stats(const obj_type_slot_t *slot, obj_type_stats_t *out)
{
    out->type = slot->type;
    out->created = slot->created;
    out->destroyed = slot->destroyed;
    out->live = slot->created - slot->destroyed;
}

int obj_type_get_stats(const heap_t *heap, const obj_type_t *type, obj_type_stats_t *out)
{
    if (type->slot >= OBJ_TYPE_SLOTS || heap->rt->types[type->slot].type != type)
        return -ENOENT;
    obj_type_fill_stats(&heap->rt->types[type->slot], out);
    return 0;
}

int obj_type_foreach(const heap_t *heap, int (*cb)(const obj_type_stats_t *stats, void *arg),
                     void *arg)
{
    for (unsigned i = 0; i < OBJ_TYPE_SLOTS; i++) {
        const obj_type_slot_t *slot = &heap->rt->types[i];
        if (slot->type == NULL)
            continue;
        obj_type_stats_t stats;
        obj_type_fill_stats(slot, &stats);
        int ret = cb(&stats, arg);
        if (ret != 0)
            return ret;
    }
    return 0;
}
