#include "proto/dialect_kit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/util.h"
#include "proto/common.h"

/* --- parsing ------------------------------------------------------------------------ */

const struct sl_dk_event *
sl_dk_find(const struct sl_dk_event *events, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(events[i].name, name) == 0)
            return &events[i];
    return NULL;
}

/* Model, agent and provider names: the same bound as the native protocol's model. */
#define NAME_MAX_LEN 256

static int
check_name(json_t *v, const char *field, struct sl_proto_error *err)
{
    if (!json_is_string(v))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be a string", field);
    size_t n = json_string_length(v);
    if (n == 0 || n > NAME_MAX_LEN)
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must have 1 to %d characters", field,
                             NAME_MAX_LEN);
    return 0;
}

static int
check_number(json_t *v, const char *field, double lo, double hi, struct sl_proto_error *err)
{
    if (!json_is_number(v))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be a number", field);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be between %g and %g", field, lo,
                             hi);
    return 0;
}

/* The checks made under the dialect's own field names (the stream id is checked first). */
static int
check_field(const struct sl_proto_limits *lim, enum sl_dk_dest d, json_t *v, const char *field,
            struct sl_proto_error *err)
{
    switch (d) {
    case SL_DK_ID:
    case SL_DK_CONVERSATION:
    case SL_DK_PREVIOUS:
        return sl_proto_check_id(lim, v, field, err);
    case SL_DK_MODEL:
    case SL_DK_AGENT:
    case SL_DK_PROVIDER:
        return check_name(v, field, err);
    case SL_DK_SYSTEM:
    case SL_DK_MESSAGE:
        if (!json_is_string(v))
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be a string", field);
        return 0;
    case SL_DK_MESSAGES:
    case SL_DK_HISTORY:
        if (!json_is_array(v))
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be an array", field);
        return 0;
    case SL_DK_MAX_TOKENS:
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > lim->max_tokens_cap)
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                 "\"%s\" must be an integer from 1 to %" PRId64, field,
                                 lim->max_tokens_cap);
        return 0;
    case SL_DK_TEMPERATURE:
        return check_number(v, field, 0, 2, err);
    case SL_DK_TOP_P:
        return check_number(v, field, 0, 1, err);
    case SL_DK_TOKEN:
        if (!json_is_string(v) || json_string_length(v) == 0)
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be a non-empty string",
                                 field);
        return 0;
    case SL_DK_IGNORE:
    case SL_DK_STOP:
    case SL_DK_TOOLS:
    case SL_DK_TOOL_CHOICE:
    case SL_DK_METADATA:
    case SL_DK__COUNT:
        break; /* checked by sl_proto_build_chat, or not at all */
    }
    return 0;
}

static char *
dup_string(json_t *v)
{
    return sl_strndup(json_string_value(v), json_string_length(v));
}

static int
build_chat(const struct sl_proto_limits *lim, json_t *const *v, bool has_conversation,
           struct sl_command *cmd, struct sl_proto_error *err)
{
    struct sl_chat_fields f = {
        .id = v[SL_DK_ID],
        .model = v[SL_DK_MODEL],
        .agent = v[SL_DK_AGENT],
        .system = v[SL_DK_SYSTEM],
        .messages = v[SL_DK_MESSAGES],
        .message = v[SL_DK_MESSAGE],
        .history = v[SL_DK_HISTORY],
        .max_tokens = v[SL_DK_MAX_TOKENS],
        .temperature = v[SL_DK_TEMPERATURE],
        .top_p = v[SL_DK_TOP_P],
        .stop = v[SL_DK_STOP],
        .tools = v[SL_DK_TOOLS],
        .tool_choice = v[SL_DK_TOOL_CHOICE],
        .metadata = v[SL_DK_METADATA],
    };
    /* sl_proto_build_chat names the stream in err->id itself. */
    free(err->id);
    err->id = NULL;
    if (sl_proto_build_chat(lim, &f, &cmd->chat, err) != 0)
        return -1;
    if (v[SL_DK_PROVIDER])
        cmd->provider = dup_string(v[SL_DK_PROVIDER]);
    if (v[SL_DK_CONVERSATION])
        cmd->conversation = dup_string(v[SL_DK_CONVERSATION]);
    else
        cmd->conversation_null = has_conversation;
    return 0;
}

int
sl_dk_command(const struct sl_proto_limits *lim, const struct sl_dk_event *ev, json_t *obj,
              struct sl_command *cmd, struct sl_proto_error *err)
{
    json_t *v[SL_DK__COUNT] = {0};
    const char *name[SL_DK__COUNT] = {0};
    bool has_conversation = false;
    int rc = -1;

    cmd->type = ev->cmd;
    if (ev->cmd == SL_CMD_AUTH)
        err->auth_cmd = true;
    for (size_t i = 0; i < ev->nfields; i++) {
        const struct sl_dk_field *f = &ev->fields[i];
        json_t *x = json_object_get(obj, f->name);
        has_conversation |= f->dest == SL_DK_CONVERSATION;
        if (f->dest != SL_DK_IGNORE && x != NULL && !json_is_null(x)) {
            v[f->dest] = x;
            name[f->dest] = f->name;
        }
    }
    /* The stream id first, so that any later error can name the stream. */
    if (v[SL_DK_ID]) {
        if (sl_proto_check_id(lim, v[SL_DK_ID], name[SL_DK_ID], err) != 0)
            goto out;
        err->id = dup_string(v[SL_DK_ID]);
    }
    for (size_t i = 0; i < ev->nfields; i++) {
        const struct sl_dk_field *f = &ev->fields[i];
        json_t *x = json_object_get(obj, f->name);
        if ((f->flags & SL_DK_REQUIRED) && (x == NULL || json_is_null(x))) {
            sl_proto_fail(err, f->missing ? f->missing : SL_ERR_BAD_REQUEST, "missing \"%s\"",
                          f->name);
            goto out;
        }
        if (f->dest != SL_DK_ID && v[f->dest] == x && x != NULL &&
            check_field(lim, f->dest, x, f->name, err) != 0)
            goto out;
    }
    switch (ev->cmd) {
    case SL_CMD_CHAT:
        if (build_chat(lim, v, has_conversation, cmd, err) != 0)
            goto out;
        break;
    case SL_CMD_CANCEL:
    case SL_CMD_RESUME:
        /* The tables mark the id of these required; a table without it is a bug. */
        sl_assert(v[SL_DK_ID] != NULL);
        cmd->id = dup_string(v[SL_DK_ID]);
        break;
    case SL_CMD_AUTH:
        sl_assert(v[SL_DK_TOKEN] != NULL);
        cmd->token = dup_string(v[SL_DK_TOKEN]);
        break;
    case SL_CMD_RECONNECT:
        sl_assert(v[SL_DK_PREVIOUS] != NULL);
        cmd->previous = dup_string(v[SL_DK_PREVIOUS]);
        break;
    case SL_CMD_PING:
        break;
    }
    rc = 0;
out:
    if (rc != 0)
        sl_command_clear(cmd);
    return rc;
}

int
sl_dk_parse_sio(const struct sl_dk_event *events, size_t n, const struct sl_proto_limits *lim,
                const char *event, const char *msg, size_t len, struct sl_command *cmd,
                struct sl_proto_error *err)
{
    const struct sl_dk_event *ev = event ? sl_dk_find(events, n, event) : NULL;
    if (ev == NULL)
        return SL_PROTO_NOT_MINE;
    json_t *args = sl_proto_parse_args(msg, len, err);
    if (args == NULL)
        return -1;
    int rc;
    json_t *first = json_array_get(args, 0);
    if (first == NULL || json_is_object(first)) {
        json_t *obj = first ? json_incref(first) : json_object();
        rc = sl_dk_command(lim, ev, obj, cmd, err);
        json_decref(obj);
    } else {
        rc = sl_proto_fail(err, SL_ERR_BAD_REQUEST, "the argument of \"%s\" must be an object",
                           ev->name);
    }
    json_decref(args);
    return rc;
}

/* --- writing ------------------------------------------------------------------------ */

void
sl_dk_cstr_or_null(struct sl_buf *b, const char *s)
{
    if (s == NULL)
        SL_JSONW_LIT(b, "null");
    else
        sl_jsonw_cstr(b, s);
}

void
sl_dk_usd(struct sl_buf *b, double usd)
{
    if (!(usd >= 0 && usd < 1e9)) {
        sl_jsonw_double(b, usd);
        return;
    }
    uint64_t nano = (uint64_t)(usd * 1e9 + 0.5);
    sl_jsonw_uint(b, nano / 1000000000u);
    uint64_t frac = nano % 1000000000u;
    if (frac == 0)
        return;
    char d[10];
    int n = 9;
    for (int i = 8; i >= 0; i--, frac /= 10)
        d[i] = (char)('0' + frac % 10);
    while (d[n - 1] == '0')
        n--;
    sl_buf_append_byte(b, '.');
    sl_buf_append(b, d, (size_t)n);
}

/* 9999-12-31T23:59:59.999Z: the last instant with a four-digit year. */
#define ISO_MAX_MS UINT64_C(253402300799999)

/*
 * The formatted date and time of the last second seen by this thread ("2026-12-02T12:00:00."):
 * every token of every stream on a worker falls in the same second as the previous one almost
 * always, so gmtime_r runs about once a second per worker.
 */
static _Thread_local uint64_t iso_sec = UINT64_MAX;
static _Thread_local char iso_head[20];

static void
digits(char *out, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void
sl_dk_iso8601(char *out, uint64_t ms)
{
    if (ms > ISO_MAX_MS)
        ms = ISO_MAX_MS;
    uint64_t sec = ms / 1000;
    unsigned milli = (unsigned)(ms % 1000);
    if (sec != iso_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        /* Fixed widths: the year is 1970..9999 after the clamp above. */
        digits(iso_head, tm.tm_year + 1900, 4);
        iso_head[4] = '-';
        digits(iso_head + 5, tm.tm_mon + 1, 2);
        iso_head[7] = '-';
        digits(iso_head + 8, tm.tm_mday, 2);
        iso_head[10] = 'T';
        digits(iso_head + 11, tm.tm_hour, 2);
        iso_head[13] = ':';
        digits(iso_head + 14, tm.tm_min, 2);
        iso_head[16] = ':';
        digits(iso_head + 17, tm.tm_sec, 2);
        iso_head[19] = '.';
        iso_sec = sec;
    }
    memcpy(out, iso_head, 20);
    out[20] = (char)('0' + milli / 100);
    out[21] = (char)('0' + milli / 10 % 10);
    out[22] = (char)('0' + milli % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

void
sl_dk_time(struct sl_buf *b, uint64_t ms)
{
    char *p = sl_buf_reserve(b, SL_DK_ISO_LEN + 3);
    p[0] = '"';
    sl_dk_iso8601(p + 1, ms);
    p[SL_DK_ISO_LEN + 1] = '"';
    sl_buf_commit(b, SL_DK_ISO_LEN + 2);
}

uint64_t
sl_dk_sink_now(const struct sl_proto_sink *sink)
{
    return sink->now_ms ? sink->now_ms : sl_wall_ms();
}

uint64_t
sl_dk_view_now(const struct sl_stream_view *st)
{
    return st->now_ms ? st->now_ms : sl_wall_ms();
}

void
sl_dk_tool(struct sl_buf *b, const struct sl_tool_delta *t)
{
    SL_JSONW_LIT(b, "{\"index\":");
    sl_jsonw_int(b, t->index);
    if (t->id)
        SL_DK_STR(b, "id", t->id, t->id_len);
    if (t->name)
        SL_DK_STR(b, "name", t->name, t->name_len);
    SL_DK_STR(b, "arguments", t->arguments ? t->arguments : "", t->arguments_len);
    sl_buf_append_byte(b, '}');
}

void
sl_dk_error_fields(struct sl_buf *b, const char *message, const char *code, bool retryable,
                   int64_t retry_after_ms)
{
    SL_DK_KEY(b, "error");
    sl_jsonw_cstr(b, message ? message : "");
    SL_DK_KEY(b, "code");
    sl_jsonw_cstr(b, code);
    SL_DK_BOOL(b, "retryable", retryable);
    if (retry_after_ms >= 0)
        SL_DK_INT(b, "retry_after_ms", retry_after_ms);
}

bool
sl_dk_retryable(enum sl_errcode code)
{
    return sl_errcode_retryable(code) && code != SL_ERR_INTERNAL;
}

const char *
sl_dk_map_code(const struct sl_dk_codemap *map, size_t n, enum sl_errcode code,
               const char *fallback)
{
    for (size_t i = 0; i < n; i++)
        if (map[i].code == code)
            return map[i].name;
    return fallback;
}
