/*
 * pubsub_commands.c - the commands a subscriber sends, and the table that
 * dispatches every request.
 *
 * Commands are the subset of Redis that a subscriber needs, answered byte
 * for byte as Redis 7.0 answers them, errors included, so that redis-cli,
 * hiredis, redis-py, node-redis and ioredis work unchanged with their
 * defaults. pubsub__dispatch() checks a request against the table (name, arity,
 * AUTH, subscribed mode) before its command runs; PUBLISH lives in
 * pubsub_publish.c, INFO and PUBSUB in pubsub_info.c, GET, MGET, KEYS and
 * SCAN in pubsub_query.c.
 *
 * Protocols. A connection speaks RESP2 until HELLO 3 and again after
 * HELLO 2 or RESET (CLIENT_RESP3). What RESP3 changes here is small: the
 * (p)(un)subscribe confirmations and the message/pmessage frames are push
 * frames, '>' where RESP2 has '*'; a null is "_"; HELLO answers a map and
 * INFO a verbatim string; and a subscribed client may run any command
 * (PING then answers +PONG). HELLO and INFO name the server as Redis
 * REDIS_COMPAT_VERSION, the release whose pub/sub tickd matches; INFO's
 * tickd_version is tickd's own. Users (pubsub_acl.c): "default", whose
 * password is pubsub.password, and those of pubsub.users, whose rights
 * (P)SUBSCRIBE checks before it subscribes anything; no error reply ever
 * repeats an argument that held a credential.
 *
 * (P)SUBSCRIBE to a name with an @<interval> suffix makes a conflated
 * subscription (pubsub_conflate.c), without a snapshot; a bad suffix fails
 * the whole command with one error reply, nothing subscribed.
 *
 * Commands queue their replies (pubsub_queue.c) and none blocks; only a
 * snapshot over the hard limit offers the socket its output at once.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "src/pubsub_internal.h"

/* ---- commands ---- */

typedef struct command command_t;
typedef void (*command_fn)(client_t *c, size_t argc, const resp_arg_t *argv);

enum command_flags {
    CMD_NO_AUTH = 1,   /* allowed before AUTH */
    CMD_SUBSCRIBED = 2 /* allowed in subscribed mode */
};

struct command {
    const char *name;     /* lowercase */
    size_t len;           /* strlen(name) */
    const char *fullname; /* as Redis names it in errors: "client|setname" */
    int arity;            /* Redis' convention: n exactly, -n at least n (the name included) */
    unsigned flags;       /* enum command_flags */
    command_fn proc;
    const command_t *subcommands; /* NULL-terminated by name, or NULL */
};

/* Whether a is name in any case. Names are lowercase letters, which differ
 * from their capitals in bit 5 only; the first difference ends the test
 * (every request runs it over the command table). */
int pubsub__arg_is(const resp_arg_t *a, const char *name)
{
    size_t i = 0;
    for (; i < a->len; i++)
        if (name[i] == '\0' || (a->ptr[i] | 0x20) != name[i])
            return 0;
    return name[i] == '\0';
}

/* An argument as printf's "%.*s" takes it: up to max bytes, stopping at a
 * NUL as Redis' C strings do. */
int pubsub__arg_width(const resp_arg_t *a, size_t max)
{
    const char *nul = memchr(a->ptr, '\0', a->len);
    size_t n = nul != NULL ? (size_t)(nul - a->ptr) : a->len;
    return (int)(n < max ? n : max);
}

/* Whether c's user may (P)SUBSCRIBE to every name of argv, judged on the
 * name without its conflation suffix (quote.AAPL@1s is quote.AAPL's data);
 * if not, the -NOPERM answer is given and nothing is subscribed, as Redis 7
 * checks a command's channels before it runs. */
static int subscribe_allowed(client_t *c, size_t argc, const resp_arg_t *argv, int is_pattern)
{
    if (HEAP_LIKELY(c->user == NULL))
        return 1;
    for (size_t i = 1; i < argc; i++) {
        size_t n = pubsub__acl_base(argv[i].ptr, argv[i].len);
        if (is_pattern ? !pubsub__acl_may_pattern(c->user, argv[i].ptr, n)
                       : !pubsub__acl_may(c->user, ACL_SUBSCRIBE, argv[i].ptr, n)) {
            pubsub__reply_str(c, ACL_NOPERM_CHANNEL);
            return 0;
        }
    }
    return 1;
}

/* A name whose conflation suffix is bad fails the whole command before
 * anything is subscribed, as a channel a user may not read does in Redis 7:
 * one error reply, which every client reads as the command's. */
static void subscribe_generic(client_t *c, size_t argc, const resp_arg_t *argv, int is_pattern)
{
    size_t base_len;
    uint64_t ms;
    for (size_t i = 1; i < argc; i++) {
        if (pubsub__conflate_suffix(argv[i].ptr, argv[i].len, &base_len, &ms) < 0) {
            pubsub__reply_error(c,
                                "ERR bad conflation interval in '%.*s': the suffix is @<n>ms, "
                                "@<n>s, @<n>m or @<n>h, from 10ms to 1h, after a channel name",
                                pubsub__arg_width(&argv[i], 128), argv[i].ptr);
            return;
        }
    }
    if (!subscribe_allowed(c, argc, argv, is_pattern))
        return;
    for (size_t i = 1; i < argc; i++) {
        topic_t *t;
        int conflated = pubsub__conflate_suffix(argv[i].ptr, argv[i].len, &base_len, &ms);
        int r = pubsub__sub_add(c, is_pattern, argv[i].ptr, argv[i].len, &t);
        if (r == 1 && conflated && t->conflate == NULL &&
            pubsub__conflate_attach(c->ps, t, base_len, ms) != 0) {
            pubsub__sub_remove(c->ps, c->subs[c->nsubs - 1]); /* the one pubsub__sub_add() made */
            r = -ENOMEM;
        }
        if (r < 0) {
            pubsub__reply_error(c, "ERR out of memory");
            continue;
        }
        pubsub__reply_subscription(c, is_pattern ? "psubscribe" : "subscribe", argv[i].ptr,
                                   argv[i].len);
        if (r == 1 && c->ps->opt.snapshot && !conflated) {
            if (is_pattern)
                pubsub__snapshot_pattern(
                    c, c->subs[c->nsubs - 1]); /* the one pubsub__sub_add() made */
            else
                pubsub__snapshot_channel(c, t);
        }
        if (c->flags & (CLIENT_SLOW | CLIENT_CLOSED))
            return; /* cut while its snapshots were built: the rest is moot */
    }
}

static void unsubscribe_generic(client_t *c, size_t argc, const resp_arg_t *argv, int is_pattern)
{
    const char *kind = is_pattern ? "punsubscribe" : "unsubscribe";
    pubsub_t *ps = c->ps;

    if (argc == 1) {
        if (pubsub__client_count_subs(c, is_pattern) == 0) {
            pubsub__reply_subscription(c, kind, NULL, 0);
            return;
        }
        for (uint32_t i = c->nsubs; i-- > 0;) {
            if (i >= c->nsubs || c->subs[i]->topic->is_pattern != is_pattern)
                continue;
            /* The reply names the topic, which may go with the
             * subscription: write the name first, the count after. */
            const topic_t *t = c->subs[i]->topic;
            pubsub__reply_subscription_head(c, kind);
            pubsub__reply_bulk(c, t->name, t->len);
            pubsub__sub_remove(ps, c->subs[i]);
            pubsub__reply_number(c, ':', c->nsubs);
        }
        return;
    }
    for (size_t i = 1; i < argc; i++) {
        topic_table_t *table = is_pattern ? &ps->patterns : &ps->channels;
        topic_t *t = pubsub__table_find(table, argv[i].ptr, argv[i].len,
                                        pubsub__hash_name(argv[i].ptr, argv[i].len));
        sub_t *s = t != NULL ? pubsub__sub_find(c, t) : NULL;
        if (s != NULL)
            pubsub__sub_remove(ps, s);
        pubsub__reply_subscription(c, kind, argv[i].ptr, argv[i].len);
    }
}

static void cmd_subscribe(client_t *c, size_t argc, const resp_arg_t *argv)
{
    subscribe_generic(c, argc, argv, 0);
}

static void cmd_psubscribe(client_t *c, size_t argc, const resp_arg_t *argv)
{
    subscribe_generic(c, argc, argv, 1);
}

static void cmd_unsubscribe(client_t *c, size_t argc, const resp_arg_t *argv)
{
    unsubscribe_generic(c, argc, argv, 0);
}

static void cmd_punsubscribe(client_t *c, size_t argc, const resp_arg_t *argv)
{
    unsubscribe_generic(c, argc, argv, 1);
}

static void cmd_ping(client_t *c, size_t argc, const resp_arg_t *argv)
{
    if (argc > 2) {
        pubsub__reply_error(c, "ERR wrong number of arguments for 'ping' command");
    } else if (c->nsubs > 0 && pubsub__client_proto(c) == PAYLOAD_RESP2) {
        pubsub__reply_raw(c, "*2\r\n$4\r\npong\r\n", 14);
        if (argc == 2)
            pubsub__reply_bulk(c, argv[1].ptr, argv[1].len);
        else
            pubsub__reply_bulk(c, "", 0);
    } else if (argc == 2) {
        pubsub__reply_bulk(c, argv[1].ptr, argv[1].len);
    } else {
        pubsub__reply_str(c, "+PONG\r\n");
    }
}

/* Stops reading from c, drops its subscriptions, and closes it once its
 * output (the reply at hand included) is written. */
void pubsub__begin_closing(client_t *c)
{
    c->flags |= CLIENT_CLOSING;
    uv_read_stop((uv_stream_t *)&c->tcp);
    pubsub__unsubscribe_quietly(c);
}

static void cmd_quit(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    pubsub__reply_str(c, "+OK\r\n");
    pubsub__begin_closing(c);
}

static void cmd_reset(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    pubsub__unsubscribe_quietly(c);
    pubsub__client_set_proto(c, PAYLOAD_RESP2);
    c->user = NULL; /* back to the default user, as Redis' RESET */
    if (c->ps->opt.password[0] != '\0' || c->ps->acl != NULL)
        c->flags &= ~CLIENT_AUTHED;
    pubsub__reply_str(c, "+RESET\r\n");
}

/* ---- AUTH, HELLO, CLIENT ---- */

static void cmd_auth(client_t *c, size_t argc, const resp_arg_t *argv)
{
    if (argc > 3)
        pubsub__reply_error(c, "ERR syntax error");
    else if (c->ps->opt.password[0] == '\0' && c->ps->acl == NULL && argc == 2)
        pubsub__reply_error(c, "ERR AUTH <password> called without any password configured for the "
                               "default user. Are you sure your configuration is correct?");
    else if (pubsub__acl_authenticate(c, argc == 3 ? &argv[1] : NULL, &argv[argc - 1]))
        pubsub__reply_str(c, "+OK\r\n");
}

/* Redis' rule for client names: printable ASCII, no spaces. */
static int client_name_ok(client_t *c, const resp_arg_t *name)
{
    for (size_t i = 0; i < name->len; i++)
        if (name->ptr[i] < '!' || name->ptr[i] > '~') {
            pubsub__reply_error(c, "ERR Client names cannot contain spaces, newlines or special "
                                   "characters.");
            return 0;
        }
    return 1;
}

/* CLIENT SETNAME: checked as Redis checks it; tickd lists no clients, so
 * the name is not kept. */
static void cmd_client_setname(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    if (client_name_ok(c, &argv[2]))
        pubsub__reply_str(c, "+OK\r\n");
}

/* A decimal integer argument as Redis' string2ll() reads one: an optional
 * '-', digits, no leading zero, at most 18 digits (more is out of range for
 * anything asked here). 1, or 0 when it is not one. */
int pubsub__arg_integer(const resp_arg_t *a, long long *out)
{
    size_t i = a->len > 0 && a->ptr[0] == '-';
    long long v = 0;

    if (a->len == 1 && a->ptr[0] == '0') {
        *out = 0;
        return 1;
    }
    if (i >= a->len || a->len - i > 18 || a->ptr[i] < '1' || a->ptr[i] > '9')
        return 0;
    for (size_t k = i; k < a->len; k++) {
        if (a->ptr[k] < '0' || a->ptr[k] > '9')
            return 0;
        v = v * 10 + (a->ptr[k] - '0');
    }
    *out = i ? -v : v;
    return 1;
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]]: the
 * options are read first, then the credentials checked, then the protocol
 * switched, and the reply is in the protocol now in force: a map in RESP3,
 * a flat array of the same pairs in RESP2. Redis' texts for every error. */
static void cmd_hello(client_t *c, size_t argc, const resp_arg_t *argv)
{
    const resp_arg_t *user = NULL, *password = NULL;
    long long ver = 0;
    size_t j = 1;

    if (argc >= 2) {
        if (!pubsub__arg_integer(&argv[1], &ver)) {
            pubsub__reply_error(c, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            pubsub__reply_str(c, "-NOPROTO unsupported protocol version\r\n");
            return;
        }
        j = 2;
    }
    for (; j < argc; j++) {
        size_t more = argc - 1 - j;
        if (pubsub__arg_is(&argv[j], "auth") && more >= 2) {
            user = &argv[j + 1];
            password = &argv[j + 2];
            j += 2;
        } else if (pubsub__arg_is(&argv[j], "setname") && more >= 1) {
            if (!client_name_ok(c, &argv[j + 1]))
                return;
            j++;
        } else {
            /* An option word, never an AUTH argument: those were taken. */
            pubsub__reply_error(c, "ERR Syntax error in HELLO option '%.*s'",
                                pubsub__arg_width(&argv[j], 128), argv[j].ptr);
            return;
        }
    }
    if (user != NULL && !pubsub__acl_authenticate(c, user, password))
        return;
    if (pubsub__auth_required(c)) {
        pubsub__reply_str(
            c, "-NOAUTH HELLO must be called with the client already authenticated, "
               "otherwise the HELLO AUTH <user> <pass> option can be used to authenticate "
               "the client and select the RESP protocol version at the same time\r\n");
        return;
    }
    if (ver != 0)
        pubsub__client_set_proto(c, ver == 3 ? PAYLOAD_RESP3 : PAYLOAD_RESP2);
    int resp3 = pubsub__client_proto(c) == PAYLOAD_RESP3;
    pubsub__reply_raw(c, resp3 ? "%7\r\n" : "*14\r\n", resp3 ? 4 : 5);
    pubsub__reply_bulk(c, "server", 6);
    pubsub__reply_bulk(c, "redis", 5);
    pubsub__reply_bulk(c, "version", 7);
    pubsub__reply_bulk(c, REDIS_COMPAT_VERSION, strlen(REDIS_COMPAT_VERSION));
    pubsub__reply_bulk(c, "proto", 5);
    pubsub__reply_number(c, ':', resp3 ? 3 : 2);
    pubsub__reply_bulk(c, "id", 2);
    pubsub__reply_number(c, ':', (long long)c->id);
    pubsub__reply_bulk(c, "mode", 4);
    pubsub__reply_bulk(c, "standalone", 10);
    pubsub__reply_bulk(c, "role", 4);
    pubsub__reply_bulk(c, "master", 6);
    pubsub__reply_bulk(c, "modules", 7);
    pubsub__reply_raw(c, "*0\r\n", 4);
}

/* ---- the command table ---- */

static void cmd_ok(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    pubsub__reply_str(c, "+OK\r\n");
}

/* COMMAND, COMMAND INFO/LIST: no command table to show (redis-cli asks
 * for the docs at start-up and does without). */
static void cmd_command_empty(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    pubsub__reply_str(c, "*0\r\n");
}

/* COMMAND DOCS: no docs either, an empty map in RESP3. */
static void cmd_command_docs(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    pubsub__reply_str(c, pubsub__client_proto(c) == PAYLOAD_RESP3 ? "%0\r\n" : "*0\r\n");
}

static void cmd_command_count(client_t *c, size_t argc, const resp_arg_t *argv)
{
    (void)argc;
    (void)argv;
    pubsub__reply_str(c, ":0\r\n");
}

/* A name and its length, for a row of a table. */
#define NAME(s) s, sizeof s - 1

static const command_t client_subcommands[] = {
    {NAME("setname"), "client|setname", 3, 0, cmd_client_setname, NULL},
    {NAME("setinfo"), "client|setinfo", 4, 0, cmd_ok, NULL},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const command_t command_subcommands[] = {
    {NAME("docs"), "command|docs", -2, 0, cmd_command_docs, NULL},
    {NAME("info"), "command|info", -2, 0, cmd_command_empty, NULL},
    {NAME("list"), "command|list", -2, 0, cmd_command_empty, NULL},
    {NAME("count"), "command|count", 2, 0, cmd_command_count, NULL},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static const command_t pubsub_subcommands[] = {
    {NAME("channels"), "pubsub|channels", -2, 0, pubsub__cmd_pubsub_channels, NULL},
    {NAME("numsub"), "pubsub|numsub", -2, 0, pubsub__cmd_pubsub_numsub, NULL},
    {NAME("numpat"), "pubsub|numpat", 2, 0, pubsub__cmd_pubsub_numpat, NULL},
    {NAME("help"), "pubsub|help", 2, 0, pubsub__cmd_pubsub_help, NULL},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* PUBLISH first: a publisher sends nothing else, as fast as it can; then
 * GET and MGET, which a poller sends as fast. */
static const command_t commands[] = {
    {NAME("publish"), "publish", 3, 0, pubsub__cmd_publish, NULL},
    {NAME("get"), "get", 2, 0, pubsub__cmd_get, NULL},
    {NAME("mget"), "mget", -2, 0, pubsub__cmd_mget, NULL},
    {NAME("subscribe"), "subscribe", -2, CMD_SUBSCRIBED, cmd_subscribe, NULL},
    {NAME("psubscribe"), "psubscribe", -2, CMD_SUBSCRIBED, cmd_psubscribe, NULL},
    {NAME("unsubscribe"), "unsubscribe", -1, CMD_SUBSCRIBED, cmd_unsubscribe, NULL},
    {NAME("punsubscribe"), "punsubscribe", -1, CMD_SUBSCRIBED, cmd_punsubscribe, NULL},
    {NAME("ping"), "ping", -1, CMD_SUBSCRIBED, cmd_ping, NULL},
    {NAME("quit"), "quit", -1, CMD_SUBSCRIBED | CMD_NO_AUTH, cmd_quit, NULL},
    {NAME("reset"), "reset", 1, CMD_SUBSCRIBED | CMD_NO_AUTH, cmd_reset, NULL},
    {NAME("auth"), "auth", -2, CMD_NO_AUTH, cmd_auth, NULL},
    {NAME("hello"), "hello", -1, CMD_NO_AUTH, cmd_hello, NULL},
    {NAME("info"), "info", -1, 0, pubsub__cmd_info, NULL},
    {NAME("keys"), "keys", 2, 0, pubsub__cmd_keys, NULL},
    {NAME("scan"), "scan", -2, 0, pubsub__cmd_scan, NULL},
    {NAME("pubsub"), "pubsub", -2, 0, NULL, pubsub_subcommands},
    {NAME("client"), "client", -2, 0, NULL, client_subcommands},
    {NAME("command"), "command", -1, 0, cmd_command_empty, command_subcommands},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

/* pubsub__arg_is() for a name of n bytes, a->len being n: in fixed-size
 * words, the last of which may overlap the one before (never a byte
 * outside either string), each byte of a with bit 5 set as
 * pubsub__arg_is() sets it. */
static int name_is(const resp_arg_t *a, const char *name, size_t n)
{
    uint64_t x, y;
    uint32_t u, v;
    if (n >= 8) {
        for (size_t i = 0;; i += 8) {
            size_t at = i + 8 <= n ? i : n - 8;
            memcpy(&x, a->ptr + at, 8);
            memcpy(&y, name + at, 8);
            if ((x | 0x2020202020202020u) != y)
                return 0;
            if (at + 8 == n)
                return 1;
        }
    }
    if (n >= 4) {
        memcpy(&u, a->ptr, 4);
        memcpy(&v, name, 4);
        if ((u | 0x20202020u) != v)
            return 0;
        memcpy(&u, a->ptr + n - 4, 4);
        memcpy(&v, name + n - 4, 4);
        return (u | 0x20202020u) == v;
    }
    for (size_t i = 0; i < n; i++)
        if ((a->ptr[i] | 0x20) != name[i])
            return 0;
    return 1;
}

static const command_t *lookup(const command_t *table, const resp_arg_t *name)
{
    for (const command_t *cmd = table; cmd->name != NULL; cmd++)
        if (name->len == cmd->len && name_is(name, cmd->name, cmd->len))
            return cmd;
    return NULL;
}

static void reply_unknown_command(client_t *c, size_t argc, const resp_arg_t *argv)
{
    char args[ERROR_TEXT_MAX];
    size_t len = 0;

    args[0] = '\0';
    for (size_t i = 1; i < argc && len < 128; i++) {
        int n = snprintf(args + len, sizeof args - len, "'%.*s' ",
                         pubsub__arg_width(&argv[i], 128 - len), argv[i].ptr);
        len += (size_t)n;
    }
    pubsub__reply_error(c, "ERR unknown command '%.*s', with args beginning with: %s",
                        pubsub__arg_width(&argv[0], 128), argv[0].ptr, args);
}

void pubsub__dispatch(client_t *c, size_t argc, const resp_arg_t *argv)
{
    const command_t *cmd = lookup(commands, &argv[0]);

    if (cmd == NULL) {
        reply_unknown_command(c, argc, argv);
        return;
    }
    if (cmd->subcommands != NULL && argc >= 2) {
        const command_t *sub = lookup(cmd->subcommands, &argv[1]);
        if (sub == NULL) {
            char upper[16];
            size_t n = strlen(cmd->name);
            for (size_t i = 0; i <= n; i++)
                upper[i] = (char)(cmd->name[i] >= 'a' && cmd->name[i] <= 'z' ? cmd->name[i] - 32
                                                                             : cmd->name[i]);
            pubsub__reply_error(c, "ERR unknown subcommand '%.*s'. Try %s HELP.",
                                pubsub__arg_width(&argv[1], 128), argv[1].ptr, upper);
            return;
        }
        cmd = sub;
    }
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
        (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        pubsub__reply_error(c, "ERR wrong number of arguments for '%s' command", cmd->fullname);
        return;
    }
    if (pubsub__auth_required(c) && !(cmd->flags & CMD_NO_AUTH)) {
        pubsub__reply_str(c, "-NOAUTH Authentication required.\r\n");
        return;
    }
    if (c->nsubs > 0 && pubsub__client_proto(c) == PAYLOAD_RESP2 &&
        !(cmd->flags & CMD_SUBSCRIBED)) {
        pubsub__reply_error(
            c,
            "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
            "QUIT / RESET are allowed in this context",
            cmd->fullname);
        return;
    }
    c->ps->stats.commands_total++;
    cmd->proc(c, argc, argv);
}
