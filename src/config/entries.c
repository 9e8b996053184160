/*
 * The configuration's entries: providers, models and agents (named entries of a section)
 * and auth.api_keys (a list). See entries.h.
 */
#include "config/entries.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "config/walk.h"

#define ENTRY_NAME_MAX 128

/* --- lifetime ------------------------------------------------------------------------------ */

ptrdiff_t
sl_config_provider_index(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (strcmp(cfg->providers[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

ptrdiff_t
sl_config_model_index(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nmodels; i++)
        if (strcmp(cfg->models[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

ptrdiff_t
sl_config_agent_index(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nagents; i++)
        if (strcmp(cfg->agents[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

void
sl_config_provider_init(struct sl_config_provider *p, const char *name, enum sl_provider_kind kind)
{
    const struct sl_config_kind *ki = sl_config_kind_info(kind);
    memset(p, 0, sizeof(*p));
    p->name = sl_strdup(name);
    p->kind = kind;
    p->connect_timeout_ms = 10000;
    p->first_byte_timeout_ms = 60000;
    p->idle_timeout_ms = 60000;
    p->max_connections = 1024;
    p->max_queued = 1024;
    p->max_retries = 2;
    p->retry_base_ms = 250;
    p->tls_verify = true;
    p->demo_tokens_per_second = 30;
    p->api_key_env = ki->api_key_env ? sl_strdup(ki->api_key_env) : NULL;
    p->api_version = ki->api_version ? sl_strdup(ki->api_version) : NULL;
    if (kind == SL_PROVIDER_OLLAMA) {
        /* Ollama's own clients read OLLAMA_HOST as "host[:port]" or a URL. */
        const char *h = getenv("OLLAMA_HOST");
        if (h != NULL && *h != '\0') {
            struct sl_buf b = SL_BUF_INIT;
            if (strstr(h, "://") == NULL)
                sl_buf_append_str(&b, "http://");
            sl_buf_append_str(&b, h);
            const char *s = sl_buf_cstr(&b);
            const char *hostpart = strstr(s, "://") + 3;
            const char *end = hostpart + strcspn(hostpart, "/");
            const char *bracket = memchr(hostpart, ']', (size_t)(end - hostpart));
            const char *from = bracket ? bracket : hostpart;
            if (memchr(from, ':', (size_t)(end - from)) == NULL && *end == '\0')
                sl_buf_append_str(&b, ":11434");
            sl_buf_cstr(&b);
            p->base_url = sl_buf_steal(&b, NULL);
            return;
        }
    }
    p->base_url = ki->base_url ? sl_strdup(ki->base_url) : NULL;
}

void
sl_config_provider_cleanup(struct sl_config_provider *p)
{
    free(p->name);
    free(p->base_url);
    free(p->api_key_env);
    free(p->api_key);
    free(p->api_version);
    free(p->ca_file);
    free(p->default_model);
    for (size_t j = 0; j < p->nheaders; j++) {
        free(p->headers[j].name);
        free(p->headers[j].value);
    }
    free(p->headers);
    memset(p, 0, sizeof(*p));
}

void
sl_config_model_cleanup(struct sl_config_model *m)
{
    free(m->name);
    free(m->provider);
    free(m->upstream_model);
    sl_config_strv_clear(&m->fallback, &m->nfallback);
    memset(m, 0, sizeof(*m));
}

void
sl_config_agent_cleanup(struct sl_config_agent *a)
{
    free(a->name);
    free(a->model);
    free(a->system);
    memset(a, 0, sizeof(*a));
}

/* A slot for provider `name`: a built-in one of that name is replaced, else appended. */
struct sl_config_provider *
sl_config_provider_slot(struct sl_config *cfg, const char *name)
{
    ptrdiff_t i = sl_config_provider_index(cfg, name);
    if (i >= 0) {
        sl_config_provider_cleanup(&cfg->providers[i]);
        return &cfg->providers[i];
    }
    cfg->providers = sl_realloc(cfg->providers, (cfg->nproviders + 1) * sizeof(*cfg->providers));
    struct sl_config_provider *p = &cfg->providers[cfg->nproviders++];
    memset(p, 0, sizeof(*p));
    return p;
}

struct sl_config_model *
sl_config_model_slot(struct sl_config *cfg, const char *name)
{
    ptrdiff_t i = sl_config_model_index(cfg, name);
    if (i >= 0) {
        sl_config_model_cleanup(&cfg->models[i]);
        return &cfg->models[i];
    }
    cfg->models = sl_realloc(cfg->models, (cfg->nmodels + 1) * sizeof(*cfg->models));
    struct sl_config_model *m = &cfg->models[cfg->nmodels++];
    memset(m, 0, sizeof(*m));
    return m;
}

/* --- loading ------------------------------------------------------------------------------- */

static int
check_entry_name(struct sl_config_ctx *c, const yaml_node_t *keynode, const char *section,
                 const char *name)
{
    size_t len = strlen(name);
    bool ok = len > 0 && len <= ENTRY_NAME_MAX;
    for (const char *p = name; ok && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            ok = false;
    if (!ok) {
        char q[80];
        sl_config_quote(q, sizeof(q), name);
        return sl_config_fail(c, sl_config_at(keynode),
                              "%s: expected a name of 1 to %d characters without spaces, got %s",
                              section, ENTRY_NAME_MAX, q);
    }
    return 0;
}

/*
 * Opens entry i of a `providers:`, `models:` or `agents:` mapping: validates its name and
 * returns the name, its key and value nodes, and the path prefix ("models.gpt-4o.").
 */
static int
entry_at(struct sl_config_ctx *c, const yaml_node_t *n, size_t i, const char *path, char *prefix,
         size_t prefixlen, const char **name, const yaml_node_t **kn, const yaml_node_t **vn)
{
    if (sl_config_map_key(c, n, i, path, name) != 0)
        return -1;
    *kn = sl_yaml_map_key(&c->y, n, i);
    *vn = sl_yaml_map_value(&c->y, n, i);
    if (check_entry_name(c, *kn, path, *name) != 0)
        return -1;
    snprintf(prefix, prefixlen, "%s.%s.", path, *name);
    return 0;
}

/* A section of entries must be a mapping; null is an empty one. Returns 1 to skip it. */
static int
entries_begin(struct sl_config_ctx *c, const char *path, const yaml_node_t *n)
{
    if (sl_yaml_is_null(n))
        return 1;
    if (n->type != YAML_MAPPING_NODE)
        return sl_config_fail(c, sl_config_at(n),
                              "%s: expected a mapping of names to settings, got %s", path,
                              sl_yaml_what(n));
    return 0;
}

static int
load_providers(struct sl_config_ctx *c, const char *path, const yaml_node_t *n)
{
    char prefix[ENTRY_NAME_MAX + 32];
    int rc = entries_begin(c, path, n);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        const yaml_node_t *kn, *vn;
        if (entry_at(c, n, i, path, prefix, sizeof(prefix), &name, &kn, &vn) != 0)
            return -1;
        if (!sl_yaml_is_null(vn) && vn->type != YAML_MAPPING_NODE)
            return sl_config_fail(c, sl_config_at(vn), "%s.%s: expected a mapping, got %s", path,
                                  name, sl_yaml_what(vn));

        /* The kind decides the defaults, so it is read before the rest. */
        int kind = -1;
        const yaml_node_t *kindnode = sl_yaml_map_get(&c->y, vn, "kind");
        if (kindnode != NULL) {
            char full[ENTRY_NAME_MAX + 40];
            snprintf(full, sizeof(full), "%skind", prefix);
            struct sl_config_provider tmp = {0};
            const struct sl_config_key *k = &sl_config_provider_keys[sl_config_row(
                sl_config_provider_keys, sl_config_nprovider_keys, "kind")];
            if (sl_config_set_node(c, k, full, kindnode, &tmp) != 0)
                return -1;
            kind = (int)tmp.kind;
        } else {
            for (size_t j = 0; sl_config_kind_names[j].name != NULL; j++)
                if (strcmp(sl_config_kind_names[j].name, name) == 0)
                    kind = sl_config_kind_names[j].value;
            if (kind < 0)
                return sl_config_fail(
                    c, sl_config_at(kn),
                    "%s.%s: kind is required (one of demo, openai, anthropic, gemini, "
                    "ollama)",
                    path, name);
        }
        struct sl_config_provider *p = sl_config_provider_slot(c->cfg, name);
        sl_config_provider_init(p, name, (enum sl_provider_kind)kind);
        if (sl_config_walk_map(c, vn, prefix, "", sl_config_provider_keys, sl_config_nprovider_keys,
                               p, NULL) != 0)
            return -1;
    }
    return 0;
}

static int
load_models(struct sl_config_ctx *c, const char *path, const yaml_node_t *n)
{
    char prefix[ENTRY_NAME_MAX + 32];
    int rc = entries_begin(c, path, n);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        const yaml_node_t *kn, *vn;
        if (entry_at(c, n, i, path, prefix, sizeof(prefix), &name, &kn, &vn) != 0)
            return -1;
        struct sl_config_model *m = sl_config_model_slot(c->cfg, name);
        m->name = sl_strdup(name);
        if (sl_config_walk_map(c, vn, prefix, "", sl_config_model_keys, sl_config_nmodel_keys, m,
                               NULL) != 0)
            return -1;
        if (m->provider == NULL)
            return sl_config_fail(c, sl_config_at(kn), "%s.%s: provider is required", path, name);
        if (m->upstream_model == NULL)
            m->upstream_model = sl_strdup(name);
    }
    return 0;
}

static int
load_agents(struct sl_config_ctx *c, const char *path, const yaml_node_t *n)
{
    struct sl_config *cfg = c->cfg;
    char prefix[ENTRY_NAME_MAX + 32];
    int rc = entries_begin(c, path, n);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        const yaml_node_t *kn, *vn;
        if (entry_at(c, n, i, path, prefix, sizeof(prefix), &name, &kn, &vn) != 0)
            return -1;
        cfg->agents = sl_realloc(cfg->agents, (cfg->nagents + 1) * sizeof(*cfg->agents));
        struct sl_config_agent *a = &cfg->agents[cfg->nagents++];
        memset(a, 0, sizeof(*a));
        a->name = sl_strdup(name);
        if (sl_config_walk_map(c, vn, prefix, "", sl_config_agent_keys, sl_config_nagent_keys, a,
                               NULL) != 0)
            return -1;
        if (a->model == NULL)
            return sl_config_fail(c, sl_config_at(kn), "%s.%s: model is required", path, name);
    }
    return 0;
}

static int
load_apikeys(struct sl_config_ctx *c, const char *path, const yaml_node_t *n)
{
    const struct sl_config_key *tab = sl_config_apikey_keys;
    size_t ntab = sl_config_napikey_keys;
    size_t iname = sl_config_row(tab, ntab, "name"), ihash = sl_config_row(tab, ntab, "sha256"),
           ienv = sl_config_row(tab, ntab, "key_env");
    struct sl_config *cfg = c->cfg;
    char prefix[64];
    if (sl_yaml_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return sl_config_fail(c, sl_config_at(n),
                              "%s: expected a list of {name, sha256} or {name, key_env}, got %s",
                              path, sl_yaml_what(n));
    size_t len = sl_yaml_seq_len(n);
    for (size_t i = 0; i < len; i++) {
        const yaml_node_t *it = sl_yaml_seq_item(&c->y, n, i);
        const yaml_node_t *seen[SL_CONFIG_ENTRY_KEYS_MAX] = {0};
        snprintf(prefix, sizeof(prefix), "%s[%zu].", path, i);
        if (it->type != YAML_MAPPING_NODE)
            return sl_config_fail(c, sl_config_at(it),
                                  "%s[%zu]: expected {name, sha256} or {name, key_env}, got %s",
                                  path, i, sl_yaml_what(it));
        cfg->api_keys = sl_realloc(cfg->api_keys, (cfg->napi_keys + 1) * sizeof(*cfg->api_keys));
        struct sl_config_apikey *key = &cfg->api_keys[cfg->napi_keys++];
        memset(key, 0, sizeof(*key));
        if (sl_config_walk_map(c, it, prefix, "", tab, ntab, key, seen) != 0)
            return -1;
        if (key->name == NULL)
            return sl_config_fail(c, sl_config_at(it), "%s[%zu]: name is required", path, i);
        if ((seen[ihash] != NULL) == (seen[ienv] != NULL))
            return sl_config_fail(c, sl_config_at(it),
                                  "%s[%zu]: expected exactly one of sha256 and key_env", path, i);
        for (size_t j = 0; j + 1 < cfg->napi_keys; j++)
            if (strcmp(cfg->api_keys[j].name, key->name) == 0)
                return sl_config_fail(c, sl_config_at(seen[iname]),
                                      "%s[%zu].name: duplicate API key name \"%s\"", path, i,
                                      key->name);
    }
    return 0;
}

static void
namespace_cleanup(struct sl_config_namespace *ns)
{
    free(ns->name);
    sl_config_strv_clear(&ns->dialects, &ns->ndialects);
    sl_config_strv_clear(&ns->models, &ns->nmodels);
}

void
sl_config_namespaces_clear(struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->socketio.nnamespaces; i++)
        namespace_cleanup(&cfg->socketio.namespaces[i]);
    free(cfg->socketio.namespaces);
    cfg->socketio.namespaces = NULL;
    cfg->socketio.nnamespaces = 0;
}

void
sl_config_namespace_add(struct sl_config *cfg, const char *name, const char *const *dialects,
                        size_t n)
{
    cfg->socketio.namespaces =
        sl_realloc(cfg->socketio.namespaces,
                   (cfg->socketio.nnamespaces + 1) * sizeof(*cfg->socketio.namespaces));
    struct sl_config_namespace *ns = &cfg->socketio.namespaces[cfg->socketio.nnamespaces++];
    memset(ns, 0, sizeof(*ns));
    ns->name = sl_strdup(name);
    for (size_t i = 0; i < n; i++) {
        ns->dialects = sl_realloc(ns->dialects, (ns->ndialects + 1) * sizeof(*ns->dialects));
        ns->dialects[ns->ndialects++] = sl_strdup(dialects[i]);
    }
}

/* socketio.namespaces: the file's list replaces the default one. */
static int
load_namespaces(struct sl_config_ctx *c, const char *path, const yaml_node_t *n)
{
    struct sl_config *cfg = c->cfg;
    char prefix[ENTRY_NAME_MAX + 32];
    int rc = entries_begin(c, path, n);
    sl_config_namespaces_clear(cfg);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        const yaml_node_t *kn, *vn;
        if (entry_at(c, n, i, path, prefix, sizeof(prefix), &name, &kn, &vn) != 0)
            return -1;
        if (name[0] != '/')
            return sl_config_fail(c, sl_config_at(kn), "%s.%s: a namespace starts with '/'", path,
                                  name);
        sl_config_namespace_add(cfg, name, NULL, 0);
        if (sl_config_walk_map(c, vn, prefix, "", sl_config_namespace_keys,
                               sl_config_nnamespace_keys,
                               &cfg->socketio.namespaces[cfg->socketio.nnamespaces - 1], NULL) != 0)
            return -1;
    }
    return 0;
}

/* limits.tiers: what a tier does not give stays SL_CONFIG_UNSET (or < 0): the global value. */
static int
load_tiers(struct sl_config_ctx *c, const char *path, const yaml_node_t *n)
{
    struct sl_config *cfg = c->cfg;
    char prefix[ENTRY_NAME_MAX + 32];
    int rc = entries_begin(c, path, n);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        const yaml_node_t *kn, *vn;
        if (entry_at(c, n, i, path, prefix, sizeof(prefix), &name, &kn, &vn) != 0)
            return -1;
        if (strlen(name) > SL_CONFIG_TIER_NAME_MAX)
            return sl_config_fail(c, sl_config_at(kn), "%s: a tier name has at most %d characters",
                                  path, SL_CONFIG_TIER_NAME_MAX);
        cfg->limits.tiers =
            sl_realloc(cfg->limits.tiers, (cfg->limits.ntiers + 1) * sizeof(*cfg->limits.tiers));
        struct sl_config_tier *t = &cfg->limits.tiers[cfg->limits.ntiers++];
        *t = (struct sl_config_tier){.name = sl_strdup(name),
                                     .messages_per_minute = SL_CONFIG_UNSET,
                                     .max_streams_per_user = SL_CONFIG_UNSET,
                                     .max_connections_per_user = SL_CONFIG_UNSET,
                                     .tokens_per_minute = SL_CONFIG_UNSET,
                                     .budget_usd_per_day = -1,
                                     .budget_usd_per_month = -1};
        if (sl_config_walk_map(c, vn, prefix, "", sl_config_tier_keys, sl_config_ntier_keys, t,
                               NULL) != 0)
            return -1;
    }
    return 0;
}

int
sl_config_entries_load(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
                       const yaml_node_t *n)
{
    switch (k->type) {
    case SL_KEY_APIKEYS:
        return load_apikeys(c, path, n);
    case SL_KEY_PROVIDERS:
        return load_providers(c, path, n);
    case SL_KEY_MODELS:
        return load_models(c, path, n);
    case SL_KEY_AGENTS:
        return load_agents(c, path, n);
    case SL_KEY_NAMESPACES:
        return load_namespaces(c, path, n);
    case SL_KEY_TIERS:
        return load_tiers(c, path, n);
    default:
        sl_panic("config: %s is not a section", k->path);
    }
}
