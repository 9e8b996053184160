/*
 * What one worker thread of the load generator measures, and the report made of them.
 *
 * Each worker owns a struct lg_stats and is the only one to touch it while it runs; after
 * the workers have stopped the main thread merges them (lg_stats_merge) and renders the
 * result as a human table or as JSON. Errors are counted by a short code name
 * ("UPSTREAM_ERROR", "CLOSE_1011", "CONNECT_ECONNREFUSED", "HTTP_503", ...).
 */
#ifndef LG_STATS_H
#define LG_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "hist.h"
#include "srvmetrics.h"

#define LG_ERR_NAMES 32 /* distinct codes kept; further ones are counted as "OTHER" */
#define LG_ERR_NAME_MAX 40

struct lg_errors {
    unsigned n;
    uint64_t total;
    struct {
        char name[LG_ERR_NAME_MAX];
        uint64_t count;
    } e[LG_ERR_NAMES];
};

/* Counts one error of the given code (truncated to LG_ERR_NAME_MAX - 1 bytes). */
void lg_errors_add(struct lg_errors *e, const char *name, size_t len);
void lg_errors_add_str(struct lg_errors *e, const char *name);
void lg_errors_add_n(struct lg_errors *e, const char *name, uint64_t count);

struct lg_stats {
    struct lg_hist latency; /* µs, per token: receive time minus the stamp in its text */
    struct lg_hist ttft;    /* µs, per stream: request sent to first token */
    struct lg_hist connect; /* µs, per connection: connect() to established */
    struct lg_hist auth;    /* µs, per connection: established to `ready` (native only) */
    uint64_t conns_ok, conns_failed;
    uint64_t streams_ok, streams_failed;
    uint64_t tokens;   /* tokens received (stamps; one per delta when there are none) */
    uint64_t stamped;  /* tokens that carried a stamp (latency samples) */
    uint64_t messages; /* WebSocket messages or SSE events received */
    uint64_t bytes;    /* payload bytes received */
    struct lg_errors errors;
    /* Cut and resume (--cut-at, --cut-after). */
    uint64_t cut_conns, cut_streams; /* connections reset, their streams still running */
    uint64_t reconnected, reconnect_failed;
    uint64_t resumes_sent, resumes_answered; /* answered: any event of the stream came */
    uint64_t resumes_refused;                /* an error came instead (NOT_FOUND) */
    struct lg_hist reconnect;    /* µs, per cut connection: the reset to `ready` again */
    struct lg_hist reconnect_hs; /* µs, the same from connect() (without the ramp's queue) */
    struct lg_hist resume;       /* µs, per resumed stream: `resume` sent to its first event */
    struct lg_hist replay;       /* µs, `resume` sent to the first token stamped before it */
    struct lg_hist live;         /* µs, `resume` sent to the first token stamped after it */
    struct lg_hist live_lag;     /* µs, that first live token's delivery latency */
    /* Text check (--verify-text), over the streams that ended with `done`. */
    uint64_t verified, exact;
    uint64_t tokens_lost, tokens_dup, garbled, extra;
    uint64_t seq_regressed; /* events whose seq was not above the last one seen */
};

void lg_stats_init(struct lg_stats *s);
void lg_stats_merge(struct lg_stats *dst, const struct lg_stats *src);

/* Samples of another process (the server under test) taken at the phase boundaries. */
struct lg_proc_sample {
    bool ok;
    double cpu_s;     /* utime + stime */
    uint64_t rss_kib; /* VmRSS */
};

/* Everything the report needs besides the stats. */
struct lg_report {
    const char *label;
    const char *mode;    /* "native", "sse", "socketio" or "ws-chat" */
    const char *dialect; /* "native", "openai" (sse), or the dialect's name */
    const char *nsp;     /* Socket.IO: the namespace, else NULL */
    const char *target;
    const char *model;
    unsigned threads;
    uint64_t connections, streams_per_conn, concurrency;
    double idle_s, spread_s;
    double connect_wall_s; /* start to the last connection resolved */
    double stream_wall_s;  /* first stream sent to the last one ended */
    double loadgen_cpu_s;  /* this process, over the whole run */
    bool timed_out;        /* the run was cut short: --timeout, or SIGINT when interrupted */
    bool interrupted;
    int server_pid; /* 0: not sampled */
    struct lg_proc_sample srv_start, srv_connected, srv_end;
    uint64_t expect_tokens;
    bool verify;
    /* The cut: asked for, when (after the streams started), and whether it happened
     * while streams were running (else the run did not test what it was asked to). */
    bool cut;
    const char *cut_trigger; /* "tokens N" or "time" */
    double cut_at_s;
    /* The server from just before the cut to the last resume answered: its CPU over that
     * window (the reconnections and resumes, plus whatever streaming went on meanwhile). */
    struct lg_proc_sample srv_cut, srv_resumed;
    /* The server once every stream had its first token (or failed): the CPU of a burst of
     * new streams is the difference from srv_connected, over firsts new streams. */
    struct lg_proc_sample srv_firsts;
    uint64_t firsts;
    double firsts_wall_s;  /* from the streams' start until then; < 0: never */
    double resumed_wall_s; /* < 0: not every resume was answered during the stream phase */
    bool cut_missed;
    /* The server's /metrics (--metrics): just before the cut, the largest value of each
     * over the stream phase, and at its end; the largest journal bytes per active stream. */
    bool srvm;
    uint64_t srvm_samples, srvm_failed;
    struct lg_srvm_sample srvm_cut, srvm_peak, srvm_end;
    double srvm_peak_per_stream; /* < 0: none */
};

/* Errors of the run: those counted by code, plus a timeout and a cut that never happened. */
uint64_t lg_report_errors(const struct lg_report *r, const struct lg_stats *s);

/* Appends the JSON report (one object, no trailing newline) to out. */
void lg_report_json(struct sl_buf *out, const struct lg_report *r, const struct lg_stats *s);

/* Prints the human-readable report. */
void lg_report_table(FILE *f, const struct lg_report *r, const struct lg_stats *s);

#endif
