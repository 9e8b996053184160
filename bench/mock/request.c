#include "request.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"

static const char *const provider_names[] = {
    [MOCK_PROV_NONE] = "none",           [MOCK_PROV_OPENAI] = "openai",
    [MOCK_PROV_ANTHROPIC] = "anthropic", [MOCK_PROV_GEMINI] = "gemini",
    [MOCK_PROV_OLLAMA] = "ollama",
};

const char *
mock_provider_name(enum mock_provider p)
{
    return (unsigned)p < SL_ARRAY_LEN(provider_names) ? provider_names[p] : "none";
}

enum mock_provider
mock_provider_from_name(const char *s, size_t n)
{
    struct sl_slice v = sl_slice_make(s, n);
    if (sl_slice_eq(v, "openai") || sl_slice_eq(v, "openai_compat"))
        return MOCK_PROV_OPENAI;
    if (sl_slice_eq(v, "anthropic"))
        return MOCK_PROV_ANTHROPIC;
    if (sl_slice_eq(v, "gemini"))
        return MOCK_PROV_GEMINI;
    if (sl_slice_eq(v, "ollama"))
        return MOCK_PROV_OLLAMA;
    return MOCK_PROV_NONE;
}

static bool
ends_with(struct sl_slice s, const char *suffix, size_t *start)
{
    size_t n = strlen(suffix);
    if (s.len < n || memcmp(s.ptr + s.len - n, suffix, n) != 0)
        return false;
    *start = s.len - n;
    return true;
}

struct mock_route
mock_route_classify(struct sl_slice path)
{
    struct mock_route r = {MOCK_PROV_NONE, {NULL, 0}, {NULL, 0}};
    size_t at;

    if (ends_with(path, "/v1/chat/completions", &at)) {
        r.provider = MOCK_PROV_OPENAI;
    } else if (ends_with(path, "/v1/messages", &at)) {
        r.provider = MOCK_PROV_ANTHROPIC;
    } else if (ends_with(path, "/api/chat", &at)) {
        r.provider = MOCK_PROV_OLLAMA;
    } else if (ends_with(path, ":streamGenerateContent", &at)) {
        /* The model may itself hold '/' and ':' (a scenario such as fixture:gemini/x), so
         * take the earliest "/models/" that follows a version segment. */
        static const char *const versions[] = {"/v1beta/models/", "/v1/models/"};
        long best = -1;
        size_t best_len = 0;
        for (size_t i = 0; i < SL_ARRAY_LEN(versions); i++) {
            const char *p = memmem(path.ptr, at, versions[i], strlen(versions[i]));
            if (p && (best < 0 || p - path.ptr < best)) {
                best = p - path.ptr;
                best_len = strlen(versions[i]);
            }
        }
        if (best < 0 || (size_t)best + best_len >= at)
            return r;
        r.provider = MOCK_PROV_GEMINI;
        r.model = sl_slice_make(path.ptr + best + best_len, at - (size_t)best - best_len);
        at = (size_t)best;
    } else {
        return r;
    }
    r.shape = sl_slice_make(path.ptr + at, path.len - at);
    return r;
}

struct sl_slice
mock_req_header(const struct mock_req *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (sl_slice_eq(r->headers[i].name, name))
            return r->headers[i].value;
    }
    return sl_slice_make(NULL, 0);
}

bool
mock_media_type_is(struct sl_slice value, const char *type)
{
    if (!value.ptr)
        return false;
    size_t n = 0;
    while (n < value.len && value.ptr[n] != ';')
        n++;
    while (n > 0 && (value.ptr[n - 1] == ' ' || value.ptr[n - 1] == '\t'))
        n--;
    size_t s = 0;
    while (s < n && (value.ptr[s] == ' ' || value.ptr[s] == '\t'))
        s++;
    size_t tl = strlen(type);
    return n - s == tl && strncasecmp(value.ptr + s, type, tl) == 0;
}

int
mock_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}
