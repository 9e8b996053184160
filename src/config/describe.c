/*
 * The configuration presented to people: sl_config_describe(), the summary printed by
 * `sluice --check-config`, and sl_config_print_keys(), the reference tables pasted into
 * docs/configuration.md (a unit test keeps the two in step).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/keys.h"

static void
print_list(FILE *out, char *const *v, size_t n, const char *empty)
{
    if (n == 0)
        fputs(empty, out);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", v[i]);
}

/* A Redis URL with its password, if any, replaced by "***". */
static void
print_redis_url(FILE *out, const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    const char *at_sign = strchr(auth, '@');
    if (at_sign == NULL || memchr(auth, '/', (size_t)(at_sign - auth)) != NULL) {
        fputs(url, out);
        return;
    }
    fprintf(out, "%.*s***%s", (int)(auth - url), url, at_sign);
}

static bool
provider_needs_key(const struct sl_config_provider *p)
{
    return p->kind == SL_PROVIDER_OPENAI || p->kind == SL_PROVIDER_ANTHROPIC ||
           p->kind == SL_PROVIDER_GEMINI;
}

static void
describe_providers(const struct sl_config *cfg, FILE *out)
{
    fprintf(out, "providers (%zu):\n", cfg->nproviders);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct sl_config_provider *p = &cfg->providers[i];
        fprintf(out, "  %-12s %-9s %s  ", p->name, sl_provider_kind_name(p->kind),
                p->base_url ? p->base_url : "(local)");
        if (p->api_key != NULL)
            fputs("key: present", out);
        else if (!provider_needs_key(p))
            fputs("key: not needed", out);
        else if (p->api_key_env != NULL)
            fprintf(out, "key: MISSING (%s is not set)", p->api_key_env);
        else
            fputs("key: MISSING (no api_key or api_key_env)", out);
        if (p->kind == SL_PROVIDER_DEMO)
            fprintf(out, ", %g tokens/s", p->demo_tokens_per_second);
        if (p->default_model != NULL)
            fprintf(out, ", default model %s", p->default_model);
        fputc('\n', out);
    }
}

static void
describe_models(const struct sl_config *cfg, FILE *out)
{
    fprintf(out, "models (%zu), default %s:\n", cfg->nmodels, cfg->default_model);
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct sl_config_model *m = &cfg->models[i];
        fprintf(out, "  %-20s -> %s/%s", m->name, m->provider, m->upstream_model);
        if (m->nfallback > 0) {
            fputs(", fallback: ", out);
            print_list(out, m->fallback, m->nfallback, "");
        }
        if (m->price_input_per_1m > 0 || m->price_output_per_1m > 0)
            fprintf(out, ", $%g in / $%g out per 1M tokens", m->price_input_per_1m,
                    m->price_output_per_1m);
        if (m->max_tokens > 0)
            fprintf(out, ", max_tokens %u", m->max_tokens);
        fputc('\n', out);
    }
    fprintf(out, "agents (%zu):\n", cfg->nagents);
    for (size_t i = 0; i < cfg->nagents; i++) {
        const struct sl_config_agent *a = &cfg->agents[i];
        fprintf(out, "  %-20s -> %s", a->name, a->model);
        if (a->has_temperature)
            fprintf(out, ", temperature %g", a->temperature);
        if (a->max_tokens > 0)
            fprintf(out, ", max_tokens %u", a->max_tokens);
        if (a->system != NULL)
            fputs(", system prompt", out);
        fputc('\n', out);
    }
}

static void warn(FILE *out, unsigned *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
warn(FILE *out, unsigned *n, const char *fmt, ...)
{
    va_list ap;
    if (*n == 0)
        fputs("warnings:\n", out);
    (*n)++;
    fputs("  - ", out);
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

static void
describe_warnings(const struct sl_config *cfg, FILE *out)
{
    unsigned n = 0;
    bool hs = false, asym = false;
    for (size_t i = 0; i < cfg->jwt.nalgorithms; i++) {
        if (cfg->jwt.algorithms[i][0] == 'H')
            hs = true;
        else
            asym = true;
    }
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct sl_config_provider *p = &cfg->providers[i];
        if (provider_needs_key(p) && p->api_key == NULL && p->api_key_env != NULL)
            warn(out, &n,
                 "provider %s has no API key (%s is not set): its requests will fail with "
                 "UPSTREAM_AUTH",
                 p->name, p->api_key_env);
        else if (provider_needs_key(p) && p->api_key == NULL)
            warn(out, &n,
                 "provider %s has no API key (no api_key or api_key_env): its requests will "
                 "fail with UPSTREAM_AUTH",
                 p->name);
        if (!p->tls_verify && p->kind != SL_PROVIDER_DEMO)
            warn(out, &n, "provider %s: tls_verify is off", p->name);
    }
    if (hs && cfg->jwt.secret_generated)
        warn(out, &n,
             "no JWT secret configured: a random one was generated, so tokens will not "
             "survive a restart (set %s)",
             cfg->jwt.secret_env);
    else if (hs && cfg->jwt.secret != NULL && strlen(cfg->jwt.secret) < 32)
        warn(out, &n, "the JWT secret is shorter than 32 bytes");
    if (cfg->jwt.nalgorithms > 0 && !cfg->jwt.require_exp)
        warn(out, &n, "auth.jwt.require_exp is off: a JWT without exp never expires");
    if (cfg->jwt.public_key_file != NULL && !asym)
        warn(out, &n, "auth.jwt.public_key_file is set but no RS*/ES* algorithm is enabled");
    if (cfg->jwt.nalgorithms == 0 && cfg->napi_keys == 0)
        warn(out, &n, "no JWT algorithm and no API key: no client can authenticate");
    for (size_t i = 0; i < cfg->nallowed_origins; i++)
        if (strcmp(cfg->allowed_origins[i], "*") == 0)
            warn(out, &n, "auth.allowed_origins has \"*\": any web page may connect");
    struct stat st;
    if (stat(cfg->web_root, &st) != 0 || !S_ISDIR(st.st_mode))
        warn(out, &n, "web_root \"%s\" is not a directory: the test page will not be served",
             cfg->web_root);
    bool budgets = cfg->budgets.usd_per_day > 0 || cfg->budgets.usd_per_month > 0;
    for (size_t i = 0; i < cfg->limits.ntiers; i++)
        budgets = budgets || cfg->limits.tiers[i].budget_usd_per_day > 0 ||
                  cfg->limits.tiers[i].budget_usd_per_month > 0;
    if (budgets && cfg->budgets.state_file == NULL)
        warn(out, &n,
             "budgets are set but budgets.state_file is null: spend starts from zero at every "
             "restart");
    if (cfg->debug.echo)
        warn(out, &n, "debug.echo is on: /ws/echo is open to anyone");
    if (n == 0)
        fputs("warnings: none\n", out);
}

void
sl_config_describe(const struct sl_config *cfg, FILE *out)
{
    char a[32], b[32], d[32];
    bool v6 = strchr(cfg->listen_host, ':') != NULL;
    fprintf(out, "listen:    %s%s%s:%u\n", v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "",
            (unsigned)cfg->listen_port);
    if (cfg->workers == 0)
        fputs("workers:   auto (one per CPU core)\n", out);
    else
        fprintf(out, "workers:   %u\n", cfg->workers);

    fputs("auth:      ", out);
    if (cfg->jwt.nalgorithms == 0) {
        fputs("JWT off", out);
    } else {
        fputs("JWT ", out);
        print_list(out, cfg->jwt.algorithms, cfg->jwt.nalgorithms, "");
        bool hs = false;
        for (size_t i = 0; i < cfg->jwt.nalgorithms; i++)
            hs = hs || cfg->jwt.algorithms[i][0] == 'H';
        if (hs)
            fputs(cfg->jwt.secret_generated ? " (secret generated at start)" : " (secret set)",
                  out);
        if (cfg->jwt.public_key_file != NULL)
            fprintf(out, " (public key %s)", cfg->jwt.public_key_file);
        if (cfg->jwt.issuer != NULL)
            fprintf(out, ", issuer %s", cfg->jwt.issuer);
        if (cfg->jwt.audience != NULL)
            fprintf(out, ", audience %s", cfg->jwt.audience);
    }
    fprintf(out, "; %zu API key%s", cfg->napi_keys, cfg->napi_keys == 1 ? "" : "s");
    fputs("; origins: ", out);
    print_list(out, cfg->allowed_origins, cfg->nallowed_origins, "same origin only");
    fputc('\n', out);

    sl_config_fmt_size(a, sizeof(a), cfg->limits.max_message_bytes);
    sl_config_fmt_duration(b, sizeof(b), cfg->limits.auth_timeout_ms);
    sl_config_fmt_duration(d, sizeof(d), cfg->limits.stream_timeout_ms);
    fprintf(out,
            "limits:    %u connections, %u streams/connection, %u messages/minute, messages up "
            "to %s, auth within %s, streams end after %s (0s: never)\n",
            cfg->limits.max_connections, cfg->limits.max_streams_per_connection,
            cfg->limits.messages_per_minute, a, b, d);
    fprintf(out,
            "per user:  %u streams, %u connections, %u tokens/minute; %u connections per "
            "address (0: no limit); %zu tier%s\n",
            cfg->limits.max_streams_per_user, cfg->limits.max_connections_per_user,
            cfg->limits.tokens_per_minute, cfg->limits.max_connections_per_ip, cfg->limits.ntiers,
            cfg->limits.ntiers == 1 ? "" : "s");
    if (cfg->budgets.usd_per_day > 0 || cfg->budgets.usd_per_month > 0)
        fprintf(out, "budgets:   $%g a day, $%g a month per user (0: none), kept in %s\n",
                cfg->budgets.usd_per_day, cfg->budgets.usd_per_month,
                cfg->budgets.state_file ? cfg->budgets.state_file : "no file");
    sl_config_fmt_duration(a, sizeof(a), cfg->heartbeat.interval_ms);
    sl_config_fmt_duration(b, sizeof(b), cfg->heartbeat.timeout_ms);
    sl_config_fmt_duration(d, sizeof(d), cfg->resume.window_ms);
    fprintf(out, "heartbeat: every %s, timeout %s; resume window %s (%u events)\n", a, b, d,
            cfg->resume.max_events);
    sl_config_fmt_duration(a, sizeof(a), cfg->socketio.ping_interval_ms);
    sl_config_fmt_duration(b, sizeof(b), cfg->socketio.ping_timeout_ms);
    fprintf(out, "socketio:  %s, ping %s/%s, recovery %s, namespaces:", cfg->socketio.path, a, b,
            cfg->socketio.recovery ? "on" : "off");
    for (size_t i = 0; i < cfg->socketio.nnamespaces; i++) {
        const struct sl_config_namespace *ns = &cfg->socketio.namespaces[i];
        fprintf(out, " %s (", ns->name);
        print_list(out, ns->dialects, ns->ndialects, "no dialect");
        fprintf(out, "%s)", ns->auth == SL_NSP_AUTH_NONE ? "; auth none" : "");
    }
    fputs(cfg->socketio.nnamespaces ? "\n" : " none\n", out);
    sl_config_fmt_size(a, sizeof(a), cfg->ws_chat.memory.max_bytes);
    sl_config_fmt_duration(b, sizeof(b), cfg->ws_chat.memory.idle_ttl_ms);
    fprintf(out,
            "ws_chat:   %s, memory %u messages and %s per conversation, forgotten after %s, %u "
            "conversations\n",
            cfg->ws_chat.path, cfg->ws_chat.memory.max_turns, a, b,
            cfg->ws_chat.memory.max_conversations);
    fputs("redis:     ", out);
    if (cfg->redis.url != NULL)
        print_redis_url(out, cfg->redis.url);
    else
        fputs("none (single node)", out);
    fputc('\n', out);
    fprintf(out, "log:       %s, %s\n", sl_config_enum_name(sl_config_log_levels, cfg->log.level),
            sl_config_enum_name(sl_config_log_formats, (int)cfg->log.format));

    describe_providers(cfg, out);
    describe_models(cfg, out);
    describe_warnings(cfg, out);
}

/* --- reference tables for docs/configuration.md ------------------------------------------ */

static void
type_text(char *b, size_t n, const struct sl_config_key *k)
{
    char lo[32], hi[32], list[160];
    const char *null = (k->flags & SL_KEY_NULLABLE) ? " or null" : "";
    switch (k->type) {
    case SL_KEY_STR:
        snprintf(b, n, "string%s", null);
        return;
    case SL_KEY_BOOL:
        snprintf(b, n, "bool");
        return;
    case SL_KEY_UINT:
        snprintf(b, n, "%sinteger %.0f–%.0f", (k->flags & SL_KEY_AUTO) ? "`auto` or " : "", k->min,
                 k->max);
        return;
    case SL_KEY_DOUBLE:
        sl_config_fmt_num(lo, sizeof(lo), k->min);
        sl_config_fmt_num(hi, sizeof(hi), k->max);
        snprintf(b, n, "number %s–%s", lo, hi);
        return;
    case SL_KEY_DURATION:
        sl_config_fmt_duration(lo, sizeof(lo), (uint64_t)k->min);
        sl_config_fmt_duration(hi, sizeof(hi), (uint64_t)k->max);
        snprintf(b, n, "duration %s–%s", k->min == 1 ? "1ms" : lo, hi);
        return;
    case SL_KEY_SIZE:
        sl_config_fmt_size(lo, sizeof(lo), (uint64_t)k->min);
        sl_config_fmt_size(hi, sizeof(hi), (uint64_t)k->max);
        snprintf(b, n, "size %s–%s", lo, hi);
        return;
    case SL_KEY_ENUM:
        sl_config_enum_list(list, sizeof(list), k->names);
        snprintf(b, n, "one of %s", list);
        return;
    case SL_KEY_STRLIST:
        snprintf(b, n, "list of strings%s", null);
        return;
    case SL_KEY_LISTEN:
        snprintf(b, n, "host:port");
        return;
    case SL_KEY_HEX256:
        snprintf(b, n, "64 hex digits");
        return;
    case SL_KEY_KEYENV:
        snprintf(b, n, "variable name");
        return;
    case SL_KEY_HEADERS:
        snprintf(b, n, "mapping");
        return;
    case SL_KEY_APIKEYS:
        snprintf(b, n, "list of mappings");
        return;
    case SL_KEY_PROVIDERS:
    case SL_KEY_MODELS:
    case SL_KEY_AGENTS:
    case SL_KEY_NAMESPACES:
    case SL_KEY_TIERS:
        snprintf(b, n, "mapping");
        return;
    }
}

/* The default of a top-level key, read from the defaults struct itself. */
static void
default_text(char *b, size_t n, const struct sl_config_key *k, const struct sl_config *d)
{
    const void *f = (const char *)d + k->off;
    char t[64];
    if (k->def != NULL) {
        snprintf(b, n, "%s", k->def);
        return;
    }
    switch (k->type) {
    case SL_KEY_STR:
        if (*(char *const *)f == NULL)
            snprintf(b, n, "none");
        else
            snprintf(b, n, "`%s`", *(char *const *)f);
        return;
    case SL_KEY_BOOL:
        snprintf(b, n, "`%s`", *(const bool *)f ? "true" : "false");
        return;
    case SL_KEY_UINT:
        if ((k->flags & SL_KEY_AUTO) && *(const unsigned *)f == 0)
            snprintf(b, n, "`auto`");
        else
            snprintf(b, n, "`%u`", *(const unsigned *)f);
        return;
    case SL_KEY_DOUBLE:
        snprintf(b, n, "`%g`", *(const double *)f);
        return;
    case SL_KEY_DURATION:
        sl_config_fmt_duration(t, sizeof(t), *(const uint64_t *)f);
        break;
    case SL_KEY_SIZE:
        sl_config_fmt_size(t, sizeof(t), *(const uint64_t *)f);
        break;
    case SL_KEY_ENUM:
        snprintf(t, sizeof(t), "%s", sl_config_enum_name(k->names, *(const int *)f));
        break;
    case SL_KEY_STRLIST: {
        char *const *v = *(char **const *)f;
        size_t cnt = *(const size_t *)(const void *)((const char *)d + k->off2), o = 0;
        o += (size_t)snprintf(t + o, sizeof(t) - o, "[");
        for (size_t i = 0; i < cnt && o < sizeof(t); i++)
            o += (size_t)snprintf(t + o, sizeof(t) - o, "%s%s", i ? ", " : "", v[i]);
        if (o < sizeof(t))
            snprintf(t + o, sizeof(t) - o, "]");
        break;
    }
    case SL_KEY_LISTEN:
        snprintf(t, sizeof(t), "%s:%u", *(char *const *)f,
                 (unsigned)*(const uint16_t *)(const void *)((const char *)d + k->off2));
        break;
    default:
        snprintf(t, sizeof(t), "-");
        break;
    }
    snprintf(b, n, "`%s`", t);
}

static void
print_table(FILE *out, const char *prefix, const struct sl_config_key *tab, size_t ntab,
            const struct sl_config *d)
{
    char type[200], def[200], env[80];
    if (d != NULL)
        fputs("| Key | Type | Default | Environment | Meaning |\n|---|---|---|---|---|\n", out);
    else
        fputs("| Key | Type | Default | Meaning |\n|---|---|---|---|\n", out);
    for (size_t i = 0; i < ntab; i++) {
        const struct sl_config_key *k = &tab[i];
        type_text(type, sizeof(type), k);
        if (d != NULL) {
            default_text(def, sizeof(def), k, d);
            sl_config_env_name(env, sizeof(env), k->path);
            if (k->flags & SL_KEY_NOENV)
                fprintf(out, "| `%s%s` | %s | %s | file only | %s |\n", prefix, k->path, type, def,
                        k->doc);
            else
                fprintf(out, "| `%s%s` | %s | %s | `%s` | %s |\n", prefix, k->path, type, def, env,
                        k->doc);
        } else {
            fprintf(out, "| `%s%s` | %s | %s | %s |\n", prefix, k->path, type, k->def, k->doc);
        }
    }
}

void
sl_config_print_keys(FILE *out)
{
    struct sl_config *d = sl_config_new_defaults();
    fputs("### Keys\n\n", out);
    print_table(out, "", sl_config_top_keys, SL_CONFIG_NTOP, d);
    fputs("\n### `auth.api_keys[]`\n\nEach item has `name` and exactly one of `sha256` and "
          "`key_env`.\n\n",
          out);
    print_table(out, "", sl_config_apikey_keys, sl_config_napikey_keys, NULL);
    fputs("\n### `limits.tiers.<name>`\n\nA key not given takes the global value.\n\n", out);
    print_table(out, "", sl_config_tier_keys, sl_config_ntier_keys, NULL);
    fputs("\n### `providers.<name>`\n\n", out);
    print_table(out, "", sl_config_provider_keys, sl_config_nprovider_keys, NULL);
    fputs("\n### `models.<name>`\n\n", out);
    print_table(out, "", sl_config_model_keys, sl_config_nmodel_keys, NULL);
    fputs("\n### `agents.<name>`\n\n", out);
    print_table(out, "", sl_config_agent_keys, sl_config_nagent_keys, NULL);
    fputs("\n### `socketio.namespaces.<name>`\n\nThe name starts with `/`. Defaults: `/` "
          "(chat, llm), `/stream` (stream), `/ai` (ai), `/sluice` (native), each with "
          "`auth: required`.\n\n",
          out);
    print_table(out, "", sl_config_namespace_keys, sl_config_nnamespace_keys, NULL);

    fputs("\n### Provider kinds\n\n| Kind | Default `base_url` | Default `api_key_env` | Other "
          "defaults | Enabled without a file when set |\n|---|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < sl_config_nkinds; i++) {
        const struct sl_config_kind *ki = &sl_config_kinds[i];
        char url[128], key[64], other[64], detect[64];
        if (ki->kind == SL_PROVIDER_OLLAMA)
            snprintf(url, sizeof(url), "`$OLLAMA_HOST`, else `%s`", ki->base_url);
        else if (ki->base_url != NULL)
            snprintf(url, sizeof(url), "`%s`", ki->base_url);
        else
            snprintf(url, sizeof(url), "none (local)");
        snprintf(key, sizeof(key), ki->api_key_env ? "`%s`" : "none%s",
                 ki->api_key_env ? ki->api_key_env : "");
        snprintf(other, sizeof(other), ki->api_version ? "`api_version: %s`" : "-%s",
                 ki->api_version ? ki->api_version : "");
        snprintf(detect, sizeof(detect), ki->detect_env ? "`%s`" : "always%s",
                 ki->detect_env ? ki->detect_env : "");
        fprintf(out, "| `%s` | %s | %s | %s | %s |\n",
                sl_config_enum_name(sl_config_kind_names, (int)ki->kind), url, key, other, detect);
    }
    fputs("\n### Default models\n\nGiven to every provider of the kind when the file has no "
          "`models:` section (list prices in USD per million tokens; override them in the "
          "file).\n\n| Kind | Model | Input | Output |\n|---|---|---|---|\n",
          out);
    fputs("| `demo` | `demo` | 0 | 0 |\n", out);
    for (size_t i = 0; i < sl_config_ndefault_models; i++) {
        const struct sl_config_default_model *m = &sl_config_default_models[i];
        fprintf(out, "| `%s` | `%s` | %g | %g |\n",
                sl_config_enum_name(sl_config_kind_names, (int)m->kind), m->name, m->input_per_1m,
                m->output_per_1m);
    }
    sl_config_free(d);
}
