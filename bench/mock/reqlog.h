/*
 * The request log behind /_mock/log and /_mock/wait: one entry per provider request,
 * kept in a ring of bounded size so that a benchmark of millions of requests runs in
 * constant memory.
 *
 * An entry is created when a request has been read and is updated while its response
 * goes out (status, state, bytes and tokens written). The connection serving it holds
 * a pointer to it; when the ring evicts an entry (or the log is reset) the `owner`
 * hook clears that pointer, so a connection never writes into a freed entry.
 */
#ifndef MOCK_REQLOG_H
#define MOCK_REQLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "request.h"

/* Bodies larger than this are counted but not stored (nor matched by /_mock/wait). */
#define MOCK_LOG_MAX_BODY (64u * 1024u)
#define MOCK_LOG_DEFAULT_CAP 10000u

enum mock_state { MOCK_STREAMING = 0, MOCK_COMPLETE, MOCK_ABORTED };

const char *mock_state_name(enum mock_state s);

/* "streaming", "complete", "aborted" -> state; "ended" -> -2 (complete or aborted);
 * "" or "any" -> -3 (any state); -1 if unknown. */
int mock_state_parse(const char *s);

struct mock_entry {
    uint64_t id;
    char *method, *path, *query;
    char *headers_json; /* a JSON object, names lower case */
    char *body;         /* NULL if not stored (over MOCK_LOG_MAX_BODY) */
    size_t body_len;    /* the request's body length, stored or not */
    bool body_is_json;
    char *scenario;  /* NULL if none */
    char *error;     /* what the mock found wrong with the request, or NULL */
    const char *end; /* how the response ended: static string, NULL while streaming */
    int status;
    enum mock_state state;
    uint64_t started_ms, ended_ms; /* wall clock, ms since the epoch; ended 0 while streaming */
    uint64_t bytes_sent, tokens_sent;
    struct mock_entry **owner; /* cleared (set to NULL) when the entry is freed */
};

struct mock_log {
    struct mock_entry **ring;
    size_t cap, head, count; /* entries ring[(head + i) % cap], i < count, oldest first */
    uint64_t next_id;
};

void mock_log_init(struct mock_log *log, size_t cap);
void mock_log_cleanup(struct mock_log *log);

/* Drops every entry (their owners' pointers are cleared); ids keep counting up. */
void mock_log_clear(struct mock_log *log);

/*
 * Records a request (copying what it needs; body_is_json tells whether r->body parsed
 * as JSON) and returns the new entry, state streaming and status 0. The oldest entry
 * is dropped when the ring is full. `owner`, if not NULL, is where the caller keeps
 * the returned pointer; it is set to NULL if the entry goes away first.
 */
struct mock_entry *mock_log_add(struct mock_log *log, const struct mock_req *r, bool body_is_json,
                                const char *scenario, size_t scenario_len,
                                struct mock_entry **owner);

/* How many entries (the newest included) have exactly this scenario string. */
size_t mock_log_count_scenario(const struct mock_log *log, const char *scn, size_t len);

/* Appends one entry as a JSON object. */
void mock_entry_render(const struct mock_entry *e, struct sl_buf *out);

/* Appends the entries with id > since as a JSON array, oldest first. */
void mock_log_render(const struct mock_log *log, uint64_t since, struct sl_buf *out);

/*
 * Whether an entry's stored body contains `match` (NULL or "" matches any entry) and
 * its state satisfies `state` (a mock_state_parse() result).
 */
bool mock_entry_matches(const struct mock_entry *e, const char *match, int state);

/* The newest entry that matches, or NULL. */
struct mock_entry *mock_log_find(const struct mock_log *log, const char *match, int state);

#endif
