/* Unit tests for src/auth/origin.c: the Origin rule of WebSocket upgrades. */
#include <criterion/criterion.h>
#include <string.h>

#include "auth/origin.h"
#include "base/alloc.h"
#include "config/config.h"

static struct sl_config *cfg;

static void
setup(void)
{
    cfg = sl_config_new_defaults();
}

static void
teardown(void)
{
    sl_config_free(cfg);
}

TestSuite(origin, .init = setup, .fini = teardown);

static void
allow(const char *entry)
{
    cfg->allowed_origins =
        sl_realloc(cfg->allowed_origins, (cfg->nallowed_origins + 1) * sizeof(char *));
    cfg->allowed_origins[cfg->nallowed_origins++] = sl_strdup(entry);
}

static struct sl_slice
sl(const char *s)
{
    return s ? sl_slice_make(s, strlen(s)) : sl_slice_make(NULL, 0);
}

static bool
ok(const char *origin, const char *host, bool tls)
{
    return sl_origin_allowed(cfg, sl(origin), sl(host), tls);
}

static const char *
show(const char *s)
{
    return s ? s : "(absent)";
}

#define ALLOWED(o, h, tls) cr_assert(ok((o), (h), (tls)), "%s on %s should pass", show(o), show(h))
#define REFUSED(o, h, tls)                                                                         \
    cr_assert(!ok((o), (h), (tls)), "%s on %s should be refused", show(o), show(h))

Test(origin, missing_origin_is_not_a_browser)
{
    cr_assert(ok(NULL, "example.com", false));
    cr_assert(ok(NULL, NULL, true));
}

Test(origin, empty_origin_is_refused)
{
    REFUSED("", "example.com", false);
    REFUSED("  ", "example.com", false);
}

Test(origin, same_origin)
{
    ALLOWED("http://localhost:8080", "localhost:8080", false);
    ALLOWED("http://127.0.0.1:8080", "127.0.0.1:8080", false);
    ALLOWED("http://[::1]:8080", "[::1]:8080", false);
    ALLOWED("https://chat.example.com", "chat.example.com", true);
    /* Scheme and host are case-insensitive; blanks around values are ignored. */
    ALLOWED("HTTP://LocalHost:8080", "localhost:8080", false);
    ALLOWED("http://localhost:8080", "LOCALHOST:8080", false);
    ALLOWED(" http://localhost:8080\t", " localhost:8080 ", false);
}

Test(origin, default_ports_are_normalised)
{
    ALLOWED("http://example.com", "example.com:80", false);
    ALLOWED("http://example.com:80", "example.com", false);
    ALLOWED("https://example.com", "example.com:443", true);
    ALLOWED("https://example.com:443", "example.com", true);
    /* ...but only the scheme's own default. */
    REFUSED("http://example.com", "example.com:443", false);
    REFUSED("https://example.com", "example.com:80", true);
}

Test(origin, scheme_must_match_the_connection)
{
    REFUSED("https://example.com", "example.com", false);
    REFUSED("http://example.com", "example.com", true);
    REFUSED("http://example.com:443", "example.com", true);
    REFUSED("ws://example.com", "example.com", false);
}

Test(origin, other_hosts_and_ports_are_refused)
{
    REFUSED("http://example.com:8081", "example.com:8080", false);
    REFUSED("http://evil.com", "example.com", false);
    REFUSED("http://example.com.evil.com", "example.com", false);
    REFUSED("http://evilexample.com", "example.com", false);
    REFUSED("http://example.co", "example.com", false);
    REFUSED("http://[::2]:8080", "[::1]:8080", false);
}

Test(origin, no_host_header)
{
    REFUSED("http://example.com", NULL, false);
    allow("http://example.com");
    ALLOWED("http://example.com", NULL, false);
}

Test(origin, malformed_origins_are_refused)
{
    const char *host = "example.com";
    REFUSED("example.com", host, false);
    REFUSED("//example.com", host, false);
    REFUSED("http://", host, false);
    REFUSED("http:/example.com", host, false);
    REFUSED("http://example.com/", host, false);
    REFUSED("http://example.com/path", host, false);
    REFUSED("http://user@example.com", host, false);
    REFUSED("http://example.com:", host, false);
    REFUSED("http://example.com:80:80", host, false);
    REFUSED("http://example.com:99999", host, false);
    REFUSED("http://example.com:99999", "example.com:99999", false);
    REFUSED("http://example.com:0080x", host, false);
    REFUSED("http://example.com:+80", host, false);
    REFUSED("http://exa mple.com", host, false);
    REFUSED("http://[::1", "[::1", false);
    REFUSED("http://[]", "[]", false);
    REFUSED("http://example.com\r\nX: y", host, false);
}

Test(origin, malformed_host_never_matches)
{
    REFUSED("http://example.com", "example.com:", false);
    REFUSED("http://example.com", "example.com/x", false);
    REFUSED("http://example.com", "", false);
}

Test(origin, listed_origins)
{
    allow("https://app.example.com");
    allow("http://localhost:3000/"); /* a trailing slash in the config is tolerated */
    const char *host = "gw.example.com";
    ALLOWED("https://app.example.com", host, true);
    ALLOWED("https://app.example.com", host, false);
    ALLOWED("https://APP.Example.com:443", host, true);
    ALLOWED("http://localhost:3000", host, false);
    REFUSED("http://app.example.com", host, true);
    REFUSED("https://app.example.com:8443", host, true);
    REFUSED("https://other.example.com", host, true);
    REFUSED("http://localhost:3001", host, false);
    REFUSED("http://localhost:3000/", host, false); /* browsers never send one */
    /* The own origin still works next to the list. */
    ALLOWED("https://gw.example.com", host, true);
}

Test(origin, star_allows_everything)
{
    allow("https://app.example.com");
    allow("*");
    ALLOWED("https://evil.example", "example.com", true);
    ALLOWED("null", "example.com", true);
    ALLOWED("garbage", "example.com", true);
}

Test(origin, null_origin)
{
    REFUSED("null", "example.com", false);
    allow("https://app.example.com");
    REFUSED("null", "example.com", false);
    allow("null");
    ALLOWED("null", "example.com", false);
    REFUSED("NULL", "example.com", false);
}

Test(origin, unparsable_entries_match_nothing)
{
    allow("app.example.com");
    allow("");
    REFUSED("http://app.example.com", "gw", false);
    REFUSED("", "gw", false);
}
