/*
 * Unit tests for the load generator's hot-path scanners (bench/loadgen/scan.c): latency
 * stamps in token text, sluice's native delta frames as src/proto/native.c renders them,
 * OpenAI chunks as the mock sends them, members of the dialects' event objects and Socket.IO
 * packets as sluice sends them.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../bench/loadgen/scan.c"

struct seen {
    uint64_t v[16];
    size_t n;
};

static void
collect(void *ud, uint64_t stamp)
{
    struct seen *s = ud;
    if (s->n < 16)
        s->v[s->n] = stamp;
    s->n++;
}

#define S(lit) (lit), (sizeof(lit) - 1)

Test(loadgen_scan, stamps_one_and_several)
{
    struct seen s = {0};
    cr_assert_eq(lg_scan_stamps(S("@123456 "), collect, &s), 1);
    cr_assert_eq(s.v[0], 123456);
    s.n = 0;
    /* Coalesced deltas: several stamps in one text. */
    cr_assert_eq(lg_scan_stamps(S("@1 @22 @333 "), collect, &s), 3);
    cr_assert_eq(s.v[0], 1);
    cr_assert_eq(s.v[1], 22);
    cr_assert_eq(s.v[2], 333);
}

Test(loadgen_scan, stamps_ignore_other_text)
{
    struct seen s = {0};
    cr_assert_eq(lg_scan_stamps(S("tok1 tok2 mail@ x@ @"), collect, &s), 0);
    cr_assert_eq(s.n, 0);
    /* An escaped character never starts a stamp; digits at the end of the text count. */
    cr_assert_eq(lg_scan_stamps(S("\\@12 @34"), NULL, NULL), 1);
    cr_assert_eq(lg_scan_stamps(S("a\\\\@5"), NULL, NULL), 1);
}

Test(loadgen_scan, string_end_respects_escapes)
{
    cr_assert_eq(lg_scan_string_end(S("abc\"rest")), 3);
    cr_assert_eq(lg_scan_string_end(S("a\\\"b\"")), 4);
    cr_assert_eq(lg_scan_string_end(S("a\\\\\"b")), 3);
    cr_assert_eq(lg_scan_string_end(S("unterminated\\\"")), 14);
}

Test(loadgen_scan, native_delta_text)
{
    const char msg[] = "{\"type\":\"delta\",\"id\":\"17\",\"seq\":4,\"text\":\"@99 @100 \"}";
    struct lg_delta d;
    cr_assert_eq(lg_scan_native_delta(S(msg), &d), 1);
    cr_assert_eq(d.id.len, 2);
    cr_assert_eq(memcmp(d.id.ptr, "17", 2), 0);
    cr_assert_eq(d.text.len, 9);
    cr_assert_eq(memcmp(d.text.ptr, "@99 @100 ", 9), 0);
    cr_assert_not(d.tool);
    cr_assert_eq(d.seq, 4);
    uint32_t n;
    cr_assert_eq(lg_scan_u32(d.id, &n), 0);
    cr_assert_eq(n, 17);
}

Test(loadgen_scan, native_delta_seq)
{
    /* The resume benchmark sends the last seq seen as `after`: it must be read exactly. */
    struct lg_delta d;
    cr_assert_eq(lg_scan_native_delta(S("{\"type\":\"delta\",\"id\":\"1\",\"seq\":4294967301,"
                                        "\"text\":\"tok1 \"}"),
                                      &d),
                 1);
    cr_assert_eq(d.seq, 4294967301ull);
    /* No number, or one too long for 64 bits: not the layout we know. */
    cr_assert_eq(
        lg_scan_native_delta(S("{\"type\":\"delta\",\"id\":\"1\",\"seq\":,\"text\":\"a\"}"), &d),
        0);
    cr_assert_eq(lg_scan_native_delta(S("{\"type\":\"delta\",\"id\":\"1\",\"seq\":"
                                        "12345678901234567890,\"text\":\"a\"}"),
                                      &d),
                 0);
}

Test(loadgen_scan, native_delta_with_escapes_and_tool)
{
    struct lg_delta d;
    cr_assert_eq(lg_scan_native_delta(S("{\"type\":\"delta\",\"id\":\"1\",\"seq\":3,"
                                        "\"text\":\"say \\\"hi\\\"\"}"),
                                      &d),
                 1);
    cr_assert_eq(d.text.len, 10); /* say \"hi\" */
    cr_assert_eq(lg_scan_native_delta(S("{\"type\":\"delta\",\"id\":\"1\",\"seq\":3,"
                                        "\"tool_call\":{\"index\":0}}"),
                                      &d),
                 1);
    cr_assert(d.tool);
}

Test(loadgen_scan, native_other_messages_are_left_to_the_caller)
{
    struct lg_delta d;
    cr_assert_eq(lg_scan_native_delta(S("{\"type\":\"done\",\"id\":\"1\",\"seq\":9}"), &d), 0);
    cr_assert_eq(lg_scan_native_delta(S("{\"type\":\"ready\"}"), &d), 0);
    /* A truncated delta is not taken apart. */
    cr_assert_eq(
        lg_scan_native_delta(S("{\"type\":\"delta\",\"id\":\"1\",\"seq\":3,\"text\":\"ab"), &d), 0);
    cr_assert_eq(lg_scan_native_delta(S("{\"type\":\"delta\",\"id\":\"1"), &d), 0);
}

Test(loadgen_scan, openai_chunk)
{
    struct sl_slice t;
    bool fin, err;
    const char chunk[] =
        "{\"id\":\"chatcmpl-mock1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        "\"model\":\"synth:ts=1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"@5 \"},\"logprobs\":null,\"finish_reason\":null}]}";
    cr_assert_eq(lg_scan_openai_chunk(S(chunk), &t, &fin, &err), 1);
    cr_assert_eq(t.len, 3);
    cr_assert_eq(memcmp(t.ptr, "@5 ", 3), 0);
    cr_assert_not(fin);
    cr_assert_not(err);

    const char last[] = "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}";
    cr_assert_eq(lg_scan_openai_chunk(S(last), &t, &fin, &err), 0);
    cr_assert(fin);

    const char error[] = "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}";
    cr_assert_eq(lg_scan_openai_chunk(S(error), &t, &fin, &err), 0);
    cr_assert(err);
}

Test(loadgen_scan, u32)
{
    uint32_t n;
    cr_assert_eq(lg_scan_u32(sl_slice_make("0", 1), &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(lg_scan_u32(sl_slice_make("4294967295", 10), &n), 0);
    cr_assert_eq(n, UINT32_MAX);
    cr_assert_eq(lg_scan_u32(sl_slice_make("4294967296", 10), &n), -1);
    cr_assert_eq(lg_scan_u32(sl_slice_make("", 0), &n), -1);
    cr_assert_eq(lg_scan_u32(sl_slice_make("1a", 2), &n), -1);
}

Test(loadgen_scan, error_name)
{
    char name[32];
    const char sluice[] = "{\"error\":{\"message\":\"m\",\"type\":\"server_error\","
                          "\"param\":null,\"code\":\"upstream_timeout\"}}";
    lg_scan_error_name(S(sluice), name, sizeof(name));
    cr_assert_str_eq(name, "UPSTREAM_TIMEOUT");
    const char openai[] = "{\"error\":{\"message\":\"m\",\"type\":\"server_error\","
                          "\"param\":null,\"code\":null}}";
    lg_scan_error_name(S(openai), name, sizeof(name));
    cr_assert_str_eq(name, "SERVER_ERROR");
    lg_scan_error_name(S("{\"error\":\"x\"}"), name, sizeof(name));
    cr_assert_str_eq(name, "SSE_ERROR_EVENT");
    lg_scan_error_name(S("not json"), name, sizeof(name));
    cr_assert_str_eq(name, "SSE_ERROR_EVENT");
    char small[5];
    lg_scan_error_name(S(sluice), small, sizeof(small));
    cr_assert_str_eq(small, "UPST");
}

static bool
val_is(const struct lg_jval *v, enum lg_jkind kind, const char *text)
{
    return v->kind == kind && v->v.len == strlen(text) && memcmp(v->v.ptr, text, v->v.len) == 0;
}

Test(loadgen_scan, members_found_in_one_pass)
{
    /* stream_chunk as the stream dialect renders it: nested and escaped values skipped. */
    const char obj[] = "{\"sessionId\":\"s1-0ab\",\"meta\":{\"a\":[1,{\"b\":\"}\"}],\"c\":\"x\"},"
                       "\"chunk\":\"say \\\"hi\\\" @12 \",\"tokensUsed\":7,\"estimatedCost\":0,"
                       "\"agentRole\":null}";
    const char *keys[4] = {"chunk", "sessionId", "tokensUsed", "agentRole"};
    struct lg_jval v[4];
    cr_assert_eq(lg_scan_members(S(obj), keys, 4, v), 4);
    cr_assert(val_is(&v[0], LG_J_STRING, "say \\\"hi\\\" @12 "));
    cr_assert(val_is(&v[1], LG_J_STRING, "s1-0ab"));
    cr_assert(val_is(&v[2], LG_J_OTHER, "7"));
    cr_assert(val_is(&v[3], LG_J_NULL, "null"));
}

Test(loadgen_scan, members_absent_and_nested_keys_ignored)
{
    /* A key inside a nested object or a string value is not a member. */
    const char obj[] =
        " { \"x\" : { \"content\" : \"no\" } , \"y\" : \"\\\"content\\\":\\\"no\" } ";
    const char *keys[2] = {"content", "y"};
    struct lg_jval v[2];
    cr_assert_eq(lg_scan_members(S(obj), keys, 2, v), 1);
    cr_assert_eq(v[0].kind, LG_J_NONE);
    cr_assert_eq(v[1].kind, LG_J_STRING);
    cr_assert_eq(lg_scan_members(S("{}"), keys, 2, v), 0);
}

Test(loadgen_scan, members_stop_once_found)
{
    /* What follows the last member wanted is not looked at (ws-chat's long texts). */
    const char obj[] = "{\"type\":\"token\",\"token\":\"a\",\"partial_response\":\"unterminated";
    const char *keys[1] = {"type"};
    struct lg_jval v[1];
    cr_assert_eq(lg_scan_members(S(obj), keys, 1, v), 1);
    cr_assert(val_is(&v[0], LG_J_STRING, "token"));
    const char *more[1] = {"stream_id"};
    cr_assert_eq(lg_scan_members(S(obj), more, 1, v), -1);
}

Test(loadgen_scan, members_malformed)
{
    const char *keys[1] = {"a"};
    struct lg_jval v[1];
    cr_assert_eq(lg_scan_members(S("[1]"), keys, 1, v), -1);
    cr_assert_eq(lg_scan_members(S("{\"b\":}"), keys, 1, v), -1);
    cr_assert_eq(lg_scan_members(S("{\"b\" 1}"), keys, 1, v), -1);
    cr_assert_eq(lg_scan_members(S("{\"b\":1 \"a\":2}"), keys, 1, v), -1);
    cr_assert_eq(lg_scan_members(S("{\"b\":{\"c\":1}"), keys, 1, v), -1);
    cr_assert_eq(lg_scan_members(S(""), keys, 1, v), -1);
}

static bool
slice_is(struct sl_slice s, const char *text)
{
    return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

Test(loadgen_scan, sio_event_with_offset)
{
    /* An event of namespace /ai with connection state recovery's offset. */
    const char msg[] = "42/ai,[\"ai:token\",{\"streamId\":\"3\",\"data\":\"a\\\"]\"},\"1.4_2.9\"]";
    struct lg_sio_packet p;
    cr_assert_eq(lg_scan_sio_packet(S(msg), &p), 0);
    cr_assert_eq(p.type, '2');
    cr_assert(slice_is(p.nsp, "/ai"));
    cr_assert(slice_is(p.event, "ai:token"));
    cr_assert(slice_is(p.arg, "{\"streamId\":\"3\",\"data\":\"a\\\"]\"}"));
}

Test(loadgen_scan, sio_event_root_namespace_and_ack_id)
{
    struct lg_sio_packet p;
    cr_assert_eq(lg_scan_sio_packet(S("42[\"chat:chunk\",{\"content\":\"x\"}]"), &p), 0);
    cr_assert(slice_is(p.nsp, "/"));
    cr_assert(slice_is(p.event, "chat:chunk"));
    cr_assert(slice_is(p.arg, "{\"content\":\"x\"}"));
    cr_assert_eq(lg_scan_sio_packet(S("42/x,12[\"e\",{}]"), &p), 0);
    cr_assert(slice_is(p.nsp, "/x"));
    cr_assert(slice_is(p.arg, "{}"));
    /* No argument at all. */
    cr_assert_eq(lg_scan_sio_packet(S("42[\"e\"]"), &p), 0);
    cr_assert_eq(p.arg.len, 0);
}

Test(loadgen_scan, sio_other_packets)
{
    struct lg_sio_packet p;
    cr_assert_eq(lg_scan_sio_packet(S("40/sluice,{\"sid\":\"a\",\"pid\":\"b\"}"), &p), 0);
    cr_assert_eq(p.type, '0');
    cr_assert(slice_is(p.nsp, "/sluice"));
    cr_assert(slice_is(p.data, "{\"sid\":\"a\",\"pid\":\"b\"}"));
    cr_assert_eq(lg_scan_sio_packet(S("44/nope,{\"message\":\"Invalid namespace\"}"), &p), 0);
    cr_assert_eq(p.type, '4');
    cr_assert(slice_is(p.data, "{\"message\":\"Invalid namespace\"}"));
    cr_assert_eq(lg_scan_sio_packet(S("41"), &p), 0);
    cr_assert_eq(p.type, '1');
    cr_assert(slice_is(p.nsp, "/"));
}

Test(loadgen_scan, sio_malformed)
{
    struct lg_sio_packet p;
    cr_assert_eq(lg_scan_sio_packet(S("2"), &p), -1);  /* an Engine.IO ping, not a message */
    cr_assert_eq(lg_scan_sio_packet(S("47"), &p), -1); /* no such Socket.IO type */
    cr_assert_eq(lg_scan_sio_packet(S("42[\"e\",1]"), &p), -1); /* not an object */
    cr_assert_eq(lg_scan_sio_packet(S("42[\"e\",{}"), &p), -1); /* unterminated */
    cr_assert_eq(lg_scan_sio_packet(S("42[\"e"), &p), -1);
    cr_assert_eq(lg_scan_sio_packet(S("42{\"e\":1}"), &p), -1);
    cr_assert_eq(lg_scan_sio_packet(S("42[\"e\",{},\"1.2]"), &p), -1);
}
