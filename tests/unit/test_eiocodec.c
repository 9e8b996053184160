/* Unit tests for src/net/eiocodec.c: Engine.IO v4 packets, payloads, base64, writing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "net/eiocodec.h"

#define S(lit) lit, sizeof(lit) - 1

static bool
slice_is(struct sl_slice s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

Test(eiocodec, text_packets)
{
    struct sl_eio_packet pkt;
    cr_assert_eq(sl_eio_decode_text(S("4hello"), &pkt), 0);
    cr_assert_eq(pkt.type, SL_EIO_MESSAGE);
    cr_assert(!pkt.binary);
    cr_assert(slice_is(pkt.data, "hello"));

    cr_assert_eq(sl_eio_decode_text(S("2probe"), &pkt), 0);
    cr_assert_eq(pkt.type, SL_EIO_PING);
    cr_assert(slice_is(pkt.data, "probe"));

    for (char t = '0'; t <= '6'; t++) {
        char one[1] = {t};
        cr_assert_eq(sl_eio_decode_text(one, 1, &pkt), 0);
        cr_assert_eq((int)pkt.type, t - '0');
        cr_assert_eq(pkt.data.len, 0);
    }
}

Test(eiocodec, bad_text_packets)
{
    struct sl_eio_packet pkt;
    cr_assert_eq(sl_eio_decode_text("", 0, &pkt), SL_EIO_EEMPTY);
    cr_assert_eq(sl_eio_decode_text(S("abc"), &pkt), SL_EIO_ETYPE);
    cr_assert_eq(sl_eio_decode_text(S("7"), &pkt), SL_EIO_ETYPE);
    cr_assert_eq(sl_eio_decode_text(S("/4"), &pkt), SL_EIO_ETYPE);
    /* v4 sends binary in binary frames: "b" in a text frame is not a packet. */
    cr_assert_eq(sl_eio_decode_text(S("bAQID"), &pkt), SL_EIO_ETYPE);
    cr_assert_str_neq(sl_eio_strerror(SL_EIO_ETYPE), sl_eio_strerror(SL_EIO_EEMPTY));
}

/* Decodes a whole payload into "T:data" lines (binary data base64-decoded, as hex); returns
 * the final code. */
static int
payload(const char *p, size_t n, char *out, size_t outlen)
{
    struct sl_eio_payload it;
    struct sl_eio_packet pkt;
    int rc;
    out[0] = '\0';
    sl_eio_payload_init(&it, p, n);
    while ((rc = sl_eio_payload_next(&it, &pkt)) > 0) {
        char line[256];
        if (pkt.binary) {
            uint8_t bin[128];
            long k = sl_eio_base64_decode(bin, pkt.data.ptr, pkt.data.len);
            cr_assert_geq(k, 0);
            int o = snprintf(line, sizeof(line), "b:");
            for (long i = 0; i < k; i++)
                o += snprintf(line + o, sizeof(line) - (size_t)o, "%02x", bin[i]);
            snprintf(line + o, sizeof(line) - (size_t)o, "|");
        } else {
            snprintf(line, sizeof(line), "%d:%.*s|", (int)pkt.type, (int)pkt.data.len,
                     pkt.data.ptr);
        }
        strncat(out, line, outlen - strlen(out) - 1);
    }
    /* Once done, it stays done. */
    cr_assert_eq(sl_eio_payload_next(&it, &pkt), 0);
    return rc;
}

Test(eiocodec, payloads)
{
    char got[512];
    cr_assert_eq(payload(S("4hello"), got, sizeof(got)), 0);
    cr_assert_str_eq(got, "4:hello|");
    cr_assert_eq(payload(S("4test1\x1e"
                           "4test2\x1e"
                           "4test3"),
                         got, sizeof(got)),
                 0);
    cr_assert_str_eq(got, "4:test1|4:test2|4:test3|");
    cr_assert_eq(payload(S("4hello\x1e"
                           "bAQIDBA=="),
                         got, sizeof(got)),
                 0);
    cr_assert_str_eq(got, "4:hello|b:01020304|");
    cr_assert_eq(payload(S("3\x1e"
                           "2\x1e"
                           "1"),
                         got, sizeof(got)),
                 0);
    cr_assert_str_eq(got, "3:|2:|1:|");
    /* An empty binary message. */
    cr_assert_eq(payload(S("b"), got, sizeof(got)), 0);
    cr_assert_str_eq(got, "b:|");
    /* Text may hold any UTF-8. */
    cr_assert_eq(payload(S("4\xc3\xa9t\xc3\xa9"), got, sizeof(got)), 0);
    cr_assert_str_eq(got, "4:\xc3\xa9t\xc3\xa9|");
}

Test(eiocodec, bad_payloads_stop_at_the_bad_packet)
{
    char got[512];
    cr_assert_eq(payload("", 0, got, sizeof(got)), SL_EIO_EEMPTY);
    cr_assert_str_eq(got, "");
    cr_assert_eq(payload(S("abc"), got, sizeof(got)), SL_EIO_ETYPE);
    cr_assert_eq(payload(S("4a\x1e\x1e"
                           "4b"),
                         got, sizeof(got)),
                 SL_EIO_EEMPTY);
    cr_assert_str_eq(got, "4:a|");
    cr_assert_eq(payload(S("4a\x1e"), got, sizeof(got)), SL_EIO_EEMPTY);
    cr_assert_str_eq(got, "4:a|");
    cr_assert_eq(payload(S("4ok\x1ezz\x1e"
                           "4never"),
                         got, sizeof(got)),
                 SL_EIO_ETYPE);
    cr_assert_str_eq(got, "4:ok|");
    cr_assert_eq(payload(S("4ok\x1e"
                           "b!!!!"),
                         got, sizeof(got)),
                 SL_EIO_EBASE64);
    cr_assert_str_eq(got, "4:ok|");
    cr_assert_eq(payload(S("bA"), got, sizeof(got)), SL_EIO_EBASE64);
    /* Invalid UTF-8 anywhere fails the body before any packet is handed out. */
    cr_assert_eq(payload(S("4fine\x1e"
                           "4\xff"),
                         got, sizeof(got)),
                 SL_EIO_EUTF8);
    cr_assert_str_eq(got, "");
}

Test(eiocodec, base64_round_trips)
{
    uint8_t in[64], out[64 + 3];
    char enc[128];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t k = sl_base64_encode(enc, in, n);
        cr_assert_leq(n, sl_eio_base64_max(k));
        cr_assert_eq(sl_eio_base64_decode(out, enc, k), (long)n, "n=%zu", n);
        cr_assert(memcmp(in, out, n) == 0);
        /* Without padding, too. */
        size_t unpadded = k;
        while (unpadded > 0 && enc[unpadded - 1] == '=')
            unpadded--;
        cr_assert_eq(sl_eio_base64_decode(out, enc, unpadded), (long)n);
        cr_assert(memcmp(in, out, n) == 0);
    }
}

Test(eiocodec, base64_variants_and_errors)
{
    uint8_t out[16];
    /* The URL-safe alphabet decodes to the same bytes as the standard one. */
    cr_assert_eq(sl_eio_base64_decode(out, S("-_-_")), 3);
    uint8_t std[16];
    cr_assert_eq(sl_eio_base64_decode(std, S("+/+/")), 3);
    cr_assert(memcmp(out, std, 3) == 0);
    cr_assert_eq(sl_eio_base64_decode(out, S("A")), -1);
    cr_assert_eq(sl_eio_base64_decode(out, S("AAAAA")), -1);
    cr_assert_eq(sl_eio_base64_decode(out, S("A===")), -1);
    cr_assert_eq(sl_eio_base64_decode(out, S("AA=")), -1);
    cr_assert_eq(sl_eio_base64_decode(out, S("AB=C")), -1);
    cr_assert_eq(sl_eio_base64_decode(out, S("AB C")), -1);
    cr_assert_eq(sl_eio_base64_decode(out, S("AQID\n")), -1);
    cr_assert_eq(sl_eio_base64_decode(out, "", 0), 0);
}

Test(eiocodec, writing)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_eio_write_text(&b, SL_EIO_MESSAGE, S("hi"));
    sl_buf_append_byte(&b, SL_EIO_SEP);
    sl_eio_write_text(&b, SL_EIO_PING, NULL, 0);
    sl_buf_append_byte(&b, SL_EIO_SEP);
    const uint8_t bin[] = {1, 2, 3, 4};
    sl_eio_write_base64(&b, bin, sizeof(bin));
    cr_assert_str_eq(sl_buf_cstr(&b), "4hi\x1e"
                                      "2\x1e"
                                      "bAQIDBA==");
    /* What is written reads back. */
    char got[256];
    cr_assert_eq(payload(sl_buf_ptr(&b), sl_buf_len(&b), got, sizeof(got)), 0);
    cr_assert_str_eq(got, "4:hi|2:|b:01020304|");

    sl_buf_clear(&b);
    sl_eio_write_open(&b, "Ab0_x", true, 300, 200, 1000000);
    cr_assert_str_eq(sl_buf_cstr(&b), "0{\"sid\":\"Ab0_x\",\"upgrades\":[\"websocket\"],"
                                      "\"pingInterval\":300,\"pingTimeout\":200,"
                                      "\"maxPayload\":1000000}");
    sl_buf_clear(&b);
    sl_eio_write_open(&b, "s", false, 25000, 20000, 5);
    cr_assert_str_eq(sl_buf_cstr(&b), "0{\"sid\":\"s\",\"upgrades\":[],\"pingInterval\":25000,"
                                      "\"pingTimeout\":20000,\"maxPayload\":5}");
    sl_buf_free(&b);
}
