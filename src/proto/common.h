/*
 * Validation shared by every protocol adapter: building a canonical chat request out
 * of the fields a dialect found, with one set of rules and error texts.
 */
#ifndef SL_PROTO_COMMON_H
#define SL_PROTO_COMMON_H

#include <jansson.h>

#include "proto/proto.h"

/* Sets err (code and printf-style message) and returns -1. */
int sl_proto_fail(struct sl_proto_error *err, enum sl_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The fields of a chat request, as a dialect found them (borrowed; any may be NULL).
 * `message` is a plain user message, the alternative to `messages`; `history` is a list
 * of earlier turns placed before `message` (seed dialects).
 */
struct sl_chat_fields {
    json_t *id;
    json_t *model;
    json_t *agent;
    json_t *system;
    json_t *messages;
    json_t *message;
    json_t *history;
    json_t *max_tokens;
    json_t *temperature;
    json_t *top_p;
    json_t *stop;
    json_t *tools;
    json_t *tool_choice;
    json_t *metadata;
};

/*
 * Validates the fields and builds *out. Returns 0, or -1 with err set (err->id is set
 * once the id was read, so the error can name the stream).
 */
int sl_proto_build_chat(const struct sl_proto_limits *lim, const struct sl_chat_fields *f,
                        struct sl_chat_req **out, struct sl_proto_error *err);

/* A stream id: a string of 1..max bytes without control characters. */
int sl_proto_check_id(const struct sl_proto_limits *lim, json_t *v, const char *field,
                      struct sl_proto_error *err);

/* Parses msg as a JSON object; on failure fills err (BAD_REQUEST) and returns NULL. */
json_t *sl_proto_parse_object(const char *msg, size_t len, struct sl_proto_error *err);

/*
 * Parses a Socket.IO event's arguments (JSON values separated by commas, possibly none) as
 * an array; on failure fills err (BAD_REQUEST) and returns NULL.
 */
json_t *sl_proto_parse_args(const char *args, size_t len, struct sl_proto_error *err);

#endif
