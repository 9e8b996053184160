// fuzz-sources: src/proto/dialect_kit.c src/proto/dialects.c src/proto/chat.c
// fuzz-sources: src/proto/stream_dialect.c src/proto/ws_chat.c src/proto/ai.c src/proto/llm.c
// fuzz-sources: src/proto/native.c src/proto/common.c src/canon/request.c src/base/jsonw.c
// fuzz-sources: src/base/buf.c src/base/alloc.c src/base/utf8.c src/base/codes.c
// fuzz-sources: src/base/util.c
// fuzz-seeds: tests/fuzz/seeds/dialects/*
// fuzz-libs: jansson
/*
 * libFuzzer harness for the seed dialects (src/proto/dialects.h). Input: one byte choosing a
 * dialect, an event name up to the first newline (empty: a plain WebSocket message), then the
 * event's arguments. Every dialect's parse must answer a command, an error with a code and a
 * message, or SL_PROTO_NOT_MINE without touching the error; no two Socket.IO dialects may
 * claim one event name. Then the chosen dialect renders every canonical event, its error,
 * ready, pong and the other hooks with strings and numbers taken from the input: each message
 * must be JSON arguments (one object) that jansson reads back.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/dialects.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const struct sl_proto *const dialects[] = {&sl_proto_chat, &sl_proto_stream,
                                                  &sl_proto_ws_chat, &sl_proto_ai, &sl_proto_llm};

static void
check_args(struct sl_proto_sink *sink)
{
    struct sl_buf *b = sink->buf;
    size_t n = sl_buf_len(b);
    char *s = malloc(n + 2);
    s[0] = '[';
    memcpy(s + 1, sl_buf_ptr(b), n);
    s[n + 1] = ']';
    json_error_t e;
    json_t *j = json_loadb(s, n + 2, JSON_ALLOW_NUL, &e);
    CHECK(j != NULL);
    CHECK(json_array_size(j) == 1 && json_is_object(json_array_get(j, 0)));
    /* Over a plain WebSocket the message is the object itself. */
    CHECK(sink->event != NULL || sl_buf_ptr(b)[0] == '{');
    json_decref(j);
    free(s);
    sl_buf_clear(b);
    sink->event = NULL;
}

static uint64_t
u64_at(const uint8_t *data, size_t size, size_t at)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && at + i < size; i++)
        v = v << 8 | data[at + i];
    /* Counts and clocks of a real stream: integers JavaScript (and jansson) read exactly. */
    return v & ((UINT64_C(1) << 53) - 1);
}

static void
render_all(const struct sl_proto *p, const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct sl_buf b = SL_BUF_INIT;
    struct sl_proto_sink sink = {.buf = &b, .send = check_args, .now_ms = u64_at(data, size, 0)};
    char *cstr = strndup(s, size); /* a C string from the input (up to its first NUL) */
    struct sl_stream_view v = {
        .id = s,
        .id_len = size,
        .model = cstr,
        .provider = size & 1 ? cstr : NULL,
        .agent = size & 2 ? cstr : NULL,
        .text = s,
        .text_len = size,
        .tokens = u64_at(data, size, 1),
        .input_tokens = u64_at(data, size, 2),
        .cost_usd = (double)u64_at(data, size, 3) / 7.0,
        .started_ms = u64_at(data, size, 4),
        .now_ms = u64_at(data, size, 5),
        .conversation = size & 4 ? cstr : NULL,
    };
    struct sl_tool_delta tool = {.index = (int)(size % 3),
                                 .id = s,
                                 .id_len = size,
                                 .name = size & 8 ? s : NULL,
                                 .name_len = size,
                                 .arguments = s,
                                 .arguments_len = size};
    struct sl_event evs[7];
    memset(evs, 0, sizeof(evs));
    evs[0].type = SL_EV_START;
    evs[0].u.start.model = size & 16 ? cstr : NULL;
    evs[1].type = SL_EV_PROGRESS;
    evs[1].u.progress.step = size & 32 ? cstr : "fallback";
    evs[1].u.progress.detail = size & 64 ? cstr : NULL;
    evs[2].type = SL_EV_DELTA;
    evs[2].u.delta.text = s;
    evs[2].u.delta.len = size;
    evs[3].type = SL_EV_DELTA;
    evs[3].u.delta.tool = &tool;
    evs[4].type = SL_EV_DONE;
    evs[4].u.done.finish = (enum sl_finish)(size % 5);
    evs[4].u.done.usage.input_tokens = u64_at(data, size, 6);
    evs[4].u.done.cost_usd = -(double)u64_at(data, size, 7);
    evs[4].u.done.model = cstr;
    evs[5].type = SL_EV_ERROR;
    evs[5].u.error.code = (enum sl_errcode)(size % SL_ERR__COUNT);
    evs[5].u.error.message = cstr;
    evs[5].u.error.retry_after_ms = (int64_t)u64_at(data, size, 8);
    evs[6].type = SL_EV_CANCELLED;
    evs[6].u.cancelled.reason = cstr;
    for (size_t i = 0; i < 7; i++)
        p->event(&sink, &v, &evs[i]);

    p->error(&sink, size & 1 ? cstr : NULL, (enum sl_errcode)(size % SL_ERR__COUNT), cstr,
             (int64_t)u64_at(data, size, 9));
    struct sl_ready_info r = {.session = cstr,
                              .user = cstr,
                              .sub = size & 1 ? cstr : NULL,
                              .email = cstr,
                              .name = size & 2 ? NULL : cstr,
                              .max_streams = (unsigned)size,
                              .backpressure_bytes = size};
    if (p->ready)
        p->ready(&sink, &r);
    if (p->pong)
        p->pong(&sink, &(struct sl_pong_info){.streams = (unsigned)size, .queued = size});
    if (p->accepted)
        p->accepted(&sink, &v);
    if (p->cancel_reply)
        p->cancel_reply(&sink, cstr, size & 1);
    if (p->backpressure)
        p->backpressure(&sink, size, true);
    if (p->reconnected)
        p->reconnected(&sink, cstr, cstr);
    CHECK(sl_buf_len(&b) == 0); /* everything written was sent */
    free(cstr);
    sl_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct sl_proto_limits lim = {
        .max_id_len = 128, .max_messages = 64, .max_tokens_cap = 1000000};
    if (size == 0)
        return 0;
    const struct sl_proto *chosen = dialects[data[0] % 5];
    data++;
    size--;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t name_len = nl ? (size_t)(nl - data) : 0;
    char *event = name_len ? strndup((const char *)data, name_len) : NULL;
    const char *args = (const char *)data + (nl ? name_len + 1 : 0);
    size_t args_len = size - (size_t)(args - (const char *)data);

    int claimed = 0;
    for (size_t i = 0; i < 5; i++) {
        struct sl_command cmd = {0};
        struct sl_proto_error err = {0};
        int rc = dialects[i]->parse(&lim, event, args, args_len, &cmd, &err);
        if (rc == SL_PROTO_NOT_MINE) {
            CHECK(err.code == SL_ERR_NONE && err.id == NULL && cmd.chat == NULL);
        } else if (rc == 0) {
            CHECK(cmd.type != SL_CMD_CHAT || cmd.chat != NULL);
            CHECK(cmd.type != SL_CMD_CANCEL || cmd.id != NULL);
            CHECK(cmd.type != SL_CMD_AUTH || cmd.token != NULL);
            CHECK(cmd.type != SL_CMD_RECONNECT || cmd.previous != NULL);
        } else {
            CHECK(rc == -1);
            CHECK(err.code != SL_ERR_NONE && err.message[0] != '\0');
            CHECK(cmd.chat == NULL && cmd.id == NULL);
        }
        if (event != NULL && rc != SL_PROTO_NOT_MINE && dialects[i] != &sl_proto_ws_chat)
            claimed++;
        sl_command_clear(&cmd);
        sl_proto_error_clear(&err);
    }
    CHECK(claimed <= 1);
    free(event);

    render_all(chosen, data, size);
    return 0;
}
