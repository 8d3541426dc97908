/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: arbitrary bytes into a started engine (max_message
 * 1048576) as if they came from the peer.
 *
 * The first input byte selects the mode: bit 0 clear, a responder that
 * lets anyone pair with the code "123456" and knows no peers; bit 0 set,
 * an initiator pairing with "123456", so that the fuzzer's bytes act as
 * the responder's replies. Bits 1-7 give the size of the pieces the rest
 * is fed in (0: as much as the engine takes per call).
 *
 * The engines use the inputs of tests/unit/test_vectors.c (identity keys
 * from seeds 32 x 0x01 / 32 x 0x02, random streams from 32 x 0x11 /
 * 32 x 0x22, the default max_message), so the seed corpus - the other
 * side's messages from the vector run - drives a whole handshake to OPEN
 * and an echoed message, and the fuzzer mutates from there.
 *
 * On OPEN the engine sends a message; each received message is echoed;
 * on the peer's end-of-stream it shuts down. Queued output is dropped as
 * it grows. Invariants are checked with __builtin_trap().
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

#include "engine.h"

#define CODE "123456"
#define MAX_MESSAGE 1048576 /* as in the vectors: it is part of the Hello */
#define STREAM 128 /* an engine draws 64 bytes per connection */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct ctx {
    const uint8_t *stream;
    size_t off;
    int begins, ends, paired;
} ctx;

static uint8_t sk_i[64], sk_r[64], pk_i[32], pk_r[32];
static uint8_t stream_i[STREAM], stream_r[STREAM];

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
    memset(seed, 0x11, 32);
    randombytes_buf_deterministic(stream_i, STREAM, seed);
    memset(seed, 0x22, 32);
    randombytes_buf_deterministic(stream_r, STREAM, seed);
    done = 1;
}

static int f_pair_begin(void *c, pl_pair_key *key)
{
    ctx *x = c;
    x->begins++;
    *key = (pl_pair_key){(const uint8_t *)CODE, strlen(CODE), 0};
    return PL_OK;
}

static void f_pair_end(void *c, int result)
{
    ctx *x = c;
    x->ends++;
    if (x->ends > x->begins)
        __builtin_trap();
    (void)result;
}

static int f_peer_known(void *c, const uint8_t id[32])
{
    (void)c;
    (void)id;
    return PL_ERR_NOT_PAIRED;
}

static int f_peer_paired(void *c, const uint8_t id[32], const char *name)
{
    ctx *x = c;
    x->paired++;
    if (strlen(name) > PL_NAME_MAX)
        __builtin_trap();
    (void)id;
    return PL_OK;
}

static void f_random(void *c, uint8_t *buf, size_t n)
{
    ctx *x = c;
    if (n > STREAM - x->off)
        __builtin_trap();
    memcpy(buf, x->stream + x->off, n);
    x->off += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size < 1)
        return 0;
    int initiator = data[0] & 1;
    size_t piece = data[0] >> 1;
    data++;
    size--;

    ctx x = {initiator ? stream_i : stream_r, 0, 0, 0, 0};
    pl_engine_hooks hooks = {.pair_begin = f_pair_begin, .pair_end = f_pair_end, .peer_known = f_peer_known,
                             .peer_paired = f_peer_paired, .random = f_random};
    pl_engine_config cfg = {0};
    cfg.initiator = initiator;
    cfg.identity_sk = initiator ? sk_i : sk_r;
    cfg.name = initiator ? "phone" : "Kitchen";
    cfg.instance = "Kitchen";
    cfg.code = initiator ? CODE : NULL;
    cfg.hooks = &hooks;
    cfg.hooks_ctx = &x;

    pl_engine e;
    pl_engine_init(&e, MAX_MESSAGE);
    if (pl_engine_configure(&e, &cfg) != PL_OK || pl_engine_start(&e) != PL_OK)
        __builtin_trap();
    size_t pos = 0;
    int opened = 0;
    while (pos < size) {
        size_t avail = size - pos;
        if (piece && avail > piece)
            avail = piece;
        size_t used = 0;
        pl_engine_event ev;
        int rc = pl_engine_receive(&e, data + pos, avail, &used, &ev);
        if (used > avail)
            __builtin_trap();
        pos += used;
        if (rc < 0) {
            if (e.state != PL_HS_FAILED || e.error != rc || pl_engine_open(&e))
                __builtin_trap();
            /* a failed engine takes no input, and seals nothing: a message
             * sent now waits in the session for a next connection */
            size_t u2 = 0, out = pl_buf_size(&e.out);
            if (pl_engine_receive(&e, data, size, &u2, &ev) != PL_ERR_STATE || u2 != 0)
                __builtin_trap();
            int src = pl_engine_send(&e, "x", 1, 0);
            if ((src != PL_OK && src != PL_ERR_STATE && src != PL_ERR_TOO_LARGE) || pl_buf_size(&e.out) != out)
                __builtin_trap();
            break;
        }
        if (rc == 0) {
            if (used != avail)
                __builtin_trap();
            continue;
        }
        switch (ev.type) {
        case PL_ENGINE_OPEN:
            if (opened++ || !pl_engine_open(&e) || e.version != 1 || e.peer_max < 1)
                __builtin_trap();
            /* the only peer that can get here is the genuine one of the vectors */
            if (memcmp(e.peer_id, initiator ? pk_r : pk_i, 32) != 0)
                __builtin_trap();
            (void)pl_engine_send(&e, "fuzz", 4, 0);
            break;
        case PL_ENGINE_MESSAGE:
            if (!pl_engine_open(&e) || ev.len > MAX_MESSAGE || (ev.len && !ev.data))
                __builtin_trap();
            (void)pl_engine_send(&e, ev.data, ev.len, 0);
            break;
        case PL_ENGINE_PEER_EOF:
            if (!pl_engine_open(&e) || pl_engine_shutdown(&e) != PL_OK || !e.st.peer_eof)
                __builtin_trap();
            break;
        case PL_ENGINE_ACKED:
            if (!pl_engine_open(&e) || ev.seq > e.st.tx_next || ev.seq != e.st.tx_acked)
                __builtin_trap();
            break;
        case PL_ENGINE_PEER_TXT:
            if (!pl_engine_open(&e) || ev.len < 1 || ev.len > PL_METADATA_MAX)
                __builtin_trap();
            break;
        default:
            __builtin_trap();
        }
        (void)pl_engine_ack(&e);
        if (pl_buf_size(&e.out) > (1u << 20))
            pl_buf_consume(&e.out, pl_buf_size(&e.out));
    }
    (void)pl_engine_truncated(&e);
    pl_engine_clear(&e);
    /* every admitted pairing attempt was reported exactly once */
    if (x.begins != x.ends)
        __builtin_trap();
    return 0;
}
