/*
 * Moving an HTTP connection to another worker's loop, at a request boundary.
 *
 * Each worker accepts its own connections (SO_REUSEPORT), but some requests belong to
 * state another worker owns: an Engine.IO long-polling request carries the sid of a session
 * that lives on the worker that made it; later, a resume request for a stream another
 * worker runs. Rather than share that state under a lock, the connection moves: from
 * inside the request callback, sl_handoff_request() takes the connection over, collects
 * the bytes that were already read after the request, and on the next loop turn (once
 * anything queued on it is written) passes a duplicate of its socket, the request
 * (written again as HTTP/1.1 bytes: method, target, headers, body with a Content-Length)
 * and those bytes to the owner's loop with sl_loop_post(). The owner adopts the socket as
 * a connection of its own, starts HTTP on it and feeds it the bytes, so that it sees the
 * request exactly as if it had been read there; keep-alive requests that follow on the
 * connection then go to the owner directly. The original connection is closed on this
 * side without a FIN (the socket lives on in the duplicate).
 *
 * Cost: one dup(), one message and the request's bytes, once per connection that lands
 * on the wrong worker; nothing on the hot path, nothing shared but the mailbox.
 *
 * If the socket cannot be duplicated (EMFILE) or the owner is stopping, the connection is
 * closed: the client sees it fail and retries, as after any dropped connection.
 */
#ifndef SL_NET_HANDOFF_H
#define SL_NET_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>

struct sl_conn;
struct sl_conn_pool;
struct sl_http_req;
struct sl_loop;
struct sl_handoff;

struct sl_handoff_ops {
    /*
     * On the receiving loop, before a moved connection is adopted: whether this worker
     * takes it (not stopping, under its connection limit; the place to count it). Optional.
     */
    bool (*admit)(void *ud);
    /* On the receiving loop: start serving the adopted connection (sl_http_serve). */
    void (*serve)(void *ud, struct sl_conn *c);
};

/*
 * The hand-off endpoint of one worker: it sends from and receives on loop, adopting into
 * pool. ops and ud must outlive it.
 */
struct sl_handoff *sl_handoff_new(struct sl_loop *loop, struct sl_conn_pool *pool,
                                  const struct sl_handoff_ops *ops, void *ud);

/*
 * From now on connections moved here are closed instead of adopted (the worker is
 * stopping). Call on the endpoint's own loop.
 */
void sl_handoff_stop(struct sl_handoff *h);

/* Frees the endpoint, after its loop ended. */
void sl_handoff_free(struct sl_handoff *h);

/*
 * Moves connection c, with the request req being handled, to the loop of `to`. Call from
 * inside the HTTP request callback of c, on from's loop, instead of answering; c is taken
 * over (its handler replaced) and must not be used afterwards.
 */
void sl_handoff_request(struct sl_handoff *from, struct sl_conn *c, const struct sl_http_req *req,
                        struct sl_handoff *to);

/* Connections sent away and received (for tests and logs; each read on its own loop). */
uint64_t sl_handoff_sent(const struct sl_handoff *h);
uint64_t sl_handoff_received(const struct sl_handoff *h);

#endif
