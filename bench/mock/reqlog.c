#include "reqlog.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "base/util.h"

const char *
mock_state_name(enum mock_state s)
{
    switch (s) {
    case MOCK_STREAMING:
        return "streaming";
    case MOCK_COMPLETE:
        return "complete";
    case MOCK_ABORTED:
        return "aborted";
    }
    return "?";
}

int
mock_state_parse(const char *s)
{
    if (!s || !*s || strcmp(s, "any") == 0)
        return -3;
    if (strcmp(s, "ended") == 0)
        return -2;
    if (strcmp(s, "streaming") == 0)
        return MOCK_STREAMING;
    if (strcmp(s, "complete") == 0)
        return MOCK_COMPLETE;
    if (strcmp(s, "aborted") == 0)
        return MOCK_ABORTED;
    return -1;
}

void
mock_log_init(struct mock_log *log, size_t cap)
{
    sl_assert(cap > 0);
    log->ring = sl_calloc(cap, sizeof(*log->ring));
    log->cap = cap;
    log->head = log->count = 0;
    log->next_id = 1;
}

static void
entry_free(struct mock_entry *e)
{
    if (e->owner)
        *e->owner = NULL;
    free(e->method);
    free(e->path);
    free(e->query);
    free(e->headers_json);
    free(e->body);
    free(e->scenario);
    free(e->error);
    free(e);
}

void
mock_log_clear(struct mock_log *log)
{
    for (size_t i = 0; i < log->count; i++) {
        size_t k = (log->head + i) % log->cap;
        entry_free(log->ring[k]);
        log->ring[k] = NULL;
    }
    log->head = log->count = 0;
}

void
mock_log_cleanup(struct mock_log *log)
{
    mock_log_clear(log);
    free(log->ring);
    log->ring = NULL;
    log->cap = 0;
}

static char *
slice_dup(struct sl_slice s)
{
    return sl_strndup(s.ptr ? s.ptr : "", s.len);
}

static char *
render_headers(const struct mock_req *r)
{
    struct sl_buf b = SL_BUF_INIT;
    bool first = true;
    sl_buf_append_byte(&b, '{');
    for (size_t i = 0; i < r->nheaders; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen =
                r->headers[j].name.len == r->headers[i].name.len &&
                memcmp(r->headers[j].name.ptr, r->headers[i].name.ptr, r->headers[i].name.len) == 0;
        if (seen)
            continue;
        if (!first)
            sl_buf_append_byte(&b, ',');
        first = false;
        sl_jsonw_str(&b, r->headers[i].name.ptr, r->headers[i].name.len);
        sl_buf_append(&b, ":\"", 2);
        /* Repeated headers are joined as HTTP allows: "a, b". */
        bool more = false;
        for (size_t j = i; j < r->nheaders; j++) {
            if (r->headers[j].name.len != r->headers[i].name.len ||
                memcmp(r->headers[j].name.ptr, r->headers[i].name.ptr, r->headers[i].name.len) != 0)
                continue;
            if (more)
                sl_buf_append(&b, ", ", 2);
            more = true;
            sl_jsonw_escape(&b, r->headers[j].value.ptr, r->headers[j].value.len);
        }
        sl_buf_append_byte(&b, '"');
    }
    sl_buf_append_byte(&b, '}');
    sl_buf_cstr(&b);
    return sl_buf_steal(&b, NULL);
}

struct mock_entry *
mock_log_add(struct mock_log *log, const struct mock_req *r, bool body_is_json,
             const char *scenario, size_t scenario_len, struct mock_entry **owner)
{
    if (log->count == log->cap) {
        entry_free(log->ring[log->head]);
        log->ring[log->head] = NULL;
        log->head = (log->head + 1) % log->cap;
        log->count--;
    }
    struct mock_entry *e = sl_calloc(1, sizeof(*e));
    e->id = log->next_id++;
    e->method = slice_dup(r->method);
    e->path = slice_dup(r->path);
    e->query = slice_dup(r->query);
    e->headers_json = render_headers(r);
    e->body_len = r->body.len;
    if (r->body.len <= MOCK_LOG_MAX_BODY) {
        e->body = slice_dup(r->body);
        e->body_is_json = body_is_json;
    }
    if (scenario)
        e->scenario = sl_strndup(scenario, scenario_len);
    e->state = MOCK_STREAMING;
    e->started_ms = sl_wall_ms();
    e->owner = owner;
    if (owner)
        *owner = e;
    log->ring[(log->head + log->count) % log->cap] = e;
    log->count++;
    return e;
}

static void
put_u64(struct sl_buf *b, const char *key, uint64_t v)
{
    sl_buf_printf(b, ",\"%s\":%llu", key, (unsigned long long)v);
}

void
mock_entry_render(const struct mock_entry *e, struct sl_buf *out)
{
    sl_buf_printf(out, "{\"id\":%llu,\"method\":", (unsigned long long)e->id);
    sl_jsonw_cstr(out, e->method);
    SL_JSONW_LIT(out, ",\"path\":");
    sl_jsonw_cstr(out, e->path);
    SL_JSONW_LIT(out, ",\"query\":");
    sl_jsonw_cstr(out, e->query);
    SL_JSONW_LIT(out, ",\"headers\":");
    sl_buf_append_str(out, e->headers_json);
    SL_JSONW_LIT(out, ",\"body\":");
    if (!e->body)
        SL_JSONW_LIT(out, "null");
    else if (e->body_is_json)
        sl_buf_append(out, e->body, e->body_len);
    else
        sl_jsonw_str(out, e->body, e->body_len);
    put_u64(out, "body_bytes", e->body_len);
    SL_JSONW_LIT(out, ",\"scenario\":");
    if (e->scenario)
        sl_jsonw_cstr(out, e->scenario);
    else
        SL_JSONW_LIT(out, "null");
    sl_buf_printf(out, ",\"status\":%d,\"state\":\"%s\",\"end\":", e->status,
                  mock_state_name(e->state));
    if (e->end)
        sl_jsonw_cstr(out, e->end);
    else
        SL_JSONW_LIT(out, "null");
    SL_JSONW_LIT(out, ",\"error\":");
    if (e->error)
        sl_jsonw_cstr(out, e->error);
    else
        SL_JSONW_LIT(out, "null");
    put_u64(out, "started_ms", e->started_ms);
    SL_JSONW_LIT(out, ",\"ended_ms\":");
    if (e->ended_ms)
        sl_buf_printf(out, "%llu", (unsigned long long)e->ended_ms);
    else
        SL_JSONW_LIT(out, "null");
    put_u64(out, "bytes_sent", e->bytes_sent);
    put_u64(out, "tokens_sent", e->tokens_sent);
    sl_buf_append_byte(out, '}');
}

void
mock_log_render(const struct mock_log *log, uint64_t since, struct sl_buf *out)
{
    bool first = true;
    sl_buf_append_byte(out, '[');
    for (size_t i = 0; i < log->count; i++) {
        const struct mock_entry *e = log->ring[(log->head + i) % log->cap];
        if (e->id <= since)
            continue;
        if (!first)
            sl_buf_append_byte(out, ',');
        first = false;
        mock_entry_render(e, out);
    }
    sl_buf_append(out, "]\n", 2);
}

bool
mock_entry_matches(const struct mock_entry *e, const char *match, int state)
{
    if (state == -2) {
        if (e->state == MOCK_STREAMING)
            return false;
    } else if (state >= 0 && (int)e->state != state) {
        return false;
    }
    if (!match || !*match)
        return true;
    return e->body && memmem(e->body, e->body_len, match, strlen(match)) != NULL;
}

struct mock_entry *
mock_log_find(const struct mock_log *log, const char *match, int state)
{
    for (size_t i = log->count; i-- > 0;) {
        struct mock_entry *e = log->ring[(log->head + i) % log->cap];
        if (mock_entry_matches(e, match, state))
            return e;
    }
    return NULL;
}

size_t
mock_log_count_scenario(const struct mock_log *log, const char *scn, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < log->count; i++) {
        const char *e = log->ring[(log->head + i) % log->cap]->scenario;
        if (e && strlen(e) == len && memcmp(e, scn, len) == 0)
            n++;
    }
    return n;
}
