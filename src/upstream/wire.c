#include "upstream/wire.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/alloc.h"
#include "base/utf8.h"

/* --- requests ------------------------------------------------------------------------- */

void
sl_httpreq_header(struct sl_httpreq *r, const char *name, const char *value)
{
    if (r->nheaders >= SL_HTTPREQ_MAX_HEADERS)
        return;
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, name);
    /* "Name:" with nothing after it tells curl to drop a header it would add itself. */
    sl_buf_append_str(&b, *value ? ": " : ":");
    sl_buf_append_str(&b, value);
    sl_buf_cstr(&b);
    r->headers[r->nheaders++] = sl_buf_steal(&b, NULL);
}

void
sl_httpreq_bearer(struct sl_httpreq *r, const char *key)
{
    struct sl_buf auth = SL_BUF_INIT;
    sl_buf_printf(&auth, "Bearer %s", key);
    sl_httpreq_header(r, "Authorization", sl_buf_cstr(&auth));
    sl_buf_free(&auth);
}

const char *
sl_httpreq_find(const struct sl_httpreq *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *h = r->headers[i];
        if (strncasecmp(h, name, n) == 0 && h[n] == ':')
            return h[n + 1] == ' ' ? h + n + 2 : h + n + 1;
    }
    return NULL;
}

void
sl_httpreq_json(struct sl_httpreq *r, const json_t *body)
{
    free(r->body);
    /* 15 digits: a temperature of 0.2 goes out as 0.2, not 0.20000000000000001. */
    r->body = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (r->body == NULL)
        sl_panic("json_dumps failed");
    r->body_len = strlen(r->body);
}

void
sl_httpreq_cleanup(struct sl_httpreq *r)
{
    free(r->url);
    free(r->body);
    for (size_t i = 0; i < r->nheaders; i++)
        free(r->headers[i]);
    memset(r, 0, sizeof(*r));
}

int
sl_wire_build(const struct sl_wire *w, const struct sl_call_params *p, struct sl_httpreq *req,
              struct sl_upstream_error *err)
{
    const struct sl_config_provider *pv = p->provider;
    /* api_key_env: null in the config says "this server takes no key"; otherwise one is due. */
    if (pv->api_key == NULL && !w->key_optional && pv->api_key_env != NULL) {
        err->code = SL_ERR_UPSTREAM_AUTH;
        err->retryable = false;
        err->retry_after_ms = -1;
        err->message = "no API key is configured for this provider";
        return SL_WIRE_ENOKEY;
    }
    if (w->build(p, req, err) != 0) {
        sl_httpreq_cleanup(req);
        return SL_WIRE_EREQUEST;
    }
    sl_httpreq_header(req, "Content-Type", "application/json");
    sl_httpreq_header(req, "Expect", ""); /* no 100-continue round trip on large prompts */
    sl_httpreq_header(req, "User-Agent", "sluice/" SL_VERSION);
    if (p->request_id)
        sl_httpreq_header(req, "X-Request-Id", p->request_id);
    for (size_t i = 0; i < pv->nheaders; i++)
        sl_httpreq_header(req, pv->headers[i].name, pv->headers[i].value);
    return 0;
}

/* --- small helpers ---------------------------------------------------------------------- */

const char *
sl_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A real that an int64_t holds once truncated: [-2^63, 2^63). NaN fails both tests. */
static bool
real_fits_int64(double d)
{
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0;
}

int64_t
sl_json_int(const json_t *obj, const char *key, int64_t def)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v) && real_fits_int64(json_real_value(v)))
        return (int64_t)json_real_value(v);
    return def;
}

/* The integer under key within [lo, hi] (1), absent or null (0), anything else (-1). */
static int
json_ranged(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return -1;
    /* Compared as doubles before any cast: exact for these bounds (below 2^53). */
    double d = json_number_value(v);
    if (!(d >= (double)lo && d < (double)hi + 1))
        return -1;
    *out = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)d;
    return 1;
}

int
sl_json_count(const json_t *obj, const char *key, uint64_t *out)
{
    int64_t v;
    int rc = json_ranged(obj, key, 0, SL_WIRE_MAX_TOKENS, &v);
    if (rc > 0)
        *out = (uint64_t)v;
    return rc;
}

bool
sl_wire_usage(const json_t *obj, const char *in_key, const char *out_key, uint64_t *in,
              uint64_t *out)
{
    uint64_t a = 0, b = 0;
    if (!json_is_object(obj) || sl_json_count(obj, in_key, &a) < 0 ||
        sl_json_count(obj, out_key, &b) < 0)
        return false;
    *in = a;
    *out = b;
    return true;
}

int
sl_json_index(const json_t *obj, const char *key, int *out)
{
    int64_t v;
    int rc = json_ranged(obj, key, 0, INT32_MAX, &v);
    if (rc > 0)
        *out = (int)v;
    return rc;
}

int
sl_wire_bad_index(struct sl_resp *r)
{
    return sl_resp_fail(r, SL_ERR_UPSTREAM_ERROR, false, -1, NULL,
                        "the stream carried a tool call index out of range");
}

int
sl_wire_status_of(int64_t code)
{
    return code >= 100 && code <= 599 ? (int)code : 0;
}

/* Milliseconds from a provider's number: -1 for NaN or a negative, at most a day. */
static int64_t
retry_ms(double ms)
{
    if (!(ms >= 0))
        return -1;
    if (ms >= SL_WIRE_MAX_RETRY_AFTER_MS)
        return SL_WIRE_MAX_RETRY_AFTER_MS;
    return (int64_t)(ms + 0.5);
}

void
sl_wire_content_text(const json_t *content, struct sl_buf *out)
{
    if (json_is_string(content)) {
        sl_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        const json_t *text = json_object_get(part, "text");
        if (json_is_string(text))
            sl_buf_append(out, json_string_value(text), json_string_length(text));
    }
}

char *
sl_wire_system_text(const struct sl_call_params *p)
{
    struct sl_buf b = SL_BUF_INIT;
    if (p->system && *p->system)
        sl_buf_append_str(&b, p->system);
    size_t i;
    const json_t *m;
    json_array_foreach(p->req->messages, i, m)
    {
        const char *role = sl_json_str(m, "role");
        if (role == NULL || (strcmp(role, "system") != 0 && strcmp(role, "developer") != 0))
            continue;
        size_t before = sl_buf_len(&b);
        if (before > 0)
            sl_buf_append_str(&b, "\n\n");
        size_t mark = sl_buf_len(&b);
        sl_wire_content_text(json_object_get(m, "content"), &b);
        if (sl_buf_len(&b) == mark)
            b.len = b.off + before; /* nothing to join after all */
    }
    if (sl_buf_len(&b) == 0) {
        sl_buf_free(&b);
        return NULL;
    }
    sl_buf_cstr(&b);
    return sl_buf_steal(&b, NULL);
}

json_t *
sl_wire_stop_array(const json_t *stop)
{
    if (json_is_string(stop))
        return json_pack("[O]", stop);
    if (json_is_array(stop) && json_array_size(stop) > 0)
        return json_deep_copy(stop);
    return NULL;
}

json_t *
sl_wire_sampling(const struct sl_call_params *p, const struct sl_wire_sampling_names *n)
{
    const struct sl_chat_req *r = p->req;
    json_t *o = json_object();
    if (p->has_temperature)
        json_object_set_new(o, n->temperature, json_real(p->temperature));
    if (p->max_tokens > 0)
        json_object_set_new(o, n->max_tokens, json_integer(p->max_tokens));
    if (r->has_top_p)
        json_object_set_new(o, n->top_p, json_real(r->top_p));
    json_t *stop = sl_wire_stop_array(r->stop);
    if (stop)
        json_object_set_new(o, n->stop, stop);
    if (json_object_size(o) == 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

bool
sl_wire_data_url(const char *url, struct sl_slice *mime, struct sl_slice *data)
{
    if (url == NULL || strncmp(url, "data:", 5) != 0)
        return false;
    const char *m = url + 5;
    const char *semi = strstr(m, ";base64,");
    if (semi == NULL)
        return false;
    *mime = sl_slice_make(m, (size_t)(semi - m));
    *data = sl_slice_make(semi + 8, strlen(semi + 8));
    return true;
}

const char *
sl_wire_tool_name(const json_t *messages, size_t before, const char *id)
{
    if (id == NULL)
        return NULL;
    for (size_t i = before; i > 0; i--) {
        const json_t *calls = json_object_get(json_array_get(messages, i - 1), "tool_calls");
        size_t j;
        const json_t *call;
        json_array_foreach(calls, j, call)
        {
            const char *cid = sl_json_str(call, "id");
            if (cid && strcmp(cid, id) == 0)
                return sl_json_str(json_object_get(call, "function"), "name");
        }
    }
    return NULL;
}

char *
sl_wire_url(const char *base_url, const char *version, const char *path)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, base_url);
    size_t bl = strlen(base_url), vl = strlen(version);
    /* base_url may already name the API version ("https://host/v1"): do not repeat it. */
    bool has_version =
        bl >= vl + 1 && base_url[bl - vl - 1] == '/' && strcmp(base_url + bl - vl, version) == 0;
    if (!has_version) {
        sl_buf_append_byte(&b, '/');
        sl_buf_append_str(&b, version);
    }
    sl_buf_append_str(&b, path);
    sl_buf_cstr(&b);
    return sl_buf_steal(&b, NULL);
}

bool
sl_wire_fp_usage(const struct sl_fp_out *o, int usage_slot, int in_slot, int out_slot, uint64_t *in,
                 uint64_t *out)
{
    if (!sl_fp_has(o, usage_slot))
        return true;
    int64_t a = sl_fp_has(o, in_slot) ? o->num[in_slot] : 0;
    int64_t b = sl_fp_has(o, out_slot) ? o->num[out_slot] : 0;
    if (a < 0 || a > SL_WIRE_MAX_TOKENS || b < 0 || b > SL_WIRE_MAX_TOKENS)
        return false;
    *in = (uint64_t)a;
    *out = (uint64_t)b;
    return true;
}

json_t *
sl_wire_parse(struct sl_slice s)
{
    return json_loadb(s.ptr, s.len, JSON_ALLOW_NUL, NULL);
}

int64_t
sl_wire_duration_ms(const char *s)
{
    if (s == NULL)
        return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0 && v <= 1e9)) /* NaN fails too */
        return -1;
    if (strcmp(end, "ms") == 0)
        return (int64_t)(v + 0.5);
    if (strcmp(end, "s") == 0 || *end == '\0')
        return (int64_t)(v * 1000 + 0.5);
    return -1;
}

void
sl_wire_status_error(int status, enum sl_errcode *code, bool *retryable)
{
    *code = SL_ERR_UPSTREAM_ERROR;
    *retryable = false;
    switch (status) {
    case 401:
    case 403:
        *code = SL_ERR_UPSTREAM_AUTH;
        return;
    case 408:
    case 409:
        *retryable = true;
        return;
    case 429:
        *code = SL_ERR_UPSTREAM_RATE_LIMITED;
        *retryable = true;
        return;
    case 504:
        *code = SL_ERR_UPSTREAM_TIMEOUT;
        *retryable = true;
        return;
    default:
        *retryable = status >= 500 || status == 0;
        return;
    }
}

/* --- messages ------------------------------------------------------------------------- */

/*
 * Copies s into the message buffer with the key replaced and any word holding a run of
 * four asterisks (a key the provider masked itself, "sk-abc****wxyz") replaced as well:
 * what reaches a client or a log must not help anyone guess a key.
 */
static void
redact_into(struct sl_resp *r, const char *s)
{
    const char *key = r->api_key;
    size_t klen = key ? strlen(key) : 0;
    size_t cap = sizeof(r->msg) - 1, o = 0;
    while (*s && o < cap) {
        if (klen >= 4 && strncmp(s, key, klen) == 0) {
            const char *rep = "[redacted]";
            size_t n = strlen(rep);
            if (o + n > cap)
                break;
            memcpy(r->msg + o, rep, n);
            o += n;
            s += klen;
            continue;
        }
        r->msg[o++] = *s++;
    }
    r->msg[o] = '\0';
    o = sl_utf8_boundary(r->msg, o);
    r->msg[o] = '\0';

    for (;;) {
        char *star = strstr(r->msg, "****");
        if (star == NULL)
            break;
        char *a = star, *z = star;
        while (a > r->msg && !isspace((unsigned char)a[-1]))
            a--;
        while (*z && !isspace((unsigned char)*z))
            z++;
        const char *rep = "[redacted]";
        size_t n = strlen(rep), tail = strlen(z);
        if ((size_t)(a - r->msg) + n + tail > cap)
            tail = cap - (size_t)(a - r->msg) - n;
        memmove(a + n, z, tail);
        memcpy(a, rep, n);
        a[n + tail] = '\0';
    }
}

static void
set_error(struct sl_resp *r, enum sl_errcode code, bool retryable, int64_t retry_after_ms,
          const char *native, const char *text)
{
    r->state = SL_RESP_FAILED;
    char tmp[sizeof(r->msg)];
    snprintf(tmp, sizeof(tmp), "%s: %s", r->provider, text);
    redact_into(r, tmp);
    r->native[0] = '\0';
    if (native)
        snprintf(r->native, sizeof(r->native), "%s", native);
    r->err = (struct sl_upstream_error){
        .code = code,
        .message = r->msg,
        .retryable = retryable,
        .retry_after_ms = retry_after_ms,
        .http_status = r->status >= 300 ? r->status : 0,
        .native_code = r->native[0] ? r->native : NULL,
    };
}

int
sl_resp_fail(struct sl_resp *r, enum sl_errcode code, bool retryable, int64_t retry_after_ms,
             const char *native, const char *fmt, ...)
{
    char text[sizeof(r->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    set_error(r, code, retryable, retry_after_ms, native, text);
    return SL_RESP_STOP;
}

int
sl_resp_fail_stream(struct sl_resp *r, int like_status, const char *native, const char *message)
{
    enum sl_errcode code;
    bool retryable;
    sl_wire_status_error(like_status, &code, &retryable);
    if (native)
        return sl_resp_fail(r, code, retryable, -1, native, "error in the stream (%s): %s", native,
                            message ? message : "no details");
    return sl_resp_fail(r, code, retryable, -1, NULL, "error in the stream: %s",
                        message ? message : "no details");
}

json_t *
sl_resp_object(struct sl_resp *r, struct sl_slice data)
{
    json_t *root = sl_wire_parse(data);
    if (json_is_object(root))
        return root;
    json_decref(root);
    if (r->at_eof)
        sl_resp_fail(r, SL_ERR_UPSTREAM_ERROR, true, -1, NULL,
                     "the stream ended inside an event (truncated)");
    else
        sl_resp_fail(r, SL_ERR_UPSTREAM_ERROR, false, -1, NULL,
                     "the stream carried an event that is not valid JSON");
    return NULL;
}

/* --- sink wrappers ---------------------------------------------------------------------- */

void
sl_resp_text(struct sl_resp *r, const char *s, size_t n)
{
    if (n == 0 || r->cancelled)
        return;
    r->any_output = true;
    r->ndeltas++;
    r->sink->on_delta(r->ud, s, n);
}

void
sl_resp_tool(struct sl_resp *r, const struct sl_tool_delta *t)
{
    if (r->cancelled)
        return;
    r->any_output = true;
    r->ndeltas++;
    r->sink->on_tool_delta(r->ud, t);
}

void
sl_resp_set_finish(struct sl_resp *r, enum sl_finish f, const char *native)
{
    r->have_finish = true;
    r->finish = f;
    snprintf(r->native_finish, sizeof(r->native_finish), "%s", native ? native : "");
}

/* Adapters check counts first (sl_json_count); this keeps cost_usd finite whatever they pass. */
static uint64_t
clamp_count(uint64_t n)
{
    return n > SL_WIRE_MAX_TOKENS ? SL_WIRE_MAX_TOKENS : n;
}

void
sl_resp_set_usage(struct sl_resp *r, uint64_t input_tokens, uint64_t output_tokens)
{
    input_tokens = clamp_count(input_tokens);
    output_tokens = clamp_count(output_tokens);
    r->have_usage = true;
    r->usage_partial = false;
    r->usage.input_tokens = input_tokens;
    r->usage.output_tokens = output_tokens;
    r->usage.estimated = false;
}

void
sl_resp_set_input_usage(struct sl_resp *r, uint64_t input_tokens)
{
    r->have_usage = true;
    r->usage_partial = true;
    r->usage.input_tokens = clamp_count(input_tokens);
}

void
sl_resp_terminated(struct sl_resp *r)
{
    if (r->state == SL_RESP_OPEN)
        r->state = SL_RESP_TERMINATED;
}

/* --- parser callbacks ------------------------------------------------------------------- */

static int
on_sse_event(void *ud, struct sl_slice event, struct sl_slice data, struct sl_slice id)
{
    (void)id;
    struct sl_resp *r = ud;
    if (r->cancelled)
        return SL_RESP_STOP;
    return r->wire->on_chunk(r, event, data);
}

static int
on_sse_field(void *ud, struct sl_slice name, struct sl_slice value)
{
    struct sl_resp *r = ud;
    if (r->cancelled)
        return SL_RESP_STOP;
    if (r->wire->on_field == NULL)
        return 0;
    return r->wire->on_field(r, name, value);
}

static int
on_nd_line(void *ud, struct sl_slice line)
{
    struct sl_resp *r = ud;
    if (r->cancelled)
        return SL_RESP_STOP;
    return r->wire->on_chunk(r, SL_SLICE(""), line);
}

/* --- the decoder ------------------------------------------------------------------------ */

void
sl_resp_init(struct sl_resp *r, const struct sl_wire *w, const struct sl_upstream_sink *sink,
             void *ud, const struct sl_config_provider *provider)
{
    memset(r, 0, sizeof(*r));
    r->wire = w;
    r->sink = sink;
    r->ud = ud;
    r->provider = provider->name;
    r->api_key = provider->api_key;
    r->retry_after_ms = -1;
    r->should_retry = -1;
    if (w->framing == SL_WIRE_SSE) {
        static const struct sl_sse_callbacks cb = {
            .on_event = on_sse_event,
            .on_ignored_field = on_sse_field,
        };
        sl_sse_init(&r->sse, &cb, r, SL_WIRE_MAX_EVENT);
    } else {
        sl_ndjson_init(&r->nd, on_nd_line, r, SL_WIRE_MAX_EVENT);
    }
}

void
sl_resp_cleanup(struct sl_resp *r)
{
    if (r->wire->framing == SL_WIRE_SSE)
        sl_sse_cleanup(&r->sse);
    else
        sl_ndjson_cleanup(&r->nd);
    sl_buf_free(&r->errbody);
    sl_buf_free(&r->scratch);
}

/*
 * A delay as digits with an optional fraction ("2", "1.5"), times scale, in milliseconds; -1
 * if v is not one. strtod alone would also take "nan", "inf", "1e300" and "0x10".
 */
static int64_t
decimal_ms(const char *v, double scale)
{
    size_t n = strspn(v, "0123456789");
    if (n == 0)
        return -1;
    if (v[n] == '.') {
        size_t f = strspn(v + n + 1, "0123456789");
        if (f == 0)
            return -1;
        n += 1 + f;
    }
    if (v[n] != '\0')
        return -1;
    return retry_ms(strtod(v, NULL) * scale);
}

/* Retry-After: delay-seconds (decimals tolerated) or an HTTP-date. */
static int64_t
parse_retry_after(const char *v)
{
    int64_t ms = decimal_ms(v, 1000);
    if (ms >= 0)
        return ms;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (rest == NULL)
        return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    int64_t now = (int64_t)sl_wall_ms();
    return at > now ? retry_ms((double)(at - now)) : 0;
}

int
sl_resp_head_too_large(struct sl_resp *r, const char *detail)
{
    char kib[32];
    snprintf(kib, sizeof(kib), "%u KiB", SL_WIRE_MAX_HEAD >> 10);
    if (detail != NULL && *detail)
        return sl_resp_fail(r, SL_ERR_UPSTREAM_ERROR, false, -1, NULL,
                            "provider response header too large (%s)", detail);
    return sl_resp_fail(r, SL_ERR_UPSTREAM_ERROR, false, -1, NULL,
                        "provider response header too large (over %s)", kib);
}

int
sl_resp_header(struct sl_resp *r, const char *line, size_t len)
{
    if (r->state == SL_RESP_FAILED)
        return 1;
    bool status_line = len >= 5 && memcmp(line, "HTTP/", 5) == 0;
    /* Each head is capped on its own (a 100 Continue's, then the answer's). */
    r->head_bytes = (status_line ? 0 : r->head_bytes) + len;
    if (r->head_bytes > SL_WIRE_MAX_HEAD)
        return sl_resp_head_too_large(r, NULL);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (status_line) {
        /* A new response head (after a 100 Continue, say): forget the previous one. */
        const char *sp = memchr(line, ' ', len);
        r->status = 0;
        r->retry_after_ms = -1;
        r->should_retry = -1;
        r->request_id[0] = '\0';
        if (sp != NULL) {
            /* Three digits make a status; a fourth makes it 1000 or more: not a success. */
            for (const char *c = sp + 1;
                 c < line + len && isdigit((unsigned char)*c) && r->status < 1000; c++)
                r->status = r->status * 10 + (*c - '0');
        }
        return 0;
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return 0;
    struct sl_slice name = sl_slice_make(line, (size_t)(colon - line));
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char value[96];
    size_t vlen = (size_t)(end - v);
    if (vlen >= sizeof(value))
        vlen = sizeof(value) - 1;
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    if (sl_slice_ieq(name, "retry-after-ms")) {
        int64_t ms = decimal_ms(value, 1);
        if (ms >= 0)
            r->retry_after_ms = ms;
    } else if (sl_slice_ieq(name, "retry-after")) {
        /* retry-after-ms is the more precise of the two when both are sent. */
        int64_t ms = parse_retry_after(value);
        if (ms >= 0 && r->retry_after_ms < 0)
            r->retry_after_ms = ms;
    } else if (sl_slice_ieq(name, "x-should-retry")) {
        r->should_retry = strcasecmp(value, "true") == 0 ? 1 : 0;
    } else if (sl_slice_ieq(name, "x-request-id") || sl_slice_ieq(name, "request-id")) {
        size_t n = vlen < sizeof(r->request_id) - 1 ? vlen : sizeof(r->request_id) - 1;
        memcpy(r->request_id, value, n);
        r->request_id[n] = '\0';
    }
    return 0;
}

static bool
status_ok(const struct sl_resp *r)
{
    return r->status == 0 || (r->status >= 200 && r->status < 300);
}

static int
parser_error(struct sl_resp *r, int rc)
{
    const char *what =
        r->wire->framing == SL_WIRE_SSE ? sl_sse_strerror(rc) : sl_ndjson_strerror(rc);
    return sl_resp_fail(r, SL_ERR_UPSTREAM_ERROR, false, -1, NULL, "unreadable stream: %s", what);
}

int
sl_resp_body(struct sl_resp *r, const char *p, size_t len)
{
    if (r->state == SL_RESP_FAILED)
        return 1;
    if (len > 0)
        r->body_started = true;
    if (!status_ok(r)) {
        size_t room = SL_WIRE_MAX_ERROR_BODY - sl_buf_len(&r->errbody);
        sl_buf_append(&r->errbody, p, len < room ? len : room);
        return 0;
    }
    int rc = r->wire->framing == SL_WIRE_SSE ? sl_sse_feed(&r->sse, p, len)
                                             : sl_ndjson_feed(&r->nd, p, len);
    if (rc < 0)
        return parser_error(r, rc);
    return rc != 0 || r->state == SL_RESP_FAILED;
}

/* A non-2xx answer: the status table, refined by what the adapter reads in the body. */
static void
map_http_error(struct sl_resp *r)
{
    json_t *root = json_loadb(sl_buf_ptr(&r->errbody), sl_buf_len(&r->errbody), 0, NULL);
    struct sl_wire_error e = {.code = SL_ERR_NONE, .retryable = -1, .retry_after_ms = -1};
    if (r->wire->http_error)
        r->wire->http_error(r, root, &e);
    enum sl_errcode code;
    bool retryable;
    sl_wire_status_error(r->status, &code, &retryable);
    if (r->should_retry >= 0)
        retryable = r->should_retry == 1;
    if (e.code != SL_ERR_NONE)
        code = e.code;
    if (e.retryable >= 0)
        retryable = e.retryable == 1;
    int64_t retry_after = e.retry_after_ms >= 0 ? e.retry_after_ms : r->retry_after_ms;

    char raw[160];
    const char *message = e.message;
    if (message == NULL) {
        /* Not a body the adapter understood: quote its start if it is text. */
        size_t n = sl_buf_len(&r->errbody), o = 0;
        const char *b = sl_buf_ptr(&r->errbody);
        for (size_t i = 0; i < n && o < sizeof(raw) - 1; i++)
            raw[o++] = (b[i] == '\n' || b[i] == '\r' || b[i] == '\t') ? ' ' : b[i];
        raw[o] = '\0';
        message = o > 0 ? raw : "no details";
    }
    if (e.native)
        sl_resp_fail(r, code, retryable, retry_after, e.native, "HTTP %d (%s): %s", r->status,
                     e.native, message);
    else
        sl_resp_fail(r, code, retryable, retry_after, NULL, "HTTP %d: %s", r->status, message);
    json_decref(root);
}

void
sl_resp_end(struct sl_resp *r, const struct sl_upstream_error *transport)
{
    if (r->state == SL_RESP_FAILED || r->state == SL_RESP_TERMINATED)
        return;
    if (!status_ok(r)) {
        /* The status says what happened, even if the error body was then cut short. */
        map_http_error(r);
        return;
    }
    if (transport != NULL) {
        set_error(r, transport->code, transport->retryable, transport->retry_after_ms,
                  transport->native_code, transport->message);
        return;
    }
    /*
     * A last event or line that lacks only its final blank line / LF is still delivered
     * (as the OpenAI SDK does): if it is the terminator, the stream is complete. What was
     * cut anywhere else stays an error below.
     */
    r->at_eof = true;
    int rc = r->wire->framing == SL_WIRE_SSE ? sl_sse_feed(&r->sse, "\n\n", 2)
                                             : sl_ndjson_feed(&r->nd, "\n", 1);
    if (r->state != SL_RESP_OPEN)
        return;
    if (rc < 0) {
        parser_error(r, rc);
        return;
    }
    sl_resp_fail(r, SL_ERR_UPSTREAM_ERROR, true, -1, NULL,
                 r->body_started ? "the stream ended without its terminator (truncated)"
                                 : "the response had no body");
}

void
sl_resp_deliver(struct sl_resp *r)
{
    sl_assert(r->state != SL_RESP_OPEN);
    if (r->have_usage && r->usage_partial) {
        /* The provider's input count is worth more than an estimate; output is counted. */
        r->usage.output_tokens = r->ndeltas;
        r->usage.estimated = true;
    }
    if (r->have_usage)
        r->sink->on_usage(r->ud, &r->usage);
    if (r->cancelled)
        return; /* cancelled from on_usage: the terminal callback is not due any more */
    if (r->state == SL_RESP_FAILED) {
        r->sink->on_error(r->ud, &r->err);
        return;
    }
    enum sl_finish f = r->have_finish ? r->finish : SL_FINISH_STOP;
    r->sink->on_done(r->ud, f, r->native_finish[0] ? r->native_finish : NULL);
}
