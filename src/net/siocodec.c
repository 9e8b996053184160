#include "net/siocodec.h"

#include <string.h>

#include "base/jsonw.h"
#include "base/utf8.h"

const char *
sl_sio_strerror(int err)
{
    /* clang-format off */
    switch (err) {
    case 0: return "ok";
    case SL_SIO_EEMPTY: return "empty Socket.IO packet";
    case SL_SIO_ETYPE: return "unknown Socket.IO packet type";
    case SL_SIO_EATTACH: return "illegal attachments";
    case SL_SIO_ETOOMANY: return "too many attachments";
    case SL_SIO_ENSP: return "namespace too long";
    case SL_SIO_EACKID: return "invalid ack id";
    case SL_SIO_EJSON: return "invalid JSON";
    case SL_SIO_EDEPTH: return "JSON nested too deeply";
    case SL_SIO_EPAYLOAD: return "invalid payload";
    case SL_SIO_ERESERVED: return "reserved event name";
    case SL_SIO_EPLACEHOLDER: return "illegal attachment placeholder";
    case SL_SIO_EUTF8: return "invalid UTF-8";
    default: return "invalid Socket.IO packet";
    }
    /* clang-format on */
}

/* --- the JSON scanner -------------------------------------------------------------------- */

struct js {
    const char *p, *end;
    int depth;
    int err;
    bool binary; /* check placeholders against attachments */
    unsigned attachments;
    unsigned placeholders;
};

static bool
fail(struct js *s, int err)
{
    if (s->err == 0)
        s->err = err;
    return false;
}

static void
skip_ws(struct js *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = sl_hex_digit(p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/*
 * A string at s->p (on its opening quote). When key is not NULL, its content is decoded
 * there as long as it is short ASCII (enough to recognise "_placeholder" and "num");
 * *keylen is then its length, or SIZE_MAX when it is anything else.
 */
static bool
string(struct js *s, char *key, size_t keycap, size_t *keylen)
{
    size_t k = 0;
    bool keyok = key != NULL;
    s->p++;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            if (keylen)
                *keylen = keyok ? k : SIZE_MAX;
            return true;
        }
        if (c < 0x20)
            return fail(s, SL_SIO_EJSON);
        if (c == '\\') {
            if (s->end - s->p < 2)
                return fail(s, SL_SIO_EJSON);
            char e = s->p[1];
            char d;
            switch (e) {
            case '"':
                d = '"';
                break;
            case '\\':
                d = '\\';
                break;
            case '/':
                d = '/';
                break;
            case 'b':
                d = '\b';
                break;
            case 'f':
                d = '\f';
                break;
            case 'n':
                d = '\n';
                break;
            case 'r':
                d = '\r';
                break;
            case 't':
                d = '\t';
                break;
            case 'u': {
                if (s->end - s->p < 6)
                    return fail(s, SL_SIO_EJSON);
                int v = hex4(s->p + 2);
                if (v < 0)
                    return fail(s, SL_SIO_EJSON);
                d = v < 0x80 ? (char)v : 0;
                if (v >= 0x80)
                    keyok = false;
                s->p += 6;
                goto stored;
            }
            default:
                return fail(s, SL_SIO_EJSON);
            }
            s->p += 2;
        stored:
            if (keyok) {
                if (k < keycap)
                    key[k++] = d;
                else
                    keyok = false;
            }
            continue;
        }
        if (keyok) {
            if (c < 0x80 && k < keycap)
                key[k++] = (char)c;
            else
                keyok = false;
        }
        s->p++;
    }
    return fail(s, SL_SIO_EJSON);
}

static bool
number(struct js *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end || !is_digit(*s->p))
        return fail(s, SL_SIO_EJSON);
    if (*s->p == '0')
        s->p++;
    else
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (s->p >= s->end || !is_digit(*s->p))
            return fail(s, SL_SIO_EJSON);
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || !is_digit(*s->p))
            return fail(s, SL_SIO_EJSON);
        while (s->p < s->end && is_digit(*s->p))
            s->p++;
    }
    return true;
}

static bool
literal(struct js *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return fail(s, SL_SIO_EJSON);
    s->p += n;
    return true;
}

static bool value(struct js *s);

/*
 * An object, noting whether it is an attachment placeholder ({"_placeholder":true,
 * "num":N}, as socket.io-parser's reconstructPacket() recognises one: members in any order,
 * the last of a duplicated key wins).
 */
static bool
object(struct js *s)
{
    bool ph = false, num_ok = false;
    uint64_t num = 0;
    if (++s->depth > SL_SIO_MAX_DEPTH)
        return fail(s, SL_SIO_EDEPTH);
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        goto done;
    }
    for (;;) {
        char key[16];
        size_t klen;
        skip_ws(s);
        if (s->p >= s->end || *s->p != '"')
            return fail(s, SL_SIO_EJSON);
        if (!string(s, key, sizeof(key), &klen))
            return false;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return fail(s, SL_SIO_EJSON);
        s->p++;
        skip_ws(s);
        const char *v = s->p;
        if (!value(s))
            return false;
        size_t vlen = (size_t)(s->p - v);
        if (klen == 12 && memcmp(key, "_placeholder", 12) == 0) {
            ph = vlen == 4 && memcmp(v, "true", 4) == 0;
        } else if (klen == 3 && memcmp(key, "num", 3) == 0) {
            num_ok = vlen > 0 && vlen <= 9;
            num = 0;
            for (size_t i = 0; i < vlen && num_ok; i++) {
                if (!is_digit(v[i]))
                    num_ok = false;
                else
                    num = num * 10 + (uint64_t)(v[i] - '0');
            }
        }
        skip_ws(s);
        if (s->p >= s->end)
            return fail(s, SL_SIO_EJSON);
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p == '}') {
            s->p++;
            break;
        }
        return fail(s, SL_SIO_EJSON);
    }
done:
    s->depth--;
    if (ph && s->binary) {
        s->placeholders++;
        if (!num_ok || num >= s->attachments)
            return fail(s, SL_SIO_EPLACEHOLDER);
    }
    return true;
}

/*
 * An array. first/rest, when not NULL, receive the span of the first element and the span
 * from the second element to the end of the last (both empty when absent).
 */
static bool
array(struct js *s, struct sl_slice *first, struct sl_slice *rest)
{
    if (++s->depth > SL_SIO_MAX_DEPTH)
        return fail(s, SL_SIO_EDEPTH);
    s->p++;
    skip_ws(s);
    if (first) {
        *first = sl_slice_make(s->p, 0);
        *rest = sl_slice_make(s->p, 0);
    }
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        s->depth--;
        return true;
    }
    for (size_t i = 0;; i++) {
        skip_ws(s);
        const char *v = s->p;
        if (!value(s))
            return false;
        if (first && i == 0)
            *first = sl_slice_make(v, (size_t)(s->p - v));
        else if (first && i == 1)
            *rest = sl_slice_make(v, (size_t)(s->p - v));
        else if (first)
            rest->len = (size_t)(s->p - rest->ptr);
        skip_ws(s);
        if (s->p >= s->end)
            return fail(s, SL_SIO_EJSON);
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p == ']') {
            s->p++;
            break;
        }
        return fail(s, SL_SIO_EJSON);
    }
    s->depth--;
    return true;
}

static bool
value(struct js *s)
{
    if (s->p >= s->end)
        return fail(s, SL_SIO_EJSON);
    switch (*s->p) {
    case '{':
        return object(s);
    case '[':
        return array(s, NULL, NULL);
    case '"':
        return string(s, NULL, 0, NULL);
    case 't':
        return literal(s, "true", 4);
    case 'f':
        return literal(s, "false", 5);
    case 'n':
        return literal(s, "null", 4);
    default:
        return number(s);
    }
}

static void
js_init(struct js *s, const char *p, size_t n)
{
    memset(s, 0, sizeof(*s));
    s->p = p;
    s->end = p + n;
}

/* The rest of the input is whitespace only. */
static bool
at_end(struct js *s)
{
    skip_ws(s);
    return s->p == s->end || fail(s, SL_SIO_EJSON);
}

bool
sl_sio_json_valid(const char *p, size_t n)
{
    struct js s;
    js_init(&s, p, n);
    skip_ws(&s);
    return sl_utf8_valid(p, n) && value(&s) && at_end(&s);
}

/* --- strings ------------------------------------------------------------------------------ */

static size_t
put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

long
sl_sio_string(struct sl_slice tok, char *out, size_t outlen)
{
    if (outlen == 0 || tok.len == 0)
        return -1;
    if (tok.ptr[0] != '"') {
        if (tok.ptr[0] != '-' && !is_digit(tok.ptr[0]))
            return -1;
        if (tok.len >= outlen)
            return -1;
        memcpy(out, tok.ptr, tok.len);
        out[tok.len] = '\0';
        return (long)tok.len;
    }
    if (tok.len < 2 || tok.ptr[tok.len - 1] != '"')
        return -1;
    const char *p = tok.ptr + 1, *end = tok.ptr + tok.len - 1;
    size_t o = 0;
    while (p < end) {
        char tmp[4];
        size_t n = 1;
        if (*p != '\\') {
            tmp[0] = *p++;
        } else {
            if (end - p < 2)
                return -1;
            char e = p[1];
            p += 2;
            switch (e) {
            case 'b':
                tmp[0] = '\b';
                break;
            case 'f':
                tmp[0] = '\f';
                break;
            case 'n':
                tmp[0] = '\n';
                break;
            case 'r':
                tmp[0] = '\r';
                break;
            case 't':
                tmp[0] = '\t';
                break;
            case 'u': {
                if (end - p < 4)
                    return -1;
                int v = hex4(p);
                if (v < 0)
                    return -1;
                p += 4;
                uint32_t cp = (uint32_t)v;
                if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                    int lo = hex4(p + 2);
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
                        p += 6;
                    }
                }
                /* A lone surrogate has no UTF-8 form. */
                if (cp >= 0xd800 && cp <= 0xdfff)
                    cp = 0xfffd;
                n = put_utf8(tmp, cp);
                break;
            }
            default:
                tmp[0] = e;
                break;
            }
        }
        if (o + n >= outlen)
            return -1;
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
    return (long)o;
}

long
sl_sio_member_string(struct sl_slice object_, const char *key, char *out, size_t outlen)
{
    struct js s;
    size_t want = strlen(key);
    js_init(&s, object_.ptr, object_.len);
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}')
        return -1;
    long found = -1;
    for (;;) {
        char k[64];
        size_t klen;
        skip_ws(&s);
        if (s.p >= s.end || *s.p != '"' || !string(&s, k, sizeof(k), &klen))
            return -1;
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return -1;
        s.p++;
        skip_ws(&s);
        const char *v = s.p;
        if (!value(&s))
            return -1;
        /* The last of a duplicated key wins, as in JavaScript. */
        if (klen == want && memcmp(k, key, want) == 0)
            found =
                *v == '"' ? sl_sio_string(sl_slice_make(v, (size_t)(s.p - v)), out, outlen) : -1;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        break;
    }
    return found;
}

/* --- packets ------------------------------------------------------------------------------ */

/* socket.io-parser's RESERVED_EVENTS: names the server side must not receive as events. */
static bool
reserved_name(struct sl_slice tok)
{
    static const char *const names[] = {"connect",       "connect_error", "disconnect",
                                        "disconnecting", "newListener",   "removeListener"};
    char name[32];
    long n = sl_sio_string(tok, name, sizeof(name));
    if (n < 0)
        return false; /* longer than any reserved name */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((size_t)n == strlen(names[i]) && memcmp(name, names[i], (size_t)n) == 0)
            return true;
    return false;
}

/* The data's shape for the packet's type, with the event name and arguments located. */
static int
check_data(struct sl_sio_packet *pkt, struct js *s)
{
    struct sl_slice d = pkt->data;
    bool binary = pkt->type == SL_SIO_BINARY_EVENT || pkt->type == SL_SIO_BINARY_ACK;
    js_init(s, d.ptr, d.len);
    s->binary = binary;
    s->attachments = pkt->attachments;
    skip_ws(s);
    char first = s->p < s->end ? *s->p : '\0';

    switch (pkt->type) {
    case SL_SIO_CONNECT:
        if (first != '{')
            return SL_SIO_EPAYLOAD;
        break;
    case SL_SIO_DISCONNECT:
        return SL_SIO_EPAYLOAD; /* no data allowed */
    case SL_SIO_CONNECT_ERROR:
        if (first != '{' && first != '"')
            return SL_SIO_EPAYLOAD;
        break;
    case SL_SIO_EVENT:
    case SL_SIO_BINARY_EVENT:
    case SL_SIO_ACK:
    case SL_SIO_BINARY_ACK: {
        if (first != '[')
            return value(s) && at_end(s) ? SL_SIO_EPAYLOAD : s->err;
        struct sl_slice f, rest;
        if (!array(s, &f, &rest) || !at_end(s))
            return s->err;
        if (pkt->type == SL_SIO_ACK || pkt->type == SL_SIO_BINARY_ACK) {
            /* Every element is an argument: from the first to the end of the last. */
            pkt->args = f;
            if (rest.len > 0)
                pkt->args.len = (size_t)(rest.ptr + rest.len - f.ptr);
        } else {
            if (f.len == 0)
                return SL_SIO_EPAYLOAD;
            if (f.ptr[0] != '"' && f.ptr[0] != '-' && !is_digit(f.ptr[0]))
                return SL_SIO_EPAYLOAD;
            if (f.ptr[0] == '"' && reserved_name(f))
                return SL_SIO_ERESERVED;
            pkt->name = f;
            pkt->args = rest;
        }
        pkt->placeholders = s->placeholders;
        return 0;
    }
    }
    if (!value(s) || !at_end(s))
        return s->err;
    pkt->placeholders = s->placeholders;
    return 0;
}

int
sl_sio_decode(const char *p, size_t n, unsigned max_attachments, struct sl_sio_packet *out)
{
    memset(out, 0, sizeof(*out));
    out->id = -1;
    out->nsp = SL_SLICE("/");
    if (n == 0)
        return SL_SIO_EEMPTY;
    if (!sl_utf8_valid(p, n))
        return SL_SIO_EUTF8;
    if (p[0] < '0' || p[0] > '6')
        return SL_SIO_ETYPE;
    out->type = (enum sl_sio_type)(p[0] - '0');
    size_t i = 1;

    if (out->type == SL_SIO_BINARY_EVENT || out->type == SL_SIO_BINARY_ACK) {
        uint64_t a = 0;
        size_t start = i;
        while (i < n && is_digit(p[i]) && i - start < 10)
            a = a * 10 + (uint64_t)(p[i++] - '0');
        if (i == start || i >= n || p[i] != '-')
            return SL_SIO_EATTACH;
        i++;
        if (a > max_attachments)
            return SL_SIO_ETOOMANY;
        out->attachments = (unsigned)a;
    }

    if (i < n && p[i] == '/') {
        const char *comma = memchr(p + i, ',', n - i);
        size_t e = comma ? (size_t)(comma - p) : n;
        if (e - i > SL_SIO_MAX_NSP)
            return SL_SIO_ENSP;
        out->nsp = sl_slice_make(p + i, e - i);
        i = comma ? e + 1 : n;
    }

    if (i < n && is_digit(p[i])) {
        uint64_t id = 0;
        size_t start = i;
        while (i < n && is_digit(p[i])) {
            if (i - start == SL_SIO_MAX_ACK_DIGITS)
                return SL_SIO_EACKID;
            id = id * 10 + (uint64_t)(p[i++] - '0');
        }
        out->id = (int64_t)id;
    }

    out->data = sl_slice_make(p + i, n - i);
    out->args = sl_slice_make(p + i, 0);
    if ((out->type == SL_SIO_ACK || out->type == SL_SIO_BINARY_ACK) && out->id < 0)
        return SL_SIO_EACKID;
    if (out->data.len == 0) {
        /* Only CONNECT (no auth) and DISCONNECT may come without data. */
        if (out->type == SL_SIO_CONNECT || out->type == SL_SIO_DISCONNECT)
            return 0;
        return SL_SIO_EPAYLOAD;
    }
    struct js s;
    return check_data(out, &s);
}

/* --- writing ------------------------------------------------------------------------------- */

void
sl_sio_write_head(struct sl_buf *b, enum sl_sio_type type, struct sl_slice nsp,
                  unsigned attachments, int64_t id)
{
    sl_buf_append_byte(b, (char)('0' + type));
    if (type == SL_SIO_BINARY_EVENT || type == SL_SIO_BINARY_ACK) {
        sl_jsonw_uint(b, attachments);
        sl_buf_append_byte(b, '-');
    }
    if (nsp.len > 0 && !(nsp.len == 1 && nsp.ptr[0] == '/')) {
        sl_buf_append(b, nsp.ptr, nsp.len);
        sl_buf_append_byte(b, ',');
    }
    if (id >= 0)
        sl_jsonw_uint(b, (unsigned long long)id);
}

void
sl_sio_write_event_data(struct sl_buf *b, const char *name, size_t name_len, struct sl_slice args,
                        struct sl_slice offset)
{
    sl_buf_append_byte(b, '[');
    sl_jsonw_str(b, name, name_len);
    if (args.len > 0) {
        sl_buf_append_byte(b, ',');
        sl_buf_append(b, args.ptr, args.len);
    }
    if (offset.ptr != NULL) {
        sl_buf_append_byte(b, ',');
        sl_jsonw_str(b, offset.ptr, offset.len);
    }
    sl_buf_append_byte(b, ']');
}

void
sl_sio_write_ack_data(struct sl_buf *b, struct sl_slice args)
{
    sl_buf_append_byte(b, '[');
    sl_buf_append(b, args.ptr, args.len);
    sl_buf_append_byte(b, ']');
}
