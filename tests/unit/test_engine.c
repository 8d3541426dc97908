/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the connection protocol engine (lib/core/engine.c):
 * two engines (initiator and responder) joined by an in-memory "wire"
 * that can split the bytes into random chunks and pass every frame
 * through a man in the middle. All randomness is deterministic (fixed
 * seeds), so every run is the same.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <sodium.h>

#include <peerlink/peerlink.h>

#include "buf.h"
#include "engine.h"
#include "frame.h"
#include "record.h"
#include "peerlink.pb-c.h"

#define CODE "123456"
#define INSTANCE "Kitchen"
#define I_NAME "phone"
#define R_NAME "Kitchen"
#define BIG (3u * 1024u * 1024u)

/* ---------------------------------------------------------------- one side */

typedef struct msg {
    uint8_t *data;
    size_t len;
} msg;

typedef struct side {
    pl_engine e;
    pl_engine_hooks hooks;
    /* pair_begin */
    const char *code;     /* returned by pair_begin */
    const uint8_t *secret; /* ... or this secret of secret_len bytes, if set */
    size_t secret_len;
    int begin_rc;         /* what pair_begin returns */
    int begin_calls;
    /* pair_end */
    int end_calls;
    int end_result;
    /* peer_known */
    uint8_t known[4][32];
    size_t nknown;
    int known_calls;
    /* peer_paired */
    int paired_calls;
    int paired_rc; /* what peer_paired returns */
    /* peer_refused */
    int refused_calls;
    uint8_t refused_id[32];
    /* Acks queued after input batches; the peer's latest Ack */
    size_t acks;
    uint64_t acked;
    uint8_t paired_id[32];
    char paired_name[PL_NAME_MAX + 1];
    /* random: the stream randombytes_buf_deterministic(seed), read from rnd_off on */
    uint8_t seed[randombytes_SEEDBYTES];
    size_t rnd_off;
    /* what receive reported */
    int error;  /* first (and only) receive error */
    int opens;  /* OPEN events */
    int eofs;   /* PEER_EOF events */
    int events; /* all events, in order: index of OPEN, first message, EOF */
    int open_at, first_msg_at, eof_at;
    msg *msgs;
    size_t nmsgs, msgs_cap;
    /* find_session: offers `session` if its id is the one asked for and
     * the peer is session_peer (like the listener's hook) */
    const pl_stream *session;
    const uint8_t *session_peer;
    int find_calls;
    uint8_t find_id[PL_SESSION_ID_SIZE], find_peer[32];
    /* admit */
    int admit_rc;
    int admit_calls;
    uint8_t admit_peer[32];
    /* responder: on an OPEN with resumed set, adopt this stream (as the
     * connection layer does) */
    pl_stream *adopt_from;
    int adopts;
    uint64_t open_seq; /* the OPEN event's seq */
    /* PEER_TXT events and the last one's bytes */
    int txts;
    uint8_t txt[64];
    size_t txt_len;
} side;

static int h_pair_begin(void *ctx, pl_pair_key *key)
{
    side *s = ctx;
    s->begin_calls++;
    if (s->begin_rc != PL_OK)
        return s->begin_rc;
    if (s->secret)
        *key = (pl_pair_key){s->secret, s->secret_len, 1};
    else
        *key = (pl_pair_key){(const uint8_t *)s->code, s->code ? strlen(s->code) : 0, 0};
    return PL_OK;
}

static void h_pair_end(void *ctx, int result)
{
    side *s = ctx;
    s->end_calls++;
    s->end_result = result;
}

static int h_peer_known(void *ctx, const uint8_t id[32])
{
    side *s = ctx;
    s->known_calls++;
    for (size_t i = 0; i < s->nknown; i++)
        if (memcmp(s->known[i], id, 32) == 0)
            return PL_OK;
    return PL_ERR_NOT_PAIRED;
}

static int h_peer_paired(void *ctx, const uint8_t id[32], const char *name)
{
    side *s = ctx;
    s->paired_calls++;
    memcpy(s->paired_id, id, 32);
    assert_true(strlen(name) <= PL_NAME_MAX);
    strcpy(s->paired_name, name);
    return s->paired_rc;
}

static void h_peer_refused(void *ctx, const uint8_t id[32])
{
    side *s = ctx;
    s->refused_calls++;
    memcpy(s->refused_id, id, 32);
}

static const pl_stream *h_find_session(void *ctx, const uint8_t id[PL_SESSION_ID_SIZE],
                                       const uint8_t peer_id[32])
{
    side *s = ctx;
    s->find_calls++;
    memcpy(s->find_id, id, PL_SESSION_ID_SIZE);
    memcpy(s->find_peer, peer_id, 32);
    if (!s->session || memcmp(s->session->id, id, PL_SESSION_ID_SIZE) != 0 ||
        memcmp(s->session_peer, peer_id, 32) != 0)
        return NULL;
    return s->session;
}

static int h_admit(void *ctx, const uint8_t peer_id[32])
{
    side *s = ctx;
    s->admit_calls++;
    memcpy(s->admit_peer, peer_id, 32);
    return s->admit_rc;
}

/* A continuous deterministic stream: bytes rnd_off .. rnd_off+n of
 * randombytes_buf_deterministic(seed) (a ChaCha20 keystream, so a longer
 * output starts with the shorter one). */
static void h_random(void *ctx, uint8_t *buf, size_t n)
{
    side *s = ctx;
    uint8_t *tmp = malloc(s->rnd_off + n);
    assert_non_null(tmp);
    randombytes_buf_deterministic(tmp, s->rnd_off + n, s->seed);
    memcpy(buf, tmp + s->rnd_off, n);
    s->rnd_off += n;
    free(tmp);
}

static void side_reset_results(side *s)
{
    for (size_t i = 0; i < s->nmsgs; i++)
        free(s->msgs[i].data);
    free(s->msgs);
    s->msgs = NULL;
    s->nmsgs = s->msgs_cap = 0;
    s->error = 0;
    s->opens = s->eofs = s->events = 0;
    s->open_at = s->first_msg_at = s->eof_at = -1;
}

static void side_free(side *s)
{
    pl_engine_clear(&s->e);
    side_reset_results(s);
}

/* ---------------------------------------------------------------- the wire */

typedef void (*mitm_fn)(void *ctx, int dir, size_t index, uint8_t *frame, size_t *len);

typedef struct fx {
    side I, R;
    uint8_t pk_i[32], sk_i[64], pk_r[32], sk_r[64];
    /* wire */
    size_t max_chunk; /* 0: deliver each flush at once; else chunks of 1..max_chunk */
    uint32_t chunk_rng;
    mitm_fn mitm;     /* sees every frame; may change bytes or shrink *len (0: drop) */
    void *mitm_ctx;
    size_t frames[2]; /* frames that crossed, per direction (0: I->R, 1: R->I) */
    pl_buf capture[2]; /* every byte that crossed, per direction */
    pl_engine old;     /* after relink(): the responder engine of the lost link, holding the session */
} fx;

static uint32_t chunk_next(fx *f)
{
    uint32_t x = f->chunk_rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    f->chunk_rng = x;
    return x;
}

static void record_event(side *s, const pl_engine_event *ev)
{
    switch (ev->type) {
    case PL_ENGINE_OPEN:
        assert_true(pl_engine_open(&s->e));
        s->opens++;
        s->open_at = s->events;
        s->open_seq = ev->seq;
        if (s->adopt_from && s->e.resumed && !s->e.initiator) {
            assert_int_equal(pl_engine_adopt(&s->e, s->adopt_from), PL_OK);
            s->adopts++;
        }
        break;
    case PL_ENGINE_MESSAGE:
        assert_true(pl_engine_open(&s->e));
        if (s->nmsgs == s->msgs_cap) {
            s->msgs_cap = s->msgs_cap ? 2 * s->msgs_cap : 16;
            s->msgs = realloc(s->msgs, s->msgs_cap * sizeof *s->msgs);
            assert_non_null(s->msgs);
        }
        s->msgs[s->nmsgs].data = malloc(ev->len ? ev->len : 1);
        assert_non_null(s->msgs[s->nmsgs].data);
        if (ev->len)
            memcpy(s->msgs[s->nmsgs].data, ev->data, ev->len);
        s->msgs[s->nmsgs].len = ev->len;
        if (s->first_msg_at < 0)
            s->first_msg_at = s->events;
        s->nmsgs++;
        break;
    case PL_ENGINE_PEER_EOF:
        s->eofs++;
        s->eof_at = s->events;
        break;
    case PL_ENGINE_PEER_TXT:
        assert_true(pl_engine_open(&s->e));
        assert_true(ev->len >= 1 && ev->len <= sizeof s->txt);
        assert_int_equal(ev->len, pl_buf_size(&s->e.st.peer_txt));
        memcpy(s->txt, ev->data, ev->len);
        s->txt_len = ev->len;
        s->txts++;
        return; /* not counted in events: the other tests' orders stay as they are */
    case PL_ENGINE_ACKED:
        /* cumulative, only ever forward, never past what was sent (counted across a reset) */
        assert_true(ev->seq > s->acked && ev->seq <= s->e.st.acked_base + s->e.st.tx_next);
        s->acked = ev->seq;
        return; /* not counted in events: their number depends on batching */
    default:
        fail_msg("unexpected event type %d", (int)ev->type);
    }
    s->events++;
}

/* Feed bytes to a side (in chunks if the wire says so), recording events.
 * A failed side reads nothing more (its transport would be closed). */
static void feed_side(fx *f, side *s, const uint8_t *p, size_t n)
{
    while (n > 0 && s->error == 0) {
        size_t chunk = n;
        if (f->max_chunk) {
            size_t c = 1 + chunk_next(f) % f->max_chunk;
            if (c < chunk)
                chunk = c;
        }
        size_t off = 0;
        while (off < chunk) {
            size_t used = 0;
            pl_engine_event ev;
            int rc = pl_engine_receive(&s->e, p + off, chunk - off, &used, &ev);
            assert_true(used <= chunk - off);
            off += used;
            if (rc < 0) {
                s->error = rc;
                assert_int_equal(s->e.state, PL_HS_FAILED);
                assert_int_equal(s->e.error, rc);
                return;
            }
            if (rc == 0) {
                assert_int_equal(off, chunk); /* 0 means all input was consumed */
                break;
            }
            assert_int_equal(rc, 1);
            record_event(s, &ev);
        }
        p += chunk;
        n -= chunk;
    }
    /* as the connection layer does: one Ack after each batch of input */
    if (s->error == 0) {
        size_t before = pl_buf_size(&s->e.out);
        assert_int_equal(pl_engine_ack(&s->e), PL_OK);
        s->acks += pl_buf_size(&s->e.out) > before;
    }
}

/* Move what one side has queued to the other, frame by frame through the
 * man in the middle. Returns 1 if there was anything to move. */
static int deliver(fx *f, int dir)
{
    side *from = dir == 0 ? &f->I : &f->R, *to = dir == 0 ? &f->R : &f->I;
    size_t n = pl_buf_size(&from->e.out);
    if (n == 0)
        return 0;
    uint8_t *bytes = malloc(n);
    assert_non_null(bytes);
    memcpy(bytes, pl_buf_head(&from->e.out), n);
    pl_buf_consume(&from->e.out, n);
    pl_buf wire;
    pl_buf_init(&wire);
    size_t pos = 0;
    while (pos < n) {
        /* The engine only ever queues whole frames. */
        assert_true(n - pos >= PL_FRAME_HEADER_SIZE);
        size_t flen = PL_FRAME_HEADER_SIZE + ((size_t)bytes[pos + 4] << 24 | (size_t)bytes[pos + 5] << 16 |
                                              (size_t)bytes[pos + 6] << 8 | bytes[pos + 7]);
        assert_true(flen <= n - pos);
        size_t len = flen;
        if (f->mitm)
            f->mitm(f->mitm_ctx, dir, f->frames[dir], bytes + pos, &len);
        assert_true(len <= flen);
        f->frames[dir]++;
        assert_int_equal(pl_buf_append(&wire, bytes + pos, len), PL_OK);
        pos += flen;
    }
    assert_int_equal(pl_buf_append(&f->capture[dir], pl_buf_head(&wire), pl_buf_size(&wire)), PL_OK);
    feed_side(f, to, pl_buf_head(&wire), pl_buf_size(&wire));
    pl_buf_clear(&wire);
    free(bytes);
    return 1;
}

/* Shuttle until neither side has anything queued. */
static void pump(fx *f)
{
    for (int rounds = 0; rounds < 10000; rounds++) {
        int moved = deliver(f, 0);
        moved |= deliver(f, 1);
        if (!moved)
            return;
    }
    fail_msg("the engines never went quiet");
}

/* ---------------------------------------------------------------- fixtures */

static void keypair(uint8_t pk[32], uint8_t sk[64], uint8_t seed_byte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, seed_byte, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
}

static void side_init(side *s, size_t max_message, uint8_t seed_byte, uint8_t test_no)
{
    side_free(s);
    memset(s, 0, sizeof *s);
    pl_engine_init(&s->e, max_message);
    memset(s->seed, seed_byte, sizeof s->seed);
    s->seed[0] = test_no; /* a different stream for each test */
    s->code = CODE;
    s->hooks.pair_begin = h_pair_begin;
    s->hooks.pair_end = h_pair_end;
    s->hooks.peer_known = h_peer_known;
    s->hooks.peer_paired = h_peer_paired;
    s->hooks.peer_refused = h_peer_refused;
    s->hooks.random = h_random;
    s->hooks.find_session = h_find_session;
    s->hooks.admit = h_admit;
    s->open_at = s->first_msg_at = s->eof_at = -1;
}

static void wire_reset(fx *f)
{
    pl_buf_clear(&f->capture[0]);
    pl_buf_clear(&f->capture[1]);
    f->frames[0] = f->frames[1] = 0;
    f->mitm = NULL;
    f->mitm_ctx = NULL;
    f->max_chunk = 0;
    f->chunk_rng = 0x2545f491u;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    keypair(f->pk_i, f->sk_i, 0x01);
    keypair(f->pk_r, f->sk_r, 0x02);
    pl_engine_init(&f->I.e, 0);
    pl_engine_init(&f->R.e, 0);
    pl_engine_init(&f->old, 0);
    wire_reset(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    side_free(&f->I);
    side_free(&f->R);
    pl_engine_clear(&f->old);
    pl_buf_clear(&f->capture[0]);
    pl_buf_clear(&f->capture[1]);
    free(f);
    return 0;
}

typedef struct opts {
    size_t max_i, max_r;       /* max_message (0: default) */
    uint64_t rekey_i, rekey_r; /* rekey_interval (0: default) */
    const char *i_code;        /* initiator's code; NULL: reconnect */
    const uint8_t *i_secret;   /* ... or its secret (docs/PROTOCOL.md 6.4) */
    size_t i_secret_len;
    const char *i_instance;    /* the instance the initiator targets (NULL: any) */
    const char *r_instance;    /* the responder's instance (NULL: INSTANCE) */
    const uint8_t *expected;   /* initiator, reconnect: the responder's id */
} opts;

/* Configure and start both engines (for test number test_no: its own random streams). */
static void begin(fx *f, const opts *o, uint8_t test_no)
{
    side_init(&f->I, o->max_i, 0x11, test_no);
    side_init(&f->R, o->max_r, 0x22, test_no);
    wire_reset(f);
    pl_engine_config ci = {0}, cr = {0};
    ci.initiator = 1;
    ci.identity_sk = f->sk_i;
    ci.name = I_NAME;
    ci.instance = o->i_instance;
    ci.code = o->i_code;
    ci.secret = o->i_secret;
    ci.secret_len = o->i_secret_len;
    ci.expected_peer = o->expected;
    ci.hooks = &f->I.hooks;
    ci.hooks_ctx = &f->I;
    ci.rekey_interval = o->rekey_i;
    cr.initiator = 0;
    cr.identity_sk = f->sk_r;
    cr.name = R_NAME;
    cr.instance = o->r_instance ? o->r_instance : INSTANCE;
    cr.hooks = &f->R.hooks;
    cr.hooks_ctx = &f->R;
    cr.rekey_interval = o->rekey_r;
    assert_int_equal(pl_engine_configure(&f->I.e, &ci), PL_OK);
    assert_int_equal(pl_engine_configure(&f->R.e, &cr), PL_OK);
    assert_int_equal(pl_engine_start(&f->I.e), PL_OK);
    assert_int_equal(pl_engine_start(&f->R.e), PL_OK);
}

static const opts PAIRING = {.i_code = CODE, .i_instance = INSTANCE};

static void assert_both_open(fx *f)
{
    assert_int_equal(f->I.error, 0);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->I.opens, 1);
    assert_int_equal(f->R.opens, 1);
    assert_true(pl_engine_open(&f->I.e));
    assert_true(pl_engine_open(&f->R.e));
}

/* Pair both engines (test number test_no). */
static void pair(fx *f, const opts *o, uint8_t test_no)
{
    begin(f, o ? o : &PAIRING, test_no);
    pump(f);
    assert_both_open(f);
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed ^ (i * 31) ^ (i >> 11));
    return p;
}

static int contains(const pl_buf *hay, const void *needle, size_t n)
{
    return memmem(pl_buf_head(hay), pl_buf_size(hay), needle, n) != NULL;
}

/* Frame types that crossed in one direction, in order (up to cap). */
static size_t frame_types(const pl_buf *b, uint8_t *types, size_t cap)
{
    const uint8_t *p = pl_buf_head(b);
    size_t n = pl_buf_size(b), pos = 0, count = 0;
    while (n - pos >= PL_FRAME_HEADER_SIZE) {
        size_t len = (size_t)p[pos + 4] << 24 | (size_t)p[pos + 5] << 16 | (size_t)p[pos + 6] << 8 | p[pos + 7];
        if (count < cap)
            types[count] = p[pos + 1];
        count++;
        pos += PL_FRAME_HEADER_SIZE + len;
    }
    return count;
}

static int has_record(const pl_buf *b)
{
    uint8_t types[64];
    size_t n = frame_types(b, types, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        if (types[i] == PL_FRAME_RECORD)
            return 1;
    return 0;
}

/* The error code of the clear Error message that ends a captured stream, or -1. */
static int last_wire_error(const pl_buf *b)
{
    const uint8_t *p = pl_buf_head(b);
    size_t n = pl_buf_size(b), pos = 0, last = (size_t)-1, last_len = 0;
    while (n - pos >= PL_FRAME_HEADER_SIZE) {
        size_t len = (size_t)p[pos + 4] << 24 | (size_t)p[pos + 5] << 16 | (size_t)p[pos + 6] << 8 | p[pos + 7];
        if (len > n - pos - PL_FRAME_HEADER_SIZE)
            break;
        last = pos;
        last_len = len;
        pos += PL_FRAME_HEADER_SIZE + len;
    }
    if (last == (size_t)-1 || p[last + 1] != PL_FRAME_CONTROL)
        return -1;
    Peerlink__Control *c = peerlink__control__unpack(NULL, last_len, p + last + PL_FRAME_HEADER_SIZE);
    if (!c)
        return -1;
    int code = c->msg_case == PEERLINK__CONTROL__MSG_ERROR ? (int)c->error->code : -1;
    peerlink__control__free_unpacked(c, NULL);
    return code;
}

/* ---------------------------------------------------------------- pairing */

static void check_paired(fx *f)
{
    assert_both_open(f);
    /* peers authenticated as the right keys, with the right names */
    assert_memory_equal(f->I.e.peer_id, f->pk_r, 32);
    assert_memory_equal(f->R.e.peer_id, f->pk_i, 32);
    assert_string_equal(f->I.e.peer_name, R_NAME);
    assert_string_equal(f->R.e.peer_name, I_NAME);
    assert_int_equal(f->I.e.pairing, 1);
    assert_int_equal(f->R.e.pairing, 1);
    assert_int_equal(f->I.e.version, 1);
    assert_int_equal(f->R.e.version, 1);
    /* hooks */
    assert_int_equal(f->R.begin_calls, 1);
    assert_int_equal(f->R.end_calls, 1);
    assert_int_equal(f->R.end_result, PL_OK);
    assert_int_equal(f->R.paired_calls, 1);
    assert_memory_equal(f->R.paired_id, f->pk_i, 32);
    assert_string_equal(f->R.paired_name, I_NAME);
    assert_int_equal(f->I.paired_calls, 1);
    assert_memory_equal(f->I.paired_id, f->pk_r, 32);
    assert_string_equal(f->I.paired_name, INSTANCE); /* the responder is known by its instance */
    assert_int_equal(f->I.begin_calls, 0);
    assert_int_equal(f->I.end_calls, 0);
    assert_int_equal(f->I.known_calls, 0);
    assert_int_equal(f->R.known_calls, 0);
    /* the two directions' keys match across, and differ from each other */
    assert_memory_equal(f->I.e.tx.key, f->R.e.rx.key, PL_RECORD_KEY);
    assert_memory_equal(f->I.e.rx.key, f->R.e.tx.key, PL_RECORD_KEY);
    assert_memory_not_equal(f->I.e.tx.key, f->I.e.rx.key, PL_RECORD_KEY);
    /* the initiator's stream: Hello, PairStart (clear), Identity (record); the responder's:
     * Hello, PairReply (clear), Identity and Ready (records) */
    uint8_t t[8];
    assert_int_equal(frame_types(&f->capture[0], t, 8), 3);
    assert_int_equal(t[0], PL_FRAME_CONTROL);
    assert_int_equal(t[1], PL_FRAME_CONTROL);
    assert_int_equal(t[2], PL_FRAME_RECORD);
    assert_int_equal(frame_types(&f->capture[1], t, 8), 4);
    assert_int_equal(t[0], PL_FRAME_CONTROL);
    assert_int_equal(t[1], PL_FRAME_CONTROL);
    assert_int_equal(t[2], PL_FRAME_RECORD);
    assert_int_equal(t[3], PL_FRAME_RECORD);
    /* nothing left over */
    assert_false(pl_engine_truncated(&f->I.e));
    assert_false(pl_engine_truncated(&f->R.e));
    assert_false(pl_engine_done(&f->I.e));
}

static void test_pairing(void **state)
{
    fx *f = *state;
    pair(f, NULL, 1);
    check_paired(f);
    /* clearing an opened responder does not report the attempt again */
    pl_engine_clear(&f->R.e);
    assert_int_equal(f->R.end_calls, 1);
}

static void test_pairing_chunked(void **state)
{
    fx *f = *state;
    static const size_t chunks[] = {1, 2, 7, 100};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        begin(f, &PAIRING, 2);
        f->max_chunk = chunks[i];
        pump(f);
        check_paired(f);
    }
}

/* ---------------------------------------------------------------- messages */

static void send_both(fx *f, side *s, const uint8_t *p, size_t len)
{
    (void)f;
    assert_int_equal(pl_engine_send(&s->e, p, len, 0), PL_OK);
}

static void test_messages_both_ways(void **state)
{
    fx *f = *state;
    static const size_t sizes[] = {0, 1, 5, PL_RECORD_MAX_INNER_PAYLOAD, PL_RECORD_MAX_INNER_PAYLOAD + 1,
                                   100000, BIG};
    const size_t n = sizeof sizes / sizeof sizes[0];
    for (int chunked = 0; chunked < 2; chunked++) {
        opts o = PAIRING;
        o.max_i = o.max_r = 4u * 1024u * 1024u;
        pair(f, &o, 3);
        f->max_chunk = chunked ? 20000 : 0;
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = pattern(sizes[i], (uint8_t)i);
            send_both(f, &f->I, p, sizes[i]);
            uint8_t *q = pattern(sizes[i], (uint8_t)(0x80 | i));
            send_both(f, &f->R, q, sizes[i]);
            free(p);
            free(q);
        }
        /* a message of PL_RECORD_MAX_INNER_PAYLOAD bytes is exactly one record */
        pump(f);
        assert_int_equal(f->I.error, 0);
        assert_int_equal(f->R.error, 0);
        assert_int_equal(f->R.nmsgs, n);
        assert_int_equal(f->I.nmsgs, n);
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = pattern(sizes[i], (uint8_t)i);
            uint8_t *q = pattern(sizes[i], (uint8_t)(0x80 | i));
            assert_int_equal(f->R.msgs[i].len, sizes[i]);
            assert_int_equal(f->I.msgs[i].len, sizes[i]);
            if (sizes[i]) {
                assert_memory_equal(f->R.msgs[i].data, p, sizes[i]);
                assert_memory_equal(f->I.msgs[i].data, q, sizes[i]);
            }
            free(p);
            free(q);
        }
        /* records sent by I after its Identity: 1+1+1+1+2+7+193 = 206 messages, and its Acks */
        size_t recs = 0;
        for (size_t i = 0; i < n; i++)
            recs += (sizes[i] + PL_SEQ_SIZE + PL_RECORD_MAX_INNER_PAYLOAD - 1) / PL_RECORD_MAX_INNER_PAYLOAD;
        assert_int_equal(f->I.e.tx.counter, recs + f->I.acks);
        assert_int_equal(f->R.e.rx.counter, recs + f->I.acks);
        assert_int_equal(f->R.e.tx.counter, recs + f->R.acks + 1); /* + Ready */
    }
}

static void test_peer_max(void **state)
{
    fx *f = *state;
    opts o = PAIRING;
    o.max_r = 1000;
    pair(f, &o, 4);
    uint8_t buf[1001] = {0};
    assert_int_equal(pl_engine_send(&f->I.e, buf, 1001, 0), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_engine_send(&f->I.e, buf, 1000, 0), PL_OK);
    pump(f);
    assert_int_equal(f->R.nmsgs, 1);
    assert_int_equal(f->R.msgs[0].len, 1000);
}

/* Messages sent before OPEN are held, and no application byte ever crosses in clear. */
static void test_held_before_open(void **state)
{
    fx *f = *state;
    static const char early_i[] = "EARLY-I: initiator plaintext sent before start";
    static const char mid_i[] = "MIDDLE-I: initiator plaintext sent during the handshake";
    static const char early_r[] = "EARLY-R: responder plaintext sent before start";
    static const char late_i[] = "LATE-I: initiator plaintext sent after open";
    static const char late_r[] = "LATE-R: responder plaintext sent after open";
    begin(f, &PAIRING, 5);
    /* begin() started the engines; sending now (state HELLO) is held */
    assert_int_equal(pl_engine_send(&f->I.e, early_i, sizeof early_i, 0), PL_OK);
    assert_int_equal(pl_engine_send(&f->R.e, early_r, sizeof early_r, 0), PL_OK);
    /* one step: Hellos cross; then more is sent mid-handshake */
    deliver(f, 0);
    deliver(f, 1);
    assert_false(pl_engine_open(&f->I.e));
    assert_int_equal(pl_engine_send(&f->I.e, mid_i, sizeof mid_i, 0), PL_OK);
    assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK); /* EOS after the held messages */
    assert_int_equal(pl_engine_send(&f->I.e, "x", 1, 0), PL_ERR_STATE);
    pump(f);
    assert_both_open(f);
    /* delivered after OPEN, in order, and the EOS after them */
    assert_int_equal(f->R.nmsgs, 2);
    assert_int_equal(f->R.msgs[0].len, sizeof early_i);
    assert_memory_equal(f->R.msgs[0].data, early_i, sizeof early_i);
    assert_memory_equal(f->R.msgs[1].data, mid_i, sizeof mid_i);
    assert_true(f->R.open_at < f->R.first_msg_at);
    assert_int_equal(f->R.eofs, 1);
    assert_true(f->R.eof_at > f->R.first_msg_at);
    assert_int_equal(f->I.nmsgs, 1);
    assert_memory_equal(f->I.msgs[0].data, early_r, sizeof early_r);
    assert_true(f->I.open_at < f->I.first_msg_at);
    /* after open */
    assert_int_equal(pl_engine_send(&f->R.e, late_r, sizeof late_r, 0), PL_OK);
    assert_int_equal(pl_engine_send(&f->I.e, late_i, sizeof late_i, 0), PL_ERR_STATE);
    pump(f);
    assert_int_equal(f->I.nmsgs, 2);
    assert_memory_equal(f->I.msgs[1].data, late_r, sizeof late_r);
    /* the capture does show what is in clear (the instance name in Hello) ... */
    assert_true(contains(&f->capture[1], INSTANCE, strlen(INSTANCE)));
    /* ... but none of the plaintexts (nor any 12-byte piece of them), in either direction */
    const char *texts[] = {early_i, mid_i, early_r, late_i, late_r};
    for (size_t t = 0; t < 5; t++)
        for (size_t off = 0; off + 12 <= strlen(texts[t]); off++)
            for (int d = 0; d < 2; d++)
                assert_false(contains(&f->capture[d], texts[t] + off, 12));
    /* nor the names sent in Identity */
    assert_false(contains(&f->capture[0], I_NAME, strlen(I_NAME)));
    /* and no DATA frame ever crossed in clear */
    for (int d = 0; d < 2; d++) {
        uint8_t types[32];
        size_t n = frame_types(&f->capture[d], types, 32);
        for (size_t i = 0; i < n && i < 32; i++)
            assert_int_not_equal(types[i], PL_FRAME_DATA);
    }
}

/* ---------------------------------------------------------------- reconnect */

static void test_reconnect(void **state)
{
    fx *f = *state;
    pair(f, NULL, 6);
    uint8_t stored_r[32], stored_i[32]; /* what each side's keystore would now hold */
    memcpy(stored_r, f->I.paired_id, 32);
    memcpy(stored_i, f->R.paired_id, 32);

    opts o = {.expected = stored_r, .i_instance = INSTANCE};
    begin(f, &o, 7);
    uint8_t types[4];
    assert_int_equal(frame_types(&f->I.e.out, types, 4), 2); /* Hello_I and, right behind it, ResumeStart */
    assert_int_equal(types[1], PL_FRAME_CONTROL);
    memcpy(f->R.known[0], f->pk_r, 32); /* someone else */
    memcpy(f->R.known[1], stored_i, 32);
    f->R.nknown = 2;
    pump(f);
    assert_both_open(f);
    assert_int_equal(f->I.e.pairing, 0);
    assert_int_equal(f->R.e.pairing, 0);
    assert_memory_equal(f->I.e.peer_id, f->pk_r, 32);
    assert_memory_equal(f->R.e.peer_id, f->pk_i, 32);
    assert_string_equal(f->I.e.peer_name, R_NAME);
    assert_string_equal(f->R.e.peer_name, I_NAME);
    assert_int_equal(f->R.known_calls, 1);
    assert_int_equal(f->R.begin_calls, 0);
    assert_int_equal(f->R.end_calls, 0);
    assert_int_equal(f->R.paired_calls, 0);
    assert_int_equal(f->I.paired_calls, 0);
    assert_memory_equal(f->I.e.tx.key, f->R.e.rx.key, PL_RECORD_KEY);
    /* and it carries data */
    assert_int_equal(pl_engine_send(&f->I.e, "ping", 4, 0), PL_OK);
    assert_int_equal(pl_engine_send(&f->R.e, "pong", 4, 0), PL_OK);
    pump(f);
    assert_int_equal(f->R.nmsgs, 1);
    assert_memory_equal(f->R.msgs[0].data, "ping", 4);
    assert_int_equal(f->I.nmsgs, 1);
    assert_memory_equal(f->I.msgs[0].data, "pong", 4);
}

/* pl_engine_prepare(): the responder's key pair drawn ahead is the one
 * the handshake uses, so a reconnect sends the same bytes with it as
 * without it; a responder that drew one ahead still pairs. (An initiator
 * that reconnects draws its own in pl_engine_start(), for the ResumeStart
 * behind its Hello.) */
static void test_prepare_ahead(void **state)
{
    fx *f = *state;
    pair(f, NULL, 78);
    uint8_t stored_r[32], stored_i[32];
    memcpy(stored_r, f->I.paired_id, 32);
    memcpy(stored_i, f->R.paired_id, 32);
    opts o = {.expected = stored_r, .i_instance = INSTANCE};
    pl_buf plain[2];
    size_t drawn[2];
    for (int ahead = 0; ahead < 2; ahead++) {
        begin(f, &o, 79); /* the same random streams both times */
        memcpy(f->R.known[0], stored_i, 32);
        f->R.nknown = 1;
        if (ahead) {
            size_t before_i = f->I.rnd_off, before_r = f->R.rnd_off;
            pl_engine_prepare(&f->I.e);
            pl_engine_prepare(&f->R.e);
            assert_true(f->R.e.eph_ready);
            assert_int_equal(f->I.rnd_off, before_i);
            assert_int_equal(f->R.rnd_off, before_r + 32);
            pl_engine_prepare(&f->R.e); /* once is enough */
            assert_int_equal(f->R.rnd_off, before_r + 32);
        }
        pump(f);
        assert_both_open(f);
        assert_false(f->I.e.eph_ready || f->R.e.eph_ready);
        assert_true(sodium_is_zero(f->I.e.eph_sk, 32) && sodium_is_zero(f->R.e.eph_sk, 32));
        if (!ahead) {
            for (int d = 0; d < 2; d++) {
                pl_buf_init(&plain[d]);
                assert_int_equal(pl_buf_append(&plain[d], pl_buf_head(&f->capture[d]), pl_buf_size(&f->capture[d])),
                                 PL_OK);
            }
            drawn[0] = f->I.rnd_off;
            drawn[1] = f->R.rnd_off;
            continue;
        }
        for (int d = 0; d < 2; d++) {
            assert_int_equal(pl_buf_size(&f->capture[d]), pl_buf_size(&plain[d]));
            assert_memory_equal(pl_buf_head(&f->capture[d]), pl_buf_head(&plain[d]), pl_buf_size(&plain[d]));
            pl_buf_clear(&plain[d]);
        }
        assert_int_equal(f->I.rnd_off, drawn[0]); /* no second key pair */
        assert_int_equal(f->R.rnd_off, drawn[1]);
        size_t open_off = f->R.rnd_off;
        pl_engine_prepare(&f->R.e); /* open: nothing to do */
        assert_int_equal(f->R.rnd_off, open_off);
    }

    /* A pairing: only the responder draws ahead, and the pairing overwrites it. */
    begin(f, &PAIRING, 80);
    uint8_t types[4];
    assert_int_equal(frame_types(&f->I.e.out, types, 4), 1); /* PairStart waits for Hello_R (its sid) */
    size_t before_i = f->I.rnd_off;
    pl_engine_prepare(&f->I.e);
    pl_engine_prepare(&f->R.e);
    assert_int_equal(f->I.rnd_off, before_i);
    assert_false(f->I.e.eph_ready);
    assert_true(f->R.e.eph_ready);
    pump(f);
    assert_both_open(f);
    assert_false(f->R.e.eph_ready);
    assert_int_equal(f->R.paired_calls, 1);
}

/* The responder does not know the initiator: both NOT_PAIRED. */
static void test_reconnect_unknown_initiator(void **state)
{
    fx *f = *state;
    opts o = {.expected = f->pk_r};
    begin(f, &o, 8);
    memcpy(f->R.known[0], f->pk_r, 32); /* knows someone, not the initiator */
    f->R.nknown = 1;
    pump(f);
    assert_int_equal(f->R.error, PL_ERR_NOT_PAIRED);
    assert_int_equal(f->I.error, PL_ERR_NOT_PAIRED);
    assert_int_equal(f->R.known_calls, 1);
    assert_int_equal(f->R.opens, 0);
    assert_int_equal(f->I.opens, 0);
    assert_int_equal(f->I.paired_calls + f->R.paired_calls, 0);
    assert_int_equal(last_wire_error(&f->capture[1]), PEERLINK__ERROR__CODE__NOT_PAIRED);
}

/* The responder's key is not the one the initiator stored: NOT_PAIRED, and
 * the initiator never reveals its identity. */
static void test_reconnect_responder_changed(void **state)
{
    fx *f = *state;
    uint8_t other_pk[32], other_sk[64];
    keypair(other_pk, other_sk, 0x03);
    opts o = {.expected = other_pk};
    begin(f, &o, 9);
    memcpy(f->R.known[0], f->pk_i, 32);
    f->R.nknown = 1;
    pump(f);
    assert_int_equal(f->I.error, PL_ERR_NOT_PAIRED);
    assert_int_equal(f->R.error, PL_ERR_NOT_PAIRED); /* from the initiator's Error */
    assert_int_equal(f->R.known_calls, 0);
    assert_int_equal(f->I.opens + f->R.opens, 0);
    assert_false(has_record(&f->capture[0])); /* the initiator's Identity never left */
    assert_int_equal(last_wire_error(&f->capture[0]), PEERLINK__ERROR__CODE__NOT_PAIRED);
}

/* No code and no stored peer: nothing to do. */
static void test_initiator_without_code_or_peer(void **state)
{
    fx *f = *state;
    opts o = {0};
    begin(f, &o, 10);
    pump(f);
    assert_int_equal(f->I.error, PL_ERR_NOT_PAIRED);
    assert_int_equal(f->R.error, PL_ERR_NOT_PAIRED);
}

/* The initiator meant another instance. */
static void test_instance_mismatch(void **state)
{
    fx *f = *state;
    opts o = PAIRING;
    o.r_instance = "Hall";
    begin(f, &o, 11);
    pump(f);
    assert_int_equal(f->I.error, PL_ERR_AUTH);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    assert_int_equal(f->R.begin_calls, 0);
}

/* ---------------------------------------------------------------- pairing failures */

static void test_wrong_code(void **state)
{
    fx *f = *state;
    begin(f, &PAIRING, 12);
    f->R.code = "654321";
    pump(f);
    assert_int_equal(f->I.error, PL_ERR_WRONG_CODE);
    assert_int_equal(f->R.error, PL_ERR_WRONG_CODE); /* told by the initiator's Error */
    assert_int_equal(last_wire_error(&f->capture[0]), PEERLINK__ERROR__CODE__WRONG_CODE);
    assert_int_equal(f->R.begin_calls, 1);
    assert_int_equal(f->R.end_calls, 1);
    assert_int_equal(f->R.end_result, PL_ERR_WRONG_CODE);
    assert_int_equal(f->I.paired_calls + f->R.paired_calls, 0);
    assert_int_equal(f->I.opens + f->R.opens, 0);
    assert_false(has_record(&f->capture[0])); /* the initiator never sent its Identity */
    /* clearing does not report the attempt a second time */
    pl_engine_clear(&f->R.e);
    assert_int_equal(f->R.end_calls, 1);
}

/* Every code differing in one digit fails the same way. */
static void test_wrong_code_each_digit(void **state)
{
    fx *f = *state;
    for (size_t i = 0; i < strlen(CODE); i++) {
        char code[] = CODE;
        code[i] = code[i] == '9' ? '0' : (char)(code[i] + 1);
        begin(f, &PAIRING, 13);
        f->R.code = code;
        pump(f);
        assert_int_equal(f->I.error, PL_ERR_WRONG_CODE);
        assert_int_equal(f->R.error, PL_ERR_WRONG_CODE);
        assert_int_equal(f->R.end_result, PL_ERR_WRONG_CODE);
    }
}

/* A responder that forgot its end of the attempt (cleared mid-handshake) reports it. */
static void test_pair_end_on_clear(void **state)
{
    fx *f = *state;
    begin(f, &PAIRING, 14);
    deliver(f, 0); /* Hello_I */
    deliver(f, 1); /* Hello_R */
    deliver(f, 0); /* PairStart: pair_begin */
    assert_int_equal(f->R.begin_calls, 1);
    assert_int_equal(f->R.end_calls, 0);
    pl_engine_clear(&f->R.e);
    assert_int_equal(f->R.end_calls, 1);
    assert_int_equal(f->R.end_result, PL_ERR_CLOSED);
}

static void test_pair_begin_refuses(void **state)
{
    fx *f = *state;
    static const int refusals[] = {PL_ERR_LOCKED, PL_ERR_BUSY, PL_ERR_NOT_PAIRED};
    for (size_t i = 0; i < 3; i++) {
        begin(f, &PAIRING, 15);
        f->R.begin_rc = refusals[i];
        pump(f);
        assert_int_equal(f->R.error, refusals[i]);
        assert_int_equal(f->I.error, refusals[i]);
        assert_int_equal(f->R.begin_calls, 1);
        assert_int_equal(f->R.end_calls, 0); /* not admitted: nothing to end */
        assert_false(has_record(&f->capture[1])); /* nothing sealed was sent */
    }
}

/* ---------------------------------------------------------------- man in the middle */

/* Where a frame's interesting bytes are, learnt from a clean run. */
typedef struct mitm_flip {
    int dir;
    size_t index; /* frame index in that direction */
    size_t pos;   /* byte to change */
    uint8_t mask;
    int hit;
} mitm_flip;

static void mitm_flip_cb(void *ctx, int dir, size_t index, uint8_t *frame, size_t *len)
{
    mitm_flip *m = ctx;
    if (dir == m->dir && index == m->index && m->pos < *len) {
        frame[m->pos] ^= m->mask;
        m->hit = 1;
    }
}

typedef struct mitm_log {
    size_t count[2];
    size_t len[2][8];
    uint8_t frame[2][8][512];
} mitm_log;

static void mitm_log_cb(void *ctx, int dir, size_t index, uint8_t *frame, size_t *len)
{
    mitm_log *m = ctx;
    if (index < 8 && *len <= 512) {
        memcpy(m->frame[dir][index], frame, *len);
        m->len[dir][index] = *len;
    }
    m->count[dir] = index + 1;
}

static size_t find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
    const uint8_t *p = memmem(hay, n, needle, k);
    assert_non_null(p);
    return (size_t)(p - hay);
}

static void test_mitm_each_byte(void **state)
{
    fx *f = *state;
    /* A clean run, logged: the handshake frames and where nonces and Ys are. */
    mitm_log log;
    memset(&log, 0, sizeof log);
    begin(f, &PAIRING, 16);
    f->mitm = mitm_log_cb;
    f->mitm_ctx = &log;
    pump(f);
    check_paired(f);
    assert_int_equal(log.count[0], 3); /* Hello, PairStart, Identity */
    assert_int_equal(log.count[1], 4); /* Hello, PairReply, Identity, Ready */
    size_t nonce_i = find(log.frame[0][0], log.len[0][0], f->I.e.nonce, 32);
    size_t nonce_r = find(log.frame[1][0], log.len[1][0], f->R.e.nonce, 32);
    size_t ya = find(log.frame[0][1], log.len[0][1], f->I.e.eph_pk, 32);
    size_t yb = find(log.frame[1][1], log.len[1][1], f->R.e.eph_pk, 32);

    size_t runs = 0, class_hits[6] = {0};
    for (int dir = 0; dir < 2; dir++) {
        for (size_t idx = 0; idx < log.count[dir]; idx++) {
            for (size_t pos = 0; pos < log.len[dir][idx]; pos++) {
                mitm_flip m = {dir, idx, pos, 0x04, 0};
                begin(f, &PAIRING, 16);
                f->mitm = mitm_flip_cb;
                f->mitm_ctx = &m;
                pump(f);
                runs++;
                assert_true(m.hit);
                /* never both open; at least one side failed or is stuck mid-frame */
                assert_false(f->I.opens && f->R.opens && f->I.error == 0 && f->R.error == 0);
                assert_false(pl_engine_open(&f->I.e) && pl_engine_open(&f->R.e));
                assert_true(f->I.error || f->R.error || pl_engine_truncated(&f->I.e) ||
                            pl_engine_truncated(&f->R.e));
                /* nobody stored a peer it should not have: a pairing that was
                 * stored must be the genuine one */
                if (f->R.paired_calls)
                    assert_memory_equal(f->R.paired_id, f->pk_i, 32);
                if (f->I.paired_calls)
                    assert_memory_equal(f->I.paired_id, f->pk_r, 32);
                int payload = pos >= PL_FRAME_HEADER_SIZE;
                if (dir == 0 && idx == 0 && pos >= nonce_i && pos < nonce_i + 32) {
                    class_hits[0]++; /* Hello_I nonce: different sid and transcript */
                    assert_int_equal(f->I.error, PL_ERR_WRONG_CODE);
                    assert_int_equal(f->R.error, PL_ERR_WRONG_CODE);
                    assert_int_equal(f->R.end_result, PL_ERR_WRONG_CODE);
                } else if (dir == 1 && idx == 0 && pos >= nonce_r && pos < nonce_r + 32) {
                    class_hits[1]++; /* Hello_R nonce */
                    assert_int_equal(f->I.error, PL_ERR_WRONG_CODE);
                    assert_int_equal(f->R.error, PL_ERR_WRONG_CODE);
                } else if (dir == 0 && idx == 1 && pos >= ya && pos < ya + 32) {
                    class_hits[2]++; /* PairStart Y: invalid point or wrong key */
                    assert_true(f->R.error == PL_ERR_PROTOCOL || f->R.error == PL_ERR_WRONG_CODE);
                    assert_int_equal(f->I.error, f->R.error);
                    assert_int_equal(f->R.end_result, f->R.error);
                } else if (dir == 1 && idx == 1 && pos >= yb && pos < yb + 32) {
                    class_hits[3]++; /* PairReply Y */
                    assert_true(f->I.error == PL_ERR_PROTOCOL || f->I.error == PL_ERR_WRONG_CODE);
                    assert_int_equal(f->R.error, f->I.error);
                } else if (idx == 2 && payload) {
                    class_hits[4]++; /* a sealed Identity: key confirmation fails */
                    assert_int_equal(f->I.error, PL_ERR_WRONG_CODE);
                    assert_int_equal(f->R.error, PL_ERR_WRONG_CODE);
                    assert_int_equal(f->R.end_result, PL_ERR_WRONG_CODE);
                    /* Nobody stored anybody: the initiator stores only on Ready. */
                    assert_int_equal(f->I.paired_calls + f->R.paired_calls, 0);
                } else if (dir == 1 && idx == 3 && payload) {
                    class_hits[5]++; /* Ready, under the application key */
                    assert_int_equal(f->I.error, PL_ERR_AUTH);
                    assert_int_equal(f->I.opens, 0);
                    assert_int_equal(f->R.error, PL_ERR_PROTOCOL); /* a clear Error after OPEN */
                }
            }
        }
    }
    for (int c = 0; c < 4; c++)
        assert_int_equal(class_hits[c], 32);
    assert_true(class_hits[4] > 100);
    assert_true(class_hits[5] >= PL_RECORD_TAG);
    assert_true(runs > 300);
}

/* A PairStart whose Y is replaced by the identity element. */
static void mitm_zero_y(void *ctx, int dir, size_t index, uint8_t *frame, size_t *len)
{
    const uint8_t *ya = ctx;
    if (dir == 0 && index == 1) {
        uint8_t *p = memmem(frame, *len, ya, 32);
        assert_non_null(p);
        memset(p, 0, 32);
    }
}

/* ---------------------------------------------------------------- hand-crafted input */

static size_t pack_control(const Peerlink__Control *c, uint8_t *out, size_t cap)
{
    size_t n = peerlink__control__get_packed_size(c);
    assert_true(PL_FRAME_HEADER_SIZE + n <= cap);
    pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_CONTROL, 0, (uint32_t)n};
    pl_frame_header_encode(&h, out);
    return PL_FRAME_HEADER_SIZE + peerlink__control__pack(c, out + PL_FRAME_HEADER_SIZE);
}

static size_t make_hello(uint8_t *out, size_t cap, uint32_t lo, uint32_t hi, const char *instance)
{
    static uint8_t nonce[32] = {1, 2, 3};
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Hello h = PEERLINK__HELLO__INIT;
    h.min_version = lo;
    h.max_version = hi;
    h.max_message = 1000;
    h.nonce.data = nonce;
    h.nonce.len = 32;
    h.instance = (char *)instance;
    c.msg_case = PEERLINK__CONTROL__MSG_HELLO;
    c.hello = &h;
    return pack_control(&c, out, cap);
}

static size_t make_pair_start(uint8_t *out, size_t cap, const uint8_t y[32])
{
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__PairStart ps = PEERLINK__PAIR_START__INIT;
    ps.cpace_y.data = (uint8_t *)y;
    ps.cpace_y.len = 32;
    c.msg_case = PEERLINK__CONTROL__MSG_PAIR_START;
    c.pair_start = &ps;
    return pack_control(&c, out, cap);
}

/* A responder (and an initiator) configured and started, fed raw bytes. */
static void feed_raw(fx *f, side *s, const uint8_t *p, size_t n)
{
    feed_side(f, s, p, n);
}

static void test_version_mismatch(void **state)
{
    fx *f = *state;
    uint8_t buf[256];
    /* control: 1..5 overlaps */
    begin(f, &PAIRING, 17);
    size_t n = make_hello(buf, sizeof buf, 1, 5, "");
    feed_raw(f, &f->R, buf, n);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.e.version, 1);
    assert_int_equal(f->R.e.state, PL_HS_START);
    /* 2..5 does not */
    begin(f, &PAIRING, 17);
    n = make_hello(buf, sizeof buf, 2, 5, "");
    feed_raw(f, &f->R, buf, n);
    assert_int_equal(f->R.error, PL_ERR_VERSION);
    /* the responder said why, in clear, after its Hello */
    pl_buf_append(&f->capture[1], pl_buf_head(&f->R.e.out), pl_buf_size(&f->R.e.out));
    assert_int_equal(last_wire_error(&f->capture[1]), PEERLINK__ERROR__CODE__VERSION);
    /* and an initiator the same */
    begin(f, &PAIRING, 17);
    n = make_hello(buf, sizeof buf, 2, 5, INSTANCE);
    feed_raw(f, &f->I, buf, n);
    assert_int_equal(f->I.error, PL_ERR_VERSION);
    /* the peer that receives the Error reports VERSION too */
    begin(f, &PAIRING, 17);
    n = make_hello(buf, sizeof buf, 2, 5, "");
    feed_raw(f, &f->R, buf, n);
    pump(f); /* R's Hello and Error reach I */
    assert_int_equal(f->R.error, PL_ERR_VERSION);
    assert_int_equal(f->I.error, PL_ERR_VERSION);
}

static void test_data_in_clear(void **state)
{
    fx *f = *state;
    uint8_t buf[256];
    begin(f, &PAIRING, 18);
    size_t n = make_hello(buf, sizeof buf, 1, 1, "");
    static const uint8_t data[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 'x'};
    feed_raw(f, &f->R, buf, n);
    assert_int_equal(f->R.error, 0); /* the Hello alone is fine */
    feed_raw(f, &f->R, data, sizeof data);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    assert_int_equal(f->R.nmsgs, 0);
    pl_buf_append(&f->capture[1], pl_buf_head(&f->R.e.out), pl_buf_size(&f->R.e.out));
    assert_int_equal(last_wire_error(&f->capture[1]), PEERLINK__ERROR__CODE__PROTOCOL);
    /* also before the Hello, and at the initiator */
    begin(f, &PAIRING, 18);
    feed_raw(f, &f->I, data, sizeof data);
    assert_int_equal(f->I.error, PL_ERR_PROTOCOL);
    /* a record before any key */
    begin(f, &PAIRING, 18);
    static const uint8_t rec[8 + 24] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18};
    feed_raw(f, &f->R, buf, n);
    feed_raw(f, &f->R, rec, sizeof rec);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
}

static void test_identity_element_y(void **state)
{
    fx *f = *state;
    uint8_t buf[256], zero[32] = {0};
    begin(f, &PAIRING, 19);
    size_t n = make_hello(buf, sizeof buf, 1, 1, "");
    n += make_pair_start(buf + n, sizeof buf - n, zero);
    feed_raw(f, &f->R, buf, n);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    assert_int_equal(f->R.begin_calls, 1);
    assert_int_equal(f->R.end_calls, 1);
    assert_int_equal(f->R.end_result, PL_ERR_PROTOCOL);
    /* control: a valid Y from the same hand-crafted path goes on to PairReply */
    begin(f, &PAIRING, 19);
    uint8_t y[32];
    crypto_core_ristretto255_random(y);
    n = make_hello(buf, sizeof buf, 1, 1, "");
    n += make_pair_start(buf + n, sizeof buf - n, y);
    feed_raw(f, &f->R, buf, n);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.e.state, PL_HS_IDENTITY);
    /* through a man in the middle on a real initiator */
    begin(f, &PAIRING, 19);
    deliver(f, 0);
    deliver(f, 1); /* the initiator has now queued PairStart with Ya = eph_pk */
    uint8_t ya[32];
    memcpy(ya, f->I.e.eph_pk, 32);
    f->mitm = mitm_zero_y;
    f->mitm_ctx = ya;
    pump(f);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    assert_int_equal(f->I.error, PL_ERR_PROTOCOL);
    assert_int_equal(f->R.end_result, PL_ERR_PROTOCOL);
}

static void test_oversized_control(void **state)
{
    fx *f = *state;
    /* one frame header announcing PL_CONTROL_MAX + 1: refused at the header */
    begin(f, &PAIRING, 20);
    uint8_t hdr[8] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01};
    size_t used = 0;
    pl_engine_event ev;
    assert_int_equal(pl_engine_receive(&f->R.e, hdr, 8, &used, &ev), PL_ERR_TOO_LARGE);
    assert_int_equal(used, 8);
    pl_buf_append(&f->capture[1], pl_buf_head(&f->R.e.out), pl_buf_size(&f->R.e.out));
    assert_int_equal(last_wire_error(&f->capture[1]), PEERLINK__ERROR__CODE__TOO_LARGE);
    /* two frames adding up to PL_CONTROL_MAX + 1 */
    begin(f, &PAIRING, 20);
    uint8_t *big = calloc(1, 8 + PL_CONTROL_MAX + 8);
    assert_non_null(big);
    pl_frame_header h1 = {1, PL_FRAME_CONTROL, PL_FRAME_FLAG_MORE, PL_CONTROL_MAX};
    pl_frame_header h2 = {1, PL_FRAME_CONTROL, 0, 1};
    pl_frame_header_encode(&h1, big);
    pl_frame_header_encode(&h2, big + 8 + PL_CONTROL_MAX);
    feed_raw(f, &f->R, big, 8 + PL_CONTROL_MAX + 8);
    assert_int_equal(f->R.error, PL_ERR_TOO_LARGE);
    /* control: exactly PL_CONTROL_MAX is read, and a Hello padded to it with
     * an unknown field is accepted: later versions may add fields */
    begin(f, &PAIRING, 20);
    uint8_t hello[256];
    size_t n = make_hello(hello, sizeof hello, 1, 1, "") - 8;
    memset(big, 0, 8 + PL_CONTROL_MAX);
    pl_frame_header h3 = {1, PL_FRAME_CONTROL, 0, PL_CONTROL_MAX};
    pl_frame_header_encode(&h3, big);
    memcpy(big + 8, hello + 8, n);
    /* Control field 15, length-delimited, filling the rest */
    size_t rest = PL_CONTROL_MAX - n - 3;
    big[8 + n] = (15 << 3) | 2;
    big[8 + n + 1] = (uint8_t)(0x80 | (rest & 0x7f));
    big[8 + n + 2] = (uint8_t)(rest >> 7);
    feed_raw(f, &f->R, big, 8 + PL_CONTROL_MAX);
    assert_int_equal(f->R.error, PL_OK);
    assert_int_equal(f->R.e.state, PL_HS_START);
    free(big);
}

/* ---------------------------------------------------------------- the record layer after OPEN */

/* The records I has queued, split; returns how many. */
static size_t take_records(side *s, uint8_t rec[][128], size_t len[], size_t cap)
{
    size_t n = 0;
    while (pl_buf_size(&s->e.out) > 0) {
        const uint8_t *p = pl_buf_head(&s->e.out);
        size_t flen = 8 + ((size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7]);
        assert_int_equal(p[1], PL_FRAME_RECORD);
        assert_true(n < cap && flen <= 128);
        memcpy(rec[n], p, flen);
        len[n++] = flen;
        pl_buf_consume(&s->e.out, flen);
    }
    return n;
}

static void test_record_tamper(void **state)
{
    fx *f = *state;
    /* every byte of a record: header bytes are refused by the frame layer or the AEAD */
    for (size_t pos = 0; pos < 8 + 8 + 8 + 3 + 16; pos++) {
        pair(f, NULL, 21);
        assert_int_equal(pl_engine_send(&f->I.e, "abc", 3, 0), PL_OK);
        uint8_t rec[2][128];
        size_t len[2];
        assert_int_equal(take_records(&f->I, rec, len, 2), 1);
        assert_int_equal(len[0], 8 + 8 + 8 + 3 + 16); /* outer + inner header, seq, "abc", tag */
        rec[0][pos] ^= 0x01;
        feed_raw(f, &f->R, rec[0], len[0]);
        assert_int_equal(f->R.nmsgs, 0);
        if (pos >= 8 || pos == 7)
            assert_int_equal(f->R.error, PL_ERR_AUTH);
        else
            assert_true(f->R.error < 0 || pl_engine_truncated(&f->R.e));
    }
    /* control: untouched, it opens */
    pair(f, NULL, 21);
    assert_int_equal(pl_engine_send(&f->I.e, "abc", 3, 0), PL_OK);
    pump(f);
    assert_int_equal(f->R.nmsgs, 1);
}

static void test_record_replay_reorder_drop(void **state)
{
    fx *f = *state;
    uint8_t rec[3][128];
    size_t len[3];
    /* replay */
    pair(f, NULL, 22);
    assert_int_equal(pl_engine_send(&f->I.e, "one", 3, 0), PL_OK);
    assert_int_equal(take_records(&f->I, rec, len, 3), 1);
    feed_raw(f, &f->R, rec[0], len[0]);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.nmsgs, 1);
    feed_raw(f, &f->R, rec[0], len[0]);
    assert_int_equal(f->R.error, PL_ERR_AUTH);
    assert_int_equal(f->R.nmsgs, 1);
    /* reorder */
    pair(f, NULL, 22);
    assert_int_equal(pl_engine_send(&f->I.e, "one", 3, 0), PL_OK);
    assert_int_equal(pl_engine_send(&f->I.e, "two", 3, 0), PL_OK);
    assert_int_equal(take_records(&f->I, rec, len, 3), 2);
    feed_raw(f, &f->R, rec[1], len[1]);
    assert_int_equal(f->R.error, PL_ERR_AUTH);
    assert_int_equal(f->R.nmsgs, 0);
    /* drop the first: the second fails */
    pair(f, NULL, 22);
    assert_int_equal(pl_engine_send(&f->I.e, "one", 3, 0), PL_OK);
    assert_int_equal(pl_engine_send(&f->I.e, "two", 3, 0), PL_OK);
    assert_int_equal(pl_engine_send(&f->I.e, "six", 3, 0), PL_OK);
    assert_int_equal(take_records(&f->I, rec, len, 3), 3);
    feed_raw(f, &f->R, rec[0], len[0]);
    feed_raw(f, &f->R, rec[2], len[2]);
    assert_int_equal(f->R.error, PL_ERR_AUTH);
    assert_int_equal(f->R.nmsgs, 1);
    /* reflect: a record sent by I, fed back to I */
    pair(f, NULL, 22);
    assert_int_equal(pl_engine_send(&f->I.e, "one", 3, 0), PL_OK);
    assert_int_equal(take_records(&f->I, rec, len, 3), 1);
    feed_raw(f, &f->I, rec[0], len[0]);
    assert_int_equal(f->I.error, PL_ERR_AUTH);
    /* control: in order, all three arrive */
    pair(f, NULL, 22);
    assert_int_equal(pl_engine_send(&f->I.e, "one", 3, 0), PL_OK);
    assert_int_equal(pl_engine_send(&f->I.e, "two", 3, 0), PL_OK);
    assert_int_equal(take_records(&f->I, rec, len, 3), 2);
    feed_raw(f, &f->R, rec[0], len[0]);
    feed_raw(f, &f->R, rec[1], len[1]);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.nmsgs, 2);
    assert_memory_equal(f->R.msgs[1].data, "two", 3);
}

static void test_truncated(void **state)
{
    fx *f = *state;
    uint8_t rec[4][128];
    size_t len[4];
    pair(f, NULL, 23);
    assert_false(pl_engine_truncated(&f->R.e));
    assert_int_equal(pl_engine_send(&f->I.e, "hello world", 11, 0), PL_OK);
    assert_int_equal(take_records(&f->I, rec, len, 4), 1);
    for (size_t cut = 1; cut < len[0]; cut++) {
        pair(f, NULL, 23);
        assert_int_equal(pl_engine_send(&f->I.e, "hello world", 11, 0), PL_OK);
        assert_int_equal(take_records(&f->I, rec, len, 4), 1);
        feed_raw(f, &f->R, rec[0], cut);
        assert_int_equal(f->R.error, 0);
        assert_int_equal(f->R.nmsgs, 0);
        assert_true(pl_engine_truncated(&f->R.e));
        feed_raw(f, &f->R, rec[0] + cut, len[0] - cut);
        assert_int_equal(f->R.nmsgs, 1);
        assert_false(pl_engine_truncated(&f->R.e));
    }
    /* a message of several records, cut at a record boundary */
    pair(f, NULL, 23);
    uint8_t *p = pattern(40000, 7);
    assert_int_equal(pl_engine_send(&f->I.e, p, 40000, 0), PL_OK);
    size_t total = pl_buf_size(&f->I.e.out);
    size_t first_two = 2 * (8 + 8 + PL_RECORD_MAX_INNER_PAYLOAD + 16);
    assert_true(total > first_two);
    feed_raw(f, &f->R, pl_buf_head(&f->I.e.out), first_two);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.nmsgs, 0);
    assert_true(pl_engine_truncated(&f->R.e));
    feed_raw(f, &f->R, pl_buf_head(&f->I.e.out) + first_two, total - first_two);
    assert_int_equal(f->R.nmsgs, 1);
    assert_memory_equal(f->R.msgs[0].data, p, 40000);
    assert_false(pl_engine_truncated(&f->R.e));
    free(p);
}

static void test_end_of_stream(void **state)
{
    fx *f = *state;
    pair(f, NULL, 24);
    assert_int_equal(pl_engine_send(&f->I.e, "last", 4, 0), PL_OK);
    assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK);
    assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK); /* idempotent: one EOS */
    pump(f);
    assert_int_equal(f->R.nmsgs, 1);
    assert_int_equal(f->R.eofs, 1);
    assert_false(pl_engine_done(&f->R.e));
    assert_false(pl_engine_done(&f->I.e));
    /* the other direction still works */
    assert_int_equal(pl_engine_send(&f->R.e, "reply", 5, 0), PL_OK);
    assert_int_equal(pl_engine_shutdown(&f->R.e), PL_OK);
    pump(f);
    assert_int_equal(f->I.nmsgs, 1);
    assert_int_equal(f->I.eofs, 1);
    assert_true(pl_engine_done(&f->I.e));
    assert_true(pl_engine_done(&f->R.e));
    assert_int_equal(f->I.error + f->R.error, 0);
    /* EndOfStream went sealed: no clear EndOfStream on the wire */
    static const uint8_t eos_clear[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x12, 0x00};
    assert_false(contains(&f->capture[0], eos_clear, sizeof eos_clear));
    assert_false(contains(&f->capture[1], eos_clear, sizeof eos_clear));
    /* anything after the peer's EOS is a protocol error (sealed by a
     * misbehaving peer: I's key, used directly) */
    uint8_t inner[9] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 'x'};
    pl_buf extra;
    pl_buf_init(&extra);
    assert_int_equal(pl_record_seal(&f->I.e.tx, inner, sizeof inner, &extra), PL_OK);
    feed_raw(f, &f->R, pl_buf_head(&extra), pl_buf_size(&extra));
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    assert_int_equal(f->R.nmsgs, 1);
    pl_buf_clear(&extra);
}

static void test_rekey(void **state)
{
    fx *f = *state;
    opts o = PAIRING;
    o.rekey_i = o.rekey_r = 4;
    pair(f, &o, 25);
    for (int i = 0; i < 50; i++) {
        uint8_t *p = pattern((size_t)i * 37, (uint8_t)i);
        assert_int_equal(pl_engine_send(&f->I.e, p, (size_t)i * 37, 0), PL_OK);
        assert_int_equal(pl_engine_send(&f->R.e, p, (size_t)i * 37, 0), PL_OK);
        free(p);
        if (i % 3 == 0)
            pump(f);
    }
    pump(f);
    assert_int_equal(f->I.error + f->R.error, 0);
    assert_int_equal(f->R.nmsgs, 50);
    assert_int_equal(f->I.nmsgs, 50);
    for (int i = 0; i < 50; i++) {
        uint8_t *p = pattern((size_t)i * 37, (uint8_t)i);
        assert_int_equal(f->R.msgs[i].len, (size_t)i * 37);
        assert_int_equal(f->I.msgs[i].len, (size_t)i * 37);
        if (i)
            assert_memory_equal(f->R.msgs[i].data, p, (size_t)i * 37);
        if (i)
            assert_memory_equal(f->I.msgs[i].data, p, (size_t)i * 37);
        free(p);
    }
    /* I sent 50 records and its Acks under the application key, a rekey every 4;
     * R sent Ready + 50 + its Acks */
    size_t i_recs = 50 + f->I.acks, r_recs = 1 + 50 + f->R.acks;
    assert_true(f->I.acks > 0 && f->R.acks > 0);
    assert_int_equal(f->I.e.tx.epoch, i_recs / 4);
    assert_int_equal(f->I.e.tx.counter, i_recs % 4);
    assert_int_equal(f->R.e.rx.epoch, i_recs / 4);
    assert_int_equal(f->R.e.tx.epoch, r_recs / 4);
    assert_int_equal(f->R.e.tx.counter, r_recs % 4);
    assert_memory_equal(f->I.e.tx.key, f->R.e.rx.key, PL_RECORD_KEY);

    /* control: if only one side rekeys, the record after the fourth fails */
    o.rekey_i = 0;
    pair(f, &o, 25);
    for (int i = 0; i < 6; i++)
        assert_int_equal(pl_engine_send(&f->I.e, "m", 1, 0), PL_OK);
    pump(f);
    assert_int_equal(f->R.nmsgs, 4);
    assert_int_equal(f->R.error, PL_ERR_AUTH);
}

/* ---------------------------------------------------------------- sessions: helpers */

/* Messages named after their sender and number: "I-message-3". */
static void send_tagged(side *s, char who, int i)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%c-message-%d", who, i);
    assert_int_equal(pl_engine_send(&s->e, buf, (size_t)n, 0), PL_OK);
}

/* s received exactly who-message-first .. who-message-(first+n-1), each once, in order. */
static void assert_log_from(const side *s, char who, int first, int n)
{
    assert_int_equal(s->nmsgs, (size_t)n);
    for (int i = 0; i < n; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%c-message-%d", who, first + i);
        assert_int_equal(s->msgs[i].len, (size_t)len);
        assert_memory_equal(s->msgs[i].data, buf, (size_t)len);
    }
}

static void assert_log(const side *s, char who, int n)
{
    assert_log_from(s, who, 0, n);
}

/* Nothing of what s has queued reaches the peer. */
static void drop_out(side *s)
{
    pl_buf_consume(&s->e.out, pl_buf_size(&s->e.out));
}

/* The responder the listener runs for its next handshake: configured like the first (same identity). */
static void fresh_responder(fx *f)
{
    pl_engine_clear(&f->R.e);
    pl_engine_init(&f->R.e, 0);
    f->R.error = 0;
    f->R.opens = 0;
    f->R.open_at = -1;
    f->R.find_calls = f->R.admit_calls = f->R.adopts = 0;
    pl_engine_config cr = {0};
    cr.identity_sk = f->sk_r;
    cr.name = R_NAME;
    cr.instance = INSTANCE;
    cr.hooks = &f->R.hooks;
    cr.hooks_ctx = &f->R;
    assert_int_equal(pl_engine_configure(&f->R.e, &cr), PL_OK);
    assert_int_equal(pl_engine_start(&f->R.e), PL_OK);
}

/*
 * The link breaks: whatever either side still had queued is lost. The
 * initiator keeps its session (pl_engine_relink) and dials again. The
 * responder's engine stays behind in f->old as the session the listener
 * holds; a fresh responder engine answers the new link, and its
 * find_session offers f->old's stream (adopted on a resumed OPEN). The
 * sides' logs (messages, end-of-streams, acknowledgements) go on; the
 * random streams go on too, so the new handshake has new nonces.
 */
static void relink(fx *f)
{
    drop_out(&f->I);
    drop_out(&f->R);
    pl_engine_clear(&f->old);
    f->old = f->R.e;          /* moved: f->R.e is re-initialised below without freeing */
    pl_engine_init(&f->R.e, 0);
    f->R.session = &f->old.st;
    f->R.session_peer = f->pk_i;
    f->R.adopt_from = &f->old.st;
    fresh_responder(f);
    pl_engine_relink(&f->I.e);
    f->I.error = 0;
    f->I.opens = 0;
    f->I.open_at = -1;
    wire_reset(f);
    assert_int_equal(pl_engine_start(&f->I.e), PL_OK);
}

/* A first session, on a reconnect handshake with stored keys. */
static void open_session(fx *f, uint8_t test_no)
{
    opts o = {.expected = f->pk_r, .i_instance = INSTANCE};
    begin(f, &o, test_no);
    memcpy(f->R.known[0], f->pk_i, 32);
    f->R.nknown = 1;
    pump(f);
    assert_both_open(f);
    assert_true(f->I.e.st.established);
    assert_true(f->R.e.st.established);
    assert_memory_equal(f->I.e.st.id, f->R.e.st.id, PL_SESSION_ID_SIZE);
    assert_memory_equal(f->I.e.st.resume_key, f->R.e.st.resume_key, PL_RESUME_KEY_SIZE);
    assert_false(f->I.e.resumed || f->R.e.resumed || f->I.e.reset);
    assert_int_equal(f->R.find_calls, 0);
    assert_int_equal(f->R.admit_calls, 1);
    assert_memory_equal(f->R.admit_peer, f->pk_i, 32);
}

/* The relinked handshake up to the initiator's Identity, queued and not delivered. */
static void step_to_identity_i(fx *f)
{
    deliver(f, 0); /* Hello_I, ResumeStart right behind it */
    deliver(f, 1); /* Hello_R, ResumeReply, Identity_R */
    assert_int_equal(f->I.e.state, PL_HS_READY);
    assert_int_equal(f->R.e.state, PL_HS_IDENTITY);
    assert_int_equal(f->I.error + f->R.error, 0);
}

/* A copy of the first frame s has queued (malloc'd), taken off its queue. */
static uint8_t *take_frame(side *s, size_t *len)
{
    assert_true(pl_buf_size(&s->e.out) >= PL_FRAME_HEADER_SIZE);
    const uint8_t *p = pl_buf_head(&s->e.out);
    size_t n = PL_FRAME_HEADER_SIZE + ((size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7]);
    assert_true(n <= pl_buf_size(&s->e.out));
    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, p, n);
    pl_buf_consume(&s->e.out, n);
    *len = n;
    return copy;
}

/* Open a RECORD frame with rx (advanced) and unpack the control message it carries. */
static Peerlink__Control *open_control(pl_record_dir *rx, const uint8_t *frame, size_t len)
{
    assert_true(len >= PL_FRAME_HEADER_SIZE + PL_FRAME_HEADER_SIZE + PL_RECORD_TAG);
    assert_int_equal(frame[1], PL_FRAME_RECORD);
    uint8_t *plain = malloc(len);
    size_t plen = 0;
    assert_non_null(plain);
    assert_int_equal(pl_record_open(rx, frame, frame + PL_FRAME_HEADER_SIZE, len - PL_FRAME_HEADER_SIZE, plain,
                                    &plen),
                     PL_OK);
    assert_int_equal(plain[1], PL_FRAME_CONTROL);
    Peerlink__Control *c = peerlink__control__unpack(NULL, plen - PL_FRAME_HEADER_SIZE, plain + PL_FRAME_HEADER_SIZE);
    assert_non_null(c);
    sodium_memzero(plain, len);
    free(plain);
    return c;
}

/* What the first record `from` has queued says, read with a copy of `to`'s key (nothing is consumed). */
static Peerlink__Control *peek_control(const side *from, const side *to)
{
    const uint8_t *p = pl_buf_head(&from->e.out);
    assert_true(pl_buf_size(&from->e.out) >= PL_FRAME_HEADER_SIZE);
    size_t n = PL_FRAME_HEADER_SIZE + ((size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7]);
    pl_record_dir rx = to->e.rx;
    Peerlink__Control *c = open_control(&rx, p, n);
    sodium_memzero(&rx, sizeof rx);
    return c;
}

/* Take the first record `from` has queued and open it with a copy of
 * `to`'s receive key; *seal is that key as it was, to seal a changed
 * version in its place (what a sender with the same keys would send). */
static Peerlink__Control *open_next(side *from, const side *to, pl_record_dir *seal)
{
    size_t len;
    uint8_t *fr = take_frame(from, &len);
    pl_record_dir rx = to->e.rx;
    *seal = to->e.rx;
    Peerlink__Control *c = open_control(&rx, fr, len);
    free(fr);
    return c;
}

/* Seal a control message with tx (as its sender would) and feed it to `to`. */
static void seal_feed(fx *f, side *to, pl_record_dir *tx, const Peerlink__Control *c)
{
    size_t n = peerlink__control__get_packed_size(c);
    uint8_t *inner = malloc(PL_FRAME_HEADER_SIZE + n);
    assert_non_null(inner);
    pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_CONTROL, 0, (uint32_t)n};
    pl_frame_header_encode(&h, inner);
    assert_int_equal(peerlink__control__pack(c, inner + PL_FRAME_HEADER_SIZE), n);
    pl_buf rec;
    pl_buf_init(&rec);
    assert_int_equal(pl_record_seal(tx, inner, PL_FRAME_HEADER_SIZE + n, &rec), PL_OK);
    feed_raw(f, to, pl_buf_head(&rec), pl_buf_size(&rec));
    pl_buf_clear(&rec);
    free(inner);
}

/* A misbehaving peer: `from`'s own key seals what it would never send. */
static void inject_ack(fx *f, side *from, side *to, uint64_t delivered)
{
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Ack a = PEERLINK__ACK__INIT;
    a.delivered = delivered;
    c.msg_case = PEERLINK__CONTROL__MSG_ACK;
    c.ack = &a;
    seal_feed(f, to, &from->e.tx, &c);
}

static void inject_eos(fx *f, side *from, side *to, uint64_t seq)
{
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__EndOfStream eos = PEERLINK__END_OF_STREAM__INIT;
    eos.seq = seq;
    c.msg_case = PEERLINK__CONTROL__MSG_END_OF_STREAM;
    c.end_of_stream = &eos;
    seal_feed(f, to, &from->e.tx, &c);
}

/* A DATA message: seq_len bytes of big-endian seq (normally 8), then the text. */
static void inject_data(fx *f, side *from, side *to, uint64_t seq, size_t seq_len, const char *text)
{
    uint8_t inner[PL_FRAME_HEADER_SIZE + PL_SEQ_SIZE + 64];
    size_t n = strlen(text);
    assert_true(seq_len <= PL_SEQ_SIZE && n <= 64);
    pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_DATA, 0, (uint32_t)(seq_len + n)};
    pl_frame_header_encode(&h, inner);
    for (size_t i = 0; i < seq_len; i++)
        inner[PL_FRAME_HEADER_SIZE + i] = (uint8_t)(seq >> (8 * (seq_len - 1 - i)));
    memcpy(inner + PL_FRAME_HEADER_SIZE + seq_len, text, n);
    pl_buf rec;
    pl_buf_init(&rec);
    assert_int_equal(pl_record_seal(&from->e.tx, inner, PL_FRAME_HEADER_SIZE + seq_len + n, &rec), PL_OK);
    feed_raw(f, to, pl_buf_head(&rec), pl_buf_size(&rec));
    pl_buf_clear(&rec);
}

/* ---------------------------------------------------------------- secrets, the exporter, metadata */

static const uint8_t SECRET[32] = "0123456789abcdef0123456789abcdef";

/* Pairing on a secret both ends got elsewhere (docs/PROTOCOL.md 6.4). */
static void test_secret_pairing(void **state)
{
    fx *f = *state;
    opts o = {.i_secret = SECRET, .i_secret_len = sizeof SECRET, .i_instance = INSTANCE};
    begin(f, &o, 70);
    f->R.secret = SECRET;
    f->R.secret_len = sizeof SECRET;
    pump(f);
    assert_both_open(f);
    assert_true(f->I.e.pairing && f->R.e.pairing);
    assert_int_equal(f->I.paired_calls, 1);
    assert_int_equal(f->R.paired_calls, 1);
    assert_int_equal(f->R.end_result, PL_OK);
    assert_true(sodium_is_zero(f->I.e.prs, sizeof f->I.e.prs)); /* wiped once used */
    assert_true(sodium_is_zero(f->R.e.prs, sizeof f->R.e.prs));
}

/* A secret never pairs with a code of the same bytes, nor with another secret. */
static void test_secret_mismatch(void **state)
{
    fx *f = *state;
    for (int round = 0; round < 3; round++) {
        static const uint8_t other[16] = "0123456789abcdeX";
        opts o = {.i_secret = SECRET, .i_secret_len = 16, .i_instance = INSTANCE};
        if (round == 1)
            o = (opts){.i_code = "0123456789abcdef", .i_instance = INSTANCE};
        begin(f, &o, (uint8_t)(71 + round));
        if (round == 1) {
            f->R.secret = SECRET; /* the initiator's code, as a secret */
            f->R.secret_len = 16;
        } else if (round == 0) {
            f->R.code = "0123456789abcdef"; /* the initiator's secret, as a code */
            f->R.secret = NULL;
        } else {
            f->R.secret = other;
            f->R.secret_len = sizeof other;
        }
        pump(f);
        assert_int_equal(f->I.error, PL_ERR_WRONG_CODE);
        assert_int_equal(f->R.error, PL_ERR_WRONG_CODE);
        assert_int_equal(f->I.opens + f->R.opens, 0);
        f->R.secret = NULL;
        f->R.code = CODE;
        side_free(&f->I);
        side_free(&f->R);
    }
}

/* Secrets out of bounds: refused by configure, and from the hook as no pairing. */
static void test_secret_bounds(void **state)
{
    fx *f = *state;
    uint8_t sk[64] = {0}, big[PL_PAIRING_SECRET_MAX + 1] = {0};
    pl_engine e;
    pl_engine_config c = {.initiator = 1, .identity_sk = sk, .instance = INSTANCE};
    size_t bad[] = {0, PL_PAIRING_SECRET_MIN - 1, PL_PAIRING_SECRET_MAX + 1};
    for (size_t i = 0; i < 3; i++) {
        pl_engine_init(&e, 0);
        c.secret = big;
        c.secret_len = bad[i];
        assert_int_equal(pl_engine_configure(&e, &c), PL_ERR_INVALID);
        pl_engine_clear(&e);
    }
    pl_engine_init(&e, 0);
    c.code = CODE; /* a code and a secret */
    c.secret_len = PL_PAIRING_SECRET_MIN;
    assert_int_equal(pl_engine_configure(&e, &c), PL_ERR_INVALID);
    pl_engine_clear(&e);
    pl_engine_init(&e, 0);
    c.code = NULL;
    c.secret_len = PL_PAIRING_SECRET_MAX;
    assert_int_equal(pl_engine_configure(&e, &c), PL_OK);
    pl_engine_clear(&e);

    opts o = {.i_secret = SECRET, .i_secret_len = 16, .i_instance = INSTANCE};
    begin(f, &o, 74);
    f->R.secret = SECRET;
    f->R.secret_len = 15;
    pump(f);
    assert_int_equal(f->R.error, PL_ERR_NOT_PAIRED);
    assert_int_equal(f->I.error, PL_ERR_NOT_PAIRED);
    assert_int_equal(f->R.end_calls, 1); /* the admitted attempt ended */
    f->R.secret = NULL;
}

/* The exporter: the same on both ends and on every connection of the
 * session, its inputs bound, new with a new session. */
static void test_export(void **state)
{
    fx *f = *state;
    uint8_t a[100], b[100], c[100];
    char label256[257];
    memset(label256, 'x', 256);
    label256[256] = 0;
    uint8_t ctx[PL_EXPORT_CONTEXT_MAX + 1] = {0};
    pl_engine idle;
    pl_engine_init(&idle, 0);
    assert_int_equal(pl_engine_export(&idle, "L", NULL, 0, a, 32), PL_ERR_STATE);
    pl_engine_clear(&idle);

    open_session(f, 75);
    assert_int_equal(pl_engine_export(&f->I.e, "EXAMPLE pmk", (const uint8_t *)"ctx", 3, a, sizeof a), PL_OK);
    assert_int_equal(pl_engine_export(&f->R.e, "EXAMPLE pmk", (const uint8_t *)"ctx", 3, b, sizeof b), PL_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(pl_engine_export(&f->R.e, "EXAMPLE pmk", (const uint8_t *)"ctx", 3, c, 32), PL_OK);
    assert_memory_equal(a, c, 32); /* a shorter output is a prefix */
    assert_int_equal(pl_engine_export(&f->R.e, "EXAMPLE pmK", (const uint8_t *)"ctx", 3, c, 32), PL_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(pl_engine_export(&f->R.e, "EXAMPLE pmk", (const uint8_t *)"ctY", 3, c, 32), PL_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(pl_engine_export(&f->R.e, "EXAMPLE pmk", NULL, 0, c, 32), PL_OK);
    assert_memory_not_equal(a, c, 32);
    /* the label's length is encoded: "ab" + context "c" differs from "a" + "bc" */
    assert_int_equal(pl_engine_export(&f->R.e, "ab", (const uint8_t *)"c", 1, b, 32), PL_OK);
    assert_int_equal(pl_engine_export(&f->R.e, "a", (const uint8_t *)"bc", 2, c, 32), PL_OK);
    assert_memory_not_equal(b, c, 32);

    assert_int_equal(pl_engine_export(&f->I.e, NULL, NULL, 0, c, 32), PL_ERR_INVALID);
    assert_int_equal(pl_engine_export(&f->I.e, "", NULL, 0, c, 32), PL_ERR_INVALID);
    assert_int_equal(pl_engine_export(&f->I.e, label256, NULL, 0, c, 32), PL_ERR_INVALID);
    assert_int_equal(pl_engine_export(&f->I.e, label256 + 1, NULL, 0, c, 32), PL_OK);
    assert_int_equal(pl_engine_export(&f->I.e, "L", NULL, 1, c, 32), PL_ERR_INVALID);
    assert_int_equal(pl_engine_export(&f->I.e, "L", ctx, sizeof ctx, c, 32), PL_ERR_INVALID);
    assert_int_equal(pl_engine_export(&f->I.e, "L", ctx, sizeof ctx - 1, c, 32), PL_OK);
    assert_int_equal(pl_engine_export(&f->I.e, "L", NULL, 0, c, 0), PL_ERR_INVALID);
    assert_int_equal(pl_engine_export(&f->I.e, "L", NULL, 0, NULL, 32), PL_ERR_INVALID);
    uint8_t *max = malloc(PL_EXPORT_MAX + 1);
    assert_non_null(max);
    assert_int_equal(pl_engine_export(&f->I.e, "L", NULL, 0, max, PL_EXPORT_MAX + 1), PL_ERR_INVALID);
    assert_int_equal(pl_engine_export(&f->I.e, "L", NULL, 0, max, PL_EXPORT_MAX), PL_OK);
    free(max);

    /* the session resumes on a new link: the same output on both ends */
    relink(f);
    pump(f);
    assert_both_open(f);
    assert_true(f->I.e.resumed && f->R.e.resumed && f->R.adopts == 1);
    assert_int_equal(pl_engine_export(&f->I.e, "EXAMPLE pmk", (const uint8_t *)"ctx", 3, b, sizeof b), PL_OK);
    assert_memory_equal(a, b, sizeof b);
    assert_int_equal(pl_engine_export(&f->R.e, "EXAMPLE pmk", (const uint8_t *)"ctx", 3, b, sizeof b), PL_OK);
    assert_memory_equal(a, b, sizeof b);

    /* another session (a new connection that starts one): another output */
    side_free(&f->I);
    side_free(&f->R);
    open_session(f, 76);
    assert_int_equal(pl_engine_export(&f->I.e, "EXAMPLE pmk", (const uint8_t *)"ctx", 3, b, sizeof b), PL_OK);
    assert_memory_not_equal(a, b, sizeof b);
}

/* A TXT record in wire format: "\x07model=x" and the like. */
#define TXT_A "\x07model=a"
#define TXT_B "\x07model=b\x04rw=1"

/* Metadata: sent once open (queued before), again on each connection, an
 * event only when it changed; malformed or misplaced, refused. */
static void test_metadata(void **state)
{
    fx *f = *state;
    /* bounds, before anything */
    pl_engine e;
    uint8_t big[PL_METADATA_MAX + 1];
    memset(big, 0, sizeof big); /* zero-length strings: a valid record of any length */
    pl_engine_init(&e, 0);
    assert_int_equal(pl_engine_set_metadata(&e, NULL, 0), PL_ERR_INVALID);
    assert_int_equal(pl_engine_set_metadata(&e, big, 0), PL_ERR_INVALID);
    assert_int_equal(pl_engine_set_metadata(&e, big, sizeof big), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_engine_set_metadata(&e, (const uint8_t *)"\x05" "ab", 3), PL_ERR_INVALID);
    assert_int_equal(pl_engine_set_metadata(&e, big, sizeof big - 1), PL_OK);
    pl_engine_clear(&e);

    opts o = {.expected = f->pk_r, .i_instance = INSTANCE};
    begin(f, &o, 77);
    memcpy(f->R.known[0], f->pk_i, 32);
    f->R.nknown = 1;
    /* the initiator's, set before the handshake, waits for OPEN */
    assert_int_equal(pl_engine_set_metadata(&f->I.e, (const uint8_t *)TXT_A, sizeof TXT_A - 1), PL_OK);
    pump(f);
    assert_both_open(f);
    assert_int_equal(f->R.txts, 1);
    assert_memory_equal(f->R.txt, TXT_A, sizeof TXT_A - 1);
    assert_int_equal(f->I.txts, 0);
    /* the responder's, set once open, goes at once */
    assert_int_equal(pl_engine_set_metadata(&f->R.e, (const uint8_t *)TXT_B, sizeof TXT_B - 1), PL_OK);
    pump(f);
    assert_int_equal(f->I.txts, 1);
    assert_int_equal(f->I.txt_len, sizeof TXT_B - 1);
    assert_memory_equal(f->I.txt, TXT_B, sizeof TXT_B - 1);
    /* the same again: no event */
    assert_int_equal(pl_engine_set_metadata(&f->R.e, (const uint8_t *)TXT_B, sizeof TXT_B - 1), PL_OK);
    pump(f);
    assert_int_equal(f->I.txts, 1);

    /* a new link: both send theirs again, and neither application hears of it */
    relink(f);
    pump(f);
    assert_both_open(f);
    assert_true(f->R.adopts == 1);
    assert_int_equal(f->I.txts, 1);
    assert_int_equal(f->R.txts, 1);
    assert_int_equal(pl_buf_size(&f->R.e.st.peer_txt), sizeof TXT_A - 1);
    /* ... the records prove it was sent: Ready and the Metadata one way, the Metadata the other */
    assert_int_equal(f->I.e.rx.counter, 2);
    assert_int_equal(f->R.e.rx.counter, 1);
    /* a change after the resume reaches the peer */
    assert_int_equal(pl_engine_set_metadata(&f->I.e, (const uint8_t *)TXT_B, sizeof TXT_B - 1), PL_OK);
    pump(f);
    assert_int_equal(f->R.txts, 2);
    assert_memory_equal(f->R.txt, TXT_B, sizeof TXT_B - 1);

    /* from a misbehaving peer: a record that does not decode, or none */
    static const struct {
        const char *txt;
        size_t len;
    } bad[] = {{"\x05" "ab", 3}, {"", 0}};
    for (size_t i = 0; i < 2; i++) {
        side_free(&f->I);
        side_free(&f->R);
        open_session(f, (uint8_t)(78 + i));
        Peerlink__Control c = PEERLINK__CONTROL__INIT;
        Peerlink__Metadata m = PEERLINK__METADATA__INIT;
        m.txt.data = (uint8_t *)bad[i].txt;
        m.txt.len = bad[i].len;
        c.msg_case = PEERLINK__CONTROL__MSG_METADATA;
        c.metadata = &m;
        seal_feed(f, &f->R, &f->I.e.tx, &c);
        assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    }
}

/* ---------------------------------------------------------------- sessions: resuming */

/*
 * Messages both ways, acknowledged; then more, of which the first ki of
 * the initiator's and kr of the responder's arrive before the link
 * breaks and the rest - with the Acks they caused - are lost. The
 * session resumes on a new link (a fresh responder engine adopting the
 * old stream), then once more after a second cut: every message reaches
 * its application exactly once, in order.
 */
static void test_resume_after_cut(void **state)
{
    fx *f = *state;
    for (size_t ki = 0; ki <= 3; ki++) {
        for (size_t kr = 0; kr <= 2; kr++) {
            open_session(f, 40);
            uint8_t sid[PL_SESSION_ID_SIZE];
            memcpy(sid, f->I.e.st.id, sizeof sid);
            for (int i = 0; i < 3; i++)
                send_tagged(&f->I, 'I', i);
            for (int i = 0; i < 2; i++)
                send_tagged(&f->R, 'R', i);
            pump(f);
            assert_log(&f->R, 'I', 3);
            assert_log(&f->I, 'R', 2);
            assert_int_equal(f->I.acked, 3);
            assert_int_equal(f->R.acked, 2);
            assert_int_equal(f->I.e.st.tx_acked, 3);
            assert_int_equal(pl_ring_size(&f->I.e.st.unacked), 0);
            assert_int_equal(f->I.e.st.unacked_bytes, 0);

            /* in flight when the link breaks */
            for (int i = 3; i < 6; i++)
                send_tagged(&f->I, 'I', i);
            for (int i = 2; i < 4; i++)
                send_tagged(&f->R, 'R', i);
            uint8_t ri[3][128], rr[2][128];
            size_t li[3], lr[2];
            assert_int_equal(take_records(&f->I, ri, li, 3), 3);
            assert_int_equal(take_records(&f->R, rr, lr, 2), 2);
            for (size_t k = 0; k < ki; k++)
                feed_raw(f, &f->R, ri[k], li[k]);
            for (size_t k = 0; k < kr; k++)
                feed_raw(f, &f->I, rr[k], lr[k]);
            assert_int_equal(f->I.error + f->R.error, 0);
            assert_int_equal(f->R.nmsgs, 3 + ki);
            assert_int_equal(f->I.nmsgs, 2 + kr);
            /* their Acks (queued, if anything arrived) are lost with the link */
            assert_int_equal(f->I.e.st.tx_acked, 3);
            assert_int_equal(f->R.e.st.tx_acked, 2);

            relink(f);
            if (ki % 2)
                f->max_chunk = 7; /* the new handshake in small pieces */
            pump(f);
            assert_both_open(f);
            assert_true(f->I.e.resumed);
            assert_true(f->R.e.resumed);
            assert_false(f->I.e.reset);
            assert_int_equal(f->R.find_calls, 1);
            assert_memory_equal(f->R.find_id, sid, sizeof sid);
            assert_memory_equal(f->R.find_peer, f->pk_i, 32);
            assert_int_equal(f->R.adopts, 1);
            assert_int_equal(f->R.admit_calls, 0); /* a continued session is not admitted anew */
            assert_memory_equal(f->R.e.st.id, sid, sizeof sid);
            /* the old engine gave its stream away */
            assert_false(f->old.st.established);
            assert_int_equal(pl_ring_size(&f->old.st.unacked), 0);
            /* Ready acknowledged what arrived before the cut: OPEN's seq says so */
            assert_int_equal(f->I.open_seq, 3 + ki);
            /* exactly once and in order, across both links */
            assert_log(&f->R, 'I', 6);
            assert_log(&f->I, 'R', 4);
            assert_int_equal(f->I.e.st.tx_acked, 6);
            assert_int_equal(f->I.e.st.tx_next, 6);
            assert_int_equal(f->R.e.st.tx_acked, 4);
            assert_int_equal(f->R.e.st.tx_next, 4);
            assert_int_equal(f->I.e.st.rx_next, 4);
            assert_int_equal(f->R.e.st.rx_next, 6);
            assert_int_equal(pl_ring_size(&f->I.e.st.unacked) + pl_ring_size(&f->R.e.st.unacked), 0);
            assert_int_equal(f->I.e.st.unacked_bytes + f->R.e.st.unacked_bytes, 0);
            /* ACKED events: what the resent messages' Ack covered (what the
             * handshake alone acknowledged raised no ACKED event) */
            if (ki < 3)
                assert_int_equal(f->I.acked, 6);
            if (kr < 2)
                assert_int_equal(f->R.acked, 4);

            /* a second cut: nothing of it arrives; the same session goes on */
            send_tagged(&f->I, 'I', 6);
            send_tagged(&f->R, 'R', 4);
            relink(f);
            pump(f);
            assert_both_open(f);
            assert_true(f->I.e.resumed && f->R.e.resumed);
            assert_memory_equal(f->R.find_id, sid, sizeof sid);
            assert_int_equal(f->R.adopts, 1);
            assert_int_equal(f->I.open_seq, 6);
            assert_log(&f->R, 'I', 7);
            assert_log(&f->I, 'R', 5);
            assert_int_equal(f->I.acked, 7);
            assert_int_equal(f->R.acked, 5);
            assert_int_equal(f->I.error + f->R.error, 0);
        }
    }
}

/* The resend buffer is a ring (pl_ring): entries that wrapped around to
 * the start of its storage, behind one left at its end, are sent again
 * from wherever the peer's delivery stopped (k of the three arrived). */
static void test_resume_from_wrapped_ring(void **state)
{
    fx *f = *state;
    for (size_t k = 0; k <= 3; k++) {
        open_session(f, 44);
        for (int i = 0; i < 3; i++)
            send_tagged(&f->I, 'I', i);
        deliver(f, 0); /* the responder has 0..2 and queues its Ack */
        send_tagged(&f->I, 'I', 3);
        deliver(f, 1); /* the Ack: 0..2 leave the head of the ring */
        assert_int_equal(f->I.e.st.tx_acked, 3);
        send_tagged(&f->I, 'I', 4);
        send_tagged(&f->I, 'I', 5);
        /* 3 lies before the end of the storage, 4 and 5 from its start on */
        const pl_ring *r = &f->I.e.st.unacked;
        size_t entry = 4 + strlen("I-message-5");
        assert_true(r->wrap == 2 * entry && r->head > 0);
        assert_int_equal(pl_ring_size(r), 3 * entry);
        assert_ptr_equal(pl_ring_at(r, entry), r->data);
        assert_ptr_equal(pl_ring_at(r, 2 * entry), r->data + entry);
        assert_true(pl_ring_at(r, 0) > pl_ring_at(r, 2 * entry));
        uint8_t rec[3][128];
        size_t len[3];
        assert_int_equal(take_records(&f->I, rec, len, 3), 3);
        for (size_t i = 0; i < k; i++)
            feed_raw(f, &f->R, rec[i], len[i]);
        assert_int_equal(f->R.error, 0);
        relink(f);
        pump(f);
        assert_both_open(f);
        assert_true(f->I.e.resumed && f->R.e.resumed);
        assert_int_equal(f->I.open_seq, 3 + k);
        assert_log(&f->R, 'I', 6); /* exactly once, in order */
        assert_int_equal(f->I.e.st.tx_acked, 6);
        assert_int_equal(pl_ring_size(&f->I.e.st.unacked), 0);
        assert_int_equal(f->I.e.st.unacked_bytes, 0);
        assert_int_equal(f->I.error + f->R.error, 0);
    }
}

/* A pipe that takes at most wire_take bytes each time the engine drains. */
static pl_buf g_wire;
static size_t g_wire_take, g_drains, g_drain_min_out;

static void h_drain(void *ctx)
{
    side *s = ctx;
    size_t n = pl_buf_size(&s->e.out);
    g_drains++;
    if (n < g_drain_min_out)
        g_drain_min_out = n;
    if (n > g_wire_take)
        n = g_wire_take;
    assert_int_equal(pl_buf_append(&g_wire, pl_buf_head(&s->e.out), n), PL_OK);
    pl_buf_consume(&s->e.out, n);
}

/* The drain hook: called between the records of a message once the
 * output holds PL_ENGINE_DRAIN_AT bytes, never after a message's last
 * record (which stays queued); what it takes, cut anywhere, and what
 * stays queued make the same stream, which the peer opens. */
static void test_drain_between_records(void **state)
{
    fx *f = *state;
    static const size_t takes[] = {SIZE_MAX, 100001, 0};
    for (size_t t = 0; t < sizeof takes / sizeof takes[0]; t++) {
        open_session(f, 48);
        f->I.e.hooks.drain = h_drain;
        pl_buf_init(&g_wire);
        g_wire_take = takes[t];
        g_drains = 0;
        g_drain_min_out = SIZE_MAX;
        const size_t big = 1u << 20;
        uint8_t *a = malloc(big);
        assert_non_null(a);
        for (size_t i = 0; i < big; i++)
            a[i] = (uint8_t)(i * 7 + t);
        assert_int_equal(pl_engine_send(&f->I.e, a, big, 0), PL_OK);
        assert_int_equal(pl_engine_send(&f->I.e, "small", 5, 0), PL_OK); /* one record: no drain */
        size_t drains = g_drains;
        assert_int_equal(pl_engine_send(&f->I.e, a, 5000, 0), PL_OK);
        assert_int_equal(g_drains, drains);
        assert_true(g_drains >= 3);
        assert_true(g_drain_min_out >= PL_ENGINE_DRAIN_AT);
        assert_true(pl_buf_size(&f->I.e.out) > 0);
        if (takes[t] == SIZE_MAX)
            assert_true(pl_buf_size(&f->I.e.out) < PL_ENGINE_DRAIN_AT + 3 * 16 * 1024);
        assert_int_equal(pl_buf_append(&g_wire, pl_buf_head(&f->I.e.out), pl_buf_size(&f->I.e.out)), PL_OK);
        pl_buf_consume(&f->I.e.out, pl_buf_size(&f->I.e.out));
        feed_raw(f, &f->R, pl_buf_head(&g_wire), pl_buf_size(&g_wire));
        assert_int_equal(f->R.error, 0);
        assert_int_equal(f->R.nmsgs, 3);
        assert_int_equal(f->R.msgs[0].len, big);
        assert_memory_equal(f->R.msgs[0].data, a, big);
        assert_int_equal(f->R.msgs[1].len, 5);
        assert_int_equal(f->R.msgs[2].len, 5000);
        assert_memory_equal(f->R.msgs[2].data, a, 5000);
        pl_buf_clear(&g_wire);
        free(a);
        side_free(&f->I);
        side_free(&f->R);
    }
}

/* The responder no longer holds the session (it restarted): a new session
 * carries what it never acknowledged, renumbered from 0. */
static void test_resume_refused(void **state)
{
    fx *f = *state;
    open_session(f, 41);
    uint8_t old_sid[PL_SESSION_ID_SIZE];
    memcpy(old_sid, f->I.e.st.id, sizeof old_sid);
    for (int i = 0; i < 3; i++)
        send_tagged(&f->I, 'I', i);
    send_tagged(&f->R, 'R', 0);
    pump(f);
    assert_int_equal(f->I.acked, 3);
    assert_log(&f->I, 'R', 0 + 1);
    /* lost with the link: I-3, I-4 and R-1 */
    send_tagged(&f->I, 'I', 3);
    send_tagged(&f->I, 'I', 4);
    send_tagged(&f->R, 'R', 1);
    relink(f);
    f->R.session = NULL; /* a restarted responder: nothing to offer */
    side_reset_results(&f->R);
    f->R.acked = 0;
    step_to_identity_i(f);
    deliver(f, 0); /* Identity_I: the responder opens a new session and says so */
    assert_int_equal(f->R.opens, 1);
    assert_int_equal(f->R.find_calls, 1);
    assert_memory_equal(f->R.find_id, old_sid, sizeof old_sid);
    assert_int_equal(f->R.admit_calls, 1);
    assert_int_equal(f->R.adopts, 0);
    assert_false(f->R.e.resumed);
    Peerlink__Control *c = peek_control(&f->R, &f->I);
    assert_int_equal(c->msg_case, PEERLINK__CONTROL__MSG_READY);
    assert_false(c->ready->resumed);
    assert_int_equal(c->ready->delivered, 0);
    peerlink__control__free_unpacked(c, NULL);
    pump(f);
    assert_both_open(f);
    assert_true(f->I.e.reset);
    assert_false(f->I.e.resumed);
    /* a new session: new id and key, the same on both sides */
    assert_memory_not_equal(f->I.e.st.id, old_sid, sizeof old_sid);
    assert_memory_equal(f->I.e.st.id, f->R.e.st.id, PL_SESSION_ID_SIZE);
    assert_memory_equal(f->I.e.st.resume_key, f->R.e.st.resume_key, PL_RESUME_KEY_SIZE);
    assert_true(f->I.e.st.established);
    /* the unacknowledged two arrived, renumbered 0 and 1; the acknowledged three were not sent again */
    assert_log_from(&f->R, 'I', 3, 2);
    assert_int_equal(f->R.e.st.rx_next, 2);
    assert_int_equal(f->I.e.st.acked_base, 3);
    assert_int_equal(f->I.e.st.tx_next, 2);
    assert_int_equal(f->I.e.st.tx_acked, 2);
    /* the ACKED count goes on: 3 before, 2 in the new session */
    assert_int_equal(f->I.open_seq, 3);
    assert_int_equal(f->I.acked, 5);
    /* R-1 went with the old responder; the new session's messages count from 0 */
    assert_int_equal(f->I.e.st.rx_next, 0);
    assert_int_equal(f->I.nmsgs, 1);
    assert_int_equal(pl_engine_send(&f->R.e, "S-message-0", 11, 0), PL_OK);
    pump(f);
    assert_int_equal(f->I.nmsgs, 2);
    assert_memory_equal(f->I.msgs[1].data, "S-message-0", 11);
    assert_int_equal(f->R.acked, 1);
    /* adopting is only for a resumed connection */
    assert_int_equal(pl_engine_adopt(&f->R.e, &f->old.st), PL_ERR_STATE);
    assert_true(f->old.st.established);

    /* the new session resumes like any other, and the count still goes on */
    uint8_t new_sid[PL_SESSION_ID_SIZE];
    memcpy(new_sid, f->I.e.st.id, sizeof new_sid);
    send_tagged(&f->I, 'I', 5);
    relink(f);
    pump(f);
    assert_both_open(f);
    assert_true(f->I.e.resumed && f->R.e.resumed);
    assert_false(f->I.e.reset);
    assert_memory_equal(f->R.find_id, new_sid, sizeof new_sid);
    assert_log_from(&f->R, 'I', 3, 3);
    assert_int_equal(f->I.acked, 6);
    assert_int_equal(f->I.e.st.acked_base, 3);
}

/* find_session offers a stream with the right id but not the session's
 * key (or not established): treated as unknown, a new session. */
static void test_resume_wrong_proof(void **state)
{
    fx *f = *state;
    for (int v = 0; v < 3; v++) {
        open_session(f, 42);
        send_tagged(&f->I, 'I', 0);
        send_tagged(&f->I, 'I', 1);
        pump(f);
        send_tagged(&f->I, 'I', 2); /* lost */
        relink(f);
        side_reset_results(&f->R);
        pl_stream fake;
        memset(&fake, 0, sizeof fake);
        pl_ring_init(&fake.unacked);
        memcpy(fake.id, f->old.st.id, sizeof fake.id);
        memcpy(fake.resume_key, f->old.st.resume_key, sizeof fake.resume_key);
        fake.established = 1;
        fake.tx_next = f->old.st.tx_next;
        fake.tx_acked = f->old.st.tx_acked;
        fake.rx_next = fake.rx_acked = f->old.st.rx_next;
        if (v == 1)
            fake.resume_key[PL_RESUME_KEY_SIZE - 1] ^= 0x01;
        if (v == 2)
            fake.established = 0;
        if (v > 0)
            f->R.session = &fake; /* v == 0 (control): the real stream */
        uint64_t old_rx = f->old.st.rx_next;
        uint8_t sid[PL_SESSION_ID_SIZE];
        memcpy(sid, f->old.st.id, sizeof sid);
        pump(f);
        assert_both_open(f);
        assert_int_equal(f->R.find_calls, 1);
        assert_memory_equal(f->R.find_id, sid, sizeof sid);
        assert_log_from(&f->R, 'I', 2, 1);
        if (v == 0) {
            assert_true(f->I.e.resumed && f->R.e.resumed);
            assert_false(f->I.e.reset);
            assert_int_equal(f->R.adopts, 1);
            assert_int_equal(f->R.admit_calls, 0);
            assert_int_equal(f->R.e.st.rx_next, 3);
        } else {
            assert_false(f->I.e.resumed);
            assert_false(f->R.e.resumed);
            assert_true(f->I.e.reset);
            assert_int_equal(f->R.adopts, 0);
            assert_int_equal(f->R.admit_calls, 1);
            assert_int_equal(f->R.e.st.rx_next, 1); /* I-2 renumbered 0 in a new session */
            assert_memory_not_equal(f->I.e.st.id, sid, sizeof sid);
            assert_memory_equal(f->old.st.id, sid, sizeof sid);
            /* the old session was not touched */
            assert_true(f->old.st.established);
            assert_int_equal(f->old.st.rx_next, old_rx);
        }
        pl_stream_clear(&fake);
    }
}

/* A recorded resume cannot be replayed. */
static void test_resume_replay(void **state)
{
    fx *f = *state;
    open_session(f, 43);
    uint8_t sid[PL_SESSION_ID_SIZE];
    memcpy(sid, f->I.e.st.id, sizeof sid);
    send_tagged(&f->I, 'I', 0);
    pump(f);

    /* A: a resume, recorded: all the initiator sent, and its proof */
    size_t rnd_a = f->R.rnd_off; /* where the responder's randomness for A starts (its nonce) */
    relink(f);
    step_to_identity_i(f);
    pl_buf recorded;
    pl_buf_init(&recorded);
    pl_buf_append(&recorded, pl_buf_head(&f->capture[0]), pl_buf_size(&f->capture[0]));
    pl_buf_append(&recorded, pl_buf_head(&f->I.e.out), pl_buf_size(&f->I.e.out));
    Peerlink__Control *c = peek_control(&f->I, &f->R);
    assert_int_equal(c->msg_case, PEERLINK__CONTROL__MSG_IDENTITY);
    assert_non_null(c->identity->resume);
    assert_int_equal(c->identity->resume->session_id.len, PL_SESSION_ID_SIZE);
    assert_memory_equal(c->identity->resume->session_id.data, sid, sizeof sid);
    assert_int_equal(c->identity->resume->delivered, 0);
    assert_int_equal(c->identity->resume->proof.len, PL_RESUME_PROOF_SIZE);
    uint8_t proof_a[PL_RESUME_PROOF_SIZE];
    memcpy(proof_a, c->identity->resume->proof.data, sizeof proof_a);
    peerlink__control__free_unpacked(c, NULL);
    pump(f);
    assert_true(f->I.e.resumed && f->R.e.resumed);

    /* the whole recording played to the listener's next handshake (its own nonce): refused */
    relink(f);
    drop_out(&f->I); /* the real initiator stays out of it */
    feed_raw(f, &f->R, pl_buf_head(&recorded), pl_buf_size(&recorded));
    assert_int_equal(f->R.error, PL_ERR_AUTH);
    assert_int_equal(f->R.opens, 0);
    assert_int_equal(f->R.find_calls, 0);
    assert_int_equal(f->R.adopts, 0);
    assert_true(f->old.st.established); /* the session is still there */
    /* control: only the responder's fresh randomness stops it - with A's, the recording resumes */
    f->R.rnd_off = rnd_a;
    fresh_responder(f);
    feed_raw(f, &f->R, pl_buf_head(&recorded), pl_buf_size(&recorded));
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.opens, 1);
    assert_true(f->R.e.resumed);
    assert_int_equal(f->R.adopts, 1);
    pl_buf_clear(&recorded);

    /* B: the proof bound to one handshake, put into another handshake's
     * Identity (validly signed and sealed): not the session's proof. The
     * control passes the Identity through the same re-sealing unchanged. */
    for (int replay = 0; replay < 2; replay++) {
        open_session(f, 44);
        relink(f);
        step_to_identity_i(f);
        c = peek_control(&f->I, &f->R);
        memcpy(proof_a, c->identity->resume->proof.data, sizeof proof_a);
        peerlink__control__free_unpacked(c, NULL);
        pump(f); /* A */
        assert_true(f->R.e.resumed);
        relink(f);
        step_to_identity_i(f);
        pl_record_dir seal;
        c = open_next(&f->I, &f->R, &seal);
        assert_memory_not_equal(c->identity->resume->proof.data, proof_a, sizeof proof_a); /* bound to th2 */
        if (replay)
            memcpy(c->identity->resume->proof.data, proof_a, sizeof proof_a);
        seal_feed(f, &f->R, &seal, c);
        peerlink__control__free_unpacked(c, NULL);
        assert_int_equal(f->R.error, 0);
        assert_int_equal(f->R.find_calls, 1);
        assert_int_equal(f->R.opens, 1);
        if (!replay) {
            assert_true(f->R.e.resumed);
            assert_int_equal(f->R.adopts, 1);
            pump(f);
            assert_both_open(f);
            assert_true(f->I.e.resumed);
        } else {
            assert_false(f->R.e.resumed); /* a new session, the old one untouched */
            assert_int_equal(f->R.adopts, 0);
            assert_int_equal(f->R.admit_calls, 1);
            assert_true(f->old.st.established);
            /* and the changed Identity is in the responder's transcript, not the
             * initiator's: the initiator cannot open Ready */
            pump(f);
            assert_int_equal(f->I.error, PL_ERR_AUTH);
            assert_int_equal(f->I.opens, 0);
        }
    }
}

/* ---------------------------------------------------------------- sessions: ending */

static void test_clean_close(void **state)
{
    fx *f = *state;
    /* both end; done only once each end-of-stream is acknowledged */
    pair(f, NULL, 45);
    send_tagged(&f->I, 'I', 0);
    send_tagged(&f->R, 'R', 0);
    assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK);
    assert_int_equal(pl_engine_shutdown(&f->R.e), PL_OK);
    assert_false(pl_engine_done(&f->I.e) || pl_engine_done(&f->R.e));
    deliver(f, 0); /* I-0 and I's EndOfStream reach R, which queues its Ack after its own */
    assert_int_equal(f->R.eofs, 1);
    assert_false(pl_engine_done(&f->R.e)); /* its own end-of-stream is not acknowledged yet */
    assert_false(pl_engine_done(&f->I.e));
    deliver(f, 1); /* R-0, R's EndOfStream, R's Ack */
    assert_int_equal(f->I.eofs, 1);
    assert_int_equal(f->I.acked, 1);
    assert_true(pl_engine_done(&f->I.e)); /* and its last Ack is queued */
    assert_true(pl_buf_size(&f->I.e.out) > 0);
    assert_false(pl_engine_done(&f->R.e));
    deliver(f, 0); /* I's Ack */
    assert_int_equal(f->R.acked, 1);
    assert_true(pl_engine_done(&f->R.e));
    pump(f);
    assert_int_equal(f->I.error + f->R.error, 0);
    assert_int_equal(f->I.eofs + f->R.eofs, 2);

    /* An end-of-stream across a cut: I's arrived (its Ack was lost), R's
     * did not (or neither did). After the resume each side has seen the
     * other's end exactly once, and both are done. */
    for (int i_arrived = 0; i_arrived < 2; i_arrived++) {
        open_session(f, 46);
        send_tagged(&f->I, 'I', 0);
        send_tagged(&f->R, 'R', 0);
        pump(f);
        send_tagged(&f->I, 'I', 1);
        assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK);
        assert_int_equal(pl_engine_shutdown(&f->R.e), PL_OK);
        if (i_arrived) {
            uint8_t rec[2][128];
            size_t len[2];
            assert_int_equal(take_records(&f->I, rec, len, 2), 2);
            feed_raw(f, &f->R, rec[0], len[0]);
            feed_raw(f, &f->R, rec[1], len[1]);
            assert_int_equal(f->R.eofs, 1);
        }
        relink(f);
        pump(f);
        assert_both_open(f);
        assert_true(f->I.e.resumed && f->R.e.resumed);
        assert_int_equal(f->R.eofs, 1);
        assert_int_equal(f->I.eofs, 1);
        assert_log(&f->R, 'I', 2);
        assert_log(&f->I, 'R', 1);
        assert_true(pl_engine_done(&f->I.e));
        assert_true(pl_engine_done(&f->R.e));
        assert_int_equal(f->I.error + f->R.error, 0);
    }

    /* An end-of-stream the restarted responder never got: renumbered into the new session */
    open_session(f, 47);
    send_tagged(&f->I, 'I', 0);
    pump(f);
    send_tagged(&f->I, 'I', 1);
    assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK);
    relink(f);
    f->R.session = NULL;
    side_reset_results(&f->R);
    pump(f);
    assert_both_open(f);
    assert_true(f->I.e.reset);
    assert_log_from(&f->R, 'I', 1, 1);
    assert_int_equal(f->R.eofs, 1);
    assert_int_equal(f->R.eof_at, 2); /* after OPEN and I-1 */
    assert_int_equal(f->I.acked, 2);
    assert_false(pl_engine_done(&f->I.e));
    assert_int_equal(pl_engine_shutdown(&f->R.e), PL_OK);
    pump(f);
    assert_true(pl_engine_done(&f->I.e));
    assert_true(pl_engine_done(&f->R.e));
}

/*
 * A reset after our end-of-stream was acknowledged: the responder's
 * session had not ended, and it restarted. The new session carries our
 * end again (entry 0). The ACKED count counts messages only, so it
 * neither moves back at the reset nor counts that end-of-stream twice.
 */
static void test_reset_requeued_end_of_stream(void **state)
{
    fx *f = *state;
    open_session(f, 58);
    send_tagged(&f->I, 'I', 0);
    assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK);
    pump(f);
    assert_int_equal(f->R.eofs, 1);
    assert_int_equal(f->I.acked, 1);
    relink(f);
    f->R.session = NULL;
    side_reset_results(&f->R);
    pump(f);
    assert_both_open(f);
    assert_true(f->I.e.reset);
    assert_false(f->I.e.finished);
    assert_int_equal(f->R.nmsgs, 0);
    assert_int_equal(f->R.eofs, 1); /* the new session's entry 0 */
    assert_int_equal(pl_stream_acked_messages(&f->I.e.st), 1); /* messages only: the end-of-stream is not counted */
    assert_int_equal(f->I.acked, 1);
    assert_int_equal(pl_engine_shutdown(&f->R.e), PL_OK);
    pump(f);
    assert_true(pl_engine_done(&f->I.e));
    assert_true(pl_engine_done(&f->R.e));
    assert_int_equal(f->I.error + f->R.error, 0);
}

/*
 * A reset when nothing was left but the last Ack: the responder had ended
 * cleanly (done) and forgotten the session; only its Ack for our
 * end-of-stream was lost. Nothing is left to carry: the initiator opens
 * with `finished` and, as the connection layer does (handle_open), ends
 * the new link with an Abort. The new responder must see that Abort.
 * (The old session's end-of-stream must not go out on the new one: the
 * new responder would fail with PL_ERR_PROTOCOL instead.)
 */
static void test_reset_finished(void **state)
{
    fx *f = *state;
    open_session(f, 59);
    send_tagged(&f->I, 'I', 0);
    send_tagged(&f->R, 'R', 0);
    assert_int_equal(pl_engine_shutdown(&f->R.e), PL_OK);
    pump(f);
    assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK);
    uint8_t rec[1][128];
    size_t len[1];
    assert_int_equal(take_records(&f->I, rec, len, 1), 1);
    feed_raw(f, &f->R, rec[0], len[0]);
    assert_true(pl_engine_done(&f->R.e)); /* it would close and forget now */
    assert_false(pl_engine_done(&f->I.e));
    relink(f); /* R's last Ack is lost */
    f->R.session = NULL;
    side_reset_results(&f->R);
    step_to_identity_i(f);
    deliver(f, 0); /* Identity_I: a new session at R */
    deliver(f, 1); /* Ready{resumed = false} */
    assert_int_equal(f->I.opens, 1);
    assert_true(f->I.e.reset);
    assert_true(f->I.e.finished);
    assert_int_equal(pl_engine_abort(&f->I.e), PL_OK);
    deliver(f, 0);
    assert_int_equal(f->R.eofs, 0);
    assert_int_equal(f->R.nmsgs, 0);
    assert_int_equal(f->R.error, PL_ERR_ABORTED);
}

/* ---------------------------------------------------------------- sessions: bounds */

static void test_session_bounds(void **state)
{
    fx *f = *state;
    /* an Ack above what was sent */
    pair(f, NULL, 48);
    send_tagged(&f->I, 'I', 0);
    send_tagged(&f->I, 'I', 1);
    drop_out(&f->I); /* sent (sealed), never mind where */
    inject_ack(f, &f->R, &f->I, 2);
    assert_int_equal(f->I.error, 0); /* control: all it sent */
    assert_int_equal(f->I.acked, 2);
    inject_ack(f, &f->R, &f->I, 3);
    assert_int_equal(f->I.error, PL_ERR_PROTOCOL);

    /* an Ack going backwards */
    pair(f, NULL, 48);
    send_tagged(&f->I, 'I', 0);
    send_tagged(&f->I, 'I', 1);
    pump(f);
    assert_int_equal(f->I.acked, 2);
    inject_ack(f, &f->R, &f->I, 2); /* control: the same again is nothing */
    assert_int_equal(f->I.error, 0);
    inject_ack(f, &f->R, &f->I, 1);
    assert_int_equal(f->I.error, PL_ERR_PROTOCOL);

    /* an EndOfStream with another seq than the next: ahead, a repeat; control: the next */
    static const uint64_t eos_seq[] = {3, 1, 0, 2};
    for (size_t i = 0; i < 4; i++) {
        pair(f, NULL, 48);
        send_tagged(&f->I, 'I', 0);
        send_tagged(&f->I, 'I', 1);
        pump(f);
        inject_eos(f, &f->I, &f->R, eos_seq[i]);
        if (eos_seq[i] == 2) {
            assert_int_equal(f->R.error, 0);
            assert_int_equal(f->R.eofs, 1);
        } else {
            assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
            assert_int_equal(f->R.eofs, 0);
        }
    }

    /* a DATA message with another seq than the next, or too short for one; control: the next */
    static const struct {
        uint64_t seq;
        size_t seq_len;
    } data[] = {{3, 8}, {1, 8}, {0, 8}, {UINT64_MAX, 8}, {2, 7}, {2, 0}, {2, 8}};
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) {
        pair(f, NULL, 48);
        send_tagged(&f->I, 'I', 0);
        send_tagged(&f->I, 'I', 1);
        pump(f);
        inject_data(f, &f->I, &f->R, data[i].seq, data[i].seq_len, "I-message-2");
        if (data[i].seq == 2 && data[i].seq_len == 8) {
            assert_int_equal(f->R.error, 0);
            assert_log(&f->R, 'I', 3);
        } else {
            assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
            assert_log(&f->R, 'I', 2);
        }
    }

    /* a SessionResume in the responder's Identity; control: its Identity unchanged */
    for (int bad = 0; bad < 2; bad++) {
        opts o = {.expected = f->pk_r, .i_instance = INSTANCE};
        begin(f, &o, 49);
        memcpy(f->R.known[0], f->pk_i, 32);
        f->R.nknown = 1;
        deliver(f, 0); /* Hello_I, ResumeStart: R queues ResumeReply and Identity_R behind its Hello */
        size_t len;
        for (int k = 0; k < 2; k++) { /* Hello_R, ResumeReply */
            uint8_t *frame = take_frame(&f->R, &len);
            feed_raw(f, &f->I, frame, len);
            free(frame);
        }
        assert_int_equal(f->I.e.state, PL_HS_IDENTITY);
        pl_record_dir seal;
        Peerlink__Control *c = open_next(&f->R, &f->I, &seal);
        assert_int_equal(c->msg_case, PEERLINK__CONTROL__MSG_IDENTITY);
        assert_null(c->identity->resume);
        Peerlink__SessionResume res = PEERLINK__SESSION_RESUME__INIT;
        uint8_t id[PL_SESSION_ID_SIZE] = {1}, proof[PL_RESUME_PROOF_SIZE] = {2};
        res.session_id.data = id;
        res.session_id.len = sizeof id;
        res.proof.data = proof;
        res.proof.len = sizeof proof;
        if (bad)
            c->identity->resume = &res;
        seal_feed(f, &f->I, &seal, c);
        c->identity->resume = NULL;
        peerlink__control__free_unpacked(c, NULL);
        if (bad) {
            assert_int_equal(f->I.error, PL_ERR_PROTOCOL);
        } else {
            assert_int_equal(f->I.error, 0);
            pump(f);
            assert_both_open(f);
        }
    }
}

/* A second EndOfStream, with the next seq after the first: docs/PROTOCOL.md
 * 8.9, "a DATA frame after the peer's EndOfStream is PL_ERR_PROTOCOL, and so
 * is a second EndOfStream" (an engine that only compared seq with rx_next
 * reported PEER_EOF twice). */
static void test_second_end_of_stream(void **state)
{
    fx *f = *state;
    pair(f, NULL, 50);
    send_tagged(&f->I, 'I', 0);
    assert_int_equal(pl_engine_shutdown(&f->I.e), PL_OK);
    pump(f);
    assert_int_equal(f->R.eofs, 1);
    assert_int_equal(f->R.e.st.rx_next, 2);
    inject_eos(f, &f->I, &f->R, 2);
    assert_int_equal(f->R.eofs, 1);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
}

/* The resume handshake's own bounds: Identity_I's SessionResume and Ready. */
static void test_resume_handshake_bounds(void **state)
{
    fx *f = *state;
    /* SessionResume.delivered outside what the responder sent (acked 2, next 3); a
     * session id of the wrong size; in a pairing. Control: unchanged. */
    enum { KEEP, AHEAD, BEHIND, SHORT_ID, SHORT_PROOF, IN_PAIRING };
    for (int v = KEEP; v <= IN_PAIRING; v++) {
        if (v == IN_PAIRING) {
            begin(f, &PAIRING, 51);
            deliver(f, 0);
            deliver(f, 1);
            deliver(f, 0);
            deliver(f, 1); /* I queues Identity_I */
        } else {
            open_session(f, 51);
            send_tagged(&f->R, 'R', 0);
            send_tagged(&f->R, 'R', 1);
            pump(f);
            send_tagged(&f->R, 'R', 2); /* lost */
            relink(f);
            step_to_identity_i(f);
        }
        pl_record_dir seal;
        Peerlink__Control *c = open_next(&f->I, &f->R, &seal);
        assert_int_equal(c->msg_case, PEERLINK__CONTROL__MSG_IDENTITY);
        Peerlink__SessionResume res = PEERLINK__SESSION_RESUME__INIT;
        uint8_t id[PL_SESSION_ID_SIZE] = {1}, proof[PL_RESUME_PROOF_SIZE] = {2};
        if (v == IN_PAIRING) {
            assert_null(c->identity->resume);
            res.session_id.data = id;
            res.session_id.len = sizeof id;
            res.proof.data = proof;
            res.proof.len = sizeof proof;
            c->identity->resume = &res;
        } else {
            Peerlink__SessionResume *r = c->identity->resume;
            assert_non_null(r);
            assert_int_equal(r->delivered, 2);
            if (v == AHEAD)
                r->delivered = 4;
            if (v == BEHIND)
                r->delivered = 1;
            if (v == SHORT_ID)
                r->session_id.len--;
            if (v == SHORT_PROOF)
                r->proof.len--;
        }
        seal_feed(f, &f->R, &seal, c);
        if (v == IN_PAIRING)
            c->identity->resume = NULL;
        peerlink__control__free_unpacked(c, NULL);
        if (v == KEEP) {
            assert_int_equal(f->R.error, 0);
            pump(f);
            assert_both_open(f);
            assert_true(f->I.e.resumed && f->R.e.resumed);
            assert_log(&f->I, 'R', 3);
        } else {
            assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
            assert_int_equal(f->R.opens, 0);
            assert_int_equal(f->R.adopts, 0);
            if (v != IN_PAIRING)
                assert_true(f->old.st.established);
            pump(f);
            assert_int_equal(f->I.error, PL_ERR_PROTOCOL); /* told in clear */
        }
    }

    /* Ready: delivered outside what the initiator sent (acked 2, next 3);
     * resumed when no resume was asked. Control: unchanged. */
    enum { R_KEEP, R_AHEAD, R_BEHIND, R_UNASKED, R_UNASKED_KEEP };
    for (int v = R_KEEP; v <= R_UNASKED_KEEP; v++) {
        if (v >= R_UNASKED) {
            opts o = {.expected = f->pk_r, .i_instance = INSTANCE};
            begin(f, &o, 52);
            memcpy(f->R.known[0], f->pk_i, 32);
            f->R.nknown = 1;
        } else {
            open_session(f, 52);
            send_tagged(&f->I, 'I', 0);
            send_tagged(&f->I, 'I', 1);
            pump(f);
            send_tagged(&f->I, 'I', 2); /* lost */
            relink(f);
        }
        step_to_identity_i(f);
        deliver(f, 0); /* R opens and queues Ready */
        assert_int_equal(f->R.opens, 1);
        pl_record_dir seal;
        Peerlink__Control *c = open_next(&f->R, &f->I, &seal);
        assert_int_equal(c->msg_case, PEERLINK__CONTROL__MSG_READY);
        assert_int_equal(c->ready->resumed, v < R_UNASKED);
        if (v == R_AHEAD)
            c->ready->delivered = 4;
        if (v == R_BEHIND)
            c->ready->delivered = 1;
        if (v == R_UNASKED)
            c->ready->resumed = 1;
        seal_feed(f, &f->I, &seal, c);
        peerlink__control__free_unpacked(c, NULL);
        if (v == R_KEEP || v == R_UNASKED_KEEP) {
            assert_int_equal(f->I.error, 0);
            assert_int_equal(f->I.opens, 1);
            pump(f);
            assert_both_open(f);
        } else {
            assert_int_equal(f->I.error, PL_ERR_PROTOCOL);
            assert_int_equal(f->I.opens, 0);
        }
    }
}

/* ---------------------------------------------------------------- flow control, ping, abort, admit */

static void test_send_limit(void **state)
{
    fx *f = *state;
    const size_t limit = 10 + 2 * PL_STREAM_ENTRY_COST; /* two messages, 10 bytes in all */
    uint8_t big[25 + 2 * PL_STREAM_ENTRY_COST] = {0};
    open_session(f, 53);
    /* nothing unacknowledged: even a message above the limit goes */
    assert_int_equal(pl_engine_send(&f->I.e, big, sizeof big, limit), PL_OK);
    size_t out = pl_buf_size(&f->I.e.out);
    uint64_t next = f->I.e.st.tx_next;
    assert_int_equal(pl_engine_send(&f->I.e, "x", 1, limit), PL_ERR_AGAIN);
    assert_int_equal(pl_buf_size(&f->I.e.out), out); /* nothing queued */
    assert_int_equal(f->I.e.st.tx_next, next);
    assert_int_equal(f->I.e.st.unacked_bytes, sizeof big);
    assert_int_equal(pl_engine_send(&f->I.e, "x", 1, 0), PL_OK); /* 0: no limit */
    pump(f);
    assert_int_equal(f->I.acked, 2);
    assert_int_equal(f->I.e.st.unacked_bytes, 0);
    /* up to the limit exactly, then not one byte past it */
    assert_int_equal(pl_engine_send(&f->I.e, "123456", 6, limit), PL_OK);
    assert_int_equal(pl_engine_send(&f->I.e, "1234", 4, limit), PL_OK);
    assert_int_equal(pl_engine_send(&f->I.e, "1", 1, limit), PL_ERR_AGAIN);
    deliver(f, 0); /* R has them and queues its Ack: not yet known to I */
    assert_int_equal(pl_engine_send(&f->I.e, "1", 1, limit), PL_ERR_AGAIN);
    deliver(f, 1); /* the Ack */
    assert_int_equal(f->I.acked, 4);
    assert_int_equal(pl_engine_send(&f->I.e, "1", 1, limit), PL_OK);
    pump(f);
    assert_int_equal(f->R.nmsgs, 5);
    /* across a cut: the unacknowledged bytes still count while the link is
     * down; the resume handshake's acknowledgement frees them */
    assert_int_equal(pl_engine_send(&f->I.e, "12345678", 8, limit), PL_OK);
    uint8_t rec[1][128];
    size_t len[1];
    assert_int_equal(take_records(&f->I, rec, len, 1), 1);
    feed_raw(f, &f->R, rec[0], len[0]); /* it arrives; the Ack is lost */
    relink(f);
    assert_int_equal(pl_engine_send(&f->I.e, "abc", 3, limit), PL_ERR_AGAIN);
    assert_int_equal(pl_engine_send(&f->I.e, "ab", 2, limit), PL_OK); /* waits for the link */
    pump(f);
    assert_true(f->I.e.resumed);
    assert_int_equal(f->I.e.st.unacked_bytes, 0);
    assert_int_equal(pl_engine_send(&f->I.e, "abc", 3, limit), PL_OK);
    pump(f);
    assert_int_equal(f->R.nmsgs, 8);
    /* empty messages count too: two fit, not a thousand */
    int empties = 0;
    while (empties < 1000 && pl_engine_send(&f->I.e, "", 0, limit) == PL_OK)
        empties++;
    assert_int_equal(empties, 2);
    pump(f);
    assert_int_equal(f->R.nmsgs, 10);
    assert_int_equal(f->I.error + f->R.error, 0);
}

static void test_ping(void **state)
{
    fx *f = *state;
    pair(f, NULL, 54);
    send_tagged(&f->I, 'I', 0);
    pump(f);
    size_t acks = f->R.acks;
    /* nothing new delivered: no Ack */
    assert_int_equal(pl_engine_ack(&f->R.e), PL_OK);
    assert_int_equal(pl_buf_size(&f->R.e.out), 0);
    /* a Ping: the peer answers with an Ack anyway */
    assert_int_equal(pl_engine_ping(&f->I.e), PL_OK);
    deliver(f, 0);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.acks, acks + 1);
    assert_false(f->R.e.ping_owed);
    Peerlink__Control *c = peek_control(&f->R, &f->I);
    assert_int_equal(c->msg_case, PEERLINK__CONTROL__MSG_ACK);
    assert_int_equal(c->ack->delivered, 1);
    peerlink__control__free_unpacked(c, NULL);
    deliver(f, 1);
    assert_int_equal(f->I.error, 0); /* an Ack of nothing new is fine, and no event */
    assert_int_equal(f->I.acked, 1);
    assert_int_equal(f->R.nmsgs, 1);
    /* once answered, no more */
    assert_int_equal(pl_engine_ack(&f->R.e), PL_OK);
    assert_int_equal(pl_buf_size(&f->R.e.out), 0);
    /* only when open */
    begin(f, &PAIRING, 54);
    assert_int_equal(pl_engine_ping(&f->I.e), PL_ERR_STATE);
    assert_int_equal(pl_engine_abort(&f->I.e), PL_ERR_STATE);
}

static void test_abort(void **state)
{
    fx *f = *state;
    for (int from_r = 0; from_r < 2; from_r++) {
        pair(f, NULL, 55);
        side *a = from_r ? &f->R : &f->I, *b = from_r ? &f->I : &f->R;
        send_tagged(b, 'B', 0); /* b has something in flight: it stays unacknowledged */
        drop_out(b);
        assert_int_equal(pl_engine_abort(&a->e), PL_OK);
        pump(f);
        assert_int_equal(b->error, PL_ERR_ABORTED);
        assert_int_equal(b->e.state, PL_HS_FAILED);
        assert_true(b->e.peer_gave_up);
        assert_int_equal(pl_buf_size(&b->e.out), 0); /* no Error after OPEN */
        assert_int_equal(a->error, 0);
    }
}

static void test_admit_duplicate(void **state)
{
    fx *f = *state;
    /* a new session refused as a duplicate */
    opts o = {.expected = f->pk_r, .i_instance = INSTANCE};
    begin(f, &o, 56);
    memcpy(f->R.known[0], f->pk_i, 32);
    f->R.nknown = 1;
    f->R.admit_rc = PL_ERR_DUPLICATE;
    pump(f);
    assert_int_equal(f->R.admit_calls, 1);
    assert_memory_equal(f->R.admit_peer, f->pk_i, 32);
    assert_int_equal(f->R.error, PL_ERR_DUPLICATE);
    assert_int_equal(f->I.error, PL_ERR_DUPLICATE);
    assert_int_equal(last_wire_error(&f->capture[1]), PEERLINK__ERROR__CODE__DUPLICATE);
    assert_int_equal(f->I.opens + f->R.opens, 0);
    /* control: admitted, it opens */
    begin(f, &o, 56);
    memcpy(f->R.known[0], f->pk_i, 32);
    f->R.nknown = 1;
    pump(f);
    assert_both_open(f);
    assert_int_equal(f->R.admit_calls, 1);
    /* a pairing is never asked */
    begin(f, &PAIRING, 56);
    f->R.admit_rc = PL_ERR_DUPLICATE;
    pump(f);
    assert_both_open(f);
    assert_int_equal(f->R.admit_calls, 0);
    /* nor is a continued session */
    open_session(f, 57);
    relink(f);
    f->R.admit_rc = PL_ERR_DUPLICATE;
    pump(f);
    assert_both_open(f);
    assert_true(f->R.e.resumed);
    assert_int_equal(f->R.admit_calls, 0);
    /* but a resume the responder cannot honour is a new session, and may be refused */
    relink(f);
    f->R.session = NULL;
    f->R.admit_rc = PL_ERR_DUPLICATE;
    pump(f);
    assert_int_equal(f->R.admit_calls, 1);
    assert_int_equal(f->R.error, PL_ERR_DUPLICATE);
    assert_int_equal(f->I.error, PL_ERR_DUPLICATE);
}

/* ---------------------------------------------------------------- names, encodings, the Ready window */

static void test_names_utf8(void **state)
{
    fx *f = *state;
    /* the API: a name that is not UTF-8 (a lone continuation byte, an
     * overlong '/', a surrogate, a sequence cut short) is refused */
    static const char *bad[] = {"Kit\x80", "\xc0\xaf", "\xed\xa0\x80", "K\xc3", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        side_init(&f->R, 0, 0x22, 57);
        pl_engine_config cr = {0};
        cr.identity_sk = f->sk_r;
        cr.name = R_NAME;
        cr.instance = bad[i];
        assert_int_equal(pl_engine_configure(&f->R.e, &cr), PL_ERR_INVALID);
        cr.instance = INSTANCE;
        cr.name = bad[i];
        assert_int_equal(pl_engine_configure(&f->R.e, &cr), PL_ERR_INVALID);
        assert_false(pl_name_valid(bad[i]));
    }
    /* control: UTF-8 beyond ASCII, up to 63 bytes, is a name */
    assert_true(pl_name_valid("K\xc3\xbc" "che \xe2\x82\xac \xf0\x9f\x8f\xa0"));
    assert_true(pl_name_valid(""));
    char cut[80];
    memset(cut, 'a', 62);
    memcpy(cut + 62, "\xc3\xbc", 3); /* 64 bytes, the last character across byte 63 */
    assert_false(pl_name_valid(cut));
    pl_name_truncate(cut);
    assert_int_equal(strlen(cut), 62); /* not cut inside the character */
    assert_true(pl_name_valid(cut));

    /* on receipt: a Hello whose instance is not UTF-8 does not parse */
    uint8_t buf[256];
    begin(f, &(opts){.i_code = CODE}, 57);
    size_t n = make_hello(buf, sizeof buf, 1, 1, "Kit\xff");
    feed_raw(f, &f->I, buf, n);
    assert_int_equal(f->I.error, PL_ERR_MALFORMED);
    pl_buf_append(&f->capture[0], pl_buf_head(&f->I.e.out), pl_buf_size(&f->I.e.out));
    assert_int_equal(last_wire_error(&f->capture[0]), PEERLINK__ERROR__CODE__PROTOCOL);
    /* one with a NUL in it is a protocol violation (it would read as "Kit") */
    begin(f, &(opts){.i_code = CODE, .i_instance = "Kit"}, 57);
    n = make_hello(buf, sizeof buf, 1, 1, "Kitchen");
    uint8_t *k = memmem(buf, n, "Kitchen", 7);
    assert_non_null(k);
    k[3] = 0;
    feed_raw(f, &f->I, buf, n);
    assert_int_equal(f->I.error, PL_ERR_PROTOCOL);
    /* control: the same Hello with a UTF-8 instance goes on */
    begin(f, &(opts){.i_code = CODE}, 57);
    n = make_hello(buf, sizeof buf, 1, 1, "K\xc3\xbc" "che");
    feed_raw(f, &f->I, buf, n);
    assert_int_equal(f->I.error, 0);
    assert_string_equal(f->I.e.instance, "K\xc3\xbc" "che");

    /* the Identity's name, sealed: a peer that sends one not in UTF-8 */
    begin(f, &PAIRING, 57);
    memcpy(f->I.e.name, "ph\xc3one", 7); /* past the API's check, as another implementation might */
    pump(f);
    assert_int_equal(f->R.error, PL_ERR_MALFORMED);
    assert_int_equal(f->R.paired_calls, 0);
    assert_int_equal(f->I.error, PL_ERR_PROTOCOL); /* told in clear */
    assert_int_equal(f->I.paired_calls, 0);
    begin(f, &PAIRING, 57);
    memcpy(f->R.e.name, "Kit\x80", 5);
    pump(f);
    assert_int_equal(f->I.error, PL_ERR_MALFORMED);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
}

static void test_repeated_fields(void **state)
{
    fx *f = *state;
    uint8_t buf[256], two[512];
    size_t n = make_hello(buf, sizeof buf, 1, 1, "") - PL_FRAME_HEADER_SIZE;
    const uint8_t *hello = buf + PL_FRAME_HEADER_SIZE; /* Control{hello{...}} */
    /* Control.hello twice: proto3 would merge the two, protobuf-c keep the
     * second: refused, whatever the halves */
    struct {
        const uint8_t *b;
        size_t n;
    } second[] = {{hello, n}, {(const uint8_t[]){0x0a, 0x00}, 2}, {(const uint8_t[]){0x52, 0x00}, 2}};
    for (size_t i = 0; i < 3; i++) {
        begin(f, &PAIRING, 58);
        memcpy(two + PL_FRAME_HEADER_SIZE, hello, n);
        memcpy(two + PL_FRAME_HEADER_SIZE + n, second[i].b, second[i].n);
        pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_CONTROL, 0, (uint32_t)(n + second[i].n)};
        pl_frame_header_encode(&h, two);
        feed_raw(f, &f->R, two, PL_FRAME_HEADER_SIZE + n + second[i].n);
        assert_int_equal(f->R.error, PL_ERR_MALFORMED);
    }
    /* a field of Hello twice (max_message, a varint) */
    begin(f, &PAIRING, 58);
    memcpy(two + PL_FRAME_HEADER_SIZE, hello, n);
    two[PL_FRAME_HEADER_SIZE + 1] = (uint8_t)(hello[1] + 2);
    two[PL_FRAME_HEADER_SIZE + n] = 0x08; /* min_version again */
    two[PL_FRAME_HEADER_SIZE + n + 1] = 0x01;
    pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_CONTROL, 0, (uint32_t)(n + 2)};
    pl_frame_header_encode(&h, two);
    feed_raw(f, &f->R, two, PL_FRAME_HEADER_SIZE + n + 2);
    assert_int_equal(f->R.error, PL_ERR_MALFORMED);
    /* control: an unknown field, twice, and the known ones in another
     * order are fine (the transcript hashes the bytes as sent) */
    begin(f, &PAIRING, 58);
    memcpy(two + PL_FRAME_HEADER_SIZE, hello, n);
    two[PL_FRAME_HEADER_SIZE + 1] = (uint8_t)(hello[1] + 4);
    memcpy(two + PL_FRAME_HEADER_SIZE + n, (const uint8_t[]){0x78, 0x01, 0x78, 0x02}, 4); /* field 15 */
    pl_frame_header h2 = {PL_FRAME_VERSION, PL_FRAME_CONTROL, 0, (uint32_t)(n + 4)};
    pl_frame_header_encode(&h2, two);
    feed_raw(f, &f->R, two, PL_FRAME_HEADER_SIZE + n + 4);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.e.state, PL_HS_START);
    begin(f, &PAIRING, 58);
    static const uint8_t nonce[32] = {7};
    uint8_t *p = two + PL_FRAME_HEADER_SIZE;
    size_t m = 0;
    p[m++] = 0x0a;
    p[m++] = 0;
    p[m++] = 0x22; /* nonce first */
    p[m++] = 32;
    memcpy(p + m, nonce, 32);
    m += 32;
    memcpy(p + m, (const uint8_t[]){0x18, 0x80, 0x08, 0x10, 0x01, 0x08, 0x01}, 7); /* max_message 1024, 1, 1 */
    m += 7;
    p[1] = (uint8_t)(m - 2);
    pl_frame_header h3 = {PL_FRAME_VERSION, PL_FRAME_CONTROL, 0, (uint32_t)m};
    pl_frame_header_encode(&h3, two);
    feed_raw(f, &f->R, two, PL_FRAME_HEADER_SIZE + m);
    assert_int_equal(f->R.error, 0);
    assert_int_equal(f->R.e.peer_max, 1024);
}

/* The initiator refuses the responder's Ready: the Ready record is
 * damaged on the way (PL_ERR_AUTH at the initiator, Error PROTOCOL), or
 * the initiator cannot store the pairing (Error UNSPECIFIED). The
 * responder, open already, forgets the pairing and the new session. */
static void test_ready_refused(void **state)
{
    fx *f = *state;
    for (int why = 0; why < 2; why++) {
        begin(f, &PAIRING, 59);
        mitm_flip m = {1, 3, 20, 0x01, 0}; /* R->I frame 3 is Ready */
        if (why == 0) {
            f->mitm = mitm_flip_cb;
            f->mitm_ctx = &m;
        } else {
            f->I.paired_rc = PL_ERR_IO; /* the keystore write fails */
        }
        pump(f);
        assert_int_equal(f->I.error, why == 0 ? PL_ERR_AUTH : PL_ERR_IO);
        assert_int_equal(f->I.opens, 0);
        assert_int_equal(f->I.paired_calls, why); /* stored nothing (tried, when the record opened) */
        assert_int_equal(last_wire_error(&f->capture[0]),
                         why == 0 ? PEERLINK__ERROR__CODE__PROTOCOL : PEERLINK__ERROR__CODE__UNSPECIFIED);
        /* the responder had opened and stored the pairing... */
        assert_int_equal(f->R.opens, 1);
        assert_int_equal(f->R.paired_calls, 1);
        assert_int_equal(f->R.end_result, PL_OK);
        /* ...and the Error where the initiator's first record belonged undoes both */
        assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
        assert_true(f->R.e.refused);
        assert_true(f->R.e.peer_gave_up);
        assert_int_equal(f->R.refused_calls, 1);
        assert_memory_equal(f->R.refused_id, f->pk_i, 32);
        assert_int_equal(pl_buf_size(&f->R.e.out), 0); /* it answers nothing: it is open */
    }
    /* a reconnect refused the same way: a new session is given up, nothing is unpaired */
    begin(f, &(opts){.i_instance = INSTANCE, .expected = f->pk_r}, 59);
    memcpy(f->R.known[f->R.nknown++], f->pk_i, 32);
    mitm_flip m = {1, 3, 20, 0x01, 0};
    f->mitm = mitm_flip_cb;
    f->mitm_ctx = &m;
    pump(f);
    assert_int_equal(f->I.error, PL_ERR_AUTH);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    assert_true(f->R.e.refused);
    assert_int_equal(f->R.refused_calls, 0);
    /* control: once the initiator's first record arrived, a clear Error is
     * only a violation (after OPEN no Error is sent: it is not the peer's) */
    pair(f, NULL, 59);
    assert_int_equal(pl_engine_send(&f->I.e, "x", 1, 0), PL_OK);
    pump(f);
    assert_int_equal(f->R.nmsgs, 1);
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Error err = PEERLINK__ERROR__INIT;
    err.code = PEERLINK__ERROR__CODE__PROTOCOL;
    c.msg_case = PEERLINK__CONTROL__MSG_ERROR;
    c.error = &err;
    uint8_t buf[64];
    size_t n = pack_control(&c, buf, sizeof buf);
    feed_raw(f, &f->R, buf, n);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    assert_false(f->R.e.refused);
    assert_false(f->R.e.peer_gave_up);
    assert_int_equal(f->R.refused_calls, 0);
    /* the same once the window after Ready is over on the responder's clock */
    pair(f, NULL, 59);
    assert_true(f->R.e.awaiting_peer);
    pl_engine_settle(&f->R.e);
    feed_raw(f, &f->R, buf, n);
    assert_int_equal(f->R.error, PL_ERR_PROTOCOL);
    assert_false(f->R.e.refused);
    assert_int_equal(f->R.refused_calls, 0);
    /* and an initiator never reads a clear frame once open */
    pair(f, NULL, 59);
    feed_raw(f, &f->I, buf, n);
    assert_int_equal(f->I.error, PL_ERR_PROTOCOL);
    assert_false(f->I.e.refused);
}

/* ---------------------------------------------------------------- the same through the session layer */

/* A keystore in memory whose writes can be made to fail (a full disk). */
typedef struct flaky_item {
    char name[65];
    uint8_t *data;
    size_t len;
} flaky_item;

typedef struct flaky {
    flaky_item items[16];
    int fail_puts;
} flaky;

static flaky_item *flaky_find(flaky *k, const char *name)
{
    for (int i = 0; i < 16; i++)
        if (k->items[i].data && strcmp(k->items[i].name, name) == 0)
            return &k->items[i];
    return NULL;
}

static int flaky_get(void *ctx, const char *name, uint8_t **data, size_t *len)
{
    flaky_item *it = flaky_find(ctx, name);
    if (!it)
        return PL_ERR_NOT_FOUND;
    *data = malloc(it->len ? it->len : 1);
    assert_non_null(*data);
    memcpy(*data, it->data, it->len);
    *len = it->len;
    return PL_OK;
}

static int flaky_put(void *ctx, const char *name, const uint8_t *data, size_t len)
{
    flaky *k = ctx;
    if (k->fail_puts)
        return PL_ERR_IO;
    flaky_item *it = flaky_find(k, name);
    for (int i = 0; !it && i < 16; i++)
        if (!k->items[i].data)
            it = &k->items[i];
    assert_non_null(it);
    free(it->data);
    it->data = malloc(len ? len : 1);
    assert_non_null(it->data);
    memcpy(it->data, data, len);
    it->len = len;
    snprintf(it->name, sizeof it->name, "%s", name);
    return PL_OK;
}

static int flaky_del(void *ctx, const char *name)
{
    flaky_item *it = flaky_find(ctx, name);
    if (!it)
        return PL_ERR_NOT_FOUND;
    free(it->data);
    it->data = NULL;
    return PL_OK;
}

static int flaky_list(void *ctx, const char *prefix, int (*fn)(const char *name, void *arg), void *arg)
{
    flaky *k = ctx;
    for (int i = 0; i < 16; i++)
        if (k->items[i].data && strncmp(k->items[i].name, prefix, strlen(prefix)) == 0 && fn(k->items[i].name, arg))
            break;
    return PL_OK;
}

static void flaky_free(void *ctx)
{
    flaky *k = ctx;
    for (int i = 0; i < 16; i++)
        free(k->items[i].data);
}

typedef struct sess_log {
    int opens, interrupted, closed, status;
} sess_log;

static void sess_cb(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    sess_log *l = ud;
    (void)c, (void)data, (void)len;
    if (ev == PL_SESSION_OPEN)
        l->opens++;
    else if (ev == PL_SESSION_INTERRUPTED)
        l->interrupted++;
    else if (ev == PL_SESSION_CLOSED) {
        l->closed++;
        l->status = status;
    }
}

/* A pairing over a socket pair whose initiator cannot store the responder:
 * it refuses Ready with Error UNSPECIFIED. The responder, open already and
 * resumable, forgets the initiator it stored and ends its session at once,
 * instead of keeping the pairing and waiting for a resumption that cannot
 * come. */
static void ready_refused(int paired_before)
{
    pl_loop *loop = NULL;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    const pl_poll *poll = pl_loop_get_poll(loop);
    static flaky store;
    memset(&store, 0, sizeof store);
    const pl_keystore_ops ops = {sizeof ops, flaky_get, flaky_put, flaky_del, flaky_list, flaky_free};
    pl_keystore *ks_i = NULL, *ks_r = NULL;
    assert_int_equal(pl_keystore_new(&ops, &store, &ks_i), PL_OK);
    assert_int_equal(pl_keystore_new_memory(&ks_r), PL_OK);
    uint8_t id_i[PL_ID_SIZE];
    assert_int_equal(pl_keystore_identity(ks_i, id_i), PL_OK); /* written before the disk fills */
    pl_node *n_i = NULL, *n_r = NULL;
    assert_int_equal(pl_node_new(poll, ks_i, &n_i), PL_OK);
    assert_int_equal(pl_node_new(poll, ks_r, &n_r), PL_OK);
    int sv[2];
    if (paired_before) { /* the responder knows this initiator as "Before" */
        assert_int_equal(pl_node_set_name(n_i, "Before"), PL_OK);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        sess_log bi = {0}, br = {0};
        pl_session *pi = NULL, *pr = NULL;
        assert_int_equal(pl_session_new_fd(n_i, sv[0], PL_ROLE_INITIATOR, INSTANCE, sess_cb, &bi, &pi), PL_OK);
        assert_int_equal(pl_session_new_fd(n_r, sv[1], PL_ROLE_RESPONDER, INSTANCE, sess_cb, &br, &pr), PL_OK);
        assert_int_equal(pl_session_set_code(pi, CODE), PL_OK);
        assert_int_equal(pl_session_set_code(pr, CODE), PL_OK);
        time_t until = time(NULL) + 20;
        while ((!bi.opens || !br.opens) && time(NULL) < until)
            assert_true(pl_loop_iterate(loop, 50) >= 0);
        assert_int_equal(bi.opens, 1);
        assert_int_equal(br.opens, 1);
        pl_session_free(pi);
        pl_session_free(pr);
        assert_int_equal(pl_node_set_name(n_i, "After"), PL_OK);
    }
    store.fail_puts = 1;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    sess_log li = {0}, lr = {0};
    pl_session *ci = NULL, *cr = NULL;
    assert_int_equal(pl_session_new_fd(n_i, sv[0], PL_ROLE_INITIATOR, INSTANCE, sess_cb, &li, &ci), PL_OK);
    assert_int_equal(pl_session_new_fd(n_r, sv[1], PL_ROLE_RESPONDER, INSTANCE, sess_cb, &lr, &cr), PL_OK);
    assert_int_equal(pl_session_set_code(ci, CODE), PL_OK);
    assert_int_equal(pl_session_set_code(cr, CODE), PL_OK);
    assert_int_equal(pl_session_set_resume(cr, 30000), PL_OK);
    time_t end = time(NULL) + 20;
    while ((!li.closed || !(lr.closed || lr.interrupted)) && time(NULL) < end)
        assert_true(pl_loop_iterate(loop, 50) >= 0);
    assert_int_equal(li.opens, 0);
    assert_int_equal(li.closed, 1);
    assert_int_equal(li.status, PL_ERR_IO);
    assert_int_equal(lr.opens, 1);         /* it had sent Ready */
    assert_int_equal(lr.interrupted, 0);   /* not kept for a resumption */
    assert_int_equal(lr.closed, 1);
    assert_int_equal(lr.status, PL_ERR_PROTOCOL); /* UNSPECIFIED on the wire */
    pl_paired_peer *peers = NULL;
    size_t n = 99;
    assert_int_equal(pl_keystore_list_peers(ks_r, &peers, &n), PL_OK);
    if (paired_before) { /* the pairing it replaced is back */
        assert_int_equal(n, 1);
        assert_string_equal(peers[0].name, "Before");
        assert_int_equal(peers[0].role, PL_PEER_INITIATOR);
        assert_memory_equal(peers[0].id, id_i, PL_ID_SIZE);
    } else {
        assert_int_equal(n, 0); /* the pairing the initiator refused is gone */
    }
    free(peers);
    pl_session_free(ci);
    pl_session_free(cr);
    pl_node_free(n_i);
    pl_node_free(n_r);
    pl_keystore_free(ks_i);
    pl_keystore_free(ks_r);
    pl_loop_free(loop);
}

static void test_session_ready_refused(void **state)
{
    (void)state;
    ready_refused(0);
}

/* The same, with an initiator the responder had paired with before: the
 * refused connection takes nothing either, and the earlier pairing stands. */
static void test_session_ready_refused_keeps_earlier(void **state)
{
    (void)state;
    ready_refused(1);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pairing),
        T(test_pairing_chunked),
        T(test_messages_both_ways),
        T(test_peer_max),
        T(test_held_before_open),
        T(test_reconnect),
        T(test_prepare_ahead),
        T(test_reconnect_unknown_initiator),
        T(test_reconnect_responder_changed),
        T(test_initiator_without_code_or_peer),
        T(test_instance_mismatch),
        T(test_wrong_code),
        T(test_wrong_code_each_digit),
        T(test_pair_end_on_clear),
        T(test_pair_begin_refuses),
        T(test_mitm_each_byte),
        T(test_version_mismatch),
        T(test_data_in_clear),
        T(test_identity_element_y),
        T(test_oversized_control),
        T(test_record_tamper),
        T(test_record_replay_reorder_drop),
        T(test_truncated),
        T(test_end_of_stream),
        T(test_rekey),
        T(test_resume_after_cut),
        T(test_resume_from_wrapped_ring),
        T(test_drain_between_records),
        T(test_resume_refused),
        T(test_resume_wrong_proof),
        T(test_resume_replay),
        T(test_clean_close),
        T(test_reset_requeued_end_of_stream),
        T(test_reset_finished),
        T(test_session_bounds),
        T(test_second_end_of_stream),
        T(test_resume_handshake_bounds),
        T(test_send_limit),
        T(test_ping),
        T(test_abort),
        T(test_admit_duplicate),
        T(test_names_utf8),
        T(test_repeated_fields),
        T(test_ready_refused),
        T(test_secret_pairing),
        T(test_secret_mismatch),
        T(test_secret_bounds),
        T(test_export),
        T(test_metadata),
        cmocka_unit_test(test_session_ready_refused),
        cmocka_unit_test(test_session_ready_refused_keeps_earlier),
    };
#undef T
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
