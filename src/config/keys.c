/*
 * The configuration's key tables: one row per setting, with its path, type, place in the
 * struct, range and documentation. The loader (walk.c, env.c) applies the YAML file and
 * the environment through these rows, and sl_config_print_keys() (describe.c) turns them
 * into the reference tables of docs/configuration.md, so that the three cannot drift
 * apart. This file depends on the types of config.h only, never on the loader.
 */
#include "config/keys.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "obs/log.h"

const struct sl_config_enum sl_config_log_levels[] = {
    {"debug", SL_LOG_DEBUG},
    {"info", SL_LOG_INFO},
    {"warn", SL_LOG_WARN},
    {"error", SL_LOG_ERROR},
    {NULL, 0},
};

const struct sl_config_enum sl_config_log_formats[] = {
    {"logfmt", SL_LOG_FORMAT_LOGFMT},
    {"json", SL_LOG_FORMAT_JSON},
    {NULL, 0},
};

const struct sl_config_enum sl_config_http_clients[] = {
    {"builtin", SL_HTTP_CLIENT_BUILTIN},
    {"curl", SL_HTTP_CLIENT_CURL},
    {NULL, 0},
};

const struct sl_config_enum sl_config_kind_names[] = {
    {"demo", SL_PROVIDER_DEMO},           {"openai", SL_PROVIDER_OPENAI},
    {"anthropic", SL_PROVIDER_ANTHROPIC}, {"gemini", SL_PROVIDER_GEMINI},
    {"ollama", SL_PROVIDER_OLLAMA},       {NULL, 0},
};

static const char *const jwt_algorithms[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                             "RS512", "ES256", "ES384", "ES512"};

static int check_algorithm(const char *s, char *why, size_t whylen);
static int check_origin(const char *s, char *why, size_t whylen);
static int check_url(const char *s, char *why, size_t whylen);
static int check_redis_url(const char *s, char *why, size_t whylen);
static int check_sio_path(const char *s, char *why, size_t whylen);
static int check_dialect(const char *s, char *why, size_t whylen);
static int check_ws_path(const char *s, char *why, size_t whylen);

static const struct sl_config_enum nsp_auth_names[] = {
    {"required", SL_NSP_AUTH_REQUIRED},
    {"none", SL_NSP_AUTH_NONE},
    {NULL, 0},
};

#define CFG(f) offsetof(struct sl_config, f)
#define MIN_MS 60000.0
#define HOUR_MS 3600000.0
#define DAY_MS 86400000.0
#define MIB (1024.0 * 1024)
#define GIB (1024.0 * 1024 * 1024)

const struct sl_config_key sl_config_top_keys[] = {
    {.path = "listen",
     .type = SL_KEY_LISTEN,
     .off = CFG(listen_host),
     .off2 = CFG(listen_port),
     .doc = "Address to listen on: `127.0.0.1:8080`, `:8080` (all IPv4 interfaces), "
            "`[::1]:8080`, `[::]:8080`. Port 0 picks a free port."},
    {.path = "workers",
     .type = SL_KEY_UINT,
     .flags = SL_KEY_AUTO,
     .off = CFG(workers),
     .max = 1024,
     .doc = "Worker threads (one event loop each); `auto` or 0: one per CPU core."},
    {.path = "web_root",
     .type = SL_KEY_STR,
     .off = CFG(web_root),
     .doc = "Directory served as the test page."},
    {.path = "default_model",
     .type = SL_KEY_STR,
     .off = CFG(default_model),
     .doc = "Model used when a request names none; must be a model."},
    {.path = "listen_reuse",
     .type = SL_KEY_BOOL,
     .off = CFG(listen_reuse),
     .doc = "Start even if another process listens on the same address (both then share its "
            "connections, `SO_REUSEPORT`): for a handover, the new instance started before the "
            "old one stops. Without it, an address in use is an error. Also `--reuse-port`."},

    {.path = "auth.jwt.secret",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE | SL_KEY_SECRET,
     .off = CFG(jwt.secret),
     .def = "random",
     .doc = "HMAC secret for HS* tokens. Prefer `secret_env`. With neither, and an HS* "
            "algorithm enabled, a random secret is generated at start."},
    {.path = "auth.jwt.secret_env",
     .type = SL_KEY_STR,
     .off = CFG(jwt.secret_env),
     .check = sl_config_check_env_name,
     .doc = "Environment variable holding the HMAC secret; it overrides `secret`."},
    {.path = "auth.jwt.algorithms",
     .type = SL_KEY_STRLIST,
     .off = CFG(jwt.algorithms),
     .off2 = CFG(jwt.nalgorithms),
     .check = check_algorithm,
     .doc = "Accepted JWT algorithms: HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512 "
            "(`none` is refused). An empty list disables JWTs (API keys only)."},
    {.path = "auth.jwt.public_key_file",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = CFG(jwt.public_key_file),
     .doc = "PEM public key for RS*/ES* tokens; required when one of them is enabled."},
    {.path = "auth.jwt.issuer",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = CFG(jwt.issuer),
     .doc = "If set, tokens must carry this `iss`."},
    {.path = "auth.jwt.audience",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = CFG(jwt.audience),
     .doc = "If set, tokens must carry this `aud`."},
    {.path = "auth.jwt.leeway",
     .type = SL_KEY_DURATION,
     .off = CFG(jwt.leeway_ms),
     .max = HOUR_MS,
     .doc = "Clock skew tolerated on `exp` and `nbf`."},
    {.path = "auth.jwt.require_exp",
     .type = SL_KEY_BOOL,
     .off = CFG(jwt.require_exp),
     .doc = "Refuse JWTs without `exp`: such a token never expires, so a leaked one works for "
            "ever. Tokens of `sluice token` and the development token have one. API keys are "
            "not affected."},
    {.path = "auth.api_keys",
     .type = SL_KEY_APIKEYS,
     .flags = SL_KEY_NOENV,
     .def = "none",
     .doc = "API keys: a list of `{name, sha256}` (hex SHA-256 of the key) or "
            "`{name, key_env}` (the key itself, read from that variable and hashed at load)."},
    {.path = "auth.throttle.burst",
     .type = SL_KEY_UINT,
     .off = CFG(auth_throttle.burst),
     .max = 1000000,
     .doc = "Failed authentications allowed at once from one address (IPv6: per /64) before "
            "its attempts are refused without checking; 0: no throttling."},
    {.path = "auth.throttle.refill",
     .type = SL_KEY_DURATION,
     .off = CFG(auth_throttle.refill_ms),
     .min = 1,
     .max = DAY_MS,
     .doc = "One failure forgiven per this time; also the first block, doubled at each next one."},
    {.path = "auth.throttle.max_block",
     .type = SL_KEY_DURATION,
     .off = CFG(auth_throttle.max_block_ms),
     .min = 1,
     .max = DAY_MS,
     .doc = "The longest block of an address that keeps failing."},
    {.path = "auth.allowed_origins",
     .type = SL_KEY_STRLIST,
     .flags = SL_KEY_NULLABLE,
     .off = CFG(allowed_origins),
     .off2 = CFG(nallowed_origins),
     .check = check_origin,
     .doc = "Browser origins allowed besides the server's own (`https://app.example.com`), or "
            "`*` for any. Requests without Origin are not from a browser and always pass."},

    {.path = "limits.max_connections",
     .type = SL_KEY_UINT,
     .off = CFG(limits.max_connections),
     .min = 1,
     .max = 10000000,
     .doc = "Open connections per process; more are refused."},
    {.path = "limits.max_streams_per_connection",
     .type = SL_KEY_UINT,
     .off = CFG(limits.max_streams_per_connection),
     .min = 1,
     .max = 10000,
     .doc = "Concurrent streams per connection (`TOO_MANY_STREAMS` beyond)."},
    {.path = "limits.messages_per_minute",
     .type = SL_KEY_UINT,
     .off = CFG(limits.messages_per_minute),
     .min = 1,
     .max = 1000000,
     .doc = "Client messages per identity per minute, across its connections (before "
            "authentication: per connection) (`RATE_LIMITED`)."},
    {.path = "limits.max_message_bytes",
     .type = SL_KEY_SIZE,
     .off = CFG(limits.max_message_bytes),
     .min = 1,
     .max = GIB,
     .doc = "Largest client message (`TOO_LARGE`, close 1009); a compressed message "
            "(permessage-deflate) is measured on the wire and again once decompressed."},
    {.path = "limits.send_high_water",
     .type = SL_KEY_SIZE,
     .off = CFG(limits.send_high_water),
     .min = 1,
     .max = GIB,
     .doc = "Bytes queued for a client above which its streams' events wait in their "
            "journals (merged when sent) and, as many again waiting, pause the provider."},
    {.path = "limits.auth_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(limits.auth_timeout_ms),
     .min = 1,
     .max = HOUR_MS,
     .doc = "Time to authenticate after connecting (close 4003)."},
    {.path = "limits.max_header_bytes",
     .type = SL_KEY_SIZE,
     .off = CFG(limits.max_header_bytes),
     .min = 256,
     .max = 16 * MIB,
     .doc = "HTTP request line plus headers."},
    {.path = "limits.max_body_bytes",
     .type = SL_KEY_SIZE,
     .off = CFG(limits.max_body_bytes),
     .min = 1,
     .max = GIB,
     .doc = "HTTP request bodies."},
    {.path = "limits.header_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(limits.header_timeout_ms),
     .min = 1,
     .max = HOUR_MS,
     .doc = "Time to receive a request's headers (slowloris guard)."},
    {.path = "limits.keepalive_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(limits.keepalive_timeout_ms),
     .min = 1,
     .max = DAY_MS,
     .doc = "Idle time before a keep-alive HTTP connection is closed."},
    {.path = "limits.body_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(limits.body_timeout_ms),
     .min = 1,
     .max = HOUR_MS,
     .doc = "Time to receive a request's body once its headers are in (408)."},
    {.path = "limits.send_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(limits.send_timeout_ms),
     .min = 1,
     .max = HOUR_MS,
     .doc = "A connection whose queued output makes no progress this long (the client stopped "
            "reading) is reset."},
    {.path = "limits.max_queued_bytes",
     .type = SL_KEY_SIZE,
     .off = CFG(limits.max_queued_bytes),
     .max = GIB,
     .def = "0 (2 × `send_high_water`)",
     .doc = "Queued outbound bytes per connection above which sluice stops reading from it (no "
            "request parsed, ping answered or message read) until half has drained."},
    {.path = "limits.stream_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(limits.stream_timeout_ms),
     .max = DAY_MS,
     .doc = "Longest time a stream may run from its request to its end, retries and "
            "fallbacks included (then `UPSTREAM_TIMEOUT`); 0: no limit."},

    {.path = "limits.max_streams_per_user",
     .type = SL_KEY_UINT,
     .off = CFG(limits.max_streams_per_user),
     .max = 1000000,
     .doc = "Concurrent streams per identity across all its connections and workers "
            "(`RATE_LIMITED`, limit `streams`); 0: no limit."},
    {.path = "limits.max_connections_per_user",
     .type = SL_KEY_UINT,
     .off = CFG(limits.max_connections_per_user),
     .max = 10000000,
     .doc = "Authenticated connections per identity (`RATE_LIMITED`, then close 4029); 0: no "
            "limit."},
    {.path = "limits.max_connections_per_ip",
     .type = SL_KEY_UINT,
     .off = CFG(limits.max_connections_per_ip),
     .max = 10000000,
     .doc = "TCP connections per client address (IPv6: per /64), HTTP 429 beyond; 0: no limit. "
            "Leave 0 behind a reverse proxy, where every client has the proxy's address."},
    {.path = "limits.tokens_per_minute",
     .type = SL_KEY_UINT,
     .off = CFG(limits.tokens_per_minute),
     .max = 4000000000.0,
     .doc = "Input + output tokens per identity over the last minute, checked when a stream "
            "starts (`RATE_LIMITED`, limit `tokens`); 0: no limit."},
    {.path = "limits.max_identities",
     .type = SL_KEY_UINT,
     .off = CFG(limits.max_identities),
     .min = 64,
     .max = 100000000,
     .doc = "Identities and addresses whose limits are tracked at once; past it the idle-longest "
            "is forgotten (see Limits per identity)."},
    {.path = "limits.tiers",
     .type = SL_KEY_TIERS,
     .flags = SL_KEY_NOENV,
     .def = "none",
     .doc = "Per-identity limits by tier (see `limits.tiers.<name>`); a JWT's `sluice_tier` "
            "claim or an API key's `tier` chooses one."},

    {.path = "heartbeat.interval",
     .type = SL_KEY_DURATION,
     .off = CFG(heartbeat.interval_ms),
     .min = 1,
     .max = HOUR_MS,
     .doc = "WebSocket ping interval."},
    {.path = "heartbeat.timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(heartbeat.timeout_ms),
     .min = 1,
     .max = DAY_MS,
     .doc = "Silence after which a client is dropped (close 4008); must exceed `interval`."},

    {.path = "resume.window",
     .type = SL_KEY_DURATION,
     .off = CFG(resume.window_ms),
     .max = DAY_MS,
     .doc = "How long a disconnected client's streams keep running for `resume`; 0 cancels "
            "them at once."},
    {.path = "resume.max_events",
     .type = SL_KEY_UINT,
     .off = CFG(resume.max_events),
     .min = 1,
     .max = 10000000,
     .doc = "Events kept per stream journal."},
    {.path = "resume.max_bytes",
     .type = SL_KEY_SIZE,
     .off = CFG(resume.max_bytes),
     .min = 1024,
     .max = GIB,
     .doc = "Bytes kept per stream journal; a disconnected client's stream pauses its "
            "provider when its journal is full."},

    {.path = "redis.url",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = CFG(redis.url),
     .check = check_redis_url,
     .def = "none",
     .doc = "`redis://[:password@]host[:port][/db]`; unset: single node, all in-process."},
    {.path = "redis.node",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = CFG(redis.node),
     .def = "host name + random",
     .doc = "This node's name in the cluster (its channels and keys); unique per running node."},
    {.path = "redis.flush_interval",
     .type = SL_KEY_DURATION,
     .off = CFG(redis.flush_interval_ms),
     .max = 10000,
     .doc = "Journal records of a stream are written to Redis at most this often, in one `XADD`; "
            "0: every loop turn."},
    {.path = "redis.timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(redis.timeout_ms),
     .min = 10,
     .max = 600000,
     .doc = "Deadline to connect to Redis and for its answer at shutdown; then reconnect with "
            "backoff."},

    {.path = "budgets.usd_per_day",
     .type = SL_KEY_DOUBLE,
     .off = CFG(budgets.usd_per_day),
     .max = 1e9,
     .doc = "Spend per identity per UTC day, from the models' prices (`BUDGET_EXCEEDED`); 0: no "
            "budget."},
    {.path = "budgets.usd_per_month",
     .type = SL_KEY_DOUBLE,
     .off = CFG(budgets.usd_per_month),
     .max = 1e9,
     .doc = "Spend per identity per UTC month; 0: no budget."},
    {.path = "budgets.state_file",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = CFG(budgets.state_file),
     .doc = "File keeping the spend across restarts (relative to the working directory), "
            "replaced atomically every few seconds and at shutdown; used only when a budget is "
            "set. null: spend starts from zero at each start."},

    {.path = "shutdown.drain_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(shutdown.drain_timeout_ms),
     .max = HOUR_MS,
     .doc = "On SIGTERM, time given to running streams before closing."},
    {.path = "shutdown.retry_after",
     .type = SL_KEY_DURATION,
     .off = CFG(shutdown.retry_after_ms),
     .max = HOUR_MS,
     .doc = "Reconnect delay suggested to clients in the 1001 close reason."},

    {.path = "log.level",
     .type = SL_KEY_ENUM,
     .off = CFG(log.level),
     .names = sl_config_log_levels,
     .doc = "Least severe level logged."},
    {.path = "log.format",
     .type = SL_KEY_ENUM,
     .off = CFG(log.format),
     .names = sl_config_log_formats,
     .doc = "Log line format."},
    {.path = "debug.echo",
     .type = SL_KEY_BOOL,
     .off = CFG(debug.echo),
     .doc = "Serve `/ws/echo` (for the Autobahn test suite) and the Engine.IO and Socket.IO echo "
            "servers `/engine.io/` and `/echo.io/` (for their official test suites). Keep off in "
            "production."},

    {.path = "websocket.permessage_deflate",
     .type = SL_KEY_BOOL,
     .off = CFG(websocket.permessage_deflate),
     .doc = "Negotiate permessage-deflate (RFC 7692) with clients that offer it, on every "
            "WebSocket (native, ws-chat, Socket.IO, `/ws/echo`). Off by default: it costs CPU "
            "for every token and memory for every connection (docs/performance.md)."},
    {.path = "websocket.deflate_window_bits",
     .type = SL_KEY_UINT,
     .off = CFG(websocket.deflate_window_bits),
     .min = 9,
     .max = 15,
     .doc = "History the compressor keeps, 2^bits bytes (fewer if the client asks with "
            "`server_max_window_bits`); with `deflate_mem_level` it sets the memory a compressed "
            "connection holds: 2^(bits+2) + 2^(mem_level+9) bytes plus about 6 KiB."},
    {.path = "websocket.deflate_mem_level",
     .type = SL_KEY_UINT,
     .off = CFG(websocket.deflate_mem_level),
     .min = 1,
     .max = 9,
     .doc = "zlib memLevel of the compressor (its hash table and block buffer)."},
    {.path = "websocket.deflate_level",
     .type = SL_KEY_UINT,
     .off = CFG(websocket.deflate_level),
     .min = 1,
     .max = 9,
     .doc = "zlib compression level: 1 fastest, 9 smallest."},
    {.path = "websocket.deflate_context_takeover",
     .type = SL_KEY_BOOL,
     .off = CFG(websocket.deflate_context_takeover),
     .doc = "Keep the compressor's history across messages (small token frames compress well "
            "only with it). false: every answer says `server_no_context_takeover` and the "
            "compressor is freed after each message, so an idle connection holds none."},

    {.path = "socketio.path",
     .type = SL_KEY_STR,
     .off = CFG(socketio.path),
     .check = check_sio_path,
     .doc = "Where Socket.IO (Engine.IO v4) is served; starts and ends with `/`."},
    {.path = "socketio.ping_interval",
     .type = SL_KEY_DURATION,
     .off = CFG(socketio.ping_interval_ms),
     .min = 1,
     .max = HOUR_MS,
     .doc = "Engine.IO ping interval (replaces WebSocket pings for these clients)."},
    {.path = "socketio.ping_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(socketio.ping_timeout_ms),
     .min = 1,
     .max = HOUR_MS,
     .doc = "Time for a client's pong before its session is closed."},
    {.path = "socketio.max_payload",
     .type = SL_KEY_SIZE,
     .off = CFG(socketio.max_payload),
     .min = 64,
     .max = GIB,
     .doc = "Largest Engine.IO message (WebSocket) or long-polling POST body (413 beyond)."},
    {.path = "socketio.connect_timeout",
     .type = SL_KEY_DURATION,
     .off = CFG(socketio.connect_timeout_ms),
     .min = 1,
     .max = HOUR_MS,
     .doc = "Time to join a namespace after the Engine.IO handshake."},
    {.path = "socketio.recovery",
     .type = SL_KEY_BOOL,
     .off = CFG(socketio.recovery),
     .doc = "Socket.IO connection state recovery: CONNECT replies carry a `pid`, events an "
            "offset; within `resume.window` a reconnecting client gets what it missed."},
    {.path = "socketio.namespaces",
     .type = SL_KEY_NAMESPACES,
     .flags = SL_KEY_NOENV,
     .def = "`/`, `/stream`, `/ai`, `/sluice`",
     .doc = "Namespaces served (see `socketio.namespaces.<name>`); a file's list replaces the "
            "default one."},

    {.path = "ws_chat.path",
     .type = SL_KEY_STR,
     .off = CFG(ws_chat.path),
     .check = check_ws_path,
     .doc = "WebSocket path of the `ws-chat` dialect (seed 002)."},
    {.path = "ws_chat.memory.max_turns",
     .type = SL_KEY_UINT,
     .off = CFG(ws_chat.memory.max_turns),
     .min = 2,
     .max = 10000,
     .doc = "Messages (the user's and the answers) kept per `ws-chat` conversation; the oldest "
            "go first."},
    {.path = "ws_chat.memory.max_bytes",
     .type = SL_KEY_SIZE,
     .off = CFG(ws_chat.memory.max_bytes),
     .min = 1024,
     .max = 64 * MIB,
     .doc = "Text kept per `ws-chat` conversation; the oldest messages go first."},
    {.path = "ws_chat.memory.idle_ttl",
     .type = SL_KEY_DURATION,
     .off = CFG(ws_chat.memory.idle_ttl_ms),
     .min = 1000,
     .max = 30 * DAY_MS,
     .doc = "A `ws-chat` conversation unused this long is forgotten."},
    {.path = "ws_chat.memory.max_conversations",
     .type = SL_KEY_UINT,
     .off = CFG(ws_chat.memory.max_conversations),
     .min = 16,
     .max = 100000000,
     .doc = "`ws-chat` conversations kept in the process; past it the idle-longest is "
            "forgotten. Memory is at most about this times `max_bytes`."},

    {.path = "providers",
     .type = SL_KEY_PROVIDERS,
     .flags = SL_KEY_NOENV,
     .def = "see below",
     .doc = "Upstream providers by name (see `providers.<name>`)."},
    {.path = "models",
     .type = SL_KEY_MODELS,
     .flags = SL_KEY_NOENV,
     .def = "see below",
     .doc = "Models clients may ask for (see `models.<name>`)."},
    {.path = "agents",
     .type = SL_KEY_AGENTS,
     .flags = SL_KEY_NOENV,
     .def = "none",
     .doc = "Named presets of model, system prompt and temperature (see `agents.<name>`)."},
};

#define PRV(f) offsetof(struct sl_config_provider, f)
const struct sl_config_key sl_config_provider_keys[] = {
    {.path = "kind",
     .type = SL_KEY_ENUM,
     .off = PRV(kind),
     .names = sl_config_kind_names,
     .def = "the provider's name",
     .doc = "Protocol spoken; required unless the name is itself a kind."},
    {.path = "base_url",
     .type = SL_KEY_STR,
     .off = PRV(base_url),
     .check = check_url,
     .def = "per kind",
     .doc = "Endpoint root, `http://` or `https://`."},
    {.path = "api_key_env",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = PRV(api_key_env),
     .check = sl_config_check_env_name,
     .def = "per kind",
     .doc = "Environment variable holding the API key, read at load."},
    {.path = "api_key",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE | SL_KEY_SECRET,
     .off = PRV(api_key),
     .def = "none",
     .doc = "The key itself (prefer `api_key_env`); wins over `api_key_env`."},
    {.path = "api_version",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = PRV(api_version),
     .def = "`2023-06-01` (anthropic)",
     .doc = "The `anthropic-version` header."},
    {.path = "headers",
     .type = SL_KEY_HEADERS,
     .off = PRV(headers),
     .off2 = PRV(nheaders),
     .def = "none",
     .doc = "Extra request headers, a mapping of name to value."},
    {.path = "connect_timeout",
     .type = SL_KEY_DURATION,
     .off = PRV(connect_timeout_ms),
     .min = 1,
     .max = 10 * MIN_MS,
     .def = "`10s`",
     .doc = "TCP + TLS connect timeout."},
    {.path = "first_byte_timeout",
     .type = SL_KEY_DURATION,
     .off = PRV(first_byte_timeout_ms),
     .min = 1,
     .max = HOUR_MS,
     .def = "`60s`",
     .doc = "Time from request to the first response byte."},
    {.path = "idle_timeout",
     .type = SL_KEY_DURATION,
     .off = PRV(idle_timeout_ms),
     .min = 1,
     .max = HOUR_MS,
     .def = "`60s`",
     .doc = "Longest silence between chunks of a stream."},
    {.path = "max_connections",
     .type = SL_KEY_UINT,
     .off = PRV(max_connections),
     .min = 1,
     .max = 10000,
     .def = "`1024`",
     .doc = "Connections to the provider per worker (HTTP/1.1: one per running stream). A "
            "stream past it waits for a connection, and its client gets `progress` step "
            "`queued` (metric `sluice_upstream_queued_total`)."},
    {.path = "max_queued",
     .type = SL_KEY_UINT,
     .off = PRV(max_queued),
     .max = 100000,
     .def = "`1024`",
     .doc = "Streams waiting for a connection per worker at most (each for up to "
            "`first_byte_timeout`); past it a stream fails at once (`upstream_error`, "
            "retryable)."},
    {.path = "min_idle",
     .type = SL_KEY_UINT,
     .off = PRV(min_idle),
     .max = 10000,
     .def = "`0`",
     .doc = "Idle connections each worker keeps open to the provider, opened at start and "
            "topped up (warm-up requests: a GET of `base_url` without credentials, repeated "
            "every 30 s as keep-alive), so that a burst of new streams finds them ready. At "
            "most `max_connections`."},
    {.path = "max_retries",
     .type = SL_KEY_UINT,
     .off = PRV(max_retries),
     .max = 10,
     .def = "`2`",
     .doc = "Retries of a failed request before its first token."},
    {.path = "retry_base",
     .type = SL_KEY_DURATION,
     .off = PRV(retry_base_ms),
     .min = 1,
     .max = MIN_MS,
     .def = "`250ms`",
     .doc = "First retry backoff; doubled each time, jittered."},
    {.path = "tls_verify",
     .type = SL_KEY_BOOL,
     .off = PRV(tls_verify),
     .def = "`true`",
     .doc = "Verify the server certificate."},
    {.path = "http_client",
     .type = SL_KEY_ENUM,
     .off = PRV(http_client),
     .names = sl_config_http_clients,
     .def = "`builtin`",
     .doc = "Client of an `http://` base URL: `builtin`, sluice's own HTTP/1.1 client "
            "(a fraction of curl's CPU per request and per token), or `curl`. "
            "`https://` is always libcurl's (TLS, HTTP/2); so is `http://` through a proxy "
            "named by `http_proxy`/`all_proxy`."},
    {.path = "ca_file",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = PRV(ca_file),
     .def = "system CAs",
     .doc = "CA bundle (PEM certificates) to verify against; checked at start."},
    {.path = "tokens_per_second",
     .type = SL_KEY_DOUBLE,
     .off = PRV(demo_tokens_per_second),
     .min = 0.01,
     .max = 1e6,
     .def = "`30`",
     .doc = "Demo kind only: generation speed."},
    {.path = "default_model",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = PRV(default_model),
     .def = "its first model",
     .doc = "Model of a request that names only this provider (the `llm` dialect's "
            "`provider`); a model of this provider."},
};

#define MDL(f) offsetof(struct sl_config_model, f)
const struct sl_config_key sl_config_model_keys[] = {
    {.path = "provider",
     .type = SL_KEY_STR,
     .off = MDL(provider),
     .def = "required",
     .doc = "Name of a provider."},
    {.path = "upstream_model",
     .type = SL_KEY_STR,
     .off = MDL(upstream_model),
     .def = "the model's name",
     .doc = "Model name sent to the provider."},
    {.path = "fallback",
     .type = SL_KEY_STRLIST,
     .flags = SL_KEY_NULLABLE,
     .off = MDL(fallback),
     .off2 = MDL(nfallback),
     .def = "none",
     .doc = "Models tried in order when this one fails before its first token; no cycles."},
    {.path = "price.input_per_1m",
     .type = SL_KEY_DOUBLE,
     .off = MDL(price_input_per_1m),
     .max = 1e6,
     .def = "`0`",
     .doc = "USD per million input tokens (for `cost_usd`)."},
    {.path = "price.output_per_1m",
     .type = SL_KEY_DOUBLE,
     .off = MDL(price_output_per_1m),
     .max = 1e6,
     .def = "`0`",
     .doc = "USD per million output tokens."},
    {.path = "max_tokens",
     .type = SL_KEY_UINT,
     .off = MDL(max_tokens),
     .min = 1,
     .max = 10000000,
     .def = "provider's",
     .doc = "`max_tokens` sent when the client gives none."},
};

#define AGT(f) offsetof(struct sl_config_agent, f)
const struct sl_config_key sl_config_agent_keys[] = {
    {.path = "model",
     .type = SL_KEY_STR,
     .off = AGT(model),
     .def = "required",
     .doc = "Name of a model."},
    {.path = "system",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = AGT(system),
     .def = "none",
     .doc = "System prompt (a client's own `system` wins)."},
    {.path = "temperature",
     .type = SL_KEY_DOUBLE,
     .flags = SL_KEY_HAS,
     .off = AGT(temperature),
     .off2 = AGT(has_temperature),
     .max = 2,
     .def = "provider's",
     .doc = "Sampling temperature."},
    {.path = "max_tokens",
     .type = SL_KEY_UINT,
     .off = AGT(max_tokens),
     .min = 1,
     .max = 10000000,
     .def = "the model's",
     .doc = "Default `max_tokens`."},
};

#define NSP(f) offsetof(struct sl_config_namespace, f)
const struct sl_config_key sl_config_namespace_keys[] = {
    {.path = "dialects",
     .type = SL_KEY_STRLIST,
     .off = NSP(dialects),
     .off2 = NSP(ndialects),
     .check = check_dialect,
     .def = "none",
     .doc = "Client dialects served there: `native`, `chat`, `llm`, `stream`, `ai` "
            "(DIALECTS.md)."},
    {.path = "auth",
     .type = SL_KEY_ENUM,
     .off = NSP(auth),
     .names = nsp_auth_names,
     .def = "`required`",
     .doc = "`required`: a token (CONNECT payload `{token}`, `?token=`, or Bearer); `none`: the "
            "user is `anon:<client IP>`."},
    {.path = "models",
     .type = SL_KEY_STRLIST,
     .flags = SL_KEY_NULLABLE,
     .off = NSP(models),
     .off2 = NSP(nmodels),
     .def = "any",
     .doc = "Models (or agents) a request there may use; others are `UNKNOWN_MODEL`. Meant for "
            "`auth: none` namespaces."},
};

#define KEY(f) offsetof(struct sl_config_apikey, f)
const struct sl_config_key sl_config_apikey_keys[] = {
    {.path = "name",
     .type = SL_KEY_STR,
     .off = KEY(name),
     .def = "required",
     .doc = "Identifies the key's user in logs and `ready`; unique."},
    {.path = "sha256",
     .type = SL_KEY_HEX256,
     .flags = SL_KEY_SECRET,
     .off = KEY(sha256),
     .def = "-",
     .doc = "SHA-256 of the key as 64 hex digits (e.g. from `sha256sum`)."},
    {.path = "key_env",
     .type = SL_KEY_KEYENV,
     .off = KEY(sha256),
     .def = "-",
     .doc = "Environment variable holding the key itself; it must be set."},
    {.path = "tier",
     .type = SL_KEY_STR,
     .flags = SL_KEY_NULLABLE,
     .off = KEY(tier),
     .def = "none",
     .doc = "The key's tier: a name under `limits.tiers`."},
};

#define TIER(f) offsetof(struct sl_config_tier, f)
const struct sl_config_key sl_config_tier_keys[] = {
    {.path = "messages_per_minute",
     .type = SL_KEY_UINT,
     .off = TIER(messages_per_minute),
     .min = 1,
     .max = 1000000,
     .def = "`limits.messages_per_minute`",
     .doc = "Client messages per identity per minute."},
    {.path = "max_streams_per_user",
     .type = SL_KEY_UINT,
     .off = TIER(max_streams_per_user),
     .max = 1000000,
     .def = "`limits.max_streams_per_user`",
     .doc = "Concurrent streams per identity; 0: no limit."},
    {.path = "max_connections_per_user",
     .type = SL_KEY_UINT,
     .off = TIER(max_connections_per_user),
     .max = 10000000,
     .def = "`limits.max_connections_per_user`",
     .doc = "Authenticated connections per identity; 0: no limit."},
    {.path = "tokens_per_minute",
     .type = SL_KEY_UINT,
     .off = TIER(tokens_per_minute),
     .max = 4000000000.0,
     .def = "`limits.tokens_per_minute`",
     .doc = "Input + output tokens per identity per minute; 0: no limit."},
    {.path = "budget_usd_per_day",
     .type = SL_KEY_DOUBLE,
     .off = TIER(budget_usd_per_day),
     .max = 1e9,
     .def = "`budgets.usd_per_day`",
     .doc = "Spend per identity per UTC day; 0: no budget."},
    {.path = "budget_usd_per_month",
     .type = SL_KEY_DOUBLE,
     .off = TIER(budget_usd_per_month),
     .max = 1e9,
     .def = "`budgets.usd_per_month`",
     .doc = "Spend per identity per UTC month; 0: no budget."},
};

const struct sl_config_kind sl_config_kinds[] = {
    {SL_PROVIDER_DEMO, NULL, NULL, NULL, NULL},
    {SL_PROVIDER_OPENAI, "https://api.openai.com/v1", "OPENAI_API_KEY", NULL, "OPENAI_API_KEY"},
    {SL_PROVIDER_ANTHROPIC, "https://api.anthropic.com", "ANTHROPIC_API_KEY", "2023-06-01",
     "ANTHROPIC_API_KEY"},
    {SL_PROVIDER_GEMINI, "https://generativelanguage.googleapis.com", "GEMINI_API_KEY", NULL,
     "GEMINI_API_KEY"},
    {SL_PROVIDER_OLLAMA, "http://127.0.0.1:11434", NULL, NULL, "OLLAMA_HOST"},
};

const struct sl_config_default_model sl_config_default_models[] = {
    {SL_PROVIDER_OPENAI, "gpt-4o-mini", 0.15, 0.60},
    {SL_PROVIDER_OPENAI, "gpt-4o", 2.50, 10.00},
    {SL_PROVIDER_ANTHROPIC, "claude-sonnet-4-5", 3.00, 15.00},
    {SL_PROVIDER_ANTHROPIC, "claude-haiku-4-5", 1.00, 5.00},
    {SL_PROVIDER_GEMINI, "gemini-2.5-flash", 0.30, 2.50},
    {SL_PROVIDER_GEMINI, "gemini-2.5-pro", 1.25, 10.00},
    {SL_PROVIDER_OLLAMA, "llama3.2", 0, 0},
};

const size_t sl_config_nprovider_keys = SL_ARRAY_LEN(sl_config_provider_keys);
const size_t sl_config_nmodel_keys = SL_ARRAY_LEN(sl_config_model_keys);
const size_t sl_config_nagent_keys = SL_ARRAY_LEN(sl_config_agent_keys);
const size_t sl_config_napikey_keys = SL_ARRAY_LEN(sl_config_apikey_keys);
const size_t sl_config_nnamespace_keys = SL_ARRAY_LEN(sl_config_namespace_keys);
const size_t sl_config_ntier_keys = SL_ARRAY_LEN(sl_config_tier_keys);
const size_t sl_config_nkinds = SL_ARRAY_LEN(sl_config_kinds);
const size_t sl_config_ndefault_models = SL_ARRAY_LEN(sl_config_default_models);

_Static_assert(SL_ARRAY_LEN(sl_config_top_keys) == SL_CONFIG_NTOP, "update SL_CONFIG_NTOP");
_Static_assert(SL_ARRAY_LEN(sl_config_provider_keys) <= SL_CONFIG_ENTRY_KEYS_MAX, "too long");
_Static_assert(SL_ARRAY_LEN(sl_config_model_keys) <= SL_CONFIG_ENTRY_KEYS_MAX, "too long");
_Static_assert(SL_ARRAY_LEN(sl_config_agent_keys) <= SL_CONFIG_ENTRY_KEYS_MAX, "too long");
_Static_assert(SL_ARRAY_LEN(sl_config_apikey_keys) <= SL_CONFIG_ENTRY_KEYS_MAX, "too long");
_Static_assert(SL_ARRAY_LEN(sl_config_tier_keys) <= SL_CONFIG_ENTRY_KEYS_MAX, "too long");

const struct sl_config_kind *
sl_config_kind_info(enum sl_provider_kind kind)
{
    for (size_t i = 0; i < sl_config_nkinds; i++)
        if (sl_config_kinds[i].kind == kind)
            return &sl_config_kinds[i];
    sl_panic("unknown provider kind %d", (int)kind);
}

/* A value for a message: quoted, escaped, cut at about 60 characters. */
void
sl_config_quote(char *dst, size_t n, const char *s)
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

void
sl_config_fmt_duration(char *b, size_t n, uint64_t ms)
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

void
sl_config_fmt_size(char *b, size_t n, uint64_t bytes)
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
void
sl_config_fmt_num(char *b, size_t n, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(b, n, "%.0f", v);
    else
        snprintf(b, n, "%g", v);
}

void
sl_config_enum_list(char *b, size_t n, const struct sl_config_enum *names)
{
    size_t o = 0;
    b[0] = '\0';
    for (size_t i = 0; names[i].name != NULL && o < n; i++)
        o += (size_t)snprintf(b + o, n - o, "%s%s", i ? ", " : "", names[i].name);
}

const char *
sl_config_enum_name(const struct sl_config_enum *names, int value)
{
    for (size_t i = 0; names[i].name != NULL; i++)
        if (names[i].value == value)
            return names[i].name;
    return "?";
}

void
sl_config_env_name(char *out, size_t n, const char *path)
{
    size_t o = (size_t)snprintf(out, n, "SLUICE_");
    for (const char *p = path; *p && o + 1 < n; p++)
        out[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[o] = '\0';
}

/* Value checks ------------------------------------------------------------------------------ */

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
    sl_config_quote(q, sizeof(q), s);
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
    sl_config_quote(q, sizeof(q), s);
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
    sl_config_quote(q, sizeof(q), s);
    snprintf(why, whylen, "expected an http:// or https:// URL, got %s", q);
    return -1;
}

int
sl_config_check_env_name(const char *s, char *why, size_t whylen)
{
    char q[80];
    bool ok = *s != '\0' && !isdigit((unsigned char)*s);
    for (const char *p = s; ok && *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            ok = false;
    if (ok)
        return 0;
    sl_config_quote(q, sizeof(q), s);
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

static int
check_sio_path(const char *s, char *why, size_t whylen)
{
    size_t n = strlen(s);
    bool ok = n >= 2 && s[0] == '/' && s[n - 1] == '/';
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '?' || s[i] == '#' || s[i] == '%')
            ok = false;
    if (!ok)
        snprintf(why, whylen, "expected a path starting and ending with '/', such as /socket.io/");
    return ok ? 0 : -1;
}

/* sluice's own paths, which ws_chat.path must leave alone. */
static int
check_ws_path(const char *s, char *why, size_t whylen)
{
    static const char *const taken[] = {"/ws",      "/ws/echo",          "/ws/test",
                                        "/healthz", "/readyz",           "/metrics",
                                        "/health",  "/websocket/health", "/"};
    size_t n = strlen(s);
    bool ok = n >= 2 && s[0] == '/';
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '?' || s[i] == '#' || s[i] == '%')
            ok = false;
    if (!ok) {
        snprintf(why, whylen, "expected a path starting with '/', such as /ws/chat");
        return -1;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(taken); i++) {
        if (strcmp(s, taken[i]) == 0) {
            snprintf(why, whylen, "%s is one of sluice's own paths", taken[i]);
            return -1;
        }
    }
    return 0;
}

static int
check_dialect(const char *s, char *why, size_t whylen)
{
    static const char *const dialects[] = {"native", "chat", "llm", "stream", "ai"};
    for (size_t i = 0; i < SL_ARRAY_LEN(dialects); i++)
        if (strcmp(s, dialects[i]) == 0)
            return 0;
    snprintf(why, whylen, "expected one of native, chat, llm, stream, ai");
    return -1;
}
