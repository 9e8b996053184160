/*
 * The HTTP routes of a worker: health, readiness, metrics, the WebSocket endpoints,
 * and the static test page, one table (routes.c) that says per path its methods, the
 * request body it takes, and whether it is answered at capacity. docs/protocol.md lists
 * them.
 */
#ifndef SL_CORE_ROUTES_H
#define SL_CORE_ROUTES_H

struct sl_conn;
struct sl_http_req;
struct sl_http_head_verdict;

/* The sl_http_request_cb of every worker; ud is the struct sl_worker. */
void sl_routes_handle(void *ud, struct sl_conn *c, struct sl_http_req *req);

/*
 * The sl_http_head_cb of every worker: the body a request's route takes (none, today: a
 * declared body is refused at once, 413, or 405 for a method the route does not serve).
 */
void sl_routes_head(void *ud, const struct sl_http_req *head, struct sl_http_head_verdict *v);

#endif
