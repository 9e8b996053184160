#include "auth/origin.h"

#include <string.h>
#include <strings.h>

/* An origin taken apart; the slices borrow the caller's bytes. */
struct origin {
    struct sl_slice scheme;
    struct sl_slice host; /* an IPv6 literal keeps its brackets */
    unsigned port;        /* explicit, or the scheme's default (0 if it has none) */
};

static struct sl_slice
trim(struct sl_slice s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static bool
is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool
is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * host[:port] as in a Host header or the authority of an Origin. Only what browsers
 * serialise is accepted (punycode, IPv4, bracketed IPv6); userinfo, paths and empty
 * ports are not, so that nothing odd can compare equal to something else.
 */
static bool
parse_authority(struct sl_slice s, unsigned default_port, struct origin *o)
{
    size_t i = 0;
    if (s.len == 0)
        return false;
    if (s.ptr[0] == '[') {
        for (i = 1; i < s.len && s.ptr[i] != ']'; i++)
            if (!is_hex(s.ptr[i]) && s.ptr[i] != ':' && s.ptr[i] != '.')
                return false;
        if (i == s.len || i == 1)
            return false;
        i++; /* past ']' */
    } else {
        for (; i < s.len && s.ptr[i] != ':'; i++)
            if (!is_alnum(s.ptr[i]) && s.ptr[i] != '-' && s.ptr[i] != '.' && s.ptr[i] != '_')
                return false;
        if (i == 0)
            return false;
    }
    o->host = sl_slice_make(s.ptr, i);
    o->port = default_port;
    if (i == s.len)
        return true;
    if (s.ptr[i] != ':' || s.len - i < 2 || s.len - i > 6)
        return false;
    unsigned port = 0;
    for (i++; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        port = port * 10 + (unsigned)(s.ptr[i] - '0');
    }
    if (port > 65535)
        return false;
    o->port = port;
    return true;
}

static unsigned
default_port(struct sl_slice scheme)
{
    if (sl_slice_ieq(scheme, "http") || sl_slice_ieq(scheme, "ws"))
        return 80;
    if (sl_slice_ieq(scheme, "https") || sl_slice_ieq(scheme, "wss"))
        return 443;
    return 0;
}

/* scheme "://" authority, with one trailing "/" tolerated in configured entries. */
static bool
parse_origin(struct sl_slice s, bool allow_slash, struct origin *o)
{
    size_t i = 0;
    while (i < s.len &&
           (is_alnum(s.ptr[i]) || s.ptr[i] == '+' || s.ptr[i] == '-' || s.ptr[i] == '.'))
        i++;
    if (i == 0 || s.len - i < 3 || memcmp(s.ptr + i, "://", 3) != 0)
        return false;
    o->scheme = sl_slice_make(s.ptr, i);
    struct sl_slice auth = sl_slice_make(s.ptr + i + 3, s.len - i - 3);
    if (allow_slash && auth.len > 0 && auth.ptr[auth.len - 1] == '/')
        auth.len--;
    return parse_authority(auth, default_port(o->scheme), o);
}

static bool
ieq(struct sl_slice a, struct sl_slice b)
{
    return a.len == b.len && strncasecmp(a.ptr, b.ptr, a.len) == 0;
}

static bool
same_origin(const struct origin *a, const struct origin *b)
{
    return ieq(a->scheme, b->scheme) && ieq(a->host, b->host) && a->port == b->port;
}

bool
sl_origin_allowed(const struct sl_config *cfg, struct sl_slice origin, struct sl_slice host,
                  bool tls)
{
    if (origin.ptr == NULL)
        return true;
    for (size_t i = 0; i < cfg->nallowed_origins; i++)
        if (strcmp(cfg->allowed_origins[i], "*") == 0)
            return true;

    origin = trim(origin);
    if (sl_slice_eq(origin, "null")) {
        for (size_t i = 0; i < cfg->nallowed_origins; i++)
            if (strcmp(cfg->allowed_origins[i], "null") == 0)
                return true;
        return false;
    }
    struct origin o;
    if (!parse_origin(origin, false, &o))
        return false;

    if (host.ptr != NULL) {
        struct origin self;
        self.scheme = tls ? SL_SLICE("https") : SL_SLICE("http");
        if (parse_authority(trim(host), tls ? 443 : 80, &self) && same_origin(&o, &self))
            return true;
    }
    for (size_t i = 0; i < cfg->nallowed_origins; i++) {
        const char *entry = cfg->allowed_origins[i];
        struct origin e;
        if (parse_origin(sl_slice_make(entry, strlen(entry)), true, &e) && same_origin(&o, &e))
            return true;
    }
    return false;
}
