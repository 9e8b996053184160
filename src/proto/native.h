/*
 * The native protocol of DESIGN.md: JSON text messages on /ws, typed by "type".
 * docs/protocol.md is its reference.
 */
#ifndef SL_PROTO_NATIVE_H
#define SL_PROTO_NATIVE_H

#include "proto/proto.h"

extern const struct sl_proto sl_proto_native;

/* The same messages as Socket.IO events (namespace /sluice): event = type, argument = object. */
extern const struct sl_proto sl_proto_native_sio;

#endif
