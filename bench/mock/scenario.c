#include "scenario.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

void
mock_synth_defaults(struct mock_synth *s)
{
    *s = (struct mock_synth){
        .format = MOCK_PROV_NONE,
        .tokens = 20,
        .rate = 0,
        .ts = 0,
        .usage = true,
        .first_byte_ms = 0,
        .status = 200,
        .retry_after = -1,
        .fail_first = 0,
        .fault = MOCK_FAULT_NONE,
        .fault_after = 0,
        .chunk = 8,
        .prompt_tokens = 10,
    };
}

const char *
mock_fault_name(enum mock_fault f)
{
    switch (f) {
    case MOCK_FAULT_ERROR:
        return "error";
    case MOCK_FAULT_STALL:
        return "stall";
    case MOCK_FAULT_RESET:
        return "reset";
    case MOCK_FAULT_TRUNCATE:
        return "truncate";
    case MOCK_FAULT_NONE:
        break;
    }
    return "none";
}

/* A decimal number without sign, the whole slice, at most max. */
static bool
parse_u32(struct sl_slice v, uint32_t max, uint32_t *out)
{
    uint64_t x = 0;
    if (v.len == 0 || v.len > 10)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    if (x > max)
        return false;
    *out = (uint32_t)x;
    return true;
}

static bool
parse_bool(struct sl_slice v, bool *out)
{
    if (sl_slice_eq(v, "1") || sl_slice_eq(v, "true")) {
        *out = true;
        return true;
    }
    if (sl_slice_eq(v, "0") || sl_slice_eq(v, "false")) {
        *out = false;
        return true;
    }
    return false;
}

static bool
parse_rate(struct sl_slice v, double *out)
{
    char tmp[32];
    if (v.len == 0 || v.len >= sizeof(tmp))
        return false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        if (!((c >= '0' && c <= '9') || c == '.'))
            return false;
    }
    memcpy(tmp, v.ptr, v.len);
    tmp[v.len] = '\0';
    char *end = NULL;
    double d = strtod(tmp, &end);
    if (*end != '\0' || !isfinite(d) || d < 0 || d > MOCK_SYNTH_MAX_RATE)
        return false;
    *out = d;
    return true;
}

enum key_id {
    K_FORMAT,
    K_TOKENS,
    K_RATE,
    K_TS,
    K_USAGE,
    K_FIRST_BYTE,
    K_STATUS,
    K_RETRY_AFTER,
    K_ERROR_AFTER,
    K_STALL_AFTER,
    K_RESET_AFTER,
    K_TRUNCATE_AFTER,
    K_CHUNK,
    K_PROMPT,
    K_FAIL_FIRST,
    K_TAG,
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
    [K_FORMAT] = "format",
    [K_TOKENS] = "tokens",
    [K_RATE] = "rate",
    [K_TS] = "ts",
    [K_USAGE] = "usage",
    [K_FIRST_BYTE] = "first_byte_ms",
    [K_STATUS] = "status",
    [K_RETRY_AFTER] = "retry_after",
    [K_ERROR_AFTER] = "error_after",
    [K_STALL_AFTER] = "stall_after",
    [K_RESET_AFTER] = "reset_after",
    [K_TRUNCATE_AFTER] = "truncate_after",
    [K_CHUNK] = "chunk",
    [K_PROMPT] = "prompt_tokens",
    [K_FAIL_FIRST] = "fail_first",
    [K_TAG] = "tag",
};

static int
parse_synth_pair(struct mock_synth *s, struct sl_slice k, struct sl_slice v, uint32_t *seen,
                 char *err, size_t errlen)
{
    int id = -1;
    for (int i = 0; i < K_COUNT; i++) {
        if (sl_slice_eq(k, key_names[i])) {
            id = i;
            break;
        }
    }
    if (id < 0)
        return mock_fail(err, errlen, "synth: unknown key '%.*s'", (int)k.len, k.ptr);
    if (*seen & (1u << id))
        return mock_fail(err, errlen, "synth: key '%s' given twice", key_names[id]);
    *seen |= 1u << id;

    uint32_t u = 0;
    bool ok = true;
    switch ((enum key_id)id) {
    case K_FORMAT:
        s->format = mock_provider_from_name(v.ptr, v.len);
        ok = s->format != MOCK_PROV_NONE;
        break;
    case K_TOKENS:
        ok = parse_u32(v, MOCK_SYNTH_MAX_TOKENS, &s->tokens);
        break;
    case K_RATE:
        ok = parse_rate(v, &s->rate);
        break;
    case K_TS:
        ok = parse_u32(v, 2, &u);
        s->ts = (uint8_t)u;
        break;
    case K_USAGE:
        ok = parse_bool(v, &s->usage);
        break;
    case K_FIRST_BYTE:
        ok = parse_u32(v, MOCK_SYNTH_MAX_DELAY_MS, &s->first_byte_ms);
        break;
    case K_STATUS:
        ok = parse_u32(v, 599, &u) && (u == 200 || u >= 400);
        s->status = (int)u;
        break;
    case K_RETRY_AFTER:
        ok = parse_u32(v, 86400, &u);
        s->retry_after = (int)u;
        break;
    case K_CHUNK:
        ok = parse_u32(v, MOCK_SYNTH_MAX_CHUNK, &s->chunk) && s->chunk > 0;
        break;
    case K_PROMPT:
        ok = parse_u32(v, 1000000000u, &s->prompt_tokens);
        break;
    case K_FAIL_FIRST:
        ok = parse_u32(v, 1000000u, &s->fail_first) && s->fail_first > 0;
        break;
    case K_TAG:
        /* Only makes the scenario string distinct (fail_first counts per string). */
        ok = v.len > 0;
        break;
    case K_ERROR_AFTER:
    case K_STALL_AFTER:
    case K_RESET_AFTER:
    case K_TRUNCATE_AFTER: {
        static const enum mock_fault faults[] = {
            [K_ERROR_AFTER - K_ERROR_AFTER] = MOCK_FAULT_ERROR,
            [K_STALL_AFTER - K_ERROR_AFTER] = MOCK_FAULT_STALL,
            [K_RESET_AFTER - K_ERROR_AFTER] = MOCK_FAULT_RESET,
            [K_TRUNCATE_AFTER - K_ERROR_AFTER] = MOCK_FAULT_TRUNCATE,
        };
        if (s->fault != MOCK_FAULT_NONE)
            return mock_fail(err, errlen,
                             "synth: only one of error_after, stall_after, reset_after, "
                             "truncate_after may be given");
        ok = parse_u32(v, MOCK_SYNTH_MAX_TOKENS, &s->fault_after);
        s->fault = faults[id - K_ERROR_AFTER];
        break;
    }
    case K_COUNT:
        break;
    }
    if (!ok)
        return mock_fail(err, errlen, "synth: bad value '%.*s' for '%s'", (int)v.len, v.ptr,
                         key_names[id]);
    return 0;
}

static int
parse_synth(const char *s, size_t n, struct mock_synth *out, char *err, size_t errlen)
{
    uint32_t seen = 0;
    size_t i = 0;
    mock_synth_defaults(out);
    while (i < n) {
        size_t end = i;
        while (end < n && s[end] != ',')
            end++;
        struct sl_slice item = sl_slice_make(s + i, end - i);
        if (item.len == 0)
            return mock_fail(err, errlen, "synth: empty item");
        const char *eq = memchr(item.ptr, '=', item.len);
        if (!eq)
            return mock_fail(err, errlen, "synth: '%.*s' is not key=value", (int)item.len,
                             item.ptr);
        struct sl_slice k = sl_slice_make(item.ptr, (size_t)(eq - item.ptr));
        struct sl_slice v = sl_slice_make(eq + 1, item.len - k.len - 1);
        if (parse_synth_pair(out, k, v, &seen, err, errlen) < 0)
            return -1;
        i = end + 1;
        if (end + 1 == n)
            return mock_fail(err, errlen, "synth: trailing ','");
    }
    if (out->status != 200 && out->fault != MOCK_FAULT_NONE)
        return mock_fail(err, errlen, "synth: status and a stream fault exclude each other");
    if (out->fail_first > 0 && out->status == 200)
        return mock_fail(err, errlen, "synth: fail_first needs an error status");
    return 0;
}

static bool
fixture_id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '/' || c == '.';
}

static int
parse_fixture(const char *s, size_t n, struct mock_scenario *out, char *err, size_t errlen)
{
    const char *at = memchr(s, '@', n);
    size_t idlen = at ? (size_t)(at - s) : n;
    if (idlen == 0)
        return mock_fail(err, errlen, "fixture: missing id");
    for (size_t i = 0; i < idlen; i++) {
        if (!fixture_id_char(s[i]))
            return mock_fail(err, errlen, "fixture: bad character in id '%.*s'", (int)idlen, s);
    }
    out->fixture_id = s;
    out->fixture_id_len = idlen;
    out->delivery = MOCK_DELIVER_WHOLE;
    out->seed = 0;
    if (!at)
        return 0;
    struct sl_slice mode = sl_slice_make(at + 1, n - idlen - 1);
    if (sl_slice_eq(mode, "whole"))
        out->delivery = MOCK_DELIVER_WHOLE;
    else if (sl_slice_eq(mode, "cuts"))
        out->delivery = MOCK_DELIVER_CUTS;
    else if (sl_slice_eq(mode, "bytes"))
        out->delivery = MOCK_DELIVER_BYTES;
    else if (mode.len > 7 && memcmp(mode.ptr, "random:", 7) == 0 &&
             parse_u32(sl_slice_make(mode.ptr + 7, mode.len - 7), UINT32_MAX, &out->seed))
        out->delivery = MOCK_DELIVER_RANDOM;
    else
        return mock_fail(err, errlen,
                         "fixture: unknown mode '%.*s' (whole, cuts, bytes, random:<seed>)",
                         (int)mode.len, mode.ptr);
    return 0;
}

int
mock_scenario_parse(const char *s, size_t n, struct mock_scenario *out, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    memset(out, 0, sizeof(*out));
    mock_synth_defaults(&out->synth);
    if (n >= 8 && memcmp(s, "fixture:", 8) == 0) {
        out->kind = MOCK_SCN_FIXTURE;
        return parse_fixture(s + 8, n - 8, out, err, errlen);
    }
    if (n == 5 && memcmp(s, "synth", 5) == 0) {
        out->kind = MOCK_SCN_SYNTH;
        return 0;
    }
    if (n >= 6 && memcmp(s, "synth:", 6) == 0) {
        out->kind = MOCK_SCN_SYNTH;
        return parse_synth(s + 6, n - 6, &out->synth, err, errlen);
    }
    return 1;
}

uint32_t
mock_rng_next(uint32_t *state)
{
    uint32_t a = *state += 0x6d2b79f5u;
    uint32_t t = (a ^ (a >> 15)) * (a | 1u);
    t = (t + (t ^ (t >> 7)) * (t | 61u)) ^ t;
    return t ^ (t >> 14);
}

void
mock_random_piece(uint32_t *state, size_t *len, unsigned *pause_ms)
{
    /* floor(u * k) for u = x / 2^32, computed exactly in integers. */
    *len = 1 + (size_t)(((uint64_t)mock_rng_next(state) * 48u) >> 32);
    *pause_ms = (unsigned)(((uint64_t)mock_rng_next(state) * 4u) >> 32);
}
