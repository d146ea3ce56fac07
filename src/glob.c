/*
 * glob.c - Redis glob matching (PSUBSCRIBE patterns), bounds-checked.
 *
 * This is Redis' stringmatchlen() (util.c, 7.0) with every read kept inside
 * its range: Redis leans on the NUL after its strings to stop some loops,
 * here explicit lengths do. The semantics, corner cases included, are the
 * same, so a pattern matches in tickd exactly what it matches in Redis.
 *
 * A '*' tries the rest of the pattern at every later position of the string,
 * recursively. Two guards keep hostile patterns cheap: once the rest of the
 * pattern failed at every position after one '*', no earlier '*' can do
 * better (a longer match for it only starts the rest later), so the whole
 * match fails at once; and recursion deeper than GLOB_MAX_NESTING stars
 * reports no match instead of exhausting the stack.
 */
#include "src/glob.h"

#define GLOB_MAX_NESTING 1000

/* One bracket set at pattern[*pi] (just after the '['), tested against byte
 * c. Advances *pi to the closing ']' (or to the last byte of the pattern for
 * an unterminated set, which Redis treats as closed at the end). */
static int match_set(const char *pat, size_t plen, size_t *pi, unsigned char c)
{
    size_t i = *pi;
    int negate = i < plen && pat[i] == '^';
    int match = 0;

    if (negate)
        i++;
    for (;;) {
        if (i >= plen) {
            i--; /* stay on the last byte: the caller steps past it */
            break;
        }
        if (pat[i] == '\\' && plen - i >= 2) {
            i++;
            if ((unsigned char)pat[i] == c)
                match = 1;
        } else if (pat[i] == ']') {
            break;
        } else if (plen - i >= 3 && pat[i + 1] == '-') {
            unsigned char lo = (unsigned char)pat[i], hi = (unsigned char)pat[i + 2];
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            i += 2;
            if (c >= lo && c <= hi)
                match = 1;
        } else if ((unsigned char)pat[i] == c) {
            match = 1;
        }
        i++;
    }
    *pi = i;
    return negate ? !match : match;
}

static int match_at(const char *pat, size_t plen, const char *s, size_t slen, int *give_up,
                    int nesting)
{
    size_t pi = 0, si = 0;

    if (nesting > GLOB_MAX_NESTING)
        return 0;
    while (pi < plen && si < slen) {
        switch (pat[pi]) {
        case '*':
            while (plen - pi > 1 && pat[pi + 1] == '*')
                pi++;
            if (plen - pi == 1)
                return 1;
            for (; si < slen; si++) {
                if (match_at(pat + pi + 1, plen - pi - 1, s + si, slen - si, give_up, nesting + 1))
                    return 1;
                if (*give_up)
                    return 0;
            }
            *give_up = 1;
            return 0;
        case '?':
            si++;
            break;
        case '[':
            pi++;
            if (!match_set(pat, plen, &pi, (unsigned char)s[si]))
                return 0;
            si++;
            break;
        case '\\':
            if (plen - pi >= 2)
                pi++;
            /* fall through */
        default:
            if (pat[pi] != s[si])
                return 0;
            si++;
            break;
        }
        pi++;
        if (si == slen) {
            while (pi < plen && pat[pi] == '*')
                pi++;
            break;
        }
    }
    return pi == plen && si == slen;
}

int glob_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    int give_up = 0;
    return match_at(pat, plen, s, slen, &give_up, 0);
}
