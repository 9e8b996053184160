/*
 * sluice-oairender: a test tool that renders canned canonical event sequences through the
 * OpenAI-compatible HTTP API's protocol layer (src/proto/openai_http.c) and writes the bytes
 * to stdout, so that a test can serve them to real OpenAI clients (tests/e2e/56-*) and check
 * that those clients read sluice's output as they read OpenAI's, independently of the HTTP
 * wiring.
 *
 *     sluice-oairender sse-text | sse-tools | sse-error    an SSE body (include_usage on)
 *     sluice-oairender json-text | json-tools              a chat.completion body
 *     sluice-oairender error CODE                          "<status> <retry-after s>\n" + body
 *     sluice-oairender models                              a /v1/models body
 *
 * Exit status 2 on a bad command line.
 */
#include <stdio.h>
#include <string.h>

#include "proto/openai_http.h"

#define STREAM_ID "oair1"
#define MODEL "gpt-test"
#define CREATED 1767225660

static struct sl_event
text(uint32_t seq, const char *t)
{
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = seq};
    ev.u.delta.text = t;
    ev.u.delta.len = strlen(t);
    return ev;
}

static struct sl_event
tool(uint32_t seq, struct sl_tool_delta *d, int index, const char *id, const char *name,
     const char *args)
{
    *d = (struct sl_tool_delta){.index = index,
                                .id = id,
                                .id_len = id ? strlen(id) : 0,
                                .name = name,
                                .name_len = name ? strlen(name) : 0,
                                .arguments = args,
                                .arguments_len = strlen(args)};
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = seq};
    ev.u.delta.tool = d;
    return ev;
}

static struct sl_event
done(uint32_t seq, enum sl_finish f, uint64_t in, uint64_t out)
{
    struct sl_event ev = {.type = SL_EV_DONE, .seq = seq};
    ev.u.done.finish = f;
    ev.u.done.usage = (struct sl_usage){.input_tokens = in, .output_tokens = out};
    return ev;
}

/* Fills evs with the named sequence; returns how many, or 0 for an unknown name. */
static size_t
scenario(const char *name, struct sl_event *evs, struct sl_tool_delta *tools)
{
    size_t n = 0;
    evs[n++] = (struct sl_event){.type = SL_EV_START, .seq = 1};
    evs[n++] = (struct sl_event){.type = SL_EV_PROGRESS, .seq = 2};
    if (strcmp(name, "text") == 0) {
        evs[n++] = text(3, "Hel");
        evs[n++] = text(4, "lo, ");
        evs[n++] = text(5, "w\xc3\xb6rld \"quoted\"\n");
        evs[n++] = done(6, SL_FINISH_STOP, 9, 3);
    } else if (strcmp(name, "tools") == 0) {
        evs[n++] = tool(3, &tools[0], 0, "call_1", "get_weather", "");
        evs[n++] = tool(4, &tools[1], 0, NULL, NULL, "{\"city\":");
        evs[n++] = tool(5, &tools[2], 0, NULL, NULL, "\"Paris\"}");
        evs[n++] = tool(6, &tools[3], 1, "call_2", "get_time", "{}");
        evs[n++] = done(7, SL_FINISH_TOOL_CALLS, 20, 12);
    } else if (strcmp(name, "error") == 0) {
        evs[n++] = text(3, "partial");
        struct sl_event e = {.type = SL_EV_ERROR, .seq = 4};
        e.u.error.code = SL_ERR_UPSTREAM_ERROR;
        e.u.error.message = "openai: upstream closed the stream";
        e.u.error.retry_after_ms = -1;
        evs[n++] = e;
    } else {
        return 0;
    }
    return n;
}

static int
usage(void)
{
    fputs("usage: sluice-oairender sse-text|sse-tools|sse-error|json-text|json-tools|models\n"
          "       sluice-oairender error CODE\n",
          stderr);
    return 2;
}

int
main(int argc, char **argv)
{
    struct sl_buf out = SL_BUF_INIT;
    struct sl_event evs[16];
    struct sl_tool_delta tools[8];
    int rc = 0;
    if (argc < 2)
        return usage();
    const char *what = argv[1];
    if (strncmp(what, "sse-", 4) == 0 && argc == 2) {
        size_t n = scenario(what + 4, evs, tools);
        if (n == 0)
            return usage();
        struct sl_oai_stream st;
        sl_oai_stream_init(&st, STREAM_ID, strlen(STREAM_ID), MODEL, CREATED, true);
        for (size_t i = 0; i < n; i++)
            sl_oai_sse_event(&st, &out, &evs[i]);
        sl_oai_stream_cleanup(&st);
    } else if (strncmp(what, "json-", 5) == 0 && argc == 2) {
        size_t n = scenario(what + 5, evs, tools);
        if (n == 0)
            return usage();
        struct sl_oai_agg *a = sl_oai_agg_new(1 << 20);
        enum sl_oai_agg_state s = SL_OAI_AGG_MORE;
        for (size_t i = 0; i < n; i++)
            s = sl_oai_agg_event(a, &evs[i]);
        if (s == SL_OAI_AGG_COMPLETE)
            sl_oai_agg_render(a, &out, STREAM_ID, strlen(STREAM_ID), MODEL, CREATED);
        else
            sl_oai_render_error(&out, sl_oai_agg_error(a));
        sl_oai_agg_free(a);
    } else if (strcmp(what, "error") == 0 && argc == 3) {
        int code = -1;
        for (int c = 1; c < SL_ERR__COUNT; c++)
            if (strcmp(argv[2], sl_errcode_name((enum sl_errcode)c)) == 0)
                code = c;
        if (code < 0)
            return usage();
        struct sl_oai_error e;
        sl_oai_error_set(&e, (enum sl_errcode)code, code == SL_ERR_BAD_REQUEST ? "n" : NULL,
                         code == SL_ERR_RATE_LIMITED ? 1500 : -1, "rendered %s", argv[2]);
        sl_buf_printf(&out, "%d %lld\n", sl_oai_error_status(e.code), sl_oai_retry_after_s(&e));
        sl_oai_render_error(&out, &e);
    } else if (strcmp(what, "models") == 0 && argc == 2) {
        static const struct sl_ready_model models[] = {{"gpt-test", "openai"},
                                                       {"claude-test", "anthropic"}};
        static const struct sl_ready_agent agents[] = {{"analyst", "claude-test"}};
        sl_oai_render_models(&out, models, 2, agents, 1, CREATED);
    } else {
        return usage();
    }
    if (fwrite(sl_buf_ptr(&out), 1, sl_buf_len(&out), stdout) != sl_buf_len(&out))
        rc = 1;
    sl_buf_free(&out);
    return rc;
}
