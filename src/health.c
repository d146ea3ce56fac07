/*
 * health.c - judges the feeds for /healthz and writes the page.
 *
 * The rule (health.h): not up is unhealthy; with a stale_after limit, a feed
 * quiet for longer than the limit is unhealthy; anything else, a finished
 * replay included, is healthy. Quiet means no message since quiet_since_ns,
 * which the feed keeps (feeds.c); a clock that went back reads as no time
 * at all, never as a negative silence.
 *
 * The text page is for a person or a probe that reads the status code; the
 * JSON page is for a tool, and says for every feed what it is, how long it
 * has been quiet and why it is at fault. A failed reload does not make the
 * daemon unhealthy (what could not change kept running), but both pages say
 * it. Names come from the configuration
 * (letters, digits, _ and -) and reasons from here, but every string is
 * escaped as JSON wants all the same.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "src/health.h"

#define NS_PER_SEC 1e9

/* now - since in seconds, 0 when the clock went back. */
static double seconds_since(int64_t since_ns, int64_t now_ns)
{
    return now_ns > since_ns ? (double)(now_ns - since_ns) / NS_PER_SEC : 0.0;
}

int health_judge(const health_feed_t *h, int64_t now_ns, char *reason, size_t len)
{
    reason[0] = '\0';
    if (!h->up) {
        snprintf(reason, len, "not up (%s)",
                 h->error != NULL                    ? h->error
                 : strcmp(h->type, "file") == 0      ? "its file cannot be read"
                 : strcmp(h->type, "nats") == 0      ? "not subscribed yet"
                 : strcmp(h->type, "nats-sink") == 0 ? "not connected to NATS"
                                                     : "not listening");
        return 0;
    }
    if (h->stale_after_ns == 0)
        return 1;
    int64_t quiet_ns = now_ns > h->quiet_since_ns ? now_ns - h->quiet_since_ns : 0;
    if ((uint64_t)quiet_ns <= h->stale_after_ns)
        return 1;
    const char *what = !h->connected && strcmp(h->type, "tcp") == 0 ? "no source connected"
                       : h->finished                                ? "finished, no message"
                       : h->hold_since_ns != 0
                           ? "holding back for the consumer's pending messages, no message"
                           : "no message";
    snprintf(reason, len, "%s for %.1fs (stale_after %gs)", what, (double)quiet_ns / NS_PER_SEC,
             (double)h->stale_after_ns / NS_PER_SEC);
    return 0;
}

/* ---- the page ---- */

/* s as a JSON string, quotes included. */
static int put_json_string(http_body_t *b, const char *s)
{
    int err = http_body_append(b, "\"", 1);
    while (err == 0 && *s != '\0') {
        size_t run = 0;
        while (s[run] != '\0' && s[run] != '"' && s[run] != '\\' && (unsigned char)s[run] >= 0x20)
            run++;
        err = http_body_append(b, s, run);
        s += run;
        if (err != 0 || *s == '\0')
            break;
        err = *s == '"' || *s == '\\' ? http_body_printf(b, "\\%c", *s)
                                      : http_body_printf(b, "\\u%04x", (unsigned char)*s);
        s++;
    }
    return err != 0 ? err : http_body_append(b, "\"", 1);
}

static const char *json_bool(int v)
{
    return v ? "true" : "false";
}

static int render_feed_json(http_body_t *b, const health_feed_t *h, int healthy, const char *reason,
                            int64_t now_ns)
{
    int err = http_body_append(b, "{\"name\":", 8);
    if (err == 0)
        err = put_json_string(b, h->name);
    if (err == 0)
        err = http_body_append(b, ",\"type\":", 8);
    if (err == 0)
        err = put_json_string(b, h->type);
    if (err == 0)
        err = http_body_printf(b, ",\"up\":%s,\"connected\":%s,\"finished\":%s", json_bool(h->up),
                               json_bool(h->connected), json_bool(h->finished));
    if (err == 0)
        err = h->last_message_ns != 0 ? http_body_printf(b, ",\"seconds_since_last_message\":%.3f",
                                                         seconds_since(h->last_message_ns, now_ns))
                                      : http_body_printf(b, ",\"seconds_since_last_message\":null");
    if (err == 0)
        err = h->stale_after_ns != 0 ? http_body_printf(b, ",\"stale_after_seconds\":%.9g",
                                                        (double)h->stale_after_ns / NS_PER_SEC)
                                     : http_body_printf(b, ",\"stale_after_seconds\":null");
    if (err == 0)
        err = h->hold_since_ns != 0 ? http_body_printf(b, ",\"holding_seconds\":%.3f",
                                                       seconds_since(h->hold_since_ns, now_ns))
                                    : http_body_printf(b, ",\"holding_seconds\":null");
    if (err == 0)
        err = http_body_printf(b, ",\"healthy\":%s,\"reason\":", json_bool(healthy));
    if (err == 0)
        err = healthy ? http_body_append(b, "null", 4) : put_json_string(b, reason);
    return err != 0 ? err : http_body_append(b, "}", 1);
}

static int render_reload_json(http_body_t *b, const health_reload_t *r, int64_t now_ns)
{
    if (r == NULL)
        return http_body_append(b, "null", 4);
    int err = http_body_printf(b, "{\"ok\":%s,\"error\":", json_bool(r->ok));
    if (err == 0)
        err = r->ok || r->error == NULL ? http_body_append(b, "null", 4)
                                        : put_json_string(b, r->error);
    if (err == 0)
        err = http_body_printf(b, ",\"seconds_ago\":%.3f}", seconds_since(r->at_ns, now_ns));
    return err;
}

int health_render(const health_feed_t *feeds, size_t n, const health_reload_t *reload, int stopping,
                  int64_t now_ns, int json, http_body_t *body)
{
    char reason[512];
    int healthy = !stopping;
    for (size_t i = 0; i < n; i++)
        healthy &= health_judge(&feeds[i], now_ns, reason, sizeof(reason));

    int err;
    if (json) {
        err = http_body_printf(body, "{\"status\":\"%s\",\"stopping\":%s,\"feeds\":[",
                               healthy ? "ok" : "unhealthy", json_bool(stopping));
        for (size_t i = 0; err == 0 && i < n; i++) {
            int ok = health_judge(&feeds[i], now_ns, reason, sizeof(reason));
            if (i > 0)
                err = http_body_append(body, ",", 1);
            if (err == 0)
                err = render_feed_json(body, &feeds[i], ok, reason, now_ns);
        }
        if (err == 0)
            err = http_body_append(body, "],\"last_reload\":", 16);
        if (err == 0)
            err = render_reload_json(body, reload, now_ns);
        if (err == 0)
            err = http_body_append(body, "}\n", 2);
    } else if (healthy) {
        err = http_body_append(body, "ok\n", 3);
    } else {
        err = http_body_append(body, "unhealthy\n", 10);
        if (err == 0 && stopping)
            err = http_body_append(body, "tickd is stopping\n", 18);
        for (size_t i = 0; err == 0 && i < n; i++)
            if (!health_judge(&feeds[i], now_ns, reason, sizeof(reason)))
                err = http_body_printf(body, "feed %s: %s\n", feeds[i].name, reason);
    }
    if (err == 0 && !json && reload != NULL && !reload->ok)
        err = http_body_printf(body, "last reload failed: %s\n",
                               reload->error != NULL ? reload->error : "?");
    return err != 0 ? err : healthy;
}
