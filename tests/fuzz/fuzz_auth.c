// fuzz-sources: src/base/alloc.c src/base/util.c src/base/pem.c src/base/buf.c src/base/utf8.c
// fuzz-sources: src/base/codes.c
// fuzz-sources: src/obs/log.c
// fuzz-seeds: tests/fuzz/seeds/auth/*
// fuzz-libs: jansson libjwt libcrypto
/*
 * libFuzzer harness for what src/auth/auth.c does with a token before and around libjwt:
 * the length cap, the JWT / API key split, base64url decoding of the three segments, the
 * header's JSON (`alg`, `typ`, `crit`), the choice of key by algorithm family, and the
 * claims. The input is the token. The verifier accepts HS256 and HS384 with a fixed secret
 * and RS256 with a key made at start, plus one API key.
 *
 * Checked on every input:
 *   - the result is 0 or one of enum sl_auth_error, and reason is its sl_auth_strerror();
 *   - a refusal leaves a zeroed identity; an acceptance a non-empty user, a method, and for
 *     a JWT a signature that really is the HMAC of the token (recomputed here with OpenSSL,
 *     so nothing unsigned or signed with another key ever passes), for an API key the key;
 *   - every segment the strict base64url check accepts decodes and re-encodes (with an
 *     encoder written here) to the very same text: there is exactly one spelling of a token.
 * The seeds in tests/fuzz/seeds/auth are tokens signed with the secret below (header and
 * claim variants, alg none, algorithm confusion, bad base64, an API key).
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The statics (b64url_valid, b64url_decode) are what this harness checks directly. */
#include "../../src/auth/auth.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SECRET "fuzz-secret-0123456789abcdef-0123456789"
#define FUZZ_APIKEY "sk-fuzz-api-key"
/* 2030-01-01: seeds with an exp before it are valid, whatever the day the fuzzer runs. */
#define FUZZ_NOW_MS 1893456000000ull

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_auth: check failed: %s (line %d)\n", #cond, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct sl_auth *verifier;

static char *
rsa_public_pem(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    CHECK(k != NULL);
    BIO *bio = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_PUBKEY(bio, k) == 1);
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    char *pem = sl_strndup(p, (size_t)n);
    BIO_free(bio);
    EVP_PKEY_free(k);
    return pem;
}

static void
init(void)
{
    static char hs256[] = "HS256", hs384[] = "HS384", rs256[] = "RS256";
    static char *algs[] = {hs256, hs384, rs256};
    struct sl_config_apikey key = {.name = (char *)"fuzz-key"};
    unsigned dlen = 0;
    CHECK(EVP_Digest(FUZZ_APIKEY, strlen(FUZZ_APIKEY), key.sha256, &dlen, EVP_sha256(), NULL));
    struct sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.jwt.secret = (char *)FUZZ_SECRET;
    cfg.jwt.algorithms = algs;
    cfg.jwt.nalgorithms = 3;
    cfg.jwt.public_key = rsa_public_pem();
    cfg.jwt.leeway_ms = 30000;
    cfg.jwt.require_exp = false; /* both ways are reached: seeds with and without exp */
    cfg.api_keys = &key;
    cfg.napi_keys = 1;
    char err[256];
    verifier = sl_auth_new(&cfg, err, sizeof(err));
    if (verifier == NULL) {
        fprintf(stderr, "fuzz_auth: %s\n", err);
        abort();
    }
    free(cfg.jwt.public_key);
}

static size_t
b64url_encode(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
    }
    return o;
}

/* A segment the strict check accepts has exactly one spelling: decoding then encoding it. */
static void
check_segment(struct sl_slice s)
{
    if (s.len > SL_AUTH_MAX_TOKEN || !b64url_valid(s))
        return;
    static uint8_t dec[MAX_DECODED];
    static char enc[SL_AUTH_MAX_TOKEN + 4];
    size_t n = b64url_decode(s, dec);
    CHECK(n == s.len / 4 * 3 + (s.len % 4 ? s.len % 4 - 1 : 0));
    size_t m = b64url_encode(dec, n, enc);
    CHECK(m == s.len && memcmp(enc, s.ptr, m) == 0);
}

/* The token's signature segment is the HMAC of header.payload with the secret. */
static bool
hmac_matches(const char *tok, size_t len, const EVP_MD *md)
{
    const char *d2 = NULL;
    for (size_t i = len; i > 0; i--)
        if (tok[i - 1] == '.') {
            d2 = tok + i - 1;
            break;
        }
    CHECK(d2 != NULL);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    CHECK(HMAC(md, FUZZ_SECRET, (int)strlen(FUZZ_SECRET), (const uint8_t *)tok, (size_t)(d2 - tok),
               mac, &maclen) != NULL);
    char want[EVP_MAX_MD_SIZE * 2];
    size_t wlen = b64url_encode(mac, maclen, want);
    size_t slen = (size_t)(tok + len - d2 - 1);
    return slen == wlen && memcmp(d2 + 1, want, wlen) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (verifier == NULL)
        init();
    const char *tok = (const char *)data;

    /* each segment of anything with dots */
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || tok[i] == '.') {
            check_segment(sl_slice_make(tok + start, i - start));
            start = i + 1;
        }
    }

    struct sl_identity id;
    memset(&id, 0x5a, sizeof(id));
    const char *reason = NULL;
    int rc = sl_auth_verify_at(verifier, tok, size, FUZZ_NOW_MS, &id, &reason);
    CHECK(rc == 0 || (rc <= SL_AUTH_EMISSING && rc >= SL_AUTH_ENOEXP));
    CHECK(reason != NULL && strcmp(reason, sl_auth_strerror(rc)) == 0);
    if (rc != 0) {
        static const struct sl_identity zero;
        CHECK(memcmp(&id, &zero, sizeof(id)) == 0);
        return 0;
    }
    size_t ulen = strnlen(id.user, sizeof(id.user));
    CHECK(ulen > 0 && ulen < sizeof(id.user));
    if (strcmp(id.method, "apikey") == 0) {
        CHECK(size == strlen(FUZZ_APIKEY) && memcmp(tok, FUZZ_APIKEY, size) == 0);
        CHECK(strcmp(id.user, "fuzz-key") == 0 && id.exp_ms == 0);
        return 0;
    }
    CHECK(strcmp(id.method, "jwt") == 0);
    /* Only HS* can verify here (no RS256 private key exists): it must be our HMAC. */
    CHECK(hmac_matches(tok, size, EVP_sha256()) || hmac_matches(tok, size, EVP_sha384()));
    CHECK(id.exp_ms == 0 || id.exp_ms > (int64_t)FUZZ_NOW_MS - 30000);
    CHECK(strnlen(id.email, sizeof(id.email)) < sizeof(id.email));
    CHECK(strnlen(id.name, sizeof(id.name)) < sizeof(id.name));
    return 0;
}
