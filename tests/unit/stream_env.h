/*
 * The worker pieces streams run on (a stream's env, stream.h), for the unit tests of streams,
 * fair admission and sessions: a configuration, a loop, an upstream context whose calls all
 * go to the test's provider ops, metrics, the stream table and the directory. The test makes
 * cfg (sl_config_new_defaults, then its own settings), calls tenv_open() from its setup and
 * tenv_close() from its teardown, after freeing what it built on top.
 *
 * Not a test file of its own; included by the tests that need it.
 */
#ifndef SL_TESTS_STREAM_ENV_H
#define SL_TESTS_STREAM_ENV_H

#include <criterion/criterion.h>

#include "config/config.h"
#include "net/loop.h"
#include "obs/metrics.h"
#include "stream/directory.h"
#include "stream/stream.h"
#include "upstream/provider.h"
#include "upstream/upstream.h"

static struct sl_config *cfg;
static struct sl_loop *loop;
static struct sl_upstream *up;
static struct sl_metrics metrics;
static struct sl_streams table;
static struct sl_directory *dir;
static struct sl_stream_env env;

/* table_on_loop: the table starts streams on later loop turns (fair admission) or at once. */
static void
tenv_open(const struct sl_provider_ops *ops, bool table_on_loop)
{
    loop = sl_loop_new();
    up = sl_upstream_new(loop, cfg);
    up->ops_override = ops;
    sl_metrics_init(&metrics, cfg);
    sl_streams_init(&table, cfg, table_on_loop ? loop : NULL);
    dir = sl_directory_new();
    env = (struct sl_stream_env){
        .cfg = cfg, .up = up, .metrics = &metrics, .table = &table, .dir = dir, .worker = 0};
}

/* Checks that no stream and no provider call was left, then frees everything, cfg too. */
static void
tenv_close(void)
{
    cr_assert_eq(table.count, 0, "streams left in the table");
    cr_assert_eq(up->active_calls, 0, "provider calls left running");
    sl_streams_cleanup(&table);
    sl_directory_free(dir);
    sl_metrics_cleanup(&metrics);
    sl_upstream_free(up);
    sl_loop_stop(loop);
    sl_loop_run(loop);
    sl_loop_free(loop);
    sl_config_free(cfg);
}

#endif
