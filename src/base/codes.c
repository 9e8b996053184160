#include "base/codes.h"

static const char *const names[SL_ERR__COUNT] = {
    [SL_ERR_NONE] = "NONE",
    [SL_ERR_AUTH_REQUIRED] = "AUTH_REQUIRED",
    [SL_ERR_AUTH_FAILED] = "AUTH_FAILED",
    [SL_ERR_BAD_REQUEST] = "BAD_REQUEST",
    [SL_ERR_EMPTY_MESSAGE] = "EMPTY_MESSAGE",
    [SL_ERR_UNKNOWN_MODEL] = "UNKNOWN_MODEL",
    [SL_ERR_TOO_LARGE] = "TOO_LARGE",
    [SL_ERR_RATE_LIMITED] = "RATE_LIMITED",
    [SL_ERR_TOO_MANY_STREAMS] = "TOO_MANY_STREAMS",
    [SL_ERR_DUPLICATE_ID] = "DUPLICATE_ID",
    [SL_ERR_NOT_FOUND] = "NOT_FOUND",
    [SL_ERR_UPSTREAM_ERROR] = "UPSTREAM_ERROR",
    [SL_ERR_UPSTREAM_TIMEOUT] = "UPSTREAM_TIMEOUT",
    [SL_ERR_UPSTREAM_RATE_LIMITED] = "UPSTREAM_RATE_LIMITED",
    [SL_ERR_UPSTREAM_AUTH] = "UPSTREAM_AUTH",
    [SL_ERR_BUDGET_EXCEEDED] = "BUDGET_EXCEEDED",
    [SL_ERR_OVERLOADED] = "OVERLOADED",
    [SL_ERR_SHUTTING_DOWN] = "SHUTTING_DOWN",
    [SL_ERR_INTERNAL] = "INTERNAL",
};

_Static_assert(sizeof(names) / sizeof(names[0]) == SL_ERR__COUNT, "every code has a name");

static const char *const limit_names[SL_LIMIT__COUNT] = {
    [SL_LIMIT_MESSAGES] = "messages",
    [SL_LIMIT_STREAMS] = "streams",
    [SL_LIMIT_CONNECTIONS_USER] = "connections_user",
    [SL_LIMIT_CONNECTIONS_IP] = "connections_ip",
    [SL_LIMIT_TOKENS] = "tokens",
    [SL_LIMIT_BUDGET_DAY] = "budget_day",
    [SL_LIMIT_BUDGET_MONTH] = "budget_month",
};

_Static_assert(sizeof(limit_names) / sizeof(limit_names[0]) == SL_LIMIT__COUNT,
               "every limit has a name");

const char *
sl_limit_name(enum sl_limit limit)
{
    if ((unsigned)limit >= SL_LIMIT__COUNT)
        return "unknown";
    return limit_names[limit];
}

const char *
sl_errcode_name(enum sl_errcode code)
{
    if ((unsigned)code >= SL_ERR__COUNT)
        return "INTERNAL";
    return names[code];
}

bool
sl_errcode_retryable(enum sl_errcode code)
{
    switch (code) {
    case SL_ERR_RATE_LIMITED:
    case SL_ERR_UPSTREAM_ERROR:
    case SL_ERR_UPSTREAM_TIMEOUT:
    case SL_ERR_UPSTREAM_RATE_LIMITED:
    case SL_ERR_OVERLOADED:
    case SL_ERR_SHUTTING_DOWN:
    case SL_ERR_INTERNAL:
        return true;
    default:
        return false;
    }
}

const char *
sl_finish_name(enum sl_finish f)
{
    switch (f) {
    case SL_FINISH_STOP:
        return "stop";
    case SL_FINISH_LENGTH:
        return "length";
    case SL_FINISH_TOOL_CALLS:
        return "tool_calls";
    case SL_FINISH_CONTENT_FILTER:
        return "content_filter";
    case SL_FINISH_ERROR:
        return "error";
    }
    return "error";
}

const char *
sl_err_layer(int code)
{
    if (code <= -100 && code > -200)
        return "base";
    if (code <= -200 && code > -300)
        return "config";
    if (code <= -300 && code > -400)
        return "net";
    if (code <= -1100 && code > -1200)
        return "auth";
    if (code <= -1200 && code > -1300)
        return "upstream";
    if (code <= -1300 && code > -1400)
        return "core";
    if (code <= -1400 && code > -1500)
        return "memory";
    return "none";
}

const char *
sl_base_strerror(int code)
{
    switch (code) {
    case SL_BASE_EINVAL:
        return "malformed value";
    default:
        return "unknown error";
    }
}
