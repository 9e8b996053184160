/*
 * The rules that span keys, run after the file and the environment. See rules.h.
 */
#include "config/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/pem.h"
#include "base/util.h"
#include "config/entries.h"

/* A larger file is not a CA bundle (Debian's whole system bundle is about 200 KiB). */
#define CA_FILE_MAX (16u << 20)

static bool
env_set(const char *name)
{
    const char *v = name ? getenv(name) : NULL;
    return v != NULL && *v != '\0';
}

/* With no providers section: demo plus every kind whose variable is set. */
static void
detect_providers(struct sl_config *cfg)
{
    for (size_t i = 0; i < sl_config_nkinds; i++) {
        const struct sl_config_kind *ki = &sl_config_kinds[i];
        const char *name = sl_config_enum_name(sl_config_kind_names, (int)ki->kind);
        if (!env_set(ki->detect_env) || sl_config_provider_index(cfg, name) >= 0)
            continue;
        struct sl_config_provider *p = sl_config_provider_slot(cfg, name);
        sl_config_provider_init(p, name, ki->kind);
    }
}

/* With no models section: each provider gets its kind's default models. */
static void
add_default_models(struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        for (size_t j = 0; j < sl_config_ndefault_models; j++) {
            const struct sl_config_default_model *d = &sl_config_default_models[j];
            if (d->kind != cfg->providers[i].kind || sl_config_model_index(cfg, d->name) >= 0)
                continue;
            /* cfg->providers is not touched here, so index i stays valid. */
            struct sl_config_model *m = sl_config_model_slot(cfg, d->name);
            m->name = sl_strdup(d->name);
            m->provider = sl_strdup(cfg->providers[i].name);
            m->upstream_model = sl_strdup(d->name);
            m->price_input_per_1m = d->input_per_1m;
            m->price_output_per_1m = d->output_per_1m;
        }
    }
}

/*
 * Reads the PEM file at path (the value of the key `key`, which came from o) into *out,
 * or fails with a message naming the key and the file.
 */
static int
read_pem(struct sl_config_ctx *c, struct sl_config_origin o, const char *key, const char *path,
         size_t max, char **out)
{
    char lim[32];
    size_t len;
    int sys_errno;
    int rc = sl_pem_read_file(path, NULL, max, out, &len, &sys_errno);
    switch (rc) {
    case SL_PEM_OK:
        return 0;
    case SL_PEM_EOPEN:
        return sl_config_fail(c, o, "%s: cannot read \"%s\": %s", key, path, strerror(sys_errno));
    case SL_PEM_ETOOBIG:
        sl_config_fmt_size(lim, sizeof(lim), max);
        return sl_config_fail(c, o, "%s: \"%s\" is larger than %s", key, path, lim);
    case SL_PEM_ENOTPEM:
        return sl_config_fail(c, o, "%s: \"%s\" is not a PEM file", key, path);
    default:
        return sl_config_fail(c, o, "%s: cannot read \"%s\"", key, path);
    }
}

/*
 * A CA bundle is only checked here (readable, PEM, holds a certificate), so that a wrong
 * path fails at start rather than at the provider's first request; libcurl reads it.
 */
static int
check_ca_file(struct sl_config_ctx *c, const struct sl_config_provider *p)
{
    char key[160], *pem = NULL;
    struct sl_config_origin o = sl_config_entry_origin(c, "providers", p->name, "ca_file");
    snprintf(key, sizeof(key), "providers.%s.ca_file", p->name);
    if (read_pem(c, o, key, p->ca_file, CA_FILE_MAX, &pem) != 0)
        return -1;
    size_t n = strlen(pem);
    bool certs =
        sl_pem_has_block(pem, n, "CERTIFICATE") || sl_pem_has_block(pem, n, "TRUSTED CERTIFICATE");
    free(pem);
    if (!certs)
        return sl_config_fail(c, o, "%s: \"%s\" holds no PEM certificate", key, p->ca_file);
    return 0;
}

static int
finish_providers(struct sl_config_ctx *c)
{
    for (size_t i = 0; i < c->cfg->nproviders; i++) {
        struct sl_config_provider *p = &c->cfg->providers[i];
        if (p->base_url != NULL) {
            size_t n = strlen(p->base_url);
            while (n > 0 && p->base_url[n - 1] == '/')
                p->base_url[--n] = '\0';
        }
        if (p->kind != SL_PROVIDER_DEMO && p->base_url == NULL)
            return sl_config_fail(c, sl_config_entry_origin(c, "providers", p->name, "base_url"),
                                  "providers.%s.base_url is required", p->name);
        /* A missing key is not an error: the provider answers UPSTREAM_AUTH. */
        if (p->api_key == NULL && env_set(p->api_key_env))
            p->api_key = sl_strdup(getenv(p->api_key_env));
        if (p->ca_file != NULL && check_ca_file(c, p) != 0)
            return -1;
        if (p->min_idle > p->max_connections)
            return sl_config_fail(c, sl_config_entry_origin(c, "providers", p->name, "min_idle"),
                                  "providers.%s.min_idle (%u) is more than its max_connections "
                                  "(%u)",
                                  p->name, p->min_idle, p->max_connections);
    }
    return 0;
}

/* The node of the f-th fallback of model `name` (the list itself if given as a scalar). */
static struct sl_config_origin
fallback_item(struct sl_config_ctx *c, const char *name, size_t f)
{
    struct sl_config_origin o = sl_config_entry_origin(c, "models", name, "fallback");
    if (o.node != NULL && o.node->type == YAML_SEQUENCE_NODE && f < sl_yaml_seq_len(o.node))
        o.node = sl_yaml_seq_item(&c->y, o.node, f);
    return o;
}

/* Depth-first search for a fallback cycle from model i; state: 0 new, 1 on stack, 2 done. */
static int
fallback_dfs(struct sl_config_ctx *c, size_t i, unsigned char *state, size_t *stack, size_t depth)
{
    struct sl_config *cfg = c->cfg;
    state[i] = 1;
    stack[depth] = i;
    for (size_t f = 0; f < cfg->models[i].nfallback; f++) {
        /* check_models made sure that every fallback names a model. */
        size_t j = (size_t)sl_config_model_index(cfg, cfg->models[i].fallback[f]);
        if (state[j] == 2)
            continue;
        if (state[j] == 1) {
            struct sl_buf b = SL_BUF_INIT;
            size_t from = 0;
            while (stack[from] != j)
                from++;
            for (size_t s = from; s <= depth; s++)
                sl_buf_printf(&b, "%s -> ", cfg->models[stack[s]].name);
            sl_buf_append_str(&b, cfg->models[j].name);
            sl_config_fail(c, fallback_item(c, cfg->models[i].name, f),
                           "models.%s.fallback: fallback cycle %s", cfg->models[i].name,
                           sl_buf_cstr(&b));
            sl_buf_free(&b);
            return -1;
        }
        if (fallback_dfs(c, j, state, stack, depth + 1) != 0)
            return -1;
    }
    state[i] = 2;
    return 0;
}

static int
check_models(struct sl_config_ctx *c)
{
    struct sl_config *cfg = c->cfg;
    int rc = -1;
    unsigned char *state = NULL;
    size_t *stack = NULL;
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct sl_config_model *m = &cfg->models[i];
        if (sl_config_provider_index(cfg, m->provider) < 0) {
            /* Without a providers section, "openai" exists only when its key is set. */
            const char *hint = NULL;
            for (size_t k = 0; k < sl_config_nkinds && !sl_config_top_given(c, "providers"); k++)
                if (sl_config_kinds[k].detect_env != NULL &&
                    strcmp(sl_config_enum_name(sl_config_kind_names, (int)sl_config_kinds[k].kind),
                           m->provider) == 0)
                    hint = sl_config_kinds[k].detect_env;
            if (hint != NULL)
                sl_config_fail(
                    c, sl_config_entry_origin(c, "models", m->name, "provider"),
                    "models.%s.provider: no provider named \"%s\" (set %s, or add it under "
                    "providers:)",
                    m->name, m->provider, hint);
            else
                sl_config_fail(c, sl_config_entry_origin(c, "models", m->name, "provider"),
                               "models.%s.provider: no provider named \"%s\"", m->name,
                               m->provider);
            goto out;
        }
        for (size_t f = 0; f < m->nfallback; f++) {
            if (sl_config_model_index(cfg, m->fallback[f]) < 0) {
                sl_config_fail(c, fallback_item(c, m->name, f),
                               "models.%s.fallback: no model named \"%s\"", m->name,
                               m->fallback[f]);
                goto out;
            }
        }
    }
    for (size_t i = 0; i < cfg->nagents; i++) {
        const struct sl_config_agent *a = &cfg->agents[i];
        if (sl_config_model_index(cfg, a->model) < 0) {
            sl_config_fail(c, sl_config_entry_origin(c, "agents", a->name, "model"),
                           "agents.%s.model: no model named \"%s\"", a->name, a->model);
            goto out;
        }
    }
    if (sl_config_model_index(cfg, cfg->default_model) < 0) {
        sl_config_fail(c, sl_config_top_origin(c, "default_model"),
                       "default_model: no model named \"%s\"", cfg->default_model);
        goto out;
    }
    state = sl_calloc(cfg->nmodels + 1, 1);
    stack = sl_calloc(cfg->nmodels + 1, sizeof(*stack));
    for (size_t i = 0; i < cfg->nmodels; i++)
        if (state[i] == 0 && fallback_dfs(c, i, state, stack, 0) != 0)
            goto out;
    rc = 0;
out:
    free(state);
    free(stack);
    return rc;
}

/*
 * A provider's default_model is one of its own models (a request naming the provider must
 * run there); without one, its first model in file order.
 */
static int
check_provider_models(struct sl_config_ctx *c)
{
    struct sl_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        struct sl_config_provider *p = &cfg->providers[i];
        if (p->default_model == NULL) {
            for (size_t m = 0; m < cfg->nmodels && p->default_model == NULL; m++)
                if (strcmp(cfg->models[m].provider, p->name) == 0)
                    p->default_model = sl_strdup(cfg->models[m].name);
            continue;
        }
        const struct sl_config_model *m = sl_config_find_model(cfg, p->default_model);
        struct sl_config_origin o =
            sl_config_entry_origin(c, "providers", p->name, "default_model");
        if (m == NULL)
            return sl_config_fail(c, o, "providers.%s.default_model: no model named \"%s\"",
                                  p->name, p->default_model);
        if (strcmp(m->provider, p->name) != 0)
            return sl_config_fail(c, o,
                                  "providers.%s.default_model: model \"%s\" belongs to provider "
                                  "\"%s\", not \"%s\"",
                                  p->name, m->name, m->provider, p->name);
    }
    return 0;
}

/* The ws-chat path must not fall under the Socket.IO path, which takes every path below it. */
static int
check_paths(struct sl_config_ctx *c)
{
    const struct sl_config *cfg = c->cfg;
    const char *sio = cfg->socketio.path;
    size_t n = strlen(sio);
    if (strncmp(cfg->ws_chat.path, sio, n) == 0 ||
        (strncmp(cfg->ws_chat.path, sio, n - 1) == 0 && cfg->ws_chat.path[n - 1] == '\0'))
        return sl_config_fail(c, sl_config_top_origin(c, "ws_chat.path"),
                              "ws_chat.path: %s is under socketio.path (%s)", cfg->ws_chat.path,
                              sio);
    return 0;
}

static int
check_auth(struct sl_config_ctx *c)
{
    struct sl_config *cfg = c->cfg;
    bool hs = false;
    const char *asym = NULL;
    for (size_t i = 0; i < cfg->jwt.nalgorithms; i++) {
        const char *a = cfg->jwt.algorithms[i];
        if (a[0] == 'H')
            hs = true;
        else if (asym == NULL)
            asym = a;
    }
    if (asym != NULL && cfg->jwt.public_key_file == NULL)
        return sl_config_fail(c, sl_config_top_origin(c, "auth.jwt.algorithms"),
                              "auth.jwt.algorithms: %s needs auth.jwt.public_key_file", asym);
    if (cfg->jwt.public_key_file != NULL &&
        read_pem(c, sl_config_top_origin(c, "auth.jwt.public_key_file"), "auth.jwt.public_key_file",
                 cfg->jwt.public_key_file, SL_PEM_KEY_MAX, &cfg->jwt.public_key) != 0)
        return -1;
    if (hs && cfg->jwt.secret == NULL) {
        char secret[33];
        sl_random_id(secret, 32);
        cfg->jwt.secret = sl_strdup(secret);
        cfg->jwt.secret_generated = true;
    }
    return 0;
}

/* Every API key's tier names a tier. */
static int
check_tiers(struct sl_config_ctx *c)
{
    const struct sl_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->napi_keys; i++) {
        const char *t = cfg->api_keys[i].tier;
        if (t == NULL || sl_config_find_tier(cfg, t) != NULL)
            continue;
        struct sl_config_origin o = sl_config_top_origin(c, "auth.api_keys");
        if (o.node != NULL && o.node->type == YAML_SEQUENCE_NODE && i < sl_yaml_seq_len(o.node)) {
            const yaml_node_t *v =
                sl_yaml_map_get(&c->y, sl_yaml_seq_item(&c->y, o.node, i), "tier");
            if (v != NULL)
                o.node = v;
        }
        return sl_config_fail(
            c, o, "auth.api_keys[%zu].tier: no tier named \"%s\" under limits.tiers", i, t);
    }
    return 0;
}

static int
check_heartbeat(struct sl_config_ctx *c)
{
    struct sl_config *cfg = c->cfg;
    char a[32], b[32];
    if (cfg->heartbeat.timeout_ms > cfg->heartbeat.interval_ms)
        return 0;
    sl_config_fmt_duration(a, sizeof(a), cfg->heartbeat.timeout_ms);
    sl_config_fmt_duration(b, sizeof(b), cfg->heartbeat.interval_ms);
    if (sl_config_top_given(c, "heartbeat.timeout"))
        return sl_config_fail(
            c, sl_config_top_origin(c, "heartbeat.timeout"),
            "heartbeat.timeout: must be longer than heartbeat.interval (%s), got %s", b, a);
    return sl_config_fail(c, sl_config_top_origin(c, "heartbeat.interval"),
                          "heartbeat.interval: must be shorter than heartbeat.timeout (%s), got %s",
                          a, b);
}

int
sl_config_rules_apply(struct sl_config_ctx *c)
{
    if (!sl_config_top_given(c, "providers"))
        detect_providers(c->cfg);
    if (!sl_config_top_given(c, "models"))
        add_default_models(c->cfg);
    if (finish_providers(c) != 0 || check_models(c) != 0 || check_provider_models(c) != 0 ||
        check_paths(c) != 0 || check_heartbeat(c) != 0 || check_auth(c) != 0 || check_tiers(c) != 0)
        return -1;
    return 0;
}
