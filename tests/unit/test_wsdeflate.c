/*
 * Unit tests for permessage-deflate: the negotiation of RFC 7692 offers (net/wshandshake.c)
 * and the per-connection zlib streams (net/wsdeflate.c), checked against zlib itself.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/buf.h"
#include "net/wsdeflate.h"
#include "net/wshandshake.h"

static const struct sl_ws_deflate_policy policy = {
    .enabled = true, .window_bits = 11, .context_takeover = true, .level = 6, .mem_level = 4};

/* Negotiates one header value; returns the response line ("" when declined). */
static const char *
answer(const char *offer, const struct sl_ws_deflate_policy *pol, struct sl_ws_deflate_params *p)
{
    static char out[SL_WS_DEFLATE_RESPONSE_MAX];
    struct sl_ws_deflate_params tmp;
    if (p == NULL)
        p = &tmp;
    memset(p, 0, sizeof(*p));
    if (!sl_ws_deflate_negotiate(sl_slice_make(offer, strlen(offer)), pol, p))
        return "";
    sl_ws_deflate_response(p, out);
    return out;
}

#define LINE(params) "Sec-WebSocket-Extensions: permessage-deflate" params "\r\n"

Test(wsdeflate_negotiate, a_plain_offer_is_accepted_with_client_no_context_takeover)
{
    struct sl_ws_deflate_params p;
    cr_assert_str_eq(answer("permessage-deflate", &policy, &p),
                     LINE("; client_no_context_takeover"));
    cr_assert(p.on);
    cr_assert_not(p.server_no_context_takeover);
    cr_assert_eq(p.server_window_bits, 11, "the policy's window when the client sets none");
    /* What browsers and the ws package send. */
    cr_assert_str_eq(answer("permessage-deflate; client_max_window_bits", &policy, &p),
                     LINE("; client_no_context_takeover"));
    cr_assert_str_eq(answer("PerMessage-Deflate ;  Client_Max_Window_Bits = 12 ", &policy, &p),
                     LINE("; client_no_context_takeover"));
}

Test(wsdeflate_negotiate, server_parameters_are_honoured)
{
    struct sl_ws_deflate_params p;
    cr_assert_str_eq(answer("permessage-deflate; server_no_context_takeover", &policy, &p),
                     LINE("; client_no_context_takeover; server_no_context_takeover"));
    cr_assert(p.server_no_context_takeover);
    cr_assert_str_eq(answer("permessage-deflate; server_max_window_bits=9", &policy, &p),
                     LINE("; client_no_context_takeover; server_max_window_bits=9"));
    cr_assert_eq(p.server_window_bits, 9);
    /* A larger window than the policy's: answered with the policy's (same or smaller). */
    cr_assert_str_eq(answer("permessage-deflate; server_max_window_bits=15", &policy, &p),
                     LINE("; client_no_context_takeover; server_max_window_bits=11"));
    cr_assert_eq(p.server_window_bits, 11);
    cr_assert_str_eq(answer("permessage-deflate; server_max_window_bits=\"10\"; "
                            "client_no_context_takeover; server_no_context_takeover",
                            &policy, &p),
                     LINE("; client_no_context_takeover; server_no_context_takeover; "
                          "server_max_window_bits=10"));
    /* The policy may refuse context takeover on its own. */
    struct sl_ws_deflate_policy nct = policy;
    nct.context_takeover = false;
    cr_assert_str_eq(answer("permessage-deflate", &nct, &p),
                     LINE("; client_no_context_takeover; server_no_context_takeover"));
}

Test(wsdeflate_negotiate, bad_offers_are_declined_and_the_next_one_taken)
{
    static const char *const declined[] = {
        "permessage-deflate; server_max_window_bits=8", /* zlib cannot keep 256 bytes */
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",
        "permessage-deflate; unknown_param",
        "x-webkit-deflate-frame",
        "deflate-frame; server_max_window_bits=10",
        "",
        " , ,",
    };
    for (size_t i = 0; i < sizeof(declined) / sizeof(declined[0]); i++)
        cr_assert_str_eq(answer(declined[i], &policy, NULL), "", "declined: %s", declined[i]);

    /* The client's order is its preference: the first acceptable offer wins. */
    struct sl_ws_deflate_params p;
    cr_assert_str_eq(answer("permessage-deflate; server_max_window_bits=8, "
                            "permessage-deflate; server_max_window_bits=9; foo, "
                            "permessage-deflate; server_no_context_takeover, "
                            "permessage-deflate",
                            &policy, &p),
                     LINE("; client_no_context_takeover; server_no_context_takeover"));
    cr_assert_str_eq(answer("x-webkit-deflate-frame, permessage-deflate", &policy, &p),
                     LINE("; client_no_context_takeover"));
}

Test(wsdeflate_negotiate, malformed_headers_and_a_disabled_policy_negotiate_nothing)
{
    static const char *const malformed[] = {
        "permessage-deflate; server_max_window_bits=\"10",      /* unterminated quote */
        "permessage-deflate; =10",                              /* no parameter name */
        "permessage-deflate;; server_no_context_takeover",      /* empty parameter */
        "permessage-deflate server_no_context_takeover",        /* no separator */
        "permessage-deflate; server_max_window_bits=1 0",       /* two values */
        "permessage-deflate; server_max_window_bits=\"1\x01\"", /* control character */
        "\"permessage-deflate\"",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
        cr_assert_str_eq(answer(malformed[i], &policy, NULL), "", "malformed: %s", malformed[i]);
    struct sl_ws_deflate_policy off = policy;
    off.enabled = false;
    cr_assert_str_eq(answer("permessage-deflate", &off, NULL), "");
    cr_assert_not(sl_ws_deflate_negotiate(sl_slice_make(NULL, 0), &policy, NULL));
}

/* --- the codec ---------------------------------------------------------------------------- */

/* Inflates a sequence of messages as a client keeping context would (RFC 7692 7.2.2). */
struct client_inflater {
    z_stream z;
};

static void
client_init(struct client_inflater *c)
{
    memset(c, 0, sizeof(*c));
    cr_assert_eq(inflateInit2(&c->z, -15), Z_OK);
}

static size_t
client_inflate(struct client_inflater *c, const struct sl_buf *msg, char *out, size_t cap)
{
    struct sl_buf in = SL_BUF_INIT;
    sl_buf_append(&in, sl_buf_ptr(msg), sl_buf_len(msg));
    sl_buf_append(&in, "\x00\x00\xff\xff", 4);
    c->z.next_in = (Bytef *)sl_buf_ptr(&in);
    c->z.avail_in = (uInt)sl_buf_len(&in);
    c->z.next_out = (Bytef *)out;
    c->z.avail_out = (uInt)cap;
    int r = inflate(&c->z, Z_SYNC_FLUSH);
    cr_assert(r == Z_OK || r == Z_BUF_ERROR, "inflate: %d", r);
    cr_assert_eq(c->z.avail_in, 0);
    sl_buf_free(&in);
    return cap - c->z.avail_out;
}

/* A client's compressed message: raw deflate, sync-flushed, its tail taken off. */
static void
client_deflate(const void *msg, size_t len, struct sl_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = compressBound((uLong)len) + 16;
    char *dst = sl_buf_reserve(out, cap);
    z.next_in = (Bytef *)(uintptr_t)msg;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)dst;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    size_t n = cap - z.avail_out;
    cr_assert(n >= 4 && memcmp(dst + n - 4, "\x00\x00\xff\xff", 4) == 0);
    sl_buf_commit(out, n - 4);
    deflateEnd(&z);
}

static struct sl_wsdeflate *
codec(bool server_nct, unsigned bits)
{
    struct sl_ws_deflate_params p = {
        .on = true, .server_no_context_takeover = server_nct, .server_window_bits = (uint8_t)bits};
    return sl_wsdeflate_new(&p, 6, 4);
}

Test(wsdeflate, messages_round_trip_and_context_takeover_shrinks_repeats)
{
    struct sl_wsdeflate *d = codec(false, 11);
    struct client_inflater c;
    client_init(&c);
    const char *token = "{\"type\":\"delta\",\"id\":\"s1\",\"seq\":12,\"text\":\" the\"}";
    size_t sizes[3];
    for (int i = 0; i < 3; i++) {
        struct sl_buf z = SL_BUF_INIT;
        sl_wsdeflate_compress(d, token, strlen(token), &z);
        sizes[i] = sl_buf_len(&z);
        char out[256];
        size_t n = client_inflate(&c, &z, out, sizeof(out));
        cr_assert_eq(n, strlen(token));
        cr_assert(memcmp(out, token, n) == 0);
        sl_buf_free(&z);
    }
    /* The second copy is a back-reference into the first: a few bytes. */
    cr_assert_lt(sizes[1], sizes[0] / 3, "with context: %zu then %zu", sizes[0], sizes[1]);
    cr_assert_gt(sl_wsdeflate_memory(d), 0, "the compressor is kept between messages");
    /* The memory promise of the defaults: 2^13 + 2^13 and zlib's state, under 32 KiB. */
    cr_assert_lt(sl_wsdeflate_memory(d), 32 * 1024, "holds %zu bytes", sl_wsdeflate_memory(d));

    /* An empty message, and one larger than any buffer step. */
    struct sl_buf z = SL_BUF_INIT;
    sl_wsdeflate_compress(d, "", 0, &z);
    char out[1];
    cr_assert_eq(client_inflate(&c, &z, out, sizeof(out)), 0);
    sl_buf_free(&z);
    size_t big = 300000;
    char *rnd = malloc(big), *back = malloc(big + 1);
    srand(7);
    for (size_t i = 0; i < big; i++)
        rnd[i] = (char)(rand() & 0xff);
    sl_wsdeflate_compress(d, rnd, big, &z);
    cr_assert_eq(client_inflate(&c, &z, back, big + 1), big);
    cr_assert(memcmp(rnd, back, big) == 0);
    sl_buf_free(&z);
    free(rnd);
    free(back);
    inflateEnd(&c.z);
    sl_wsdeflate_free(d);
}

Test(wsdeflate, without_context_takeover_each_message_stands_alone_and_nothing_is_kept)
{
    struct sl_wsdeflate *d = codec(true, 9);
    const char *msg = "{\"type\":\"delta\",\"text\":\"again and again and again and again and "
                      "again and again\"}";
    for (int i = 0; i < 2; i++) {
        struct sl_buf z = SL_BUF_INIT;
        cr_assert(sl_wsdeflate_compress(d, msg, strlen(msg), &z));
        cr_assert_lt(sl_buf_len(&z), strlen(msg));
        cr_assert_eq(sl_wsdeflate_memory(d), 0, "the compressor is freed after each message");
        /* A fresh inflater decodes each one: no reference to an earlier message. */
        struct client_inflater c;
        client_init(&c);
        char out[128];
        size_t n = client_inflate(&c, &z, out, sizeof(out));
        cr_assert_eq(n, strlen(msg));
        cr_assert(memcmp(out, msg, n) == 0);
        inflateEnd(&c.z);
        sl_buf_free(&z);
    }
    /* Alone, a short message or one that does not shrink goes uncompressed (RSV1 clear). */
    struct sl_buf z = SL_BUF_INIT;
    sl_buf_append(&z, "kept", 4);
    const char *token = "{\"type\":\"delta\",\"text\":\" the\"}";
    cr_assert_not(sl_wsdeflate_compress(d, token, strlen(token), &z));
    char rnd[200];
    for (size_t i = 0; i < sizeof(rnd); i++)
        rnd[i] = (char)((i * 2654435761u) >> 13);
    cr_assert_not(sl_wsdeflate_compress(d, rnd, sizeof(rnd), &z));
    cr_assert_eq(sl_buf_len(&z), 4, "out is left as it was");
    cr_assert_eq(sl_wsdeflate_memory(d), 0);
    sl_buf_free(&z);
    sl_wsdeflate_free(d);
    /* With context takeover every message is compressed, the shortest too. */
    d = codec(false, 11);
    cr_assert(sl_wsdeflate_compress(d, token, strlen(token), &z));
    cr_assert(sl_wsdeflate_compress(d, rnd, sizeof(rnd), &z));
    sl_buf_free(&z);
    sl_wsdeflate_free(d);
}

Test(wsdeflate, client_messages_decompress_under_the_limit)
{
    struct sl_wsdeflate *d = codec(false, 11);
    const char *msg = "{\"type\":\"chat\",\"text\":\"hello hello hello hello\"}";
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    client_deflate(msg, strlen(msg), &z);
    const char *why = NULL;
    cr_assert_eq(sl_wsdeflate_decompress(d, sl_buf_ptr(&z), sl_buf_len(&z), 1024, &out, &why), 0);
    cr_assert_eq(sl_buf_len(&out), strlen(msg));
    cr_assert(memcmp(sl_buf_ptr(&out), msg, strlen(msg)) == 0);
    cr_assert_eq(sl_wsdeflate_memory(d), 0, "the decompressor lives for one message only");
    /* Exactly at the limit is allowed. */
    sl_buf_clear(&out);
    cr_assert_eq(
        sl_wsdeflate_decompress(d, sl_buf_ptr(&z), sl_buf_len(&z), strlen(msg), &out, &why), 0);
    sl_buf_free(&out);
    sl_buf_free(&z);
    sl_wsdeflate_free(d);
}

Test(wsdeflate, a_zip_bomb_is_refused_with_1009_without_inflating_it_all)
{
    struct sl_wsdeflate *d = codec(false, 11);
    size_t n = 64 << 20; /* 64 MiB of zeros: about 64 KiB compressed */
    char *zeros = calloc(1, n);
    struct sl_buf z = SL_BUF_INIT, out = SL_BUF_INIT;
    client_deflate(zeros, n, &z);
    free(zeros);
    cr_assert_lt(sl_buf_len(&z), 100 * 1024);
    const char *why = NULL;
    uint64_t max = 1 << 20;
    int code = sl_wsdeflate_decompress(d, sl_buf_ptr(&z), sl_buf_len(&z), max, &out, &why);
    cr_assert_eq(code, 1009);
    cr_assert_str_eq(why, "message too big once decompressed");
    cr_assert_eq(sl_buf_len(&out), 0, "nothing is handed on");
    cr_assert_leq(out.cap, 2 * max + 8192, "buffer grew to %zu for a %llu limit", out.cap,
                  (unsigned long long)max);
    cr_assert_eq(sl_wsdeflate_memory(d), 0);
    sl_buf_free(&out);
    sl_buf_free(&z);
    sl_wsdeflate_free(d);
}

Test(wsdeflate, garbage_and_trailing_data_are_1007)
{
    struct sl_wsdeflate *d = codec(false, 11);
    struct sl_buf out = SL_BUF_INIT;
    const char *why = NULL;
    /* BTYPE 11 is reserved: not a deflate stream. */
    cr_assert_eq(sl_wsdeflate_decompress(d, "\xff\xff\xff\xff", 4, 1024, &out, &why), 1007);
    cr_assert_str_eq(why, "invalid compressed data");
    /* A final block (BFINAL=1, allowed) followed by more bytes. */
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    unsigned char buf[64];
    zs.next_in = (Bytef *)"hello";
    zs.avail_in = 5;
    zs.next_out = buf;
    zs.avail_out = sizeof(buf);
    cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t n = sizeof(buf) - zs.avail_out;
    deflateEnd(&zs);
    sl_buf_clear(&out);
    cr_assert_eq(sl_wsdeflate_decompress(d, buf, n, 1024, &out, &why), 0, "BFINAL is allowed");
    cr_assert_eq(sl_buf_len(&out), 5);
    buf[n] = 0x42;
    sl_buf_clear(&out);
    cr_assert_eq(sl_wsdeflate_decompress(d, buf, n + 1, 1024, &out, &why), 1007);
    sl_buf_free(&out);
    sl_wsdeflate_free(d);
}
