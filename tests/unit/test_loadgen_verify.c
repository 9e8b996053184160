/*
 * Unit tests for the load generator's text check (bench/loadgen/verify.c): the mock's
 * synthetic text "tok1 tok2 ... tokN " (or "tok1@<µs> ...") arriving in arbitrary pieces
 * must be recognised as exact, and every way a resume can get it wrong (a lost token, a
 * replayed one, garbage, a missing tail, too many) must be counted as what it is.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../bench/loadgen/verify.c"

#define S(lit) (lit), (sizeof(lit) - 1)

/* "tok<from> ... tok<to> " (ts=0) or with "@<stamp>" after each number (ts=2). */
static size_t
synth(char *out, size_t cap, unsigned from, unsigned to, bool stamped)
{
    size_t n = 0;
    for (unsigned i = from; i <= to; i++) {
        int w = stamped ? snprintf(out + n, cap - n, "tok%u@%u ", i, 1000000 + i * 7)
                        : snprintf(out + n, cap - n, "tok%u ", i);
        cr_assert(w > 0 && (size_t)w < cap - n);
        n += (size_t)w;
    }
    return n;
}

Test(loadgen_verify, whole_text_is_exact)
{
    struct lg_verify v;
    lg_verify_init(&v);
    char text[4096];
    size_t n = synth(text, sizeof(text), 1, 300, false);
    cr_assert_eq(lg_verify_feed(&v, text, n), 300);
    lg_verify_end(&v, 300);
    cr_assert(lg_verify_exact(&v));
    cr_assert_null(lg_verify_error(&v));
}

Test(loadgen_verify, any_cut_of_the_text_is_exact)
{
    /* sluice merges deltas of a backlog, and nothing ends a piece on a token boundary:
     * every split point, and one byte at a time, give the same verdict. */
    for (int stamped = 0; stamped <= 1; stamped++) {
        char text[2048];
        size_t n = synth(text, sizeof(text), 1, 40, stamped);
        for (size_t cut = 0; cut <= n; cut++) {
            struct lg_verify v;
            lg_verify_init(&v);
            uint64_t got = lg_verify_feed(&v, text, cut) + lg_verify_feed(&v, text + cut, n - cut);
            lg_verify_end(&v, 40);
            cr_assert_eq(got, 40, "cut at %zu", cut);
            cr_assert(lg_verify_exact(&v), "cut at %zu (stamped %d)", cut, stamped);
        }
        struct lg_verify v;
        lg_verify_init(&v);
        uint64_t got = 0;
        for (size_t i = 0; i < n; i++)
            got += lg_verify_feed(&v, text + i, 1);
        lg_verify_end(&v, 40);
        cr_assert_eq(got, 40);
        cr_assert(lg_verify_exact(&v));
    }
}

Test(loadgen_verify, a_gap_is_lost)
{
    /* What a resume with a wrong `after` (too far ahead) would look like. */
    struct lg_verify v;
    lg_verify_init(&v);
    char text[512];
    size_t n = synth(text, sizeof(text), 1, 10, false);
    lg_verify_feed(&v, text, n);
    n = synth(text, sizeof(text), 14, 20, true);
    cr_assert_eq(lg_verify_feed(&v, text, n), 7);
    lg_verify_end(&v, 20);
    cr_assert_eq(v.lost, 3);
    cr_assert_eq(v.dup, 0);
    cr_assert_not(lg_verify_exact(&v));
    cr_assert_str_eq(lg_verify_error(&v), "TEXT_LOST");
}

Test(loadgen_verify, a_replay_of_delivered_tokens_is_duplicated)
{
    /* A resume that replays from before the client's `after`. */
    struct lg_verify v;
    lg_verify_init(&v);
    char text[512];
    size_t n = synth(text, sizeof(text), 1, 10, false);
    lg_verify_feed(&v, text, n);
    n = synth(text, sizeof(text), 8, 20, false);
    cr_assert_eq(lg_verify_feed(&v, text, n), 10, "only 11..20 are new");
    lg_verify_end(&v, 20);
    cr_assert_eq(v.dup, 3);
    cr_assert_eq(v.lost, 0);
    cr_assert_str_eq(lg_verify_error(&v), "TEXT_DUPLICATED");
}

Test(loadgen_verify, garbage_is_named_before_what_it_causes)
{
    /* Stamps without numbers (ts=1): nothing is a token, so everything is also "lost". */
    struct lg_verify v;
    lg_verify_init(&v);
    cr_assert_eq(lg_verify_feed(&v, S("@1 @2 @3 ")), 0);
    lg_verify_end(&v, 3);
    cr_assert_eq(v.garbled, 3);
    cr_assert_eq(v.lost, 3);
    cr_assert_str_eq(lg_verify_error(&v), "TEXT_GARBLED");
    /* A loss and a replay in one stream: the loss is named. */
    lg_verify_init(&v);
    lg_verify_feed(&v, S("tok1 tok3 tok2 tok4 "));
    lg_verify_end(&v, 4);
    cr_assert_eq(v.lost, 1);
    cr_assert_eq(v.dup, 1);
    cr_assert_str_eq(lg_verify_error(&v), "TEXT_LOST");
}

Test(loadgen_verify, a_missing_tail_is_lost_and_a_long_stream_extra)
{
    struct lg_verify v;
    lg_verify_init(&v);
    char text[512];
    size_t n = synth(text, sizeof(text), 1, 17, false);
    lg_verify_feed(&v, text, n);
    lg_verify_end(&v, 20);
    cr_assert_eq(v.lost, 3);
    cr_assert_str_eq(lg_verify_error(&v), "TEXT_LOST");

    lg_verify_init(&v);
    n = synth(text, sizeof(text), 1, 22, false);
    lg_verify_feed(&v, text, n);
    lg_verify_end(&v, 20);
    cr_assert_eq(v.extra, 2);
    cr_assert_eq(v.lost, 0);
    cr_assert_str_eq(lg_verify_error(&v), "TEXT_EXTRA");

    /* Nothing at all: every token lost. */
    lg_verify_init(&v);
    lg_verify_end(&v, 20);
    cr_assert_eq(v.lost, 20);
}

Test(loadgen_verify, garbage_is_garbled)
{
    static const char *const bad[] = {
        "hello ",    "tok ",  "tokx ",    "tok0 ", "tok01 ", "tok1@ ", "tok1@x ",
        "tok1@1@2 ", "Tok1 ", "tok1\\n ", " ",     "@123 ",  "tok1x ", "tok99999999999999999999 ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lg_verify v;
        lg_verify_init(&v);
        cr_assert_eq(lg_verify_feed(&v, bad[i], strlen(bad[i])), 0, "'%s'", bad[i]);
        cr_assert_eq(v.garbled, 1, "'%s'", bad[i]);
        lg_verify_end(&v, 0);
        cr_assert_str_eq(lg_verify_error(&v), "TEXT_GARBLED", "'%s'", bad[i]);
    }
}

Test(loadgen_verify, an_unfinished_or_overlong_token_is_garbled)
{
    struct lg_verify v;
    lg_verify_init(&v);
    lg_verify_feed(&v, S("tok1 tok2 tok"));
    lg_verify_end(&v, 2);
    cr_assert_eq(v.garbled, 1, "the text must end with a space");
    cr_assert_eq(v.lost, 0);

    /* A token longer than the carried part, across pieces: garbage, and the checker
     * goes on with the next token. */
    lg_verify_init(&v);
    char junk[100];
    memset(junk, 'x', sizeof(junk));
    lg_verify_feed(&v, S("tok1 tok"));
    lg_verify_feed(&v, junk, sizeof(junk));
    cr_assert_eq(lg_verify_feed(&v, S("x tok2 ")), 1);
    lg_verify_end(&v, 2);
    cr_assert_eq(v.garbled, 1);
    cr_assert_eq(v.lost, 0);
    cr_assert_eq(v.dup, 0);
}

Test(loadgen_verify, the_carried_part_holds_the_longest_token)
{
    /* The longest token the mock can write, cut in its middle. */
    static const char tok[] = "tok10000000@18446744073709551615 ";
    struct lg_verify v;
    lg_verify_init(&v);
    v.next = 10000000;
    cr_assert_eq(lg_verify_feed(&v, tok, 20), 0);
    cr_assert_eq(lg_verify_feed(&v, tok + 20, sizeof(tok) - 1 - 20), 1);
    lg_verify_end(&v, 10000000);
    cr_assert(lg_verify_exact(&v));
}
