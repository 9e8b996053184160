/*
 * The state of one sl_config_load() call, shared by the loader's parts, and its errors.
 *
 * The loader is split by job, each part a module of src/config taking this context:
 *   walk.c     the YAML walk: mappings through a key table, scalars, lists, headers;
 *   entries.c  the sections of named entries (providers, models, agents) and auth.api_keys;
 *   env.c      the environment pass (SLUICE_<PATH> variables, the JWT secret variable);
 *   rules.c    the rules that span keys, run last (references, cycles, files, secrets);
 *   config.c   the public API of config.h, which runs them in that order.
 * keys.c holds the tables they are all driven by; nothing here is visible outside
 * src/config.
 *
 * Errors: every part reports through sl_config_fail(), which writes the one-line message
 * of config.h ("file:line: key.path: what") and returns -1; the caller then returns -1
 * too, without cleaning up: sl_config_load frees the whole struct being built. Where a
 * value came from is a struct sl_config_origin: its YAML node, its environment variable,
 * or nothing (a default). The libyaml document lives as long as the context, so that the
 * rules run last can still name the line a value came from.
 */
#ifndef SL_CONFIG_CTX_H
#define SL_CONFIG_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "config/keys.h"
#include "config/yaml.h"

struct sl_config_ctx;

/*
 * Loads a key of a section type (SL_KEY_APIKEYS, SL_KEY_PROVIDERS, SL_KEY_MODELS,
 * SL_KEY_AGENTS) from its YAML value. The walker hands such keys to this hook (set by
 * config.c to the entries module), so that walk.c does not depend on entries.c, which
 * uses the walker for each entry. Returns 0 or -1 (after sl_config_fail).
 */
typedef int (*sl_config_section_fn)(struct sl_config_ctx *c, const struct sl_config_key *k,
                                    const char *path, const yaml_node_t *n);

struct sl_config_ctx {
    const char *file; /* NULL: no file */
    struct sl_yaml y;
    struct sl_config *cfg; /* being built; freed by sl_config_load on any error */
    char *err;
    size_t errlen;
    sl_config_section_fn load_section;
    const yaml_node_t *top_node[SL_CONFIG_NTOP]; /* value node of each key given in the file */
    bool top_env[SL_CONFIG_NTOP];                /* set from the environment (wins over top_node) */
    char envname[SL_CONFIG_NTOP][64];            /* SLUICE_<PATH> of each top key */
};

/* Where a value came from: a YAML node, an environment variable, or nowhere (defaults). */
struct sl_config_origin {
    const yaml_node_t *node;
    const char *env;
};

static inline struct sl_config_origin
sl_config_at(const yaml_node_t *n)
{
    return (struct sl_config_origin){n, NULL};
}

/*
 * Writes "file:line: message" (or "VARIABLE: message", or "file: message" without a node)
 * into c->err on one line (line breaks and tabs become spaces). Returns -1.
 */
int sl_config_fail(struct sl_config_ctx *c, struct sl_config_origin o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Index of the top-level key `path` in sl_config_top_keys (a programming error if absent). */
size_t sl_config_top_index(const char *path);

/* Where a top-level key was last set: the environment wins over the file. */
struct sl_config_origin sl_config_top_origin(struct sl_config_ctx *c, const char *path);

/* Whether the file or the environment gave the top-level key `path`. */
bool sl_config_top_given(struct sl_config_ctx *c, const char *path);

/*
 * The value node of `field` in entry `name` of the file's `section:` mapping, else the
 * entry's key node, else nothing: for messages about an entry found by the rules.
 */
struct sl_config_origin sl_config_entry_origin(struct sl_config_ctx *c, const char *section,
                                               const char *name, const char *field);

#endif
