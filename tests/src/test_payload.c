/*
 * test_payload.c - the frames subscribers are sent (src/payload.c): a
 * message or pmessage frame has exactly the bytes RESP gives it, for every
 * length of channel and text up to past three digits, and the size
 * payload_frame_size() announces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "src/payload.h"

/* payload_put_frame() of head, a channel of chlen 'c's and a text of n
 * 't's must write what snprintf() writes, no byte past it, and count it. */
static void assert_frame(const char *head, size_t chlen, size_t n)
{
    char channel[160], text[160], got[400], want[400];
    memset(channel, 'c', chlen);
    memset(text, 't', n);
    memset(got, '#', sizeof got);
    size_t hlen = strlen(head);
    int w = snprintf(want, sizeof want, "%s$%zu\r\n%.*s\r\n$%zu\r\n%.*s\r\n", head, chlen,
                     (int)chlen, channel, n, (int)n, text);
    size_t len = payload_put_frame(got, head, hlen, channel, chlen, text, n);
    assert_int_equal(len, (size_t)w);
    assert_int_equal(payload_frame_size(hlen, chlen, n), (size_t)w);
    assert_memory_equal(got, want, (size_t)w);
    assert_int_equal(got[w], '#');
}

static void test_frames_of_every_length_are_written_byte_for_byte(void **state)
{
    (void)state;
    const char *pattern_head = "*4\r\n$8\r\npmessage\r\n$7\r\ntrade.*\r\n";
    for (size_t chlen = 0; chlen <= 120; chlen += chlen < 12 ? 1 : 11)
        for (size_t n = 0; n <= 150; n++) {
            assert_frame(payload_message_head(PAYLOAD_RESP2), chlen, n);
            assert_frame(payload_message_head(PAYLOAD_RESP3), chlen, n);
            assert_frame(pattern_head, chlen, n);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_of_every_length_are_written_byte_for_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
