/*
 * glob.h - Redis glob patterns, as PSUBSCRIBE, KEYS and SCAN match them.
 *
 *   *      any run of bytes, the empty one included
 *   ?      exactly one byte
 *   [abc]  one byte of the set; [^abc] one byte not in it; [a-z] a range
 *          (either order: [z-a] is the same set); \ escapes inside a set
 *   \x     the byte x itself (so \* is a star, \\ a backslash)
 *
 * Everything else matches itself, byte for byte, case-sensitively. The
 * corner cases follow Redis' stringmatchlen() exactly: an unterminated set
 * ("[abc") ends at the end of the pattern, a trailing backslash matches a
 * backslash, "[a-]" is the range from 'a' to ']'.
 */
#ifndef TICKD_SRC_GLOB_H
#define TICKD_SRC_GLOB_H

#include <stddef.h>

/* Does s[0..slen) match pat[0..plen)? 1 or 0. Reads nothing outside the two
 * ranges; linear in practice (Redis' early exit for failed '*' tails) and
 * bounded in recursion depth, so any pattern a client sends is safe. */
int glob_match(const char *pat, size_t plen, const char *s, size_t slen);

#endif
