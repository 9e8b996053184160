#include "config/ctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

int
sl_config_fail(struct sl_config_ctx *c, struct sl_config_origin o, const char *fmt, ...)
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

size_t
sl_config_top_index(const char *path)
{
    for (size_t i = 0; i < SL_CONFIG_NTOP; i++)
        if (strcmp(sl_config_top_keys[i].path, path) == 0)
            return i;
    sl_panic("config: no key %s", path);
}

struct sl_config_origin
sl_config_top_origin(struct sl_config_ctx *c, const char *path)
{
    size_t i = sl_config_top_index(path);
    if (c->top_env[i])
        return (struct sl_config_origin){NULL, c->envname[i]};
    return sl_config_at(c->top_node[i]);
}

bool
sl_config_top_given(struct sl_config_ctx *c, const char *path)
{
    size_t i = sl_config_top_index(path);
    return c->top_env[i] || c->top_node[i] != NULL;
}

/* The key node of entry `name` in the file's `section:` mapping, or NULL. */
static const yaml_node_t *
entry_key(struct sl_config_ctx *c, const char *section, const char *name)
{
    const yaml_node_t *map = c->top_node[sl_config_top_index(section)];
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

struct sl_config_origin
sl_config_entry_origin(struct sl_config_ctx *c, const char *section, const char *name,
                       const char *field)
{
    const yaml_node_t *map = c->top_node[sl_config_top_index(section)];
    const yaml_node_t *ent = map ? sl_yaml_map_get(&c->y, map, name) : NULL;
    const yaml_node_t *v = ent ? sl_yaml_map_get(&c->y, ent, field) : NULL;
    return sl_config_at(v ? v : entry_key(c, section, name));
}
