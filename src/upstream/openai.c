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
 * The per-token path: a chunk of text (or a finish, or usage) read with jscan, without
 * building a document. Returns -1 for anything else (tool calls, errors, repeated or
 * oddly typed fields, invalid JSON): on_chunk then parses it with jansson, which gives the
 * same result for everything this accepts.
 */
static int
fast_chunk(struct sl_resp *r, struct sl_slice data)
{
    struct sl_jscan s;
    struct sl_slice key, content = {0}, refusal = {0}, finish = {0}, obj;
    bool have_content = false, have_refusal = false, have_finish = false, have_usage = false;
    bool seen_choices = false, seen_usage = false;
    int64_t pin = 0, pout = 0;
    sl_jscan_init(&s, data.ptr, data.len, &r->scratch);
    if (!sl_jscan_object(&s))
        return -1;
    while (sl_jscan_key(&s, &key)) {
        if (SL_JSCAN_IS(key, "choices")) {
            if (seen_choices)
                return -1; /* jansson keeps the last one: let it */
            seen_choices = true;
            if (sl_jscan_null(&s))
                continue;
            if (!sl_jscan_array(&s))
                return -1;
            for (int i = 0; sl_jscan_next(&s); i++) {
                if (i > 0) {
                    sl_jscan_skip(&s);
                    continue;
                }
                if (!sl_jscan_object(&s))
                    return -1;
                bool seen_delta = false, seen_finish = false;
                while (sl_jscan_key(&s, &key)) {
                    if (SL_JSCAN_IS(key, "finish_reason")) {
                        if (seen_finish)
                            return -1;
                        seen_finish = true;
                        if (!sl_jscan_null(&s))
                            have_finish = sl_jscan_string(&s, &finish);
                    } else if (SL_JSCAN_IS(key, "delta")) {
                        if (seen_delta || !sl_jscan_object(&s))
                            return -1;
                        seen_delta = true;
                        bool seen_c = false, seen_r = false;
                        while (sl_jscan_key(&s, &key)) {
                            if (SL_JSCAN_IS(key, "content")) {
                                if (seen_c)
                                    return -1;
                                seen_c = true;
                                if (!sl_jscan_null(&s))
                                    have_content = sl_jscan_string(&s, &content);
                            } else if (SL_JSCAN_IS(key, "refusal")) {
                                if (seen_r)
                                    return -1;
                                seen_r = true;
                                if (!sl_jscan_null(&s))
                                    have_refusal = sl_jscan_string(&s, &refusal);
                            } else if (SL_JSCAN_IS(key, "tool_calls")) {
                                if (!sl_jscan_null(&s))
                                    return -1;
                            } else {
                                sl_jscan_skip(&s);
                            }
                        }
                    } else {
                        sl_jscan_skip(&s);
                    }
                }
            }
        } else if (SL_JSCAN_IS(key, "usage")) {
            if (seen_usage)
                return -1;
            seen_usage = true;
            int u = sl_wire_scan_usage(&s, "prompt_tokens", "completion_tokens", &pin, &pout);
            if (u < 0)
                return -1;
            have_usage = u > 0;
        } else if (SL_JSCAN_IS(key, "error")) {
            if (!sl_jscan_null(&s))
                return -1;
        } else if (SL_JSCAN_IS(key, "object")) {
            if (!sl_jscan_string(&s, &obj) || SL_JSCAN_IS(obj, "error"))
                return -1;
        } else {
            sl_jscan_skip(&s);
        }
    }
    if (!sl_jscan_done(&s))
        return -1;
    if (have_content)
        sl_resp_text(r, content.ptr, content.len);
    if (have_refusal)
        sl_resp_text(r, refusal.ptr, refusal.len);
    if (have_finish) {
        char f[48];
        size_t n = finish.len < sizeof(f) - 1 ? finish.len : sizeof(f) - 1;
        memcpy(f, finish.ptr, n);
        f[n] = '\0';
        sl_resp_set_finish(r, map_finish(f), f);
    }
    if (have_usage)
        sl_resp_set_usage(r, (uint64_t)pin, (uint64_t)pout);
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
