#include "proto/openai_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "proto/common.h"

/* --- errors ------------------------------------------------------------------------------ */

/*
 * The one table from sluice's codes to what an OpenAI client expects (docs/http-api.md
 * prints it). Statuses pick the OpenAI SDKs' exception classes (400 BadRequestError, 401
 * AuthenticationError, 404 NotFoundError, 409 ConflictError, 429 RateLimitError, 5xx
 * InternalServerError); types and codes are OpenAI's own where it has one for the case,
 * else sluice's code in lower case. A provider refusing sluice's key is the gateway's
 * fault, not the caller's: 502, never 401.
 */
static const struct {
    int status;
    const char *type;
    const char *code;
} err_table[SL_ERR__COUNT] = {
    [SL_ERR_NONE] = {500, "server_error", "internal_error"},
    [SL_ERR_AUTH_REQUIRED] = {401, "invalid_request_error", "missing_api_key"},
    [SL_ERR_AUTH_FAILED] = {401, "invalid_request_error", "invalid_api_key"},
    [SL_ERR_BAD_REQUEST] = {400, "invalid_request_error", "bad_request"},
    [SL_ERR_EMPTY_MESSAGE] = {400, "invalid_request_error", "empty_message"},
    [SL_ERR_UNKNOWN_MODEL] = {404, "invalid_request_error", "model_not_found"},
    [SL_ERR_TOO_LARGE] = {400, "invalid_request_error", "too_large"},
    [SL_ERR_RATE_LIMITED] = {429, "requests", "rate_limit_exceeded"},
    [SL_ERR_TOO_MANY_STREAMS] = {429, "requests", "too_many_streams"},
    [SL_ERR_DUPLICATE_ID] = {409, "invalid_request_error", "duplicate_id"},
    [SL_ERR_NOT_FOUND] = {404, "invalid_request_error", "not_found"},
    [SL_ERR_UPSTREAM_ERROR] = {502, "server_error", "upstream_error"},
    [SL_ERR_UPSTREAM_TIMEOUT] = {504, "server_error", "upstream_timeout"},
    [SL_ERR_UPSTREAM_RATE_LIMITED] = {429, "requests", "upstream_rate_limited"},
    [SL_ERR_UPSTREAM_AUTH] = {502, "server_error", "upstream_auth"},
    [SL_ERR_BUDGET_EXCEEDED] = {429, "insufficient_quota", "insufficient_quota"},
    [SL_ERR_OVERLOADED] = {503, "server_error", "overloaded"},
    [SL_ERR_SHUTTING_DOWN] = {503, "server_error", "shutting_down"},
    [SL_ERR_INTERNAL] = {500, "server_error", "internal_error"},
};

_Static_assert(sizeof(err_table) / sizeof(err_table[0]) == SL_ERR__COUNT, "every code mapped");

static unsigned
err_index(enum sl_errcode code)
{
    return (unsigned)code < SL_ERR__COUNT ? (unsigned)code : (unsigned)SL_ERR_INTERNAL;
}

int
sl_oai_error_status(enum sl_errcode code)
{
    return err_table[err_index(code)].status;
}

const char *
sl_oai_error_type(enum sl_errcode code)
{
    return err_table[err_index(code)].type;
}

const char *
sl_oai_error_code(enum sl_errcode code)
{
    return err_table[err_index(code)].code;
}

int
sl_oai_error_set(struct sl_oai_error *e, enum sl_errcode code, const char *param,
                 int64_t retry_after_ms, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    e->retry_after_ms = retry_after_ms;
    e->retryable = sl_errcode_retryable(code);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    if (e->message[0] == '\0')
        snprintf(e->message, sizeof(e->message), "%s", sl_errcode_name(code));
    return -1;
}

void
sl_oai_error_from_event(struct sl_oai_error *e, const struct sl_event *ev)
{
    if (ev->type == SL_EV_ERROR) {
        sl_oai_error_set(e, ev->u.error.code, NULL, ev->u.error.retry_after_ms, "%s",
                         ev->u.error.message ? ev->u.error.message : "");
        e->retryable = ev->u.error.retryable;
    } else if (ev->type == SL_EV_CANCELLED) {
        const char *why = ev->u.cancelled.reason ? ev->u.cancelled.reason : "cancelled";
        bool shutdown = strcmp(why, "shutdown") == 0;
        sl_oai_error_set(e, shutdown ? SL_ERR_SHUTTING_DOWN : SL_ERR_INTERNAL, NULL,
                         shutdown ? 1000 : -1, "the stream was cancelled (%s)", why);
    } else {
        sl_oai_error_set(e, SL_ERR_INTERNAL, NULL, -1, "the stream ended without a result");
    }
}

long long
sl_oai_retry_after_s(const struct sl_oai_error *e)
{
    if (e->retry_after_ms >= 0)
        return e->retry_after_ms / 1000 + (e->retry_after_ms % 1000 != 0); /* up, no overflow */
    int status = sl_oai_error_status(e->code);
    return status == 429 || status == 503 ? 1 : -1;
}

const char *
sl_oai_error_headers(const struct sl_oai_error *e, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    long long ra = sl_oai_retry_after_s(e);
    if (ra >= 0)
        len += (size_t)snprintf(out + len, n - len, "Retry-After: %lld\r\n", ra);
    if (e->retry_after_ms >= 0 && len < n)
        len += (size_t)snprintf(out + len, n - len, "retry-after-ms: %lld\r\n",
                                (long long)e->retry_after_ms);
    if (!e->retryable && len < n)
        snprintf(out + len, n - len, "x-should-retry: false\r\n");
    return out;
}

/* {"message":...,"type":...,"param":...,"code":...} */
static void
error_object(struct sl_buf *b, const struct sl_oai_error *e)
{
    SL_JSONW_LIT(b, "{\"message\":");
    sl_jsonw_cstr(b, e->message);
    SL_JSONW_LIT(b, ",\"type\":\"");
    sl_buf_append_str(b, sl_oai_error_type(e->code));
    SL_JSONW_LIT(b, "\",\"param\":");
    if (e->param[0])
        sl_jsonw_cstr(b, e->param);
    else
        SL_JSONW_LIT(b, "null");
    SL_JSONW_LIT(b, ",\"code\":\"");
    sl_buf_append_str(b, sl_oai_error_code(e->code));
    SL_JSONW_LIT(b, "\"}");
}

void
sl_oai_render_error(struct sl_buf *out, const struct sl_oai_error *e)
{
    SL_JSONW_LIT(out, "{\"error\":");
    error_object(out, e);
    sl_buf_append_byte(out, '}');
}

/* --- request ----------------------------------------------------------------------------- */

void
sl_oai_chat_clear(struct sl_oai_chat *c)
{
    sl_chat_req_free(c->req);
    free(c->user);
    memset(c, 0, sizeof(*c));
}

/*
 * The field a shared validation message is about. The shared rules (proto/common.c)
 * word every field error as `"<field>" must ...` or `messages[i].x must ...`, and the
 * conversation-level ones mention messages; OpenAI's `param` is that field.
 */
static void
param_of(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    const char *start = msg;
    if (msg[0] == '"') {
        start = msg + 1;
        while (start[n] && start[n] != '"')
            n++;
    } else if (strncmp(msg, "messages[", 9) == 0 || strncmp(msg, "tools[", 6) == 0) {
        while (msg[n] && msg[n] != ' ')
            n++;
    } else if (strstr(msg, "message") != NULL || strstr(msg, "conversation") != NULL) {
        start = "messages";
        n = 8;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

static int
from_proto(struct sl_oai_error *e, const struct sl_proto_error *pe)
{
    char param[64];
    param_of(pe->message, param, sizeof(param));
    return sl_oai_error_set(e, pe->code, param, -1, "%s", pe->message);
}

/* A boolean or null member; -1 with e set if it is something else. */
static int
opt_bool(json_t *obj, const char *key, const char *param, bool *out, struct sl_oai_error *e)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return sl_oai_error_set(e, SL_ERR_BAD_REQUEST, param, -1, "\"%s\" must be a boolean",
                                param);
    *out = json_is_true(v);
    return 0;
}

static json_t *
parse_body(const char *body, size_t len, struct sl_oai_error *e)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        sl_oai_error_set(e, SL_ERR_BAD_REQUEST, NULL, -1,
                         "the request body is not valid JSON: %s (at byte %d)", jerr.text,
                         jerr.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        sl_oai_error_set(e, SL_ERR_BAD_REQUEST, NULL, -1, "the request body must be a JSON object");
        return NULL;
    }
    return root;
}

int
sl_oai_parse_chat(const struct sl_proto_limits *lim, const char *body, size_t len,
                  struct sl_oai_chat *out, struct sl_oai_error *err)
{
    struct sl_proto_error perr;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    memset(&perr, 0, sizeof(perr));
    json_t *root = parse_body(body, len, err);
    if (root == NULL)
        return -1;

    if (opt_bool(root, "stream", "stream", &out->stream, err) != 0)
        goto out;
    json_t *so = json_object_get(root, "stream_options");
    if (so != NULL && !json_is_null(so)) {
        /* OpenAI refuses stream_options without stream; honouring it only when streaming
         * is kinder to clients that always send it and changes nothing else. */
        if (!json_is_object(so)) {
            sl_oai_error_set(err, SL_ERR_BAD_REQUEST, "stream_options", -1,
                             "\"stream_options\" must be an object");
            goto out;
        }
        if (opt_bool(so, "include_usage", "stream_options.include_usage", &out->include_usage,
                     err) != 0)
            goto out;
    }
    json_t *n = json_object_get(root, "n");
    if (n != NULL && !json_is_null(n)) {
        if (!json_is_integer(n)) {
            sl_oai_error_set(err, SL_ERR_BAD_REQUEST, "n", -1, "\"n\" must be an integer");
            goto out;
        }
        if (json_integer_value(n) != 1) {
            sl_oai_error_set(err, SL_ERR_BAD_REQUEST, "n", -1,
                             "only n=1 is supported (one choice per request; send several "
                             "requests for more)");
            goto out;
        }
    }
    json_t *user = json_object_get(root, "user");
    if (user != NULL && !json_is_null(user)) {
        if (!json_is_string(user) || json_string_length(user) > 256) {
            sl_oai_error_set(err, SL_ERR_BAD_REQUEST, "user", -1,
                             "\"user\" must be a string of at most 256 characters");
            goto out;
        }
        out->user = sl_strndup(json_string_value(user), json_string_length(user));
    }
    json_t *messages = json_object_get(root, "messages");
    if (messages == NULL) {
        sl_oai_error_set(err, SL_ERR_BAD_REQUEST, "messages", -1, "missing \"messages\"");
        goto out;
    }
    /* max_completion_tokens replaced max_tokens in OpenAI's API; the newer one wins. */
    json_t *mct = json_object_get(root, "max_completion_tokens");
    bool use_mct = mct != NULL && !json_is_null(mct);
    struct sl_chat_fields f = {
        .model = json_object_get(root, "model"),
        .agent = json_object_get(root, "agent"),
        .messages = messages,
        .max_tokens = use_mct ? mct : json_object_get(root, "max_tokens"),
        .temperature = json_object_get(root, "temperature"),
        .top_p = json_object_get(root, "top_p"),
        .stop = json_object_get(root, "stop"),
        .tools = json_object_get(root, "tools"),
        .tool_choice = json_object_get(root, "tool_choice"),
        .metadata = json_object_get(root, "metadata"),
    };
    if (sl_proto_build_chat(lim, &f, &out->req, &perr) != 0) {
        from_proto(err, &perr);
        if (use_mct && strcmp(err->param, "max_tokens") == 0) {
            char msg[sizeof(err->message)];
            snprintf(msg, sizeof(msg), "%s", err->message);
            const char *rest = strstr(msg, "\" must");
            sl_oai_error_set(err, SL_ERR_BAD_REQUEST, "max_completion_tokens", -1,
                             "\"max_completion_tokens%s", rest ? rest : "\" is invalid");
        }
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    sl_proto_error_clear(&perr);
    if (rc != 0)
        sl_oai_chat_clear(out);
    return rc;
}

void
sl_oai_model_as_agent(struct sl_chat_req *req)
{
    if (req->model == NULL)
        return;
    free(req->agent);
    req->agent = req->model;
    req->model = NULL;
}

/* --- streaming responses ----------------------------------------------------------------- */

void
sl_oai_stream_init(struct sl_oai_stream *s, const char *stream_id, size_t stream_id_len,
                   const char *model, uint64_t created, bool include_usage)
{
    memset(s, 0, sizeof(*s));
    s->include_usage = include_usage;
    struct sl_buf *h = &s->chunk_head;
    SL_JSONW_LIT(h, "{\"id\":\"chatcmpl-");
    sl_jsonw_escape(h, stream_id, stream_id_len);
    SL_JSONW_LIT(h, "\",\"object\":\"chat.completion.chunk\",\"created\":");
    sl_jsonw_uint(h, created);
    SL_JSONW_LIT(h, ",\"model\":");
    sl_jsonw_cstr(h, model ? model : "");
    SL_JSONW_LIT(h, ",\"system_fingerprint\":null,\"choices\":[");

    /* An SSE field ends at CR or LF, and NUL is not allowed in it. */
    struct sl_buf *l = &s->id_line;
    SL_JSONW_LIT(l, "id: ");
    char *p = sl_buf_reserve(l, stream_id_len);
    for (size_t i = 0; i < stream_id_len; i++) {
        unsigned char c = (unsigned char)stream_id[i];
        p[i] = c < 0x20 || c == 0x7f ? '_' : (char)c;
    }
    sl_buf_commit(l, stream_id_len);
    sl_buf_append_byte(l, ':');
}

void
sl_oai_stream_cleanup(struct sl_oai_stream *s)
{
    sl_buf_free(&s->chunk_head);
    sl_buf_free(&s->id_line);
}

static void
id_line(const struct sl_oai_stream *s, struct sl_buf *out, uint32_t seq)
{
    sl_buf_append(out, sl_buf_ptr(&s->id_line), sl_buf_len(&s->id_line));
    sl_jsonw_uint(out, seq);
    sl_buf_append_byte(out, '\n');
}

/* "data: " + the chunk's constant head, ready for the choice object. */
static void
chunk_open(const struct sl_oai_stream *s, struct sl_buf *out)
{
    SL_JSONW_LIT(out, "data: ");
    sl_buf_append(out, sl_buf_ptr(&s->chunk_head), sl_buf_len(&s->chunk_head));
}

/* Closes a chunk whose choice object ends with its delta, and the SSE event. */
static void
chunk_close(const struct sl_oai_stream *s, struct sl_buf *out)
{
    SL_JSONW_LIT(out, ",\"logprobs\":null,\"finish_reason\":null}]");
    if (s->include_usage)
        SL_JSONW_LIT(out, ",\"usage\":null");
    SL_JSONW_LIT(out, "}\n\n");
}

static void
tool_delta(struct sl_buf *out, const struct sl_tool_delta *t)
{
    SL_JSONW_LIT(out, "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":");
    sl_jsonw_int(out, t->index);
    if (t->id) {
        SL_JSONW_LIT(out, ",\"id\":");
        sl_jsonw_str(out, t->id, t->id_len);
        SL_JSONW_LIT(out, ",\"type\":\"function\"");
    }
    SL_JSONW_LIT(out, ",\"function\":{");
    if (t->name) {
        SL_JSONW_LIT(out, "\"name\":");
        sl_jsonw_str(out, t->name, t->name_len);
        sl_buf_append_byte(out, ',');
    }
    SL_JSONW_LIT(out, "\"arguments\":");
    sl_jsonw_str(out, t->arguments ? t->arguments : "", t->arguments ? t->arguments_len : 0);
    SL_JSONW_LIT(out, "}}]}");
}

static void
usage_object(struct sl_buf *out, const struct sl_usage *u)
{
    SL_JSONW_LIT(out, "{\"prompt_tokens\":");
    sl_jsonw_uint(out, u->input_tokens);
    SL_JSONW_LIT(out, ",\"completion_tokens\":");
    sl_jsonw_uint(out, u->output_tokens);
    SL_JSONW_LIT(out, ",\"total_tokens\":");
    sl_jsonw_uint(out, u->input_tokens + u->output_tokens);
    sl_buf_append_byte(out, '}');
}

static void
done_events(const struct sl_oai_stream *s, struct sl_buf *out, const struct sl_event *ev)
{
    chunk_open(s, out);
    SL_JSONW_LIT(out, "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"");
    sl_buf_append_str(out, sl_finish_name(ev->u.done.finish));
    SL_JSONW_LIT(out, "\"}]");
    if (s->include_usage) {
        SL_JSONW_LIT(out, ",\"usage\":null}\n\n");
        chunk_open(s, out);
        SL_JSONW_LIT(out, "],\"usage\":");
        usage_object(out, &ev->u.done.usage);
    }
    SL_JSONW_LIT(out, "}\n\n");
    id_line(s, out, ev->seq);
    SL_JSONW_LIT(out, "data: [DONE]\n\n");
}

static void
error_event(struct sl_buf *out, const struct sl_oai_error *e)
{
    SL_JSONW_LIT(out, "data: ");
    sl_oai_render_error(out, e);
    SL_JSONW_LIT(out, "\n\n");
}

int
sl_oai_sse_event(const struct sl_oai_stream *s, struct sl_buf *out, const struct sl_event *ev)
{
    struct sl_oai_error e;
    switch (ev->type) {
    case SL_EV_START:
        id_line(s, out, ev->seq);
        chunk_open(s, out);
        SL_JSONW_LIT(out, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}");
        chunk_close(s, out);
        return 0;
    case SL_EV_PROGRESS:
        return 0;
    case SL_EV_DELTA:
        if (ev->u.delta.tool) {
            id_line(s, out, ev->seq);
            chunk_open(s, out);
            tool_delta(out, ev->u.delta.tool);
        } else {
            if (ev->u.delta.len == 0)
                return 0;
            id_line(s, out, ev->seq);
            chunk_open(s, out);
            SL_JSONW_LIT(out, "{\"index\":0,\"delta\":{\"content\":");
            sl_jsonw_str(out, ev->u.delta.text, ev->u.delta.len);
            sl_buf_append_byte(out, '}');
        }
        chunk_close(s, out);
        return 0;
    case SL_EV_DONE:
        done_events(s, out, ev);
        return 1;
    case SL_EV_ERROR:
    case SL_EV_CANCELLED:
        sl_oai_error_from_event(&e, ev);
        id_line(s, out, ev->seq);
        error_event(out, &e);
        return 1;
    }
    return 0;
}

void
sl_oai_sse_error(struct sl_buf *out, const struct sl_oai_error *e)
{
    error_event(out, e);
}

void
sl_oai_sse_heartbeat(struct sl_buf *out)
{
    SL_JSONW_LIT(out, ": keep-alive\n\n");
}

int
sl_oai_parse_event_id(const char *s, size_t n, const char **stream, size_t *stream_len,
                      uint64_t *seq)
{
    size_t colon = n;
    while (colon > 0 && s[colon - 1] != ':')
        colon--;
    if (colon < 2 || colon == n || n - colon > 19)
        return -1; /* no ':', an empty stream id or seq, or a seq over 19 digits */
    uint64_t v = 0;
    for (size_t i = colon; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *stream = s;
    *stream_len = colon - 1;
    *seq = v;
    return 0;
}

/* --- non-streaming responses ------------------------------------------------------------- */

#define MAX_TOOL_CALLS 128
#define TOOL_CALL_OVERHEAD 64 /* bytes counted per call towards max_bytes: its JSON frame */

struct tool_acc {
    int index;
    struct sl_buf id, name, args;
};

struct sl_oai_agg {
    size_t max_bytes, used;
    enum sl_oai_agg_state state;
    struct sl_buf content;
    struct tool_acc *tools;
    size_t ntools, cap;
    enum sl_finish finish;
    struct sl_usage usage;
    struct sl_oai_error err;
};

struct sl_oai_agg *
sl_oai_agg_new(size_t max_bytes)
{
    struct sl_oai_agg *a = sl_calloc(1, sizeof(*a));
    a->max_bytes = max_bytes;
    a->state = SL_OAI_AGG_MORE;
    return a;
}

void
sl_oai_agg_free(struct sl_oai_agg *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->ntools; i++) {
        sl_buf_free(&a->tools[i].id);
        sl_buf_free(&a->tools[i].name);
        sl_buf_free(&a->tools[i].args);
    }
    free(a->tools);
    sl_buf_free(&a->content);
    free(a);
}

static enum sl_oai_agg_state
too_large(struct sl_oai_agg *a)
{
    a->state = SL_OAI_AGG_FAILED;
    sl_oai_error_set(&a->err, SL_ERR_TOO_LARGE, NULL, -1,
                     "the response is larger than this server holds for a non-streaming "
                     "request (%zu bytes): use \"stream\": true or a lower max_tokens",
                     a->max_bytes);
    return a->state;
}

/* Whether n more bytes fit under the cap (and counts them if so). */
static bool
take(struct sl_oai_agg *a, size_t n)
{
    if (n > a->max_bytes - a->used)
        return false;
    a->used += n;
    return true;
}

static struct tool_acc *
tool_slot(struct sl_oai_agg *a, int index)
{
    for (size_t i = 0; i < a->ntools; i++)
        if (a->tools[i].index == index)
            return &a->tools[i];
    if (a->ntools == MAX_TOOL_CALLS || !take(a, TOOL_CALL_OVERHEAD))
        return NULL;
    if (a->ntools == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4;
        a->tools = sl_realloc(a->tools, a->cap * sizeof(*a->tools));
    }
    struct tool_acc *t = &a->tools[a->ntools++];
    memset(t, 0, sizeof(*t));
    t->index = index;
    return t;
}

/* The first id and name a call's fragments give are its own; later ones are ignored. */
static enum sl_oai_agg_state
agg_tool(struct sl_oai_agg *a, const struct sl_tool_delta *d)
{
    struct tool_acc *t = tool_slot(a, d->index);
    if (t == NULL)
        return too_large(a);
    size_t need = d->arguments_len;
    bool want_id = d->id && sl_buf_len(&t->id) == 0;
    bool want_name = d->name && sl_buf_len(&t->name) == 0;
    need += want_id ? d->id_len : 0;
    need += want_name ? d->name_len : 0;
    if (!take(a, need))
        return too_large(a);
    if (want_id)
        sl_buf_append(&t->id, d->id, d->id_len);
    if (want_name)
        sl_buf_append(&t->name, d->name, d->name_len);
    if (d->arguments)
        sl_buf_append(&t->args, d->arguments, d->arguments_len);
    return a->state;
}

enum sl_oai_agg_state
sl_oai_agg_event(struct sl_oai_agg *a, const struct sl_event *ev)
{
    if (a->state != SL_OAI_AGG_MORE)
        return a->state;
    switch (ev->type) {
    case SL_EV_START:
    case SL_EV_PROGRESS:
        break;
    case SL_EV_DELTA:
        if (ev->u.delta.tool)
            return agg_tool(a, ev->u.delta.tool);
        if (!take(a, ev->u.delta.len))
            return too_large(a);
        sl_buf_append(&a->content, ev->u.delta.text, ev->u.delta.len);
        break;
    case SL_EV_DONE:
        a->finish = ev->u.done.finish;
        a->usage = ev->u.done.usage;
        a->state = SL_OAI_AGG_COMPLETE;
        break;
    case SL_EV_ERROR:
    case SL_EV_CANCELLED:
        sl_oai_error_from_event(&a->err, ev);
        a->state = SL_OAI_AGG_FAILED;
        break;
    }
    return a->state;
}

const struct sl_oai_error *
sl_oai_agg_error(const struct sl_oai_agg *a)
{
    return &a->err;
}

static int
by_index(const void *x, const void *y)
{
    const struct tool_acc *a = x, *b = y;
    return (a->index > b->index) - (a->index < b->index);
}

void
sl_oai_agg_render(const struct sl_oai_agg *a, struct sl_buf *out, const char *stream_id,
                  size_t stream_id_len, const char *model, uint64_t created)
{
    SL_JSONW_LIT(out, "{\"id\":\"chatcmpl-");
    sl_jsonw_escape(out, stream_id, stream_id_len);
    SL_JSONW_LIT(out, "\",\"object\":\"chat.completion\",\"created\":");
    sl_jsonw_uint(out, created);
    SL_JSONW_LIT(out, ",\"model\":");
    sl_jsonw_cstr(out, model ? model : "");
    SL_JSONW_LIT(out, ",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"message\":{"
                      "\"role\":\"assistant\",\"content\":");
    if (sl_buf_len(&a->content) == 0 && a->ntools > 0)
        SL_JSONW_LIT(out, "null");
    else
        sl_jsonw_str(out, sl_buf_ptr(&a->content), sl_buf_len(&a->content));
    SL_JSONW_LIT(out, ",\"refusal\":null");
    if (a->ntools > 0) {
        /* Providers send calls in index order; sorting a copy keeps render const. */
        struct tool_acc *sorted = sl_malloc(a->ntools * sizeof(*sorted));
        memcpy(sorted, a->tools, a->ntools * sizeof(*sorted));
        qsort(sorted, a->ntools, sizeof(*sorted), by_index);
        SL_JSONW_LIT(out, ",\"tool_calls\":[");
        for (size_t i = 0; i < a->ntools; i++) {
            const struct tool_acc *t = &sorted[i];
            if (i)
                sl_buf_append_byte(out, ',');
            SL_JSONW_LIT(out, "{\"id\":");
            sl_jsonw_str(out, sl_buf_ptr(&t->id), sl_buf_len(&t->id));
            SL_JSONW_LIT(out, ",\"type\":\"function\",\"function\":{\"name\":");
            sl_jsonw_str(out, sl_buf_ptr(&t->name), sl_buf_len(&t->name));
            SL_JSONW_LIT(out, ",\"arguments\":");
            sl_jsonw_str(out, sl_buf_ptr(&t->args), sl_buf_len(&t->args));
            SL_JSONW_LIT(out, "}}");
        }
        sl_buf_append_byte(out, ']');
        free(sorted);
    }
    SL_JSONW_LIT(out, "},\"logprobs\":null,\"finish_reason\":\"");
    sl_buf_append_str(out, sl_finish_name(a->finish));
    SL_JSONW_LIT(out, "\"}],\"usage\":");
    usage_object(out, &a->usage);
    sl_buf_append_byte(out, '}');
}

/* --- GET /v1/models -------------------------------------------------------------------- */

static void
model_entry(struct sl_buf *out, const char *id, const char *owned_by, uint64_t created)
{
    SL_JSONW_LIT(out, "{\"id\":");
    sl_jsonw_cstr(out, id);
    SL_JSONW_LIT(out, ",\"object\":\"model\",\"created\":");
    sl_jsonw_uint(out, created);
    SL_JSONW_LIT(out, ",\"owned_by\":");
    sl_jsonw_cstr(out, owned_by);
    sl_buf_append_byte(out, '}');
}

void
sl_oai_render_models(struct sl_buf *out, const struct sl_ready_model *models, size_t nmodels,
                     const struct sl_ready_agent *agents, size_t nagents, uint64_t created)
{
    SL_JSONW_LIT(out, "{\"object\":\"list\",\"data\":[");
    size_t k = 0;
    for (size_t i = 0; i < nmodels; i++, k++) {
        if (k)
            sl_buf_append_byte(out, ',');
        model_entry(out, models[i].name, models[i].provider ? models[i].provider : "sluice",
                    created);
    }
    for (size_t i = 0; i < nagents; i++, k++) {
        const char *owner = "sluice";
        for (size_t j = 0; agents[i].model && j < nmodels; j++) {
            if (strcmp(models[j].name, agents[i].model) == 0 && models[j].provider) {
                owner = models[j].provider;
                break;
            }
        }
        if (k)
            sl_buf_append_byte(out, ',');
        model_entry(out, agents[i].name, owner, created);
    }
    SL_JSONW_LIT(out, "]}");
}
