/*
 * The YAML walk: a mapping applied to a struct through a key table, scalars parsed by
 * their row's type and range, lists, header mappings. See walk.h.
 */
#include "config/walk.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "base/alloc.h"
#include "base/util.h"

/* --- small helpers ----------------------------------------------------------------------- */

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))

void
sl_config_strv_clear(char ***v, size_t *n)
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

void
sl_config_replace_str(char **dst, const char *s)
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

/* --- scalars --------------------------------------------------------------------------- */

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
    case SL_KEY_NAMESPACES:
    case SL_KEY_TIERS:
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
strlist_add(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
            struct sl_config_origin o, void *base, const char *s, size_t len)
{
    char item[512], why[320];
    if (len >= sizeof(item)) {
        return sl_config_fail(c, o, "%s: item longer than %zu bytes", path, sizeof(item) - 1);
    }
    memcpy(item, s, len);
    item[len] = '\0';
    if (len == 0)
        return sl_config_fail(c, o, "%s: expected a non-empty string", path);
    if (k->check != NULL && k->check(item, why, sizeof(why)) != 0)
        return sl_config_fail(c, o, "%s: %s", path, why);
    strv_push(FIELD(base, k->off, char **), FIELD(base, k->off2, size_t), item, len);
    return 0;
}

/*
 * Parses the text s for key k and stores it into base + k->off. `path` is the key's full
 * path for messages; o says where the text came from. `null` is YAML's null.
 */
int
sl_config_set_scalar(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
                     struct sl_config_origin o, const char *s, bool null, void *base)
{
    char q[80], b[200], lo[32], hi[32];
    void *field = (char *)base + k->off;
    if (k->flags & SL_KEY_SECRET)
        snprintf(q, sizeof(q), "(hidden)");
    else
        sl_config_quote(q, sizeof(q), s);

    if (null || (*s == '\0' && (k->flags & SL_KEY_NULLABLE))) {
        if (!(k->flags & SL_KEY_NULLABLE))
            return sl_config_fail(c, o, "%s: expected %s, got null", path,
                                  expected(k, b, sizeof(b)));
        if (k->type == SL_KEY_STR)
            sl_config_replace_str(field, NULL);
        else if (k->type == SL_KEY_STRLIST)
            sl_config_strv_clear(field, FIELD(base, k->off2, size_t));
        else
            sl_panic("config: %s cannot be null", k->path);
        return 0;
    }

    switch (k->type) {
    case SL_KEY_STR:
        if (*s == '\0')
            return sl_config_fail(c, o, "%s: expected a non-empty string", path);
        if (k->check != NULL && k->check(s, b, sizeof(b)) != 0)
            return sl_config_fail(c, o, "%s: %s", path, b);
        sl_config_replace_str(field, s);
        return 0;

    case SL_KEY_BOOL:
        if (parse_bool(s, field) != 0)
            return sl_config_fail(c, o, "%s: expected true or false, got %s", path, q);
        return 0;

    case SL_KEY_UINT: {
        long long v;
        if ((k->flags & SL_KEY_AUTO) && strcasecmp(s, "auto") == 0) {
            *(unsigned *)field = 0;
            return 0;
        }
        if (sl_parse_int(s, &v) != 0)
            return sl_config_fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)),
                                  q);
        if ((double)v < k->min || (double)v > k->max)
            return sl_config_fail(c, o, "%s: expected an integer from %.0f to %.0f, got %s", path,
                                  k->min, k->max, q);
        *(unsigned *)field = (unsigned)v;
        return 0;
    }

    case SL_KEY_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
            return sl_config_fail(c, o, "%s: expected a number, got %s", path, q);
        if (v < k->min || v > k->max) {
            sl_config_fmt_num(lo, sizeof(lo), k->min);
            sl_config_fmt_num(hi, sizeof(hi), k->max);
            return sl_config_fail(c, o, "%s: expected a number from %s to %s, got %s", path, lo, hi,
                                  q);
        }
        *(double *)field = v;
        if (k->flags & SL_KEY_HAS)
            *FIELD(base, k->off2, bool) = true;
        return 0;
    }

    case SL_KEY_DURATION: {
        uint64_t v;
        if (sl_parse_duration_ms(s, &v) != 0)
            return sl_config_fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)),
                                  q);
        if ((double)v < k->min || (double)v > k->max) {
            sl_config_fmt_duration(lo, sizeof(lo), (uint64_t)k->min);
            sl_config_fmt_duration(hi, sizeof(hi), (uint64_t)k->max);
            if (k->min == 1)
                snprintf(lo, sizeof(lo), "1ms");
            return sl_config_fail(c, o, "%s: expected a duration from %s to %s, got %s", path, lo,
                                  hi, q);
        }
        *(uint64_t *)field = v;
        return 0;
    }

    case SL_KEY_SIZE: {
        uint64_t v;
        if (sl_parse_size(s, &v) != 0)
            return sl_config_fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)),
                                  q);
        if ((double)v < k->min || (double)v > k->max) {
            sl_config_fmt_size(lo, sizeof(lo), (uint64_t)k->min);
            sl_config_fmt_size(hi, sizeof(hi), (uint64_t)k->max);
            return sl_config_fail(c, o, "%s: expected a size from %s to %s, got %s", path, lo, hi,
                                  q);
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
        return sl_config_fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);

    case SL_KEY_STRLIST: {
        /* Only the environment gives a list as text: comma-separated. */
        sl_config_strv_clear(field, FIELD(base, k->off2, size_t));
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
            return sl_config_fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)),
                                  q);
        free(*(char **)field);
        *(char **)field = host;
        *FIELD(base, k->off2, uint16_t) = port;
        return 0;
    }

    case SL_KEY_HEX256:
        if (parse_hex256(s, field) != 0)
            return sl_config_fail(c, o, "%s: expected 64 hexadecimal digits (a SHA-256)", path);
        return 0;

    case SL_KEY_KEYENV: {
        if (sl_config_check_env_name(s, b, sizeof(b)) != 0)
            return sl_config_fail(c, o, "%s: %s", path, b);
        const char *v = getenv(s);
        if (v == NULL || *v == '\0')
            return sl_config_fail(c, o, "%s: environment variable %s is not set", path, s);
        sha256(v, strlen(v), field);
        return 0;
    }

    case SL_KEY_HEADERS:
    case SL_KEY_APIKEYS:
    case SL_KEY_PROVIDERS:
    case SL_KEY_MODELS:
    case SL_KEY_AGENTS:
    case SL_KEY_NAMESPACES:
    case SL_KEY_TIERS:
        break;
    }
    return sl_config_fail(c, o, "%s: expected %s, got %s", path, expected(k, b, sizeof(b)), q);
}

/* --- mappings and lists ------------------------------------------------------------------ */

/*
 * Validates the i-th key of a mapping (a plain scalar, not seen before in the same
 * mapping) and returns its text. `parent` is the mapping's path for messages.
 */
int
sl_config_map_key(struct sl_config_ctx *c, const yaml_node_t *map, size_t i, const char *parent,
                  const char **name)
{
    const yaml_node_t *k = sl_yaml_map_key(&c->y, map, i);
    const char *dot = *parent ? "." : "";
    if (k == NULL || k->type != YAML_SCALAR_NODE || sl_yaml_is_null(k) || sl_yaml_has_nul(k))
        return sl_config_fail(c, sl_config_at(k ? k : map), "%s: expected a plain key, got %s",
                              *parent ? parent : "top level", k ? sl_yaml_what(k) : "nothing");
    const char *s = sl_yaml_str(k);
    for (size_t j = 0; j < i; j++) {
        const yaml_node_t *kj = sl_yaml_map_key(&c->y, map, j);
        const char *sj = kj ? sl_yaml_str(kj) : NULL;
        if (sj != NULL && strcmp(sj, s) == 0)
            return sl_config_fail(c, sl_config_at(k), "duplicate key %s%s%s (first at line %lu)",
                                  parent, dot, s, sl_yaml_line(kj));
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
int
sl_config_walk_map(struct sl_config_ctx *c, const yaml_node_t *map, const char *prefix,
                   const char *rel, const struct sl_config_key *tab, size_t ntab, void *base,
                   const yaml_node_t **seen)
{
    char here[512], rp[256], full[1024];
    snprintf(here, sizeof(here), "%s%s", prefix, rel);
    if (*here && here[strlen(here) - 1] == '.')
        here[strlen(here) - 1] = '\0';
    if (sl_yaml_is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return sl_config_fail(c, sl_config_at(map), "%s: expected a mapping, got %s",
                              *here ? here : "top level", sl_yaml_what(map));

    size_t n = sl_yaml_map_len(map);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        if (sl_config_map_key(c, map, i, here, &name) != 0)
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
                if (sl_config_set_node(c, &tab[t], full, value, base) != 0)
                    return -1;
                goto next;
            }
            if (has_children(tab, ntab, rp)) {
                char sub[260];
                snprintf(sub, sizeof(sub), "%s.", rp);
                if (sl_config_walk_map(c, value, prefix, sub, tab, ntab, base, seen) != 0)
                    return -1;
                goto next;
            }
        }
        struct sl_slice s = suggest(tab, ntab, rel, name);
        if (s.ptr != NULL)
            return sl_config_fail(c, sl_config_at(keynode), "unknown key %s (did you mean %.*s?)",
                                  full, (int)s.len, s.ptr);
        return sl_config_fail(c, sl_config_at(keynode), "unknown key %s", full);
    next:;
    }
    return 0;
}

static int
load_strlist(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
             const yaml_node_t *n, void *base)
{
    if (n->type == YAML_SCALAR_NODE)
        return sl_config_set_scalar(c, k, path, sl_config_at(n), sl_yaml_str(n), sl_yaml_is_null(n),
                                    base);
    if (n->type != YAML_SEQUENCE_NODE)
        return sl_config_fail(c, sl_config_at(n), "%s: expected a list of strings, got %s", path,
                              sl_yaml_what(n));
    sl_config_strv_clear(FIELD(base, k->off, char **), FIELD(base, k->off2, size_t));
    size_t len = sl_yaml_seq_len(n);
    for (size_t i = 0; i < len; i++) {
        const yaml_node_t *it = sl_yaml_seq_item(&c->y, n, i);
        if (it->type != YAML_SCALAR_NODE || sl_yaml_is_null(it) || sl_yaml_has_nul(it))
            return sl_config_fail(c, sl_config_at(it),
                                  "%s: expected a list of strings, got %s in it", path,
                                  sl_yaml_what(it));
        const char *s = sl_yaml_str(it);
        if (strlist_add(c, k, path, sl_config_at(it), base, s, strlen(s)) != 0)
            return -1;
    }
    return 0;
}

/* Header names are RFC 9110 tokens; values may not break the request with CR or LF. */
static int
load_headers(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
             const yaml_node_t *n, void *base)
{
    struct sl_config_header **hv = FIELD(base, k->off, struct sl_config_header *);
    size_t *nh = FIELD(base, k->off2, size_t);
    if (sl_yaml_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return sl_config_fail(c, sl_config_at(n),
                              "%s: expected a mapping of header names to values, got %s", path,
                              sl_yaml_what(n));
    size_t len = sl_yaml_map_len(n);
    for (size_t i = 0; i < len; i++) {
        const char *name;
        if (sl_config_map_key(c, n, i, path, &name) != 0)
            return -1;
        const yaml_node_t *kn = sl_yaml_map_key(&c->y, n, i);
        const yaml_node_t *vn = sl_yaml_map_value(&c->y, n, i);
        if (strspn(name, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(name))
            return sl_config_fail(c, sl_config_at(kn), "%s.%s: not a valid header name", path,
                                  name);
        if (vn->type != YAML_SCALAR_NODE || sl_yaml_has_nul(vn))
            return sl_config_fail(c, sl_config_at(vn), "%s.%s: expected a string, got %s", path,
                                  name, sl_yaml_what(vn));
        const char *value = sl_yaml_is_null(vn) ? "" : sl_yaml_str(vn);
        if (strpbrk(value, "\r\n") != NULL)
            return sl_config_fail(c, sl_config_at(vn),
                                  "%s.%s: a header value cannot contain a line break", path, name);
        *hv = sl_realloc(*hv, (*nh + 1) * sizeof(**hv));
        (*hv)[*nh].name = sl_strdup(name);
        (*hv)[*nh].value = sl_strdup(value);
        (*nh)++;
    }
    return 0;
}

/* Index of the row `path` in a table (a programming error if absent). */
size_t
sl_config_row(const struct sl_config_key *tab, size_t ntab, const char *path)
{
    for (size_t i = 0; i < ntab; i++)
        if (strcmp(tab[i].path, path) == 0)
            return i;
    sl_panic("config: no key %s", path);
}

int
sl_config_set_node(struct sl_config_ctx *c, const struct sl_config_key *k, const char *path,
                   const yaml_node_t *n, void *base)
{
    char b[200];
    switch (k->type) {
    case SL_KEY_STRLIST:
        return load_strlist(c, k, path, n, base);
    case SL_KEY_HEADERS:
        return load_headers(c, k, path, n, base);
    case SL_KEY_APIKEYS:
    case SL_KEY_PROVIDERS:
    case SL_KEY_MODELS:
    case SL_KEY_AGENTS:
    case SL_KEY_NAMESPACES:
    case SL_KEY_TIERS:
        return c->load_section(c, k, path, n);
    default:
        break;
    }
    if (n->type != YAML_SCALAR_NODE)
        return sl_config_fail(c, sl_config_at(n), "%s: expected %s, got %s", path,
                              expected(k, b, sizeof(b)), sl_yaml_what(n));
    if (sl_yaml_has_nul(n))
        return sl_config_fail(c, sl_config_at(n), "%s: a value cannot contain a NUL byte", path);
    return sl_config_set_scalar(c, k, path, sl_config_at(n), sl_yaml_str(n), sl_yaml_is_null(n),
                                base);
}
