/*
 * libcurl multi <-> libuv glue: one CURLM per worker, driven by the worker's loop.
 *
 * The pattern of curl's docs/examples/multi-uv.c: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION -> one uv_poll_t per socket) and when to call it back
 * (CURLMOPT_TIMERFUNCTION -> one uv_timer_t); readiness and timer expiry are handed to
 * curl_multi_socket_action(), and finished transfers are collected after it returns. A
 * timeout of 0 from curl means "soon": the timer is started with 0 and fires on the next
 * loop iteration, never re-entrantly from inside the timer function.
 *
 * On top of that, each transfer (struct sl_curl_xfer) gets what curl does not offer:
 *   - a first-byte timeout (from the start until the first response byte) and an idle
 *     timeout (the longest silence between two pieces of the response), both measured by
 *     one uv_timer_t per transfer that is re-armed lazily: a chunk only stores the time;
 *   - removal at any time, including from inside a curl callback (curl refuses
 *     curl_multi_remove_handle there): the transfer is then marked, its remaining
 *     callbacks are swallowed (the owner's data is never touched again) and curl's handle
 *     is removed as soon as curl_multi_socket_action returns, within the same loop turn;
 *   - pause and resume for backpressure, also deferred out of curl callbacks.
 *
 * The connect timeout is curl's own (CURLOPT_CONNECTTIMEOUT_MS, set by the caller).
 * Everything here runs on the worker's thread; nothing is locked.
 */
#ifndef SL_UPSTREAM_CURL_H
#define SL_UPSTREAM_CURL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_gate;
struct sl_loop;
struct sl_curl;
struct sl_curl_xfer;

enum sl_curl_timeout {
    SL_CURL_TIMEOUT_FIRST_BYTE, /* no response byte within first_byte_ms of the start */
    SL_CURL_TIMEOUT_IDLE,       /* no response byte for idle_ms after the last one */
};

/*
 * What the owner of a transfer is told. ud is the owner's pointer given to sl_curl_add().
 * None of these is ever called after sl_curl_remove() for that transfer.
 */
struct sl_curl_xfer_cb {
    /*
     * A header line, exactly as curl passes it (status lines included, CRLF included).
     * Return 0 to go on, non-zero to abort the transfer (on_end follows with an error).
     */
    int (*on_header)(void *ud, const char *line, size_t len);
    /* Body bytes. Return 0 to go on, non-zero to abort (on_end follows). */
    int (*on_data)(void *ud, const char *p, size_t len);
    /*
     * The transfer is over (complete, failed, or aborted by a callback); rc is curl's
     * result and detail its error text (CURLOPT_ERRORBUFFER, "" if none; valid during the
     * call). Called outside any curl callback, after curl let go of the handle: the
     * transfer no longer exists when this runs.
     */
    void (*on_end)(void *ud, CURLcode rc, const char *detail);
    /* A timeout expired; the transfer was removed just before; it no longer exists. */
    void (*on_timeout)(void *ud, enum sl_curl_timeout which);
};

/*
 * Creates the glue for one loop (calls curl_global_init). max_host_connections caps the
 * connections per host (CURLMOPT_MAX_HOST_CONNECTIONS; 0: no cap); further transfers wait
 * in curl's queue for a free connection. HTTP/2 multiplexing is on.
 */
struct sl_curl *sl_curl_new(struct sl_loop *loop, long max_host_connections);

/*
 * Frees the glue: cleans the multi handle up (closing cached connections), closes the uv
 * handles and runs the loop until their close callbacks have run. Every transfer must have
 * ended or been removed. Call it once the loop has stopped serving (after sl_loop_run
 * returned), on the loop's thread or after joining it. NULL is fine.
 */
void sl_curl_free(struct sl_curl *g);

/*
 * Starts a transfer on easy, which must be fully set up except for CURLOPT_WRITEFUNCTION,
 * CURLOPT_WRITEDATA, CURLOPT_HEADERFUNCTION, CURLOPT_HEADERDATA, CURLOPT_ERRORBUFFER and
 * CURLOPT_PRIVATE, which
 * the glue sets. Ownership of easy and of headers (its CURLOPT_HTTPHEADER list, or NULL)
 * passes to the glue, which frees them when curl has let go of the transfer; so anything
 * else easy points to must be copied into it (CURLOPT_COPYPOSTFIELDS). A timeout of 0
 * disables that timeout. Never fails (allocation failure aborts); if curl refuses the
 * handle, on_end is called on a later loop iteration with an error.
 */
struct sl_curl_xfer *sl_curl_add(struct sl_curl *g, CURL *easy, struct curl_slist *headers,
                                 const struct sl_curl_xfer_cb *cb, void *ud, uint64_t first_byte_ms,
                                 uint64_t idle_ms);

/*
 * Stops the transfer: curl drops it (closing its connection, or resetting its HTTP/2
 * stream, so the server sees the request end) now, or, when called from inside a curl
 * callback, as soon as curl returns, in the same loop turn. No callback of the transfer
 * runs afterwards, and the owner may free ud at once. The handle is invalid afterwards.
 */
void sl_curl_remove(struct sl_curl_xfer *x);

/*
 * Pauses (true) or resumes (false) receiving. While paused the timeouts are suspended; on
 * resume the idle timeout restarts from zero. Resuming is deferred to a later loop
 * iteration, because curl delivers buffered data from inside curl_easy_pause().
 */
void sl_curl_pause(struct sl_curl_xfer *x, bool paused);

/*
 * One provider's connections on this worker: a gate (gate.h) caps the transfers that run
 * at once and queues the rest, visibly (sl_curl_queued()); min_idle connections are kept
 * open and warm (warm-up requests: a GET of base_url without credentials, repeated as
 * keep-alive every 30 s). Pools live as long as the glue.
 */
struct sl_curl_pool;

struct sl_curl_pool_cfg {
    const char *base_url; /* https:// is assumed HTTP/2 until a response says otherwise */
    unsigned max_connections;
    unsigned max_queued; /* transfers waiting for a connection at most; past it, refused */
    unsigned min_idle;
    uint64_t connect_timeout_ms;
    bool tls_verify;
    const char *ca_file; /* or NULL */
};

struct sl_curl_pool *sl_curl_pool_new(struct sl_curl *g, const struct sl_curl_pool_cfg *cfg);

/*
 * sl_curl_add() through a pool's gate: the transfer starts now, or waits in the pool's
 * queue (sl_curl_queued() says so right after the call) until a transfer of the pool ends.
 * The wait counts against first_byte_ms. With the queue full, on_end follows on a later
 * loop iteration with CURLE_COULDNT_CONNECT and a message saying so.
 */
struct sl_curl_xfer *sl_curl_add_pooled(struct sl_curl_pool *p, CURL *easy,
                                        struct curl_slist *headers,
                                        const struct sl_curl_xfer_cb *cb, void *ud,
                                        uint64_t first_byte_ms, uint64_t idle_ms);

/* Whether the transfer waits at its pool's gate (not yet given to curl). */
bool sl_curl_queued(const struct sl_curl_xfer *x);

/* The pool's gate (gate.h: transfers waiting, ever queued, connections open), for reading. */
const struct sl_gate *sl_curl_pool_gate(const struct sl_curl_pool *p);

/*
 * An easy handle to set up for sl_curl_add(): a finished transfer's, reset
 * (curl_easy_reset), or a new one. The glue keeps up to 256 finished handles for this.
 */
CURL *sl_curl_easy(struct sl_curl *g);

/*
 * Time spent in curl's timer actions since the glue was made (ns): where curl sets up the
 * transfers added since the last one (connects, sends the request). Fair admission counts
 * it as new-stream work.
 */
uint64_t sl_curl_timer_ns(const struct sl_curl *g);

/* Transfers currently added (for tests and metrics). */
unsigned sl_curl_active(const struct sl_curl *g);

#endif
