/*
 * The WebSocket transport of a client session: glues an sl_ws (net/ws.h) to an
 * sl_session (core/session.h) in both directions.
 */
#ifndef SL_CORE_WS_TRANSPORT_H
#define SL_CORE_WS_TRANSPORT_H

#include "obs/metrics.h"
#include "proto/proto.h"

struct sl_worker;
struct sl_conn;
struct sl_http_req;

/* Accepts the WebSocket handshake on c and starts a session speaking proto over it. */
void sl_ws_transport_accept(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req,
                            const struct sl_proto *proto, enum sl_proto_kind kind,
                            const char *token);

#endif
