/*
 * What the seeds' dialects (chat.c, stream_dialect.c, ws_chat.c, ai.c, llm.c) share: reading a
 * client event through a table of the dialect's field names, and writing the dialect's JSON
 * objects with ISO 8601 timestamps, tool-call fragments and errors in the seeds' shape.
 *
 * Internal to src/proto: the dialects' contract is proto/dialects.h.
 *
 * Parsing. A dialect lists its client events (struct sl_dk_event): the name, the command it
 * becomes and its fields as the seed spells them, each mapped to where it goes (struct
 * sl_dk_field). sl_dk_command() checks each field under the dialect's name (so an error says
 * "maxTokens", not "max_tokens"), then builds the command with the shared validation of
 * proto/common.h. Fields a dialect accepts without acting on them are mapped to SL_DK_IGNORE:
 * any value passes. Unknown fields are ignored.
 *
 * Writing. The SL_DK_* macros append `"key":value` to a JSON object being written, with the
 * comma when one is due (the buffer's last byte is not `{` or `[`): no allocation, no jansson;
 * they run per token. A renderer opens with `{`, writes its fields, closes with `}` and calls
 * sl_dk_emit().
 */
#ifndef SL_PROTO_DIALECT_KIT_H
#define SL_PROTO_DIALECT_KIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "proto/proto.h"

/* --- parsing ---------------------------------------------------------------------------- */

/* Where a field of a client event goes. */
enum sl_dk_dest {
    SL_DK_IGNORE,       /* accepted, not acted on (any value) */
    SL_DK_ID,           /* the stream id: the chat's id, or the stream a CANCEL names */
    SL_DK_MODEL,        /* string */
    SL_DK_AGENT,        /* string: an agent preset */
    SL_DK_SYSTEM,       /* string */
    SL_DK_MESSAGES,     /* array of {role, content} */
    SL_DK_MESSAGE,      /* string: one user message */
    SL_DK_HISTORY,      /* array of {role, content} before MESSAGE */
    SL_DK_MAX_TOKENS,   /* integer 1..limits.max_tokens_cap */
    SL_DK_TEMPERATURE,  /* number 0..2 */
    SL_DK_TOP_P,        /* number 0..1 */
    SL_DK_STOP,         /* string or array of strings */
    SL_DK_TOOLS,        /* OpenAI-style tool definitions */
    SL_DK_TOOL_CHOICE,  /* string or object */
    SL_DK_METADATA,     /* object */
    SL_DK_PROVIDER,     /* string: a provider by name (sl_command.provider) */
    SL_DK_CONVERSATION, /* string id, or null for a new one (sl_command.conversation) */
    SL_DK_TOKEN,        /* non-empty string: AUTH's token */
    SL_DK_PREVIOUS,     /* string id: RECONNECT's earlier client id */
    SL_DK__COUNT
};

#define SL_DK_REQUIRED 0x1u /* absent (or null) is an error */

struct sl_dk_field {
    const char *name; /* as the seed spells it */
    enum sl_dk_dest dest;
    unsigned flags;
    enum sl_errcode missing; /* code of a missing required field; 0: BAD_REQUEST */
};

struct sl_dk_event {
    const char *name; /* the Socket.IO event, or the "type" of a WebSocket message */
    enum sl_cmd_type cmd;
    const struct sl_dk_field *fields;
    size_t nfields;
};

/* The event named `name` in events[0..n), or NULL. */
const struct sl_dk_event *sl_dk_find(const struct sl_dk_event *events, size_t n, const char *name);

/*
 * Reads obj (a JSON object) as an instance of ev and fills *cmd. Returns 0, or -1 with *err
 * filled (err->id once the stream id was read, so that the error can name the stream; AUTH
 * events set err->auth_cmd) and *cmd left empty.
 */
int sl_dk_command(const struct sl_proto_limits *lim, const struct sl_dk_event *ev, json_t *obj,
                  struct sl_command *cmd, struct sl_proto_error *err);

/*
 * A dialect's parse() over Socket.IO: SL_PROTO_NOT_MINE for an event (or a NULL event: a
 * plain WebSocket message) not in events[0..n); else the first argument must be an object
 * (no argument reads as {}; further arguments are ignored) and is read by sl_dk_command().
 */
int sl_dk_parse_sio(const struct sl_dk_event *events, size_t n, const struct sl_proto_limits *lim,
                    const char *event, const char *msg, size_t len, struct sl_command *cmd,
                    struct sl_proto_error *err);

/* --- writing ---------------------------------------------------------------------------- */

/* A comma unless the object or array being written is still empty. */
static inline void
sl_dk_comma(struct sl_buf *b)
{
    if (sl_buf_len(b) > 0) {
        char last = b->data[b->len - 1];
        if (last != '{' && last != '[')
            sl_buf_append_byte(b, ',');
    }
}

/* `"key":` (key: a string literal without characters to escape). */
#define SL_DK_KEY(b, key) (sl_dk_comma(b), SL_JSONW_LIT((b), "\"" key "\":"))
#define SL_DK_STR(b, key, s, n) (SL_DK_KEY(b, key), sl_jsonw_str((b), (s), (n)))
#define SL_DK_CSTR(b, key, s) (SL_DK_KEY(b, key), sl_dk_cstr_or_null((b), (s)))
#define SL_DK_UINT(b, key, v) (SL_DK_KEY(b, key), sl_jsonw_uint((b), (v)))
#define SL_DK_INT(b, key, v) (SL_DK_KEY(b, key), sl_jsonw_int((b), (v)))
#define SL_DK_DOUBLE(b, key, v) (SL_DK_KEY(b, key), sl_jsonw_double((b), (v)))
#define SL_DK_BOOL(b, key, v) (SL_DK_KEY(b, key), sl_dk_bool((b), (v)))
/* A cost in USD (sl_dk_usd). */
#define SL_DK_USD(b, key, v) (SL_DK_KEY(b, key), sl_dk_usd((b), (v)))
/* A JSON literal: `null`, `[]`, `"accepted"` (with its quotes), ... */
#define SL_DK_LIT(b, key, lit) (SL_DK_KEY(b, key), SL_JSONW_LIT((b), lit))
/* An ISO 8601 UTC timestamp with milliseconds from ms since the epoch. */
#define SL_DK_TIME(b, key, ms) (SL_DK_KEY(b, key), sl_dk_time((b), (ms)))
/* Opens a nested object; close it with sl_buf_append_byte(b, '}'). */
#define SL_DK_OBJ(b, key) (SL_DK_KEY(b, key), sl_buf_append_byte((b), '{'))

/*
 * A cost in USD, rounded to a billionth of a dollar and written in plain decimals (0.00042,
 * 12.5, 0): a running cost goes out with every token (seed 001), and the shortest exact form
 * of a double (sl_jsonw_double) can take a dozen snprintf/strtod rounds where this takes none.
 * Outside 0..1e9 (never a real cost) it falls back to sl_jsonw_double.
 */
void sl_dk_usd(struct sl_buf *b, double usd);

/* A string, or null for NULL. */
void sl_dk_cstr_or_null(struct sl_buf *b, const char *s);

static inline void
sl_dk_bool(struct sl_buf *b, bool v)
{
    if (v)
        SL_JSONW_LIT(b, "true");
    else
        SL_JSONW_LIT(b, "false");
}

/* "2026-12-02T12:00:00.000Z": 24 characters. */
#define SL_DK_ISO_LEN 24

/*
 * Formats ms (since the epoch, UTC) into out[SL_DK_ISO_LEN + 1]. The date and time of the
 * last second formatted are cached per thread, so that one call per token costs a compare and
 * three digits; times after 9999-12-31T23:59:59.999Z are written as that instant.
 */
void sl_dk_iso8601(char *out, uint64_t ms);

/* The timestamp as a JSON string. */
void sl_dk_time(struct sl_buf *b, uint64_t ms);

/* The sink's clock (sl_proto_sink.now_ms), else the wall clock. */
uint64_t sl_dk_sink_now(const struct sl_proto_sink *sink);

/* The view's clock (sl_stream_view.now_ms), else the wall clock. */
uint64_t sl_dk_view_now(const struct sl_stream_view *st);

/* A tool-call fragment as {"index","id"?,"name"?,"arguments"} (native's shape). */
void sl_dk_tool(struct sl_buf *b, const struct sl_tool_delta *t);

/*
 * The seeds' error fields: `"error":message,"code":code,"retryable":bool` and
 * `"retry_after_ms":n` when retry_after_ms >= 0.
 */
void sl_dk_error_fields(struct sl_buf *b, const char *message, const char *code, bool retryable,
                        int64_t retry_after_ms);

/* Whether an error not tied to a stream invites a retry (as the native protocol says it). */
bool sl_dk_retryable(enum sl_errcode code);

/* The code an ended-by-cancel stream reports where a dialect has no cancelled event. */
#define SL_DK_CANCELLED "CANCELLED"

/* A dialect's own error codes: sluice codes mapped to names, anything else to a fallback. */
struct sl_dk_codemap {
    enum sl_errcode code;
    const char *name;
};

const char *sl_dk_map_code(const struct sl_dk_codemap *map, size_t n, enum sl_errcode code,
                           const char *fallback);

/* Sends what buf holds as `event` (NULL: a plain WebSocket message). */
static inline void
sl_dk_emit(struct sl_proto_sink *sink, const char *event)
{
    sink->event = event;
    sink->send(sink);
}

#endif
