/*
 * The configuration's entries: the named entries of the `providers:`, `models:` and
 * `agents:` sections, and the list under `auth.api_keys`.
 *
 * Loading: sl_config_entries_load() is the walker's section hook (ctx.h). Each entry is
 * applied through its key table (keys.h) with the walker; a provider's `kind` is read
 * first because it decides the provider's defaults. An entry whose name is already there
 * (the built-in demo provider and model) is replaced, not added; a name must be 1 to 128
 * bytes without spaces or control characters. Whatever was built before an error stays in
 * the struct, which sl_config_load frees whole.
 *
 * Lifetime: an entry's strings are owned by the entry; *_cleanup frees them and zeroes it.
 * The rules that relate entries to each other (a model's provider exists, fallbacks have
 * no cycle, default entries when a section is absent) are in rules.c.
 */
#ifndef SL_CONFIG_ENTRIES_H
#define SL_CONFIG_ENTRIES_H

#include <stddef.h>

#include "config/ctx.h"

/* The section hook: loads k (a section-type row) from its value node n. 0 or -1. */
int sl_config_entries_load(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
                           const yaml_node_t *n);

/*
 * Fills *p with the defaults of its kind (base URL, key variable, API version, timeouts;
 * an Ollama provider's base URL from OLLAMA_HOST when set) and a copy of name.
 */
void sl_config_provider_init(struct sl_config_provider *p, const char *name,
                             enum sl_provider_kind kind);
void sl_config_provider_cleanup(struct sl_config_provider *p);
void sl_config_model_cleanup(struct sl_config_model *m);
void sl_config_agent_cleanup(struct sl_config_agent *a);

/* socketio.namespaces: adds one (dialects copied) / frees them all. */
void sl_config_namespace_add(struct sl_config *cfg, const char *name, const char *const *dialects,
                             size_t n);
void sl_config_namespaces_clear(struct sl_config *cfg);

/*
 * The slot for the entry `name`: the existing one of that name, emptied, or a new zeroed
 * one at the end. Pointers to other entries of the array are invalid afterwards.
 */
struct sl_config_provider *sl_config_provider_slot(struct sl_config *cfg, const char *name);
struct sl_config_model *sl_config_model_slot(struct sl_config *cfg, const char *name);

/* The index of the entry `name`, or -1. */
ptrdiff_t sl_config_provider_index(const struct sl_config *cfg, const char *name);
ptrdiff_t sl_config_model_index(const struct sl_config *cfg, const char *name);
ptrdiff_t sl_config_agent_index(const struct sl_config *cfg, const char *name);

#endif
