/*
 * One connection to Redis on a worker's loop (hiredis's async API with its libuv adapter).
 *
 * Commands are pipelined: everything sent during a loop turn leaves in one write when the
 * socket is writable, and replies come back in order. A connection that fails (refused,
 * reset, a server restart) is reopened with exponential backoff (100 ms doubling to 2 s);
 * until it is up again sl_rconn_cmd() refuses at once, so callers fall back to what they do
 * without Redis instead of queueing without bound. A connection counts as up once the
 * server answered the handshake (AUTH and SELECT from the URL, then PING), within
 * redis.timeout; a server that accepts but never answers is dropped at that deadline.
 *
 * Lifetime: created and freed on the loop's thread. sl_rconn_free() runs every pending
 * reply callback with a NULL reply before it returns, and closes the socket's handle (the
 * loop must run once more for the close to complete).
 */
#ifndef SL_CLUSTER_RCONN_H
#define SL_CLUSTER_RCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redisReply;
struct sl_loop;
struct sl_rconn;

/* A reply; r is NULL when the connection was lost (or freed) before it came. */
typedef void (*sl_rconn_reply_fn)(void *ud, struct redisReply *r);

struct sl_rconn_opts {
    const char *url;     /* redis://[:password@]host[:port][/db] or unix:///path */
    const char *name;    /* for logs: "commands", "subscriber", "tail" */
    unsigned worker;     /* for logs */
    uint64_t timeout_ms; /* handshake deadline */
    /* Up (handshake answered) and down (lost or refused); both optional. */
    void (*on_up)(void *ud);
    void (*on_down)(void *ud);
    void *ud;
    bool quiet; /* no log lines of its own (a second connection of one worker) */
};

struct sl_rconn *sl_rconn_new(struct sl_loop *loop, const struct sl_rconn_opts *o);

/* Closes the connection (pending callbacks get NULL) and frees it. NULL does nothing. */
void sl_rconn_free(struct sl_rconn *c);

/*
 * Closes the connection once what is queued has been written and answered (at most
 * opts.timeout_ms), then frees it. Reply callbacks may still run on later turns.
 */
void sl_rconn_close(struct sl_rconn *c);

bool sl_rconn_up(const struct sl_rconn *c);

/*
 * Queues a command (binary-safe arguments). fn (may be NULL) gets the reply on a later
 * turn; for SUBSCRIBE it gets the confirmation and then every message, and NULL when the
 * connection goes. Returns -1, without calling fn, when the connection is not up.
 */
int sl_rconn_cmd(struct sl_rconn *c, sl_rconn_reply_fn fn, void *ud, int argc, const char **argv,
                 const size_t *argvlen);

/*
 * The watchdog (call every second or so): a connection with replies awaited and none
 * received for opts.timeout_ms is dropped and reconnected, as if it had failed.
 */
void sl_rconn_check(struct sl_rconn *c);

/* Commands queued since the start (for the commands metric). */
uint64_t sl_rconn_commands(const struct sl_rconn *c);

/* Splits a redis.url. Returns 0, or -1 when it is not one (check_redis_url accepts it). */
struct sl_redis_addr {
    char host[256]; /* or the socket's path when unix */
    int port;
    bool unix_socket;
    char username[128]; /* an ACL user (Redis 6+), or "" */
    char password[256];
    int db;
};
int sl_redis_parse_url(const char *url, struct sl_redis_addr *out);

#endif
