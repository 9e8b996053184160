/*
 * The canonical chat request: what a protocol adapter makes of a client's message and
 * what provider adapters translate into their own request bodies.
 */
#ifndef SL_CANON_REQUEST_H
#define SL_CANON_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_chat_req {
    char *id;     /* the client's stream id, or NULL: the session assigns one */
    char *model;  /* NULL: the agent's model or the configured default */
    char *agent;  /* NULL or an agent preset name */
    char *system; /* NULL or a system prompt (added to the agent's, which comes first) */
    /*
     * Array of {"role": "system"|"developer"|"user"|"assistant"|"tool", "content": ...},
     * content a string, an array of parts ({"type":"text","text":...}) or null for an
     * assistant turn carrying tool_calls. Validated by the protocol adapter; owned.
     */
    json_t *messages;
    json_t *tools;       /* OpenAI-style tool definitions, passed through; may be NULL */
    json_t *tool_choice; /* may be NULL */
    int64_t max_tokens;  /* -1: not given */
    double temperature;
    bool has_temperature;
    double top_p;
    bool has_top_p;
    json_t *stop;     /* string or array of strings; may be NULL */
    json_t *metadata; /* opaque client metadata echoed nowhere; may be NULL */
};

void sl_chat_req_free(struct sl_chat_req *r);

/* The text of the last user message (for the demo model and token estimates). */
const char *sl_chat_req_last_user_text(const struct sl_chat_req *r, size_t *len);

/* Total characters of text in the request (for estimating input tokens). */
size_t sl_chat_req_text_chars(const struct sl_chat_req *r);

#endif
