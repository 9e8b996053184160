/*
 * Configuration: the YAML file, environment overrides and the defaults of DESIGN.md.
 *
 * A struct sl_config is built once at start-up (sl_config_load) and is read-only
 * afterwards: every worker thread reads it without locks. It owns all its strings.
 * Keys and their meaning are documented in docs/configuration.md; the environment
 * override of a key is SLUICE_ followed by its path in upper case with '.' -> '_'
 * (limits.max_connections -> SLUICE_LIMITS_MAX_CONNECTIONS), plus the short forms
 * SLUICE_LISTEN, SLUICE_WORKERS and SLUICE_JWT_SECRET. providers, models, agents and
 * auth.api_keys come from the file only.
 *
 * Invariants after a successful load (other modules may rely on them):
 * - listen_host is a numeric IPv4 or IPv6 address without brackets ("0.0.0.0" for
 *   ":8080", "127.0.0.1" for "localhost"), web_root, default_model and jwt.secret_env
 *   are never NULL; default_model names a model.
 * - jwt.algorithms holds only HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512;
 *   it may be empty (JWTs disabled). jwt.secret is non-NULL whenever an HS* algorithm is
 *   listed; jwt.public_key holds the PEM text whenever an RS* / ES* one is.
 * - allowed_origins holds "*" or "scheme://host[:port]" strings.
 * - Every model's provider names a provider, every fallback names a model, the fallback
 *   graph has no cycle, every agent's model names a model. A "demo" provider and a "demo"
 *   model always exist (a file may redefine them).
 * - Every provider but kind demo has a base_url without a trailing '/'. api_key is NULL
 *   when no key was found: requests to that provider should fail with UPSTREAM_AUTH.
 * - heartbeat.timeout_ms > heartbeat.interval_ms.
 * - socketio.path starts and ends with '/'; every namespace name starts with '/' and every
 *   dialect is one of native, chat, llm, stream, ai.
 * - Every API key's tier names a tier of limits.tiers.
 * - A provider's default_model, when not NULL, names a model of that provider.
 * - ws_chat.path starts with '/' and is none of sluice's own paths.
 */
#ifndef SL_CONFIG_CONFIG_H
#define SL_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sl_provider_kind {
    SL_PROVIDER_DEMO,
    SL_PROVIDER_OPENAI,
    SL_PROVIDER_ANTHROPIC,
    SL_PROVIDER_GEMINI,
    SL_PROVIDER_OLLAMA,
};

enum sl_log_format { SL_LOG_FORMAT_LOGFMT, SL_LOG_FORMAT_JSON };

struct sl_config_header {
    char *name;
    char *value;
};

/* Which client serves a provider at an http:// base URL (https:// is always curl's). */
enum sl_http_client { SL_HTTP_CLIENT_BUILTIN, SL_HTTP_CLIENT_CURL };

struct sl_config_provider {
    char *name;                       /* key under providers: */
    enum sl_provider_kind kind;       /* kind: demo | openai | anthropic | gemini | ollama */
    char *base_url;                   /* default per kind; NULL for demo */
    char *api_key_env;                /* name of the environment variable holding the key */
    char *api_key;                    /* resolved from api_key_env or api_key; never logged */
    char *api_version;                /* anthropic-version header (anthropic only) */
    struct sl_config_header *headers; /* extra request headers */
    size_t nheaders;
    uint64_t connect_timeout_ms;    /* default 10s */
    uint64_t first_byte_timeout_ms; /* default 60s */
    uint64_t idle_timeout_ms;       /* default 60s: max silence between chunks */
    unsigned max_connections;       /* per worker, default 1024 */
    unsigned max_queued;            /* streams waiting for a connection, per worker, default 1024 */
    unsigned min_idle;              /* idle connections kept warm per worker, default 0 */
    unsigned max_retries;           /* retries before the first token, default 2 */
    uint64_t retry_base_ms;         /* first backoff, default 250ms, jittered, doubled */
    bool tls_verify;                /* default true */
    enum sl_http_client http_client; /* http:// base URLs: builtin (h1.c) or curl */
    char *ca_file;                   /* optional CA bundle */
    double demo_tokens_per_second;   /* demo only, default 30 */
    /*
     * The model of a request that names this provider only (the llm dialect's `provider`):
     * a model whose provider is this one; default the first such model, NULL if none.
     */
    char *default_model;
};

struct sl_config_model {
    char *name;           /* what clients ask for */
    char *provider;       /* key of a provider */
    char *upstream_model; /* what the provider is asked for; default: name */
    char **fallback;      /* model names tried when this one fails before the first token */
    size_t nfallback;
    double price_input_per_1m;  /* USD per million input tokens */
    double price_output_per_1m; /* USD per million output tokens */
    unsigned max_tokens;        /* default max_tokens when the client sends none (0: provider's) */
};

struct sl_config_agent {
    char *name;
    char *model;
    char *system;
    double temperature;
    bool has_temperature;
    unsigned max_tokens; /* 0: not set */
};

/* auth of a Socket.IO namespace */
enum sl_nsp_auth { SL_NSP_AUTH_REQUIRED, SL_NSP_AUTH_NONE };

struct sl_config_namespace {
    char *name;      /* "/", "/stream": the key under socketio.namespaces */
    char **dialects; /* client dialects served there (DIALECTS.md) */
    size_t ndialects;
    int auth;      /* enum sl_nsp_auth, default required */
    char **models; /* allowed models or agents; none: any */
    size_t nmodels;
};

struct sl_config_apikey {
    char *name;
    uint8_t sha256[32];
    char *tier; /* a name under limits.tiers, or NULL */
};

/* A tier's value that was not given: the global one applies (src/limits resolves it). */
#define SL_CONFIG_UNSET ((unsigned)-1)

/* limits.tiers.<name>: per-identity limits for the identities of that tier. */
#define SL_CONFIG_TIER_NAME_MAX 63
struct sl_config_tier {
    char *name;
    unsigned messages_per_minute;      /* SL_CONFIG_UNSET: limits.messages_per_minute */
    unsigned max_streams_per_user;     /* SL_CONFIG_UNSET: limits.max_streams_per_user */
    unsigned max_connections_per_user; /* SL_CONFIG_UNSET: limits.max_connections_per_user */
    unsigned tokens_per_minute;        /* SL_CONFIG_UNSET: limits.tokens_per_minute */
    double budget_usd_per_day;         /* < 0: budgets.usd_per_day */
    double budget_usd_per_month;       /* < 0: budgets.usd_per_month */
};

struct sl_config {
    /* listen: host:port */
    char *listen_host;
    uint16_t listen_port;
    unsigned workers;    /* workers: auto (0) or a number */
    char *web_root;      /* web_root: directory of the test page, default "web" */
    char *default_model; /* default_model: used when a request names none, default "demo" */
    bool listen_reuse;   /* listen_reuse: share the address with another process (handover) */

    struct {
        char *secret;          /* resolved HMAC secret (HS*) */
        char *secret_env;      /* default SLUICE_JWT_SECRET */
        bool secret_generated; /* no secret anywhere: a random one was made at start */
        char **algorithms;     /* default [HS256] */
        size_t nalgorithms;
        char *public_key_file; /* PEM for RS256/ES256 */
        char *public_key;      /* its content */
        char *issuer;          /* optional iss check */
        char *audience;        /* optional aud check */
        uint64_t leeway_ms;    /* clock skew allowed on exp/nbf, default 30s */
        bool require_exp;      /* refuse tokens without exp, default true */
    } jwt;
    struct sl_config_apikey *api_keys;
    size_t napi_keys;
    char **allowed_origins;
    size_t nallowed_origins;
    struct {
        unsigned burst;        /* default 10; 0: off */
        uint64_t refill_ms;    /* default 6s */
        uint64_t max_block_ms; /* default 15m */
    } auth_throttle;

    struct {
        unsigned max_connections;            /* default 100000 */
        unsigned max_streams_per_connection; /* default 8 */
        unsigned messages_per_minute;        /* default 60 */
        uint64_t max_message_bytes;          /* default 1 MiB */
        uint64_t send_high_water;            /* default 1 MiB */
        uint64_t auth_timeout_ms;            /* default 10s */
        uint64_t max_header_bytes;           /* request line + headers, default 16 KiB */
        uint64_t max_body_bytes;             /* HTTP request bodies, default 1 MiB */
        uint64_t header_timeout_ms;          /* slowloris guard, default 10s */
        uint64_t keepalive_timeout_ms;       /* idle keep-alive HTTP, default 30s */
        uint64_t stream_timeout_ms;          /* a stream's total time, default 10m; 0: none */
        /* Per identity (user, or anon:<IP>), across connections and workers; 0: no limit. */
        unsigned max_streams_per_user;     /* default 64 */
        unsigned max_connections_per_user; /* default 256 */
        unsigned max_connections_per_ip;   /* default 0 */
        unsigned tokens_per_minute;        /* input + output, default 0 */
        unsigned max_identities;           /* identities tracked at once, default 100000 */
        struct sl_config_tier *tiers;
        size_t ntiers;
        uint64_t body_timeout_ms;  /* HTTP request body after its head, default 10s */
        uint64_t send_timeout_ms;  /* queued output without progress: reset, 30s */
        uint64_t max_queued_bytes; /* reading stops above; 0: 2 x send_high_water */
    } limits;

    struct {
        double usd_per_day;   /* per identity per UTC day, default 0: none */
        double usd_per_month; /* per identity per UTC month, default 0: none */
        char *state_file;     /* spend kept across restarts; NULL: not kept */
    } budgets;

    struct {
        uint64_t interval_ms; /* default 25s */
        uint64_t timeout_ms;  /* default 60s */
    } heartbeat;

    struct {
        uint64_t window_ms;  /* default 60s */
        unsigned max_events; /* default 20000 */
        uint64_t max_bytes;  /* default 1 MiB */
    } resume;

    struct {
        char *url;                  /* NULL: single node */
        char *node;                 /* this node's name; NULL: host name and a random suffix */
        uint64_t flush_interval_ms; /* journal records batched per stream, default 20 ms */
        uint64_t timeout_ms;        /* connect and handshake deadline, default 2 s */
    } redis;

    struct {
        uint64_t drain_timeout_ms; /* default 30s */
        uint64_t retry_after_ms;   /* hint in the 1001 close reason, default 1s */
    } shutdown;

    struct {
        int level; /* enum sl_log_level, default info */
        enum sl_log_format format;
    } log;

    struct {
        bool echo; /* /ws/echo for the Autobahn suite */
    } debug;

    /* permessage-deflate on every WebSocket (native, ws-chat, Socket.IO, /ws/echo). */
    struct {
        bool permessage_deflate;       /* default false */
        unsigned deflate_window_bits;  /* our compressor's window, 9..15, default 11 */
        unsigned deflate_mem_level;    /* zlib memLevel 1..9, default 4 */
        unsigned deflate_level;        /* zlib level 1..9, default 6 */
        bool deflate_context_takeover; /* keep history across messages, default true */
    } websocket;

    struct {
        char *path;                             /* default /socket.io/ */
        uint64_t ping_interval_ms;              /* default 25s */
        uint64_t ping_timeout_ms;               /* default 20s */
        uint64_t max_payload;                   /* default 1000000 bytes */
        uint64_t connect_timeout_ms;            /* default 45s */
        bool recovery;                          /* default true */
        struct sl_config_namespace *namespaces; /* default /, /stream, /ai (DESIGN.md) */
        size_t nnamespaces;
    } socketio;

    struct {
        char *path; /* default /ws/chat: the ws-chat dialect's WebSocket (seed 002) */
        struct {
            unsigned max_turns;         /* messages kept per conversation, default 50 */
            uint64_t max_bytes;         /* text kept per conversation, default 64 KiB */
            uint64_t idle_ttl_ms;       /* forgotten after this long unused, default 30m */
            unsigned max_conversations; /* in the process, default 10000 (idle-longest goes) */
        } memory;
    } ws_chat;

    struct sl_config_provider *providers;
    size_t nproviders;
    struct sl_config_model *models;
    size_t nmodels;
    struct sl_config_agent *agents;
    size_t nagents;
};

/* Why sl_config_load failed (the config layer's range of base/codes.h). */
enum sl_config_error {
    SL_CONFIG_EFILE = -201, /* "unreadable configuration file": missing, or not one YAML document */
    SL_CONFIG_EVALUE = -202, /* "invalid value in the configuration file": a key or value refused */
    SL_CONFIG_EENV = -203,   /* "invalid value in the environment": a SLUICE_* variable refused */
    SL_CONFIG_ERULE = -204,  /* "inconsistent configuration": a rule across keys (references,
                                cycles, files named by keys, heartbeat order) */
};

/* The text of an enum sl_config_error ("unknown error" for anything else). */
const char *sl_config_strerror(int code);

/*
 * Builds the configuration: defaults, then the YAML file at path (NULL: no file), then
 * the environment, then the checks that span keys. On error returns a negative enum
 * sl_config_error and writes one line into err (size errlen) naming where ("file:line: ",
 * or "VARIABLE: " for a value from the environment) and the full key path, e.g.
 *   sluice.yaml:12: limits.max_streams_per_connection: expected a positive integer, got "many"
 * *out is then untouched and nothing is leaked. On success returns 0 and *out owns
 * everything; free it with sl_config_free(). Reads the environment (getenv): call before
 * starting threads.
 */
int sl_config_load(const char *path, struct sl_config **out, char *err, size_t errlen);

/*
 * The built-in defaults only: no file, no environment, no generated secret (jwt.secret
 * is NULL), just the demo provider and model. Used by tests.
 */
struct sl_config *sl_config_new_defaults(void);

/*
 * A short human-readable summary for `sluice --check-config`: listen address, workers,
 * auth mode, limits, providers (whether their key is present, never the key), models,
 * agents, then warnings (a provider without a key, a generated JWT secret, TLS
 * verification off, ...). Secrets and Redis passwords are never printed.
 */
void sl_config_describe(const struct sl_config *cfg, FILE *out);

/*
 * Writes the Markdown reference tables of every key (type, default, environment
 * variable, meaning), the provider kinds and the default models: the generated part of
 * docs/configuration.md, which a unit test keeps in step with this output.
 */
void sl_config_print_keys(FILE *out);

void sl_config_free(struct sl_config *cfg);

const struct sl_config_provider *sl_config_find_provider(const struct sl_config *cfg,
                                                         const char *name);
const struct sl_config_model *sl_config_find_model(const struct sl_config *cfg, const char *name);
const struct sl_config_agent *sl_config_find_agent(const struct sl_config *cfg, const char *name);
const struct sl_config_tier *sl_config_find_tier(const struct sl_config *cfg, const char *name);

const char *sl_provider_kind_name(enum sl_provider_kind kind);

#endif
