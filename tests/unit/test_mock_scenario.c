/* Unit tests for the mock upstream's scenario grammar, routes and request helpers. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../bench/mock/request.c"
#include "../../bench/mock/scenario.c"

static int
parse(const char *s, struct mock_scenario *out, char *err)
{
    return mock_scenario_parse(s, strlen(s), out, err, 256);
}

Test(mock_scenario, fixture_modes)
{
    struct mock_scenario sc;
    char err[256];
    cr_assert_eq(parse("fixture:openai/chat_stream_basic", &sc, err), 0);
    cr_assert_eq(sc.kind, MOCK_SCN_FIXTURE);
    cr_assert_eq(sc.fixture_id_len, strlen("openai/chat_stream_basic"));
    cr_assert(memcmp(sc.fixture_id, "openai/chat_stream_basic", sc.fixture_id_len) == 0);
    cr_assert_eq(sc.delivery, MOCK_DELIVER_WHOLE);

    cr_assert_eq(parse("fixture:a/b@whole", &sc, err), 0);
    cr_assert_eq(sc.delivery, MOCK_DELIVER_WHOLE);
    cr_assert_eq(sc.fixture_id_len, 3);
    cr_assert_eq(parse("fixture:a/b@cuts", &sc, err), 0);
    cr_assert_eq(sc.delivery, MOCK_DELIVER_CUTS);
    cr_assert_eq(parse("fixture:a/b@bytes", &sc, err), 0);
    cr_assert_eq(sc.delivery, MOCK_DELIVER_BYTES);
    cr_assert_eq(parse("fixture:a/b@random:4294967295", &sc, err), 0);
    cr_assert_eq(sc.delivery, MOCK_DELIVER_RANDOM);
    cr_assert_eq(sc.seed, 4294967295u);
}

Test(mock_scenario, fixture_errors)
{
    struct mock_scenario sc;
    char err[256];
    cr_assert_eq(parse("fixture:", &sc, err), -1);
    cr_assert(strstr(err, "missing id"));
    cr_assert_eq(parse("fixture:a b", &sc, err), -1);
    cr_assert(strstr(err, "bad character"));
    cr_assert_eq(parse("fixture:a@slow", &sc, err), -1);
    cr_assert(strstr(err, "unknown mode 'slow'"));
    cr_assert_eq(parse("fixture:a@random:", &sc, err), -1);
    cr_assert_eq(parse("fixture:a@random:x1", &sc, err), -1);
    cr_assert_eq(parse("fixture:a@random:4294967296", &sc, err), -1);
}

Test(mock_scenario, not_a_scenario)
{
    struct mock_scenario sc;
    char err[256];
    cr_assert_eq(parse("gpt-4o-mini", &sc, err), 1);
    cr_assert_eq(parse("synthetic", &sc, err), 1);
    cr_assert_eq(parse("", &sc, err), 1);
    cr_assert_eq(parse("fixture", &sc, err), 1);
}

Test(mock_scenario, synth_defaults)
{
    struct mock_scenario sc;
    char err[256];
    cr_assert_eq(parse("synth", &sc, err), 0);
    cr_assert_eq(sc.kind, MOCK_SCN_SYNTH);
    cr_assert_eq(sc.synth.tokens, 20);
    cr_assert_eq(sc.synth.rate, 0);
    cr_assert_eq(sc.synth.format, MOCK_PROV_NONE);
    cr_assert(sc.synth.usage);
    cr_assert_eq(sc.synth.ts, 0);
    cr_assert_eq(sc.synth.status, 200);
    cr_assert_eq(sc.synth.retry_after, -1);
    cr_assert_eq(sc.synth.fault, MOCK_FAULT_NONE);
    cr_assert_eq(sc.synth.chunk, 8);
    cr_assert_eq(sc.synth.prompt_tokens, 10);
    cr_assert_eq(parse("synth:", &sc, err), 0);
    cr_assert_eq(sc.synth.tokens, 20);
}

Test(mock_scenario, synth_all_keys)
{
    struct mock_scenario sc;
    char err[256];
    cr_assert_eq(parse("synth:format=anthropic,tokens=500,rate=12.5,ts=1,usage=0,first_byte_ms=250,"
                       "chunk=3,prompt_tokens=77,error_after=4",
                       &sc, err),
                 0, "%s", err);
    cr_assert_eq(sc.synth.format, MOCK_PROV_ANTHROPIC);
    cr_assert_eq(sc.synth.tokens, 500);
    cr_assert_float_eq(sc.synth.rate, 12.5, 1e-9);
    cr_assert_eq(sc.synth.ts, 1);
    cr_assert_not(sc.synth.usage);
    cr_assert_eq(sc.synth.first_byte_ms, 250);
    cr_assert_eq(sc.synth.chunk, 3);
    cr_assert_eq(sc.synth.prompt_tokens, 77);
    cr_assert_eq(sc.synth.fault, MOCK_FAULT_ERROR);
    cr_assert_eq(sc.synth.fault_after, 4);

    cr_assert_eq(parse("synth:status=429,retry_after=2", &sc, err), 0);
    cr_assert_eq(sc.synth.status, 429);
    cr_assert_eq(sc.synth.retry_after, 2);
    cr_assert_eq(sc.synth.fail_first, 0);

    cr_assert_eq(parse("synth:status=503,fail_first=2,tag=abc", &sc, err), 0, "%s", err);
    cr_assert_eq(sc.synth.status, 503);
    cr_assert_eq(sc.synth.fail_first, 2);

    static const struct {
        const char *s;
        enum mock_fault f;
    } faults[] = {
        {"synth:stall_after=0", MOCK_FAULT_STALL},
        {"synth:reset_after=7", MOCK_FAULT_RESET},
        {"synth:truncate_after=9", MOCK_FAULT_TRUNCATE},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(faults); i++) {
        cr_assert_eq(parse(faults[i].s, &sc, err), 0, "%s", faults[i].s);
        cr_assert_eq(sc.synth.fault, faults[i].f);
    }
    cr_assert_eq(parse("synth:format=gemini", &sc, err), 0);
    cr_assert_eq(sc.synth.format, MOCK_PROV_GEMINI);
    cr_assert_eq(parse("synth:format=ollama", &sc, err), 0);
    cr_assert_eq(sc.synth.format, MOCK_PROV_OLLAMA);
    cr_assert_eq(parse("synth:format=openai", &sc, err), 0);
    cr_assert_eq(sc.synth.format, MOCK_PROV_OPENAI);
}

Test(mock_scenario, synth_errors)
{
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"synth:bogus=1", "unknown key 'bogus'"},
        {"synth:tokens=1,tokens=2", "given twice"},
        {"synth:tokens=-1", "bad value '-1' for 'tokens'"},
        {"synth:tokens=", "bad value '' for 'tokens'"},
        {"synth:tokens=10000001", "for 'tokens'"},
        {"synth:rate=fast", "for 'rate'"},
        {"synth:rate=1e3", "for 'rate'"},
        {"synth:ts=3", "for 'ts'"},
        {"synth:ts=true", "for 'ts'"},
        {"synth:format=cohere", "for 'format'"},
        {"synth:status=302", "for 'status'"},
        {"synth:status=600", "for 'status'"},
        {"synth:chunk=0", "for 'chunk'"},
        {"synth:error_after=1,reset_after=2", "only one of"},
        {"synth:status=500,stall_after=1", "exclude each other"},
        {"synth:fail_first=2", "needs an error status"},
        {"synth:status=503,fail_first=0", "for 'fail_first'"},
        {"synth:tag=", "for 'tag'"},
        {"synth:tokens", "not key=value"},
        {"synth:tokens=1,", "trailing"},
        {"synth:,tokens=1", "empty item"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        struct mock_scenario sc;
        char err[256];
        cr_assert_eq(parse(bad[i].s, &sc, err), -1, "%s parsed", bad[i].s);
        cr_assert(strstr(err, bad[i].why), "%s: error '%s' lacks '%s'", bad[i].s, err, bad[i].why);
    }
}

/* Same outputs as mulberry32 in the fixtures' validate/replay-server.mjs (checked with node). */
Test(mock_scenario, random_pieces_match_the_validator)
{
    static const struct {
        uint32_t seed;
        unsigned pieces[6][2];
    } want[] = {
        {1, {{31, 0}, {26, 3}, {47, 1}, {30, 2}, {21, 3}, {22, 1}}},
        {42, {{29, 1}, {41, 2}, {9, 2}, {14, 2}, {42, 1}, {12, 3}}},
        {4294967295u, {{44, 0}, {35, 3}, {41, 2}, {33, 1}, {7, 3}, {42, 0}}},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
        uint32_t st = want[i].seed;
        for (int k = 0; k < 6; k++) {
            size_t len;
            unsigned pause;
            mock_random_piece(&st, &len, &pause);
            cr_assert_eq(len, want[i].pieces[k][0], "seed %u piece %d", want[i].seed, k);
            cr_assert_eq(pause, want[i].pieces[k][1], "seed %u pause %d", want[i].seed, k);
        }
    }
}

static struct mock_route
classify(const char *p)
{
    return mock_route_classify(sl_slice_make(p, strlen(p)));
}

Test(mock_route, providers_and_prefixes)
{
    cr_assert_eq(classify("/v1/chat/completions").provider, MOCK_PROV_OPENAI);
    cr_assert_eq(classify("/anything/v1/chat/completions").provider, MOCK_PROV_OPENAI);
    cr_assert(sl_slice_eq(classify("/anything/v1/chat/completions").shape, "/v1/chat/completions"));
    cr_assert_eq(classify("/v1/messages").provider, MOCK_PROV_ANTHROPIC);
    cr_assert_eq(classify("/a/b/v1/messages").provider, MOCK_PROV_ANTHROPIC);
    cr_assert_eq(classify("/api/chat").provider, MOCK_PROV_OLLAMA);
    cr_assert_eq(classify("/v1/chat/completions/x").provider, MOCK_PROV_NONE);
    cr_assert_eq(classify("/v1/completions").provider, MOCK_PROV_NONE);
    cr_assert_eq(classify("/").provider, MOCK_PROV_NONE);
    cr_assert_eq(classify(":streamGenerateContent").provider, MOCK_PROV_NONE);
    cr_assert_eq(classify("/v1beta/models/:streamGenerateContent").provider, MOCK_PROV_NONE);
}

Test(mock_route, gemini_model_may_hold_the_scenario)
{
    struct mock_route r = classify("/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    cr_assert_eq(r.provider, MOCK_PROV_GEMINI);
    cr_assert(sl_slice_eq(r.model, "gemini-2.5-flash"));
    cr_assert(sl_slice_eq(r.shape, "/v1beta/models/gemini-2.5-flash:streamGenerateContent"));

    r = classify("/p/v1/models/fixture:gemini/stream_generate_basic@cuts:streamGenerateContent");
    cr_assert_eq(r.provider, MOCK_PROV_GEMINI);
    cr_assert(sl_slice_eq(r.model, "fixture:gemini/stream_generate_basic@cuts"));
    cr_assert(sl_slice_eq(r.shape, "/v1/models/fixture:gemini/stream_generate_basic@cuts"
                                   ":streamGenerateContent"));

    r = classify("/v1beta/models/synth:tokens=3,rate=1:streamGenerateContent");
    cr_assert(sl_slice_eq(r.model, "synth:tokens=3,rate=1"));
}

Test(mock_request, media_type_and_headers)
{
    cr_assert(mock_media_type_is(SL_SLICE("application/json"), "application/json"));
    cr_assert(
        mock_media_type_is(SL_SLICE(" Application/JSON ; charset=utf-8"), "application/json"));
    cr_assert_not(mock_media_type_is(SL_SLICE("application/jsonx"), "application/json"));
    cr_assert_not(mock_media_type_is(SL_SLICE("text/plain"), "application/json"));
    cr_assert_not(mock_media_type_is(sl_slice_make(NULL, 0), "application/json"));

    struct mock_req r = {0};
    r.headers[0] = (struct mock_header){SL_SLICE("x-a"), SL_SLICE("1")};
    r.headers[1] = (struct mock_header){SL_SLICE("x-b"), SL_SLICE("2")};
    r.nheaders = 2;
    cr_assert(sl_slice_eq(mock_req_header(&r, "x-b"), "2"));
    cr_assert_null(mock_req_header(&r, "x-c").ptr);
}
