#include "proto/common.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

void
sl_command_clear(struct sl_command *cmd)
{
    free(cmd->token);
    sl_chat_req_free(cmd->chat);
    free(cmd->id);
    free(cmd->epoch);
    free(cmd->provider);
    free(cmd->conversation);
    free(cmd->previous);
    memset(cmd, 0, sizeof(*cmd));
}

void
sl_proto_error_clear(struct sl_proto_error *err)
{
    free(err->id);
    memset(err, 0, sizeof(*err));
}

int
sl_proto_fail(struct sl_proto_error *err, enum sl_errcode code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

json_t *
sl_proto_parse_object(const char *msg, size_t len, struct sl_proto_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(msg, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "message is not valid JSON: %s (at byte %d)",
                      jerr.text, jerr.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "message must be a JSON object");
        return NULL;
    }
    return root;
}

int
sl_proto_check_id(const struct sl_proto_limits *lim, json_t *v, const char *field,
                  struct sl_proto_error *err)
{
    if (!json_is_string(v))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be a string", field);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > lim->max_id_len)
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must have 1 to %zu characters", field,
                             lim->max_id_len);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                 "\"%s\" must not contain control characters", field);
    return 0;
}

static bool
blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

static bool
valid_role(const char *r)
{
    return strcmp(r, "user") == 0 || strcmp(r, "assistant") == 0 || strcmp(r, "system") == 0 ||
           strcmp(r, "developer") == 0 || strcmp(r, "tool") == 0;
}

/* True if a message's content has no text at all. */
static bool
content_blank(json_t *content)
{
    if (content == NULL || json_is_null(content))
        return true;
    if (json_is_string(content))
        return blank(json_string_value(content), json_string_length(content));
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *text = json_object_get(part, "text");
        if (!json_is_string(text) || !blank(json_string_value(text), json_string_length(text)))
            return false; /* a non-text part (an image, ...) counts as content */
    }
    return true;
}

static int check_tool_calls(json_t *calls, size_t i, struct sl_proto_error *err);

static int
check_message(json_t *m, size_t i, struct sl_proto_error *err)
{
    if (!json_is_object(m))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "messages[%zu] must be an object", i);
    json_t *role = json_object_get(m, "role");
    if (!json_is_string(role) || !valid_role(json_string_value(role)))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                             "messages[%zu].role must be one of user, assistant, system, "
                             "developer, tool",
                             i);
    json_t *content = json_object_get(m, "content");
    if (content != NULL && !json_is_string(content) && !json_is_array(content) &&
        !json_is_null(content))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                             "messages[%zu].content must be a string or an array of parts", i);
    if (json_is_array(content)) {
        size_t j;
        json_t *part;
        json_array_foreach(content, j, part)
        {
            if (!json_is_object(part) || !json_is_string(json_object_get(part, "type")))
                return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                     "messages[%zu].content[%zu] must be an object with a type", i,
                                     j);
        }
    }
    const char *r = json_string_value(role);
    json_t *calls = json_object_get(m, "tool_calls");
    if (calls != NULL && !json_is_null(calls)) {
        if (strcmp(r, "assistant") != 0)
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                 "messages[%zu].tool_calls is only allowed on an assistant message",
                                 i);
        if (check_tool_calls(calls, i, err) != 0)
            return -1;
    }
    /* Every provider needs the call a result answers (Anthropic's tool_use_id, Gemini's
     * function name found through it). */
    if (strcmp(r, "tool") == 0) {
        json_t *tcid = json_object_get(m, "tool_call_id");
        if (!json_is_string(tcid) || json_string_length(tcid) == 0)
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                 "messages[%zu].tool_call_id must be a non-empty string (the id "
                                 "of the call this message answers)",
                                 i);
    }
    return 0;
}

/* A string member of obj, present and non-empty. */
static bool
has_string(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) && json_string_length(v) > 0;
}

/*
 * An assistant turn's tool_calls, as OpenAI shapes them: the providers that translate
 * them (Anthropic tool_use blocks, Gemini functionCall parts) need the id, the name and
 * the arguments text of each, so a malformed one is refused here rather than sent on
 * with holes.
 */
static int
check_tool_calls(json_t *calls, size_t i, struct sl_proto_error *err)
{
    if (!json_is_array(calls))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "messages[%zu].tool_calls must be an array",
                             i);
    size_t j;
    json_t *c;
    json_array_foreach(calls, j, c)
    {
        json_t *type = json_object_get(c, "type");
        json_t *fn = json_object_get(c, "function");
        if (!json_is_object(c) || !has_string(c, "id"))
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                 "messages[%zu].tool_calls[%zu] must be an object with an \"id\"",
                                 i, j);
        if (type != NULL &&
            !(json_is_string(type) && strcmp(json_string_value(type), "function") == 0))
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                 "messages[%zu].tool_calls[%zu].type must be \"function\"", i, j);
        if (!json_is_object(fn) || !has_string(fn, "name") ||
            !json_is_string(json_object_get(fn, "arguments")))
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                 "messages[%zu].tool_calls[%zu].function must have a \"name\" and "
                                 "an \"arguments\" string",
                                 i, j);
    }
    return 0;
}

/* Tool definitions: OpenAI's {"type":"function","function":{"name":...,...}}. */
static int
check_tools(json_t *tools, struct sl_proto_error *err)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *type = json_object_get(t, "type");
        json_t *fn = json_object_get(t, "function");
        if (!json_is_object(t) ||
            !(json_is_string(type) && strcmp(json_string_value(type), "function") == 0) ||
            !json_is_object(fn) || !has_string(fn, "name"))
            return sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                                 "tools[%zu] must be {\"type\":\"function\",\"function\":"
                                 "{\"name\":...}}",
                                 i);
    }
    return 0;
}

static json_t *
user_message(json_t *text)
{
    return json_pack("{s:s,s:O}", "role", "user", "content", text);
}

static int
build_messages(const struct sl_proto_limits *lim, const struct sl_chat_fields *f, json_t **out,
               struct sl_proto_error *err)
{
    json_t *msgs = NULL;
    int rc = -1;

    if (f->messages && f->message) {
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "give either \"messages\" or \"message\", not both");
        goto out;
    }
    if (f->message) {
        if (!json_is_string(f->message)) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"message\" must be a string");
            goto out;
        }
        msgs = json_array();
        if (f->history) {
            if (!json_is_array(f->history)) {
                sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"history\" must be an array");
                goto out;
            }
            json_array_extend(msgs, f->history);
        }
        json_array_append_new(msgs, user_message(f->message));
    } else if (f->messages) {
        if (!json_is_array(f->messages)) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"messages\" must be an array");
            goto out;
        }
        msgs = json_incref(f->messages);
    } else {
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "missing \"messages\" (or \"message\")");
        goto out;
    }

    size_t n = json_array_size(msgs);
    if (n > lim->max_messages) {
        sl_proto_fail(err, SL_ERR_TOO_LARGE, "too many messages (%zu, limit %zu)", n,
                      lim->max_messages);
        goto out;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (check_message(m, i, err) != 0)
            goto out;
    }
    /* The turn the model answers must say something. */
    json_t *last = NULL;
    for (size_t k = n; k > 0; k--) {
        json_t *cand = json_array_get(msgs, k - 1);
        const char *role = json_string_value(json_object_get(cand, "role"));
        if (strcmp(role, "system") != 0 && strcmp(role, "developer") != 0) {
            last = cand;
            break;
        }
    }
    if (last == NULL) {
        sl_proto_fail(err, SL_ERR_EMPTY_MESSAGE, "the conversation has no user message");
        goto out;
    }
    const char *role = json_string_value(json_object_get(last, "role"));
    bool has_tool_calls = json_object_get(last, "tool_calls") != NULL;
    if (strcmp(role, "tool") != 0 && !has_tool_calls &&
        content_blank(json_object_get(last, "content"))) {
        sl_proto_fail(err, SL_ERR_EMPTY_MESSAGE, "the message is empty");
        goto out;
    }
    *out = msgs;
    msgs = NULL;
    rc = 0;
out:
    json_decref(msgs);
    return rc;
}

static int
opt_string(json_t *v, const char *field, size_t max, char **out, struct sl_proto_error *err)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be a string", field);
    size_t n = json_string_length(v);
    if (n == 0 || n > max)
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must have 1 to %zu characters", field,
                             max);
    *out = sl_strndup(json_string_value(v), n);
    return 0;
}

static int
opt_number(json_t *v, const char *field, double lo, double hi, double *out, bool *has,
           struct sl_proto_error *err)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be a number", field);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"%s\" must be between %g and %g", field, lo,
                             hi);
    *out = d;
    *has = true;
    return 0;
}

int
sl_proto_build_chat(const struct sl_proto_limits *lim, const struct sl_chat_fields *f,
                    struct sl_chat_req **out, struct sl_proto_error *err)
{
    struct sl_chat_req *r = sl_calloc(1, sizeof(*r));
    int rc = -1;
    r->max_tokens = -1;

    if (f->id && !json_is_null(f->id)) {
        if (sl_proto_check_id(lim, f->id, "id", err) != 0)
            goto out;
        r->id = sl_strdup(json_string_value(f->id));
        err->id = sl_strdup(r->id);
    }
    if (opt_string(f->model, "model", 256, &r->model, err) != 0 ||
        opt_string(f->agent, "agent", 256, &r->agent, err) != 0)
        goto out;
    if (f->system && !json_is_null(f->system)) {
        if (!json_is_string(f->system)) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"system\" must be a string");
            goto out;
        }
        if (json_string_length(f->system) > 0)
            r->system = sl_strdup(json_string_value(f->system));
    }
    if (f->max_tokens && !json_is_null(f->max_tokens)) {
        if (!json_is_integer(f->max_tokens) || json_integer_value(f->max_tokens) < 1 ||
            json_integer_value(f->max_tokens) > lim->max_tokens_cap) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                          "\"max_tokens\" must be an integer from 1 to %lld",
                          (long long)lim->max_tokens_cap);
            goto out;
        }
        r->max_tokens = json_integer_value(f->max_tokens);
    }
    if (opt_number(f->temperature, "temperature", 0, 2, &r->temperature, &r->has_temperature,
                   err) != 0 ||
        opt_number(f->top_p, "top_p", 0, 1, &r->top_p, &r->has_top_p, err) != 0)
        goto out;
    if (f->stop && !json_is_null(f->stop)) {
        bool ok = json_is_string(f->stop);
        if (json_is_array(f->stop) && json_array_size(f->stop) <= 4) {
            size_t i;
            json_t *s;
            ok = true;
            json_array_foreach(f->stop, i, s) ok = ok && json_is_string(s);
        }
        if (!ok) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                          "\"stop\" must be a string or an array of up to 4 strings");
            goto out;
        }
        r->stop = json_incref(f->stop);
    }
    if (f->tools && !json_is_null(f->tools)) {
        if (!json_is_array(f->tools)) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"tools\" must be an array");
            goto out;
        }
        if (check_tools(f->tools, err) != 0)
            goto out;
        r->tools = json_incref(f->tools);
    }
    if (f->tool_choice && !json_is_null(f->tool_choice)) {
        if (!json_is_string(f->tool_choice) && !json_is_object(f->tool_choice)) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"tool_choice\" must be a string or object");
            goto out;
        }
        r->tool_choice = json_incref(f->tool_choice);
    }
    if (f->metadata && json_is_object(f->metadata))
        r->metadata = json_incref(f->metadata);
    if (build_messages(lim, f, &r->messages, err) != 0)
        goto out;
    *out = r;
    r = NULL;
    rc = 0;
out:
    sl_chat_req_free(r);
    return rc;
}

json_t *
sl_proto_parse_args(const char *args, size_t len, struct sl_proto_error *err)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_byte(&b, '[');
    sl_buf_append(&b, args, len);
    sl_buf_append_byte(&b, ']');
    json_error_t e;
    json_t *root = json_loadb(sl_buf_ptr(&b), sl_buf_len(&b), JSON_REJECT_DUPLICATES, &e);
    sl_buf_free(&b);
    if (root == NULL || !json_is_array(root)) {
        json_decref(root);
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "the event's arguments are not valid JSON");
        return NULL;
    }
    return root;
}
