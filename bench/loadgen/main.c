/*
 * sluice-loadgen: the load generator for sizing a sluice deployment.
 *
 *     sluice-loadgen [options] ws://HOST:PORT/ws        through sluice (native protocol)
 *     sluice-loadgen --dialect D [options] ws://HOST:PORT/socket.io/   Socket.IO (the native
 *                                                       protocol in /sluice, or a seed
 *                                                       frontend's dialect), or ws-chat at
 *                                                       ws://HOST:PORT/ws/chat
 *     sluice-loadgen [options] http://HOST:PORT/v1      OpenAI chat completions over SSE: straight
 *                                                       to the mock upstream (the no-gateway
 *                                                       baseline), through sluice's HTTP API, or
 *                                                       through another gateway (-H for its
 * headers)
 *
 * Opens C connections (ramped: at most --ramp handshakes at a time), authenticates them,
 * optionally holds them idle, then runs S streams per connection, K at once, and reports
 * tokens/s, per-token delivery latency (from the `@<µs>` stamps of the mock upstream's
 * ts=1 scenarios), TTFT, connect and auth times, and errors by code; with --server-pid, the
 * server's CPU time per token and memory per connection from /proc. With --cut-at or
 * --cut-after it cuts every connection at one moment mid-stream, reconnects and resumes
 * the streams, and times that; --verify-text checks every stream's text token by token;
 * --metrics samples the server's /metrics. docs/performance.md describes the options and
 * the report; usage() lists them.
 *
 * Threads: the main thread only sequences the phases and prints progress; the connections
 * live on --threads worker loops (worker.c).
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "base/util.h"
#include "dialect.h"
#include "procstat.h"
#include "srvmetrics.h"
#include "worker.h"

#define TICK_MS 10
#define PROGRESS_MS 500
#define MAX_HEADERS 16
#define METRICS_TIMEOUT_MS 2000
#define METRICS_FAST_S 5 /* after a cut, /metrics every tick while resumes are pending */

struct options {
    const char *url;
    uint32_t connections, streams, concurrency;
    const char *model, *message, *token, *label;
    long long max_tokens;
    enum lg_auth auth;
    bool auth_set;
    uint64_t idle_ms, spread_ms, timeout_ms, handshake_timeout_ms;
    unsigned ramp, threads;
    int source_addrs; /* -1 auto */
    uint64_t expect_tokens;
    int server_pid;
    bool json;
    int progress;                     /* -1 auto (tty), 0, 1 */
    const char *headers[MAX_HEADERS]; /* -H: extra request header lines, "Name: value" */
    unsigned nheaders;
    uint64_t cut_at;       /* tokens per running stream, on average, at the cut; 0 = none */
    uint64_t cut_after_ms; /* after the streams started; 0 = none */
    bool deflate;
    bool verify;
    const char *jwt_secret, *jwt_sub;
    const char *metrics_url;
    uint64_t metrics_ivl_ms;
    const char *dialect, *nsp, *provider;
};

enum phase { PH_CONNECT, PH_HOLD, PH_STREAM, PH_CLOSING };

struct app {
    uv_loop_t *loop;
    uv_timer_t tick;
    uv_signal_t sigint;
    struct options opt;
    struct lg_config cfg;
    struct lg_worker **workers;
    unsigned nworkers;
    struct lg_report rep;
    char target[512];
    enum phase phase;
    uint64_t t_start, t_hold_end, t_stream, deadline;
    uint64_t last_progress, last_tokens, last_tokens_t;
    bool progress_shown;
    bool tty;
    bool interrupted;
    bool cut_pending; /* a cut was asked for and has not happened */
    uint64_t t_cut, t_last_metrics;
    bool have_srvm;
    struct lg_srvm_target srvm;
    char trigger[64];
};

static void
usage(FILE *f)
{
    fputs(
        "usage: sluice-loadgen [options] URL\n"
        "  URL  ws://HOST:PORT/ws      sluice's native protocol (WebSocket)\n"
        "       http://HOST:PORT/v1    OpenAI chat completions, stream: true, over plain HTTP/1.1\n"
        "                              SSE (POST .../chat/completions): sluice's HTTP API, the\n"
        "                              mock upstream itself (the no-gateway baseline), or\n"
        "                              another gateway\n"
        "       ws://HOST:PORT/socket.io/  with --dialect sluice, chat, llm, stream or ai:\n"
        "                              Socket.IO over WebSocket (Engine.IO v4)\n"
        "       ws://HOST:PORT/ws/chat with --dialect ws-chat\n"
        "dialect:\n"
        "      --dialect NAME     the client protocol over ws://: native (default), sluice\n"
        "                         (the native protocol as Socket.IO events, namespace\n"
        "                         /sluice), chat and llm (namespace /), stream (/stream), ai\n"
        "                         (/ai), ws-chat (a plain WebSocket; the server's\n"
        "                         default_model answers, so no -m)\n"
        "      --namespace NSP    the Socket.IO namespace (default: the dialect's)\n"
        "      --provider NAME    llm: the request's provider\n"
        "load:\n"
        "  -c, --connections N    connections (default 10)\n"
        "  -s, --streams N        streams per connection, in total (default 1; 0 = none)\n"
        "  -k, --concurrency K    streams at once per connection (default 1; http:// URLs\n"
        "                         opens K HTTP connections instead)\n"
        "  -m, --model NAME       the model asked for (native default: the server's; http\n"
        "                         default synth:tokens=20,ts=1, the mock's scenario syntax)\n"
        "      --message TEXT     the user message (default \"benchmark\")\n"
        "      --max-tokens N     max_tokens of each request\n"
        "      --idle DURATION    hold the connections idle this long once all are up\n"
        "                         (then the streams; with -s 0: connect, hold, close)\n"
        "      --spread DURATION  start the connections' first streams evenly over DURATION\n"
        "      --expect-tokens N  a stream that delivers another number of tokens is an error\n"
        "      --deflate          offer permessage-deflate (ws:// only); a connection that\n"
        "                         does not get it fails with NO_DEFLATE\n"
        "      --verify-text      check that each stream's text is the mock's synthetic text\n"
        "                         tok1 tok2 ... tokN (synth ts=0 or ts=2; N: --expect-tokens);\n"
        "                         lost, duplicated or garbled tokens are errors\n"
        "cut and resume (ws:// only):\n"
        "      --cut-at N         once the streams have received N tokens each on average,\n"
        "                         reset every connection at once (TCP RST), reconnect, and\n"
        "                         resume each running stream from the last seq it saw\n"
        "      --cut-after DURATION  the same, this long after the streams started\n"
        "auth:\n"
        "      --token T          JWT or API key (http: always Authorization: Bearer)\n"
        "      --jwt-secret S     instead: each connection signs its own HS256 JWT with S, sub\n"
        "                         PREFIX<connection number> (one user per connection)\n"
        "      --jwt-sub PREFIX   (default \"lg-\")\n"
        "      --auth MODE        query (?token=, default), header (Authorization: Bearer),\n"
        "                         message (a first {\"type\":\"auth\"} message; Socket.IO:\n"
        "                         the CONNECT payload {\"token\"}, its default), none\n"
        "client:\n"
        "  -H, --header 'N: V'    an extra request header (repeatable, at most 16): for a\n"
        "                         gateway's routing headers, e.g. x-portkey-provider\n"
        "      --ramp N           at most N connection handshakes in progress (default 200)\n"
        "      --threads N        event-loop threads (default 1)\n"
        "      --source-addrs N   spread connections over 127.0.0.1..N (default auto: as many\n"
        "                         as the ephemeral port range needs, for a loopback target)\n"
        "      --timeout DURATION give up after this long (default 300s)\n"
        "      --handshake-timeout DURATION  a connection not ready after this long fails\n"
        "                         (default 30s)\n"
        "report:\n"
        "      --server-pid PID   sample that process's CPU and RSS (/proc) at each phase\n"
        "      --metrics URL      sample the server's Prometheus /metrics (journal bytes,\n"
        "                         active streams, detached sessions, resumes): at the cut,\n"
        "                         peaks, end\n"
        "      --metrics-interval DURATION  between samples (default 100ms; every 10 ms\n"
        "                         while resumes are pending)\n"
        "      --json             JSON report on stdout instead of the table\n"
        "      --label TEXT       name of the run in the report\n"
        "      --progress / --no-progress   a progress line on stderr (default: if a tty)\n"
        "Durations: 500ms, 10s, 2m. Exit status: 0 without errors, 1 with, 2 on bad usage.\n",
        f);
}

/* --- option parsing --------------------------------------------------------------------- */

static int
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    long long v;
    if (sl_parse_int(s, &v) != 0 || v < (long long)min || v > (long long)max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* "Name: value" with a token name and no line breaks (it goes into the request as is). */
static bool
valid_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (colon == NULL || colon == h || strpbrk(h, "\r\n") != NULL)
        return false;
    for (const char *p = h; p < colon; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

static void
append_headers(struct sl_buf *b, const struct options *o)
{
    for (unsigned i = 0; i < o->nheaders; i++)
        sl_buf_printf(b, "%s\r\n", o->headers[i]);
}

static int
parse_options(int argc, char **argv, struct options *o)
{
    enum {
        O_MESSAGE = 256,
        O_MAX_TOKENS,
        O_IDLE,
        O_SPREAD,
        O_EXPECT,
        O_TOKEN,
        O_AUTH,
        O_RAMP,
        O_THREADS,
        O_SRC,
        O_TIMEOUT,
        O_HS_TIMEOUT,
        O_PID,
        O_JSON,
        O_LABEL,
        O_PROGRESS,
        O_NO_PROGRESS,
        O_CUT_AT,
        O_CUT_AFTER,
        O_VERIFY,
        O_DEFLATE,
        O_JWT_SECRET,
        O_JWT_SUB,
        O_METRICS,
        O_METRICS_IVL,
        O_DIALECT,
        O_NSP,
        O_PROVIDER,
        O_HELP
    };
    static const struct option longopts[] = {
        {"connections", required_argument, NULL, 'c'},
        {"streams", required_argument, NULL, 's'},
        {"concurrency", required_argument, NULL, 'k'},
        {"model", required_argument, NULL, 'm'},
        {"message", required_argument, NULL, O_MESSAGE},
        {"max-tokens", required_argument, NULL, O_MAX_TOKENS},
        {"idle", required_argument, NULL, O_IDLE},
        {"spread", required_argument, NULL, O_SPREAD},
        {"expect-tokens", required_argument, NULL, O_EXPECT},
        {"token", required_argument, NULL, O_TOKEN},
        {"auth", required_argument, NULL, O_AUTH},
        {"ramp", required_argument, NULL, O_RAMP},
        {"threads", required_argument, NULL, O_THREADS},
        {"source-addrs", required_argument, NULL, O_SRC},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"handshake-timeout", required_argument, NULL, O_HS_TIMEOUT},
        {"server-pid", required_argument, NULL, O_PID},
        {"json", no_argument, NULL, O_JSON},
        {"label", required_argument, NULL, O_LABEL},
        {"progress", no_argument, NULL, O_PROGRESS},
        {"no-progress", no_argument, NULL, O_NO_PROGRESS},
        {"header", required_argument, NULL, 'H'},
        {"cut-at", required_argument, NULL, O_CUT_AT},
        {"cut-after", required_argument, NULL, O_CUT_AFTER},
        {"verify-text", no_argument, NULL, O_VERIFY},
        {"deflate", no_argument, NULL, O_DEFLATE},
        {"jwt-secret", required_argument, NULL, O_JWT_SECRET},
        {"jwt-sub", required_argument, NULL, O_JWT_SUB},
        {"metrics", required_argument, NULL, O_METRICS},
        {"metrics-interval", required_argument, NULL, O_METRICS_IVL},
        {"dialect", required_argument, NULL, O_DIALECT},
        {"namespace", required_argument, NULL, O_NSP},
        {"provider", required_argument, NULL, O_PROVIDER},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){
        .connections = 10,
        .streams = 1,
        .concurrency = 1,
        .message = "benchmark",
        .auth = LG_AUTH_QUERY,
        .timeout_ms = 300000,
        .handshake_timeout_ms = 30000,
        .ramp = 200,
        .threads = 1,
        .source_addrs = -1,
        .progress = -1,
        .jwt_sub = "lg-",
        .metrics_ivl_ms = 100,
    };
    int ch;
    uint32_t u;
    long long ll;
    while ((ch = getopt_long(argc, argv, "c:s:k:m:H:h", longopts, NULL)) != -1) {
        const char *a = optarg;
        switch (ch) {
        case 'c':
            if (parse_u32(a, 1, 10000000, &o->connections) != 0)
                goto bad;
            break;
        case 's':
            if (parse_u32(a, 0, 100000000, &o->streams) != 0)
                goto bad;
            break;
        case 'k':
            if (parse_u32(a, 1, 10000, &o->concurrency) != 0)
                goto bad;
            break;
        case 'm':
            o->model = a;
            break;
        case O_MESSAGE:
            o->message = a;
            break;
        case 'H':
            if (o->nheaders == MAX_HEADERS || !valid_header(a))
                goto bad;
            o->headers[o->nheaders++] = a;
            break;
        case O_MAX_TOKENS:
            if (sl_parse_int(a, &ll) != 0 || ll < 1)
                goto bad;
            o->max_tokens = ll;
            break;
        case O_IDLE:
            if (sl_parse_duration_ms(a, &o->idle_ms) != 0)
                goto bad;
            break;
        case O_SPREAD:
            if (sl_parse_duration_ms(a, &o->spread_ms) != 0)
                goto bad;
            break;
        case O_EXPECT:
            if (sl_parse_int(a, &ll) != 0 || ll < 0)
                goto bad;
            o->expect_tokens = (uint64_t)ll;
            break;
        case O_TOKEN:
            o->token = a;
            break;
        case O_AUTH:
            o->auth_set = true;
            if (strcmp(a, "query") == 0)
                o->auth = LG_AUTH_QUERY;
            else if (strcmp(a, "header") == 0)
                o->auth = LG_AUTH_HEADER;
            else if (strcmp(a, "message") == 0)
                o->auth = LG_AUTH_MESSAGE;
            else if (strcmp(a, "none") == 0)
                o->auth = LG_AUTH_NONE;
            else
                goto bad;
            break;
        case O_RAMP:
            if (parse_u32(a, 1, 100000, &o->ramp) != 0)
                goto bad;
            break;
        case O_THREADS:
            if (parse_u32(a, 1, 256, &u) != 0)
                goto bad;
            o->threads = u;
            break;
        case O_SRC:
            if (strcmp(a, "auto") == 0) {
                o->source_addrs = -1;
            } else {
                if (parse_u32(a, 0, 254, &u) != 0)
                    goto bad;
                o->source_addrs = (int)u;
            }
            break;
        case O_TIMEOUT:
            if (sl_parse_duration_ms(a, &o->timeout_ms) != 0 || o->timeout_ms == 0)
                goto bad;
            break;
        case O_HS_TIMEOUT:
            if (sl_parse_duration_ms(a, &o->handshake_timeout_ms) != 0 ||
                o->handshake_timeout_ms == 0)
                goto bad;
            break;
        case O_PID:
            if (sl_parse_int(a, &ll) != 0 || ll < 1 || ll > 0x7fffffff)
                goto bad;
            o->server_pid = (int)ll;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_LABEL:
            o->label = a;
            break;
        case O_PROGRESS:
            o->progress = 1;
            break;
        case O_NO_PROGRESS:
            o->progress = 0;
            break;
        case O_CUT_AT:
            if (sl_parse_int(a, &ll) != 0 || ll < 1)
                goto bad;
            o->cut_at = (uint64_t)ll;
            break;
        case O_CUT_AFTER:
            if (sl_parse_duration_ms(a, &o->cut_after_ms) != 0 || o->cut_after_ms == 0)
                goto bad;
            break;
        case O_VERIFY:
            o->verify = true;
            break;
        case O_DEFLATE:
            o->deflate = true;
            break;
        case O_JWT_SECRET:
            if (*a == '\0')
                goto bad;
            o->jwt_secret = a;
            break;
        case O_JWT_SUB:
            if (strlen(a) > 100)
                goto bad;
            o->jwt_sub = a;
            break;
        case O_METRICS:
            o->metrics_url = a;
            break;
        case O_METRICS_IVL:
            if (sl_parse_duration_ms(a, &o->metrics_ivl_ms) != 0 || o->metrics_ivl_ms == 0)
                goto bad;
            break;
        case O_DIALECT:
            if (strcmp(a, "native") != 0 && lg_dialect_find(a) == NULL) {
                fprintf(stderr, "sluice-loadgen: unknown dialect %s (native, %s)\n", a,
                        lg_dialect_names());
                return -1;
            }
            o->dialect = strcmp(a, "native") == 0 ? NULL : a;
            break;
        case O_NSP:
            o->nsp = a;
            break;
        case O_PROVIDER:
            o->provider = a;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "sluice-loadgen: bad value for %s: %s\n", argv[optind - 1], a);
        return -1;
    }
    if (optind != argc - 1) {
        usage(stderr);
        return -1;
    }
    o->url = argv[optind];
    return 0;
}

/* --- target and prebuilt requests -------------------------------------------------------- */

struct url {
    bool ws;
    char host[256];
    int port;
    char path[2048]; /* path and query, starting with '/' */
    char hostport[300];
};

static int
parse_url(const char *s, struct url *u)
{
    const char *p;
    memset(u, 0, sizeof(*u));
    if (strncmp(s, "ws://", 5) == 0) {
        u->ws = true;
        p = s + 5;
    } else if (strncmp(s, "http://", 7) == 0) {
        p = s + 7;
    } else {
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t hp_len = slash ? (size_t)(slash - p) : strlen(p);
    if (hp_len == 0 || hp_len >= sizeof(u->hostport))
        return -1;
    memcpy(u->hostport, p, hp_len);
    u->hostport[hp_len] = '\0';
    const char *h = u->hostport;
    const char *colon;
    size_t hl;
    if (h[0] == '[') {
        const char *rb = strchr(h, ']');
        if (rb == NULL)
            return -1;
        hl = (size_t)(rb - h - 1);
        if (hl >= sizeof(u->host))
            return -1;
        memcpy(u->host, h + 1, hl);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(h, ':');
        hl = colon ? (size_t)(colon - h) : strlen(h);
        if (hl >= sizeof(u->host))
            return -1;
        memcpy(u->host, h, hl);
    }
    u->port = 80;
    if (colon) {
        long long port;
        if (sl_parse_int(colon + 1, &port) != 0 || port < 1 || port > 65535)
            return -1;
        u->port = (int)port;
    }
    snprintf(u->path, sizeof(u->path), "%s", slash ? slash : "/");
    return 0;
}

static int
resolve_addr(const struct url *u, struct sockaddr_storage *out)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", u->port);
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        fprintf(stderr, "sluice-loadgen: cannot resolve %s: %s\n", u->host, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* The upgrade request's fixed parts: wsconn.c puts each connection's token between them;
 * and the request of a stream, native or in the dialect's words. */
static int
build_native(struct lg_config *cfg, const struct options *o, const struct url *u)
{
    struct sl_buf *h = &cfg->hs_path;
    sl_buf_append_str(h, "GET ");
    bool sio = cfg->dialect && lg_dialect_sio(cfg->dialect);
    if (sio) {
        /* Engine.IO v4 straight on its WebSocket transport, as socket.io-client with
         * transports: ['websocket']. A bare URL means the default path. */
        sl_buf_append_str(h, strcmp(u->path, "/") == 0 ? "/socket.io/" : u->path);
        sl_buf_append_str(h, strchr(u->path, '?') ? "&EIO=4&transport=websocket"
                                                  : "?EIO=4&transport=websocket");
        if (cfg->auth == LG_AUTH_QUERY)
            sl_buf_append_str(h, "&token=");
    } else {
        sl_buf_append_str(h, u->path);
        if (cfg->auth == LG_AUTH_QUERY)
            sl_buf_append_str(h, strchr(u->path, '?') ? "&token=" : "?token=");
    }
    sl_buf_printf(&cfg->hs_rest,
                  " HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\nUser-Agent: sluice-loadgen\r\n",
                  u->hostport);
    append_headers(&cfg->hs_rest, o);
    if (o->deflate)
        sl_buf_append_str(
            &cfg->hs_rest,
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");

    if (cfg->dialect) {
        char err[200];
        struct lg_request_opts ro = {
            .model = o->model,
            .message = o->message,
            .provider = o->provider,
            .max_tokens = o->max_tokens,
            .nsp = o->nsp,
        };
        if (lg_dialect_build(cfg->dialect, &ro, cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "sluice-loadgen: %s\n", err);
            return -1;
        }
        return 0;
    }
    cfg->chat_id = true;
    SL_JSONW_LIT(&cfg->chat_head, "{\"type\":\"chat\",\"id\":\"");
    struct sl_buf *t = &cfg->chat_tail;
    sl_buf_append_byte(t, '"');
    if (o->model) {
        SL_JSONW_LIT(t, ",\"model\":");
        sl_jsonw_cstr(t, o->model);
    }
    SL_JSONW_LIT(t, ",\"message\":");
    sl_jsonw_cstr(t, o->message);
    if (o->max_tokens > 0) {
        SL_JSONW_LIT(t, ",\"max_tokens\":");
        sl_jsonw_int(t, o->max_tokens);
    }
    sl_buf_append_byte(t, '}');
    return 0;
}

/*
 * The request of the http:// mode, sent as is for every stream: the same body whichever
 * server answers (the mock reads the scenario from the model name; sluice and other
 * gateways map the name to theirs), with the token as a bearer and the -H headers.
 */
static void
build_sse(struct lg_config *cfg, const struct options *o, const struct url *u)
{
    struct sl_buf body = SL_BUF_INIT;
    SL_JSONW_LIT(&body, "{\"model\":");
    sl_jsonw_cstr(&body, o->model ? o->model : "synth:tokens=20,ts=1");
    SL_JSONW_LIT(&body, ",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                        "\"messages\":[{\"role\":\"user\",\"content\":");
    sl_jsonw_cstr(&body, o->message);
    SL_JSONW_LIT(&body, "}]");
    if (o->max_tokens > 0) {
        SL_JSONW_LIT(&body, ",\"max_tokens\":");
        sl_jsonw_int(&body, o->max_tokens);
    }
    sl_buf_append_byte(&body, '}');

    char path[2100];
    size_t pl = strlen(u->path);
    static const char suffix[] = "/chat/completions";
    if (strcmp(u->path, "/") == 0)
        snprintf(path, sizeof(path), "/v1/chat/completions");
    else if (pl >= sizeof(suffix) - 1 && strcmp(u->path + pl - (sizeof(suffix) - 1), suffix) == 0)
        snprintf(path, sizeof(path), "%s", u->path);
    else
        snprintf(path, sizeof(path), "%.*s%s", (int)(u->path[pl - 1] == '/' ? pl - 1 : pl), u->path,
                 suffix);
    sl_buf_printf(&cfg->request,
                  "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-loadgen\r\n"
                  "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                  "Accept: text/event-stream\r\nContent-Length: %zu\r\n",
                  path, u->hostport, o->token ? o->token : "x", sl_buf_len(&body));
    append_headers(&cfg->request, o);
    SL_JSONW_LIT(&cfg->request, "\r\n");
    sl_buf_append(&cfg->request, sl_buf_ptr(&body), sl_buf_len(&body));
    sl_buf_free(&body);
}

/* Connections to one loopback destination beyond the ephemeral port range need more
 * source addresses: as many as fit, with a margin for other users of the range. */
static unsigned
auto_sources(const struct sockaddr_storage *addr, uint32_t conns)
{
    if (addr->ss_family != AF_INET)
        return 0;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
        return 0;
    unsigned lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u %u", &lo, &hi) != 2)
            lo = 32768, hi = 60999;
        fclose(f);
    }
    uint32_t per = hi > lo ? (uint32_t)((hi - lo + 1) * 9 / 10) : 1000;
    if (conns <= per)
        return 0;
    uint32_t n = (conns + per - 1) / per;
    return n > 254 ? 254 : n;
}

/* Takes all the open files the hard limit allows; 0 if conns fit. */
static int
raise_nofile(uint64_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
        fprintf(stderr,
                "sluice-loadgen: %llu connections need about %llu open files, and this process "
                "may open %llu (hard limit): use fewer connections or several load generators\n",
                (unsigned long long)(need - 64), (unsigned long long)need,
                (unsigned long long)rl.rlim_cur);
        return -1;
    }
    return 0;
}

/* --- phases ------------------------------------------------------------------------------ */

struct totals {
    uint64_t resolved, ready, failed, finished, streams_ok, streams_failed, tokens, errors, firsts;
    uint64_t cut_streams, resumes_answered;
    uint64_t last_end_us, last_resume_us;
    unsigned exited;
};

/* The largest token latency any worker saw since the last call (µs). */
static uint64_t
take_lat_max(struct app *a)
{
    uint64_t m = 0;
    for (unsigned i = 0; i < a->nworkers; i++) {
        uint64_t v = atomic_exchange(&a->workers[i]->progress.lat_max_us, 0);
        if (v > m)
            m = v;
    }
    return m;
}

static void
sum_progress(struct app *a, struct totals *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < a->nworkers; i++) {
        struct lg_progress *p = &a->workers[i]->progress;
        t->finished += atomic_load_explicit(&p->finished, memory_order_acquire);
        t->resolved += atomic_load_explicit(&p->resolved, memory_order_relaxed);
        t->ready += atomic_load_explicit(&p->ready, memory_order_relaxed);
        t->failed += atomic_load_explicit(&p->failed, memory_order_relaxed);
        t->streams_ok += atomic_load_explicit(&p->streams_ok, memory_order_relaxed);
        t->streams_failed += atomic_load_explicit(&p->streams_failed, memory_order_relaxed);
        t->tokens += atomic_load_explicit(&p->tokens, memory_order_relaxed);
        t->firsts += atomic_load_explicit(&p->firsts, memory_order_relaxed);
        t->errors += atomic_load_explicit(&p->errors, memory_order_relaxed);
        t->cut_streams += atomic_load_explicit(&p->cut_streams, memory_order_relaxed);
        t->resumes_answered += atomic_load_explicit(&p->resumes_answered, memory_order_relaxed);
        uint64_t le = atomic_load_explicit(&p->last_end_us, memory_order_relaxed);
        if (le > t->last_end_us)
            t->last_end_us = le;
        uint64_t lr = atomic_load_explicit(&p->last_resume_us, memory_order_relaxed);
        if (lr > t->last_resume_us)
            t->last_resume_us = lr;
        if (atomic_load(&p->exited))
            t->exited++;
    }
}

static void
command_all(struct app *a, enum lg_cmd cmd)
{
    for (unsigned i = 0; i < a->nworkers; i++)
        lg_worker_command(a->workers[i], cmd);
}

static void
show_progress(struct app *a, const struct totals *t, uint64_t now, bool final)
{
    if (!final && now - a->last_progress < PROGRESS_MS * 1000u)
        return;
    double dt = (double)(now - a->last_tokens_t) / 1e6;
    double rate = dt > 0 ? (double)(t->tokens - a->last_tokens) / dt : 0;
    a->last_progress = now;
    a->last_tokens = t->tokens;
    a->last_tokens_t = now;
    const char *ph = a->phase == PH_CONNECT  ? "connecting"
                     : a->phase == PH_HOLD   ? "holding"
                     : a->phase == PH_STREAM ? "streaming"
                                             : "closing";
    uint64_t lat_max = take_lat_max(a);
    fprintf(stderr,
            "%s%6.1fs %-10s conns %llu/%u ready, %llu failed | streams %llu ok, %llu failed | "
            "tokens %llu (%.0f/s, latency max %.1f ms) | errors %llu%s",
            a->tty ? "\r" : "", (double)(now - a->t_start) / 1e6, ph, (unsigned long long)t->ready,
            a->cfg.connections, (unsigned long long)t->failed, (unsigned long long)t->streams_ok,
            (unsigned long long)t->streams_failed, (unsigned long long)t->tokens,
            final ? 0.0 : rate, (double)lat_max / 1000.0, (unsigned long long)t->errors,
            a->tty ? "\033[K" : "\n");
    a->progress_shown = true;
}

/* One /metrics sample: kept as the cut's when `at_cut`, and folded into the peaks. */
static void
sample_metrics(struct app *a, uint64_t now, bool at_cut, struct lg_srvm_sample *out)
{
    struct lg_srvm_sample m;
    a->t_last_metrics = now;
    lg_srvm_fetch(&a->srvm, METRICS_TIMEOUT_MS, &m);
    if (!m.ok) {
        a->rep.srvm_failed++;
        return;
    }
    a->rep.srvm_samples++;
    if (at_cut)
        a->rep.srvm_cut = m;
    if (out)
        *out = m;
    struct lg_srvm_sample *pk = &a->rep.srvm_peak;
    for (int i = 0; i < LG_SRVM__COUNT; i++) {
        if (!pk->ok || m.v[i] > pk->v[i])
            pk->v[i] = m.v[i];
    }
    pk->ok = true;
    /* Per active stream only while at least half the run's streams are active: as streams
     * end, "active" drops at once while their journals go when the reader has consumed the
     * end (a relay round trip later), and the ratio of a few stragglers means nothing. */
    double active = m.v[LG_SRVM_STREAMS_ACTIVE], jb = m.v[LG_SRVM_JOURNAL_BYTES];
    double running = (double)a->cfg.connections * a->cfg.concurrency;
    if (active > 0 && active * 2 >= running && jb >= 0 && jb / active > a->rep.srvm_peak_per_stream)
        a->rep.srvm_peak_per_stream = jb / active;
}

/* Once every resume is answered: how long that took (the workers stamp the last answer,
 * so a main thread held up by a slow /metrics does not stretch it) and the server's CPU
 * (sampled when noticed: a little late then). */
static void
resumed_check(struct app *a, const struct totals *t)
{
    if (a->t_cut == 0 || a->rep.resumed_wall_s >= 0 || t->cut_streams == 0 ||
        t->resumes_answered < t->cut_streams)
        return;
    lg_procstat_sample(a->opt.server_pid, &a->rep.srv_resumed);
    a->rep.resumed_wall_s =
        t->last_resume_us > a->t_cut ? (double)(t->last_resume_us - a->t_cut) / 1e6 : 0;
}

/* During the stream phase: the cut when its moment comes, and the /metrics samples. */
/*
 * Every stream of the first round has its first token (or failed), or (all) the streams
 * ended before a tick saw that: the server's CPU since the streams started is a burst's.
 */
static void
sample_firsts(struct app *a, const struct totals *t, uint64_t now, bool all)
{
    if (a->rep.firsts_wall_s >= 0 ||
        (!all && t->firsts + t->streams_failed < (uint64_t)a->cfg.connections * a->cfg.concurrency))
        return;
    lg_procstat_sample(a->opt.server_pid, &a->rep.srv_firsts);
    a->rep.firsts = t->firsts;
    a->rep.firsts_wall_s = (double)(now - a->t_stream) / 1e6;
}

static void
stream_tick(struct app *a, const struct totals *t, uint64_t now)
{
    sample_firsts(a, t, now, false);
    if (a->cut_pending) {
        bool due;
        if (a->opt.cut_after_ms > 0) {
            due = now - a->t_stream >= a->opt.cut_after_ms * 1000u;
        } else {
            /* The streams running at once: K per connection. */
            uint64_t running = (uint64_t)a->cfg.connections * a->cfg.concurrency;
            due = t->tokens >= a->opt.cut_at * running;
        }
        if (due) {
            /* The server's state at the moment of the cut, just before it. */
            if (a->have_srvm)
                sample_metrics(a, now, true, NULL);
            lg_procstat_sample(a->opt.server_pid, &a->rep.srv_cut);
            a->cut_pending = false;
            a->t_cut = lg_now_us();
            a->rep.cut_at_s = (double)(a->t_cut - a->t_stream) / 1e6;
            command_all(a, LG_CMD_CUT);
            return;
        }
    }
    resumed_check(a, t);
    if (!a->have_srvm)
        return;
    /* Detached sessions only last until their resume: look often while resumes are due. */
    bool fast = a->t_cut > 0 && now - a->t_cut < METRICS_FAST_S * 1000000u &&
                (t->cut_streams == 0 || t->resumes_answered < t->cut_streams);
    if (fast || now - a->t_last_metrics >= a->opt.metrics_ivl_ms * 1000u)
        sample_metrics(a, now, false, NULL);
}

static void
begin_streams(struct app *a, uint64_t now)
{
    lg_procstat_sample(a->opt.server_pid, &a->rep.srv_connected);
    if (a->cfg.streams == 0) {
        a->rep.srv_end = a->rep.srv_connected;
        a->phase = PH_CLOSING;
        command_all(a, LG_CMD_CLOSE);
        return;
    }
    a->phase = PH_STREAM;
    a->t_stream = now;
    command_all(a, LG_CMD_STREAM);
}

static void
on_tick(uv_timer_t *h)
{
    struct app *a = h->data;
    struct totals t;
    uint64_t now = lg_now_us();
    sum_progress(a, &t);
    bool show = a->opt.progress == 1 || (a->opt.progress == -1 && a->tty);
    if (show)
        show_progress(a, &t, now, false);

    if (a->phase != PH_CLOSING && (now >= a->deadline || a->interrupted)) {
        a->rep.timed_out = true;
        a->rep.interrupted = a->interrupted;
        if (a->phase == PH_CONNECT)
            a->rep.connect_wall_s = (double)(now - a->t_start) / 1e6;
        if (a->phase == PH_STREAM)
            a->rep.stream_wall_s = (double)(now - a->t_stream) / 1e6;
        if (!a->rep.srv_connected.ok)
            lg_procstat_sample(a->opt.server_pid, &a->rep.srv_connected);
        lg_procstat_sample(a->opt.server_pid, &a->rep.srv_end);
        a->phase = PH_CLOSING;
        command_all(a, LG_CMD_ABORT);
        return;
    }
    switch (a->phase) {
    case PH_CONNECT:
        if (t.resolved < a->cfg.connections)
            return;
        a->rep.connect_wall_s = (double)(now - a->t_start) / 1e6;
        if (a->opt.idle_ms > 0) {
            a->phase = PH_HOLD;
            a->t_hold_end = now + a->opt.idle_ms * 1000u;
            return;
        }
        begin_streams(a, now);
        return;
    case PH_HOLD:
        if (now >= a->t_hold_end)
            begin_streams(a, now);
        return;
    case PH_STREAM:
        if (t.finished < a->cfg.connections) {
            stream_tick(a, &t, now);
            return;
        }
        resumed_check(a, &t);
        sample_firsts(a, &t, now, true);
        lg_procstat_sample(a->opt.server_pid, &a->rep.srv_end);
        if (a->have_srvm)
            sample_metrics(a, now, false, &a->rep.srvm_end);
        a->rep.stream_wall_s =
            t.last_end_us > a->t_stream ? (double)(t.last_end_us - a->t_stream) / 1e6 : 0;
        a->phase = PH_CLOSING;
        command_all(a, LG_CMD_CLOSE);
        return;
    case PH_CLOSING:
        if (t.exited < a->nworkers)
            return;
        if (show && a->progress_shown) {
            show_progress(a, &t, now, true);
            if (a->tty)
                fputc('\n', stderr);
        }
        uv_timer_stop(&a->tick);
        uv_close((uv_handle_t *)&a->tick, NULL);
        uv_close((uv_handle_t *)&a->sigint, NULL);
        return;
    }
}

static void
on_sigint(uv_signal_t *h, int sig)
{
    struct app *a = h->data;
    (void)sig;
    a->interrupted = true;
}

/* --- main -------------------------------------------------------------------------------- */

static int
setup(struct app *a)
{
    struct options *o = &a->opt;
    struct lg_config *cfg = &a->cfg;
    struct url u;
    if (parse_url(o->url, &u) != 0) {
        fprintf(stderr,
                "sluice-loadgen: bad URL %s (expected ws://HOST:PORT/PATH or "
                "http://HOST:PORT/PATH)\n",
                o->url);
        return -1;
    }
    if (resolve_addr(&u, &cfg->addr) != 0)
        return -1;
    cfg->mode = u.ws ? LG_MODE_NATIVE : LG_MODE_SSE;
    if (o->dialect) {
        if (cfg->mode != LG_MODE_NATIVE) {
            fprintf(stderr, "sluice-loadgen: --dialect needs a ws:// URL\n");
            return -1;
        }
        cfg->dialect = lg_dialect_find(o->dialect);
    } else if (o->nsp || o->provider) {
        fprintf(stderr, "sluice-loadgen: --namespace and --provider need --dialect\n");
        return -1;
    }
    if (o->token && o->jwt_secret) {
        fprintf(stderr, "sluice-loadgen: --token and --jwt-secret exclude each other\n");
        return -1;
    }
    if (o->cut_at > 0 && o->cut_after_ms > 0) {
        fprintf(stderr, "sluice-loadgen: --cut-at and --cut-after exclude each other\n");
        return -1;
    }
    bool cut = o->cut_at > 0 || o->cut_after_ms > 0;
    if (cut && (cfg->mode != LG_MODE_NATIVE || cfg->dialect || o->streams == 0)) {
        fprintf(stderr, "sluice-loadgen: a cut needs a ws:// URL with the native protocol and "
                        "streams to resume\n");
        return -1;
    }
    if (o->verify && o->expect_tokens == 0) {
        fprintf(stderr, "sluice-loadgen: --verify-text needs --expect-tokens\n");
        return -1;
    }
    if (o->deflate && cfg->mode != LG_MODE_NATIVE) {
        fprintf(stderr, "sluice-loadgen: --deflate is for ws:// targets\n");
        return -1;
    }
    if (o->jwt_secret && cfg->mode != LG_MODE_NATIVE) {
        fprintf(stderr, "sluice-loadgen: --jwt-secret is for ws:// URLs\n");
        return -1;
    }
    if (o->metrics_url) {
        char err[256];
        if (lg_srvm_target(o->metrics_url, &a->srvm, err, sizeof(err)) != 0) {
            fprintf(stderr, "sluice-loadgen: --metrics: %s\n", err);
            return -1;
        }
        a->have_srvm = true;
    }
    cfg->token = o->token;
    cfg->jwt_secret = o->jwt_secret;
    cfg->jwt_sub = o->jwt_sub;
    cfg->verify = o->verify;
    cfg->deflate = o->deflate;
    cfg->auth = o->token || o->jwt_secret ? o->auth : LG_AUTH_NONE;
    if (cfg->auth != LG_AUTH_NONE && !o->auth_set && cfg->dialect && lg_dialect_sio(cfg->dialect))
        cfg->auth = LG_AUTH_MESSAGE; /* the CONNECT payload, as socket.io-client sends it */
    cfg->streams = o->streams;
    cfg->concurrency = o->concurrency;
    cfg->connections = o->connections;
    if (cfg->mode == LG_MODE_SSE && o->concurrency > 1) {
        /* HTTP/1.1 has one stream per connection at a time: K connections stand for one. */
        uint64_t socks = (uint64_t)o->connections * o->concurrency;
        if (socks > 10000000 || o->streams % o->concurrency != 0) {
            fprintf(stderr, "sluice-loadgen: with an http:// URL, --streams must be a multiple "
                            "of --concurrency\n");
            return -1;
        }
        cfg->connections = (uint32_t)socks;
        cfg->streams = o->streams / o->concurrency;
        cfg->concurrency = 1;
    }
    if (cfg->concurrency > cfg->streams && cfg->streams > 0)
        cfg->concurrency = cfg->streams;
    if (cfg->concurrency == 0)
        cfg->concurrency = 1;
    cfg->spread_ms = o->spread_ms;
    cfg->ramp = o->ramp;
    cfg->threads = o->threads > cfg->connections ? cfg->connections : o->threads;
    cfg->expect_tokens = o->expect_tokens;
    cfg->handshake_timeout_ms = o->handshake_timeout_ms;
    cfg->nsrc = o->source_addrs >= 0 ? (unsigned)o->source_addrs
                                     : auto_sources(&cfg->addr, cfg->connections);
    if (raise_nofile((uint64_t)cfg->connections + 16u * cfg->threads + 64) != 0)
        return -1;
    if (cfg->mode == LG_MODE_NATIVE) {
        if (build_native(cfg, o, &u) != 0)
            return -1;
    } else {
        build_sse(cfg, o, &u);
    }

    snprintf(a->target, sizeof(a->target), "%s", o->url);
    a->rep = (struct lg_report){
        .label = o->label,
        .mode = cfg->mode == LG_MODE_SSE       ? "sse"
                : cfg->dialect == NULL         ? "native"
                : lg_dialect_sio(cfg->dialect) ? "socketio"
                                               : "ws-chat",
        .dialect = cfg->dialect               ? lg_dialect_name(cfg->dialect)
                   : cfg->mode == LG_MODE_SSE ? "openai"
                                              : "native",
        .nsp = cfg->dialect && lg_dialect_sio(cfg->dialect)
                   ? (o->nsp ? o->nsp : lg_dialect_nsp(cfg->dialect))
                   : NULL,
        .target = a->target,
        .model = o->model,
        .threads = cfg->threads,
        .connections = cfg->connections,
        .streams_per_conn = cfg->streams,
        .concurrency = cfg->concurrency,
        .idle_s = (double)o->idle_ms / 1000.0,
        .spread_s = (double)o->spread_ms / 1000.0,
        .server_pid = o->server_pid,
        .expect_tokens = o->expect_tokens,
        .verify = o->verify,
        .cut = cut,
        .cut_trigger = a->trigger,
        .cut_at_s = -1,
        .resumed_wall_s = -1,
        .firsts_wall_s = -1,
        .srvm = a->have_srvm,
        .srvm_peak_per_stream = -1,
    };
    a->cut_pending = cut;
    if (o->cut_at > 0)
        snprintf(a->trigger, sizeof(a->trigger), "%llu tokens per stream",
                 (unsigned long long)o->cut_at);
    else if (cut)
        snprintf(a->trigger, sizeof(a->trigger), "after %llu ms",
                 (unsigned long long)o->cut_after_ms);
    return 0;
}

static void
free_config(struct lg_config *cfg)
{
    sl_buf_free(&cfg->hs_path);
    sl_buf_free(&cfg->hs_rest);
    sl_buf_free(&cfg->chat_head);
    sl_buf_free(&cfg->chat_tail);
    sl_buf_free(&cfg->request);
    sl_buf_free(&cfg->sio_nsp);
}

int
main(int argc, char **argv)
{
    struct app a;
    memset(&a, 0, sizeof(a));
    signal(SIGPIPE, SIG_IGN);
    if (parse_options(argc, argv, &a.opt) != 0)
        return 2;
    if (setup(&a) != 0) {
        free_config(&a.cfg);
        return 2;
    }
    a.tty = isatty(STDERR_FILENO) != 0;
    a.loop = uv_default_loop();

    a.nworkers = a.cfg.threads;
    a.workers = sl_calloc(a.nworkers, sizeof(*a.workers));
    for (unsigned i = 0; i < a.nworkers; i++) {
        a.workers[i] = sl_malloc(sizeof(struct lg_worker));
        lg_worker_init(a.workers[i], &a.cfg, i);
    }
    double cpu0 = lg_procstat_self_cpu();
    lg_procstat_sample(a.opt.server_pid, &a.rep.srv_start);
    if (a.opt.server_pid > 0 && !a.rep.srv_start.ok)
        fprintf(stderr, "sluice-loadgen: cannot read /proc/%d; no server figures\n",
                a.opt.server_pid);
    a.t_start = lg_now_us();
    a.last_tokens_t = a.t_start;
    a.deadline = a.t_start + a.opt.timeout_ms * 1000u;
    for (unsigned i = 0; i < a.nworkers; i++) {
        if (lg_worker_start(a.workers[i]) != 0)
            sl_panic("cannot start a worker thread");
    }
    uv_timer_init(a.loop, &a.tick);
    a.tick.data = &a;
    uv_timer_start(&a.tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(a.loop, &a.sigint);
    a.sigint.data = &a;
    uv_signal_start(&a.sigint, on_sigint, SIGINT);
    uv_run(a.loop, UV_RUN_DEFAULT);

    struct lg_stats total;
    lg_stats_init(&total);
    for (unsigned i = 0; i < a.nworkers; i++) {
        lg_worker_join(a.workers[i]);
        lg_stats_merge(&total, &a.workers[i]->stats);
    }
    a.rep.loadgen_cpu_s = lg_procstat_self_cpu() - cpu0;
    /* A cut that never came, or found no stream running, tested nothing. */
    a.rep.cut_missed = a.rep.cut && !a.rep.timed_out && total.cut_streams == 0;

    if (a.opt.json) {
        struct sl_buf out = SL_BUF_INIT;
        lg_report_json(&out, &a.rep, &total);
        sl_buf_append_byte(&out, '\n');
        fwrite(sl_buf_ptr(&out), 1, sl_buf_len(&out), stdout);
        sl_buf_free(&out);
    } else {
        lg_report_table(stdout, &a.rep, &total);
    }
    fflush(stdout);
    int status = lg_report_errors(&a.rep, &total) == 0 ? 0 : 1;

    for (unsigned i = 0; i < a.nworkers; i++) {
        lg_worker_cleanup(a.workers[i]);
        free(a.workers[i]);
    }
    free(a.workers);
    uv_loop_close(a.loop);
    free_config(&a.cfg);
    return status;
}
