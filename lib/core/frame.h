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
    const uint8_t *data; /* borrowed until the next pl_deframer_feed / clear */
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
 * allocating), PL_ERR_NOMEM. After an error the deframer is unusable.
 */
int pl_deframer_feed(pl_deframer *d, const uint8_t *in, size_t len, size_t *consumed,
                     pl_message *msg);
/* 1 if part of a frame or message has been read (a stream ending now is truncated). */
int pl_deframer_in_progress(const pl_deframer *d);

#endif
