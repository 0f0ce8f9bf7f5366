/*  zyre_peer.c: a Zyre C node driven over stdin/stdout, for interop tests.

    The same line protocol as tests/interop/pyre_peer.py and tests/doubles/peer.rs, so the
    tests read all three with the same predicates (tests/common). The lab compiles it on
    demand (tests/lab/zyre.rs) against the Zyre C build in target/zyre-c:

      cc -DZYRE_BUILD_DRAFT_API -I$P/include zyre_peer.c -L$P/lib -Wl,-rpath,$P/lib \
         -lzyre -lczmq -lzmq

    Usage:
      zyre_peer --interface IF (--port BEACON_PORT | --endpoint EP | --gossip-...)
                [--name NAME] [--header K=V ...] [--group G ...]
                [--interval S] [--evasive S] [--expired S] [--verbose] [--tally]
                [--gossip-bind EP] [--gossip-connect EP ...] [--endpoint EP]
                [--advertise EP] [--contest GROUP ...] [--curve CERTFILE] [--ipv6]
                [--beacon-peer-port N] [--allow-host-net]
      zyre_peer --make-cert FILE     (writes a new CURVE certificate, zcert_save, and exits)

    Times are seconds (fractions allowed), as the other test doubles take them, and go to
    Zyre's setters in milliseconds: --interval, --evasive, --expired: zyre_set_interval,
    zyre_set_evasive_timeout, zyre_set_expired_timeout. --endpoint:
    zyre_set_endpoint (Zyre then discovers by gossip only, no beacons). --advertise:
    zyre_set_advertised_endpoint (gossip only). --contest: zyre_set_contest_in_group.
    --curve: zyre_set_zcert (zcert_load FILE). --ipv6: zsys_set_ipv6 (1) before start.
    --beacon-peer-port: zyre_set_beacon_peer_port (the mailbox's TCP port). --tally: see
    the tally command.

    Network safety: Zyre C cannot beacon on loopback, so this runs only in the lab's network
    namespaces. --interface is required, and its IPv4 address must be in 10.77.0.0/16 (the
    lab's network, tests/lab/netns.rs) unless --allow-host-net; the beacon port 5670 is
    refused, and so is beaconing without --port.

    stdout: one JSON object per line, flushed (Zyre's own log goes to stderr):
      {"type":"ready","uuid":HEX,"name":..,"endpoint":null,"port":BEACON_PORT}
        (endpoint null: Zyre has no call that returns its own endpoint)
      {"type":"enter","time":T,"peer":HEX,"name":..,"endpoint":..,"headers":{..}}
      {"type":"exit"|"evasive"|"silent","time":T,"peer":HEX,"name":..}
      {"type":"join"|"leave","time":T,"peer":HEX,"name":..,"group":..}
      {"type":"whisper","time":T,"peer":HEX,"name":..,"frames":[F,..](,"text":..)}
      {"type":"shout","time":T,"peer":HEX,"name":..,"group":..,"frames":[F,..](,"text":..)}
      {"type":"leader","time":T,"peer":HEX,"name":..,"group":..}   (Zyre's LEADER event)
      {"type":"stop","time":T}
      {"type":"peers","peers":[HEX,..]} (,"group":G with the group form of the command)
      {"type":"burst","sent":N}
      {"type":"tally","peers":{HEX:{"count":N,"next":N,"out_of_order":N}}}
      {"type":"error","error":..,"line":..}   (a bad command; the node carries on)
      HEX = 32 upper-case hex digits; T = RFC 3339 UTC with milliseconds; F = a frame,
      {"text":..} if it is UTF-8, else {"base64":..}; "text" only when the content is one
      UTF-8 frame. Zyre repeats EVASIVE (and SILENT) every reap interval while a peer is
      quiet; every one is printed.
    stdin: one JSON object per line; content as zre-whisper --json reads it.
      {"cmd":"join","group":G}  {"cmd":"leave","group":G}
      {"cmd":"whisper","peer":HEX,"frames":[F,..]} (or "text":..)
      {"cmd":"shout","group":G,"frames":[F,..]}    (or "text":..)
      {"cmd":"peers"}  {"cmd":"peers","group":G} (zyre_peers_by_group)  {"cmd":"stop"}
      {"cmd":"burst","peer":HEX,"count":N}: whispers "0", "1", ... "N-1" (one frame each)
      {"cmd":"tally"}: with --tally, whispers of one decimal frame are counted per peer
        instead of printed; `next` is the number expected next, `out_of_order` how many
        were not the one expected (as tests/doubles/peer.rs).
      EOF on stdin, {"cmd":"stop"} or SIGTERM: zyre_stop, the STOP event, exit 0.
    exit status: 0 after a graceful stop; 2 bad usage; 1 Zyre failed to start.
*/

#include <zyre.h>

#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  A command line longer than this is refused (a 100 KiB frame is ~137 KB of base64).
#define MAX_LINE (64u * 1024 * 1024)
//  JSON nesting deeper than this is refused (commands are two levels deep).
#define MAX_DEPTH 8

static void
die_oom (void)
{
    fputs ("zyre_peer: out of memory\n", stderr);
    exit (70);
}

static void *
xrealloc (void *p, size_t n)
{
    void *q = realloc (p, n ? n : 1);
    if (!q)
        die_oom ();
    return q;
}

// ------------------------------------------------------------------ output buffer

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void
buf_put (buf_t *b, const void *s, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len)
        die_oom ();
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = xrealloc (b->p, cap);
        b->cap = cap;
    }
    memcpy (b->p + b->len, s, n);
    b->len += n;
    b->p [b->len] = 0;
}

static void
buf_puts (buf_t *b, const char *s)
{
    buf_put (b, s, strlen (s));
}

static void
buf_printf (buf_t *b, const char *fmt, ...)
{
    char tmp [128];
    va_list ap;
    va_start (ap, fmt);
    int n = vsnprintf (tmp, sizeof tmp, fmt, ap);
    va_end (ap);
    if (n < 0 || (size_t) n >= sizeof tmp) {
        fputs ("zyre_peer: formatted field too long\n", stderr);
        exit (70);
    }
    buf_put (b, tmp, (size_t) n);
}

//  Writes one line to stdout and flushes it; a closed stdout means the test went away.
static void
emit (buf_t *b)
{
    buf_put (b, "\n", 1);
    if (fwrite (b->p, 1, b->len, stdout) != b->len || fflush (stdout) != 0)
        exit (0);
    b->len = 0;
}

// ------------------------------------------------------------------ UTF-8, JSON, base64

//  The length of the valid UTF-8 sequence at s (1-4), or 0 if none starts there: the
//  well-formed sequences of Unicode table 3-7 (no overlongs, surrogates or > U+10FFFF),
//  as Rust's str::from_utf8 accepts them.
static size_t
utf8_seq (const unsigned char *s, size_t n)
{
    unsigned char c = s [0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else
    if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    }
    else
    if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    }
    else
        return 0;
    if (n < len || s [1] < lo || s [1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s [i] < 0x80 || s [i] > 0xBF)
            return 0;
    return len;
}

static bool
utf8_valid (const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq (s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

//  A JSON string of s; bytes that are not UTF-8 become U+FFFD (only names, groups and
//  headers go through here unchecked: content frames that are not UTF-8 are base64).
static void
json_str (buf_t *b, const void *data, size_t n)
{
    const unsigned char *s = data;
    buf_put (b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = s [i];
        size_t k = utf8_seq (s + i, n - i);
        if (!k) {
            buf_puts (b, "\xEF\xBF\xBD");
            i++;
        }
        else
        if (c == '"' || c == '\\') {
            buf_put (b, "\\", 1);
            buf_put (b, &c, 1);
            i++;
        }
        else
        if (c < 0x20) {
            buf_printf (b, "\\u%04x", c);
            i++;
        }
        else {
            buf_put (b, s + i, k);
            i += k;
        }
    }
    buf_put (b, "\"", 1);
}

static void
json_cstr (buf_t *b, const char *s)
{
    if (s)
        json_str (b, s, strlen (s));
    else
        buf_puts (b, "null");
}

static const char B64 [] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
base64_put (buf_t *b, const unsigned char *s, size_t n)
{
    char q [4];
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t) s [i] << 16 | (uint32_t) s [i + 1] << 8 | s [i + 2];
        q [0] = B64 [v >> 18];
        q [1] = B64 [(v >> 12) & 63];
        q [2] = B64 [(v >> 6) & 63];
        q [3] = B64 [v & 63];
        buf_put (b, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t) s [i] << 16;
        q [0] = B64 [v >> 18];
        q [1] = B64 [(v >> 12) & 63];
        q [2] = q [3] = '=';
        buf_put (b, q, 4);
    }
    else
    if (n - i == 2) {
        uint32_t v = (uint32_t) s [i] << 16 | (uint32_t) s [i + 1] << 8;
        q [0] = B64 [v >> 18];
        q [1] = B64 [(v >> 12) & 63];
        q [2] = B64 [(v >> 6) & 63];
        q [3] = '=';
        buf_put (b, q, 4);
    }
}

static int
b64_value (unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

//  Standard base64 with padding, strictly (length a multiple of 4, '=' only at the end).
//  Returns the decoded length, or -1; out must hold n / 4 * 3 bytes.
static long
base64_decode (const unsigned char *s, size_t n, unsigned char *out)
{
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v [4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s [i + j] == '=' && i + 4 == n && j >= 2) {
                v [j] = 0;
                pad++;
            }
            else {
                if (pad)
                    return -1;  //  data after padding
                v [j] = b64_value (s [i + j]);
                if (v [j] < 0)
                    return -1;
            }
        }
        uint32_t w = (uint32_t) v [0] << 18 | (uint32_t) v [1] << 12
                   | (uint32_t) v [2] << 6 | (uint32_t) v [3];
        out [o++] = (unsigned char) (w >> 16);
        if (pad < 2)
            out [o++] = (unsigned char) (w >> 8);
        if (pad < 1)
            out [o++] = (unsigned char) w;
    }
    return (long) o;
}

// ------------------------------------------------------------------ JSON input

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype_t;

typedef struct jval {
    jtype_t type;
    char *str;              //  J_STR: the decoded bytes (NUL added); J_NUM: the text
    size_t len;             //  J_STR: length without the NUL
    struct jval *items;     //  J_ARR: elements; J_OBJ: values
    char **keys;            //  J_OBJ: keys (NUL-terminated)
    size_t n;
} jval_t;

typedef struct {
    const unsigned char *s;
    size_t n, i;
    const char *error;
} jparser_t;

static void
jfree (jval_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->items)
            jfree (&v->items [i]);
        if (v->keys)
            free (v->keys [i]);
    }
    free (v->items);
    free (v->keys);
    free (v->str);
    memset (v, 0, sizeof *v);
}

static void
jskip_ws (jparser_t *p)
{
    while (p->i < p->n && strchr (" \t\r\n", p->s [p->i]) && p->s [p->i])
        p->i++;
}

static int
hex4 (jparser_t *p, uint32_t *out)
{
    if (p->n - p->i < 4)
        return -1;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p->s [p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else
        if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else
        if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void
put_utf8 (buf_t *b, uint32_t cp)
{
    unsigned char u [4];
    size_t n;
    if (cp < 0x80) {
        u [0] = (unsigned char) cp;
        n = 1;
    }
    else
    if (cp < 0x800) {
        u [0] = (unsigned char) (0xC0 | cp >> 6);
        u [1] = (unsigned char) (0x80 | (cp & 63));
        n = 2;
    }
    else
    if (cp < 0x10000) {
        u [0] = (unsigned char) (0xE0 | cp >> 12);
        u [1] = (unsigned char) (0x80 | ((cp >> 6) & 63));
        u [2] = (unsigned char) (0x80 | (cp & 63));
        n = 3;
    }
    else {
        u [0] = (unsigned char) (0xF0 | cp >> 18);
        u [1] = (unsigned char) (0x80 | ((cp >> 12) & 63));
        u [2] = (unsigned char) (0x80 | ((cp >> 6) & 63));
        u [3] = (unsigned char) (0x80 | (cp & 63));
        n = 4;
    }
    buf_put (b, u, n);
}

//  A JSON string at p->i (the opening quote); its bytes into *b.
static int
jstring (jparser_t *p, buf_t *b)
{
    p->i++;    //  the opening quote
    while (true) {
        if (p->i >= p->n) {
            p->error = "unterminated string";
            return -1;
        }
        unsigned char c = p->s [p->i];
        if (c == '"') {
            p->i++;
            if (!b->p)
                buf_put (b, "", 0);
            return 0;
        }
        if (c < 0x20) {
            p->error = "control character in a string";
            return -1;
        }
        if (c != '\\') {
            size_t k = utf8_seq (p->s + p->i, p->n - p->i);
            if (!k) {
                p->error = "a string is not UTF-8";
                return -1;
            }
            buf_put (b, p->s + p->i, k);
            p->i += k;
            continue;
        }
        p->i++;
        if (p->i >= p->n) {
            p->error = "unterminated escape";
            return -1;
        }
        c = p->s [p->i++];
        switch (c) {
            case '"': buf_put (b, "\"", 1); break;
            case '\\': buf_put (b, "\\", 1); break;
            case '/': buf_put (b, "/", 1); break;
            case 'b': buf_put (b, "\b", 1); break;
            case 'f': buf_put (b, "\f", 1); break;
            case 'n': buf_put (b, "\n", 1); break;
            case 'r': buf_put (b, "\r", 1); break;
            case 't': buf_put (b, "\t", 1); break;
            case 'u': {
                uint32_t cp, lo;
                if (hex4 (p, &cp)) {
                    p->error = "bad \\u escape";
                    return -1;
                }
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    p->error = "lone low surrogate";
                    return -1;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->n - p->i < 2 || p->s [p->i] != '\\' || p->s [p->i + 1] != 'u') {
                        p->error = "lone high surrogate";
                        return -1;
                    }
                    p->i += 2;
                    if (hex4 (p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                        p->error = "bad surrogate pair";
                        return -1;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                put_utf8 (b, cp);
                break;
            }
            default:
                p->error = "bad escape";
                return -1;
        }
    }
}

static int jvalue (jparser_t *p, jval_t *v, int depth);

static int
jcontainer (jparser_t *p, jval_t *v, int depth, bool object)
{
    v->type = object ? J_OBJ : J_ARR;
    p->i++;    //  '{' or '['
    jskip_ws (p);
    char close = object ? '}' : ']';
    if (p->i < p->n && p->s [p->i] == close) {
        p->i++;
        return 0;
    }
    size_t cap = 0;
    while (true) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 4;
            if (cap > SIZE_MAX / sizeof (jval_t))
                die_oom ();
            v->items = xrealloc (v->items, cap * sizeof (jval_t));
            if (object)
                v->keys = xrealloc (v->keys, cap * sizeof (char *));
        }
        jval_t *item = &v->items [v->n];
        memset (item, 0, sizeof *item);
        if (object)
            v->keys [v->n] = NULL;
        v->n++;
        jskip_ws (p);
        if (object) {
            if (p->i >= p->n || p->s [p->i] != '"') {
                p->error = "expected a key";
                return -1;
            }
            buf_t key = { 0 };
            int rc = jstring (p, &key);
            v->keys [v->n - 1] = key.p;
            if (rc)
                return -1;
            jskip_ws (p);
            if (p->i >= p->n || p->s [p->i] != ':') {
                p->error = "expected ':'";
                return -1;
            }
            p->i++;
        }
        if (jvalue (p, item, depth + 1))
            return -1;
        jskip_ws (p);
        if (p->i < p->n && p->s [p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s [p->i] == close) {
            p->i++;
            return 0;
        }
        p->error = object ? "expected ',' or '}'" : "expected ',' or ']'";
        return -1;
    }
}

static int
jvalue (jparser_t *p, jval_t *v, int depth)
{
    if (depth > MAX_DEPTH) {
        p->error = "nested too deeply";
        return -1;
    }
    jskip_ws (p);
    if (p->i >= p->n) {
        p->error = "expected a value";
        return -1;
    }
    unsigned char c = p->s [p->i];
    if (c == '{' || c == '[')
        return jcontainer (p, v, depth, c == '{');
    if (c == '"') {
        buf_t b = { 0 };
        v->type = J_STR;
        int rc = jstring (p, &b);
        v->str = b.p;
        v->len = b.len;
        return rc;
    }
    static const char *words [] = { "null", "true", "false" };
    for (int k = 0; k < 3; k++) {
        size_t wl = strlen (words [k]);
        if (p->n - p->i >= wl && memcmp (p->s + p->i, words [k], wl) == 0) {
            v->type = k ? J_BOOL : J_NULL;
            p->i += wl;
            return 0;
        }
    }
    size_t start = p->i;
    while (p->i < p->n && strchr ("+-0123456789.eE", p->s [p->i]) && p->s [p->i])
        p->i++;
    if (p->i == start) {
        p->error = "unexpected character";
        return -1;
    }
    v->type = J_NUM;
    buf_t b = { 0 };
    buf_put (&b, p->s + start, p->i - start);
    v->str = b.p;
    v->len = b.len;
    return 0;
}

static jval_t *
jget (jval_t *obj, const char *key)
{
    if (obj->type != J_OBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (streq (obj->keys [i], key))
            return &obj->items [i];
    return NULL;
}

//  A string field without NUL bytes (it goes into a C string), or NULL with *error set.
static const char *
jget_str (jval_t *obj, const char *key, const char **error)
{
    static char msg [80];
    jval_t *v = jget (obj, key);
    if (!v || v->type != J_STR) {
        snprintf (msg, sizeof msg, "%s: expected a string", key);
        *error = msg;
        return NULL;
    }
    if (strlen (v->str) != v->len) {
        snprintf (msg, sizeof msg, "%s: a NUL byte cannot go through Zyre's C strings", key);
        *error = msg;
        return NULL;
    }
    return v->str;
}

// ------------------------------------------------------------------ the node

typedef struct {
    char peer [33];
    uint64_t count, next, out_of_order;
} tally_t;

static zyre_t *node;
static bool tallying;
static tally_t *tallies;
static size_t ntallies;
static buf_t out;

static void
put_time (buf_t *b)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime (CLOCK_REALTIME, &ts);
    gmtime_r (&ts.tv_sec, &tm);
    char s [40];
    strftime (s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf (b, "\"time\":\"%s.%03ldZ\"", s, ts.tv_nsec / 1000000);
}

//  A JSON array of the frames, each {"text":..} if it is UTF-8, else {"base64":..}.
static void
put_frames (buf_t *b, zmsg_t *msg)
{
    buf_puts (b, "[");
    bool first = true;
    for (zframe_t *f = zmsg_first (msg); f; f = zmsg_next (msg)) {
        const unsigned char *d = zframe_data (f);
        size_t n = zframe_size (f);
        buf_puts (b, first ? "{" : ",{");
        first = false;
        if (utf8_valid (d, n)) {
            buf_puts (b, "\"text\":");
            json_str (b, d, n);
        }
        else {
            buf_puts (b, "\"base64\":\"");
            base64_put (b, d, n);
            buf_puts (b, "\"");
        }
        buf_puts (b, "}");
    }
    buf_puts (b, "]");
}

//  "frames", and "text" when the content is one UTF-8 frame (as zre-listen prints them).
static void
put_content (buf_t *b, zmsg_t *msg)
{
    buf_puts (b, ",\"frames\":");
    put_frames (b, msg);
    zframe_t *only = zmsg_size (msg) == 1 ? zmsg_first (msg) : NULL;
    if (only && utf8_valid (zframe_data (only), zframe_size (only))) {
        buf_puts (b, ",\"text\":");
        json_str (b, zframe_data (only), zframe_size (only));
    }
}

//  With --tally: counts a whisper of one decimal frame; true if counted (not printed).
static bool
tally (const char *peer, zmsg_t *content)
{
    if (zmsg_size (content) != 1)
        return false;
    zframe_t *f = zmsg_first (content);
    const unsigned char *d = zframe_data (f);
    size_t n = zframe_size (f);
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (d [i] < '0' || d [i] > '9')
            return false;
        uint64_t digit = d [i] - '0';
        if (v > (UINT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    tally_t *t = NULL;
    for (size_t i = 0; i < ntallies; i++)
        if (streq (tallies [i].peer, peer))
            t = &tallies [i];
    if (!t) {
        tallies = xrealloc (tallies, (ntallies + 1) * sizeof (tally_t));
        t = &tallies [ntallies++];
        memset (t, 0, sizeof *t);
        snprintf (t->peer, sizeof t->peer, "%s", peer);
    }
    t->count++;
    if (v != t->next)
        t->out_of_order++;
    t->next = v + 1;
    return true;
}

//  Reads one event from Zyre and prints it. Returns true for STOP.
static bool
handle_event (void)
{
    zmsg_t *msg = zyre_recv (node);
    if (!msg)
        return false;       //  interrupted
    char *type = zmsg_popstr (msg);
    char *peer = zmsg_popstr (msg);
    char *name = zmsg_popstr (msg);
    bool stop = type && streq (type, "STOP");
    if (type && streq (type, "WHISPER") && tallying && peer && tally (peer, msg)) {
        zstr_free (&type);
        zstr_free (&peer);
        zstr_free (&name);
        zmsg_destroy (&msg);
        return false;
    }
    buf_puts (&out, "{\"type\":");
    char lower [32] = "";
    for (size_t i = 0; type && type [i] && i + 1 < sizeof lower; i++) {
        char c = type [i];
        lower [i] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        lower [i + 1] = 0;
    }
    json_cstr (&out, lower);
    buf_puts (&out, ",");
    put_time (&out);
    if (!stop) {
        buf_puts (&out, ",\"peer\":");
        json_cstr (&out, peer);
        buf_puts (&out, ",\"name\":");
        json_cstr (&out, name);
    }
    if (stop)
        ;
    else
    if (type && streq (type, "ENTER")) {
        //  [headers (zhash_pack), only when the peer has some] endpoint
        zframe_t *headers = zmsg_size (msg) >= 2 ? zmsg_pop (msg) : NULL;
        char *endpoint = zmsg_popstr (msg);
        buf_puts (&out, ",\"endpoint\":");
        json_cstr (&out, endpoint);
        buf_puts (&out, ",\"headers\":{");
        zhash_t *h = headers ? zhash_unpack (headers) : NULL;
        if (h) {
            bool first = true;
            for (char *v = zhash_first (h); v; v = zhash_next (h)) {
                if (!first)
                    buf_puts (&out, ",");
                first = false;
                json_cstr (&out, zhash_cursor (h));
                buf_puts (&out, ":");
                json_cstr (&out, v);
            }
        }
        buf_puts (&out, "}");
        zhash_destroy (&h);
        zframe_destroy (&headers);
        zstr_free (&endpoint);
    }
    else
    if (type && (streq (type, "JOIN") || streq (type, "LEAVE") || streq (type, "LEADER"))) {
        char *group = zmsg_popstr (msg);
        buf_puts (&out, ",\"group\":");
        json_cstr (&out, group);
        zstr_free (&group);
    }
    else
    if (type && streq (type, "WHISPER"))
        put_content (&out, msg);
    else
    if (type && streq (type, "SHOUT")) {
        char *group = zmsg_popstr (msg);
        buf_puts (&out, ",\"group\":");
        json_cstr (&out, group);
        zstr_free (&group);
        put_content (&out, msg);
    }
    else
    if (zmsg_size (msg) > 0) {
        //  EXIT, EVASIVE and SILENT carry nothing more; anything else is shown as is.
        buf_puts (&out, ",\"extra\":");
        put_frames (&out, msg);
    }
    buf_puts (&out, "}");
    emit (&out);
    zstr_free (&type);
    zstr_free (&peer);
    zstr_free (&name);
    zmsg_destroy (&msg);
    return stop;
}

//  Prints the events waiting now, without blocking.
static void
drain_events (void)
{
    zsock_t *sock = zyre_socket (node);
    while (zsock_events (sock) & ZMQ_POLLIN)
        handle_event ();
}

//  A command's content as zre-whisper --json reads it: "frames", else "text".
static zmsg_t *
content_of (jval_t *c, const char **error)
{
    zmsg_t *msg = zmsg_new ();
    jval_t *frames = jget (c, "frames");
    if (!frames) {
        jval_t *text = jget (c, "text");
        if (!text || text->type != J_STR) {
            *error = "expected \"frames\" or \"text\"";
            zmsg_destroy (&msg);
            return NULL;
        }
        zmsg_addmem (msg, text->str, text->len);
        return msg;
    }
    if (frames->type != J_ARR || frames->n == 0) {
        //  Zyre C reads the next message's frames as zero-frame content (README).
        *error = "frames: expected a non-empty array";
        zmsg_destroy (&msg);
        return NULL;
    }
    for (size_t i = 0; i < frames->n; i++) {
        jval_t *f = &frames->items [i];
        jval_t *text = jget (f, "text");
        jval_t *b64 = jget (f, "base64");
        if (text && !b64 && text->type == J_STR)
            zmsg_addmem (msg, text->str, text->len);
        else
        if (b64 && !text && b64->type == J_STR) {
            unsigned char *bytes = xrealloc (NULL, b64->len / 4 * 3 + 1);
            long n = base64_decode ((unsigned char *) b64->str, b64->len, bytes);
            if (n < 0) {
                free (bytes);
                *error = "frames: bad base64";
                zmsg_destroy (&msg);
                return NULL;
            }
            zmsg_addmem (msg, bytes, (size_t) n);
            free (bytes);
        }
        else {
            *error = "frames: each is {\"text\":..} or {\"base64\":..}";
            zmsg_destroy (&msg);
            return NULL;
        }
    }
    return msg;
}

//  32 hex digits, upper-cased as Zyre keys its peers.
static const char *
peer_of (jval_t *c, char hex [33], const char **error)
{
    const char *p = jget_str (c, "peer", error);
    if (!p)
        return NULL;
    if (strlen (p) != 32) {
        *error = "peer: expected 32 hex digits";
        return NULL;
    }
    for (int i = 0; i < 32; i++) {
        char ch = p [i];
        if (ch >= 'a' && ch <= 'f')
            ch = (char) (ch - 'a' + 'A');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F'))) {
            *error = "peer: expected 32 hex digits";
            return NULL;
        }
        hex [i] = ch;
    }
    hex [32] = 0;
    return hex;
}

static void
put_peer_list (buf_t *b, zlist_t *peers)
{
    buf_puts (b, "[");
    bool first = true;
    for (char *p = peers ? zlist_first (peers) : NULL; p; p = zlist_next (peers)) {
        if (!first)
            buf_puts (b, ",");
        first = false;
        json_cstr (b, p);
    }
    buf_puts (b, "]");
}

//  Runs one command line. Returns 1 to stop, 0 to go on, -1 (with *error) if it was bad.
static int
command (const char *line, size_t n, const char **error)
{
    jparser_t p = { (const unsigned char *) line, n, 0, NULL };
    jval_t c = { 0 };
    int rc = -1;
    char hex [33];
    if (jvalue (&p, &c, 0)) {
        *error = p.error;
        goto done;
    }
    jskip_ws (&p);
    if (p.i != p.n) {
        *error = "trailing characters after the command";
        goto done;
    }
    const char *cmd = jget_str (&c, "cmd", error);
    if (!cmd)
        goto done;
    if (streq (cmd, "stop"))
        rc = 1;
    else
    if (streq (cmd, "join") || streq (cmd, "leave")) {
        const char *group = jget_str (&c, "group", error);
        if (!group)
            goto done;
        if (streq (cmd, "join"))
            zyre_join (node, group);
        else
            zyre_leave (node, group);
        rc = 0;
    }
    else
    if (streq (cmd, "whisper") || streq (cmd, "shout")) {
        const char *to = streq (cmd, "whisper")
            ? peer_of (&c, hex, error) : jget_str (&c, "group", error);
        if (!to)
            goto done;
        zmsg_t *msg = content_of (&c, error);
        if (!msg)
            goto done;
        if (streq (cmd, "whisper"))
            zyre_whisper (node, to, &msg);
        else
            zyre_shout (node, to, &msg);
        zmsg_destroy (&msg);
        rc = 0;
    }
    else
    if (streq (cmd, "peers")) {
        const char *group = NULL;
        if (jget (&c, "group") && !(group = jget_str (&c, "group", error)))
            goto done;
        zlist_t *peers = group ? zyre_peers_by_group (node, group) : zyre_peers (node);
        buf_puts (&out, "{\"type\":\"peers\",\"peers\":");
        put_peer_list (&out, peers);
        if (group) {
            buf_puts (&out, ",\"group\":");
            json_cstr (&out, group);
        }
        buf_puts (&out, "}");
        emit (&out);
        zlist_destroy (&peers);
        rc = 0;
    }
    else
    if (streq (cmd, "burst")) {
        if (!peer_of (&c, hex, error))
            goto done;
        jval_t *count = jget (&c, "count");
        char *end = NULL;
        errno = 0;
        unsigned long long total = count && count->type == J_NUM
            ? strtoull (count->str, &end, 10) : 0;
        if (!count || count->type != J_NUM || errno || !end || *end || count->str [0] == '-') {
            *error = "count: expected a whole number";
            goto done;
        }
        for (unsigned long long i = 0; i < total; i++) {
            zyre_whispers (node, hex, "%llu", i);
            //  Zyre's actor blocks on its event pipe when nobody reads it, and this
            //  loop on the command pipe: read what came meanwhile now and then.
            if (i % 1000 == 999)
                drain_events ();
        }
        buf_printf (&out, "{\"type\":\"burst\",\"sent\":%llu}", total);
        emit (&out);
        rc = 0;
    }
    else
    if (streq (cmd, "tally")) {
        buf_puts (&out, "{\"type\":\"tally\",\"peers\":{");
        for (size_t i = 0; i < ntallies; i++) {
            tally_t *t = &tallies [i];
            buf_puts (&out, i ? "," : "");
            json_cstr (&out, t->peer);
            buf_printf (&out, ":{\"count\":%" PRIu64 ",\"next\":%" PRIu64
                        ",\"out_of_order\":%" PRIu64 "}", t->count, t->next, t->out_of_order);
        }
        buf_puts (&out, "}}");
        emit (&out);
        rc = 0;
    }
    else
        *error = "unknown cmd";
done:
    jfree (&c);
    return rc;
}

// ------------------------------------------------------------------ start-up

static volatile sig_atomic_t signalled;

static void
on_signal (int sig)
{
    (void) sig;
    signalled = 1;
}

static void
usage (const char *why)
{
    fprintf (stderr, "zyre_peer: %s (see the comment at the top of zyre_peer.c)\n", why);
    exit (2);
}

//  True if the interface has an IPv4 address in 10.77.0.0/16, the lab's network.
static bool
on_lab_network (const char *iface)
{
    struct ifaddrs *all, *a;
    bool found = false;
    if (getifaddrs (&all))
        return false;
    for (a = all; a; a = a->ifa_next) {
        if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !streq (a->ifa_name, iface))
            continue;
        uint32_t ip = ntohl (((struct sockaddr_in *) a->ifa_addr)->sin_addr.s_addr);
        if ((ip >> 16) == ((10u << 8) | 77u))
            found = true;
    }
    freeifaddrs (all);
    return found;
}

static int
number (const char *flag, const char *s, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol (s, &end, 10);
    if (errno || *end || !*s || v < lo || v > hi) {
        fprintf (stderr, "zyre_peer: %s %s: expected a whole number in %d..%d\n",
                 flag, s, lo, hi);
        exit (2);
    }
    return (int) v;
}

//  Seconds (fractions allowed, up to a day) as whole milliseconds, at least 1.
static int
millis (const char *flag, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod (s, &end);
    if (errno || *end || !*s || !(v > 0 && v <= 86400)) {
        fprintf (stderr, "zyre_peer: %s %s: expected seconds in (0, 86400]\n", flag, s);
        exit (2);
    }
    long ms = (long) (v * 1000 + 0.5);
    return ms < 1 ? 1 : (int) ms;
}

int
main (int argc, char *argv [])
{
    const char *name = NULL, *iface = NULL, *endpoint = NULL, *advertise = NULL;
    const char *curve = NULL, *gossip_bind = NULL;
    int port = -1, interval = -1, evasive = -1, expired = -1, peer_port = -1;
    bool verbose = false, ipv6 = false, allow_host_net = false;
    zlist_t *headers = zlist_new (), *groups = zlist_new ();
    zlist_t *connects = zlist_new (), *contests = zlist_new ();

    //  CZMQ logs to stdout by default: stdout is for our JSON lines only.
    zsys_set_logstream (stderr);
    //  CZMQ's own SIGINT/SIGTERM handler would end Zyre's actor without a goodbye; ours
    //  makes them a graceful stop (no SA_RESTART: zmq_poll returns EINTR).
    zsys_handler_set (NULL);
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        bool takes = !streq (a, "--verbose") && !streq (a, "--ipv6")
                  && !streq (a, "--tally") && !streq (a, "--allow-host-net");
        if (takes && i + 1 >= argc)
            usage ("a flag is missing its value");
        const char *v = takes ? argv [++i] : NULL;
        if (streq (a, "--make-cert")) {
            zcert_t *cert = zcert_new ();
            if (!cert || zcert_save (cert, v)) {
                fprintf (stderr, "zyre_peer: cannot write a certificate to %s\n", v);
                return 1;
            }
            zcert_destroy (&cert);
            return 0;
        }
        else if (streq (a, "--port"))
            port = number (a, v, 1, 65535);
        else if (streq (a, "--name"))
            name = v;
        else if (streq (a, "--header")) {
            if (!strchr (v, '='))
                usage ("--header: expected K=V");
            zlist_append (headers, (void *) v);
        }
        else if (streq (a, "--group"))
            zlist_append (groups, (void *) v);
        else if (streq (a, "--interface"))
            iface = v;
        else if (streq (a, "--interval"))
            interval = millis (a, v);
        else if (streq (a, "--evasive"))
            evasive = millis (a, v);
        else if (streq (a, "--expired"))
            expired = millis (a, v);
        else if (streq (a, "--verbose"))
            verbose = true;
        else if (streq (a, "--tally"))
            tallying = true;
        else if (streq (a, "--gossip-bind"))
            gossip_bind = v;
        else if (streq (a, "--gossip-connect"))
            zlist_append (connects, (void *) v);
        else if (streq (a, "--endpoint"))
            endpoint = v;
        else if (streq (a, "--advertise"))
            advertise = v;
        else if (streq (a, "--contest"))
            zlist_append (contests, (void *) v);
        else if (streq (a, "--curve"))
            curve = v;
        else if (streq (a, "--ipv6"))
            ipv6 = true;
        else if (streq (a, "--beacon-peer-port"))
            peer_port = number (a, v, 1, 65535);
        else if (streq (a, "--allow-host-net"))
            allow_host_net = true;
        else {
            fprintf (stderr, "zyre_peer: unknown flag %s\n", a);
            return 2;
        }
    }
    bool gossip = endpoint || gossip_bind || zlist_size (connects) > 0;
    if (port == 5670)
        usage ("refusing the default ZRE port 5670");
    if (port < 0 && !gossip)
        usage ("--port is required (Zyre would beacon on 5670)");
    if (!iface)
        usage ("--interface is required (Zyre's own choice would be the host's network)");
    if (!allow_host_net && !on_lab_network (iface))
        usage ("the interface has no address in 10.77.0.0/16 (the lab's network); "
               "Zyre C runs only in the lab's namespaces (--allow-host-net overrides)");

    if (ipv6)
        zsys_set_ipv6 (1);
    node = zyre_new (name);
    if (!node) {
        fputs ("zyre_peer: zyre_new failed\n", stderr);
        return 1;
    }
    if (verbose)
        zyre_set_verbose (node);
    zyre_set_interface (node, iface);
    if (port > 0)
        zyre_set_port (node, port);
    if (interval > 0)
        zyre_set_interval (node, (size_t) interval);
    if (evasive > 0)
        zyre_set_evasive_timeout (node, evasive);
    if (expired > 0)
        zyre_set_expired_timeout (node, expired);
    if (peer_port > 0)
        zyre_set_beacon_peer_port (node, peer_port);
    for (const char *h = zlist_first (headers); h; h = zlist_next (headers)) {
        const char *eq = strchr (h, '=');
        char *key = strndup (h, (size_t) (eq - h));
        if (!key)
            die_oom ();
        zyre_set_header (node, key, "%s", eq + 1);
        free (key);
    }
    zcert_t *cert = NULL;
    if (curve) {
        cert = zcert_load (curve);
        if (!cert) {
            fprintf (stderr, "zyre_peer: --curve %s: not a certificate\n", curve);
            return 2;
        }
        zyre_set_zcert (node, cert);
    }
    //  Before --endpoint: with a certificate, SET ENDPOINT binds a CURVE server socket.
    if (endpoint && zyre_set_endpoint (node, "%s", endpoint)) {
        fprintf (stderr, "zyre_peer: --endpoint %s: cannot bind\n", endpoint);
        return 2;
    }
    if (advertise)
        zyre_set_advertised_endpoint (node, advertise);
    if (gossip_bind)
        zyre_gossip_bind (node, "%s", gossip_bind);
    for (const char *e = zlist_first (connects); e; e = zlist_next (connects))
        zyre_gossip_connect (node, "%s", e);
    for (const char *g = zlist_first (contests); g; g = zlist_next (contests))
        zyre_set_contest_in_group (node, g);
    if (zyre_start (node)) {
        fputs ("zyre_peer: zyre_start failed\n", stderr);
        return 1;
    }
    for (const char *g = zlist_first (groups); g; g = zlist_next (groups))
        zyre_join (node, g);

    buf_puts (&out, "{\"type\":\"ready\",\"uuid\":");
    json_cstr (&out, zyre_uuid (node));
    buf_puts (&out, ",\"name\":");
    json_cstr (&out, zyre_name (node));
    buf_puts (&out, ",\"endpoint\":null,\"port\":");
    if (port > 0)
        buf_printf (&out, "%d}", port);
    else
        buf_puts (&out, "null}");
    emit (&out);

    //  One loop over Zyre's event socket and stdin; SIGTERM or SIGINT ends it like a stop
    //  command.
    zmq_pollitem_t items [2] = {
        { zsock_resolve (zyre_socket (node)), 0, ZMQ_POLLIN, 0 },
        { NULL, STDIN_FILENO, ZMQ_POLLIN, 0 },
    };
    char *line = NULL;
    size_t len = 0, cap = 0;
    bool done = false, skipping = false;
    while (!done && !signalled) {
        if (zmq_poll (items, 2, 200) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (items [0].revents & ZMQ_POLLIN)
            drain_events ();
        if (!(items [1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            continue;
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 131072;
            line = xrealloc (line, cap);
        }
        ssize_t got = read (STDIN_FILENO, line + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;          //  EOF (or a broken stdin): stop
        len += (size_t) got;
        char *nl;
        while (!done && (nl = memchr (line, '\n', len))) {
            size_t n = (size_t) (nl - line);
            if (skipping)
                skipping = false;   //  the end of an over-long line
            else {
                const char *error = NULL;
                bool blank = true;
                for (size_t k = 0; k < n; k++)
                    if (!strchr (" \t\r", line [k]))
                        blank = false;
                int rc = blank ? 0 : command (line, n, &error);
                if (rc == 1)
                    done = true;
                else
                if (rc < 0) {
                    buf_puts (&out, "{\"type\":\"error\",\"error\":");
                    json_cstr (&out, error ? error : "bad command");
                    buf_puts (&out, ",\"line\":");
                    json_str (&out, line, n);
                    buf_puts (&out, "}");
                    emit (&out);
                }
            }
            memmove (line, nl + 1, len - n - 1);
            len -= n + 1;
        }
        if (skipping)
            len = 0;                //  more of an over-long line
        else
        if (len > MAX_LINE) {
            buf_puts (&out, "{\"type\":\"error\",\"error\":\"command line too long\"}");
            emit (&out);
            len = 0;
            skipping = true;
        }
    }
    free (line);

    //  Graceful stop: the port-0 beacon, then the STOP event (and what came before it).
    zyre_stop (node);
    zpoller_t *poller = zpoller_new (zyre_socket (node), NULL);
    zpoller_set_nonstop (poller, true);
    int64_t deadline = zclock_mono () + 2000;
    while (zclock_mono () < deadline) {
        if (zpoller_wait (poller, 100) && handle_event ())
            break;
    }
    zpoller_destroy (&poller);
    zyre_destroy (&node);
    zcert_destroy (&cert);
    zlist_destroy (&headers);
    zlist_destroy (&groups);
    zlist_destroy (&connects);
    zlist_destroy (&contests);
    free (tallies);
    free (out.p);
    return 0;
}
