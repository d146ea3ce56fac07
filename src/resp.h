/*
 * resp.h - the RESP2 request parser: bytes in, one command out.
 *
 * A pure function over a byte buffer: no I/O, no allocation, no state kept
 * between calls. Give it everything received so far; it answers that the
 * request is not complete yet, or hands back one command (its arguments
 * point into the buffer, or into the caller's scratch for inline commands)
 * and how many bytes it took, or says why the bytes are not RESP, in Redis'
 * own words ("Protocol error: expected '$', got 'x'").
 *
 * Both request forms of Redis are understood:
 *   multibulk  *<argc>\r\n then argc times $<len>\r\n<len bytes>\r\n
 *   inline     a line of words ending in \n (or \r\n), split the way Redis'
 *              sdssplitargs() does: blanks separate, "double quotes" take
 *              \n \r \t \b \a \xHH and \<c> escapes, 'single quotes' take \'
 * A multibulk with a count of zero or less, and an empty inline line, are
 * commands with no arguments: the caller skips them, as Redis does.
 *
 * Limits: a request takes at most max_request bytes, framing included, and
 * at most max_args arguments. The parser never reads buf[len] or beyond, and
 * returns RESP_NEED_MORE only while len < max_request, so a caller never
 * has to hold max_request bytes or more of one unfinished request.
 */
#ifndef TICKD_SRC_RESP_H
#define TICKD_SRC_RESP_H

#include <stddef.h>

#define RESP_MAX_ARGS 1024 /* arguments of one request, the default for max_args */
#define RESP_ERR_MAX  96   /* room for the longest error text, NUL included */
#define RESP_LINE_MAX 32   /* longest *<count> or $<len> line, CRLF included */

/* Before AUTH Redis allows no more than this many arguments, and no bulk
 * longer than this (its "unauthenticated" limits). */
#define RESP_UNAUTH_MAX_ARGS 10
#define RESP_UNAUTH_MAX_BULK 16384

enum resp_result {
    RESP_ERROR = -1,    /* not RESP, or over a limit: err says why; close after replying */
    RESP_NEED_MORE = 0, /* a prefix of a request: call again with more bytes */
    RESP_COMMAND = 1,   /* argc/argv/consumed describe one request */
};

typedef struct resp_arg {
    const char *ptr;
    size_t len;
} resp_arg_t;

typedef struct resp_parser {
    /* Set by the caller. */
    size_t max_request;  /* bytes one request may take, framing included */
    size_t max_args;     /* entries of argv, at most */
    int unauthenticated; /* apply RESP_UNAUTH_MAX_ARGS / _BULK too */
    resp_arg_t *argv;    /* max_args entries */
    char *scratch;       /* max_request bytes: inline arguments are unquoted here */

    /* Set by resp_parse(). */
    size_t argc;            /* RESP_COMMAND: arguments in argv */
    size_t consumed;        /* RESP_COMMAND: bytes of buf the request took */
    char err[RESP_ERR_MAX]; /* RESP_ERROR: "Protocol error: ...", for "-ERR <err>\r\n" */
} resp_parser_t;

/* Parses the request at the start of buf[0..len). Returns an enum
 * resp_result. */
int resp_parse(resp_parser_t *p, const char *buf, size_t len);

#endif
