/* SPDX-License-Identifier: ISC */
/* The record layer: ChaCha20-Poly1305-IETF sealed RECORD frames (see record.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "record.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

#ifdef PL_HAVE_LIBCRYPTO_AEAD
/* A libcrypto context and the key it holds. It is keyed when a record
 * needs another key than the one it has (each record of the same key sets
 * only its nonce), so whichever directions share it, and whatever copies
 * of a direction exist (a rollback), it never seals or opens under a key
 * other than the direction's: the key is compared whole. Made at its
 * first use. */
typedef struct pl_evp {
    EVP_CIPHER_CTX *ctx;
    uint8_t key[PL_RECORD_KEY];
    int keyed;
} pl_evp;

/* One context to seal and one to open with. */
struct pl_aead_cache {
    pl_evp seal, open;
};

static void evp_clear(pl_evp *x)
{
    EVP_CIPHER_CTX_free(x->ctx); /* which wipes its key state */
    sodium_memzero(x, sizeof *x);
}
#endif

pl_aead_cache *pl_aead_cache_new(void)
{
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    return calloc(1, sizeof(pl_aead_cache));
#else
    return NULL;
#endif
}

void pl_aead_cache_free(pl_aead_cache *c)
{
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    if (c) {
        evp_clear(&c->seal);
        evp_clear(&c->open);
        free(c);
    }
#else
    (void)c;
#endif
}

static void record_key(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval)
{
    memcpy(d->key, key, PL_RECORD_KEY);
    d->counter = 0;
    d->rekey_interval = rekey_interval == 0 ? PL_RECORD_REKEY_INTERVAL : rekey_interval;
    d->epoch = 0;
    d->ready = 1;
}

int pl_record_init_with(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval,
                        pl_aead_impl impl)
{
    sodium_memzero(d, sizeof *d);
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    if (impl != PL_AEAD_LIBSODIUM) {
        d->evp = pl_aead_cache_new();
        d->evp_owned = d->evp != NULL;
        d->evp_from = impl == PL_AEAD_LIBCRYPTO ? 0 : PL_RECORD_EVP_FROM;
        if (!d->evp && impl == PL_AEAD_LIBCRYPTO)
            return PL_ERR_NOMEM;
    }
#else
    if (impl == PL_AEAD_LIBCRYPTO)
        return PL_ERR_UNSUPPORTED;
#endif
    record_key(d, key, rekey_interval);
    return PL_OK;
}

void pl_record_init_cached(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval,
                           pl_aead_cache *cache)
{
    if (!cache) {
        pl_record_init(d, key, rekey_interval);
        return;
    }
    sodium_memzero(d, sizeof *d);
    d->evp = cache;
    d->evp_from = PL_RECORD_EVP_FROM;
    record_key(d, key, rekey_interval);
}

void pl_record_init(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval)
{
    (void)pl_record_init_with(d, key, rekey_interval, PL_AEAD_DEFAULT); /* cannot fail, see record.h */
}

pl_aead_impl pl_record_impl(const pl_record_dir *d, size_t inner_len)
{
    return d->evp && inner_len >= d->evp_from ? PL_AEAD_LIBCRYPTO : PL_AEAD_LIBSODIUM;
}

void pl_record_clear(pl_record_dir *d)
{
    if (d->evp_owned)
        pl_aead_cache_free(d->evp);
    sodium_memzero(d, sizeof *d);
}

#ifdef PL_HAVE_LIBCRYPTO_AEAD
/* The context d seals (enc) or opens with, made at its first use; NULL
 * without memory (libsodium then computes the same bytes). */
static pl_evp *evp_of(const pl_record_dir *d, int enc)
{
    pl_evp *x = enc ? &d->evp->seal : &d->evp->open;
    if (!x->ctx) {
        x->ctx = EVP_CIPHER_CTX_new();
        if (x->ctx && EVP_CipherInit_ex(x->ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, enc) != 1) {
            EVP_CIPHER_CTX_free(x->ctx);
            x->ctx = NULL;
        }
        x->keyed = 0;
    }
    return x->ctx ? x : NULL;
}

/* libcrypto's ChaCha20-Poly1305 (RFC 8439), one record of d: the same bytes as libsodium's
 * crypto_aead_chacha20poly1305_ietf_*_detached, the input taken from its parts in turn and
 * written to out whole. 0 if the tag checks (open) or on success. */
static int evp_aead(pl_evp *x, const pl_record_dir *d, int enc, const uint8_t nonce[PL_RECORD_NONCE],
                    const uint8_t *aad, size_t aad_len, const pl_record_part *in, size_t nparts, uint8_t *out,
                    uint8_t tag[PL_RECORD_TAG])
{
    int rekey = !x->keyed || sodium_memcmp(x->key, d->key, PL_RECORD_KEY) != 0;
    int n, ok = EVP_CipherInit_ex(x->ctx, NULL, NULL, rekey ? d->key : NULL, nonce, enc) == 1 &&
                (enc || EVP_CIPHER_CTX_ctrl(x->ctx, EVP_CTRL_AEAD_SET_TAG, PL_RECORD_TAG, tag) == 1) &&
                EVP_CipherUpdate(x->ctx, NULL, &n, aad, (int)aad_len) == 1;
    for (size_t i = 0; ok && i < nparts; i++)
        if (in[i].len) {
            ok = EVP_CipherUpdate(x->ctx, out, &n, in[i].p, (int)in[i].len) == 1;
            out += in[i].len;
        }
    ok = ok && EVP_CipherFinal_ex(x->ctx, out, &n) == 1 &&
         (!enc || EVP_CIPHER_CTX_ctrl(x->ctx, EVP_CTRL_AEAD_GET_TAG, PL_RECORD_TAG, tag) == 1);
    x->keyed = ok; /* a failure may have left it half keyed: key it again next time */
    if (rekey && ok)
        memcpy(x->key, d->key, PL_RECORD_KEY);
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

int pl_record_seal_parts(pl_record_dir *d, const pl_record_part *parts, size_t nparts, pl_buf *out)
{
    uint8_t nonce[PL_RECORD_NONCE];
    uint8_t *hdr, *ct;
    pl_frame_header h;
    size_t inner_len = 0, total;
    int rc;

    if (d == NULL || out == NULL || !d->ready || (parts == NULL && nparts != 0))
        return PL_ERR_INVALID;
    for (size_t i = 0; i < nparts; i++) {
        if ((parts[i].p == NULL && parts[i].len != 0) || parts[i].len > PL_RECORD_MAX_INNER - inner_len)
            return PL_ERR_INVALID;
        inner_len += parts[i].len;
    }
    total = PL_FRAME_HEADER_SIZE + inner_len + PL_RECORD_TAG;
    /* Reserve first: nothing below can fail, so out is unchanged on error.
     * A part may point into out only where this record's ciphertext goes
     * (out->data + out->len + header, in order), with the room already
     * reserved so that this reserve cannot move the storage. */
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
    int sealed = 0;
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    pl_evp *x = pl_record_impl(d, inner_len) == PL_AEAD_LIBCRYPTO ? evp_of(d, 1) : NULL;
    /* Sealed from where the parts are: no copy of the plaintext. */
    sealed = x && evp_aead(x, d, 1, nonce, hdr, PL_FRAME_HEADER_SIZE, parts, nparts, ct, ct + inner_len) == 0;
    if (x && !sealed) {
        /* libcrypto failed (it may have written over ct): libsodium seals
         * the same bytes, unless a part lay where the ciphertext goes. */
        for (size_t i = 0; i < nparts; i++)
            if (parts[i].len && (uintptr_t)parts[i].p < (uintptr_t)(ct + inner_len) &&
                (uintptr_t)(parts[i].p + parts[i].len) > (uintptr_t)ct) {
                sodium_memzero(hdr, total); /* nothing half-sealed is left where the caller looks */
                return PL_ERR_NOMEM;
            }
    }
#endif
    if (!sealed) {
        /* libsodium takes the plaintext whole: gathered where the ciphertext goes, sealed there. */
        size_t at = 0;
        for (size_t i = 0; i < nparts; i++) {
            if (parts[i].len && parts[i].p != ct + at)
                memmove(ct + at, parts[i].p, parts[i].len);
            at += parts[i].len;
        }
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(ct, ct + inner_len, NULL, ct, inner_len, hdr,
                                                           PL_FRAME_HEADER_SIZE, NULL, nonce, d->key);
    }
    out->len += total;
    record_advance(d);
    return PL_OK;
}

int pl_record_seal(pl_record_dir *d, const uint8_t *inner, size_t inner_len, pl_buf *out)
{
    pl_record_part part = {inner, inner_len};
    return pl_record_seal_parts(d, &part, 1, out);
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
    pl_evp *x = pl_record_impl(d, clen) == PL_AEAD_LIBCRYPTO ? evp_of(d, 0) : NULL;
    if (x) {
        /* libcrypto decrypts before it checks the tag: nothing unauthenticated may stay in out. */
        uint8_t tag[PL_RECORD_TAG];
        memcpy(tag, payload + clen, sizeof tag);
        pl_record_part in = {payload, clen};
        bad = evp_aead(x, d, 0, nonce, hdr, PL_FRAME_HEADER_SIZE, &in, 1, out, tag);
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
