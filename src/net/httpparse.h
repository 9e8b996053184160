/*
 * HTTP/1.x request parsing without I/O: bytes in, requests (or a refusal) out.
 *
 * The parser drives http-parser over whatever pieces the caller has, keeps the request
 * line and headers of the request in progress (as offsets into one buffer) and its body,
 * and checks the limits as the bytes arrive: request line (414), headers (431), body (413),
 * HTTP version (505), malformed (400). Once a request's head is complete, and before any of
 * its body is read, the head callback decides about the body: how much this request may
 * carry (a route that takes none refuses one at once), or a refusal with its own status.
 * It knows nothing of sockets, loops or timers, so that it can be unit-tested and fuzzed
 * with arbitrary bytes cut anywhere (tests/fuzz/fuzz_http.c); net/http.c is its glue to a
 * connection.
 *
 * Also here: the request view the application gets, and the helpers that read it (headers,
 * the query string, percent-decoding).
 */
#ifndef SL_NET_HTTPPARSE_H
#define SL_NET_HTTPPARSE_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"

#define SL_HTTP_MAX_HEADERS 64

struct sl_http_header {
    struct sl_slice name;
    struct sl_slice value;
};

/* A parsed request; every slice is valid until the parser is fed again or moves on. */
struct sl_http_req {
    const char *method; /* "GET", "POST", ... */
    bool is_get, is_head;
    struct sl_slice target; /* as sent: path?query */
    struct sl_slice path;   /* before '?', still percent-encoded */
    struct sl_slice query;  /* after '?', without it */
    struct sl_http_header headers[SL_HTTP_MAX_HEADERS];
    size_t nheaders;
    struct sl_slice body;
    int64_t content_length; /* as declared; -1 without Content-Length (none, or chunked) */
    bool has_body;          /* a body was declared: Content-Length > 0 or chunked */
    bool keep_alive;
    bool upgrade;
    bool over_capacity; /* set by net/http.c: accepted past the connection limit */
    unsigned short http_minor;
};

struct sl_http_limits {
    uint64_t max_header_bytes; /* request line + headers */
    uint64_t max_url_bytes;    /* the request target alone (414); 0: max_header_bytes */
    uint64_t max_body_bytes;   /* the most any request may carry; routes may allow less */
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms; /* from the end of the head to the end of the body; 0: header's */
    uint64_t keepalive_timeout_ms;
};

/*
 * What the head callback decides. On entry max_body is the limit from sl_http_limits and
 * status is 0. The callback may lower max_body (0: this request may carry no body; one
 * declared is refused with 413), or refuse the request at once by setting status (with a
 * message and optional header lines, both static strings): it is answered without reading
 * its body, and the connection closes after the answer.
 */
struct sl_http_head_verdict {
    uint64_t max_body;
    int status;
    const char *message;
    const char *headers; /* lines ending in "\r\n", or NULL */
};

/* Called once per request, when its head is complete; head->body is empty. */
typedef void (*sl_http_head_cb)(void *ud, const struct sl_http_req *head,
                                struct sl_http_head_verdict *v);

enum sl_http_phase {
    SL_HTTP_IDLE, /* between requests: no byte of the next one yet */
    SL_HTTP_HEAD, /* in a request line or headers */
    SL_HTTP_BODY, /* the head is in, its body is not complete */
};

enum sl_http_parse_rc {
    SL_HTTP_ERROR = -1,    /* refused: see sl_http_parser_error(); the parser is dead */
    SL_HTTP_NEED_MORE = 0, /* every byte was used; the request is not complete */
    SL_HTTP_REQUEST = 1,   /* a request is complete: sl_http_parser_request() */
};

/*
 * The state of one connection's parsing. The layout is public only so that it can be
 * embedded (net/http.c); its fields are the parser's own.
 */
struct sl_http_parser {
    http_parser hp;
    const struct sl_http_limits *limits;
    sl_http_head_cb on_head;
    void *ud;
    struct sl_buf raw; /* URL and header bytes of the request in progress */
    struct sl_buf body;
    uint32_t url_len;
    struct {
        uint32_t name_off, name_len, value_off, value_len;
    } hdr[SL_HTTP_MAX_HEADERS];
    size_t nhdr;
    uint64_t max_body;      /* of the request in progress, as decided at its head */
    int64_t content_length; /* as declared in its head; -1: none */
    bool has_body;          /* its head declared a body */
    uint8_t st;             /* where in the request (private states) */
    bool complete;          /* a request is complete and not yet released */
    bool want_continue;
    int error_status; /* a refusal decided inside a parser callback */
    const char *error_message;
    const char *error_headers;
};

/*
 * Sets up the parser. limits must outlive it. on_head may be NULL (every request may carry
 * up to limits->max_body_bytes). Holds no memory until bytes arrive.
 */
void sl_http_parser_init(struct sl_http_parser *p, const struct sl_http_limits *limits,
                         sl_http_head_cb on_head, void *ud);

/* Releases the request buffers; the parser may be initialised again. */
void sl_http_parser_cleanup(struct sl_http_parser *p);

/*
 * Parses up to len bytes of data and reports how many it used in *used:
 *   SL_HTTP_NEED_MORE  all of them; feed the next bytes when they come;
 *   SL_HTTP_REQUEST    a request is complete with the bytes up to *used; what follows is the
 *                      next request's (or, after an upgrade, the new protocol's). Read it with
 *                      sl_http_parser_request(), then sl_http_parser_next() before feeding again;
 *   SL_HTTP_ERROR      the bytes up to *used broke a rule: answer sl_http_parser_error() and
 *                      close; the parser takes nothing more.
 * Bytes are copied as needed: data may be reused once the call returns. The head callback
 * runs inside this call.
 */
int sl_http_parser_feed(struct sl_http_parser *p, const char *data, size_t len, size_t *used);

/* The complete request (after SL_HTTP_REQUEST); its slices live until the next call. */
void sl_http_parser_request(const struct sl_http_parser *p, struct sl_http_req *req);

/* Done with the complete request: frees its buffers, ready for the next one. */
void sl_http_parser_next(struct sl_http_parser *p);

/* Where the parser is, for the caller's timeouts. */
enum sl_http_phase sl_http_parser_phase(const struct sl_http_parser *p);

/*
 * True once per request that announced a body with `Expect: 100-continue` and passed the
 * head's checks: the moment to answer "100 Continue". Read it after each feed.
 */
bool sl_http_parser_take_continue(struct sl_http_parser *p);

/* The refusal after SL_HTTP_ERROR: status, a static reason, static extra header lines or NULL. */
int sl_http_parser_error(const struct sl_http_parser *p, const char **message,
                         const char **headers);

/* --- reading a request ------------------------------------------------------------------ */

/* Header value by name (case-insensitive); {NULL, 0} if absent. The first one wins. */
struct sl_slice sl_http_get_header(const struct sl_http_req *req, const char *name);

/*
 * Looks up parameter `name` (exact, case-sensitive) in a query string (the part after '?')
 * and percent-decodes its value ('+' is a space) into out (NUL-terminated). A parameter
 * without '=' has the empty value. Returns the value's length, -1 if absent, -2 if present
 * but malformed (bad escape, encoded NUL) or longer than outlen - 1.
 */
long sl_http_query_get(struct sl_slice query, const char *name, char *out, size_t outlen);

/* sl_http_query_get() on the request's query. */
long sl_http_query_param(const struct sl_http_req *req, const char *name, char *out, size_t outlen);

/*
 * Percent-decodes src into out (NUL-terminated). Returns the length, or -1 on a bad
 * escape, an encoded NUL, or overflow. '+' is kept as is (paths) unless plus_space.
 */
long sl_http_decode(struct sl_slice src, char *out, size_t outlen, bool plus_space);

#endif
