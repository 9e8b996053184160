#include "upstream/ollama.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "upstream/httpcall.h"

/* --- request ------------------------------------------------------------------------------ */

static json_t *
convert_message(const json_t *m)
{
    const char *role = sl_json_str(m, "role");
    const json_t *content = json_object_get(m, "content");
    struct sl_buf text = SL_BUF_INIT;
    sl_wire_content_text(content, &text);
    json_t *out = json_pack("{s:s,s:s%}", "role", strcmp(role, "developer") == 0 ? "system" : role,
                            "content", sl_buf_ptr(&text), sl_buf_len(&text));
    sl_buf_free(&text);

    json_t *images = json_array();
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        const json_t *iu = json_object_get(part, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu) : sl_json_str(iu, "url");
        struct sl_slice mime, data;
        if (sl_wire_data_url(url, &mime, &data))
            json_array_append_new(images, json_stringn(data.ptr, data.len));
    }
    if (json_array_size(images) > 0)
        json_object_set_new(out, "images", images);
    else
        json_decref(images);

    const json_t *calls = json_object_get(m, "tool_calls");
    if (json_array_size(calls) > 0) {
        json_t *oc = json_array();
        const json_t *c;
        json_array_foreach(calls, i, c)
        {
            const json_t *fn = json_object_get(c, "function");
            const char *args = sl_json_str(fn, "arguments");
            json_t *a = args ? json_loads(args, 0, NULL) : NULL;
            if (!json_is_object(a)) {
                json_decref(a);
                a = json_object();
            }
            const char *name = sl_json_str(fn, "name");
            json_array_append_new(oc, json_pack("{s:{s:s,s:o}}", "function", "name",
                                                name ? name : "", "arguments", a));
        }
        json_object_set_new(out, "tool_calls", oc);
    }
    return out;
}

static int
build(const struct sl_call_params *p, struct sl_httpreq *req, struct sl_upstream_error *err)
{
    (void)err;
    const struct sl_config_provider *pv = p->provider;
    const struct sl_chat_req *r = p->req;
    struct sl_buf url = SL_BUF_INIT;
    sl_buf_printf(&url, "%s/api/chat", pv->base_url);
    sl_buf_cstr(&url);
    req->url = sl_buf_steal(&url, NULL);
    if (pv->api_key)
        sl_httpreq_bearer(req, pv->api_key);
    sl_httpreq_header(req, "Accept", "application/x-ndjson");

    json_t *messages = json_array();
    if (p->system && *p->system)
        json_array_append_new(messages,
                              json_pack("{s:s,s:s}", "role", "system", "content", p->system));
    size_t i;
    const json_t *m;
    json_array_foreach(r->messages, i, m) json_array_append_new(messages, convert_message(m));

    json_t *body = json_object();
    json_object_set_new(body, "model", json_string(p->upstream_model));
    json_object_set_new(body, "messages", messages);
    json_object_set_new(body, "stream", json_true());
    static const struct sl_wire_sampling_names names = {"temperature", "num_predict", "top_p",
                                                        "stop"};
    json_t *options = sl_wire_sampling(p, &names);
    if (options)
        json_object_set_new(body, "options", options);
    if (json_array_size(r->tools) > 0)
        json_object_set(body, "tools", r->tools);
    sl_httpreq_json(req, body);
    json_decref(body);
    return 0;
}

/* --- stream ------------------------------------------------------------------------------- */

static void
tool_calls(struct sl_resp *r, const json_t *calls)
{
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        const json_t *fn = json_object_get(c, "function");
        const json_t *id = json_object_get(c, "id");
        const json_t *name = json_object_get(fn, "name");
        const json_t *args = json_object_get(fn, "arguments");
        char *argtext = NULL;
        if (json_is_string(args))
            argtext = sl_strdup(json_string_value(args));
        else if (args)
            argtext = json_dumps(args, JSON_COMPACT);
        struct sl_tool_delta t = {
            .index = (int)r->ntools++,
            .id = json_string_value(id),
            .id_len = json_string_length(id),
            .name = json_string_value(name),
            .name_len = json_string_length(name),
            .arguments = argtext ? argtext : "{}",
            .arguments_len = argtext ? strlen(argtext) : 2,
        };
        sl_resp_tool(r, &t);
        free(argtext);
    }
}

/*
 * The per-token path: a `done: false` line of text read through this table with the
 * fast-path scanner (fastpath.h). The final line, tool calls, errors and oddities fail the
 * scan (or the check of `done` after it): on_chunk parses those with jansson instead, to
 * the same result.
 */
enum { O_CONTENT, O_DONE };

static const struct sl_fp_field message_fields[] = {
    {SL_FP_KEY("content"), SL_FP_STRING, SL_FP_NULLABLE, O_CONTENT, NULL, NULL},
    {SL_FP_KEY("tool_calls"), SL_FP_NULL, 0, -1, NULL, NULL},
    SL_FP_END,
};

static const struct sl_fp_field line_fields[] = {
    {SL_FP_KEY("message"), SL_FP_OBJECT, SL_FP_NULLABLE, -1, message_fields, NULL},
    {SL_FP_KEY("done"), SL_FP_BOOL, 0, O_DONE, NULL, NULL},
    {SL_FP_KEY("error"), SL_FP_REFUSE, 0, -1, NULL, NULL},
    SL_FP_END,
};

static int
fast_chunk(struct sl_resp *r, struct sl_slice line)
{
    struct sl_fp_out o;
    if (sl_fp_scan(line_fields, line, &r->scratch, &o) != 0 ||
        (sl_fp_has(&o, O_DONE) && o.num[O_DONE] != 0))
        return -1;
    if (sl_fp_has(&o, O_CONTENT))
        sl_resp_text(r, o.str[O_CONTENT].ptr, o.str[O_CONTENT].len);
    r->fast_chunks++;
    return 0;
}

static int
on_chunk(struct sl_resp *r, struct sl_slice event, struct sl_slice line)
{
    (void)event;
    if (r->state != SL_RESP_OPEN)
        return 0;
    if (!r->slow_only && fast_chunk(r, line) == 0)
        return 0;
    json_t *root = sl_resp_object(r, line);
    if (root == NULL)
        return SL_RESP_STOP;
    int rc = 0;
    const json_t *err = json_object_get(root, "error");
    if (err != NULL) {
        /* The model runner failed mid-answer: a server-side failure, worth a retry. */
        rc = sl_resp_fail_stream(r, 500, NULL,
                                 json_is_string(err) ? json_string_value(err)
                                                     : sl_json_str(err, "message"));
        goto out;
    }
    const json_t *msg = json_object_get(root, "message");
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content))
        sl_resp_text(r, json_string_value(content), json_string_length(content));
    const json_t *calls = json_object_get(msg, "tool_calls");
    if (json_is_array(calls))
        tool_calls(r, calls);
    if (json_is_true(json_object_get(root, "done"))) {
        const char *reason = sl_json_str(root, "done_reason");
        enum sl_finish f = r->ntools > 0 ? SL_FINISH_TOOL_CALLS : SL_FINISH_STOP;
        if (reason && strcmp(reason, "length") == 0)
            f = SL_FINISH_LENGTH;
        sl_resp_set_finish(r, f, reason ? reason : NULL);
        /* Counts are omitted when zero (a cached prompt); both absent: no usage at all. */
        uint64_t in, out;
        bool any =
            json_object_get(root, "prompt_eval_count") || json_object_get(root, "eval_count");
        if (any && sl_wire_usage(root, "prompt_eval_count", "eval_count", &in, &out))
            sl_resp_set_usage(r, in, out);
        sl_resp_terminated(r);
    }
out:
    json_decref(root);
    return rc;
}

static void
http_error(struct sl_resp *r, json_t *root, struct sl_wire_error *e)
{
    (void)r;
    const json_t *err = json_object_get(root, "error");
    e->message = json_is_string(err) ? json_string_value(err) : sl_json_str(err, "message");
}

const struct sl_wire sl_wire_ollama = {
    .kind = "ollama",
    .framing = SL_WIRE_NDJSON,
    .key_optional = true,
    .build = build,
    .on_chunk = on_chunk,
    .http_error = http_error,
};

SL_HTTPCALL_PROVIDER(sl_provider_ollama, "ollama", sl_wire_ollama);
