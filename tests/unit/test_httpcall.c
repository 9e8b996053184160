/*
 * Unit tests for src/upstream/httpcall (through the adapters' provider ops), on a real loop
 * against the scripted server of uv_server.h: a whole call, cancellation through the real
 * ops->cancel from inside every sink callback of every adapter (each delta, a last delta
 * read only when the body ended, usage) and before the first byte (the server sees its
 * connection end), timeouts, HTTP errors, pause and resume, and the worker's active_calls.
 *
 * Through the builtin HTTP/1.1 client (h1.c) that serves http:// providers by default;
 * test_httpcall_curl.c includes this file to run every test through libcurl too.
 */
#include <criterion/criterion.h>

#include "config/config.h"
#include "net/loop.h"
#include "upstream/anthropic.h"
#include "upstream/gemini.h"
#include "upstream/ollama.h"
#include "upstream/openai.h"
#include "upstream/upstream.h"
#include "uv_server.h"

#define KEY "sk-unit-0123456789"

#ifndef HTTPCALL_CLIENT
#define HTTPCALL_CLIENT SL_HTTP_CLIENT_BUILTIN
#endif

struct ctx {
    struct sl_loop *loop;
    uv_loop_t *uv;
    struct tsrv srv;
    struct sl_config cfg;
    struct sl_config_provider prov;
    char base[64];
    struct sl_upstream *up;
    struct sl_chat_req req;
    void *call;
    struct sl_buf text;
    int deltas, usages, dones, errors;
    bool after_terminal;
    struct sl_usage usage;
    enum sl_finish finish;
    enum sl_errcode code;
    bool retryable;
    int64_t retry_after_ms;
    char message[512];
    const struct sl_provider_ops *ops;
    int cancel_at_delta; /* 1-based; 0: never */
    bool cancel_at_usage;
    int pause_at_delta;
    bool after_cancel; /* a callback after the cancel */
    bool wait_peer_closed;
    bool finished;
    unsigned active_after_cancel;
    uv_timer_t timer;
    size_t len_at_pause, len_while_paused;
};

static void
finish_if_done(struct ctx *c)
{
    if (c->finished)
        return;
    bool ended = c->dones + c->errors > 0 || c->call == NULL;
    if (!ended || (c->wait_peer_closed && c->srv.peer_closed == 0))
        return;
    /* Cancelled: the server's side is over too (it saw the close, or ran its script out). */
    if (c->cancel_at_delta + c->cancel_at_usage > 0 && c->srv.peer_closed + c->srv.script_done == 0)
        return;
    c->finished = true;
    tsrv_stop(&c->srv);
    sl_loop_stop(c->loop);
}

static void
on_srv_event(struct tsrv *srv)
{
    finish_if_done(srv->ud);
}

static void resume_now(uv_timer_t *t);

/* The real cancel, from inside a sink callback; nothing of the call may follow. */
static void
cancel_here(struct ctx *c)
{
    c->ops->cancel(c->call);
    c->call = NULL;
    c->active_after_cancel = c->up->active_calls;
    finish_if_done(c);
}

static void
s_delta(void *ud, const char *text, size_t len)
{
    struct ctx *c = ud;
    c->after_terminal |= c->dones + c->errors > 0 || c->call == NULL;
    c->after_cancel |= c->call == NULL;
    c->deltas++;
    sl_buf_append(&c->text, text, len);
    if (c->deltas == c->cancel_at_delta)
        cancel_here(c);
    if (c->deltas == c->pause_at_delta && c->call != NULL) {
        c->ops->pause(c->call);
        c->len_at_pause = sl_buf_len(&c->text);
        uv_timer_start(&c->timer, resume_now, 250, 0);
    }
}

static void
s_tool(void *ud, const struct sl_tool_delta *t)
{
    (void)t;
    struct ctx *c = ud;
    c->deltas++;
}

static void
s_usage(void *ud, const struct sl_usage *u)
{
    struct ctx *c = ud;
    c->after_cancel |= c->call == NULL;
    c->usages++;
    c->usage = *u;
    if (c->cancel_at_usage)
        cancel_here(c);
}

static void
s_done(void *ud, enum sl_finish f, const char *native)
{
    (void)native;
    struct ctx *c = ud;
    c->after_cancel |= c->call == NULL;
    c->dones++;
    c->finish = f;
    c->call = NULL;
    finish_if_done(c);
}

static void
s_error(void *ud, const struct sl_upstream_error *e)
{
    struct ctx *c = ud;
    c->after_cancel |= c->call == NULL;
    c->errors++;
    c->code = e->code;
    c->retryable = e->retryable;
    c->retry_after_ms = e->retry_after_ms;
    snprintf(c->message, sizeof(c->message), "%s", e->message);
    c->call = NULL;
    finish_if_done(c);
}

static const struct sl_upstream_sink sink = {
    .on_delta = s_delta,
    .on_tool_delta = s_tool,
    .on_usage = s_usage,
    .on_done = s_done,
    .on_error = s_error,
};

static void
setup(struct ctx *c, const struct tstep *script, size_t n, bool hold)
{
    memset(c, 0, sizeof(*c));
    c->loop = sl_loop_new();
    c->uv = sl_loop_uv(c->loop);
    tsrv_start(&c->srv, c->uv, script, n, hold);
    c->srv.on_event = on_srv_event;
    c->srv.ud = c;
    snprintf(c->base, sizeof(c->base), "http://127.0.0.1:%d/v1", c->srv.port);
    c->prov.name = (char *)"unit";
    c->prov.kind = SL_PROVIDER_OPENAI;
    c->prov.base_url = c->base;
    c->prov.api_key = (char *)KEY;
    c->prov.api_key_env = (char *)"UNIT_KEY";
    c->prov.connect_timeout_ms = 1000;
    c->prov.first_byte_timeout_ms = 2000;
    c->prov.idle_timeout_ms = 2000;
    c->prov.max_connections = 4;
    c->prov.tls_verify = true;
    c->prov.http_client = HTTPCALL_CLIENT;
    c->cfg.providers = &c->prov;
    c->cfg.nproviders = 1;
    c->up = sl_upstream_new(c->loop, &c->cfg);
    c->ops = &sl_provider_openai;
    c->req.messages = json_pack("[{s:s,s:s}]", "role", "user", "content", "hi");
    c->req.max_tokens = -1;
    uv_timer_init(c->uv, &c->timer);
    c->timer.data = c;
}

static void
start(struct ctx *c)
{
    struct sl_call_params p = {
        .req = &c->req, .provider = &c->prov, .upstream_model = "m", .max_tokens = -1};
    struct sl_upstream_error err = {0};
    c->call = c->ops->start(c->up, &p, &sink, c, &err);
    cr_assert_not_null(c->call, "%s", err.message ? err.message : "");
    cr_assert_eq(c->up->active_calls, 1);
    /* The client meant served it: the builtin one exists only once it had a call. */
    cr_assert_eq(c->up->h1 != NULL, HTTPCALL_CLIENT == SL_HTTP_CLIENT_BUILTIN);
    cr_assert_eq(c->up->curl != NULL, HTTPCALL_CLIENT == SL_HTTP_CLIENT_CURL);
}

static void
count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

static void
run_and_teardown(struct ctx *c)
{
    uv_run(c->uv, UV_RUN_DEFAULT);
    cr_assert(c->finished, "the loop ran out of work before the test finished");
    cr_assert_eq(c->up->active_calls, 0);
    uv_close((uv_handle_t *)&c->timer, NULL);
    sl_upstream_free(c->up); /* frees the curl glue and runs the loop to close its handles */
    uv_run(c->uv, UV_RUN_DEFAULT);
    int open_handles = 0;
    uv_walk(c->uv, count_handle, &open_handles);
    cr_assert_eq(open_handles, 0);
    sl_loop_free(c->loop);
    json_decref(c->req.messages);
}

static void
ctx_free(struct ctx *c)
{
    sl_buf_free(&c->text);
    tsrv_cleanup(&c->srv);
}

#define CHUNK(text) "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" text "\"}}]}\n\n"
#define FINISH                                                                                     \
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"              \
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"           \
    "data: [DONE]\n\n"

Test(httpcall, a_whole_call)
{
    static const struct tstep script[] = {
        {HEAD_SSE, 0}, {CHUNK("Hel"), 5}, {CHUNK("lo"), 5}, {FINISH, 5}};
    struct ctx c;
    setup(&c, script, 4, false);
    start(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.dones, 1);
    cr_assert_eq(c.errors, 0);
    cr_assert_str_eq(sl_buf_cstr(&c.text), "Hello");
    cr_assert_eq(c.usages, 1);
    cr_assert_eq(c.usage.input_tokens, 3);
    cr_assert_eq(c.usage.output_tokens, 2);
    const char *rq = sl_buf_cstr(&c.srv.last_request);
    cr_assert(strstr(rq, "POST /v1/chat/completions HTTP/1.1\r\n"), "%s", rq);
    cr_assert(strstr(rq, "\r\nAuthorization: Bearer " KEY "\r\n"), "%s", rq);
    cr_assert(strstr(rq, "\"stream_options\":{\"include_usage\":true}"), "%s", rq);
    cr_assert(strstr(rq, "Expect:") == NULL);
    ctx_free(&c);
}

Test(httpcall, cancel_inside_a_delta_reaches_the_server)
{
    static const struct tstep script[] = {
        {HEAD_SSE CHUNK("one") CHUNK("two"), 0}, {CHUNK("three"), 300}, {FINISH, 300}};
    struct ctx c;
    setup(&c, script, 3, false);
    c.cancel_at_delta = 1;
    c.wait_peer_closed = true;
    start(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.deltas, 1, "nothing after the cancel, not even the rest of the read");
    cr_assert_eq(c.dones + c.errors, 0);
    cr_assert(!c.after_terminal);
    cr_assert_eq(c.active_after_cancel, 0, "the call is released at once");
    cr_assert_eq(c.srv.peer_closed, 1);
    ctx_free(&c);
}

static void
cancel_now(uv_timer_t *t)
{
    struct ctx *c = t->data;
    sl_provider_openai.cancel(c->call);
    c->call = NULL;
    c->active_after_cancel = c->up->active_calls;
    finish_if_done(c);
}

Test(httpcall, cancel_before_the_first_byte_reaches_the_server)
{
    static const struct tstep script[] = {{HEAD_SSE, 5000}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.wait_peer_closed = true;
    start(&c);
    uv_timer_start(&c.timer, cancel_now, 100, 0);
    run_and_teardown(&c);
    cr_assert_eq(c.deltas + c.dones + c.errors, 0);
    cr_assert_eq(c.srv.requests, 1, "the request had reached the server");
    cr_assert_eq(c.srv.peer_closed, 1);
    cr_assert_eq(c.active_after_cancel, 0);
    ctx_free(&c);
}

Test(httpcall, first_byte_timeout_is_an_upstream_timeout)
{
    static const struct tstep script[] = {{HEAD_SSE, 5000}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.prov.first_byte_timeout_ms = 100;
    c.wait_peer_closed = true;
    start(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.errors, 1);
    cr_assert_eq(c.code, SL_ERR_UPSTREAM_TIMEOUT);
    cr_assert(c.retryable);
    cr_assert(strstr(c.message, "unit: no response within 100 ms"), "%s", c.message);
    ctx_free(&c);
}

Test(httpcall, truncated_stream_is_an_error)
{
    static const struct tstep script[] = {{HEAD_SSE CHUNK("a"), 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    start(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.errors, 1);
    cr_assert_eq(c.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(strstr(c.message, "truncated"), "%s", c.message);
    cr_assert_str_eq(sl_buf_cstr(&c.text), "a");
    ctx_free(&c);
}

/* The body is one byte short of its Content-Length: the status still decides. */
Test(httpcall, http_429_with_retry_after)
{
    static const struct tstep script[] = {
        {"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: "
         "2\r\nContent-Length: 60\r\nConnection: close\r\n\r\n"
         "{\"error\":{\"message\":\"slow down\",\"code\":\"rate_limit\"}}      ",
         0}};
    struct ctx c;
    setup(&c, script, 1, false);
    start(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.errors, 1);
    cr_assert_eq(c.code, SL_ERR_UPSTREAM_RATE_LIMITED);
    cr_assert_eq(c.retry_after_ms, 2000);
    cr_assert(strstr(c.message, "slow down"), "%s", c.message);
    ctx_free(&c);
}

static void
resume_now(uv_timer_t *t)
{
    struct ctx *c = t->data;
    c->len_while_paused = sl_buf_len(&c->text);
    if (c->call != NULL)
        c->ops->resume(c->call);
}

Test(httpcall, pause_and_resume)
{
    static const struct tstep script[] = {
        {HEAD_SSE CHUNK("a"), 0}, {CHUNK("b"), 30}, {CHUNK("c"), 30}, {FINISH, 30}};
    struct ctx c;
    setup(&c, script, 4, false);
    c.prov.idle_timeout_ms = 100; /* shorter than the pause */
    c.pause_at_delta = 1;
    start(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.dones, 1, "%s", c.message);
    cr_assert_eq(c.len_at_pause, 1);
    cr_assert_eq(c.len_while_paused, 1, "nothing while paused");
    cr_assert_str_eq(sl_buf_cstr(&c.text), "abc");
    ctx_free(&c);
}

Test(httpcall, missing_key_fails_at_start)
{
    static const struct tstep script[] = {{HEAD_SSE, 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.prov.api_key = NULL;
    struct sl_call_params p = {
        .req = &c.req, .provider = &c.prov, .upstream_model = "m", .max_tokens = -1};
    struct sl_upstream_error err = {0};
    cr_assert_null(sl_provider_openai.start(c.up, &p, &sink, &c, &err));
    cr_assert_eq(err.code, SL_ERR_UPSTREAM_AUTH);
    cr_assert_eq(c.up->active_calls, 0);
    c.finished = true;
    tsrv_stop(&c.srv);
    sl_loop_stop(c.loop);
    run_and_teardown(&c);
    cr_assert_eq(c.srv.requests, 0);
    ctx_free(&c);
}

/* --- cancel from inside every sink callback, every adapter ------------------------------------ */

/*
 * Each adapter's stream of three deltas "a", "b", "c", then its finish with usage (3 in,
 * 3 out) and terminator; `sep` is what ends an event. With `cut`, the body ends right
 * after the event of "c", without its separator: that delta is then read only when the
 * transfer is over, from inside httpcall's finish().
 */
struct wire_case {
    const char *name;
    const struct sl_provider_ops *ops;
    enum sl_provider_kind kind;
    const char *head;
    const char *delta_fmt; /* one %s: the text */
    const char *sep;
    const char *end;
};

static const struct wire_case wire_cases[] = {
    {"openai", &sl_provider_openai, SL_PROVIDER_OPENAI, HEAD_SSE,
     "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"}}]}", "\n\n",
     "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":3}}\n\n"
     "data: [DONE]\n\n"},
    {"anthropic", &sl_provider_anthropic, SL_PROVIDER_ANTHROPIC, HEAD_SSE,
     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
     "\"delta\":{\"type\":\"text_delta\",\"text\":\"%s\"}}",
     "\n\n",
     "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
     "\"end_turn\"},\"usage\":{\"input_tokens\":3,\"output_tokens\":3}}\n\n"
     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
    {"gemini", &sl_provider_gemini, SL_PROVIDER_GEMINI, HEAD_SSE,
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"%s\"}],\"role\":\"model\"}}]}",
     "\r\n\r\n",
     "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},"
     "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,"
     "\"candidatesTokenCount\":3}}\r\n\r\n"},
    {"ollama", &sl_provider_ollama, SL_PROVIDER_OLLAMA,
     "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n",
     "{\"message\":{\"role\":\"assistant\",\"content\":\"%s\"},\"done\":false}", "\n",
     "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":"
     "\"stop\",\"prompt_eval_count\":3,\"eval_count\":3}\n"},
};

struct wire_script {
    char ev[3][512];
    struct tstep steps[5];
    size_t n;
};

static void
wire_script(const struct wire_case *wc, bool cut, struct wire_script *ws)
{
    static const char *const texts[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char one[400];
        snprintf(one, sizeof(one), wc->delta_fmt, texts[i]);
        snprintf(ws->ev[i], sizeof(ws->ev[i]), "%s%s", one, cut && i == 2 ? "" : wc->sep);
    }
    /* A pause between events: each arrives in a read of its own. */
    ws->steps[0] = (struct tstep){wc->head, 0};
    for (int i = 0; i < 3; i++)
        ws->steps[1 + i] = (struct tstep){ws->ev[i], 20};
    ws->steps[4] = (struct tstep){wc->end, 20};
    ws->n = cut ? 4 : 5;
}

static void
wire_setup(struct ctx *c, const struct wire_case *wc, struct wire_script *ws, bool cut)
{
    wire_script(wc, cut, ws);
    setup(c, ws->steps, ws->n, false);
    c->ops = wc->ops;
    c->prov.kind = wc->kind;
}

Test(httpcall, every_adapter_streams_whole_and_cut)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(wire_cases); i++) {
        for (int cut = 0; cut < 2; cut++) {
            struct ctx c;
            struct wire_script ws;
            wire_setup(&c, &wire_cases[i], &ws, cut);
            start(&c);
            run_and_teardown(&c);
            cr_assert_str_eq(sl_buf_cstr(&c.text), "abc", "%s cut=%d", wire_cases[i].name, cut);
            if (cut) {
                /* the last delta is read at the end; then the missing terminator is an error */
                cr_assert_eq(c.errors, 1, "%s", wire_cases[i].name);
                cr_assert(strstr(c.message, "truncated"), "%s: %s", wire_cases[i].name, c.message);
            } else {
                cr_assert_eq(c.dones, 1, "%s: %s", wire_cases[i].name, c.message);
                cr_assert_eq(c.usages, 1, "%s", wire_cases[i].name);
                cr_assert_eq(c.usage.output_tokens, 3, "%s", wire_cases[i].name);
            }
            ctx_free(&c);
        }
    }
}

/*
 * The real ops->cancel from inside the sink: at each delta (1..3) of the whole stream, at
 * the last delta when it is read only at the end of the body (cut), and at the usage report
 * (delivered just before on_done). Nothing follows the cancel, the call is released at
 * once (active_calls drops to 0 and never wraps), and ASan sees no use after free.
 */
Test(httpcall, cancel_from_inside_every_callback_of_every_adapter)
{
    struct {
        int at_delta;
        bool at_usage;
        bool cut;
    } positions[] = {{1, false, false},
                     {2, false, false},
                     {3, false, false},
                     {3, false, true},
                     {0, true, false}};
    for (size_t i = 0; i < SL_ARRAY_LEN(wire_cases); i++) {
        for (size_t k = 0; k < SL_ARRAY_LEN(positions); k++) {
            const char *name = wire_cases[i].name;
            struct ctx c;
            struct wire_script ws;
            wire_setup(&c, &wire_cases[i], &ws, positions[k].cut);
            c.cancel_at_delta = positions[k].at_delta;
            c.cancel_at_usage = positions[k].at_usage;
            start(&c);
            run_and_teardown(&c);
            int want = positions[k].at_usage ? 3 : positions[k].at_delta;
            cr_assert_eq(c.deltas, want, "%s position %zu: %d deltas", name, k, c.deltas);
            cr_assert_eq(c.usages, positions[k].at_usage ? 1 : 0, "%s position %zu", name, k);
            cr_assert_eq(c.dones + c.errors, 0, "%s position %zu: a terminal after the cancel",
                         name, k);
            cr_assert(!c.after_cancel, "%s position %zu: a callback after the cancel", name, k);
            cr_assert_eq(c.active_after_cancel, 0, "%s position %zu: active_calls %u", name, k,
                         c.active_after_cancel);
            ctx_free(&c);
        }
    }
}

/* Backpressure from inside the last delta, read when the transfer is already over. */
Test(httpcall, pause_from_the_last_delta_read_at_the_end)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(wire_cases); i++) {
        struct ctx c;
        struct wire_script ws;
        wire_setup(&c, &wire_cases[i], &ws, true);
        c.pause_at_delta = 3;
        start(&c);
        run_and_teardown(&c);
        cr_assert_str_eq(sl_buf_cstr(&c.text), "abc", "%s", wire_cases[i].name);
        cr_assert_eq(c.errors, 1, "%s", wire_cases[i].name);
        uv_timer_stop(&c.timer);
        ctx_free(&c);
    }
}

static char *
big_head(size_t line_len, size_t nlines)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n");
    for (size_t i = 0; i < nlines; i++) {
        sl_buf_printf(&b, "X-Big-%zu: ", i);
        for (size_t k = 0; k < line_len; k++)
            sl_buf_append_byte(&b, 'x');
        sl_buf_append_str(&b, "\r\n");
    }
    sl_buf_append_str(&b, "Connection: close\r\n\r\n");
    sl_buf_cstr(&b);
    return sl_buf_steal(&b, NULL);
}

/*
 * A response head far over any provider's: one 1 MiB line (curl itself refuses lines over
 * 100 KiB, as "Out of memory"), or a thousand lines of 1 KB (the decoder's 64 KiB cap).
 * Either is a clear UPSTREAM_ERROR that a retry would not cure, and the connection goes.
 * A 60 KB header is still fine.
 */
Test(httpcall, a_response_head_too_large_is_not_retryable)
{
    size_t shapes[][2] = {{1 << 20, 1}, {1000, 1000}, {70000, 1}, {60000, 1}};
    for (size_t i = 0; i < SL_ARRAY_LEN(shapes); i++) {
        char *head = big_head(shapes[i][0], shapes[i][1]);
        struct tstep script[] = {{head, 0}, {CHUNK("a"), 5}, {FINISH, 5}};
        struct ctx c;
        setup(&c, script, 3, false);
        start(&c);
        run_and_teardown(&c);
        if (shapes[i][0] == 60000) {
            cr_assert_eq(c.dones, 1, "%s", c.message);
        } else {
            cr_assert_eq(c.errors, 1, "shape %zu", i);
            cr_assert_eq(c.code, SL_ERR_UPSTREAM_ERROR, "shape %zu", i);
            cr_assert(!c.retryable, "shape %zu: %s", i, c.message);
            cr_assert(strstr(c.message, "unit: provider response header too large"),
                      "shape %zu: %s", i, c.message);
            cr_assert_eq(c.deltas, 0);
        }
        ctx_free(&c);
        free(head);
    }
}
