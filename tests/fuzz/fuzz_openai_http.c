// fuzz-sources: src/proto/openai_http.c src/proto/common.c src/canon/request.c
// fuzz-sources: src/base/jsonw.c src/base/buf.c src/base/alloc.c src/base/utf8.c
// fuzz-sources: src/base/codes.c
// fuzz-seeds: tests/fuzz/seeds/openai_http/* tests/fuzz/seeds/native/*
// fuzz-libs: jansson
/*
 * libFuzzer harness for the OpenAI-compatible HTTP API's protocol layer
 * (src/proto/openai_http.c): any request body must parse to a request or to an error with
 * a message and an HTTP status, never crash or leak; and whatever the input becomes in a
 * response (stream id, model, delta text, tool-call fragments, error message) the
 * rendered SSE must stay framed (every line `id:`, `data:` or blank; no stray line
 * breaks) with JSON in every data line, and the aggregated chat.completion must be JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/openai_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void
check_json(const char *s, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(s, n, JSON_ALLOW_NUL, &e);
    CHECK(j != NULL);
    json_decref(j);
}

/* Every SSE event: "id: ..." lines, one "data: " line of JSON or [DONE], a blank line. */
static void
check_sse(const struct sl_buf *b)
{
    const char *s = sl_buf_ptr(b);
    size_t n = sl_buf_len(b), i = 0;
    CHECK(n == 0 || (n >= 2 && s[n - 1] == '\n' && s[n - 2] == '\n'));
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        CHECK(nl != NULL);
        size_t len = (size_t)(nl - (s + i));
        CHECK(memchr(s + i, '\r', len) == NULL && memchr(s + i, '\0', len) == NULL);
        if (len == 0) {
            /* blank: end of an event */
        } else if (len >= 4 && memcmp(s + i, "id: ", 4) == 0) {
            CHECK(memchr(s + i + 4, ':', len - 4) != NULL);
        } else if (len >= 6 && memcmp(s + i, "data: ", 6) == 0) {
            if (!(len == 12 && memcmp(s + i + 6, "[DONE]", 6) == 0))
                check_json(s + i + 6, len - 6);
        } else {
            CHECK(s[i] == ':'); /* a comment */
        }
        i += len + 1;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct sl_proto_limits lim = {
        .max_id_len = 128, .max_messages = 64, .max_tokens_cap = 1000000};
    const char *in = (const char *)data;
    struct sl_oai_chat chat;
    struct sl_oai_error err;
    memset(&err, 0, sizeof(err));
    struct sl_buf b = SL_BUF_INIT;
    if (sl_oai_parse_chat(&lim, in, size, &chat, &err) == 0) {
        CHECK(chat.req != NULL && chat.req->messages != NULL);
        sl_oai_model_as_agent(chat.req);
        sl_oai_chat_clear(&chat);
    } else {
        CHECK(chat.req == NULL);
        CHECK(err.message[0] != '\0');
        int status = sl_oai_error_status(err.code);
        CHECK(status >= 400 && status <= 599);
        sl_oai_render_error(&b, &err);
        check_json(sl_buf_ptr(&b), sl_buf_len(&b));
        sl_buf_clear(&b);
    }

    /* The input as everything a response echoes. */
    size_t half = size / 2;
    char *model = strndup(in, size);
    struct sl_oai_stream st;
    sl_oai_stream_init(&st, in, half, model, 1700000000, size & 1);
    struct sl_tool_delta tool = {.index = (int)(size % 7),
                                 .id = in + half,
                                 .id_len = size - half,
                                 .name = in,
                                 .name_len = half,
                                 .arguments = in,
                                 .arguments_len = size};
    struct sl_event evs[6] = {
        {.type = SL_EV_START, .seq = 1}, {.type = SL_EV_PROGRESS, .seq = 2},
        {.type = SL_EV_DELTA, .seq = 3}, {.type = SL_EV_DELTA, .seq = 4},
        {.type = SL_EV_DONE, .seq = 5},  {.type = SL_EV_ERROR, .seq = 6},
    };
    evs[2].u.delta.text = in;
    evs[2].u.delta.len = size;
    evs[3].u.delta.tool = &tool;
    evs[4].u.done.finish = (enum sl_finish)(size % 5);
    evs[4].u.done.usage.input_tokens = size;
    evs[5].u.error.code = (enum sl_errcode)(size % SL_ERR__COUNT);
    evs[5].u.error.message = model;
    evs[5].u.error.retry_after_ms = -1;
    struct sl_oai_agg *agg = sl_oai_agg_new(size / 3 + 64);
    for (size_t i = 0; i < 6; i++) {
        sl_oai_sse_event(&st, &b, &evs[i]);
        if (i < 5)
            sl_oai_agg_event(agg, &evs[i]);
    }
    sl_oai_sse_heartbeat(&b);
    check_sse(&b);
    sl_buf_clear(&b);
    if (sl_oai_agg_event(agg, &evs[4]) == SL_OAI_AGG_COMPLETE) {
        sl_oai_agg_render(agg, &b, in, half, model, 1);
        check_json(sl_buf_ptr(&b), sl_buf_len(&b));
    } else {
        CHECK(sl_oai_agg_error(agg)->code == SL_ERR_TOO_LARGE);
    }
    sl_buf_clear(&b);

    struct sl_ready_model models[1] = {{model, model}};
    struct sl_ready_agent agents[1] = {{model, model}};
    sl_oai_render_models(&b, models, 1, agents, 1, size);
    check_json(sl_buf_ptr(&b), sl_buf_len(&b));

    sl_oai_agg_free(agg);
    sl_oai_stream_cleanup(&st);
    sl_buf_free(&b);
    free(model);
    return 0;
}
