#include "cluster/cluster.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/list.h"
#include "base/util.h"
#include "cluster/rconn.h"
#include "config/config.h"
#include "limits/limits.h"
#include "net/loop.h"
#include "obs/log.h"
#include "obs/metrics.h"

/* Entries asked for per XRANGE / XREAD round (each holds one flush of one stream). */
#define READ_COUNT 64
/* A remote reader stops fetching while its session has this much unread. */
#define READER_BACKLOG_CAP (256 * 1024)
/* How long one XREAD blocks before it is sent again (a changed set unblocks it sooner). */
#define TAIL_BLOCK_MS 2000
/* Heartbeat: every second; a worker unheard of for HEARTBEAT_TTL_MS is gone. */
#define HEARTBEAT_MS 1000
#define HEARTBEAT_TTL_MS 5000
/* Consecutive seconds an owner's heartbeat must be missing before its streams are given up
 * (a Redis restarted empty has no heartbeat until the owner reconnects). */
#define OWNER_MISSES 3
/* A running stream's place among its user's streams, refreshed every 10 s, lapses after 30. */
#define ADMIT_TTL_MS 30000
#define ADMIT_REFRESH_MS 10000

/* Server-side scripts: atomic on Redis, loaded on every (re)connect, called by EVALSHA. */
enum {
    SCRIPT_ADMIT,
    SCRIPT_REFRESH,
    SCRIPT_CANCEL,
    SCRIPT_TOKENS,
    SCRIPT_APPEND,
    SCRIPT_SPEND,
    SCRIPT_DEL_IF,
    SCRIPT__COUNT
};

static const char *const scripts[SCRIPT__COUNT] = {
    /*
     * KEYS[1]: the user's running streams (zset, score: when the place lapses); KEYS[2]: the
     * user's tokens per second of the last minute (hash); KEYS[3], KEYS[4]: what the user
     * spent today and this month (USD); KEYS[5]: its chats per second of the last minute.
     * ARGV: member, max streams, ttl_ms, tokens per minute, input tokens, USD per day, USD per
     * month, chats per minute (0: no such limit). 1: admitted, 0: too many streams, -1: too
     * many tokens, -2: the day's budget, -3: the month's, -4: too many chats. A chat counted
     * in the last minute is counted even if a later check refuses it (as a message is).
     * Redis's clock for the windows, not the nodes'.
     */
    "local t=redis.call('TIME') local now=t[1]*1000+math.floor(t[2]/1000) "
    "local max=tonumber(ARGV[2]) local tpm=tonumber(ARGV[4]) "
    "local bd=tonumber(ARGV[6]) local bm=tonumber(ARGV[7]) "
    "if bd>0 and tonumber(redis.call('GET',KEYS[3]) or '0')>=bd then return -2 end "
    "if bm>0 and tonumber(redis.call('GET',KEYS[4]) or '0')>=bm then return -3 end "
    "if max>0 then redis.call('ZREMRANGEBYSCORE',KEYS[1],'-inf',now) "
    "if redis.call('ZCARD',KEYS[1])>=max then return 0 end end "
    "local cpm=tonumber(ARGV[8]) if cpm>0 then local sec=tonumber(t[1]) local sum=0 "
    "local h=redis.call('HGETALL',KEYS[5]) "
    "for i=1,#h,2 do if tonumber(h[i])<=sec-60 then redis.call('HDEL',KEYS[5],h[i]) "
    "else sum=sum+tonumber(h[i+1]) end end "
    "if sum>=cpm then return -4 end "
    "redis.call('HINCRBY',KEYS[5],sec,1) redis.call('PEXPIRE',KEYS[5],61000) end "
    "if tpm>0 then local sec=tonumber(t[1]) local sum=0 "
    "local h=redis.call('HGETALL',KEYS[2]) "
    "for i=1,#h,2 do if tonumber(h[i])<=sec-60 then redis.call('HDEL',KEYS[2],h[i]) "
    "else sum=sum+tonumber(h[i+1]) end end "
    "if sum>0 and sum+tonumber(ARGV[5])>tpm then return -1 end "
    "redis.call('HINCRBY',KEYS[2],sec,ARGV[5]) redis.call('PEXPIRE',KEYS[2],61000) end "
    "if max>0 then redis.call('ZADD',KEYS[1],now+tonumber(ARGV[3]),ARGV[1]) "
    "redis.call('PEXPIRE',KEYS[1],ARGV[3]) end return 1",
    /* KEYS[1], ARGV: member, ttl_ms: keeps a running stream's place. */
    "local t=redis.call('TIME') local now=t[1]*1000+math.floor(t[2]/1000) "
    "redis.call('ZADD',KEYS[1],'XX',now+tonumber(ARGV[2]),ARGV[1]) "
    "redis.call('PEXPIRE',KEYS[1],ARGV[2]) return 1",
    /* KEYS[1]: the stream's metadata; ARGV[1]: the message. Sends it to the owner. */
    "local o=redis.call('HGET',KEYS[1],'o') if not o then return -1 end "
    "return redis.call('PUBLISH',o,ARGV[1])",
    /* KEYS[1]: the user's tokens per second; ARGV[1]: tokens a stream used beyond its input. */
    "local t=redis.call('TIME') redis.call('HINCRBY',KEYS[1],t[1],ARGV[1]) "
    "redis.call('PEXPIRE',KEYS[1],61000) return 1",
    /*
     * The new journal records of many streams in one call (one command per flush, not one
     * per stream). KEYS: journal and metadata key of each stream; ARGV: maxlen, ttl_ms,
     * then per stream: entry id, first seq, records, whether to refresh the expiry. Per
     * stream: 1 written, 0 already there (a resend), -1 refused.
     */
    "local out={} for i=1,#KEYS/2 do local a=2+4*(i-1) "
    "local r=redis.pcall('XADD',KEYS[2*i-1],'MAXLEN','~',ARGV[1],ARGV[a+1],'f',ARGV[a+2],"
    "'r',ARGV[a+3]) "
    "if type(r)=='table' and r.err then "
    "if string.find(r.err,'equal or smaller') then out[i]=0 else out[i]=-1 end "
    "else out[i]=1 end "
    "if ARGV[a+4]=='1' then redis.call('PEXPIRE',KEYS[2*i-1],ARGV[2]) "
    "redis.call('PEXPIRE',KEYS[2*i],ARGV[2]) end end return out",
    /* KEYS: the user's spend today and this month; ARGV: USD, their lifetimes in ms. */
    "redis.call('INCRBYFLOAT',KEYS[1],ARGV[1]) redis.call('PEXPIRE',KEYS[1],ARGV[2]) "
    "redis.call('INCRBYFLOAT',KEYS[2],ARGV[1]) redis.call('PEXPIRE',KEYS[2],ARGV[3]) return 1",
    /* Deletes KEYS[1] if it still holds ARGV[1]. */
    "if redis.call('GET',KEYS[1])==ARGV[1] then return redis.call('DEL',KEYS[1]) end return 0",
};

struct sl_cmirror {
    struct sl_list link;       /* cl->mirrors */
    struct sl_list dirty_link; /* cl->dirty while something is due */
    bool dirty;
    struct sl_cluster *cl;
    struct sl_stream *s; /* NULL once the stream is freed */
    char *jkey, *mkey, *ukey, *tkey, *member;
    char *user;
    char epoch[17];
    char *meta[7];         /* model, provider, agent, input tokens, prices, start: as written */
    struct sl_buf pending; /* records not yet sent */
    uint32_t pend_first, pend_last;
    struct sl_buf inflight; /* the XADD waiting for its reply */
    uint32_t inf_first, inf_last;
    unsigned refs;     /* replies outstanding */
    bool meta_written; /* since the last connect */
    bool ended;        /* the terminal record was appended */
    bool broken;       /* records were lost (cap): nothing more is written */
    bool no_journal;   /* resume.window 0: the journal is not written at all */
    bool admitting;
    bool admit_streams; /* the admission counted it among the user's streams */
    bool placed;        /* holds a place among the user's running streams */
    uint64_t expired_at, placed_at;
};

/* On the owner: the reader that hands a stream's records over to another node (via Redis). */
struct creader {
    struct sl_list link;
    struct sl_list dirty_link;
    bool dirty;
    struct sl_cluster *cl;
    struct sl_stream *s;
    char *from; /* the reading worker's channel */
    uint64_t tok;
};

struct sl_cstream {
    struct sl_list link; /* cl->readers */
    struct sl_cluster *cl;
    const struct sl_cstream_cb *cb;
    void *ud;
    uint64_t tok;
    char *user, *id, *jkey, *mkey;
    char epoch[32];
    char owner[200];
    char last_id[48]; /* the last entry read */
    char *model, *provider, *agent;
    struct sl_stream_info info;
    struct sl_journal mirror;
    unsigned refs;
    bool ready, ended, following, fetching, took, closed, owner_gone, cancel_due, live;
    bool want_fetch; /* fetch at the end of the turn (not inside the session's call) */
    unsigned misses; /* consecutive heartbeat checks that found its owner missing */
    bool gone;       /* the owner said it no longer has the stream */
};

/* A list question waiting for its answer. */
struct clist {
    struct sl_list link;
    struct sl_cluster *cl;
    uint64_t tok;
    sl_relay_listed_cb cb;
    void *ud;
    uint64_t deadline;
    char *user, *rid;
    bool asked;   /* the owner was found and asked */
    bool getting; /* the GET of the owner is outstanding (it holds l) */
};

struct sl_cluster {
    struct sl_cluster_env env;
    const struct sl_config *cfg;
    struct sl_loop *loop;
    char *node;
    char chan[200];
    char alive_key[220];
    struct sl_rconn *cmd, *sub, *tail;
    long long tail_client_id;
    bool tail_busy, tail_unblocking, tail_stale;
    uv_timer_t *tick;  /* heartbeat, places, owners */
    uv_timer_t *flush; /* the next mirror flush */
    uint64_t last_flush;
    uint64_t flush_ms;
    uint64_t ttl_ms;
    struct sl_list mirrors, dirty, creaders, cdirty, readers, lists;
    sl_relay_lister lister;
    void *lister_ud;
    char sha[SCRIPT__COUNT][41];
    uint64_t next_tok;
    uint64_t commands_seen;
    bool stopping;
};

static const struct sl_stream_reader creader_ops;
static void fetch(struct sl_cstream *r);
static void give_up(struct sl_cstream *r);
static void cs_unref(struct sl_cstream *r);
static void reader_fail(struct sl_cstream *r, const char *why);

/* --- helpers ---------------------------------------------------------------------------- */

/* Keys: a length-prefixed user, so that no (user, id) pair can name another's keys. */
static char *
key_of(const char *kind, const char *user, const char *id, const char *epoch)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b, "sluice:%s:%zu:%s", kind, strlen(user), user);
    if (id)
        sl_buf_printf(&b, ":%s", id);
    if (epoch)
        sl_buf_printf(&b, ":%s", epoch);
    const char *s = sl_buf_cstr(&b);
    char *out = sl_strdup(s);
    sl_buf_free(&b);
    return out;
}

static int
cmd(struct sl_cluster *cl, sl_rconn_reply_fn fn, void *ud, int argc, const char **argv,
    const size_t *lens)
{
    size_t l[24];
    if (lens == NULL) {
        for (int i = 0; i < argc && i < 24; i++)
            l[i] = strlen(argv[i]);
        lens = l;
    }
    return sl_rconn_cmd(cl->cmd, fn, ud, argc, argv, lens);
}

/* SHA-1 of a script, as EVALSHA names it (computed here: no round trip for SCRIPT LOAD's answer).
 */
static void
sha1_hex(const char *s, char out[41])
{
    /* A small SHA-1: the scripts are short and this runs once per worker. */
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t n = strlen(s);
    size_t total = ((n + 8) / 64 + 1) * 64;
    unsigned char *m = sl_calloc(1, total);
    memcpy(m, s, n);
    m[n] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) {
            uint32_t x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
            w[i] = x << 1 | x >> 31;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6;
            }
            uint32_t t = (a << 5 | a >> 27) + f + e + k + w[i];
            e = d;
            d = c;
            c = b << 30 | b >> 2;
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        snprintf(out + 8 * i, 9, "%08x", h[i]);
}

static void
publish(struct sl_cluster *cl, const char *chan, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (s == NULL)
        return;
    const char *argv[] = {"PUBLISH", chan, s};
    cmd(cl, NULL, NULL, 3, argv, NULL);
    free(s);
}

/* --- mirrors ---------------------------------------------------------------------------- */

static void
mark_dirty(struct sl_cmirror *m)
{
    if (!m->dirty) {
        m->dirty = true;
        sl_list_push_back(&m->cl->dirty, &m->dirty_link);
    }
}

static void
mirror_free(struct sl_cmirror *m)
{
    sl_list_unlink(&m->link);
    sl_list_unlink(&m->dirty_link);
    sl_buf_free(&m->pending);
    sl_buf_free(&m->inflight);
    free(m->jkey);
    free(m->mkey);
    free(m->ukey);
    free(m->tkey);
    free(m->user);
    free(m->member);
    for (int i = 0; i < 7; i++)
        free(m->meta[i]);
    free(m);
}

/* Frees a closed mirror once nothing of it is outstanding or due. */
static bool
mirror_settle(struct sl_cmirror *m)
{
    if (m->s != NULL || m->refs > 0)
        return true;
    bool due = !m->broken && sl_buf_len(&m->pending) > 0 && !m->cl->stopping;
    if (due || m->placed)
        return true;
    mirror_free(m);
    return false;
}

static void
unplace(struct sl_cmirror *m)
{
    if (!m->placed)
        return;
    const char *argv[] = {"ZREM", m->ukey, m->member};
    cmd(m->cl, NULL, NULL, 3, argv, NULL); /* Redis down: the place lapses by itself */
    m->placed = false;
}

/* The answer for one stream's batch: 1 written, 0 a repeat, -1 refused, -2 not run, -3 lost. */
static void
xadd_done(struct sl_cmirror *m, int res)
{
    m->refs--;
    if (res <= -2) {
        /* Lost with the connection, or not run: it goes again (a repeat is refused by id). */
        sl_buf_append(&m->inflight, sl_buf_ptr(&m->pending), sl_buf_len(&m->pending));
        if (sl_buf_len(&m->pending) == 0)
            m->pend_last = m->inf_last;
        m->pend_first = m->inf_first;
        struct sl_buf t = m->pending;
        m->pending = m->inflight;
        m->inflight = t;
        sl_buf_clear(&m->inflight);
    } else {
        if (res == -1 && !m->broken) {
            m->broken = true;
            sl_log_msg(SL_LOG_WARN, "cluster.mirror_failed", "stream journal %s: XADD refused",
                       m->jkey);
        }
        sl_buf_clear(&m->inflight);
    }
    if (sl_buf_len(&m->pending) > 0 && !m->broken)
        mark_dirty(m);
    mirror_settle(m);
}

/* One script call appends the new records of up to BATCH_MAX streams. */
#define BATCH_MAX 128

struct batch {
    struct sl_cluster *cl;
    unsigned n;
    struct sl_cmirror *m[BATCH_MAX];
};

static void
on_batch(void *ud, redisReply *r)
{
    struct batch *b = ud;
    if (r && r->type == REDIS_REPLY_ERROR) {
        /* NOSCRIPT (the script cache was flushed): load them again; the batch goes again. */
        sl_log_msg(SL_LOG_WARN, "cluster.script_failed", "%s", r->str);
        for (int i = 0; i < SCRIPT__COUNT; i++) {
            const char *argv[] = {"SCRIPT", "LOAD", scripts[i]};
            cmd(b->cl, NULL, NULL, 3, argv, NULL);
        }
    }
    for (unsigned i = 0; i < b->n; i++) {
        int res = r == NULL ? -3 : -2;
        if (r && r->type == REDIS_REPLY_ARRAY && i < r->elements &&
            r->element[i]->type == REDIS_REPLY_INTEGER)
            res = (int)r->element[i]->integer;
        xadd_done(b->m[i], res);
    }
    free(b);
}

static void
send_batch(struct sl_cluster *cl, struct batch *b, const bool *expire)
{
    size_t nk = 2 * (size_t)b->n;
    size_t argc = 3 + nk + 2 + 4 * (size_t)b->n;
    const char **argv = sl_malloc(argc * sizeof(*argv));
    size_t *lens = sl_malloc(argc * sizeof(*lens));
    char(*num)[24] = sl_malloc(nk * sizeof(*num));
    char nkeys[16], maxlen[16], ttl[24];
    snprintf(nkeys, sizeof(nkeys), "%zu", nk);
    snprintf(maxlen, sizeof(maxlen), "%u", cl->cfg->resume.max_events);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)cl->ttl_ms);
    size_t k = 0;
    argv[k++] = "EVALSHA";
    argv[k++] = cl->sha[SCRIPT_APPEND];
    argv[k++] = nkeys;
    for (unsigned i = 0; i < b->n; i++) {
        argv[k++] = b->m[i]->jkey;
        argv[k++] = b->m[i]->mkey;
    }
    argv[k++] = maxlen;
    argv[k++] = ttl;
    for (size_t i = 0; i < k; i++)
        lens[i] = strlen(argv[i]);
    for (unsigned i = 0; i < b->n; i++) {
        struct sl_cmirror *m = b->m[i];
        snprintf(num[2 * i], sizeof(num[0]), "%u-0", m->inf_last);
        snprintf(num[2 * i + 1], sizeof(num[0]), "%u", m->inf_first);
        argv[k] = num[2 * i];
        lens[k] = strlen(argv[k]);
        k++;
        argv[k] = num[2 * i + 1];
        lens[k] = strlen(argv[k]);
        k++;
        argv[k] = sl_buf_ptr(&m->inflight);
        lens[k] = sl_buf_len(&m->inflight);
        k++;
        argv[k] = expire[i] ? "1" : "0";
        lens[k] = 1;
        k++;
    }
    if (sl_rconn_cmd(cl->cmd, on_batch, b, (int)argc, argv, lens) != 0) {
        for (unsigned i = 0; i < b->n; i++)
            xadd_done(b->m[i], -2);
        free(b);
    }
    free(num);
    free(lens);
    free(argv);
}

static void
write_meta(struct sl_cmirror *m)
{
    struct sl_cluster *cl = m->cl;
    char ttl[24];
    /* Without resume (no journal kept), it only names the owner for a cancel: for as long as
     * a stream may run. */
    uint64_t stream_ms =
        cl->cfg->limits.stream_timeout_ms ? cl->cfg->limits.stream_timeout_ms : 3600000;
    snprintf(ttl, sizeof(ttl), "%llu",
             (unsigned long long)(m->no_journal ? stream_ms : cl->ttl_ms));
    const char *argv[] = {"HSET", m->mkey,    "e",  m->epoch,   "o",  cl->chan,   "mo", m->meta[0],
                          "pr",   m->meta[1], "ag", m->meta[2], "in", m->meta[3], "pi", m->meta[4],
                          "po",   m->meta[5], "st", m->meta[6]};
    cmd(cl, NULL, NULL, 18, argv, NULL);
    const char *ex[] = {"PEXPIRE", m->mkey, ttl};
    cmd(cl, NULL, NULL, 3, ex, NULL);
    m->meta_written = true;
}

/*
 * Readies a stream's new records for the batch being built: they move to its in-flight
 * buffer (one batch at a time per stream; what comes meanwhile waits for the next).
 * Returns whether it joins the batch; *expire: whether its keys' expiry is refreshed.
 */
static bool
mirror_ready(struct sl_cmirror *m, bool *expire)
{
    struct sl_cluster *cl = m->cl;
    if (!sl_rconn_up(cl->cmd))
        return false;
    if (!m->meta_written)
        write_meta(m);
    if (m->broken || sl_buf_len(&m->inflight) > 0 || sl_buf_len(&m->pending) == 0)
        return false;
    m->refs++;
    struct sl_buf t = m->inflight;
    m->inflight = m->pending;
    m->pending = t;
    m->inf_first = m->pend_first;
    m->inf_last = m->pend_last;
    uint64_t now = sl_loop_now(cl->loop);
    *expire = m->expired_at == 0 || now - m->expired_at >= cl->ttl_ms / 4 || m->ended;
    if (*expire)
        m->expired_at = now;
    return true;
}

struct sl_cmirror *
sl_cluster_mirror(struct sl_cluster *cl, struct sl_stream *s)
{
    if (cl == NULL || cl->stopping)
        return NULL;
    struct sl_cmirror *m = sl_calloc(1, sizeof(*m));
    m->cl = cl;
    m->s = s;
    /* resume.window 0: nothing to resume anywhere; the mirror serves admission and cancel. */
    m->no_journal = m->broken = cl->cfg->resume.window_ms == 0;
    snprintf(m->epoch, sizeof(m->epoch), "%s", sl_stream_epoch(s));
    m->jkey = key_of("j", sl_stream_user(s), sl_stream_id(s), m->epoch);
    m->mkey = key_of("m", sl_stream_user(s), sl_stream_id(s), NULL);
    m->ukey = key_of("u", sl_stream_user(s), NULL, NULL);
    m->tkey = key_of("t", sl_stream_user(s), NULL, NULL);
    m->user = sl_strdup(sl_stream_user(s));
    size_t n = strlen(cl->chan) + strlen(m->epoch) + 2;
    m->member = sl_malloc(n);
    snprintf(m->member, n, "%s/%s", cl->chan, m->epoch);
    /* What a resume elsewhere shows before any event: copied now, written with the first batch. */
    struct sl_stream_info info;
    sl_stream_info(s, &info);
    const char *model = sl_stream_model(s), *provider = sl_stream_provider(s);
    char num[4][40];
    snprintf(num[0], sizeof(num[0]), "%llu", (unsigned long long)info.input_tokens);
    snprintf(num[1], sizeof(num[1]), "%.17g", info.price_in_per_1m);
    snprintf(num[2], sizeof(num[2]), "%.17g", info.price_out_per_1m);
    snprintf(num[3], sizeof(num[3]), "%llu", (unsigned long long)info.started_ms);
    m->meta[0] = sl_strdup(model ? model : "");
    m->meta[1] = sl_strdup(provider ? provider : "");
    m->meta[2] = sl_strdup(info.agent ? info.agent : "");
    for (int i = 0; i < 4; i++)
        m->meta[3 + i] = sl_strdup(num[i]);
    sl_list_init(&m->dirty_link);
    sl_list_push_back(&cl->mirrors, &m->link);
    /* At once, not with the first batch: a cancel from another node finds its owner sooner. */
    if (sl_rconn_up(cl->cmd))
        write_meta(m);
    return m;
}

void
sl_cmirror_append(struct sl_cmirror *m, const void *rec, size_t size, bool terminal)
{
    if (m->broken)
        return;
    uint32_t seq;
    memcpy(&seq, (const char *)rec + 4, 4);
    /* Records wait here while Redis is away, up to the journal's own cap (twice, for the
     * batch in flight): past that the Redis copy has a gap and is given up. */
    uint64_t cap = 2 * m->cl->cfg->resume.max_bytes;
    if (sl_buf_len(&m->pending) + sl_buf_len(&m->inflight) + size > cap) {
        m->broken = true;
        sl_buf_clear(&m->pending);
        sl_log_msg(SL_LOG_WARN, "cluster.mirror_failed",
                   "stream journal %s: Redis unreachable for longer than its records fit "
                   "(resume.max_bytes); a resume on another node will find it incomplete",
                   m->jkey);
        return;
    }
    if (sl_buf_len(&m->pending) == 0)
        m->pend_first = seq;
    m->pend_last = seq;
    sl_buf_append(&m->pending, rec, size);
    if (terminal) {
        m->ended = true;
        unplace(m);
    }
    mark_dirty(m);
}

void
sl_cmirror_close(struct sl_cmirror *m)
{
    m->s = NULL;
    unplace(m);
    if (sl_buf_len(&m->pending) > 0)
        mark_dirty(m);
    mirror_settle(m);
}

static void
on_admit(void *ud, redisReply *r)
{
    struct sl_cmirror *m = ud;
    m->admitting = false;
    int verdict = 1;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        verdict = (int)r->integer;
        if (verdict == 1 && m->admit_streams) {
            m->placed = true;
            m->placed_at = sl_loop_now(m->cl->loop);
        }
    }
    /* Anything else (an error, Redis gone): the local limits alone decide. The stream may
     * end and be freed inside: m stays, held by this reply until the end. */
    if (m->s && !m->ended)
        sl_stream_admitted(m->s, verdict);
    if (m->ended || m->s == NULL)
        unplace(m);
    m->refs--;
    mirror_settle(m);
}

/* The keys of the identity's spend today and this month (UTC days and months). */
static void
spend_keys(const struct sl_cmirror *m, char **day, char **month)
{
    int64_t now = (int64_t)sl_wall_ms();
    char d[32], mo[32];
    snprintf(d, sizeof(d), "d%lld", (long long)sl_limits_day(now));
    snprintf(mo, sizeof(mo), "m%lld", (long long)sl_limits_month(now));
    *day = key_of("b", m->user, d, NULL);
    *month = key_of("b", m->user, mo, NULL);
}

bool
sl_cmirror_admit(struct sl_cmirror *m, const struct sl_cluster_limits *l, uint64_t input_tokens)
{
    struct sl_cluster *cl = m->cl;
    char max[16], ttl[16], tpm[16], in[24], bd[40], bm[40], cpm[16];
    snprintf(cpm, sizeof(cpm), "%u", l->chats_per_minute);
    snprintf(max, sizeof(max), "%u", l->max_streams);
    snprintf(ttl, sizeof(ttl), "%u", ADMIT_TTL_MS);
    snprintf(tpm, sizeof(tpm), "%u", l->tokens_per_minute);
    snprintf(in, sizeof(in), "%llu", (unsigned long long)input_tokens);
    snprintf(bd, sizeof(bd), "%.17g", l->usd_per_day > 0 ? l->usd_per_day : 0);
    snprintf(bm, sizeof(bm), "%.17g", l->usd_per_month > 0 ? l->usd_per_month : 0);
    char *day, *month;
    spend_keys(m, &day, &month);
    char *qkey = key_of("q", m->user, NULL, NULL);
    const char *argv[] = {"EVALSHA", cl->sha[SCRIPT_ADMIT],
                          "5",       m->ukey,
                          m->tkey,   day,
                          month,     qkey,
                          m->member, max,
                          ttl,       tpm,
                          in,        bd,
                          bm,        cpm};
    int rc = cmd(cl, on_admit, m, 16, argv, NULL);
    free(qkey);
    free(day);
    free(month);
    if (rc != 0)
        return false;
    m->admit_streams = l->max_streams > 0;
    m->refs++;
    m->admitting = true;
    return true;
}

void
sl_cmirror_spend(struct sl_cmirror *m, double usd)
{
    if (!(usd > 0) || usd > 1e12) /* NaN, nothing, or absurd */
        return;
    char amount[40];
    snprintf(amount, sizeof(amount), "%.17g", usd);
    char *day, *month;
    spend_keys(m, &day, &month);
    const char *argv[] = {
        "EVALSHA", m->cl->sha[SCRIPT_SPEND], "2", day, month, amount, "172800000", "2764800000"};
    cmd(m->cl, NULL, NULL, 8, argv, NULL); /* Redis down: counted on this node only */
    free(day);
    free(month);
}

void
sl_cmirror_tokens(struct sl_cmirror *m, uint64_t tokens)
{
    struct sl_cluster *cl = m->cl;
    if (tokens == 0)
        return;
    char n[24];
    snprintf(n, sizeof(n), "%llu", (unsigned long long)tokens);
    const char *argv[] = {"EVALSHA", cl->sha[SCRIPT_TOKENS], "1", m->tkey, n};
    cmd(cl, NULL, NULL, 5, argv, NULL); /* Redis down: these tokens count on this node only */
}

/* --- the owner's reader for another node ---------------------------------------------------- */

static void
creader_free(struct creader *cr)
{
    sl_list_unlink(&cr->link);
    sl_list_unlink(&cr->dirty_link);
    free(cr->from);
    free(cr);
}

static void
creader_dirty(struct creader *cr)
{
    if (!cr->dirty) {
        cr->dirty = true;
        sl_list_push_back(&cr->cl->cdirty, &cr->dirty_link);
    }
}

static void
cr_on_event(void *rd, struct sl_stream *s, const struct sl_event *ev, uint32_t tokens)
{
    (void)s;
    (void)ev;
    (void)tokens;
    creader_dirty(rd);
}

static void
tell(struct sl_cluster *cl, const char *chan, const char *op, uint64_t tok)
{
    json_t *msg = json_pack("{s:s,s:I}", "op", op, "tok", (json_int_t)tok);
    if (msg)
        publish(cl, chan, msg);
}

static void
cr_on_taken(void *rd, struct sl_stream *s)
{
    (void)s;
    struct creader *cr = rd;
    tell(cr->cl, cr->from, "taken", cr->tok);
    creader_free(cr);
}

static void
cr_on_finished(void *rd, struct sl_stream *s)
{
    (void)s;
    creader_free(rd);
}

static const struct sl_stream_reader creader_ops = {
    .on_event = cr_on_event,
    .on_taken = cr_on_taken,
    .on_finished = cr_on_finished,
};

/* The records are in the mirror: for the stream they are consumed. */
static void
creaders_flush(struct sl_cluster *cl)
{
    while (!sl_list_empty(&cl->cdirty)) {
        struct creader *cr = SL_CONTAINER_OF(cl->cdirty.next, struct creader, dirty_link);
        sl_list_unlink(&cr->dirty_link);
        cr->dirty = false;
        struct sl_jcursor cur;
        sl_journal_end(sl_stream_journal(cr->s), &cur);
        sl_stream_consumed(cr->s, &cur); /* may free the stream and cr */
    }
}

static struct creader *
creader_of(struct sl_cluster *cl, struct sl_stream *s)
{
    for (struct sl_list *l = cl->creaders.next; l != &cl->creaders; l = l->next) {
        struct creader *cr = SL_CONTAINER_OF(l, struct creader, link);
        if (cr->s == s)
            return cr;
    }
    return NULL;
}

/* --- sessions across nodes ------------------------------------------------------------------- */

#define MAX_LISTED 64

static void
clist_free(struct clist *l)
{
    sl_list_unlink(&l->link);
    free(l->user);
    free(l->rid);
    free(l);
}

/* Ends a list question: cb with the streams (n >= 0) or -1. */
static void
clist_done(struct clist *l, const struct sl_relay_entry *e, int n)
{
    sl_relay_listed_cb cb = l->cb;
    void *ud = l->ud;
    if (l->getting) {
        l->cb = NULL; /* freed when the GET's reply comes */
        l->deadline = 0;
    } else {
        clist_free(l);
    }
    if (cb)
        cb(ud, e, n);
}

static struct clist *
clist_find(struct sl_cluster *cl, uint64_t tok)
{
    for (struct sl_list *x = cl->lists.next; x != &cl->lists; x = x->next) {
        struct clist *l = SL_CONTAINER_OF(x, struct clist, link);
        if (l->tok == tok)
            return l;
    }
    return NULL;
}

/* The owner: the streams of its session sid, to the asking worker. */
static void
answer_list(struct sl_cluster *cl, const char *user, const char *sid, const char *from,
            uint64_t tok)
{
    struct sl_relay_entry e[MAX_LISTED];
    int n = cl->lister ? cl->lister(cl->lister_ud, user, sid, e, MAX_LISTED) : -1;
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("[s,s,I,I]", e[i].id, e[i].epoch,
                                             (json_int_t)e[i].after, (json_int_t)e[i].idx));
    json_t *msg =
        json_pack("{s:s,s:I,s:i,s:o}", "op", "listed", "tok", (json_int_t)tok, "n", n, "e", arr);
    if (msg)
        publish(cl, from, msg);
}

static void
on_listed(struct sl_cluster *cl, uint64_t tok, json_t *root)
{
    struct clist *l = clist_find(cl, tok);
    if (l == NULL)
        return; /* given up, or its session went */
    int n = (int)json_integer_value(json_object_get(root, "n"));
    json_t *arr = json_object_get(root, "e");
    struct sl_relay_entry e[MAX_LISTED];
    if (n < 0 || !json_is_array(arr)) {
        clist_done(l, e, -1);
        return;
    }
    int k = 0;
    for (size_t i = 0; i < json_array_size(arr) && k < MAX_LISTED; i++) {
        json_t *x = json_array_get(arr, i);
        const char *id = json_string_value(json_array_get(x, 0));
        const char *epoch = json_string_value(json_array_get(x, 1));
        if (id == NULL || epoch == NULL)
            continue;
        memset(&e[k], 0, sizeof(e[k]));
        snprintf(e[k].id, sizeof(e[k].id), "%s", id);
        snprintf(e[k].epoch, sizeof(e[k].epoch), "%s", epoch);
        e[k].after = (uint32_t)json_integer_value(json_array_get(x, 2));
        e[k].idx = (uint32_t)json_integer_value(json_array_get(x, 3));
        k++;
    }
    clist_done(l, e, k);
}

static void
on_owner_of_session(void *ud, redisReply *r)
{
    struct clist *l = ud;
    struct sl_cluster *cl = l->cl;
    l->getting = false;
    if (l->cb == NULL) { /* forgotten meanwhile */
        clist_free(l);
        return;
    }
    if (r == NULL || r->type != REDIS_REPLY_STRING || cl->stopping) {
        clist_done(l, NULL, -1);
        return;
    }
    json_t *msg = json_pack("{s:s,s:s,s:s,s:s,s:I}", "op", "list", "user", l->user, "sid", l->rid,
                            "from", cl->chan, "tok", (json_int_t)l->tok);
    if (msg)
        publish(cl, r->str, msg);
    l->asked = true;
}

/* --- conversations -----------------------------------------------------------------------------
 */

static char *
json_turn(const char *role, const char *text, size_t len)
{
    json_t *o = json_pack("{s:s,s:s%}", "role", role, "content", text ? text : "", text ? len : 0);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

void
sl_cluster_remember(struct sl_cluster *cl, const char *user, const char *conv, const char *question,
                    size_t qlen, const char *answer, size_t alen)
{
    if (cl == NULL || cl->stopping || !sl_rconn_up(cl->cmd))
        return;
    char *q = json_turn("user", question, qlen), *a = json_turn("assistant", answer, alen);
    char *key = key_of("c", user, conv, NULL);
    if (q && a) {
        char keep[16], ttl[24];
        snprintf(keep, sizeof(keep), "-%u", cl->cfg->ws_chat.memory.max_turns);
        snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)cl->cfg->ws_chat.memory.idle_ttl_ms);
        const char *push[] = {"RPUSH", key, q, a};
        cmd(cl, NULL, NULL, 4, push, NULL);
        const char *trim[] = {"LTRIM", key, keep, "-1"};
        cmd(cl, NULL, NULL, 4, trim, NULL);
        const char *ex[] = {"PEXPIRE", key, ttl};
        cmd(cl, NULL, NULL, 3, ex, NULL);
    }
    free(key);
    free(q);
    free(a);
}

struct chist {
    sl_cluster_history_cb cb; /* NULL once cancelled */
    void *ud;
};

static void
on_history(void *ud, redisReply *r)
{
    struct chist *h = ud;
    if (h->cb) {
        json_t *arr = NULL;
        if (r && r->type == REDIS_REPLY_ARRAY) {
            arr = json_array();
            for (size_t i = 0; i < r->elements; i++) {
                redisReply *e = r->element[i];
                json_t *m =
                    e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
                if (json_is_string(json_object_get(m, "role")) &&
                    json_is_string(json_object_get(m, "content")))
                    json_array_append_new(arr, m);
                else
                    json_decref(m);
            }
        }
        h->cb(h->ud, arr);
        json_decref(arr);
    }
    free(h);
}

void *
sl_cluster_history(struct sl_cluster *cl, const char *user, const char *conv,
                   sl_cluster_history_cb cb, void *ud)
{
    if (cl == NULL || cl->stopping || !sl_rconn_up(cl->cmd))
        return NULL;
    struct chist *h = sl_calloc(1, sizeof(*h));
    h->cb = cb;
    h->ud = ud;
    char *key = key_of("c", user, conv, NULL);
    const char *argv[] = {"LRANGE", key, "0", "-1"};
    int rc = cmd(cl, on_history, h, 4, argv, NULL);
    free(key);
    if (rc != 0) {
        free(h);
        return NULL;
    }
    return h;
}

void
sl_cluster_history_cancel(void *handle)
{
    struct chist *h = handle;
    if (h)
        h->cb = NULL; /* freed when its reply comes (NULL at the latest when Redis goes) */
}

void
sl_cluster_set_lister(struct sl_cluster *cl, sl_relay_lister fn, void *ud)
{
    if (cl == NULL)
        return;
    cl->lister = fn;
    cl->lister_ud = ud;
}

static char *
rid_key(const char *user, const char *rid)
{
    return key_of("r", user, rid, NULL);
}

void
sl_cluster_session_detached(struct sl_cluster *cl, const char *user, const char *rid)
{
    if (cl == NULL || cl->stopping || cl->cfg->resume.window_ms == 0)
        return;
    char *key = rid_key(user, rid);
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)cl->ttl_ms);
    const char *argv[] = {"SET", key, cl->chan, "PX", ttl};
    cmd(cl, NULL, NULL, 5, argv, NULL);
    free(key);
}

void
sl_cluster_session_gone(struct sl_cluster *cl, const char *user, const char *rid)
{
    if (cl == NULL || cl->stopping)
        return;
    /* Only if it still names this worker: a later detach elsewhere must not be erased. */
    char *key = rid_key(user, rid);
    const char *argv[] = {"EVALSHA", cl->sha[SCRIPT_DEL_IF], "1", key, cl->chan};
    cmd(cl, NULL, NULL, 5, argv, NULL);
    free(key);
}

uint64_t
sl_cluster_list(struct sl_cluster *cl, const char *user, const char *rid, sl_relay_listed_cb cb,
                void *ud)
{
    if (cl == NULL || cl->stopping || !sl_rconn_up(cl->cmd))
        return 0;
    struct clist *l = sl_calloc(1, sizeof(*l));
    l->cl = cl;
    l->tok = ++cl->next_tok;
    l->cb = cb;
    l->ud = ud;
    l->user = sl_strdup(user);
    l->rid = sl_strdup(rid);
    l->deadline =
        sl_loop_now(cl->loop) + (cl->cfg->redis.timeout_ms ? cl->cfg->redis.timeout_ms : 2000);
    char *key = rid_key(user, rid);
    const char *argv[] = {"GET", key};
    int rc = cmd(cl, on_owner_of_session, l, 2, argv, NULL);
    free(key);
    if (rc != 0) {
        free(l->user);
        free(l->rid);
        free(l);
        return 0;
    }
    l->getting = true;
    sl_list_push_back(&cl->lists, &l->link);
    return l->tok;
}

void
sl_cluster_cancel_list(struct sl_cluster *cl, uint64_t token)
{
    struct clist *l = cl ? clist_find(cl, token) : NULL;
    if (l == NULL)
        return;
    l->cb = NULL;
    l->ud = NULL;
    if (!l->getting)
        clist_free(l); /* else when the GET's reply comes */
}

static void
on_message(struct sl_cluster *cl, const char *data, size_t len)
{
    json_t *root = json_loadb(data, len, 0, NULL);
    if (root == NULL)
        return;
    const char *op = json_string_value(json_object_get(root, "op"));
    const char *user = json_string_value(json_object_get(root, "user"));
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *epoch = json_string_value(json_object_get(root, "epoch"));
    const char *from = json_string_value(json_object_get(root, "from"));
    uint64_t tok = (uint64_t)json_integer_value(json_object_get(root, "tok"));
    if (epoch && epoch[0] == '\0')
        epoch = NULL;
    if (op == NULL)
        goto out;
    if (strcmp(op, "taken") == 0 || strcmp(op, "gone") == 0) {
        for (struct sl_list *l = cl->readers.next; l != &cl->readers; l = l->next) {
            struct sl_cstream *r = SL_CONTAINER_OF(l, struct sl_cstream, link);
            if (r->tok != tok || r->closed)
                continue;
            if (op[0] == 't') {
                r->closed = true;
                r->cb->on_taken(r->ud, r);
                cs_unref(r);
            } else if (!r->ended) {
                /*
                 * The owner no longer has it: its last records may still be on their way
                 * to Redis. The tail is followed a little longer (on_tick), then NOT_FOUND.
                 */
                r->gone = true;
            }
            break;
        }
        goto out;
    }
    if (strcmp(op, "listed") == 0) {
        on_listed(cl, tok, root);
        goto out;
    }
    if (strcmp(op, "list") == 0) {
        const char *sid = json_string_value(json_object_get(root, "sid"));
        if (user && sid && from)
            answer_list(cl, user, sid, from, tok);
        goto out;
    }
    if (user == NULL || id == NULL)
        goto out;
    struct sl_stream *s = sl_streams_find(cl->env.streams, user, id, epoch);
    if (strcmp(op, "take") == 0) {
        if (from == NULL)
            goto out;
        if (s == NULL) {
            tell(cl, from, "gone", tok);
            goto out;
        }
        struct creader *cr = sl_calloc(1, sizeof(*cr));
        cr->cl = cl;
        cr->s = s;
        cr->from = sl_strdup(from);
        cr->tok = tok;
        sl_list_init(&cr->dirty_link);
        sl_list_push_back(&cl->creaders, &cr->link);
        /* The previous reader (the session here, or another node's) is told it lost it. */
        sl_stream_attach(s, &creader_ops, cr, true);
        creader_dirty(cr);
        struct sl_logrec r;
        if (sl_log_begin(&r, SL_LOG_INFO, "cluster.handover")) {
            sl_log_uint(&r, "worker", cl->env.worker);
            sl_log_str(&r, "stream", id);
            sl_log_str(&r, "to", from);
            sl_log_end(&r);
        }
    } else if (strcmp(op, "cancel") == 0) {
        if (s)
            sl_stream_cancel(s, "client");
    } else if (strcmp(op, "release") == 0) {
        struct creader *cr = s ? creader_of(cl, s) : NULL;
        if (cr && cr->tok == tok && from && strcmp(cr->from, from) == 0) {
            creader_free(cr);
            sl_stream_release(s);
        }
    }
out:
    json_decref(root);
}

static void
on_sub(void *ud, redisReply *r)
{
    struct sl_cluster *cl = ud;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return;
    redisReply *kind = r->element[0], *data = r->element[2];
    if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "message") == 0 &&
        data->type == REDIS_REPLY_STRING && !cl->stopping)
        on_message(cl, data->str, data->len);
}

/* --- remote readers ------------------------------------------------------------------------ */

static void
cs_free(struct sl_cstream *r)
{
    sl_list_unlink(&r->link);
    sl_journal_cleanup(&r->mirror);
    free(r->user);
    free(r->id);
    free(r->jkey);
    free(r->mkey);
    free(r->model);
    free(r->provider);
    free(r->agent);
    free(r);
}

static void
cs_unref(struct sl_cstream *r)
{
    if (r->closed && r->refs == 0)
        cs_free(r);
}

static void
reader_fail(struct sl_cstream *r, const char *why)
{
    if (r->closed)
        return;
    r->closed = true;
    r->following = false;
    r->cb->on_failed(r->ud, r, why);
    cs_unref(r);
}

static const char *
field(redisReply *arr, const char *name, size_t *len)
{
    for (size_t i = 0; i + 1 < arr->elements; i += 2) {
        redisReply *k = arr->element[i], *v = arr->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0 &&
            v->type == REDIS_REPLY_STRING) {
            if (len)
                *len = v->len;
            return v->str;
        }
    }
    return NULL;
}

/* Entries [[id, [f, first, r, records]], ...] into the mirror. Returns false if r failed. */
static bool
feed(struct sl_cstream *r, redisReply *entries)
{
    bool any = false;
    for (size_t i = 0; i < entries->elements && !r->closed; i++) {
        redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        size_t blen = 0;
        const char *first = field(e->element[1], "f", NULL);
        const char *blob = field(e->element[1], "r", &blen);
        if (first == NULL || blob == NULL)
            continue;
        snprintf(r->last_id, sizeof(r->last_id), "%s", e->element[0]->str);
        uint32_t f = (uint32_t)strtoul(first, NULL, 10);
        if (f > r->mirror.last + 1) {
            reader_fail(r, "the events after this seq are no longer kept");
            return false;
        }
        for (size_t off = 0; off + 16 <= blen;) {
            const char *rec = blob + off;
            size_t size = sl_journal_record_size(rec);
            uint32_t seq;
            memcpy(&seq, rec + 4, 4);
            if (size < 16 || size > blen - off)
                break;
            off += size;
            if (seq <= r->mirror.last || r->ended)
                continue;
            if (seq != r->mirror.last + 1) {
                reader_fail(r, "the events after this seq are no longer kept");
                return false;
            }
            sl_journal_append_raw(&r->mirror, rec, size);
            enum sl_event_type t = sl_journal_record_type(rec);
            if (t == SL_EV_DONE || t == SL_EV_ERROR || t == SL_EV_CANCELLED)
                r->ended = true;
            any = true;
        }
    }
    if (any && !r->closed)
        r->cb->on_records(r->ud, r);
    return !r->closed;
}

static void
tail_wake(struct sl_cluster *cl)
{
    cl->tail_stale = true;
    if (!cl->tail_busy || cl->tail_unblocking || cl->tail_client_id <= 0)
        return;
    char id[24];
    snprintf(id, sizeof(id), "%lld", cl->tail_client_id);
    const char *argv[] = {"CLIENT", "UNBLOCK", id};
    if (cmd(cl, NULL, NULL, 3, argv, NULL) == 0)
        cl->tail_unblocking = true;
}

static void
on_take_sent_body(struct sl_cstream *r, redisReply *rep)
{
    if (!r->closed && rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0) {
        /*
         * Nobody listens on the owner's channel: its node is gone, or only its subscriber
         * is reconnecting (Redis restarted). The heartbeat tells (on_tick): meanwhile the
         * tail is followed and the hand-over asked again every second.
         */
        r->took = false;
    }
}

static void
on_take_sent(void *ud, redisReply *rep)
{
    struct sl_cstream *r = ud;
    on_take_sent_body(r, rep); /* holds its reference until it returns */
    r->refs--;
    cs_unref(r);
}

static void
send_take(struct sl_cstream *r)
{
    struct sl_cluster *cl = r->cl;
    json_t *msg = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "op", "take", "user", r->user, "id", r->id,
                            "epoch", r->epoch, "from", cl->chan, "tok", (json_int_t)r->tok);
    char *s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (s == NULL)
        return;
    const char *argv[] = {"PUBLISH", r->owner, s};
    if (cmd(cl, on_take_sent, r, 3, argv, NULL) == 0)
        r->refs++;
    free(s);
    r->took = true;
    if (r->cancel_due) {
        r->cancel_due = false;
        sl_cstream_cancel(r);
    }
}

static void
on_range_body(struct sl_cstream *r, redisReply *rep)
{
    r->fetching = false;
    if (r->closed) {
        return;
    }
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        reader_fail(r, "the cluster's store is unreachable");
        return;
    }
    if (!feed(r, rep)) {
        return;
    }
    if (r->ended) {
        r->following = false;
        return;
    }
    if (rep->elements == READ_COUNT) {
        fetch(r);
    } else if (r->owner_gone) {
        reader_fail(r, "the stream's node is gone; the events it wrote were delivered");
    } else {
        if (!r->took)
            send_take(r);
        if (!r->following) {
            r->following = true;
            tail_wake(r->cl);
        }
    }
}

static void
on_range(void *ud, redisReply *rep)
{
    struct sl_cstream *r = ud;
    on_range_body(r, rep); /* holds its reference until it returns */
    r->refs--;
    cs_unref(r);
}

/* The entries after the last one read (replay, catching up, the last read of a node gone). */
static void
fetch(struct sl_cstream *r)
{
    if (r->fetching || r->closed)
        return;
    if (r->mirror.backlog >= READER_BACKLOG_CAP)
        return; /* again once the session has consumed (sl_cstream_consumed) */
    char start[56], count[8];
    snprintf(start, sizeof(start), "(%s", r->last_id);
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    const char *argv[] = {"XRANGE", r->jkey, start, "+", "COUNT", count};
    if (cmd(r->cl, on_range, r, 6, argv, NULL) != 0) {
        reader_fail(r, "the cluster's store is unreachable");
        return;
    }
    r->fetching = true;
    r->refs++;
}

static void
on_meta_body(struct sl_cstream *r, redisReply *rep)
{
    if (r->closed) {
        return;
    }
    const char *e = rep && rep->type == REDIS_REPLY_ARRAY ? field(rep, "e", NULL) : NULL;
    const char *o = e ? field(rep, "o", NULL) : NULL;
    if (e == NULL || o == NULL || (r->epoch[0] && strcmp(r->epoch, e) != 0)) {
        reader_fail(r, rep == NULL ? "the cluster's store is unreachable"
                                   : "nothing to resume for this id (unknown, expired or "
                                     "another epoch)");
        return;
    }
    snprintf(r->epoch, sizeof(r->epoch), "%s", e);
    snprintf(r->owner, sizeof(r->owner), "%s", o);
    const char *mo = field(rep, "mo", NULL), *pr = field(rep, "pr", NULL),
               *ag = field(rep, "ag", NULL), *in = field(rep, "in", NULL),
               *pi = field(rep, "pi", NULL), *po = field(rep, "po", NULL),
               *st = field(rep, "st", NULL);
    r->model = sl_strdup(mo ? mo : "");
    r->provider = sl_strdup(pr ? pr : "");
    r->agent = ag && ag[0] ? sl_strdup(ag) : NULL;
    r->info.agent = r->agent;
    r->info.input_tokens = in ? strtoull(in, NULL, 10) : 0;
    r->info.price_in_per_1m = pi ? strtod(pi, NULL) : 0;
    r->info.price_out_per_1m = po ? strtod(po, NULL) : 0;
    r->info.started_ms = st ? strtoull(st, NULL, 10) : 0;
    r->jkey = key_of("j", r->user, r->id, r->epoch);
    r->ready = true;
    r->cb->on_ready(r->ud, r);
    if (!r->closed)
        fetch(r);
}

static void
on_meta(void *ud, redisReply *rep)
{
    struct sl_cstream *r = ud;
    on_meta_body(r, rep); /* holds its reference until it returns */
    r->refs--;
    cs_unref(r);
}

struct sl_cstream *
sl_cluster_resume(struct sl_cluster *cl, const char *user, const char *id, const char *epoch,
                  uint32_t after, bool live, const struct sl_cstream_cb *cb, void *ud)
{
    if (cl == NULL || cl->stopping || !sl_rconn_up(cl->cmd))
        return NULL;
    struct sl_cstream *r = sl_calloc(1, sizeof(*r));
    r->cl = cl;
    r->cb = cb;
    r->ud = ud;
    r->live = live;
    r->tok = ++cl->next_tok;
    r->user = sl_strdup(user);
    r->id = sl_strdup(id);
    snprintf(r->epoch, sizeof(r->epoch), "%s", epoch ? epoch : "");
    snprintf(r->last_id, sizeof(r->last_id), "%u-0", after);
    r->mkey = key_of("m", user, id, NULL);
    sl_journal_init(&r->mirror, NULL, UINT32_MAX, UINT64_MAX, false);
    r->mirror.last = r->mirror.acked = after;
    sl_list_push_back(&cl->readers, &r->link);
    const char *argv[] = {"HGETALL", r->mkey};
    if (cmd(cl, on_meta, r, 2, argv, NULL) != 0) {
        cs_free(r);
        return NULL;
    }
    r->refs++;
    return r;
}

const char *
sl_cstream_id(const struct sl_cstream *r)
{
    return r->id;
}

const char *
sl_cstream_epoch(const struct sl_cstream *r)
{
    return r->ready ? r->epoch : NULL;
}

const char *
sl_cstream_model(const struct sl_cstream *r)
{
    return r->model;
}

const char *
sl_cstream_provider(const struct sl_cstream *r)
{
    return r->provider;
}

void
sl_cstream_info(const struct sl_cstream *r, struct sl_stream_info *out)
{
    *out = r->info;
}

bool
sl_cstream_ended(const struct sl_cstream *r)
{
    return r->ended;
}

struct sl_journal *
sl_cstream_journal(struct sl_cstream *r)
{
    return &r->mirror;
}

bool
sl_cstream_consumed(struct sl_cstream *r, struct sl_jcursor *cur)
{
    bool was_full = r->mirror.backlog >= READER_BACKLOG_CAP;
    sl_journal_ack(&r->mirror, cur);
    if (r->ended && r->mirror.acked == r->mirror.last) {
        r->closed = true;
        r->cb->on_finished(r->ud, r);
        cs_unref(r);
        return false;
    }
    if (was_full && r->mirror.backlog < READER_BACKLOG_CAP) {
        if (r->following) {
            tail_wake(r->cl);
        } else if (r->ready) {
            r->want_fetch = true;
            r->cl->tail_stale = true;
        }
    }
    return true;
}

static void
send_op(struct sl_cstream *r, const char *op)
{
    json_t *msg = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "op", op, "user", r->user, "id", r->id,
                            "epoch", r->epoch, "from", r->cl->chan, "tok", (json_int_t)r->tok);
    if (msg)
        publish(r->cl, r->owner, msg);
}

void
sl_cstream_cancel(struct sl_cstream *r)
{
    if (!r->ready) {
        r->cancel_due = true; /* sent once the owner is known */
        return;
    }
    send_op(r, "cancel");
}

void
sl_cstream_set_live(struct sl_cstream *r, bool live)
{
    /* The owner hands every record to Redis at once: its provider never waits for this reader. */
    r->live = live;
}

void
sl_cstream_release(struct sl_cstream *r)
{
    if (r->took && !r->ended && !r->cl->stopping)
        send_op(r, "release");
    r->closed = true;
    r->following = false;
    cs_unref(r);
}

bool
sl_cluster_cancel(struct sl_cluster *cl, const char *user, const char *id)
{
    if (cl == NULL || cl->stopping || !sl_rconn_up(cl->cmd))
        return false;
    json_t *msg =
        json_pack("{s:s,s:s,s:s,s:s}", "op", "cancel", "user", user, "id", id, "from", cl->chan);
    char *s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (s == NULL)
        return false;
    char *mkey = key_of("m", user, id, NULL);
    const char *argv[] = {"EVALSHA", cl->sha[SCRIPT_CANCEL], "1", mkey, s};
    int rc = cmd(cl, NULL, NULL, 5, argv, NULL);
    free(mkey);
    free(s);
    return rc == 0;
}

/* --- the tail: XREAD BLOCK over every followed stream --------------------------------------- */

static void tail_issue(struct sl_cluster *cl);

static void
on_tail(void *ud, redisReply *rep)
{
    struct sl_cluster *cl = ud;
    cl->tail_busy = false;
    cl->tail_unblocking = false;
    if (rep == NULL || cl->stopping)
        return;
    if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < rep->elements; i++) {
            redisReply *kv = rep->element[i];
            if (kv->type != REDIS_REPLY_ARRAY || kv->elements != 2 ||
                kv->element[0]->type != REDIS_REPLY_STRING ||
                kv->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            struct sl_list *l = cl->readers.next;
            while (l != &cl->readers) {
                struct sl_cstream *r = SL_CONTAINER_OF(l, struct sl_cstream, link);
                r->refs++; /* the callbacks may close it; it stays until we move on */
                if (r->following && !r->closed && r->jkey &&
                    strcmp(r->jkey, kv->element[0]->str) == 0) {
                    feed(r, kv->element[1]);
                    if (r->ended)
                        r->following = false;
                }
                l = l->next;
                r->refs--;
                cs_unref(r);
            }
        }
    }
    tail_issue(cl);
}

static void
tail_issue(struct sl_cluster *cl)
{
    if (cl->tail_busy || cl->stopping || !sl_rconn_up(cl->tail))
        return;
    const char **argv = NULL;
    size_t n = 0, cap = 0;
    unsigned nkeys = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (struct sl_list *l = cl->readers.next; l != &cl->readers; l = l->next) {
            struct sl_cstream *r = SL_CONTAINER_OF(l, struct sl_cstream, link);
            if (!r->following || r->closed || r->mirror.backlog >= READER_BACKLOG_CAP)
                continue;
            if (pass == 0)
                nkeys++;
            else
                argv[n++] = r->jkey;
        }
        if (pass == 0) {
            if (nkeys == 0)
                return;
            cap = 7 + 2 * (size_t)nkeys;
            argv = sl_malloc(cap * sizeof(*argv));
            argv[n++] = "XREAD";
            argv[n++] = "COUNT";
            argv[n++] = "64";
            argv[n++] = "BLOCK";
            argv[n++] = "2000";
            argv[n++] = "STREAMS";
        }
    }
    for (struct sl_list *l = cl->readers.next; l != &cl->readers; l = l->next) {
        struct sl_cstream *r = SL_CONTAINER_OF(l, struct sl_cstream, link);
        if (!r->following || r->closed || r->mirror.backlog >= READER_BACKLOG_CAP)
            continue;
        argv[n++] = r->last_id;
    }
    size_t *lens = sl_malloc(n * sizeof(*lens));
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    if (sl_rconn_cmd(cl->tail, on_tail, cl, (int)n, argv, lens) == 0) {
        cl->tail_busy = true;
        cl->tail_stale = false;
    }
    free(lens);
    free(argv);
}

static void
on_client_id(void *ud, redisReply *r)
{
    struct sl_cluster *cl = ud;
    if (r && r->type == REDIS_REPLY_INTEGER)
        cl->tail_client_id = r->integer;
}

static void
tail_up(void *ud)
{
    struct sl_cluster *cl = ud;
    const char *argv[] = {"CLIENT", "ID"};
    size_t lens[] = {6, 2};
    sl_rconn_cmd(cl->tail, on_client_id, cl, 2, argv, lens);
    tail_issue(cl);
}

static void
tail_down(void *ud)
{
    struct sl_cluster *cl = ud;
    cl->tail_client_id = 0;
}

/* --- connections, heartbeat ------------------------------------------------------------------- */

static void
heartbeat(struct sl_cluster *cl)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", HEARTBEAT_TTL_MS);
    const char *argv[] = {"SET", cl->alive_key, "1", "PX", ttl};
    cmd(cl, NULL, NULL, 5, argv, NULL);
}

static void
cmd_up(void *ud)
{
    struct sl_cluster *cl = ud;
    heartbeat(cl); /* at once: a Redis restarted empty must not make this node look gone */
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", scripts[i]};
        cmd(cl, NULL, NULL, 3, argv, NULL);
    }
    /* A restarted Redis may have lost everything: the metadata of running streams and
     * whatever is pending goes again. */
    for (struct sl_list *l = cl->mirrors.next; l != &cl->mirrors; l = l->next) {
        struct sl_cmirror *m = SL_CONTAINER_OF(l, struct sl_cmirror, link);
        m->meta_written = false;
        m->expired_at = 0;
        if (m->s)
            mark_dirty(m);
    }
    sl_gauge_set(&cl->env.metrics->redis_up, 1);
}

static void
cmd_down(void *ud)
{
    struct sl_cluster *cl = ud;
    sl_gauge_set(&cl->env.metrics->redis_up, 0);
    /* Streams read from Redis cannot go on (a Redis back empty would leave them waiting). */
    struct sl_list *l = cl->readers.next;
    while (l != &cl->readers) {
        struct sl_cstream *r = SL_CONTAINER_OF(l, struct sl_cstream, link);
        r->refs++;
        if (!r->ended) /* else everything is in its mirror already */
            reader_fail(r, "the cluster's store is unreachable");
        l = l->next;
        r->refs--;
        cs_unref(r);
    }
}

static void
sub_up(void *ud)
{
    struct sl_cluster *cl = ud;
    const char *argv[] = {"SUBSCRIBE", cl->chan};
    size_t lens[] = {9, strlen(cl->chan)};
    sl_rconn_cmd(cl->sub, on_sub, cl, 2, argv, lens);
}

/* The owner is gone: what Redis has is read, then NOT_FOUND (on_range). */
static void
give_up(struct sl_cstream *r)
{
    r->owner_gone = true;
    r->following = false;
    fetch(r);
}

static void
on_alive_body(struct sl_cstream *r, redisReply *rep)
{
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        r->misses = rep->integer == 0 ? r->misses + 1 : 0;
    if (!r->closed && r->misses >= OWNER_MISSES && !r->ended)
        give_up(r);
}

static void
on_alive(void *ud, redisReply *rep)
{
    struct sl_cstream *r = ud;
    on_alive_body(r, rep); /* holds its reference until it returns */
    r->refs--;
    cs_unref(r);
}

static void
on_tick(uv_timer_t *t)
{
    struct sl_cluster *cl = t->data;
    if (cl->stopping)
        return;
    sl_rconn_check(cl->cmd);
    sl_rconn_check(cl->sub);
    sl_rconn_check(cl->tail);
    if (!sl_rconn_up(cl->cmd))
        return;
    heartbeat(cl);
    uint64_t now = sl_loop_now(cl->loop);
    /* List questions unanswered in time (the owner died after its session was found). */
    for (struct sl_list *x = cl->lists.next, *next; x != &cl->lists; x = next) {
        next = x->next;
        struct clist *l = SL_CONTAINER_OF(x, struct clist, link);
        if (l->cb && l->deadline && now >= l->deadline && !l->getting)
            clist_done(l, NULL, -1);
    }
    char attl[16];
    snprintf(attl, sizeof(attl), "%d", ADMIT_TTL_MS);
    for (struct sl_list *l = cl->mirrors.next; l != &cl->mirrors; l = l->next) {
        struct sl_cmirror *m = SL_CONTAINER_OF(l, struct sl_cmirror, link);
        if (m->placed && now - m->placed_at >= ADMIT_REFRESH_MS) {
            m->placed_at = now;
            const char *a[] = {"EVALSHA", cl->sha[SCRIPT_REFRESH], "1", m->ukey, m->member, attl};
            cmd(cl, NULL, NULL, 6, a, NULL);
        }
    }
    /* Followed streams: is their owner still there? (A node killed says nothing.) */
    for (struct sl_list *l = cl->readers.next; l != &cl->readers; l = l->next) {
        struct sl_cstream *r = SL_CONTAINER_OF(l, struct sl_cstream, link);
        if (!r->following || r->closed)
            continue;
        if (r->gone) {
            if (++r->misses >= 2)
                give_up(r);
            continue;
        }
        if (!r->took)
            send_take(r);
        char key[240];
        snprintf(key, sizeof(key), "sluice:alive:%s", r->owner);
        const char *a[] = {"EXISTS", key};
        if (cmd(cl, on_alive, r, 2, a, NULL) == 0)
            r->refs++;
    }
}

static void
on_flush_timer(uv_timer_t *t)
{
    sl_cluster_flush(t->data);
}

static void
close_free(uv_handle_t *h)
{
    free(h);
}

struct sl_cluster *
sl_cluster_new(const struct sl_cluster_env *env)
{
    const struct sl_config *cfg = env->cfg;
    if (cfg->redis.url == NULL)
        return NULL;
    struct sl_cluster *cl = sl_calloc(1, sizeof(*cl));
    cl->env = *env;
    cl->cfg = cfg;
    cl->loop = env->loop;
    cl->node = sl_strdup(env->node);
    cl->env.node = cl->node;
    snprintf(cl->chan, sizeof(cl->chan), "sluice:w:%s:%u", cl->node, env->worker);
    snprintf(cl->alive_key, sizeof(cl->alive_key), "sluice:alive:%s", cl->chan);
    cl->flush_ms = cfg->redis.flush_interval_ms;
    cl->ttl_ms = cfg->resume.window_ms > 1000 ? cfg->resume.window_ms : 1000;
    sl_list_init(&cl->mirrors);
    sl_list_init(&cl->dirty);
    sl_list_init(&cl->creaders);
    sl_list_init(&cl->cdirty);
    sl_list_init(&cl->readers);
    sl_list_init(&cl->lists);
    for (int i = 0; i < SCRIPT__COUNT; i++)
        sha1_hex(scripts[i], cl->sha[i]);
    struct sl_rconn_opts o = {.url = cfg->redis.url,
                              .name = "commands",
                              .worker = env->worker,
                              .timeout_ms = cfg->redis.timeout_ms,
                              .on_up = cmd_up,
                              .on_down = cmd_down,
                              .ud = cl};
    cl->cmd = sl_rconn_new(cl->loop, &o);
    o.name = "subscriber";
    o.on_up = sub_up;
    o.on_down = NULL;
    o.quiet = true;
    cl->sub = sl_rconn_new(cl->loop, &o);
    o.name = "tail";
    o.on_up = tail_up;
    o.on_down = tail_down;
    cl->tail = sl_rconn_new(cl->loop, &o);
    uv_loop_t *uv = sl_loop_uv(cl->loop);
    cl->tick = sl_malloc(sizeof(*cl->tick));
    uv_timer_init(uv, cl->tick);
    cl->tick->data = cl;
    uv_timer_start(cl->tick, on_tick, HEARTBEAT_MS, HEARTBEAT_MS);
    uv_unref((uv_handle_t *)cl->tick);
    cl->flush = sl_malloc(sizeof(*cl->flush));
    uv_timer_init(uv, cl->flush);
    cl->flush->data = cl;
    uv_unref((uv_handle_t *)cl->flush);
    return cl;
}

static void
count_commands(struct sl_cluster *cl)
{
    uint64_t n =
        sl_rconn_commands(cl->cmd) + sl_rconn_commands(cl->sub) + sl_rconn_commands(cl->tail);
    if (n != cl->commands_seen) {
        sl_counter_add(&cl->env.metrics->redis_commands_total, n - cl->commands_seen);
        cl->commands_seen = n;
    }
}

void
sl_cluster_flush(struct sl_cluster *cl)
{
    if (cl == NULL || cl->stopping)
        return;
    creaders_flush(cl);
    if (!sl_list_empty(&cl->dirty) && sl_rconn_up(cl->cmd)) {
        uint64_t now = sl_loop_now(cl->loop);
        if (cl->flush_ms > 0 && now - cl->last_flush < cl->flush_ms) {
            if (!uv_is_active((uv_handle_t *)cl->flush))
                uv_timer_start(cl->flush, on_flush_timer, cl->flush_ms - (now - cl->last_flush), 0);
        } else {
            cl->last_flush = now;
            /* Every stream with new records, in script calls of BATCH_MAX streams. */
            struct batch *b = NULL;
            bool expire[BATCH_MAX];
            while (!sl_list_empty(&cl->dirty)) {
                struct sl_cmirror *m =
                    SL_CONTAINER_OF(cl->dirty.next, struct sl_cmirror, dirty_link);
                sl_list_unlink(&m->dirty_link);
                m->dirty = false;
                if (b == NULL) {
                    b = sl_calloc(1, sizeof(*b));
                    b->cl = cl;
                }
                if (mirror_ready(m, &expire[b->n]))
                    b->m[b->n++] = m;
                else
                    mirror_settle(m);
                if (b->n == BATCH_MAX) {
                    send_batch(cl, b, expire);
                    b = NULL;
                }
            }
            if (b && b->n > 0)
                send_batch(cl, b, expire);
            else
                free(b);
        }
    }
    if (cl->tail_stale) {
        struct sl_list *l = cl->readers.next;
        while (l != &cl->readers) {
            struct sl_cstream *r = SL_CONTAINER_OF(l, struct sl_cstream, link);
            r->refs++;
            if (r->want_fetch) {
                r->want_fetch = false;
                fetch(r);
            }
            l = l->next;
            r->refs--;
            cs_unref(r);
        }
        tail_issue(cl);
    }
    count_commands(cl);
}

void
sl_cluster_stop(struct sl_cluster *cl)
{
    if (cl == NULL || cl->stopping)
        return;
    creaders_flush(cl);
    /* Streams still handed to other nodes are let go (their terminal records are written). */
    while (!sl_list_empty(&cl->creaders)) {
        struct creader *cr = SL_CONTAINER_OF(cl->creaders.next, struct creader, link);
        struct sl_stream *s = cr->s;
        creader_free(cr);
        sl_stream_release(s);
    }
    cl->flush_ms = 0;
    sl_cluster_flush(cl);
    cl->stopping = true;
    uv_timer_stop(cl->tick);
    uv_close((uv_handle_t *)cl->tick, close_free);
    uv_timer_stop(cl->flush);
    uv_close((uv_handle_t *)cl->flush, close_free);
    const char *argv[] = {"DEL", cl->alive_key};
    cmd(cl, NULL, NULL, 2, argv, NULL);
    count_commands(cl);
    /* What was queued leaves with the connection's last write before it closes. */
    sl_rconn_free(cl->sub);
    cl->sub = NULL;
    sl_rconn_free(cl->tail);
    cl->tail = NULL;
    sl_rconn_close(cl->cmd);
    cl->cmd = NULL;
}

void
sl_cluster_free(struct sl_cluster *cl)
{
    if (cl == NULL)
        return;
    sl_assert(cl->stopping);
    while (!sl_list_empty(&cl->readers))
        cs_free(SL_CONTAINER_OF(cl->readers.next, struct sl_cstream, link));
    while (!sl_list_empty(&cl->mirrors))
        mirror_free(SL_CONTAINER_OF(cl->mirrors.next, struct sl_cmirror, link));
    while (!sl_list_empty(&cl->lists))
        clist_free(SL_CONTAINER_OF(cl->lists.next, struct clist, link));
    free(cl->node);
    free(cl);
}
