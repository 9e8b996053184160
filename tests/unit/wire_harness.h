/*
 * Shared by the adapter unit tests (test_openai.c, test_anthropic.c, test_gemini.c,
 * test_ollama.c, test_wire.c): load the fixtures of ../shared/upstream-fixtures, feed a
 * response decoder (struct sl_resp) a fixture's status, headers and body in a given split,
 * record every sink callback, and check the record against the fixture's `expected`.
 * Also: a canonical request built from a fixture's example request body, to check that an
 * adapter builds that request back.
 *
 * Not a test file of its own (its name does not start with test_); each test includes it.
 */
#ifndef SL_TESTS_WIRE_HARNESS_H
#define SL_TESTS_WIRE_HARNESS_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/codes.h"
#include "canon/request.h"
#include "config/config.h"
#include "upstream/provider.h"
#include "upstream/wire.h"

/* Each test file uses a part of the helpers. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define H_KEY "sk-test-0123456789abcdef"

/* --- fixtures ------------------------------------------------------------------------- */

struct fixture {
    char id[96];
    char kind[16];
    char provider[24];
    json_t *meta;
    char *body;
    size_t body_len;
};

static const char *
fixtures_dir(void)
{
    const char *d = getenv("SL_FIXTURES");
    return d && *d ? d : "../shared/upstream-fixtures";
}

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s", path);
    struct sl_buf b = SL_BUF_INIT;
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        sl_buf_append(&b, tmp, n);
    fclose(f);
    sl_buf_cstr(&b);
    return sl_buf_steal(&b, len);
}

static json_t *
load_index(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/index.json", fixtures_dir());
    json_error_t e;
    json_t *idx = json_load_file(path, 0, &e);
    cr_assert(idx != NULL, "%s: %s", path, e.text);
    return idx;
}

/* Loads fixture number i of the index into *fx; false past the end. */
static bool
fixture_load(json_t *idx, size_t i, struct fixture *fx)
{
    json_t *entry = json_array_get(json_object_get(idx, "fixtures"), i);
    if (entry == NULL)
        return false;
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->id, sizeof(fx->id), "%s", json_string_value(json_object_get(entry, "id")));
    snprintf(fx->kind, sizeof(fx->kind), "%s", json_string_value(json_object_get(entry, "kind")));
    snprintf(fx->provider, sizeof(fx->provider), "%s",
             json_string_value(json_object_get(entry, "provider")));
    char path[1024];
    json_error_t e;
    snprintf(path, sizeof(path), "%s/%s", fixtures_dir(),
             json_string_value(json_object_get(entry, "meta")));
    fx->meta = json_load_file(path, 0, &e);
    cr_assert(fx->meta != NULL, "%s: %s", path, e.text);
    snprintf(path, sizeof(path), "%s/%s", fixtures_dir(),
             json_string_value(json_object_get(entry, "body")));
    fx->body = read_file(path, &fx->body_len);
    return true;
}

static void
fixture_free(struct fixture *fx)
{
    json_decref(fx->meta);
    free(fx->body);
}

static json_t *
fx_expected(const struct fixture *fx)
{
    return json_object_get(fx->meta, "expected");
}

/* --- the canonical outcome every fixture must give --------------------------------------- */

struct expect_err {
    const char *id;
    enum sl_errcode code;
    bool retryable;
    int64_t retry_after_ms;
};

/* Kept in step with the table of docs/providers.md and tests/e2e/50-providers.test.mjs. */
static const struct expect_err expect_errs[] = {
    {"openai/chat_error_429", SL_ERR_UPSTREAM_RATE_LIMITED, true, 1000},
    {"openai/chat_error_401", SL_ERR_UPSTREAM_AUTH, false, -1},
    {"openai/chat_stream_midstream_error", SL_ERR_UPSTREAM_ERROR, true, -1},
    {"anthropic/messages_stream_overloaded_error", SL_ERR_UPSTREAM_ERROR, true, -1},
    {"anthropic/messages_error_529", SL_ERR_UPSTREAM_ERROR, true, -1},
    {"anthropic/messages_error_401", SL_ERR_UPSTREAM_AUTH, false, -1},
    {"gemini/stream_generate_midstream_error", SL_ERR_UPSTREAM_ERROR, true, -1},
    {"gemini/error_429", SL_ERR_UPSTREAM_RATE_LIMITED, true, 2500},
    {"gemini/error_400_api_key_invalid", SL_ERR_UPSTREAM_AUTH, false, -1},
    {"ollama/chat_stream_midstream_error", SL_ERR_UPSTREAM_ERROR, true, -1},
    {"ollama/chat_error_404", SL_ERR_UPSTREAM_ERROR, false, -1},
    {"openai_compat/llamacpp_error_field", SL_ERR_UPSTREAM_ERROR, false, -1},
    {"openai_compat/openrouter_midstream_error", SL_ERR_UPSTREAM_ERROR, true, -1},
};

static const struct expect_err *
expect_err_of(const char *id)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(expect_errs); i++)
        if (strcmp(expect_errs[i].id, id) == 0)
            return &expect_errs[i];
    return NULL;
}

/* Provider-native finish reason -> canonical name. */
static const char *
canonical_finish(const char *native)
{
    static const char *const map[][2] = {
        {"stop", "stop"},         {"end_turn", "stop"},     {"STOP", "stop"},
        {"length", "length"},     {"max_tokens", "length"}, {"MAX_TOKENS", "length"},
        {"tool_calls", "tool_calls"}, {"tool_use", "tool_calls"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(map); i++)
        if (strcmp(map[i][0], native) == 0)
            return map[i][1];
    return NULL;
}

/* --- recording sink ----------------------------------------------------------------------- */

#define REC_TOOLS 8

struct rec_tool {
    bool used;
    int index;
    struct sl_buf id, name, args;
};

struct rec {
    struct sl_buf text;
    unsigned ndeltas;
    struct rec_tool tools[REC_TOOLS];
    unsigned nusage;
    bool have_usage;
    struct sl_usage usage;
    unsigned terminals;
    bool late; /* a callback after the terminal one */
    bool done;
    enum sl_finish finish;
    char native_finish[64];
    enum sl_errcode code;
    bool retryable;
    int64_t retry_after_ms;
    int http_status;
    char message[600];
    char native_code[64];
    unsigned fast_chunks; /* chunks the jscan fast path handled */
};

static void
rec_on_delta(void *ud, const char *text, size_t len)
{
    struct rec *r = ud;
    r->late |= r->terminals > 0;
    cr_assert(len > 0, "empty delta");
    sl_buf_append(&r->text, text, len);
    r->ndeltas++;
}

static void
rec_on_tool(void *ud, const struct sl_tool_delta *t)
{
    struct rec *r = ud;
    r->late |= r->terminals > 0;
    struct rec_tool *slot = NULL;
    for (size_t i = 0; i < REC_TOOLS && slot == NULL; i++)
        if (r->tools[i].used && r->tools[i].index == t->index)
            slot = &r->tools[i];
    for (size_t i = 0; i < REC_TOOLS && slot == NULL; i++)
        if (!r->tools[i].used)
            slot = &r->tools[i];
    cr_assert(slot != NULL, "too many tool calls");
    slot->used = true;
    slot->index = t->index;
    if (t->id)
        sl_buf_append(&slot->id, t->id, t->id_len);
    if (t->name)
        sl_buf_append(&slot->name, t->name, t->name_len);
    if (t->arguments)
        sl_buf_append(&slot->args, t->arguments, t->arguments_len);
    r->ndeltas++;
}

static void
rec_on_usage(void *ud, const struct sl_usage *u)
{
    struct rec *r = ud;
    r->late |= r->terminals > 0;
    r->have_usage = true;
    r->usage = *u;
    r->nusage++;
}

static void
rec_on_done(void *ud, enum sl_finish f, const char *native)
{
    struct rec *r = ud;
    r->terminals++;
    r->done = true;
    r->finish = f;
    snprintf(r->native_finish, sizeof(r->native_finish), "%s", native ? native : "");
}

static void
rec_on_error(void *ud, const struct sl_upstream_error *e)
{
    struct rec *r = ud;
    r->terminals++;
    r->done = false;
    r->code = e->code;
    r->retryable = e->retryable;
    r->retry_after_ms = e->retry_after_ms;
    r->http_status = e->http_status;
    snprintf(r->message, sizeof(r->message), "%s", e->message ? e->message : "");
    snprintf(r->native_code, sizeof(r->native_code), "%s", e->native_code ? e->native_code : "");
}

static const struct sl_upstream_sink rec_sink = {
    .on_delta = rec_on_delta,
    .on_tool_delta = rec_on_tool,
    .on_usage = rec_on_usage,
    .on_done = rec_on_done,
    .on_error = rec_on_error,
};

static void
rec_free(struct rec *r)
{
    sl_buf_free(&r->text);
    for (size_t i = 0; i < REC_TOOLS; i++) {
        sl_buf_free(&r->tools[i].id);
        sl_buf_free(&r->tools[i].name);
        sl_buf_free(&r->tools[i].args);
    }
}

/* A one-line summary of everything recorded, to compare runs of different splits. */
static void
rec_summary(const struct rec *r, struct sl_buf *out)
{
    sl_buf_printf(out, "text=[%.*s]", (int)sl_buf_len(&r->text), sl_buf_ptr(&r->text));
    for (size_t i = 0; i < REC_TOOLS; i++) {
        const struct rec_tool *t = &r->tools[i];
        if (!t->used)
            continue;
        sl_buf_printf(out, " tool%d=[%.*s|%.*s|%.*s]", t->index, (int)sl_buf_len(&t->id),
                      sl_buf_ptr(&t->id), (int)sl_buf_len(&t->name), sl_buf_ptr(&t->name),
                      (int)sl_buf_len(&t->args), sl_buf_ptr(&t->args));
    }
    if (r->have_usage)
        sl_buf_printf(out, " usage=%llu/%llu", (unsigned long long)r->usage.input_tokens,
                      (unsigned long long)r->usage.output_tokens);
    sl_buf_printf(out, " terminals=%u late=%d", r->terminals, r->late);
    if (r->done)
        sl_buf_printf(out, " done=%s/%s", sl_finish_name(r->finish), r->native_finish);
    else
        sl_buf_printf(out, " error=%s retryable=%d after=%lld status=%d native=%s msg=%s",
                      sl_errcode_name(r->code), r->retryable, (long long)r->retry_after_ms,
                      r->http_status, r->native_code, r->message);
}

/* --- driving a decoder ------------------------------------------------------------------- */

static struct sl_config_provider
test_provider(const char *name, const char *key)
{
    struct sl_config_provider p;
    memset(&p, 0, sizeof(p));
    p.name = (char *)name;
    p.api_key = (char *)key;
    p.api_key_env = (char *)"TEST_KEY";
    return p;
}

/* The response head the mock (and a provider) sends for this fixture. */
static void
feed_head(struct sl_resp *resp, const struct fixture *fx)
{
    const json_t *response = json_object_get(fx->meta, "response");
    char line[512];
    snprintf(line, sizeof(line), "HTTP/1.1 %d Whatever\r\n",
             (int)json_integer_value(json_object_get(response, "status")));
    sl_resp_header(resp, line, strlen(line));
    const char *keep[] = {"content-type", "retry-after", "retry-after-ms", "x-request-id",
                          "request-id", "x-should-retry"};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(response, "headers"), k, v)
    {
        for (size_t i = 0; i < SL_ARRAY_LEN(keep); i++) {
            if (strcasecmp(k, keep[i]) != 0)
                continue;
            snprintf(line, sizeof(line), "%s: %s\r\n", k, json_string_value(v));
            sl_resp_header(resp, line, strlen(line));
        }
    }
    sl_resp_header(resp, "\r\n", 2);
}

/* xorshift for reproducible splits */
static uint32_t
h_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

enum split_mode { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM, SPLIT_CUTS };

/*
 * Feeds the fixture to a fresh decoder of wire w in the given split and records it.
 * Body bytes are copied into exact-size heap pieces so that ASan sees any overread.
 */
static void
run_fixture_ex(const struct sl_wire *w, const struct fixture *fx, enum split_mode mode,
               uint32_t seed, bool slow_only, struct rec *rec)
{
    struct sl_config_provider pv = test_provider("p", H_KEY);
    struct sl_resp resp;
    memset(rec, 0, sizeof(*rec));
    sl_resp_init(&resp, w, &rec_sink, rec, &pv);
    resp.slow_only = slow_only;
    feed_head(&resp, fx);

    size_t cuts[64], ncuts = 0;
    if (mode == SPLIT_CUTS) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(fx->meta, "delivery"),
                                           "chunk_boundaries"),
                           i, c)
        {
            if (ncuts < SL_ARRAY_LEN(cuts))
                cuts[ncuts++] = (size_t)json_integer_value(c);
        }
    }
    uint32_t state = seed ? seed : 1;
    size_t off = 0, ci = 0;
    bool stopped = false;
    while (off < fx->body_len && !stopped) {
        size_t n = fx->body_len - off;
        if (mode == SPLIT_BYTES)
            n = 1;
        else if (mode == SPLIT_RANDOM)
            n = 1 + h_rand(&state) % 48;
        else if (mode == SPLIT_CUTS && ci < ncuts)
            n = cuts[ci++] - off;
        if (n > fx->body_len - off)
            n = fx->body_len - off;
        char *piece = sl_malloc(n ? n : 1);
        memcpy(piece, fx->body + off, n);
        stopped = sl_resp_body(&resp, piece, n) != 0;
        free(piece);
        off += n;
    }
    sl_resp_end(&resp, NULL);
    sl_resp_deliver(&resp);
    rec->fast_chunks = resp.fast_chunks;
    sl_resp_cleanup(&resp);
}

static void
run_fixture(const struct sl_wire *w, const struct fixture *fx, enum split_mode mode,
            uint32_t seed, struct rec *rec)
{
    run_fixture_ex(w, fx, mode, seed, false, rec);
}

/* A hand-written response: a status line, "Name: value\r\n" headers, one body piece. */
static void
run_text(const struct sl_wire *w, const char *status_line, const char *headers, const char *body,
         struct rec *rec)
{
    struct sl_config_provider pv = test_provider("p", H_KEY);
    struct sl_resp resp;
    memset(rec, 0, sizeof(*rec));
    sl_resp_init(&resp, w, &rec_sink, rec, &pv);
    sl_resp_header(&resp, status_line, strlen(status_line));
    const char *h = headers;
    while (h && *h) {
        const char *e = strchr(h, '\n');
        size_t n = e ? (size_t)(e - h) + 1 : strlen(h);
        sl_resp_header(&resp, h, n);
        h += n;
    }
    sl_resp_header(&resp, "\r\n", 2);
    sl_resp_body(&resp, body, strlen(body));
    sl_resp_end(&resp, NULL);
    sl_resp_deliver(&resp);
    sl_resp_cleanup(&resp);
}

/* Builds a request for p with wire w; asserts success. The caller cleans req up. */
static json_t *
build_body(const struct sl_wire *w, const struct sl_call_params *p, struct sl_httpreq *req)
{
    struct sl_upstream_error err = {0};
    cr_assert_eq(sl_wire_build(w, p, req, &err), 0, "build failed: %s",
                 err.message ? err.message : "");
    json_error_t e;
    json_t *body = json_loadb(req->body, req->body_len, 0, &e);
    cr_assert(body != NULL, "body: %s", e.text);
    return body;
}

/* Checks a record against the fixture's expected outcome. */
static void
check_expected(const struct fixture *fx, const struct rec *r, const char *how)
{
    json_t *ex = fx_expected(fx);
    cr_assert_eq(r->terminals, 1, "%s %s: %u terminal callbacks", fx->id, how, r->terminals);
    cr_assert(!r->late, "%s %s: a callback after the terminal one", fx->id, how);
    const json_t *text = json_object_get(ex, "text");
    if (!json_is_string(text))
        text = json_object_get(ex, "text_before_error");
    if (json_is_string(text))
        cr_assert(sl_buf_len(&r->text) == json_string_length(text) &&
                      memcmp(sl_buf_ptr(&r->text), json_string_value(text),
                             sl_buf_len(&r->text)) == 0,
                  "%s %s: text [%.*s], expected [%s]", fx->id, how, (int)sl_buf_len(&r->text),
                  sl_buf_ptr(&r->text), json_string_value(text));
    else
        cr_assert_eq(sl_buf_len(&r->text), 0, "%s %s: unexpected text", fx->id, how);

    const struct expect_err *ee = expect_err_of(fx->id);
    if (ee != NULL) {
        cr_assert(!r->done, "%s %s: done, expected an error", fx->id, how);
        cr_assert_eq(r->code, ee->code, "%s %s: code %s, expected %s (%s)", fx->id, how,
                     sl_errcode_name(r->code), sl_errcode_name(ee->code), r->message);
        cr_assert_eq(r->retryable, ee->retryable, "%s %s: retryable %d", fx->id, how,
                     r->retryable);
        cr_assert_eq(r->retry_after_ms, ee->retry_after_ms, "%s %s: retry_after_ms %lld",
                     fx->id, how, (long long)r->retry_after_ms);
        cr_assert(strncmp(r->message, "p: ", 3) == 0, "%s: message names the provider: %s",
                  fx->id, r->message);
        const json_t *err = json_object_get(ex, "error");
        const char *msg = json_string_value(json_object_get(err, "message"));
        if (msg)
            cr_assert(strstr(r->message, msg) != NULL, "%s %s: message [%s] lacks [%s]", fx->id,
                      how, r->message, msg);
        return;
    }
    cr_assert(r->done, "%s %s: error %s %s", fx->id, how, sl_errcode_name(r->code), r->message);
    const char *native = json_string_value(json_object_get(ex, "finish_reason"));
    cr_assert_str_eq(r->native_finish, native, "%s %s: native finish", fx->id, how);
    cr_assert_str_eq(sl_finish_name(r->finish), canonical_finish(native), "%s %s: finish",
                     fx->id, how);
    const json_t *in = json_object_get(ex, "input_tokens");
    const json_t *out = json_object_get(ex, "output_tokens");
    if (json_is_integer(in)) {
        cr_assert(r->have_usage, "%s %s: no usage", fx->id, how);
        cr_assert_eq(r->usage.input_tokens, (uint64_t)json_integer_value(in), "%s %s: input",
                     fx->id, how);
        cr_assert_eq(r->usage.output_tokens, (uint64_t)json_integer_value(out), "%s %s: output",
                     fx->id, how);
        cr_assert(!r->usage.estimated);
    } else {
        cr_assert(!r->have_usage, "%s %s: usage where the fixture has none", fx->id, how);
    }
    size_t i;
    const json_t *tc;
    json_array_foreach(json_object_get(ex, "tool_calls"), i, tc)
    {
        int index = (int)json_integer_value(json_object_get(tc, "index"));
        const struct rec_tool *t = NULL;
        for (size_t k = 0; k < REC_TOOLS; k++)
            if (r->tools[k].used && r->tools[k].index == index)
                t = &r->tools[k];
        cr_assert(t != NULL, "%s: no tool call %d", fx->id, index);
        const char *want[3] = {json_string_value(json_object_get(tc, "id")),
                               json_string_value(json_object_get(tc, "name")),
                               json_string_value(json_object_get(tc, "arguments"))};
        const struct sl_buf *got[3] = {&t->id, &t->name, &t->args};
        for (int k = 0; k < 3; k++)
            cr_assert(strlen(want[k]) == sl_buf_len(got[k]) &&
                          memcmp(want[k], sl_buf_ptr(got[k]), sl_buf_len(got[k])) == 0,
                      "%s: tool %d field %d [%.*s], expected [%s]", fx->id, index, k,
                      (int)sl_buf_len(got[k]), sl_buf_ptr(got[k]), want[k]);
    }
}

/*
 * Every fixture of the given providers (a NULL-terminated list), each whole, byte by byte,
 * at its cut points and in 25 random splits: each split must give the same record, and
 * that record the fixture's expected outcome. Returns how many fixtures were run.
 */
static size_t
run_all_fixtures(const struct sl_wire *w, const char *const *providers)
{
    json_t *idx = load_index();
    struct fixture fx;
    size_t count = 0;
    for (size_t i = 0; fixture_load(idx, i, &fx); i++) {
        bool mine = false;
        for (const char *const *p = providers; *p; p++)
            mine |= strcmp(fx.provider, *p) == 0;
        if (!mine) {
            fixture_free(&fx);
            continue;
        }
        count++;
        struct rec first;
        run_fixture(w, &fx, SPLIT_WHOLE, 0, &first);
        check_expected(&fx, &first, "whole");
        struct sl_buf want = SL_BUF_INIT;
        rec_summary(&first, &want);
        /* The jscan fast path carried the text of every stream that has some... */
        if (strcmp(fx.kind, "http_error") != 0 && sl_buf_len(&first.text) > 0)
            cr_assert(first.fast_chunks > 0, "%s: the fast path was never taken", fx.id);
        rec_free(&first);
        /* ...and jansson alone gives exactly the same result. */
        struct rec slow;
        run_fixture_ex(w, &fx, SPLIT_WHOLE, 0, true, &slow);
        struct sl_buf got_slow = SL_BUF_INIT;
        rec_summary(&slow, &got_slow);
        cr_assert_str_eq(sl_buf_cstr(&got_slow), sl_buf_cstr(&want), "%s: jansson path differs",
                         fx.id);
        cr_assert_eq(slow.fast_chunks, 0);
        sl_buf_free(&got_slow);
        rec_free(&slow);
        for (int k = 0; k < 28; k++) {
            enum split_mode mode = k == 0 ? SPLIT_BYTES : k == 1 ? SPLIT_CUTS : SPLIT_RANDOM;
            struct rec r;
            run_fixture(w, &fx, mode, (uint32_t)k * 2654435761u + 7, &r);
            struct sl_buf got = SL_BUF_INIT;
            rec_summary(&r, &got);
            cr_assert_str_eq(sl_buf_cstr(&got), sl_buf_cstr(&want), "%s: split %d differs",
                             fx.id, k);
            sl_buf_free(&got);
            rec_free(&r);
        }
        sl_buf_free(&want);
        fixture_free(&fx);
    }
    json_decref(idx);
    return count;
}

/* --- requests ----------------------------------------------------------------------------- */

/* A canonical request for a fixture's example body; the caller fills what is specific. */
static struct sl_chat_req *
req_new(void)
{
    struct sl_chat_req *r = sl_calloc(1, sizeof(*r));
    r->max_tokens = -1;
    r->messages = json_array();
    return r;
}

/*
 * Checks a built request against the fixture's `request`: URL path (or an alternative)
 * and query, every listed header (a `<placeholder>` value only needs to be there, with its
 * "Bearer " prefix), and the body, equal as JSON after dropping the keys in `ignore`.
 */
static void
check_request(const struct fixture *fx, const struct sl_httpreq *req, const char *origin,
              const char *const *ignore)
{
    const json_t *rq = json_object_get(fx->meta, "request");
    const char *path = json_string_value(json_object_get(rq, "path"));
    const char *query = json_string_value(json_object_get(rq, "query"));
    char want[1024];
    snprintf(want, sizeof(want), "%s%s%s%s", origin, path, query && *query ? "?" : "",
             query ? query : "");
    bool url_ok = strcmp(req->url, want) == 0;
    size_t i;
    const json_t *alt;
    json_array_foreach(json_object_get(rq, "path_alternatives"), i, alt)
    {
        snprintf(want, sizeof(want), "%s%s%s%s", origin, json_string_value(alt),
                 query && *query ? "?" : "", query ? query : "");
        url_ok |= strcmp(req->url, want) == 0;
    }
    cr_assert(url_ok, "%s: url %s", fx->id, req->url);

    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(rq, "headers"), name, v)
    {
        const char *got = sl_httpreq_find(req, name);
        const char *w = json_string_value(v);
        cr_assert(got != NULL, "%s: header %s missing", fx->id, name);
        const char *ph = strchr(w, '<');
        if (ph)
            cr_assert(strncmp(got, w, (size_t)(ph - w)) == 0 && strlen(got) > (size_t)(ph - w),
                      "%s: header %s: %s", fx->id, name, got);
        else
            cr_assert_str_eq(got, w, "%s: header %s", fx->id, name);
    }

    json_error_t e;
    json_t *body = json_loadb(req->body, req->body_len, 0, &e);
    cr_assert(body != NULL, "%s: body is not JSON: %s", fx->id, e.text);
    json_t *expect = json_deep_copy(json_object_get(rq, "body"));
    for (const char *const *k = ignore; k && *k; k++) {
        json_object_del(body, *k);
        json_object_del(expect, *k);
    }
    char *a = json_dumps(body, JSON_SORT_KEYS | JSON_COMPACT);
    char *b = json_dumps(expect, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert(json_equal(body, expect), "%s: body\n  got  %s\n  want %s", fx->id, a, b);
    free(a);
    free(b);
    json_decref(body);
    json_decref(expect);
}

/* The key a fixture's request shows, or H_KEY for a placeholder. */
static const char *
fixture_key(const struct fixture *fx, const char *header, const char *prefix)
{
    const char *v = json_string_value(
        json_object_get(json_object_get(json_object_get(fx->meta, "request"), "headers"), header));
    if (v == NULL || strchr(v, '<') != NULL)
        return H_KEY;
    return v + strlen(prefix);
}

#endif
