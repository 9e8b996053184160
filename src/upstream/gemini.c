#include "upstream/gemini.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "upstream/httpcall.h"

/* --- request ------------------------------------------------------------------------------ */

static json_t *
text_part(const char *s, size_t n)
{
    return json_pack("{s:s%}", "text", s, n);
}

/* The parts of a user or model turn (empty text is not allowed by the API: skipped). */
static void
content_parts(json_t *parts, const json_t *content)
{
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            json_array_append_new(
                parts, text_part(json_string_value(content), json_string_length(content)));
        return;
    }
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        const char *type = sl_json_str(part, "type");
        if (type && strcmp(type, "text") == 0) {
            const json_t *t = json_object_get(part, "text");
            if (json_string_length(t) > 0)
                json_array_append_new(parts,
                                      text_part(json_string_value(t), json_string_length(t)));
        } else if (type && strcmp(type, "image_url") == 0) {
            const json_t *iu = json_object_get(part, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : sl_json_str(iu, "url");
            struct sl_slice mime, data;
            if (sl_wire_data_url(url, &mime, &data))
                json_array_append_new(parts,
                                      json_pack("{s:{s:s%,s:s%}}", "inlineData", "mimeType",
                                                mime.ptr, mime.len, "data", data.ptr, data.len));
            else if (url)
                json_array_append_new(parts, json_pack("{s:{s:s}}", "fileData", "fileUri", url));
        }
    }
}

static json_t *
call_part(const json_t *call)
{
    const json_t *fn = json_object_get(call, "function");
    const char *args = sl_json_str(fn, "arguments");
    json_t *a = args ? json_loads(args, 0, NULL) : NULL;
    if (!json_is_object(a)) {
        json_decref(a);
        a = json_object();
    }
    const char *name = sl_json_str(fn, "name");
    return json_pack("{s:{s:s,s:o}}", "functionCall", "name", name ? name : "", "args", a);
}

static json_t *
convert_contents(const json_t *messages)
{
    json_t *out = json_array();
    json_t *responses = NULL; /* parts of the user turn collecting consecutive tool results */
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = sl_json_str(m, "role");
        const json_t *content = json_object_get(m, "content");
        if (role == NULL || strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
            continue;
        if (strcmp(role, "tool") == 0) {
            const char *name = sl_wire_tool_name(messages, i, sl_json_str(m, "tool_call_id"));
            struct sl_buf text = SL_BUF_INIT;
            sl_wire_content_text(content, &text);
            json_t *resp = json_loadb(sl_buf_ptr(&text), sl_buf_len(&text), 0, NULL);
            if (!json_is_object(resp)) {
                json_decref(resp);
                resp = json_pack("{s:s%}", "content", sl_buf_ptr(&text), sl_buf_len(&text));
            }
            sl_buf_free(&text);
            if (responses == NULL) {
                responses = json_array();
                json_array_append_new(out,
                                      json_pack("{s:s,s:o}", "role", "user", "parts", responses));
            }
            json_array_append_new(responses, json_pack("{s:{s:s,s:o}}", "functionResponse", "name",
                                                       name ? name : "", "response", resp));
            continue;
        }
        responses = NULL;
        json_t *parts = json_array();
        content_parts(parts, content);
        bool model = strcmp(role, "assistant") == 0;
        if (model) {
            size_t j;
            const json_t *c;
            json_array_foreach(json_object_get(m, "tool_calls"), j, c)
                json_array_append_new(parts, call_part(c));
        }
        if (json_array_size(parts) == 0) {
            json_decref(parts);
            continue;
        }
        json_array_append_new(
            out, json_pack("{s:s,s:o}", "role", model ? "model" : "user", "parts", parts));
    }
    return out;
}

static json_t *
convert_tools(const json_t *tools)
{
    json_t *decls = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *fn = json_object_get(t, "function");
        if (fn == NULL)
            continue;
        json_t *d = json_pack("{s:O?}", "name", json_object_get(fn, "name"));
        if (json_object_get(fn, "description"))
            json_object_set(d, "description", json_object_get(fn, "description"));
        if (json_object_get(fn, "parameters"))
            json_object_set(d, "parameters", json_object_get(fn, "parameters"));
        json_array_append_new(decls, d);
    }
    return json_pack("[{s:o}]", "functionDeclarations", decls);
}

static json_t *
convert_tool_choice(const json_t *tc)
{
    const char *s = json_string_value(tc);
    const char *mode = "AUTO";
    const char *name = s ? NULL : sl_json_str(json_object_get(tc, "function"), "name");
    if (s && strcmp(s, "required") == 0)
        mode = "ANY";
    else if (s && strcmp(s, "none") == 0)
        mode = "NONE";
    else if (name != NULL)
        mode = "ANY";
    json_t *cfg = json_pack("{s:s}", "mode", mode);
    if (name)
        json_object_set_new(cfg, "allowedFunctionNames", json_pack("[s]", name));
    return json_pack("{s:o}", "functionCallingConfig", cfg);
}

/* Appends s percent-encoded except RFC 3986's unreserved characters. */
static void
append_escaped(struct sl_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            sl_buf_append_byte(b, (char)c);
        else
            sl_buf_printf(b, "%%%02X", c);
    }
}

static int
build(const struct sl_call_params *p, struct sl_httpreq *req, struct sl_upstream_error *err)
{
    (void)err;
    const struct sl_config_provider *pv = p->provider;
    const struct sl_chat_req *r = p->req;
    const char *model = p->upstream_model;
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    struct sl_buf url = SL_BUF_INIT;
    sl_buf_append_str(&url, pv->base_url);
    size_t bl = strlen(pv->base_url);
    bool versioned = (bl >= 7 && strcmp(pv->base_url + bl - 7, "/v1beta") == 0) ||
                     (bl >= 3 && strcmp(pv->base_url + bl - 3, "/v1") == 0);
    sl_buf_append_str(&url, versioned ? "/models/" : "/v1beta/models/");
    append_escaped(&url, model);
    sl_buf_append_str(&url, ":streamGenerateContent?alt=sse");
    sl_buf_cstr(&url);
    req->url = sl_buf_steal(&url, NULL);
    if (pv->api_key)
        sl_httpreq_header(req, "x-goog-api-key", pv->api_key);
    sl_httpreq_header(req, "Accept", "text/event-stream");

    json_t *body = json_object();
    json_object_set_new(body, "contents", convert_contents(r->messages));
    char *system = sl_wire_system_text(p);
    if (system)
        json_object_set_new(body, "systemInstruction",
                            json_pack("{s:[{s:s}]}", "parts", "text", system));
    free(system);
    static const struct sl_wire_sampling_names names = {"temperature", "maxOutputTokens", "topP",
                                                        "stopSequences"};
    json_t *gen = sl_wire_sampling(p, &names);
    if (gen)
        json_object_set_new(body, "generationConfig", gen);
    if (json_array_size(r->tools) > 0)
        json_object_set_new(body, "tools", convert_tools(r->tools));
    if (r->tool_choice)
        json_object_set_new(body, "toolConfig", convert_tool_choice(r->tool_choice));
    sl_httpreq_json(req, body);
    json_decref(body);
    return 0;
}

/* --- stream ------------------------------------------------------------------------------- */

static enum sl_finish
map_finish(const char *f, bool tools)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"};
    if (strcmp(f, "MAX_TOKENS") == 0)
        return SL_FINISH_LENGTH;
    for (size_t i = 0; i < SL_ARRAY_LEN(filtered); i++)
        if (strcmp(f, filtered[i]) == 0)
            return SL_FINISH_CONTENT_FILTER;
    if (strcmp(f, "MALFORMED_FUNCTION_CALL") == 0 || strcmp(f, "UNEXPECTED_TOOL_CALL") == 0)
        return SL_FINISH_ERROR;
    return tools ? SL_FINISH_TOOL_CALLS : SL_FINISH_STOP; /* STOP, OTHER, ... */
}

static int
stream_error(struct sl_resp *r, const json_t *e)
{
    int status = sl_wire_status_of(sl_json_int(e, "code", 0));
    return sl_resp_fail_stream(r, status, sl_json_str(e, "status"), sl_json_str(e, "message"));
}

static void
parts_out(struct sl_resp *r, const json_t *parts)
{
    size_t i;
    const json_t *part;
    json_array_foreach(parts, i, part)
    {
        if (json_is_true(json_object_get(part, "thought")))
            continue; /* thinking summaries are not the answer */
        const json_t *text = json_object_get(part, "text");
        if (json_is_string(text)) {
            sl_resp_text(r, json_string_value(text), json_string_length(text));
            continue;
        }
        const json_t *fc = json_object_get(part, "functionCall");
        if (json_is_object(fc)) {
            /* Gemini sends each call whole: one fragment with all its arguments. */
            const json_t *id = json_object_get(fc, "id");
            const json_t *name = json_object_get(fc, "name");
            const json_t *args = json_object_get(fc, "args");
            char *argtext = args ? json_dumps(args, JSON_COMPACT) : NULL;
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
}

#define FAST_PARTS 8

/*
 * The per-token path: an event of text parts (and usage) read through this table with the
 * fast-path scanner (fastpath.h). The finish event, function calls, thoughts, errors,
 * blocked prompts and oddities fail the scan: on_chunk parses those with jansson instead,
 * to the same result.
 */
enum { G_USAGE, G_IN, G_OUT };

static const struct sl_fp_field part_fields[] = {
    {SL_FP_KEY("thought"), SL_FP_REFUSE, 0, -1, NULL, NULL},
    {SL_FP_KEY("functionCall"), SL_FP_REFUSE, 0, -1, NULL, NULL},
    {SL_FP_KEY("text"), SL_FP_STRING, SL_FP_LIST, -1, NULL, NULL},
    SL_FP_END,
};

static const struct sl_fp_field content_fields[] = {
    {SL_FP_KEY("parts"), SL_FP_EACH, 0, -1, part_fields, NULL},
    SL_FP_END,
};

static const struct sl_fp_field candidate_fields[] = {
    {SL_FP_KEY("finishReason"), SL_FP_REFUSE, 0, -1, NULL, NULL},
    {SL_FP_KEY("content"), SL_FP_OBJECT, 0, -1, content_fields, NULL},
    SL_FP_END,
};

static const struct sl_fp_field usage_fields[] = {
    {SL_FP_KEY("promptTokenCount"), SL_FP_INT, 0, G_IN, NULL, NULL},
    {SL_FP_KEY("candidatesTokenCount"), SL_FP_INT, 0, G_OUT, NULL, NULL},
    SL_FP_END,
};

static const struct sl_fp_field chunk_fields[] = {
    {SL_FP_KEY("candidates"), SL_FP_FIRST, SL_FP_NULLABLE, -1, candidate_fields, NULL},
    {SL_FP_KEY("usageMetadata"), SL_FP_OBJECT, SL_FP_NULLABLE, G_USAGE, usage_fields, NULL},
    {SL_FP_KEY("error"), SL_FP_REFUSE, 0, -1, NULL, NULL},
    {SL_FP_KEY("promptFeedback"), SL_FP_REFUSE, 0, -1, NULL, NULL},
    SL_FP_END,
};

static int
fast_chunk(struct sl_resp *r, struct sl_slice data)
{
    struct sl_fp_out o;
    uint64_t in = 0, out = 0;
    if (sl_fp_scan(chunk_fields, data, &r->scratch, &o) != 0 ||
        !sl_wire_fp_usage(&o, G_USAGE, G_IN, G_OUT, &in, &out))
        return -1;
    if (sl_fp_has(&o, G_USAGE))
        sl_resp_set_usage(r, in, out);
    if (r->state == SL_RESP_OPEN)
        for (size_t i = 0; i < o.nlist; i++)
            sl_resp_text(r, o.list[i].ptr, o.list[i].len);
    r->fast_chunks++;
    return 0;
}

static int
on_chunk(struct sl_resp *r, struct sl_slice event, struct sl_slice data)
{
    (void)event;
    if (!r->slow_only && fast_chunk(r, data) == 0)
        return 0;
    json_t *root = sl_resp_object(r, data);
    if (root == NULL)
        return SL_RESP_STOP;
    int rc = 0;
    const json_t *err = json_object_get(root, "error");
    if (err != NULL) {
        rc = stream_error(r, err);
        goto out;
    }
    /* Usage is cumulative and may still come with the last event: read it in any state. */
    uint64_t in, out;
    if (sl_wire_usage(json_object_get(root, "usageMetadata"), "promptTokenCount",
                      "candidatesTokenCount", &in, &out))
        sl_resp_set_usage(r, in, out);
    if (r->state != SL_RESP_OPEN)
        goto out;
    const json_t *cand = json_array_get(json_object_get(root, "candidates"), 0);
    if (cand == NULL) {
        const char *block = sl_json_str(json_object_get(root, "promptFeedback"), "blockReason");
        if (block != NULL) {
            sl_resp_set_finish(r, SL_FINISH_CONTENT_FILTER, block);
            sl_resp_terminated(r);
        }
        goto out;
    }
    parts_out(r, json_object_get(json_object_get(cand, "content"), "parts"));
    const char *finish = sl_json_str(cand, "finishReason");
    if (finish != NULL) {
        sl_resp_set_finish(r, map_finish(finish, r->ntools > 0), finish);
        sl_resp_terminated(r);
    }
out:
    json_decref(root);
    return rc;
}

/*
 * An error object sent pretty-printed without `data:` (seen in one third-party log): its
 * lines arrive as fields with odd names ("  \"message\""). Enough is read to report it.
 */
static int
on_field(struct sl_resp *r, struct sl_slice name, struct sl_slice value)
{
    size_t i = 0;
    while (i < name.len && (name.ptr[i] == ' ' || name.ptr[i] == '\t'))
        i++;
    struct sl_slice key = sl_slice_make(name.ptr + i, name.len - i);
    if (sl_slice_eq(key, "\"error\"")) {
        r->a.gemini.raw_error = true;
        return 0;
    }
    if (!r->a.gemini.raw_error || !sl_slice_eq(key, "\"message\""))
        return 0;
    /* value: ` "text",` -> text */
    const char *v = value.ptr, *z = value.ptr + value.len;
    while (v < z && (*v == ' ' || *v == '"'))
        v++;
    while (z > v && (z[-1] == ',' || z[-1] == '"' || z[-1] == ' '))
        z--;
    size_t n = (size_t)(z - v);
    if (n >= sizeof(r->a.gemini.raw_message))
        n = sizeof(r->a.gemini.raw_message) - 1;
    memcpy(r->a.gemini.raw_message, v, n);
    r->a.gemini.raw_message[n] = '\0';
    return sl_resp_fail_stream(r, 0, NULL, r->a.gemini.raw_message);
}

static void
http_error(struct sl_resp *r, json_t *root, struct sl_wire_error *e)
{
    (void)r;
    const json_t *err = json_object_get(root, "error");
    e->message = sl_json_str(err, "message");
    e->native = sl_json_str(err, "status");
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(err, "details"), i, d)
    {
        const char *type = sl_json_str(d, "@type");
        if (type == NULL)
            continue;
        if (strstr(type, "google.rpc.RetryInfo") != NULL) {
            e->retry_after_ms = sl_wire_duration_ms(sl_json_str(d, "retryDelay"));
        } else if (strstr(type, "google.rpc.ErrorInfo") != NULL) {
            const char *reason = sl_json_str(d, "reason");
            if (reason && strcmp(reason, "API_KEY_INVALID") == 0) {
                e->code = SL_ERR_UPSTREAM_AUTH;
                e->retryable = 0;
                e->native = reason;
            }
        }
    }
}

const struct sl_wire sl_wire_gemini = {
    .kind = "gemini",
    .framing = SL_WIRE_SSE,
    .build = build,
    .on_chunk = on_chunk,
    .on_field = on_field,
    .http_error = http_error,
};

SL_HTTPCALL_PROVIDER(sl_provider_gemini, "gemini", sl_wire_gemini);
