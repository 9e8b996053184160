/*
 * The client-visible error codes and WebSocket close codes of DESIGN.md, and the ranges of
 * the internal error codes of each layer.
 *
 * The client-visible strings and numbers are a contract with every client (and with the
 * seeds' frontends): change them only together with docs/protocol.md.
 */
#ifndef SL_BASE_CODES_H
#define SL_BASE_CODES_H

#include <stdbool.h>

enum sl_errcode {
    SL_ERR_NONE = 0,
    SL_ERR_AUTH_REQUIRED,
    SL_ERR_AUTH_FAILED,
    SL_ERR_BAD_REQUEST,
    SL_ERR_EMPTY_MESSAGE,
    SL_ERR_UNKNOWN_MODEL,
    SL_ERR_TOO_LARGE,
    SL_ERR_RATE_LIMITED,
    SL_ERR_TOO_MANY_STREAMS,
    SL_ERR_DUPLICATE_ID,
    SL_ERR_NOT_FOUND,
    SL_ERR_UPSTREAM_ERROR,
    SL_ERR_UPSTREAM_TIMEOUT,
    SL_ERR_UPSTREAM_RATE_LIMITED,
    SL_ERR_UPSTREAM_AUTH,
    SL_ERR_BUDGET_EXCEEDED,
    SL_ERR_OVERLOADED,
    SL_ERR_SHUTTING_DOWN,
    SL_ERR_INTERNAL,
    SL_ERR__COUNT
};

/* "AUTH_REQUIRED", ... */
const char *sl_errcode_name(enum sl_errcode code);

/* Whether a client may retry the same request later (used when nothing more specific is known). */
bool sl_errcode_retryable(enum sl_errcode code);

/*
 * The limits a request can run into (src/limits/limits.h): the `limit` label of
 * sluice_rate_limited_total and the name given in the refusal's message.
 */
enum sl_limit {
    SL_LIMIT_MESSAGES,         /* messages per minute per identity */
    SL_LIMIT_STREAMS,          /* concurrent streams per identity */
    SL_LIMIT_CONNECTIONS_USER, /* connections per identity */
    SL_LIMIT_CONNECTIONS_IP,   /* connections per client address */
    SL_LIMIT_TOKENS,           /* input + output tokens per minute per identity */
    SL_LIMIT_BUDGET_DAY,       /* USD per UTC day per identity */
    SL_LIMIT_BUDGET_MONTH,     /* USD per UTC month per identity */
    SL_LIMIT__COUNT
};

/* "messages", "streams", "connections_user", "connections_ip", "tokens", "budget_day", ... */
const char *sl_limit_name(enum sl_limit limit);

enum sl_close_code {
    SL_CLOSE_NORMAL = 1000,
    SL_CLOSE_GOING_AWAY = 1001,
    SL_CLOSE_PROTOCOL_ERROR = 1002,
    SL_CLOSE_UNSUPPORTED = 1003,
    SL_CLOSE_INVALID_DATA = 1007,
    SL_CLOSE_POLICY = 1008,
    SL_CLOSE_TOO_BIG = 1009,
    SL_CLOSE_INTERNAL = 1011,
    SL_CLOSE_RESTART = 1012,
    SL_CLOSE_TRY_AGAIN = 1013,
    SL_CLOSE_AUTH_FAILED = 4001,
    SL_CLOSE_AUTH_TIMEOUT = 4003,
    SL_CLOSE_HEARTBEAT_TIMEOUT = 4008,
    SL_CLOSE_RATE_LIMITED = 4029,
};

enum sl_finish {
    SL_FINISH_STOP,
    SL_FINISH_LENGTH,
    SL_FINISH_TOOL_CALLS,
    SL_FINISH_CONTENT_FILTER,
    SL_FINISH_ERROR,
};

/* "stop", "length", "tool_calls", "content_filter", "error" */
const char *sl_finish_name(enum sl_finish f);

/*
 * Internal error codes, apart from the client-visible enum sl_errcode above. A function that
 * fails returns a negative code of its layer, from one of that layer's enums in its range
 * below; the layer's strerror gives the text (never a secret, safe to log). A code thus tells
 * which layer made it, and a layer may pass another's code up unchanged without a collision.
 * Callers test `!= 0` (or `< 0`), never a bare -1.
 *
 *   range           layer     enums (texts)
 *   -100 .. -199    base      sl_base_error below, sl_pem_error (pem.h; sl_pem_strerror)
 *   -200 .. -299    config    sl_config_error (config.h; sl_config_strerror)
 *   -300 .. -399    net       reserved (net/ still returns -1 with a message or a close code)
 *   -1100 .. -1199  auth      sl_auth_error (auth.h; sl_auth_strerror)
 *   -1200 .. -1299  upstream  sl_sse_error, sl_ndjson_error, sl_fp_error, sl_router_error,
 *                             sl_wire_error_code (sl_upstream_strerror in upstream.h)
 *   -1300 .. -1399  proto, stream, core: reserved
 *   -1400 .. -1499  memory    sl_memory_error (memory/memory.h; sl_memory_strerror)
 *
 * Two exceptions, by contract with a library: callbacks handed to libcurl, libuv or wslay
 * return what those want, and the module-internal helpers of a layer may return -1 to their
 * own layer, which turns it into one of its codes.
 */
enum sl_err_range {
    SL_ERANGE_BASE = -100,
    SL_ERANGE_CONFIG = -200,
    SL_ERANGE_NET = -300,
    SL_ERANGE_AUTH = -1100,
    SL_ERANGE_UPSTREAM = -1200,
    SL_ERANGE_CORE = -1300,
    SL_ERANGE_MEMORY = -1400,
};

/* The base layer's own codes. */
enum sl_base_error {
    SL_BASE_EINVAL = -101, /* "malformed value": sl_parse_* of util.h */
};

/*
 * "base", "config", "net", "auth", "upstream", "core", "memory", or "none" for 0 and unknown
 * ranges.
 */
const char *sl_err_layer(int code);

/* The text of a base code ("unknown error" for anything else). */
const char *sl_base_strerror(int code);

#endif
