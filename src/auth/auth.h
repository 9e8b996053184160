/*
 * Authentication of clients: JWTs (HS*, RS*, ES* through libjwt) and API keys.
 *
 * A struct sl_auth is built once from the configuration (sl_auth_new) and is
 * immutable afterwards: every worker thread calls sl_auth_verify() on the same
 * object without locks. It copies what it needs, so the configuration may be freed
 * before it.
 *
 * What is a token: a string with exactly two dots is a JWT (compact JWS); anything
 * else is tried as an API key. The caller strips "Bearer " and URL-decoding itself.
 *
 * JWT rules, in the order they are checked:
 *   1. the header (base64url JSON, decoded here, not by libjwt) names its `alg`; `none`
 *      and anything not in jwt.algorithms (exact, case-sensitive names) is refused;
 *      a `typ` other than "JWT" and any `crit` header are refused;
 *   2. the key is chosen by the algorithm's family, never by what the token would like:
 *      HS* -> the HMAC secret, RS* or ES* -> the configured public key. An HS256 token can
 *      therefore never be checked against the PEM (the classic algorithm confusion);
 *   3. the signature is verified by libjwt, which must report the same algorithm;
 *   4. claims: `exp` and `nbf` (numbers) with jwt.leeway_ms of tolerance, `exp` required
 *      unless jwt.require_exp is off (a token without it would never expire), `iss` when
 *      jwt.issuer is set, `aud` (a string or an array of strings) when jwt.audience is
 *      set; the identity is `sub`, or `name` when there is no `sub`; `sluice_tier`, when
 *      present, must be a string of 1 to SL_CONFIG_TIER_NAME_MAX bytes (the limits tier;
 *      src/limits/limits.h).
 *
 * libjwt 1.10.2 pitfalls this module works around (tests/unit/test_auth.c pins them):
 * jwt_decode() with a key length of 0 skips signature verification for every
 * algorithm and reports JWT_ALG_NONE; jwt_set_alg() with an empty HMAC key fails and
 * leaves the object unsigned, so jwt_encode_str() emits an `alg: none` token; it
 * accepts `alg` names case-insensitively; and a key of the wrong family is used
 * as-is (an RSA public key PEM makes a perfectly good HMAC secret).
 */
#ifndef SL_AUTH_AUTH_H
#define SL_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* Tokens and API keys longer than this are refused before any decoding. */
#define SL_AUTH_MAX_TOKEN 8192

/* Size of sl_identity.user; longer subjects and key names are refused, not truncated. */
#define SL_AUTH_USER_MAX 128

/* Size of the email and name claims kept in sl_identity (the NUL included). */
#define SL_AUTH_CLAIM_MAX 256

/*
 * Who a token belongs to. A plain value (no pointers): copy it as a whole, keep only what
 * is needed (the session keeps `user`).
 */
struct sl_identity {
    char user[SL_AUTH_USER_MAX]; /* JWT `sub` (or `name`), or the API key's configured name */
    char method[8];              /* "jwt" or "apikey" */
    /*
     * The JWT's `exp` in milliseconds since the epoch (a fraction of a second kept, at least
     * 1, at most INT64_MAX); 0 when the token never expires: an API key, or a JWT without
     * `exp` when jwt.require_exp is off. sl_auth_verify accepts the token until
     * exp_ms + jwt.leeway_ms; a session may end then.
     */
    int64_t exp_ms;
    /*
     * Claims a protocol dialect may show, each copied whole or not at all: "" when absent,
     * not a string, or too long for its array (never truncated). Read them through
     * sl_identity_sub() etc., which say NULL for "".
     */
    char sub[SL_AUTH_USER_MAX];
    char email[SL_AUTH_CLAIM_MAX];
    char name[SL_AUTH_CLAIM_MAX];
    char tier[SL_CONFIG_TIER_NAME_MAX + 1]; /* JWT `sluice_tier` or the key's tier; "" if none */
};

/* A JWT's `sub`, `email` and `name` claims, or NULL (see struct sl_identity). */
const char *sl_identity_sub(const struct sl_identity *id);
const char *sl_identity_email(const struct sl_identity *id);
const char *sl_identity_name(const struct sl_identity *id);

/*
 * Why a token was refused, in the auth layer's range of internal codes (base/codes.h).
 * Every code has a short English text (sl_auth_strerror) that is safe to send to the
 * client: it never contains any part of the token.
 */
enum sl_auth_error {
    SL_AUTH_OK = 0,
    SL_AUTH_EMISSING = -1101,     /* "missing token": empty string */
    SL_AUTH_ETOOLONG = -1102,     /* "token too long": over SL_AUTH_MAX_TOKEN */
    SL_AUTH_EMALFORMED = -1103,   /* "malformed token": bad base64url or JSON */
    SL_AUTH_EUNSUPPORTED = -1104, /* "unsupported token type": typ not JWT, crit present */
    SL_AUTH_EALG = -1105,         /* "algorithm not allowed": none, unknown, not configured */
    SL_AUTH_ESIGNATURE = -1106,   /* "bad signature" */
    SL_AUTH_EEXPIRED = -1107,     /* "token expired" */
    SL_AUTH_ENOTYET = -1108,      /* "token not yet valid" */
    SL_AUTH_ECLAIMS = -1109,      /* "invalid claims": exp/nbf not numbers, sub not a string... */
    SL_AUTH_EISSUER = -1110,      /* "wrong issuer" */
    SL_AUTH_EAUDIENCE = -1111,    /* "wrong audience" */
    SL_AUTH_ENOSUBJECT = -1112,   /* "token has no subject": neither sub nor name, or too long */
    SL_AUTH_EUNKNOWNKEY = -1113,  /* "unknown API key" */
    SL_AUTH_ENOEXP = -1114,       /* "token has no expiry (exp)": jwt.require_exp is on */
    SL_AUTH_ETHROTTLED = -1115,   /* "too many failed attempts, try again later" (throttle.h) */
};

struct sl_auth;

/*
 * Builds the verifier from cfg->jwt, cfg->api_keys. Fails (NULL, with a one-line
 * message naming the key in err[errlen]) when the configuration cannot work safely:
 * an unknown algorithm or `none` in jwt.algorithms; an HS* algorithm without a
 * non-empty secret; an RS* or ES* algorithm without a public key (jwt.public_key, or
 * jwt.public_key_file when the content was not loaded), with a key of the other
 * family, an RSA key under 2048 bits or an EC curve that does not match (ES256 needs
 * P-256, ES384 P-384, ES512 P-521); an HMAC secret equal to the public key; an API
 * key with an empty name or one of SL_AUTH_USER_MAX bytes or more. The public key may
 * be a SubjectPublicKeyInfo PEM ("PUBLIC KEY") or an X.509 certificate PEM.
 * The result is freed with sl_auth_free().
 */
struct sl_auth *sl_auth_new(const struct sl_config *cfg, char *err, size_t errlen);

void sl_auth_free(struct sl_auth *a);

/*
 * Verifies token[0..len) (not necessarily NUL-terminated) against the wall clock.
 * Returns 0 and fills *id, or a negative enum sl_auth_error with *reason set to its
 * static text (*id is then zeroed). Safe to call from any thread at the same time.
 * reason may be NULL.
 */
int sl_auth_verify(const struct sl_auth *a, const char *token, size_t len, struct sl_identity *id,
                   const char **reason);

/* The same with an explicit wall-clock time in milliseconds since the epoch (tests). */
int sl_auth_verify_at(const struct sl_auth *a, const char *token, size_t len, uint64_t now_ms,
                      struct sl_identity *id, const char **reason);

/* The client-safe text of an enum sl_auth_error ("unknown error" for anything else). */
const char *sl_auth_strerror(int code);

/*
 * Mints an HS256 JWT signed with the HMAC secret: {"sub", "iat", "exp" = now + ttl
 * (rounded up to a whole second), "iss" and "aud" when configured}. Used by
 * `sluice token --sub NAME [--ttl 1h]` and the dev token printed at start.
 * Returns a NUL-terminated string that the caller frees with free(), or NULL when
 * there is no HMAC secret, HS256 is not in jwt.algorithms (the token could not be
 * verified), sub is empty or SL_AUTH_USER_MAX bytes or longer, or ttl_ms is 0.
 */
char *sl_auth_mint(const struct sl_auth *a, const char *sub, uint64_t ttl_ms);

#endif
