#include "net/files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "net/http.h"

#define MAX_FILE (8u << 20)

const char *
sl_files_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(name, '.');
    if (dot)
        for (size_t i = 0; i < SL_ARRAY_LEN(types); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* A decoded path is acceptable if it is absolute and no segment is "." or "..". */
static bool
path_ok(const char *p)
{
    if (p[0] != '/' || strchr(p, '\\'))
        return false;
    for (const char *seg = p; seg && *seg; seg = strchr(seg + 1, '/')) {
        const char *s = seg + 1;
        size_t n = strcspn(s, "/");
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
    }
    return true;
}

int
sl_files_serve(struct sl_conn *c, const struct sl_http_req *req, const char *root,
               struct sl_slice path)
{
    char decoded[1024], full[PATH_MAX], real_root[PATH_MAX], real_file[PATH_MAX];
    int status = 404;
    int fd = -1;
    char *body = NULL;

    if (sl_http_decode(path, decoded, sizeof(decoded), false) < 0 || !path_ok(decoded)) {
        status = 400;
        sl_http_respond_error(c, req, 400, "bad path", NULL);
        goto out;
    }
    const char *rel = strcmp(decoded, "/") == 0 ? "/index.html" : decoded;
    if (realpath(root, real_root) == NULL)
        goto not_found;
    if ((size_t)snprintf(full, sizeof(full), "%s%s", real_root, rel) >= sizeof(full))
        goto not_found;
    if (realpath(full, real_file) == NULL)
        goto not_found;
    size_t rl = strlen(real_root);
    if (strncmp(real_file, real_root, rl) != 0 || real_file[rl] != '/')
        goto not_found;
    fd = open(real_file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE)
        goto not_found;
    size_t size = (size_t)st.st_size, got = 0;
    body = sl_malloc(size ? size : 1);
    while (got < size) {
        ssize_t r = read(fd, body + got, size - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            goto not_found;
        }
        got += (size_t)r;
    }
    sl_http_respond(c, req, 200, sl_files_content_type(real_file),
                    "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n", body, size);
    status = 200;
    goto out;
not_found:
    sl_http_respond_error(c, req, 404, "not found", NULL);
out:
    if (fd >= 0)
        close(fd);
    free(body);
    return status;
}
