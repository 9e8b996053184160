/*
 * A plain HTTP/1.1 client for providers at an http:// base URL (Ollama, vLLM, llama.cpp,
 * any OpenAI-compatible server on the local network), in place of libcurl there.
 *
 * Why not curl for these: a profile of a burst of 1,000 new streams (docs/performance.md,
 * "Bursts of new streams") put 47 % of sluice's CPU inside curl_multi_socket_action, two
 * thirds of it curl's own bookkeeping around the one send and the one receive a stream
 * needs (a poll() after every read, epoll re-registration per transfer, a URL parse and
 * header lists per request); and a paced stream paid a poll per token. Over http:// none
 * of curl's strengths is used (no TLS, no HTTP/2, no proxy unless the environment names
 * one: then curl serves, see sl_h1_eligible). This client does exactly that one job: one
 * request per connection at a time (HTTP/1.1 keep-alive, no pipelining), responses parsed by
 * http-parser (chunked or sized or read to the close), connections kept per provider and
 * worker, behind the same gate (gate.h) as curl's pools.
 *
 * The transfer interface is the curl glue's (curl.h): the same callbacks, and errors as
 * the CURLcode curl would give for the same failure, so that one caller (httpcall.c)
 * classifies both transports alike (retryable or not, timeout or not). Every callback runs
 * on the worker's loop, never re-entrantly from one of this module's functions, except
 * on_header and on_data, which run while a read is parsed and may call sl_h1_remove() or
 * sl_h1_pause() on their transfer.
 *
 * A request that fails on a reused connection before any byte of its response (the
 * server closed the idle connection as the request went out) is sent again once on a new
 * connection, as curl does.
 */
#ifndef SL_UPSTREAM_H1_H
#define SL_UPSTREAM_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "upstream/curl.h" /* struct sl_curl_xfer_cb, enum sl_curl_timeout */

struct sl_gate;
struct sl_loop;
struct sl_h1;
struct sl_h1_pool;
struct sl_h1_xfer;

/* The client of one worker's loop. */
struct sl_h1 *sl_h1_new(struct sl_loop *loop);

/*
 * Frees the client: transfers still running are dropped without callbacks, connections
 * closed, and the loop is run until their handles are gone. After the loop stopped serving,
 * as sl_curl_free(). NULL is fine.
 */
void sl_h1_free(struct sl_h1 *h);

/*
 * Whether this client serves base_url: http:// with a host this module can parse, and no
 * proxy in the environment for it (http_proxy, HTTP_PROXY or all_proxy, unless no_proxy
 * excludes everything with "*"): curl honours those, and so must a provider behind one.
 */
bool sl_h1_eligible(const char *base_url);

struct sl_h1_pool_cfg {
    const char *base_url; /* http:// (sl_h1_eligible) */
    unsigned max_connections;
    unsigned max_queued;
    unsigned min_idle; /* connections kept open (TCP connected, no request) */
    uint64_t connect_timeout_ms;
    /* Tests: these addresses (up to 8), in this order, instead of the host's. */
    const struct sockaddr_storage *addrs;
    unsigned naddrs;
};

/* One provider's connections on this worker; lives as long as the client. */
struct sl_h1_pool *sl_h1_pool_new(struct sl_h1 *h, const struct sl_h1_pool_cfg *cfg);

/*
 * Starts a POST of body to url (which must have the pool's scheme, host and port) with
 * the given "Name: value" headers (Host and Content-Length are added). Everything is copied.
 * The transfer runs now or waits at the pool's gate (sl_h1_queued()); the wait counts
 * against first_byte_ms. Never fails: a refusal (queue full) is reported through on_end on
 * a later loop iteration, with CURLE_COULDNT_CONNECT, as curl.c does.
 */
struct sl_h1_xfer *sl_h1_add(struct sl_h1_pool *p, const char *url, char *const *headers,
                             size_t nheaders, const char *body, size_t body_len,
                             const struct sl_curl_xfer_cb *cb, void *ud, uint64_t first_byte_ms,
                             uint64_t idle_ms);

/*
 * Stops the transfer now: its connection is closed if the response was not over (the
 * server sees the request end); no callback of it runs afterwards. Also from inside its
 * on_header or on_data.
 */
void sl_h1_remove(struct sl_h1_xfer *x);

/*
 * Pauses (true) or resumes (false) receiving: the connection is not read while paused
 * (what the current read holds is still delivered), and the timeouts are suspended; on
 * resume the idle timeout restarts from zero.
 */
void sl_h1_pause(struct sl_h1_xfer *x, bool paused);

bool sl_h1_queued(const struct sl_h1_xfer *x);

/* The pool's gate (gate.h: transfers waiting, ever queued, connections open), for reading. */
const struct sl_gate *sl_h1_pool_gate(const struct sl_h1_pool *p);

/*
 * Time spent completing connects and sending requests outside sl_h1_add (ns): new-stream
 * work that fair admission counts, as sl_curl_timer_ns().
 */
uint64_t sl_h1_setup_ns(const struct sl_h1 *h);

#endif
