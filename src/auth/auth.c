#include "auth/auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/pem.h"
#include "base/util.h"
#include "obs/log.h"

/* Longest base64url-decoded header or payload a capped token can hold. */
#define MAX_DECODED (SL_AUTH_MAX_TOKEN / 4 * 3 + 3)

/* Past this, sl_auth_mint refuses the TTL rather than overflow `exp`. */
#define MAX_MINT_TTL_MS (100ull * 366 * 86400 * 1000)

enum family { FAM_HMAC, FAM_RSA, FAM_EC };

/*
 * The algorithms sluice accepts, with the family that chooses the key. For ES* the
 * curve is fixed by RFC 7518 section 3.4; libjwt does not check it (it signs ES256
 * with a P-384 key without complaint), so sl_auth_new does.
 */
static const struct alg_info {
    const char *name;
    jwt_alg_t alg;
    enum family fam;
    const char *curve; /* OpenSSL group name, ES* only */
} algs[] = {
    /* clang-format off */
    {"HS256", JWT_ALG_HS256, FAM_HMAC, NULL},
    {"HS384", JWT_ALG_HS384, FAM_HMAC, NULL},
    {"HS512", JWT_ALG_HS512, FAM_HMAC, NULL},
    {"RS256", JWT_ALG_RS256, FAM_RSA, NULL},
    {"RS384", JWT_ALG_RS384, FAM_RSA, NULL},
    {"RS512", JWT_ALG_RS512, FAM_RSA, NULL},
    {"ES256", JWT_ALG_ES256, FAM_EC, "prime256v1"},
    {"ES384", JWT_ALG_ES384, FAM_EC, "secp384r1"},
    {"ES512", JWT_ALG_ES512, FAM_EC, "secp521r1"},
    /* clang-format on */
};
_Static_assert(SL_ARRAY_LEN(algs) <= 32, "the allowed set is a 32-bit mask");

struct apikey {
    char name[SL_AUTH_USER_MAX];
    uint8_t sha256[32];
    char tier[SL_CONFIG_TIER_NAME_MAX + 1];
};

struct sl_auth {
    uint32_t allowed; /* bit i: algs[i] is accepted */
    char *secret;     /* HMAC secret, NULL when no HS* algorithm is allowed */
    size_t secret_len;
    char *pem; /* SubjectPublicKeyInfo PEM re-exported by OpenSSL, or NULL */
    size_t pem_len;
    char *issuer;   /* NULL: iss not checked */
    char *audience; /* NULL: aud not checked */
    uint64_t leeway_ms;
    bool require_exp;
    struct apikey *keys;
    size_t nkeys;
};

const char *
sl_auth_strerror(int code)
{
    /* clang-format off */
    switch (code) {
    case SL_AUTH_OK: return "ok";
    case SL_AUTH_EMISSING: return "missing token";
    case SL_AUTH_ETOOLONG: return "token too long";
    case SL_AUTH_EMALFORMED: return "malformed token";
    case SL_AUTH_EUNSUPPORTED: return "unsupported token type";
    case SL_AUTH_EALG: return "algorithm not allowed";
    case SL_AUTH_ESIGNATURE: return "bad signature";
    case SL_AUTH_EEXPIRED: return "token expired";
    case SL_AUTH_ENOTYET: return "token not yet valid";
    case SL_AUTH_ECLAIMS: return "invalid claims";
    case SL_AUTH_EISSUER: return "wrong issuer";
    case SL_AUTH_EAUDIENCE: return "wrong audience";
    case SL_AUTH_ENOSUBJECT: return "token has no subject";
    case SL_AUTH_EUNKNOWNKEY: return "unknown API key";
    case SL_AUTH_ENOEXP: return "token has no expiry (exp)";
    case SL_AUTH_ETHROTTLED: return "too many failed attempts, try again later";
    }
    /* clang-format on */
    return "unknown error";
}

/* Index in algs[] of an algorithm name, or -1. Token headers are matched exactly. */
static int
find_alg(const char *name, size_t n, bool icase)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(algs); i++) {
        if (strlen(algs[i].name) != n)
            continue;
        if (icase ? strncasecmp(algs[i].name, name, n) == 0 : memcmp(algs[i].name, name, n) == 0)
            return (int)i;
    }
    return -1;
}

static bool
allows(const struct sl_auth *a, int idx)
{
    return idx >= 0 && (a->allowed & (1u << idx)) != 0;
}

/* ---- configuration --------------------------------------------------------- */

/* The configuration loads the file itself; a struct built by hand may only name it. */
static char *
read_key_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char *pem;
    int sys_errno;
    int rc = sl_pem_read_file(path, NULL, SL_PEM_KEY_MAX, &pem, len, &sys_errno);
    if (rc == SL_PEM_EOPEN)
        snprintf(err, errlen, "jwt.public_key_file: cannot open %s: %s", path, strerror(sys_errno));
    else if (rc != SL_PEM_OK)
        snprintf(err, errlen, "jwt.public_key_file: %s: %s", path, sl_pem_strerror(rc));
    return pem;
}

/* A "PUBLIC KEY" PEM or, failing that, the key of an X.509 certificate PEM. */
static EVP_PKEY *
parse_public_key(const char *pem, size_t len)
{
    EVP_PKEY *pkey = NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        sl_panic("out of memory (BIO_new_mem_buf)");
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey == NULL) {
        bio = BIO_new_mem_buf(pem, (int)len);
        if (bio == NULL)
            sl_panic("out of memory (BIO_new_mem_buf)");
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (cert != NULL) {
            pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    /* Failed parses leave entries on this thread's OpenSSL error queue. */
    ERR_clear_error();
    return pkey;
}

/* Whether pkey can verify algs[idx]; writes why not into err. */
static bool
key_fits(EVP_PKEY *pkey, int idx, char *err, size_t errlen)
{
    const struct alg_info *ai = &algs[idx];
    if (ai->fam == FAM_RSA) {
        if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
            snprintf(err, errlen, "jwt.algorithms: %s needs an RSA public key", ai->name);
            return false;
        }
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            snprintf(err, errlen, "jwt.public_key: RSA keys under 2048 bits are refused");
            return false;
        }
        return true;
    }
    char group[64];
    size_t glen = 0;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
        EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1 ||
        strcmp(group, ai->curve) != 0) {
        snprintf(err, errlen, "jwt.algorithms: %s needs an EC public key on curve %s", ai->name,
                 ai->curve);
        return false;
    }
    return true;
}

/* Re-exports the key as SPKI PEM: what libjwt reads is then exactly what was checked. */
static char *
export_public_key(EVP_PKEY *pkey, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1)
        sl_panic("cannot re-export the JWT public key");
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    sl_assert(n > 0);
    char *res = sl_strndup(data, (size_t)n);
    *len = (size_t)n;
    BIO_free(bio);
    return res;
}

static int
load_public_key(struct sl_auth *a, const struct sl_config *cfg, char *err, size_t errlen)
{
    int res = -1;
    char *file_buf = NULL;
    EVP_PKEY *pkey = NULL;
    const char *pem = cfg->jwt.public_key;
    size_t pem_len = pem ? strlen(pem) : 0;

    if (pem_len == 0 && cfg->jwt.public_key_file != NULL) {
        file_buf = read_key_file(cfg->jwt.public_key_file, &pem_len, err, errlen);
        if (file_buf == NULL)
            goto out;
        pem = file_buf;
    }
    if (pem_len == 0) {
        snprintf(err, errlen, "jwt.algorithms: RS* or ES* need jwt.public_key_file");
        goto out;
    }
    pkey = parse_public_key(pem, pem_len);
    if (pkey == NULL) {
        snprintf(err, errlen, "jwt.public_key: not a PEM public key or certificate");
        goto out;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(algs); i++)
        if (allows(a, (int)i) && algs[i].fam != FAM_HMAC && !key_fits(pkey, (int)i, err, errlen))
            goto out;
    a->pem = export_public_key(pkey, &a->pem_len);
    /* Whoever knows the public key could then sign HS* tokens. */
    if (a->secret != NULL && (strcmp(a->secret, pem) == 0 || strcmp(a->secret, a->pem) == 0)) {
        snprintf(err, errlen, "jwt.secret: must not be the public key");
        goto out;
    }
    res = 0;
out:
    EVP_PKEY_free(pkey);
    free(file_buf);
    return res;
}

struct sl_auth *
sl_auth_new(const struct sl_config *cfg, char *err, size_t errlen)
{
    struct sl_auth *res = NULL;
    struct sl_auth *a = sl_calloc(1, sizeof(*a));
    bool need_hmac = false, need_pub = false;

    for (size_t i = 0; i < cfg->jwt.nalgorithms; i++) {
        const char *name = cfg->jwt.algorithms[i];
        int idx = find_alg(name, strlen(name), true);
        if (idx < 0) {
            snprintf(err, errlen,
                     "jwt.algorithms: \"%s\" is not supported (use HS256..512, "
                     "RS256..512 or ES256..512; none is never accepted)",
                     name);
            goto out;
        }
        a->allowed |= 1u << idx;
        need_hmac |= algs[idx].fam == FAM_HMAC;
        need_pub |= algs[idx].fam != FAM_HMAC;
    }

    if (need_hmac) {
        /* libjwt treats an empty key as "no key" and then skips verification altogether. */
        if (cfg->jwt.secret == NULL || cfg->jwt.secret[0] == '\0') {
            snprintf(err, errlen, "jwt.algorithms: HS* need a non-empty secret (%s)",
                     cfg->jwt.secret_env ? cfg->jwt.secret_env : "jwt.secret");
            goto out;
        }
        a->secret_len = strlen(cfg->jwt.secret);
        a->secret = sl_strndup(cfg->jwt.secret, a->secret_len);
        if (a->secret_len < 32)
            sl_log_msg(SL_LOG_WARN, "auth.weak_secret",
                       "the JWT secret is %zu bytes; HS256 wants at least 32", a->secret_len);
    }
    if (need_pub) {
        if (load_public_key(a, cfg, err, errlen) != 0)
            goto out;
    }

    if (cfg->jwt.issuer != NULL && cfg->jwt.issuer[0] != '\0')
        a->issuer = sl_strdup(cfg->jwt.issuer);
    if (cfg->jwt.audience != NULL && cfg->jwt.audience[0] != '\0')
        a->audience = sl_strdup(cfg->jwt.audience);
    a->leeway_ms = cfg->jwt.leeway_ms;
    a->require_exp = cfg->jwt.require_exp;

    a->keys = sl_calloc(cfg->napi_keys, sizeof(*a->keys));
    for (size_t i = 0; i < cfg->napi_keys; i++) {
        const struct sl_config_apikey *k = &cfg->api_keys[i];
        size_t n = k->name ? strlen(k->name) : 0;
        if (n == 0 || n >= SL_AUTH_USER_MAX) {
            snprintf(err, errlen, "api_keys[%zu].name: must be 1 to %d bytes", i,
                     SL_AUTH_USER_MAX - 1);
            goto out;
        }
        memcpy(a->keys[i].name, k->name, n + 1);
        memcpy(a->keys[i].sha256, k->sha256, sizeof(k->sha256));
        if (k->tier != NULL && strlen(k->tier) > SL_CONFIG_TIER_NAME_MAX) {
            snprintf(err, errlen, "api_keys[%zu].tier: at most %d bytes", i,
                     SL_CONFIG_TIER_NAME_MAX);
            goto out;
        }
        if (k->tier != NULL)
            strcpy(a->keys[i].tier, k->tier);
    }
    a->nkeys = cfg->napi_keys;

    res = a;
    a = NULL;
out:
    sl_auth_free(a);
    return res;
}

void
sl_auth_free(struct sl_auth *a)
{
    if (a == NULL)
        return;
    if (a->secret != NULL)
        OPENSSL_cleanse(a->secret, a->secret_len);
    free(a->secret);
    free(a->pem);
    free(a->issuer);
    free(a->audience);
    free(a->keys);
    free(a);
}

/* ---- JWT ------------------------------------------------------------------- */

static int
b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * A JWS segment: non-empty unpadded base64url whose length and trailing bits are
 * canonical. Stricter than libjwt, which pads whatever it gets and decodes loosely;
 * being stricter is safe because the signature covers the encoded text anyway.
 */
static bool
b64url_valid(struct sl_slice s)
{
    if (s.len == 0 || s.len % 4 == 1)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (b64url_value((unsigned char)s.ptr[i]) < 0)
            return false;
    int last = b64url_value((unsigned char)s.ptr[s.len - 1]);
    if (s.len % 4 == 2)
        return (last & 0x0f) == 0;
    if (s.len % 4 == 3)
        return (last & 0x03) == 0;
    return true;
}

/* Decodes a segment already checked by b64url_valid(); returns the decoded length. */
static size_t
b64url_decode(struct sl_slice s, uint8_t *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < s.len; i++) {
        acc = (acc << 6) | (uint32_t)b64url_value((unsigned char)s.ptr[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o;
}

/* The JSON object a segment holds, or NULL. Duplicate keys are refused. */
static json_t *
decode_object(struct sl_slice s)
{
    uint8_t buf[MAX_DECODED];
    sl_assert(s.len <= SL_AUTH_MAX_TOKEN);
    size_t n = b64url_decode(s, buf);
    json_t *js = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (js != NULL && !json_is_object(js)) {
        json_decref(js);
        js = NULL;
    }
    return js;
}

static bool
json_str_eq(const json_t *v, const char *s)
{
    return json_is_string(v) && json_string_length(v) == strlen(s) &&
           memcmp(json_string_value(v), s, json_string_length(v)) == 0;
}

static bool
audience_ok(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return json_str_eq(aud, want);
    if (json_is_array(aud)) {
        for (size_t i = 0; i < json_array_size(aud); i++)
            if (json_str_eq(json_array_get(aud, i), want))
                return true;
    }
    return false;
}

/* A string claim into dst[cap], whole or not at all ("" then): see struct sl_identity. */
static void
copy_claim(char *dst, size_t cap, const json_t *v)
{
    dst[0] = '\0';
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
}

/* exp (seconds, maybe fractional) as the ms of struct sl_identity: 1..INT64_MAX. */
static int64_t
exp_to_ms(double exp_s)
{
    double ms = exp_s * 1000.0;
    if (ms >= 9.2e18)
        return INT64_MAX;
    /* Only a clock near the epoch (tests) accepts an exp this early; 0 would mean "never". */
    if (ms < 1)
        return 1;
    return (int64_t)ms;
}

/* Checks the claims of a token whose signature is good, and fills *id. */
static int
check_claims(const struct sl_auth *a, json_t *claims, uint64_t now_ms, struct sl_identity *id)
{
    /* Doubles: NumericDate may be fractional, and no value can overflow the arithmetic. */
    double now = (double)now_ms, leeway = (double)a->leeway_ms;
    json_t *v = json_object_get(claims, "exp");
    int64_t exp_ms = 0;
    if (v != NULL) {
        if (!json_is_number(v))
            return SL_AUTH_ECLAIMS;
        double exp_s = json_number_value(v);
        if (now >= exp_s * 1000.0 + leeway)
            return SL_AUTH_EEXPIRED;
        exp_ms = exp_to_ms(exp_s);
    } else if (a->require_exp) {
        return SL_AUTH_ENOEXP;
    }
    v = json_object_get(claims, "nbf");
    if (v != NULL) {
        if (!json_is_number(v))
            return SL_AUTH_ECLAIMS;
        if (now + leeway < json_number_value(v) * 1000.0)
            return SL_AUTH_ENOTYET;
    }
    if (a->issuer != NULL && !json_str_eq(json_object_get(claims, "iss"), a->issuer))
        return SL_AUTH_EISSUER;
    if (a->audience != NULL && !audience_ok(json_object_get(claims, "aud"), a->audience))
        return SL_AUTH_EAUDIENCE;

    v = json_object_get(claims, "sub");
    if (v == NULL)
        v = json_object_get(claims, "name");
    if (v == NULL)
        return SL_AUTH_ENOSUBJECT;
    if (!json_is_string(v))
        return SL_AUTH_ECLAIMS;
    size_t n = json_string_length(v);
    /* Truncating would let two long subjects share an identity. */
    if (n == 0 || n >= sizeof(id->user))
        return SL_AUTH_ENOSUBJECT;
    memcpy(id->user, json_string_value(v), n);
    id->user[n] = '\0';
    /* The tier is the issuer's word on this user's limits: a malformed one is refused. */
    v = json_object_get(claims, "sluice_tier");
    if (v != NULL) {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > SL_CONFIG_TIER_NAME_MAX)
            return SL_AUTH_ECLAIMS;
        memcpy(id->tier, json_string_value(v), json_string_length(v) + 1);
    }
    strcpy(id->method, "jwt");
    id->exp_ms = exp_ms;
    copy_claim(id->sub, sizeof(id->sub), json_object_get(claims, "sub"));
    copy_claim(id->email, sizeof(id->email), json_object_get(claims, "email"));
    copy_claim(id->name, sizeof(id->name), json_object_get(claims, "name"));
    return SL_AUTH_OK;
}

/*
 * The header is decoded here, before libjwt sees the token, because libjwt would
 * take the algorithm and the meaning of the key from the token itself.
 */
static int
verify_jwt(const struct sl_auth *a, const char *tok, size_t len, uint64_t now_ms,
           struct sl_identity *id)
{
    int rc = SL_AUTH_EMALFORMED;
    json_t *hdr = NULL, *claims = NULL;
    jwt_t *jwt = NULL;
    char cstr[SL_AUTH_MAX_TOKEN + 1];

    const char *d1 = memchr(tok, '.', len);
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    struct sl_slice h = sl_slice_make(tok, (size_t)(d1 - tok));
    struct sl_slice p = sl_slice_make(d1 + 1, (size_t)(d2 - d1 - 1));
    struct sl_slice s = sl_slice_make(d2 + 1, (size_t)(tok + len - d2 - 1));
    if (!b64url_valid(h) || !b64url_valid(p))
        goto out;
    hdr = decode_object(h);
    if (hdr == NULL)
        goto out;
    json_t *alg = json_object_get(hdr, "alg");
    if (!json_is_string(alg))
        goto out;
    int idx = find_alg(json_string_value(alg), json_string_length(alg), false);
    if (!allows(a, idx)) {
        rc = SL_AUTH_EALG;
        goto out;
    }
    json_t *typ = json_object_get(hdr, "typ");
    /* libjwt refuses other types itself, which would read as "bad signature". */
    if ((typ != NULL && !(json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0)) ||
        json_object_get(hdr, "crit") != NULL) {
        rc = SL_AUTH_EUNSUPPORTED;
        goto out;
    }
    /* An empty signature is an unsigned token, whatever the header says. */
    if (!b64url_valid(s))
        goto out;
    claims = decode_object(p);
    if (claims == NULL)
        goto out;

    const unsigned char *key;
    size_t key_len;
    if (algs[idx].fam == FAM_HMAC) {
        key = (const unsigned char *)a->secret;
        key_len = a->secret_len;
    } else {
        key = (const unsigned char *)a->pem;
        key_len = a->pem_len;
    }
    /* A zero length would make jwt_decode skip the signature (see auth.h). */
    sl_assert(key != NULL && key_len > 0 && key_len <= INT32_MAX);
    memcpy(cstr, tok, len);
    cstr[len] = '\0';
    int r = jwt_decode(&jwt, cstr, key, (int)key_len);
    if (r == ENOMEM)
        sl_panic("out of memory in jwt_decode");
    if (r != 0 || jwt == NULL || jwt_get_alg(jwt) != algs[idx].alg) {
        rc = SL_AUTH_ESIGNATURE;
        goto out;
    }
    rc = check_claims(a, claims, now_ms, id);
out:
    jwt_free(jwt);
    json_decref(hdr);
    json_decref(claims);
    return rc;
}

/* ---- API keys -------------------------------------------------------------- */

/*
 * Compares the digest with every configured one, without stopping at a match, so
 * the time taken does not tell which key (if any) matched. The digest of a guess
 * says nothing about the key bytes, which is why hashing first is what makes the
 * comparison safe to begin with.
 */
static int
verify_apikey(const struct sl_auth *a, const char *tok, size_t len, struct sl_identity *id)
{
    uint8_t digest[32];
    unsigned dlen = 0;
    if (EVP_Digest(tok, len, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != sizeof(digest))
        sl_panic("SHA-256 failed");
    size_t found = 0, which = 0;
    for (size_t i = 0; i < a->nkeys; i++) {
        size_t eq = (size_t)(CRYPTO_memcmp(digest, a->keys[i].sha256, sizeof(digest)) == 0);
        size_t mask = (size_t)0 - eq;
        which = (which & ~mask) | (i & mask);
        found |= eq;
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    if (!found)
        return SL_AUTH_EUNKNOWNKEY;
    strcpy(id->user, a->keys[which].name);
    strcpy(id->tier, a->keys[which].tier);
    strcpy(id->method, "apikey");
    id->exp_ms = 0;
    return SL_AUTH_OK;
}

/* ---- entry points ---------------------------------------------------------- */

int
sl_auth_verify_at(const struct sl_auth *a, const char *token, size_t len, uint64_t now_ms,
                  struct sl_identity *id, const char **reason)
{
    int rc;
    memset(id, 0, sizeof(*id));
    if (len == 0) {
        rc = SL_AUTH_EMISSING;
    } else if (len > SL_AUTH_MAX_TOKEN) {
        rc = SL_AUTH_ETOOLONG;
    } else {
        size_t dots = 0;
        for (size_t i = 0; i < len; i++)
            dots += token[i] == '.';
        rc = dots == 2 ? verify_jwt(a, token, len, now_ms, id) : verify_apikey(a, token, len, id);
    }
    if (rc != SL_AUTH_OK)
        memset(id, 0, sizeof(*id));
    if (reason != NULL)
        *reason = sl_auth_strerror(rc);
    return rc;
}

const char *
sl_identity_sub(const struct sl_identity *id)
{
    return id->sub[0] ? id->sub : NULL;
}

const char *
sl_identity_email(const struct sl_identity *id)
{
    return id->email[0] ? id->email : NULL;
}

const char *
sl_identity_name(const struct sl_identity *id)
{
    return id->name[0] ? id->name : NULL;
}

int
sl_auth_verify(const struct sl_auth *a, const char *token, size_t len, struct sl_identity *id,
               const char **reason)
{
    return sl_auth_verify_at(a, token, len, sl_wall_ms(), id, reason);
}

char *
sl_auth_mint(const struct sl_auth *a, const char *sub, uint64_t ttl_ms)
{
    char *res = NULL;
    jwt_t *jwt = NULL;
    size_t sub_len = sub ? strlen(sub) : 0;

    if (a->secret == NULL || !allows(a, find_alg("HS256", 5, false)) || sub_len == 0 ||
        sub_len >= SL_AUTH_USER_MAX || ttl_ms == 0 || ttl_ms > MAX_MINT_TTL_MS)
        goto out;
    if (jwt_new(&jwt) != 0)
        sl_panic("out of memory in jwt_new");
    long now = (long)(sl_wall_ms() / 1000);
    long exp = now + (long)((ttl_ms + 999) / 1000);
    if (jwt_add_grant(jwt, "sub", sub) != 0 || jwt_add_grant_int(jwt, "iat", now) != 0 ||
        jwt_add_grant_int(jwt, "exp", exp) != 0)
        goto out;
    if (a->issuer != NULL && jwt_add_grant(jwt, "iss", a->issuer) != 0)
        goto out;
    if (a->audience != NULL && jwt_add_grant(jwt, "aud", a->audience) != 0)
        goto out;
    /* On failure libjwt leaves the object unsigned and would happily encode alg none. */
    if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)a->secret, (int)a->secret_len) != 0)
        goto out;
    res = jwt_encode_str(jwt);
out:
    jwt_free(jwt);
    return res;
}
