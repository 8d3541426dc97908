/* SPDX-License-Identifier: ISC */
/* Growable byte buffer (see buf.h). Storage is wiped before it is released. */
#include "buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

#define PL_BUF_MIN_CAP 64

void pl_buf_init(pl_buf *b)
{
    b->data = NULL;
    b->off = 0;
    b->len = 0;
    b->cap = 0;
}

void pl_buf_clear(pl_buf *b)
{
    if (b->data != NULL) {
        sodium_memzero(b->data, b->cap);
        free(b->data);
    }
    pl_buf_init(b);
}

/* Move the unconsumed bytes to the front, wiping the vacated tail. */
static void pl_buf_compact(pl_buf *b)
{
    size_t size = b->len - b->off;
    if (b->off == 0)
        return;
    if (size > 0)
        memmove(b->data, b->data + b->off, size);
    sodium_memzero(b->data + size, b->len - size);
    b->off = 0;
    b->len = size;
}

int pl_buf_reserve(pl_buf *b, size_t n)
{
    size_t size, need, newcap;
    uint8_t *p;

    if (b->cap - b->len >= n)
        return PL_OK;
    size = b->len - b->off;
    if (n > SIZE_MAX - size)
        return PL_ERR_NOMEM;
    need = size + n;
    if (need > PTRDIFF_MAX) /* no object can be this large */
        return PL_ERR_NOMEM;
    /* Compact in place when it suffices and at least half of the used
     * region is consumed (keeps the memmove cost amortised). */
    if (need <= b->cap && b->off >= size) {
        pl_buf_compact(b);
        return PL_OK;
    }
    newcap = b->cap < PL_BUF_MIN_CAP ? PL_BUF_MIN_CAP : b->cap;
    while (newcap < need) {
        if (newcap > PTRDIFF_MAX / 2) {
            newcap = need;
            break;
        }
        newcap *= 2;
    }
    /* malloc + copy + wipe rather than realloc, so no unwiped copy is left behind. */
    p = malloc(newcap);
    if (p == NULL)
        return PL_ERR_NOMEM;
    if (size > 0)
        memcpy(p, b->data + b->off, size);
    if (b->data != NULL) {
        sodium_memzero(b->data, b->cap);
        free(b->data);
    }
    b->data = p;
    b->off = 0;
    b->len = size;
    b->cap = newcap;
    return PL_OK;
}

int pl_buf_append(pl_buf *b, const void *p, size_t n)
{
    int rc;
    if (n == 0)
        return PL_OK;
    rc = pl_buf_reserve(b, n);
    if (rc != PL_OK)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return PL_OK;
}

void pl_buf_consume(pl_buf *b, size_t n)
{
    size_t size = b->len - b->off;
    if (n > size)
        n = size;
    b->off += n;
    if (b->off == b->len) {
        b->off = 0;
        b->len = 0;
    }
}
