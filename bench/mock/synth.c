#include "synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "base/util.h"

#define LIT(b, s) sl_buf_append((b), (s), sizeof(s) - 1)

static void
put_text(const struct mock_gen *g, struct sl_buf *out, uint32_t i, uint64_t now_us)
{
    if (g->cfg.ts != 1) {
        LIT(out, "tok");
        sl_jsonw_uint(out, i);
    }
    if (g->cfg.ts != 0) {
        sl_buf_append_byte(out, '@');
        sl_jsonw_uint(out, now_us);
    }
    sl_buf_append_byte(out, ' ');
}

const char *
mock_gen_content_type(enum mock_provider fmt)
{
    switch (fmt) {
    case MOCK_PROV_GEMINI:
        return "text/event-stream";
    case MOCK_PROV_OLLAMA:
        return "application/x-ndjson";
    default:
        return "text/event-stream; charset=utf-8";
    }
}

const char *
mock_gen_request_id_header(enum mock_provider fmt)
{
    switch (fmt) {
    case MOCK_PROV_OPENAI:
        return "x-request-id";
    case MOCK_PROV_ANTHROPIC:
        return "request-id";
    default:
        return NULL;
    }
}

/* --- per-format constant parts ---------------------------------------------------------- */

static void
openai_chunk_start(const struct mock_gen *g, struct sl_buf *b)
{
    sl_buf_printf(b,
                  "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%llu,"
                  "\"model\":\"%s\",\"service_tier\":\"default\",\"system_fingerprint\":"
                  "\"fp_mock0000\",\"choices\":",
                  g->id, (unsigned long long)g->created.tv_sec, g->model_json);
}

static void
openai_chunk_end(const struct mock_gen *g, struct sl_buf *b)
{
    if (g->usage)
        LIT(b, ",\"usage\":null");
    /* Real chunks carry random padding; a fixed one keeps the bytes reproducible. */
    LIT(b, ",\"obfuscation\":\"mock\"}\n\n");
}

static void
prepare(struct mock_gen *g)
{
    struct sl_buf *pre = &g->pre, *post = &g->post;
    switch (g->fmt) {
    case MOCK_PROV_OPENAI:
        openai_chunk_start(g, pre);
        LIT(pre, "[{\"index\":0,\"delta\":{\"content\":\"");
        LIT(post, "\"},\"logprobs\":null,\"finish_reason\":null}]");
        openai_chunk_end(g, post);
        break;
    case MOCK_PROV_ANTHROPIC:
        LIT(pre, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                 "\"delta\":{\"type\":\"text_delta\",\"text\":\"");
        LIT(post, "\"}}\n\n");
        break;
    case MOCK_PROV_GEMINI:
        LIT(pre, "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"");
        LIT(post, "\"}],\"role\": \"model\"},");
        break;
    case MOCK_PROV_OLLAMA: {
        char ts[64];
        struct tm tm;
        gmtime_r(&g->created.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        sl_buf_printf(pre,
                      "{\"model\":\"%s\",\"created_at\":\"%s.%06uZ\",\"message\":{\"role\":"
                      "\"assistant\",\"content\":\"",
                      g->model_json, ts, (unsigned)(g->created.tv_nsec / 1000));
        LIT(post, "\"},\"done\":false}\n");
        break;
    }
    case MOCK_PROV_NONE:
        sl_panic("mock_gen: no format");
    }
}

void
mock_gen_init(struct mock_gen *g, const struct mock_synth *cfg, enum mock_provider fmt,
              const char *model, size_t model_len, bool include_usage, uint64_t seq)
{
    memset(g, 0, sizeof(*g));
    g->fmt = fmt;
    g->cfg = *cfg;
    g->usage = cfg->usage && (fmt != MOCK_PROV_OPENAI || include_usage);
    g->start_ns = sl_clock_ns();
    clock_gettime(CLOCK_REALTIME, &g->created);
    switch (fmt) {
    case MOCK_PROV_OPENAI:
        snprintf(g->id, sizeof(g->id), "chatcmpl-mock%016llu", (unsigned long long)seq);
        break;
    case MOCK_PROV_ANTHROPIC:
        snprintf(g->id, sizeof(g->id), "msg_mock%016llu", (unsigned long long)seq);
        break;
    default:
        snprintf(g->id, sizeof(g->id), "mock%016llu", (unsigned long long)seq);
        break;
    }
    if (!model) {
        model = MOCK_GEN_DEFAULT_MODEL;
        model_len = strlen(model);
    }
    struct sl_buf m = SL_BUF_INIT;
    sl_jsonw_escape(&m, model, model_len);
    sl_buf_cstr(&m);
    g->model_json = sl_buf_steal(&m, NULL);
    prepare(g);
}

void
mock_gen_cleanup(struct mock_gen *g)
{
    free(g->model_json);
    sl_buf_free(&g->pre);
    sl_buf_free(&g->post);
    g->model_json = NULL;
}

/* --- stream parts ------------------------------------------------------------------------ */

void
mock_gen_head(struct mock_gen *g, struct sl_buf *out)
{
    switch (g->fmt) {
    case MOCK_PROV_OPENAI:
        openai_chunk_start(g, out);
        LIT(out,
            "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
            "\"logprobs\":null,\"finish_reason\":null}]");
        openai_chunk_end(g, out);
        break;
    case MOCK_PROV_ANTHROPIC:
        sl_buf_printf(out,
                      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{"
                      "\"model\":\"%s\",\"id\":\"%s\",\"type\":\"message\",\"role\":\"assistant\","
                      "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
                      "\"input_tokens\":%u,\"cache_creation_input_tokens\":0,"
                      "\"cache_read_input_tokens\":0,\"cache_creation\":{"
                      "\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},"
                      "\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n",
                      g->model_json, g->id, g->cfg.prompt_tokens);
        LIT(out, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
                 "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                 "event: ping\ndata: {\"type\": \"ping\"}\n\n");
        break;
    case MOCK_PROV_GEMINI:
    case MOCK_PROV_OLLAMA:
    case MOCK_PROV_NONE:
        break;
    }
}

static void
gemini_event_end(struct mock_gen *g, struct sl_buf *out, bool last, uint32_t count)
{
    if (last)
        LIT(out, "\"finishReason\": \"STOP\",");
    LIT(out, "\"index\": 0}]");
    if (g->usage) {
        uint32_t p = g->cfg.prompt_tokens;
        LIT(out, ",\"usageMetadata\": {\"promptTokenCount\": ");
        sl_jsonw_uint(out, p);
        LIT(out, ",\"candidatesTokenCount\": ");
        sl_jsonw_uint(out, count);
        LIT(out, ",\"totalTokenCount\": ");
        sl_jsonw_uint(out, (uint64_t)p + count);
        LIT(out, ",\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": ");
        sl_jsonw_uint(out, p);
        LIT(out, "}]}");
    }
    sl_buf_printf(out, ",\"modelVersion\": \"%s\",\"responseId\": \"%s\"}\r\n\r\n", g->model_json,
                  g->id);
}

void
mock_gen_token(struct mock_gen *g, struct sl_buf *out, uint32_t i, bool last, uint64_t now_us)
{
    sl_buf_append(out, sl_buf_ptr(&g->pre), sl_buf_len(&g->pre));
    put_text(g, out, i, now_us);
    sl_buf_append(out, sl_buf_ptr(&g->post), sl_buf_len(&g->post));
    if (g->fmt == MOCK_PROV_GEMINI) {
        gemini_event_end(g, out, last, i);
        g->finished = last;
    }
}

void
mock_gen_tail(struct mock_gen *g, struct sl_buf *out, uint32_t tokens_sent)
{
    uint32_t p = g->cfg.prompt_tokens;
    switch (g->fmt) {
    case MOCK_PROV_OPENAI:
        openai_chunk_start(g, out);
        LIT(out, "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
        openai_chunk_end(g, out);
        if (g->usage) {
            openai_chunk_start(g, out);
            sl_buf_printf(out,
                          "[],\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u,"
                          "\"total_tokens\":%llu,\"prompt_tokens_details\":{\"cached_tokens\":0,"
                          "\"audio_tokens\":0},\"completion_tokens_details\":{"
                          "\"reasoning_tokens\":0,\"audio_tokens\":0,"
                          "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},"
                          "\"obfuscation\":\"mock\"}\n\n",
                          p, tokens_sent, (unsigned long long)p + tokens_sent);
        }
        LIT(out, "data: [DONE]\n\n");
        break;
    case MOCK_PROV_ANTHROPIC:
        LIT(out,
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"
            "\"stop_reason\":\"end_turn\",\"stop_sequence\":null}");
        if (g->usage)
            sl_buf_printf(out,
                          ",\"usage\":{\"input_tokens\":%u,\"cache_creation_input_tokens\":0,"
                          "\"cache_read_input_tokens\":0,\"output_tokens\":%u}",
                          p, tokens_sent);
        LIT(out, "}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        break;
    case MOCK_PROV_GEMINI:
        /* finishReason rides on the last token; only an empty stream needs its own event. */
        if (!g->finished) {
            sl_buf_append(out, sl_buf_ptr(&g->pre), sl_buf_len(&g->pre));
            sl_buf_append(out, sl_buf_ptr(&g->post), sl_buf_len(&g->post));
            gemini_event_end(g, out, true, tokens_sent);
            g->finished = true;
        }
        break;
    case MOCK_PROV_OLLAMA: {
        /* The final object: empty content, done_reason, then the metrics (ns). */
        sl_buf_append(out, sl_buf_ptr(&g->pre), sl_buf_len(&g->pre));
        LIT(out, "\"},\"done_reason\":\"stop\",\"done\":true");
        if (g->usage) {
            uint64_t total = sl_clock_ns() - g->start_ns;
            sl_buf_printf(out,
                          ",\"total_duration\":%llu,\"load_duration\":1000000,"
                          "\"prompt_eval_count\":%u,\"prompt_eval_duration\":1000000,"
                          "\"eval_count\":%u,\"eval_duration\":%llu",
                          (unsigned long long)total + 2000000u, p, tokens_sent,
                          (unsigned long long)total);
        }
        LIT(out, "}\n");
        break;
    }
    case MOCK_PROV_NONE:
        break;
    }
}

void
mock_gen_stream_error(enum mock_provider fmt, struct sl_buf *out)
{
    switch (fmt) {
    case MOCK_PROV_OPENAI:
        LIT(out, "data: {\"error\":{\"message\":\"The server had an error while processing your "
                 "request. Sorry about that!\",\"type\":\"server_error\",\"param\":null,"
                 "\"code\":null}}\n\n");
        break;
    case MOCK_PROV_ANTHROPIC:
        LIT(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"details\":null,"
                 "\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        break;
    case MOCK_PROV_GEMINI:
        LIT(out, "data: {\"error\": {\"code\": 503,\"message\": \"The model is overloaded. Please "
                 "try again later.\",\"status\": \"UNAVAILABLE\"}}\r\n\r\n");
        break;
    case MOCK_PROV_OLLAMA:
        LIT(out, "{\"error\":\"an error was encountered while running the model: unexpected "
                 "EOF\"}\n");
        break;
    case MOCK_PROV_NONE:
        break;
    }
}

/* --- HTTP errors ------------------------------------------------------------------------- */

struct err_row {
    int status;
    const char *openai_type, *openai_code; /* code NULL -> null */
    const char *anthropic_type;
    const char *gemini_status;
    const char *message;
};

static const struct err_row err_rows[] = {
    {400, "invalid_request_error", NULL, "invalid_request_error", "INVALID_ARGUMENT",
     "Invalid request (mock)."},
    {401, "invalid_request_error", "invalid_api_key", "authentication_error", "UNAUTHENTICATED",
     "Incorrect API key provided (mock)."},
    {402, "invalid_request_error", NULL, "billing_error", "FAILED_PRECONDITION",
     "Your credit balance is too low (mock)."},
    {403, "invalid_request_error", NULL, "permission_error", "PERMISSION_DENIED",
     "Permission denied (mock)."},
    {404, "invalid_request_error", "model_not_found", "not_found_error", "NOT_FOUND",
     "The model does not exist (mock)."},
    {413, "invalid_request_error", NULL, "request_too_large", "INVALID_ARGUMENT",
     "Request exceeds the maximum allowed size (mock)."},
    {429, "requests", "rate_limit_exceeded", "rate_limit_error", "RESOURCE_EXHAUSTED",
     "Rate limit reached (mock). Please try again later."},
    {500, "server_error", NULL, "api_error", "INTERNAL",
     "The server had an error while processing your request (mock)."},
    {503, "server_error", NULL, "api_error", "UNAVAILABLE",
     "The model is overloaded. Please try again later (mock)."},
    {504, "server_error", NULL, "timeout_error", "DEADLINE_EXCEEDED",
     "The request timed out (mock)."},
    {529, "server_error", NULL, "overloaded_error", "UNAVAILABLE", "Overloaded"},
};

static struct err_row
err_row_for(int status)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(err_rows); i++) {
        if (err_rows[i].status == status)
            return err_rows[i];
    }
    if (status >= 500)
        return (struct err_row){status,      "server_error", NULL,
                                "api_error", "INTERNAL",     "Server error (mock)."};
    return (struct err_row){status,
                            "invalid_request_error",
                            NULL,
                            "invalid_request_error",
                            "FAILED_PRECONDITION",
                            "Request failed (mock)."};
}

static void
put_message(struct sl_buf *out, int status, const char *model, const char *fallback)
{
    if (status == 404 && model) {
        LIT(out, "The model '");
        sl_jsonw_escape(out, model, strlen(model));
        LIT(out, "' does not exist (mock).");
    } else {
        sl_jsonw_escape(out, fallback, strlen(fallback));
    }
}

void
mock_gen_http_error(enum mock_provider fmt, int status, int retry_after, const char *model,
                    const char *request_id, struct sl_buf *out)
{
    struct err_row row = err_row_for(status);
    switch (fmt) {
    case MOCK_PROV_ANTHROPIC:
        sl_buf_printf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"",
                      row.anthropic_type);
        put_message(out, status, model, row.message);
        LIT(out, "\"},\"request_id\":");
        if (request_id)
            sl_jsonw_cstr(out, request_id);
        else
            LIT(out, "null");
        LIT(out, "}");
        break;
    case MOCK_PROV_GEMINI:
        sl_buf_printf(out, "{\n  \"error\": {\n    \"code\": %d,\n    \"message\": \"", status);
        put_message(out, status, model, row.message);
        sl_buf_printf(out, "\",\n    \"status\": \"%s\"", row.gemini_status);
        if (retry_after >= 0)
            sl_buf_printf(out,
                          ",\n    \"details\": [\n      {\n        \"@type\": "
                          "\"type.googleapis.com/google.rpc.RetryInfo\",\n        \"retryDelay\": "
                          "\"%ds\"\n      }\n    ]",
                          retry_after);
        LIT(out, "\n  }\n}\n");
        break;
    case MOCK_PROV_OLLAMA:
        LIT(out, "{\"error\":\"");
        if (status == 404 && model) {
            LIT(out, "model '");
            sl_jsonw_escape(out, model, strlen(model));
            LIT(out, "' not found");
        } else {
            sl_jsonw_escape(out, row.message, strlen(row.message));
        }
        LIT(out, "\"}");
        break;
    case MOCK_PROV_OPENAI:
    case MOCK_PROV_NONE:
    default:
        LIT(out, "{\n    \"error\": {\n        \"message\": \"");
        put_message(out, status, model, row.message);
        sl_buf_printf(out,
                      "\",\n        \"type\": \"%s\",\n        \"param\": null,\n        "
                      "\"code\": ",
                      row.openai_type);
        if (row.openai_code)
            sl_buf_printf(out, "\"%s\"", row.openai_code);
        else
            LIT(out, "null");
        LIT(out, "\n    }\n}\n");
        break;
    }
}
