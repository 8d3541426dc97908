/* The connection protocol engine (see engine.h and docs/PROTOCOL.md). */
#include "engine.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>
#include <peerlink/conn.h>

#include "peerlink.pb-c.h"

/* Large enough for any Control message we send (Hello is at most ~26 bytes). */
#define PL_CONTROL_OUT_MAX 64

/*
 * Bounds on incoming messages. The deframer has a single maximum, so it
 * is given max(max_message, PL_CONTROL_MAX). pl_engine_receive() never
 * feeds it past a frame boundary: it hands over at most the rest of a
 * header, or at most the rest of the current frame's payload. As soon as
 * a header is complete (and before any of that frame's payload is
 * stored) the engine checks the message's type-specific bound -
 * PL_CONTROL_MAX for CONTROL, max_message for DATA - against the bytes
 * already assembled plus the announced frame length. So neither type can
 * make the deframer allocate past its own bound.
 */
static size_t deframer_max(size_t max_message)
{
    return max_message > PL_CONTROL_MAX ? max_message : PL_CONTROL_MAX;
}

static size_t sanitize_max(size_t max_message)
{
    if (max_message == 0)
        return PL_DEFAULT_MAX_MESSAGE;
    if (max_message > PL_MAX_MESSAGE_LIMIT)
        return PL_MAX_MESSAGE_LIMIT;
    return max_message;
}

void pl_engine_init(pl_engine *e, size_t max_message)
{
    memset(e, 0, sizeof *e);
    e->max_message = sanitize_max(max_message);
    pl_deframer_init(&e->in, deframer_max(e->max_message));
    pl_buf_init(&e->out);
}

void pl_engine_clear(pl_engine *e)
{
    pl_deframer_clear(&e->in);
    pl_buf_clear(&e->out);
    sodium_memzero(e, sizeof *e);
}

int pl_engine_set_max_message(pl_engine *e, size_t max)
{
    if (max == 0 || max > PL_MAX_MESSAGE_LIMIT)
        return PL_ERR_INVALID;
    if (e->started)
        return PL_ERR_STATE;
    e->max_message = max;
    e->in.max_message = deframer_max(max);
    return PL_OK;
}

static int queue_control(pl_engine *e, const Peerlink__Control *c)
{
    uint8_t buf[PL_CONTROL_OUT_MAX];
    size_t n = peerlink__control__get_packed_size(c);
    if (n > sizeof buf)
        return PL_ERR_INVALID; /* cannot happen for the messages we build */
    n = peerlink__control__pack(c, buf);
    return pl_frame_encode_message(&e->out, PL_FRAME_CONTROL, buf, n);
}

int pl_engine_start(pl_engine *e)
{
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Hello h = PEERLINK__HELLO__INIT;
    int rc;

    if (e->started || e->failed)
        return PL_ERR_STATE;
    h.min_version = PL_PROTO_MIN_VERSION;
    h.max_version = PL_PROTO_MAX_VERSION;
    h.max_message = e->max_message;
    c.msg_case = PEERLINK__CONTROL__MSG_HELLO;
    c.hello = &h;
    rc = queue_control(e, &c);
    if (rc != PL_OK)
        return rc;
    e->started = 1;
    return PL_OK;
}

static int engine_fail(pl_engine *e, int err)
{
    e->failed = 1;
    return err;
}

static int handle_hello(pl_engine *e, const Peerlink__Hello *h)
{
    uint32_t lo = h->min_version > PL_PROTO_MIN_VERSION ? h->min_version : PL_PROTO_MIN_VERSION;
    uint32_t hi = h->max_version < PL_PROTO_MAX_VERSION ? h->max_version : PL_PROTO_MAX_VERSION;

    if (e->open)
        return PL_ERR_PROTOCOL; /* a second Hello */
    if (hi < lo || hi == 0)
        return PL_ERR_VERSION;
    if (h->max_message < 1)
        return PL_ERR_PROTOCOL;
    e->peer_max = h->max_message > PL_MAX_MESSAGE_LIMIT ? PL_MAX_MESSAGE_LIMIT : h->max_message;
    e->version = hi;
    e->open = 1;
    return PL_OK;
}

/* A complete CONTROL message: returns an event type (> 0) or a negative error. */
static int handle_control(pl_engine *e, const uint8_t *data, size_t len)
{
    Peerlink__Control *c;
    int rc;

    if (len > PL_CONTROL_MAX)
        return PL_ERR_TOO_LARGE; /* already prevented frame by frame; kept as a guard */
    c = peerlink__control__unpack(NULL, len, data);
    if (c == NULL)
        return PL_ERR_MALFORMED;
    switch (c->msg_case) {
    case PEERLINK__CONTROL__MSG_HELLO:
        rc = handle_hello(e, c->hello);
        if (rc == PL_OK)
            rc = PL_ENGINE_OPEN;
        break;
    case PEERLINK__CONTROL__MSG_END_OF_STREAM:
        if (!e->open || e->peer_eof) {
            rc = PL_ERR_PROTOCOL;
        } else {
            e->peer_eof = 1;
            rc = PL_ENGINE_PEER_EOF;
        }
        break;
    default:
        rc = PL_ERR_PROTOCOL; /* no message set, or one we do not know */
        break;
    }
    peerlink__control__free_unpacked(c, NULL);
    return rc;
}

/* Called when a frame header has just been decoded and none of its payload is stored. */
static int check_frame_start(const pl_engine *e)
{
    const pl_deframer *d = &e->in;
    size_t have = pl_buf_size(&d->msg);
    size_t bound;

    if (e->peer_eof)
        return PL_ERR_PROTOCOL; /* anything after end-of-stream */
    if (d->cur.type == PL_FRAME_DATA) {
        if (!e->open)
            return PL_ERR_PROTOCOL; /* data before Hello */
        bound = e->max_message;
    } else {
        bound = PL_CONTROL_MAX;
    }
    if (have > bound || d->cur.length > bound - have)
        return PL_ERR_TOO_LARGE;
    return PL_OK;
}

int pl_engine_receive(pl_engine *e, const uint8_t *in, size_t len, size_t *consumed,
                      pl_engine_event *ev)
{
    size_t pos = 0;
    int rc;

    *consumed = 0;
    ev->type = PL_ENGINE_NONE;
    ev->data = NULL;
    ev->len = 0;
    if (e->failed)
        return PL_ERR_STATE;
    while (pos < len) {
        pl_deframer *d = &e->in;
        size_t chunk = len - pos, used = 0;
        int in_header = d->hdr_have < PL_FRAME_HEADER_SIZE;
        size_t limit = in_header ? PL_FRAME_HEADER_SIZE - d->hdr_have
                                 : (size_t)d->cur.length - d->payload_have;
        pl_message m;

        if (chunk > limit)
            chunk = limit;
        rc = pl_deframer_feed(d, in + pos, chunk, &used, &m);
        pos += used;
        *consumed = pos;
        if (rc < 0)
            return engine_fail(e, rc);
        if (in_header && used == limit) {
            /* A header was just completed and validated by the deframer (for an
             * empty frame the frame, maybe the message, is complete too). */
            int crc = check_frame_start(e);
            if (crc < 0)
                return engine_fail(e, crc);
        }
        if (rc == 1) {
            if (m.type == PL_FRAME_DATA) {
                ev->type = PL_ENGINE_MESSAGE;
                ev->data = m.data;
                ev->len = m.len;
                return 1;
            }
            rc = handle_control(e, m.data, m.len);
            if (rc < 0)
                return engine_fail(e, rc);
            ev->type = (pl_engine_event_type)rc;
            return 1;
        }
    }
    return 0;
}

int pl_engine_send(pl_engine *e, const void *data, size_t len)
{
    if (!e->started || e->local_eof || e->failed)
        return PL_ERR_STATE;
    if (len > PL_MAX_MESSAGE_LIMIT || (e->open && len > e->peer_max))
        return PL_ERR_TOO_LARGE;
    return pl_frame_encode_message(&e->out, PL_FRAME_DATA, data, len);
}

int pl_engine_shutdown(pl_engine *e)
{
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__EndOfStream eos = PEERLINK__END_OF_STREAM__INIT;
    int rc;

    if (!e->started || e->failed)
        return PL_ERR_STATE;
    if (e->local_eof)
        return PL_OK;
    c.msg_case = PEERLINK__CONTROL__MSG_END_OF_STREAM;
    c.end_of_stream = &eos;
    rc = queue_control(e, &c);
    if (rc != PL_OK)
        return rc;
    e->local_eof = 1;
    return PL_OK;
}

int pl_engine_done(const pl_engine *e)
{
    return e->local_eof && e->peer_eof;
}

int pl_engine_truncated(const pl_engine *e)
{
    return pl_deframer_in_progress(&e->in);
}
