/*
 * What the mock knows about one HTTP request, and the pure helpers that read it.
 *
 * The server (server.c) fills a struct mock_req from the HTTP layer's request (its
 * slices borrow that layer's buffers); everything here only reads them, so routing
 * and header lookup are unit-tested without a socket. Header names are lower-cased
 * by the server before the request is handed on. Query parameters and percent-encoding
 * are sluice's own (sl_http_query_get, sl_http_decode in net/http.h).
 */
#ifndef MOCK_REQUEST_H
#define MOCK_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "base/util.h"

#define MOCK_MAX_HEADERS 64

struct mock_header {
    struct sl_slice name; /* lower case */
    struct sl_slice value;
};

struct mock_req {
    struct sl_slice method;
    struct sl_slice path;  /* without the query */
    struct sl_slice query; /* after '?', without it; empty if none */
    struct mock_header headers[MOCK_MAX_HEADERS];
    size_t nheaders;
    struct sl_slice body;
    json_t *json; /* the body parsed, or NULL when it is not JSON; owned by whoever parsed it */
};

/* The provider APIs the mock imitates. MOCK_PROV_NONE: not a provider route. */
enum mock_provider {
    MOCK_PROV_NONE = 0,
    MOCK_PROV_OPENAI,
    MOCK_PROV_ANTHROPIC,
    MOCK_PROV_GEMINI,
    MOCK_PROV_OLLAMA,
};

const char *mock_provider_name(enum mock_provider p);

/* "openai", "openai_compat" -> MOCK_PROV_OPENAI, ...; MOCK_PROV_NONE if unknown. */
enum mock_provider mock_provider_from_name(const char *s, size_t n);

/* Where a path leads. For Gemini, `model` is the raw (still percent-encoded) {model}. */
struct mock_route {
    enum mock_provider provider;
    struct sl_slice model;
    struct sl_slice shape; /* the path with any prefix removed, e.g. "/v1/chat/completions" */
};

/*
 * Classifies a path (no query) by its suffix, so that any prefix before the provider's
 * own path is accepted (a base_url with a path). Gemini paths are
 * .../v1beta/models/{m}:streamGenerateContent or .../v1/models/{m}:streamGenerateContent.
 * Returns the route; provider is MOCK_PROV_NONE if the path is none of these.
 */
struct mock_route mock_route_classify(struct sl_slice path);

/* Value of the first header with this lower-case name, or a slice with ptr NULL. */
struct sl_slice mock_req_header(const struct mock_req *r, const char *name);

/* Formats a message into err (when errlen > 0) and returns -1: the error path of the parsers. */
int mock_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* True if a Content-Type value has the given media type (parameters and case ignored). */
bool mock_media_type_is(struct sl_slice value, const char *type);

#endif
