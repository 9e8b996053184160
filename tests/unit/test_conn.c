/*
 * Unit tests for src/net/conn: the deadlines and the output cap, on a real loop and a real TCP
 * connection whose client end is a plain socket with a tiny receive buffer (SO_RCVBUF 4096),
 * driven by a uv_poll on the same loop, so that "a peer that does not read" is exactly that.
 *
 *   - a graceful close with a write still pending ends within close_timeout, with a reset;
 *   - queued output that makes no progress for send_timeout resets the connection, and the
 *     handler is told (on_close); a slow reader that keeps taking bytes is not reset;
 *   - above max_queued the connection stops reading, so output driven by input stops
 *     growing; it reads again once the queue drained below half, and nothing is lost.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "net/conn.h"
#include "net/loop.h"

#define DEADLINE_MS 15000

struct client {
    int fd;
    uv_poll_t poll;
    bool polling;
    /* writing */
    size_t to_send; /* bytes still to write ('a'..'z' repeating) */
    size_t sent;
    /* reading */
    bool reading;
    size_t got;
    int error;      /* first errno of a read or write, e.g. ECONNRESET */
    char head[64];  /* the first bytes read */
    unsigned reads; /* reads that returned data */
    bool eof;
};

struct ctx {
    struct sl_loop *loop;
    uv_loop_t *uv;
    struct sl_conn_pool pool;
    uv_tcp_t listener;
    uv_timer_t deadline;
    int port;
    struct sl_conn *conn;
    struct client cl;
    /* the server side's handler */
    unsigned amplify; /* bytes written back per byte read */
    size_t server_read;
    size_t max_seen_queued;
    int closes;
};

static struct ctx T;

/* --- the server side -------------------------------------------------------------------- */

static void
srv_read(struct sl_conn *c, const char *data, size_t len)
{
    T.server_read += len;
    for (unsigned i = 0; i < T.amplify; i++)
        sl_conn_write(c, data, len);
    if (sl_conn_queued(c) > T.max_seen_queued)
        T.max_seen_queued = sl_conn_queued(c);
}

static void
srv_eof(struct sl_conn *c)
{
    sl_conn_close(c);
}

static void
srv_close(struct sl_conn *c)
{
    (void)c;
    T.closes++;
    T.conn = NULL;
}

static const struct sl_conn_handler handler = {
    .on_read = srv_read,
    .on_eof = srv_eof,
    .on_close = srv_close,
};

static void
on_accept(uv_stream_t *server, int status)
{
    cr_assert_eq(status, 0);
    struct sl_conn *c = sl_conn_accept(&T.pool, server);
    cr_assert_not_null(c);
    T.conn = c;
    sl_conn_set_handler(c, &handler, NULL);
}

/* --- the client side -------------------------------------------------------------------- */

static void client_update(struct client *cl);

static void
on_client(uv_poll_t *p, int status, int events)
{
    struct client *cl = p->data;
    (void)status;
    if ((events & UV_WRITABLE) && cl->to_send > 0) {
        char buf[16384];
        size_t n = cl->to_send < sizeof(buf) ? cl->to_send : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)('a' + (cl->sent + i) % 26);
        ssize_t w = send(cl->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            cl->sent += (size_t)w;
            cl->to_send -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && cl->error == 0) {
            cl->error = errno;
        }
    }
    if ((events & UV_READABLE) && cl->reading) {
        char buf[65536];
        ssize_t r = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0) {
            for (ssize_t i = 0; i < r && cl->got + (size_t)i < sizeof(cl->head); i++)
                cl->head[cl->got + (size_t)i] = buf[i];
            cl->reads++;
            cl->got += (size_t)r;
        } else if (r == 0) {
            cl->eof = true;
        } else if (errno != EAGAIN && cl->error == 0) {
            cl->error = errno;
        }
    }
    client_update(cl);
}

/* Polls for what the client wants to do now: write what is left, read if it reads. */
static void
client_update(struct client *cl)
{
    int ev = (cl->to_send > 0 && cl->error == 0 ? UV_WRITABLE : 0) |
             (cl->reading && !cl->eof && cl->error == 0 ? UV_READABLE : 0);
    if (ev == 0) {
        if (cl->polling)
            uv_poll_stop(&cl->poll);
        cl->polling = false;
        return;
    }
    uv_poll_start(&cl->poll, ev, on_client);
    cl->polling = true;
}

/* The socket's pending error (ECONNRESET once the server reset it), without reading data. */
static int
client_so_error(struct client *cl)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(cl->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 && cl->error == 0)
        cl->error = err;
    return cl->error;
}

static void
client_connect(struct client *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(cl->fd, 0);
    int small = 4096;
    /* Before connect, so that the window it announces stays small. */
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)T.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The kernel completes the handshake from the listen backlog: no accept needed yet. */
    cr_assert_eq(connect(cl->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    uv_poll_init(T.uv, &cl->poll, cl->fd);
    cl->poll.data = cl;
}

/* --- the loop ----------------------------------------------------------------------------- */

static void
on_deadline(uv_timer_t *t)
{
    (void)t;
    cr_assert_fail("deadline: the awaited event never came");
}

#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond))                                                                            \
            uv_run(T.uv, UV_RUN_ONCE);                                                             \
    } while (0)

static void
setup_with(const struct sl_conn_limits *lim)
{
    memset(&T, 0, sizeof(T));
    T.loop = sl_loop_new();
    T.uv = sl_loop_uv(T.loop);
    sl_conn_pool_init(&T.pool, T.loop);
    sl_conn_pool_set_limits(&T.pool, lim);

    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(T.uv, &T.listener);
    cr_assert_eq(uv_tcp_bind(&T.listener, (const struct sockaddr *)&addr, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&T.listener, 16, on_accept), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&T.listener, (struct sockaddr *)&ss, &len);
    T.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

    uv_timer_init(T.uv, &T.deadline);
    uv_timer_start(&T.deadline, on_deadline, DEADLINE_MS, 0);

    client_connect(&T.cl);
    RUN_UNTIL(T.conn != NULL);
}

static void
abort_conn(struct sl_conn *c, void *arg)
{
    (void)arg;
    sl_conn_abort(c);
}

static void
count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    ++*(int *)arg;
}

static void
teardown(void)
{
    sl_conn_pool_foreach(&T.pool, abort_conn, NULL);
    uv_close((uv_handle_t *)&T.cl.poll, NULL);
    uv_close((uv_handle_t *)&T.listener, NULL);
    uv_close((uv_handle_t *)&T.deadline, NULL);
    sl_loop_stop(T.loop);
    sl_loop_run(T.loop);
    int open = 0;
    uv_walk(T.uv, count_handle, &open);
    cr_assert_eq(open, 0, "every handle is closed");
    cr_assert_eq(T.pool.count, 0);
    close(T.cl.fd);
    sl_loop_free(T.loop);
}

/* Queues n bytes on the server side and runs the loop until the kernel stops taking them. */
static void
queue_unread(size_t n)
{
    char *big = sl_malloc(n);
    memset(big, 'x', n);
    sl_conn_write(T.conn, big, n);
    free(big);
    uv_run(T.uv, UV_RUN_NOWAIT);
    cr_assert_gt(sl_conn_queued(T.conn), 0, "the kernel took it all?");
}

/* --- the close deadline ------------------------------------------------------------------- */

static void
setup_close(void)
{
    struct sl_conn_limits lim = {.send_timeout_ms = 0, .close_timeout_ms = 300, .max_queued = 0};
    setup_with(&lim);
}

static void
setup_close_long(void)
{
    struct sl_conn_limits lim = {.send_timeout_ms = 0, .close_timeout_ms = 10000, .max_queued = 0};
    setup_with(&lim);
}

Test(conn, close_with_a_write_pending_ends_by_its_deadline, .init = setup_close, .fini = teardown)
{
    queue_unread(8u << 20);
    uv_update_time(T.uv);
    uint64_t t0 = uv_now(T.uv);
    sl_conn_close(T.conn);
    /* Without a deadline the close would wait for the write forever. */
    RUN_UNTIL(T.closes == 1);
    uint64_t took = uv_now(T.uv) - t0;
    cr_assert_geq(took, 290, "closed after %llu ms, before its deadline", (unsigned long long)took);
    cr_assert_lt(took, 2000, "closed after %llu ms", (unsigned long long)took);
    cr_assert_eq(T.pool.close_timeouts, 1);
    cr_assert_eq(T.pool.count, 0);
    /* A reset, not an end: the client can tell that data was lost. */
    RUN_UNTIL(client_so_error(&T.cl) != 0);
    cr_assert_eq(T.cl.error, ECONNRESET, "got %s", strerror(T.cl.error));
}

Test(conn, a_close_the_peer_reads_is_graceful, .init = setup_close_long, .fini = teardown)
{
    queue_unread(8u << 20);
    sl_conn_close(T.conn);
    T.cl.reading = true;
    client_update(&T.cl);
    RUN_UNTIL(T.cl.eof);
    cr_assert_eq(T.cl.got, 8u << 20, "every byte before the FIN");
    cr_assert_eq(T.cl.error, 0);
    /* Our FIN answers theirs: the connection is released at once. */
    shutdown(T.cl.fd, SHUT_WR);
    RUN_UNTIL(T.closes == 1);
    cr_assert_eq(T.pool.close_timeouts, 0);
}

/* --- the send timeout --------------------------------------------------------------------- */

static void
setup_stall(void)
{
    struct sl_conn_limits lim = {.send_timeout_ms = 200, .close_timeout_ms = 5000, .max_queued = 0};
    setup_with(&lim);
}

Test(conn, output_without_progress_is_reset_after_the_send_timeout, .init = setup_stall,
     .fini = teardown)
{
    uv_update_time(T.uv);
    uint64_t t0 = uv_now(T.uv);
    queue_unread(8u << 20);
    RUN_UNTIL(T.closes == 1);
    uint64_t took = uv_now(T.uv) - t0;
    cr_assert_geq(took, 190, "reset after %llu ms", (unsigned long long)took);
    cr_assert_lt(took, 2000, "reset after %llu ms", (unsigned long long)took);
    cr_assert_eq(T.pool.send_timeouts, 1);
    RUN_UNTIL(client_so_error(&T.cl) != 0);
    cr_assert_eq(T.cl.error, ECONNRESET, "got %s", strerror(T.cl.error));
}

/* A reader on its own thread that takes a little, pauses, takes a little: slow but steady. */
struct trickle {
    int fd;
    size_t want;
    size_t got;
    atomic_bool done;
};

static void *
trickle_main(void *arg)
{
    struct trickle *t = arg;
    char buf[32768];
    size_t since_pause = 0;
    /* uv_poll_init made the socket non-blocking; this reader blocks. */
    fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) & ~O_NONBLOCK);
    while (t->got < t->want) {
        ssize_t r = recv(t->fd, buf, sizeof(buf), 0);
        if (r <= 0)
            break;
        t->got += (size_t)r;
        since_pause += (size_t)r;
        if (since_pause >= 128 * 1024) {
            /* Pacing, not synchronisation: the reader must be slower than the writer. */
            struct timespec ts = {0, 25 * 1000 * 1000};
            nanosleep(&ts, NULL);
            since_pause = 0;
        }
    }
    atomic_store(&t->done, true);
    return NULL;
}

Test(conn, a_slow_reader_that_keeps_reading_is_not_reset, .init = setup_stall, .fini = teardown,
     .timeout = 30)
{
    /* At a few hundred KB/s the write in flight takes many send timeouts to complete: only
     * the progress seen in between keeps the connection. */
    size_t n = 6u << 20;
    queue_unread(n);
    struct trickle tr = {.fd = T.cl.fd, .want = n};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, trickle_main, &tr), 0);
    RUN_UNTIL(sl_conn_queued(T.conn) == 0 || T.closes > 0);
    pthread_join(th, NULL);
    cr_assert_eq(tr.got, n);
    cr_assert_eq(T.pool.send_timeouts, 0);
    cr_assert_eq(T.closes, 0);
}

/* --- the output cap ----------------------------------------------------------------------- */

#define CAP (64u * 1024)

static void
setup_cap(void)
{
    struct sl_conn_limits lim = {.send_timeout_ms = 0, .close_timeout_ms = 5000, .max_queued = CAP};
    setup_with(&lim);
}

Test(conn, reading_stops_above_the_output_cap_and_resumes_below_half, .init = setup_cap,
     .fini = teardown)
{
    /* Every byte read is answered with 4: a client that sends and never reads would make the
     * queue grow 4 times faster than it sends. */
    enum { AMP = 4 };
    T.amplify = AMP;
    size_t n = 4u << 20;
    T.cl.to_send = n;
    client_update(&T.cl);
    RUN_UNTIL(sl_conn_congested(T.conn));
    /* The kernel buffers fill up (the server reads again only as they absorb its output),
     * then the client is stuck: the server no longer reads what it sends. */
    for (int i = 0; i < 200; i++)
        uv_run(T.uv, UV_RUN_NOWAIT);
    cr_assert(sl_conn_congested(T.conn));
    cr_assert_gt(T.cl.to_send, 0, "the client could send everything: the server kept reading");
    cr_assert_lt(T.server_read, n / 2, "read %zu", T.server_read);
    /* The cap, plus what one read can add on top of it, and no more. */
    cr_assert_leq(T.max_seen_queued, CAP + AMP * SL_LOOP_RBUF_SIZE, "queued %zu",
                  T.max_seen_queued);

    /* The client reads: the queue drains, reading resumes, and every byte arrives. */
    T.cl.reading = true;
    client_update(&T.cl);
    RUN_UNTIL(T.cl.to_send == 0 && T.server_read == n && T.cl.got == AMP * n);
    cr_assert_not(sl_conn_congested(T.conn));
    cr_assert_geq(T.pool.read_pauses, 2, "paused again while the client pushed");
    cr_assert_leq(T.max_seen_queued, CAP + AMP * SL_LOOP_RBUF_SIZE, "queued %zu",
                  T.max_seen_queued);
    cr_assert_eq(T.cl.error, 0);
}

/* --- lazy writes ------------------------------------------------------------------------- */

static void
setup_lazy(void)
{
    struct sl_conn_limits lim = {.send_timeout_ms = 0, .close_timeout_ms = 5000, .max_queued = 0};
    setup_with(&lim);
}

static void
write_lazily(const char *s)
{
    sl_conn_lazy(T.conn, true);
    sl_conn_write(T.conn, s, strlen(s));
    sl_conn_lazy(T.conn, false);
}

/* The client reads from now on; what arrives is counted by read. */
static void
client_reads(void)
{
    T.cl.reading = true;
    client_update(&T.cl);
}

Test(conn, lazy_bytes_leave_with_the_next_write, .init = setup_lazy, .fini = teardown)
{
    client_reads();
    write_lazily("start;");
    for (int i = 0; i < 3; i++)
        uv_run(T.uv, UV_RUN_NOWAIT);
    cr_assert_eq(T.cl.got, 0, "the lazy bytes went alone");
    sl_conn_write(T.conn, "token", 5);
    RUN_UNTIL(T.cl.got >= 11);
    /* One write: both arrive in the first read. */
    cr_assert_eq(T.cl.reads, 1);
    cr_assert_eq(memcmp(T.cl.head, "start;token", 11), 0);
}

Test(conn, lazy_bytes_alone_leave_after_the_hold, .init = setup_lazy, .fini = teardown)
{
    client_reads();
    uv_update_time(T.uv);
    uint64_t t0 = uv_now(T.uv);
    write_lazily("start;");
    RUN_UNTIL(T.cl.got >= 6);
    uint64_t took = uv_now(T.uv) - t0;
    cr_assert_eq(T.cl.got, 6);
    cr_assert_geq(took, SL_CONN_HOLD_MS - 1, "left after %llu ms", (unsigned long long)took);
    cr_assert_lt(took, 1000);
}

Test(conn, nothing_waits_behind_ordinary_output, .init = setup_lazy, .fini = teardown)
{
    client_reads();
    uv_update_time(T.uv);
    uint64_t t0 = uv_now(T.uv);
    sl_conn_write(T.conn, "token;", 6);
    write_lazily("start");
    RUN_UNTIL(T.cl.got >= 11);
    cr_assert_lt(uv_now(T.uv) - t0, SL_CONN_HOLD_MS, "the lazy bytes were held");
    cr_assert_eq(memcmp(T.cl.head, "token;start", 11), 0);
}
