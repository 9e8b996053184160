/*
 * Unit tests for src/net/siocodec.c: Socket.IO v5 packets (the official test suite's
 * packets among them), the JSON scanner (against jansson), strings, members, writing.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "net/siocodec.h"

#define S(lit) lit, sizeof(lit) - 1

static bool
slice_is(struct sl_slice s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static int
dec(const char *s, struct sl_sio_packet *p)
{
    return sl_sio_decode(s, strlen(s), 10, p);
}

Test(siocodec, connect)
{
    struct sl_sio_packet p;
    cr_assert_eq(dec("0", &p), 0);
    cr_assert_eq(p.type, SL_SIO_CONNECT);
    cr_assert(slice_is(p.nsp, "/"));
    cr_assert_eq(p.data.len, 0);
    cr_assert_eq(p.id, -1);

    cr_assert_eq(dec("0{\"token\":\"123\"}", &p), 0);
    cr_assert(slice_is(p.data, "{\"token\":\"123\"}"));
    cr_assert_eq(dec("0/custom,", &p), 0);
    cr_assert(slice_is(p.nsp, "/custom"));
    cr_assert_eq(p.data.len, 0);
    cr_assert_eq(dec("0/custom,{\"token\":\"abc\"}", &p), 0);
    cr_assert(slice_is(p.nsp, "/custom"));
    cr_assert(slice_is(p.data, "{\"token\":\"abc\"}"));
    /* The namespace may end the packet without a comma (the test suite's "40/random"). */
    cr_assert_eq(dec("0/random", &p), 0);
    cr_assert(slice_is(p.nsp, "/random"));

    cr_assert_eq(dec("0\"str\"", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("0[1]", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("0{\"a\":}", &p), SL_SIO_EJSON);
}

Test(siocodec, disconnect_and_connect_error)
{
    struct sl_sio_packet p;
    cr_assert_eq(dec("1", &p), 0);
    cr_assert_eq(p.type, SL_SIO_DISCONNECT);
    cr_assert_eq(dec("1/custom", &p), 0);
    cr_assert(slice_is(p.nsp, "/custom"));
    cr_assert_eq(dec("1/custom,", &p), 0);
    cr_assert_eq(dec("1{}", &p), SL_SIO_EPAYLOAD);

    cr_assert_eq(dec("4{\"message\":\"no\"}", &p), 0);
    cr_assert_eq(p.type, SL_SIO_CONNECT_ERROR);
    cr_assert_eq(dec("4/x,\"no\"", &p), 0);
    cr_assert_eq(dec("4[1]", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("4", &p), SL_SIO_EPAYLOAD);
}

Test(siocodec, events)
{
    struct sl_sio_packet p;
    cr_assert_eq(dec("2[\"message\",1,\"2\",{\"3\":[true]}]", &p), 0);
    cr_assert_eq(p.type, SL_SIO_EVENT);
    cr_assert(slice_is(p.name, "\"message\""));
    cr_assert(slice_is(p.args, "1,\"2\",{\"3\":[true]}"));
    cr_assert_eq(p.id, -1);

    cr_assert_eq(dec("2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", &p), 0);
    cr_assert_eq(p.id, 456);
    cr_assert(slice_is(p.args, "1,\"2\",{\"3\":[false]}"));

    cr_assert_eq(dec("2/custom,7[\"a\"]", &p), 0);
    cr_assert(slice_is(p.nsp, "/custom"));
    cr_assert_eq(p.id, 7);
    cr_assert(slice_is(p.name, "\"a\""));
    cr_assert_eq(p.args.len, 0);

    /* Whitespace around elements is JSON's business; the slices skip it at the ends. */
    cr_assert_eq(dec("2 [ \"a\" , 1 , [2] ] ", &p), 0);
    cr_assert(slice_is(p.name, "\"a\""));
    cr_assert(slice_is(p.args, "1 , [2]"));

    /* A number may name an event (socket.io-parser allows it). */
    cr_assert_eq(dec("2[12,true]", &p), 0);
    cr_assert(slice_is(p.name, "12"));
}

Test(siocodec, malformed_events)
{
    struct sl_sio_packet p;
    /* The official suite's three invalid formats. */
    cr_assert_eq(dec("abc", &p), SL_SIO_ETYPE);
    cr_assert_eq(dec("2{}", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("2abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", &p), SL_SIO_EJSON);

    cr_assert_eq(dec("", &p), SL_SIO_EEMPTY);
    cr_assert_eq(dec("7", &p), SL_SIO_ETYPE);
    cr_assert_eq(dec("2", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("2/chat,", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("2[]", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("2[null]", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("2[{\"a\":1}]", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("2[\"a\"", &p), SL_SIO_EJSON);
    cr_assert_eq(dec("2[\"a\"]x", &p), SL_SIO_EJSON);
    cr_assert_eq(dec("2[\"a\",]", &p), SL_SIO_EJSON);
    cr_assert_eq(dec("2\"a\"", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("2[\"connect\"]", &p), SL_SIO_ERESERVED);
    cr_assert_eq(dec("2[\"disconnect\",1]", &p), SL_SIO_ERESERVED);
    cr_assert_eq(dec("2[\"newListener\"]", &p), SL_SIO_ERESERVED);
    /* Escaped, it is still the reserved name. */
    cr_assert_eq(dec("2[\"\\u0063onnect\"]", &p), SL_SIO_ERESERVED);
    cr_assert_eq(dec("2[\"connected\"]", &p), 0);
    cr_assert_eq(dec("2[\"a\xff\"]", &p), SL_SIO_EUTF8);
}

Test(siocodec, acks)
{
    struct sl_sio_packet p;
    cr_assert_eq(dec("3456[1,\"2\",{\"3\":[false]}]", &p), 0);
    cr_assert_eq(p.type, SL_SIO_ACK);
    cr_assert_eq(p.id, 456);
    cr_assert(slice_is(p.args, "1,\"2\",{\"3\":[false]}"));
    cr_assert_eq(dec("31[]", &p), 0);
    cr_assert_eq(p.args.len, 0);
    cr_assert_eq(dec("31[\"x\"]", &p), 0);
    cr_assert(slice_is(p.args, "\"x\""));
    cr_assert_eq(dec("3/nsp,0[null]", &p), 0);
    cr_assert_eq(p.id, 0);
    cr_assert(slice_is(p.args, "null"));

    cr_assert_eq(dec("3[1]", &p), SL_SIO_EACKID);
    cr_assert_eq(dec("31", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("31{}", &p), SL_SIO_EPAYLOAD);
    cr_assert_eq(dec("31234567890123456[1]", &p), SL_SIO_EACKID);
    cr_assert_eq(dec("3123456789012345[1]", &p), 0);
    cr_assert_eq(p.id, 123456789012345);
}

Test(siocodec, binary_packets)
{
    struct sl_sio_packet p;
    cr_assert_eq(
        dec("52-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
            &p),
        0);
    cr_assert_eq(p.type, SL_SIO_BINARY_EVENT);
    cr_assert_eq(p.attachments, 2);
    cr_assert_eq(p.placeholders, 2);
    cr_assert(slice_is(p.name, "\"message\""));
    cr_assert(
        slice_is(p.args, "{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}"));

    cr_assert_eq(dec("52-789[\"message-with-ack\",{\"_placeholder\":true,\"num\":0},"
                     "{\"_placeholder\":true,\"num\":1}]",
                     &p),
                 0);
    cr_assert_eq(p.id, 789);

    cr_assert_eq(
        dec("62-789[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", &p), 0);
    cr_assert_eq(p.type, SL_SIO_BINARY_ACK);
    cr_assert_eq(p.placeholders, 2);

    /* Placeholders nested anywhere, members in any order, escaped keys. */
    cr_assert_eq(
        dec("51-/up,[\"f\",{\"a\":[{\"num\":0,\"_placeholder\":true}]},{\"\\u005fplaceholder\":"
            "true,\"num\":0}]",
            &p),
        0);
    cr_assert_eq(p.placeholders, 2);
    cr_assert(slice_is(p.nsp, "/up"));
    /* Not a placeholder unless _placeholder is true. */
    cr_assert_eq(dec("51-[\"f\",{\"_placeholder\":false,\"num\":9}]", &p), 0);
    cr_assert_eq(p.placeholders, 0);
    cr_assert_eq(dec("50-[\"f\"]", &p), 0);
    cr_assert_eq(p.attachments, 0);

    cr_assert_eq(dec("51-[\"f\",{\"_placeholder\":true,\"num\":1}]", &p), SL_SIO_EPLACEHOLDER);
    cr_assert_eq(dec("51-[\"f\",{\"_placeholder\":true}]", &p), SL_SIO_EPLACEHOLDER);
    cr_assert_eq(dec("51-[\"f\",{\"_placeholder\":true,\"num\":\"0\"}]", &p), SL_SIO_EPLACEHOLDER);
    cr_assert_eq(dec("51-[\"f\",{\"_placeholder\":true,\"num\":-1}]", &p), SL_SIO_EPLACEHOLDER);
    cr_assert_eq(dec("51-[\"f\",{\"_placeholder\":true,\"num\":0.5}]", &p), SL_SIO_EPLACEHOLDER);
    /* In a plain EVENT a placeholder-looking object is only data. */
    cr_assert_eq(dec("2[\"f\",{\"_placeholder\":true,\"num\":5}]", &p), 0);

    cr_assert_eq(dec("5-[\"f\"]", &p), SL_SIO_EATTACH);
    cr_assert_eq(dec("5x-[\"f\"]", &p), SL_SIO_EATTACH);
    cr_assert_eq(dec("51[\"f\"]", &p), SL_SIO_EATTACH);
    cr_assert_eq(dec("5", &p), SL_SIO_EATTACH);
    cr_assert_eq(dec("511-[\"f\"]", &p), SL_SIO_ETOOMANY);
    cr_assert_eq(dec("599999999999-[\"f\"]", &p), SL_SIO_EATTACH);
    cr_assert_eq(sl_sio_decode(S("53-[\"f\"]"), 2, &p), SL_SIO_ETOOMANY);
    cr_assert_eq(sl_sio_decode(S("52-[\"f\"]"), 2, &p), 0);
}

Test(siocodec, limits)
{
    struct sl_sio_packet p;
    char buf[1024];
    buf[0] = '0';
    buf[1] = '/';
    memset(buf + 2, 'n', SL_SIO_MAX_NSP - 1);
    buf[SL_SIO_MAX_NSP + 1] = '\0';
    cr_assert_eq(dec(buf, &p), 0);
    cr_assert_eq(p.nsp.len, SL_SIO_MAX_NSP);
    buf[SL_SIO_MAX_NSP + 1] = 'n';
    buf[SL_SIO_MAX_NSP + 2] = '\0';
    cr_assert_eq(dec(buf, &p), SL_SIO_ENSP);

    /* Nesting: the limit itself passes, one more fails. */
    size_t o = 0;
    o += (size_t)snprintf(buf, sizeof(buf), "2[\"a\",");
    for (int i = 1; i < SL_SIO_MAX_DEPTH; i++)
        buf[o++] = '[';
    for (int i = 1; i < SL_SIO_MAX_DEPTH; i++)
        buf[o++] = ']';
    buf[o++] = ']';
    buf[o] = '\0';
    cr_assert_eq(dec(buf, &p), 0);
    o = (size_t)snprintf(buf, sizeof(buf), "2[\"a\",");
    for (int i = 0; i < SL_SIO_MAX_DEPTH; i++)
        buf[o++] = '{', buf[o++] = '"', buf[o++] = 'k', buf[o++] = '"', buf[o++] = ':';
    buf[o++] = '1';
    for (int i = 0; i < SL_SIO_MAX_DEPTH; i++)
        buf[o++] = '}';
    buf[o++] = ']';
    buf[o] = '\0';
    cr_assert_eq(dec(buf, &p), SL_SIO_EDEPTH);
    for (int e = SL_SIO_EEMPTY; e >= SL_SIO_EUTF8; e--)
        cr_assert_str_neq(sl_sio_strerror(e), "invalid Socket.IO packet");
}

/* The scanner agrees with jansson on these (jansson is stricter only on what is listed in
 * fuzz_siocodec.c: huge numbers and lone surrogates). */
Test(siocodec, json_validity_matches_jansson)
{
    static const char *const cases[] = {
        "1",
        "-0",
        "0.5",
        "1e5",
        "1E+5",
        "-1.5e-3",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "1e+",
        "+1",
        "\"\"",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"\\x\"",
        "\"\t\"",
        "\"\\u12\"",
        "\"abc",
        "\"\xc3\xa9\"",
        "true",
        "false",
        "null",
        "tru",
        "nul",
        "True",
        "[]",
        "[1,2]",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{}",
        "{\"a\":1}",
        "{\"a\"}",
        "{\"a\":1,}",
        "{,}",
        "{1:2}",
        " [1] ",
        "[1] x",
        "\n{\"a\" : [ true , null ] }\r\n",
        "",
        " ",
        "[[[]]]",
        "[[[]]",
        "{\"a\":{}}",
        "\"\\/\"",
        "\"\\ud83d\\ude00\"",
        "1 2",
        "[\"\\u0000\"]",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *c = cases[i];
        json_error_t err;
        json_t *j = json_loadb(c, strlen(c), JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        bool theirs = j != NULL;
        json_decref(j);
        cr_assert_eq(sl_sio_json_valid(c, strlen(c)), theirs, "case %s", c);
    }
    /* JavaScript's JSON.parse takes a lone surrogate escape; so does the scanner. */
    cr_assert(sl_sio_json_valid(S("\"\\ud800\"")));
}

Test(siocodec, strings)
{
    char out[64];
    cr_assert_eq(sl_sio_string(SL_SLICE("\"message\""), out, sizeof(out)), 7);
    cr_assert_str_eq(out, "message");
    cr_assert_eq(sl_sio_string(SL_SLICE("\"a\\\"b\\\\c\\/d\\n\\t\""), out, sizeof(out)), 9);
    cr_assert_str_eq(out, "a\"b\\c/d\n\t");
    cr_assert_eq(sl_sio_string(SL_SLICE("\"\\u00e9\""), out, sizeof(out)), 2);
    cr_assert_str_eq(out, "\xc3\xa9");
    cr_assert_eq(sl_sio_string(SL_SLICE("\"\\ud83d\\ude00\""), out, sizeof(out)), 4);
    cr_assert_str_eq(out, "\xf0\x9f\x98\x80");
    cr_assert_eq(sl_sio_string(SL_SLICE("\"\\ud83d\""), out, sizeof(out)), 3);
    cr_assert_str_eq(out, "\xef\xbf\xbd");
    cr_assert_eq(sl_sio_string(SL_SLICE("\"a\\u0000b\""), out, sizeof(out)), 3);
    cr_assert_eq(sl_sio_string(SL_SLICE("-12.5"), out, sizeof(out)), 5);
    cr_assert_str_eq(out, "-12.5");
    cr_assert_eq(sl_sio_string(SL_SLICE("\"abcdef\""), out, 6), -1);
    cr_assert_eq(sl_sio_string(SL_SLICE("\"abcde\""), out, 6), 5);
    cr_assert_eq(sl_sio_string(SL_SLICE("true"), out, sizeof(out)), -1);
    cr_assert_eq(sl_sio_string(SL_SLICE(""), out, sizeof(out)), -1);
}

Test(siocodec, members)
{
    char out[32];
    struct sl_slice auth = SL_SLICE("{\"token\":\"t\",\"pid\":\"p1\",\"offset\":\"12-0\"}");
    cr_assert_eq(sl_sio_member_string(auth, "pid", out, sizeof(out)), 2);
    cr_assert_str_eq(out, "p1");
    cr_assert_eq(sl_sio_member_string(auth, "offset", out, sizeof(out)), 4);
    cr_assert_str_eq(out, "12-0");
    cr_assert_eq(sl_sio_member_string(auth, "nope", out, sizeof(out)), -1);
    cr_assert_eq(sl_sio_member_string(SL_SLICE("{\"pid\":1}"), "pid", out, sizeof(out)), -1);
    cr_assert_eq(sl_sio_member_string(SL_SLICE("{\"a\":{\"pid\":\"x\"}}"), "pid", out, 32), -1);
    cr_assert_eq(sl_sio_member_string(SL_SLICE("{\"pid\":\"a\",\"pid\":\"b\"}"), "pid", out, 32),
                 1);
    cr_assert_str_eq(out, "b");
    cr_assert_eq(sl_sio_member_string(SL_SLICE("{}"), "pid", out, sizeof(out)), -1);
    cr_assert_eq(
        sl_sio_member_string(SL_SLICE("{\"pid\":\"toolongforthebuffer_0123456789abcdef\"}"), "pid",
                             out, sizeof(out)),
        -1);
}

Test(siocodec, writing_reads_back)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_sio_write_head(&b, SL_SIO_CONNECT, SL_SLICE("/"), 0, -1);
    sl_buf_append_str(&b, "{\"sid\":\"x\"}");
    cr_assert_str_eq(sl_buf_cstr(&b), "0{\"sid\":\"x\"}");

    sl_buf_clear(&b);
    sl_sio_write_head(&b, SL_SIO_EVENT, SL_SLICE("/custom"), 0, -1);
    sl_sio_write_event_data(&b, S("auth"), SL_SLICE("{}"), sl_slice_make(NULL, 0));
    cr_assert_str_eq(sl_buf_cstr(&b), "2/custom,[\"auth\",{}]");

    sl_buf_clear(&b);
    sl_sio_write_head(&b, SL_SIO_EVENT, SL_SLICE("/"), 0, 5);
    sl_sio_write_event_data(&b, S("a\"b"), sl_slice_make("", 0), SL_SLICE("17-3"));
    cr_assert_str_eq(sl_buf_cstr(&b), "25[\"a\\\"b\",\"17-3\"]");
    struct sl_sio_packet p;
    cr_assert_eq(sl_sio_decode(sl_buf_ptr(&b), sl_buf_len(&b), 10, &p), 0);
    cr_assert_eq(p.id, 5);
    cr_assert(slice_is(p.args, "\"17-3\""));

    sl_buf_clear(&b);
    sl_sio_write_head(&b, SL_SIO_BINARY_ACK, SL_SLICE("/n"), 2, 789);
    sl_sio_write_ack_data(&b, SL_SLICE("{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,"
                                       "\"num\":1}"));
    cr_assert_str_eq(sl_buf_cstr(&b), "62-/n,789[{\"_placeholder\":true,\"num\":0},"
                                      "{\"_placeholder\":true,\"num\":1}]");
    cr_assert_eq(sl_sio_decode(sl_buf_ptr(&b), sl_buf_len(&b), 10, &p), 0);
    cr_assert_eq(p.placeholders, 2);

    sl_buf_clear(&b);
    sl_sio_write_head(&b, SL_SIO_CONNECT_ERROR, SL_SLICE("/random"), 0, -1);
    sl_buf_append_str(&b, "{\"message\":\"Invalid namespace\"}");
    cr_assert_str_eq(sl_buf_cstr(&b), "4/random,{\"message\":\"Invalid namespace\"}");
    sl_buf_free(&b);
}
