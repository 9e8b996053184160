/* Unit tests for src/base/pem: reading key and certificate files whole, and their checks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/pem.h"

static char path[64];

static void
make_file(const void *data, size_t n)
{
    snprintf(path, sizeof(path), "/tmp/sl-pem-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void
drop_file(void)
{
    if (path[0])
        unlink(path);
}

TestSuite(pem, .fini = drop_file);

static const char key[] = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";

Test(pem, reads_the_whole_file)
{
    make_file(key, strlen(key));
    char *out;
    size_t len;
    int e;
    cr_assert_eq(sl_pem_read_file(path, NULL, SL_PEM_KEY_MAX, &out, &len, &e), SL_PEM_OK);
    cr_assert_eq(len, strlen(key));
    cr_assert_str_eq(out, key);
    free(out);
    cr_assert_eq(sl_pem_read_file(path, "PUBLIC KEY", SL_PEM_KEY_MAX, &out, &len, &e), SL_PEM_OK);
    free(out);
}

Test(pem, a_file_larger_than_the_read_chunk)
{
    /* 40 KiB of comment lines before the block: more than one read of the loop. */
    size_t n = 40 * 1024;
    char *big = malloc(n + sizeof(key));
    memset(big, '#', n);
    for (size_t i = 63; i < n; i += 64)
        big[i] = '\n';
    big[n - 1] = '\n';
    memcpy(big + n, key, sizeof(key));
    make_file(big, n + strlen(key));
    char *out;
    size_t len;
    int e;
    cr_assert_eq(sl_pem_read_file(path, "PUBLIC KEY", SL_PEM_KEY_MAX, &out, &len, &e), SL_PEM_OK);
    cr_assert_eq(len, n + strlen(key));
    cr_assert_eq(memcmp(out, big, len), 0);
    cr_assert_eq(out[len], '\0');
    free(out);
    free(big);
}

Test(pem, the_limit_is_inclusive)
{
    make_file(key, strlen(key));
    char *out = (char *)1;
    size_t len = 1;
    int e;
    cr_assert_eq(sl_pem_read_file(path, NULL, strlen(key), &out, &len, &e), SL_PEM_OK);
    free(out);
    cr_assert_eq(sl_pem_read_file(path, NULL, strlen(key) - 1, &out, &len, &e), SL_PEM_ETOOBIG);
    cr_assert_null(out);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(sl_pem_strerror(SL_PEM_ETOOBIG), "larger than the limit");
}

Test(pem, a_missing_file_keeps_errno)
{
    char *out = (char *)1;
    size_t len;
    int e = 0;
    cr_assert_eq(sl_pem_read_file("/nonexistent/k.pem", NULL, 100, &out, &len, &e), SL_PEM_EOPEN);
    cr_assert_eq(e, ENOENT);
    cr_assert_null(out);
}

Test(pem, refuses_what_is_not_pem)
{
    static const struct {
        const char *text;
        size_t len;
        const char *label;
    } bad[] = {
        {"not a key\n", 10, NULL},
        {"x -----BEGIN PUBLIC KEY-----\n", 29, NULL},           /* not at a line start */
        {"-----BEGIN PUBLIC KEY\nMFkw\n", 27, NULL},            /* no closing dashes */
        {"-----BEGIN PUBLIC KEY-----\n\0x\n", 30, NULL},        /* a NUL byte */
        {"-----BEGIN PRIVATE KEY-----\nx\n", 30, "PUBLIC KEY"}, /* another label */
        {"-----BEGIN CERTIFICATE-----\nx\n", 30, "CERT"},       /* a prefix of it */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        make_file(bad[i].text, bad[i].len);
        char *out = (char *)1;
        size_t len;
        int e;
        cr_expect_eq(sl_pem_read_file(path, bad[i].label, 4096, &out, &len, &e), SL_PEM_ENOTPEM,
                     "case %zu", i);
        cr_expect_null(out);
        unlink(path);
    }
    path[0] = '\0';
}

Test(pem, block_lines)
{
    static const char crlf[] = "junk\r\n-----BEGIN CERTIFICATE-----\r\nx\r\n";
    cr_assert(sl_pem_has_block(crlf, strlen(crlf), "CERTIFICATE"));
    cr_assert(sl_pem_has_block(crlf, strlen(crlf), NULL));
    cr_assert_not(sl_pem_has_block(crlf, strlen(crlf), "TRUSTED CERTIFICATE"));
    static const char two[] = "-----BEGIN PRIVATE KEY-----\nx\n-----BEGIN CERTIFICATE-----";
    cr_assert(sl_pem_has_block(two, strlen(two), "CERTIFICATE"), "the second block, at the end");
    cr_assert_not(sl_pem_has_block(two, strlen(two) - 1, "CERTIFICATE"), "cut");
}
