/*
 * The HTTP routes of a worker: health, readiness, metrics, the WebSocket endpoints,
 * and the static test page. docs/protocol.md lists them.
 */
#ifndef SL_CORE_ROUTES_H
#define SL_CORE_ROUTES_H

struct sl_conn;
struct sl_http_req;

/* The sl_http_request_cb of every worker; ud is the struct sl_worker. */
void sl_routes_handle(void *ud, struct sl_conn *c, struct sl_http_req *req);

#endif
