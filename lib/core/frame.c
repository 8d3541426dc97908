/* SPDX-License-Identifier: ISC */
/* Frame codec and deframer (see frame.h and docs/PROTOCOL.md). */
#include "frame.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

/* A reassembly buffer larger than this is freed (wiped), not kept, once its
 * message was handed out, unless the next message also spans several frames:
 * a stream of large messages reuses it instead of growing one anew for each. */
#define PL_DEFRAMER_KEEP_CAP (64u * 1024u)

/* Marks a deframer that returned an error (hdr_have can never legitimately exceed 8). */
#define PL_DEFRAMER_FAILED SIZE_MAX

static const uint8_t pl_empty_message[1] = {0};

void pl_frame_header_encode(const pl_frame_header *h, uint8_t out[PL_FRAME_HEADER_SIZE])
{
    out[0] = h->version;
    out[1] = h->type;
    out[2] = h->flags;
    out[3] = 0;
    out[4] = (uint8_t)(h->length >> 24);
    out[5] = (uint8_t)(h->length >> 16);
    out[6] = (uint8_t)(h->length >> 8);
    out[7] = (uint8_t)h->length;
}

int pl_frame_header_decode(const uint8_t in[PL_FRAME_HEADER_SIZE], pl_frame_header *h)
{
    uint32_t length = ((uint32_t)in[4] << 24) | ((uint32_t)in[5] << 16) |
                      ((uint32_t)in[6] << 8) | (uint32_t)in[7];
    if (in[0] != PL_FRAME_VERSION)
        return PL_ERR_VERSION;
    if (in[1] != PL_FRAME_CONTROL && in[1] != PL_FRAME_DATA && in[1] != PL_FRAME_RECORD)
        return PL_ERR_MALFORMED;
    if ((in[2] & ~PL_FRAME_FLAG_MORE) != 0 || in[3] != 0)
        return PL_ERR_MALFORMED;
    if (length > PL_FRAME_MAX_PAYLOAD)
        return PL_ERR_TOO_LARGE;
    h->version = in[0];
    h->type = in[1];
    h->flags = in[2];
    h->length = length;
    return PL_OK;
}

int pl_frame_encode_message(pl_buf *out, uint8_t type, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t nframes, total, done = 0;
    uint8_t hdr[PL_FRAME_HEADER_SIZE];
    int rc;

    nframes = len == 0 ? 1 : len / PL_FRAME_MAX_PAYLOAD + (len % PL_FRAME_MAX_PAYLOAD != 0);
    if (nframes > (SIZE_MAX - len) / PL_FRAME_HEADER_SIZE)
        return PL_ERR_NOMEM;
    total = len + nframes * PL_FRAME_HEADER_SIZE;
    /* Reserve everything first so the appends below cannot fail: out is unchanged on error. */
    rc = pl_buf_reserve(out, total);
    if (rc != PL_OK)
        return rc;
    do {
        size_t n = len - done;
        pl_frame_header h;
        if (n > PL_FRAME_MAX_PAYLOAD)
            n = PL_FRAME_MAX_PAYLOAD;
        h.version = PL_FRAME_VERSION;
        h.type = type;
        h.flags = (done + n < len) ? PL_FRAME_FLAG_MORE : 0;
        h.length = (uint32_t)n;
        pl_frame_header_encode(&h, hdr);
        memcpy(out->data + out->len, hdr, PL_FRAME_HEADER_SIZE);
        out->len += PL_FRAME_HEADER_SIZE;
        if (n > 0) {
            memcpy(out->data + out->len, p + done, n);
            out->len += n;
        }
        done += n;
    } while (done < len);
    return PL_OK;
}

void pl_deframer_init(pl_deframer *d, size_t max_message)
{
    memset(d, 0, sizeof *d);
    d->max_message = max_message;
    pl_buf_init(&d->msg);
}

void pl_deframer_clear(pl_deframer *d)
{
    size_t max = d->max_message;
    pl_buf_clear(&d->msg);
    sodium_memzero(d, sizeof *d);
    pl_deframer_init(d, max);
}

static int deframer_fail(pl_deframer *d, int err)
{
    d->hdr_have = PL_DEFRAMER_FAILED;
    return err;
}

/* A header was completed: check it, its place in the message and its
 * bounds, then get ready for its payload. */
static int deframer_header(pl_deframer *d, pl_frame_bound bound, void *bound_ctx)
{
    size_t have = pl_buf_size(&d->msg);
    int rc = pl_frame_header_decode(d->hdr, &d->cur);
    if (rc != PL_OK)
        return rc;
    if (d->msg_type != 0 && d->cur.type != d->msg_type)
        return PL_ERR_MALFORMED;
    /* The bounds are checked here, before any payload byte is stored. */
    if (have > d->max_message || d->cur.length > d->max_message - have)
        return PL_ERR_TOO_LARGE;
    if (bound && (rc = bound(bound_ctx, &d->cur, have)) < 0)
        return rc;
    if (d->msg_type == 0 && d->msg.cap > PL_DEFRAMER_KEEP_CAP && !(d->cur.flags & PL_FRAME_FLAG_MORE))
        pl_buf_clear(&d->msg); /* a message of one frame: no large buffer needed */
    d->msg_type = d->cur.type;
    d->payload_have = 0;
    return PL_OK;
}

/* The message is complete: hand out data[0..len) (never NULL, even empty). */
static int deframer_done(pl_deframer *d, const uint8_t *data, size_t len, pl_message *msg)
{
    msg->type = d->msg_type;
    msg->len = len;
    msg->data = len > 0 ? data : pl_empty_message;
    d->msg_type = 0;
    d->hdr_have = 0;
    d->payload_have = 0;
    d->ready = 1;
    return 1;
}

int pl_deframer_feed(pl_deframer *d, const uint8_t *in, size_t len, size_t *consumed,
                     pl_message *msg, pl_frame_bound bound, void *bound_ctx)
{
    size_t pos = 0;
    int rc;

    *consumed = 0;
    if (d->hdr_have == PL_DEFRAMER_FAILED)
        return PL_ERR_STATE;
    if (d->ready) {
        /* The previously returned message is no longer borrowed. A large
         * buffer waits for the next message's first header (above). */
        pl_buf_consume(&d->msg, pl_buf_size(&d->msg));
        d->ready = 0;
    }
    while (pos < len) {
        if (d->hdr_have < PL_FRAME_HEADER_SIZE) {
            size_t take = PL_FRAME_HEADER_SIZE - d->hdr_have;
            if (take > len - pos)
                take = len - pos;
            memcpy(d->hdr + d->hdr_have, in + pos, take);
            d->hdr_have += take;
            pos += take;
            if (d->hdr_have < PL_FRAME_HEADER_SIZE)
                break;
            rc = deframer_header(d, bound, bound_ctx);
            if (rc != PL_OK) {
                *consumed = pos;
                return deframer_fail(d, rc);
            }
            if (d->cur.length == 0 || (pl_buf_size(&d->msg) == 0 && !(d->cur.flags & PL_FRAME_FLAG_MORE) &&
                                       len - pos >= d->cur.length)) {
                /* The frame is whole here: an empty one, or a message of one
                 * frame, handed out from the input itself. */
                const uint8_t *p = in + pos;
                size_t n = d->cur.length;
                pos += n;
                d->hdr_have = 0;
                if (d->cur.flags & PL_FRAME_FLAG_MORE)
                    continue; /* an empty frame: the message goes on */
                *consumed = pos;
                if (pl_buf_size(&d->msg) > 0)
                    return deframer_done(d, pl_buf_head(&d->msg), pl_buf_size(&d->msg), msg);
                return deframer_done(d, p, n, msg);
            }
        } else {
            size_t take = d->cur.length - d->payload_have;
            if (take > len - pos)
                take = len - pos;
            rc = pl_buf_append(&d->msg, in + pos, take);
            if (rc != PL_OK) {
                *consumed = pos;
                return deframer_fail(d, rc);
            }
            d->payload_have += take;
            pos += take;
            if (d->payload_have == d->cur.length) {
                d->hdr_have = 0;
                d->payload_have = 0;
                if (!(d->cur.flags & PL_FRAME_FLAG_MORE)) {
                    *consumed = pos;
                    return deframer_done(d, pl_buf_head(&d->msg), pl_buf_size(&d->msg), msg);
                }
            }
        }
    }
    *consumed = pos;
    return 0;
}

int pl_deframer_in_progress(const pl_deframer *d)
{
    if (d->hdr_have == PL_DEFRAMER_FAILED)
        return 0;
    return d->hdr_have > 0 || d->msg_type != 0;
}

/* ---------------------------------------------------------------- frames written in place */

void pl_reasm_init(pl_reasm *r)
{
    memset(r, 0, sizeof *r);
    pl_buf_init(&r->buf);
}

void pl_reasm_clear(pl_reasm *r)
{
    pl_buf_clear(&r->buf);
    sodium_memzero(r, sizeof *r);
    pl_reasm_init(r);
}

uint8_t *pl_reasm_room(pl_reasm *r, size_t n)
{
    pl_buf *b = &r->buf;
    if (n < PL_FRAME_HEADER_SIZE)
        return NULL;
    if (r->ready) {
        /* The message handed out is no longer borrowed. A large buffer that
         * carried a message of one frame is not kept for the next. */
        if (r->large)
            pl_buf_clear(b);
        b->len = b->off = 0;
        r->ready = r->large = 0;
    }
    if (b->len == 0) {
        if (pl_buf_reserve(b, PL_FRAME_HEADER_SIZE) != PL_OK)
            return NULL;
        b->len = PL_FRAME_HEADER_SIZE; /* the spare room before the message */
    }
    if (pl_buf_reserve(b, n - PL_FRAME_HEADER_SIZE) != PL_OK)
        return NULL;
    uint8_t *room = b->data + b->len - PL_FRAME_HEADER_SIZE;
    memcpy(r->saved, room, PL_FRAME_HEADER_SIZE);
    return room;
}

int pl_reasm_take(pl_reasm *r, size_t n, pl_message *msg, pl_frame_bound bound, void *bound_ctx)
{
    pl_buf *b = &r->buf;
    uint8_t *room = b->data + b->len - PL_FRAME_HEADER_SIZE;
    size_t have = b->len - PL_FRAME_HEADER_SIZE;
    pl_frame_header h;
    int rc = pl_frame_header_decode(room, &h);
    memcpy(room, r->saved, PL_FRAME_HEADER_SIZE); /* the message's own bytes again */
    sodium_memzero(r->saved, sizeof r->saved);
    if (rc != PL_OK)
        return rc;
    if ((size_t)h.length != n - PL_FRAME_HEADER_SIZE)
        return PL_ERR_PROTOCOL;
    if (r->type != 0 && h.type != r->type)
        return PL_ERR_MALFORMED;
    if (bound && (rc = bound(bound_ctx, &h, have)) < 0)
        return rc;
    b->len += h.length;
    if (h.flags & PL_FRAME_FLAG_MORE) {
        r->type = h.type;
        return 0;
    }
    msg->type = h.type;
    msg->len = b->len - PL_FRAME_HEADER_SIZE;
    msg->data = msg->len > 0 ? b->data + PL_FRAME_HEADER_SIZE : pl_empty_message;
    r->large = r->type == 0 && b->cap > PL_DEFRAMER_KEEP_CAP;
    r->type = 0;
    r->ready = 1;
    return 1;
}
