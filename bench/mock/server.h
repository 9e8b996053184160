/*
 * The mock upstream: provider routes answered from fixtures or synthetic streams,
 * and the /_mock observation endpoints. See docs/mock.md for the interface.
 *
 * One loop (sl_loop), one thread; HTTP is sluice's own layer (src/net/http over
 * src/net/conn), every answer a held response. The server owns the fixtures, the
 * request log and every connection; nothing is global, so a test could run two.
 */
#ifndef MOCK_SERVER_H
#define MOCK_SERVER_H

#include <stddef.h>

struct mock_server;
struct sl_loop;

struct mock_server_opts {
    const char *host;         /* "127.0.0.1" */
    int port;                 /* 0: any */
    const char *fixtures_dir; /* holds index.json */
    size_t log_cap;           /* entries kept by /_mock/log */
};

/*
 * Loads the fixtures and starts listening. Returns the server and the bound port, or
 * NULL with a reason in err.
 */
struct mock_server *mock_server_start(struct sl_loop *loop, const struct mock_server_opts *o,
                                      int *bound_port, char *err, size_t errlen);

/* Stops listening and closes every connection (open responses end as aborted). */
void mock_server_stop(struct mock_server *s);

/* Frees the server once the loop has run out after mock_server_stop() and sl_loop_stop(). */
void mock_server_free(struct mock_server *s);

#endif
