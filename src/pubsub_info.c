/*
 * pubsub_info.c - what the server says about itself: INFO (the sections
 * server, clients, memory, persistence and stats, as Redis writes them,
 * with the daemon's figures from its info source) and PUBSUB CHANNELS,
 * NUMSUB, NUMPAT and HELP.
 *
 * Read-only apart from the replies: nothing here changes a topic, a
 * subscription or a stat. An INFO report is written into the server's one
 * info_text_t (INFO_TEXT_MAX bytes, cut short rather than overrun) and
 * queued as one reply.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "src/clock.h"
#include "src/glob.h"
#include "src/process.h"
#include "src/pubsub_internal.h"

/* ---- INFO ---- */

enum info_section {
    INFO_SERVER = 1 << 0,
    INFO_CLIENTS = 1 << 1,
    INFO_MEMORY = 1 << 2,
    INFO_PERSISTENCE = 1 << 3, /* only loading:0, what ready checks look for */
    INFO_STATS = 1 << 4,
    INFO_ALL = (1 << 5) - 1, /* "default", "all" and "everything" alike */
};

static const struct {
    const char *name;
    unsigned bits;
} info_sections[] = {
    {"server", INFO_SERVER}, {"clients", INFO_CLIENTS},
    {"memory", INFO_MEMORY}, {"persistence", INFO_PERSISTENCE},
    {"stats", INFO_STATS},   {"default", INFO_ALL},
    {"all", INFO_ALL},       {"everything", INFO_ALL},
};

static void info_add(info_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info_add(info_text_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->text + t->len, sizeof t->text - t->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->len += (size_t)n < sizeof t->text - t->len ? (size_t)n : sizeof t->text - t->len - 1;
}

/* "<key>:<n>\r\n<key>_human:<n as Redis writes it: 1.50K, 12.00M>\r\n" */
static void info_bytes(info_text_t *t, const char *key, uint64_t n)
{
    static const char units[] = "KMGTP";
    double v = (double)n;
    int u = -1;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    info_add(t, "%s:%llu\r\n", key, (unsigned long long)n);
    if (u < 0)
        info_add(t, "%s_human:%lluB\r\n", key, (unsigned long long)n);
    else
        info_add(t, "%s_human:%.2f%c\r\n", key, v, units[u]);
}

/* Channels with at least one subscriber (not the empty ones that only hold
 * a pattern cache). */
static uint64_t live_channels(const pubsub_t *ps)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i <= ps->channels.mask; i++)
        for (const topic_t *t = ps->channels.buckets[i]; t != NULL; t = t->next)
            n += t->nsubs > 0;
    return n;
}

static void info_report(pubsub_t *ps, unsigned sections, info_text_t *t)
{
    pubsub_info_t d = {"", ps->start_ns, 0, 0};
    const pubsub_stats_t *st = &ps->stats;
    int64_t up = (clock_realtime_ns() - d.start_time_ns) / 1000000000;

    if (ps->info_fn != NULL) {
        ps->info_fn(ps->info_arg, &d);
        up = (clock_realtime_ns() - d.start_time_ns) / 1000000000;
    }
    if (up < 0)
        up = 0;
    t->len = 0;
    if (sections & INFO_SERVER) {
        info_add(t, "# Server\r\nredis_version:%s\r\ntickd_version:%s\r\n", REDIS_COMPAT_VERSION,
                 d.version);
        info_add(t, "redis_mode:standalone\r\narch_bits:%d\r\nprocess_id:%ld\r\ntcp_port:%d\r\n",
                 (int)(sizeof(void *) * 8), (long)getpid(), pubsub_port(ps));
        info_add(t, "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n", (long long)up,
                 (long long)up / 86400);
    }
    if (sections & INFO_CLIENTS) {
        info_add(t, "%s# Clients\r\nconnected_clients:%llu\r\nmaxclients:%u\r\n",
                 t->len > 0 ? "\r\n" : "", (unsigned long long)st->clients, ps->opt.max_clients);
        info_add(t, "output_buffer_bytes:%llu\r\n", (unsigned long long)st->output_buffer_bytes);
        info_add(t, "conflated_clients:%llu\r\n", (unsigned long long)st->conflated_clients);
    }
    if (sections & INFO_MEMORY) {
        heap_stats_t hs;
        process_stats_t pr;
        heap_get_stats(ps->heap, &hs);
        info_add(t, "%s# Memory\r\n", t->len > 0 ? "\r\n" : "");
        info_bytes(t, "used_memory", hs.used_bytes + hs.large_bytes);
        if (process_get_stats(&pr) == 0)
            info_bytes(t, "used_memory_rss", pr.resident_bytes);
        info_bytes(t, "heap_mapped", hs.mapped_bytes);
        info_bytes(t, "heap_mapped_peak", hs.mapped_bytes_peak);
        info_add(t, "mem_allocator:tickd\r\n");
    }
    if (sections & INFO_PERSISTENCE)
        info_add(t, "%s# Persistence\r\nloading:0\r\nasync_loading:0\r\n",
                 t->len > 0 ? "\r\n" : "");
    if (sections & INFO_STATS) {
        info_add(t, "%s# Stats\r\ntotal_connections_received:%llu\r\n", t->len > 0 ? "\r\n" : "",
                 (unsigned long long)st->connections_total);
        info_add(t, "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n",
                 (unsigned long long)st->commands_total, (unsigned long long)st->rejected_total);
        info_add(t, "pubsub_channels:%llu\r\npubsub_patterns:%u\r\n",
                 (unsigned long long)live_channels(ps), ps->patterns.count);
        info_add(t, "total_trades_received:%llu\r\ntotal_quotes_received:%llu\r\n",
                 (unsigned long long)d.trades_total, (unsigned long long)d.quotes_total);
        info_add(t, "total_messages_sent:%llu\r\ntotal_publish_accepted:%llu\r\n",
                 (unsigned long long)st->messages_sent_total,
                 (unsigned long long)st->publish_total);
        info_add(t, "slow_consumer_disconnections:%llu\r\nprotocol_error_disconnections:%llu\r\n",
                 (unsigned long long)st->slow_consumer_disconnects_total,
                 (unsigned long long)st->protocol_errors_total);
        info_add(t, "encode_errors:%llu\r\ntotal_conflations:%llu\r\n",
                 (unsigned long long)st->encode_errors_total,
                 (unsigned long long)st->conflations_total);
    }
}

/* INFO [section ...]: the sections named (any case; none: all of them;
 * unknown ones are skipped, as Redis does), as a bulk string, or a verbatim
 * string "txt:" in RESP3. */
void pubsub__cmd_info(client_t *c, size_t argc, const resp_arg_t *argv)
{
    unsigned sections = argc == 1 ? INFO_ALL : 0;
    info_text_t *t = &c->ps->info;

    for (size_t i = 1; i < argc; i++)
        for (size_t k = 0; k < sizeof info_sections / sizeof info_sections[0]; k++)
            if (pubsub__arg_is(&argv[i], info_sections[k].name))
                sections |= info_sections[k].bits;
    info_report(c->ps, sections, t);
    if (pubsub__client_proto(c) == PAYLOAD_RESP3) {
        pubsub__reply_number(c, '=', (long long)t->len + 4);
        pubsub__reply_raw(c, "txt:", 4);
        pubsub__reply_raw(c, t->text, t->len);
        pubsub__reply_raw(c, "\r\n", 2);
    } else {
        pubsub__reply_bulk(c, t->text, t->len);
    }
}

/* ---- PUBSUB ---- */

/* PUBSUB CHANNELS [pattern]: the channels with subscribers, matching the
 * pattern if one is given. */
void pubsub__cmd_pubsub_channels(client_t *c, size_t argc, const resp_arg_t *argv)
{
    const topic_table_t *table = &c->ps->channels;
    long long n = 0;

    if (argc > 3) {
        pubsub__reply_error(c,
                            "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                            "PUBSUB HELP.",
                            pubsub__arg_width(&argv[1], 128), argv[1].ptr);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            pubsub__reply_number(c, '*', n);
        for (uint32_t i = 0; i <= table->mask; i++)
            for (const topic_t *t = table->buckets[i]; t != NULL; t = t->next) {
                if (t->nsubs == 0 ||
                    (argc == 3 && !glob_match(argv[2].ptr, argv[2].len, t->name, t->len)))
                    continue;
                if (pass == 0)
                    n++;
                else
                    pubsub__reply_bulk(c, t->name, t->len);
            }
    }
}

/* PUBSUB NUMSUB [channel ...]: each channel and its subscribers (patterns
 * not counted). */
void pubsub__cmd_pubsub_numsub(client_t *c, size_t argc, const resp_arg_t *argv)
{
    pubsub__reply_number(c, '*', (long long)(argc - 2) * 2);
    for (size_t i = 2; i < argc; i++) {
        const topic_t *t = pubsub__table_find(&c->ps->channels, argv[i].ptr, argv[i].len,
                                              pubsub__hash_name(argv[i].ptr, argv[i].len));
        pubsub__reply_bulk(c, argv[i].ptr, argv[i].len);
        pubsub__reply_number(c, ':', t != NULL ? t->nsubs : 0);
    }
}

/* PUBSUB NUMPAT: the patterns subscribed to, each counted once. */
void pubsub__cmd_pubsub_numpat(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    pubsub__reply_number(c, ':', c->ps->patterns.count);
}

void pubsub__cmd_pubsub_help(client_t *c, size_t argc, const resp_arg_t *argv)
{
    static const char *const lines[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "HELP",
        "    Prints this help.",
    };
    (void)argc;
    (void)argv;
    pubsub__reply_number(c, '*', sizeof lines / sizeof lines[0]);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        pubsub__reply_raw(c, "+", 1);
        pubsub__reply_raw(c, lines[i], strlen(lines[i]));
        pubsub__reply_raw(c, "\r\n", 2);
    }
}
