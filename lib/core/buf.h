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

#endif
