#include "upstream/demo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/utf8.h"
#include "net/loop.h"
#include "upstream/upstream.h"

/*
 * The demo model answers locally, so that the quick start streams real tokens with no
 * API key. The answer is a function of the prompt (its words pick the sentences), the
 * pace is providers.demo.tokens_per_second, and max_tokens cuts it like a real model
 * would (finish_reason "length").
 */

#define DEFAULT_ANSWER_TOKENS 80

struct demo_call {
    uv_timer_t timer;
    struct sl_upstream *up;
    const struct sl_upstream_sink *sink;
    void *ud;
    char *text;     /* the whole answer */
    size_t *starts; /* token boundaries: token i is text[starts[i] .. starts[i + 1]) */
    size_t ntokens; /* tokens to emit */
    size_t next;    /* next token to emit */
    size_t per_tick;
    bool truncated; /* cut by max_tokens */
    bool finished;  /* cancelled or done: no more sink calls */
    uint64_t input_tokens;
};

static const char *const openers[] = {
    "Here is what I can tell you about",
    "Let me walk you through",
    "A short answer on",
    "Good question about",
    "Thinking out loud about",
};

static const char *const sentences[] = {
    "Every word you see arrives the moment it is generated, one WebSocket frame at a time.",
    "sluice keeps one connection per client and multiplexes several streams over it.",
    "A cancel stops the provider at once, so no tokens are paid for after you stop reading.",
    "Each event carries its stream id and a sequence number, so nothing can arrive out of place.",
    "Time to first token, usage and cost come with the done event of every answer.",
    "The gateway speaks to OpenAI, Anthropic, Gemini and Ollama with one client protocol.",
    "Heartbeats find dead connections and free their streams without waiting for a timeout "
    "upstream.",
    "This answer comes from the built-in demo model, so no API key is needed to try it.",
    "A provider that fails before the first token is retried, then replaced by a fallback model.",
    "Metrics at /metrics show connections, streams, tokens and latency histograms.",
    "Rate limits protect the providers and your budget from runaway clients.",
    "Several workers share the load, each with its own event loop and no locks on the hot path.",
    "An idle connection costs the gateway about a kilobyte of memory.",
    "Every error comes with a code, a message and whether retrying makes sense.",
    "Graceful shutdown lets streams finish before clients are asked to reconnect elsewhere.",
    "Bad input gets a clear error event and never disturbs anyone else's stream.",
};

static uint64_t
fnv1a(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t
next_rand(uint64_t *state)
{
    /* xorshift64*: deterministic per prompt, which is all a demo needs. */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

/* The first few words of the prompt, quoted, cut on a character boundary. */
static void
topic(struct sl_buf *b, const char *prompt, size_t n)
{
    while (n > 0 && (*prompt == ' ' || *prompt == '\n' || *prompt == '\t')) {
        prompt++;
        n--;
    }
    size_t cut = n > 60 ? sl_utf8_boundary(prompt, 60) : n;
    sl_buf_append_str(b, " \"");
    for (size_t i = 0; i < cut; i++)
        sl_buf_append_byte(b, prompt[i] == '\n' || prompt[i] == '\r' ? ' ' : prompt[i]);
    if (cut < n)
        sl_buf_append_str(b, "...");
    sl_buf_append_str(b, "\".");
}

static void
compose(struct demo_call *d, const struct sl_chat_req *req)
{
    size_t plen;
    const char *prompt = sl_chat_req_last_user_text(req, &plen);
    uint64_t seed = fnv1a(prompt, plen, 1469598103934665603ULL) | 1;
    struct sl_buf b = SL_BUF_INIT;

    sl_buf_append_str(&b, openers[next_rand(&seed) % SL_ARRAY_LEN(openers)]);
    topic(&b, prompt, plen);
    size_t nsent = 3 + next_rand(&seed) % 4;
    for (size_t i = 0; i < nsent; i++) {
        sl_buf_append_byte(&b, ' ');
        sl_buf_append_str(&b, sentences[next_rand(&seed) % SL_ARRAY_LEN(sentences)]);
    }
    d->text = sl_buf_steal(&b, &plen);
    d->text = sl_realloc(d->text, plen + 1);
    d->text[plen] = '\0';

    /* One token per word, each carrying the space before it. */
    size_t cap = 16, n = 0;
    d->starts = sl_malloc(cap * sizeof(size_t));
    for (size_t i = 0; i <= plen; i++) {
        if (i == 0 || i == plen || d->text[i] == ' ') {
            if (n + 1 >= cap) {
                cap *= 2;
                d->starts = sl_realloc(d->starts, cap * sizeof(size_t));
            }
            if (n == 0 || d->starts[n - 1] != i)
                d->starts[n++] = i;
        }
    }
    d->ntokens = n - 1;
}

static void
on_closed(uv_handle_t *h)
{
    struct demo_call *d = h->data;
    free(d->text);
    free(d->starts);
    free(d);
}

/* Ends the call, once: the last tick and a cancel from its on_usage both get here. */
static void
finish(struct demo_call *d)
{
    sl_assert(!d->finished);
    d->finished = true;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_closed);
    sl_assert(d->up->active_calls > 0);
    d->up->active_calls--;
}

static void
on_tick(uv_timer_t *t)
{
    struct demo_call *d = t->data;
    for (size_t k = 0; k < d->per_tick && d->next < d->ntokens; k++) {
        size_t a = d->starts[d->next], z = d->starts[d->next + 1];
        d->next++;
        d->sink->on_delta(d->ud, d->text + a, z - a);
        if (d->finished)
            return; /* cancelled from inside the callback */
    }
    if (d->next < d->ntokens)
        return;
    struct sl_usage u = {.input_tokens = d->input_tokens, .output_tokens = d->ntokens};
    d->sink->on_usage(d->ud, &u);
    if (d->finished)
        return; /* cancelled from on_usage: on_done is not due any more */
    const struct sl_upstream_sink *sink = d->sink;
    void *ud = d->ud;
    bool truncated = d->truncated;
    finish(d);
    sink->on_done(ud, truncated ? SL_FINISH_LENGTH : SL_FINISH_STOP, truncated ? "length" : "stop");
}

static void *
demo_start(struct sl_upstream *up, const struct sl_call_params *p,
           const struct sl_upstream_sink *sink, void *ud, struct sl_upstream_error *err)
{
    (void)err;
    struct demo_call *d = sl_calloc(1, sizeof(*d));
    d->up = up;
    d->sink = sink;
    d->ud = ud;
    compose(d, p->req);
    size_t limit = p->max_tokens > 0 ? (size_t)p->max_tokens : DEFAULT_ANSWER_TOKENS * 4;
    if (d->ntokens > limit) {
        d->ntokens = limit;
        d->truncated = true;
    }
    size_t chars = sl_chat_req_text_chars(p->req) + (p->system ? strlen(p->system) : 0);
    d->input_tokens = (chars + 3) / 4 + 4;

    double rate = p->provider->demo_tokens_per_second;
    uint64_t interval;
    if (rate <= 0) {
        interval = 0;
        d->per_tick = 256;
    } else if (rate > 1000) {
        interval = 1;
        d->per_tick = (size_t)ceil(rate / 1000);
    } else {
        interval = (uint64_t)llround(1000 / rate);
        d->per_tick = 1;
    }
    uv_timer_init(sl_loop_uv(up->loop), &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_tick, interval, interval ? interval : 1);
    up->active_calls++;
    return d;
}

static void
demo_cancel(void *call)
{
    finish(call);
}

static void
demo_pause(void *call)
{
    struct demo_call *d = call;
    uv_timer_stop(&d->timer);
}

static void
demo_resume(void *call)
{
    struct demo_call *d = call;
    uint64_t r = uv_timer_get_repeat(&d->timer);
    uv_timer_start(&d->timer, on_tick, r, r);
}

const struct sl_provider_ops sl_provider_demo = {
    .kind = "demo",
    .start = demo_start,
    .cancel = demo_cancel,
    .pause = demo_pause,
    .resume = demo_resume,
};
