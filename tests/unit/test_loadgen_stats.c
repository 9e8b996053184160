/*
 * Unit tests for the load generator's report (bench/loadgen/stats.c): error counting by
 * code, merging of worker stats, and the JSON report's keys and derived figures (the cut
 * and resume figures, the text check, the server's /metrics).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "../../bench/loadgen/hist.c"
#include "../../bench/loadgen/srvmetrics.c"
#include "../../bench/loadgen/stats.c"

Test(loadgen_stats, errors_by_code)
{
    struct lg_errors e = {0};
    lg_errors_add_str(&e, "UPSTREAM_ERROR");
    lg_errors_add_str(&e, "CLOSE_1011");
    lg_errors_add_str(&e, "UPSTREAM_ERROR");
    lg_errors_add_n(&e, "TIMEOUT", 5);
    cr_assert_eq(e.total, 8);
    cr_assert_eq(e.n, 3);
    cr_assert_str_eq(e.e[0].name, "UPSTREAM_ERROR");
    cr_assert_eq(e.e[0].count, 2);
    cr_assert_eq(e.e[2].count, 5);
}

Test(loadgen_stats, errors_table_overflows_into_other)
{
    struct lg_errors e = {0};
    char name[16];
    for (int i = 0; i < LG_ERR_NAMES + 10; i++) {
        snprintf(name, sizeof(name), "E%d", i);
        lg_errors_add_str(&e, name);
    }
    cr_assert_eq(e.n, LG_ERR_NAMES);
    cr_assert_eq(e.total, LG_ERR_NAMES + 10);
    cr_assert_str_eq(e.e[LG_ERR_NAMES - 1].name, "OTHER");
    uint64_t sum = 0;
    for (unsigned i = 0; i < e.n; i++)
        sum += e.e[i].count;
    cr_assert_eq(sum, e.total);
}

static struct lg_stats a, b;

Test(loadgen_stats, merge_adds_everything)
{
    lg_stats_init(&a);
    lg_stats_init(&b);
    a.tokens = 10;
    b.tokens = 5;
    a.conns_ok = 1;
    b.conns_ok = 2;
    lg_hist_record(&a.latency, 100);
    lg_hist_record(&b.latency, 300);
    lg_errors_add_str(&a.errors, "X");
    lg_errors_add_str(&b.errors, "X");
    lg_errors_add_str(&b.errors, "Y");
    a.cut_streams = 3;
    b.cut_streams = 4;
    b.tokens_lost = 2;
    lg_hist_record(&a.resume, 700);
    lg_hist_record(&b.resume, 900);
    lg_hist_record(&b.live_lag, 50);
    lg_stats_merge(&a, &b);
    cr_assert_eq(a.cut_streams, 7);
    cr_assert_eq(a.tokens_lost, 2);
    cr_assert_eq(a.resume.count, 2);
    cr_assert_eq(a.resume.max, 900);
    cr_assert_eq(a.live_lag.count, 1);
    cr_assert_eq(a.tokens, 15);
    cr_assert_eq(a.conns_ok, 3);
    cr_assert_eq(a.latency.count, 2);
    cr_assert_eq(a.latency.max, 300);
    cr_assert_eq(a.errors.total, 3);
    cr_assert_eq(a.errors.n, 2);
    cr_assert_eq(a.errors.e[0].count, 2);
}

Test(loadgen_stats, json_report)
{
    lg_stats_init(&a);
    a.conns_ok = 4;
    a.streams_ok = 4;
    a.tokens = 2000;
    for (int i = 0; i < 2000; i++)
        lg_hist_record(&a.latency, 1500);
    struct lg_report r = {
        .label = "t",
        .mode = "native",
        .target = "ws://x/ws",
        .model = NULL,
        .threads = 1,
        .connections = 4,
        .streams_per_conn = 1,
        .concurrency = 1,
        .stream_wall_s = 2.0,
        .server_pid = 42,
        .srv_start = {true, 1.0, 1000},
        .srv_connected = {true, 1.5, 1004},
        .srv_end = {true, 1.504, 1010},
    };
    struct sl_buf out = SL_BUF_INIT;
    lg_report_json(&out, &r, &a);
    json_error_t err;
    json_t *j = json_loadb(sl_buf_ptr(&out), sl_buf_len(&out), 0, &err);
    cr_assert_not_null(j, "invalid JSON: %s", err.text);
    cr_assert(json_is_true(json_object_get(j, "ok")));
    cr_assert(json_is_null(json_object_get(j, "model")));
    cr_assert_float_eq(json_number_value(json_object_get(json_object_get(j, "tokens"), "per_s")),
                       1000.0, 1e-9);
    json_t *lat = json_object_get(j, "latency_ms");
    cr_assert_float_eq(json_number_value(json_object_get(lat, "p99.9")), 1.5, 0.03);
    json_t *srv = json_object_get(j, "server");
    /* 0.004 s of CPU over 2000 tokens = 2 µs per token; 4 KiB over 4 connections. */
    cr_assert_float_eq(json_number_value(json_object_get(srv, "cpu_us_per_token")), 2.0, 1e-6);
    cr_assert_float_eq(json_number_value(json_object_get(srv, "rss_bytes_per_connection")), 1024.0,
                       1e-6);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "errors"), "total")), 0);
    json_decref(j);
    sl_buf_free(&out);
}

Test(loadgen_stats, json_report_without_server_and_with_errors)
{
    lg_stats_init(&a);
    lg_errors_add_str(&a.errors, "HTTP_503");
    struct lg_report r = {.mode = "baseline", .target = "http://x/v1", .timed_out = true};
    struct sl_buf out = SL_BUF_INIT;
    lg_report_json(&out, &r, &a);
    json_t *j = json_loadb(sl_buf_ptr(&out), sl_buf_len(&out), 0, NULL);
    cr_assert_not_null(j);
    cr_assert(json_is_false(json_object_get(j, "ok")));
    cr_assert(json_is_null(json_object_get(j, "server")));
    json_t *by = json_object_get(json_object_get(j, "errors"), "by_code");
    cr_assert_eq(json_integer_value(json_object_get(by, "HTTP_503")), 1);
    cr_assert_eq(json_integer_value(json_object_get(by, "RUN_TIMEOUT")), 1);
    json_decref(j);
    sl_buf_free(&out);
}

Test(loadgen_stats, json_report_of_a_cut)
{
    lg_stats_init(&a);
    a.streams_ok = 9;
    a.streams_failed = 1;
    a.cut_conns = 10;
    a.cut_streams = 10;
    a.reconnected = 10;
    a.resumes_sent = 10;
    a.resumes_answered = 9;
    for (int i = 1; i <= 9; i++)
        lg_hist_record(&a.resume, (uint64_t)i * 1000);
    a.verified = 9;
    a.exact = 8;
    a.tokens_dup = 3;
    lg_errors_add_str(&a.errors, "TEXT_DUPLICATED");
    lg_errors_add_str(&a.errors, "NOT_FOUND");
    struct lg_report r = {
        .mode = "native",
        .target = "ws://x/ws",
        .verify = true,
        .cut = true,
        .cut_trigger = "100 tokens per stream",
        .cut_at_s = 1.25,
        .srvm = true,
        .srvm_samples = 5,
        .srvm_cut = {true, {40960, 10, 0, 0}},
        .srvm_peak = {true, {81920, 10, 10, 9}},
        .srvm_peak_per_stream = 8192,
        .srv_cut = {true, 1.0, 0},
        .srv_resumed = {true, 1.25, 0},
        .resumed_wall_s = 0.5,
    };
    struct sl_buf out = SL_BUF_INIT;
    lg_report_json(&out, &r, &a);
    json_t *j = json_loadb(sl_buf_ptr(&out), sl_buf_len(&out), 0, NULL);
    cr_assert_not_null(j);
    cr_assert(json_is_false(json_object_get(j, "ok")));
    json_t *cut = json_object_get(j, "cut");
    cr_assert_float_eq(json_number_value(json_object_get(cut, "at_s")), 1.25, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(cut, "streams")), 10);
    cr_assert_eq(json_integer_value(json_object_get(cut, "resumes_answered")), 9);
    cr_assert_float_eq(json_number_value(json_object_get(cut, "resumed_wall_s")), 0.5, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(cut, "server_cpu_s")), 0.25, 1e-9);
    json_t *res = json_object_get(cut, "resume_ms");
    cr_assert_eq(json_integer_value(json_object_get(res, "count")), 9);
    cr_assert_float_eq(json_number_value(json_object_get(res, "max")), 9.0, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(cut, "live_ms"), "count")), 0);
    json_t *v = json_object_get(j, "verify");
    cr_assert_eq(json_integer_value(json_object_get(v, "exact")), 8);
    cr_assert_eq(json_integer_value(json_object_get(v, "tokens_duplicated")), 3);
    json_t *m = json_object_get(j, "server_metrics");
    cr_assert_float_eq(json_number_value(json_object_get(m, "journal_bytes_per_stream_at_cut")),
                       4096.0, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(m, "journal_bytes_per_stream_peak")),
                       8192.0, 1e-9);
    cr_assert_float_eq(
        json_number_value(json_object_get(json_object_get(m, "peak"), "sluice_sessions_detached")),
        10.0, 1e-9);
    cr_assert(json_is_null(json_object_get(m, "end")));
    json_t *by = json_object_get(json_object_get(j, "errors"), "by_code");
    cr_assert_eq(json_integer_value(json_object_get(by, "NOT_FOUND")), 1);
    json_decref(j);
    sl_buf_free(&out);

    /* A cut that found no stream running is an error of the run itself. */
    lg_stats_init(&a);
    r.cut_missed = true;
    r.cut_at_s = -1;
    r.resumed_wall_s = -1;
    cr_assert_eq(lg_report_errors(&r, &a), 1);
    lg_report_json(&out, &r, &a);
    j = json_loadb(sl_buf_ptr(&out), sl_buf_len(&out), 0, NULL);
    cr_assert_not_null(j);
    cr_assert(json_is_null(json_object_get(json_object_get(j, "cut"), "at_s")));
    by = json_object_get(json_object_get(j, "errors"), "by_code");
    cr_assert_eq(json_integer_value(json_object_get(by, "CUT_MISSED")), 1);
    json_decref(j);
    sl_buf_free(&out);
}

Test(loadgen_stats, json_report_without_cut_has_null_sections)
{
    lg_stats_init(&a);
    struct lg_report r = {.mode = "native", .target = "ws://x/ws"};
    struct sl_buf out = SL_BUF_INIT;
    lg_report_json(&out, &r, &a);
    json_t *j = json_loadb(sl_buf_ptr(&out), sl_buf_len(&out), 0, NULL);
    cr_assert_not_null(j);
    cr_assert(json_is_null(json_object_get(j, "cut")));
    cr_assert(json_is_null(json_object_get(j, "verify")));
    cr_assert(json_is_null(json_object_get(j, "server_metrics")));
    json_decref(j);
    sl_buf_free(&out);
}
