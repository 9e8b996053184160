/*
 * The public face of the configuration (config.h): the defaults, the load in its order
 * (the file through the key tables, the environment, the rules across keys), freeing and
 * lookups. Every setting is a row of keys.c; the loader's parts are described in ctx.h.
 *
 * Loading builds a fresh struct from the defaults and applies the file, then the
 * environment, then the rules. Any error frees the whole struct: nothing is half-applied.
 */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "config/ctx.h"
#include "config/entries.h"
#include "config/env.h"
#include "config/rules.h"
#include "config/walk.h"
#include "obs/log.h"

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
    cfg->jwt.require_exp = true;

    cfg->limits.max_connections = 100000;
    cfg->limits.max_streams_per_connection = 8;
    cfg->limits.messages_per_minute = 60;
    cfg->limits.max_message_bytes = 1048576;
    cfg->websocket.deflate_window_bits = 11;
    cfg->websocket.deflate_mem_level = 4;
    cfg->websocket.deflate_level = 6;
    cfg->websocket.deflate_context_takeover = true;
    cfg->limits.send_high_water = 1048576;
    cfg->limits.auth_timeout_ms = 10000;
    cfg->limits.max_header_bytes = 16384;
    cfg->limits.max_body_bytes = 1048576;
    cfg->limits.header_timeout_ms = 10000;
    cfg->limits.keepalive_timeout_ms = 30000;
    cfg->limits.stream_timeout_ms = 600000;
    cfg->auth_throttle.burst = 10;
    cfg->auth_throttle.refill_ms = 6000;
    cfg->auth_throttle.max_block_ms = 15 * 60 * 1000;
    cfg->limits.max_streams_per_user = 64;
    cfg->limits.max_connections_per_user = 256;
    cfg->limits.max_identities = 100000;
    cfg->budgets.state_file = sl_strdup("sluice-budgets.json");
    cfg->limits.body_timeout_ms = 10000;
    cfg->limits.send_timeout_ms = 30000;

    cfg->heartbeat.interval_ms = 25000;
    cfg->heartbeat.timeout_ms = 60000;
    cfg->resume.window_ms = 60000;
    cfg->resume.max_events = 20000;
    cfg->resume.max_bytes = 1048576;
    cfg->redis.flush_interval_ms = 20;
    cfg->redis.timeout_ms = 2000;
    cfg->shutdown.drain_timeout_ms = 30000;
    cfg->shutdown.retry_after_ms = 1000;
    cfg->log.level = SL_LOG_INFO;
    cfg->log.format = SL_LOG_FORMAT_LOGFMT;

    cfg->socketio.path = sl_strdup("/socket.io/");
    cfg->socketio.ping_interval_ms = 25000;
    cfg->socketio.ping_timeout_ms = 20000;
    cfg->socketio.max_payload = 1000000;
    cfg->socketio.connect_timeout_ms = 45000;
    cfg->socketio.recovery = true;
    cfg->ws_chat.path = sl_strdup("/ws/chat");
    cfg->ws_chat.memory.max_turns = 50;
    cfg->ws_chat.memory.max_bytes = 65536;
    cfg->ws_chat.memory.idle_ttl_ms = 30 * 60000;
    cfg->ws_chat.memory.max_conversations = 10000;
    static const char *const main_nsp[] = {"chat", "llm"}, *const stream_nsp[] = {"stream"},
                             *const ai_nsp[] = {"ai"};
    sl_config_namespace_add(cfg, "/", main_nsp, 2);
    sl_config_namespace_add(cfg, "/stream", stream_nsp, 1);
    sl_config_namespace_add(cfg, "/ai", ai_nsp, 1);
    static const char *const native_nsp[] = {"native"};
    sl_config_namespace_add(cfg, "/sluice", native_nsp, 1);

    /* The demo provider exists in every configuration unless a file redefines it. */
    cfg->providers = sl_calloc(1, sizeof(*cfg->providers));
    sl_config_provider_init(&cfg->providers[0], "demo", SL_PROVIDER_DEMO);
    cfg->nproviders = 1;
    cfg->models = sl_calloc(1, sizeof(*cfg->models));
    cfg->models[0].name = sl_strdup("demo");
    cfg->models[0].provider = sl_strdup("demo");
    cfg->models[0].upstream_model = sl_strdup("demo");
    cfg->nmodels = 1;
    return cfg;
}

const char *
sl_config_strerror(int code)
{
    /* clang-format off */
    switch (code) {
    case 0: return "ok";
    case SL_CONFIG_EFILE: return "unreadable configuration file";
    case SL_CONFIG_EVALUE: return "invalid value in the configuration file";
    case SL_CONFIG_EENV: return "invalid value in the environment";
    case SL_CONFIG_ERULE: return "inconsistent configuration";
    }
    /* clang-format on */
    return "unknown error";
}

int
sl_config_load(const char *path, struct sl_config **out, char *err, size_t errlen)
{
    int rc = SL_CONFIG_EFILE;
    struct sl_config_ctx *c = sl_calloc(1, sizeof(*c));
    c->file = path;
    c->err = err;
    c->errlen = errlen;
    c->load_section = sl_config_entries_load;
    if (errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; i < SL_CONFIG_NTOP; i++)
        sl_config_env_name(c->envname[i], sizeof(c->envname[i]), sl_config_top_keys[i].path);
    c->cfg = sl_config_new_defaults();

    if (path != NULL) {
        if (sl_yaml_load_file(&c->y, path, err, errlen) != 0)
            goto out;
        rc = SL_CONFIG_EVALUE;
        const yaml_node_t *root = sl_yaml_root(&c->y);
        if (root != NULL && sl_config_walk_map(c, root, "", "", sl_config_top_keys, SL_CONFIG_NTOP,
                                               c->cfg, c->top_node) != 0)
            goto out;
    }
    rc = SL_CONFIG_EENV;
    if (sl_config_env_apply(c) != 0)
        goto out;
    rc = SL_CONFIG_ERULE;
    if (sl_config_rules_apply(c) != 0)
        goto out;
    *out = c->cfg;
    c->cfg = NULL;
    rc = 0;
out:
    sl_config_free(c->cfg);
    sl_yaml_cleanup(&c->y);
    free(c);
    return rc;
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
    sl_config_strv_clear(&cfg->jwt.algorithms, &cfg->jwt.nalgorithms);
    free(cfg->jwt.public_key_file);
    free(cfg->jwt.public_key);
    free(cfg->jwt.issuer);
    free(cfg->jwt.audience);
    for (size_t i = 0; i < cfg->napi_keys; i++) {
        free(cfg->api_keys[i].name);
        free(cfg->api_keys[i].tier);
    }
    free(cfg->api_keys);
    for (size_t i = 0; i < cfg->limits.ntiers; i++)
        free(cfg->limits.tiers[i].name);
    free(cfg->limits.tiers);
    free(cfg->budgets.state_file);
    sl_config_strv_clear(&cfg->allowed_origins, &cfg->nallowed_origins);
    free(cfg->redis.url);
    free(cfg->redis.node);
    for (size_t i = 0; i < cfg->nproviders; i++)
        sl_config_provider_cleanup(&cfg->providers[i]);
    free(cfg->providers);
    for (size_t i = 0; i < cfg->nmodels; i++)
        sl_config_model_cleanup(&cfg->models[i]);
    free(cfg->models);
    for (size_t i = 0; i < cfg->nagents; i++)
        sl_config_agent_cleanup(&cfg->agents[i]);
    free(cfg->agents);
    free(cfg->socketio.path);
    free(cfg->ws_chat.path);
    sl_config_namespaces_clear(cfg);
    free(cfg);
}

const struct sl_config_provider *
sl_config_find_provider(const struct sl_config *cfg, const char *name)
{
    ptrdiff_t i = sl_config_provider_index(cfg, name);
    return i >= 0 ? &cfg->providers[i] : NULL;
}

const struct sl_config_model *
sl_config_find_model(const struct sl_config *cfg, const char *name)
{
    ptrdiff_t i = sl_config_model_index(cfg, name);
    return i >= 0 ? &cfg->models[i] : NULL;
}

const struct sl_config_agent *
sl_config_find_agent(const struct sl_config *cfg, const char *name)
{
    ptrdiff_t i = sl_config_agent_index(cfg, name);
    return i >= 0 ? &cfg->agents[i] : NULL;
}

const char *
sl_provider_kind_name(enum sl_provider_kind kind)
{
    switch (kind) {
    case SL_PROVIDER_DEMO:
        return "demo";
    case SL_PROVIDER_OPENAI:
        return "openai";
    case SL_PROVIDER_ANTHROPIC:
        return "anthropic";
    case SL_PROVIDER_GEMINI:
        return "gemini";
    case SL_PROVIDER_OLLAMA:
        return "ollama";
    }
    return "unknown";
}

const struct sl_config_tier *
sl_config_find_tier(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->limits.ntiers; i++)
        if (strcmp(cfg->limits.tiers[i].name, name) == 0)
            return &cfg->limits.tiers[i];
    return NULL;
}
