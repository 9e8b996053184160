/*
 * Unit tests for src/limits/statefile.c: the format (round trip, every refusal), and the
 * file: missing, saved and loaded, replaced atomically, corrupt (set aside), unreadable.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "config/config.h"
#include "limits/limits.h"
#include "limits/statefile.h"

static char dir[256];

static void
mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sluice-statefile-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void
rm_tmp(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(statefile, .init = mkdir_tmp, .fini = rm_tmp);

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = sl_calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int
decode(const char *text, struct sl_budget_rec **recs, size_t *n, char *err, size_t errlen)
{
    return sl_statefile_decode(text, strlen(text), recs, n, err, errlen);
}

Test(statefile, round_trip_is_exact)
{
    struct sl_budget_rec in[] = {
        {.user = (char *)"alice",
         .day = 20254,
         .day_usd = 0.1,
         .month = 665,
         .month_usd = 123456.789},
        {.user = (char *)"anon:2001:db8::/64",
         .day = 19782,
         .day_usd = 0,
         .month = 650,
         .month_usd = 1e-9},
        {.user = (char *)"\xc3\xa9mile \"quoted\"",
         .day = 0,
         .day_usd = 1.0 / 3,
         .month = 0,
         .month_usd = 2.0 / 3},
    };
    char *text = sl_statefile_encode(in, 3, 1749895200000ll);
    cr_assert_not_null(strstr(text, "\"saved_at\":\"2025-06-14T10:00:00Z\""), "%s", text);
    /* 2025-06-14 is day 20253 + 1; dates are written as dates. */
    cr_assert_not_null(strstr(text, "\"day\":\"2025-06-15\""), "%s", text);
    cr_assert_not_null(strstr(text, "\"month\":\"2025-06\""), "%s", text);
    cr_assert_not_null(strstr(text, "\"day\":\"1970-01-01\""), "%s", text);
    struct sl_budget_rec *out;
    size_t n;
    char err[200];
    cr_assert_eq(decode(text, &out, &n, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(out[i].user, in[i].user);
        cr_assert_eq(out[i].day, in[i].day);
        cr_assert_eq(out[i].month, in[i].month);
        cr_assert_eq(out[i].day_usd, in[i].day_usd, "bit for bit");
        cr_assert_eq(out[i].month_usd, in[i].month_usd);
    }
    sl_budget_recs_free(out, n);
    free(text);

    text = sl_statefile_encode(NULL, 0, 0);
    cr_assert_eq(decode(text, &out, &n, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(n, 0);
    sl_budget_recs_free(out, n);
    free(text);
}

Test(statefile, decode_refuses_what_is_not_a_state)
{
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"", "not JSON"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[", "not JSON"},
        {"[]", "not a sluice budgets file"},
        {"{\"version\":1,\"spend\":[]}", "not a sluice budgets file"},
        {"{\"format\":\"other\",\"version\":1,\"spend\":[]}", "not a sluice budgets file"},
        {"{\"format\":\"sluice-budgets\",\"version\":2,\"spend\":[]}", "unsupported version"},
        {"{\"format\":\"sluice-budgets\",\"version\":1}", "\"spend\" is not a list"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"version\":1,\"spend\":[]}", "not JSON"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[1]}", "spend[0]: not an object"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":\"\",\"day\":"
         "\"2025-06-01\",\"day_usd\":0,\"month\":\"2025-06\",\"month_usd\":0}]}",
         "spend[0].user"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":\"a\\u0000b\",\"day\":"
         "\"2025-06-01\",\"day_usd\":0,\"month\":\"2025-06\",\"month_usd\":0}]}",
         "not JSON"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":\"a\",\"day\":"
         "\"2025-02-30\",\"day_usd\":0,\"month\":\"2025-02\",\"month_usd\":0}]}",
         "spend[0].day"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":\"a\",\"day\":"
         "\"2025-6-01\",\"day_usd\":0,\"month\":\"2025-06\",\"month_usd\":0}]}",
         "spend[0].day"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":\"a\",\"day\":"
         "\"2025-06-01\",\"day_usd\":0,\"month\":\"2025-13\",\"month_usd\":0}]}",
         "spend[0].month"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":\"a\",\"day\":"
         "\"2025-06-01\",\"day_usd\":-1,\"month\":\"2025-06\",\"month_usd\":0}]}",
         "spend[0].day_usd"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":\"a\",\"day\":"
         "\"2025-06-01\",\"day_usd\":0,\"month\":\"2025-06\",\"month_usd\":\"1\"}]}",
         "spend[0].month_usd"},
        {"{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":\"a\",\"day\":"
         "\"2025-06-01\",\"day_usd\":0,\"month\":\"2025-06\",\"month_usd\":1e300}]}",
         "spend[0].month_usd"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_budget_rec *recs = (void *)1;
        size_t n = 99;
        char err[200] = "";
        cr_assert_eq(decode(cases[i].text, &recs, &n, err, sizeof(err)), -1, "case %zu", i);
        cr_assert_not_null(strstr(err, cases[i].why), "case %zu: %s", i, err);
    }
}

Test(statefile, missing_file_is_an_empty_state)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/budgets.json", dir);
    struct sl_limits_store *st = sl_statefile_new(path);
    struct sl_budget_rec *recs;
    size_t n = 5;
    char err[300];
    cr_assert_eq(st->load(st, &recs, &n, err, sizeof(err)), 0);
    cr_assert_eq(n, 0);
    sl_budget_recs_free(recs, n);
    st->free(st);
}

Test(statefile, save_replaces_atomically)
{
    char path[300], tmp[320];
    snprintf(path, sizeof(path), "%s/budgets.json", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    struct sl_limits_store *st = sl_statefile_new(path);
    char err[300];
    struct sl_budget_rec one = {
        .user = (char *)"alice", .day = 20000, .day_usd = 1, .month = 657, .month_usd = 2};
    /* A temporary file left by a crash in the middle of a save does not matter. */
    write_file(tmp, "half a fi");
    cr_assert_eq(st->save(st, &one, 1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(access(tmp, F_OK), -1, "no temporary file is left behind");
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);

    struct sl_budget_rec *recs;
    size_t n;
    cr_assert_eq(st->load(st, &recs, &n, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(recs[0].user, "alice");
    cr_assert_eq(recs[0].month_usd, 2);
    sl_budget_recs_free(recs, n);

    /* A save that cannot complete leaves the previous file whole. */
    char *before = read_file(path);
    cr_assert_eq(mkdir(tmp, 0700), 0); /* the temporary file cannot be created */
    struct sl_budget_rec two[] = {one, one};
    two[1].user = (char *)"bob";
    cr_assert_eq(st->save(st, two, 2, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "cannot create"), "%s", err);
    char *after = read_file(path);
    cr_assert_str_eq(after, before);
    free(before);
    free(after);
    cr_assert_eq(rmdir(tmp), 0);
    cr_assert_eq(st->save(st, two, 2, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(st->load(st, &recs, &n, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(n, 2);
    sl_budget_recs_free(recs, n);
    st->free(st);
}

Test(statefile, corrupt_file_is_set_aside)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/budgets.json", dir);
    write_file(path, "{\"format\":\"sluice-budgets\",\"version\":1,\"spend\":[{\"user\":");
    struct sl_limits_store *st = sl_statefile_new(path);
    struct sl_budget_rec *recs;
    size_t n;
    char err[600];
    cr_assert_eq(st->load(st, &recs, &n, err, sizeof(err)), 1);
    cr_assert_eq(n, 0);
    cr_assert_not_null(strstr(err, "is not a valid budgets file"), "%s", err);
    cr_assert_not_null(strstr(err, ".corrupt-"), "%s", err);
    cr_assert_eq(access(path, F_OK), -1, "moved away");
    /* The evidence is kept, under the name the message gives. */
    const char *kept = strstr(err, "kept as ") + strlen("kept as ");
    char *text = read_file(kept);
    cr_assert_not_null(text, "%s", kept);
    cr_assert_not_null(strstr(text, "sluice-budgets"));
    free(text);
    st->free(st);
}

Test(statefile, unreadable_file_fails)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/budgets.json", dir);
    cr_assert_eq(mkdir(path, 0700), 0); /* a directory where the file should be */
    struct sl_limits_store *st = sl_statefile_new(path);
    struct sl_budget_rec *recs;
    size_t n;
    char err[300];
    cr_assert_eq(st->load(st, &recs, &n, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
    st->free(st);

    snprintf(path, sizeof(path), "%s/no/such/dir/budgets.json", dir);
    st = sl_statefile_new(path);
    struct sl_budget_rec one = {.user = (char *)"a", .day = 1, .month = 0};
    cr_assert_eq(st->save(st, &one, 1, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "cannot create"), "%s", err);
    st->free(st);
}

/* The whole path: limits with a state file survive a restart; a corrupt one does not stop them. */
Test(statefile, limits_restart_with_the_file)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/budgets.json", dir);
    struct sl_config *cfg = sl_config_new_defaults();
    cfg->budgets.usd_per_day = 2;
    char err[600];
    struct sl_limits *l = sl_limits_new(cfg, sl_statefile_new(path), NULL, err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(access(path, F_OK), 0, "written at start");
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    cr_assert_eq(sl_limits_stream_begin(l, "alice", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 2.5);
    cr_assert_eq(sl_limits_flush(l, err, sizeof(err)), 0, "%s", err);
    sl_limits_free(l);

    l = sl_limits_new(cfg, sl_statefile_new(path), NULL, err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(sl_limits_stream_begin(l, "alice", NULL, 1, 0, &t, &why), -1);
    cr_assert_eq(why.code, SL_ERR_BUDGET_EXCEEDED);
    sl_limits_free(l);

    write_file(path, "garbage");
    l = sl_limits_new(cfg, sl_statefile_new(path), NULL, err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(sl_limits_stream_begin(l, "alice", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 0);
    sl_limits_free(l);
    char *text = read_file(path);
    cr_assert_not_null(strstr(text, "\"spend\":["), "a fresh file replaced the bad one");
    free(text);
    int corrupt = 0;
    DIR *d = opendir(dir);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        corrupt += strncmp(de->d_name, "budgets.json.corrupt-", 21) == 0;
    closedir(d);
    cr_assert_eq(corrupt, 1);

    /* An absurd cost (a provider's bad usage) still leaves a file that loads. */
    l = sl_limits_new(cfg, sl_statefile_new(path), NULL, err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(sl_limits_stream_begin(l, "bob", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 1e300);
    cr_assert_eq(sl_limits_flush(l, err, sizeof(err)), 0, "%s", err);
    sl_limits_free(l);
    l = sl_limits_new(cfg, sl_statefile_new(path), NULL, err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(sl_limits_stream_begin(l, "bob", NULL, 1, 0, &t, &why), -1);
    sl_limits_free(l);
    corrupt = 0;
    d = opendir(dir);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        corrupt += strncmp(de->d_name, "budgets.json.corrupt-", 21) == 0;
    closedir(d);
    cr_assert_eq(corrupt, 1, "not set aside as corrupt");

    /* Unwritable: sluice does not start. */
    char bad[320];
    snprintf(bad, sizeof(bad), "%s/missing-dir/budgets.json", dir);
    cr_assert_null(sl_limits_new(cfg, sl_statefile_new(bad), NULL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "budgets.state_file: cannot create"), "%s", err);
    sl_config_free(cfg);
}
