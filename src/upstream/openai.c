#include "upstream/openai.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "upstream/httpcall.h"

/* --- request ------------------------------------------------------------------------------ */

/* api.openai.com itself (not a compatible server): it wants max_completion_tokens. */
static bool
is_openai_host(const char *base_url)
{
    const char *h = strstr(base_url, "://");
    if (h == NULL)
        return false;
    h += 3;
    size_t n = strlen("api.openai.com");
    return strncmp(h, "api.openai.com", n) == 0 && (h[n] == '\0' || h[n] == '/' || h[n] == ':');
}

static int
build(const struct sl_call_params *p, struct sl_httpreq *req, struct sl_upstream_error *err)
{
    (void)err;
    const struct sl_config_provider *pv = p->provider;
    const struct sl_chat_req *r = p->req;
    struct sl_buf url = SL_BUF_INIT;
    sl_buf_printf(&url, "%s/chat/completions", pv->base_url);
    sl_buf_cstr(&url);
    req->url = sl_buf_steal(&url, NULL);
    if (pv->api_key)
        sl_httpreq_bearer(req, pv->api_key);
    sl_httpreq_header(req, "Accept", "text/event-stream");

    json_t *messages = json_array();
    if (p->system && *p->system)
        json_array_append_new(messages,
                              json_pack("{s:s,s:s}", "role", "system", "content", p->system));
    json_array_extend(messages, r->messages);

    json_t *body = json_object();
    json_object_set_new(body, "model", json_string(p->upstream_model));
    json_object_set_new(body, "messages", messages);
    if (p->max_tokens > 0)
        json_object_set_new(body,
                            is_openai_host(pv->base_url) ? "max_completion_tokens" : "max_tokens",
                            json_integer(p->max_tokens));
    if (p->has_temperature)
        json_object_set_new(body, "temperature", json_real(p->temperature));
    if (r->has_top_p)
        json_object_set_new(body, "top_p", json_real(r->top_p));
    if (r->stop)
        json_object_set(body, "stop", r->stop);
    if (r->tools)
        json_object_set(body, "tools", r->tools);
    if (r->tool_choice)
        json_object_set(body, "tool_choice", r->tool_choice);
    json_object_set_new(body, "stream", json_true());
    json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    sl_httpreq_json(req, body);
    json_decref(body);
    return 0;
}

/* --- stream ------------------------------------------------------------------------------- */

static enum sl_finish
map_finish(const char *f)
{
    if (strcmp(f, "length") == 0)
        return SL_FINISH_LENGTH;
    if (strcmp(f, "tool_calls") == 0 || strcmp(f, "function_call") == 0)
        return SL_FINISH_TOOL_CALLS;
    if (strcmp(f, "content_filter") == 0)
        return SL_FINISH_CONTENT_FILTER;
    if (strcmp(f, "error") == 0)
        return SL_FINISH_ERROR;
    return SL_FINISH_STOP;
}

/* What status an error type names, for the retry decision. */
static int
status_of_type(const char *t)
{
    if (t == NULL)
        return 0;
    if (strcmp(t, "server_error") == 0 || strcmp(t, "api_error") == 0)
        return 500;
    if (strstr(t, "rate_limit") != NULL)
        return 429;
    if (strcmp(t, "invalid_request_error") == 0)
        return 400;
    return 0;
}

/* An error object (or string) found in a 200 stream. */
static int
stream_error(struct sl_resp *r, const json_t *e)
{
    if (json_is_string(e))
        return sl_resp_fail_stream(r, 0, NULL, json_string_value(e));
    const char *message = sl_json_str(e, "message");
    const char *type = sl_json_str(e, "type");
    const json_t *code = json_object_get(e, "code");
    const char *native = json_is_string(code) ? json_string_value(code) : type;
    int status = json_is_integer(code) ? sl_wire_status_of(json_integer_value(code)) : 0;
    if (status < 400 || status > 599)
        status = status_of_type(json_is_string(code) ? json_string_value(code) : NULL);
    if (status == 0)
        status = status_of_type(type);
    return sl_resp_fail_stream(r, status, native, message);
}

/* Returns 0, or SL_RESP_STOP for an index out of range. */
static int
tool_fragments(struct sl_resp *r, const json_t *calls)
{
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        const json_t *fn = json_object_get(c, "function");
        const json_t *id = json_object_get(c, "id");
        const json_t *name = json_object_get(fn, "name");
        const json_t *args = json_object_get(fn, "arguments");
        struct sl_tool_delta t = {.index = i < INT32_MAX ? (int)i : INT32_MAX};
        if (sl_json_index(c, "index", &t.index) < 0)
            return sl_wire_bad_index(r);
        if (json_is_string(id)) {
            t.id = json_string_value(id);
            t.id_len = json_string_length(id);
        }
        if (json_is_string(name)) {
            t.name = json_string_value(name);
            t.name_len = json_string_length(name);
        }
        if (json_is_string(args)) {
            t.arguments = json_string_value(args);
            t.arguments_len = json_string_length(args);
        }
        if (t.id == NULL && t.name == NULL && t.arguments_len == 0)
            continue;
        sl_resp_tool(r, &t);
    }
    return 0;
}

/*
 * The per-token path: a chunk of text (or a finish, or usage) read through this table with
 * the fast-path scanner (fastpath.h), without building a document. Anything else (tool
 * calls, errors, repeated or oddly typed fields, invalid JSON) makes the scan fail: on_chunk
 * then parses the chunk with jansson, which gives the same result for everything this takes.
 */
enum { F_CONTENT, F_REFUSAL, F_FINISH, F_OBJECT, F_USAGE, F_IN, F_OUT };

static const struct sl_slice error_object[] = {SL_SLICE("error"), {NULL, 0}};

static const struct sl_fp_field delta_fields[] = {
    {SL_FP_KEY("content"), SL_FP_STRING, SL_FP_NULLABLE, F_CONTENT, NULL, NULL},
    {SL_FP_KEY("refusal"), SL_FP_STRING, SL_FP_NULLABLE, F_REFUSAL, NULL, NULL},
    {SL_FP_KEY("tool_calls"), SL_FP_NULL, 0, -1, NULL, NULL},
    SL_FP_END,
};

static const struct sl_fp_field choice_fields[] = {
    {SL_FP_KEY("finish_reason"), SL_FP_STRING, SL_FP_NULLABLE, F_FINISH, NULL, NULL},
    {SL_FP_KEY("delta"), SL_FP_OBJECT, 0, -1, delta_fields, NULL},
    SL_FP_END,
};

static const struct sl_fp_field usage_fields[] = {
    {SL_FP_KEY("prompt_tokens"), SL_FP_INT, 0, F_IN, NULL, NULL},
    {SL_FP_KEY("completion_tokens"), SL_FP_INT, 0, F_OUT, NULL, NULL},
    SL_FP_END,
};

static const struct sl_fp_field chunk_fields[] = {
    {SL_FP_KEY("choices"), SL_FP_FIRST, SL_FP_NULLABLE, -1, choice_fields, NULL},
    {SL_FP_KEY("usage"), SL_FP_OBJECT, SL_FP_NULLABLE, F_USAGE, usage_fields, NULL},
    {SL_FP_KEY("error"), SL_FP_NULL, 0, -1, NULL, NULL},
    {SL_FP_KEY("object"), SL_FP_STRING, SL_FP_EXCEPT, F_OBJECT, NULL, error_object},
    SL_FP_END,
};

static int
fast_chunk(struct sl_resp *r, struct sl_slice data)
{
    struct sl_fp_out o;
    uint64_t in = 0, out = 0;
    if (sl_fp_scan(chunk_fields, data, &r->scratch, &o) != 0 ||
        !sl_wire_fp_usage(&o, F_USAGE, F_IN, F_OUT, &in, &out))
        return -1;
    if (sl_fp_has(&o, F_CONTENT))
        sl_resp_text(r, o.str[F_CONTENT].ptr, o.str[F_CONTENT].len);
    if (sl_fp_has(&o, F_REFUSAL))
        sl_resp_text(r, o.str[F_REFUSAL].ptr, o.str[F_REFUSAL].len);
    if (sl_fp_has(&o, F_FINISH)) {
        char f[48];
        size_t n = o.str[F_FINISH].len < sizeof(f) - 1 ? o.str[F_FINISH].len : sizeof(f) - 1;
        memcpy(f, o.str[F_FINISH].ptr, n);
        f[n] = '\0';
        sl_resp_set_finish(r, map_finish(f), f);
    }
    if (sl_fp_has(&o, F_USAGE))
        sl_resp_set_usage(r, in, out);
    r->fast_chunks++;
    return 0;
}

static int
on_chunk(struct sl_resp *r, struct sl_slice event, struct sl_slice data)
{
    if (r->state != SL_RESP_OPEN)
        return 0; /* nothing counts after [DONE] */
    if (sl_slice_eq(data, "[DONE]")) {
        /* llama.cpp sends [DONE] after an error it reported its own way, too. */
        if (!r->have_finish)
            return sl_resp_fail(r, SL_ERR_UPSTREAM_ERROR, true, -1, NULL,
                                "the stream ended ([DONE]) without a finish reason");
        sl_resp_terminated(r);
        return 0;
    }
    if (!r->slow_only && !sl_slice_eq(event, "error") && fast_chunk(r, data) == 0)
        return 0;
    json_t *root = sl_resp_object(r, data);
    if (root == NULL)
        return SL_RESP_STOP;
    int rc = 0;
    const json_t *err = json_object_get(root, "error");
    if (err != NULL && !json_is_null(err)) {
        rc = stream_error(r, err);
        goto out;
    }
    const char *object = sl_json_str(root, "object");
    if (sl_slice_eq(event, "error") || (object && strcmp(object, "error") == 0)) {
        rc = stream_error(r, root); /* vLLM: the chunk is the error */
        goto out;
    }
    const json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    if (choice != NULL) {
        const json_t *delta = json_object_get(choice, "delta");
        const json_t *content = json_object_get(delta, "content");
        if (json_is_string(content))
            sl_resp_text(r, json_string_value(content), json_string_length(content));
        const json_t *refusal = json_object_get(delta, "refusal");
        if (json_is_string(refusal))
            sl_resp_text(r, json_string_value(refusal), json_string_length(refusal));
        const json_t *calls = json_object_get(delta, "tool_calls");
        if (json_is_array(calls) && tool_fragments(r, calls) != 0) {
            rc = SL_RESP_STOP;
            goto out;
        }
        const char *finish = sl_json_str(choice, "finish_reason");
        if (finish != NULL)
            sl_resp_set_finish(r, map_finish(finish), finish);
    }
    uint64_t in, out;
    if (sl_wire_usage(json_object_get(root, "usage"), "prompt_tokens", "completion_tokens", &in,
                      &out))
        sl_resp_set_usage(r, in, out);
out:
    json_decref(root);
    return rc;
}

/* llama.cpp's server reports some errors as an `error:` line with a JSON object. */
static int
on_field(struct sl_resp *r, struct sl_slice name, struct sl_slice value)
{
    if (r->state != SL_RESP_OPEN || !sl_slice_eq(name, "error"))
        return 0;
    json_t *root = sl_wire_parse(value);
    int rc;
    if (json_is_object(root)) {
        rc = stream_error(r, root);
    } else {
        char text[200];
        size_t n = value.len < sizeof(text) - 1 ? value.len : sizeof(text) - 1;
        memcpy(text, value.ptr, n);
        text[n] = '\0';
        rc = sl_resp_fail_stream(r, 0, NULL, text);
    }
    json_decref(root);
    return rc;
}

static void
http_error(struct sl_resp *r, json_t *root, struct sl_wire_error *e)
{
    (void)r;
    const json_t *err = json_object_get(root, "error");
    if (json_is_string(err)) {
        e->message = json_string_value(err);
        return;
    }
    if (!json_is_object(err))
        err = root; /* vLLM and others: {"object":"error","message":...} */
    e->message = sl_json_str(err, "message");
    if (e->message == NULL)
        e->message = sl_json_str(err, "detail");
    const char *code = sl_json_str(err, "code");
    e->native = code ? code : sl_json_str(err, "type");
    /* Out of credit is a 429 too, but waiting does not help. */
    if (code && strcmp(code, "insufficient_quota") == 0)
        e->retryable = 0;
}

const struct sl_wire sl_wire_openai = {
    .kind = "openai",
    .framing = SL_WIRE_SSE,
    .build = build,
    .on_chunk = on_chunk,
    .on_field = on_field,
    .http_error = http_error,
};

SL_HTTPCALL_PROVIDER(sl_provider_openai, "openai", sl_wire_openai);
