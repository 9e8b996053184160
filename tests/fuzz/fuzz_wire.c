// fuzz-sources: src/upstream/wire.c src/upstream/jscan.c src/upstream/fastpath.c
// fuzz-sources: src/upstream/sse.c src/upstream/ndjson.c
// fuzz-sources: src/upstream/openai.c src/upstream/anthropic.c src/upstream/gemini.c
// fuzz-sources: src/upstream/ollama.c src/base/buf.c src/base/alloc.c src/base/utf8.c
// fuzz-sources: src/base/util.c src/base/codes.c
// fuzz-seeds: @fixtures/*/*.sse @fixtures/*/*.ndjson @fixtures/*/*.json tests/fuzz/seeds/wire/*
// fuzz-libs: jansson
/*
 * libFuzzer harness for the response decoder (src/upstream/wire.c) and the four adapters'
 * stream readers. The input is a response body; each adapter reads it
 *   1. whole, through its jscan fast path (the normal configuration);
 *   2. whole, with jansson only (sl_resp.slow_only);
 *   3. in pseudo-random pieces, fast path on;
 * and all three must report exactly the same callbacks and outcome, with exactly one
 * terminal callback and nothing after it. (2) is the reference: the fast path may only
 * ever agree with it. The same bytes are also read as the body of an HTTP error status.
 * Every piece is fed from its own heap copy, freed after the feed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "upstream/anthropic.h"
#include "upstream/gemini.h"
#include "upstream/httpcall.h"
#include "upstream/ollama.h"
#include "upstream/openai.h"
#include "upstream/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The adapters' provider ops point here; the fuzzer never starts a call. */
void *
sl_httpcall_start(const struct sl_wire *w, struct sl_upstream *up, const struct sl_call_params *p,
                  const struct sl_upstream_sink *sink, void *ud, struct sl_upstream_error *err)
{
    (void)w, (void)up, (void)p, (void)sink, (void)ud, (void)err;
    abort();
}
void
sl_httpcall_cancel(void *call)
{
    (void)call;
    abort();
}
void
sl_httpcall_pause(void *call)
{
    (void)call;
    abort();
}
void
sl_httpcall_resume(void *call)
{
    (void)call;
    abort();
}
bool
sl_httpcall_queued(void *call)
{
    (void)call;
    abort();
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_wire: check failed: %s (line %d)\n", #cond, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct rec {
    struct sl_buf log;
    int terminals;
};

static void
put(struct rec *r, char tag, const void *p, size_t n)
{
    CHECK(r->terminals == 0); /* nothing after the terminal callback */
    uint32_t len = (uint32_t)n;
    sl_buf_append_byte(&r->log, tag);
    sl_buf_append(&r->log, &len, sizeof(len));
    sl_buf_append(&r->log, p, n);
}

static void
on_delta(void *ud, const char *text, size_t len)
{
    CHECK(len > 0);
    put(ud, 'd', text, len);
}

static void
on_tool(void *ud, const struct sl_tool_delta *t)
{
    put(ud, 't', &t->index, sizeof(t->index));
    put(ud, 'i', t->id ? t->id : "(null)", t->id ? t->id_len : 6);
    put(ud, 'n', t->name ? t->name : "(null)", t->name ? t->name_len : 6);
    put(ud, 'a', t->arguments ? t->arguments : "", t->arguments_len);
}

static void
on_usage(void *ud, const struct sl_usage *u)
{
    put(ud, 'u', u, sizeof(*u));
}

static void
on_done(void *ud, enum sl_finish f, const char *native)
{
    struct rec *r = ud;
    put(r, 'D', &f, sizeof(f));
    put(r, 'N', native ? native : "(null)", native ? strlen(native) : 6);
    r->terminals++;
}

static void
on_error(void *ud, const struct sl_upstream_error *e)
{
    struct rec *r = ud;
    CHECK(e->message != NULL && strstr(e->message, "fuzz-secret-key") == NULL);
    put(r, 'E', &e->code, sizeof(e->code));
    put(r, 'R', &e->retryable, sizeof(e->retryable));
    put(r, 'A', &e->retry_after_ms, sizeof(e->retry_after_ms));
    put(r, 'M', e->message, strlen(e->message));
    r->terminals++;
}

static const struct sl_upstream_sink sink = {
    .on_delta = on_delta,
    .on_tool_delta = on_tool,
    .on_usage = on_usage,
    .on_done = on_done,
    .on_error = on_error,
};

static uint64_t
hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void
run(const struct sl_wire *w, int status, const uint8_t *data, size_t size, uint64_t seed, bool slow,
    struct sl_buf *out)
{
    struct sl_config_provider pv;
    memset(&pv, 0, sizeof(pv));
    pv.name = (char *)"fuzz";
    pv.api_key = (char *)"fuzz-secret-key";
    struct rec r = {SL_BUF_INIT, 0};
    struct sl_resp resp;
    sl_resp_init(&resp, w, &sink, &r, &pv);
    resp.slow_only = slow;
    char line[64];
    snprintf(line, sizeof(line), "HTTP/1.1 %d X\r\n", status);
    sl_resp_header(&resp, line, strlen(line));
    sl_resp_header(&resp, "\r\n", 2);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off;
        if (seed != 0) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            n = 1 + (size_t)(seed >> 33) % 64;
            if (n > size - off)
                n = size - off;
        }
        char *piece = malloc(n);
        memcpy(piece, data + off, n);
        int rc = sl_resp_body(&resp, piece, n);
        free(piece);
        off += n;
        if (rc != 0)
            break;
    }
    sl_resp_end(&resp, NULL);
    sl_resp_deliver(&resp);
    CHECK(r.terminals == 1);
    sl_resp_cleanup(&resp);
    sl_buf_append(out, sl_buf_ptr(&r.log), sl_buf_len(&r.log));
    sl_buf_free(&r.log);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sl_wire *const wires[] = {&sl_wire_openai, &sl_wire_anthropic,
                                                  &sl_wire_gemini, &sl_wire_ollama};
    uint64_t h = hash(data, size) | 1;
    for (size_t i = 0; i < sizeof(wires) / sizeof(wires[0]); i++) {
        struct sl_buf fast = SL_BUF_INIT, slow = SL_BUF_INIT, split = SL_BUF_INIT;
        run(wires[i], 200, data, size, 0, false, &fast);
        run(wires[i], 200, data, size, 0, true, &slow);
        run(wires[i], 200, data, size, h, false, &split);
        CHECK(sl_buf_len(&fast) == sl_buf_len(&slow) &&
              memcmp(sl_buf_ptr(&fast), sl_buf_ptr(&slow), sl_buf_len(&fast)) == 0);
        CHECK(sl_buf_len(&fast) == sl_buf_len(&split) &&
              memcmp(sl_buf_ptr(&fast), sl_buf_ptr(&split), sl_buf_len(&fast)) == 0);
        sl_buf_free(&fast);
        sl_buf_free(&slow);
        sl_buf_free(&split);
        /* the same bytes as an HTTP error body */
        struct sl_buf err = SL_BUF_INIT;
        run(wires[i], 400 + (int)(h % 200), data, size, 0, false, &err);
        sl_buf_free(&err);
    }
    return 0;
}
