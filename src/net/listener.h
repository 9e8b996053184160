/*
 * Listening sockets shared by the workers through SO_REUSEPORT.
 *
 * Each worker owns its own listening socket on the same address, and the kernel
 * spreads incoming connections between them, so accepting needs no lock and no
 * hand-off between threads. The first socket resolves port 0 to a real port, which
 * the others then bind.
 */
#ifndef SL_NET_LISTENER_H
#define SL_NET_LISTENER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Creates a non-blocking listening socket on host:port with SO_REUSEPORT and returns its
 * fd, or a negative errno with a message in err. *bound_port receives the actual port.
 */
int sl_listener_open(const char *host, uint16_t port, uint16_t *bound_port, char *err,
                     size_t errlen);

#endif
