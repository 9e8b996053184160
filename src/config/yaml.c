#include "config/yaml.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Turns the parser's error into "name:line: YAML syntax error: problem (context)". */
static void
parser_error(const yaml_parser_t *p, const char *name, char *err, size_t errlen)
{
    const char *problem = p->problem ? p->problem : "malformed document";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        snprintf(err, errlen, "%s: out of memory while reading YAML", name);
        return;
    case YAML_READER_ERROR:
        /* Encoding problems: the reader knows the byte offset, not always a line. */
        snprintf(err, errlen, "%s: YAML syntax error: %s at byte %zu", name, problem,
                 p->problem_offset);
        return;
    default:
        break;
    }
    unsigned long line = (unsigned long)p->problem_mark.line + 1;
    unsigned long col = (unsigned long)p->problem_mark.column + 1;
    unsigned long ctxline = (unsigned long)p->context_mark.line + 1;
    /* "while scanning a quoted scalar" is only useful with where that scalar began. */
    if (p->context != NULL && ctxline != line)
        snprintf(err, errlen,
                 "%s:%lu: YAML syntax error: %s at column %lu (%s started at line %lu)", name, line,
                 problem, col, p->context, ctxline);
    else if (p->context != NULL)
        snprintf(err, errlen, "%s:%lu: YAML syntax error: %s at column %lu (%s)", name, line,
                 problem, col, p->context);
    else
        snprintf(err, errlen, "%s:%lu: YAML syntax error: %s at column %lu", name, line, problem,
                 col);
}

/*
 * Loads the first document and makes sure no second one follows: a stray "---" in a
 * configuration file is almost always a mistake, and silently ignoring the rest of the
 * file would hide it.
 */
static int
load(struct sl_yaml *y, yaml_parser_t *p, const char *name, char *err, size_t errlen)
{
    int rc = -1;
    memset(y, 0, sizeof(*y));
    if (!yaml_parser_load(p, &y->doc)) {
        /* On failure libyaml has already released the partial document. */
        parser_error(p, name, err, errlen);
        goto out;
    }
    y->loaded = true;
    if (yaml_document_get_root_node(&y->doc) != NULL) {
        yaml_document_t next;
        if (!yaml_parser_load(p, &next)) {
            parser_error(p, name, err, errlen);
            goto out;
        }
        bool more = yaml_document_get_root_node(&next) != NULL;
        unsigned long line = (unsigned long)next.start_mark.line + 1;
        yaml_document_delete(&next);
        if (more) {
            snprintf(err, errlen, "%s:%lu: only one YAML document is allowed", name, line);
            goto out;
        }
    }
    rc = 0;
out:
    if (rc != 0)
        sl_yaml_cleanup(y);
    return rc;
}

int
sl_yaml_load_file(struct sl_yaml *y, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    yaml_parser_t p;
    memset(y, 0, sizeof(*y));
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (!yaml_parser_initialize(&p)) {
        snprintf(err, errlen, "%s: out of memory while reading YAML", path);
        goto out_file;
    }
    yaml_parser_set_input_file(&p, f);
    rc = load(y, &p, path, err, errlen);
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        sl_yaml_cleanup(y);
        rc = -1;
    }
    yaml_parser_delete(&p);
out_file:
    fclose(f);
    return rc;
}

int
sl_yaml_load_string(struct sl_yaml *y, const char *name, const char *text, size_t len, char *err,
                    size_t errlen)
{
    yaml_parser_t p;
    memset(y, 0, sizeof(*y));
    if (!yaml_parser_initialize(&p)) {
        snprintf(err, errlen, "%s: out of memory while reading YAML", name);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = load(y, &p, name, err, errlen);
    yaml_parser_delete(&p);
    return rc;
}

void
sl_yaml_cleanup(struct sl_yaml *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = false;
}

yaml_node_t *
sl_yaml_root(struct sl_yaml *y)
{
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

unsigned long
sl_yaml_line(const yaml_node_t *n)
{
    return (unsigned long)n->start_mark.line + 1;
}

bool
sl_yaml_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

bool
sl_yaml_has_nul(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE &&
           strlen((const char *)n->data.scalar.value) != n->data.scalar.length;
}

const char *
sl_yaml_str(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

const char *
sl_yaml_what(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    default:
        return sl_yaml_is_null(n) ? "null" : "a string";
    }
}

size_t
sl_yaml_map_len(const yaml_node_t *map)
{
    if (map->type != YAML_MAPPING_NODE)
        return 0;
    return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

yaml_node_t *
sl_yaml_map_key(struct sl_yaml *y, const yaml_node_t *map, size_t i)
{
    if (i >= sl_yaml_map_len(map))
        return NULL;
    return yaml_document_get_node(&y->doc, map->data.mapping.pairs.start[i].key);
}

yaml_node_t *
sl_yaml_map_value(struct sl_yaml *y, const yaml_node_t *map, size_t i)
{
    if (i >= sl_yaml_map_len(map))
        return NULL;
    return yaml_document_get_node(&y->doc, map->data.mapping.pairs.start[i].value);
}

yaml_node_t *
sl_yaml_map_get(struct sl_yaml *y, const yaml_node_t *map, const char *key)
{
    size_t n = sl_yaml_map_len(map);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *k = sl_yaml_map_key(y, map, i);
        const char *s = k ? sl_yaml_str(k) : NULL;
        if (s != NULL && strcmp(s, key) == 0)
            return sl_yaml_map_value(y, map, i);
    }
    return NULL;
}

size_t
sl_yaml_seq_len(const yaml_node_t *seq)
{
    if (seq->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *
sl_yaml_seq_item(struct sl_yaml *y, const yaml_node_t *seq, size_t i)
{
    if (i >= sl_yaml_seq_len(seq))
        return NULL;
    return yaml_document_get_node(&y->doc, seq->data.sequence.items.start[i]);
}
