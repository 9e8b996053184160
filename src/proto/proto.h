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
    SL_CMD_RECONNECT, /* take over every stream of an earlier connection (seed 003) */
};

/* A parsed client message. Owns its strings and request. */
struct sl_command {
    enum sl_cmd_type type;
    char *token;              /* AUTH */
    struct sl_chat_req *chat; /* CHAT (its id, model, agent inside) */
    char *provider;           /* CHAT: run on this provider's default_model (may be NULL) */
    char *conversation;       /* CHAT: the conversation to continue (ws-chat session_id) */
    bool conversation_null;   /* CHAT: the dialect asked for a new conversation */
    char *id;                 /* CANCEL, RESUME */
    uint64_t after;           /* RESUME: last seq the client has */
    char *epoch;              /* RESUME, may be NULL */
    char *previous;           /* RECONNECT: the earlier connection's client id */
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

/* What a stream looks like to a renderer (every field valid during the call only). */
struct sl_stream_view {
    const char *id;
    size_t id_len;
    const char *model;
    const char *provider;
    const char *agent; /* the agent preset that answers, or NULL */
    const char *text;  /* output so far, when the adapter asked for it (SL_PROTO_FULL_TEXT) */
    size_t text_len;
    uint64_t tokens;          /* output deltas so far (after this event) */
    uint64_t input_tokens;    /* the request's input tokens, estimated until the provider says */
    double cost_usd;          /* cost so far from the model's prices (0 when unpriced) */
    uint64_t started_ms;      /* wall clock (ms since the epoch) when the stream was created */
    uint64_t now_ms;          /* wall clock now, for timestamps */
    const char *conversation; /* the conversation it belongs to (ws-chat), or NULL */
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
    const char *session; /* the session id (also the dialects' client id) */
    const char *user;
    const char *sub, *email, *name; /* identity claims, NULL when absent */
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
    /*
     * limits.send_high_water: bytes queued for the client above which its streams wait (and
     * then pause their providers); the `ai` dialect announces it as backpressureThreshold.
     */
    uint64_t backpressure_bytes;
};

/*
 * Where rendered messages go: the adapter writes one message into buf and calls send();
 * an event may produce several messages. send() consumes buf. Over Socket.IO a message is
 * an event: the adapter sets `event` to its name and buf holds its arguments (JSON values
 * separated by commas); over a WebSocket `event` stays NULL and buf is the whole message.
 */
struct sl_proto_sink {
    struct sl_buf *buf;
    const char *event;
    void (*send)(struct sl_proto_sink *sink);
    void *ud;
    /*
     * Wall clock (ms since the epoch) for the timestamps of messages that have no stream view
     * (error, pong, cancel_reply, backpressure, reconnected): the seeds' dialects stamp every
     * message. 0: the adapter reads the clock itself (tests set it to get fixed output).
     */
    uint64_t now_ms;
};

/* What a heartbeat answer may report. */
struct sl_pong_info {
    unsigned streams; /* running streams of the connection */
    size_t queued;    /* bytes waiting to be written to the client */
};

enum {
    SL_PROTO_FULL_TEXT = 1 << 0, /* renderers need sl_stream_view.text */
    SL_PROTO_VIEW_INFO = 1 << 1, /* renderers need the view's agent, input, cost and times */
    /*
     * One CHAT streams at a time per connection: a CHAT that arrives while one of the
     * connection's streams runs waits (in order, within the connection's limits) until that
     * stream ends (ws-chat: its client sends one message and reads until `complete`).
     */
    SL_PROTO_ONE_AT_A_TIME = 1 << 2,
    /* ready() is sent again after every successful AUTH, a renewal too (ws-chat). */
    SL_PROTO_GREET_ON_AUTH = 1 << 3,
};

/* parse()'s answer for an event that belongs to another dialect of the namespace. */
#define SL_PROTO_NOT_MINE (-2)

struct sl_proto {
    const char *name;
    unsigned flags;
    /*
     * A client message: over a WebSocket event is NULL and msg the message; over Socket.IO
     * event is the event's name and msg its arguments (JSON values separated by commas).
     * Returns 0 with *cmd filled, -1 with *err filled, or SL_PROTO_NOT_MINE for an event
     * name this dialect does not know (the namespace's next dialect is asked).
     */
    int (*parse)(const struct sl_proto_limits *lim, const char *event, const char *msg, size_t len,
                 struct sl_command *cmd, struct sl_proto_error *err);
    /* After authentication (optional). */
    void (*ready)(struct sl_proto_sink *sink, const struct sl_ready_info *info);
    /*
     * A stream event, as zero, one or several messages: a dialect without a progress event
     * sends nothing for `progress`; some end a stream with two (see proto/dialects.h).
     */
    void (*event)(struct sl_proto_sink *sink, const struct sl_stream_view *st,
                  const struct sl_event *ev);
    /* An error not tied to a started stream; id may be NULL. */
    void (*error)(struct sl_proto_sink *sink, const char *id, enum sl_errcode code,
                  const char *message, int64_t retry_after_ms);
    /* The answer to a PING command (optional: nothing is sent without it). */
    void (*pong)(struct sl_proto_sink *sink, const struct sl_pong_info *info);
    /* A chat was admitted and is about to start (optional). */
    void (*accepted)(struct sl_proto_sink *sink, const struct sl_stream_view *st);
    /*
     * The answer to a CANCEL (optional): found or not. Without it a cancel of nothing is a
     * NOT_FOUND error and a successful one is answered by the stream's `cancelled` event.
     */
    void (*cancel_reply)(struct sl_proto_sink *sink, const char *id, bool found);
    /*
     * The client fell behind (paused: its streams' providers are paused) or caught up
     * (optional).
     */
    void (*backpressure)(struct sl_proto_sink *sink, size_t queued, bool paused);
    /* A RECONNECT took the earlier connection's streams over (optional). */
    void (*reconnected)(struct sl_proto_sink *sink, const char *previous, const char *current);
};

#endif
