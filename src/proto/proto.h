/*
 * Protocol adapters: a client dialect in, canonical commands out; canonical events in,
 * that dialect's messages out.
 *
 * An adapter is pure: it parses and renders, and never touches a connection, a loop
 * or a stream. The session (core/session.c) feeds it the client's messages and carries
 * out the commands; the stream's events come back through it on their way to the
 * client. The native protocol is the first adapter; the seeds' dialects and
 * Socket.IO's event layer are more tables of names over the same commands and events.
 */
#ifndef SL_PROTO_PROTO_H
#define SL_PROTO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/codes.h"
#include "canon/event.h"
#include "canon/request.h"

enum sl_cmd_type {
    SL_CMD_AUTH,
    SL_CMD_CHAT,
    SL_CMD_CANCEL,
    SL_CMD_RESUME,
    SL_CMD_PING,
};

/* A parsed client message. Owns its strings and request. */
struct sl_command {
    enum sl_cmd_type type;
    char *token;              /* AUTH */
    struct sl_chat_req *chat; /* CHAT */
    char *id;                 /* CANCEL, RESUME */
    uint64_t after;           /* RESUME: last seq the client has */
    char *epoch;              /* RESUME, may be NULL */
};

void sl_command_clear(struct sl_command *cmd);

/* Why a client message was refused. */
struct sl_proto_error {
    enum sl_errcode code;
    bool auth_cmd; /* the message was recognisably an auth message */
    char message[200];
    char *id; /* the stream id the message named, if it could be read; owned */
};

void sl_proto_error_clear(struct sl_proto_error *err);

/* Limits the parser enforces on fields (the transport has limited the message size). */
struct sl_proto_limits {
    size_t max_id_len;      /* 128 */
    size_t max_messages;    /* entries in a messages array */
    int64_t max_tokens_cap; /* upper bound accepted for max_tokens */
};

/* What a stream looks like to a renderer. */
struct sl_stream_view {
    const char *id;
    size_t id_len;
    const char *model;
    const char *provider;
    const char *text; /* output so far, when the adapter asked for it (SL_PROTO_FULL_TEXT) */
    size_t text_len;
    uint64_t tokens; /* deltas so far */
};

struct sl_ready_model {
    const char *name;
    const char *provider;
};

struct sl_ready_agent {
    const char *name;
    const char *model;
};

struct sl_ready_info {
    const char *session;
    const char *user;
    uint64_t heartbeat_ms;
    unsigned max_streams;
    uint64_t max_message_bytes;
    unsigned messages_per_minute;
    uint64_t resume_window_ms;
    const char *default_model;
    const struct sl_ready_model *models;
    size_t nmodels;
    const struct sl_ready_agent *agents;
    size_t nagents;
};

/*
 * Where rendered messages go: the adapter writes one message into buf and calls send();
 * an event may produce several messages. send() consumes buf.
 */
struct sl_proto_sink {
    struct sl_buf *buf;
    void (*send)(struct sl_proto_sink *sink);
    void *ud;
};

enum {
    SL_PROTO_FULL_TEXT = 1 << 0, /* renderers need sl_stream_view.text */
};

struct sl_proto {
    const char *name;
    unsigned flags;
    /* Returns 0 with *cmd filled, or -1 with *err filled. */
    int (*parse)(const struct sl_proto_limits *lim, const char *msg, size_t len,
                 struct sl_command *cmd, struct sl_proto_error *err);
    void (*ready)(struct sl_proto_sink *sink, const struct sl_ready_info *info);
    void (*event)(struct sl_proto_sink *sink, const struct sl_stream_view *st,
                  const struct sl_event *ev);
    /* An error not tied to a started stream; id may be NULL. */
    void (*error)(struct sl_proto_sink *sink, const char *id, enum sl_errcode code,
                  const char *message, int64_t retry_after_ms);
    void (*pong)(struct sl_proto_sink *sink, unsigned streams);
};

#endif
