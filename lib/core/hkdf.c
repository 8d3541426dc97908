/* SPDX-License-Identifier: ISC */
/* HKDF-SHA512 (RFC 5869) over libsodium's HMAC-SHA512. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

#include "crypto.h"

void pl_hkdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                     uint8_t prk[PL_HASH_SIZE])
{
    static const uint8_t none[1];
    crypto_auth_hmacsha512_state st;
    crypto_auth_hmacsha512_init(&st, salt ? salt : none, salt ? salt_len : 0);
    crypto_auth_hmacsha512_update(&st, ikm, ikm_len);
    crypto_auth_hmacsha512_final(&st, prk);
    sodium_memzero(&st, sizeof st);
}

int pl_hkdf_expand(const uint8_t *prk, size_t prk_len, const char *label, const uint8_t *ctx,
                   size_t ctx_len, uint8_t *out, size_t out_len)
{
    if (!prk || !label || (!ctx && ctx_len) || (!out && out_len) || out_len > 255 * PL_HASH_SIZE)
        return PL_ERR_INVALID;
    uint8_t t[PL_HASH_SIZE];
    size_t t_len = 0, done = 0;
    for (uint8_t i = 1; done < out_len; i++) {
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, prk, prk_len);
        crypto_auth_hmacsha512_update(&st, t, t_len);
        crypto_auth_hmacsha512_update(&st, (const uint8_t *)label, strlen(label));
        if (ctx_len)
            crypto_auth_hmacsha512_update(&st, ctx, ctx_len);
        crypto_auth_hmacsha512_update(&st, &i, 1);
        crypto_auth_hmacsha512_final(&st, t);
        sodium_memzero(&st, sizeof st);
        t_len = PL_HASH_SIZE;
        size_t n = out_len - done < t_len ? out_len - done : t_len;
        memcpy(out + done, t, n);
        done += n;
    }
    sodium_memzero(t, sizeof t);
    return PL_OK;
}
