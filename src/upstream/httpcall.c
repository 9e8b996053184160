#include "upstream/httpcall.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "obs/log.h"
#include "upstream/curl.h"
#include "upstream/h1.h"
#include "upstream/upstream.h"

struct call {
    struct sl_resp resp;
    struct sl_upstream *up;
    /* The transfer, in curl or in the builtin client; NULL once it ended (or a cancel). */
    struct sl_curl_xfer *x;
    struct sl_h1_xfer *hx;
    uint64_t first_byte_ms, idle_ms;
    /*
     * Inside the decoder, whose sink callbacks may cancel: in sl_resp_body() (from on_data),
     * and in sl_resp_end() and sl_resp_deliver() (from finish(): the end of the body can
     * still hold a last event, and on_usage comes before the terminal callback). A cancel
     * there marks the call; whoever set busy frees it once the decoder returned.
     */
    bool busy;
    bool cancelled;
    bool counted; /* still counted in up->active_calls */
};

static void
free_call(struct call *c)
{
    sl_resp_cleanup(&c->resp);
    free(c);
}

/*
 * Takes the call off the worker's count, once: finish() and a cancel from inside it both
 * end the call. The count is unsigned and the worker stops at 0, so a second decrement would
 * keep it waiting for ever.
 */
static void
uncount(struct call *c)
{
    if (!c->counted)
        return;
    c->counted = false;
    sl_assert(c->up->active_calls > 0);
    c->up->active_calls--;
}

static void
log_failure(const struct call *c)
{
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "upstream.error")) {
        sl_log_str(&r, "provider", c->resp.provider);
        sl_log_str(&r, "code", sl_errcode_name(c->resp.err.code));
        sl_log_int(&r, "status", c->resp.status);
        if (c->resp.request_id[0])
            sl_log_str(&r, "upstream_request_id", c->resp.request_id);
        sl_log_str(&r, "msg", c->resp.err.message); /* redacted by the decoder */
        sl_log_end(&r);
    }
}

/*
 * The terminal step, once curl let go of the transfer (or a timeout removed it): decide, let
 * the worker know, tell the stream, free. The stream may cancel from a callback of either
 * decoder step (see busy): then nothing more is delivered and the call is freed here.
 */
static void
finish(struct call *c, const struct sl_upstream_error *transport)
{
    c->x = NULL;
    c->hx = NULL;
    c->busy = true;
    sl_resp_end(&c->resp, transport);
    uncount(c);
    if (!c->cancelled) {
        if (c->resp.state == SL_RESP_FAILED)
            log_failure(c);
        sl_resp_deliver(&c->resp);
    }
    free_call(c);
}

/* --- transfer callbacks ------------------------------------------------------------------- */

static int
on_header(void *ud, const char *line, size_t len)
{
    struct call *c = ud;
    return sl_resp_header(&c->resp, line, len);
}

static int
on_data(void *ud, const char *p, size_t len)
{
    struct call *c = ud;
    c->busy = true;
    int rc = sl_resp_body(&c->resp, p, len);
    c->busy = false;
    if (c->cancelled) {
        free_call(c); /* cancelled from a sink callback; the glue already let go */
        return 1;
    }
    return rc;
}

/* curl's result, when it is not the decoder's own decision, as a canonical error. */
static void
transport_error(CURLcode rc, const char *detail, struct sl_upstream_error *e, char *msg, size_t cap)
{
    e->code = SL_ERR_UPSTREAM_ERROR;
    e->retryable = true;
    e->retry_after_ms = -1;
    e->native_code = NULL;
    e->http_status = 0;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        e->code = SL_ERR_UPSTREAM_TIMEOUT;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_TOO_MANY_REDIRECTS:
        e->retryable = false;
        break;
    default:
        break;
    }
    if (detail == NULL || detail[0] == '\0')
        detail = curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(msg, cap, "connect timeout: %s", detail);
    else
        snprintf(msg, cap, "%s", detail);
    e->message = msg;
}

/*
 * Whether curl gave up on the response head by itself, before the decoder's cap saw it:
 * curl 7.88 refuses a header line over 100 KiB as "out of memory" (it would be a
 * retryable transport error, and retrying gets the same head), and newer versions a head
 * over their own total with a message about headers. Before any body byte, an
 * out-of-memory from curl is that (sluice aborts on a real allocation failure).
 */
static bool
head_refused(const struct call *c, CURLcode rc, const char *detail)
{
    if (c->resp.body_started)
        return false;
    if (rc == CURLE_OUT_OF_MEMORY)
        return true;
    return rc == CURLE_RECV_ERROR && detail != NULL && strcasestr(detail, "header") != NULL;
}

static void
on_end(void *ud, CURLcode rc, const char *detail)
{
    struct call *c = ud;
    if (rc == CURLE_OK) {
        finish(c, NULL);
        return;
    }
    if (head_refused(c, rc, detail)) {
        sl_resp_head_too_large(&c->resp, detail && *detail ? detail : curl_easy_strerror(rc));
        finish(c, NULL);
        return;
    }
    struct sl_upstream_error e;
    char msg[CURL_ERROR_SIZE + 32];
    transport_error(rc, detail, &e, msg, sizeof(msg));
    finish(c, &e);
}

static void
on_timeout(void *ud, enum sl_curl_timeout which)
{
    struct call *c = ud;
    char msg[128];
    if (which == SL_CURL_TIMEOUT_FIRST_BYTE)
        snprintf(msg, sizeof(msg), "no response within %llu ms (first_byte_timeout)",
                 (unsigned long long)c->first_byte_ms);
    else
        snprintf(msg, sizeof(msg), "no data for %llu ms (idle_timeout)",
                 (unsigned long long)c->idle_ms);
    struct sl_upstream_error e = {
        .code = SL_ERR_UPSTREAM_TIMEOUT,
        .message = msg,
        .retryable = true,
        .retry_after_ms = -1,
    };
    finish(c, &e);
}

static const struct sl_curl_xfer_cb xfer_cb = {
    .on_header = on_header,
    .on_data = on_data,
    .on_end = on_end,
    .on_timeout = on_timeout,
};

/* --- provider ops --------------------------------------------------------------------------- */

/* The call's transfer through libcurl: an easy handle made of req, in the provider's pool. */
static struct sl_curl_xfer *
curl_transfer(struct call *c, const struct sl_config_provider *pv, const struct sl_httpreq *req)
{
    struct sl_upstream *up = c->up;
    CURL *e = sl_curl_easy(sl_upstream_curl(up));
    struct curl_slist *headers = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(headers, req->headers[i]);
        if (n == NULL)
            sl_panic("curl_slist_append failed");
        headers = n;
    }
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)pv->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /*
     * Wait for a connection being set up to the same host: it may multiplex (HTTP/2).
     * Only over TLS, where ALPN can offer h2: over http:// curl speaks HTTP/1.1 here, and
     * curl 7.88 can leave a waiting transfer pending until some other transfer ends (the
     * benchmark saw one request in a thousand wait a whole 10 s stream).
     */
    if (strncmp(req->url, "https:", 6) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, pv->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, pv->tls_verify ? 2L : 0L);
    if (pv->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, pv->ca_file);
    struct sl_curl_pool *pool = sl_upstream_pool(up, pv);
    if (pool != NULL)
        return sl_curl_add_pooled(pool, e, headers, &xfer_cb, c, c->first_byte_ms, c->idle_ms);
    return sl_curl_add(sl_upstream_curl(up), e, headers, &xfer_cb, c, c->first_byte_ms, c->idle_ms);
}

void *
sl_httpcall_start(const struct sl_wire *w, struct sl_upstream *up, const struct sl_call_params *p,
                  const struct sl_upstream_sink *sink, void *ud, struct sl_upstream_error *err)
{
    const struct sl_config_provider *pv = p->provider;
    struct sl_httpreq req = {0};
    if (sl_wire_build(w, p, &req, err) != 0)
        return NULL;

    struct call *c = sl_calloc(1, sizeof(*c));
    c->up = up;
    c->first_byte_ms = pv->first_byte_timeout_ms;
    c->idle_ms = pv->idle_timeout_ms;
    sl_resp_init(&c->resp, w, sink, ud, pv);
    /* http:// providers go to the builtin client (h1.h says why), the rest to curl. */
    struct sl_h1_pool *hp = sl_upstream_h1pool(up, pv);
    if (hp != NULL)
        c->hx = sl_h1_add(hp, req.url, req.headers, req.nheaders, req.body, req.body_len, &xfer_cb,
                          c, c->first_byte_ms, c->idle_ms);
    else
        c->x = curl_transfer(c, pv, &req);
    sl_httpreq_cleanup(&req);
    up->active_calls++;
    c->counted = true;
    return c;
}

void
sl_httpcall_cancel(void *call)
{
    struct call *c = call;
    sl_assert(!c->cancelled); /* the caller forgets the handle: one cancel */
    c->cancelled = true;
    c->resp.cancelled = true; /* the rest of what is being parsed reaches no sink */
    if (c->x != NULL) {
        sl_curl_remove(c->x);
        c->x = NULL;
    }
    if (c->hx != NULL) {
        sl_h1_remove(c->hx);
        c->hx = NULL;
    }
    uncount(c);
    if (!c->busy)
        free_call(c);
}

bool
sl_httpcall_queued(void *call)
{
    struct call *c = call;
    return (c->x != NULL && sl_curl_queued(c->x)) || (c->hx != NULL && sl_h1_queued(c->hx));
}

/* Pause and resume: nothing to do once the transfer is over (the decoder finishes it). */
void
sl_httpcall_pause(void *call)
{
    struct call *c = call;
    if (c->x != NULL)
        sl_curl_pause(c->x, true);
    else if (c->hx != NULL)
        sl_h1_pause(c->hx, true);
}

void
sl_httpcall_resume(void *call)
{
    struct call *c = call;
    if (c->x != NULL)
        sl_curl_pause(c->x, false);
    else if (c->hx != NULL)
        sl_h1_pause(c->hx, false);
}
