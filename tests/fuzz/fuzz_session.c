/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: what a paired peer can send once a session is open.
 *
 * fuzz_engine can only reach the handshake: past it every byte is sealed,
 * and a fuzzer cannot forge a record. Here two engines (the identities of
 * tests/unit/test_vectors.c, deterministic randomness) complete a
 * reconnect handshake in memory for each input, and the input is a
 * script of operations on the open session:
 *
 *   0 L16 BYTES  seal BYTES (as the plaintext of one record: an inner
 *                frame header and its payload) with the initiator's
 *                sending keys and feed the record to the responder
 *   1 L16 BYTES  the same, responder to initiator
 *   2 N          the initiator sends a message of N bytes; deliver
 *   3 N          the responder sends one; deliver
 *   4            both acknowledge what they delivered; deliver
 *   5 / 6        the initiator / responder ends its direction; deliver
 *   7            the initiator sends a Ping; deliver
 *   8 / 9        the initiator / responder application pauses, or takes
 *                messages again and is handed what was held meanwhile
 *
 * (op = byte % 10; L16 big-endian.) So sealed control messages (Ack,
 * EndOfStream, Ping, Abort, Metadata, a stray Ready or Identity), DATA with any
 * sequence number and any inner framing reach the engine's parsers, and
 * the genuine traffic between them keeps the session's counters moving.
 * Invariants are checked with __builtin_trap(): a failed engine is
 * failed with the error it returned and stays so; acknowledgement
 * counts only grow and never pass what was sent; messages respect the
 * size bound; the sequence numbers of delivered messages have no gap,
 * whether they were delivered at once or held while paused.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

#include "buf.h"
#include "engine.h"
#include "record.h"

#define MAX_MESSAGE 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct side {
    pl_engine e;
    uint64_t stream_off; /* deterministic randomness */
    uint8_t seed;
    uint64_t delivered, acked;
    int failed;
    const uint8_t *peer_pk;
} side;

static uint8_t sk_i[64], sk_r[64], pk_i[32], pk_r[32];

static void init_once(void)
{
    static int done;
    if (done)
        return;
    if (sodium_init() < 0)
        __builtin_trap();
    uint8_t seed[32];
    memset(seed, 0x01, 32);
    crypto_sign_seed_keypair(pk_i, sk_i, seed);
    memset(seed, 0x02, 32);
    crypto_sign_seed_keypair(pk_r, sk_r, seed);
    done = 1;
}

static void h_random(void *ctx, uint8_t *buf, size_t n)
{
    side *s = ctx;
    /* byte k of the stream: a hash of (seed, k); cheap and reproducible */
    for (size_t i = 0; i < n; i++, s->stream_off++)
        buf[i] = (uint8_t)((s->stream_off * 2654435761u) >> 13 ^ s->seed ^ (s->stream_off >> 3));
}

static int h_peer_known(void *ctx, const uint8_t id[32])
{
    side *s = ctx;
    return memcmp(id, s->peer_pk, 32) == 0 ? PL_OK : PL_ERR_NOT_PAIRED;
}

static const pl_engine_hooks hooks = {.peer_known = h_peer_known, .random = h_random};

static void check_failed(side *s, int rc)
{
    if (s->e.state != PL_HS_FAILED || s->e.error != rc || pl_engine_open(&s->e))
        __builtin_trap();
    s->failed = 1;
}

/* Feed bytes to s, checking every event. */
static void feed(side *s, const uint8_t *p, size_t n)
{
    size_t pos = 0;
    while (!s->failed && pos < n) {
        size_t used = 0;
        pl_engine_event ev;
        int rc = pl_engine_receive(&s->e, p + pos, n - pos, &used, &ev);
        if (used > n - pos)
            __builtin_trap();
        pos += used;
        if (rc < 0) {
            check_failed(s, rc);
            return;
        }
        if (rc == 0) {
            if (pos != n)
                __builtin_trap();
            return;
        }
        switch (ev.type) {
        case PL_ENGINE_OPEN:
            break;
        case PL_ENGINE_MESSAGE:
            if (ev.len > MAX_MESSAGE || (ev.len && !ev.data) || s->e.st.hold || s->e.st.held_n ||
                pl_stream_delivered(&s->e.st) != ++s->delivered)
                __builtin_trap();
            break;
        case PL_ENGINE_PEER_EOF:
            if (!s->e.st.peer_eof || s->e.st.hold || s->e.st.held_n)
                __builtin_trap();
            s->delivered++;
            break;
        case PL_ENGINE_ACKED:
            if (ev.seq <= s->acked || ev.seq > s->e.st.tx_next)
                __builtin_trap();
            s->acked = ev.seq;
            break;
        case PL_ENGINE_PEER_TXT:
            /* a record within bounds that decodes, and the one the stream now holds */
            if (ev.len < 1 || ev.len > PL_METADATA_MAX || ev.len != pl_buf_size(&s->e.st.peer_txt) ||
                memcmp(ev.data, pl_buf_head(&s->e.st.peer_txt), ev.len) != 0)
                __builtin_trap();
            break;
        default:
            __builtin_trap();
        }
    }
}

/* Everything from queued at `from` to `to`. */
static void deliver(side *from, side *to)
{
    pl_buf *o = &from->e.out;
    size_t n = pl_buf_size(o);
    if (!n)
        return;
    uint8_t *copy = malloc(n);
    if (!copy)
        __builtin_trap();
    memcpy(copy, pl_buf_head(o), n);
    pl_buf_consume(o, n);
    feed(to, copy, n);
    free(copy);
}

/* Hand out what a side held while it was paused, checking the counts. */
static void drain(side *s)
{
    pl_engine_event ev;
    while (pl_engine_next_held(&s->e, &ev)) {
        if ((ev.type != PL_ENGINE_MESSAGE && ev.type != PL_ENGINE_PEER_EOF) || ev.len > MAX_MESSAGE ||
            (ev.type == PL_ENGINE_PEER_EOF && (ev.len || s->e.st.held_n)) ||
            pl_stream_delivered(&s->e.st) != ++s->delivered)
            __builtin_trap();
    }
    if (!s->e.st.held_n && (s->e.st.held_cost || s->e.st.held_eos))
        __builtin_trap();
}

static int setup(side *i, side *r)
{
    memset(i, 0, sizeof *i);
    memset(r, 0, sizeof *r);
    i->seed = 0x11;
    r->seed = 0x22;
    i->peer_pk = pk_r;
    r->peer_pk = pk_i;
    pl_engine_init(&i->e, MAX_MESSAGE);
    pl_engine_init(&r->e, MAX_MESSAGE);
    pl_engine_config ci = {.initiator = 1, .identity_sk = sk_i, .name = "phone", .instance = "Kitchen",
                           .expected_peer = pk_r, .hooks = &hooks, .hooks_ctx = i};
    pl_engine_config cr = {.initiator = 0, .identity_sk = sk_r, .name = "Kitchen", .instance = "Kitchen",
                           .hooks = &hooks, .hooks_ctx = r};
    if (pl_engine_configure(&i->e, &ci) != PL_OK || pl_engine_configure(&r->e, &cr) != PL_OK ||
        pl_engine_start(&i->e) != PL_OK || pl_engine_start(&r->e) != PL_OK)
        return -1;
    for (int k = 0; k < 8 && !(pl_engine_open(&i->e) && pl_engine_open(&r->e)); k++) {
        deliver(i, r);
        deliver(r, i);
    }
    return pl_engine_open(&i->e) && pl_engine_open(&r->e) ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    static side I, R;
    if (setup(&I, &R) != 0)
        __builtin_trap(); /* the genuine handshake always opens */
    static uint8_t msg[MAX_MESSAGE];
    size_t pos = 0;
    while (pos < size && !I.failed && !R.failed) {
        uint8_t op = data[pos++] % 10;
        side *from = (op & 1) ? &R : &I, *to = from == &I ? &R : &I;
        if (op <= 1) {
            if (size - pos < 2)
                break;
            size_t len = (size_t)data[pos] << 8 | data[pos + 1];
            pos += 2;
            if (len > size - pos)
                len = size - pos;
            pl_buf rec;
            pl_buf_init(&rec);
            /* a record the peer's keys really sealed, around whatever plaintext */
            if (len <= PL_RECORD_MAX_INNER_PAYLOAD + 8 && pl_record_seal(&from->e.tx, data + pos, len, &rec) == PL_OK)
                feed(to, pl_buf_head(&rec), pl_buf_size(&rec));
            pl_buf_clear(&rec);
            pos += len;
        } else if (op <= 3) {
            size_t n = pos < size ? (size_t)data[pos++] * 97 : 0;
            memset(msg, 0x5a, n);
            int rc = pl_engine_send(&from->e, msg, n, 0);
            if (rc != PL_OK && rc != PL_ERR_STATE)
                __builtin_trap();
            deliver(from, to);
        } else if (op == 4) {
            if (pl_engine_ack(&I.e) != PL_OK || pl_engine_ack(&R.e) != PL_OK)
                __builtin_trap();
            deliver(&I, &R);
            deliver(&R, &I);
        } else if (op <= 6) {
            side *s = op == 5 ? &I : &R;
            if (pl_engine_shutdown(&s->e) != PL_OK)
                __builtin_trap();
            deliver(s, s == &I ? &R : &I);
        } else if (op == 7) {
            if (pl_engine_ping(&I.e) != PL_OK)
                __builtin_trap();
            deliver(&I, &R);
            if (pl_engine_ack(&R.e) != PL_OK)
                __builtin_trap();
            deliver(&R, &I);
        } else {
            /* The application pauses, or takes messages again and gets what was held. */
            side *s = op == 8 ? &I : &R;
            pl_engine_hold(&s->e, !s->e.st.hold);
            drain(s);
        }
    }
    (void)pl_engine_done(&I.e);
    (void)pl_engine_truncated(&R.e);
    pl_engine_clear(&I.e);
    pl_engine_clear(&R.e);
    return 0;
}
