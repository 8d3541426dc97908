/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target for pl_txt_decode(): decode arbitrary bytes and, when
 * that succeeds, check that encode/decode is a stable round trip.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/txt.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_txt *a = NULL;
    if (pl_txt_decode(data, size, &a) != PL_OK)
        return 0;

    /* Walk every attribute; keys must be valid C strings of valid bytes. */
    size_t count = pl_txt_count(a);
    for (size_t i = 0; i < count; i++) {
        const char *key = NULL;
        const void *value = NULL;
        size_t len = 0;
        if (pl_txt_at(a, i, &key, &value, &len) != PL_OK || key == NULL || key[0] == '\0')
            abort();
        size_t klen = strlen(key);
        for (size_t k = 0; k < klen; k++)
            if ((unsigned char)key[k] < 0x20 || (unsigned char)key[k] > 0x7E || key[k] == '=')
                abort();
        if (value == NULL && len != 0)
            abort();
        if (klen + (value ? 1 + len : 0) > PL_TXT_MAX_STRING)
            abort();
        /* The key looks itself up (first occurrence wins, so this is entry i). */
        const void *v2 = NULL;
        size_t len2 = 0;
        if (pl_txt_get(a, key, &v2, &len2) != PL_OK || v2 != value || len2 != len)
            abort();
    }
    if (pl_txt_at(a, count, NULL, NULL, NULL) != PL_ERR_NOT_FOUND)
        abort();

    /* Re-encode: size query, then the real thing. */
    size_t need = 0;
    if (pl_txt_encode(a, NULL, 0, &need) != PL_OK)
        abort();
    if (count == 0 ? need != 1 : need > size)
        abort();
    uint8_t *buf = malloc(need);
    if (buf == NULL)
        abort();
    size_t got = 0;
    if (pl_txt_encode(a, buf, need, &got) != PL_OK || got != need)
        abort();

    /* Decode again: must be the same record. */
    pl_txt *b = NULL;
    if (pl_txt_decode(buf, got, &b) != PL_OK || !pl_txt_equal(a, b))
        abort();

    /* A copy is equal too. */
    pl_txt *c = NULL;
    if (pl_txt_dup(b, &c) != PL_OK || !pl_txt_equal(a, c))
        abort();

    pl_txt_free(c);
    pl_txt_free(b);
    pl_txt_free(a);
    free(buf);
    return 0;
}
