/* Unit tests for src/net/wsscan.c: every frame rule, at every split of the input. */
#include <criterion/criterion.h>
#include <string.h>

#include "net/wsscan.h"

/* Builds a masked client frame into out; returns its length. */
static size_t
frame(uint8_t *out, uint8_t b0, const void *payload, size_t len, bool masked)
{
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t n = 0;
    out[n++] = b0;
    uint8_t m = masked ? 0x80 : 0;
    if (len < 126) {
        out[n++] = m | (uint8_t)len;
    } else if (len < 65536) {
        out[n++] = m | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (masked) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[n + i] = masked ? p[i] ^ mask[i & 3] : p[i];
    return n + len;
}

struct result {
    int rc;
    uint16_t code;
    size_t consumed; /* bytes accepted before the failure, over all feeds */
};

/* Feeds buf in two pieces cut at `cut`. */
static struct result
scan_split(const uint8_t *buf, size_t n, size_t cut, uint64_t max, bool binary)
{
    struct sl_wsscan s;
    struct sl_wsscan_error err = {0};
    struct result r = {0, 0, 0};
    size_t ok;
    sl_wsscan_init(&s, max, binary);
    r.rc = sl_wsscan_feed(&s, buf, cut, &ok, &err);
    r.consumed = ok;
    if (r.rc == 0) {
        r.rc = sl_wsscan_feed(&s, buf + cut, n - cut, &ok, &err);
        r.consumed = cut + ok;
    }
    r.code = r.rc ? err.code : 0;
    return r;
}

static void
expect_everywhere(const uint8_t *buf, size_t n, uint16_t code, uint64_t max, bool binary)
{
    for (size_t cut = 0; cut <= n; cut++) {
        struct result r = scan_split(buf, n, cut, max, binary);
        if (code == 0)
            cr_assert_eq(r.rc, 0, "cut %zu: unexpected error %u", cut, r.code);
        else
            cr_assert_eq(r.code, code, "cut %zu: got %u, want %u", cut, r.code, code);
    }
}

Test(wsscan, valid_messages_at_every_split)
{
    uint8_t buf[512];
    size_t n = 0;
    const char *utf = "h\xc3\xa9llo \xf0\x9f\x98\x80";
    n += frame(buf + n, 0x81, "hello", 5, true);               /* text */
    n += frame(buf + n, 0x01, utf, 3, true);                   /* text, not final, cut in é */
    n += frame(buf + n, 0x89, "pp", 2, true);                  /* ping in between */
    n += frame(buf + n, 0x80, utf + 3, strlen(utf) - 3, true); /* final continuation */
    n += frame(buf + n, 0x8A, "", 0, true);                    /* pong */
    n += frame(buf + n, 0x82, "\x00\xff", 2, true);            /* binary, allowed */
    uint8_t close[5] = {0x03, 0xe8, 'b', 'y', 'e'};
    n += frame(buf + n, 0x88, close, 5, true);
    expect_everywhere(buf, n, 0, 1 << 20, true);

    struct sl_wsscan s;
    struct sl_wsscan_error err;
    size_t ok;
    sl_wsscan_init(&s, 1 << 20, true);
    cr_assert_eq(sl_wsscan_feed(&s, buf, n, &ok, &err), 0);
    cr_assert(sl_wsscan_idle(&s));
    cr_assert_eq(ok, n);
}

Test(wsscan, not_idle_inside_a_fragmented_message)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0x01, "part", 4, true);
    struct sl_wsscan s;
    struct sl_wsscan_error err;
    size_t ok;
    sl_wsscan_init(&s, 1024, false);
    cr_assert_eq(sl_wsscan_feed(&s, buf, n, &ok, &err), 0);
    cr_assert_not(sl_wsscan_idle(&s));
    cr_assert_eq(sl_wsscan_feed(&s, buf, n, &ok, &err), -1, "a new text frame inside a message");
    cr_assert_eq(err.code, 1002);
}

Test(wsscan, not_idle_inside_a_frame)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0x81, "hello", 5, true);
    struct sl_wsscan s;
    struct sl_wsscan_error err;
    size_t ok;
    sl_wsscan_init(&s, 1024, false);
    for (size_t i = 0; i + 1 < n; i++) {
        cr_assert_eq(sl_wsscan_feed(&s, buf + i, 1, &ok, &err), 0);
        cr_assert_not(sl_wsscan_idle(&s), "byte %zu", i);
    }
    cr_assert_eq(sl_wsscan_feed(&s, buf + n - 1, 1, &ok, &err), 0);
    cr_assert(sl_wsscan_idle(&s));
}

Test(wsscan, protocol_errors)
{
    uint8_t buf[256];
    size_t n;
    n = frame(buf, 0xC1, "x", 1, true); /* RSV1 */
    expect_everywhere(buf, n, 1002, 1024, false);
    n = frame(buf, 0x83, "x", 1, true); /* opcode 3 */
    expect_everywhere(buf, n, 1002, 1024, false);
    n = frame(buf, 0x8B, "x", 1, true); /* opcode 11 */
    expect_everywhere(buf, n, 1002, 1024, false);
    n = frame(buf, 0x81, "x", 1, false); /* unmasked */
    expect_everywhere(buf, n, 1002, 1024, false);
    n = frame(buf, 0x80, "x", 1, true); /* continuation without a message */
    expect_everywhere(buf, n, 1002, 1024, false);
    n = frame(buf, 0x09, "x", 1, true); /* fragmented ping */
    expect_everywhere(buf, n, 1002, 1024, false);
    char big[126];
    memset(big, 'p', sizeof(big));
    n = frame(buf, 0x89, big, sizeof(big), true); /* ping over 125 bytes */
    expect_everywhere(buf, n, 1002, 1024, false);
    n = frame(buf, 0x88, "\x03", 1, true); /* close with one byte */
    expect_everywhere(buf, n, 1002, 1024, false);
    n = frame(buf, 0x88, "\x03\xed", 2, true); /* close code 1005 */
    expect_everywhere(buf, n, 1002, 1024, false);
    n = frame(buf, 0x88, "\x03\xe8\xff", 3, true); /* close reason not UTF-8 */
    expect_everywhere(buf, n, 1007, 1024, false);
}

Test(wsscan, payload_length_with_top_bit_set)
{
    uint8_t buf[16] = {0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    expect_everywhere(buf, 14, 1002, 1024, false);
}

Test(wsscan, binary_refused_unless_allowed)
{
    uint8_t buf[32];
    size_t n = frame(buf, 0x82, "\x01\x02", 2, true);
    expect_everywhere(buf, n, 1003, 1024, false);
    expect_everywhere(buf, n, 0, 1024, true);
}

Test(wsscan, message_size_counts_all_fragments)
{
    uint8_t buf[256];
    char chunk[60];
    memset(chunk, 'a', sizeof(chunk));
    size_t n = frame(buf, 0x01, chunk, 60, true);
    n += frame(buf + n, 0x80, chunk, 60, true);
    expect_everywhere(buf, n, 0, 120, false);
    expect_everywhere(buf, n, 1009, 119, false);
    /* The limit is checked from the header, before any payload arrives. */
    struct sl_wsscan s;
    struct sl_wsscan_error err;
    size_t ok;
    sl_wsscan_init(&s, 10, false);
    uint8_t hdr[8] = {0x81, 0x80 | 126, 0xFF, 0xFF, 1, 2, 3, 4};
    cr_assert_eq(sl_wsscan_feed(&s, hdr, 8, &ok, &err), -1);
    cr_assert_eq(err.code, 1009);
}

/* A text message of `frames` frames: "a", then empty continuations, the last one final. */
static size_t
fragmented(uint8_t *buf, int frames)
{
    size_t n = frame(buf, 0x01, "a", 1, true);
    for (int i = 1; i < frames; i++)
        n += frame(buf + n, i == frames - 1 ? 0x80 : 0x00, "", 0, true);
    return n;
}

Test(wsscan, a_message_in_too_many_fragments_is_refused)
{
    /* Zero-length continuations cost the client 6 bytes each: without a cap a client keeps
     * one message, and the connection, open forever for nothing. */
    static uint8_t buf[2 * (SL_WSSCAN_MAX_FRAGMENTS + 1) * 8];
    struct sl_wsscan s;
    struct sl_wsscan_error err;
    size_t ok;

    /* At the cap, twice in a row: the count starts again with each message. */
    size_t n = fragmented(buf, SL_WSSCAN_MAX_FRAGMENTS);
    n += fragmented(buf + n, SL_WSSCAN_MAX_FRAGMENTS);
    sl_wsscan_init(&s, 1 << 20, false);
    cr_assert_eq(sl_wsscan_feed(&s, buf, n, &ok, &err), 0);
    cr_assert(sl_wsscan_idle(&s));

    /* One more: 1008 with a reason, at the offending frame's header. */
    n = fragmented(buf, SL_WSSCAN_MAX_FRAGMENTS + 1);
    sl_wsscan_init(&s, 1 << 20, false);
    cr_assert_eq(sl_wsscan_feed(&s, buf, n, &ok, &err), -1);
    cr_assert_eq(err.code, 1008);
    cr_assert(strstr(err.reason, "too many frames") != NULL, "%s", err.reason);
    cr_assert_eq(ok, n - 6, "the frames before the offending one are whole");
}

Test(wsscan, invalid_utf8_fails_fast_and_at_message_end)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0x81, "ok\xff", 3, true);
    expect_everywhere(buf, n, 1007, 1024, false);
    /* A message that stops inside a character is invalid once it ends. */
    n = frame(buf, 0x81, "ok\xe2\x82", 4, true);
    expect_everywhere(buf, n, 1007, 1024, false);
    /* ... but a fragment may stop inside one. */
    n = frame(buf, 0x01, "ok\xe2\x82", 4, true);
    n += frame(buf + n, 0x80, "\xac", 1, true);
    expect_everywhere(buf, n, 0, 1024, false);
}

Test(wsscan, ok_len_stops_before_the_offending_frame)
{
    uint8_t buf[64];
    size_t a = frame(buf, 0x81, "good", 4, true);
    size_t b = frame(buf + a, 0x83, "bad", 3, true);
    struct sl_wsscan s;
    struct sl_wsscan_error err;
    size_t ok;
    sl_wsscan_init(&s, 1024, false);
    cr_assert_eq(sl_wsscan_feed(&s, buf, a + b, &ok, &err), -1);
    cr_assert_eq(ok, a);
    cr_assert_str_eq(err.reason, "reserved opcode");
}

Test(wsscan, close_codes)
{
    cr_assert(sl_ws_close_code_valid(1000));
    cr_assert(sl_ws_close_code_valid(1011));
    cr_assert(sl_ws_close_code_valid(4999));
    cr_assert_not(sl_ws_close_code_valid(1004));
    cr_assert_not(sl_ws_close_code_valid(1005));
    cr_assert_not(sl_ws_close_code_valid(1006));
    cr_assert_not(sl_ws_close_code_valid(999));
    cr_assert_not(sl_ws_close_code_valid(2000));
    cr_assert_not(sl_ws_close_code_valid(5000));
}

/* One stream scanned whole with permessage-deflate negotiated (RSV1 allowed). */
static struct result
scan_rsv1(const uint8_t *buf, size_t n, bool allow_rsv1)
{
    struct sl_wsscan s;
    struct sl_wsscan_error err = {0};
    size_t ok;
    sl_wsscan_init(&s, 1 << 20, true);
    s.allow_rsv1 = allow_rsv1;
    struct result r = {sl_wsscan_feed(&s, buf, n, &ok, &err), 0, ok};
    r.code = r.rc ? err.code : 0;
    return r;
}

Test(wsscan, rsv1_marks_a_compressed_message_only_when_negotiated)
{
    uint8_t buf[128];
    /* Compressed text is not UTF-8 on the wire: its bytes are checked once decompressed. */
    const uint8_t deflated[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    size_t n = frame(buf, 0xC1, deflated, sizeof(deflated), true);
    cr_assert_eq(scan_rsv1(buf, n, true).rc, 0);
    struct result r = scan_rsv1(buf, n, false);
    cr_assert_eq(r.code, 1002, "RSV1 without the extension");

    /* Fragmented: RSV1 on the first frame only; the continuation carries compressed bytes. */
    n = frame(buf, 0x41, deflated, 3, true);
    n += frame(buf + n, 0x80, deflated + 3, sizeof(deflated) - 3, true);
    cr_assert_eq(scan_rsv1(buf, n, true).rc, 0);
    /* Binary too. */
    n = frame(buf, 0xC2, deflated, sizeof(deflated), true);
    cr_assert_eq(scan_rsv1(buf, n, true).rc, 0);
}

Test(wsscan, rsv1_refused_on_continuation_and_control_frames_and_rsv2_rsv3_always)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0x01, "ab", 2, true);
    n += frame(buf + n, 0xC0, "cd", 2, true); /* RSV1 on the final continuation */
    cr_assert_eq(scan_rsv1(buf, n, true).code, 1002);
    n = frame(buf, 0xC9, "", 0, true); /* ping with RSV1 */
    cr_assert_eq(scan_rsv1(buf, n, true).code, 1002);
    n = frame(buf, 0xC8, "\x03\xe8", 2, true); /* close with RSV1 */
    cr_assert_eq(scan_rsv1(buf, n, true).code, 1002);
    n = frame(buf, 0xA1, "ab", 2, true); /* RSV2 */
    cr_assert_eq(scan_rsv1(buf, n, true).code, 1002);
    n = frame(buf, 0x91, "ab", 2, true); /* RSV3 */
    cr_assert_eq(scan_rsv1(buf, n, true).code, 1002);
    /* An uncompressed message on a compressed connection is still checked for UTF-8. */
    n = frame(buf, 0x81, "\xff", 1, true);
    cr_assert_eq(scan_rsv1(buf, n, true).code, 1007);
}

/* A message of n frames of `each` payload bytes (text 'a'), the last one final. */
static size_t
fragmented_by(uint8_t *buf, int n, size_t each)
{
    static uint8_t payload[256];
    memset(payload, 'a', sizeof(payload));
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += frame(buf + len, (uint8_t)((i == 0 ? 0x01 : 0x00) | (i == n - 1 ? 0x80 : 0)),
                     payload, each, true);
    return len;
}

Test(wsscan, small_frames_of_a_large_message_pass_the_fragment_cap)
{
    /* Autobahn 9.3.1 sends 4 MiB in 64-byte frames: 65,536 of them. Every 64 bytes of the
     * message earn one more frame beyond the 1024. */
    static uint8_t buf[4000 * (64 + 6)];
    struct sl_wsscan s;
    struct sl_wsscan_error err;
    size_t ok;
    size_t n = fragmented_by(buf, 4000, 64);
    sl_wsscan_init(&s, 1 << 20, false);
    cr_assert_eq(sl_wsscan_feed(&s, buf, n, &ok, &err), 0, "%s", err.reason);
    cr_assert(sl_wsscan_idle(&s));

    /* Frames of 32 bytes earn half as many: 4000 is past 1024 + 4000 * 32 / 64. */
    n = fragmented_by(buf, 4000, 32);
    sl_wsscan_init(&s, 1 << 20, false);
    cr_assert_eq(sl_wsscan_feed(&s, buf, n, &ok, &err), -1);
    cr_assert_eq(err.code, 1008);
    /* The offending frame: f frames > 1024 + f * 32 / 64 first at f = 2049. */
    cr_assert_eq(ok, (size_t)2048 * (32 + 6));
}
