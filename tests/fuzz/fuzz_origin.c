// fuzz-sources: src/auth/origin.c src/base/util.c src/base/alloc.c
// fuzz-seeds: tests/fuzz/seeds/origin/*
/*
 * libFuzzer harness for the Origin check (src/auth/origin.c), differential: a reference
 * written here from the rules of origin.h, naively (each origin turned into one canonical
 * lower-case string "scheme://host:port" and compared with strcmp), must give the same
 * verdict as sl_origin_allowed() on every input.
 *
 * Input: a flags byte (bit 0: TLS, bit 1: no Origin header, bit 2: no Host header), then
 * newline-separated fields: the Origin value, the Host value, and up to four entries of
 * auth.allowed_origins (C strings: an entry ends at a NUL byte, as the configuration's do).
 * Origin and Host may hold any byte, NUL included.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/origin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_origin: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_ENTRIES 4

/* --- the reference ------------------------------------------------------------------------ */

static bool
in_set(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* host[:port] -> "host:port" lower-cased into out; false if it is not one. */
static bool
ref_authority(const char *s, size_t n, unsigned defport, char *out, size_t cap)
{
    size_t hend; /* host is s[0..hend) */
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL || close == s + 1)
            return false;
        for (const char *p = s + 1; p < close; p++)
            if (!in_set(*p, "0123456789abcdefABCDEF:."))
                return false;
        hend = (size_t)(close - s) + 1;
    } else {
        hend = 0;
        while (hend < n && s[hend] != ':') {
            if (!in_set(s[hend], ALNUM "-._"))
                return false;
            hend++;
        }
        if (hend == 0)
            return false;
    }
    unsigned port = defport;
    if (hend < n) {
        size_t digits = n - hend - 1;
        if (s[hend] != ':' || digits < 1 || digits > 5)
            return false;
        char num[8];
        memcpy(num, s + hend + 1, digits);
        num[digits] = '\0';
        if (strspn(num, "0123456789") != digits || atol(num) > 65535)
            return false;
        port = (unsigned)atol(num);
    }
    if (hend + 16 > cap)
        return false;
    for (size_t i = 0; i < hend; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    snprintf(out + hend, cap - hend, ":%u", port);
    return true;
}

static unsigned
ref_default_port(const char *scheme)
{
    if (strcmp(scheme, "http") == 0 || strcmp(scheme, "ws") == 0)
        return 80;
    if (strcmp(scheme, "https") == 0 || strcmp(scheme, "wss") == 0)
        return 443;
    return 0;
}

/* scheme://authority (one trailing '/' allowed in entries) -> canonical text in out. */
static bool
ref_origin(const char *s, size_t n, bool slash, char *out, size_t cap)
{
    const char *sep = NULL;
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(s + i, "://", 3) == 0) {
            sep = s + i;
            break;
        }
    if (sep == NULL || sep == s || (size_t)(sep - s) >= cap / 2)
        return false;
    size_t sl = (size_t)(sep - s);
    char scheme[256];
    if (sl >= sizeof(scheme))
        return false;
    for (size_t i = 0; i < sl; i++) {
        if (!in_set(s[i], ALNUM "+-."))
            return false;
        scheme[i] = (char)tolower((unsigned char)s[i]);
    }
    scheme[sl] = '\0';
    const char *a = sep + 3;
    size_t an = n - sl - 3;
    if (slash && an > 0 && a[an - 1] == '/')
        an--;
    int o = snprintf(out, cap, "%s://", scheme);
    return ref_authority(a, an, ref_default_port(scheme), out + o, cap - (size_t)o);
}

static void
ref_trim(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

static bool
ref_allowed(char **entries, size_t nentries, const char *origin, size_t olen, const char *host,
            size_t hlen, bool tls)
{
    char want[1024], have[1024];
    if (origin == NULL)
        return true;
    for (size_t i = 0; i < nentries; i++)
        if (strcmp(entries[i], "*") == 0)
            return true;
    ref_trim(&origin, &olen);
    if (olen == 4 && memcmp(origin, "null", 4) == 0) {
        for (size_t i = 0; i < nentries; i++)
            if (strcmp(entries[i], "null") == 0)
                return true;
        return false;
    }
    if (!ref_origin(origin, olen, false, want, sizeof(want)))
        return false;
    if (host != NULL) {
        ref_trim(&host, &hlen);
        int o = snprintf(have, sizeof(have), "%s://", tls ? "https" : "http");
        if (ref_authority(host, hlen, tls ? 443 : 80, have + o, sizeof(have) - (size_t)o) &&
            strcmp(have, want) == 0)
            return true;
    }
    for (size_t i = 0; i < nentries; i++)
        if (ref_origin(entries[i], strlen(entries[i]), true, have, sizeof(have)) &&
            strcmp(have, want) == 0)
            return true;
    return false;
}

/* --- the harness ---------------------------------------------------------------------------- */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return 0;
    unsigned flags = data[0];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    struct sl_slice field[2 + MAX_ENTRIES];
    size_t nfields = 0;
    while (nfields < 2 + MAX_ENTRIES) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *fe = nl ? nl : end;
        field[nfields++] = sl_slice_make(p, (size_t)(fe - p));
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    while (nfields < 2)
        field[nfields++] = sl_slice_make("", 0);

    /* Heap copies of the exact size: an overread of Origin or Host trips ASan. */
    char *origin = (flags & 2) ? NULL : malloc(field[0].len + 1);
    char *host = (flags & 4) ? NULL : malloc(field[1].len + 1);
    if (origin)
        memcpy(origin, field[0].ptr, field[0].len);
    if (host)
        memcpy(host, field[1].ptr, field[1].len);
    char *entries[MAX_ENTRIES];
    size_t nentries = 0;
    for (size_t i = 2; i < nfields; i++)
        entries[nentries++] = strndup(field[i].ptr, field[i].len);

    struct sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.allowed_origins = entries;
    cfg.nallowed_origins = nentries;
    bool tls = flags & 1;
    bool got = sl_origin_allowed(&cfg, sl_slice_make(origin, origin ? field[0].len : 0),
                                 sl_slice_make(host, host ? field[1].len : 0), tls);
    bool want = ref_allowed(entries, nentries, origin, origin ? field[0].len : 0, host,
                            host ? field[1].len : 0, tls);
    if (got != want) {
        fprintf(stderr, "fuzz_origin: sl_origin_allowed says %d, the reference %d\n", got, want);
        abort();
    }
    /* An origin listed as it is always passes. */
    if (origin != NULL && nentries < MAX_ENTRIES && memchr(origin, '\0', field[0].len) == NULL) {
        entries[nentries] = strndup(origin, field[0].len);
        cfg.nallowed_origins = nentries + 1;
        char canon[1024];
        const char *o = origin;
        size_t ol = field[0].len;
        ref_trim(&o, &ol);
        /* (with blanks around it, the entry itself would not parse) */
        if (ol == field[0].len && ref_origin(o, ol, false, canon, sizeof(canon)))
            CHECK(sl_origin_allowed(&cfg, sl_slice_make(origin, field[0].len),
                                    sl_slice_make(host, host ? field[1].len : 0), tls));
        free(entries[nentries]);
    }
    for (size_t i = 0; i < nentries; i++)
        free(entries[i]);
    free(origin);
    free(host);
    return 0;
}
