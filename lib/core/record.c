/* SPDX-License-Identifier: ISC */
/* The record layer: ChaCha20-Poly1305-IETF sealed RECORD frames (see record.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "record.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>
#ifdef PL_HAVE_LIBCRYPTO_AEAD
#include <openssl/evp.h>
#endif

#include <peerlink/common.h>

#include "crypto.h"

#define PL_RECORD_NONCE 12
#define PL_RECORD_REKEY_LABEL "peerlink rekey"

/* Sizes the code below relies on. */
_Static_assert(PL_RECORD_KEY == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(PL_RECORD_TAG == crypto_aead_chacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(PL_RECORD_NONCE == crypto_aead_chacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(PL_RECORD_MAX_INNER + PL_RECORD_TAG == PL_FRAME_MAX_PAYLOAD, "record size");

int pl_record_init_with(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval,
                        pl_aead_impl impl)
{
    sodium_memzero(d, sizeof *d);
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    if (impl != PL_AEAD_LIBSODIUM) {
        /* The cipher now; the key and the nonce with each record (a ChaCha20 key setup is a copy). */
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        if (ctx && EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, 1) == 1)
            d->evp = ctx;
        else
            EVP_CIPHER_CTX_free(ctx);
        if (!d->evp && impl == PL_AEAD_LIBCRYPTO)
            return PL_ERR_NOMEM;
    }
#else
    if (impl == PL_AEAD_LIBCRYPTO)
        return PL_ERR_UNSUPPORTED;
#endif
    memcpy(d->key, key, PL_RECORD_KEY);
    d->counter = 0;
    d->rekey_interval = rekey_interval == 0 ? PL_RECORD_REKEY_INTERVAL : rekey_interval;
    d->epoch = 0;
    d->ready = 1;
    return PL_OK;
}

void pl_record_init(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval)
{
    (void)pl_record_init_with(d, key, rekey_interval, PL_AEAD_DEFAULT); /* cannot fail, see record.h */
}

pl_aead_impl pl_record_impl(const pl_record_dir *d)
{
    return d->evp ? PL_AEAD_LIBCRYPTO : PL_AEAD_LIBSODIUM;
}

void pl_record_clear(pl_record_dir *d)
{
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    EVP_CIPHER_CTX_free(d->evp); /* its key state was wiped after the last record */
#endif
    sodium_memzero(d, sizeof *d);
}

#ifdef PL_HAVE_LIBCRYPTO_AEAD
/* libcrypto's ChaCha20-Poly1305 (RFC 8439), one record: the same bytes as libsodium's
 * crypto_aead_chacha20poly1305_ietf_*_detached. 0 if the tag checks (open) or on success. */
static int evp_aead(EVP_CIPHER_CTX *ctx, int enc, const uint8_t key[PL_RECORD_KEY],
                    const uint8_t nonce[PL_RECORD_NONCE], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[PL_RECORD_TAG])
{
    int n, ok = EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) == 1 &&
                (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, PL_RECORD_TAG, tag) == 1) &&
                EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
                (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1) &&
                EVP_CipherFinal_ex(ctx, out + len, &n) == 1 &&
                (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, PL_RECORD_TAG, tag) == 1);
    /* Leave no key in the context between records. */
    static const uint8_t zero_key[PL_RECORD_KEY], zero_nonce[PL_RECORD_NONCE];
    EVP_CipherInit_ex(ctx, NULL, NULL, zero_key, zero_nonce, 1);
    return ok ? 0 : -1;
}
#endif

/* nonce = 4 zero bytes || counter (u64 big endian) */
static void record_nonce(uint64_t counter, uint8_t nonce[PL_RECORD_NONCE])
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
}

/* One record was sealed/opened under the current key: count it, and
 * replace the key once rekey_interval records have used it. */
static void record_advance(pl_record_dir *d)
{
    d->counter++;
    if (d->counter >= d->rekey_interval) {
        uint8_t next[PL_RECORD_KEY];
        /* Cannot fail: the arguments are valid and out_len is tiny. */
        (void)pl_hkdf_expand(d->key, PL_RECORD_KEY, PL_RECORD_REKEY_LABEL, NULL, 0, next,
                             sizeof next);
        sodium_memzero(d->key, sizeof d->key);
        memcpy(d->key, next, sizeof next);
        sodium_memzero(next, sizeof next);
        d->counter = 0;
        d->epoch++;
    }
}

int pl_record_seal(pl_record_dir *d, const uint8_t *inner, size_t inner_len, pl_buf *out)
{
    uint8_t nonce[PL_RECORD_NONCE];
    uint8_t *hdr, *ct;
    pl_frame_header h;
    size_t total;
    int rc;

    if (d == NULL || out == NULL || !d->ready || (inner == NULL && inner_len != 0) ||
        inner_len > PL_RECORD_MAX_INNER)
        return PL_ERR_INVALID;
    total = PL_FRAME_HEADER_SIZE + inner_len + PL_RECORD_TAG;
    /* Reserve first: nothing below can fail, so out is unchanged on error.
     * inner may point into out only where this record's ciphertext goes
     * (out->data + out->len + header), with the room already reserved so
     * that this reserve cannot move the storage: libsodium encrypts in
     * place when c == m (engine.c's send_message does this). */
    rc = pl_buf_reserve(out, total);
    if (rc != PL_OK)
        return rc;
    hdr = out->data + out->len;
    ct = hdr + PL_FRAME_HEADER_SIZE;

    h.version = PL_FRAME_VERSION;
    h.type = PL_FRAME_RECORD;
    h.flags = 0;
    h.length = (uint32_t)(inner_len + PL_RECORD_TAG);
    pl_frame_header_encode(&h, hdr);
    record_nonce(d->counter, nonce);
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    if (d->evp) {
        if (evp_aead(d->evp, 1, d->key, nonce, hdr, PL_FRAME_HEADER_SIZE, inner, inner_len, ct,
                     ct + inner_len) != 0) {
            sodium_memzero(hdr, total); /* nothing half-sealed is left where the caller looks */
            return PL_ERR_NOMEM;
        }
    } else
#endif
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(ct, ct + inner_len, NULL, inner, inner_len,
                                                           hdr, PL_FRAME_HEADER_SIZE, NULL, nonce,
                                                           d->key);
    out->len += total;
    record_advance(d);
    return PL_OK;
}

int pl_record_open(pl_record_dir *d, const uint8_t hdr[PL_FRAME_HEADER_SIZE], const uint8_t *payload,
                   size_t payload_len, uint8_t *out, size_t *out_len)
{
    uint8_t nonce[PL_RECORD_NONCE];
    uint32_t claimed;
    size_t clen;

    if (out_len != NULL)
        *out_len = 0;
    if (d == NULL || hdr == NULL || out_len == NULL || !d->ready ||
        (payload == NULL && payload_len != 0))
        return PL_ERR_INVALID;
    if (payload_len < PL_RECORD_TAG)
        return PL_ERR_MALFORMED;
    clen = payload_len - PL_RECORD_TAG;
    if (out == NULL && clen != 0)
        return PL_ERR_INVALID;
    /* The header is authenticated as AAD; a length that does not match the
     * payload could never have been sealed, so it cannot authenticate. */
    claimed = ((uint32_t)hdr[4] << 24) | ((uint32_t)hdr[5] << 16) | ((uint32_t)hdr[6] << 8) |
              (uint32_t)hdr[7];
    if ((size_t)claimed != payload_len)
        return PL_ERR_AUTH;
    record_nonce(d->counter, nonce);
    int bad;
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    if (d->evp) {
        /* libcrypto decrypts before it checks the tag: nothing unauthenticated may stay in out. */
        uint8_t tag[PL_RECORD_TAG];
        memcpy(tag, payload + clen, sizeof tag);
        bad = evp_aead(d->evp, 0, d->key, nonce, hdr, PL_FRAME_HEADER_SIZE, payload, clen, out, tag);
        if (bad && clen)
            sodium_memzero(out, clen);
    } else
#endif
        /* libsodium verifies the tag before decrypting. */
        bad = crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, payload, clen, payload + clen, hdr,
                                                                 PL_FRAME_HEADER_SIZE, nonce, d->key);
    if (bad)
        return PL_ERR_AUTH; /* counter not advanced */
    *out_len = clen;
    record_advance(d);
    return PL_OK;
}
