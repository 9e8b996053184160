/*
 * The YAML walk of the configuration loader: applies a YAML mapping to a struct through a
 * key table (keys.h), parsing each value by its row's type and range.
 *
 * Every function returns 0, or -1 after sl_config_fail() wrote the message (ctx.h); what
 * was applied before an error stays in the struct, which sl_config_load then frees whole.
 * `base` is the struct a table's offsets point into: the struct sl_config itself for the
 * top table, an entry (provider, model, agent, API key) for the entry tables. Messages
 * name a key by its full path: `prefix` ("" at the top, "providers.openai." in an entry)
 * followed by the path inside the table.
 *
 * Keys of a section type (SL_KEY_APIKEYS, SL_KEY_PROVIDERS, SL_KEY_MODELS, SL_KEY_AGENTS)
 * are handed to c->load_section; this module does not know about entries.
 */
#ifndef SL_CONFIG_WALK_H
#define SL_CONFIG_WALK_H

#include <stdbool.h>
#include <stddef.h>

#include "config/ctx.h"

/*
 * Applies the mapping `map` to base through tab[0..ntab). `rel` is the path walked so far
 * inside the table ("" or "limits."), `prefix` names the table's object in messages.
 * Unknown keys are errors (with a "did you mean" when one is close), duplicate keys too;
 * null is an empty mapping. seen, if not NULL, receives the value node of every row found
 * (seen[i] for tab[i]; the caller zeroes it).
 */
int sl_config_walk_map(struct sl_config_ctx *c, const yaml_node_t *map, const char *prefix,
                       const char *rel, const struct sl_config_key *tab, size_t ntab, void *base,
                       const yaml_node_t **seen);

/* Applies one value node to the row k (path: the key's full path for messages). */
int sl_config_set_node(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
                       const yaml_node_t *n, void *base);

/*
 * Parses the text s for row k and stores it into base. o says where the text came from
 * (a node, or an environment variable: then a list is comma-separated); null is YAML's
 * null. Secret rows never echo their value in a message.
 */
int sl_config_set_scalar(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
                         struct sl_config_origin o, const char *s, bool null, void *base);

/*
 * The i-th key of a mapping as text, checked: a plain scalar not seen before in the same
 * mapping. `parent` is the mapping's path for messages ("" at the top).
 */
int sl_config_map_key(struct sl_config_ctx *c, const yaml_node_t *map, size_t i, const char *parent,
                      const char **name);

/* Index of the row `path` in a table (aborts if absent: a programming error). */
size_t sl_config_row(const struct sl_config_key *tab, size_t ntab, const char *path);

/* Frees a string list and empties it. */
void sl_config_strv_clear(char ***v, size_t *n);

/* Replaces an owned string by a copy of s (NULL: by NULL). */
void sl_config_replace_str(char **dst, const char *s);

#endif
