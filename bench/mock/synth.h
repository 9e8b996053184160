/*
 * Synthetic provider streams: the bytes of an OpenAI, Anthropic, Gemini or Ollama
 * response generated from a struct mock_synth, in each provider's own framing and
 * field layout (the fixtures are the reference).
 *
 * A generator renders the parts of a stream on demand into a caller's buffer: the
 * head (events before the first token), one token, the tail (finish, usage,
 * terminator), or an in-stream error. Everything constant for a stream (ids, model,
 * the bytes around a token's text) is rendered once in mock_gen_init(), so a token
 * costs two appends and a number; nothing is allocated per token once the caller's
 * buffer has grown. No I/O and no clock except when `ts` asks for send-time stamps.
 */
#ifndef MOCK_SYNTH_H
#define MOCK_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "request.h"
#include "scenario.h"

struct mock_gen {
    enum mock_provider fmt;
    struct mock_synth cfg;
    bool usage;        /* usage is emitted (for OpenAI: cfg.usage and include_usage requested) */
    bool finished;     /* Gemini: the last token carried finishReason */
    uint64_t start_ns; /* monotonic, for Ollama's durations */
    struct timespec created; /* wall clock at init: OpenAI "created", Ollama "created_at" */
    char id[48];
    char *model_json;        /* the model name, JSON-escaped, without quotes */
    struct sl_buf pre, post; /* bytes before and after a token's text */
};

/* Default model name when the request names none (scenario given in a header). */
#define MOCK_GEN_DEFAULT_MODEL "mock-model"

/*
 * Prepares a generator for format fmt (not MOCK_PROV_NONE). model may be NULL.
 * include_usage: whether the request asked for OpenAI's usage chunk
 * (stream_options.include_usage); ignored by the other formats. seq makes ids unique.
 * Release with mock_gen_cleanup().
 */
void mock_gen_init(struct mock_gen *g, const struct mock_synth *cfg, enum mock_provider fmt,
                   const char *model, size_t model_len, bool include_usage, uint64_t seq);
void mock_gen_cleanup(struct mock_gen *g);

/* The response Content-Type of a stream in this format. */
const char *mock_gen_content_type(enum mock_provider fmt);

/* Name of the provider's request-id response header, or NULL if it sends none. */
const char *mock_gen_request_id_header(enum mock_provider fmt);

/* Events before the first token (OpenAI role chunk, Anthropic message_start, ...). */
void mock_gen_head(struct mock_gen *g, struct sl_buf *out);

/*
 * Token i (1-based). last: this is the final token of a stream that ends normally
 * (Gemini puts finishReason on it). now_us: CLOCK_MONOTONIC microseconds, used as the
 * token text when cfg.ts is set.
 */
void mock_gen_token(struct mock_gen *g, struct sl_buf *out, uint32_t i, bool last, uint64_t now_us);

/* Everything after the last token of a normal end: finish, usage, terminator. */
void mock_gen_tail(struct mock_gen *g, struct sl_buf *out, uint32_t tokens_sent);

/* The provider's in-stream error event (sent instead of the tail on error_after). */
void mock_gen_stream_error(enum mock_provider fmt, struct sl_buf *out);

/*
 * The body of an HTTP error in the provider's JSON shape (always application/json).
 * retry_after >= 0 adds Gemini's RetryInfo detail (the other providers use the header).
 * model (may be NULL) is named in 404 messages; request_id goes into Anthropic's body.
 */
void mock_gen_http_error(enum mock_provider fmt, int status, int retry_after, const char *model,
                         const char *request_id, struct sl_buf *out);

#endif
