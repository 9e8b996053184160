/*
 * The I/O-free half of the HTTP provider adapters: requests as data, and the response
 * decoder that turns status, headers and body bytes into the canonical sink callbacks.
 *
 * An adapter (openai.c, anthropic.c, gemini.c, ollama.c) is a `struct sl_wire`: how to
 * build its request, how to read one SSE event or NDJSON line of its stream, and how to
 * read its HTTP error bodies. Everything else is shared and lives here: status line and
 * header parsing (Retry-After, retry-after-ms, x-should-retry, request ids), the SSE or
 * NDJSON parser, the cap on error bodies, the status -> error code table, the "stream
 * ended without its terminator" rule, key redaction, and the order of the terminal
 * callbacks. httpcall.c feeds a decoder from libcurl; unit tests feed it from fixtures.
 *
 * The life of a decoder:
 *     sl_resp_init()                                   once
 *     sl_resp_header() per header line, sl_resp_body() per body piece
 *                                   (either returns 1 once the outcome is decided: stop)
 *     sl_resp_end()                                    the transfer is over (clean or not)
 *     sl_resp_deliver()                                usage, then on_done or on_error
 *     sl_resp_cleanup()
 * Non-terminal callbacks (on_delta, on_tool_delta) are called from sl_resp_body() as the
 * stream is parsed; text slices point into the parsed chunk and are passed on without copy.
 */
#ifndef SL_UPSTREAM_WIRE_H
#define SL_UPSTREAM_WIRE_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"
#include "upstream/fastpath.h"
#include "upstream/jscan.h"
#include "upstream/ndjson.h"
#include "upstream/provider.h"
#include "upstream/sse.h"

/*
 * Caps: one SSE event / NDJSON line, the error body kept for a non-2xx answer, and a
 * response head (status line and headers; providers send 1-4 KiB).
 */
#define SL_WIRE_MAX_EVENT (4u << 20)
#define SL_WIRE_MAX_ERROR_BODY (64u << 10)
#define SL_WIRE_MAX_HEAD (64u << 10)
#define SL_HTTPREQ_MAX_HEADERS 32

/* --- requests ------------------------------------------------------------------------- */

/* A request as an adapter builds it. Every string is owned (sl_httpreq_cleanup frees). */
struct sl_httpreq {
    char *url;
    char *body;
    size_t body_len;
    char *headers[SL_HTTPREQ_MAX_HEADERS]; /* "Name: value" */
    size_t nheaders;
};

/* Adds "name: value" (copied). Headers past SL_HTTPREQ_MAX_HEADERS are dropped. */
void sl_httpreq_header(struct sl_httpreq *r, const char *name, const char *value);
/* Adds "Authorization: Bearer <key>". */
void sl_httpreq_bearer(struct sl_httpreq *r, const char *key);
/* The value of a header (case-insensitive name), or NULL. For tests. */
const char *sl_httpreq_find(const struct sl_httpreq *r, const char *name);
/* Takes the JSON text of body (json_dumps, compact); body itself stays the caller's. */
void sl_httpreq_json(struct sl_httpreq *r, const json_t *body);
void sl_httpreq_cleanup(struct sl_httpreq *r);

/* --- adapters ------------------------------------------------------------------------- */

struct sl_resp;

enum sl_wire_framing { SL_WIRE_SSE, SL_WIRE_NDJSON };

/* What an adapter found in an HTTP error body; unset fields keep the status defaults. */
struct sl_wire_error {
    const char *message;    /* the provider's message (redacted and capped later) */
    const char *native;     /* its error type/code/status, or NULL */
    enum sl_errcode code;   /* SL_ERR_NONE: by status */
    int retryable;          /* -1: by status (and x-should-retry) */
    int64_t retry_after_ms; /* -1: from the headers, if any */
};

/* The return value of chunk handlers that decided the outcome (after sl_resp_fail etc.). */
#define SL_RESP_STOP 1

struct sl_wire {
    const char *kind;
    enum sl_wire_framing framing;
    bool key_optional; /* a request without any key is fine (a local Ollama) */
    /*
     * Builds URL, headers (auth included: p->provider->api_key is non-NULL unless the key
     * is optional) and body. Content-Type and the provider's extra headers are added by
     * sl_wire_build. Returns 0, or -1 with *err filled (err->message static).
     */
    int (*build)(const struct sl_call_params *p, struct sl_httpreq *req,
                 struct sl_upstream_error *err);
    /*
     * One SSE event (event: its type, possibly empty) or one NDJSON line (event empty,
     * data the line). Returns 0 to go on or SL_RESP_STOP once the outcome is decided.
     * Chunks keep coming after sl_resp_terminated() (Gemini may still report usage); an
     * adapter whose terminator is final ignores them (r->state == SL_RESP_TERMINATED).
     */
    int (*on_chunk)(struct sl_resp *r, struct sl_slice event, struct sl_slice data);
    /* Optional, SSE only: a field other than data/event/id/retry (llama.cpp's `error:`). */
    int (*on_field)(struct sl_resp *r, struct sl_slice name, struct sl_slice value);
    /* Reads a non-2xx body (root NULL when it is not JSON) into *e. */
    void (*http_error)(struct sl_resp *r, json_t *root, struct sl_wire_error *e);
};

/* Why a request was not built, in the upstream layer's range (base/codes.h). */
enum sl_wire_code {
    SL_WIRE_ENOKEY = -1241,   /* "no API key for the provider" */
    SL_WIRE_EREQUEST = -1242, /* "the request cannot be made for this provider" */
};

/*
 * Checks the key, runs w->build, then adds Content-Type, Expect: and the extra headers.
 * Returns 0, or SL_WIRE_ENOKEY / SL_WIRE_EREQUEST with *err filled (the client's code and
 * message) and nothing left in req.
 */
int sl_wire_build(const struct sl_wire *w, const struct sl_call_params *p, struct sl_httpreq *req,
                  struct sl_upstream_error *err);

/* --- the response decoder ------------------------------------------------------------- */

enum sl_resp_state {
    SL_RESP_OPEN,       /* reading */
    SL_RESP_TERMINATED, /* the provider's terminator was seen: done once the body ends */
    SL_RESP_FAILED,     /* an error is decided */
};

struct sl_resp {
    const struct sl_wire *wire;
    const struct sl_upstream_sink *sink;
    void *ud;
    const char *provider; /* config name, for messages */
    const char *api_key;  /* borrowed, only to redact it */

    int status;        /* of the last status line; 0 before one */
    size_t head_bytes; /* of the current response head, against SL_WIRE_MAX_HEAD */
    bool body_started;
    int64_t retry_after_ms; /* from Retry-After / retry-after-ms, -1 if none */
    int should_retry;       /* x-should-retry: -1 absent, 0, 1 */
    char request_id[72];

    struct sl_sse sse;
    struct sl_ndjson nd;
    struct sl_buf errbody; /* non-2xx bodies, capped */

    enum sl_resp_state state;
    bool have_finish;
    enum sl_finish finish;
    char native_finish[48];
    bool have_usage;
    bool usage_partial; /* only input_tokens is known so far */
    struct sl_usage usage;
    unsigned ndeltas; /* text and tool deltas delivered */
    unsigned ntools;  /* tool calls seen (adapters number them when the provider does not) */
    bool any_output;  /* a delta was delivered */
    bool at_eof;      /* the body ended: a chunk that does not parse was cut */
    bool cancelled;   /* set by the caller: the sink is gone, stop at once */

    struct sl_upstream_error err;
    char msg[512];
    char native[64];

    /* The per-token fast path (jscan.h): its scratch buffer, reused for every chunk. */
    struct sl_buf scratch;
    bool slow_only;       /* tests: always take the jansson path */
    unsigned fast_chunks; /* chunks the fast path handled (for tests) */

    /* Adapter scratch, zeroed by sl_resp_init. */
    union {
        struct {
            bool raw_error; /* a raw (non-SSE) JSON error object was seen in the stream */
            char raw_message[200];
        } gemini;
        uint64_t pad[32];
    } a;
};

/*
 * Prepares r for one response (in place: r must not move afterwards, its parser points to
 * it). sink/ud receive the callbacks; provider supplies the name
 * (for messages) and the key (to redact it from anything taken from the response).
 */
void sl_resp_init(struct sl_resp *r, const struct sl_wire *w, const struct sl_upstream_sink *sink,
                  void *ud, const struct sl_config_provider *provider);

/*
 * One header line as received (CRLF or LF included or not). Returns 0 to go on, or 1 once
 * the outcome is decided: the head grew past SL_WIRE_MAX_HEAD, which is an UPSTREAM_ERROR
 * that a retry would not cure ("provider response header too large").
 */
int sl_resp_header(struct sl_resp *r, const char *line, size_t len);

/*
 * A response head that the transport gave up on before the decoder saw all of it (curl
 * refuses a header line over 100 KiB by itself): decides the same error as the cap of
 * sl_resp_header. detail is the transport's own words, or NULL. Returns SL_RESP_STOP.
 */
int sl_resp_head_too_large(struct sl_resp *r, const char *detail);

/* Body bytes in any split. Returns 0 to go on, 1 once the outcome is decided (stop reading). */
int sl_resp_body(struct sl_resp *r, const char *p, size_t len);

/*
 * The transfer is over. transport is NULL when the body ended cleanly, else what went
 * wrong underneath (connection reset, timeout...). An outcome decided earlier stands; a
 * stream whose terminator was seen is done even if the connection then failed; a non-2xx
 * status is mapped from its status and (possibly partial) body; otherwise the transport
 * error stands, and a clean end without the terminator is a truncated stream (an error).
 * A clean end first reads a last event that lacks only its separator: sink callbacks
 * (deltas) can run from here, and the sink may cancel (r->cancelled) from them.
 */
void sl_resp_end(struct sl_resp *r, const struct sl_upstream_error *transport);

/*
 * Calls the terminal callbacks: on_usage (if the provider reported usage), then on_done
 * or on_error, unless r->cancelled was set meanwhile (a cancel from on_usage: then nothing
 * follows it). Must follow sl_resp_end; the decoder must not be used by the caller's sink
 * afterwards (it may be freed by the caller once this returns).
 */
void sl_resp_deliver(struct sl_resp *r);

void sl_resp_cleanup(struct sl_resp *r);

/* --- helpers for adapters -------------------------------------------------------------- */

/* Parses one chunk's JSON (NULL if it is not JSON). The caller decrefs. */
json_t *sl_wire_parse(struct sl_slice s);

/*
 * One chunk's JSON object (the caller decrefs), or NULL when the chunk is not one: then
 * the error is decided ("malformed", or "truncated" at the end) and the caller returns
 * SL_RESP_STOP.
 */
json_t *sl_resp_object(struct sl_resp *r, struct sl_slice data);

/* Text for the client (nothing if empty). */
void sl_resp_text(struct sl_resp *r, const char *s, size_t n);
/* A tool-call fragment. */
void sl_resp_tool(struct sl_resp *r, const struct sl_tool_delta *t);
/* The finish reason, normalised, with the provider's own value (copied, may be NULL). */
void sl_resp_set_finish(struct sl_resp *r, enum sl_finish f, const char *native);
/* Usage so far (cumulative): each call replaces the previous report. */
void sl_resp_set_usage(struct sl_resp *r, uint64_t input_tokens, uint64_t output_tokens);
/*
 * Only the input tokens are known (Anthropic's message_start). If nothing completes the
 * report, output_tokens is delivered as the number of deltas with `estimated` set.
 */
void sl_resp_set_input_usage(struct sl_resp *r, uint64_t input_tokens);
/* The provider's normal terminator was seen. */
void sl_resp_terminated(struct sl_resp *r);

/*
 * Decides an error and returns SL_RESP_STOP. The message is formatted as
 * "<provider>: <text>", capped, with the key redacted.
 */
int sl_resp_fail(struct sl_resp *r, enum sl_errcode code, bool retryable, int64_t retry_after_ms,
                 const char *native, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* An error event inside a 200 stream, classified like an HTTP error of that status. */
int sl_resp_fail_stream(struct sl_resp *r, int like_status, const char *native,
                        const char *message);

/* The default mapping of an HTTP status (the table of docs/providers.md). */
void sl_wire_status_error(int status, enum sl_errcode *code, bool *retryable);

/* "2.5s", "1s", "500ms" (a protobuf Duration as JSON) -> ms; -1 if malformed. */
int64_t sl_wire_duration_ms(const char *s);

/* Small JSON helpers: the string under key, or NULL. */
const char *sl_json_str(const json_t *obj, const char *key);

/*
 * The number under key as an integer (a real is truncated), or def when it is absent, not a
 * number, or a real that no int64_t holds ("index":1e300: casting it would be undefined).
 */
int64_t sl_json_int(const json_t *obj, const char *key, int64_t def);

/*
 * Numbers from providers are checked before they are used: a token count is a number from 0
 * to SL_WIRE_MAX_TOKENS (no call comes near a billion tokens; past that a count is garbage
 * that would make cost_usd absurd), a tool call index a number from 0 to INT32_MAX, a
 * Retry-After at most a day (a longer hint is clamped).
 */
#define SL_WIRE_MAX_TOKENS 1000000000
#define SL_WIRE_MAX_RETRY_AFTER_MS (24 * 3600 * 1000)

/*
 * A token count under key: 1 with *out set (a real is truncated), 0 when it is absent or
 * null (*out untouched), -1 for anything else (a string, a negative or too large number).
 */
int sl_json_count(const json_t *obj, const char *key, uint64_t *out);

/*
 * A usage object read with jansson, by the rule of the fast paths' sl_wire_scan_usage:
 * true with both counts set when obj is an object whose counts under in_key and out_key
 * are valid (an absent one is 0); false (nothing set) when obj is not an object or either
 * count is invalid: such a report is ignored as a whole, and the stream estimates.
 */
bool sl_wire_usage(const json_t *obj, const char *in_key, const char *out_key, uint64_t *in,
                   uint64_t *out);

/*
 * A tool call index under key: 1 with *out set when it is an integer from 0 to INT32_MAX
 * (or a real holding one), 0 when absent or null, -1 for anything else. An adapter fails
 * the stream on -1 (sl_wire_bad_index): a fragment given to the wrong call would corrupt it.
 */
int sl_json_index(const json_t *obj, const char *key, int *out);
int sl_wire_bad_index(struct sl_resp *r);

/* An error code that is an HTTP status (100..599), else 0. */
int sl_wire_status_of(int64_t code);

/* --- helpers for request building ----------------------------------------------------- */

/* Appends the text of a message content: a string, or the text parts of an array. */
void sl_wire_content_text(const json_t *content, struct sl_buf *out);

/*
 * The system prompt for providers that take it apart from the messages: p->system, then
 * the text of every system/developer message, joined by blank lines. A new string the
 * caller frees, or NULL when there is none.
 */
char *sl_wire_system_text(const struct sl_call_params *p);

/* The request's stop sequences as a new array (a single string becomes [s]), or NULL. */
json_t *sl_wire_stop_array(const json_t *stop);

/* What a provider calls the sampling parameters that it takes as one object. */
struct sl_wire_sampling_names {
    const char *temperature, *max_tokens, *top_p, *stop;
};

/* The call's sampling parameters under those names (stop as an array), or NULL if none is set. */
json_t *sl_wire_sampling(const struct sl_call_params *p, const struct sl_wire_sampling_names *n);

/* Splits "data:<mime>;base64,<data>". Returns false if url is not such a data URL. */
bool sl_wire_data_url(const char *url, struct sl_slice *mime, struct sl_slice *data);

/* The name of the tool call with this id among the assistant messages before `before`. */
const char *sl_wire_tool_name(const json_t *messages, size_t before, const char *id);

/*
 * The usage a fast-path scan found (fastpath.h): true with the counts when the object in
 * usage_slot was absent or null (nothing set; the caller checks sl_fp_has) or held counts
 * in in_slot / out_slot from 0 to SL_WIRE_MAX_TOKENS (an absent one is 0); false when a
 * count is out of range: the jansson path then judges the chunk.
 */
bool sl_wire_fp_usage(const struct sl_fp_out *o, int usage_slot, int in_slot, int out_slot,
                      uint64_t *in, uint64_t *out);

/* base_url + path, or base_url + alt when base_url already ends in the version segment. */
char *sl_wire_url(const char *base_url, const char *version, const char *path);

#endif
