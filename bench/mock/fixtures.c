#include "fixtures.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "net/http.h"

/* Response headers worth replaying (README: only these matter to a client). */
static const char *const kept_headers[] = {
    "content-type", "retry-after", "retry-after-ms", "x-request-id", "request-id", "x-should-retry",
};
_Static_assert(SL_ARRAY_LEN(kept_headers) <= MOCK_FIXTURE_MAX_HEADERS, "room for kept headers");

/* A fixture body larger than this is a broken fixture directory, not a test case. */
#define MAX_BODY_BYTES (16u << 20)

static char *
join_path(const char *dir, const char *name)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b, "%s/%s", dir, name);
    sl_buf_cstr(&b);
    return sl_buf_steal(&b, NULL);
}

static int
read_file(const char *path, char **out, size_t *len)
{
    int rc = -1;
    struct sl_buf b = SL_BUF_INIT;
    FILE *f = fopen(path, "rb");
    if (!f)
        goto out;
    for (;;) {
        char *dst = sl_buf_reserve(&b, 65536);
        size_t n = fread(dst, 1, 65536, f);
        sl_buf_commit(&b, n);
        if (sl_buf_len(&b) > MAX_BODY_BYTES)
            goto out;
        if (n < 65536)
            break;
    }
    if (ferror(f))
        goto out;
    sl_buf_cstr(&b);
    *out = sl_buf_steal(&b, len);
    rc = 0;
out:
    if (f)
        fclose(f);
    sl_buf_free(&b);
    return rc;
}

static char *
dup_lower(const char *s)
{
    char *d = sl_strdup(s);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

static void
fixture_free(struct mock_fixture *f)
{
    free(f->id);
    for (size_t i = 0; i < f->nheaders; i++) {
        free(f->headers[i].name);
        free(f->headers[i].value);
    }
    free(f->body);
    free(f->cuts);
    free(f->method);
    for (size_t i = 0; i < f->npaths; i++)
        free(f->paths[i]);
    free(f->query);
    memset(f, 0, sizeof(*f));
}

static int
load_meta(struct mock_fixture *f, json_t *meta, char *err, size_t errlen)
{
    json_t *req = json_object_get(meta, "request");
    json_t *resp = json_object_get(meta, "response");
    if (!json_is_object(req) || !json_is_object(resp))
        return mock_fail(err, errlen, "%s: sidecar lacks request/response", f->id);

    json_t *status = json_object_get(resp, "status");
    if (!json_is_integer(status))
        return mock_fail(err, errlen, "%s: response.status missing", f->id);
    f->status = (int)json_integer_value(status);

    json_t *hdrs = json_object_get(resp, "headers");
    const char *k;
    json_t *v;
    json_object_foreach(hdrs, k, v)
    {
        for (size_t i = 0; i < SL_ARRAY_LEN(kept_headers); i++) {
            if (strcasecmp(k, kept_headers[i]) == 0 && json_is_string(v) &&
                f->nheaders < MOCK_FIXTURE_MAX_HEADERS) {
                f->headers[f->nheaders].name = dup_lower(k);
                f->headers[f->nheaders].value = sl_strdup(json_string_value(v));
                f->nheaders++;
            }
        }
    }

    const char *method = json_string_value(json_object_get(req, "method"));
    const char *path = json_string_value(json_object_get(req, "path"));
    const char *query = json_string_value(json_object_get(req, "query"));
    if (!method || !path)
        return mock_fail(err, errlen, "%s: request.method/path missing", f->id);
    f->method = sl_strdup(method);
    f->query = sl_strdup(query ? query : "");
    f->paths[f->npaths++] = sl_strdup(path);
    json_t *alts = json_object_get(req, "path_alternatives");
    size_t i;
    json_array_foreach(alts, i, v)
    {
        if (json_is_string(v) && f->npaths < MOCK_FIXTURE_MAX_PATHS)
            f->paths[f->npaths++] = sl_strdup(json_string_value(v));
    }

    json_t *body = json_object_get(req, "body");
    f->want_stream = json_is_true(json_object_get(body, "stream"));
    f->want_include_usage =
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));

    json_t *cuts = json_object_get(json_object_get(meta, "delivery"), "chunk_boundaries");
    if (json_array_size(cuts) > 0) {
        f->cuts = sl_calloc(json_array_size(cuts), sizeof(*f->cuts));
        json_array_foreach(cuts, i, v)
        {
            json_int_t c = json_integer_value(v);
            size_t prev = f->ncuts ? f->cuts[f->ncuts - 1] : 0;
            if (!json_is_integer(v) || c <= 0 || (size_t)c >= f->body_len || (size_t)c <= prev)
                return mock_fail(err, errlen, "%s: bad chunk boundary at index %zu", f->id, i);
            f->cuts[f->ncuts++] = (size_t)c;
        }
    }
    return 0;
}

static int
load_one(struct mock_fixture *f, const char *dir, json_t *entry, char *err, size_t errlen)
{
    int rc = -1;
    char *path = NULL;
    json_t *meta = NULL;
    const char *id = json_string_value(json_object_get(entry, "id"));
    const char *prov = json_string_value(json_object_get(entry, "provider"));
    const char *kind = json_string_value(json_object_get(entry, "kind"));
    const char *meta_name = json_string_value(json_object_get(entry, "meta"));
    const char *body_name = json_string_value(json_object_get(entry, "body"));

    if (!id || !prov || !kind || !meta_name || !body_name) {
        mock_fail(err, errlen, "index.json: incomplete entry");
        goto out;
    }
    f->id = sl_strdup(id);
    f->provider = mock_provider_from_name(prov, strlen(prov));
    if (f->provider == MOCK_PROV_NONE) {
        mock_fail(err, errlen, "%s: unknown provider %s", id, prov);
        goto out;
    }
    f->stream = strcmp(kind, "http_error") != 0;

    path = join_path(dir, body_name);
    if (read_file(path, &f->body, &f->body_len) < 0) {
        mock_fail(err, errlen, "%s: cannot read %s", id, path);
        goto out;
    }
    free(path);
    path = join_path(dir, meta_name);
    json_error_t jerr;
    meta = json_load_file(path, 0, &jerr);
    if (!meta) {
        mock_fail(err, errlen, "%s: %s: %s", id, path, jerr.text);
        goto out;
    }
    rc = load_meta(f, meta, err, errlen);
out:
    free(path);
    json_decref(meta);
    return rc;
}

int
mock_fixtures_load(struct mock_fixtures *fx, const char *dir, char *err, size_t errlen)
{
    int rc = -1;
    json_error_t jerr;
    char *path = join_path(dir, "index.json");
    json_t *index = json_load_file(path, 0, &jerr);
    json_t *list = json_object_get(index, "fixtures");

    fx->v = NULL;
    fx->n = 0;
    if (!index) {
        mock_fail(err, errlen, "%s: %s", path, jerr.text);
        goto out;
    }
    if (!json_is_array(list)) {
        mock_fail(err, errlen, "%s: no fixtures array", path);
        goto out;
    }
    fx->v = sl_calloc(json_array_size(list) + 1, sizeof(*fx->v));
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        /* Count it first so that a half-loaded fixture is freed with the rest. */
        fx->n++;
        if (load_one(&fx->v[i], dir, entry, err, errlen) < 0) {
            mock_fixtures_free(fx);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(index);
    free(path);
    return rc;
}

void
mock_fixtures_free(struct mock_fixtures *fx)
{
    for (size_t i = 0; i < fx->n; i++)
        fixture_free(&fx->v[i]);
    free(fx->v);
    fx->v = NULL;
    fx->n = 0;
}

const struct mock_fixture *
mock_fixtures_find(const struct mock_fixtures *fx, const char *id, size_t n)
{
    for (size_t i = 0; i < fx->n; i++) {
        if (strlen(fx->v[i].id) == n && memcmp(fx->v[i].id, id, n) == 0)
            return &fx->v[i];
    }
    return NULL;
}

/* --- request check ---------------------------------------------------------------------- */

/*
 * Does the request's route match one recorded path? Both go through the route
 * classifier so that a prefix is ignored; for Gemini only the version segment
 * ("/v1beta/models/" or "/v1/models/") is compared because {model} may be the scenario.
 */
static bool
path_matches(struct mock_route got, const char *want_path)
{
    struct mock_route want = mock_route_classify(sl_slice_make(want_path, strlen(want_path)));
    if (want.provider == MOCK_PROV_NONE)
        return sl_slice_eq(got.shape, want_path);
    if (got.provider != want.provider)
        return false;
    if (want.provider != MOCK_PROV_GEMINI)
        return got.shape.len == want.shape.len &&
               memcmp(got.shape.ptr, want.shape.ptr, got.shape.len) == 0;
    size_t gv = (size_t)(got.model.ptr - got.shape.ptr);
    size_t wv = (size_t)(want.model.ptr - want.shape.ptr);
    return gv == wv && memcmp(got.shape.ptr, want.shape.ptr, gv) == 0;
}

static bool
nonempty_bearer(struct sl_slice v)
{
    if (!v.ptr || v.len <= 7 || strncasecmp(v.ptr, "Bearer ", 7) != 0)
        return false;
    for (size_t i = 7; i < v.len; i++) {
        if (v.ptr[i] != ' ')
            return true;
    }
    return false;
}

static int
check_query(const struct mock_fixture *f, const struct mock_req *r, char *err, size_t errlen)
{
    const char *q = f->query;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        char name[64], want[256], got[256];
        size_t klen = eq ? (size_t)(eq - q) : len;
        if (klen >= sizeof(name))
            return mock_fail(err, errlen, "fixture query too long");
        memcpy(name, q, klen);
        name[klen] = '\0';
        struct sl_slice wv = eq ? sl_slice_make(eq + 1, len - klen - 1) : sl_slice_make("", 0);
        long wl = sl_http_decode(wv, want, sizeof(want), true);
        long gl = sl_http_query_get(r->query, name, got, sizeof(got));
        if (wl < 0 || gl < 0 || strcmp(want, got) != 0)
            return mock_fail(err, errlen, "query parameter %s=%s is required (got query '%.*s')",
                             name, wl < 0 ? "" : want, (int)r->query.len,
                             r->query.ptr ? r->query.ptr : "");
        q += len;
        if (*q == '&')
            q++;
    }
    return 0;
}

static int
check_auth(const struct mock_fixture *f, const struct mock_req *r, char *err, size_t errlen)
{
    struct sl_slice auth = mock_req_header(r, "authorization");
    switch (f->provider) {
    case MOCK_PROV_OPENAI:
        if (!nonempty_bearer(auth))
            return mock_fail(err, errlen, "header 'Authorization: Bearer <key>' is required");
        break;
    case MOCK_PROV_ANTHROPIC: {
        struct sl_slice key = mock_req_header(r, "x-api-key");
        struct sl_slice ver = mock_req_header(r, "anthropic-version");
        if (!(key.ptr && key.len > 0) && !nonempty_bearer(auth))
            return mock_fail(
                err, errlen,
                "header 'x-api-key: <key>' (or 'Authorization: Bearer <key>') is required");
        if (!ver.ptr || ver.len == 0)
            return mock_fail(err, errlen, "header 'anthropic-version' is required");
        if (sl_slice_eq(ver, "2026-10-21") && json_is_object(r->json)) {
            static const char *const gone[] = {"temperature", "top_p", "top_k"};
            for (size_t i = 0; i < SL_ARRAY_LEN(gone); i++) {
                if (json_object_get(r->json, gone[i]))
                    return mock_fail(
                        err, errlen,
                        "body field '%s' is rejected under anthropic-version 2026-10-21", gone[i]);
            }
        }
        break;
    }
    case MOCK_PROV_GEMINI: {
        struct sl_slice key = mock_req_header(r, "x-goog-api-key");
        char qkey[512];
        if (!(key.ptr && key.len > 0) &&
            sl_http_query_get(r->query, "key", qkey, sizeof(qkey)) <= 0)
            return mock_fail(err, errlen,
                             "header 'x-goog-api-key: <key>' (or query ?key=) is required");
        break;
    }
    case MOCK_PROV_OLLAMA:
    case MOCK_PROV_NONE:
        break;
    }
    return 0;
}

static int
check_body(const struct mock_fixture *f, const struct mock_req *r, char *err, size_t errlen)
{
    json_t *b = r->json;
    if (!json_is_object(b))
        return mock_fail(err, errlen, "the body must be a JSON object");

    static const struct {
        enum mock_provider p;
        const char *key;
        int type; /* JSON_STRING, JSON_ARRAY, JSON_INTEGER */
    } required[] = {
        {MOCK_PROV_OPENAI, "model", JSON_STRING},
        {MOCK_PROV_OPENAI, "messages", JSON_ARRAY},
        {MOCK_PROV_ANTHROPIC, "model", JSON_STRING},
        {MOCK_PROV_ANTHROPIC, "max_tokens", JSON_INTEGER},
        {MOCK_PROV_ANTHROPIC, "messages", JSON_ARRAY},
        {MOCK_PROV_GEMINI, "contents", JSON_ARRAY},
        {MOCK_PROV_OLLAMA, "model", JSON_STRING},
        {MOCK_PROV_OLLAMA, "messages", JSON_ARRAY},
    };
    static const char *const type_names[] = {
        [JSON_STRING] = "a string",
        [JSON_ARRAY] = "an array",
        [JSON_INTEGER] = "an integer",
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(required); i++) {
        if (required[i].p != f->provider)
            continue;
        json_t *v = json_object_get(b, required[i].key);
        if (!v || (int)json_typeof(v) != required[i].type)
            return mock_fail(err, errlen, "body field '%s' must be %s", required[i].key,
                             type_names[required[i].type]);
    }

    json_t *stream = json_object_get(b, "stream");
    if (f->provider == MOCK_PROV_OLLAMA) {
        if (stream && !json_is_true(stream))
            return mock_fail(err, errlen, "body field 'stream' must be true or absent");
    } else if (f->want_stream && !json_is_true(stream)) {
        return mock_fail(err, errlen, "body field 'stream' must be true");
    }
    if (f->want_include_usage &&
        !json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")))
        return mock_fail(err, errlen,
                         "body field 'stream_options.include_usage' must be true "
                         "(the fixture's stream carries usage)");
    return 0;
}

int
mock_fixture_check(const struct mock_fixture *f, const struct mock_req *r, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!sl_slice_eq(r->method, f->method))
        return mock_fail(err, errlen, "method %.*s, expected %s", (int)r->method.len, r->method.ptr,
                         f->method);

    struct mock_route route = mock_route_classify(r->path);
    bool path_ok = false;
    for (size_t i = 0; i < f->npaths && !path_ok; i++)
        path_ok = path_matches(route, f->paths[i]);
    if (!path_ok)
        return mock_fail(err, errlen, "path %.*s does not match the fixture's %s%s",
                         (int)r->path.len, r->path.ptr, f->paths[0],
                         f->npaths > 1 ? " (or its alternatives)" : "");

    if (check_query(f, r, err, errlen) < 0 || check_auth(f, r, err, errlen) < 0)
        return -1;

    struct sl_slice ct = mock_req_header(r, "content-type");
    if (!mock_media_type_is(ct, "application/json"))
        return mock_fail(err, errlen,
                         "header 'Content-Type: application/json' is required (got '%.*s')",
                         (int)ct.len, ct.ptr ? ct.ptr : "");
    return check_body(f, r, err, errlen);
}
