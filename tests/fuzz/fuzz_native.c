// fuzz-sources: src/proto/native.c src/proto/common.c src/canon/request.c src/base/jsonw.c src/base/buf.c src/base/alloc.c src/base/utf8.c src/base/codes.c
// fuzz-seeds: tests/fuzz/seeds/native/*
// fuzz-libs: jansson
/*
 * libFuzzer harness for the native protocol adapter: any client text message must parse
 * to a command or to an error with a code and a message, never crash or leak, and
 * whatever it renders for a stream (the id and text coming from the input) must be valid
 * JSON.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/native.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void
check_json(struct sl_proto_sink *sink)
{
    json_error_t e;
    json_t *j = json_loadb(sl_buf_ptr(sink->buf), sl_buf_len(sink->buf), JSON_ALLOW_NUL, &e);
    CHECK(j != NULL);
    json_decref(j);
    sl_buf_clear(sink->buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct sl_proto_limits lim = {.max_id_len = 128, .max_messages = 64, .max_tokens_cap = 1000000};
    struct sl_command cmd = {0};
    struct sl_proto_error err = {0};
    int rc = sl_proto_native.parse(&lim, NULL, (const char *)data, size, &cmd, &err);
    if (rc == 0) {
        CHECK(cmd.type != SL_CMD_CHAT || cmd.chat != NULL);
    } else {
        CHECK(err.code != SL_ERR_NONE);
        CHECK(err.message[0] != '\0');
    }
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);

    /* Render the input as a stream id and as delta text: the output must stay JSON. */
    struct sl_buf b = SL_BUF_INIT;
    struct sl_proto_sink sink = {.buf = &b, .send = check_json};
    struct sl_stream_view v = {.id = (const char *)data, .id_len = size};
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = 1};
    ev.u.delta.text = (const char *)data;
    ev.u.delta.len = size;
    sl_proto_native.event(&sink, &v, &ev);
    sl_buf_free(&b);
    return 0;
}
