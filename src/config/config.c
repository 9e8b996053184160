/*
 * The configuration loader.
 *
 * Every setting is a row in one of the key tables below (path, type, offset into its
 * struct, range, documentation). The YAML walker, the environment pass, the error
 * messages and the documentation table (sl_config_print_keys, pasted into
 * docs/configuration.md and checked by a unit test) are all driven by those rows, so a
 * new key is one line here plus its field in config.h.
 *
 * Loading builds a fresh struct from the defaults and applies the file, then the
 * environment, then the rules that span several keys (references between providers,
 * models and agents, heartbeat ordering, JWT keys). Any error frees the whole struct:
 * nothing is half-applied. The libyaml document stays alive until the end so that the
 * cross-key rules can still point at the line that caused the problem.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/util.h"
#include "config/yaml.h"
#include "obs/log.h"

/* Enum fields are written through an int pointer by the generic code. */
_Static_assert(sizeof(enum sl_provider_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum sl_log_format) == sizeof(int), "enum size");

#define PUBLIC_KEY_MAX (1u << 20)
#define ENTRY_NAME_MAX 128

/* ------------------------------------------------------------------------------------------ */
/* Key tables                                                                                 */

enum ktype {
    K_STR,      /* char * */
    K_BOOL,     /* bool */
    K_UINT,     /* unsigned, range min..max */
    K_DOUBLE,   /* double, range min..max */
    K_DURATION, /* uint64_t milliseconds, range min..max */
    K_SIZE,     /* uint64_t bytes, range min..max */
    K_ENUM,     /* int (or an enum), from names */
    K_STRLIST,  /* char ** at off, size_t count at off2; env: comma-separated */
    K_LISTEN,   /* char *host at off, uint16_t port at off2 */
    K_HEX256,   /* uint8_t[32] from 64 hex digits */
    K_KEYENV,   /* uint8_t[32]: SHA-256 of the named environment variable's value */
    K_HEADERS,  /* struct sl_config_header * at off, count at off2 */
    K_APIKEYS,  /* auth.api_keys */
    K_PROVIDERS,
    K_MODELS,
    K_AGENTS,
};

#define F_NULLABLE 0x01u /* null clears the value */
#define F_NOENV 0x02u    /* file only */
#define F_SECRET 0x04u   /* never echoed in messages */
#define F_AUTO 0x08u     /* K_UINT: "auto" means 0 */
#define F_HAS 0x10u      /* K_DOUBLE: the bool at off2 records that the key was given */

struct enum_name {
    const char *name;
    int value;
};

/* A value check for strings: returns 0, or -1 with the reason ("expected ...") in why. */
typedef int (*check_fn)(const char *s, char *why, size_t whylen);

struct key {
    const char *path; /* relative to the table: "limits.max_connections", "price.input_per_1m" */
    enum ktype type;
    unsigned flags;
    size_t off;
    size_t off2;
    double min, max;              /* K_UINT, K_DOUBLE, K_DURATION (ms), K_SIZE (bytes) */
    const struct enum_name *names; /* K_ENUM, NULL-terminated */
    check_fn check;               /* K_STR, each item of K_STRLIST */
    const char *def;              /* default shown in the docs instead of the struct's value */
    const char *doc;
};

static const struct enum_name log_levels[] = {
    {"debug", SL_LOG_DEBUG}, {"info", SL_LOG_INFO}, {"warn", SL_LOG_WARN},
    {"error", SL_LOG_ERROR}, {NULL, 0},
};

static const struct enum_name log_formats[] = {
    {"logfmt", SL_LOG_FORMAT_LOGFMT},
    {"json", SL_LOG_FORMAT_JSON},
    {NULL, 0},
};

static const struct enum_name kind_names[] = {
    {"demo", SL_PROVIDER_DEMO},     {"openai", SL_PROVIDER_OPENAI}, {"anthropic", SL_PROVIDER_ANTHROPIC},
    {"gemini", SL_PROVIDER_GEMINI}, {"ollama", SL_PROVIDER_OLLAMA}, {NULL, 0},
};

static const char *const jwt_algorithms[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                             "RS512", "ES256", "ES384", "ES512"};

static int check_algorithm(const char *s, char *why, size_t whylen);
static int check_origin(const char *s, char *why, size_t whylen);
static int check_url(const char *s, char *why, size_t whylen);
static int check_env_name(const char *s, char *why, size_t whylen);
static int check_redis_url(const char *s, char *why, size_t whylen);

#define CFG(f) offsetof(struct sl_config, f)
#define SEC_MS 1000.0
#define MIN_MS 60000.0
#define HOUR_MS 3600000.0
#define DAY_MS 86400000.0
#define KIB 1024.0
#define MIB (1024.0 * 1024)
#define GIB (1024.0 * 1024 * 1024)

static const struct key top_keys[] = {
    {.path = "listen", .type = K_LISTEN, .off = CFG(listen_host), .off2 = CFG(listen_port),
     .doc = "Address to listen on: `127.0.0.1:8080`, `:8080` (all IPv4 interfaces), "
            "`[::1]:8080`, `[::]:8080`. Port 0 picks a free port."},
    {.path = "workers", .type = K_UINT, .flags = F_AUTO, .off = CFG(workers), .max = 1024,
     .doc = "Worker threads (one event loop each); `auto` or 0: one per CPU core."},
    {.path = "web_root", .type = K_STR, .off = CFG(web_root),
     .doc = "Directory served as the test page."},
    {.path = "default_model", .type = K_STR, .off = CFG(default_model),
     .doc = "Model used when a request names none; must be a model."},

    {.path = "auth.jwt.secret", .type = K_STR, .flags = F_NULLABLE | F_SECRET,
     .off = CFG(jwt.secret), .def = "random",
     .doc = "HMAC secret for HS* tokens. Prefer `secret_env`. With neither, and an HS* "
            "algorithm enabled, a random secret is generated at start."},
    {.path = "auth.jwt.secret_env", .type = K_STR, .off = CFG(jwt.secret_env),
     .check = check_env_name,
     .doc = "Environment variable holding the HMAC secret; it overrides `secret`."},
    {.path = "auth.jwt.algorithms", .type = K_STRLIST, .off = CFG(jwt.algorithms),
     .off2 = CFG(jwt.nalgorithms), .check = check_algorithm,
     .doc = "Accepted JWT algorithms: HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512 "
            "(`none` is refused). An empty list disables JWTs (API keys only)."},
    {.path = "auth.jwt.public_key_file", .type = K_STR, .flags = F_NULLABLE,
     .off = CFG(jwt.public_key_file),
     .doc = "PEM public key for RS*/ES* tokens; required when one of them is enabled."},
    {.path = "auth.jwt.issuer", .type = K_STR, .flags = F_NULLABLE, .off = CFG(jwt.issuer),
     .doc = "If set, tokens must carry this `iss`."},
    {.path = "auth.jwt.audience", .type = K_STR, .flags = F_NULLABLE, .off = CFG(jwt.audience),
     .doc = "If set, tokens must carry this `aud`."},
    {.path = "auth.jwt.leeway", .type = K_DURATION, .off = CFG(jwt.leeway_ms), .max = HOUR_MS,
     .doc = "Clock skew tolerated on `exp` and `nbf`."},
    {.path = "auth.api_keys", .type = K_APIKEYS, .flags = F_NOENV, .def = "none",
     .doc = "API keys: a list of `{name, sha256}` (hex SHA-256 of the key) or "
            "`{name, key_env}` (the key itself, read from that variable and hashed at load)."},
    {.path = "auth.allowed_origins", .type = K_STRLIST, .flags = F_NULLABLE,
     .off = CFG(allowed_origins), .off2 = CFG(nallowed_origins), .check = check_origin,
     .doc = "Browser origins allowed besides the server's own (`https://app.example.com`), or "
            "`*` for any. Requests without Origin are not from a browser and always pass."},

    {.path = "limits.max_connections", .type = K_UINT, .off = CFG(limits.max_connections),
     .min = 1, .max = 10000000, .doc = "Open connections per process; more are refused."},
    {.path = "limits.max_streams_per_connection", .type = K_UINT,
     .off = CFG(limits.max_streams_per_connection), .min = 1, .max = 10000,
     .doc = "Concurrent streams per connection (`TOO_MANY_STREAMS` beyond)."},
    {.path = "limits.messages_per_minute", .type = K_UINT, .off = CFG(limits.messages_per_minute),
     .min = 1, .max = 1000000, .doc = "Client messages per connection per minute (`RATE_LIMITED`)."},
    {.path = "limits.max_message_bytes", .type = K_SIZE, .off = CFG(limits.max_message_bytes),
     .min = 1, .max = GIB, .doc = "Largest client message (`TOO_LARGE`, close 1009)."},
    {.path = "limits.send_high_water", .type = K_SIZE, .off = CFG(limits.send_high_water),
     .min = 1, .max = GIB,
     .doc = "Queued outbound bytes per connection above which the upstream is paused."},
    {.path = "limits.auth_timeout", .type = K_DURATION, .off = CFG(limits.auth_timeout_ms),
     .min = 1, .max = HOUR_MS, .doc = "Time to authenticate after connecting (close 4003)."},
    {.path = "limits.max_header_bytes", .type = K_SIZE, .off = CFG(limits.max_header_bytes),
     .min = 256, .max = 16 * MIB, .doc = "HTTP request line plus headers."},
    {.path = "limits.max_body_bytes", .type = K_SIZE, .off = CFG(limits.max_body_bytes),
     .min = 1, .max = GIB, .doc = "HTTP request bodies."},
    {.path = "limits.header_timeout", .type = K_DURATION, .off = CFG(limits.header_timeout_ms),
     .min = 1, .max = HOUR_MS, .doc = "Time to receive a request's headers (slowloris guard)."},
    {.path = "limits.keepalive_timeout", .type = K_DURATION,
     .off = CFG(limits.keepalive_timeout_ms), .min = 1, .max = DAY_MS,
     .doc = "Idle time before a keep-alive HTTP connection is closed."},

    {.path = "heartbeat.interval", .type = K_DURATION, .off = CFG(heartbeat.interval_ms),
     .min = 1, .max = HOUR_MS, .doc = "WebSocket ping interval."},
    {.path = "heartbeat.timeout", .type = K_DURATION, .off = CFG(heartbeat.timeout_ms), .min = 1,
     .max = DAY_MS,
     .doc = "Silence after which a client is dropped (close 4008); must exceed `interval`."},

    {.path = "resume.window", .type = K_DURATION, .off = CFG(resume.window_ms), .max = DAY_MS,
     .doc = "How long a disconnected client's streams keep running for `resume`; 0 cancels "
            "them at once."},
    {.path = "resume.max_events", .type = K_UINT, .off = CFG(resume.max_events), .min = 1,
     .max = 10000000, .doc = "Events kept per stream journal."},

    {.path = "redis.url", .type = K_STR, .flags = F_NULLABLE, .off = CFG(redis.url),
     .check = check_redis_url, .def = "none",
     .doc = "`redis://[:password@]host[:port][/db]`; unset: single node, all in-process."},

    {.path = "shutdown.drain_timeout", .type = K_DURATION, .off = CFG(shutdown.drain_timeout_ms),
     .max = HOUR_MS, .doc = "On SIGTERM, time given to running streams before closing."},
    {.path = "shutdown.retry_after", .type = K_DURATION, .off = CFG(shutdown.retry_after_ms),
     .max = HOUR_MS, .doc = "Reconnect delay suggested to clients in the 1001 close reason."},

    {.path = "log.level", .type = K_ENUM, .off = CFG(log.level), .names = log_levels,
     .doc = "Least severe level logged."},
    {.path = "log.format", .type = K_ENUM, .off = CFG(log.format), .names = log_formats,
     .doc = "Log line format."},
    {.path = "debug.echo", .type = K_BOOL, .off = CFG(debug.echo),
     .doc = "Serve `/ws/echo` (for the Autobahn test suite). Keep off in production."},

    {.path = "providers", .type = K_PROVIDERS, .flags = F_NOENV, .def = "see below",
     .doc = "Upstream providers by name (see `providers.<name>`)."},
    {.path = "models", .type = K_MODELS, .flags = F_NOENV, .def = "see below",
     .doc = "Models clients may ask for (see `models.<name>`)."},
    {.path = "agents", .type = K_AGENTS, .flags = F_NOENV, .def = "none",
     .doc = "Named presets of model, system prompt and temperature (see `agents.<name>`)."},
};

#define PRV(f) offsetof(struct sl_config_provider, f)
static const struct key provider_keys[] = {
    {.path = "kind", .type = K_ENUM, .off = PRV(kind), .names = kind_names,
     .def = "the provider's name",
     .doc = "Protocol spoken; required unless the name is itself a kind."},
    {.path = "base_url", .type = K_STR, .off = PRV(base_url), .check = check_url,
     .def = "per kind", .doc = "Endpoint root, `http://` or `https://`."},
    {.path = "api_key_env", .type = K_STR, .flags = F_NULLABLE, .off = PRV(api_key_env),
     .check = check_env_name, .def = "per kind",
     .doc = "Environment variable holding the API key, read at load."},
    {.path = "api_key", .type = K_STR, .flags = F_NULLABLE | F_SECRET, .off = PRV(api_key),
     .def = "none", .doc = "The key itself (prefer `api_key_env`); wins over `api_key_env`."},
    {.path = "api_version", .type = K_STR, .flags = F_NULLABLE, .off = PRV(api_version),
     .def = "`2023-06-01` (anthropic)", .doc = "The `anthropic-version` header."},
    {.path = "headers", .type = K_HEADERS, .off = PRV(headers), .off2 = PRV(nheaders),
     .def = "none", .doc = "Extra request headers, a mapping of name to value."},
    {.path = "connect_timeout", .type = K_DURATION, .off = PRV(connect_timeout_ms), .min = 1,
     .max = 10 * MIN_MS, .def = "`10s`", .doc = "TCP + TLS connect timeout."},
    {.path = "first_byte_timeout", .type = K_DURATION, .off = PRV(first_byte_timeout_ms),
     .min = 1, .max = HOUR_MS, .def = "`60s`",
     .doc = "Time from request to the first response byte."},
    {.path = "idle_timeout", .type = K_DURATION, .off = PRV(idle_timeout_ms), .min = 1,
     .max = HOUR_MS, .def = "`60s`", .doc = "Longest silence between chunks of a stream."},
    {.path = "max_connections", .type = K_UINT, .off = PRV(max_connections), .min = 1,
     .max = 10000, .def = "`64`", .doc = "Connections per host per worker."},
    {.path = "max_retries", .type = K_UINT, .off = PRV(max_retries), .max = 10, .def = "`2`",
     .doc = "Retries of a failed request before its first token."},
    {.path = "retry_base", .type = K_DURATION, .off = PRV(retry_base_ms), .min = 1,
     .max = MIN_MS, .def = "`250ms`", .doc = "First retry backoff; doubled each time, jittered."},
    {.path = "tls_verify", .type = K_BOOL, .off = PRV(tls_verify), .def = "`true`",
     .doc = "Verify the server certificate."},
    {.path = "ca_file", .type = K_STR, .flags = F_NULLABLE, .off = PRV(ca_file), .def = "system CAs",
     .doc = "CA bundle (PEM) to verify against; must be readable."},
    {.path = "tokens_per_second", .type = K_DOUBLE, .off = PRV(demo_tokens_per_second),
     .min = 0.01, .max = 1e6, .def = "`30`", .doc = "Demo kind only: generation speed."},
};

#define MDL(f) offsetof(struct sl_config_model, f)
static const struct key model_keys[] = {
    {.path = "provider", .type = K_STR, .off = MDL(provider), .def = "required",
     .doc = "Name of a provider."},
    {.path = "upstream_model", .type = K_STR, .off = MDL(upstream_model),
     .def = "the model's name", .doc = "Model name sent to the provider."},
    {.path = "fallback", .type = K_STRLIST, .flags = F_NULLABLE, .off = MDL(fallback),
     .off2 = MDL(nfallback), .def = "none",
     .doc = "Models tried in order when this one fails before its first token; no cycles."},
    {.path = "price.input_per_1m", .type = K_DOUBLE, .off = MDL(price_input_per_1m), .max = 1e6,
     .def = "`0`", .doc = "USD per million input tokens (for `cost_usd`)."},
    {.path = "price.output_per_1m", .type = K_DOUBLE, .off = MDL(price_output_per_1m),
     .max = 1e6, .def = "`0`", .doc = "USD per million output tokens."},
    {.path = "max_tokens", .type = K_UINT, .off = MDL(max_tokens), .min = 1, .max = 10000000,
     .def = "provider's", .doc = "`max_tokens` sent when the client gives none."},
};

#define AGT(f) offsetof(struct sl_config_agent, f)
static const struct key agent_keys[] = {
    {.path = "model", .type = K_STR, .off = AGT(model), .def = "required",
     .doc = "Name of a model."},
    {.path = "system", .type = K_STR, .flags = F_NULLABLE, .off = AGT(system), .def = "none",
     .doc = "System prompt (a client's own `system` wins)."},
    {.path = "temperature", .type = K_DOUBLE, .flags = F_HAS, .off = AGT(temperature),
     .off2 = AGT(has_temperature), .max = 2, .def = "provider's",
     .doc = "Sampling temperature."},
    {.path = "max_tokens", .type = K_UINT, .off = AGT(max_tokens), .min = 1, .max = 10000000,
     .def = "the model's", .doc = "Default `max_tokens`."},
};

#define KEY(f) offsetof(struct sl_config_apikey, f)
static const struct key apikey_keys[] = {
    {.path = "name", .type = K_STR, .off = KEY(name), .def = "required",
     .doc = "Identifies the key's user in logs and `ready`; unique."},
    {.path = "sha256", .type = K_HEX256, .flags = F_SECRET, .off = KEY(sha256), .def = "-",
     .doc = "SHA-256 of the key as 64 hex digits (e.g. from `sha256sum`)."},
    {.path = "key_env", .type = K_KEYENV, .off = KEY(sha256), .def = "-",
     .doc = "Environment variable holding the key itself; it must be set."},
};

#define NTOP SL_ARRAY_LEN(top_keys)

/* Per kind: defaults, and the variable whose presence enables it when no file says. */
struct kind_info {
    enum sl_provider_kind kind;
    const char *base_url;
    const char *api_key_env;
    const char *api_version;
    const char *detect_env;
};

static const struct kind_info kinds[] = {
    {SL_PROVIDER_DEMO, NULL, NULL, NULL, NULL},
    {SL_PROVIDER_OPENAI, "https://api.openai.com/v1", "OPENAI_API_KEY", NULL, "OPENAI_API_KEY"},
    {SL_PROVIDER_ANTHROPIC, "https://api.anthropic.com", "ANTHROPIC_API_KEY", "2023-06-01",
     "ANTHROPIC_API_KEY"},
    {SL_PROVIDER_GEMINI, "https://generativelanguage.googleapis.com", "GEMINI_API_KEY", NULL,
     "GEMINI_API_KEY"},
    {SL_PROVIDER_OLLAMA, "http://127.0.0.1:11434", NULL, NULL, "OLLAMA_HOST"},
};

/* Models given to each provider when the file has no `models:` section (list prices, USD). */
struct default_model {
    enum sl_provider_kind kind;
    const char *name;
    double input_per_1m, output_per_1m;
};

static const struct default_model default_models[] = {
    {SL_PROVIDER_OPENAI, "gpt-4o-mini", 0.15, 0.60},
    {SL_PROVIDER_OPENAI, "gpt-4o", 2.50, 10.00},
    {SL_PROVIDER_ANTHROPIC, "claude-sonnet-4-5", 3.00, 15.00},
    {SL_PROVIDER_ANTHROPIC, "claude-haiku-4-5", 1.00, 5.00},
    {SL_PROVIDER_GEMINI, "gemini-2.5-flash", 0.30, 2.50},
    {SL_PROVIDER_GEMINI, "gemini-2.5-pro", 1.25, 10.00},
    {SL_PROVIDER_OLLAMA, "llama3.2", 0, 0},
};

static const struct kind_info *
kind_info(enum sl_provider_kind kind)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(kinds); i++)
        if (kinds[i].kind == kind)
            return &kinds[i];
    sl_panic("unknown provider kind %d", (int)kind);
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))

static void
strv_clear(char ***v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

static void
strv_push(char ***v, size_t *n, const char *s, size_t len)
{
    *v = sl_realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = sl_strndup(s, len);
}

static void
replace_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? sl_strdup(s) : NULL;
}

/* A value for a message: quoted, escaped, cut at about 60 characters. */
static void
quote(char *dst, size_t n, const char *s)
{
    size_t o = 0;
    sl_assert(n >= 16);
    dst[o++] = '"';
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (o + 10 > n) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(dst + o, n - o, "\\x%02x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    dst[o++] = '"';
    dst[o] = '\0';
}

static void
fmt_duration(char *b, size_t n, uint64_t ms)
{
    unsigned long long v = (unsigned long long)ms;
    if (v == 0)
        snprintf(b, n, "0s");
    else if (v % 86400000 == 0)
        snprintf(b, n, "%llud", v / 86400000);
    else if (v % 3600000 == 0)
        snprintf(b, n, "%lluh", v / 3600000);
    else if (v % 60000 == 0 && v >= 120000)
        snprintf(b, n, "%llum", v / 60000);
    else if (v % 1000 == 0)
        snprintf(b, n, "%llus", v / 1000);
    else
        snprintf(b, n, "%llums", v);
}

static void
fmt_size(char *b, size_t n, uint64_t bytes)
{
    unsigned long long v = (unsigned long long)bytes;
    if (v != 0 && v % (1024ull * 1024 * 1024) == 0)
        snprintf(b, n, "%lluGiB", v >> 30);
    else if (v != 0 && v % (1024ull * 1024) == 0)
        snprintf(b, n, "%lluMiB", v >> 20);
    else if (v != 0 && v % 1024 == 0)
        snprintf(b, n, "%lluKiB", v >> 10);
    else
        snprintf(b, n, "%llu", v);
}

/* Whole numbers without an exponent (1000000, not 1e+06). */
static void
fmt_num(char *b, size_t n, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(b, n, "%.0f", v);
    else
        snprintf(b, n, "%g", v);
}

static int
parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < SL_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static void
enum_list(char *b, size_t n, const struct enum_name *names)
{
    size_t o = 0;
    b[0] = '\0';
    for (size_t i = 0; names[i].name != NULL && o < n; i++)
        o += (size_t)snprintf(b + o, n - o, "%s%s", i ? ", " : "", names[i].name);
}

static const char *
enum_name_of(const struct enum_name *names, int value)
{
    for (size_t i = 0; names[i].name != NULL; i++)
        if (names[i].value == value)
            return names[i].name;
    return "?";
}

/* Optimal string alignment distance, for "did you mean". Long names are never close. */
static size_t
edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[3][65];
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t *pp = d[0], *prev = d[1], *cur = d[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = prev[j - 1] + cost;
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* ------------------------------------------------------------------------------------------ */
/* Value checks                                                                               */

static int
check_algorithm(const char *s, char *why, size_t whylen)
{
    char q[80];
    if (strcasecmp(s, "none") == 0) {
        snprintf(why, whylen, "\"none\" is refused: it would accept unsigned tokens");
        return -1;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(jwt_algorithms); i++)
        if (strcmp(s, jwt_algorithms[i]) == 0)
            return 0;
    quote(q, sizeof(q), s);
    snprintf(why, whylen,
             "expected one of HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512, "
             "got %s",
             q);
    return -1;
}

/* "scheme://host[:port]" with no path: the form browsers send in Origin. */
static int
check_origin(const char *s, char *why, size_t whylen)
{
    char q[80];
    if (strcmp(s, "*") == 0)
        return 0;
    const char *host = NULL;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    bool ok = host != NULL && *host != '\0';
    for (const char *p = host; ok && *p; p++)
        if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || isspace((unsigned char)*p) ||
            iscntrl((unsigned char)*p))
            ok = false;
    if (ok)
        return 0;
    quote(q, sizeof(q), s);
    snprintf(why, whylen,
             "expected an origin such as \"https://app.example.com\" (scheme, host, optional "
             "port, no path) or \"*\", got %s",
             q);
    return -1;
}

static int
check_url(const char *s, char *why, size_t whylen)
{
    char q[80];
    const char *host = NULL;
    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    bool ok = host != NULL && *host != '\0' && *host != '/';
    for (const char *p = s; ok && *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            ok = false;
    if (ok)
        return 0;
    quote(q, sizeof(q), s);
    snprintf(why, whylen, "expected an http:// or https:// URL, got %s", q);
    return -1;
}

static int
check_env_name(const char *s, char *why, size_t whylen)
{
    char q[80];
    bool ok = *s != '\0' && !isdigit((unsigned char)*s);
    for (const char *p = s; ok && *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            ok = false;
    if (ok)
        return 0;
    quote(q, sizeof(q), s);
    snprintf(why, whylen, "expected an environment variable name (letters, digits, _), got %s", q);
    return -1;
}

static int
check_redis_url(const char *s, char *why, size_t whylen)
{
    if ((strncmp(s, "redis://", 8) == 0 && s[8] != '\0') ||
        (strncmp(s, "unix://", 7) == 0 && s[7] == '/'))
        return 0;
    /* The URL may carry a password: name the problem, not the value. */
    snprintf(why, whylen, "expected redis://[:password@]host[:port][/db] or unix:///path");
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Load context and errors                                                                    */

struct ctx {
    const char *file; /* NULL: no file */
    struct sl_yaml y;
    struct sl_config *cfg;
    char *err;
    size_t errlen;
    const yaml_node_t *top_node[NTOP]; /* value node of each key given in the file */
    bool top_env[NTOP];                /* set from the environment (wins over top_node) */
    char envname[NTOP][64];
    const char *secret_from_env; /* variable the JWT secret came from */
};

/* Where a value came from: a YAML node, an environment variable, or nowhere (defaults). */
struct origin {
    const yaml_node_t *node;
    const char *env;
};

static struct origin
at(const yaml_node_t *n)
{
    return (struct origin){n, NULL};
}

static int fail(struct ctx *c, struct origin o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "file:line: message" (or "VARIABLE: message") into err, on one line. Returns -1. */
static int
fail(struct ctx *c, struct origin o, const char *fmt, ...)
{
    int n = 0;
    if (c->errlen == 0)
        return -1;
    if (o.env != NULL)
        n = snprintf(c->err, c->errlen, "%s: ", o.env);
    else if (o.node != NULL && c->file != NULL)
        n = snprintf(c->err, c->errlen, "%s:%lu: ", c->file, sl_yaml_line(o.node));
    else if (c->file != NULL)
        n = snprintf(c->err, c->errlen, "%s: ", c->file);
    if (n < 0)
        n = 0;
    if ((size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    for (char *p = c->err; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return -1;
}

static int
top_index(const char *path)
{
    for (size_t i = 0; i < NTOP; i++)
        if (strcmp(top_keys[i].path, path) == 0)
            return (int)i;
    sl_panic("config: no key %s", path);
}

/* Where a top-level key was last set: the environment wins over the file. */
static struct origin
top_origin(struct ctx *c, const char *path)
{
    int i = top_index(path);
    if (c->top_env[i])
        return (struct origin){NULL, c->envname[i]};
    return at(c->top_node[i]);
}

static bool
top_given(struct ctx *c, const char *path)
{
    int i = top_index(path);
    return c->top_env[i] || c->top_node[i] != NULL;
}

/* The key node of entry `name` in the file's `section:` mapping, or NULL. */
static const yaml_node_t *
entry_key(struct ctx *c, const char *section, const char *name)
{
    const yaml_node_t *map = c->top_node[top_index(section)];
    if (map == NULL)
        return NULL;
    size_t n = sl_yaml_map_len(map);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = sl_yaml_map_key(&c->y, map, i);
        const char *s = sl_yaml_str(k);
        if (s != NULL && strcmp(s, name) == 0)
            return k;
    }
    return NULL;
}

/* The value node of `field` in entry `name` of `section:`, else the entry's key node. */
static struct origin
entry_field(struct ctx *c, const char *section, const char *name, const char *field)
{
    const yaml_node_t *map = c->top_node[top_index(section)];
    const yaml_node_t *ent = map ? sl_yaml_map_get(&c->y, map, name) : NULL;
    const yaml_node_t *v = ent ? sl_yaml_map_get(&c->y, ent, field) : NULL;
    return at(v ? v : entry_key(c, section, name));
}

/* The node of the f-th fallback of model `name` (the list itself if given as a scalar). */
static struct origin
fallback_item(struct ctx *c, const char *name, size_t f)
{
    struct origin o = entry_field(c, "models", name, "fallback");
    if (o.node != NULL && o.node->type == YAML_SEQUENCE_NODE && f < sl_yaml_seq_len(o.node))
        o.node = sl_yaml_seq_item(&c->y, o.node, f);
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Scalars                                                                                    */

static const char *
expected(const struct key *k, char *b, size_t n)
{
    char list[160];
    switch (k->type) {
    case K_STR: return "a string";
    case K_BOOL: return "true or false";
    case K_UINT:
        if (k->flags & F_AUTO)
            return "auto or a non-negative integer";
        return k->min >= 1 ? "a positive integer" : "a non-negative integer";
    case K_DOUBLE: return "a number";
    case K_DURATION: return "a duration such as 25s, 250ms, 1m or a number of seconds";
    case K_SIZE: return "a size such as 65536, 64KiB or 1MiB";
    case K_ENUM:
        enum_list(list, sizeof(list), k->names);
        snprintf(b, n, "one of %s", list);
        return b;
    case K_STRLIST: return "a list of strings";
    case K_LISTEN: return "host:port such as 127.0.0.1:8080, :8080 or [::1]:8080";
    case K_HEX256: return "64 hexadecimal digits (a SHA-256)";
    case K_KEYENV: return "the name of an environment variable";
    case K_HEADERS: return "a mapping of header names to values";
    case K_APIKEYS: return "a list of {name, sha256} or {name, key_env}";
    case K_PROVIDERS:
    case K_MODELS:
    case K_AGENTS: return "a mapping of names to settings";
    }
    return "a value";
}

/* "host:port", "[v6]:port", ":port". Returns 0 or -1. *host is allocated on success. */
static int
parse_listen(const char *s, char **host, uint16_t *port)
{
    char h[64];
    const char *colon;
    size_t hlen;
    bool v6 = s[0] == '[';
    if (v6) {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        colon = close + 1;
        if (hlen == 0 || hlen >= sizeof(h))
            return -1;
        memcpy(h, s + 1, hlen);
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
        if (hlen >= sizeof(h) || memchr(s, ':', hlen) != NULL)
            return -1; /* an IPv6 address needs brackets */
        memcpy(h, s, hlen);
    }
    h[hlen] = '\0';
    const char *p = colon + 1;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 5 || p[digits] != '\0')
        return -1;
    long v = strtol(p, NULL, 10);
    if (v > 65535)
        return -1;
    unsigned char addr[16];
    const char *canon = h;
    if (!v6 && (hlen == 0 || strcmp(h, "*") == 0))
        canon = "0.0.0.0";
    else if (!v6 && strcasecmp(h, "localhost") == 0)
        canon = "127.0.0.1";
    else if (inet_pton(v6 ? AF_INET6 : AF_INET, h, addr) != 1)
        return -1;
    *host = sl_strdup(canon);
    *port = (uint16_t)v;
    return 0;
}

static int
parse_hex256(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        unsigned v = 0;
        for (size_t j = 0; j < 2; j++) {
            int ch = tolower((unsigned char)s[2 * i + j]);
            if (ch >= '0' && ch <= '9')
                v = v * 16 + (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                v = v * 16 + (unsigned)(ch - 'a' + 10);
            else
                return -1;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

static void
sha256(const char *s, size_t n, uint8_t out[32])
{
    unsigned len = 0;
    if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        sl_panic("SHA-256 failed");
}

/* Appends one list item after its check. */
static int
strlist_add(struct ctx *c, const struct key *k, const char *path, struct origin o, void *base,
            const char *s, size_t len)
{
    char item[512], why[320];
    if (len >= sizeof(item)) {
        return fail(c, o, "%s: item longer than %zu bytes", path, sizeof(item) - 1);
    }
    memcpy(item, s, len);
    item[len] = '\0';
    if (len == 0)
        return fail(c, o, "%s: expected a non-empty string", path);
    if (k->check != NULL && k->check(item, why, sizeof(why)) != 0)
        return fail(c, o, "%s: %s", path, why);
    strv_push(FIELD(base, k->off, char **), FIELD(base, k->off2, size_t), item, len);
    return 0;
}

/*
 * Parses the text s for key k and stores it into base + k->off. `path` is the key's full
 * path for messages; o says where the text came from. `null` is YAML's null.
 */
static int
set_scalar(struct ctx *c, const struct key *k, const char *path, struct origin o, const char *s,
           bool null, void *base)
{
    char q[80], b[200], lo[32], hi[32];
    void *field = (char *)base + k->off;
    if (k->flags & F_SECRET)
        snprintf(q, sizeof(q), "(hidden)");
    else
        quote(q, sizeof(q), s);

    if (null || (*s == '\0' && (k->flags & F_NULLABLE))) {
        if (!(k->flags & F_NULLABLE))
            return fail(c, o, "%s: expected %s, got null", path, expected(k, b, sizeof(b)));
        if (k->type == K_STR)
            replace_str(field, NULL);
        else if (k->type == K_STRLIST)
            strv_clear(field, FIELD(base, k->off2, size_t));
        else
            sl_panic("config: %s cannot be null", k->path);
        return 0;
    }

    switch (k->type) {
    case K_STR:
        if (*s == '\0')
            return fail(c, o, "%s: expected a non-empty string", path);
        if (k->check != NULL && k->check(s, b, sizeof(b)) != 0)
            return fail(c, o, "%s: %s", path, b);
        replace_str(field, s);
        return 0;

    case K_BOOL:
        if (parse_bool(s, field) != 0)
            return fail(c, o, "%s: expected true or false, got %s", path, q);
        return 0;

    case K_UINT: {
        long long v;
        if ((k->flags & F_AUTO) && strcasecmp(s, "auto") == 0) {
            *(unsigned *)field = 0;
            return 0;
        }
        if (sl_parse_int(s, &v) != 0)
            return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
        if ((double)v < k->min || (double)v > k->max)
            return fail(c, o, "%s: expected an integer from %.0f to %.0f, got %s", path, k->min,
                        k->max, q);
        *(unsigned *)field = (unsigned)v;
        return 0;
    }

    case K_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
            return fail(c, o, "%s: expected a number, got %s", path, q);
        if (v < k->min || v > k->max)
            return fail(c, o, "%s: expected a number from %g to %g, got %s", path, k->min, k->max,
                        q);
        *(double *)field = v;
        if (k->flags & F_HAS)
            *FIELD(base, k->off2, bool) = true;
        return 0;
    }

    case K_DURATION: {
        uint64_t v;
        if (sl_parse_duration_ms(s, &v) != 0)
            return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
        if ((double)v < k->min || (double)v > k->max) {
            fmt_duration(lo, sizeof(lo), (uint64_t)k->min);
            fmt_duration(hi, sizeof(hi), (uint64_t)k->max);
            if (k->min == 1)
                snprintf(lo, sizeof(lo), "1ms");
            return fail(c, o, "%s: expected a duration from %s to %s, got %s", path, lo, hi, q);
        }
        *(uint64_t *)field = v;
        return 0;
    }

    case K_SIZE: {
        uint64_t v;
        if (sl_parse_size(s, &v) != 0)
            return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
        if ((double)v < k->min || (double)v > k->max) {
            fmt_size(lo, sizeof(lo), (uint64_t)k->min);
            fmt_size(hi, sizeof(hi), (uint64_t)k->max);
            return fail(c, o, "%s: expected a size from %s to %s, got %s", path, lo, hi, q);
        }
        *(uint64_t *)field = v;
        return 0;
    }

    case K_ENUM:
        for (size_t i = 0; k->names[i].name != NULL; i++) {
            if (strcasecmp(s, k->names[i].name) == 0) {
                *(int *)field = k->names[i].value;
                return 0;
            }
        }
        return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);

    case K_STRLIST: {
        /* Only the environment gives a list as text: comma-separated. */
        strv_clear(field, FIELD(base, k->off2, size_t));
        const char *p = s;
        while (*p) {
            size_t len = strcspn(p, ",");
            const char *e = p + len;
            while (len > 0 && isspace((unsigned char)*p)) {
                p++;
                len--;
            }
            while (len > 0 && isspace((unsigned char)p[len - 1]))
                len--;
            if (len > 0 && strlist_add(c, k, path, o, base, p, len) != 0)
                return -1;
            p = *e ? e + 1 : e;
        }
        return 0;
    }

    case K_LISTEN: {
        char *host;
        uint16_t port;
        if (parse_listen(s, &host, &port) != 0)
            return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
        free(*(char **)field);
        *(char **)field = host;
        *FIELD(base, k->off2, uint16_t) = port;
        return 0;
    }

    case K_HEX256:
        if (parse_hex256(s, field) != 0)
            return fail(c, o, "%s: expected 64 hexadecimal digits (a SHA-256)", path);
        return 0;

    case K_KEYENV: {
        if (check_env_name(s, b, sizeof(b)) != 0)
            return fail(c, o, "%s: %s", path, b);
        const char *v = getenv(s);
        if (v == NULL || *v == '\0')
            return fail(c, o, "%s: environment variable %s is not set", path, s);
        sha256(v, strlen(v), field);
        return 0;
    }

    case K_HEADERS:
    case K_APIKEYS:
    case K_PROVIDERS:
    case K_MODELS:
    case K_AGENTS:
        break;
    }
    return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
}

/* ------------------------------------------------------------------------------------------ */
/* YAML walking                                                                               */

static int set_node(struct ctx *c, const struct key *k, const char *path, const yaml_node_t *n,
                    void *base);

/*
 * Validates the i-th key of a mapping (a plain scalar, not seen before in the same
 * mapping) and returns its text. `parent` is the mapping's path for messages.
 */
static int
map_key(struct ctx *c, const yaml_node_t *map, size_t i, const char *parent, const char **name)
{
    const yaml_node_t *k = sl_yaml_map_key(&c->y, map, i);
    const char *dot = *parent ? "." : "";
    if (k == NULL || k->type != YAML_SCALAR_NODE || sl_yaml_is_null(k) || sl_yaml_has_nul(k))
        return fail(c, at(k ? k : map), "%s: expected a plain key, got %s",
                    *parent ? parent : "top level", k ? sl_yaml_what(k) : "nothing");
    const char *s = sl_yaml_str(k);
    for (size_t j = 0; j < i; j++) {
        const yaml_node_t *kj = sl_yaml_map_key(&c->y, map, j);
        const char *sj = kj ? sl_yaml_str(kj) : NULL;
        if (sj != NULL && strcmp(sj, s) == 0)
            return fail(c, at(k), "duplicate key %s%s%s (first at line %lu)", parent, dot, s,
                        sl_yaml_line(kj));
    }
    *name = s;
    return 0;
}

static bool
has_children(const struct key *tab, size_t ntab, const char *rel)
{
    size_t n = strlen(rel);
    for (size_t i = 0; i < ntab; i++)
        if (strncmp(tab[i].path, rel, n) == 0 && tab[i].path[n] == '.')
            return true;
    return false;
}

/* The closest key name at the level `rel` ("" or "limits."), if close enough to suggest. */
static struct sl_slice
suggest(const struct key *tab, size_t ntab, const char *rel, const char *name)
{
    struct sl_slice best = {NULL, 0};
    size_t bestd = (size_t)-1, rlen = strlen(rel), nlen = strlen(name);
    for (size_t i = 0; i < ntab; i++) {
        if (strncmp(tab[i].path, rel, rlen) != 0)
            continue;
        const char *cand = tab[i].path + rlen;
        size_t clen = strcspn(cand, ".");
        size_t d = edit_distance(name, nlen, cand, clen);
        /* "input" for "input_per_1m": a prefix is as good as a typo. */
        if (nlen >= 3 && clen > nlen && strncmp(cand, name, nlen) == 0)
            d = 1;
        if (d < bestd) {
            bestd = d;
            best = sl_slice_make(cand, clen);
        }
    }
    if (bestd > 2 || bestd * 2 > nlen)
        best.ptr = NULL;
    return best;
}

/*
 * Applies a YAML mapping to base through the table tab. `prefix` names the table's
 * object in messages ("" at the top, "providers.openai." for an entry), `rel` is the path
 * walked so far inside the table ("" or "limits."). seen, if not NULL, receives the value
 * node of every table key found.
 */
static int
load_map(struct ctx *c, const yaml_node_t *map, const char *prefix, const char *rel,
         const struct key *tab, size_t ntab, void *base, const yaml_node_t **seen)
{
    char here[512], rp[256], full[1024];
    snprintf(here, sizeof(here), "%s%s", prefix, rel);
    if (*here && here[strlen(here) - 1] == '.')
        here[strlen(here) - 1] = '\0';
    if (sl_yaml_is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return fail(c, at(map), "%s: expected a mapping, got %s", *here ? here : "top level",
                    sl_yaml_what(map));

    size_t n = sl_yaml_map_len(map);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        if (map_key(c, map, i, here, &name) != 0)
            return -1;
        const yaml_node_t *keynode = sl_yaml_map_key(&c->y, map, i);
        const yaml_node_t *value = sl_yaml_map_value(&c->y, map, i);
        int rn = snprintf(rp, sizeof(rp), "%s%s", rel, name);
        snprintf(full, sizeof(full), "%s%s%s", here, *here ? "." : "", name);
        if (rn > 0 && (size_t)rn < sizeof(rp)) {
            for (size_t t = 0; t < ntab; t++) {
                if (strcmp(tab[t].path, rp) != 0)
                    continue;
                if (seen != NULL)
                    seen[t] = value;
                if (set_node(c, &tab[t], full, value, base) != 0)
                    return -1;
                goto next;
            }
            if (has_children(tab, ntab, rp)) {
                char sub[260];
                snprintf(sub, sizeof(sub), "%s.", rp);
                if (load_map(c, value, prefix, sub, tab, ntab, base, seen) != 0)
                    return -1;
                goto next;
            }
        }
        struct sl_slice s = suggest(tab, ntab, rel, name);
        if (s.ptr != NULL)
            return fail(c, at(keynode), "unknown key %s (did you mean %.*s?)", full, (int)s.len,
                        s.ptr);
        return fail(c, at(keynode), "unknown key %s", full);
    next:;
    }
    return 0;
}

static int
load_strlist(struct ctx *c, const struct key *k, const char *path, const yaml_node_t *n,
             void *base)
{
    if (n->type == YAML_SCALAR_NODE)
        return set_scalar(c, k, path, at(n), sl_yaml_str(n), sl_yaml_is_null(n), base);
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, at(n), "%s: expected a list of strings, got %s", path, sl_yaml_what(n));
    strv_clear(FIELD(base, k->off, char **), FIELD(base, k->off2, size_t));
    size_t len = sl_yaml_seq_len(n);
    for (size_t i = 0; i < len; i++) {
        const yaml_node_t *it = sl_yaml_seq_item(&c->y, n, i);
        if (it->type != YAML_SCALAR_NODE || sl_yaml_is_null(it) || sl_yaml_has_nul(it))
            return fail(c, at(it), "%s: expected a list of strings, got %s in it", path,
                        sl_yaml_what(it));
        const char *s = sl_yaml_str(it);
        if (strlist_add(c, k, path, at(it), base, s, strlen(s)) != 0)
            return -1;
    }
    return 0;
}

/* Header names are RFC 9110 tokens; values may not break the request with CR or LF. */
static int
load_headers(struct ctx *c, const struct key *k, const char *path, const yaml_node_t *n,
             void *base)
{
    struct sl_config_header **hv = FIELD(base, k->off, struct sl_config_header *);
    size_t *nh = FIELD(base, k->off2, size_t);
    if (sl_yaml_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, at(n), "%s: expected a mapping of header names to values, got %s", path,
                    sl_yaml_what(n));
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        if (map_key(c, n, i, path, &name) != 0)
            return -1;
        const yaml_node_t *kn = sl_yaml_map_key(&c->y, n, i);
        const yaml_node_t *vn = sl_yaml_map_value(&c->y, n, i);
        if (strspn(name, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(name))
            return fail(c, at(kn), "%s.%s: not a valid header name", path, name);
        if (vn->type != YAML_SCALAR_NODE || sl_yaml_has_nul(vn))
            return fail(c, at(vn), "%s.%s: expected a string, got %s", path, name,
                        sl_yaml_what(vn));
        const char *value = sl_yaml_is_null(vn) ? "" : sl_yaml_str(vn);
        if (strpbrk(value, "\r\n") != NULL)
            return fail(c, at(vn), "%s.%s: a header value cannot contain a line break", path,
                        name);
        *hv = sl_realloc(*hv, (*nh + 1) * sizeof(**hv));
        (*hv)[*nh].name = sl_strdup(name);
        (*hv)[*nh].value = sl_strdup(value);
        (*nh)++;
    }
    return 0;
}

static int
load_apikeys(struct ctx *c, const char *path, const yaml_node_t *n)
{
    struct sl_config *cfg = c->cfg;
    char prefix[64];
    if (sl_yaml_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, at(n), "%s: expected a list of {name, sha256} or {name, key_env}, got %s",
                    path, sl_yaml_what(n));
    size_t len = sl_yaml_seq_len(n);
    for (size_t i = 0; i < len; i++) {
        const yaml_node_t *it = sl_yaml_seq_item(&c->y, n, i);
        const yaml_node_t *seen[SL_ARRAY_LEN(apikey_keys)] = {0};
        snprintf(prefix, sizeof(prefix), "%s[%zu].", path, i);
        if (it->type != YAML_MAPPING_NODE)
            return fail(c, at(it), "%s[%zu]: expected {name, sha256} or {name, key_env}, got %s",
                        path, i, sl_yaml_what(it));
        cfg->api_keys = sl_realloc(cfg->api_keys, (cfg->napi_keys + 1) * sizeof(*cfg->api_keys));
        struct sl_config_apikey *key = &cfg->api_keys[cfg->napi_keys++];
        memset(key, 0, sizeof(*key));
        if (load_map(c, it, prefix, "", apikey_keys, SL_ARRAY_LEN(apikey_keys), key, seen) != 0)
            return -1;
        if (key->name == NULL)
            return fail(c, at(it), "%s[%zu]: name is required", path, i);
        if ((seen[1] != NULL) == (seen[2] != NULL))
            return fail(c, at(it), "%s[%zu]: expected exactly one of sha256 and key_env", path, i);
        for (size_t j = 0; j + 1 < cfg->napi_keys; j++)
            if (strcmp(cfg->api_keys[j].name, key->name) == 0)
                return fail(c, at(seen[0]), "%s[%zu].name: duplicate API key name \"%s\"", path, i,
                            key->name);
    }
    return 0;
}

static int
check_entry_name(struct ctx *c, const yaml_node_t *keynode, const char *section, const char *name)
{
    size_t len = strlen(name);
    bool ok = len > 0 && len <= ENTRY_NAME_MAX;
    for (const char *p = name; ok && *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            ok = false;
    if (!ok) {
        char q[80];
        quote(q, sizeof(q), name);
        return fail(c, at(keynode),
                    "%s: expected a name of 1 to %d characters without spaces, got %s", section,
                    ENTRY_NAME_MAX, q);
    }
    return 0;
}

static void
provider_init(struct sl_config_provider *p, const char *name, enum sl_provider_kind kind)
{
    const struct kind_info *ki = kind_info(kind);
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

static void
provider_cleanup(struct sl_config_provider *p)
{
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
    memset(p, 0, sizeof(*p));
}

static void
model_cleanup(struct sl_config_model *m)
{
    free(m->name);
    free(m->provider);
    free(m->upstream_model);
    strv_clear(&m->fallback, &m->nfallback);
    memset(m, 0, sizeof(*m));
}

static void
agent_cleanup(struct sl_config_agent *a)
{
    free(a->name);
    free(a->model);
    free(a->system);
    memset(a, 0, sizeof(*a));
}

/* A slot for provider `name`: a built-in one of that name is replaced, else appended. */
static struct sl_config_provider *
provider_slot(struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (strcmp(cfg->providers[i].name, name) == 0) {
            provider_cleanup(&cfg->providers[i]);
            return &cfg->providers[i];
        }
    }
    cfg->providers = sl_realloc(cfg->providers, (cfg->nproviders + 1) * sizeof(*cfg->providers));
    struct sl_config_provider *p = &cfg->providers[cfg->nproviders++];
    memset(p, 0, sizeof(*p));
    return p;
}

static struct sl_config_model *
model_slot(struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nmodels; i++) {
        if (strcmp(cfg->models[i].name, name) == 0) {
            model_cleanup(&cfg->models[i]);
            return &cfg->models[i];
        }
    }
    cfg->models = sl_realloc(cfg->models, (cfg->nmodels + 1) * sizeof(*cfg->models));
    struct sl_config_model *m = &cfg->models[cfg->nmodels++];
    memset(m, 0, sizeof(*m));
    return m;
}

static int
load_providers(struct ctx *c, const char *path, const yaml_node_t *n)
{
    char prefix[ENTRY_NAME_MAX + 32];
    if (sl_yaml_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, at(n), "%s: expected a mapping of names to settings, got %s", path,
                    sl_yaml_what(n));
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        if (map_key(c, n, i, path, &name) != 0)
            return -1;
        const yaml_node_t *kn = sl_yaml_map_key(&c->y, n, i);
        const yaml_node_t *vn = sl_yaml_map_value(&c->y, n, i);
        if (check_entry_name(c, kn, path, name) != 0)
            return -1;
        snprintf(prefix, sizeof(prefix), "%s.%s.", path, name);
        if (!sl_yaml_is_null(vn) && vn->type != YAML_MAPPING_NODE)
            return fail(c, at(vn), "%s.%s: expected a mapping, got %s", path, name,
                        sl_yaml_what(vn));

        /* The kind decides the defaults, so it is read before the rest. */
        int kind = -1;
        const yaml_node_t *kindnode = sl_yaml_map_get(&c->y, vn, "kind");
        if (kindnode != NULL) {
            char full[ENTRY_NAME_MAX + 40];
            snprintf(full, sizeof(full), "%skind", prefix);
            struct sl_config_provider tmp = {0};
            if (set_node(c, &provider_keys[0], full, kindnode, &tmp) != 0)
                return -1;
            kind = (int)tmp.kind;
        } else {
            for (size_t j = 0; kind_names[j].name != NULL; j++)
                if (strcmp(kind_names[j].name, name) == 0)
                    kind = kind_names[j].value;
            if (kind < 0)
                return fail(c, at(kn),
                            "%s.%s: kind is required (one of demo, openai, anthropic, gemini, "
                            "ollama)",
                            path, name);
        }
        struct sl_config_provider *p = provider_slot(c->cfg, name);
        provider_init(p, name, (enum sl_provider_kind)kind);
        if (load_map(c, vn, prefix, "", provider_keys, SL_ARRAY_LEN(provider_keys), p, NULL) != 0)
            return -1;
    }
    return 0;
}

static int
load_models(struct ctx *c, const char *path, const yaml_node_t *n)
{
    char prefix[ENTRY_NAME_MAX + 32];
    if (sl_yaml_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, at(n), "%s: expected a mapping of names to settings, got %s", path,
                    sl_yaml_what(n));
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        if (map_key(c, n, i, path, &name) != 0)
            return -1;
        const yaml_node_t *kn = sl_yaml_map_key(&c->y, n, i);
        const yaml_node_t *vn = sl_yaml_map_value(&c->y, n, i);
        if (check_entry_name(c, kn, path, name) != 0)
            return -1;
        snprintf(prefix, sizeof(prefix), "%s.%s.", path, name);
        struct sl_config_model *m = model_slot(c->cfg, name);
        m->name = sl_strdup(name);
        if (load_map(c, vn, prefix, "", model_keys, SL_ARRAY_LEN(model_keys), m, NULL) != 0)
            return -1;
        if (m->provider == NULL)
            return fail(c, at(kn), "%s.%s: provider is required", path, name);
        if (m->upstream_model == NULL)
            m->upstream_model = sl_strdup(name);
    }
    return 0;
}

static int
load_agents(struct ctx *c, const char *path, const yaml_node_t *n)
{
    struct sl_config *cfg = c->cfg;
    char prefix[ENTRY_NAME_MAX + 32];
    if (sl_yaml_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, at(n), "%s: expected a mapping of names to settings, got %s", path,
                    sl_yaml_what(n));
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        if (map_key(c, n, i, path, &name) != 0)
            return -1;
        const yaml_node_t *kn = sl_yaml_map_key(&c->y, n, i);
        const yaml_node_t *vn = sl_yaml_map_value(&c->y, n, i);
        if (check_entry_name(c, kn, path, name) != 0)
            return -1;
        snprintf(prefix, sizeof(prefix), "%s.%s.", path, name);
        cfg->agents = sl_realloc(cfg->agents, (cfg->nagents + 1) * sizeof(*cfg->agents));
        struct sl_config_agent *a = &cfg->agents[cfg->nagents++];
        memset(a, 0, sizeof(*a));
        a->name = sl_strdup(name);
        if (load_map(c, vn, prefix, "", agent_keys, SL_ARRAY_LEN(agent_keys), a, NULL) != 0)
            return -1;
        if (a->model == NULL)
            return fail(c, at(kn), "%s.%s: model is required", path, name);
    }
    return 0;
}

static int
set_node(struct ctx *c, const struct key *k, const char *path, const yaml_node_t *n, void *base)
{
    char b[200];
    switch (k->type) {
    case K_STRLIST: return load_strlist(c, k, path, n, base);
    case K_HEADERS: return load_headers(c, k, path, n, base);
    case K_APIKEYS: return load_apikeys(c, path, n);
    case K_PROVIDERS: return load_providers(c, path, n);
    case K_MODELS: return load_models(c, path, n);
    case K_AGENTS: return load_agents(c, path, n);
    default: break;
    }
    if (n->type != YAML_SCALAR_NODE)
        return fail(c, at(n), "%s: expected %s, got %s", path, expected(k, b, sizeof(b)),
                    sl_yaml_what(n));
    if (sl_yaml_has_nul(n))
        return fail(c, at(n), "%s: a value cannot contain a NUL byte", path);
    return set_scalar(c, k, path, at(n), sl_yaml_str(n), sl_yaml_is_null(n), base);
}

/* ------------------------------------------------------------------------------------------ */
/* Environment                                                                                */

static void
env_name(char *out, size_t n, const char *path)
{
    size_t o = (size_t)snprintf(out, n, "SLUICE_");
    for (const char *p = path; *p && o + 1 < n; p++)
        out[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[o] = '\0';
}

/*
 * Every scalar key from SLUICE_<PATH>, then the JWT secret from the variable named by
 * auth.jwt.secret_env unless SLUICE_AUTH_JWT_SECRET itself was given. Empty variables
 * count as unset, as docker-compose and systemd often leave them.
 */
static int
apply_env(struct ctx *c)
{
    for (size_t i = 0; i < NTOP; i++) {
        const struct key *k = &top_keys[i];
        if (k->flags & F_NOENV)
            continue;
        const char *v = getenv(c->envname[i]);
        if (v == NULL || *v == '\0')
            continue;
        struct origin o = {NULL, c->envname[i]};
        if (set_scalar(c, k, k->path, o, v, false, c->cfg) != 0)
            return -1;
        c->top_env[i] = true;
    }
    int si = top_index("auth.jwt.secret");
    if (!c->top_env[si]) {
        const char *v = getenv(c->cfg->jwt.secret_env);
        if (v != NULL && *v != '\0') {
            replace_str(&c->cfg->jwt.secret, v);
            c->secret_from_env = c->cfg->jwt.secret_env;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Rules across keys                                                                          */

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
    for (size_t i = 0; i < SL_ARRAY_LEN(kinds); i++) {
        const struct kind_info *ki = &kinds[i];
        const char *name = enum_name_of(kind_names, (int)ki->kind);
        if (!env_set(ki->detect_env) || sl_config_find_provider(cfg, name) != NULL)
            continue;
        struct sl_config_provider *p = provider_slot(cfg, name);
        provider_init(p, name, ki->kind);
    }
}

/* With no models section: each provider gets its kind's default models. */
static void
add_default_models(struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        for (size_t j = 0; j < SL_ARRAY_LEN(default_models); j++) {
            const struct default_model *d = &default_models[j];
            if (d->kind != cfg->providers[i].kind || sl_config_find_model(cfg, d->name) != NULL)
                continue;
            /* cfg->providers is not touched here, so index i stays valid. */
            struct sl_config_model *m = model_slot(cfg, d->name);
            m->name = sl_strdup(d->name);
            m->provider = sl_strdup(cfg->providers[i].name);
            m->upstream_model = sl_strdup(d->name);
            m->price_input_per_1m = d->input_per_1m;
            m->price_output_per_1m = d->output_per_1m;
        }
    }
}

static int
finish_providers(struct ctx *c)
{
    for (size_t i = 0; i < c->cfg->nproviders; i++) {
        struct sl_config_provider *p = &c->cfg->providers[i];
        if (p->base_url != NULL) {
            size_t n = strlen(p->base_url);
            while (n > 0 && p->base_url[n - 1] == '/')
                p->base_url[--n] = '\0';
        }
        if (p->kind != SL_PROVIDER_DEMO && p->base_url == NULL)
            return fail(c, entry_field(c, "providers", p->name, "base_url"),
                        "providers.%s.base_url is required", p->name);
        /* A missing key is not an error: the provider answers UPSTREAM_AUTH. */
        if (p->api_key == NULL && env_set(p->api_key_env))
            p->api_key = sl_strdup(getenv(p->api_key_env));
        if (p->ca_file != NULL && access(p->ca_file, R_OK) != 0)
            return fail(c, entry_field(c, "providers", p->name, "ca_file"),
                        "providers.%s.ca_file: cannot read \"%s\": %s", p->name, p->ca_file,
                        strerror(errno));
    }
    return 0;
}

/* Depth-first search for a fallback cycle from model i; state: 0 new, 1 on stack, 2 done. */
static int
fallback_dfs(struct ctx *c, size_t i, unsigned char *state, size_t *stack, size_t depth)
{
    struct sl_config *cfg = c->cfg;
    state[i] = 1;
    stack[depth] = i;
    for (size_t f = 0; f < cfg->models[i].nfallback; f++) {
        const struct sl_config_model *fm = sl_config_find_model(cfg, cfg->models[i].fallback[f]);
        size_t j = (size_t)(fm - cfg->models);
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
            fail(c, fallback_item(c, cfg->models[i].name, f),
                 "models.%s.fallback: fallback cycle %s", cfg->models[i].name, sl_buf_cstr(&b));
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
check_models(struct ctx *c)
{
    struct sl_config *cfg = c->cfg;
    int rc = -1;
    unsigned char *state = NULL;
    size_t *stack = NULL;
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct sl_config_model *m = &cfg->models[i];
        if (sl_config_find_provider(cfg, m->provider) == NULL) {
            fail(c, entry_field(c, "models", m->name, "provider"),
                 "models.%s.provider: no provider named \"%s\"", m->name, m->provider);
            goto out;
        }
        for (size_t f = 0; f < m->nfallback; f++) {
            if (sl_config_find_model(cfg, m->fallback[f]) == NULL) {
                fail(c, fallback_item(c, m->name, f),
                     "models.%s.fallback: no model named \"%s\"", m->name, m->fallback[f]);
                goto out;
            }
        }
    }
    for (size_t i = 0; i < cfg->nagents; i++) {
        const struct sl_config_agent *a = &cfg->agents[i];
        if (sl_config_find_model(cfg, a->model) == NULL) {
            fail(c, entry_field(c, "agents", a->name, "model"),
                 "agents.%s.model: no model named \"%s\"", a->name, a->model);
            goto out;
        }
    }
    if (sl_config_find_model(cfg, cfg->default_model) == NULL) {
        fail(c, top_origin(c, "default_model"), "default_model: no model named \"%s\"",
             cfg->default_model);
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

static int
read_public_key(struct ctx *c)
{
    struct sl_config *cfg = c->cfg;
    struct origin o = top_origin(c, "auth.jwt.public_key_file");
    int rc = -1;
    char *data = NULL;
    FILE *f = fopen(cfg->jwt.public_key_file, "rb");
    if (f == NULL) {
        fail(c, o, "auth.jwt.public_key_file: cannot read \"%s\": %s", cfg->jwt.public_key_file,
             strerror(errno));
        goto out;
    }
    data = sl_malloc(PUBLIC_KEY_MAX + 1);
    size_t n = fread(data, 1, PUBLIC_KEY_MAX + 1, f);
    if (ferror(f)) {
        fail(c, o, "auth.jwt.public_key_file: cannot read \"%s\"", cfg->jwt.public_key_file);
        goto out;
    }
    if (n > PUBLIC_KEY_MAX) {
        fail(c, o, "auth.jwt.public_key_file: \"%s\" is larger than 1MiB",
             cfg->jwt.public_key_file);
        goto out;
    }
    data[n] = '\0';
    if (strlen(data) != n || strstr(data, "-----BEGIN ") == NULL) {
        fail(c, o, "auth.jwt.public_key_file: \"%s\" is not a PEM file",
             cfg->jwt.public_key_file);
        goto out;
    }
    cfg->jwt.public_key = data;
    data = NULL;
    rc = 0;
out:
    free(data);
    if (f != NULL)
        fclose(f);
    return rc;
}

static int
check_auth(struct ctx *c)
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
        return fail(c, top_origin(c, "auth.jwt.algorithms"),
                    "auth.jwt.algorithms: %s needs auth.jwt.public_key_file", asym);
    if (cfg->jwt.public_key_file != NULL && read_public_key(c) != 0)
        return -1;
    if (hs && cfg->jwt.secret == NULL) {
        char secret[33];
        sl_random_id(secret, 32);
        cfg->jwt.secret = sl_strdup(secret);
        cfg->jwt.secret_generated = true;
    }
    return 0;
}

static int
check_heartbeat(struct ctx *c)
{
    struct sl_config *cfg = c->cfg;
    char a[32], b[32];
    if (cfg->heartbeat.timeout_ms > cfg->heartbeat.interval_ms)
        return 0;
    fmt_duration(a, sizeof(a), cfg->heartbeat.timeout_ms);
    fmt_duration(b, sizeof(b), cfg->heartbeat.interval_ms);
    if (top_given(c, "heartbeat.timeout"))
        return fail(c, top_origin(c, "heartbeat.timeout"),
                    "heartbeat.timeout: must be longer than heartbeat.interval (%s), got %s", b, a);
    return fail(c, top_origin(c, "heartbeat.interval"),
                "heartbeat.interval: must be shorter than heartbeat.timeout (%s), got %s", a, b);
}

static int
finish(struct ctx *c)
{
    if (!top_given(c, "providers"))
        detect_providers(c->cfg);
    if (!top_given(c, "models"))
        add_default_models(c->cfg);
    if (finish_providers(c) != 0 || check_models(c) != 0 || check_heartbeat(c) != 0 ||
        check_auth(c) != 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Public API                                                                                 */

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

    /* The demo provider exists in every configuration unless a file redefines it. */
    cfg->providers = sl_calloc(1, sizeof(*cfg->providers));
    provider_init(&cfg->providers[0], "demo", SL_PROVIDER_DEMO);
    cfg->nproviders = 1;
    cfg->models = sl_calloc(1, sizeof(*cfg->models));
    cfg->models[0].name = sl_strdup("demo");
    cfg->models[0].provider = sl_strdup("demo");
    cfg->models[0].upstream_model = sl_strdup("demo");
    cfg->nmodels = 1;
    return cfg;
}

int
sl_config_load(const char *path, struct sl_config **out, char *err, size_t errlen)
{
    int rc = -1;
    struct ctx *c = sl_calloc(1, sizeof(*c));
    c->file = path;
    c->err = err;
    c->errlen = errlen;
    if (errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; i < NTOP; i++)
        env_name(c->envname[i], sizeof(c->envname[i]), top_keys[i].path);
    c->cfg = sl_config_new_defaults();

    if (path != NULL) {
        if (sl_yaml_load_file(&c->y, path, err, errlen) != 0)
            goto out;
        const yaml_node_t *root = sl_yaml_root(&c->y);
        if (root != NULL && load_map(c, root, "", "", top_keys, NTOP, c->cfg, c->top_node) != 0)
            goto out;
    }
    if (apply_env(c) != 0 || finish(c) != 0)
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
    strv_clear(&cfg->jwt.algorithms, &cfg->jwt.nalgorithms);
    free(cfg->jwt.public_key_file);
    free(cfg->jwt.public_key);
    free(cfg->jwt.issuer);
    free(cfg->jwt.audience);
    for (size_t i = 0; i < cfg->napi_keys; i++)
        free(cfg->api_keys[i].name);
    free(cfg->api_keys);
    strv_clear(&cfg->allowed_origins, &cfg->nallowed_origins);
    free(cfg->redis.url);
    for (size_t i = 0; i < cfg->nproviders; i++)
        provider_cleanup(&cfg->providers[i]);
    free(cfg->providers);
    for (size_t i = 0; i < cfg->nmodels; i++)
        model_cleanup(&cfg->models[i]);
    free(cfg->models);
    for (size_t i = 0; i < cfg->nagents; i++)
        agent_cleanup(&cfg->agents[i]);
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

/* ------------------------------------------------------------------------------------------ */
/* --check-config summary                                                                     */

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

static void
warn(FILE *out, unsigned *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

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
        warn(out, &n, "no JWT secret configured: a random one was generated, so tokens will not "
                      "survive a restart (set %s)", cfg->jwt.secret_env);
    else if (hs && cfg->jwt.secret != NULL && strlen(cfg->jwt.secret) < 32)
        warn(out, &n, "the JWT secret is shorter than 32 bytes");
    if (cfg->jwt.public_key_file != NULL && !asym)
        warn(out, &n, "auth.jwt.public_key_file is set but no RS*/ES* algorithm is enabled");
    if (cfg->jwt.nalgorithms == 0 && cfg->napi_keys == 0)
        warn(out, &n, "no JWT algorithm and no API key: no client can authenticate");
    for (size_t i = 0; i < cfg->nallowed_origins; i++)
        if (strcmp(cfg->allowed_origins[i], "*") == 0)
            warn(out, &n, "auth.allowed_origins has \"*\": any web page may connect");
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
            fputs(cfg->jwt.secret_generated ? " (secret generated at start)" : " (secret set)", out);
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

    fmt_size(a, sizeof(a), cfg->limits.max_message_bytes);
    fmt_duration(b, sizeof(b), cfg->limits.auth_timeout_ms);
    fprintf(out,
            "limits:    %u connections, %u streams/connection, %u messages/minute, messages up "
            "to %s, auth within %s\n",
            cfg->limits.max_connections, cfg->limits.max_streams_per_connection,
            cfg->limits.messages_per_minute, a, b);
    fmt_duration(a, sizeof(a), cfg->heartbeat.interval_ms);
    fmt_duration(b, sizeof(b), cfg->heartbeat.timeout_ms);
    fmt_duration(d, sizeof(d), cfg->resume.window_ms);
    fprintf(out, "heartbeat: every %s, timeout %s; resume window %s (%u events)\n", a, b, d,
            cfg->resume.max_events);
    fputs("redis:     ", out);
    if (cfg->redis.url != NULL)
        print_redis_url(out, cfg->redis.url);
    else
        fputs("none (single node)", out);
    fputc('\n', out);
    fprintf(out, "log:       %s, %s\n", enum_name_of(log_levels, cfg->log.level),
            enum_name_of(log_formats, (int)cfg->log.format));

    describe_providers(cfg, out);
    describe_models(cfg, out);
    describe_warnings(cfg, out);
}

/* ------------------------------------------------------------------------------------------ */
/* Reference tables for docs/configuration.md                                                 */

static void
type_text(char *b, size_t n, const struct key *k)
{
    char lo[32], hi[32], list[160];
    const char *null = (k->flags & F_NULLABLE) ? " or null" : "";
    switch (k->type) {
    case K_STR: snprintf(b, n, "string%s", null); return;
    case K_BOOL: snprintf(b, n, "bool"); return;
    case K_UINT:
        snprintf(b, n, "%sinteger %.0f–%.0f", (k->flags & F_AUTO) ? "`auto` or " : "", k->min,
                 k->max);
        return;
    case K_DOUBLE:
        fmt_num(lo, sizeof(lo), k->min);
        fmt_num(hi, sizeof(hi), k->max);
        snprintf(b, n, "number %s–%s", lo, hi);
        return;
    case K_DURATION:
        fmt_duration(lo, sizeof(lo), (uint64_t)k->min);
        fmt_duration(hi, sizeof(hi), (uint64_t)k->max);
        snprintf(b, n, "duration %s–%s", k->min == 1 ? "1ms" : lo, hi);
        return;
    case K_SIZE:
        fmt_size(lo, sizeof(lo), (uint64_t)k->min);
        fmt_size(hi, sizeof(hi), (uint64_t)k->max);
        snprintf(b, n, "size %s–%s", lo, hi);
        return;
    case K_ENUM:
        enum_list(list, sizeof(list), k->names);
        snprintf(b, n, "one of %s", list);
        return;
    case K_STRLIST: snprintf(b, n, "list of strings%s", null); return;
    case K_LISTEN: snprintf(b, n, "host:port"); return;
    case K_HEX256: snprintf(b, n, "64 hex digits"); return;
    case K_KEYENV: snprintf(b, n, "variable name"); return;
    case K_HEADERS: snprintf(b, n, "mapping"); return;
    case K_APIKEYS: snprintf(b, n, "list of mappings"); return;
    case K_PROVIDERS:
    case K_MODELS:
    case K_AGENTS: snprintf(b, n, "mapping"); return;
    }
}

/* The default of a top-level key, read from the defaults struct itself. */
static void
default_text(char *b, size_t n, const struct key *k, const struct sl_config *d)
{
    const void *f = (const char *)d + k->off;
    char t[64];
    if (k->def != NULL) {
        snprintf(b, n, "%s", k->def);
        return;
    }
    switch (k->type) {
    case K_STR:
        if (*(char *const *)f == NULL)
            snprintf(b, n, "none");
        else
            snprintf(b, n, "`%s`", *(char *const *)f);
        return;
    case K_BOOL: snprintf(b, n, "`%s`", *(const bool *)f ? "true" : "false"); return;
    case K_UINT:
        if ((k->flags & F_AUTO) && *(const unsigned *)f == 0)
            snprintf(b, n, "`auto`");
        else
            snprintf(b, n, "`%u`", *(const unsigned *)f);
        return;
    case K_DOUBLE: snprintf(b, n, "`%g`", *(const double *)f); return;
    case K_DURATION: fmt_duration(t, sizeof(t), *(const uint64_t *)f); break;
    case K_SIZE: fmt_size(t, sizeof(t), *(const uint64_t *)f); break;
    case K_ENUM: snprintf(t, sizeof(t), "%s", enum_name_of(k->names, *(const int *)f)); break;
    case K_STRLIST: {
        char *const *v = *(char **const *)f;
        size_t cnt = *(const size_t *)(const void *)((const char *)d + k->off2), o = 0;
        o += (size_t)snprintf(t + o, sizeof(t) - o, "[");
        for (size_t i = 0; i < cnt && o < sizeof(t); i++)
            o += (size_t)snprintf(t + o, sizeof(t) - o, "%s%s", i ? ", " : "", v[i]);
        if (o < sizeof(t))
            snprintf(t + o, sizeof(t) - o, "]");
        break;
    }
    case K_LISTEN:
        snprintf(t, sizeof(t), "%s:%u", *(char *const *)f,
                 (unsigned)*(const uint16_t *)(const void *)((const char *)d + k->off2));
        break;
    default: snprintf(t, sizeof(t), "-"); break;
    }
    snprintf(b, n, "`%s`", t);
}

static void
print_table(FILE *out, const char *prefix, const struct key *tab, size_t ntab,
            const struct sl_config *d)
{
    char type[200], def[200], env[80];
    if (d != NULL)
        fputs("| Key | Type | Default | Environment | Meaning |\n|---|---|---|---|---|\n", out);
    else
        fputs("| Key | Type | Default | Meaning |\n|---|---|---|---|\n", out);
    for (size_t i = 0; i < ntab; i++) {
        const struct key *k = &tab[i];
        type_text(type, sizeof(type), k);
        if (d != NULL) {
            default_text(def, sizeof(def), k, d);
            env_name(env, sizeof(env), k->path);
            if (k->flags & F_NOENV)
                fprintf(out, "| `%s%s` | %s | %s | file only | %s |\n", prefix, k->path, type,
                        def, k->doc);
            else
                fprintf(out, "| `%s%s` | %s | %s | `%s` | %s |\n", prefix, k->path, type, def,
                        env, k->doc);
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
    print_table(out, "", top_keys, NTOP, d);
    fputs("\n### `auth.api_keys[]`\n\nEach item has `name` and exactly one of `sha256` and "
          "`key_env`.\n\n",
          out);
    print_table(out, "", apikey_keys, SL_ARRAY_LEN(apikey_keys), NULL);
    fputs("\n### `providers.<name>`\n\n", out);
    print_table(out, "", provider_keys, SL_ARRAY_LEN(provider_keys), NULL);
    fputs("\n### `models.<name>`\n\n", out);
    print_table(out, "", model_keys, SL_ARRAY_LEN(model_keys), NULL);
    fputs("\n### `agents.<name>`\n\n", out);
    print_table(out, "", agent_keys, SL_ARRAY_LEN(agent_keys), NULL);

    fputs("\n### Provider kinds\n\n| Kind | Default `base_url` | Default `api_key_env` | Other "
          "defaults | Enabled without a file when set |\n|---|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < SL_ARRAY_LEN(kinds); i++) {
        const struct kind_info *ki = &kinds[i];
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
        fprintf(out, "| `%s` | %s | %s | %s | %s |\n", enum_name_of(kind_names, (int)ki->kind),
                url, key, other, detect);
    }
    fputs("\n### Default models\n\nGiven to every provider of the kind when the file has no "
          "`models:` section (list prices in USD per million tokens; override them in the "
          "file).\n\n| Kind | Model | Input | Output |\n|---|---|---|---|\n",
          out);
    fputs("| `demo` | `demo` | 0 | 0 |\n", out);
    for (size_t i = 0; i < SL_ARRAY_LEN(default_models); i++) {
        const struct default_model *m = &default_models[i];
        fprintf(out, "| `%s` | `%s` | %g | %g |\n", enum_name_of(kind_names, (int)m->kind),
                m->name, m->input_per_1m, m->output_per_1m);
    }
    sl_config_free(d);
}
