/* Unit tests for src/obs/log: every line parses on its own, whatever the values hold. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "obs/log.h"

static int pipefd[2];

static void
setup(void)
{
    cr_assert_eq(pipe(pipefd), 0);
    sl_log_set_fd(pipefd[1]);
}

static void
teardown(void)
{
    sl_log_set_fd(STDERR_FILENO);
    sl_log_setup(SL_LOG_INFO, false);
    close(pipefd[0]);
    close(pipefd[1]);
}

/* Everything written so far (lines are far below the pipe's capacity). */
static char *
drain(void)
{
    static char out[16384];
    close(pipefd[1]);
    size_t n = 0;
    ssize_t k;
    while (n < sizeof(out) - 1 && (k = read(pipefd[0], out + n, sizeof(out) - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(pipefd[0]);
    cr_assert_eq(pipe(pipefd), 0, "a fresh pipe for what follows");
    sl_log_set_fd(pipefd[1]);
    return out;
}

static json_t *
json_line(const char *line)
{
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    cr_assert_not_null(j, "not JSON (%s): %s", e.text, line);
    return j;
}

TestSuite(log, .init = setup, .fini = teardown);

Test(log, logfmt_quotes_only_what_needs_it)
{
    sl_log_setup(SL_LOG_INFO, false);
    struct sl_logrec r;
    cr_assert(sl_log_begin(&r, SL_LOG_INFO, "t.ev"));
    sl_log_str(&r, "plain", "abc-1.2");
    sl_log_str(&r, "spaced", "a b");
    sl_log_str(&r, "tricky", "x=\"y\"\\\n");
    sl_log_str(&r, "empty", "");
    sl_log_uint(&r, "n", 42);
    sl_log_bool(&r, "ok", true);
    sl_log_end(&r);
    char *out = drain();
    cr_assert(strncmp(out, "ts=", 3) == 0);
    cr_assert_not_null(strstr(out, " level=info event=t.ev plain=abc-1.2 spaced=\"a b\" "
                                   "tricky=\"x=\\\"y\\\"\\\\\\n\" empty=\"\" n=42 ok=true\n"),
                       "%s", out);
    cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line");
}

Test(log, json_escapes_controls_and_replaces_bad_utf8)
{
    sl_log_setup(SL_LOG_DEBUG, true);
    struct sl_logrec r;
    cr_assert(sl_log_begin(&r, SL_LOG_DEBUG, "t.json"));
    sl_log_str(&r, "ctl", "a\x01\tb\x7f");
    sl_log_str(&r, "utf8", "caf\xc3\xa9 \xe2\x82\xac");
    sl_log_str(&r, "bad", "x\xff\xc3y\xed\xa0\x80");
    sl_log_str(&r, "null", NULL);
    sl_log_double(&r, "nan", NAN);
    sl_log_double(&r, "half", 0.5);
    sl_log_int(&r, "neg", -3);
    sl_log_end(&r);
    char *out = drain();
    json_t *j = json_line(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "level")), "debug");
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "t.json");
    cr_assert_str_eq(json_string_value(json_object_get(j, "ctl")), "a\x01\tb\x7f");
    cr_assert_str_eq(json_string_value(json_object_get(j, "utf8")), "caf\xc3\xa9 \xe2\x82\xac");
    /* Each byte that is not part of a valid character becomes U+FFFD. */
    cr_assert_str_eq(json_string_value(json_object_get(j, "bad")),
                     "x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    cr_assert(json_is_null(json_object_get(j, "null")));
    cr_assert(json_is_null(json_object_get(j, "nan")));
    cr_assert_float_eq(json_number_value(json_object_get(j, "half")), 0.5, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(j, "neg")), -3);
    cr_assert_null(json_object_get(j, "truncated"));
    json_decref(j);
}

Test(log, an_overlong_record_stays_valid_and_says_so)
{
    static char big[3 * SL_LOG_LINE_MAX];
    /* Two-byte characters, so that a cut in the wrong place would split one. */
    for (size_t i = 0; i + 2 < sizeof(big); i += 2) {
        big[i] = '\xc3';
        big[i + 1] = '\xa9';
    }
    big[sizeof(big) - 1] = '\0';
    for (int json = 0; json < 2; json++) {
        sl_log_setup(SL_LOG_INFO, json);
        struct sl_logrec r;
        cr_assert(sl_log_begin(&r, SL_LOG_INFO, "t.long"));
        sl_log_str(&r, "first", "kept");
        sl_log_str(&r, "big", big);
        sl_log_uint(&r, "after", 7); /* no room left for it */
        sl_log_end(&r);
        char *out = drain();
        size_t n = strlen(out);
        cr_assert_leq(n, SL_LOG_LINE_MAX);
        cr_assert_eq(out[n - 1], '\n');
        cr_assert_eq(strchr(out, '\n'), out + n - 1, "one line");
        if (json) {
            json_t *j = json_line(out);
            cr_assert_str_eq(json_string_value(json_object_get(j, "first")), "kept");
            const char *v = json_string_value(json_object_get(j, "big"));
            cr_assert_not_null(v);
            cr_assert_gt(strlen(v), 1000, "the start of a long value is kept");
            cr_assert_eq(strlen(v) % 2, 0, "no character is split");
            cr_assert(json_is_true(json_object_get(j, "truncated")));
            json_decref(j);
        } else {
            cr_assert_not_null(strstr(out, " first=kept big=\"\xc3\xa9"));
            cr_assert_not_null(strstr(out, "\" truncated=true\n"), "%s", out + n - 40);
        }
    }
}

Test(log, below_the_level_nothing_is_written)
{
    sl_log_setup(SL_LOG_WARN, false);
    struct sl_logrec r;
    cr_assert_not(sl_log_begin(&r, SL_LOG_INFO, "t.quiet"));
    sl_log_msg(SL_LOG_INFO, "t.quiet", "not %s", "shown");
    sl_log_msg(SL_LOG_ERROR, "t.loud", "shown %d", 1);
    char *out = drain();
    cr_assert_null(strstr(out, "t.quiet"));
    cr_assert_not_null(strstr(out, "level=error event=t.loud msg=\"shown 1\"\n"), "%s", out);
}

Test(log, level_names)
{
    cr_assert_eq(sl_log_level_from_name("DEBUG"), SL_LOG_DEBUG);
    cr_assert_eq(sl_log_level_from_name("warning"), SL_LOG_WARN);
    cr_assert_eq(sl_log_level_from_name("off"), SL_LOG_OFF);
    cr_assert_eq(sl_log_level_from_name("loud"), -1);
}
