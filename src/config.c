/*
 * config.c - the YAML configuration file, read with libyaml's event API,
 * checked key by key, and turned into a config_t.
 *
 * The schema is a set of tables: each key has a reader that checks its value
 * (type, syntax, range) and stores it at an offset of config_t or
 * config_feed_t. Maps are walked one event at a time and the walk stops at
 * the first problem, so nothing is ever skipped over, nothing recurses deeper
 * than the schema (two levels), and no tree is built. Every message names the
 * place (file:line:column, 1-based), the dotted key path (`pubsub.listen`,
 * `feeds[2].path`), what was expected and what was found, and the fix where
 * one helps; it is written once, into the caller's buffer, and never printed
 * here.
 *
 * A feed's keys are gathered before any is checked, because which keys are
 * allowed depends on its `type`, which may come last. Cross-key rules of a
 * section (the soft output limit below the hard one) run when its map ends.
 *
 * The loader is a pure function of the file's bytes, but for one look at the
 * file system: session.timezone must name a zone file under
 * /usr/share/zoneinfo. It holds no state between calls, never reads past
 * the buffer it is given, and refuses YAML aliases (so no billion laughs) and
 * more than one document. What the values name on the file system (the
 * journal's directory, the files to replay) is looked up apart, by
 * config_check_files(), from the places the loader noted in cfg->at: the
 * same file may be checked on one machine and run on another.
 */
#include "src/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "feed/bars.h"
#include "feed/ingest.h"
#include "feed/journal.h"

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

#define USEC   ((uint64_t)1000)
#define MSEC   ((uint64_t)1000000)
#define SEC    ((uint64_t)1000000000)
#define MINUTE (60 * SEC)
#define HOUR   (60 * MINUTE)

#define CONFIG_MAX_FILE (1u << 20) /* a config file larger than this is refused */
#define ZONEINFO        "/usr/share/zoneinfo"
#define MAX_KEYS        16  /* keys of one map in the schema */
#define QUOTE_MAX       48  /* bytes of a value shown in a message */
#define QUOTE_LEN       256 /* room for a quoted, escaped value */
#define PATH_LEN        128 /* room for a dotted key path */

/* One parse in progress. */
struct loader {
    yaml_parser_t parser;
    const char *name; /* the file, as named in messages */
    const char *data; /* its bytes, to place reader errors and spot tabs */
    size_t len;
    config_t *cfg;
    char *err;
    size_t errlen;
    yaml_mark_t item_at; /* the start of the list item being read (pubsub.users) */
};

/* The keys seen so far in one map: for duplicates, and for the cross-key
 * rules of a section. */
struct seen {
    unsigned mask;            /* bit i: key i of the table was given */
    yaml_mark_t at[MAX_KEYS]; /* where key i was given */
};

struct field;
typedef int (*read_fn)(struct loader *ld, const struct field *f, const char *path,
                       const yaml_event_t *v, void *base);
typedef int (*check_fn)(struct loader *ld, const char *path, const struct seen *seen,
                        const void *base);
/* Whether s is a valid text for the string field f: 1, or 0 with *hint set
 * where there is more to say than f->what. */
typedef int (*valid_fn)(const struct field *f, const char *s, const char **hint);

/* A name a value may take, and what it stands for. */
struct choice {
    const char *name;
    int value;
};

/* One key of the schema. The tables end with an entry whose name is NULL. */
struct field {
    const char *name;             /* the key */
    read_fn read;                 /* checks the value and stores it */
    const char *what;             /* what the value must be: "expected <what>, got ..." */
    size_t offset;                /* where the value goes: base + offset ... */
    size_t size;                  /* ... and the size of that member */
    uint64_t min, max;            /* sizes, durations, integers: the range accepted;
                                   * a multicast group: its first byte */
    int pow2;                     /* sizes: powers of two only */
    const struct choice *choices; /* enumerations: the names, ending with a NULL name */
    valid_fn valid;               /* strings: the check the text must pass, if any */
    const struct field *sub;      /* maps: the keys inside */
    check_fn check;               /* maps: a rule across keys, run at the end of the map */
    unsigned kinds;               /* feed keys: bit (1 << FEED_*) for each type that takes it */
};

#define CFG(member) .offset = offsetof(config_t, member), .size = sizeof(((config_t *)0)->member)
#define FEED(member)                                                                               \
    .offset = offsetof(config_feed_t, member), .size = sizeof(((config_feed_t *)0)->member)

/* ---- messages ---- */

/* Writes s for a message: double-quoted, control bytes escaped, cut after
 * QUOTE_MAX bytes (at a character boundary). buf holds QUOTE_LEN bytes. */
static void quote(const char *s, char *buf)
{
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((i >= QUOTE_MAX && (c & 0xC0) != 0x80) || o + 8 > QUOTE_LEN) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            o += (size_t)snprintf(buf + o, QUOTE_LEN - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

__attribute__((format(printf, 4, 5))) static int fail(struct loader *ld, yaml_mark_t at,
                                                      const char *path, const char *fmt, ...)
{
    char msg[CONFIG_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ld->errlen > 0)
        snprintf(ld->err, ld->errlen, "%s:%zu:%zu: %s%s%s", ld->name, at.line + 1, at.column + 1,
                 path, path[0] != '\0' ? ": " : "", msg);
    return -EINVAL;
}

/* A libyaml mark (0-based) as a place in the file (1-based). */
static config_place_t place(yaml_mark_t at)
{
    return (config_place_t){(uint32_t)at.line + 1, (uint32_t)at.column + 1};
}

/* A plain empty scalar, ~ or null: a key given no value. */
static int is_null(const yaml_event_t *v)
{
    if (v->type != YAML_SCALAR_EVENT || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)v->data.scalar.value;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* The text of a scalar that has a value; NULL for maps, lists and nulls. */
static const char *text_of(const yaml_event_t *v)
{
    if (v->type != YAML_SCALAR_EVENT || is_null(v))
        return NULL;
    return (const char *)v->data.scalar.value;
}

/* "path: expected <what>, got <v> (<hint>)" at v. */
static int expected(struct loader *ld, const yaml_event_t *v, const char *path, const char *what,
                    const char *hint)
{
    char got[QUOTE_LEN];
    if (v->type == YAML_MAPPING_START_EVENT)
        strcpy(got, "a map");
    else if (v->type == YAML_SEQUENCE_START_EVENT)
        strcpy(got, "a list");
    else if (is_null(v))
        strcpy(got, "nothing");
    else
        quote((const char *)v->data.scalar.value, got);
    return fail(ld, v->start_mark, path, "expected %s, got %s%s%s%s", what, got,
                hint != NULL ? " (" : "", hint != NULL ? hint : "", hint != NULL ? ")" : "");
}

static void join(char *buf, const char *path, const char *key)
{
    snprintf(buf, PATH_LEN, "%s%s%s", path, path[0] != '\0' ? "." : "", key);
}

/* 1024 -> "1024". */
static void format_uint(uint64_t n, char *buf, size_t len)
{
    snprintf(buf, len, "%llu", (unsigned long long)n);
}

/* 1024 -> "1KiB", 1000 -> "1000": the largest binary unit that is exact. */
static void format_size(uint64_t n, char *buf, size_t len)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        uint64_t u = (uint64_t)1 << (10 * (4 - i));
        if (n != 0 && n % u == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(n / u), units[i]);
            return;
        }
    }
    format_uint(n, buf, len);
}

/* 3600e9 -> "1h", 1500e6 -> "1500ms": the largest unit that is exact. */
static void format_duration(uint64_t ns, char *buf, size_t len)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {{"h", HOUR}, {"m", MINUTE}, {"s", SEC}, {"ms", MSEC}, {"us", USEC}, {"ns", 1}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ns != 0 && ns % units[i].ns == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(ns / units[i].ns), units[i].name);
            return;
        }
    }
    snprintf(buf, len, "0");
}

/* "path: expected <noun> from <f->min> to <f->max>, got <v> (<hint>)" at v,
 * the bounds written by format. */
static int expected_range(struct loader *ld, const yaml_event_t *v, const char *path,
                          const struct field *f, const char *noun,
                          void (*format)(uint64_t, char *, size_t), const char *hint)
{
    char lo[32], hi[32], range[96];
    format(f->min, lo, sizeof(lo));
    format(f->max, hi, sizeof(hi));
    snprintf(range, sizeof(range), "%s from %s to %s", noun, lo, hi);
    return expected(ld, v, path, range, hint);
}

/* ---- "did you mean" ---- */

/* Edit distance with transpositions (optimal string alignment), ignoring
 * case; strings are at most 32 bytes (longer ones get no suggestion). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The candidate closest to s, if it is close enough to be a typo: one edit
 * for short names, two from six letters on. NULL otherwise. */
static const char *closest(const char *s, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    if (strlen(s) > 32)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]), d = distance(s, names[i]);
        if (d <= (len >= 6 ? 2u : 1u) && d < best_d) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

/* "did you mean "x"?" in buf, or NULL when nothing is close. */
static const char *suggest(const char *s, const char *const *names, size_t n, char *buf, size_t len)
{
    const char *near = closest(s, names, n);
    if (near == NULL)
        return NULL;
    snprintf(buf, len, "did you mean \"%s\"?", near);
    return buf;
}

/* ---- events ---- */

/* Places a YAML syntax error: libyaml's problem at its line and column, the
 * context it was in, and the fix for the two usual causes: a tab, a quote
 * left open. */
static int syntax_error(struct loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    if (p->error == YAML_MEMORY_ERROR) {
        if (ld->errlen > 0)
            snprintf(ld->err, ld->errlen, "%s: out of memory while parsing", ld->name);
        return -ENOMEM;
    }
    const char *problem = p->problem != NULL ? p->problem : "invalid YAML";
    yaml_mark_t at = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        /* Only a byte offset: count lines up to it. */
        at.line = 0;
        at.column = 0;
        for (size_t i = 0; i < p->problem_offset && i < ld->len; i++) {
            at.column++;
            if (ld->data[i] == '\n') {
                at.line++;
                at.column = 0;
            }
        }
        return fail(ld, at, "", "%s (save the file as UTF-8 text)", problem);
    }
    /* The byte at the problem: skip to its line, then over column characters. */
    size_t i = 0, line = 0, col = 0;
    while (i < ld->len && line < at.line)
        if (ld->data[i++] == '\n')
            line++;
    while (i < ld->len && col < at.column && ld->data[i] != '\n') {
        i++;
        while (i < ld->len && ((unsigned char)ld->data[i] & 0xC0) == 0x80)
            i++;
        col++;
    }
    const char *fix = "";
    if ((i < ld->len && ld->data[i] == '\t') || strstr(problem, "tab") != NULL)
        fix = "; indent with spaces, not tabs";
    else if (p->context != NULL && strstr(p->context, "quoted scalar") != NULL)
        fix = "; close the quote";
    if (p->context == NULL)
        return fail(ld, at, "", "%s%s", problem, fix);
    if (p->context_mark.line == at.line && p->context_mark.column == at.column)
        return fail(ld, at, "", "%s (%s)%s", problem, p->context, fix);
    return fail(ld, at, "", "%s (%s that starts at %zu:%zu)%s", problem, p->context,
                p->context_mark.line + 1, p->context_mark.column + 1, fix);
}

/* The next event. Aliases and scalars holding a NUL are refused here, once
 * for every caller. On success the caller deletes the event. */
static int next_event(struct loader *ld, const char *path, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev))
        return syntax_error(ld);
    int r = 0;
    if (ev->type == YAML_ALIAS_EVENT)
        r = fail(ld, ev->start_mark, path,
                 "aliases (*%.40s) are not supported; write the value out",
                 (const char *)ev->data.alias.anchor);
    else if (ev->type == YAML_SCALAR_EVENT &&
             strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length)
        r = fail(ld, ev->start_mark, path, "a NUL character is not allowed in a value");
    if (r != 0)
        yaml_event_delete(ev);
    return r;
}

/* The next event inside a map or list. Returns 1 with it in ev (the caller
 * deletes it), 0 at the end event that closes the map or list, or the
 * error. */
static int next_within(struct loader *ld, const char *path, yaml_event_type_t end, yaml_event_t *ev)
{
    int r = next_event(ld, path, ev);
    if (r != 0)
        return r;
    if (ev->type == end) {
        yaml_event_delete(ev);
        return 0;
    }
    return 1;
}

/* Reads the next key of a map. Returns 1 with the key's index in fields (its
 * place recorded in seen), 0 at the end of the map, or -EINVAL for an
 * unknown or duplicate key. */
static int next_key(struct loader *ld, const char *path, const struct field *fields,
                    struct seen *seen, size_t *index)
{
    yaml_event_t key;
    int r = next_within(ld, path, YAML_MAPPING_END_EVENT, &key);
    if (r != 1)
        return r;
    const char *names[MAX_KEYS];
    size_t n = 0;
    while (fields[n].name != NULL) {
        names[n] = fields[n].name;
        n++;
    }
    const char *k = text_of(&key);
    char q[QUOTE_LEN], hint[64];
    r = -EINVAL;
    if (k == NULL) {
        r = expected(ld, &key, path, "a key name", NULL);
    } else {
        size_t i = 0;
        while (i < n && strcmp(k, names[i]) != 0)
            i++;
        quote(k, q);
        if (i < n && (seen->mask & (1u << i)) != 0) {
            r = fail(ld, key.start_mark, path,
                     "duplicate key %s (already set at line %zu); keep one", q,
                     seen->at[i].line + 1);
        } else if (i < n) {
            seen->mask |= 1u << i;
            seen->at[i] = key.start_mark;
            *index = i;
            r = 1;
        } else if (suggest(k, names, n, hint, sizeof(hint)) != NULL) {
            r = fail(ld, key.start_mark, path, "unknown key %s (%s)", q, hint);
        } else {
            char known[256];
            size_t o = 0;
            known[0] = '\0';
            for (size_t j = 0; j < n && o < sizeof(known); j++)
                o +=
                    (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", j ? ", " : "", names[j]);
            r = fail(ld, key.start_mark, path, "unknown key %s (known keys: %s)", q, known);
        }
    }
    yaml_event_delete(&key);
    return r;
}

/* Reads the next item of a list, item n. Returns 1 with the item (the caller
 * deletes it) and its path, path[n], in itempath; 0 at the end of the list;
 * or the error. */
static int next_item(struct loader *ld, const char *path, size_t n, char *itempath,
                     yaml_event_t *item)
{
    int r = next_within(ld, path, YAML_SEQUENCE_END_EVENT, item);
    if (r == 1)
        snprintf(itempath, PATH_LEN, "%s[%zu]", path, n);
    return r;
}

/* The keys of a map, up to its end, each read by its field's reader; then
 * the map's cross-key rule. */
static int read_keys(struct loader *ld, const char *path, const struct field *fields,
                     check_fn check, void *base)
{
    struct seen seen = {0};
    size_t i;
    int r;
    while ((r = next_key(ld, path, fields, &seen, &i)) == 1) {
        char keypath[PATH_LEN];
        yaml_event_t v;
        join(keypath, path, fields[i].name);
        if ((r = next_event(ld, keypath, &v)) != 0)
            return r;
        r = fields[i].read(ld, &fields[i], keypath, &v, base);
        yaml_event_delete(&v);
        if (r != 0)
            return r;
    }
    if (r == 0 && check != NULL)
        r = check(ld, path, &seen, base);
    return r;
}

/* ---- values: pure parsers ---- */

/* Decimal digits into *out; the end in *end. -ERANGE past UINT64_MAX,
 * -EINVAL when there is no digit. */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
    uint64_t n = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -ERANGE;
        n = n * 10 + d;
    }
    *out = n;
    *end = p;
    return p == s ? -EINVAL : 0;
}

/* The whole number that starts s, before its unit; the end in *end. On
 * -EINVAL, *why says when it is too large, or is fraction when the number
 * has a fractional part. */
static int parse_whole(const char *s, uint64_t *out, const char **end, const char *fraction,
                       const char **why)
{
    int r = parse_digits(s, out, end);
    if (r == -ERANGE)
        *why = "too large";
    if (r != 0)
        return -EINVAL;
    if (**end == '.') {
        *why = fraction;
        return -EINVAL;
    }
    return 0;
}

/* Sizes: a whole number of bytes with an optional unit. On -EINVAL, *why
 * says what is wrong when there is more to say than the expected form. */
static int parse_size_text(const char *s, size_t *out, const char **why)
{
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", KiB},
        {"MiB", MiB},
        {"GiB", GiB},
        {"TiB", GiB * KiB},
        {"KB", 1000},
        {"MB", 1000 * 1000},
        {"GB", 1000000000},
        {"TB", 1000000000000ULL},
    };
    const char *end;
    uint64_t n;
    *why = NULL;
    if (s[0] == '-') {
        *why = "sizes cannot be negative";
        return -EINVAL;
    }
    if (parse_whole(s, &n, &end, "whole numbers only, e.g. 1536KiB rather than 1.5MiB", why) != 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].unit) != 0)
            continue;
        if (n > UINT64_MAX / units[i].mul || n * units[i].mul > SIZE_MAX) {
            *why = "too large";
            return -EINVAL;
        }
        *out = (size_t)(n * units[i].mul);
        return 0;
    }
    *why = "units: B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB for powers of 1000";
    return -EINVAL;
}

/* Durations: whole numbers with units, one or more ("1h30m"); "0" alone. */
static int parse_duration_text(const char *s, uint64_t *out, const char **why)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"ns", 1},  {"us", USEC},  {"\xc2\xb5s", USEC}, {"ms", MSEC},
                 {"s", SEC}, {"m", MINUTE}, {"h", HOUR}};
    uint64_t total = 0;
    const char *p = s;
    *why = NULL;
    if (s[0] == '-') {
        *why = "durations cannot be negative";
        return -EINVAL;
    }
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    do {
        uint64_t n;
        const char *unit;
        if (parse_whole(p, &n, &unit, "whole numbers only, e.g. 1500ms rather than 1.5s", why) != 0)
            return -EINVAL;
        p = unit;
        while (*p != '\0' && (*p < '0' || *p > '9'))
            p++;
        size_t len = (size_t)(p - unit), i = 0;
        while (i < sizeof(units) / sizeof(units[0]) &&
               (strlen(units[i].unit) != len || memcmp(unit, units[i].unit, len) != 0))
            i++;
        if (i == sizeof(units) / sizeof(units[0])) {
            *why = len == 0 ? "add a unit: ns, us, ms, s, m or h" : "units: ns, us, ms, s, m, h";
            return -EINVAL;
        }
        if (n > UINT64_MAX / units[i].ns || total > UINT64_MAX - n * units[i].ns) {
            *why = "too large";
            return -EINVAL;
        }
        total += n * units[i].ns;
    } while (*p != '\0');
    *out = total;
    return 0;
}

/* host:port, [v6]:port; the host an IP address or localhost. */
static int parse_hostport_text(const char *s, char *host, size_t hostlen, int *port,
                               const char **why)
{
    const char *h, *colon;
    size_t hl;
    int v6 = s[0] == '[';
    if (v6) {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            *why = "write an IPv6 address in brackets, e.g. [::1]:6380";
            return -EINVAL;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "e.g. 127.0.0.1:6380";
            return -EINVAL;
        }
        if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
            *why = "write an IPv6 address in brackets, e.g. [::1]:6380";
            return -EINVAL;
        }
        h = s;
        hl = (size_t)(colon - s);
    }
    if (hl == 0) {
        *why = "no host: 0.0.0.0:PORT listens on every interface, 127.0.0.1:PORT on this host only";
        return -EINVAL;
    }
    uint64_t p;
    const char *end;
    if (parse_digits(colon + 1, &p, &end) != 0 || *end != '\0' || p > 65535) {
        *why = "the port must be a number from 0 to 65535";
        return -EINVAL;
    }
    unsigned char addr[16];
    char buf[64];
    *why = "the host must be an IPv4 address, an IPv6 address in brackets, or localhost";
    if (hl >= sizeof(buf) || hl >= hostlen)
        return -EINVAL;
    memcpy(buf, h, hl);
    buf[hl] = '\0';
    if (v6 ? inet_pton(AF_INET6, buf, addr) != 1
           : strcmp(buf, "localhost") != 0 && inet_pton(AF_INET, buf, addr) != 1)
        return -EINVAL;
    *why = NULL;
    memcpy(host, buf, hl + 1);
    *port = (int)p;
    return 0;
}

/* "max" or a decimal number above 0 and at most a million. */
static int parse_speed_text(const char *s, double *out)
{
    if (strcmp(s, "max") == 0) {
        *out = 0;
        return 0;
    }
    double v = 0, scale = 1;
    int digits = 0, point = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '.' && !point) {
            point = 1;
        } else if (*p >= '0' && *p <= '9') {
            digits++;
            if (point)
                scale /= 10;
            v = v * 10 + (*p - '0');
        } else {
            return -EINVAL;
        }
    }
    v *= scale;
    if (digits == 0 || !(v > 0 && v <= 1e6))
        return -EINVAL;
    *out = v;
    return 0;
}

/* A zone name: letters, digits, _ + - in components joined by single
 * slashes (so never "..", never absolute), naming a TZif file. */
static int zone_exists(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= 64 || name[0] == '/' || name[len - 1] == '/' || strstr(name, "//"))
        return 0;
    for (const char *p = name; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && strchr("_+-/", *p) == NULL)
            return 0;
    char path[sizeof(ZONEINFO) + 64];
    snprintf(path, sizeof(path), ZONEINFO "/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    char magic[4];
    ssize_t n = read(fd, magic, sizeof(magic));
    close(fd);
    return n == 4 && memcmp(magic, "TZif", 4) == 0;
}

/* ---- values: readers, one per kind of value ---- */

static void *member(void *base, const struct field *f)
{
    return (char *)base + f->offset;
}

/* The value's text, or the "expected ..." error for a map, list or null. */
static int scalar(struct loader *ld, const struct field *f, const char *path, const yaml_event_t *v,
                  const char **s)
{
    *s = text_of(v);
    return *s != NULL ? 0 : expected(ld, v, path, f->what, NULL);
}

static int read_size(struct loader *ld, const struct field *f, const char *path,
                     const yaml_event_t *v, void *base)
{
    const char *s, *why;
    size_t n;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    if (parse_size_text(s, &n, &why) != 0)
        return expected(ld, v, path, f->what, why);
    const char *noun = f->pow2 ? "a power of two" : "a size";
    if (n < f->min || n > f->max)
        return expected_range(ld, v, path, f, noun, format_size, NULL);
    if (f->pow2 && (n & (n - 1)) != 0) {
        char lo[32], hi[32], hint[96];
        size_t below = (size_t)1 << (63 - __builtin_clzll(n));
        format_size(below, lo, sizeof(lo));
        format_size(below * 2, hi, sizeof(hi));
        snprintf(hint, sizeof(hint), "nearest: %s or %s", lo, hi);
        return expected_range(ld, v, path, f, noun, format_size, hint);
    }
    *(size_t *)member(base, f) = n;
    return 0;
}

static int read_duration(struct loader *ld, const struct field *f, const char *path,
                         const yaml_event_t *v, void *base)
{
    const char *s, *why;
    uint64_t ns;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    if (parse_duration_text(s, &ns, &why) != 0)
        return expected(ld, v, path, f->what, why);
    if (ns < f->min || ns > f->max)
        return expected_range(ld, v, path, f, "a duration", format_duration, NULL);
    *(uint64_t *)member(base, f) = ns;
    return 0;
}

/* An integer in [f->min, f->max]: the shared half of read_uint and
 * read_thresholds. */
static int uint_value(struct loader *ld, const struct field *f, const char *path,
                      const yaml_event_t *v, uint32_t *out)
{
    const char *s = text_of(v), *end;
    uint64_t n;
    if (s == NULL || parse_digits(s, &n, &end) != 0 || *end != '\0' || n < f->min || n > f->max)
        return expected_range(ld, v, path, f, "an integer", format_uint, NULL);
    *out = (uint32_t)n;
    return 0;
}

static int read_uint(struct loader *ld, const struct field *f, const char *path,
                     const yaml_event_t *v, void *base)
{
    return uint_value(ld, f, path, v, member(base, f));
}

/* true/false, yes/no, on/off in any case (YAML 1.1). */
static int read_bool(struct loader *ld, const struct field *f, const char *path,
                     const yaml_event_t *v, void *base)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    const char *s;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *(int *)member(base, f) = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return expected(ld, v, path, f->what, NULL);
}

static int read_enum(struct loader *ld, const struct field *f, const char *path,
                     const yaml_event_t *v, void *base)
{
    const char *s, *names[8];
    size_t n = 0;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    for (; f->choices[n].name != NULL; n++) {
        if (strcmp(s, f->choices[n].name) == 0) {
            *(int *)member(base, f) = f->choices[n].value;
            return 0;
        }
        names[n] = f->choices[n].name;
    }
    char hint[64];
    return expected(ld, v, path, f->what, suggest(s, names, n, hint, sizeof(hint)));
}

/* Text, copied into the f->size bytes of the member; when f->valid is set,
 * text it accepts. */
static int read_string(struct loader *ld, const struct field *f, const char *path,
                       const yaml_event_t *v, void *base)
{
    const char *s, *hint = NULL;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    if (f->valid != NULL && !f->valid(f, s, &hint))
        return expected(ld, v, path, f->what, hint);
    size_t len = strlen(s);
    if (len >= f->size)
        return fail(ld, v->start_mark, path, "too long (at most %zu bytes)", f->size - 1);
    memcpy(member(base, f), s, len + 1);
    return 0;
}

/* host:port for a listening socket. */
static int valid_listen(const struct field *f, const char *s, const char **hint)
{
    char host[64];
    int port;
    (void)f;
    return parse_hostport_text(s, host, sizeof(host), &port, hint) == 0;
}

/* session.timezone: UTC or a zone under ZONEINFO. */
static int valid_timezone(const struct field *f, const char *s, const char **hint)
{
    (void)f;
    if (strcmp(s, "UTC") == 0 || zone_exists(s))
        return 1;
    *hint = "no such zone under " ZONEINFO;
    return 0;
}

/* A path; a relative one is taken from the directory of the config file. */
static int read_path(struct loader *ld, const struct field *f, const char *path,
                     const yaml_event_t *v, void *base)
{
    const char *s;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    if (s[0] == '\0')
        return expected(ld, v, path, f->what, NULL);
    const char *slash = strrchr(ld->name, '/');
    int n = s[0] == '/' || slash == NULL ? snprintf(member(base, f), f->size, "%s", s)
                                         : snprintf(member(base, f), f->size, "%.*s/%s",
                                                    (int)(slash - ld->name), ld->name, s);
    if (n < 0 || (size_t)n >= f->size)
        return fail(ld, v->start_mark, path,
                    "too long (at most %zu bytes, once joined to the config file's directory)",
                    f->size - 1);
    return 0;
}

/* session.roll_at: "HH:MM" (or "H:MM") on the 24-hour clock, as minutes. */
static int read_time_of_day(struct loader *ld, const struct field *f, const char *path,
                            const yaml_event_t *v, void *base)
{
    const char *s, *colon, *end;
    uint64_t h, m;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    colon = strchr(s, ':');
    if (colon == NULL || colon - s > 2 || strlen(colon + 1) != 2 ||
        parse_digits(s, &h, &end) != 0 || end != colon || h > 23 ||
        parse_digits(colon + 1, &m, &end) != 0 || *end != '\0' || m > 59)
        return expected(ld, v, path, f->what, NULL);
    *(int *)member(base, f) = (int)(h * 60 + m);
    return 0;
}

/* gc.thresholds: a list of exactly three integers, generations 0, 1, 2. */
static int read_thresholds(struct loader *ld, const struct field *f, const char *path,
                           const yaml_event_t *v, void *base)
{
    uint32_t *t = member(base, f);
    size_t n = 0;
    char itempath[PATH_LEN];
    yaml_event_t item;
    int r;
    if (v->type != YAML_SEQUENCE_START_EVENT)
        return expected(ld, v, path, f->what, NULL);
    while ((r = next_item(ld, path, n, itempath, &item)) == 1) {
        if (n == 3)
            r = fail(ld, item.start_mark, path,
                     "expected 3 thresholds (generations 0, 1 and 2), got more");
        else
            r = uint_value(ld, f, itempath, &item, &t[n++]);
        yaml_event_delete(&item);
        if (r != 0)
            return r;
    }
    if (r != 0)
        return r;
    if (n != 3)
        return fail(ld, v->start_mark, path,
                    "expected 3 thresholds (generations 0, 1 and 2), got %zu", n);
    return 0;
}

/* bars.intervals: a list of intervals (feed/bars.h: 1s to 24h in s, m or
 * h), each named once; [] for no bars. */
static int read_bar_intervals(struct loader *ld, const struct field *f, const char *path,
                              const yaml_event_t *v, void *base)
{
    config_t *cfg = base;
    char itempath[PATH_LEN];
    yaml_event_t item;
    int r;
    if (v->type != YAML_SEQUENCE_START_EVENT)
        return expected(ld, v, path, f->what, NULL);
    cfg->bars.nintervals = 0;
    while ((r = next_item(ld, path, cfg->bars.nintervals, itempath, &item)) == 1) {
        const char *s = text_of(&item);
        int64_t ns;
        if (cfg->bars.nintervals == BARS_MAX_INTERVALS)
            r = fail(ld, item.start_mark, path, "too many intervals (at most %d)",
                     BARS_MAX_INTERVALS);
        else if (s == NULL || bars_interval_parse(s, strlen(s), &ns) != 0)
            r = expected(ld, &item, itempath, "an interval such as 1s, 5m or 1h",
                         "a whole number of s, m or h, from 1s to 24h");
        else
            r = 0;
        for (size_t i = 0; r == 0 && i < cfg->bars.nintervals; i++) {
            char name[BARS_INTERVAL_NAME_MAX];
            bars_interval_name(ns, name);
            if (cfg->bars.intervals_ns[i] == ns)
                r = fail(ld, item.start_mark, itempath,
                         "%s is bars.intervals[%zu] already (as %s); give each interval once", s, i,
                         name);
        }
        if (r == 0)
            cfg->bars.intervals_ns[cfg->bars.nintervals++] = ns;
        yaml_event_delete(&item);
        if (r != 0)
            return r;
    }
    return r;
}

_Static_assert(sizeof(((config_t *)0)->bars.intervals_ns) == BARS_MAX_INTERVALS * sizeof(int64_t),
               "config_t holds as many bar intervals as a builder takes");

/* A section: a map of the keys in f->sub; null is an empty section. */
static int read_map(struct loader *ld, const struct field *f, const char *path,
                    const yaml_event_t *v, void *base)
{
    if (is_null(v))
        return 0;
    if (v->type != YAML_MAPPING_START_EVENT)
        return expected(ld, v, path, f->what, NULL);
    return read_keys(ld, path, f->sub, f->check, base);
}

/* ---- feeds ---- */

/* feeds[].name: letters, digits, _ and -, short enough for the member. */
static int valid_feed_name(const struct field *f, const char *s, const char **hint)
{
    size_t len = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
    (void)hint;
    return len != 0 && s[len] == '\0' && len < f->size;
}

static int read_speed(struct loader *ld, const struct field *f, const char *path,
                      const yaml_event_t *v, void *base)
{
    const char *s;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    if (parse_speed_text(s, member(base, f)) != 0)
        return expected(ld, v, path, f->what, NULL);
    return 0;
}

/* feeds[].group (a multicast group: f->min to f->max is the range of its
 * first byte) and feeds[].interface (any address). */
static int valid_ipv4(const struct field *f, const char *s, const char **hint)
{
    unsigned char a[4];
    (void)hint;
    return inet_pton(AF_INET, s, a) == 1 && (f->min == 0 || (a[0] >= f->min && a[0] <= f->max));
}

static const struct choice feed_kinds[] = {
    {"file", FEED_FILE}, {"tcp", FEED_TCP}, {"udp", FEED_UDP}, {"nats", FEED_NATS}, {NULL, 0}};
static const struct choice delivers[] = {{"all", NATS_DELIVER_ALL},
                                         {"new", NATS_DELIVER_NEW},
                                         {"by_start_time", NATS_DELIVER_BY_START_TIME},
                                         {NULL, 0}};

/* A NATS subject (feeds[].subject): dot-separated tokens of printable
 * characters, none empty; a token may be * (any one token), the last may be
 * > (all the rest). */
static int valid_subject(const struct field *f, const char *s, const char **hint)
{
    (void)f;
    size_t tok = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (tok == 0) {
                *hint = "no empty token: e.g. tickd.> or tickd.trade.*";
                return 0;
            }
            if (p[-1] == '>' && (tok != 1 || *p != '\0')) {
                *hint = "> stands alone as the last token";
                return 0;
            }
            if (p[-1] == '*' && tok != 1) {
                *hint = "* stands alone as a token";
                return 0;
            }
            if (*p == '\0')
                return 1;
            tok = 0;
        } else if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7F) {
            *hint = "no spaces or control characters";
            return 0;
        } else {
            tok++;
        }
    }
}

/* A stream, consumer or connection name: letters, digits, _ and -. */
static int valid_nats_name(const struct field *f, const char *s, const char **hint)
{
    size_t len = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
    (void)hint;
    return len != 0 && s[len] == '\0' && len < f->size;
}

/* feeds[].start_time: "2026-12-03T13:30:00Z", UTC, to the second. */
static int read_start_time(struct loader *ld, const struct field *f, const char *path,
                           const yaml_event_t *v, void *base)
{
    const char *s;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0' || tm.tm_year < 70)
        return expected(ld, v, path, f->what, NULL);
    *(int64_t *)member(base, f) = (int64_t)timegm(&tm) * (int64_t)SEC;
    return 0;
}
static const struct choice feed_formats[] = {{"itch", INGEST_ITCH},
                                             {"csv", INGEST_CSV},
                                             {"tlog", INGEST_TLOG},
                                             {"mold", INGEST_MOLD},
                                             {NULL, 0}};

/* Indexes in feed_fields. */
enum {
    FK_NAME,
    FK_TYPE,
    FK_FORMAT,
    FK_PATH,
    FK_SPEED,
    FK_LOOP,
    FK_LISTEN,
    FK_GROUP,
    FK_INTERFACE,
    FK_STALE_AFTER,
    FK_SUBJECT,
    FK_STREAM,
    FK_DURABLE,
    FK_DELIVER,
    FK_START_TIME,
    FK_HOLD_TIMEOUT
};

/* What each feed type takes: its formats, and the keys it requires. */
static const struct {
    const char *formats;    /* for messages */
    unsigned mask;          /* bit (1 << INGEST_*) */
    size_t needs;           /* the key it cannot do without (FK_*) ... */
    const char *needs_what; /* ... and what that key is */
} feed_rules[] = {
    [FEED_FILE] = {"itch, csv or tlog", 1u << INGEST_ITCH | 1u << INGEST_CSV | 1u << INGEST_TLOG,
                   FK_PATH, "the file to replay"},
    [FEED_TCP] = {"itch or csv", 1u << INGEST_ITCH | 1u << INGEST_CSV, FK_LISTEN,
                  "host:port to accept connections on, e.g. 0.0.0.0:7000"},
    [FEED_UDP] = {"mold", 1u << INGEST_MOLD, FK_LISTEN,
                  "host:port to receive datagrams on, e.g. 0.0.0.0:7001"},
    [FEED_NATS] = {"none", 0, FK_SUBJECT, "the subject of tickd's ticks, e.g. tickd.>"},
};

#define ALL_KINDS (1u << FEED_FILE | 1u << FEED_TCP | 1u << FEED_UDP | 1u << FEED_NATS)
#define NATS_KIND (1u << FEED_NATS)

static const struct field feed_fields[] = {
    [FK_NAME] = {"name", read_string, "a name of 1 to 63 letters, digits, _ or -", FEED(name),
                 .valid = valid_feed_name, .kinds = ALL_KINDS},
    [FK_TYPE] = {"type", read_enum, "file, tcp, udp or nats", FEED(kind), .choices = feed_kinds,
                 .kinds = ALL_KINDS},
    [FK_FORMAT] = {"format", read_enum, "itch, csv, tlog or mold", FEED(format),
                   .choices = feed_formats, .kinds = ALL_KINDS & ~NATS_KIND},
    [FK_PATH] = {"path", read_path, "a path", FEED(path), .kinds = 1u << FEED_FILE},
    [FK_SPEED] = {"speed", read_speed,
                  "max or a number of times the recorded speed, above 0 and at most 1000000",
                  FEED(speed), .kinds = 1u << FEED_FILE},
    [FK_LOOP] = {"loop", read_bool, "true or false", FEED(loop), .kinds = 1u << FEED_FILE},
    [FK_LISTEN] = {"listen", read_string, "host:port", FEED(listen), .valid = valid_listen,
                   .kinds = 1u << FEED_TCP | 1u << FEED_UDP},
    [FK_GROUP] = {"group", read_string, "an IPv4 multicast address (224.0.0.0 to 239.255.255.255)",
                  FEED(group), .min = 224, .max = 239, .valid = valid_ipv4,
                  .kinds = 1u << FEED_UDP},
    [FK_INTERFACE] = {"interface", read_string, "the IPv4 address of a local interface",
                      FEED(interface), .valid = valid_ipv4, .kinds = 1u << FEED_UDP},
    [FK_STALE_AFTER] = {"stale_after", read_duration,
                        "a duration such as 500ms, 5s or 1m, or 0 for no limit",
                        FEED(stale_after_ns), 0, 24 * HOUR, .kinds = ALL_KINDS},
    [FK_SUBJECT] = {"subject", read_string, "a NATS subject such as tickd.> or tickd.trade.*",
                    FEED(subject), .valid = valid_subject, .kinds = NATS_KIND},
    [FK_STREAM] = {"stream", read_string, "a stream name of letters, digits, _ or -", FEED(stream),
                   .valid = valid_nats_name, .kinds = NATS_KIND},
    [FK_DURABLE] = {"durable", read_string, "a consumer name of letters, digits, _ or -",
                    FEED(durable), .valid = valid_nats_name, .kinds = NATS_KIND},
    [FK_DELIVER] = {"deliver", read_enum, "all, new or by_start_time", FEED(deliver),
                    .choices = delivers, .kinds = NATS_KIND},
    [FK_START_TIME] = {"start_time", read_start_time, "a UTC time such as 2026-12-03T13:30:00Z",
                       FEED(start_time_ns), .kinds = NATS_KIND},
    [FK_HOLD_TIMEOUT] = {"hold_timeout", read_duration, "a duration from 100ms to 1h, such as 15s",
                         FEED(hold_timeout_ns), 100 * MSEC, HOUR, .kinds = NATS_KIND},
    {0},
};

/* One feed's keys, gathered before any is checked: its type decides which
 * keys it may have. */
struct feed_keys {
    struct seen seen;
    yaml_event_t value[MAX_KEYS]; /* the scalar given to key i, when seen */
    size_t order[MAX_KEYS];       /* the keys in the order of the file */
    size_t n;
};

static int gather_feed_keys(struct loader *ld, const char *path, struct feed_keys *keys)
{
    size_t i;
    int r;
    while ((r = next_key(ld, path, feed_fields, &keys->seen, &i)) == 1) {
        char keypath[PATH_LEN];
        join(keypath, path, feed_fields[i].name);
        if ((r = next_event(ld, keypath, &keys->value[i])) != 0)
            return r;
        keys->order[keys->n++] = i;
        if (keys->value[i].type != YAML_SCALAR_EVENT)
            return expected(ld, &keys->value[i], keypath, feed_fields[i].what, NULL);
    }
    return r;
}

static const char *kind_name(enum feed_kind kind)
{
    for (const struct choice *c = feed_kinds; c->name != NULL; c++)
        if (c->value == (int)kind)
            return c->name;
    return "?";
}

/* "file", "tcp and udp": the feed types in a kinds mask. */
static void kinds_text(unsigned kinds, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (const struct choice *c = feed_kinds; c->name != NULL && o < len; c++)
        if (kinds & (1u << c->value))
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? " and " : "", c->name);
}

/* A nats feed: a stream goes with a durable consumer, and where it starts
 * matters only with a stream; a start time goes with by_start_time. */
static int check_nats_feed(struct loader *ld, const char *path, const struct feed_keys *keys,
                           const config_feed_t *fc)
{
    unsigned m = keys->seen.mask;
    char keypath[PATH_LEN];
    if ((m & (1u << FK_STREAM)) && !(m & (1u << FK_DURABLE))) {
        join(keypath, path, "stream");
        return fail(ld, keys->seen.at[FK_STREAM], keypath,
                    "a JetStream feed needs a durable consumer: add durable (e.g. durable: edge1)");
    }
    static const size_t js_only[] = {FK_DURABLE, FK_DELIVER, FK_START_TIME, FK_HOLD_TIMEOUT};
    for (size_t k = 0; k < sizeof(js_only) / sizeof(js_only[0]); k++) {
        if ((m & (1u << js_only[k])) && !(m & (1u << FK_STREAM))) {
            join(keypath, path, feed_fields[js_only[k]].name);
            return fail(ld, keys->seen.at[js_only[k]], keypath,
                        "only for a JetStream feed; add stream or remove %s",
                        feed_fields[js_only[k]].name);
        }
    }
    if ((m & (1u << FK_START_TIME)) && fc->deliver != NATS_DELIVER_BY_START_TIME) {
        join(keypath, path, "start_time");
        return fail(ld, keys->seen.at[FK_START_TIME], keypath,
                    "only used with deliver: by_start_time; set it or remove start_time");
    }
    if (fc->deliver == NATS_DELIVER_BY_START_TIME && !(m & (1u << FK_START_TIME))) {
        join(keypath, path, "deliver");
        return fail(ld, keys->seen.at[FK_DELIVER], keypath,
                    "by_start_time needs start_time (e.g. start_time: 2026-12-03T13:30:00Z)");
    }
    return 0;
}

static int check_feed(struct loader *ld, const char *path, const yaml_event_t *start,
                      struct feed_keys *keys, config_feed_t *fc)
{
    const struct field *ff = feed_fields;
    char keypath[PATH_LEN];
    int r;
    memset(fc, 0, sizeof(*fc));
    if (!(keys->seen.mask & (1u << FK_NAME)))
        return fail(ld, start->start_mark, path,
                    "missing key \"name\" (a unique name, e.g. nasdaq)");
    if (!(keys->seen.mask & (1u << FK_TYPE)))
        return fail(ld, start->start_mark, path, "missing key \"type\" (file, tcp, udp or nats)");
    join(keypath, path, "type");
    if ((r = ff[FK_TYPE].read(ld, &ff[FK_TYPE], keypath, &keys->value[FK_TYPE], fc)) != 0)
        return r;
    for (size_t k = 0; k < keys->n; k++) {
        size_t i = keys->order[k];
        join(keypath, path, ff[i].name);
        if (!(ff[i].kinds & (1u << fc->kind))) {
            char kinds[32];
            kinds_text(ff[i].kinds, kinds, sizeof(kinds));
            return fail(ld, keys->seen.at[i], keypath,
                        "a %s feed takes no %s (%s is for %s feeds); remove it",
                        kind_name(fc->kind), ff[i].name, ff[i].name, kinds);
        }
        if (i != FK_TYPE && (r = ff[i].read(ld, &ff[i], keypath, &keys->value[i], fc)) != 0)
            return r;
    }
    if (fc->kind == FEED_NATS) {
        fc->format = 0; /* tickd's json and csv payloads, told apart by their first byte */
    } else if (!(keys->seen.mask & (1u << FK_FORMAT))) {
        if (fc->kind != FEED_UDP)
            return fail(ld, start->start_mark, path, "missing key \"format\" (%s for a %s feed)",
                        feed_rules[fc->kind].formats, kind_name(fc->kind));
        fc->format = INGEST_MOLD;
    } else if (!(feed_rules[fc->kind].mask & (1u << fc->format))) {
        char what[64];
        join(keypath, path, "format");
        snprintf(what, sizeof(what), "%s for a %s feed", feed_rules[fc->kind].formats,
                 kind_name(fc->kind));
        return expected(ld, &keys->value[FK_FORMAT], keypath, what, NULL);
    }
    size_t needs = feed_rules[fc->kind].needs;
    if (!(keys->seen.mask & (1u << needs)))
        return fail(ld, start->start_mark, path, "missing key \"%s\" (%s)", ff[needs].name,
                    feed_rules[fc->kind].needs_what);
    if ((keys->seen.mask & (1u << FK_INTERFACE)) && !(keys->seen.mask & (1u << FK_GROUP))) {
        join(keypath, path, "interface");
        return fail(ld, keys->seen.at[FK_INTERFACE], keypath,
                    "only used to join a group; add group or remove interface");
    }
    return check_nats_feed(ld, path, keys, fc);
}

/* The feed as the next of ld->cfg->feeds, its name unique. */
static int read_feed(struct loader *ld, const char *path, const yaml_event_t *start)
{
    config_t *cfg = ld->cfg;
    config_feed_t *fc = &cfg->feeds[cfg->nfeeds];
    struct feed_keys keys;
    memset(&keys, 0, sizeof(keys));
    int r = gather_feed_keys(ld, path, &keys);
    if (r == 0)
        r = check_feed(ld, path, start, &keys, fc);
    if (r == 0 && (keys.seen.mask & (1u << FK_PATH)))
        cfg->at.feed_path[cfg->nfeeds] = place(keys.value[FK_PATH].start_mark);
    if (r == 0 && (keys.seen.mask & (1u << FK_SUBJECT)))
        cfg->at.feed_subject[cfg->nfeeds] = place(keys.value[FK_SUBJECT].start_mark);
    for (size_t i = 0; r == 0 && i < cfg->nfeeds; i++) {
        if (strcmp(cfg->feeds[i].name, fc->name) == 0) {
            char keypath[PATH_LEN];
            join(keypath, path, "name");
            r = fail(ld, keys.value[FK_NAME].start_mark, keypath,
                     "\"%s\" is already the name of feeds[%zu]; feed names must be unique",
                     fc->name, i);
        }
    }
    for (size_t k = 0; k < keys.n; k++)
        yaml_event_delete(&keys.value[keys.order[k]]);
    return r;
}

static int read_feeds(struct loader *ld, const struct field *f, const char *path,
                      const yaml_event_t *v, void *base)
{
    config_t *cfg = base;
    char itempath[PATH_LEN];
    yaml_event_t item;
    int r;
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_START_EVENT)
        return expected(ld, v, path, f->what, NULL);
    while ((r = next_item(ld, path, cfg->nfeeds, itempath, &item)) == 1) {
        if (cfg->nfeeds == CONFIG_MAX_FEEDS)
            r = fail(ld, item.start_mark, itempath, "too many feeds (at most %d)",
                     CONFIG_MAX_FEEDS);
        else if (item.type != YAML_MAPPING_START_EVENT)
            r = expected(ld, &item, itempath, "a map of a feed's keys (name, type, format, ...)",
                         NULL);
        else
            r = read_feed(ld, itempath, &item);
        yaml_event_delete(&item);
        if (r != 0)
            return r;
        cfg->nfeeds++;
    }
    return r;
}

/* ---- the schema ---- */

#define SIZE_WHAT     "a size such as 512, 64KiB or 32MiB"
#define DURATION_WHAT "a duration such as 250us, 100ms, 60s, 5m or 1h"

static const struct choice payloads[] = {{"json", 0}, {"csv", 1}, {NULL, 0}};
static const struct choice slow_consumers[] = {
    {"disconnect", 0}, {"conflate", CONFIG_SLOW_CONFLATE}, {NULL, 0}};
static const struct choice fsyncs[] = {{"always", JOURNAL_FSYNC_ALWAYS},
                                       {"interval", JOURNAL_FSYNC_INTERVAL},
                                       {"never", JOURNAL_FSYNC_NEVER},
                                       {NULL, 0}};
static const struct choice levels[] = {
    {"error", 3}, {"warning", 4}, {"info", 6}, {"debug", 7}, {NULL, 0}};

static const struct field heap_fields[] = {
    {"arena_size", read_size, SIZE_WHAT, CFG(heap.arena_size), 256 * KiB, 16 * MiB, .pow2 = 1},
    {"pool_size", read_size, SIZE_WHAT, CFG(heap.pool_size), 4 * KiB, 64 * KiB, .pow2 = 1},
    {"debug", read_bool, "true or false", CFG(heap.debug)},
    {0},
};

static const struct field gc_fields[] = {
    {"interval", read_duration, DURATION_WHAT, CFG(gc.interval_ns), MSEC, HOUR},
    {"thresholds", read_thresholds, "a list of 3 integers, e.g. [700, 10, 10]", CFG(gc.thresholds),
     1, 1000000000},
    {0},
};

/* The index of a key in its table (for the rules across keys). */
static size_t key_index(const struct field *fields, const char *name)
{
    size_t i = 0;
    while (strcmp(fields[i].name, name) != 0)
        i++;
    return i;
}

/* ---- pubsub.users ---- */

/* pubsub.users[].name: printable ASCII without spaces (what AUTH can send
 * and a log line can show), and not "default", which is pubsub.password's
 * user. */
static int valid_user_name(const struct field *f, const char *s, const char **hint)
{
    (void)f;
    if (s[0] == '\0')
        return 0;
    for (const char *p = s; *p != '\0'; p++)
        if (*p < '!' || *p > '~') {
            *hint = "printable characters without spaces";
            return 0;
        }
    if (strcmp(s, "default") == 0) {
        *hint = "default is the user of pubsub.password; pick another name";
        return 0;
    }
    return 1;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* pubsub.users[].password_sha256: the digest as 64 hex digits. */
static int read_sha256(struct loader *ld, const struct field *f, const char *path,
                       const yaml_event_t *v, void *base)
{
    uint8_t *out = member(base, f);
    const char *s;
    int r = scalar(ld, f, path, v, &s);
    if (r != 0)
        return r;
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if (hex_digit(s[i]) < 0)
            return expected(ld, v, path, f->what, "only the digits 0-9 and a-f");
    if (len != 64) {
        char hint[64];
        snprintf(hint, sizeof(hint), "%zu digits, not 64", len);
        return expected(ld, v, path, f->what, hint);
    }
    for (size_t i = 0; i < 32; i++)
        out[i] = (uint8_t)(hex_digit(s[2 * i]) << 4 | hex_digit(s[2 * i + 1]));
    return 0;
}

/* Whether a channel pattern is one PSUBSCRIBE could use as written: not
 * empty, printable without spaces, every [ closed by a ], no \ left
 * escaping nothing. *hint says what is wrong. */
static int valid_channel_pattern(const char *s, const char **hint)
{
    if (s[0] == '\0') {
        *hint = "an empty pattern matches nothing";
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '!' || *p > '~') {
            *hint = "printable characters without spaces";
            return 0;
        }
        if (*p == '\\') {
            if (p[1] == '\0') {
                *hint = "a \\ at the end escapes nothing; write \\\\ for a backslash";
                return 0;
            }
            p++;
        } else if (*p == '[') {
            const char *q = p + 1;
            if (*q == '^')
                q++;
            while (*q != '\0' && *q != ']') {
                if (*q == '\\' && q[1] != '\0')
                    q++;
                q++;
            }
            if (*q == '\0') {
                *hint = "a [ without its ]; write \\[ for a bracket";
                return 0;
            }
            p = q;
        }
    }
    return 1;
}

/* pubsub.users[].subscribe and .publish: a list of channel patterns, kept
 * in pubsub.user_text. */
static int read_user_patterns(struct loader *ld, const struct field *f, const char *path,
                              const yaml_event_t *v, void *base)
{
    config_t *cfg = ld->cfg;
    config_patterns_t *ps = member(base, f);
    char itempath[PATH_LEN];
    yaml_event_t item;
    int r;
    ps->off = cfg->pubsub.user_text_len;
    ps->n = 0;
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_START_EVENT)
        return expected(ld, v, path, f->what, NULL);
    while ((r = next_item(ld, path, ps->n, itempath, &item)) == 1) {
        const char *s = text_of(&item), *hint = NULL;
        size_t len = s != NULL ? strlen(s) : 0;
        if (s == NULL || !valid_channel_pattern(s, &hint))
            r = expected(ld, &item, itempath,
                         "a channel or a glob pattern such as quote.* or "
                         "trade.[A-M]*",
                         hint);
        else if (len + 1 > sizeof(cfg->pubsub.user_text) - cfg->pubsub.user_text_len)
            r = fail(ld, item.start_mark, itempath,
                     "the users' patterns take more than %zu bytes together; use wider patterns",
                     sizeof(cfg->pubsub.user_text));
        else {
            memcpy(cfg->pubsub.user_text + cfg->pubsub.user_text_len, s, len + 1);
            cfg->pubsub.user_text_len += (uint32_t)len + 1;
            ps->n++;
            r = 0;
        }
        yaml_event_delete(&item);
        if (r != 0)
            return r;
    }
    return r;
}

#define USER(member)                                                                               \
    .offset = offsetof(config_user_t, member), .size = sizeof(((config_user_t *)0)->member)
#define PATTERNS_WHAT "a list of channel patterns, e.g. [quote.*, trade.AAPL]"

static const struct field user_fields[] = {
    {"name", read_string, "a user name", USER(name), .valid = valid_user_name},
    {"password_sha256", read_sha256,
     "the SHA-256 of the password as 64 hex digits (printf %s PASSWORD | sha256sum)",
     USER(password_sha256)},
    {"subscribe", read_user_patterns, PATTERNS_WHAT, USER(subscribe)},
    {"publish", read_user_patterns, PATTERNS_WHAT, USER(publish)},
    {0},
};

/* A user: a name and a password, the name not taken by an earlier user. */
static int check_user(struct loader *ld, const char *path, const struct seen *seen,
                      const void *base)
{
    const config_t *cfg = ld->cfg;
    const config_user_t *u = base;
    size_t name = key_index(user_fields, "name"), pw = key_index(user_fields, "password_sha256");
    char keypath[PATH_LEN];
    if (!(seen->mask & (1u << name)))
        return fail(ld, ld->item_at, path, "missing key \"name\" (the user name AUTH gives)");
    if (!(seen->mask & (1u << pw)))
        return fail(ld, ld->item_at, path,
                    "missing key \"password_sha256\" (printf %%s PASSWORD | sha256sum)");
    for (uint32_t i = 0; i < cfg->pubsub.nusers; i++)
        if (strcmp(cfg->pubsub.users[i].name, u->name) == 0) {
            join(keypath, path, "name");
            return fail(ld, seen->at[name], keypath,
                        "\"%s\" is already the name of pubsub.users[%u]; user names must be unique",
                        u->name, i);
        }
    return 0;
}

/* pubsub.users: a list of users, each a map of user_fields. */
static int read_users(struct loader *ld, const struct field *f, const char *path,
                      const yaml_event_t *v, void *base)
{
    config_t *cfg = base;
    char itempath[PATH_LEN];
    yaml_event_t item;
    int r;
    if (is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_START_EVENT)
        return expected(ld, v, path, f->what, NULL);
    while ((r = next_item(ld, path, cfg->pubsub.nusers, itempath, &item)) == 1) {
        config_user_t *u = &cfg->pubsub.users[cfg->pubsub.nusers];
        if (cfg->pubsub.nusers == CONFIG_MAX_USERS)
            r = fail(ld, item.start_mark, itempath, "too many users (at most %d)",
                     CONFIG_MAX_USERS);
        else if (item.type != YAML_MAPPING_START_EVENT)
            r = expected(ld, &item, itempath,
                         "a map of a user's keys (name, password_sha256, subscribe, publish)",
                         NULL);
        else {
            memset(u, 0, sizeof(*u));
            u->subscribe.off = u->publish.off = cfg->pubsub.user_text_len;
            ld->item_at = item.start_mark;
            r = read_keys(ld, itempath, user_fields, check_user, u);
        }
        yaml_event_delete(&item);
        if (r != 0)
            return r;
        cfg->pubsub.nusers++;
    }
    return r;
}

const char *config_user_pattern(const config_t *cfg, config_patterns_t ps)
{
    return ps.n > 0 ? cfg->pubsub.user_text + ps.off : NULL;
}

const char *config_user_pattern_next(const char *p)
{
    return p + strlen(p) + 1;
}

static const struct field pubsub_fields[] = {
    {"listen", read_string, "host:port", CFG(pubsub.listen), .valid = valid_listen},
    {"payload", read_enum, "json or csv", CFG(pubsub.payload), .choices = payloads},
    {"password", read_string, "a string", CFG(pubsub.password)},
    {"max_clients", read_uint, NULL, CFG(pubsub.max_clients), 1, 1000000},
    {"max_request", read_size, SIZE_WHAT, CFG(pubsub.max_request), KiB, 64 * MiB},
    {"idle_timeout", read_duration, DURATION_WHAT, CFG(pubsub.idle_timeout_ns), 0, 24 * HOUR},
    {"snapshot_on_subscribe", read_bool, "true or false", CFG(pubsub.snapshot)},
    {"max_publish_symbols", read_uint, NULL, CFG(pubsub.max_publish_symbols), 0, 10000000},
    {"output_hard_limit", read_size, SIZE_WHAT, CFG(pubsub.hard_limit), 64 * KiB, 4 * GiB},
    {"output_soft_limit", read_size, SIZE_WHAT, CFG(pubsub.soft_limit), 0, 4 * GiB},
    {"output_soft_seconds", read_duration, DURATION_WHAT, CFG(pubsub.soft_ns), SEC, HOUR},
    {.name = "users",
     .read = read_users,
     .what = "a list of users (name, password_sha256, "
             "subscribe, publish)"},
    {"slow_consumer", read_enum, "disconnect or conflate", CFG(pubsub.slow_consumer),
     .choices = slow_consumers},
    {0},
};

/* pubsub: the soft output limit cannot be above the hard one. Blames the
 * later of the two in the file, or the one that was given. */
static int check_pubsub(struct loader *ld, const char *path, const struct seen *seen,
                        const void *base)
{
    const config_t *cfg = base;
    if (cfg->pubsub.soft_limit <= cfg->pubsub.hard_limit)
        return 0;
    size_t hard = key_index(pubsub_fields, "output_hard_limit");
    size_t soft = key_index(pubsub_fields, "output_soft_limit");
    int hard_given = (seen->mask >> hard) & 1, soft_given = (seen->mask >> soft) & 1;
    int blame_soft = soft_given && (!hard_given || seen->at[soft].index > seen->at[hard].index);
    char keypath[PATH_LEN], hard_text[32], soft_text[32];
    format_size(cfg->pubsub.hard_limit, hard_text, sizeof(hard_text));
    format_size(cfg->pubsub.soft_limit, soft_text, sizeof(soft_text));
    join(keypath, path, pubsub_fields[blame_soft ? soft : hard].name);
    if (blame_soft)
        return fail(ld, seen->at[soft], keypath,
                    "%s is above output_hard_limit (%s); the soft limit must be the lower one",
                    soft_text, hard_text);
    return fail(ld, seen->at[hard], keypath,
                "%s is below output_soft_limit (%s); the hard limit must be the higher one",
                hard_text, soft_text);
}

static const struct field http_fields[] = {
    {"listen", read_string, "host:port", CFG(http.listen), .valid = valid_listen},
    {"max_connections", read_uint, NULL, CFG(http.max_connections), 1, 10000},
    {"max_header", read_size, SIZE_WHAT, CFG(http.max_header), KiB, MiB},
    {"idle_timeout", read_duration, DURATION_WHAT, CFG(http.idle_timeout_ns), 0, HOUR},
    {"header_timeout", read_duration, DURATION_WHAT, CFG(http.header_timeout_ns), 0, HOUR},
    {0},
};

/* journal.dir: a path, its place noted for config_check_files(). */
static int read_journal_dir(struct loader *ld, const struct field *f, const char *path,
                            const yaml_event_t *v, void *base)
{
    int r = read_path(ld, f, path, v, base);
    if (r == 0)
        ld->cfg->at.journal = place(v->start_mark);
    return r;
}

static const struct field journal_fields[] = {
    {"enabled", read_bool, "true or false", CFG(journal.enabled)},
    {"dir", read_journal_dir, "a directory", CFG(journal.dir)},
    {"fsync", read_enum, "always, interval or never", CFG(journal.fsync), .choices = fsyncs},
    {"fsync_interval", read_duration, DURATION_WHAT, CFG(journal.fsync_interval_ns), MSEC, HOUR},
    {0},
};

/* journal: when the default directory is used, config_check_files() blames
 * the key that enabled the journal. */
static int note_journal(struct loader *ld, const char *path, const struct seen *seen,
                        const void *base)
{
    (void)path;
    (void)base;
    size_t dir = key_index(journal_fields, "dir"), enabled = key_index(journal_fields, "enabled");
    if (!((seen->mask >> dir) & 1) && ((seen->mask >> enabled) & 1))
        ld->cfg->at.journal = place(seen->at[enabled]);
    return 0;
}

static const struct field session_fields[] = {
    {"roll_at", read_time_of_day, "a time of day HH:MM on the 24-hour clock, e.g. 17:30",
     CFG(session.roll_minute)},
    {"timezone", read_string, "UTC or an IANA timezone name such as America/New_York",
     CFG(session.timezone), .valid = valid_timezone},
    {0},
};

static const struct field bars_fields[] = {
    {.name = "intervals",
     .read = read_bar_intervals,
     .what = "a list of intervals such as [1s, 1m], or [] for no bars"},
    {"grace", read_duration, DURATION_WHAT, CFG(bars.grace_ns), 0, HOUR},
    {0},
};

static const struct field log_fields[] = {
    {"level", read_enum, "error, warning, info or debug", CFG(log.level), .choices = levels},
    {0},
};

/* ---- nats ---- */

/* A NATS server URL: nats://host:port or tls://host:port (host:port alone
 * means nats://). Credentials never go in the URL, where a log line or an
 * error could show them. */
static int valid_nats_url(const char *s, const char **hint)
{
    const char *hp = s;
    if (strncmp(s, "nats://", 7) == 0)
        hp = s + 7;
    else if (strncmp(s, "tls://", 6) == 0)
        hp = s + 6;
    else if (strstr(s, "://") != NULL) {
        *hint = "the scheme is nats:// or tls://";
        return 0;
    }
    if (strchr(hp, '@') != NULL) {
        *hint = "no credentials in the URL: use nats.user and nats.password, or nats.token";
        return 0;
    }
    const char *colon = strrchr(hp, ':');
    uint64_t port;
    const char *end;
    if (colon == NULL || colon == hp || parse_digits(colon + 1, &port, &end) != 0 || *end != '\0' ||
        port == 0 || port > 65535) {
        *hint = "e.g. nats://127.0.0.1:4222";
        return 0;
    }
    for (const char *p = hp; p < colon; p++) {
        if (!isalnum((unsigned char)*p) && strchr(".-_[]:", *p) == NULL) {
            *hint = "the host is a name or an address, e.g. nats://10.0.0.5:4222";
            return 0;
        }
    }
    return 1;
}

/* nats.servers: one URL or a list of them (the servers of one cluster). */
static int read_nats_servers(struct loader *ld, const struct field *f, const char *path,
                             const yaml_event_t *v, void *base)
{
    config_t *cfg = base;
    const char *hint = NULL;
    char itempath[PATH_LEN];
    yaml_event_t item;
    int r;
    if (v->type == YAML_SCALAR_EVENT && !is_null(v)) {
        const char *s = text_of(v);
        if (!valid_nats_url(s, &hint))
            return expected(ld, v, path, f->what, hint);
        if (strlen(s) >= sizeof(cfg->nats.servers[0]))
            return fail(ld, v->start_mark, path, "too long (at most %zu bytes)",
                        sizeof(cfg->nats.servers[0]) - 1);
        strcpy(cfg->nats.servers[0], s);
        cfg->nats.nservers = 1;
        return 0;
    }
    if (v->type != YAML_SEQUENCE_START_EVENT)
        return expected(ld, v, path, f->what, NULL);
    while ((r = next_item(ld, path, cfg->nats.nservers, itempath, &item)) == 1) {
        const char *s = text_of(&item);
        if (cfg->nats.nservers == CONFIG_MAX_NATS_SERVERS)
            r = fail(ld, item.start_mark, itempath, "too many servers (at most %d)",
                     CONFIG_MAX_NATS_SERVERS);
        else if (s == NULL || !valid_nats_url(s, &hint))
            r = expected(ld, &item, itempath, "a server URL such as nats://127.0.0.1:4222", hint);
        else if (strlen(s) >= sizeof(cfg->nats.servers[0]))
            r = fail(ld, item.start_mark, itempath, "too long (at most %zu bytes)",
                     sizeof(cfg->nats.servers[0]) - 1);
        else {
            strcpy(cfg->nats.servers[cfg->nats.nservers++], s);
            r = 0;
        }
        yaml_event_delete(&item);
        if (r != 0)
            return r;
    }
    if (r == 0 && cfg->nats.nservers == 0)
        return fail(ld, v->start_mark, path,
                    "an empty list; name at least one server, or remove the nats section");
    return r;
}

/* nats.prefix: literal subject tokens, no wildcards. */
static int valid_nats_prefix(const struct field *f, const char *s, const char **hint)
{
    if (strpbrk(s, "*>") != NULL) {
        *hint = "no wildcards in the prefix";
        return 0;
    }
    return valid_subject(f, s, hint);
}

/* A readable file, its place noted for config_check_files(): which of
 * cfg->at.nats_files it is, by its offset. */
static int read_nats_file(struct loader *ld, const struct field *f, const char *path,
                          const yaml_event_t *v, void *base)
{
    static const size_t offsets[] = {
        offsetof(config_t, nats.credentials), offsetof(config_t, nats.tls_ca),
        offsetof(config_t, nats.tls_cert), offsetof(config_t, nats.tls_key)};
    int r = read_path(ld, f, path, v, base);
    for (size_t i = 0; r == 0 && i < 4; i++)
        if (offsets[i] == f->offset)
            ld->cfg->at.nats_files[i] = place(v->start_mark);
    return r;
}

static const struct choice storages[] = {
    {"file", NATS_STORAGE_FILE}, {"memory", NATS_STORAGE_MEMORY}, {NULL, 0}};

static const struct field jetstream_fields[] = {
    {"stream", read_string, "a stream name of letters, digits, _ or -", CFG(nats.jetstream.stream),
     .valid = valid_nats_name},
    {"max_age", read_duration, DURATION_WHAT, CFG(nats.jetstream.max_age_ns), 0, 8760 * HOUR},
    {"max_bytes", read_size, SIZE_WHAT, CFG(nats.jetstream.max_bytes), 0, 1024 * GiB},
    {"replicas", read_uint, NULL, CFG(nats.jetstream.replicas), 1, 5},
    {"storage", read_enum, "file or memory", CFG(nats.jetstream.storage), .choices = storages},
    {0},
};

static const struct field nats_fields[] = {
    {.name = "servers",
     .read = read_nats_servers,
     .what = "a server URL such as nats://127.0.0.1:4222, or a list of them"},
    {"publish", read_bool, "true or false", CFG(nats.publish)},
    {"prefix", read_string, "subject tokens such as tickd or site1.tickd", CFG(nats.prefix),
     .valid = valid_nats_prefix},
    {"payload", read_enum, "json or csv", CFG(nats.payload), .choices = payloads},
    {"name", read_string, "a name of letters, digits, _ or -", CFG(nats.name),
     .valid = valid_nats_name},
    {"user", read_string, "a user name", CFG(nats.user)},
    {"password", read_string, "a string", CFG(nats.password)},
    {"token", read_string, "a string", CFG(nats.token)},
    {"credentials", read_nats_file, "a path", CFG(nats.credentials)},
    {"tls_ca", read_nats_file, "a path", CFG(nats.tls_ca)},
    {"tls_cert", read_nats_file, "a path", CFG(nats.tls_cert)},
    {"tls_key", read_nats_file, "a path", CFG(nats.tls_key)},
    {"max_pending", read_size, SIZE_WHAT, CFG(nats.max_pending), 64 * KiB, 4 * GiB},
    {"reconnect_wait", read_duration, DURATION_WHAT, CFG(nats.reconnect_wait_ns), 10 * MSEC, HOUR},
    {"jetstream", read_map, "a map of jetstream settings", .sub = jetstream_fields},
    {0},
};

/* nats: one way to authenticate; a certificate with its key; servers to
 * connect to. Blames the key given last of a pair. */
static int check_nats(struct loader *ld, const char *path, const struct seen *seen,
                      const void *base)
{
    const config_t *cfg = base;
    size_t user = key_index(nats_fields, "user"), password = key_index(nats_fields, "password"),
           token = key_index(nats_fields, "token"), creds = key_index(nats_fields, "credentials"),
           cert = key_index(nats_fields, "tls_cert"), key = key_index(nats_fields, "tls_key");
    char keypath[PATH_LEN];
#define GIVEN(i) ((seen->mask >> (i)) & 1)
    if (seen->mask != 0 && cfg->nats.nservers == 0)
        return fail(ld, seen->at[__builtin_ctz(seen->mask)], path,
                    "missing key \"servers\" (e.g. servers: [nats://127.0.0.1:4222])");
    if (GIVEN(user) != GIVEN(password)) {
        size_t has = GIVEN(user) ? user : password;
        join(keypath, path, nats_fields[has].name);
        return fail(ld, seen->at[has], keypath, "user and password go together; add %s",
                    GIVEN(user) ? "password" : "user");
    }
    size_t ways[3] = {user, token, creds};
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < 3; i++) {
        if (!GIVEN(ways[i]))
            continue;
        if (first == SIZE_MAX) {
            first = ways[i];
            continue;
        }
        join(keypath, path, nats_fields[ways[i]].name);
        return fail(ld, seen->at[ways[i]], keypath,
                    "one way to authenticate: user and password, token, or credentials; %s is "
                    "already given",
                    nats_fields[first].name);
    }
    if (GIVEN(cert) != GIVEN(key)) {
        size_t has = GIVEN(cert) ? cert : key;
        join(keypath, path, nats_fields[has].name);
        return fail(ld, seen->at[has], keypath, "tls_cert and tls_key go together; add %s",
                    GIVEN(cert) ? "tls_key" : "tls_cert");
    }
#undef GIVEN
    return 0;
}

/* Tokens of pattern a and of pattern b (either may hold * and >): could one
 * subject match both? */
static int subjects_overlap(const char *a, const char *b)
{
    for (;;) {
        size_t la = strcspn(a, "."), lb = strcspn(b, ".");
        if ((la == 1 && a[0] == '>') || (lb == 1 && b[0] == '>'))
            return 1;
        if (!(la == 1 && a[0] == '*') && !(lb == 1 && b[0] == '*') &&
            (la != lb || memcmp(a, b, la) != 0))
            return 0;
        a += la;
        b += lb;
        if (*a == '\0' || *b == '\0')
            return *a == *b;
        a++;
        b++;
    }
}

/* Across sections, once the whole file is read: a nats feed needs the
 * servers of the nats section, and must not subscribe to what this tickd's
 * own sink publishes (every tick would come back, and go out again). */
static int check_nats_feeds(struct loader *ld)
{
    const config_t *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->nfeeds; i++) {
        const config_feed_t *fc = &cfg->feeds[i];
        if (fc->kind != FEED_NATS)
            continue;
        yaml_mark_t at = {0};
        at.line = cfg->at.feed_subject[i].line - 1;
        at.column = cfg->at.feed_subject[i].column - 1;
        char keypath[PATH_LEN];
        snprintf(keypath, sizeof(keypath), "feeds[%zu].subject", i);
        if (cfg->nats.nservers == 0)
            return fail(ld, at, keypath,
                        "a nats feed connects to nats.servers; add a nats section with servers");
        char own[2][PATH_LEN];
        snprintf(own[0], PATH_LEN, "%s.trade.*", cfg->nats.prefix);
        snprintf(own[1], PATH_LEN, "%s.quote.*", cfg->nats.prefix);
        if (cfg->nats.publish &&
            (subjects_overlap(fc->subject, own[0]) || subjects_overlap(fc->subject, own[1])))
            return fail(ld, at, keypath,
                        "%s takes this tickd's own ticks back from NATS (nats.prefix %s); set "
                        "nats.publish: false on a tickd fed from NATS, or give it another "
                        "nats.prefix",
                        fc->subject, cfg->nats.prefix);
    }
    return 0;
}

static const struct field root_fields[] = {
    {"heap", read_map, "a map of heap settings", .sub = heap_fields},
    {"gc", read_map, "a map of gc settings", .sub = gc_fields},
    {"pubsub", read_map, "a map of pubsub settings", .sub = pubsub_fields, .check = check_pubsub},
    {"http", read_map, "a map of http settings", .sub = http_fields},
    {"journal", read_map, "a map of journal settings", .sub = journal_fields,
     .check = note_journal},
    {"session", read_map, "a map of session settings", .sub = session_fields},
    {"log", read_map, "a map of log settings", .sub = log_fields},
    {"bars", read_map, "a map of bars settings", .sub = bars_fields},
    {"nats", read_map, "a map of nats settings", .sub = nats_fields, .check = check_nats},
    {.name = "feeds", .read = read_feeds, .what = "a list of feeds"},
    {0},
};

#define KEYS_FIT(table) (sizeof(table) / sizeof(table[0]) - 1 <= MAX_KEYS)
_Static_assert(KEYS_FIT(heap_fields) && KEYS_FIT(gc_fields) && KEYS_FIT(pubsub_fields) &&
                   KEYS_FIT(http_fields) && KEYS_FIT(journal_fields) && KEYS_FIT(session_fields) &&
                   KEYS_FIT(log_fields) && KEYS_FIT(bars_fields) && KEYS_FIT(root_fields) &&
                   KEYS_FIT(feed_fields) && KEYS_FIT(nats_fields) && KEYS_FIT(jetstream_fields) &&
                   KEYS_FIT(user_fields),
               "a map of the schema has more keys than struct seen holds");

/* ---- the document ---- */

static int read_document(struct loader *ld)
{
    yaml_event_t ev;
    int r, type;
    if ((r = next_event(ld, "", &ev)) != 0) /* stream start */
        return r;
    yaml_event_delete(&ev);
    if ((r = next_event(ld, "", &ev)) != 0)
        return r;
    type = ev.type;
    yaml_event_delete(&ev);
    if (type == YAML_STREAM_END_EVENT) /* empty, or only comments */
        return 0;
    if ((r = next_event(ld, "", &ev)) != 0)
        return r;
    if (ev.type == YAML_MAPPING_START_EVENT)
        r = read_keys(ld, "", root_fields, NULL, ld->cfg);
    else if (!is_null(&ev))
        r = expected(ld, &ev, "",
                     "a map of sections (heap, gc, pubsub, http, journal, session, log, nats, "
                     "feeds) at "
                     "the top level",
                     NULL);
    yaml_event_delete(&ev);
    if (r != 0 || (r = next_event(ld, "", &ev)) != 0) /* document end */
        return r;
    yaml_event_delete(&ev);
    if ((r = next_event(ld, "", &ev)) != 0)
        return r;
    if (ev.type == YAML_DOCUMENT_START_EVENT)
        r = fail(ld, ev.start_mark, "",
                 "only one YAML document is allowed; remove the second \"---\" and what follows");
    yaml_event_delete(&ev);
    return r;
}

/* ---- public ---- */

void config_defaults(config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->heap.arena_size = 1 * MiB;
    cfg->heap.pool_size = 16 * KiB;
    cfg->gc.interval_ns = 100 * MSEC;
    cfg->gc.thresholds[0] = 700;
    cfg->gc.thresholds[1] = 10;
    cfg->gc.thresholds[2] = 10;
    strcpy(cfg->pubsub.listen, "127.0.0.1:6380");
    cfg->pubsub.max_clients = 10000;
    cfg->pubsub.max_request = 64 * KiB;
    cfg->pubsub.hard_limit = 32 * MiB;
    cfg->pubsub.soft_limit = 8 * MiB;
    cfg->pubsub.soft_ns = 60 * SEC;
    cfg->pubsub.snapshot = 1;
    cfg->pubsub.max_publish_symbols = 100000;
    strcpy(cfg->http.listen, "127.0.0.1:9108");
    cfg->http.max_connections = 64;
    cfg->http.max_header = 8 * KiB;
    cfg->http.idle_timeout_ns = 30 * SEC;
    cfg->http.header_timeout_ns = 5 * SEC;
    strcpy(cfg->journal.dir, "/var/lib/tickd");
    cfg->journal.fsync = JOURNAL_FSYNC_INTERVAL;
    cfg->journal.fsync_interval_ns = 1 * SEC;
    strcpy(cfg->session.timezone, "UTC");
    cfg->log.level = 6;
    cfg->bars.intervals_ns[0] = (int64_t)SEC;
    cfg->bars.intervals_ns[1] = (int64_t)MINUTE;
    cfg->bars.nintervals = 2;
    cfg->bars.grace_ns = 250 * MSEC;
    cfg->nats.publish = 1;
    strcpy(cfg->nats.prefix, "tickd");
    strcpy(cfg->nats.name, "tickd");
    cfg->nats.max_pending = 8 * MiB;
    cfg->nats.reconnect_wait_ns = 1 * SEC;
    cfg->nats.jetstream.replicas = 1;
}

int config_load_buffer(const char *name, const char *data, size_t len, config_t *cfg, char *err,
                       size_t errlen)
{
    struct loader ld = {.name = name,
                        .data = data != NULL ? data : "",
                        .len = data != NULL ? len : 0,
                        .cfg = cfg,
                        .err = err,
                        .errlen = errlen};
    config_defaults(cfg);
    if (errlen > 0)
        err[0] = '\0';
    if (strlen(name) >= sizeof(cfg->path)) {
        if (errlen > 0)
            snprintf(err, errlen, "%.64s...: path too long (at most %zu bytes)", name,
                     sizeof(cfg->path) - 1);
        return -ENAMETOOLONG;
    }
    strcpy(cfg->path, name);
    if (!yaml_parser_initialize(&ld.parser)) {
        if (errlen > 0)
            snprintf(err, errlen, "%s: out of memory while parsing", name);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)ld.data, ld.len);
    int r = read_document(&ld);
    if (r == 0)
        r = check_nats_feeds(&ld);
    yaml_parser_delete(&ld.parser);
    return r;
}

/* The whole file into a malloc'd buffer: 0, -EFBIG past CONFIG_MAX_FILE
 * bytes, or -errno. */
static int read_file(const char *path, char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    char *buf = malloc(CONFIG_MAX_FILE + 1);
    int r = buf != NULL ? 0 : -ENOMEM;
    while (r == 0 && len <= CONFIG_MAX_FILE) {
        ssize_t n = read(fd, buf + len, CONFIG_MAX_FILE + 1 - len);
        if (n == 0)
            break;
        if (n > 0)
            len += (size_t)n;
        else if (errno != EINTR)
            r = -errno;
    }
    close(fd);
    if (r == 0 && len > CONFIG_MAX_FILE)
        r = -EFBIG;
    if (r != 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

int config_load(const char *path, config_t *cfg, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    int r = read_file(path, &data, &len);
    if (r != 0) {
        if (errlen > 0 && r == -EFBIG)
            snprintf(err, errlen, "%s: larger than %uMiB; is this the configuration file?", path,
                     CONFIG_MAX_FILE >> 20);
        else if (errlen > 0)
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-r));
        return r;
    }
    r = config_load_buffer(path, data, len, cfg, err, errlen);
    free(data);
    return r;
}

/* ---- the file system ---- */

/* Writes "file:line:column: key: <message>" into err (or "file: key: ..."
 * when the key's place is not known) and returns err_value. */
__attribute__((format(printf, 7, 8))) static int files_fail(char *err, size_t errlen,
                                                            const config_t *cfg, config_place_t at,
                                                            const char *key, int err_value,
                                                            const char *fmt, ...)
{
    char msg[CONFIG_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (errlen == 0)
        return err_value;
    if (at.line > 0)
        snprintf(err, errlen, "%s:%u:%u: %s: %s", cfg->path, at.line, at.column, key, msg);
    else
        snprintf(err, errlen, "%s: %s: %s", cfg->path, key, msg);
    return err_value;
}

static int check_journal_dir(const config_t *cfg, char *err, size_t errlen)
{
    const char *dir = cfg->journal.dir, *key = "journal.dir";
    config_place_t at = cfg->at.journal;
    struct stat st;
    if (stat(dir, &st) != 0) {
        int e = errno;
        if (e == ENOENT)
            return files_fail(err, errlen, cfg, at, key, -e,
                              "%s does not exist; create it (mkdir -p %s) for the user tickd runs "
                              "as, or set journal.dir to a directory that does",
                              dir, dir);
        return files_fail(err, errlen, cfg, at, key, -e,
                          "cannot reach %s: %s; check the path and its permissions", dir,
                          strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return files_fail(err, errlen, cfg, at, key, -ENOTDIR,
                          "%s is not a directory; set journal.dir to a directory", dir);
    if (access(dir, W_OK | X_OK) != 0) {
        int e = errno;
        return files_fail(err, errlen, cfg, at, key, -e,
                          "%s is not writable by this user (uid %u): %s; give the user write "
                          "access or set journal.dir to a directory it can write",
                          dir, (unsigned)geteuid(), strerror(e));
    }
    return 0;
}

static int check_feed_file(const config_t *cfg, size_t i, char *err, size_t errlen)
{
    const char *path = cfg->feeds[i].path;
    config_place_t at = cfg->at.feed_path[i];
    char key[32];
    struct stat st;
    snprintf(key, sizeof(key), "feeds[%zu].path", i);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return files_fail(err, errlen, cfg, at, key, -e,
                          "cannot read %s: %s; check the path and its permissions", path,
                          strerror(e));
    }
    int r = fstat(fd, &st) == 0 ? 0 : -errno;
    close(fd);
    if (r != 0)
        return files_fail(err, errlen, cfg, at, key, r, "cannot read %s: %s", path, strerror(-r));
    if (S_ISDIR(st.st_mode))
        return files_fail(err, errlen, cfg, at, key, -EISDIR,
                          "%s is a directory; name the file to replay", path);
    return 0;
}

/* nats.credentials and the TLS files: readable regular files. */
static int check_nats_files(const config_t *cfg, char *err, size_t errlen)
{
    static const char *const keys[] = {"nats.credentials", "nats.tls_ca", "nats.tls_cert",
                                       "nats.tls_key"};
    const char *paths[] = {cfg->nats.credentials, cfg->nats.tls_ca, cfg->nats.tls_cert,
                           cfg->nats.tls_key};
    for (size_t i = 0; i < 4; i++) {
        struct stat st;
        if (paths[i][0] == '\0')
            continue;
        int fd = open(paths[i], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            return files_fail(err, errlen, cfg, cfg->at.nats_files[i], keys[i], -e,
                              "cannot read %s: %s; check the path and its permissions", paths[i],
                              strerror(e));
        }
        int r = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -EISDIR;
        close(fd);
        if (r != 0)
            return files_fail(err, errlen, cfg, cfg->at.nats_files[i], keys[i], r,
                              "%s is not a file", paths[i]);
    }
    return 0;
}

int config_check_files(const config_t *cfg, char *err, size_t errlen)
{
    int r = 0;
    if (cfg->journal.enabled)
        r = check_journal_dir(cfg, err, errlen);
    for (size_t i = 0; r == 0 && i < cfg->nfeeds; i++)
        if (cfg->feeds[i].kind == FEED_FILE)
            r = check_feed_file(cfg, i, err, errlen);
    r = r != 0 ? r : check_nats_files(cfg, err, errlen);
    return r;
}

int config_parse_size(const char *s, size_t *out)
{
    const char *why;
    return parse_size_text(s, out, &why);
}

int config_parse_duration(const char *s, uint64_t *out)
{
    const char *why;
    return parse_duration_text(s, out, &why);
}

int config_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *why;
    return parse_hostport_text(s, host, hostlen, port, &why);
}
