/*
 * fuzz_config.c - libFuzzer harness: the YAML configuration loader
 * (config_load_buffer, src/config.h) and its value parsers.
 *
 * Input: a YAML file, as is. It is loaded twice from a buffer of its exact
 * size; the loader must answer the same both times (return value, message
 * and every byte of the config), fail only with a negative errno and a
 * message, and on success hand back a config that keeps config.h's promises:
 * strings terminated, feeds within CONFIG_MAX_FEEDS with unique names and a
 * known type and format, the soft output limit not above the hard one, and
 * heap sizes that heap_create() takes. The input, as one string, also goes
 * to config_parse_size(), config_parse_duration() and
 * config_parse_hostport().
 *
 * Seeds (corpus/fuzz_config/): config/tickd.yaml, the configs in config/examples/ and
 * the good and bad configs of tests/src/configs/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "src/config.h"
#include "feed/ingest.h"
#include "tests/fuzz/fuzz_market.h"

#define NAME "/etc/tickd/tickd.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_config(const config_t *c)
{
    if (!TERMINATED(c->path) || strcmp(c->path, NAME) != 0)
        fuzz_fail("config path is not the name it was loaded under");
    if (!TERMINATED(c->pubsub.listen) || !TERMINATED(c->pubsub.password) ||
        !TERMINATED(c->http.listen) || !TERMINATED(c->journal.dir) ||
        !TERMINATED(c->session.timezone))
        fuzz_fail("a string of the config is not terminated");
    if (c->pubsub.soft_limit > c->pubsub.hard_limit)
        fuzz_fail("output_soft_limit %zu above output_hard_limit %zu", c->pubsub.soft_limit,
                  c->pubsub.hard_limit);
    if (c->nfeeds > CONFIG_MAX_FEEDS)
        fuzz_fail("%zu feeds", c->nfeeds);
    for (size_t i = 0; i < c->nfeeds; i++) {
        const config_feed_t *f = &c->feeds[i];
        if (!TERMINATED(f->name) || !TERMINATED(f->path) || !TERMINATED(f->listen) ||
            !TERMINATED(f->group) || !TERMINATED(f->interface))
            fuzz_fail("a string of feeds[%zu] is not terminated", i);
        if (f->name[0] == '\0')
            fuzz_fail("feeds[%zu] has no name", i);
        if (f->kind != FEED_FILE && f->kind != FEED_TCP && f->kind != FEED_UDP)
            fuzz_fail("feeds[%zu] of kind %d", i, (int)f->kind);
        if (ingest_format_parse(ingest_format_name(f->format)) != (enum ingest_format)f->format)
            fuzz_fail("feeds[%zu] of format %d", i, f->format);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->feeds[j].name, f->name) == 0)
                fuzz_fail("feeds[%zu] and feeds[%zu] are both \"%s\"", j, i, f->name);
    }
    heap_options_t opts;
    heap_options_init(&opts);
    opts.arena_size = c->heap.arena_size;
    opts.pool_size = c->heap.pool_size;
    opts.debug = HEAP_DEBUG_OFF;
    heap_t *heap;
    if (heap_create(&opts, &heap) != 0)
        fuzz_fail("heap_create refuses arena_size %zu, pool_size %zu", c->heap.arena_size,
                  c->heap.pool_size);
    heap_destroy(heap);
}

static void check_parsers(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        fuzz_fail("out of memory");
    memcpy(s, data, size);
    s[size] = '\0';
    size_t bytes;
    uint64_t ns;
    char *host = malloc(256);
    int port = -1;
    if (host == NULL)
        fuzz_fail("out of memory");
    config_parse_size(s, &bytes);
    config_parse_duration(s, &ns);
    if (config_parse_hostport(s, host, 256, &port) == 0 &&
        (memchr(host, '\0', 256) == NULL || port < 0 || port > 65535))
        fuzz_fail("config_parse_hostport gave port %d", port);
    free(host);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static config_t a, b;
    static char err_a[CONFIG_ERR_LEN], err_b[CONFIG_ERR_LEN];
    char *text = fuzz_dup(data, size);
    memset(err_a, 0x5a, sizeof(err_a));
    memset(err_b, 0xa5, sizeof(err_b));
    int ra = config_load_buffer(NAME, text, size, &a, err_a, sizeof(err_a));
    int rb = config_load_buffer(NAME, text, size, &b, err_b, sizeof(err_b));
    free(text);

    if (ra > 0)
        fuzz_fail("config_load_buffer returned %d", ra);
    if (ra != 0 && (!TERMINATED(err_a) || err_a[0] == '\0'))
        fuzz_fail("config_load_buffer failed (%d) without a message", ra);
    if (ra != rb || (ra != 0 && strcmp(err_a, err_b) != 0) || memcmp(&a, &b, sizeof(a)) != 0)
        fuzz_fail("two loads of the same bytes differ (%d, %d)", ra, rb);
    if (ra == 0)
        check_config(&a);
    check_parsers(data, size);
    return 0;
}
