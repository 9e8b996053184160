/* Unit tests for src/base: buffers, JSON writing, UTF-8, parsing helpers. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/buf.h"
#include "base/codes.h"
#include "base/jsonw.h"
#include "base/pem.h"
#include "base/utf8.h"
#include "base/util.h"

Test(buf, append_consume_releases_storage)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, "hello ");
    sl_buf_printf(&b, "%s %d", "world", 42);
    cr_assert_str_eq(sl_buf_cstr(&b), "hello world 42");
    sl_buf_consume(&b, 6);
    cr_assert_eq(sl_buf_len(&b), 8);
    cr_assert(memcmp(sl_buf_ptr(&b), "world 42", 8) == 0);
    sl_buf_consume(&b, 8);
    cr_assert_null(b.data, "an emptied buffer holds no storage");
}

Test(buf, printf_longer_than_first_reserve)
{
    struct sl_buf b = SL_BUF_INIT;
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    sl_buf_printf(&b, "<%s>", big);
    cr_assert_eq(sl_buf_len(&b), 601);
    cr_assert_eq(sl_buf_ptr(&b)[600], '>');
    sl_buf_free(&b);
}

static char *
jstr(const char *s, size_t n)
{
    static char out[256];
    struct sl_buf b = SL_BUF_INIT;
    sl_jsonw_str(&b, s, n);
    memcpy(out, sl_buf_cstr(&b), sl_buf_len(&b) + 1);
    sl_buf_free(&b);
    return out;
}

Test(jsonw, escapes_controls_quotes_and_keeps_utf8)
{
    cr_assert_str_eq(jstr("a\"b\\c\n\t\x01", 8), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
    cr_assert_str_eq(jstr("h\xc3\xa9llo \xf0\x9f\x98\x80", 11),
                     "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"");
}

/* Byte at a time, as the escape was before it learned to skip plain words. */
static void
escape_ref(struct sl_buf *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '"')
            sl_buf_append_str(b, "\\\"");
        else if (c == '\\')
            sl_buf_append_str(b, "\\\\");
        else if (c == '\n')
            sl_buf_append_str(b, "\\n");
        else if (c < 0x20 || c == 0x7f)
            sl_buf_printf(b, "\\u%04x", c);
        else
            sl_buf_append_byte(b, (char)c);
    }
}

Test(jsonw, special_bytes_found_at_every_position_of_a_word)
{
    /* One byte to escape (or a UTF-8 character) at each offset of a 40-byte plain text,
     * across the eight-byte words the escape skips. */
    const char *const specials[] = {"\"", "\\", "\n", "\x01", "\x1f", "\x7f"};
    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
        for (size_t at = 0; at < 40; at++) {
            uint8_t in[40];
            memset(in, 'a' + (int)(at % 26), sizeof(in));
            in[at] = (uint8_t)specials[k][0];
            for (size_t len = at + 1; len <= sizeof(in); len++) {
                struct sl_buf got = SL_BUF_INIT, want = SL_BUF_INIT;
                sl_jsonw_escape(&got, (const char *)in, len);
                escape_ref(&want, in, len);
                cr_assert_eq(sl_buf_len(&got), sl_buf_len(&want), "special %zu at %zu", k, at);
                cr_assert_eq(memcmp(sl_buf_ptr(&got), sl_buf_ptr(&want), sl_buf_len(&got)), 0);
                sl_buf_free(&got);
                sl_buf_free(&want);
            }
        }
    }
    /* Bytes just outside the special ranges stay as they are, 0x20 and 0x7e included. */
    const char edge[] = " !#[]~ !#[]~ !#[]~";
    struct sl_buf b = SL_BUF_INIT;
    sl_jsonw_escape(&b, edge, sizeof(edge) - 1);
    cr_assert_eq(sl_buf_len(&b), sizeof(edge) - 1);
    sl_buf_free(&b);
    /* A UTF-8 character and an invalid byte after plain words. */
    cr_assert_str_eq(jstr("0123456789abcdef\xc3\xa9\xff", 19),
                     "\"0123456789abcdef\xc3\xa9\\ufffd\"");
}

Test(jsonw, replaces_invalid_utf8)
{
    /* lone continuation, truncated 3-byte sequence, overlong, surrogate */
    cr_assert_str_eq(jstr("a\x80"
                          "b",
                          3),
                     "\"a\\ufffdb\"");
    cr_assert_str_eq(jstr("\xe2\x82", 2), "\"\\ufffd\\ufffd\"");
    cr_assert_str_eq(jstr("\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");
    cr_assert_str_eq(jstr("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\"");
}

Test(jsonw, numbers)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_jsonw_int(&b, -9223372036854775807LL - 1);
    sl_buf_append_byte(&b, ' ');
    sl_jsonw_double(&b, 0.00012);
    sl_buf_append_byte(&b, ' ');
    sl_jsonw_double(&b, 0.1 + 0.2);
    cr_assert_str_eq(sl_buf_cstr(&b), "-9223372036854775808 0.00012 0.30000000000000004");
    sl_buf_free(&b);
}

Test(utf8, incremental_across_every_split)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
    size_t n = strlen(s);
    for (size_t cut = 0; cut <= n; cut++) {
        uint32_t st = 0;
        cr_assert_eq(sl_utf8_feed(&st, (const uint8_t *)s, cut), 0);
        cr_assert_eq(sl_utf8_feed(&st, (const uint8_t *)s + cut, n - cut), 0);
        cr_assert_eq(st, 0, "split at %zu", cut);
    }
}

Test(utf8, rejects)
{
    cr_assert_not(sl_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    cr_assert_not(sl_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    cr_assert_not(sl_utf8_valid("\xed\xbf\xbf", 3));     /* surrogate */
    cr_assert_not(sl_utf8_valid("\xc3", 1));             /* truncated */
    cr_assert_not(sl_utf8_valid("\xff", 1));
    cr_assert(sl_utf8_valid("plain ascii text longer than eight", 34));
}

Test(utf8, boundary)
{
    const char *s = "ab\xe2\x82\xac";
    cr_assert_eq(sl_utf8_boundary(s, 5), 5);
    cr_assert_eq(sl_utf8_boundary(s, 4), 2);
    cr_assert_eq(sl_utf8_boundary(s, 3), 2);
    cr_assert_eq(sl_utf8_boundary(s, 2), 2);
}

Test(util, durations_and_sizes)
{
    uint64_t v;
    cr_assert_eq(sl_parse_duration_ms("25s", &v), 0);
    cr_assert_eq(v, 25000);
    cr_assert_eq(sl_parse_duration_ms("250ms", &v), 0);
    cr_assert_eq(v, 250);
    cr_assert_eq(sl_parse_duration_ms("1h", &v), 0);
    cr_assert_eq(v, 3600000);
    cr_assert_eq(sl_parse_duration_ms("10", &v), 0);
    cr_assert_eq(v, 10000);
    cr_assert_eq(sl_parse_duration_ms("10 parsecs", &v), SL_BASE_EINVAL);
    cr_assert_eq(sl_parse_duration_ms("-1s", &v), SL_BASE_EINVAL);
    cr_assert_eq(sl_parse_size("64KiB", &v), 0);
    cr_assert_eq(v, 65536);
    cr_assert_eq(sl_parse_size("1m", &v), 0);
    cr_assert_eq(v, 1048576);
    cr_assert_eq(sl_parse_size("lots", &v), SL_BASE_EINVAL);
}

Test(util, header_tokens)
{
    cr_assert(sl_header_has_token(SL_SLICE("keep-alive, Upgrade"), "upgrade"));
    cr_assert_not(sl_header_has_token(SL_SLICE("keep-alive, Upgrades"), "upgrade"));
    cr_assert(sl_header_has_token(SL_SLICE("Upgrade"), "upgrade"));
}

Test(util, base64)
{
    char out[16];
    cr_assert_eq(sl_base64_encode(out, "foob", 4), 8);
    cr_assert_str_eq(out, "Zm9vYg==");
    sl_base64_encode(out, "fooba", 5);
    cr_assert_str_eq(out, "Zm9vYmE=");
    sl_base64_encode(out, "foobar", 6);
    cr_assert_str_eq(out, "Zm9vYmFy");
}

Test(codes, internal_codes_name_their_layer)
{
    cr_assert_str_eq(sl_err_layer(SL_BASE_EINVAL), "base");
    cr_assert_str_eq(sl_err_layer(SL_PEM_ENOTPEM), "base");
    cr_assert_str_eq(sl_err_layer(SL_ERANGE_NET - 1), "net");
    cr_assert_str_eq(sl_err_layer(SL_ERANGE_CORE - 99), "core");
    cr_assert_str_eq(sl_err_layer(0), "none");
    cr_assert_str_eq(sl_err_layer(-1), "none", "a bare -1 belongs to no layer");
    cr_assert_str_eq(sl_base_strerror(SL_BASE_EINVAL), "malformed value");
    long long v;
    uint64_t u;
    cr_assert_eq(sl_parse_int("12x", &v), SL_BASE_EINVAL);
    cr_assert_eq(sl_parse_duration_ms("5 parsecs", &u), SL_BASE_EINVAL);
    cr_assert_eq(sl_parse_size("-1", &u), SL_BASE_EINVAL);
    cr_assert_eq(sl_parse_size("64KiB", &u), 0);
    cr_assert_eq(u, 65536);
}
