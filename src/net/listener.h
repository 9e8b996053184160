/*
 * Listening sockets shared by the workers through SO_REUSEPORT, and the accepting of their
 * connections.
 *
 * Each worker owns its own listening socket on the same address, and the kernel
 * spreads incoming connections between them, so accepting needs no lock and no
 * hand-off between threads. The first socket resolves port 0 to a real port, which
 * the others then bind. SO_REUSEPORT would also let a second sluice process (or anything
 * else run by the same user) bind the address and take half the connections without a
 * word, so before binding its own sockets the server probes the address without the
 * option (sl_listener_probe), unless a handover is intended.
 *
 * Accepting is done here rather than by uv_listen(): when the process runs out of file
 * descriptors (EMFILE, ENFILE) libuv reports the error and tries again at once, in a loop
 * that never returns to the event loop while the condition lasts, so a worker spun at
 * 100 % CPU, served nobody and never saw its stop message. Here the listener sheds load
 * instead: it answers the connections waiting in the backlog with a fast 503 (using a
 * reserved descriptor to accept each and close it at once), stops accepting for
 * SL_LISTENER_PAUSE_MS, and logs the event at most once a second with counts; the
 * connections already open are served meanwhile.
 */
#ifndef SL_NET_LISTENER_H
#define SL_NET_LISTENER_H

#include <stddef.h>
#include <stdint.h>

struct sl_loop;
struct sl_listener;

/* How long accepting stops when the process is out of descriptors. */
#define SL_LISTENER_PAUSE_MS 100

/*
 * Creates a non-blocking listening socket on host:port with SO_REUSEPORT and returns its
 * fd, or a negative errno with a message in err. *bound_port receives the actual port.
 */
int sl_listener_open(const char *host, uint16_t port, uint16_t *bound_port, char *err,
                     size_t errlen);

/*
 * Checks that nothing listens on host:port yet, by binding a socket there without
 * SO_REUSEPORT (which conflicts with any listener on the address, of this user or another,
 * and with any wildcard address that covers it). Returns 0 with *bound_port set (the port
 * the kernel chose when port is 0; bind the listeners to it), or a negative errno with a
 * message in err ("address in use by another process" for EADDRINUSE).
 */
int sl_listener_probe(const char *host, uint16_t port, uint16_t *bound_port, char *err,
                      size_t errlen);

/* A new connection: fd is a connected, non-blocking socket, now owned by the callee. */
typedef void (*sl_listener_accept_cb)(void *ud, int fd);

struct sl_listener_stats {
    uint64_t accepted;
    uint64_t shed;   /* connections answered 503 and closed for want of descriptors */
    uint64_t pauses; /* times accepting stopped for SL_LISTENER_PAUSE_MS */
};

/*
 * Starts accepting on fd (from sl_listener_open, taken over) on loop's thread, handing
 * each connection to cb. worker is the id used in log lines. Returns the listener.
 */
struct sl_listener *sl_listener_start(struct sl_loop *loop, int fd, sl_listener_accept_cb cb,
                                      void *ud, unsigned worker);

/*
 * Stops accepting and closes the socket (connections waiting in its backlog are reset by
 * the kernel). The listener is freed once libuv is done with it; do not use it afterwards.
 */
void sl_listener_stop(struct sl_listener *l);

void sl_listener_stats(const struct sl_listener *l, struct sl_listener_stats *out);

#endif
