/*
 * The `ollama` provider kind: Ollama's native chat API, POST {base_url}/api/chat,
 * streamed as NDJSON. No key locally; with one (ollama.com) it goes as a Bearer token.
 * (Ollama's OpenAI-compatible /v1 endpoint is served by the `openai` kind instead.)
 *
 * Request: the system prompt as a leading system message, content parts flattened to
 * text (data-URL images as `images`), assistant tool_calls with parsed arguments,
 * `options` {temperature, num_predict (max tokens), top_p, stop}, tools passed through.
 *
 * Stream: each line's message.content -> text (thinking skipped), message.tool_calls ->
 * one tool delta per call, and the final `done: true` line (the terminator) ->
 * done_reason and usage (prompt_eval_count, eval_count; omitted counts are zero). A line
 * `{"error": "..."}` is an error.
 */
#ifndef SL_UPSTREAM_OLLAMA_H
#define SL_UPSTREAM_OLLAMA_H

#include "upstream/provider.h"
#include "upstream/wire.h"

extern const struct sl_wire sl_wire_ollama;
extern const struct sl_provider_ops sl_provider_ollama;

#endif
