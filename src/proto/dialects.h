/*
 * The client dialects by name, as socketio.namespaces.<name>.dialects names them.
 */
#ifndef SL_PROTO_DIALECTS_H
#define SL_PROTO_DIALECTS_H

#include "proto/proto.h"

/* "native" (sluice's own protocol as Socket.IO events), ...; NULL if unknown. */
const struct sl_proto *sl_proto_by_dialect(const char *name);

#endif
