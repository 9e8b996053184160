/*
 * The `gemini` provider kind: Google's Gemini API,
 * POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse with x-goog-api-key
 * (a base_url ending in /v1beta or /v1 is used as it is).
 *
 * Request: messages become `contents` (assistant -> role "model", tool calls ->
 * functionCall parts, tool results -> functionResponse parts), the system prompt
 * `systemInstruction`, max_tokens/temperature/top_p/stop `generationConfig`, OpenAI-style
 * tools `functionDeclarations`, tool_choice `toolConfig`.
 *
 * Stream: one GenerateContentResponse per SSE event: candidates[0].content.parts[].text
 * -> text (thought parts skipped), functionCall parts -> one tool delta each (whole,
 * arguments as JSON text), finishReason (the terminator: the connection closes after
 * it), cumulative usageMetadata (promptTokenCount, candidatesTokenCount), a blocked
 * prompt (promptFeedback.blockReason) -> done with content_filter, `{"error": ...}` -> an
 * error classified by its code. HTTP errors read `error.status`, the ErrorInfo reason
 * (API_KEY_INVALID -> UPSTREAM_AUTH) and RetryInfo.retryDelay (-> retry_after_ms).
 */
#ifndef SL_UPSTREAM_GEMINI_H
#define SL_UPSTREAM_GEMINI_H

#include "upstream/provider.h"
#include "upstream/wire.h"

extern const struct sl_wire sl_wire_gemini;
extern const struct sl_provider_ops sl_provider_gemini;

#endif
