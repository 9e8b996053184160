#include "srvmetrics.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"

#define MAX_BODY (8u << 20) /* a /metrics larger than this is cut: the gauges come early */

const char *const lg_srvm_names[LG_SRVM__COUNT] = {
    [LG_SRVM_JOURNAL_BYTES] = "sluice_journal_bytes",
    [LG_SRVM_STREAMS_ACTIVE] = "sluice_streams_active",
    [LG_SRVM_DETACHED] = "sluice_sessions_detached",
    [LG_SRVM_RESUMES] = "sluice_resumes_total",
};

int
lg_srvm_parse(const char *text, size_t len, const char *name, double *out)
{
    size_t nl = strlen(name);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        size_t ll = (size_t)(eol - p);
        if (ll > nl + 1 && memcmp(p, name, nl) == 0 && (p[nl] == ' ' || p[nl] == '\t')) {
            char num[64];
            const char *v = p + nl;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = 0;
            while (v + vl < eol && v[vl] != ' ' && v[vl] != '\t' && v[vl] != '\r')
                vl++;
            if (vl == 0 || vl >= sizeof(num))
                return -1;
            memcpy(num, v, vl);
            num[vl] = '\0';
            char *e;
            errno = 0;
            double d = strtod(num, &e);
            if (*e != '\0' || errno != 0)
                return -1;
            *out = d;
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}

void
lg_srvm_from_text(struct lg_srvm_sample *s, const char *text, size_t len)
{
    s->ok = false;
    for (int i = 0; i < LG_SRVM__COUNT; i++) {
        if (lg_srvm_parse(text, len, lg_srvm_names[i], &s->v[i]) == 0)
            s->ok = true;
        else
            s->v[i] = -1;
    }
}

int
lg_srvm_target(const char *url, struct lg_srvm_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "not an http:// URL: %s", url);
        return -1;
    }
    const char *hp = url + 7;
    const char *slash = strchr(hp, '/');
    size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
    if (hl == 0 || hl >= sizeof(t->host)) {
        snprintf(err, errlen, "bad host in %s", url);
        return -1;
    }
    memcpy(t->host, hp, hl);
    snprintf(t->path, sizeof(t->path), "%s", slash ? slash : "/metrics");
    char host[300], port[16] = "80";
    const char *h = t->host;
    const char *colon;
    size_t nl;
    if (h[0] == '[') {
        const char *rb = strchr(h, ']');
        if (rb == NULL) {
            snprintf(err, errlen, "bad host in %s", url);
            return -1;
        }
        nl = (size_t)(rb - h - 1);
        memcpy(host, h + 1, nl);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(h, ':');
        nl = colon ? (size_t)(colon - h) : strlen(h);
        memcpy(host, h, nl);
    }
    host[nl] = '\0';
    if (colon)
        snprintf(port, sizeof(port), "%s", colon + 1);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "cannot resolve %s: %s", t->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for fd to be ready for `events` until the deadline: 0 if it is. */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, (int)(deadline - now));
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

void
lg_srvm_fetch(const struct lg_srvm_target *t, unsigned timeout_ms, struct lg_srvm_sample *s)
{
    s->ok = false;
    for (int i = 0; i < LG_SRVM__COUNT; i++)
        s->v[i] = -1;
    uint64_t deadline = now_ms() + timeout_ms;
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct sl_buf b = SL_BUF_INIT;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) != 0) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) != 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
            goto out;
    }
    char req[1024];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: sluice-loadgen\r\n\r\n", t->path,
                      t->host);
    if (rl < 0 || (size_t)rl >= sizeof(req))
        goto out;
    for (int off = 0; off < rl;) {
        ssize_t w = send(fd, req + off, (size_t)(rl - off), MSG_NOSIGNAL);
        if (w > 0) {
            off += (int)w;
        } else if (w < 0 && errno == EAGAIN) {
            if (wait_fd(fd, POLLOUT, deadline) != 0)
                goto out;
        } else if (w < 0 && errno != EINTR) {
            goto out;
        }
    }
    /* HTTP/1.0 without keep-alive: the body ends with the connection. */
    for (;;) {
        char chunk[16384];
        ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
        if (r > 0) {
            if (sl_buf_len(&b) < MAX_BODY)
                sl_buf_append(&b, chunk, (size_t)r);
        } else if (r == 0) {
            break;
        } else if (errno == EAGAIN) {
            if (wait_fd(fd, POLLIN, deadline) != 0)
                goto out;
        } else if (errno != EINTR) {
            goto out;
        }
    }
    const char *resp = sl_buf_ptr(&b);
    size_t len = sl_buf_len(&b);
    if (len < 12 || memcmp(resp, "HTTP/1.", 7) != 0 || memcmp(resp + 9, "200", 3) != 0)
        goto out;
    const char *body = memmem(resp, len, "\r\n\r\n", 4);
    if (body == NULL)
        goto out;
    body += 4;
    lg_srvm_from_text(s, body, len - (size_t)(body - resp));
out:
    sl_buf_free(&b);
    close(fd);
}
