/* SPDX-License-Identifier: ISC */
/*
 * CPace (draft-irtf-cfrg-cpace), suite CPACE-RISTR255-SHA512, in
 * initiator-responder mode, over libsodium's ristretto255 and SHA-512.
 *
 * sodium_init() is the library's job at startup; it is not called here.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

#include "crypto.h"

#define CPACE_DSI "CPaceRistretto255"
#define CPACE_DSI_LEN (sizeof CPACE_DSI - 1)
#define CPACE_DSI_ISK "CPaceRistretto255_ISK"
#define CPACE_DSI_ISK_LEN (sizeof CPACE_DSI_ISK - 1)

/* H.s_in_bytes of SHA-512: its input block size. */
#define CPACE_S_IN_BYTES 128

/* Documented input bounds (crypto.h). */
#define CPACE_MAX_PRS 1024
#define CPACE_MAX_CI 1024
#define CPACE_MAX_SID 255

/* Longest LEB128 encoding of a size_t (64 bits / 7 bits per byte). */
#define LEB128_MAX 10

/* The longest generator string: lv_cat(DSI, PRS, zpad, CI, sid) with every
 * part at its bound. Each bound < 16384 needs at most 2 length bytes; zpad
 * is at most s_in_bytes bytes. */
#define GEN_STRING_MAX                                                                           \
    ((1 + CPACE_DSI_LEN) + (2 + CPACE_MAX_PRS) + (2 + CPACE_S_IN_BYTES) + (2 + CPACE_MAX_CI) +  \
     (2 + CPACE_MAX_SID))

/* lv_cat(DSI_ISK, sid, K) at its bound. */
#define ISK_PREFIX_MAX ((1 + CPACE_DSI_ISK_LEN) + (2 + CPACE_MAX_SID) + (1 + PL_CPACE_POINT))

/* prepend_len: the LEB128 encoding of len into out; returns its length. */
static size_t leb128(size_t len, uint8_t out[LEB128_MAX])
{
    size_t n = 0;
    do {
        uint8_t b = (uint8_t)(len & 0x7f);
        len >>= 7;
        if (len)
            b |= 0x80;
        out[n++] = b;
    } while (len);
    return n;
}

size_t pl_cpace_lv_cat(uint8_t *out, size_t cap, size_t off, const uint8_t *part, size_t len)
{
    if (!out || off > cap || (!part && len))
        return 0;
    uint8_t pre[LEB128_MAX];
    size_t pre_len = leb128(len, pre);
    size_t room = cap - off;
    if (pre_len > room || len > room - pre_len)
        return 0;
    memcpy(out + off, pre, pre_len);
    if (len)
        memcpy(out + off + pre_len, part, len);
    return off + pre_len + len;
}

int pl_cpace_generator(const uint8_t *prs, size_t prs_len, const uint8_t *ci, size_t ci_len,
                       const uint8_t *sid, size_t sid_len, uint8_t g[PL_CPACE_POINT])
{
    if (!g || (!prs && prs_len) || (!ci && ci_len) || (!sid && sid_len))
        return PL_ERR_INVALID;
    if (prs_len > CPACE_MAX_PRS || ci_len > CPACE_MAX_CI || sid_len > CPACE_MAX_SID)
        return PL_ERR_INVALID;

    /* len_zpad = max(0, s_in_bytes - 1 - len(prepend_len(PRS)) - len(prepend_len(DSI))) */
    uint8_t pre[LEB128_MAX];
    size_t used = 1 + leb128(prs_len, pre) + prs_len + leb128(CPACE_DSI_LEN, pre) + CPACE_DSI_LEN;
    size_t zpad_len = used < CPACE_S_IN_BYTES ? CPACE_S_IN_BYTES - used : 0;
    static const uint8_t zeros[CPACE_S_IN_BYTES];

    uint8_t str[GEN_STRING_MAX]; /* holds PRS: wiped below */
    uint8_t hash[crypto_hash_sha512_BYTES];
    size_t n = 0;
    n = pl_cpace_lv_cat(str, sizeof str, n, (const uint8_t *)CPACE_DSI, CPACE_DSI_LEN);
    if (n)
        n = pl_cpace_lv_cat(str, sizeof str, n, prs, prs_len);
    if (n)
        n = pl_cpace_lv_cat(str, sizeof str, n, zeros, zpad_len);
    if (n)
        n = pl_cpace_lv_cat(str, sizeof str, n, ci, ci_len);
    if (n)
        n = pl_cpace_lv_cat(str, sizeof str, n, sid, sid_len);
    if (!n) { /* cannot happen: str is sized by the bounds checked above */
        sodium_memzero(str, sizeof str);
        return PL_ERR_INVALID;
    }

    crypto_hash_sha512(hash, str, n);
    crypto_core_ristretto255_from_hash(g, hash);
    sodium_memzero(str, sizeof str);
    sodium_memzero(hash, sizeof hash);
    return PL_OK;
}

int pl_cpace_message(const uint8_t g[PL_CPACE_POINT], const uint8_t *y,
                     uint8_t y_out[PL_CPACE_SCALAR], uint8_t Y[PL_CPACE_POINT])
{
    if (!g || !y_out || !Y)
        return PL_ERR_INVALID;
    if (y)
        memmove(y_out, y, PL_CPACE_SCALAR);
    else
        crypto_core_ristretto255_scalar_random(y_out);
    /* -1: g does not decode, or y * g is the identity (e.g. y == 0). */
    if (crypto_scalarmult_ristretto255(Y, y_out, g) != 0) {
        sodium_memzero(Y, PL_CPACE_POINT);
        return PL_ERR_PROTOCOL;
    }
    return PL_OK;
}

/* Feed lv_cat(part) into a running SHA-512. */
static void hash_lv(crypto_hash_sha512_state *st, const uint8_t *part, size_t len)
{
    uint8_t pre[LEB128_MAX];
    size_t pre_len = leb128(len, pre);
    crypto_hash_sha512_update(st, pre, pre_len);
    if (len)
        crypto_hash_sha512_update(st, part, len);
}

int pl_cpace_isk_ir(const uint8_t y[PL_CPACE_SCALAR], const uint8_t Y_peer[PL_CPACE_POINT],
                    const uint8_t *sid, size_t sid_len, const uint8_t Ya[PL_CPACE_POINT],
                    const uint8_t *ADa, size_t ADa_len, const uint8_t Yb[PL_CPACE_POINT],
                    const uint8_t *ADb, size_t ADb_len, uint8_t isk[PL_CPACE_ISK])
{
    if (!y || !Y_peer || !Ya || !Yb || !isk || (!sid && sid_len) || (!ADa && ADa_len) ||
        (!ADb && ADb_len))
        return PL_ERR_INVALID;
    if (sid_len > CPACE_MAX_SID) /* the same bound as for the generator */
        return PL_ERR_INVALID;

    /* G.I encodes as 32 zero bytes; libsodium rejects it too, but say so. */
    if (sodium_is_zero(Y_peer, PL_CPACE_POINT))
        return PL_ERR_PROTOCOL;

    uint8_t K[PL_CPACE_POINT];
    /* scalar_mult_vfy: -1 if Y_peer does not decode or y * Y_peer == G.I. */
    if (crypto_scalarmult_ristretto255(K, y, Y_peer) != 0) {
        sodium_memzero(K, sizeof K);
        return PL_ERR_PROTOCOL;
    }

    uint8_t prefix[ISK_PREFIX_MAX]; /* lv_cat(DSI_ISK, sid, K): holds K */
    size_t n = 0;
    n = pl_cpace_lv_cat(prefix, sizeof prefix, n, (const uint8_t *)CPACE_DSI_ISK,
                        CPACE_DSI_ISK_LEN);
    if (n)
        n = pl_cpace_lv_cat(prefix, sizeof prefix, n, sid, sid_len);
    if (n)
        n = pl_cpace_lv_cat(prefix, sizeof prefix, n, K, sizeof K);
    sodium_memzero(K, sizeof K);
    if (!n) { /* cannot happen: prefix is sized by the bound checked above */
        sodium_memzero(prefix, sizeof prefix);
        return PL_ERR_INVALID;
    }

    crypto_hash_sha512_state st;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, prefix, n);
    sodium_memzero(prefix, sizeof prefix);
    /* transcript_ir = lv_cat(Ya, ADa) || lv_cat(Yb, ADb) */
    hash_lv(&st, Ya, PL_CPACE_POINT);
    hash_lv(&st, ADa, ADa_len);
    hash_lv(&st, Yb, PL_CPACE_POINT);
    hash_lv(&st, ADb, ADb_len);
    crypto_hash_sha512_final(&st, isk);
    sodium_memzero(&st, sizeof st);
    return PL_OK;
}
