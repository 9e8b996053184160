#include "base/pem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

const char *
sl_pem_strerror(int code)
{
    /* clang-format off */
    switch (code) {
    case SL_PEM_OK: return "ok";
    case SL_PEM_EOPEN: return "cannot open";
    case SL_PEM_EREAD: return "read error";
    case SL_PEM_ETOOBIG: return "larger than the limit";
    case SL_PEM_ENOTPEM: return "not a PEM file";
    }
    /* clang-format on */
    return "unknown error";
}

/* "-----BEGIN " at the start of a line, then the label (any if NULL) and "-----". */
bool
sl_pem_has_block(const char *text, size_t len, const char *label)
{
    static const char begin[] = "-----BEGIN ";
    const size_t blen = sizeof(begin) - 1;
    size_t llen = label ? strlen(label) : 0;
    for (size_t i = 0; i + blen <= len; i++) {
        if ((i > 0 && text[i - 1] != '\n') || memcmp(text + i, begin, blen) != 0)
            continue;
        const char *l = text + i + blen, *end = text + len;
        const char *eol = memchr(l, '\n', (size_t)(end - l));
        if (eol == NULL)
            eol = end;
        if (eol > l && eol[-1] == '\r')
            eol--;
        /* The line is "-----BEGIN " label "-----": the label is what lies between. */
        if (eol - l < 5 || memcmp(eol - 5, "-----", 5) != 0)
            continue;
        if (label == NULL || ((size_t)(eol - 5 - l) == llen && memcmp(l, label, llen) == 0))
            return true;
    }
    return false;
}

int
sl_pem_read_file(const char *path, const char *label, size_t max, char **out, size_t *len,
                 int *sys_errno)
{
    int rc = SL_PEM_EOPEN;
    struct sl_buf b = SL_BUF_INIT;
    *out = NULL;
    *len = 0;
    *sys_errno = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *sys_errno = errno;
        goto out;
    }
    /* Grown as read, so that a generous cap (a CA bundle) costs only what the file holds. */
    for (;;) {
        char *p = sl_buf_reserve(&b, 16384);
        size_t n = fread(p, 1, 16384, f);
        sl_buf_commit(&b, n);
        if (n < 16384 || sl_buf_len(&b) > max)
            break;
    }
    rc = SL_PEM_EREAD;
    if (ferror(f))
        goto out;
    rc = SL_PEM_ETOOBIG;
    if (sl_buf_len(&b) > max)
        goto out;
    rc = SL_PEM_ENOTPEM;
    if (memchr(sl_buf_ptr(&b), '\0', sl_buf_len(&b)) != NULL ||
        !sl_pem_has_block(sl_buf_ptr(&b), sl_buf_len(&b), label))
        goto out;
    sl_buf_cstr(&b);
    *out = sl_buf_steal(&b, len);
    rc = SL_PEM_OK;
out:
    sl_buf_free(&b);
    if (f != NULL)
        fclose(f);
    return rc;
}
