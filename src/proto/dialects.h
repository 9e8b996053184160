/*
 * The seeds' client dialects (../shared/DIALECTS.md, docs/protocol.md): five more protocol
 * adapters (proto.h) over the same commands and events as the native protocol.
 *
 *   dialect    seed  transport                     file
 *   chat       000   Socket.IO, namespace /        chat.c
 *   stream     001   Socket.IO, namespace /stream  stream_dialect.c
 *   ws-chat    002   WebSocket /ws/chat            ws_chat.c
 *   ai         003   Socket.IO, namespace /ai      ai.c
 *   llm        004   Socket.IO, namespace /        llm.c
 *
 * Each is pure like every adapter: parse() and the renderers never keep state between calls
 * (except a per-thread timestamp cache) and never see a connection. The Socket.IO dialects
 * answer SL_PROTO_NOT_MINE for any event name not theirs, so that a namespace can offer an
 * event to its dialects in turn; no two dialects share an event name (chat and llm share /).
 *
 * What the session must provide (the wiring in core/), per dialect:
 *
 * Every dialect
 *   - sl_stream_view: id, model, provider, now_ms (timestamps), tokens; done/error/cancelled
 *     take usage, cost and latency from the event itself.
 *   - sl_proto_sink.now_ms for replies without a view (0: the adapter reads the clock).
 *   - error(): id is the stream the refused message named (err->id of a failed parse, the
 *     chat's id for a refused chat, the CANCEL's id for NOT_FOUND), NULL when none.
 *   - event() may send nothing (progress, in every dialect but ws-chat; a tool-call fragment
 *     in ws-chat, whose requests carry no tools), or two messages (done in chat and ai),
 *     back to back.
 *   - ready(), pong() and the other hooks are optional: chat, stream and llm have no ready();
 *     check for NULL before calling any of them.
 *
 * chat (seed 000)
 *   commands: CHAT (`chat`: requestId -> chat->id, else the session assigns one; the native
 *   request fields), CANCEL (`abort` {requestId}). No ready, pong or cancel_reply: a cancel of
 *   an unknown stream is answered by error(id, NOT_FOUND).
 *   done renders `chat:chunk` {content:"", finishReason} then `chat:complete`.
 *
 * stream (seed 001)
 *   commands: CHAT (`stream_request`: agentRole -> chat->agent; an unknown role must be
 *   refused by the session, UNKNOWN_MODEL). Flags: SL_PROTO_FULL_TEXT (`fullText`).
 *   view: input_tokens (estimated until the provider reports usage) and cost_usd running, per
 *   delta (`tokensUsed` = input_tokens + tokens, `estimatedCost` = cost_usd); agent.
 *   error(NULL, ...) makes a fresh sessionId (the seed's client expects one).
 *
 * ws-chat (seed 002), a plain WebSocket (sink.event stays NULL)
 *   commands: AUTH (`auth`), CHAT (`message`: the one new user message; conversation is the
 *   client's session_id, or conversation_null: the session makes one up, sl_memory_new_id()).
 *   The session prepends the conversation's history (src/memory) to chat->messages, sets
 *   view.conversation on every event of the stream, and stores the user's message and the
 *   answer (view.text at done) in the conversation.
 *   Flags: SL_PROTO_FULL_TEXT (`partial_response`, `response`), SL_PROTO_ONE_AT_A_TIME.
 *   ready() is `auth_success` with ready_info.sub/email/name: send it after every successful
 *   AUTH, also one that renews an authenticated session (the seed's Python client waits for it
 *   after its auth message, even when it connected with ?token=). error(AUTH_FAILED) is
 *   `auth_error`; then close 4001 as for the native protocol.
 *
 * ai (seed 003)
 *   commands: CHAT (`ai:stream`: streamId -> chat->id), CANCEL (`ai:cancel`), PING
 *   (`ai:heartbeat`), RECONNECT (`ai:reconnect` {previousClientId}).
 *   ready() is `ai:connected`: call it when the namespace is joined (auth none or a CONNECT
 *   token) with ready_info.session (the clientId that a later ai:reconnect names),
 *   max_streams and backpressure_bytes.
 *   pong(): `ai:heartbeat:ack` {activeStreams: streams, queueSize: queued}.
 *   backpressure(queued, true) when the connection's streams are paused for it: sent then
 *   only (nothing when it catches up).
 *   reconnected(previous, current) after RECONNECT moved the streams, before replaying them;
 *   a RECONNECT with nothing to take over: error(NULL, NOT_FOUND) (`ai:error`).
 *   done renders `ai:stream:complete` then `ai:done`. view: agent.
 *
 * llm (seed 004)
 *   commands: CHAT (`llm:chat:stream`: sessionId -> chat->id, required; provider ->
 *   cmd.provider: run on that provider's default_model unless `model` is given; an unknown
 *   provider is refused by the session, UNKNOWN_MODEL), CANCEL (`llm:stream:cancel`).
 *   Flags: SL_PROTO_FULL_TEXT (`fullResponse`).
 *   Order on the wire, which the session must keep:
 *     accepted() (`llm:chat:stream:acknowledged`) once the chat is admitted and before the
 *     stream's first event; then start, tokens, done (or error, or cancelled).
 *     On a CANCEL: cancel_reply(id, found) (`llm:stream:cancel:acknowledged`, status
 *     "cancelled" or "not_found") first, then the stream's `cancelled` event, and no delta of
 *     that stream after the cancel_reply (drop what the journal holds past the cancel).
 */
#ifndef SL_PROTO_DIALECTS_H
#define SL_PROTO_DIALECTS_H

#include "proto/proto.h"

extern const struct sl_proto sl_proto_chat;
extern const struct sl_proto sl_proto_stream;
extern const struct sl_proto sl_proto_ws_chat;
extern const struct sl_proto sl_proto_ai;
extern const struct sl_proto sl_proto_llm;

/*
 * The adapter of a dialect as configuration names it (socketio.namespaces.*.dialects):
 * "chat", "stream", "ai", "llm", and "native" for the native protocol as Socket.IO events
 * (sl_proto_native_sio); also "ws-chat". NULL for any other name.
 */
const struct sl_proto *sl_proto_by_dialect(const char *name);

#endif
