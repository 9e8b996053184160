/*
 * The `anthropic` provider kind: the Messages API (POST {base_url}/v1/messages).
 *
 * Request: `x-api-key` and `anthropic-version` (providers.<name>.api_version, default
 * 2023-06-01; from 2026-10-21 on, `Authorization: Bearer` and no temperature/top_p, which
 * that version rejects). The system prompt and any system/developer messages become the
 * top-level `system`; assistant tool_calls become `tool_use` blocks, `tool` messages
 * `tool_result` blocks in a user turn; OpenAI-style tools and tool_choice are converted.
 * `max_tokens` is required by the API: 4096 when neither client nor config gives one.
 *
 * Stream: `message_start` (input tokens), `content_block_start` (a tool_use block opens a
 * tool call: id and name), `content_block_delta` (`text_delta` -> text,
 * `input_json_delta` -> tool arguments, thinking and others skipped), `message_delta`
 * (stop_reason, cumulative usage), `message_stop` (the terminator), `ping` skipped, and
 * `error` events mapped like their HTTP equivalents (overloaded_error ~ 529, retryable).
 */
#ifndef SL_UPSTREAM_ANTHROPIC_H
#define SL_UPSTREAM_ANTHROPIC_H

#include "upstream/provider.h"
#include "upstream/wire.h"

#define SL_ANTHROPIC_DEFAULT_MAX_TOKENS 4096

extern const struct sl_wire sl_wire_anthropic;
extern const struct sl_provider_ops sl_provider_anthropic;

#endif
