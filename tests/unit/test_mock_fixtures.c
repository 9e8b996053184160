/*
 * Unit tests for the mock upstream's fixture loading and request checks: every
 * fixture's own example request must pass its check, and each kind of deviation a
 * gateway could make must be caught with a message that says what was wrong.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../../bench/mock/fixtures.c"
#include "../../bench/mock/request.c"

static const char *
fixtures_dir(void)
{
    const char *d = getenv("SL_FIXTURES");
    return d && *d ? d : "../shared/upstream-fixtures";
}

static struct mock_fixtures fx;

static void
load(void)
{
    char err[512];
    cr_assert_eq(mock_fixtures_load(&fx, fixtures_dir(), err, sizeof(err)), 0, "%s", err);
}

static void
unload(void)
{
    mock_fixtures_free(&fx);
}

/* A request built from a fixture's sidecar, with storage for edits. */
struct ex {
    struct mock_req r;
    char names[MOCK_MAX_HEADERS][64];
    char values[MOCK_MAX_HEADERS][256];
    char path[256], query[128];
    char *body;
    json_t *meta;
};

static void
ex_set_header(struct ex *e, const char *name, const char *value)
{
    char lower[64];
    snprintf(lower, sizeof(lower), "%s", name);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t i = 0;
    while (i < e->r.nheaders && !sl_slice_eq(e->r.headers[i].name, lower))
        i++;
    if (i == e->r.nheaders) {
        if (!value)
            return;
        e->r.nheaders++;
    }
    if (!value) {
        /* delete: move the last one here */
        e->r.nheaders--;
        if (i != e->r.nheaders) {
            memcpy(e->names[i], e->names[e->r.nheaders], sizeof(e->names[i]));
            memcpy(e->values[i], e->values[e->r.nheaders], sizeof(e->values[i]));
        }
    } else {
        snprintf(e->names[i], sizeof(e->names[i]), "%s", lower);
        snprintf(e->values[i], sizeof(e->values[i]), "%s", value);
    }
    for (size_t k = 0; k < e->r.nheaders; k++) {
        e->r.headers[k].name = sl_slice_make(e->names[k], strlen(e->names[k]));
        e->r.headers[k].value = sl_slice_make(e->values[k], strlen(e->values[k]));
    }
}

static void
ex_set_body(struct ex *e)
{
    free(e->body);
    e->body = json_dumps(e->r.json, JSON_COMPACT);
    e->r.body = sl_slice_make(e->body, strlen(e->body));
}

static void
ex_init(struct ex *e, const char *id)
{
    memset(e, 0, sizeof(*e));
    char path[512];
    json_error_t jerr;
    snprintf(path, sizeof(path), "%s/%s.meta.json", fixtures_dir(), id);
    e->meta = json_load_file(path, 0, &jerr);
    cr_assert_not_null(e->meta, "%s: %s", path, jerr.text);
    json_t *req = json_object_get(e->meta, "request");
    e->r.method = SL_SLICE("POST");
    snprintf(e->path, sizeof(e->path), "%s", json_string_value(json_object_get(req, "path")));
    snprintf(e->query, sizeof(e->query), "%s", json_string_value(json_object_get(req, "query")));
    e->r.path = sl_slice_make(e->path, strlen(e->path));
    e->r.query = sl_slice_make(e->query, strlen(e->query));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(req, "headers"), k, v)
    {
        /* The sidecar writes "Bearer <KEY>" placeholders; any non-empty key will do. */
        ex_set_header(e, k, json_string_value(v));
    }
    e->r.json = json_deep_copy(json_object_get(req, "body"));
    ex_set_body(e);
}

static void
ex_free(struct ex *e)
{
    json_decref(e->r.json);
    json_decref(e->meta);
    free(e->body);
}

static void
expect_fail(const struct mock_fixture *f, struct ex *e, const char *why)
{
    char err[512];
    cr_assert_eq(mock_fixture_check(f, &e->r, err, sizeof(err)), -1, "%s: passed, wanted '%s'",
                 f->id, why);
    cr_assert(strstr(err, why), "%s: error '%s' lacks '%s'", f->id, err, why);
}

static void
expect_pass(const struct mock_fixture *f, struct ex *e)
{
    char err[512];
    cr_assert_eq(mock_fixture_check(f, &e->r, err, sizeof(err)), 0, "%s: %s", f->id, err);
}

TestSuite(mock_fixtures, .init = load, .fini = unload);

Test(mock_fixtures, loads_every_fixture)
{
    cr_assert_eq(fx.n, 27);
    const struct mock_fixture *f = mock_fixtures_find(&fx, "openai_compat/split_data_line", 29);
    cr_assert_not_null(f);
    cr_assert_eq(f->ncuts, 8);
    cr_assert_eq(f->cuts[0], 2);
    cr_assert_eq(f->cuts[7], 1166);
    cr_assert_eq(f->body_len, 1171);
    cr_assert(f->stream);
    cr_assert(f->want_stream);

    f = mock_fixtures_find(&fx, "openai/chat_error_429", 21);
    cr_assert_not_null(f);
    cr_assert_not(f->stream);
    cr_assert_eq(f->status, 429);
    bool retry = false, ctype = false, rid = false;
    for (size_t i = 0; i < f->nheaders; i++) {
        retry |=
            strcmp(f->headers[i].name, "retry-after") == 0 && strcmp(f->headers[i].value, "1") == 0;
        ctype |= strcmp(f->headers[i].name, "content-type") == 0;
        rid |= strcmp(f->headers[i].name, "x-request-id") == 0;
        cr_assert(strncmp(f->headers[i].name, "x-ratelimit", 11) != 0, "only headers that matter");
    }
    cr_assert(retry && ctype && rid);

    f = mock_fixtures_find(&fx, "gemini/stream_generate_basic", 28);
    cr_assert_eq(f->npaths, 2);
    cr_assert_str_eq(f->query, "alt=sse");
    cr_assert_eq(f->provider, MOCK_PROV_GEMINI);
    cr_assert_null(mock_fixtures_find(&fx, "gemini/stream_generate", 22));
}

Test(mock_fixtures, every_example_request_passes)
{
    for (size_t i = 0; i < fx.n; i++) {
        struct ex e;
        ex_init(&e, fx.v[i].id);
        expect_pass(&fx.v[i], &e);
        ex_free(&e);
    }
}

Test(mock_fixtures, prefix_and_scenario_in_the_gemini_model_pass)
{
    const struct mock_fixture *f = mock_fixtures_find(&fx, "gemini/stream_generate_basic", 28);
    struct ex e;
    ex_init(&e, f->id);
    e.r.path =
        SL_SLICE("/base/v1/models/fixture:gemini/stream_generate_basic@cuts:streamGenerateContent");
    expect_pass(f, &e);
    e.r.path = SL_SLICE("/v2/models/x:streamGenerateContent");
    expect_fail(f, &e, "does not match the fixture's /v1beta/models/gemini-2.5-flash");
    e.r.path = SL_SLICE("/v1beta/models/x:streamGenerateContent");
    e.r.query = SL_SLICE("key=abc&alt=sse");
    ex_set_header(&e, "x-goog-api-key", NULL);
    expect_pass(f, &e);
    e.r.query = SL_SLICE("alt=sse");
    expect_fail(f, &e, "x-goog-api-key");
    ex_free(&e);

    f = mock_fixtures_find(&fx, "openai/chat_stream_basic", 24);
    ex_init(&e, f->id);
    e.r.path = SL_SLICE("/openai/proxy/v1/chat/completions");
    expect_pass(f, &e);
    ex_free(&e);
}

Test(mock_fixtures, openai_deviations)
{
    const struct mock_fixture *f = mock_fixtures_find(&fx, "openai/chat_stream_basic", 24);
    struct ex e;

    ex_init(&e, f->id);
    e.r.method = SL_SLICE("PUT");
    expect_fail(f, &e, "method PUT, expected POST");
    ex_free(&e);

    ex_init(&e, f->id);
    e.r.path = SL_SLICE("/v1/messages");
    expect_fail(f, &e, "path /v1/messages does not match the fixture's /v1/chat/completions");
    ex_free(&e);

    ex_init(&e, f->id);
    ex_set_header(&e, "authorization", NULL);
    expect_fail(f, &e, "Authorization: Bearer");
    ex_set_header(&e, "authorization", "Bearer ");
    expect_fail(f, &e, "Authorization: Bearer");
    ex_set_header(&e, "authorization", "Basic abc");
    expect_fail(f, &e, "Authorization: Bearer");
    ex_free(&e);

    ex_init(&e, f->id);
    ex_set_header(&e, "content-type", "text/plain");
    expect_fail(f, &e, "Content-Type: application/json");
    ex_set_header(&e, "content-type", "application/json; charset=utf-8");
    expect_pass(f, &e);
    ex_free(&e);

    ex_init(&e, f->id);
    json_object_set_new(e.r.json, "stream", json_false());
    expect_fail(f, &e, "'stream' must be true");
    json_object_del(e.r.json, "stream");
    expect_fail(f, &e, "'stream' must be true");
    ex_free(&e);

    ex_init(&e, f->id);
    json_object_del(e.r.json, "stream_options");
    expect_fail(f, &e, "stream_options.include_usage");
    ex_free(&e);

    ex_init(&e, f->id);
    json_object_del(e.r.json, "messages");
    expect_fail(f, &e, "'messages' must be an array");
    ex_free(&e);

    ex_init(&e, f->id);
    json_decref(e.r.json);
    e.r.json = NULL;
    expect_fail(f, &e, "JSON object");
    ex_free(&e);
}

Test(mock_fixtures, compat_fixture_without_usage_needs_no_include_usage)
{
    const struct mock_fixture *f = mock_fixtures_find(&fx, "openai_compat/split_data_line", 29);
    struct ex e;
    ex_init(&e, f->id);
    cr_assert_null(json_object_get(e.r.json, "stream_options"));
    expect_pass(f, &e);
    ex_free(&e);
}

Test(mock_fixtures, anthropic_deviations)
{
    const struct mock_fixture *f = mock_fixtures_find(&fx, "anthropic/messages_stream_basic", 31);
    struct ex e;

    ex_init(&e, f->id);
    ex_set_header(&e, "x-api-key", NULL);
    expect_fail(f, &e, "x-api-key");
    ex_set_header(&e, "authorization", "Bearer sk-ant");
    ex_set_header(&e, "anthropic-version", "2026-10-21");
    expect_pass(f, &e);
    json_object_set_new(e.r.json, "temperature", json_real(0.5));
    expect_fail(f, &e, "'temperature' is rejected under anthropic-version 2026-10-21");
    ex_set_header(&e, "anthropic-version", "2023-06-01");
    expect_pass(f, &e);
    ex_set_header(&e, "anthropic-version", NULL);
    expect_fail(f, &e, "anthropic-version");
    ex_free(&e);

    ex_init(&e, f->id);
    json_object_del(e.r.json, "max_tokens");
    expect_fail(f, &e, "'max_tokens' must be an integer");
    ex_free(&e);
}

Test(mock_fixtures, gemini_and_ollama_deviations)
{
    const struct mock_fixture *f = mock_fixtures_find(&fx, "gemini/stream_generate_basic", 28);
    struct ex e;
    ex_init(&e, f->id);
    e.r.query = SL_SLICE("");
    expect_fail(f, &e, "alt=sse is required");
    e.r.query = SL_SLICE("alt=json");
    expect_fail(f, &e, "alt=sse is required");
    e.r.query = SL_SLICE("alt=sse");
    json_object_del(e.r.json, "contents");
    expect_fail(f, &e, "'contents' must be an array");
    ex_free(&e);

    f = mock_fixtures_find(&fx, "ollama/chat_stream_basic", 24);
    ex_init(&e, f->id);
    ex_set_header(&e, "authorization", NULL);
    expect_pass(f, &e);
    json_object_del(e.r.json, "stream");
    expect_pass(f, &e);
    json_object_set_new(e.r.json, "stream", json_false());
    expect_fail(f, &e, "'stream' must be true or absent");
    ex_free(&e);
}

Test(mock_fixtures, missing_directory_is_an_error)
{
    struct mock_fixtures none;
    char err[512];
    cr_assert_eq(mock_fixtures_load(&none, "/nonexistent-dir", err, sizeof(err)), -1);
    cr_assert(strstr(err, "/nonexistent-dir/index.json"), "%s", err);
    cr_assert_eq(none.n, 0);
    cr_assert_null(none.v);
}
