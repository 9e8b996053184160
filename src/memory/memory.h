/*
 * Conversation memory: the earlier turns of a conversation, kept by sluice for clients that
 * send only their newest message (the ws-chat dialect, seed 002: DIALECTS.md).
 *
 * A conversation is keyed by (user, conversation id): two users never see each other's
 * conversations, whatever ids they choose. It holds messages (the user's and the answers), in
 * order, bounded by ws_chat.memory.max_turns messages and max_bytes of text: appending past
 * either drops the oldest messages, and then any answer left at the front, so that a history
 * always starts with a user message (providers such as Anthropic's require it). A conversation
 * unused for idle_ttl is forgotten; past max_conversations in the process, the idle-longest is
 * forgotten to make room. So the memory held is at most about max_conversations * max_bytes
 * plus a small overhead per message.
 *
 * How the session uses it for one ws-chat `message`:
 *   1. conversation id: the client's session_id, or sl_memory_new_id() when it sent null;
 *   2. sl_memory_history() -> the messages placed before the new user message of the request;
 *   3. when the stream is done: sl_memory_append_user() with the message, then
 *      sl_memory_append_answer() with the answer's full text. Storing both only at the end keeps
 *      a failed or cancelled exchange out of the history (the client retries it).
 *
 * Threads: one struct sl_memory serves the process. Every call may come from any worker
 * thread; the state is split in 16 stripes by a keyed hash of the key, each with its own mutex
 * (calls happen per message, never per token). max_conversations is shared evenly among the
 * stripes, so "idle-longest" is exact within a stripe and approximate across them.
 *
 * Storage sits behind struct sl_memory_store_ops: the in-process store (sl_memory_new). In
 * cluster mode the session also copies each exchange to Redis and fills this memory from
 * there for a conversation begun on another node (cluster/cluster.h, docs/cluster.md).
 */
#ifndef SL_MEMORY_MEMORY_H
#define SL_MEMORY_MEMORY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct sl_memory_limits {
    unsigned max_turns;         /* messages per conversation, >= 2 */
    size_t max_bytes;           /* text per conversation, > 0 */
    uint64_t idle_ttl_ms;       /* forgotten after this long unused, > 0 */
    unsigned max_conversations; /* in the process, >= 1 */
};

enum sl_memory_role { SL_MEMORY_USER, SL_MEMORY_ASSISTANT };

/* The memory layer's codes (-1400 .. -1499, base/codes.h). */
enum sl_memory_error {
    SL_MEMORY_ETOOBIG = -1401, /* "message larger than a conversation may hold": not kept */
    SL_MEMORY_EINVAL = -1402,  /* "invalid argument": empty key, text not UTF-8 */
};

const char *sl_memory_strerror(int code);

struct sl_memory_stats {
    size_t conversations;
    size_t messages;
    size_t bytes; /* text held */
};

/*
 * A storage. Every function takes the store and is called from any thread; now_ms comes
 * from a monotonic clock (sl_clock_ms). Keys are NUL-terminated, text is {ptr, len}.
 */
struct sl_memory_store_ops {
    int (*append)(void *store, const char *user, const char *conv, enum sl_memory_role role,
                  const char *text, size_t len, uint64_t now_ms);
    json_t *(*history)(void *store, const char *user, const char *conv, uint64_t now_ms);
    size_t (*sweep)(void *store, uint64_t now_ms);
    void (*stats)(void *store, struct sl_memory_stats *out);
    void (*free)(void *store);
};

struct sl_memory;

/* The in-process store with these limits (copied). Free with sl_memory_free(). */
struct sl_memory *sl_memory_new(const struct sl_memory_limits *lim);

/* A memory over another store; sl_memory_free() calls ops->free(store). */
struct sl_memory *sl_memory_new_with(const struct sl_memory_store_ops *ops, void *store);

void sl_memory_free(struct sl_memory *m);

/*
 * Appends the user's message, or the assistant's answer, to the conversation (made if new),
 * dropping the oldest messages past the limits, and marks it used. Returns 0,
 * SL_MEMORY_ETOOBIG (the text alone exceeds max_bytes: nothing changes) or SL_MEMORY_EINVAL
 * (an empty user or conversation id, or text that is not UTF-8).
 */
int sl_memory_append_user(struct sl_memory *m, const char *user, const char *conv, const char *text,
                          size_t len, uint64_t now_ms);
int sl_memory_append_answer(struct sl_memory *m, const char *user, const char *conv,
                            const char *text, size_t len, uint64_t now_ms);

/*
 * The conversation's messages as a new JSON array of {"role": "user"|"assistant", "content":
 * text}, oldest first; [] for an unknown or forgotten conversation. Marks it used. The caller
 * owns the array.
 */
json_t *sl_memory_history(struct sl_memory *m, const char *user, const char *conv, uint64_t now_ms);

/* Forgets the conversations idle for idle_ttl (call every few seconds); returns how many. */
size_t sl_memory_sweep(struct sl_memory *m, uint64_t now_ms);

void sl_memory_stats(struct sl_memory *m, struct sl_memory_stats *out);

/* A conversation id for a client that sent none: 16 random characters of [0-9a-z]. */
#define SL_MEMORY_ID_LEN 16
void sl_memory_new_id(char out[SL_MEMORY_ID_LEN + 1]);

#endif
