/*
 * The byte-exact provider fixtures (../shared/upstream-fixtures) and the check of a
 * request against a fixture's recorded request shape.
 *
 * Everything is loaded once at start-up: index.json, every sidecar and every body.
 * Bodies stay in memory for the life of the process, so serving a fixture never
 * touches the disk and a write can point straight into fixture memory.
 */
#ifndef MOCK_FIXTURES_H
#define MOCK_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"

#define MOCK_FIXTURE_MAX_HEADERS 8
#define MOCK_FIXTURE_MAX_PATHS 4

struct mock_fixture_header {
    char *name; /* lower case */
    char *value;
};

struct mock_fixture {
    char *id; /* "openai/chat_stream_basic" */
    enum mock_provider provider;
    bool stream; /* kind stream or stream_error: a 200 event stream; false for http_error */
    /* response */
    int status;
    struct mock_fixture_header headers[MOCK_FIXTURE_MAX_HEADERS]; /* the ones that matter */
    size_t nheaders;
    char *body;
    size_t body_len;
    size_t *cuts; /* delivery.chunk_boundaries, strictly increasing, each in (0, body_len) */
    size_t ncuts;
    /* what the request must look like */
    char *method;
    char *paths[MOCK_FIXTURE_MAX_PATHS]; /* request.path then path_alternatives */
    size_t npaths;
    char *query;             /* "alt=sse" or "" */
    bool want_stream;        /* the example body has "stream": true */
    bool want_include_usage; /* the example body has stream_options.include_usage: true */
};

struct mock_fixtures {
    struct mock_fixture *v;
    size_t n;
};

/*
 * Loads index.json and every fixture it lists from dir. On failure returns -1 with a
 * reason in err and leaves *fx empty; on success the caller frees with
 * mock_fixtures_free().
 */
int mock_fixtures_load(struct mock_fixtures *fx, const char *dir, char *err, size_t errlen);
void mock_fixtures_free(struct mock_fixtures *fx);

/* The fixture with this id, or NULL. */
const struct mock_fixture *mock_fixtures_find(const struct mock_fixtures *fx, const char *id,
                                              size_t n);

/*
 * Checks a request against the fixture's recorded request: method, path (or an
 * alternative, any prefix allowed; for Gemini the {model} segment is not compared,
 * since it may carry the scenario), query parameters, the provider's auth headers,
 * Content-Type JSON, and the body (a JSON object with the provider's required fields,
 * `stream: true` where the example has it, stream_options.include_usage likewise).
 * Returns 0 if the request passes, or -1 with the first problem, in words, in err.
 */
int mock_fixture_check(const struct mock_fixture *f, const struct mock_req *r, char *err,
                       size_t errlen);

#endif
