/*
 * sluice: command line, start-up, signals and the drain-then-stop shutdown.
 *
 *   sluice [-c FILE] [--reuse-port]  run the gateway
 *   sluice --check-config [-c FILE]  validate the configuration and describe it
 *   sluice token --sub NAME [--ttl 1h] [-c FILE]
 *                                    print a JWT signed with the configured secret
 *
 * The main thread only starts the workers and waits for signals: the first SIGINT or
 * SIGTERM drains (no new sessions, /readyz 503, streams finish up to
 * shutdown.drain_timeout), then every client gets close 1001 and the process exits;
 * a second signal exits at once.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/util.h"
#include "config/config.h"
#include "core/server.h"
#include "limits/limits.h"
#include "memory/memory.h"
#include "obs/log.h"

#define DEV_TOKEN_TTL_MS (24ull * 3600 * 1000)

/* How often idle limits expire and changed budgets are saved (limits.h). */
#define LIMITS_TICK_MS 5000

struct app {
    struct sl_server *srv;
    uv_loop_t *loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t tick;
    uv_timer_t limits_tick; /* limits upkeep: expiry, the budgets' state file */
    uint64_t drain_started;
    int signals;
    bool stopping;
};

static void
usage(FILE *out)
{
    fputs("usage: sluice [-c FILE] [--check-config] [--reuse-port]\n"
          "       sluice token --sub NAME [--ttl DURATION] [-c FILE]\n"
          "       sluice --version\n"
          "\n"
          "  -c, --config FILE   YAML configuration (default: none; see docs/configuration.md)\n"
          "  --check-config      validate the configuration, describe it, and exit\n"
          "  --reuse-port        start even if another process listens on the address (a\n"
          "                      handover: both share it until the old one stops)\n"
          "  token               mint a JWT with the configured secret (default ttl 1h)\n",
          out);
}

/*
 * Makes limits.max_connections fit in the file limit: every connection is a descriptor, on
 * top of what the process needs anyway (sl_server_fd_budget). The soft limit is raised as
 * far as the hard one allows; if that is still too small, sluice serves as many connections
 * as fit and says so (a warning at start), rather than running into EMFILE under load; if
 * not even the process's own needs fit, it refuses to start. Returns 0, or -1 after the
 * message.
 */
static int
fit_nofile(struct sl_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    unsigned long budget = sl_server_fd_budget(cfg);
    rlim_t want = (rlim_t)budget + cfg->limits.max_connections;
    if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_cur <= budget) {
        fprintf(stderr,
                "sluice: the file limit (RLIMIT_NOFILE %llu, hard %llu) is too small: %u "
                "workers need about %lu descriptors before any client connects; raise it "
                "(ulimit -n, systemd LimitNOFILE=) or set fewer workers\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                sl_server_workers(cfg), budget);
        return -1;
    }
    unsigned fit = (unsigned)(rl.rlim_cur - budget);
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_WARN, "config.max_connections")) {
        sl_log_uint(&r, "configured", cfg->limits.max_connections);
        sl_log_uint(&r, "serving", fit);
        sl_log_uint(&r, "nofile", (unsigned long long)rl.rlim_cur);
        sl_log_uint(&r, "nofile_hard", (unsigned long long)rl.rlim_max);
        sl_log_str(&r, "reason",
                   "limits.max_connections does not fit in the file limit: serving fewer "
                   "connections; raise the limit (ulimit -n, systemd LimitNOFILE=) or lower "
                   "limits.max_connections");
        sl_log_end(&r);
    }
    cfg->limits.max_connections = fit;
    return 0;
}

/*
 * A burst of new streams allocates a few hundred KiB per hundred streams (curl handles and
 * their buffers, requests, journals) and frees most of it when they end. glibc would give
 * the top of each heap back to the kernel (trim) and the next burst would fault it in
 * again, page by page, with an mprotect per growth of a worker thread's arena: keep up to
 * 64 MiB free per heap instead, and grow the main heap 4 MiB at a time.
 */
static void
keep_heap(void)
{
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 4 << 20);
}

/* The test page directory: as configured, else next to the binary (build/../web). */
static char *
find_web_root(const char *configured)
{
    struct stat st;
    if (configured[0] == '/' || (stat(configured, &st) == 0 && S_ISDIR(st.st_mode)))
        return sl_strdup(configured);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char cand[PATH_MAX + 16];
            const char *ups[] = {"/../", "/../../"};
            for (size_t i = 0; i < SL_ARRAY_LEN(ups); i++) {
                snprintf(cand, sizeof(cand), "%s%s%s", exe, ups[i], configured);
                if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode))
                    return sl_strdup(cand);
            }
        }
    }
    return sl_strdup(configured);
}

static void
on_limits_tick(uv_timer_t *t)
{
    struct app *app = t->data;
    sl_limits_tick(app->srv->limits);
    sl_memory_sweep(app->srv->memory, sl_clock_ms()); /* ws-chat conversations idle too long */
}

static void
on_tick(uv_timer_t *t)
{
    struct app *app = t->data;
    if (!app->stopping) {
        uint64_t elapsed = uv_now(app->loop) - app->drain_started;
        unsigned active = sl_server_active_streams(app->srv);
        if (active > 0 && elapsed < app->srv->cfg->shutdown.drain_timeout_ms)
            return;
        sl_log_msg(SL_LOG_INFO, "shutdown.stop", "%u streams still running after %llu ms", active,
                   (unsigned long long)elapsed);
        app->stopping = true;
        sl_server_stop(app->srv);
    }
    if (sl_server_stopped(app->srv)) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)&app->tick, NULL);
        uv_close((uv_handle_t *)&app->limits_tick, NULL);
        uv_close((uv_handle_t *)&app->sigint, NULL);
        uv_close((uv_handle_t *)&app->sigterm, NULL);
    }
}

static void
on_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    if (++app->signals > 1) {
        sl_log_msg(SL_LOG_WARN, "shutdown.forced", "second signal %d: exiting now", signum);
        _exit(1);
    }
    sl_log_msg(SL_LOG_INFO, "shutdown.drain", "signal %d: draining for up to %llu ms", signum,
               (unsigned long long)app->srv->cfg->shutdown.drain_timeout_ms);
    sl_server_drain(app->srv);
    app->drain_started = uv_now(app->loop);
    uv_timer_start(&app->tick, on_tick, 20, 20);
}

static const char *
display_host(const char *host)
{
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        return "localhost";
    return host;
}

static void
banner(const struct sl_config *cfg, struct sl_server *srv)
{
    const char *host = display_host(cfg->listen_host);
    bool v6 = strchr(host, ':') != NULL;
    char base[300];
    snprintf(base, sizeof(base), "http://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", srv->port);
    printf("sluice %s listening on %s (%u worker%s)\n", SL_VERSION, base, srv->nworkers,
           srv->nworkers == 1 ? "" : "s");
    if (cfg->jwt.secret_generated) {
        char *tok = sl_auth_mint(srv->auth, "dev", DEV_TOKEN_TTL_MS);
        printf("no JWT secret configured: generated one for this run (set SLUICE_JWT_SECRET to "
               "keep tokens valid across restarts)\n");
        if (tok)
            printf("test page: %s/?token=%s\n", base, tok);
        free(tok);
    } else {
        printf("test page: %s/ (mint a token with: sluice token --sub NAME)\n", base);
    }
    fflush(stdout);
}

static int
run(struct sl_config *cfg)
{
    char err[512];
    char *web = find_web_root(cfg->web_root);
    struct sl_server *srv = sl_server_new(cfg, web, err, sizeof(err));
    free(web);
    if (srv == NULL) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    if (sl_server_start(srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "sluice: %s\n", err);
        sl_server_free(srv);
        return 1;
    }
    struct app app = {.srv = srv, .loop = uv_default_loop()};
    uv_signal_init(app.loop, &app.sigint);
    uv_signal_init(app.loop, &app.sigterm);
    uv_timer_init(app.loop, &app.tick);
    uv_timer_init(app.loop, &app.limits_tick);
    app.sigint.data = app.sigterm.data = app.tick.data = app.limits_tick.data = &app;
    uv_timer_start(&app.limits_tick, on_limits_tick, LIMITS_TICK_MS, LIMITS_TICK_MS);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    /* Only now: whoever waits for this line may send SIGTERM at once and expect a drain. */
    banner(cfg, srv);
    uv_run(app.loop, UV_RUN_DEFAULT);
    uv_loop_close(app.loop);
    sl_server_free(srv);
    sl_log_msg(SL_LOG_INFO, "shutdown.done", "bye");
    return 0;
}

static int
mint(struct sl_config *cfg, const char *sub, const char *ttl)
{
    uint64_t ttl_ms = 3600000;
    char err[512];
    if (sub == NULL) {
        fputs("sluice token: --sub NAME is required\n", stderr);
        return 2;
    }
    if (ttl && sl_parse_duration_ms(ttl, &ttl_ms) != 0) {
        fprintf(stderr, "sluice token: bad --ttl %s (use 30m, 1h, 7d ...)\n", ttl);
        return 2;
    }
    if (cfg->jwt.secret_generated) {
        fprintf(stderr,
                "sluice token: no JWT secret is configured (set %s or auth.jwt.secret); "
                "a token signed now would not verify on any server\n",
                cfg->jwt.secret_env);
        return 1;
    }
    struct sl_auth *a = sl_auth_new(cfg, err, sizeof(err));
    if (a == NULL) {
        fprintf(stderr, "sluice token: %s\n", err);
        return 1;
    }
    char *tok = sl_auth_mint(a, sub, ttl_ms);
    sl_auth_free(a);
    if (tok == NULL) {
        fputs("sluice token: cannot mint: HS256 must be allowed and NAME 1-127 bytes\n", stderr);
        return 1;
    }
    puts(tok);
    free(tok);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *config_path = NULL, *sub = NULL, *ttl = NULL;
    bool check = false, token = false, reuse_port = false;
    int rc = 2;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc)
            config_path = argv[++i];
        else if (strcmp(a, "--check-config") == 0)
            check = true;
        else if (strcmp(a, "--reuse-port") == 0)
            reuse_port = true;
        else if (strcmp(a, "token") == 0 && i == 1)
            token = true;
        else if (token && strcmp(a, "--sub") == 0 && i + 1 < argc)
            sub = argv[++i];
        else if (token && strcmp(a, "--ttl") == 0 && i + 1 < argc)
            ttl = argv[++i];
        else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("sluice %s\n", SL_VERSION);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "sluice: unknown argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }

    char err[512];
    struct sl_config *cfg = NULL;
    if (sl_config_load(config_path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    sl_log_setup(cfg->log.level, cfg->log.format == SL_LOG_FORMAT_JSON);
    if (reuse_port)
        cfg->listen_reuse = true;

    if (check) {
        struct sl_auth *a = sl_auth_new(cfg, err, sizeof(err));
        if (a == NULL) {
            fprintf(stderr, "sluice: %s\n", err);
            rc = 1;
        } else {
            sl_auth_free(a);
            sl_config_describe(cfg, stdout);
            printf("configuration OK%s%s\n", config_path ? ": " : " (defaults)",
                   config_path ? config_path : "");
            rc = 0;
        }
    } else if (token) {
        rc = mint(cfg, sub, ttl);
    } else {
        signal(SIGPIPE, SIG_IGN);
        keep_heap();
        rc = fit_nofile(cfg) == 0 ? run(cfg) : 1;
    }
    sl_config_free(cfg);
    return rc;
}
