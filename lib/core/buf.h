/* SPDX-License-Identifier: ISC */
/* A growable byte buffer with a read offset: append at the tail, consume from the head. */
#ifndef PL_CORE_BUF_H
#define PL_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl_buf {
    uint8_t *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of valid data (off <= len <= cap) */
    size_t cap;
} pl_buf;

void pl_buf_init(pl_buf *b);
/* Free the storage (wiping it first) and reset to empty. */
void pl_buf_clear(pl_buf *b);
/* Make room for n more bytes at the tail. PL_OK or PL_ERR_NOMEM. */
int pl_buf_reserve(pl_buf *b, size_t n);
/* Append n bytes. PL_OK or PL_ERR_NOMEM (nothing appended). */
int pl_buf_append(pl_buf *b, const void *p, size_t n);
/* Unconsumed bytes. */
static inline size_t pl_buf_size(const pl_buf *b) { return b->len - b->off; }
static inline const uint8_t *pl_buf_head(const pl_buf *b) { return b->data + b->off; }
/* Drop n bytes from the head (n <= pl_buf_size). Compacts when empty. */
void pl_buf_consume(pl_buf *b, size_t n);

/*
 * A ring of entries (byte strings) in order: each is added at the tail,
 * dropped from the head, and stays where it was written until then, so
 * dropping the head moves nothing. An entry is contiguous: one that does
 * not fit before the end of the storage starts again at offset 0 (when
 * the head has left room there), else the storage grows (the entries are
 * copied, in order, to the start of a new allocation). Entries are
 * addressed by their offset from the head, counting entries' bytes only,
 * which no growth changes.
 *
 * Wiping: storage is wiped whenever it is released (pl_ring_clear, and the
 * old allocation when the ring grows). A dropped entry's bytes stay in the
 * ring until a later entry overwrites them or the storage is released.
 *
 * The bytes in use are data[head..end) followed by data[0..wrap)
 * (wrap <= head when wrap > 0; data[end..cap) is unused then).
 */
typedef struct pl_ring {
    uint8_t *data;
    size_t cap;
    size_t head; /* first byte of the first entry */
    size_t end;  /* end of the entries that start at head (head <= end <= cap) */
    size_t wrap; /* bytes of entries at data[0..wrap) after those: 0 when none */
} pl_ring;

void pl_ring_init(pl_ring *r);
/* Free the storage (wiping it first) and reset to empty. */
void pl_ring_clear(pl_ring *r);
/* Add an entry of n > 0 bytes at the tail: where to write it, or NULL
 * (no memory; nothing added, nothing moved). Earlier entries may move
 * (the storage grew): take pointers again with pl_ring_at(). */
uint8_t *pl_ring_push(pl_ring *r, size_t n);
/* Drop the head entry, of n bytes. */
void pl_ring_pop(pl_ring *r, size_t n);
/* Take back the last entry pushed, of n bytes. */
void pl_ring_unpush(pl_ring *r, size_t n);
/* Bytes of all the entries. */
static inline size_t pl_ring_size(const pl_ring *r) { return r->end - r->head + r->wrap; }
/* The first byte of the entry at offset off from the head (off < pl_ring_size). */
static inline uint8_t *pl_ring_at(const pl_ring *r, size_t off)
{
    size_t first = r->end - r->head;
    return r->data + (off < first ? r->head + off : off - first);
}

#endif
