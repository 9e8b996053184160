/*
 * A provider adapter driven by the test: start() records the call, and the test decides
 * when deltas, usage, the end or an error arrive (fake_delta, fake_done, fake_error), and
 * checks what the stream asked for (cancel, pause, resume). Installed through the
 * upstream context's ops_override, so streams and sessions run their real code paths
 * against it. One call at a time is "the" call; earlier ones stay reachable by pointer.
 */
#ifndef SL_TEST_FAKE_PROVIDER_H
#define SL_TEST_FAKE_PROVIDER_H

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "upstream/provider.h"
#include "upstream/upstream.h"

struct fake_call {
    struct sl_upstream *up;
    const struct sl_upstream_sink *sink;
    void *ud;
    bool paused;
    unsigned pauses, resumes;
};

static struct {
    struct fake_call *last; /* the newest live call, NULL once it ended */
    unsigned started, cancelled, pauses, resumes;
    bool fail_start; /* start() refuses (an error known at once) */
} fake;

static void *
fake_start(struct sl_upstream *up, const struct sl_call_params *p,
           const struct sl_upstream_sink *sink, void *ud, struct sl_upstream_error *err)
{
    (void)p;
    fake.started++;
    if (fake.fail_start) {
        err->code = SL_ERR_UPSTREAM_AUTH;
        err->message = "no key";
        err->retryable = false;
        return NULL;
    }
    struct fake_call *c = sl_calloc(1, sizeof(*c));
    c->up = up;
    c->sink = sink;
    c->ud = ud;
    up->active_calls++;
    fake.last = c;
    return c;
}

static void
fake_release(struct fake_call *c)
{
    c->up->active_calls--;
    if (fake.last == c)
        fake.last = NULL;
    free(c);
}

static void
fake_cancel(void *call)
{
    fake.cancelled++;
    fake_release(call);
}

static void
fake_pause(void *call)
{
    struct fake_call *c = call;
    c->paused = true;
    c->pauses++;
    fake.pauses++;
}

static void
fake_resume(void *call)
{
    struct fake_call *c = call;
    c->paused = false;
    c->resumes++;
    fake.resumes++;
}

static const struct sl_provider_ops fake_ops = {
    .kind = "fake",
    .start = fake_start,
    .cancel = fake_cancel,
    .pause = fake_pause,
    .resume = fake_resume,
};

__attribute__((unused)) static void
fake_delta(struct fake_call *c, const char *text)
{
    c->sink->on_delta(c->ud, text, strlen(text));
}

/* Usage then done; the call is over afterwards. */
__attribute__((unused)) static void
fake_done(struct fake_call *c, uint64_t in, uint64_t out)
{
    struct sl_usage u = {.input_tokens = in, .output_tokens = out};
    const struct sl_upstream_sink *sink = c->sink;
    void *ud = c->ud;
    sink->on_usage(ud, &u);
    fake_release(c);
    sink->on_done(ud, SL_FINISH_STOP, "stop");
}

__attribute__((unused)) static void
fake_error(struct fake_call *c, enum sl_errcode code, bool retryable)
{
    struct sl_upstream_error e = {
        .code = code, .message = "fake failure", .retryable = retryable, .retry_after_ms = -1};
    const struct sl_upstream_sink *sink = c->sink;
    void *ud = c->ud;
    fake_release(c);
    sink->on_error(ud, &e);
}

static void
fake_reset(void)
{
    memset(&fake, 0, sizeof(fake));
}

#endif
