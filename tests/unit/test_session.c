/*
 * Unit tests for src/core/session.c: the middle of the token path with a fake transport
 * (records what is sent, reports a queue size the test sets) and a fake provider
 * (fake_provider.h): rendering, backpressure and merged backlogs, detaching and resume,
 * the resume window, errors of the native protocol, the answer a dialect shows whole (llm).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "config/config.h"
#include "core/admission.h"
#include "core/session.h"
#include "fake_provider.h"
#include "net/loop.h"
#include "proto/dialects.h"
#include "proto/native.h"
#include "stream/directory.h"
#include "stream/relay.h"
#include "stream/stream.h"

/* The session module's statics (the window's expiry) are reached through its source. */
#include "../../src/core/session.c"

/* After the module: its functions' parameters must not shadow the env's statics. */
#include "stream_env.h"

static struct sl_relay *relay;
static struct sl_auth *auth;
static struct sl_admission adm;
static struct sl_sessions ss;

/* A transport that keeps every message, and says it holds `queued` bytes. */
struct transport {
    struct sl_session *s;
    json_t *msgs; /* array of parsed messages */
    size_t queued;
    int closed_code;
    char closed_reason[160];
};

static void
t_send(void *t, const char *event, const char *msg, size_t len, const char *offset)
{
    (void)event;
    (void)offset;
    struct transport *tr = t;
    json_error_t e;
    json_t *m = json_loadb(msg, len, 0, &e);
    cr_assert_not_null(m, "sent invalid JSON: %.*s", (int)len, msg);
    json_array_append_new(tr->msgs, m);
}

static void
t_close(void *t, uint16_t code, const char *reason)
{
    struct transport *tr = t;
    tr->closed_code = code;
    snprintf(tr->closed_reason, sizeof(tr->closed_reason), "%s", reason ? reason : "");
}

static size_t
t_queued(void *t)
{
    return ((struct transport *)t)->queued;
}

static const struct sl_transport_ops tops = {.send = t_send, .close = t_close, .queued = t_queued};

static void
setup(void)
{
    fake_reset();
    char err[200];
    cfg = sl_config_new_defaults();
    cfg->jwt.secret = sl_strdup("unit-secret-unit-secret-unit-secret!");
    cfg->limits.send_high_water = 4096;
    cfg->resume.window_ms = 60000;
    tenv_open(&fake_ops, false);
    relay = sl_relay_new(0, loop, &table);
    sl_relay_set_peers(relay, &relay, 1);
    auth = sl_auth_new(cfg, err, sizeof(err));
    cr_assert_not_null(auth, "%s", err);
    sl_admission_init(&adm, &env);
    struct sl_sessions_env senv = {.cfg = cfg,
                                   .loop = loop,
                                   .metrics = &metrics,
                                   .auth = auth,
                                   .adm = &adm,
                                   .dir = dir,
                                   .relay = relay,
                                   .worker = 0};
    sl_sessions_init(&ss, &senv);
}

static void
teardown(void)
{
    sl_sessions_cleanup(&ss);
    cr_assert_eq(table.count, 0, "streams left in the table");
    sl_relay_shutdown(relay);
    sl_relay_free(relay);
    sl_auth_free(auth);
    tenv_close();
}

TestSuite(session, .init = setup, .fini = teardown);

/* A ready session of `user` on a fresh fake transport. */
static struct transport *
connect_as(const char *user)
{
    struct transport *tr = sl_calloc(1, sizeof(*tr));
    tr->msgs = json_array();
    static const struct sl_proto *const protos[] = {&sl_proto_native};
    tr->s = sl_session_new(&ss, protos, 1, SL_PK_NATIVE, tr, &tops);
    char *tok = sl_auth_mint(auth, user, 600000);
    sl_session_begin(tr->s, tok);
    free(tok);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(tr->msgs, 0), "type")),
                     "ready");
    return tr;
}

/* The transport went away: the session detaches (or is freed). */
static void
disconnect(struct transport *tr)
{
    sl_session_transport_closed(tr->s, 1006);
    json_decref(tr->msgs);
    free(tr);
}

static void
say(struct transport *tr, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sl_session_on_message(tr->s, NULL, buf, strlen(buf));
}

static const char *
str(json_t *m, const char *k)
{
    return json_string_value(json_object_get(m, k));
}

static json_int_t
num(json_t *m, const char *k)
{
    return json_integer_value(json_object_get(m, k));
}

/* Messages of stream id (after index from), their delta text joined into text. */
static size_t
stream_msgs(struct transport *tr, const char *id, size_t from, char *text, size_t cap,
            json_t **last)
{
    size_t n = 0;
    text[0] = '\0';
    *last = NULL;
    for (size_t i = from; i < json_array_size(tr->msgs); i++) {
        json_t *m = json_array_get(tr->msgs, i);
        if (!str(m, "id") || strcmp(str(m, "id"), id) != 0 || !json_object_get(m, "seq"))
            continue;
        n++;
        *last = m;
        if (strcmp(str(m, "type"), "delta") == 0 && str(m, "text"))
            strncat(text, str(m, "text"), cap - strlen(text) - 1);
    }
    return n;
}

Test(session, a_chat_is_rendered_event_by_event)
{
    struct transport *tr = connect_as("ann");
    say(tr, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"hi\"}");
    fake_delta(fake.last, "Hel");
    fake_delta(fake.last, "lo");
    fake_done(fake.last, 2, 2);
    char text[256];
    json_t *last;
    size_t n = stream_msgs(tr, "c1", 0, text, sizeof(text), &last);
    cr_assert_eq(n, 6); /* start, connecting, generating, 2 deltas, done */
    cr_assert_str_eq(text, "Hello");
    cr_assert_str_eq(str(last, "type"), "done");
    cr_assert_eq(table.count, 0);
    disconnect(tr);
}

Test(session, a_full_transport_leaves_events_in_the_journal_and_merges_them_on_drain)
{
    struct transport *tr = connect_as("bob");
    say(tr, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"hi\"}");
    fake_delta(fake.last, "a");
    size_t before = json_array_size(tr->msgs);
    tr->queued = cfg->limits.send_high_water; /* the client stopped reading */
    for (int i = 0; i < 50; i++)
        fake_delta(fake.last, "b");
    cr_assert_eq(json_array_size(tr->msgs), before, "rendered while the transport was full");
    tr->queued = 0;
    sl_session_on_drain(tr->s);
    char text[256];
    json_t *last;
    stream_msgs(tr, "c1", before, text, sizeof(text), &last);
    cr_assert_eq(json_array_size(tr->msgs), before + 1, "50 deltas should merge into one");
    cr_assert_eq(strlen(text), 50);
    cr_assert_eq(num(last, "seq"), 4 + 50); /* the last merged event's seq */
    fake_done(fake.last, 1, 51);
    disconnect(tr);
}

Test(session, a_slow_client_pauses_the_provider_and_reading_resumes_it)
{
    struct transport *tr = connect_as("cat");
    say(tr, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"hi\"}");
    struct fake_call *c = fake.last;
    tr->queued = 1 << 30;
    char tok[100];
    memset(tok, 'z', sizeof(tok) - 1);
    tok[sizeof(tok) - 1] = '\0';
    for (int i = 0; i < 200 && !c->paused; i++)
        fake_delta(c, tok);
    cr_assert(c->paused);
    tr->queued = 0;
    sl_session_on_drain(tr->s);
    cr_assert_not(c->paused);
    cr_assert_eq(c->resumes, 1);
    fake_done(c, 1, 1);
    disconnect(tr);
}

Test(session, a_dropped_client_resumes_on_a_new_session_with_every_event_once)
{
    struct transport *a = connect_as("dan");
    say(a, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"hi\"}");
    fake_delta(fake.last, "one ");
    char text[256];
    json_t *last;
    stream_msgs(a, "c1", 0, text, sizeof(text), &last);
    json_int_t seen = num(last, "seq");
    const char *epoch = str(json_array_get(a->msgs, 1), "epoch");
    char ep[32];
    snprintf(ep, sizeof(ep), "%s", epoch);
    disconnect(a); /* detached: the stream goes on */
    cr_assert_eq(ss.detached, 1);
    fake_delta(fake.last, "two ");
    fake_delta(fake.last, "three");

    struct transport *b = connect_as("dan");
    say(b, "{\"type\":\"resume\",\"id\":\"c1\",\"after\":%lld,\"epoch\":\"%s\"}", (long long)seen,
        ep);
    cr_assert_eq(ss.detached, 0, "the old session is freed once its last stream moved");
    stream_msgs(b, "c1", 0, text, sizeof(text), &last);
    cr_assert_str_eq(text, "two three");
    fake_done(fake.last, 1, 3);
    stream_msgs(b, "c1", 0, text, sizeof(text), &last);
    cr_assert_str_eq(str(last, "type"), "done");
    cr_assert_eq(sl_counter_get(&metrics.resumes_total), 1);
    disconnect(b);
}

Test(session, resume_of_another_users_stream_or_epoch_is_not_found)
{
    struct transport *a = connect_as("eve");
    say(a, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"hi\"}");
    struct transport *b = connect_as("mallory");
    say(b, "{\"type\":\"resume\",\"id\":\"c1\",\"after\":0}");
    json_t *err = json_array_get(b->msgs, json_array_size(b->msgs) - 1);
    cr_assert_str_eq(str(err, "code"), "NOT_FOUND");
    struct transport *c = connect_as("eve");
    say(c, "{\"type\":\"resume\",\"id\":\"c1\",\"after\":0,\"epoch\":\"x\"}");
    err = json_array_get(c->msgs, json_array_size(c->msgs) - 1);
    cr_assert_str_eq(str(err, "code"), "NOT_FOUND");
    cr_assert_str_eq(str(err, "id"), "c1");
    fake_done(fake.last, 1, 0);
    disconnect(a);
    disconnect(b);
    disconnect(c);
}

Test(session, the_windows_end_releases_the_streams_and_aborts_the_provider)
{
    struct transport *a = connect_as("fay");
    say(a, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"hi\"}");
    struct sl_session *s = a->s;
    disconnect(a);
    cr_assert_eq(ss.detached, 1);
    cr_assert_eq(fake.cancelled, 0);
    /* The window's deadline fires. */
    sl_timeq_disarm(&s->tnode);
    on_window_over(&s->tnode, 0);
    cr_assert_eq(fake.cancelled, 1);
    cr_assert_eq(ss.detached, 0);
    cr_assert_eq(ss.count, 0);
}

Test(session, without_a_window_a_disconnect_stops_the_streams_at_once)
{
    ss.cfg = cfg;
    cfg->resume.window_ms = 0;
    struct transport *a = connect_as("gus");
    say(a, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"hi\"}");
    disconnect(a);
    cr_assert_eq(fake.cancelled, 1);
    cr_assert_eq(ss.count, 0);
}

Test(session, native_errors_duplicate_id_too_many_streams_unknown_cancel)
{
    cfg->limits.max_streams_per_connection = 2;
    struct transport *a = connect_as("hal");
    say(a, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"hi\"}");
    struct fake_call *c1 = fake.last;
    say(a, "{\"type\":\"chat\",\"id\":\"c1\",\"message\":\"again\"}");
    json_t *err = json_array_get(a->msgs, json_array_size(a->msgs) - 1);
    cr_assert_str_eq(str(err, "code"), "DUPLICATE_ID");
    say(a, "{\"type\":\"chat\",\"id\":\"c2\",\"message\":\"hi\"}");
    struct fake_call *c2 = fake.last;
    say(a, "{\"type\":\"chat\",\"id\":\"c3\",\"message\":\"hi\"}");
    err = json_array_get(a->msgs, json_array_size(a->msgs) - 1);
    cr_assert_str_eq(str(err, "code"), "TOO_MANY_STREAMS");
    say(a, "{\"type\":\"cancel\",\"id\":\"nope\"}");
    err = json_array_get(a->msgs, json_array_size(a->msgs) - 1);
    cr_assert_str_eq(str(err, "code"), "NOT_FOUND");
    say(a, "{\"type\":\"cancel\",\"id\":\"c2\"}");
    err = json_array_get(a->msgs, json_array_size(a->msgs) - 1);
    cr_assert_str_eq(str(err, "type"), "cancelled");
    (void)c2;
    fake_done(c1, 1, 0);
    disconnect(a);
}

Test(session, a_fresh_auth_for_another_user_is_refused_and_the_session_goes_on)
{
    struct transport *a = connect_as("ivy");
    char *tok = sl_auth_mint(auth, "someone-else", 600000);
    say(a, "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
    free(tok);
    json_t *err = json_array_get(a->msgs, json_array_size(a->msgs) - 1);
    cr_assert_str_eq(str(err, "code"), "AUTH_FAILED");
    cr_assert_eq(a->closed_code, 0);
    tok = sl_auth_mint(auth, "ivy", 600000);
    size_t n = json_array_size(a->msgs);
    say(a, "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
    free(tok);
    cr_assert_eq(json_array_size(a->msgs), n, "a fresh token is taken silently");
    disconnect(a);
}

/* A ready session of `user` speaking the dialect p, as Socket.IO makes one (identify, greet). */
static struct transport *
connect_dialect(const char *user, const struct sl_proto *p)
{
    struct transport *tr = sl_calloc(1, sizeof(*tr));
    tr->msgs = json_array();
    static const struct sl_proto *protos[1];
    protos[0] = p;
    tr->s = sl_session_new(&ss, protos, 1, SL_PK__COUNT, tr, &tops);
    struct sl_identity id;
    memset(&id, 0, sizeof(id));
    snprintf(id.user, sizeof(id.user), "%s", user);
    snprintf(id.method, sizeof(id.method), "jwt");
    cr_assert(sl_session_identify(tr->s, &id, false));
    sl_session_greet(tr->s);
    return tr;
}

Test(session, the_full_text_past_its_cap_is_a_prefix_of_the_answer_never_one_with_a_hole)
{
    struct transport *tr = connect_dialect("kim", &sl_proto_llm);
    /* The event's arguments, as Socket.IO hands them over (without the brackets). */
    const char *req =
        "{\"sessionId\":\"L1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    sl_session_on_message(tr->s, "llm:chat:stream", req, strlen(req));
    cr_assert_not_null(fake.last);
    /* Nearly the whole cap, then a delta that does not fit, then one that would. */
    size_t big = TEXT_MAX - 10;
    char *a = sl_malloc(big + 1);
    memset(a, 'a', big);
    a[big] = '\0';
    fake_delta(fake.last, a);
    fake_delta(fake.last, "bbbbbbbbbbbbbbbbbbbb"); /* 20 bytes: over the cap */
    fake_delta(fake.last, "ccccc");                /* 5 bytes: would fit after a hole */
    fake_done(fake.last, 1, 3);
    json_t *done = json_array_get(tr->msgs, json_array_size(tr->msgs) - 1);
    cr_assert_str_eq(str(done, "sessionId"), "L1");
    const char *full = str(done, "fullResponse");
    cr_assert_not_null(full, "the last message is llm:stream:done");
    cr_assert_eq(strlen(full), big, "the text stops where the first delta did not fit");
    cr_assert_eq(memcmp(full, a, big), 0);
    free(a);
    disconnect(tr);
}
