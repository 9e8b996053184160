/*
 * OpenAI chat completions over plain HTTP/1.1 SSE (lg_sseconn_ops), one stream at a time
 * per keep-alive connection: straight to the mock upstream (the no-gateway baseline), to
 * sluice's HTTP API (`/v1/chat/completions`, the token as a bearer), or to another
 * gateway. The response is parsed with http-parser (chunked framing) and sluice's own SSE
 * parser (src/upstream/sse.c), the way sluice reads its upstreams: `id:` lines and
 * `: keep-alive` comments pass through it; tokens and their stamps are taken from each
 * chunk's "content" by scan.c, and an in-stream `{"error":...}` event counts as an error
 * named by its code.
 */
#include <stdio.h>
#include <string.h>

#include "scan.h"
#include "worker.h"

#define MAX_EVENT_BYTES (1u << 20)

static struct lg_slot *
the_slot(struct lg_conn *c)
{
    /* HTTP/1.1 runs one stream at a time per connection (concurrency 1). */
    return c->slots && c->slots[0].active ? &c->slots[0] : NULL;
}

static int
on_sse_event(void *ud, struct sl_slice event, struct sl_slice data, struct sl_slice id)
{
    struct lg_conn *c = ud;
    (void)event;
    (void)id;
    c->w->stats.messages++;
    if (sl_slice_eq(data, "[DONE]")) {
        c->u.http.done_seen = true;
        return 0;
    }
    struct sl_slice text;
    bool finish = false, error = false;
    int has = lg_scan_openai_chunk(data.ptr, data.len, &text, &finish, &error);
    if (error && !c->u.http.error_seen) {
        c->u.http.error_seen = true;
        lg_scan_error_name(data.ptr, data.len, c->u.http.error_name, sizeof(c->u.http.error_name));
    }
    if (!has || text.len == 0)
        return 0;
    struct lg_slot *s = the_slot(c);
    if (s == NULL)
        return 0;
    size_t stamps = lg_scan_stamps(text.ptr, text.len, lg_conn_stamp, c);
    uint64_t tokens = stamps ? stamps : 1;
    if (c->w->cfg->verify)
        tokens = lg_verify_feed(&s->verify, text.ptr, text.len);
    lg_slot_tokens(c, s, tokens, stamps);
    return 0;
}

static const struct sl_sse_callbacks sse_callbacks = {.on_event = on_sse_event};

static int
on_body(http_parser *hp, const char *at, size_t len)
{
    struct lg_conn *c = hp->data;
    if (hp->status_code != 200)
        return 0;
    int rc = sl_sse_feed(&c->u.http.sse, at, len);
    if (rc != 0)
        c->u.http.error_seen = true;
    return 0;
}

static int
on_message_complete(http_parser *hp)
{
    struct lg_conn *c = hp->data;
    c->u.http.complete = true;
    c->u.http.keep_alive = http_should_keep_alive(hp) != 0;
    /* Stop here: the next response starts with a fresh parser for the next request. */
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void
sse_connected(struct lg_conn *c)
{
    lg_conn_ready(c);
}

static void
sse_start_stream(struct lg_conn *c, struct lg_slot *s)
{
    (void)s;
    const struct lg_config *cfg = c->w->cfg;
    http_parser_init(&c->u.http.hp, HTTP_RESPONSE);
    c->u.http.hp.data = c;
    if (c->u.http.sse_live)
        sl_sse_cleanup(&c->u.http.sse);
    sl_sse_init(&c->u.http.sse, &sse_callbacks, c, MAX_EVENT_BYTES);
    c->u.http.sse_live = true;
    c->u.http.complete = false;
    c->u.http.done_seen = false;
    c->u.http.error_seen = false;
    c->u.http.error_name[0] = '\0';
    lg_conn_write(c, sl_buf_ptr(&cfg->request), sl_buf_len(&cfg->request));
}

static void
sse_read(struct lg_conn *c, const char *p, size_t n)
{
    struct lg_slot *s = the_slot(c);
    if (s == NULL) {
        lg_conn_fail(c, "UNEXPECTED_DATA");
        return;
    }
    size_t used = http_parser_execute(&c->u.http.hp, &parser_settings, p, n);
    enum http_errno err = HTTP_PARSER_ERRNO(&c->u.http.hp);
    if (!c->u.http.complete) {
        if (err != HPE_OK || used != n)
            lg_conn_fail(c, "HTTP_PARSE");
        return;
    }
    if (used + 1 < n) {
        /* Bytes after the end of the response, which we did not ask for. */
        lg_conn_fail(c, "UNEXPECTED_DATA");
        return;
    }
    int status = c->u.http.hp.status_code;
    char code[32];
    const char *fail = NULL;
    if (status != 200) {
        snprintf(code, sizeof(code), "HTTP_%d", status);
        fail = code;
    } else if (c->u.http.error_seen) {
        fail = c->u.http.error_name[0] ? c->u.http.error_name : "SSE_PARSE";
    } else if (!c->u.http.done_seen) {
        fail = "TRUNCATED";
    }
    /* A server may end the connection after an in-stream error without saying so (the
     * mock does, as OpenAI does): do not count that close as another error. */
    bool keep = c->u.http.keep_alive && !c->u.http.error_seen;
    lg_slot_end(c, s, fail);
    if (!keep && c->state == LG_CONN_READY) {
        /* The server ends the connection; fine only if nothing more was to be asked. */
        if (c->finished) {
            c->state = LG_CONN_CLOSING;
            lg_conn_close(c);
        } else {
            lg_conn_fail(c, "CONNECTION_CLOSE");
        }
    }
}

static void
sse_close(struct lg_conn *c)
{
    lg_conn_close(c);
}

static void
sse_cleanup(struct lg_conn *c)
{
    if (c->u.http.sse_live)
        sl_sse_cleanup(&c->u.http.sse);
    c->u.http.sse_live = false;
}

const struct lg_proto_ops lg_sseconn_ops = {
    .connected = sse_connected,
    .read = sse_read,
    .start_stream = sse_start_stream,
    .close = sse_close,
    .cleanup = sse_cleanup,
};
