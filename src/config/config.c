/*
 * The configuration loader.
 *
 * Every setting is a row in one of the key tables of keys.c (path, type, offset into its
 * struct, range, documentation). The YAML walker and the environment pass below, the
 * error messages, and the documentation table (sl_config_print_keys, pasted into
 * docs/configuration.md and checked by a unit test) are all driven by those rows, so a
 * new scalar key is one row there plus its field in config.h.
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
#include "config/keys.h"
#include "config/yaml.h"
#include "obs/log.h"

#define PUBLIC_KEY_MAX (1u << 20)
#define ENTRY_NAME_MAX 128

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
/* Load context and errors                                                                    */

struct ctx {
    const char *file; /* NULL: no file */
    struct sl_yaml y;
    struct sl_config *cfg;
    char *err;
    size_t errlen;
    const yaml_node_t *top_node[SL_CONFIG_NTOP]; /* value node of each key given in the file */
    bool top_env[SL_CONFIG_NTOP];                /* set from the environment (wins over top_node) */
    char envname[SL_CONFIG_NTOP][64];
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
    for (size_t i = 0; i < SL_CONFIG_NTOP; i++)
        if (strcmp(sl_config_top_keys[i].path, path) == 0)
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
expected(const struct sl_config_key *k, char *b, size_t n)
{
    char list[160];
    switch (k->type) {
    case SL_KEY_STR:
        return "a string";
    case SL_KEY_BOOL:
        return "true or false";
    case SL_KEY_UINT:
        if (k->flags & SL_KEY_AUTO)
            return "auto or a non-negative integer";
        return k->min >= 1 ? "a positive integer" : "a non-negative integer";
    case SL_KEY_DOUBLE:
        return "a number";
    case SL_KEY_DURATION:
        return "a duration such as 25s, 250ms, 1m or a number of seconds";
    case SL_KEY_SIZE:
        return "a size such as 65536, 64KiB or 1MiB";
    case SL_KEY_ENUM:
        sl_config_enum_list(list, sizeof(list), k->names);
        snprintf(b, n, "one of %s", list);
        return b;
    case SL_KEY_STRLIST:
        return "a list of strings";
    case SL_KEY_LISTEN:
        return "host:port such as 127.0.0.1:8080, :8080 or [::1]:8080";
    case SL_KEY_HEX256:
        return "64 hexadecimal digits (a SHA-256)";
    case SL_KEY_KEYENV:
        return "the name of an environment variable";
    case SL_KEY_HEADERS:
        return "a mapping of header names to values";
    case SL_KEY_APIKEYS:
        return "a list of {name, sha256} or {name, key_env}";
    case SL_KEY_PROVIDERS:
    case SL_KEY_MODELS:
    case SL_KEY_AGENTS:
        return "a mapping of names to settings";
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
strlist_add(struct ctx *c, const struct sl_config_key *k, const char *path, struct origin o,
            void *base, const char *s, size_t len)
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
set_scalar(struct ctx *c, const struct sl_config_key *k, const char *path, struct origin o,
           const char *s, bool null, void *base)
{
    char q[80], b[200], lo[32], hi[32];
    void *field = (char *)base + k->off;
    if (k->flags & SL_KEY_SECRET)
        snprintf(q, sizeof(q), "(hidden)");
    else
        sl_config_quote(q, sizeof(q), s);

    if (null || (*s == '\0' && (k->flags & SL_KEY_NULLABLE))) {
        if (!(k->flags & SL_KEY_NULLABLE))
            return fail(c, o, "%s: expected %s, got null", path, expected(k, b, sizeof(b)));
        if (k->type == SL_KEY_STR)
            replace_str(field, NULL);
        else if (k->type == SL_KEY_STRLIST)
            strv_clear(field, FIELD(base, k->off2, size_t));
        else
            sl_panic("config: %s cannot be null", k->path);
        return 0;
    }

    switch (k->type) {
    case SL_KEY_STR:
        if (*s == '\0')
            return fail(c, o, "%s: expected a non-empty string", path);
        if (k->check != NULL && k->check(s, b, sizeof(b)) != 0)
            return fail(c, o, "%s: %s", path, b);
        replace_str(field, s);
        return 0;

    case SL_KEY_BOOL:
        if (parse_bool(s, field) != 0)
            return fail(c, o, "%s: expected true or false, got %s", path, q);
        return 0;

    case SL_KEY_UINT: {
        long long v;
        if ((k->flags & SL_KEY_AUTO) && strcasecmp(s, "auto") == 0) {
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

    case SL_KEY_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
            return fail(c, o, "%s: expected a number, got %s", path, q);
        if (v < k->min || v > k->max) {
            sl_config_fmt_num(lo, sizeof(lo), k->min);
            sl_config_fmt_num(hi, sizeof(hi), k->max);
            return fail(c, o, "%s: expected a number from %s to %s, got %s", path, lo, hi, q);
        }
        *(double *)field = v;
        if (k->flags & SL_KEY_HAS)
            *FIELD(base, k->off2, bool) = true;
        return 0;
    }

    case SL_KEY_DURATION: {
        uint64_t v;
        if (sl_parse_duration_ms(s, &v) != 0)
            return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
        if ((double)v < k->min || (double)v > k->max) {
            sl_config_fmt_duration(lo, sizeof(lo), (uint64_t)k->min);
            sl_config_fmt_duration(hi, sizeof(hi), (uint64_t)k->max);
            if (k->min == 1)
                snprintf(lo, sizeof(lo), "1ms");
            return fail(c, o, "%s: expected a duration from %s to %s, got %s", path, lo, hi, q);
        }
        *(uint64_t *)field = v;
        return 0;
    }

    case SL_KEY_SIZE: {
        uint64_t v;
        if (sl_parse_size(s, &v) != 0)
            return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
        if ((double)v < k->min || (double)v > k->max) {
            sl_config_fmt_size(lo, sizeof(lo), (uint64_t)k->min);
            sl_config_fmt_size(hi, sizeof(hi), (uint64_t)k->max);
            return fail(c, o, "%s: expected a size from %s to %s, got %s", path, lo, hi, q);
        }
        *(uint64_t *)field = v;
        return 0;
    }

    case SL_KEY_ENUM:
        for (size_t i = 0; k->names[i].name != NULL; i++) {
            if (strcasecmp(s, k->names[i].name) == 0) {
                *(int *)field = k->names[i].value;
                return 0;
            }
        }
        return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);

    case SL_KEY_STRLIST: {
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

    case SL_KEY_LISTEN: {
        char *host;
        uint16_t port;
        if (parse_listen(s, &host, &port) != 0)
            return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
        free(*(char **)field);
        *(char **)field = host;
        *FIELD(base, k->off2, uint16_t) = port;
        return 0;
    }

    case SL_KEY_HEX256:
        if (parse_hex256(s, field) != 0)
            return fail(c, o, "%s: expected 64 hexadecimal digits (a SHA-256)", path);
        return 0;

    case SL_KEY_KEYENV: {
        if (sl_config_check_env_name(s, b, sizeof(b)) != 0)
            return fail(c, o, "%s: %s", path, b);
        const char *v = getenv(s);
        if (v == NULL || *v == '\0')
            return fail(c, o, "%s: environment variable %s is not set", path, s);
        sha256(v, strlen(v), field);
        return 0;
    }

    case SL_KEY_HEADERS:
    case SL_KEY_APIKEYS:
    case SL_KEY_PROVIDERS:
    case SL_KEY_MODELS:
    case SL_KEY_AGENTS:
        break;
    }
    return fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
}

/* ------------------------------------------------------------------------------------------ */
/* YAML walking                                                                               */

static int set_node(struct ctx *c, const struct sl_config_key *k, const char *path,
                    const yaml_node_t *n, void *base);

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
has_children(const struct sl_config_key *tab, size_t ntab, const char *rel)
{
    size_t n = strlen(rel);
    for (size_t i = 0; i < ntab; i++)
        if (strncmp(tab[i].path, rel, n) == 0 && tab[i].path[n] == '.')
            return true;
    return false;
}

/* The closest key name at the level `rel` ("" or "limits."), if close enough to suggest. */
static struct sl_slice
suggest(const struct sl_config_key *tab, size_t ntab, const char *rel, const char *name)
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
         const struct sl_config_key *tab, size_t ntab, void *base, const yaml_node_t **seen)
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
load_strlist(struct ctx *c, const struct sl_config_key *k, const char *path, const yaml_node_t *n,
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
load_headers(struct ctx *c, const struct sl_config_key *k, const char *path, const yaml_node_t *n,
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
            return fail(c, at(vn), "%s.%s: a header value cannot contain a line break", path, name);
        *hv = sl_realloc(*hv, (*nh + 1) * sizeof(**hv));
        (*hv)[*nh].name = sl_strdup(name);
        (*hv)[*nh].value = sl_strdup(value);
        (*nh)++;
    }
    return 0;
}

/* Index of the row `path` in a table (a programming error if absent). */
static size_t
row(const struct sl_config_key *tab, size_t ntab, const char *path)
{
    for (size_t i = 0; i < ntab; i++)
        if (strcmp(tab[i].path, path) == 0)
            return i;
    sl_panic("config: no key %s", path);
}

static int
load_apikeys(struct ctx *c, const char *path, const yaml_node_t *n)
{
    const struct sl_config_key *tab = sl_config_apikey_keys;
    size_t ntab = sl_config_napikey_keys;
    size_t iname = row(tab, ntab, "name"), ihash = row(tab, ntab, "sha256"),
           ienv = row(tab, ntab, "key_env");
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
        const yaml_node_t *seen[SL_CONFIG_ENTRY_KEYS_MAX] = {0};
        snprintf(prefix, sizeof(prefix), "%s[%zu].", path, i);
        if (it->type != YAML_MAPPING_NODE)
            return fail(c, at(it), "%s[%zu]: expected {name, sha256} or {name, key_env}, got %s",
                        path, i, sl_yaml_what(it));
        cfg->api_keys = sl_realloc(cfg->api_keys, (cfg->napi_keys + 1) * sizeof(*cfg->api_keys));
        struct sl_config_apikey *key = &cfg->api_keys[cfg->napi_keys++];
        memset(key, 0, sizeof(*key));
        if (load_map(c, it, prefix, "", tab, ntab, key, seen) != 0)
            return -1;
        if (key->name == NULL)
            return fail(c, at(it), "%s[%zu]: name is required", path, i);
        if ((seen[ihash] != NULL) == (seen[ienv] != NULL))
            return fail(c, at(it), "%s[%zu]: expected exactly one of sha256 and key_env", path, i);
        for (size_t j = 0; j + 1 < cfg->napi_keys; j++)
            if (strcmp(cfg->api_keys[j].name, key->name) == 0)
                return fail(c, at(seen[iname]), "%s[%zu].name: duplicate API key name \"%s\"", path,
                            i, key->name);
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
        sl_config_quote(q, sizeof(q), name);
        return fail(c, at(keynode),
                    "%s: expected a name of 1 to %d characters without spaces, got %s", section,
                    ENTRY_NAME_MAX, q);
    }
    return 0;
}

/*
 * Opens entry i of a `providers:`, `models:` or `agents:` mapping: validates its name and
 * returns the name, its key and value nodes, and the path prefix ("models.gpt-4o.").
 */
static int
entry_at(struct ctx *c, const yaml_node_t *n, size_t i, const char *path, char *prefix,
         size_t prefixlen, const char **name, const yaml_node_t **kn, const yaml_node_t **vn)
{
    if (map_key(c, n, i, path, name) != 0)
        return -1;
    *kn = sl_yaml_map_key(&c->y, n, i);
    *vn = sl_yaml_map_value(&c->y, n, i);
    if (check_entry_name(c, *kn, path, *name) != 0)
        return -1;
    snprintf(prefix, prefixlen, "%s.%s.", path, *name);
    return 0;
}

/* A section of entries must be a mapping; null is an empty one. Returns 1 to skip it. */
static int
entries_begin(struct ctx *c, const char *path, const yaml_node_t *n)
{
    if (sl_yaml_is_null(n))
        return 1;
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, at(n), "%s: expected a mapping of names to settings, got %s", path,
                    sl_yaml_what(n));
    return 0;
}

static void
provider_init(struct sl_config_provider *p, const char *name, enum sl_provider_kind kind)
{
    const struct sl_config_kind *ki = sl_config_kind_info(kind);
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
    int rc = entries_begin(c, path, n);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        const yaml_node_t *kn, *vn;
        if (entry_at(c, n, i, path, prefix, sizeof(prefix), &name, &kn, &vn) != 0)
            return -1;
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
            const struct sl_config_key *k = &sl_config_provider_keys[row(
                sl_config_provider_keys, sl_config_nprovider_keys, "kind")];
            if (set_node(c, k, full, kindnode, &tmp) != 0)
                return -1;
            kind = (int)tmp.kind;
        } else {
            for (size_t j = 0; sl_config_kind_names[j].name != NULL; j++)
                if (strcmp(sl_config_kind_names[j].name, name) == 0)
                    kind = sl_config_kind_names[j].value;
            if (kind < 0)
                return fail(c, at(kn),
                            "%s.%s: kind is required (one of demo, openai, anthropic, gemini, "
                            "ollama)",
                            path, name);
        }
        struct sl_config_provider *p = provider_slot(c->cfg, name);
        provider_init(p, name, (enum sl_provider_kind)kind);
        if (load_map(c, vn, prefix, "", sl_config_provider_keys, sl_config_nprovider_keys, p,
                     NULL) != 0)
            return -1;
    }
    return 0;
}

static int
load_models(struct ctx *c, const char *path, const yaml_node_t *n)
{
    char prefix[ENTRY_NAME_MAX + 32];
    int rc = entries_begin(c, path, n);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        const yaml_node_t *kn, *vn;
        if (entry_at(c, n, i, path, prefix, sizeof(prefix), &name, &kn, &vn) != 0)
            return -1;
        struct sl_config_model *m = model_slot(c->cfg, name);
        m->name = sl_strdup(name);
        if (load_map(c, vn, prefix, "", sl_config_model_keys, sl_config_nmodel_keys, m, NULL) != 0)
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
    int rc = entries_begin(c, path, n);
    if (rc != 0)
        return rc > 0 ? 0 : -1;
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        const yaml_node_t *kn, *vn;
        if (entry_at(c, n, i, path, prefix, sizeof(prefix), &name, &kn, &vn) != 0)
            return -1;
        cfg->agents = sl_realloc(cfg->agents, (cfg->nagents + 1) * sizeof(*cfg->agents));
        struct sl_config_agent *a = &cfg->agents[cfg->nagents++];
        memset(a, 0, sizeof(*a));
        a->name = sl_strdup(name);
        if (load_map(c, vn, prefix, "", sl_config_agent_keys, sl_config_nagent_keys, a, NULL) != 0)
            return -1;
        if (a->model == NULL)
            return fail(c, at(kn), "%s.%s: model is required", path, name);
    }
    return 0;
}

static int
set_node(struct ctx *c, const struct sl_config_key *k, const char *path, const yaml_node_t *n,
         void *base)
{
    char b[200];
    switch (k->type) {
    case SL_KEY_STRLIST:
        return load_strlist(c, k, path, n, base);
    case SL_KEY_HEADERS:
        return load_headers(c, k, path, n, base);
    case SL_KEY_APIKEYS:
        return load_apikeys(c, path, n);
    case SL_KEY_PROVIDERS:
        return load_providers(c, path, n);
    case SL_KEY_MODELS:
        return load_models(c, path, n);
    case SL_KEY_AGENTS:
        return load_agents(c, path, n);
    default:
        break;
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

/*
 * Every scalar key from SLUICE_<PATH>, then the JWT secret from the variable named by
 * auth.jwt.secret_env unless SLUICE_AUTH_JWT_SECRET itself was given. Empty variables
 * count as unset, as docker-compose and systemd often leave them.
 */
static int
apply_env(struct ctx *c)
{
    for (size_t i = 0; i < SL_CONFIG_NTOP; i++) {
        const struct sl_config_key *k = &sl_config_top_keys[i];
        if (k->flags & SL_KEY_NOENV)
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
    for (size_t i = 0; i < sl_config_nkinds; i++) {
        const struct sl_config_kind *ki = &sl_config_kinds[i];
        const char *name = sl_config_enum_name(sl_config_kind_names, (int)ki->kind);
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
        for (size_t j = 0; j < sl_config_ndefault_models; j++) {
            const struct sl_config_default_model *d = &sl_config_default_models[j];
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
            /* Without a providers section, "openai" exists only when its key is set. */
            const char *hint = NULL;
            for (size_t k = 0; k < sl_config_nkinds && !top_given(c, "providers"); k++)
                if (sl_config_kinds[k].detect_env != NULL &&
                    strcmp(sl_config_enum_name(sl_config_kind_names, (int)sl_config_kinds[k].kind),
                           m->provider) == 0)
                    hint = sl_config_kinds[k].detect_env;
            if (hint != NULL)
                fail(c, entry_field(c, "models", m->name, "provider"),
                     "models.%s.provider: no provider named \"%s\" (set %s, or add it under "
                     "providers:)",
                     m->name, m->provider, hint);
            else
                fail(c, entry_field(c, "models", m->name, "provider"),
                     "models.%s.provider: no provider named \"%s\"", m->name, m->provider);
            goto out;
        }
        for (size_t f = 0; f < m->nfallback; f++) {
            if (sl_config_find_model(cfg, m->fallback[f]) == NULL) {
                fail(c, fallback_item(c, m->name, f), "models.%s.fallback: no model named \"%s\"",
                     m->name, m->fallback[f]);
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
        fail(c, o, "auth.jwt.public_key_file: \"%s\" is not a PEM file", cfg->jwt.public_key_file);
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
    sl_config_fmt_duration(a, sizeof(a), cfg->heartbeat.timeout_ms);
    sl_config_fmt_duration(b, sizeof(b), cfg->heartbeat.interval_ms);
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
    cfg->limits.body_timeout_ms = 10000;
    cfg->limits.send_timeout_ms = 30000;

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
    for (size_t i = 0; i < SL_CONFIG_NTOP; i++)
        sl_config_env_name(c->envname[i], sizeof(c->envname[i]), sl_config_top_keys[i].path);
    c->cfg = sl_config_new_defaults();

    if (path != NULL) {
        if (sl_yaml_load_file(&c->y, path, err, errlen) != 0)
            goto out;
        const yaml_node_t *root = sl_yaml_root(&c->y);
        if (root != NULL &&
            load_map(c, root, "", "", sl_config_top_keys, SL_CONFIG_NTOP, c->cfg, c->top_node) != 0)
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
    case SL_PROVIDER_DEMO:
        return "demo";
    case SL_PROVIDER_OPENAI:
        return "openai";
    case SL_PROVIDER_ANTHROPIC:
        return "anthropic";
    case SL_PROVIDER_GEMINI:
        return "gemini";
    case SL_PROVIDER_OLLAMA:
        return "ollama";
    }
    return "unknown";
}
