/* SPDX-License-Identifier: ISC */
/* Growable byte buffer and ring of entries (see buf.h). Storage is wiped before it is released. */
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

/* Wipe and free storage of cap bytes (NULL: none). */
static void storage_free(uint8_t *data, size_t cap)
{
    if (data != NULL) {
        sodium_memzero(data, cap);
        free(data);
    }
}

/* from, doubled until it holds need (need itself once doubling would pass
 * PTRDIFF_MAX / 2). need <= PTRDIFF_MAX. */
static size_t doubled_to(size_t from, size_t need)
{
    while (from < need) {
        if (from > PTRDIFF_MAX / 2)
            return need;
        from *= 2;
    }
    return from;
}

void pl_buf_clear(pl_buf *b)
{
    storage_free(b->data, b->cap);
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
    newcap = doubled_to(b->cap < PL_BUF_MIN_CAP ? PL_BUF_MIN_CAP : b->cap, need);
    /* malloc + copy + wipe rather than realloc, so no unwiped copy is left behind. */
    p = malloc(newcap);
    if (p == NULL)
        return PL_ERR_NOMEM;
    if (size > 0)
        memcpy(p, b->data + b->off, size);
    storage_free(b->data, b->cap);
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

/* ---------------------------------------------------------------- ring of entries */

void pl_ring_init(pl_ring *r)
{
    r->data = NULL;
    r->cap = 0;
    r->head = 0;
    r->end = 0;
    r->wrap = 0;
}

void pl_ring_clear(pl_ring *r)
{
    storage_free(r->data, r->cap);
    pl_ring_init(r);
}

/* Copy the entries, in order, to the start of a new allocation with room
 * for n more bytes after them; wipe and free the old one. The new one is
 * at least twice as large even when the bytes would fit in the old one
 * (its free room was in two pieces, each too small): so entries are
 * copied only while the ring grows, never again and again at one size.
 * It grows only when less than 2 n bytes were free, so its size stays
 * below twice the most bytes kept plus twice the largest entry. */
static int ring_grow(pl_ring *r, size_t n)
{
    size_t size = pl_ring_size(r), first = r->end - r->head, need, newcap;
    uint8_t *p;

    if (n > SIZE_MAX - size)
        return PL_ERR_NOMEM;
    need = size + n;
    if (need > PTRDIFF_MAX) /* no object can be this large */
        return PL_ERR_NOMEM;
    newcap = r->cap < PL_BUF_MIN_CAP / 2 ? PL_BUF_MIN_CAP / 2 : r->cap;
    newcap = newcap > PTRDIFF_MAX / 2 ? need : doubled_to(2 * newcap, need); /* at least twice */
    p = malloc(newcap);
    if (p == NULL)
        return PL_ERR_NOMEM;
    if (first > 0)
        memcpy(p, r->data + r->head, first);
    if (r->wrap > 0)
        memcpy(p + first, r->data, r->wrap);
    storage_free(r->data, r->cap);
    r->data = p;
    r->cap = newcap;
    r->head = 0;
    r->end = size;
    r->wrap = 0;
    return PL_OK;
}

uint8_t *pl_ring_push(pl_ring *r, size_t n)
{
    uint8_t *p;

    if (n == 0)
        return NULL;
    if (r->wrap == 0 && r->cap - r->end >= n) {
        /* after the last entry (an empty ring starts at 0: head == end == 0) */
        p = r->data + r->end;
        r->end += n;
        return p;
    }
    if (r->head - r->wrap >= n) {
        /* from offset 0 on (first wrap: wrap == 0), before the head */
        p = r->data + r->wrap;
        r->wrap += n;
        return p;
    }
    if (ring_grow(r, n) != PL_OK)
        return NULL;
    p = r->data + r->end;
    r->end += n;
    return p;
}

void pl_ring_pop(pl_ring *r, size_t n)
{
    r->head += n;
    if (r->head >= r->end) {
        /* the entries from 0 on (if any) are the first now */
        r->head = 0;
        r->end = r->wrap;
        r->wrap = 0;
    }
}

void pl_ring_unpush(pl_ring *r, size_t n)
{
    if (r->wrap > 0)
        r->wrap -= n;
    else
        r->end -= n;
    if (r->head == r->end && r->wrap == 0)
        r->head = r->end = 0;
}
