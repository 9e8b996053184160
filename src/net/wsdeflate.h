/*
 * permessage-deflate (RFC 7692) for one WebSocket connection: the zlib streams behind the
 * parameters that net/wshandshake.c negotiated.
 *
 * Memory is what decides the shape. A compressor keeps its history across messages (context
 * takeover), which is what makes a stream of small token frames compress at all, so it
 * lives as long as the connection: with the defaults (a 2 KiB window, memLevel 4) it holds
 * about 24 KiB instead of zlib's usual 256 KiB. With server_no_context_takeover it is freed
 * after every message instead. A client's messages are always compressed without context
 * (the server asks for client_no_context_takeover), so a decompressor exists only while
 * one message is decoded, and what it produces is capped by the message size limit: a
 * small message that inflates past it (a zip bomb) is refused, with at most limit + 1
 * bytes ever produced.
 */
#ifndef SL_NET_WSDEFLATE_H
#define SL_NET_WSDEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "net/wshandshake.h"

struct sl_wsdeflate;

/* level: zlib's 1..9; mem_level: 1..9 (hash table and literal buffer size). */
struct sl_wsdeflate *sl_wsdeflate_new(const struct sl_ws_deflate_params *p, int level,
                                      int mem_level);
void sl_wsdeflate_free(struct sl_wsdeflate *d);

/*
 * Appends the compressed payload of one message to out (the stream's sync-flush tail
 * 00 00 ff ff taken off, RFC 7692 7.2.1) and returns true: the frame carrying it has RSV1
 * set. Returns false, out untouched, when the message is better sent uncompressed (RSV1
 * clear, which RFC 7692 allows on any message): only without context takeover, where no
 * history has to stay in step with the client's, for a message under
 * SL_WSDEFLATE_MIN_ALONE bytes (alone it cannot shrink: 40 bytes of JSON stay 40 and
 * cost 2 µs) or one that did not shrink.
 */
#define SL_WSDEFLATE_MIN_ALONE 64
bool sl_wsdeflate_compress(struct sl_wsdeflate *d, const void *msg, size_t len, struct sl_buf *out);

/*
 * Decompresses one message (the payload of a message whose first frame had RSV1) into
 * out, producing at most max bytes. Returns 0; or the close code to answer with and
 * *why a static reason: 1009 if the message inflates past max, 1007 if it is not a
 * deflate stream.
 */
int sl_wsdeflate_decompress(struct sl_wsdeflate *d, const void *in, size_t len, uint64_t max,
                            struct sl_buf *out, const char **why);

/* Bytes zlib holds for this connection now (for the tests of the memory promise). */
size_t sl_wsdeflate_memory(const struct sl_wsdeflate *d);

#endif
