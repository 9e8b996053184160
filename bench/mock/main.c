/*
 * sluice-mock: the mock LLM upstream for the end-to-end tests and the benchmark.
 *
 *     sluice-mock [--listen 127.0.0.1:0] [--fixtures DIR] [--log-cap N] [--log-level L]
 *
 * Prints "listening <host>:<port>" on stdout once bound, serves until SIGTERM/SIGINT,
 * then closes every connection, frees everything and exits 0. docs/mock.md has the rest.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "base/util.h"
#include "net/loop.h"
#include "obs/log.h"
#include "server.h"

struct app {
    struct sl_loop *loop;
    uv_signal_t sigterm, sigint;
    struct mock_server *server;
};

static void
usage(FILE *f)
{
    fputs("usage: sluice-mock [--listen HOST:PORT] [--fixtures DIR] [--log-cap N]\n"
          "                   [--log-level debug|info|warn|error]\n"
          "  --listen     address to bind (default 127.0.0.1:0, port 0 = any free port)\n"
          "  --fixtures   upstream fixture directory (default ../shared/upstream-fixtures)\n"
          "  --log-cap    requests kept for /_mock/log (default 10000)\n"
          "Prints 'listening HOST:PORT' on stdout when ready. See docs/mock.md.\n",
          f);
}

static void
on_signal(uv_signal_t *h, int signum)
{
    struct app *a = h->data;
    (void)signum;
    mock_server_stop(a->server);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    sl_loop_stop(a->loop);
}

/* Many concurrent streams need many descriptors: take all the hard limit allows. */
static void
raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            sl_log_msg(SL_LOG_WARN, "mock.rlimit", "cannot raise RLIMIT_NOFILE");
    }
}

/* "127.0.0.1:8080" or "[::1]:0" -> host (copied into host[n]) and port. */
static int
parse_listen(const char *s, char *host, size_t n, int *port)
{
    const char *colon = strrchr(s, ':');
    long long p;
    if (!colon || sl_parse_int(colon + 1, &p) != 0 || p < 0 || p > 65535)
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= n)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int
main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    const char *fixtures = "../shared/upstream-fixtures";
    const char *level = "warn";
    long long log_cap = 10000;
    char host[256], err[512];
    int port = 0, bound = 0, rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (!val) {
            usage(stderr);
            return 2;
        }
        if (strcmp(arg, "--listen") == 0) {
            listen = val;
        } else if (strcmp(arg, "--fixtures") == 0) {
            fixtures = val;
        } else if (strcmp(arg, "--log-level") == 0) {
            level = val;
        } else if (strcmp(arg, "--log-cap") == 0) {
            if (sl_parse_int(val, &log_cap) != 0 || log_cap < 1 || log_cap > 10000000) {
                fprintf(stderr, "sluice-mock: bad --log-cap %s\n", val);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (parse_listen(listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "sluice-mock: bad --listen %s\n", listen);
        return 2;
    }
    int lv = sl_log_level_from_name(level);
    if (lv < 0) {
        fprintf(stderr, "sluice-mock: bad --log-level %s\n", level);
        return 2;
    }
    sl_log_setup(lv, false);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    struct app a;
    memset(&a, 0, sizeof(a));
    a.loop = sl_loop_new();
    struct mock_server_opts o = {
        .host = host, .port = port, .fixtures_dir = fixtures, .log_cap = (size_t)log_cap};
    a.server = mock_server_start(a.loop, &o, &bound, err, sizeof(err));
    if (!a.server) {
        fprintf(stderr, "sluice-mock: %s\n", err);
        sl_loop_stop(a.loop);
        sl_loop_run(a.loop);
        goto out;
    }
    uv_loop_t *uv = sl_loop_uv(a.loop);
    uv_signal_init(uv, &a.sigterm);
    uv_signal_init(uv, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);

    printf("listening %s%s%s:%d\n", strchr(host, ':') ? "[" : "", host,
           strchr(host, ':') ? "]" : "", bound);
    fflush(stdout);

    sl_loop_run(a.loop);
    mock_server_free(a.server);
    rc = 0;
out:
    sl_loop_free(a.loop);
    return rc;
}
