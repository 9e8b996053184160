/*
 * Static files (the test page) from one directory, for GET and HEAD.
 *
 * The request path is percent-decoded and refused if it could leave the directory
 * (a ".." segment, a backslash, a NUL, or a symlink that resolves outside); the
 * resolved file must be a regular file inside the root. Files are small and read
 * whole per request.
 */
#ifndef SL_NET_FILES_H
#define SL_NET_FILES_H

#include <stdbool.h>

#include "base/util.h"

struct sl_conn;
struct sl_http_req;

/*
 * Serves root + path (path "/" means "/index.html"). Answers 404 if there is no such
 * file and 400 for a path that is not acceptable. Returns the status sent.
 */
int sl_files_serve(struct sl_conn *c, const struct sl_http_req *req, const char *root,
                   struct sl_slice path);

/* The media type for a file name, by extension. */
const char *sl_files_content_type(const char *name);

#endif
