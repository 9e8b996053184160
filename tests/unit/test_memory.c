/*
 * Unit tests for src/memory: conversations by (user, id), the bounds on messages, bytes,
 * idle time and conversations, the history's shape, and concurrent use from many threads.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The store's statics (its hash, to put keys in one stripe) are reached through its source. */
#include "../../src/memory/memory.c"
#include "base/codes.h"

static const struct sl_memory_limits lim = {
    .max_turns = 6, .max_bytes = 1000, .idle_ttl_ms = 60000, .max_conversations = 1000};

static void
user_(struct sl_memory *m, const char *user, const char *conv, const char *text, uint64_t now)
{
    cr_assert_eq(sl_memory_append_user(m, user, conv, text, strlen(text), now), 0);
}

static void
answer(struct sl_memory *m, const char *user, const char *conv, const char *text, uint64_t now)
{
    cr_assert_eq(sl_memory_append_answer(m, user, conv, text, strlen(text), now), 0);
}

/* The history as "u:text a:text ..." for compact comparisons. */
static char *
history_str(struct sl_memory *m, const char *user, const char *conv, uint64_t now)
{
    json_t *h = sl_memory_history(m, user, conv, now);
    cr_assert(json_is_array(h));
    static char out[4096];
    size_t o = 0;
    out[0] = '\0';
    size_t i;
    json_t *msg;
    json_array_foreach(h, i, msg)
    {
        const char *role = json_string_value(json_object_get(msg, "role"));
        const char *content = json_string_value(json_object_get(msg, "content"));
        cr_assert(role && content);
        cr_assert_eq(json_object_size(msg), 2);
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%c:%s", i ? " " : "", role[0], content);
    }
    json_decref(h);
    return out;
}

Test(memory, conversations_by_user_and_id)
{
    struct sl_memory *m = sl_memory_new(&lim);
    cr_assert_str_eq(history_str(m, "alice", "c1", 1), "");
    user_(m, "alice", "c1", "hi", 1);
    answer(m, "alice", "c1", "hello", 2);
    user_(m, "alice", "c1", "how are you?", 3);
    answer(m, "alice", "c1", "fine", 4);
    cr_assert_str_eq(history_str(m, "alice", "c1", 5), "u:hi a:hello u:how are you? a:fine");
    /* Same id, another user; another id, same user: separate. */
    cr_assert_str_eq(history_str(m, "bob", "c1", 5), "");
    cr_assert_str_eq(history_str(m, "alice", "c2", 5), "");
    /* A key that would collide if user and id were simply joined. */
    user_(m, "alic", "ec1", "other", 6);
    cr_assert_str_eq(history_str(m, "alic", "ec1", 7), "u:other");
    cr_assert_str_eq(history_str(m, "alice", "c1", 7), "u:hi a:hello u:how are you? a:fine");
    struct sl_memory_stats st;
    sl_memory_stats(m, &st);
    cr_assert_eq(st.conversations, 2);
    cr_assert_eq(st.messages, 5);
    cr_assert_eq(st.bytes, strlen("hihellohow are you?fineother"));
    sl_memory_free(m);
}

Test(memory, max_turns_keeps_the_newest_and_starts_with_the_user)
{
    struct sl_memory *m = sl_memory_new(&lim);
    char t[16];
    for (int i = 1; i <= 5; i++) {
        snprintf(t, sizeof(t), "q%d", i);
        user_(m, "u", "c", t, (uint64_t)i);
        snprintf(t, sizeof(t), "r%d", i);
        answer(m, "u", "c", t, (uint64_t)i);
    }
    /* 6 messages kept: q3 r3 q4 r4 q5 r5. */
    cr_assert_str_eq(history_str(m, "u", "c", 9), "u:q3 a:r3 u:q4 a:r4 u:q5 a:r5");
    /* One more user message: q3 goes, and r3 would lead: it goes too. */
    user_(m, "u", "c", "q6", 10);
    cr_assert_str_eq(history_str(m, "u", "c", 11), "u:q4 a:r4 u:q5 a:r5 u:q6");
    struct sl_memory_stats st;
    sl_memory_stats(m, &st);
    cr_assert_eq(st.messages, 5);
    cr_assert_eq(st.bytes, 10);
    sl_memory_free(m);
}

Test(memory, max_bytes_drops_the_oldest)
{
    struct sl_memory_limits l = lim;
    l.max_bytes = 10;
    l.max_turns = 100;
    struct sl_memory *m = sl_memory_new(&l);
    user_(m, "u", "c", "aaaa", 1);
    answer(m, "u", "c", "bbbb", 2);
    user_(m, "u", "c", "cc", 3); /* 10 bytes: all kept */
    cr_assert_str_eq(history_str(m, "u", "c", 4), "u:aaaa a:bbbb u:cc");
    answer(m, "u", "c", "d", 5); /* 11: aaaa goes, then bbbb (an answer in front) */
    cr_assert_str_eq(history_str(m, "u", "c", 6), "u:cc a:d");
    /* Larger than a conversation may hold: refused, nothing changes. */
    cr_assert_eq(sl_memory_append_user(m, "u", "c", "0123456789x", 11, 7), SL_MEMORY_ETOOBIG);
    cr_assert_str_eq(history_str(m, "u", "c", 8), "u:cc a:d");
    /* Exactly max_bytes fits, alone. */
    user_(m, "u", "c", "0123456789", 9);
    cr_assert_str_eq(history_str(m, "u", "c", 10), "u:0123456789");
    sl_memory_free(m);
}

Test(memory, invalid_arguments)
{
    struct sl_memory *m = sl_memory_new(&lim);
    cr_assert_eq(sl_memory_append_user(m, "", "c", "x", 1, 1), SL_MEMORY_EINVAL);
    cr_assert_eq(sl_memory_append_user(m, "u", "", "x", 1, 1), SL_MEMORY_EINVAL);
    cr_assert_eq(sl_memory_append_answer(m, "u", "c", "\xff", 1, 1), SL_MEMORY_EINVAL);
    cr_assert_eq(sl_memory_append_answer(m, "u", "c", "\xc3", 1, 1), SL_MEMORY_EINVAL);
    /* Text with a NUL is kept whole. */
    cr_assert_eq(sl_memory_append_user(m, "u", "c", "a\0b", 3, 1), 0);
    json_t *h = sl_memory_history(m, "u", "c", 2);
    cr_assert_eq(json_string_length(json_object_get(json_array_get(h, 0), "content")), 3);
    json_decref(h);
    struct sl_memory_stats st;
    sl_memory_stats(m, &st);
    cr_assert_eq(st.conversations, 1);
    cr_assert_str_eq(sl_memory_strerror(SL_MEMORY_ETOOBIG),
                     "message larger than a conversation may hold");
    cr_assert_str_eq(sl_err_layer(SL_MEMORY_EINVAL), "memory");
    sl_memory_free(m);
}

/*
 * The sweep stops at a stripe's first live conversation, so each stripe's list must stay in
 * order of last use whatever clocks the threads pass: here a read with a clock behind (not a
 * use) came after reads of others in the same stripe, which once put an idle conversation
 * behind a live one and kept it from the sweep (with two conversations, in 1 run of 16).
 */
Test(memory, the_sweep_finds_every_idle_one_whatever_the_clocks)
{
    struct sl_memory *m = sl_memory_new(&lim);
    char id[16];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "c%d", i);
        user_(m, "u", id, "x", 1000 + (uint64_t)(i % 7));
    }
    for (int i = 0; i < 200; i += 2) { /* the even ones used at 50 s */
        snprintf(id, sizeof(id), "c%d", i);
        cr_assert_str_eq(history_str(m, "u", id, 50000 - (uint64_t)(i % 5)), "u:x");
    }
    for (int i = 1; i < 200; i += 2) { /* the odd ones read with a clock behind their use */
        snprintf(id, sizeof(id), "c%d", i);
        cr_assert_str_eq(history_str(m, "u", id, 900), "u:x");
    }
    struct local *l = m->store;
    for (size_t k = 0; k < NSTRIPES; k++) {
        uint64_t prev = 0;
        for (struct sl_list *n = l->stripes[k].lru.next; n != &l->stripes[k].lru; n = n->next) {
            cr_assert_geq(conv_of(n)->used_ms, prev, "stripe %zu out of order", k);
            prev = conv_of(n)->used_ms;
        }
    }
    cr_assert_eq(sl_memory_sweep(m, 61010), 100); /* every odd one: 60 s unused */
    struct sl_memory_stats st;
    sl_memory_stats(m, &st);
    cr_assert_eq(st.conversations, 100);
    sl_memory_free(m);
}

Test(memory, idle_conversations_are_forgotten)
{
    struct sl_memory *m = sl_memory_new(&lim);
    user_(m, "u", "old", "x", 1000);
    user_(m, "u", "used", "y", 1000);
    /* Reading counts as use. */
    cr_assert_str_eq(history_str(m, "u", "used", 50000), "u:y");
    /* A clock a little behind (another thread's) is not idleness. */
    cr_assert_str_eq(history_str(m, "u", "old", 900), "u:x");
    cr_assert_eq(sl_memory_sweep(m, 60999), 0);
    cr_assert_eq(sl_memory_sweep(m, 61000), 1); /* "old": 60 s unused */
    struct sl_memory_stats st;
    sl_memory_stats(m, &st);
    cr_assert_eq(st.conversations, 1);
    cr_assert_str_eq(history_str(m, "u", "old", 61000), "");
    /* Expiry also applies on access, without a sweep. */
    cr_assert_str_eq(history_str(m, "u", "used", 110000), "");
    sl_memory_stats(m, &st);
    cr_assert_eq(st.conversations, 0);
    cr_assert_eq(st.bytes, 0);
    /* Appending to a forgotten conversation starts it again. */
    user_(m, "u", "used", "z", 120000);
    cr_assert_str_eq(history_str(m, "u", "used", 120001), "u:z");
    sl_memory_free(m);
}

/* Conversation ids whose keys fall in the stripe of the first one. */
static void
same_stripe_ids(struct sl_memory *m, const char *user, char ids[][8], size_t n)
{
    struct local *l = m->store;
    uint64_t stripe = hash_key(l->seed, user, "k0") >> 60;
    size_t found = 0;
    for (unsigned i = 0; found < n; i++) {
        char id[8];
        snprintf(id, sizeof(id), "k%u", i);
        if (hash_key(l->seed, user, id) >> 60 == stripe)
            memcpy(ids[found++], id, sizeof(id));
    }
}

Test(memory, the_idle_longest_makes_room)
{
    struct sl_memory_limits l = lim;
    l.max_conversations = 2 * NSTRIPES; /* two per stripe */
    struct sl_memory *m = sl_memory_new(&l);
    char ids[3][8];
    same_stripe_ids(m, "u", ids, 3);
    user_(m, "u", ids[0], "a", 1);
    user_(m, "u", ids[1], "b", 2);
    cr_assert_str_eq(history_str(m, "u", ids[0], 3), "u:a"); /* ids[1] is now idle-longest */
    user_(m, "u", ids[2], "c", 4);
    cr_assert_str_eq(history_str(m, "u", ids[1], 5), "");
    cr_assert_str_eq(history_str(m, "u", ids[0], 5), "u:a");
    cr_assert_str_eq(history_str(m, "u", ids[2], 5), "u:c");

    /* Whatever the keys, the process never holds more than max_conversations. */
    char id[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "x%d", i);
        user_(m, "v", id, "t", (uint64_t)(10 + i));
    }
    struct sl_memory_stats st;
    sl_memory_stats(m, &st);
    cr_assert_leq(st.conversations, l.max_conversations);
    cr_assert_gt(st.conversations, NSTRIPES);                   /* the stripes are used, not one */
    cr_assert_str_eq(history_str(m, "v", "x999", 2000), "u:t"); /* the newest stays */
    sl_memory_free(m);
}

Test(memory, new_ids)
{
    char a[SL_MEMORY_ID_LEN + 1], b[SL_MEMORY_ID_LEN + 1];
    sl_memory_new_id(a);
    sl_memory_new_id(b);
    cr_assert_eq(strlen(a), SL_MEMORY_ID_LEN);
    cr_assert_str_neq(a, b);
    for (size_t i = 0; i < SL_MEMORY_ID_LEN; i++)
        cr_assert((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'z'));
}

/* Another store behind the same calls (as the Redis one will be). */
static int fake_calls;
static int
fake_append(void *store, const char *user, const char *conv, enum sl_memory_role role,
            const char *text, size_t len, uint64_t now_ms)
{
    (void)store, (void)user, (void)conv, (void)text, (void)now_ms;
    fake_calls++;
    return role == SL_MEMORY_ASSISTANT && len == 0 ? SL_MEMORY_EINVAL : 0;
}
static json_t *
fake_history(void *store, const char *user, const char *conv, uint64_t now_ms)
{
    (void)store, (void)user, (void)conv, (void)now_ms;
    fake_calls++;
    return json_pack("[{s:s,s:s}]", "role", "user", "content", "from the store");
}
static size_t
fake_sweep(void *store, uint64_t now_ms)
{
    (void)store, (void)now_ms;
    return 7;
}
static void
fake_stats(void *store, struct sl_memory_stats *out)
{
    (void)store;
    *out = (struct sl_memory_stats){.conversations = 1};
}
static void
fake_free(void *store)
{
    *(int *)store = 1;
}

Test(memory, another_store)
{
    static const struct sl_memory_store_ops ops = {fake_append, fake_history, fake_sweep,
                                                   fake_stats, fake_free};
    int freed = 0;
    struct sl_memory *m = sl_memory_new_with(&ops, &freed);
    cr_assert_eq(sl_memory_append_user(m, "u", "c", "x", 1, 1), 0);
    cr_assert_eq(sl_memory_append_answer(m, "u", "c", "", 0, 1), SL_MEMORY_EINVAL);
    cr_assert_str_eq(history_str(m, "u", "c", 1), "u:from the store");
    cr_assert_eq(sl_memory_sweep(m, 1), 7);
    cr_assert_eq(fake_calls, 3);
    sl_memory_free(m);
    cr_assert_eq(freed, 1);
}

/* --- concurrency -------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 3000

struct worker {
    struct sl_memory *m;
    unsigned id;
};

static void *
hammer(void *arg)
{
    struct worker *w = arg;
    char user[16], conv[16], text[64];
    uint32_t r = w->id * 2654435761u + 1;
    for (unsigned i = 0; i < ROUNDS; i++) {
        r = r * 1664525u + 1013904223u;
        /* Few users and conversations, so that threads meet on the same ones. */
        snprintf(user, sizeof(user), "u%u", (r >> 8) % 4);
        snprintf(conv, sizeof(conv), "c%u", (r >> 12) % 24);
        uint64_t now = 1000 + i; /* each thread's own clock: a little behind the others' */
        switch ((r >> 20) % 8) {
        case 0:
        case 1:
        case 2:
            snprintf(text, sizeof(text), "question %u from %u", i, w->id);
            cr_assert_eq(sl_memory_append_user(w->m, user, conv, text, strlen(text), now), 0);
            break;
        case 3:
        case 4:
            snprintf(text, sizeof(text), "answer %u", i);
            cr_assert_eq(sl_memory_append_answer(w->m, user, conv, text, strlen(text), now), 0);
            break;
        case 5:
        case 6: {
            json_t *h = sl_memory_history(w->m, user, conv, now);
            size_t n = json_array_size(h);
            cr_assert_leq(n, 6);
            if (n > 0)
                cr_assert_str_eq(json_string_value(json_object_get(json_array_get(h, 0), "role")),
                                 "user");
            json_decref(h);
            break;
        }
        default:
            sl_memory_sweep(w->m, now);
            break;
        }
    }
    return NULL;
}

Test(memory, concurrent_use_keeps_every_bound)
{
    struct sl_memory_limits l = {
        .max_turns = 6, .max_bytes = 120, .idle_ttl_ms = 2000, .max_conversations = 48};
    struct sl_memory *m = sl_memory_new(&l);
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.m = m, .id = i};
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    /* The counters agree with what the conversations hold, and every bound holds. */
    struct sl_memory_stats st;
    sl_memory_stats(m, &st);
    cr_assert_leq(st.conversations, l.max_conversations);
    size_t messages = 0, bytes = 0, convs = 0;
    struct local *lo = m->store;
    for (size_t i = 0; i < NSTRIPES; i++) {
        for (struct sl_list *n = lo->stripes[i].lru.next; n != &lo->stripes[i].lru; n = n->next) {
            struct conv *c = conv_of(n);
            cr_assert_leq(c->nturns, l.max_turns);
            cr_assert_leq(c->bytes, l.max_bytes);
            cr_assert(c->nturns == 0 || c->turns[0].role == SL_MEMORY_USER);
            messages += c->nturns;
            bytes += c->bytes;
            convs++;
        }
    }
    cr_assert_eq(convs, st.conversations);
    cr_assert_eq(messages, st.messages);
    cr_assert_eq(bytes, st.bytes);
    cr_assert_gt(st.messages, 0);
    sl_memory_free(m);
}
