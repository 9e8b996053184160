#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "obs/log.h"

static void
add_provider(struct sl_config *cfg, const char *name, enum sl_provider_kind kind)
{
    cfg->providers = sl_realloc(cfg->providers, (cfg->nproviders + 1) * sizeof(*cfg->providers));
    struct sl_config_provider *p = &cfg->providers[cfg->nproviders++];
    memset(p, 0, sizeof(*p));
    p->name = sl_strdup(name);
    p->kind = kind;
    p->connect_timeout_ms = 10000;
    p->first_byte_timeout_ms = 60000;
    p->idle_timeout_ms = 60000;
    p->max_connections = 64;
    p->max_retries = 2;
    p->retry_base_ms = 250;
    p->tls_verify = true;
    p->demo_tokens_per_second = 30;
}

static void
add_model(struct sl_config *cfg, const char *name, const char *provider)
{
    cfg->models = sl_realloc(cfg->models, (cfg->nmodels + 1) * sizeof(*cfg->models));
    struct sl_config_model *m = &cfg->models[cfg->nmodels++];
    memset(m, 0, sizeof(*m));
    m->name = sl_strdup(name);
    m->provider = sl_strdup(provider);
    m->upstream_model = sl_strdup(name);
}

struct sl_config *
sl_config_new_defaults(void)
{
    struct sl_config *cfg = sl_calloc(1, sizeof(*cfg));
    cfg->listen_host = sl_strdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->workers = 0;
    cfg->web_root = sl_strdup("web");
    cfg->default_model = sl_strdup("demo");

    cfg->jwt.secret_env = sl_strdup("SLUICE_JWT_SECRET");
    cfg->jwt.algorithms = sl_malloc(sizeof(char *));
    cfg->jwt.algorithms[0] = sl_strdup("HS256");
    cfg->jwt.nalgorithms = 1;
    cfg->jwt.leeway_ms = 30000;

    cfg->limits.max_connections = 100000;
    cfg->limits.max_streams_per_connection = 8;
    cfg->limits.messages_per_minute = 60;
    cfg->limits.max_message_bytes = 1048576;
    cfg->limits.send_high_water = 1048576;
    cfg->limits.auth_timeout_ms = 10000;
    cfg->limits.max_header_bytes = 16384;
    cfg->limits.max_body_bytes = 1048576;
    cfg->limits.header_timeout_ms = 10000;
    cfg->limits.keepalive_timeout_ms = 30000;

    cfg->heartbeat.interval_ms = 25000;
    cfg->heartbeat.timeout_ms = 60000;
    cfg->resume.window_ms = 60000;
    cfg->resume.max_events = 20000;
    cfg->shutdown.drain_timeout_ms = 30000;
    cfg->shutdown.retry_after_ms = 1000;
    cfg->log.level = SL_LOG_INFO;
    cfg->log.format = SL_LOG_FORMAT_LOGFMT;

    add_provider(cfg, "demo", SL_PROVIDER_DEMO);
    add_model(cfg, "demo", "demo");
    return cfg;
}

/* Secrets and the few settings the quick start needs, until the YAML loader lands. */
static void
apply_env(struct sl_config *cfg)
{
    const char *v;
    if ((v = getenv("SLUICE_LISTEN")) != NULL && *v) {
        const char *colon = strrchr(v, ':');
        long long port;
        if (colon && sl_parse_int(colon + 1, &port) == 0 && port >= 0 && port <= 65535) {
            free(cfg->listen_host);
            cfg->listen_host = sl_strndup(v, (size_t)(colon - v));
            cfg->listen_port = (uint16_t)port;
        }
    }
    if ((v = getenv(cfg->jwt.secret_env)) != NULL && *v) {
        free(cfg->jwt.secret);
        cfg->jwt.secret = sl_strdup(v);
    }
}

int
sl_config_load(const char *path, struct sl_config **out, char *err, size_t errlen)
{
    if (path != NULL) {
        snprintf(err, errlen, "%s: configuration files are not supported yet", path);
        return -1;
    }
    struct sl_config *cfg = sl_config_new_defaults();
    apply_env(cfg);
    if (cfg->jwt.secret == NULL) {
        char secret[33];
        sl_random_id(secret, 32);
        cfg->jwt.secret = sl_strdup(secret);
        cfg->jwt.secret_generated = true;
    }
    *out = cfg;
    return 0;
}

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
sl_config_free(struct sl_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->listen_host);
    free(cfg->web_root);
    free(cfg->default_model);
    free(cfg->jwt.secret);
    free(cfg->jwt.secret_env);
    free_strv(cfg->jwt.algorithms, cfg->jwt.nalgorithms);
    free(cfg->jwt.public_key_file);
    free(cfg->jwt.public_key);
    free(cfg->jwt.issuer);
    free(cfg->jwt.audience);
    for (size_t i = 0; i < cfg->napi_keys; i++)
        free(cfg->api_keys[i].name);
    free(cfg->api_keys);
    free_strv(cfg->allowed_origins, cfg->nallowed_origins);
    free(cfg->redis.url);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        struct sl_config_provider *p = &cfg->providers[i];
        free(p->name);
        free(p->base_url);
        free(p->api_key_env);
        free(p->api_key);
        free(p->api_version);
        free(p->ca_file);
        for (size_t j = 0; j < p->nheaders; j++) {
            free(p->headers[j].name);
            free(p->headers[j].value);
        }
        free(p->headers);
    }
    free(cfg->providers);
    for (size_t i = 0; i < cfg->nmodels; i++) {
        struct sl_config_model *m = &cfg->models[i];
        free(m->name);
        free(m->provider);
        free(m->upstream_model);
        free_strv(m->fallback, m->nfallback);
    }
    free(cfg->models);
    for (size_t i = 0; i < cfg->nagents; i++) {
        free(cfg->agents[i].name);
        free(cfg->agents[i].model);
        free(cfg->agents[i].system);
    }
    free(cfg->agents);
    free(cfg);
}

const struct sl_config_provider *
sl_config_find_provider(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    return NULL;
}

const struct sl_config_model *
sl_config_find_model(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nmodels; i++)
        if (strcmp(cfg->models[i].name, name) == 0)
            return &cfg->models[i];
    return NULL;
}

const struct sl_config_agent *
sl_config_find_agent(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nagents; i++)
        if (strcmp(cfg->agents[i].name, name) == 0)
            return &cfg->agents[i];
    return NULL;
}

const char *
sl_provider_kind_name(enum sl_provider_kind kind)
{
    switch (kind) {
    case SL_PROVIDER_DEMO: return "demo";
    case SL_PROVIDER_OPENAI: return "openai";
    case SL_PROVIDER_ANTHROPIC: return "anthropic";
    case SL_PROVIDER_GEMINI: return "gemini";
    case SL_PROVIDER_OLLAMA: return "ollama";
    }
    return "unknown";
}
