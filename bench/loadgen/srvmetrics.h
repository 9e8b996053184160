/*
 * The server's own figures, from its Prometheus endpoint (sluice's GET /metrics), sampled
 * by the load generator's main thread (--metrics URL): the journal memory, the active
 * streams, the detached sessions and the resumes at the moment of a cut, and their peaks.
 *
 * The fetch is a plain blocking HTTP/1.0 GET with a deadline on each step: it runs on the
 * main thread, which only sequences phases, a few times a second at most (every tick while
 * resumes are in flight), and a loopback /metrics answers in well under a millisecond.
 */
#ifndef LG_SRVMETRICS_H
#define LG_SRVMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The gauges and counters sampled, in this order. */
enum lg_srvm {
    LG_SRVM_JOURNAL_BYTES,  /* sluice_journal_bytes */
    LG_SRVM_STREAMS_ACTIVE, /* sluice_streams_active */
    LG_SRVM_DETACHED,       /* sluice_sessions_detached */
    LG_SRVM_RESUMES,        /* sluice_resumes_total */
    LG_SRVM__COUNT
};

extern const char *const lg_srvm_names[LG_SRVM__COUNT];

struct lg_srvm_sample {
    bool ok;
    double v[LG_SRVM__COUNT]; /* -1 when the server does not export that one */
};

/*
 * The value of the unlabelled sample `name` in Prometheus text (a line "name value", or
 * "name value timestamp"; comments and labelled samples of other series are skipped).
 * Returns 0 and sets *out, or -1 if there is no such line or its value is no number.
 */
int lg_srvm_parse(const char *text, size_t len, const char *name, double *out);

/* Fills every value of s from a /metrics body. s->ok is true if any was found. */
void lg_srvm_from_text(struct lg_srvm_sample *s, const char *text, size_t len);

/* Where to fetch: host and port (IPv4/IPv6 literal or name) and path, from an http:// URL. */
struct lg_srvm_target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[300]; /* the Host header */
    char path[512];
};

/* Parses and resolves an http://HOST:PORT/PATH URL. 0 on success, -1 with a message. */
int lg_srvm_target(const char *url, struct lg_srvm_target *t, char *err, size_t errlen);

/* GETs the target within timeout_ms in all and samples it; s->ok false on any failure. */
void lg_srvm_fetch(const struct lg_srvm_target *t, unsigned timeout_ms, struct lg_srvm_sample *s);

#endif
