/*
 * Unit tests for src/auth/auth.c: JWT verification (HS, RS, ES), the attacks it must
 * refuse, minting, and API keys. Keys are generated here with OpenSSL; tokens are
 * made either by libjwt or by hand (HMAC over a crafted header) when libjwt would
 * refuse to produce them. Every failure path runs under ASan/LSan.
 */
#include <criterion/criterion.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sanitizer/lsan_interface.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/codes.h"
#include "base/util.h"
#include "config/config.h"

#define SECRET "0123456789abcdef0123456789abcdef-test"

static struct sl_config *cfg;
static struct sl_auth *auth;
static char err[256];

/* Everything a test allocates through the helpers is freed in teardown. */
static void *garbage[128];
static size_t ngarbage;
static EVP_PKEY *keys[8];
static size_t nkeys;

static char *
keep(char *p)
{
    cr_assert_not_null(p);
    cr_assert_lt(ngarbage, SL_ARRAY_LEN(garbage));
    garbage[ngarbage++] = p;
    return p;
}

static EVP_PKEY *
keep_key(EVP_PKEY *k)
{
    cr_assert_not_null(k);
    cr_assert_lt(nkeys, SL_ARRAY_LEN(keys));
    keys[nkeys++] = k;
    return k;
}

static void
setup(void)
{
    cfg = sl_config_new_defaults();
    cfg->jwt.secret = sl_strdup(SECRET);
    /* Most tokens here are about other rules: the exp rule has tests of its own (require_exp_*). */
    cfg->jwt.require_exp = false;
}

/*
 * Frees what the test made and fails it if anything else is left. Neither
 * LeakSanitizer's report at exit nor a failed assertion in .fini fails a Criterion
 * test, hence this check at the end of every test body (see AUTH_TEST).
 */
static void
finish(void)
{
    sl_auth_free(auth);
    auth = NULL;
    sl_config_free(cfg);
    cfg = NULL;
    for (size_t i = 0; i < ngarbage; i++)
        free(garbage[i]);
    ngarbage = 0;
    for (size_t i = 0; i < nkeys; i++)
        EVP_PKEY_free(keys[i]);
    nkeys = 0;
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (report above)");
}

#define AUTH_TEST(suite, name)                                                                     \
    static void suite##_##name##_body(void);                                                       \
    Test(suite, name)                                                                              \
    {                                                                                              \
        suite##_##name##_body();                                                                   \
        finish();                                                                                  \
    }                                                                                              \
    static void suite##_##name##_body(void)

/* Replaces jwt.algorithms with a comma-separated list ("" for none). */
static void
set_algs(const char *list)
{
    for (size_t i = 0; i < cfg->jwt.nalgorithms; i++)
        free(cfg->jwt.algorithms[i]);
    free(cfg->jwt.algorithms);
    cfg->jwt.algorithms = NULL;
    cfg->jwt.nalgorithms = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        cfg->jwt.algorithms =
            sl_realloc(cfg->jwt.algorithms, (cfg->jwt.nalgorithms + 1) * sizeof(char *));
        cfg->jwt.algorithms[cfg->jwt.nalgorithms++] = sl_strndup(p, n);
        p += n + (comma != NULL);
    }
}

static void
build(void)
{
    sl_auth_free(auth);
    auth = sl_auth_new(cfg, err, sizeof(err));
    cr_assert_not_null(auth, "sl_auth_new: %s", err);
}

static void
build_fails(const char *needle)
{
    struct sl_auth *a = sl_auth_new(cfg, err, sizeof(err));
    cr_assert_null(a, "configuration accepted, expected: %s", needle);
    cr_assert(strstr(err, needle) != NULL, "error \"%s\" lacks \"%s\"", err, needle);
}

static long
now_s(void)
{
    return (long)(sl_wall_ms() / 1000);
}

/* ---- token makers ---------------------------------------------------------- */

static char *
b64url(const void *p, size_t n)
{
    char *out = sl_malloc(4 * (n / 3 + 1) + 1);
    size_t len = sl_base64_encode(out, p, n);
    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return keep(out);
}

static char *
b64url_str(const char *s)
{
    return b64url(s, strlen(s));
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *
fmt(const char *f, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, f);
    cr_assert_geq(vasprintf(&s, f, ap), 0);
    va_end(ap);
    return keep(s);
}

/* header.payload.sig from JSON texts, with the signature given as is. */
static char *
craft(const char *hdr, const char *payload, const char *sig)
{
    return fmt("%s.%s.%s", b64url_str(hdr), b64url_str(payload), sig);
}

/* Signs already encoded segments with HMAC-SHA256 and the test secret. */
static char *
sign_segments(const char *h64, const char *p64)
{
    char *input = fmt("%s.%s", h64, p64);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    cr_assert_not_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)input,
                            strlen(input), mac, &mac_len));
    return fmt("%s.%s", input, b64url(mac, mac_len));
}

/* A correctly HMAC-signed token whatever the header says (libjwt would normalise it). */
static char *
hmac_token(const char *hdr, const char *payload, const void *key, size_t key_len, const EVP_MD *md)
{
    char *input = fmt("%s.%s", b64url_str(hdr), b64url_str(payload));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    cr_assert_not_null(
        HMAC(md, key, (int)key_len, (const unsigned char *)input, strlen(input), mac, &mac_len));
    return fmt("%s.%s", input, b64url(mac, mac_len));
}

/* A token made by libjwt: grants is a JSON object text. */
static char *
lj_token(jwt_alg_t alg, const char *key, const char *grants)
{
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    cr_assert_eq(jwt_add_grants_json(jwt, grants), 0, "bad test grants %s", grants);
    cr_assert_eq(jwt_set_alg(jwt, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0), 0);
    char *tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    return keep(tok);
}

static char *
hs256(const char *grants)
{
    return lj_token(JWT_ALG_HS256, SECRET, grants);
}

static char *
bio_string(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    cr_assert_gt(n, 0);
    char *s = sl_strndup(data, (size_t)n);
    BIO_free(bio);
    return keep(s);
}

static char *
pem_public(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_PUBKEY(bio, k), 1);
    return bio_string(bio);
}

static char *
pem_private(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
    return bio_string(bio);
}

/* A self-signed certificate for k, as PEM. */
static char *
pem_certificate(EVP_PKEY *k)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sluice", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, k);
    cr_assert_gt(X509_sign(x, k, EVP_sha256()), 0);
    BIO *bio = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_X509(bio, x), 1);
    X509_free(x);
    return bio_string(bio);
}

static EVP_PKEY *
rsa_key(unsigned bits)
{
    return keep_key(EVP_RSA_gen(bits));
}

static EVP_PKEY *
ec_key(const char *curve)
{
    return keep_key(EVP_EC_gen(curve));
}

static void
use_public_key(const char *pem)
{
    free(cfg->jwt.public_key);
    cfg->jwt.public_key = sl_strdup(pem);
}

/* ---- verification helpers ---------------------------------------------------- */

static struct sl_identity
expect_ok(const char *tok)
{
    struct sl_identity id;
    const char *reason = NULL;
    int rc = sl_auth_verify(auth, tok, strlen(tok), &id, &reason);
    cr_assert_eq(rc, 0, "refused (%s): %s", reason, tok);
    cr_assert_str_eq(reason, "ok");
    return id;
}

static void
expect_fail_at(const char *tok, size_t len, uint64_t now_ms, int code, const char *text)
{
    struct sl_identity id;
    memset(&id, 0x55, sizeof(id));
    const char *reason = NULL;
    int rc = sl_auth_verify_at(auth, tok, len, now_ms, &id, &reason);
    cr_assert_eq(rc, code, "got %d (%s), want %d (%s)", rc, reason, code, text);
    cr_assert_str_eq(reason, text);
    cr_assert_eq(id.user[0], '\0', "a refused token leaves no identity behind");
    cr_assert_eq(id.exp_ms, 0);
    cr_assert_eq(id.email[0], '\0');
}

static void
expect_fail(const char *tok, int code, const char *text)
{
    expect_fail_at(tok, strlen(tok), sl_wall_ms(), code, text);
}

TestSuite(jwt, .init = setup);
TestSuite(apikey, .init = setup);
TestSuite(authcfg, .init = setup);
TestSuite(libjwt, .init = setup);

/* ---- minting ---------------------------------------------------------------- */

AUTH_TEST(jwt, minted_token_verifies)
{
    build();
    char *tok = keep(sl_auth_mint(auth, "alice", 3600 * 1000));
    struct sl_identity id = expect_ok(tok);
    cr_assert_str_eq(id.user, "alice");
    cr_assert_str_eq(id.method, "jwt");
    long now = now_s();
    cr_assert(id.exp_ms >= (now + 3599) * 1000 && id.exp_ms <= (now + 3601) * 1000,
              "exp %lld ms vs now %ld s", (long long)id.exp_ms, now);
}

AUTH_TEST(jwt, minted_token_carries_issuer_and_audience)
{
    cfg->jwt.issuer = sl_strdup("https://sluice.test");
    cfg->jwt.audience = sl_strdup("sluice");
    build();
    char *tok = keep(sl_auth_mint(auth, "bob", 1500));
    cr_assert_str_eq(expect_ok(tok).user, "bob");
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_decode(&jwt, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    cr_assert_str_eq(jwt_get_grant(jwt, "iss"), "https://sluice.test");
    cr_assert_str_eq(jwt_get_grant(jwt, "aud"), "sluice");
    long iat = jwt_get_grant_int(jwt, "iat"), exp = jwt_get_grant_int(jwt, "exp");
    cr_assert_eq(exp - iat, 2, "1.5 s rounds up to 2 s");
    cr_assert_eq(jwt_get_alg(jwt), JWT_ALG_HS256);
    jwt_free(jwt);
}

AUTH_TEST(jwt, mint_refuses_what_could_not_verify)
{
    build();
    cr_assert_null(sl_auth_mint(auth, "", 1000));
    cr_assert_null(sl_auth_mint(auth, NULL, 1000));
    cr_assert_null(sl_auth_mint(auth, "x", 0));
    char longsub[SL_AUTH_USER_MAX + 1];
    memset(longsub, 'a', SL_AUTH_USER_MAX);
    longsub[SL_AUTH_USER_MAX] = '\0';
    cr_assert_null(sl_auth_mint(auth, longsub, 1000));
    longsub[SL_AUTH_USER_MAX - 1] = '\0';
    cr_assert_str_eq(expect_ok(keep(sl_auth_mint(auth, longsub, 1000))).user, longsub);

    /* HS256 not accepted: a minted token would be refused, so there is none. */
    set_algs("HS512");
    build();
    cr_assert_null(sl_auth_mint(auth, "alice", 1000));

    /* No HMAC secret at all (RS256 only). */
    set_algs("RS256");
    free(cfg->jwt.secret);
    cfg->jwt.secret = NULL;
    use_public_key(pem_public(rsa_key(2048)));
    build();
    cr_assert_null(sl_auth_mint(auth, "alice", 1000));
}

/* ---- time claims ---------------------------------------------------------------- */

AUTH_TEST(jwt, exp_with_and_without_leeway)
{
    cfg->jwt.leeway_ms = 30000;
    build();
    long now = now_s();
    expect_fail(hs256(fmt("{\"sub\":\"a\",\"exp\":%ld}", now - 60)), SL_AUTH_EEXPIRED,
                "token expired");
    cr_assert_str_eq(expect_ok(hs256(fmt("{\"sub\":\"a\",\"exp\":%ld}", now - 10))).user, "a");

    cfg->jwt.leeway_ms = 0;
    build();
    expect_fail(hs256(fmt("{\"sub\":\"a\",\"exp\":%ld}", now - 10)), SL_AUTH_EEXPIRED,
                "token expired");
    expect_ok(hs256(fmt("{\"sub\":\"a\",\"exp\":%ld}", now + 60)));
}

AUTH_TEST(jwt, exp_boundary_is_exclusive)
{
    cfg->jwt.leeway_ms = 30000;
    build();
    const char *tok = hs256("{\"sub\":\"a\",\"exp\":1000000}");
    struct sl_identity id;
    uint64_t edge = 1000000ull * 1000 + 30000;
    cr_assert_eq(sl_auth_verify_at(auth, tok, strlen(tok), edge - 1, &id, NULL), 0);
    cr_assert_eq(id.exp_ms, 1000000000);
    expect_fail_at(tok, strlen(tok), edge, SL_AUTH_EEXPIRED, "token expired");
}

AUTH_TEST(jwt, nbf_with_and_without_leeway)
{
    cfg->jwt.leeway_ms = 30000;
    build();
    long now = now_s();
    expect_fail(hs256(fmt("{\"sub\":\"a\",\"nbf\":%ld}", now + 120)), SL_AUTH_ENOTYET,
                "token not yet valid");
    expect_ok(hs256(fmt("{\"sub\":\"a\",\"nbf\":%ld}", now + 10)));

    cfg->jwt.leeway_ms = 0;
    build();
    expect_fail(hs256(fmt("{\"sub\":\"a\",\"nbf\":%ld}", now + 10)), SL_AUTH_ENOTYET,
                "token not yet valid");
    expect_ok(hs256(fmt("{\"sub\":\"a\",\"nbf\":%ld}", now - 10)));

    const char *tok = hs256("{\"sub\":\"a\",\"nbf\":2000}");
    struct sl_identity id;
    cr_assert_eq(sl_auth_verify_at(auth, tok, strlen(tok), 2000000, &id, NULL), 0);
    expect_fail_at(tok, strlen(tok), 1999999, SL_AUTH_ENOTYET, "token not yet valid");
}

AUTH_TEST(jwt, time_claims_must_be_numbers)
{
    build();
    long now = now_s();
    expect_fail(hs256(fmt("{\"sub\":\"a\",\"exp\":\"%ld\"}", now + 60)), SL_AUTH_ECLAIMS,
                "invalid claims");
    expect_fail(hs256("{\"sub\":\"a\",\"exp\":null}"), SL_AUTH_ECLAIMS, "invalid claims");
    expect_fail(hs256("{\"sub\":\"a\",\"nbf\":true}"), SL_AUTH_ECLAIMS, "invalid claims");
    /* Fractional and absurdly large NumericDates are numbers. */
    cr_assert_eq(expect_ok(hs256(fmt("{\"sub\":\"a\",\"exp\":%ld.5}", now + 60))).exp_ms,
                 (now + 60) * 1000 + 500);
    cr_assert_eq(expect_ok(hs256("{\"sub\":\"a\",\"exp\":1e300}")).exp_ms, INT64_MAX);
    /* No exp at all, with require_exp off: accepted, no expiry. */
    cr_assert_eq(expect_ok(hs256("{\"sub\":\"a\"}")).exp_ms, 0);
}

AUTH_TEST(jwt, require_exp_is_the_default_and_refuses_tokens_that_never_expire)
{
    struct sl_config *d = sl_config_new_defaults();
    cr_assert(d->jwt.require_exp, "a token without exp must be refused unless configured");
    sl_config_free(d);
    cfg->jwt.require_exp = true;
    cfg->api_keys = sl_calloc(1, sizeof(*cfg->api_keys));
    cfg->api_keys[0].name = sl_strdup("ci");
    cfg->napi_keys = 1;
    static const char key[] = "sk-sluice-test";
    unsigned dlen = 0;
    cr_assert_eq(EVP_Digest(key, strlen(key), cfg->api_keys[0].sha256, &dlen, EVP_sha256(), NULL),
                 1);
    build();
    long now = now_s();
    expect_fail(hs256("{\"sub\":\"a\"}"), SL_AUTH_ENOEXP, "token has no expiry (exp)");
    expect_fail(hs256(fmt("{\"sub\":\"a\",\"nbf\":%ld}", now - 10)), SL_AUTH_ENOEXP,
                "token has no expiry (exp)");
    struct sl_identity id = expect_ok(hs256(fmt("{\"sub\":\"a\",\"exp\":%ld}", now + 60)));
    cr_assert_eq(id.exp_ms, (now + 60) * 1000);
    /* what sluice mints has an exp, and API keys do not expire */
    cr_assert_gt(expect_ok(keep(sl_auth_mint(auth, "dev", 60000))).exp_ms, 0);
    id = expect_ok(key);
    cr_assert_str_eq(id.method, "apikey");
    cr_assert_eq(id.exp_ms, 0);
    /* an expired token still says expired, not "no expiry" */
    expect_fail(hs256(fmt("{\"sub\":\"a\",\"exp\":%ld}", now - 3600)), SL_AUTH_EEXPIRED,
                "token expired");
}

AUTH_TEST(jwt, exp_ms_is_never_zero_for_a_token_that_expires)
{
    cfg->jwt.leeway_ms = 30000;
    build();
    const char *tok = hs256("{\"sub\":\"a\",\"exp\":0.0004}");
    struct sl_identity id;
    cr_assert_eq(sl_auth_verify_at(auth, tok, strlen(tok), 1000, &id, NULL), 0);
    cr_assert_eq(id.exp_ms, 1, "0 would read as \"never expires\"");
}

AUTH_TEST(jwt, sub_email_and_name_claims)
{
    build();
    long now = now_s();
    struct sl_identity id = expect_ok(
        hs256(fmt("{\"sub\":\"u-1\",\"email\":\"ada@example.com\",\"name\":\"Ada L\",\"exp\":%ld}",
                  now + 60)));
    cr_assert_str_eq(id.user, "u-1");
    cr_assert_str_eq(sl_identity_sub(&id), "u-1");
    cr_assert_str_eq(sl_identity_email(&id), "ada@example.com");
    cr_assert_str_eq(sl_identity_name(&id), "Ada L");

    /* name stands in for a missing sub as the user; sub itself stays absent */
    id = expect_ok(hs256("{\"name\":\"Bo\"}"));
    cr_assert_str_eq(id.user, "Bo");
    cr_assert_null(sl_identity_sub(&id));
    cr_assert_null(sl_identity_email(&id));
    cr_assert_str_eq(sl_identity_name(&id), "Bo");

    /* too long for its array, or not a string: absent, never truncated */
    char email[SL_AUTH_CLAIM_MAX + 1];
    memset(email, 'e', SL_AUTH_CLAIM_MAX);
    email[SL_AUTH_CLAIM_MAX] = '\0';
    id = expect_ok(hs256(fmt("{\"sub\":\"a\",\"email\":\"%s\",\"name\":7}", email)));
    cr_assert_null(sl_identity_email(&id));
    cr_assert_null(sl_identity_name(&id));
    email[SL_AUTH_CLAIM_MAX - 1] = '\0';
    id = expect_ok(hs256(fmt("{\"sub\":\"a\",\"email\":\"%s\"}", email)));
    cr_assert_str_eq(sl_identity_email(&id), email, "255 bytes fit");

    id = expect_ok(hs256("{\"sub\":\"a\",\"email\":\"\"}"));
    cr_assert_null(sl_identity_email(&id), "an empty claim is no claim");
}

/* ---- signatures ----------------------------------------------------------------- */

AUTH_TEST(jwt, wrong_secret)
{
    build();
    expect_fail(lj_token(JWT_ALG_HS256, "another-secret-another-secret-xx", "{\"sub\":\"a\"}"),
                SL_AUTH_ESIGNATURE, "bad signature");
}

AUTH_TEST(jwt, tampered_payload)
{
    build();
    char *tok = hs256("{\"sub\":\"alice\"}");
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    /* Same header and signature, payload of another user. */
    char *forged = fmt("%.*s.%s%s", (int)(d1 - tok), tok, b64url_str("{\"sub\":\"admin\"}"), d2);
    expect_fail(forged, SL_AUTH_ESIGNATURE, "bad signature");
}

AUTH_TEST(jwt, tampered_signature)
{
    build();
    char *tok = hs256("{\"sub\":\"alice\"}");
    char *sig = strrchr(tok, '.') + 1;
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    expect_fail(tok, SL_AUTH_ESIGNATURE, "bad signature");
    sig[8] = '\0'; /* truncated */
    expect_fail(tok, SL_AUTH_ESIGNATURE, "bad signature");
    sig[0] = '\0'; /* none at all: an unsigned token */
    expect_fail(tok, SL_AUTH_EMALFORMED, "malformed token");

    /* Trailing bytes after a valid signature. */
    expect_fail(fmt("%sAAAA", hs256("{\"sub\":\"alice\"}")), SL_AUTH_ESIGNATURE, "bad signature");
}

AUTH_TEST(jwt, alg_none_is_refused)
{
    build();
    const char *payload = "{\"sub\":\"admin\"}";
    expect_fail(craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, ""), SL_AUTH_EALG,
                "algorithm not allowed");
    expect_fail(craft("{\"alg\":\"none\"}", payload, "c2lnbmF0dXJl"), SL_AUTH_EALG,
                "algorithm not allowed");
    /* libjwt matches names case-insensitively; sluice does not. */
    expect_fail(craft("{\"alg\":\"None\"}", payload, ""), SL_AUTH_EALG, "algorithm not allowed");
    expect_fail(craft("{\"alg\":\"NONE\"}", payload, ""), SL_AUTH_EALG, "algorithm not allowed");
    /* alg none carrying the signature of a real token. */
    char *real = hs256(payload);
    expect_fail(craft("{\"alg\":\"none\"}", payload, strrchr(real, '.') + 1), SL_AUTH_EALG,
                "algorithm not allowed");
    /* What libjwt's own encoder makes when it is given no key. */
    expect_fail(lj_token(JWT_ALG_NONE, NULL, payload), SL_AUTH_EALG, "algorithm not allowed");
}

AUTH_TEST(jwt, algorithm_names_are_exact)
{
    build();
    const char *payload = "{\"sub\":\"a\"}";
    cr_assert_str_eq(
        expect_ok(hmac_token("{\"alg\":\"HS256\"}", payload, SECRET, strlen(SECRET), EVP_sha256()))
            .user,
        "a");
    expect_fail(hmac_token("{\"alg\":\"hs256\"}", payload, SECRET, strlen(SECRET), EVP_sha256()),
                SL_AUTH_EALG, "algorithm not allowed");
    expect_fail(hmac_token("{\"alg\":\"HS256 \"}", payload, SECRET, strlen(SECRET), EVP_sha256()),
                SL_AUTH_EALG, "algorithm not allowed");
    expect_fail(hmac_token("{\"alg\":256}", payload, SECRET, strlen(SECRET), EVP_sha256()),
                SL_AUTH_EMALFORMED, "malformed token");
    expect_fail(hmac_token("{\"typ\":\"JWT\"}", payload, SECRET, strlen(SECRET), EVP_sha256()),
                SL_AUTH_EMALFORMED, "malformed token");
}

AUTH_TEST(jwt, hs384_only_when_configured)
{
    build();
    char *tok = lj_token(JWT_ALG_HS384, SECRET, "{\"sub\":\"a\"}");
    expect_fail(tok, SL_AUTH_EALG, "algorithm not allowed");
    set_algs("HS256,HS384");
    build();
    cr_assert_str_eq(expect_ok(tok).user, "a");
    expect_ok(hs256("{\"sub\":\"a\"}"));
    /* HS512 is still out. */
    expect_fail(lj_token(JWT_ALG_HS512, SECRET, "{\"sub\":\"a\"}"), SL_AUTH_EALG,
                "algorithm not allowed");
}

AUTH_TEST(jwt, unsupported_types_and_crit)
{
    build();
    const char *payload = "{\"sub\":\"a\"}";
    expect_ok(hmac_token("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", payload, SECRET, strlen(SECRET),
                         EVP_sha256()));
    expect_fail(hmac_token("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", payload, SECRET,
                           strlen(SECRET), EVP_sha256()),
                SL_AUTH_EUNSUPPORTED, "unsupported token type");
    expect_fail(hmac_token("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", payload, SECRET,
                           strlen(SECRET), EVP_sha256()),
                SL_AUTH_EUNSUPPORTED, "unsupported token type");
}

/* ---- RS256 / ES256 ---------------------------------------------------------------- */

AUTH_TEST(jwt, rs256_with_a_real_key_pair)
{
    EVP_PKEY *k = rsa_key(2048);
    set_algs("RS256");
    use_public_key(pem_public(k));
    build();
    char *tok = lj_token(JWT_ALG_RS256, pem_private(k), "{\"sub\":\"rsa-user\"}");
    cr_assert_str_eq(expect_ok(tok).user, "rsa-user");

    /* Signed by another key. */
    expect_fail(lj_token(JWT_ALG_RS256, pem_private(rsa_key(2048)), "{\"sub\":\"x\"}"),
                SL_AUTH_ESIGNATURE, "bad signature");
    /* Tampered payload. */
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    expect_fail(fmt("%.*s.%s%s", (int)(d1 - tok), tok, b64url_str("{\"sub\":\"admin\"}"), d2),
                SL_AUTH_ESIGNATURE, "bad signature");
    /* HS256 is not configured any more. */
    expect_fail(hs256("{\"sub\":\"a\"}"), SL_AUTH_EALG, "algorithm not allowed");
}

AUTH_TEST(jwt, rs256_key_from_certificate_and_file)
{
    EVP_PKEY *k = rsa_key(2048);
    set_algs("RS256");
    use_public_key(pem_certificate(k));
    build();
    char *tok = lj_token(JWT_ALG_RS256, pem_private(k), "{\"sub\":\"cert\"}");
    expect_ok(tok);

    char path[] = "/tmp/sluice-test-pubkey-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(pem_public(k), f);
    fclose(f);
    free(cfg->jwt.public_key);
    cfg->jwt.public_key = NULL;
    cfg->jwt.public_key_file = sl_strdup(path);
    build();
    unlink(path);
    expect_ok(tok);
}

AUTH_TEST(jwt, es256_with_a_real_key_pair)
{
    EVP_PKEY *k = ec_key("P-256");
    set_algs("ES256");
    use_public_key(pem_public(k));
    build();
    cr_assert_str_eq(
        expect_ok(lj_token(JWT_ALG_ES256, pem_private(k), "{\"sub\":\"ec-user\"}")).user,
        "ec-user");
    expect_fail(lj_token(JWT_ALG_ES256, pem_private(ec_key("P-256")), "{\"sub\":\"x\"}"),
                SL_AUTH_ESIGNATURE, "bad signature");
}

/*
 * The classic attack: take the server's RSA public key (it is public), use its PEM
 * text as an HMAC secret and sign an HS256 token. A verifier that hands "the key" to
 * the library and lets the token pick the algorithm accepts it (see the libjwt suite).
 */
AUTH_TEST(jwt, algorithm_confusion_rs_only)
{
    EVP_PKEY *k = rsa_key(2048);
    char *pub = pem_public(k);
    set_algs("RS256");
    use_public_key(pub);
    build();
    char *forged = lj_token(JWT_ALG_HS256, pub, "{\"sub\":\"admin\"}");
    expect_fail(forged, SL_AUTH_EALG, "algorithm not allowed");
}

AUTH_TEST(jwt, algorithm_confusion_hs_and_rs)
{
    EVP_PKEY *k = rsa_key(2048);
    char *pub = pem_public(k);
    set_algs("HS256,RS256");
    use_public_key(pub);
    build();
    /* The PEM exactly as configured, and as sluice re-exports it (the same text here). */
    expect_fail(lj_token(JWT_ALG_HS256, pub, "{\"sub\":\"admin\"}"), SL_AUTH_ESIGNATURE,
                "bad signature");
    /* Both families still work with their own keys. */
    expect_ok(hs256("{\"sub\":\"a\"}"));
    expect_ok(lj_token(JWT_ALG_RS256, pem_private(k), "{\"sub\":\"b\"}"));
    /* And an RS256 header cannot make the HMAC secret act as a public key. */
    expect_fail(hmac_token("{\"alg\":\"RS256\"}", "{\"sub\":\"admin\"}", SECRET, strlen(SECRET),
                           EVP_sha256()),
                SL_AUTH_ESIGNATURE, "bad signature");
}

/* ---- iss, aud, sub ---------------------------------------------------------------- */

AUTH_TEST(jwt, issuer)
{
    cfg->jwt.issuer = sl_strdup("https://idp.example");
    build();
    expect_ok(hs256("{\"sub\":\"a\",\"iss\":\"https://idp.example\"}"));
    expect_fail(hs256("{\"sub\":\"a\",\"iss\":\"https://evil.example\"}"), SL_AUTH_EISSUER,
                "wrong issuer");
    expect_fail(hs256("{\"sub\":\"a\",\"iss\":\"https://idp.example/\"}"), SL_AUTH_EISSUER,
                "wrong issuer");
    expect_fail(hs256("{\"sub\":\"a\"}"), SL_AUTH_EISSUER, "wrong issuer");
    expect_fail(hs256("{\"sub\":\"a\",\"iss\":[\"https://idp.example\"]}"), SL_AUTH_EISSUER,
                "wrong issuer");
}

AUTH_TEST(jwt, issuer_not_checked_when_unset)
{
    build();
    expect_ok(hs256("{\"sub\":\"a\",\"iss\":\"anyone\"}"));
}

AUTH_TEST(jwt, audience_string_and_array)
{
    cfg->jwt.audience = sl_strdup("sluice");
    build();
    expect_ok(hs256("{\"sub\":\"a\",\"aud\":\"sluice\"}"));
    expect_ok(hs256("{\"sub\":\"a\",\"aud\":[\"other\",\"sluice\"]}"));
    expect_ok(hs256("{\"sub\":\"a\",\"aud\":[1,\"sluice\"]}"));
    expect_fail(hs256("{\"sub\":\"a\",\"aud\":\"other\"}"), SL_AUTH_EAUDIENCE, "wrong audience");
    expect_fail(hs256("{\"sub\":\"a\",\"aud\":[\"other\",\"sluice2\"]}"), SL_AUTH_EAUDIENCE,
                "wrong audience");
    expect_fail(hs256("{\"sub\":\"a\",\"aud\":[]}"), SL_AUTH_EAUDIENCE, "wrong audience");
    expect_fail(hs256("{\"sub\":\"a\"}"), SL_AUTH_EAUDIENCE, "wrong audience");
    expect_fail(hs256("{\"sub\":\"a\",\"aud\":{\"sluice\":1}}"), SL_AUTH_EAUDIENCE,
                "wrong audience");
}

AUTH_TEST(jwt, subject_or_name)
{
    build();
    cr_assert_str_eq(expect_ok(hs256("{\"name\":\"Ada\"}")).user, "Ada");
    cr_assert_str_eq(expect_ok(hs256("{\"sub\":\"u1\",\"name\":\"Ada\"}")).user, "u1");
    expect_fail(hs256("{\"iat\":1}"), SL_AUTH_ENOSUBJECT, "token has no subject");
    expect_fail(hs256("{\"sub\":\"\"}"), SL_AUTH_ENOSUBJECT, "token has no subject");
    expect_fail(hs256("{\"sub\":42}"), SL_AUTH_ECLAIMS, "invalid claims");
    char big[SL_AUTH_USER_MAX + 1];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_fail(hs256(fmt("{\"sub\":\"%s\"}", big)), SL_AUTH_ENOSUBJECT, "token has no subject");
}

AUTH_TEST(jwt, sluice_tier_claim)
{
    build();
    struct sl_identity id = expect_ok(hs256("{\"sub\":\"u1\",\"sluice_tier\":\"pro\"}"));
    cr_assert_str_eq(id.tier, "pro");
    cr_assert_str_eq(expect_ok(hs256("{\"sub\":\"u1\"}")).tier, "", "no claim: no tier");
    /* The tier decides a user's limits: a malformed one is refused, never ignored. */
    expect_fail(hs256("{\"sub\":\"u1\",\"sluice_tier\":7}"), SL_AUTH_ECLAIMS, "invalid claims");
    expect_fail(hs256("{\"sub\":\"u1\",\"sluice_tier\":\"\"}"), SL_AUTH_ECLAIMS, "invalid claims");
    char big[SL_CONFIG_TIER_NAME_MAX + 2];
    memset(big, 't', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_fail(hs256(fmt("{\"sub\":\"u1\",\"sluice_tier\":\"%s\"}", big)), SL_AUTH_ECLAIMS,
                "invalid claims");
    big[sizeof(big) - 2] = '\0';
    cr_assert_str_eq(expect_ok(hs256(fmt("{\"sub\":\"u1\",\"sluice_tier\":\"%s\"}", big))).tier,
                     big);
}

/* ---- malformed input ----------------------------------------------------------- */

AUTH_TEST(jwt, malformed_base64_and_json)
{
    build();
    const char *hs = "{\"alg\":\"HS256\"}";
    const char *body = "{\"sub\":\"a\"}";
    char *good = hs256(body);
    char *sig = strrchr(good, '.') + 1;

    /* Characters outside base64url, standard base64, padding. */
    expect_fail(fmt("%s!.%s.%s", b64url_str(hs), b64url_str(body), sig), SL_AUTH_EMALFORMED,
                "malformed token");
    expect_fail(fmt("%s.%s=.%s", b64url_str(hs), b64url_str(body), sig), SL_AUTH_EMALFORMED,
                "malformed token");
    expect_fail(fmt("%s.%s.%s+", b64url_str(hs), b64url_str(body), sig), SL_AUTH_EMALFORMED,
                "malformed token");
    /* A length that no base64 text has (4n + 1). */
    expect_fail(fmt("%sA.%s.%s", b64url_str(hs), b64url_str(body), sig), SL_AUTH_EMALFORMED,
                "malformed token");
    /*
     * Non-canonical trailing bits: the last character of a 22-character segment holds
     * 2 data bits and 4 zero bits; setting one of those changes the text but not the
     * bytes, so two encodings would share one meaning. Correctly signed, still refused.
     */
    char *h = b64url_str("{\"alg\":\"HS256\" }");
    size_t hl = strlen(h);
    cr_assert_eq(hl % 4, 2);
    expect_ok(sign_segments(h, b64url_str(body)));
    h[hl - 1] = (char)(h[hl - 1] + 1);
    expect_fail(sign_segments(h, b64url_str(body)), SL_AUTH_EMALFORMED, "malformed token");
    /* Empty segments. */
    expect_fail("..", SL_AUTH_EMALFORMED, "malformed token");
    expect_fail(fmt(".%s.%s", b64url_str(body), sig), SL_AUTH_EMALFORMED, "malformed token");
    expect_fail(fmt("%s..%s", b64url_str(hs), sig), SL_AUTH_EMALFORMED, "malformed token");
    /* Valid base64url, not JSON objects. */
    expect_fail(craft("not json", body, sig), SL_AUTH_EMALFORMED, "malformed token");
    expect_fail(craft("[\"HS256\"]", body, sig), SL_AUTH_EMALFORMED, "malformed token");
    expect_fail(craft("\"HS256\"", body, sig), SL_AUTH_EMALFORMED, "malformed token");
    expect_fail(hmac_token(hs, "[1,2]", SECRET, strlen(SECRET), EVP_sha256()), SL_AUTH_EMALFORMED,
                "malformed token");
    expect_fail(hmac_token(hs, "{\"sub\":\"a\"", SECRET, strlen(SECRET), EVP_sha256()),
                SL_AUTH_EMALFORMED, "malformed token");
    /* Duplicate keys, where two parsers could disagree on which one counts. */
    expect_fail(hmac_token("{\"alg\":\"none\",\"alg\":\"HS256\"}", body, SECRET, strlen(SECRET),
                           EVP_sha256()),
                SL_AUTH_EMALFORMED, "malformed token");
    expect_fail(
        hmac_token(hs, "{\"sub\":\"a\",\"sub\":\"admin\"}", SECRET, strlen(SECRET), EVP_sha256()),
        SL_AUTH_EMALFORMED, "malformed token");
    /* A NUL inside the token: libjwt would stop there. */
    char *nul = fmt("%s", good);
    size_t len = strlen(nul);
    nul[len - 3] = '\0';
    expect_fail_at(nul, len, sl_wall_ms(), SL_AUTH_EMALFORMED, "malformed token");
    /* Three dots: not a JWT, hence an (unknown) API key. */
    expect_fail(fmt("%s.x", good), SL_AUTH_EUNKNOWNKEY, "unknown API key");
}

AUTH_TEST(jwt, not_nul_terminated_input)
{
    build();
    char *tok = hs256("{\"sub\":\"alice\"}");
    size_t len = strlen(tok);
    char *copy = keep(sl_malloc(len + 16));
    memcpy(copy, tok, len);
    memcpy(copy + len, "GARBAGE.GARBAGE", 16);
    struct sl_identity id;
    cr_assert_eq(sl_auth_verify(auth, copy, len, &id, NULL), 0);
    cr_assert_str_eq(id.user, "alice");
}

AUTH_TEST(jwt, length_cap)
{
    build();
    expect_fail("", SL_AUTH_EMISSING, "missing token");
    char *big = keep(sl_malloc(SL_AUTH_MAX_TOKEN + 2));
    memset(big, 'a', SL_AUTH_MAX_TOKEN + 1);
    big[SL_AUTH_MAX_TOKEN + 1] = '\0';
    expect_fail(big, SL_AUTH_ETOOLONG, "token too long");
    /* A signed token just under the cap still verifies. */
    char *pad = keep(sl_malloc(SL_AUTH_MAX_TOKEN));
    memset(pad, 'p', 5900);
    pad[5900] = '\0';
    char *tok = hs256(fmt("{\"sub\":\"a\",\"pad\":\"%s\"}", pad));
    cr_assert_leq(strlen(tok), SL_AUTH_MAX_TOKEN);
    cr_assert_gt(strlen(tok), SL_AUTH_MAX_TOKEN - 400);
    expect_ok(tok);
}

/* ---- concurrency ------------------------------------------------------------------ */

struct worker_arg {
    const char *tokens[2];
    int failures;
};

static void *
worker(void *p)
{
    struct worker_arg *w = p;
    for (int i = 0; i < 100; i++) {
        struct sl_identity id;
        const char *t = w->tokens[i & 1];
        if (sl_auth_verify(auth, t, strlen(t), &id, NULL) != 0 ||
            strcmp(id.user, (i & 1) ? "rsa" : "hs") != 0)
            w->failures++;
    }
    return NULL;
}

AUTH_TEST(jwt, shared_by_threads)
{
    EVP_PKEY *k = rsa_key(2048);
    set_algs("HS256,RS256");
    use_public_key(pem_public(k));
    build();
    struct worker_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i].tokens[0] = hs256("{\"sub\":\"hs\"}");
        args[i].tokens[1] = lj_token(JWT_ALG_RS256, pem_private(k), "{\"sub\":\"rsa\"}");
        args[i].failures = 0;
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(args[i].failures, 0);
    }
}

/* ---- API keys ---------------------------------------------------------------------- */

static void
add_key(const char *name, const char *key)
{
    cfg->api_keys = sl_realloc(cfg->api_keys, (cfg->napi_keys + 1) * sizeof(*cfg->api_keys));
    struct sl_config_apikey *k = &cfg->api_keys[cfg->napi_keys++];
    *k = (struct sl_config_apikey){.name = sl_strdup(name)};
    unsigned n = 0;
    cr_assert_eq(EVP_Digest(key, strlen(key), k->sha256, &n, EVP_sha256(), NULL), 1);
}

static void
expect_key(const char *key, const char *name)
{
    struct sl_identity id;
    const char *reason;
    cr_assert_eq(sl_auth_verify(auth, key, strlen(key), &id, &reason), 0, "%s: %s", key, reason);
    cr_assert_str_eq(id.user, name);
    cr_assert_str_eq(id.method, "apikey");
    cr_assert_eq(id.exp_ms, 0);
    cr_assert_eq(id.email[0], '\0');
}

AUTH_TEST(apikey, each_key_maps_to_its_name)
{
    add_key("ci", "sk-ci-0123456789");
    add_key("bot", "sk-bot-abcdef");
    add_key("ops", "sk-ops.with.dots.");
    build();
    expect_key("sk-ci-0123456789", "ci");
    expect_key("sk-bot-abcdef", "bot");
    expect_key("sk-ops.with.dots.", "ops"); /* three dots: not a JWT */
}

AUTH_TEST(apikey, the_key_carries_its_tier)
{
    add_key("ci", "sk-ci-0123456789");
    add_key("bot", "sk-bot-abcdef");
    cfg->api_keys[1].tier = sl_strdup("batch");
    build();
    struct sl_identity id;
    cr_assert_eq(sl_auth_verify(auth, "sk-bot-abcdef", 13, &id, NULL), 0);
    cr_assert_str_eq(id.tier, "batch");
    cr_assert_eq(sl_auth_verify(auth, "sk-ci-0123456789", 16, &id, NULL), 0);
    cr_assert_str_eq(id.tier, "");
}

AUTH_TEST(apikey, unknown_keys)
{
    add_key("ci", "sk-ci-0123456789");
    build();
    expect_fail("sk-ci-012345678", SL_AUTH_EUNKNOWNKEY, "unknown API key");
    expect_fail("sk-ci-01234567890", SL_AUTH_EUNKNOWNKEY, "unknown API key");
    expect_fail("SK-CI-0123456789", SL_AUTH_EUNKNOWNKEY, "unknown API key");
    /* The digest itself is not the key. */
    char hex[65];
    sl_hex_encode(hex, cfg->api_keys[0].sha256, 32);
    expect_fail(hex, SL_AUTH_EUNKNOWNKEY, "unknown API key");
}

AUTH_TEST(apikey, none_configured)
{
    build();
    expect_fail("anything", SL_AUTH_EUNKNOWNKEY, "unknown API key");
}

AUTH_TEST(apikey, two_dots_means_jwt)
{
    add_key("odd", "a.b.c");
    build();
    expect_fail("a.b.c", SL_AUTH_EMALFORMED, "malformed token");
}

AUTH_TEST(apikey, null_reason_is_fine)
{
    add_key("ci", "k");
    build();
    struct sl_identity id;
    cr_assert_eq(sl_auth_verify(auth, "k", 1, &id, NULL), 0);
    cr_assert_eq(sl_auth_verify(auth, "j", 1, &id, NULL), SL_AUTH_EUNKNOWNKEY);
}

/* ---- configuration ------------------------------------------------------------------- */

AUTH_TEST(authcfg, refuses_none_and_unknown_algorithms)
{
    set_algs("HS256,none");
    build_fails("\"none\" is not supported");
    set_algs("PS256");
    build_fails("\"PS256\" is not supported");
    set_algs("hs256"); /* configuration names are not case-sensitive */
    build();
    expect_ok(hs256("{\"sub\":\"a\"}"));
}

AUTH_TEST(authcfg, refuses_empty_secret)
{
    free(cfg->jwt.secret);
    cfg->jwt.secret = sl_strdup("");
    build_fails("non-empty secret");
    free(cfg->jwt.secret);
    cfg->jwt.secret = NULL;
    build_fails("non-empty secret");
}

AUTH_TEST(authcfg, refuses_unusable_public_keys)
{
    set_algs("RS256");
    build_fails("public_key_file");
    use_public_key("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n");
    build_fails("not a PEM public key");
    EVP_PKEY *rsa = rsa_key(2048);
    use_public_key(pem_private(rsa)); /* a private key is not what is asked for */
    build_fails("not a PEM public key");
    use_public_key(pem_public(ec_key("P-256")));
    build_fails("RS256 needs an RSA public key");
    use_public_key(pem_public(rsa_key(1024)));
    build_fails("under 2048 bits");
    set_algs("ES256");
    use_public_key(pem_public(ec_key("P-384")));
    build_fails("ES256 needs an EC public key on curve prime256v1");
    use_public_key(pem_public(rsa));
    build_fails("ES256 needs an EC public key");
    set_algs("RS256,ES256"); /* one key cannot serve both */
    build_fails("ES256 needs an EC public key");
    free(cfg->jwt.public_key);
    cfg->jwt.public_key = NULL;
    cfg->jwt.public_key_file = sl_strdup("/nonexistent/sluice.pem");
    build_fails("cannot open /nonexistent/sluice.pem");
}

AUTH_TEST(authcfg, refuses_secret_equal_to_public_key)
{
    char *pub = pem_public(rsa_key(2048));
    set_algs("HS256,RS256");
    use_public_key(pub);
    free(cfg->jwt.secret);
    cfg->jwt.secret = sl_strdup(pub);
    build_fails("must not be the public key");
    /* Also when the configured text is a certificate rather than the key itself. */
    char *cert = pem_certificate(rsa_key(2048));
    use_public_key(cert);
    free(cfg->jwt.secret);
    cfg->jwt.secret = sl_strdup(cert);
    build_fails("must not be the public key");
}

AUTH_TEST(authcfg, refuses_bad_key_names)
{
    add_key("", "k");
    build_fails("api_keys[0].name");
    free(cfg->api_keys[0].name);
    char big[SL_AUTH_USER_MAX + 1];
    memset(big, 'n', SL_AUTH_USER_MAX);
    big[SL_AUTH_USER_MAX] = '\0';
    cfg->api_keys[0].name = sl_strdup(big);
    build_fails("api_keys[0].name");
}

AUTH_TEST(authcfg, no_algorithms_means_api_keys_only)
{
    set_algs("");
    add_key("ci", "k");
    build();
    expect_key("k", "ci");
    expect_fail(hs256("{\"sub\":\"a\"}"), SL_AUTH_EALG, "algorithm not allowed");
    cr_assert_null(sl_auth_mint(auth, "a", 1000));
}

AUTH_TEST(authcfg, strerror_covers_every_code)
{
    for (int c = SL_AUTH_ETHROTTLED; c <= SL_AUTH_EMISSING; c++)
        cr_assert_str_neq(sl_auth_strerror(c), "unknown error", "code %d", c);
    cr_assert_str_eq(sl_auth_strerror(-100), "unknown error");
    cr_assert_str_eq(sl_auth_strerror(-1), "unknown error", "not a bare -1");
    cr_assert_str_eq(sl_err_layer(SL_AUTH_EMISSING), "auth");
    cr_assert_str_eq(sl_err_layer(SL_AUTH_ETHROTTLED), "auth");
}

/*
 * ---- libjwt 1.10.2 itself ----------------------------------------------------------
 * What the library does on its own, pinned so that the reasons for the checks in
 * auth.c stay visible, and so that an upgrade that changes them is noticed.
 */

AUTH_TEST(libjwt, zero_key_length_skips_the_signature)
{
    char *tok = hs256("{\"sub\":\"a\"}");
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_decode(&jwt, tok, (const unsigned char *)"wrong", 0), 0);
    cr_assert_eq(jwt_get_alg(jwt), JWT_ALG_NONE, "verified nothing, says none");
    jwt_free(jwt);
}

AUTH_TEST(libjwt, empty_hmac_key_mints_alg_none)
{
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_new(&jwt), 0);
    jwt_add_grant(jwt, "sub", "a");
    cr_assert_neq(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)"", 0), 0);
    char *tok = keep(jwt_encode_str(jwt));
    jwt_free(jwt);
    cr_assert_str_eq(tok, craft("{\"alg\":\"none\"}", "{\"sub\":\"a\"}", ""));
}

AUTH_TEST(libjwt, alg_none_accepted_without_key)
{
    jwt_t *jwt = NULL;
    const char *tok = craft("{\"alg\":\"none\"}", "{\"sub\":\"admin\"}", "c2ln");
    cr_assert_eq(jwt_decode(&jwt, tok, NULL, 0), 0);
    jwt_free(jwt);
    /* With a key it is refused. */
    jwt = NULL;
    cr_assert_neq(jwt_decode(&jwt, tok, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    cr_assert_null(jwt);
}

AUTH_TEST(libjwt, pem_works_as_an_hmac_secret)
{
    char *pub = pem_public(rsa_key(2048));
    char *tok = lj_token(JWT_ALG_HS256, pub, "{\"sub\":\"admin\"}");
    jwt_t *jwt = NULL;
    cr_assert_eq(jwt_decode(&jwt, tok, (const unsigned char *)pub, (int)strlen(pub)), 0);
    cr_assert_eq(jwt_get_alg(jwt), JWT_ALG_HS256);
    jwt_free(jwt);
}

AUTH_TEST(libjwt, alg_names_case_insensitive)
{
    cr_assert_eq(jwt_str_alg("hs256"), JWT_ALG_HS256);
    cr_assert_eq(jwt_str_alg("NONE"), JWT_ALG_NONE);
}

AUTH_TEST(libjwt, wrong_key_types_are_refused)
{
    EVP_PKEY *rsa = rsa_key(2048), *ec = ec_key("P-256");
    char *rs = lj_token(JWT_ALG_RS256, pem_private(rsa), "{\"sub\":\"a\"}");
    char *ecpub = pem_public(ec);
    jwt_t *jwt = NULL;
    cr_assert_neq(jwt_decode(&jwt, rs, (const unsigned char *)ecpub, (int)strlen(ecpub)), 0);
    cr_assert_neq(jwt_decode(&jwt, rs, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    cr_assert_null(jwt);
}
