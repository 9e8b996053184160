/*
 * The configuration's key tables, internal to src/config.
 *
 * Each setting is one struct sl_config_key row: its dotted path relative to the table,
 * its type, where it lives (byte offset into struct sl_config, or into a provider, model,
 * agent or API key entry), its range and its one-line documentation. The loader applies
 * the YAML file (walk.c) and the environment (env.c) through these rows; describe.c
 * presents them (sl_config_print_keys). Adding a key: a field in config.h, its default in
 * sl_config_new_defaults (config.c), a row here, and the generated part of
 * docs/configuration.md pasted again.
 *
 * Environment variables are derived from the path (sl_config_env_name) for the top
 * table only; the entry tables (providers, models, agents, API keys, tiers) are file only.
 */
#ifndef SL_CONFIG_KEYS_H
#define SL_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

enum sl_config_ktype {
    SL_KEY_STR,      /* char * */
    SL_KEY_BOOL,     /* bool */
    SL_KEY_UINT,     /* unsigned, range min..max */
    SL_KEY_DOUBLE,   /* double, range min..max */
    SL_KEY_DURATION, /* uint64_t milliseconds, range min..max */
    SL_KEY_SIZE,     /* uint64_t bytes, range min..max */
    SL_KEY_ENUM,     /* int (or an enum of int size), from names */
    SL_KEY_STRLIST,  /* char ** at off, size_t count at off2; env: comma-separated */
    SL_KEY_LISTEN,   /* char *host at off, uint16_t port at off2 */
    SL_KEY_HEX256,   /* uint8_t[32] from 64 hex digits */
    SL_KEY_KEYENV,   /* uint8_t[32]: SHA-256 of the named environment variable's value */
    SL_KEY_HEADERS,  /* struct sl_config_header * at off, count at off2 */
    SL_KEY_APIKEYS,  /* auth.api_keys: a list of entries (sl_config_apikey_keys) */
    SL_KEY_PROVIDERS,
    SL_KEY_MODELS,
    SL_KEY_AGENTS,
    SL_KEY_NAMESPACES, /* socketio.namespaces: a mapping of entries (sl_config_namespace_keys) */
    SL_KEY_TIERS,      /* limits.tiers: a mapping of names to sl_config_tier_keys */
};

/* Flags of a row. */
#define SL_KEY_NULLABLE 0x01u /* null clears the value (strings, lists) */
#define SL_KEY_NOENV 0x02u    /* file only */
#define SL_KEY_SECRET 0x04u   /* never echoed in messages */
#define SL_KEY_AUTO 0x08u     /* SL_KEY_UINT: "auto" means 0 */
#define SL_KEY_HAS 0x10u      /* SL_KEY_DOUBLE: the bool at off2 records that it was given */

struct sl_config_enum {
    const char *name;
    int value;
};

/* A check of a string value: returns 0, or -1 with the reason ("expected ...") in why. */
typedef int (*sl_config_check_fn)(const char *s, char *why, size_t whylen);

struct sl_config_key {
    const char *path; /* relative to the table: "limits.max_connections", "price.input_per_1m" */
    enum sl_config_ktype type;
    unsigned flags;
    size_t off;
    size_t off2;
    double min, max;                    /* UINT, DOUBLE, DURATION (ms), SIZE (bytes) */
    const struct sl_config_enum *names; /* ENUM, NULL-terminated */
    sl_config_check_fn check;           /* STR, each item of STRLIST */
    const char *def; /* default shown in the docs instead of the defaults struct's value */
    const char *doc;
};

/* Defaults of a provider kind, and the variable that enables it when no file says. */
struct sl_config_kind {
    enum sl_provider_kind kind;
    const char *base_url;
    const char *api_key_env;
    const char *api_version;
    const char *detect_env;
};

/* A model given to each provider of a kind when the file has no `models:` section. */
struct sl_config_default_model {
    enum sl_provider_kind kind;
    const char *name;
    double input_per_1m, output_per_1m;
};

#define SL_CONFIG_NTOP 75
#define SL_CONFIG_ENTRY_KEYS_MAX 24

extern const struct sl_config_key sl_config_top_keys[]; /* SL_CONFIG_NTOP rows */
extern const struct sl_config_key sl_config_provider_keys[];
extern const size_t sl_config_nprovider_keys;
extern const struct sl_config_key sl_config_model_keys[];
extern const size_t sl_config_nmodel_keys;
extern const struct sl_config_key sl_config_agent_keys[];
extern const size_t sl_config_nagent_keys;
extern const struct sl_config_key sl_config_apikey_keys[];
extern const size_t sl_config_napikey_keys;
extern const struct sl_config_key sl_config_namespace_keys[];
extern const size_t sl_config_nnamespace_keys;
extern const struct sl_config_key sl_config_tier_keys[];
extern const size_t sl_config_ntier_keys;
extern const struct sl_config_kind sl_config_kinds[];
extern const size_t sl_config_nkinds;
extern const struct sl_config_default_model sl_config_default_models[];
extern const size_t sl_config_ndefault_models;
extern const struct sl_config_enum sl_config_log_levels[];
extern const struct sl_config_enum sl_config_log_formats[];
extern const struct sl_config_enum sl_config_kind_names[];
extern const struct sl_config_enum sl_config_http_clients[];

/* The defaults of a kind (aborts on a value outside the enum: a programming error). */
const struct sl_config_kind *sl_config_kind_info(enum sl_provider_kind kind);

/* "limits.max_connections" -> "SLUICE_LIMITS_MAX_CONNECTIONS". */
void sl_config_env_name(char *out, size_t n, const char *path);

/* Letters, digits and '_', not starting with a digit (an sl_config_check_fn). */
int sl_config_check_env_name(const char *s, char *why, size_t whylen);

/* Formatting for messages and docs; every function NUL-terminates within n bytes. */
void sl_config_quote(char *dst, size_t n, const char *s);    /* "value", escaped, cut; n >= 16 */
void sl_config_fmt_duration(char *b, size_t n, uint64_t ms); /* 250ms, 25s, 10m, 1h, 1d */
void sl_config_fmt_size(char *b, size_t n, uint64_t bytes);  /* 100, 16KiB, 1MiB, 1GiB */
void sl_config_fmt_num(char *b, size_t n, double v);         /* 1000000 rather than 1e+06 */
void sl_config_enum_list(char *b, size_t n, const struct sl_config_enum *names); /* a, b, c */
const char *sl_config_enum_name(const struct sl_config_enum *names, int value);  /* or "?" */

#endif
