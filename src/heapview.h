/*
 * heapview.h - the heap as a picture: GET /debug/heap (a self-contained HTML
 * page, src/heap_page.html embedded at build time) and GET /debug/heap.json
 * (the data the page draws, documented field by field in heapview.c).
 *
 * Both are rendered on the loop at request time from the same
 * metrics_snapshot_t the /metrics page reads (the heap, tick counts, pub/sub
 * figures); nothing here calls into the daemon or keeps a counter of its own.
 */
#ifndef TICKD_SRC_HEAPVIEW_H
#define TICKD_SRC_HEAPVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "src/http.h"
#include "src/metrics.h"

/* The page's bytes (no NUL counted), at most HEAPVIEW_PAGE_MAX. */
#define HEAPVIEW_PAGE_MAX (64 * 1024)
extern const char heapview_page[];
extern const size_t heapview_page_len;

/* Appends the page to body; 0 or -ENOMEM. */
int heapview_render_page(http_body_t *body);

/*
 * Appends /debug/heap.json for s to body: s->heap is read through
 * heap_get_stats(), heap_walk(), gc_get_stats() and obj_type_foreach();
 * s->ticks_total, s->pubsub and s->version are copied. now_ms is the
 * CLOCK_REALTIME in milliseconds the page divides counter deltas by. Returns
 * 0, -EINVAL when s->heap is NULL, or -ENOMEM.
 */
int heapview_render_json(const metrics_snapshot_t *s, int64_t now_ms, http_body_t *body);

#endif
