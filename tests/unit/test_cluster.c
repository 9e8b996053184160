/*
 * Unit tests for src/cluster: redis.url parsing (host, port, password, db, IPv6, Unix
 * socket, what is refused), the SHA-1 that names the server-side scripts (EVALSHA must name
 * exactly what SCRIPT LOAD stored), the keys (a user can never name another user's), and a
 * connection to nowhere failing without a crash or a hang of the caller. The cluster itself
 * runs against a real redis-server in tests/e2e/92-cluster.test.mjs.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "cluster/cluster.c"
#include "cluster/rconn.h"
#include "net/loop.h"

Test(cluster, url_forms)
{
    struct sl_redis_addr a;
    cr_assert_eq(sl_redis_parse_url("redis://10.0.0.5:6380/2", &a), 0);
    cr_assert_str_eq(a.host, "10.0.0.5");
    cr_assert_eq(a.port, 6380);
    cr_assert_eq(a.db, 2);
    cr_assert_str_eq(a.password, "");
    cr_assert_eq(sl_redis_parse_url("redis://:s3cr@t@cache.local", &a), 0);
    cr_assert_str_eq(a.host, "cache.local");
    cr_assert_str_eq(a.password, "s3cr@t", "the last @ ends the password");
    cr_assert_eq(a.port, 6379);
    cr_assert_str_eq(a.username, "");
    cr_assert_eq(sl_redis_parse_url("redis://user:pw@[::1]:7000", &a), 0);
    cr_assert_str_eq(a.host, "::1");
    cr_assert_str_eq(a.username, "user");
    cr_assert_str_eq(a.password, "pw");
    cr_assert_eq(a.port, 7000);
    cr_assert_eq(sl_redis_parse_url("unix:///run/redis.sock", &a), 0);
    cr_assert(a.unix_socket);
    cr_assert_str_eq(a.host, "/run/redis.sock");
    cr_assert_eq(sl_redis_parse_url("redis://host:0", &a), -1);
    cr_assert_eq(sl_redis_parse_url("redis://host:99999", &a), -1);
    cr_assert_eq(sl_redis_parse_url("redis://host:12x", &a), -1);
    cr_assert_eq(sl_redis_parse_url("redis://host/db", &a), -1);
    cr_assert_eq(sl_redis_parse_url("http://host", &a), -1);
    cr_assert_eq(sl_redis_parse_url("unix://relative", &a), -1);
}

Test(cluster, script_sha1)
{
    char out[41];
    sha1_hex("", out);
    cr_assert_str_eq(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    sha1_hex("abc", out);
    cr_assert_str_eq(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
    /* 56 bytes: the padding spills into a second block. */
    sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", out);
    cr_assert_str_eq(out, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

Test(cluster, keys_are_length_prefixed)
{
    char *a = key_of("j", "a:b", "c", "e1");
    char *b = key_of("j", "a", "b:c", "e1");
    cr_assert_str_eq(a, "sluice:j:3:a:b:c:e1");
    cr_assert_str_eq(b, "sluice:j:1:a:b:c:e1");
    cr_assert_str_neq(a, b, "user a:b and user a must not share keys");
    free(a);
    free(b);
}

static int downs;

static void
on_down(void *ud)
{
    (void)ud;
    downs++;
}

static void
stop_loop(void *arg)
{
    sl_loop_stop(arg);
}

/* Port 1 refuses at once: the command is refused, nothing is reported up, freeing is clean. */
Test(cluster, connection_refused)
{
    struct sl_loop *loop = sl_loop_new();
    struct sl_rconn_opts o = {
        .url = "redis://127.0.0.1:1", .name = "test", .timeout_ms = 200, .on_down = on_down};
    struct sl_rconn *c = sl_rconn_new(loop, &o);
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    cr_assert_eq(sl_rconn_cmd(c, NULL, NULL, 1, argv, lens), -1, "not up: refused at once");
    struct sl_delay *d = sl_loop_delay(loop, 300, stop_loop, loop);
    (void)d;
    uv_run(sl_loop_uv(loop), UV_RUN_ONCE);
    cr_assert(!sl_rconn_up(c));
    sl_rconn_free(c);
    sl_loop_run(loop);
    cr_assert_eq(downs, 0, "never up: no down callback");
    sl_loop_free(loop);
}
