#include "upstream/anthropic.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "upstream/httpcall.h"

#define DEFAULT_VERSION "2023-06-01"
/* From this version on the API takes Bearer auth and refuses sampling parameters. */
#define BEARER_VERSION "2026-10-21"

/* --- request ------------------------------------------------------------------------------ */

/* An OpenAI content part as an Anthropic content block (NULL: dropped). */
static json_t *
convert_part(const json_t *part)
{
    const char *type = sl_json_str(part, "type");
    if (type == NULL)
        return NULL;
    if (strcmp(type, "text") == 0)
        return json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(part, "text"));
    if (strcmp(type, "image_url") == 0) {
        const json_t *iu = json_object_get(part, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu) : sl_json_str(iu, "url");
        struct sl_slice mime, data;
        if (sl_wire_data_url(url, &mime, &data))
            return json_pack("{s:s,s:{s:s,s:s%,s:s%}}", "type", "image", "source", "type", "base64",
                             "media_type", mime.ptr, mime.len, "data", data.ptr, data.len);
        if (url)
            return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url",
                             url);
        return NULL;
    }
    return json_deep_copy(part); /* perhaps already an Anthropic block */
}

static json_t *
convert_content(const json_t *content)
{
    if (content == NULL || json_is_null(content))
        return json_string("");
    if (json_is_string(content))
        return json_incref((json_t *)content);
    json_t *blocks = json_array();
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *b = convert_part(part);
        if (b)
            json_array_append_new(blocks, b);
    }
    return blocks;
}

/* An assistant turn: its text, then a tool_use block per tool call. */
static json_t *
assistant_blocks(const json_t *m)
{
    const json_t *content = json_object_get(m, "content");
    const json_t *calls = json_object_get(m, "tool_calls");
    if (json_array_size(calls) == 0)
        return convert_content(content);
    json_t *blocks = json_array();
    if (json_is_string(content) && json_string_length(content) > 0)
        json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text", content));
    else if (json_is_array(content)) {
        json_t *converted = convert_content(content);
        json_array_extend(blocks, converted);
        json_decref(converted);
    }
    size_t i;
    const json_t *c;
    json_array_foreach(calls, i, c)
    {
        const json_t *fn = json_object_get(c, "function");
        const char *args = sl_json_str(fn, "arguments");
        json_t *input = args ? json_loads(args, 0, NULL) : NULL;
        if (!json_is_object(input)) {
            json_decref(input);
            input = json_object();
        }
        json_array_append_new(blocks,
                              json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                                        sl_json_str(c, "id") ? sl_json_str(c, "id") : "", "name",
                                        sl_json_str(fn, "name") ? sl_json_str(fn, "name") : "",
                                        "input", input));
    }
    return blocks;
}

static json_t *
convert_messages(const json_t *in)
{
    json_t *out = json_array();
    json_t *results = NULL; /* the user turn collecting consecutive tool results */
    size_t i;
    const json_t *m;
    json_array_foreach(in, i, m)
    {
        const char *role = sl_json_str(m, "role");
        const json_t *content = json_object_get(m, "content");
        if (role == NULL || strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
            continue; /* in the top-level system field */
        if (strcmp(role, "tool") == 0) {
            json_t *block =
                json_pack("{s:s,s:s}", "type", "tool_result", "tool_use_id",
                          sl_json_str(m, "tool_call_id") ? sl_json_str(m, "tool_call_id") : "");
            if (content && !json_is_null(content))
                json_object_set_new(block, "content", convert_content(content));
            if (results == NULL) {
                results = json_array();
                json_array_append_new(out,
                                      json_pack("{s:s,s:o}", "role", "user", "content", results));
            }
            json_array_append_new(results, block);
            continue;
        }
        results = NULL;
        if (strcmp(role, "assistant") == 0) {
            json_array_append_new(
                out, json_pack("{s:s,s:o}", "role", "assistant", "content", assistant_blocks(m)));
            continue;
        }
        json_array_append_new(
            out, json_pack("{s:s,s:o}", "role", "user", "content", convert_content(content)));
    }
    return out;
}

static json_t *
convert_tools(const json_t *tools)
{
    json_t *out = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *fn = json_object_get(t, "function");
        if (fn == NULL) {
            json_array_append_new(out, json_deep_copy(t)); /* already Anthropic's shape */
            continue;
        }
        json_t *o = json_pack("{s:O?}", "name", json_object_get(fn, "name"));
        if (json_object_get(fn, "description"))
            json_object_set(o, "description", json_object_get(fn, "description"));
        const json_t *params = json_object_get(fn, "parameters");
        if (params)
            json_object_set(o, "input_schema", (json_t *)params);
        else
            json_object_set_new(o, "input_schema", json_pack("{s:s}", "type", "object"));
        json_array_append_new(out, o);
    }
    return out;
}

static json_t *
convert_tool_choice(const json_t *tc)
{
    const char *s = json_string_value(tc);
    if (s) {
        if (strcmp(s, "required") == 0)
            return json_pack("{s:s}", "type", "any");
        if (strcmp(s, "none") == 0)
            return json_pack("{s:s}", "type", "none");
        return json_pack("{s:s}", "type", "auto");
    }
    const char *name = sl_json_str(json_object_get(tc, "function"), "name");
    if (name)
        return json_pack("{s:s,s:s}", "type", "tool", "name", name);
    return json_deep_copy(tc);
}

static int
build(const struct sl_call_params *p, struct sl_httpreq *req, struct sl_upstream_error *err)
{
    (void)err;
    const struct sl_config_provider *pv = p->provider;
    const struct sl_chat_req *r = p->req;
    const char *version = pv->api_version ? pv->api_version : DEFAULT_VERSION;
    bool bearer = strcmp(version, BEARER_VERSION) >= 0;

    req->url = sl_wire_url(pv->base_url, "v1", "/messages");
    if (pv->api_key) {
        if (bearer)
            sl_httpreq_bearer(req, pv->api_key);
        else
            sl_httpreq_header(req, "x-api-key", pv->api_key);
    }
    sl_httpreq_header(req, "anthropic-version", version);
    sl_httpreq_header(req, "Accept", "text/event-stream");

    json_t *body = json_object();
    json_object_set_new(body, "model", json_string(p->upstream_model));
    json_object_set_new(
        body, "max_tokens",
        json_integer(p->max_tokens > 0 ? p->max_tokens : SL_ANTHROPIC_DEFAULT_MAX_TOKENS));
    char *system = sl_wire_system_text(p);
    if (system)
        json_object_set_new(body, "system", json_string(system));
    free(system);
    json_object_set_new(body, "messages", convert_messages(r->messages));
    if (!bearer && p->has_temperature)
        json_object_set_new(body, "temperature",
                            json_real(p->temperature > 1 ? 1.0 : p->temperature));
    if (!bearer && r->has_top_p)
        json_object_set_new(body, "top_p", json_real(r->top_p));
    json_t *stop = sl_wire_stop_array(r->stop);
    if (stop)
        json_object_set_new(body, "stop_sequences", stop);
    if (json_array_size(r->tools) > 0)
        json_object_set_new(body, "tools", convert_tools(r->tools));
    if (r->tool_choice)
        json_object_set_new(body, "tool_choice", convert_tool_choice(r->tool_choice));
    json_object_set_new(body, "stream", json_true());
    sl_httpreq_json(req, body);
    json_decref(body);
    return 0;
}

/* --- stream ------------------------------------------------------------------------------- */

static enum sl_finish
map_finish(const char *f)
{
    if (strcmp(f, "max_tokens") == 0 || strcmp(f, "model_context_window_exceeded") == 0)
        return SL_FINISH_LENGTH;
    if (strcmp(f, "tool_use") == 0)
        return SL_FINISH_TOOL_CALLS;
    if (strcmp(f, "refusal") == 0)
        return SL_FINISH_CONTENT_FILTER;
    return SL_FINISH_STOP; /* end_turn, stop_sequence, pause_turn */
}

/* The HTTP status an error type stands for (the API documents the pairs). */
static int
status_of_type(const char *t)
{
    static const struct {
        const char *type;
        int status;
    } map[] = {
        {"invalid_request_error", 400}, {"authentication_error", 401},
        {"billing_error", 402},         {"permission_error", 403},
        {"not_found_error", 404},       {"request_too_large", 413},
        {"rate_limit_error", 429},      {"api_error", 500},
        {"timeout_error", 504},         {"overloaded_error", 529},
    };
    for (size_t i = 0; t && i < SL_ARRAY_LEN(map); i++)
        if (strcmp(t, map[i].type) == 0)
            return map[i].status;
    return 0;
}

/*
 * message_start carries the input tokens and a provisional output count; message_delta
 * the cumulative output (and, on recent servers, the input again). Only the latter makes
 * the report complete.
 */
static void
usage_from(struct sl_resp *r, const json_t *u, bool final)
{
    if (!json_is_object(u))
        return;
    uint64_t in = r->usage.input_tokens, out = 0;
    int has_out = json_is_integer(json_object_get(u, "output_tokens"))
                      ? sl_json_count(u, "output_tokens", &out)
                      : 0;
    /* A count out of range drops the report: the stream estimates instead. */
    if (sl_json_count(u, "input_tokens", &in) < 0 || has_out < 0)
        return;
    if (final && has_out > 0)
        sl_resp_set_usage(r, in, out);
    else if (!r->have_usage || r->usage_partial)
        sl_resp_set_input_usage(r, in);
}

/*
 * The per-token path: text_delta and input_json_delta events (and ping) read through this
 * table with the fast-path scanner (fastpath.h). Every other event type fails the scan at
 * its `type`, as does anything unusual: on_chunk then parses the event with jansson (same
 * result for everything this takes).
 */
enum { A_TYPE, A_INDEX, A_DTYPE, A_TEXT, A_JSON };

static const struct sl_slice frequent_events[] = {
    SL_SLICE("content_block_delta"), SL_SLICE("ping"), {NULL, 0}};

static const struct sl_fp_field delta_fields[] = {
    {SL_FP_KEY("type"), SL_FP_STRING, 0, A_DTYPE, NULL, NULL},
    {SL_FP_KEY("text"), SL_FP_STRING, 0, A_TEXT, NULL, NULL},
    {SL_FP_KEY("partial_json"), SL_FP_STRING, 0, A_JSON, NULL, NULL},
    SL_FP_END,
};

static const struct sl_fp_field event_fields[] = {
    {SL_FP_KEY("type"), SL_FP_STRING, 0, A_TYPE, NULL, frequent_events},
    {SL_FP_KEY("index"), SL_FP_INT, 0, A_INDEX, NULL, NULL},
    {SL_FP_KEY("delta"), SL_FP_OBJECT, 0, -1, delta_fields, NULL},
    SL_FP_END,
};

static int
fast_chunk(struct sl_resp *r, struct sl_slice data)
{
    struct sl_fp_out o;
    if (sl_fp_scan(event_fields, data, &r->scratch, &o) != 0 || !sl_fp_has(&o, A_TYPE))
        return -1;
    if (SL_JSCAN_IS(o.str[A_TYPE], "ping")) {
        r->fast_chunks++;
        return 0;
    }
    struct sl_slice dtype = sl_fp_has(&o, A_DTYPE) ? o.str[A_DTYPE] : SL_SLICE("");
    if (SL_JSCAN_IS(dtype, "text_delta") && sl_fp_has(&o, A_TEXT)) {
        sl_resp_text(r, o.str[A_TEXT].ptr, o.str[A_TEXT].len);
    } else if (SL_JSCAN_IS(dtype, "input_json_delta") && sl_fp_has(&o, A_JSON) &&
               sl_fp_has(&o, A_INDEX) && o.num[A_INDEX] >= 0 && o.num[A_INDEX] <= INT32_MAX) {
        if (o.str[A_JSON].len > 0) {
            struct sl_tool_delta t = {.index = (int)o.num[A_INDEX],
                                      .arguments = o.str[A_JSON].ptr,
                                      .arguments_len = o.str[A_JSON].len};
            sl_resp_tool(r, &t);
        }
    } else {
        return -1;
    }
    r->fast_chunks++;
    return 0;
}

static int
on_chunk(struct sl_resp *r, struct sl_slice event, struct sl_slice data)
{
    (void)event;
    if (r->state != SL_RESP_OPEN)
        return 0;
    if (!r->slow_only && fast_chunk(r, data) == 0)
        return 0;
    json_t *root = sl_resp_object(r, data);
    if (root == NULL)
        return SL_RESP_STOP;
    int rc = 0;
    const char *type = sl_json_str(root, "type");
    if (type == NULL)
        type = "";
    if (strcmp(type, "content_block_delta") == 0) {
        const json_t *d = json_object_get(root, "delta");
        const char *dt = sl_json_str(d, "type");
        if (dt && strcmp(dt, "text_delta") == 0) {
            const json_t *t = json_object_get(d, "text");
            sl_resp_text(r, json_string_value(t), json_string_length(t));
        } else if (dt && strcmp(dt, "input_json_delta") == 0) {
            const json_t *pj = json_object_get(d, "partial_json");
            struct sl_tool_delta t = {
                .arguments = json_string_value(pj),
                .arguments_len = json_string_length(pj),
            };
            if (sl_json_index(root, "index", &t.index) < 0)
                rc = sl_wire_bad_index(r);
            else if (t.arguments_len > 0)
                sl_resp_tool(r, &t);
        }
    } else if (strcmp(type, "content_block_start") == 0) {
        const json_t *cb = json_object_get(root, "content_block");
        const char *ct = sl_json_str(cb, "type");
        if (ct && strcmp(ct, "tool_use") == 0) {
            const json_t *id = json_object_get(cb, "id");
            const json_t *name = json_object_get(cb, "name");
            struct sl_tool_delta t = {
                .id = json_string_value(id),
                .id_len = json_string_length(id),
                .name = json_string_value(name),
                .name_len = json_string_length(name),
                .arguments = "",
            };
            if (sl_json_index(root, "index", &t.index) < 0) {
                rc = sl_wire_bad_index(r);
            } else {
                r->ntools++;
                sl_resp_tool(r, &t);
            }
        } else if (ct && strcmp(ct, "text") == 0) {
            const json_t *t = json_object_get(cb, "text");
            sl_resp_text(r, json_string_value(t), json_string_length(t));
        }
    } else if (strcmp(type, "message_start") == 0) {
        usage_from(r, json_object_get(json_object_get(root, "message"), "usage"), false);
    } else if (strcmp(type, "message_delta") == 0) {
        const char *stop = sl_json_str(json_object_get(root, "delta"), "stop_reason");
        if (stop)
            sl_resp_set_finish(r, map_finish(stop), stop);
        usage_from(r, json_object_get(root, "usage"), true);
    } else if (strcmp(type, "message_stop") == 0) {
        sl_resp_terminated(r);
    } else if (strcmp(type, "error") == 0) {
        const json_t *e = json_object_get(root, "error");
        const char *et = sl_json_str(e, "type");
        rc = sl_resp_fail_stream(r, status_of_type(et), et, sl_json_str(e, "message"));
    }
    /* ping, content_block_stop and event types added later: nothing to do. */
    json_decref(root);
    return rc;
}

static void
http_error(struct sl_resp *r, json_t *root, struct sl_wire_error *e)
{
    (void)r;
    const json_t *err = json_object_get(root, "error");
    e->message = sl_json_str(err, "message");
    e->native = sl_json_str(err, "type");
    if (e->native && strcmp(e->native, "overloaded_error") == 0)
        e->retryable = 1;
    if (e->native && strcmp(e->native, "rate_limit_error") == 0)
        e->code = SL_ERR_UPSTREAM_RATE_LIMITED;
}

const struct sl_wire sl_wire_anthropic = {
    .kind = "anthropic",
    .framing = SL_WIRE_SSE,
    .build = build,
    .on_chunk = on_chunk,
    .http_error = http_error,
};

SL_HTTPCALL_PROVIDER(sl_provider_anthropic, "anthropic", sl_wire_anthropic);
