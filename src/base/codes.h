/*
 * The client-visible error codes and WebSocket close codes of DESIGN.md.
 *
 * These strings and numbers are a contract with every client (and with the seeds'
 * frontends): change them only together with docs/protocol.md.
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

#endif
