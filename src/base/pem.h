/*
 * Reading a PEM file whole: the one reader of the files the configuration names as keys
 * or certificates (auth.jwt.public_key_file, a provider's ca_file).
 *
 * It only checks the shape: the file is readable, at most `max` bytes, text without NUL
 * bytes (the content is used as a C string), and holds at least one "-----BEGIN <label>-----"
 * line (with label, if given, as its label). What the blocks hold is for their user to
 * judge: OpenSSL for the JWT key (src/auth/auth.c), libcurl for a CA bundle.
 *
 * Depends on libc only; no OpenSSL here.
 */
#ifndef SL_BASE_PEM_H
#define SL_BASE_PEM_H

#include <stdbool.h>
#include <stddef.h>

/* A key or certificate file larger than this is not one (a PEM public key is ~0.5-1 KiB). */
#define SL_PEM_KEY_MAX (1u << 20)

/* In the base layer's range of internal codes (base/codes.h). */
enum sl_pem_error {
    SL_PEM_OK = 0,
    SL_PEM_EOPEN = -111,   /* "cannot open": fopen failed, *sys_errno says why */
    SL_PEM_EREAD = -112,   /* "read error" */
    SL_PEM_ETOOBIG = -113, /* "larger than the limit" */
    SL_PEM_ENOTPEM = -114, /* "not a PEM file": a NUL byte, or no BEGIN line (of that label) */
};

/*
 * Reads the file at path. label is NULL (any block) or a PEM label such as "CERTIFICATE".
 * Returns SL_PEM_OK with *out a NUL-terminated copy of the whole file (the caller frees it)
 * and *len its length; or a negative enum sl_pem_error with *out NULL, and *sys_errno the
 * errno of a failed open (0 otherwise). out, len and sys_errno may not be NULL.
 */
int sl_pem_read_file(const char *path, const char *label, size_t max, char **out, size_t *len,
                     int *sys_errno);

/* True if text[0..len) holds a "-----BEGIN <label>-----" line (any label if NULL). */
bool sl_pem_has_block(const char *text, size_t len, const char *label);

/* A short English text of an enum sl_pem_error ("unknown error" for anything else). */
const char *sl_pem_strerror(int code);

#endif
