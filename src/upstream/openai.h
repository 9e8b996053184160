/*
 * The `openai` provider kind: Chat Completions (POST {base_url}/chat/completions), for
 * api.openai.com and every OpenAI-compatible server (DeepSeek, OpenRouter, Groq, vLLM,
 * llama.cpp's server, LM Studio, Ollama's /v1, Azure's /openai/v1).
 *
 * Request: the canonical messages as they are (they are already in this format), the
 * system prompt as a leading system message, `stream: true`, always
 * `stream_options.include_usage: true`, `max_completion_tokens` for api.openai.com and
 * `max_tokens` for everyone else (compatible servers know only the older name),
 * temperature, top_p, stop, tools and tool_choice passed through.
 *
 * Stream: `data:` chunks; choices[0].delta.content (and refusal) -> text,
 * delta.tool_calls fragments -> tool deltas as sent, finish_reason, usage from the chunk
 * that carries it; the stream is complete at `data: [DONE]` after a finish_reason. A
 * chunk with a top-level `error` (OpenAI, OpenRouter), `object: "error"` (vLLM), an
 * `event: error`, or llama.cpp's non-standard `error:` field is an error.
 */
#ifndef SL_UPSTREAM_OPENAI_H
#define SL_UPSTREAM_OPENAI_H

#include "upstream/provider.h"
#include "upstream/wire.h"

extern const struct sl_wire sl_wire_openai;
extern const struct sl_provider_ops sl_provider_openai;

#endif
