/* SPDX-License-Identifier: ISC */
/*
 * Frame codec (sans-I/O). Wire layout in docs/PROTOCOL.md:
 *
 *   0      1      2      3      4              8
 *   +------+------+------+------+--------------+---------------+
 *   | ver  | type | flags| rsvd | length (u32) | payload ...   |
 *   +------+------+------+------+--------------+---------------+
 *
 * ver = PL_FRAME_VERSION, rsvd = 0, length = payload bytes in network
 * order, at most PL_FRAME_MAX_PAYLOAD. A message is one or more frames
 * of one type; every frame but the last has PL_FRAME_FLAG_MORE.
 */
#ifndef PL_CORE_FRAME_H
#define PL_CORE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PL_FRAME_VERSION 1
#define PL_FRAME_HEADER_SIZE 8
#define PL_FRAME_MAX_PAYLOAD 16384
#define PL_FRAME_FLAG_MORE 0x01

enum pl_frame_type {
    PL_FRAME_CONTROL = 1, /* payload: a protobuf peerlink.Control message */
    PL_FRAME_DATA = 2,    /* payload: application bytes */
    PL_FRAME_RECORD = 3   /* payload: a sealed inner frame (record.h) */
};

typedef struct pl_frame_header {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint32_t length;
} pl_frame_header;

void pl_frame_header_encode(const pl_frame_header *h, uint8_t out[PL_FRAME_HEADER_SIZE]);
/* Parse and validate: PL_OK, PL_ERR_VERSION (ver), PL_ERR_MALFORMED (type, flags, rsvd),
 * PL_ERR_TOO_LARGE (length > PL_FRAME_MAX_PAYLOAD). */
int pl_frame_header_decode(const uint8_t in[PL_FRAME_HEADER_SIZE], pl_frame_header *h);

/* Append the frames of one message (len may be 0: one empty frame) to out.
 * PL_OK or PL_ERR_NOMEM (out unchanged on error). */
int pl_frame_encode_message(pl_buf *out, uint8_t type, const void *data, size_t len);

/* Called as soon as a frame's header is complete, before any of its payload
 * is stored: PL_OK to go on, or a negative pl_error that fails the feed.
 * have: payload bytes of the message so far (its earlier frames). The
 * caller's type-specific bounds and rules live here. */
typedef int (*pl_frame_bound)(void *ctx, const pl_frame_header *h, size_t have);

/* Reassembles messages from a byte stream split or coalesced anyhow. */
typedef struct pl_deframer {
    size_t max_message;                    /* largest message accepted */
    uint8_t hdr[PL_FRAME_HEADER_SIZE];     /* header being collected */
    size_t hdr_have;
    pl_frame_header cur;                   /* header of the frame being read (valid when hdr_have == 8) */
    size_t payload_have;                   /* payload bytes of cur read so far */
    uint8_t msg_type;                      /* type of the message being assembled, 0 if none */
    pl_buf msg;                            /* message being assembled */
    int ready;                             /* a message was returned; reset on next feed */
} pl_deframer;

typedef struct pl_message {
    uint8_t type;
    const uint8_t *data; /* borrowed until the next feed / take / clear, and from the input: while it lasts */
    size_t len;
} pl_message;

void pl_deframer_init(pl_deframer *d, size_t max_message);
void pl_deframer_clear(pl_deframer *d);
/*
 * Consume bytes from in[0..len) until one message is complete or the
 * input is used up; *consumed says how many were used. Returns 1 with
 * *msg filled when a message is complete, 0 when more input is needed,
 * or a negative pl_error: PL_ERR_VERSION, PL_ERR_MALFORMED (bad header,
 * a frame whose type differs from the message it continues),
 * PL_ERR_TOO_LARGE (frame or message past its bound, detected before
 * allocating), whatever bound (may be NULL) returns, PL_ERR_NOMEM. After
 * an error the deframer is unusable.
 *
 * A message of one frame that is whole in the input, with nothing of it
 * read before, is not copied: msg->data points into in.
 */
int pl_deframer_feed(pl_deframer *d, const uint8_t *in, size_t len, size_t *consumed,
                     pl_message *msg, pl_frame_bound bound, void *bound_ctx);
/* 1 if part of a frame or message has been read (a stream ending now is truncated). */
int pl_deframer_in_progress(const pl_deframer *d);

/*
 * Reassembles messages from whole frames that the caller writes straight
 * into place - the record layer decrypts each record's inner frame there -
 * so that no payload byte is copied. pl_reasm_room() says where the next
 * frame goes, header first; pl_reasm_take() checks it and adds its payload
 * to the message. The room's first PL_FRAME_HEADER_SIZE bytes lie over the
 * last bytes of the message so far (or over spare room before an empty
 * one), which pl_reasm_room() saves and pl_reasm_take() puts back.
 * Between the two, nothing but the caller writes into the reassembler;
 * after any error (the caller's included) only pl_reasm_clear() is valid.
 */
typedef struct pl_reasm {
    pl_buf buf;                          /* PL_FRAME_HEADER_SIZE spare bytes, then the message so far */
    uint8_t saved[PL_FRAME_HEADER_SIZE]; /* the bytes the room's header lies over */
    uint8_t type;                        /* of the message being assembled, 0 if none */
    uint8_t ready;                       /* a message was handed out: dropped at the next room */
    uint8_t large;                       /* that message was one frame in a buffer worth freeing */
} pl_reasm;

void pl_reasm_init(pl_reasm *r);
/* Wipe and free. */
void pl_reasm_clear(pl_reasm *r);
/* Where to write the next frame, of n >= PL_FRAME_HEADER_SIZE bytes
 * (header included); NULL without memory. A message handed out before is
 * no longer borrowed. */
uint8_t *pl_reasm_room(pl_reasm *r, size_t n);
/* The frame of n bytes written at the room: 1 with *msg when it ends a
 * message, 0 when more frames follow, or a negative pl_error:
 * PL_ERR_VERSION / PL_ERR_MALFORMED (its header, or a type other than the
 * message it continues), PL_ERR_PROTOCOL (its header's length is not
 * n - PL_FRAME_HEADER_SIZE), whatever bound (may be NULL) returns. */
int pl_reasm_take(pl_reasm *r, size_t n, pl_message *msg, pl_frame_bound bound, void *bound_ctx);
/* 1 if a message is partly assembled. */
static inline int pl_reasm_in_progress(const pl_reasm *r) { return r->type != 0; }

#endif
