/*
 * A YAML file held as libyaml's document tree, with the few accessors the
 * configuration loader needs.
 *
 * libyaml's loader (yaml_parser_load) already builds a node tree with a source mark on
 * every node, and aliases resolved to shared nodes; a second tree of our own would only
 * copy it. This module adds what the loader lacks: one-line error messages with the
 * file and line, the YAML 1.1 rules for null, and bounds-checked navigation. Duplicate
 * keys are not detected here (libyaml keeps them all); the caller walks the pairs.
 *
 * Nodes are borrowed from the document: they live until sl_yaml_cleanup().
 */
#ifndef SL_CONFIG_YAML_H
#define SL_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

struct sl_yaml {
    yaml_document_t doc;
    bool loaded;
};

/*
 * Parses the file at path (one YAML document; an empty file is an empty document).
 * Returns 0, or -1 with a one-line "path:line: ..." message in err; on error there is
 * nothing to clean up, although sl_yaml_cleanup() is harmless.
 */
int sl_yaml_load_file(struct sl_yaml *y, const char *path, char *err, size_t errlen);

/* Same, from memory; name is used in messages. */
int sl_yaml_load_string(struct sl_yaml *y, const char *name, const char *text, size_t len,
                        char *err, size_t errlen);

void sl_yaml_cleanup(struct sl_yaml *y);

/* The top node, or NULL for an empty document. */
yaml_node_t *sl_yaml_root(struct sl_yaml *y);

/* 1-based line of the node's first character. */
unsigned long sl_yaml_line(const yaml_node_t *n);

/* An unquoted "", "~", "null", "Null" or "NULL" scalar (YAML 1.1 null). */
bool sl_yaml_is_null(const yaml_node_t *n);

/* True for a scalar that holds a NUL byte, which C strings cannot carry. */
bool sl_yaml_has_nul(const yaml_node_t *n);

/* The scalar's text (NUL-terminated, libyaml guarantees it), or NULL for other nodes. */
const char *sl_yaml_str(const yaml_node_t *n);

/* "a mapping", "a list", "null" or "a string": for "expected X, got Y" messages. */
const char *sl_yaml_what(const yaml_node_t *n);

size_t sl_yaml_map_len(const yaml_node_t *map);
yaml_node_t *sl_yaml_map_key(struct sl_yaml *y, const yaml_node_t *map, size_t i);
yaml_node_t *sl_yaml_map_value(struct sl_yaml *y, const yaml_node_t *map, size_t i);
/* The value of the first pair whose key is the scalar `key`, or NULL. */
yaml_node_t *sl_yaml_map_get(struct sl_yaml *y, const yaml_node_t *map, const char *key);

size_t sl_yaml_seq_len(const yaml_node_t *seq);
yaml_node_t *sl_yaml_seq_item(struct sl_yaml *y, const yaml_node_t *seq, size_t i);

#endif
