/*
 * Unit tests for the load generator's reading of the server's /metrics
 * (bench/loadgen/srvmetrics.c): the unlabelled samples it needs are found among comments,
 * labelled series and other metrics whose names share a prefix.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../bench/loadgen/srvmetrics.c"

static const char body[] = "# HELP sluice_journal_bytes Memory held by stream journals.\n"
                           "# TYPE sluice_journal_bytes gauge\n"
                           "sluice_journal_bytes_total_not_this 5\n"
                           "sluice_journal_bytes 123456\n"
                           "sluice_streams_active{worker=\"1\"} 7\n"
                           "sluice_streams_active 1000\n"
                           "sluice_sessions_detached 3 1700000000000\n"
                           "sluice_resumes_total 2.5e3\r\n";

static int
parse(const char *name, double *v)
{
    return lg_srvm_parse(body, sizeof(body) - 1, name, v);
}

Test(loadgen_srvmetrics, finds_unlabelled_samples)
{
    double v = 0;
    cr_assert_eq(parse("sluice_journal_bytes", &v), 0);
    cr_assert_float_eq(v, 123456.0, 1e-9);
    cr_assert_eq(parse("sluice_streams_active", &v), 0);
    cr_assert_float_eq(v, 1000.0, 1e-9, "the labelled series is not the total");
    cr_assert_eq(parse("sluice_sessions_detached", &v), 0);
    cr_assert_float_eq(v, 3.0, 1e-9, "a timestamp after the value is ignored");
    cr_assert_eq(parse("sluice_resumes_total", &v), 0);
    cr_assert_float_eq(v, 2500.0, 1e-9);
}

Test(loadgen_srvmetrics, missing_or_malformed_is_refused)
{
    double v = 42;
    cr_assert_eq(parse("sluice_nothing", &v), -1);
    cr_assert_eq(parse("sluice_journal", &v), -1, "a prefix of a name is not the name");
    cr_assert_float_eq(v, 42.0, 1e-9);
    static const char bad[] = "sluice_journal_bytes lots\nsluice_streams_active \n";
    cr_assert_eq(lg_srvm_parse(bad, sizeof(bad) - 1, "sluice_journal_bytes", &v), -1);
    cr_assert_eq(lg_srvm_parse(bad, sizeof(bad) - 1, "sluice_streams_active", &v), -1);
}

Test(loadgen_srvmetrics, a_sample_of_every_name)
{
    struct lg_srvm_sample s;
    lg_srvm_from_text(&s, body, sizeof(body) - 1);
    cr_assert(s.ok);
    cr_assert_float_eq(s.v[LG_SRVM_JOURNAL_BYTES], 123456.0, 1e-9);
    cr_assert_float_eq(s.v[LG_SRVM_DETACHED], 3.0, 1e-9);
    /* An older server without the gauges: -1 for those, not ok if none is there. */
    static const char old[] = "sluice_streams_active 4\n";
    lg_srvm_from_text(&s, old, sizeof(old) - 1);
    cr_assert(s.ok);
    cr_assert_float_eq(s.v[LG_SRVM_JOURNAL_BYTES], -1.0, 1e-9);
    lg_srvm_from_text(&s, "", 0);
    cr_assert_not(s.ok);
}

Test(loadgen_srvmetrics, target_url)
{
    struct lg_srvm_target t;
    char err[256];
    cr_assert_eq(lg_srvm_target("http://127.0.0.1:9/metrics", &t, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(t.host, "127.0.0.1:9");
    cr_assert_str_eq(t.path, "/metrics");
    cr_assert_eq(lg_srvm_target("http://127.0.0.1:9", &t, err, sizeof(err)), 0);
    cr_assert_str_eq(t.path, "/metrics");
    cr_assert_eq(lg_srvm_target("ws://127.0.0.1:9/metrics", &t, err, sizeof(err)), -1);
    cr_assert_eq(lg_srvm_target("http:///metrics", &t, err, sizeof(err)), -1);
}

Test(loadgen_srvmetrics, fetch_from_nothing_fails_in_time)
{
    /* Nobody listens on port 1 here: the sample is not ok, and no hang. */
    struct lg_srvm_target t;
    char err[256];
    cr_assert_eq(lg_srvm_target("http://127.0.0.1:1/metrics", &t, err, sizeof(err)), 0);
    struct lg_srvm_sample s;
    lg_srvm_fetch(&t, 500, &s);
    cr_assert_not(s.ok);
}
