/*
 * Loop-driven unit tests of the mock upstream's server (bench/mock/server.c on sluice's own
 * HTTP layer): the mock runs on an sl_loop on the test's thread, and a blocking client on a
 * second thread talks to it over TCP, as a gateway would. Covered: fixture delivery with
 * its cuts as separate pieces, a client that leaves mid-stream (logged aborted), the TCP
 * reset of reset_after, /_mock/wait parked and answered, HTTP/1.0, pipelining, header names
 * lower-cased in the log, the request limits, and shutdown with a stream open.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../bench/mock/fixtures.c"
#include "../../bench/mock/reqlog.c"
#include "../../bench/mock/request.c"
#include "../../bench/mock/scenario.c"
#include "../../bench/mock/server.c"
#include "../../bench/mock/synth.c"

static const char *
fixtures_dir(void)
{
    const char *d = getenv("SL_FIXTURES");
    return d && *d ? d : "../shared/upstream-fixtures";
}

struct mock {
    struct sl_loop *loop;
    struct mock_server *s;
    int port;
};

static struct mock M;

static void
start(void)
{
    char err[512];
    memset(&M, 0, sizeof(M));
    M.loop = sl_loop_new();
    struct mock_server_opts o = {
        .host = "127.0.0.1", .port = 0, .fixtures_dir = fixtures_dir(), .log_cap = 100};
    M.s = mock_server_start(M.loop, &o, &M.port, err, sizeof(err));
    cr_assert_not_null(M.s, "%s", err);
}

static void
stop(void)
{
    mock_server_stop(M.s);
    sl_loop_stop(M.loop);
    sl_loop_run(M.loop);
    mock_server_free(M.s);
    sl_loop_free(M.loop);
}

/* Runs the mock's loop until cond holds (Criterion's timeout catches a hang). */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond))                                                                            \
            uv_run(sl_loop_uv(M.loop), UV_RUN_ONCE);                                               \
    } while (0)

/* --- the client: a thread with a blocking socket ------------------------------------------ */

struct client {
    const char *request;
    size_t request_len;      /* 0: strlen(request) */
    const char *leave_after; /* close as soon as this was received */
    bool reset;              /* leave with a reset (SO_LINGER 0) */
    struct sl_buf got;
    int error; /* errno of a failed read, e.g. ECONNRESET */
    atomic_bool done;
    pthread_t th;
};

static void
wake(void *arg)
{
    (void)arg;
}

static void *
client_main(void *arg)
{
    struct client *cl = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)M.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t len = cl->request_len ? cl->request_len : strlen(cl->request);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, cl->request, len) != (ssize_t)len) {
        cl->error = errno;
        goto out;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0)
            cl->error = errno;
        if (n <= 0)
            break;
        sl_buf_append(&cl->got, buf, (size_t)n);
        if (cl->leave_after && strstr(sl_buf_cstr(&cl->got), cl->leave_after))
            break;
    }
    if (cl->reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
out:
    close(fd);
    atomic_store(&cl->done, true);
    /* The loop may be waiting with nothing else to wake it. */
    sl_loop_post(M.loop, wake, NULL);
    return NULL;
}

static void
client_start(struct client *cl)
{
    cr_assert_eq(pthread_create(&cl->th, NULL, client_main, cl), 0);
}

/* Runs the mock until the client is done, then returns what it received. */
static const char *
client_finish(struct client *cl)
{
    RUN_UNTIL(atomic_load(&cl->done));
    pthread_join(cl->th, NULL);
    return sl_buf_cstr(&cl->got);
}

static void
client_free(struct client *cl)
{
    sl_buf_free(&cl->got);
}

/* The body of a chunked response, and the size of each chunk (one per piece written). */
static size_t
dechunk(const char *resp, struct sl_buf *body, size_t *sizes, size_t max)
{
    const char *p = strstr(resp, "\r\n\r\n");
    cr_assert_not_null(p);
    p += 4;
    size_t n = 0;
    for (;;) {
        char *end;
        unsigned long sz = strtoul(p, &end, 16);
        cr_assert(end[0] == '\r' && end[1] == '\n', "chunk size line at %.20s", p);
        if (sz == 0)
            break;
        cr_assert_lt(n, max);
        sizes[n++] = sz;
        sl_buf_append(body, end + 2, sz);
        p = end + 2 + sz;
        cr_assert(p[0] == '\r' && p[1] == '\n');
        p += 2;
    }
    return n;
}

static const char *
body_of(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    cr_assert_not_null(p, "no head end in %s", resp);
    return p + 4;
}

static struct mock_entry *
entry(const char *match)
{
    return mock_log_find(&M.s->log, match, -3);
}

/* A provider request whose scenario is in the header; probe is put into the body. */
static char *
openai_request(const char *version, const char *scenario, const char *probe)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
             "\"max_tokens\":32,\"stream\":true}",
             probe);
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b,
                  "POST /v1/chat/completions HTTP/%s\r\nHost: mock\r\nAuthorization: Bearer k\r\n"
                  "Content-Type: application/json\r\nX-Mock-Scenario: %s\r\n"
                  "Content-Length: %zu\r\n\r\n%s",
                  version, scenario, strlen(body), body);
    return sl_buf_steal(&b, NULL);
}

/* --- fixtures ------------------------------------------------------------------------------- */

static void
check_fixture_cuts(const char *id)
{
    const struct mock_fixture *f = mock_fixtures_find(&M.s->fixtures, id, strlen(id));
    cr_assert_not_null(f);
    cr_assert_gt(f->ncuts, 0, "a fixture with cuts");
    char scn[128];
    snprintf(scn, sizeof(scn), "fixture:%s@cuts", id);
    char *req = openai_request("1.1", scn, "Say hi.");
    struct client cl = {.request = req, .leave_after = "\r\n0\r\n\r\n"};
    client_start(&cl);
    const char *resp = client_finish(&cl);
    struct sl_buf body = SL_BUF_INIT;
    size_t sizes[64];
    size_t n = dechunk(resp, &body, sizes, 64);
    /* One piece per cut, in order, at the fixture's exact offsets. */
    cr_assert_eq(n, f->ncuts + 1, "%zu pieces for %zu cuts", n, f->ncuts);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t want = (i < f->ncuts ? f->cuts[i] : f->body_len) - at;
        cr_assert_eq(sizes[i], want, "piece %zu: %zu bytes, not %zu", i, sizes[i], want);
        at += sizes[i];
    }
    cr_assert_eq(sl_buf_len(&body), f->body_len);
    cr_assert(memcmp(sl_buf_ptr(&body), f->body, f->body_len) == 0, "the fixture's bytes");
    struct mock_entry *e = entry("Say hi.");
    cr_assert_not_null(e);
    RUN_UNTIL(e->state != MOCK_STREAMING);
    cr_assert_eq(e->state, MOCK_COMPLETE);
    cr_assert_str_eq(e->end, "done");
    cr_assert_eq(e->bytes_sent, f->body_len);
    sl_buf_free(&body);
    client_free(&cl);
    free(req);
}

Test(mock_server, fixture_cuts_are_separate_pieces, .init = start, .fini = stop, .timeout = 20)
{
    check_fixture_cuts("openai_compat/split_data_line");
}

Test(mock_server, fixture_whole_is_one_piece, .init = start, .fini = stop, .timeout = 20)
{
    const char *id = "openai_compat/split_data_line";
    const struct mock_fixture *f = mock_fixtures_find(&M.s->fixtures, id, strlen(id));
    char *req = openai_request("1.1", "fixture:openai_compat/split_data_line@whole", "Say hi.");
    struct client cl = {.request = req, .leave_after = "\r\n0\r\n\r\n"};
    client_start(&cl);
    struct sl_buf body = SL_BUF_INIT;
    size_t sizes[4];
    cr_assert_eq(dechunk(client_finish(&cl), &body, sizes, 4), 1);
    cr_assert_eq(sizes[0], f->body_len);
    sl_buf_free(&body);
    client_free(&cl);
    free(req);
}

/* --- synthetic streams and faults ------------------------------------------------------------ */

Test(mock_server, client_leaving_mid_stream_is_logged_aborted, .init = start, .fini = stop,
     .timeout = 20)
{
    char *req = openai_request("1.1", "synth:tokens=1000,rate=50,stall_after=3", "leave-7f3a");
    struct client cl = {.request = req, .leave_after = "tok3 "};
    client_start(&cl);
    client_finish(&cl);
    struct mock_entry *e = entry("leave-7f3a");
    cr_assert_not_null(e);
    RUN_UNTIL(e->state != MOCK_STREAMING);
    cr_assert_eq(e->state, MOCK_ABORTED);
    cr_assert_str_eq(e->end, "client_closed");
    cr_assert_eq(e->tokens_sent, 3);
    cr_assert_eq(M.s->st.aborted, 1);
    cr_assert_eq(M.s->st.active, 0);
    client_free(&cl);
    free(req);
}

Test(mock_server, reset_after_resets_the_connection, .init = start, .fini = stop, .timeout = 20)
{
    char *req = openai_request("1.1", "synth:tokens=5,reset_after=2", "reset-probe");
    struct client cl = {.request = req};
    client_start(&cl);
    const char *resp = client_finish(&cl);
    cr_assert_eq(cl.error, ECONNRESET, "a reset, not an end (%s)", strerror(cl.error));
    cr_assert(strstr(resp, "tok2 ") != NULL && strstr(resp, "tok3 ") == NULL);
    struct mock_entry *e = entry("reset-probe");
    RUN_UNTIL(e->state != MOCK_STREAMING);
    cr_assert_eq(e->state, MOCK_COMPLETE);
    cr_assert_str_eq(e->end, "reset");
    cr_assert_eq(e->tokens_sent, 2);
    client_free(&cl);
    free(req);
}

Test(mock_server, truncate_after_ends_the_body_then_closes, .init = start, .fini = stop,
     .timeout = 20)
{
    char *req = openai_request("1.1", "synth:tokens=5,truncate_after=2", "trunc-probe");
    struct client cl = {.request = req};
    client_start(&cl);
    const char *resp = client_finish(&cl);
    cr_assert_eq(cl.error, 0);
    cr_assert(strstr(resp, "\r\n0\r\n\r\n") != NULL, "a clean end of the chunked body");
    cr_assert(strstr(resp, "[DONE]") == NULL);
    struct mock_entry *e = entry("trunc-probe");
    cr_assert_eq(e->state, MOCK_COMPLETE);
    cr_assert_str_eq(e->end, "truncated");
    client_free(&cl);
    free(req);
}

Test(mock_server, http10_stream_is_close_delimited, .init = start, .fini = stop, .timeout = 20)
{
    char *req = openai_request("1.0", "synth:tokens=3", "old-client");
    struct client cl = {.request = req};
    client_start(&cl);
    const char *resp = client_finish(&cl);
    cr_assert(strstr(resp, "Transfer-Encoding") == NULL);
    cr_assert(strstr(resp, "Connection: close\r\n") != NULL);
    const char *body = body_of(resp);
    cr_assert(strncmp(body, "data: ", 6) == 0);
    cr_assert(strstr(body, "data: [DONE]\n\n") != NULL);
    cr_assert_eq(entry("old-client")->state, MOCK_COMPLETE);
    client_free(&cl);
    free(req);
}

Test(mock_server, pipelined_requests_are_answered_in_order, .init = start, .fini = stop,
     .timeout = 20)
{
    char *a = openai_request("1.1", "synth:tokens=2", "pipe-one");
    char *b = openai_request("1.1", "synth:tokens=3", "pipe-two");
    struct sl_buf both = SL_BUF_INIT;
    sl_buf_append_str(&both, a);
    sl_buf_append_str(&both, b);
    sl_buf_append_str(&both, "GET /_mock/stats HTTP/1.1\r\nHost: mock\r\n\r\n");
    struct client cl = {.request = sl_buf_cstr(&both), .leave_after = "\"uptime_ms\""};
    client_start(&cl);
    const char *resp = client_finish(&cl);
    const char *one = strstr(resp, "tok2 "), *two = strstr(resp, "tok3 ");
    const char *stats = strstr(resp, "\"requests\":2");
    cr_assert(one && two && stats && one < two && two < stats, "%s", resp);
    client_free(&cl);
    sl_buf_free(&both);
    free(a);
    free(b);
}

/* --- /_mock endpoints, the log -----------------------------------------------------------------
 */

Test(mock_server, wait_is_parked_until_the_request_arrives, .init = start, .fini = stop,
     .timeout = 20)
{
    struct client w = {
        .request = "GET /_mock/wait?match=park-probe&state=complete&timeout_ms=10000 HTTP/1.1\r\n"
                   "Host: mock\r\n\r\n",
        .leave_after = "}\n"};
    client_start(&w);
    RUN_UNTIL(!sl_list_empty(&M.s->waiters));
    char *req = openai_request("1.1", "synth:tokens=2", "park-probe");
    struct client cl = {.request = req, .leave_after = "\r\n0\r\n\r\n"};
    client_start(&cl);
    client_finish(&cl);
    const char *resp = client_finish(&w);
    cr_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", resp);
    json_error_t jerr;
    json_t *j = json_loads(body_of(resp), 0, &jerr);
    cr_assert_not_null(j, "%s", jerr.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "complete");
    cr_assert_eq(json_integer_value(json_object_get(j, "tokens_sent")), 2);
    json_decref(j);
    client_free(&w);
    client_free(&cl);
    free(req);
}

Test(mock_server, wait_times_out_with_408, .init = start, .fini = stop, .timeout = 20)
{
    struct client w = {
        .request = "GET /_mock/wait?match=never&timeout_ms=30 HTTP/1.1\r\nHost: mock\r\n\r\n",
        .leave_after = "}\n"};
    client_start(&w);
    const char *resp = client_finish(&w);
    cr_assert(strncmp(resp, "HTTP/1.1 408 ", 13) == 0, "%s", resp);
    cr_assert(strstr(resp, "{\"mock_error\":\"timeout\",\"match\":\"never\"}") != NULL);
    client_free(&w);
}

Test(mock_server, log_has_lower_case_header_names, .init = start, .fini = stop, .timeout = 20)
{
    const char *body = "{\"model\":\"synth:tokens=1\",\"messages\":[],\"stream\":true}";
    char req[512];
    snprintf(req, sizeof(req),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\nX-Mixed-Case: Value\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    struct client cl = {.request = req, .leave_after = "\r\n0\r\n\r\n"};
    client_start(&cl);
    client_finish(&cl);
    struct mock_entry *e = entry(NULL);
    cr_assert_not_null(e);
    cr_assert(strstr(e->headers_json, "\"x-mixed-case\":\"Value\"") != NULL, "%s", e->headers_json);
    cr_assert_str_eq(e->scenario, "synth:tokens=1");
    client_free(&cl);
}

/* --- limits and shutdown ------------------------------------------------------------------------
 */

Test(mock_server, long_url_414, .init = start, .fini = stop, .timeout = 20)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, "GET /");
    for (unsigned i = 0; i < MAX_URL; i++)
        sl_buf_append_byte(&b, 'a');
    sl_buf_append_str(&b, " HTTP/1.1\r\nHost: mock\r\n\r\n");
    struct client cl = {.request = sl_buf_cstr(&b)};
    client_start(&cl);
    const char *resp = client_finish(&cl);
    cr_assert(strncmp(resp, "HTTP/1.1 414 ", 13) == 0, "%.40s", resp);
    client_free(&cl);
    sl_buf_free(&b);
}

Test(mock_server, big_body_413, .init = start, .fini = stop, .timeout = 20)
{
    struct client cl = {.request = "POST /v1/chat/completions HTTP/1.1\r\nHost: mock\r\n"
                                   "Content-Length: 16777217\r\n\r\n"};
    client_start(&cl);
    const char *resp = client_finish(&cl);
    cr_assert(strncmp(resp, "HTTP/1.1 413 ", 13) == 0, "%.40s", resp);
    client_free(&cl);
}

Test(mock_server, shutdown_logs_open_streams_aborted, .init = start, .fini = stop, .timeout = 20)
{
    char *req = openai_request("1.1", "synth:tokens=1000,rate=10", "shutdown-probe");
    struct client cl = {.request = req};
    client_start(&cl);
    RUN_UNTIL(entry("shutdown-probe") && entry("shutdown-probe")->tokens_sent >= 1);
    struct mock_entry *e = entry("shutdown-probe");
    mock_server_stop(M.s);
    RUN_UNTIL(e->state != MOCK_STREAMING);
    cr_assert_eq(e->state, MOCK_ABORTED);
    cr_assert_str_eq(e->end, "client_closed");
    /* The connection is gone: the client sees its end without the loop's help. */
    pthread_join(cl.th, NULL);
    client_free(&cl);
    free(req);
}
