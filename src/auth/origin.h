/*
 * The Origin check of WebSocket upgrades and other browser-reachable endpoints.
 *
 * Browsers send Origin with every WebSocket handshake and let any page open a socket
 * to any server, cookies included; checking Origin is what stops another site from
 * talking to sluice with its visitors' credentials (cross-site WebSocket hijacking).
 * Programs that are not browsers send no Origin and are not concerned.
 *
 * The rule (DESIGN.md, auth.allowed_origins), first match wins:
 *   1. no Origin header (origin.ptr == NULL)                 -> allowed (not a browser);
 *   2. "*" in cfg->allowed_origins                           -> allowed, whatever the Origin;
 *   3. the server's own origin: scheme (https when tls, else http) and the Host header,
 *      scheme and host compared case-insensitively, default ports made explicit
 *      (http://h == http://h:80, https://h == https://h:443)  -> allowed;
 *   4. an entry of cfg->allowed_origins, compared the same way (a trailing "/" in the
 *      entry is tolerated)                                   -> allowed;
 *   5. "null" (sandboxed frames, file: pages) only when "null" itself is listed;
 *   6. anything else, including an empty or unparsable Origin -> refused: the caller
 *      answers HTTP 403 (or closes with 1008 when it has already upgraded).
 *
 * Behind a TLS-terminating proxy the connection is plain HTTP while the page is https:
 * the caller passes tls = true only if it trusts the proxy's word for it, or the
 * public origin is listed in allowed_origins.
 *
 * Pure function of its arguments: no allocation, safe from any thread.
 */
#ifndef SL_AUTH_ORIGIN_H
#define SL_AUTH_ORIGIN_H

#include <stdbool.h>

#include "base/util.h"
#include "config/config.h"

/*
 * origin: the Origin header value, {NULL, 0} when the header is absent (a present
 * but empty header is {non-NULL, 0} and is refused). host: the Host header value,
 * {NULL, 0} when absent. Leading and trailing blanks of both are ignored.
 */
bool sl_origin_allowed(const struct sl_config *cfg, struct sl_slice origin, struct sl_slice host,
                       bool tls);

#endif
